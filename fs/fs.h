/*
 * fs.h - the wkfs FUSE filesystem's shared state (fs/ only).
 *
 * fs/ is the only directory that includes fuse_lowlevel.h.  The filesystem is
 * a passthrough over a directory fd of DIR taken before mounting (so it works
 * when mounted over DIR itself), with an inode table of O_PATH fds keyed by
 * the backing (dev, ino), in the manner of libfuse's passthrough_hp.  Every
 * namespace change and every close of a written file is handed to the
 * recorder (lib/recorder.h).
 */
#ifndef WKFS_FS_H
#define WKFS_FS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "op.h"
#include "recorder.h"

struct finode {
	int fd; /* O_PATH to the backing inode */
	dev_t dev;
	ino_t ino;
	bool is_dir;
	/* Under fs.ilock: */
	uint64_t nlookup;
	struct wk_id node;  /* the tracked node, WK_ID_NONE if untracked */
	int nwriters;       /* open handles that may write */
	bool dirty;         /* content changed since its last put */
	bool wrote;         /* ... by a write or truncate, not only by an
			       O_TRUNC open (see wkfs_flush) */
	bool kernel_mtime;  /* written: the kernel owes us its mtime (with the
			       writeback cache it sends one late setattr) */
	int64_t kmtime_ns;  /* the mtime the kernel shows: the one it got when
			       it first looked the inode up, or the last it
			       sent; with the writeback cache it takes no
			       other from us (regular files) */
	bool replaced;      /* a remote batch unlinked it: no new writer
			       (fs/apply.h), lookups look again */
	/*
	 * Held by a put (from reading kmtime_ns to recording the op) and by
	 * a setattr (from its syscall to recording its op), so that neither
	 * undoes the other: a put never sets the file back to a time a
	 * concurrent setattr has replaced, nor is recorded after it with
	 * the older time.  Taken before the recorder's lock, never after.
	 */
	pthread_mutex_t mtime_lock;
	struct finode *next;
};

struct apply;

struct wkfs {
	int rootfd;               /* DIR, opened before the mount */
	struct apply *apply;      /* remote ops (fs/apply.h) */
	struct finode root;
	struct recorder *rec;
	struct fuse_session *se;
	double timeout;           /* entry and attribute cache, seconds */
	bool writeback;
	/*
	 * Under the recorder's lock: where a tracked file that rules match
	 * was last renamed away from (an empty name: nowhere).  An editor
	 * that saves by renaming the file to a backup name and writing a new
	 * one (vim's writebackup) creates that name next; it stays tracked
	 * rather than the edit turning into a delete.
	 */
	struct wk_id vacated_parent;
	char vacated_name[WK_NAME_MAX + 1];

	/*
	 * Held shared by the handlers that change names (create, mkdir,
	 * mknod, symlink, link, unlink, rmdir, rename) from before their
	 * syscall until it is recorded, and exclusively by the apply thread
	 * for a whole round (fs/apply.c).  A round's change lists are made
	 * of paths: a local rename done on disk but not yet recorded would
	 * move what they name from under them, and the index would show
	 * them done where DIR does not.  Taken before the recorder's lock;
	 * writers first, so a busy folder cannot starve the round.  Nothing
	 * that waits for the kernel (invalidations) runs under it.
	 */
	pthread_rwlock_t nslock;
	pthread_mutex_t ilock;    /* the inode table and finode fields */
	struct finode **table;
	size_t n_buckets, count;
};

void wkfs_ops_fill(struct fuse_lowlevel_ops *o);

/* The control socket's `conflicts` request (ctl_conflicts.c): writes the
 * reply to the client fd. */
void ctl_conflicts(struct wkfs *fs, int fd);

/* Inode table (inode.c). */
void inode_table_init(struct wkfs *fs);
void inode_table_free(struct wkfs *fs);
struct finode *inode_get(struct wkfs *fs, fuse_ino_t ino);
/* Finds or adds the finode for st, taking a lookup reference; takes over fd
 * (closing it when the inode was known already). */
struct finode *inode_ref(struct wkfs *fs, int fd, const struct stat *st);
struct finode *inode_find(struct wkfs *fs, dev_t dev, ino_t ino);
void inode_forget(struct wkfs *fs, struct finode *in, uint64_t n);

/*
 * For the apply thread, which holds no finode reference: each looks the
 * backing inode (dev, ino) up under the table's lock.  inode_writers gives
 * its open handles that may write (0 when the kernel does not know it),
 * inode_ino_of its FUSE inode number (0 when unknown), inode_tie sets the
 * node it speaks for.
 */
int inode_writers(struct wkfs *fs, dev_t dev, ino_t ino);
fuse_ino_t inode_ino_of(struct wkfs *fs, dev_t dev, ino_t ino);
void inode_tie(struct wkfs *fs, dev_t dev, ino_t ino, struct wk_id node);
/* A remote batch unlinked (dev, ino): its finode speaks for no node and is
 * marked replaced. */
void inode_retire(struct wkfs *fs, dev_t dev, ino_t ino);

/* The tracked node of in, or NULL (recorder lock held). */
struct nnode *inode_node_l(struct wkfs *fs, struct finode *in);

#endif
