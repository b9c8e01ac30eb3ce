/*
 * locate.h - finding a synced folder's database, mounted or not.
 */
#ifndef WKFS_LOCATE_H
#define WKFS_LOCATE_H

#include <stddef.h>

/*
 * Opens a directory fd of the synced directory `path` through which
 * .wkfs/wkfs.db is reachable: the mount's own fd (over its control socket,
 * after asking it to commit what it has queued) when path is a wkfs mount
 * point or the backing directory of one, else the directory itself.
 * Returns the fd, or -errno with a one-line reason in err.
 */
int locate_dirfd(const char *path, char *err, size_t errlen);

#endif
