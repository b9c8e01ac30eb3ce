/*
 * folder.h - which synced folder a command is about, and where its parts
 * are: the backing directory (where .wkfs lives), its mount point, and its
 * runtime directory.
 */
#ifndef WKFS_FOLDER_H
#define WKFS_FOLDER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "rundir.h"

struct folder {
	char dir[PATH_MAX]; /* the backing directory */
	char mnt[PATH_MAX]; /* where it is mounted, "" when it is not */
	char key[PATH_MAX]; /* the path its runtime directory is keyed by:
			       mnt when mounted, else dir */
	char run[RUNDIR_MAX];
	bool mounted;
};

/*
 * The synced folder at or above path (the current directory when path is
 * NULL): a wkfs mount point, the backing directory of one, or a directory
 * holding .wkfs/.  0, or -errno with a one-line reason in err (also when
 * its runtime directory is not safe: rundir_safe()).
 */
int folder_resolve(const char *path, struct folder *f, char *err,
		   size_t errlen);

/*
 * Every folder wkfs is mounted on (from /proc/self/mountinfo), then those
 * with only a daemon running.  *out is malloc'd; returns the count or
 * -errno (-EPERM: a runtime directory is not safe, the reason in err).
 */
int folder_list(struct folder **out, char *err, size_t errlen);

/*
 * Reads the folder's config: 1 when it has a [remote], 0 when it is local
 * only, -errno with a one-line reason in err.
 */
int folder_has_remote(const struct folder *f, char *err, size_t errlen);

#endif
