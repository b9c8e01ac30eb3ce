/*
 * versions.h - what `wkfs history` and `wkfs restore` share: a path's
 * folder and its oplog read into memory, and where a version's content
 * can be found.
 *
 * Calling sequence:
 *
 *	struct versions v;
 *	if (versions_open(path, &v, err, sizeof(err)))	// err: one line
 *		...
 *	history_of_path(v.ops, v.n, v.rel, &h);		// lib/history.h
 *	versions_where(&v, &h.v[i]);			// "here", "relay"...
 *	fd = versions_content(&v, &h.v[i].hash, h.v[i].size);
 *	versions_release(&v);
 *
 * The database is opened read-only and closed again by versions_open():
 * nothing here writes the folder.
 */
#ifndef WKFS_VERSIONS_H
#define WKFS_VERSIONS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "folder.h"
#include "history.h"
#include "op.h"

struct versions {
	struct folder f;
	char root[PATH_MAX]; /* where the folder's files are seen: the mount
				point, or the directory when not mounted */
	char rel[PATH_MAX];  /* the path asked about, relative to root ("":
				the folder itself) */
	int dirfd;	     /* the backing directory (reaches .wkfs) */
	struct hist_op *ops; /* the whole oplog, in seq order */
	uint8_t *on_remote;  /* per op: shipped, or came from the remote */
	size_t *by_id;	     /* the ops' indices in (hlc, actor) order */
	size_t n;
	const char *remote;	 /* "relay", "git", or NULL (local only) */
	struct tree *now;	 /* the folder as its whole oplog shows it */
	struct held_file *files; /* its files, by content */
	size_t nfiles, files_alloc;
};

/*
 * Finds the folder around path (which need not exist any more: a deleted
 * file's path is asked about too) and reads its oplog.  0, or -errno with
 * a one-line reason in err naming the path and what to do.
 */
int versions_open(const char *path, struct versions *v, char *err,
		  size_t errlen);
void versions_release(struct versions *v);

/* Another path (which need not exist) relative to v's folder, into out:
 * 0, or -errno with a one-line reason in err (outside the folder, say). */
int versions_relpath(const struct versions *v, const char *path, char *out,
		     size_t len, char *err, size_t errlen);

/* Where the content of entry e is: "here" (in .wkfs/objects or a file of
 * the folder now), "relay" or "git" (the remote was sent it or sent it
 * here), "gone", or NULL when e has no content (a directory). */
const char *versions_where(const struct versions *v,
			   const struct hist_entry *e);

/* The same for a version by id, content hash and size (a file's). */
const char *versions_where_id(const struct versions *v, struct wk_id version,
			      const struct wk_hash *hash, uint64_t size);

/* A read-only fd, at offset 0, of a local file holding exactly that
 * content (checked against the hash), or -ENOENT when none is at hand. */
int versions_content(const struct versions *v, const struct wk_hash *hash,
		     uint64_t size);

/*
 * Has wkfs-syncd (started if need be) fetch that content from the relay
 * into .wkfs/objects, where versions_content() then finds it.  0, or
 * -errno with the reason in err (no remote, not on the relay, offline).
 */
int versions_fetch(const struct versions *v, const struct wk_hash *hash,
		   uint64_t size, char *err, size_t errlen);

/* "PATH version N (TIME, DEVICE)" in buf, for wk_err() (which escapes
 * what it prints). */
void versions_name(const struct versions *v, const struct hist_entry *e,
		   char *buf, size_t len);

#endif
