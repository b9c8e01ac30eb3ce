/*
 * apply.h - the mount process applies other replicas' ops to DIR.
 *
 * Remote ops arrive in wkfs.db's ops table with origin 1 (inserted by
 * another process: wkfs-syncd, or `wkfs debug import` in tests) and their
 * content in DIR/.wkfs/objects.  The mount owns one struct tree (the merge
 * engine) holding every op it has taken in, and a thread that, every 2 s
 * or when asked, feeds the new ops to it and carries out the resulting
 * changes with the materializer, under the recorder's lock, then brings the
 * recorder's index and node rows in line and invalidates the kernel's
 * caches.  docs/architecture.md ("Applying remote ops") has the details.
 *
 * Calling sequence (fs/mount.c):
 *
 *	rec_open(...);
 *	apply_open(fs, cfg, &fs->apply, err, len);	// recover, build tree
 *	scan_tree(...);
 *	... session mounted ...
 *	apply_start(fs->apply);
 *	... serve ...
 *	apply_stop(fs->apply);	// before the session goes away
 *	apply_close(fs->apply);	// before rec_close
 *
 * The tree is guarded by the recorder's lock: FUSE handlers may ask it
 * questions (apply_dir_members_l) with that lock held.
 */
#ifndef WKFS_APPLY_H
#define WKFS_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "op.h"

struct apply;
struct wkfs;
struct finode;
struct nnode;

/* Meta key of the cursor: every op with seq <= it is in the tree. */
#define APPLY_SEQ_KEY "applied_seq"
/* Meta key prefix of other replicas' device names: "device:<16 hex>". */
#define APPLY_DEVICE_KEY "device:"

/*
 * Finishes what a crashed batch left (mat_recover), builds the tree from the
 * oplog (ops up to applied_seq and every local op: what DIR reflects), and
 * makes the index show the tree's conflict copies.  0 or -errno with a
 * reason in err.
 */
int apply_open(struct wkfs *fs, const struct wk_config *cfg, struct apply **out,
	       char *err, size_t errlen);

/* Starts the apply thread (once the FUSE session exists). */
int apply_start(struct apply *ap);

/* Asks for a round soon (the last writer of a file closed it). */
struct refetch;
/* Gives the apply thread rf (fs/refetch.h) to ask for contents it lacks;
 * before apply_start(). */
void apply_set_refetch(struct apply *ap, struct refetch *rf);
/* refetch_came_fn (arg: the struct apply): a content came; the next
 * round's repair pass writes what waited for it. */
void apply_content_came(void *arg);
void apply_kick(struct apply *ap);

/* The same, only when remote ops wait for a file to be closed (what
 * release calls). */
void apply_kick_if_waiting(struct apply *ap);

/* Where the apply stands (apply_request). */
struct apply_counts {
	int64_t applied;   /* applied_seq */
	int64_t pending;   /* remote ops after it: not taken yet */
	int64_t held;	   /* remote ops held back (lib/apply_plan.h) */
	int64_t attention; /* of those, held for a reason a close won't end */
};

/*
 * Runs a round and waits for it: what the ctl request `apply` does.  With
 * run false, only reports.  0 or -errno.
 */
int apply_request(struct apply *ap, int run, struct apply_counts *c);

/* Stops the thread; no more notifications reach the kernel after this. */
void apply_stop(struct apply *ap);
void apply_close(struct apply *ap);

/*
 * Opening a file for writing races with a batch that replaces or removes
 * it: the batch checks that no handle writes the file, then renames the
 * new content over it (or unlinks it).  A handle opened in between, or
 * opened afterwards through a dentry the kernel still has for the old
 * inode, would write into an inode gone from DIR: lost.  So a FUSE open
 * that may write brackets its open(2) (fs/ops_io.c):
 *
 *	t = apply_writer_ticket(fs);		// waits out a running batch
 *	fd = open(...);
 *	while ((rc = apply_writer_count(fs, in, t)) == 0)
 *		t = apply_writer_ticket(fs);	// a batch ran: look again
 *	if (rc < 0)
 *		... -ESTALE: close fd, fail the open with ESTALE
 *
 * apply_writer_count() counts the handle (in->nwriters++) only when no
 * batch ran since the ticket, in the same locked section in which the
 * batch's check reads the count; -ESTALE when a batch unlinked in's inode
 * (finode.replaced).  On ESTALE the kernel looks the name up again and
 * opens what is there now.  A writer is thus either seen by the batch's
 * check (the update waits for its close, then conflicts) or writes the
 * new file.  Openers wait only while a batch runs.
 *
 * apply_writer_settle(): for a create, which has no finode yet: waits out
 * a batch that ran since *ticket and says -ESTALE if it unlinked fd's
 * inode, else renews *ticket.  apply_batch_gen(): the generation now,
 * without waiting (odd while a batch runs), for lookups (fs/ops_ns.c).
 */
uint64_t apply_batch_gen(struct wkfs *fs);
uint64_t apply_writer_ticket(struct wkfs *fs);
int apply_writer_count(struct wkfs *fs, struct finode *in, uint64_t ticket);
int apply_writer_settle(struct wkfs *fs, int fd, uint64_t *ticket);

/*
 * The directory nodes merged with dir in the tree's view (dir among them;
 * recorder lock held): fills ids (at most max) and returns how many there
 * are, or -errno (-ENOENT: the tree does not show dir).
 */
int apply_dir_members_l(struct apply *ap, struct nnode *dir, struct wk_id *ids,
			size_t max);

#endif
