/*
 * ops_common.h - helpers shared by the two halves of the handler table.
 */
#ifndef WKFS_OPS_COMMON_H
#define WKFS_OPS_COMMON_H

#include "fs.h"

#include <errno.h>

/* A timestamp in ns, as ops and the index keep mtimes. */
static inline int64_t ts_ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

/*
 * Evaluates call, a syscall that returns < 0 on failure, with fd (a name
 * declared here) the O_PATH fd of FUSE inode ino (inode_fd); 0 or -errno.
 */
#define WITH_FD(fs, ino, fd, call)                              \
	({                                                      \
		struct finode *with_in_ = inode_get(fs, ino);   \
		int fd = inode_fd(fs, with_in_), with_rc_ = fd; \
		if (fd >= 0) {                                  \
			with_rc_ = (call) < 0 ? -errno : 0;     \
			inode_unfd(fs, with_in_);               \
		}                                               \
		with_rc_;                                       \
	})

/* True for DIR/.wkfs, which the mount does not show. */
bool is_sidecar(struct wkfs *fs, fuse_ino_t parent, const char *name);

/* Looks parent/name up in the backing directory and fills e, taking a
 * lookup reference on its finode. 0 or -errno. */
int do_lookup(struct wkfs *fs, fuse_ino_t parent, const char *name,
	      struct fuse_entry_param *e);

/* Records a new name (after the syscall made it) and ties its finode. */
void record_new(struct wkfs *fs, fuse_ino_t parent, const char *name,
		struct fuse_entry_param *e, const char *target);

/* Records a chmod or touch of n and, for a merged directory, of every
 * member: the tree shows one member's attributes (the last placed), which
 * need not be the index's node.  Recorder lock held. */
void setattr_all_l(struct wkfs *fs, struct nnode *n, uint32_t attrs,
		   uint32_t mode, int64_t mtime_ns);

/* Fills the namespace handlers (ops_ns.c). */
void ops_ns_fill(struct fuse_lowlevel_ops *o);

#endif
