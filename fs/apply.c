/*
 * apply.c - feeding remote ops to the merge engine and carrying out its
 * changes in DIR, from the mount process (see apply.h).
 *
 * One round, on the apply thread, under the recorder's lock:
 *
 *  1. rec_flush_l(): every local op is committed, so the oplog's order is
 *     final and complete;
 *  2. local ops not yet in the tree are fed with no change list (DIR
 *     already shows them), so remote changes are computed against what is
 *     on disk;
 *  3. remote ops after applied_seq are taken in seq order up to the first
 *     that must wait: its content is missing, or it would replace or
 *     remove a file open for writing through the mount (that update waits
 *     for the close, whose put then conflicts with it);
 *  4. they are fed with a change list, which the materializer carries out;
 *  5. the index and node rows are made to match the tree (no op is
 *     recorded) and applied_seq is committed durably in the same
 *     transaction; the batch was tagged with it, so a crash before this
 *     commit is made good at the next start (apply_open) rather than
 *     the batch applied twice; then the materializer forgets the batch;
 *  6. after the lock is dropped, kernel caches are invalidated for every
 *     name and inode the batch changed (never from a FUSE handler: libfuse
 *     warns of the deadlock).
 *
 * The merge engine cannot take ops back, so what step 3 decides is checked
 * again on the change list; if that check fails (rare: a file opened for
 * writing in between), the tree is rebuilt from the oplog and the round
 * retried later.  What this is not: a transport (ops and content are put in
 * place by someone else), nor a garbage collector of .wkfs/objects.
 */
#include "fs.h"
#include "apply.h"
#include "apply_index.h"
#include "refetch.h"
#include "view_repair.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply_plan.h"
#include "beneath.h"
#include "content.h"
#include "db.h"
#include "fault.h"
#include "hlc.h"
#include "mat_gc.h"
#include "materialize.h"
#include "tree.h"
#include "wlog.h"
#include "xalloc.h"

#define ROUND_MAX	256 /* remote ops per batch */
#define FEED_CHUNK	256 /* ops per tree_apply when feeding locals */
#define PERIOD_S	2   /* a round at least this often */
#define ROUNDS_PER_WAKE 64  /* batches per wake-up while ops keep coming */

/* A change the kernel must hear about, collected during mat_apply. */
struct note {
	enum tree_change_kind kind;
	char *path, *new_path;
};

/* A file a WRITE is about to replace, or a REMOVE to delete: its inode
 * must stop speaking for the node, refuse new writers once unlinked, and
 * the kernel must drop its cached pages. */
struct replaced {
	dev_t dev;
	ino_t ino;
	int fd; /* O_PATH, for inode_retire afterwards */
};

struct apply {
	struct wkfs *fs;
	struct recorder *rec;
	struct wkdb *db; /* the apply thread's read connection (and at open) */
	struct mat *mat;
	uint64_t own_actor;

	bool inodes;	  /* the inode table exists (from apply_start on) */
	bool check_index; /* WKFS_CHECK_INDEX: verify each batch's index sync */
	/* A carry-out this round dropped the move of a conflict copy that a
	 * later local op had taken elsewhere (see place_copies). */
	bool copies_astray;
	/* This round's tree has every local op the index has (none was
	 * queued and uncommitted when it was fed): the check can hold. */
	bool locals_all_fed;
	bool check_view;  /* WKFS_CHECK_VIEW: compare view and index per round */
	bool world_writable; /* [sync] world-writable: wk_remote_mode() */

	/* Under the recorder's lock: */
	struct tree *tree;
	struct mat_gc gc;    /* objects of applied puts, to drop */
	int64_t applied_seq; /* every op with seq <= this is in the tree */
	int64_t local_seq;   /* every local op with seq <= this is too */
	/* Remote ops at or below applied_seq that the tree has not taken
	 * (lib/apply_plan.h), by seq; their rows are in the held table. */
	struct plan_item *held;
	size_t nheld;
	bool tree_moved; /* ops fed since the last plan */
	/* A batch changed DIR since the last repair pass (repair_view). */
	bool repair_due;
	/* A step of a batch failed since: the next pass looks at the disk
	 * (the index follows the view, not what the steps did). */
	bool repair_disk;
	struct refetch *refetch; /* asks syncd for missing contents */

	/* Under fs->ilock: odd while a batch may replace or remove files,
	 * from its last check for writers to the end of mat_apply (see
	 * apply_writer_ticket); batch_cv (with fs->ilock) says it ended. */
	uint64_t batch_gen;
	pthread_cond_t batch_cv;

	/* Apply thread only, during one round: */
	struct note *notes;
	size_t nnotes, anotes;

	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t wake, done;
	uint64_t requested, finished; /* round numbers */
	bool kicked, stop, running;
	bool waiting; /* (lock) remote ops wait for a close */
	bool content_came; /* (lock) refetch brought a content */
	pthread_t thread;
};

/* ---- content from local files ---------------------------------------- */

static struct nnode *find_hash(struct nnode *dir, const struct wk_hash *h,
			       uint64_t size)
{
	for (struct nnode *c = dir->first_child; c; c = c->next_sibling) {
		struct nnode *f;

		if (c->kind == WK_KIND_FILE && c->has_hash && c->size == size &&
		    memcmp(&c->hash, h, sizeof(*h)) == 0)
			return c;
		if (c->kind == WK_KIND_DIR && (f = find_hash(c, h, size)))
			return f;
	}
	return NULL;
}

static bool has_content(const struct nnode *n, const struct wk_hash *h,
			uint64_t size)
{
	return n && n->kind == WK_KIND_FILE && n->has_hash && n->size == size &&
	       memcmp(&n->hash, h, sizeof(*h)) == 0;
}

/*
 * A file of DIR that the index says has c's content.  The likely ones
 * first, by id: the node itself (its local version becomes a conflict
 * copy) and the version's entry (a conflict copy being moved or shown
 * again); then, with walk, a walk of the whole index (a copy of the
 * content elsewhere), which is O(nodes) but rare: remote content is in
 * the object store, local versions are found by id.  Recorder lock held
 * (every caller holds it).
 */
static int find_source(struct apply *ap, const struct tree_change *c, bool walk)
{
	struct nindex *ix = rec_index(ap->rec);
	struct nnode *n = nindex_get(ix, c->node);
	char path[4096];

	if (!has_content(n, &c->hash, c->size))
		n = nindex_get(ix, c->version);
	if (!has_content(n, &c->hash, c->size) && walk)
		n = find_hash(nindex_root(ix), &c->hash, c->size);
	if (!has_content(n, &c->hash, c->size) ||
	    nindex_path(n, path, sizeof(path)))
		return -ENOENT;
	return beneath_open(ap->fs->rootfd, path, O_RDONLY, NULL);
}

/* mat_source_fn: find_source with the walk. */
static int local_source(void *arg, const struct tree_change *c)
{
	return find_source(arg, c, true);
}

/* walk: may look through the whole index (see plan_content_here). */
static bool content_at_hand(struct apply *ap, const struct wk_op *op, bool walk)
{
	struct tree_change c = {.node = op->node,
				.version = op->id,
				.size = op->size,
				.hash = op->hash};
	int fd;

	if (op->kind != WK_OP_PUT || op->size == 0 ||
	    mat_object_have(ap->mat, &op->hash))
		return true;
	fd = find_source(ap, &c, walk);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void set_waiting(struct apply *ap, bool on);

/* ---- open files ------------------------------------------------------- */

static bool open_for_writing(struct apply *ap, const char *path)
{
	struct stat st;

	if (beneath_lstat(ap->fs->rootfd, path, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return false;
	return inode_writers(ap->fs, st.st_dev, st.st_ino) > 0;
}

/* ---- hard links ------------------------------------------------------- */

/* Does ch hold a WRITE of node's own version? */
static bool writes_node(const struct tree_changes *ch, struct wk_id node)
{
	for (size_t i = 0; i < ch->n; i++)
		if (ch->v[i].kind == TREE_CH_WRITE &&
		    !ch->v[i].conflict_copy && wk_id_eq(ch->v[i].node, node))
			return true;
	return false;
}

/*
 * The file of node link, for a WRITE whose put names it (tree_change.link)
 * and which no WRITE of this batch writes (the materializer links those
 * itself): when the index says it holds the WRITE's content, nobody has it
 * open for writing (its bytes could be ahead of the index), and the tree
 * still shows it after the batch with the WRITE's content, mode and mtime
 * (a SETATTR of it may come later in the batch: cp -a over a linked pair
 * relinks the second name before it sets the first one's mtime), its path
 * there and its inode go into link_path and link_ino.  The materializer
 * checks the inode and size again when it links, and writes a copy
 * otherwise.  Lock held.
 */
static void link_source(struct apply *ap, struct tree_change *c,
			const struct tree_changes *ch)
{
	struct nnode *n = nindex_get(rec_index(ap->rec), c->link);
	struct tree_entry e;
	char now[4096];
	struct stat st;
	char *path;

	if (!has_content(n, &c->hash, c->size) || nnode_is_copy(n) || !n->ino ||
	    writes_node(ch, c->link) || nindex_path(n, now, sizeof(now)) ||
	    beneath_lstat(ap->fs->rootfd, now, &st) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_ino != n->ino ||
	    inode_writers(ap->fs, st.st_dev, st.st_ino) > 0)
		return;
	path = tree_node_path(ap->tree, c->link);
	if (!path)
		return;
	if (tree_lookup(ap->tree, path, &e) == 0 && wk_id_eq(e.node, c->link) &&
	    !e.conflict_copy && e.size == c->size &&
	    memcmp(&e.hash, &c->hash, sizeof(e.hash)) == 0 &&
	    (e.mode & 07777) == (c->mode & 07777) &&
	    e.mtime_ns == c->mtime_ns) {
		c->link_path = path;
		c->link_ino = n->ino;
		return;
	}
	free(path);
}

static void link_sources(struct apply *ap, struct tree_changes *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		struct tree_change *c = &ch->v[i];

		if (c->kind == TREE_CH_WRITE && !c->conflict_copy &&
		    !wk_id_eq(c->link, WK_ID_NONE) &&
		    !wk_id_eq(c->link, WK_ID_ROOT) && !c->link_path)
			link_source(ap, c, ch);
	}
}

/* Would op replace, remove or move a file open for writing?  (Lock
 * held.) */
static bool op_blocked(struct apply *ap, const struct wk_op *op)
{
	char *path;
	bool busy;

	if (op->kind != WK_OP_PUT && op->kind != WK_OP_REMOVE &&
	    op->kind != WK_OP_MOVE)
		return false;
	path = tree_node_path(ap->tree, op->node);
	if (!path)
		return false;
	busy = open_for_writing(ap, path);
	free(path);
	return busy;
}

/* The same, checked on what the engine decided: this also catches a file
 * that another op's name pushes aside (a conflict copy of it).  The first
 * change of ch that must wait for a file open for writing, or NULL. */
static const struct tree_change *blocking_change(struct apply *ap,
						 const struct tree_changes *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];

		if ((c->kind == TREE_CH_WRITE || c->kind == TREE_CH_REMOVE ||
		     c->kind == TREE_CH_RENAME) &&
		    open_for_writing(ap, c->path))
			return c;
	}
	return NULL;
}

/*
 * Between blocking_change() and the end of mat_apply() no handle may start
 * writing unseen: opens that may write take a ticket before their open(2)
 * and are counted only if no batch ran since (apply.h).
 */
static void batch_begin(struct apply *ap)
{
	pthread_mutex_lock(&ap->fs->ilock);
	ap->batch_gen++;
	pthread_mutex_unlock(&ap->fs->ilock);
}

static void batch_end(struct apply *ap)
{
	pthread_mutex_lock(&ap->fs->ilock);
	ap->batch_gen++;
	pthread_cond_broadcast(&ap->batch_cv);
	pthread_mutex_unlock(&ap->fs->ilock);
}

/* fs->ilock held: waits out a running batch; the generation after it. */
static uint64_t settled_gen_l(struct wkfs *fs)
{
	struct apply *ap = fs->apply;

	if (!ap)
		return 0;
	while (ap->batch_gen & 1)
		pthread_cond_wait(&ap->batch_cv, &fs->ilock);
	return ap->batch_gen;
}

uint64_t apply_batch_gen(struct wkfs *fs)
{
	uint64_t g;

	pthread_mutex_lock(&fs->ilock);
	g = fs->apply ? fs->apply->batch_gen : 0;
	pthread_mutex_unlock(&fs->ilock);
	return g;
}

uint64_t apply_writer_ticket(struct wkfs *fs)
{
	uint64_t t;

	pthread_mutex_lock(&fs->ilock);
	t = settled_gen_l(fs);
	pthread_mutex_unlock(&fs->ilock);
	return t;
}

int apply_writer_settle(struct wkfs *fs, int fd, uint64_t *ticket)
{
	struct stat st;
	uint64_t now = apply_writer_ticket(fs);

	if (now == *ticket)
		return 0;
	/* A batch ran since the open(2): did it unlink what fd is? */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_nlink == 0)
		return -ESTALE;
	*ticket = now;
	return 0;
}

int apply_writer_count(struct wkfs *fs, struct finode *in, uint64_t ticket)
{
	int rc = 0;

	pthread_mutex_lock(&fs->ilock);
	if (settled_gen_l(fs) == ticket) {
		rc = in->replaced ? -ESTALE : 1;
		if (rc == 1)
			in->nwriters++;
	}
	pthread_mutex_unlock(&fs->ilock);
	return rc;
}

/* ---- building the tree ------------------------------------------------ */

static int cmp_item_seq(const void *a, const void *b)
{
	const struct plan_item *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Is the op of row seq held (so not in the tree)?  Lock held. */
static bool is_held(const struct apply *ap, int64_t seq)
{
	struct plan_item key = {.seq = seq};

	return ap->nheld && bsearch(&key, ap->held, ap->nheld,
				    sizeof(*ap->held), cmp_item_seq);
}

struct feed {
	struct apply *ap;
	/* Local ops in a round: what they change beside their own effect
	 * is carried out, chunk by chunk (each tree_apply's change list is
	 * a batch of its own: staging names start again at each call);
	 * old[] collects the inodes to invalidate.  Otherwise DIR shows
	 * the ops' effects and no change list is made. */
	bool carry;
	fuse_ino_t *old;
	size_t nold;
	struct wk_op *buf;
	size_t n;
	bool locals_only; /* else: what DIR reflects (see build_tree) */
	int64_t last_seq;
	size_t fed;
};

static void carry_out_local(struct apply *ap, struct tree_changes *ch,
			    fuse_ino_t **old, size_t *nold);
static void carry_out(struct apply *ap, const char *what,
		      struct tree_changes *ch, fuse_ino_t **old, size_t *nold);
static void drop_unready(struct apply *ap, struct tree_changes *ch);
static size_t drop_shown(struct apply *ap, struct tree_changes *ch);
static void log_changes(struct apply *ap, const char *what,
			const struct tree_changes *ch);
static void log_ops(struct apply *ap, const char *what,
		    const struct wk_op *ops, size_t n);

/* With WKFS_CHECK_VIEW: each change local ops made that DIR was found not
 * to show, with what the index has of its node and at its path. */
static void log_kept(struct apply *ap, const struct tree_changes *ch)
{
	char id[WK_ID_STRLEN], v[WK_ID_STRLEN], ic[WK_ID_STRLEN];
	char p[4096];

	if (!ap->check_view)
		return;
	for (size_t i = 0; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];
		struct nnode *e = nindex_get(rec_index(ap->rec), c->node);
		struct nnode *at = nindex_lookup(rec_index(ap->rec), c->path,
						 strlen(c->path));

		if (e && nindex_path(e, p, sizeof(p)) != 0)
			strcpy(p, "?");
		wk_warn("kept: kind %d %s node %s version %s link %s; index "
			"node %s content %s; at path %s",
			c->kind, c->path, wk_id_str(c->node, id),
			wk_id_str(c->version, v), c->link.hlc ? "yes" : "no",
			e ? p : "absent", e ? wk_id_str(e->content, ic) : "-",
			at ? (at == e ? "same" : "other") : "nothing");
	}
}

static void feed_flush(struct feed *f)
{
	struct tree_changes ch;

	if (!f->n)
		return;
	if (!f->carry) {
		tree_apply(f->ap->tree, f->buf, f->n, NULL);
		f->n = 0;
		return;
	}
	tree_changes_init(&ch);
	log_ops(f->ap, "local op:", f->buf, f->n);
	tree_apply(f->ap->tree, f->buf, f->n, &ch);
	log_changes(f->ap, "local change:", &ch);
	if (drop_shown(f->ap, &ch) > 0) {
		log_kept(f->ap, &ch);
		carry_out_local(f->ap, &ch, &f->old, &f->nold);
	}
	tree_changes_release(&ch);
	f->n = 0;
}

static int feed_row(void *arg, const struct db_oprow *row)
{
	struct feed *f = arg;

	f->last_seq = row->seq;
	if (row->origin != DB_ORIGIN_LOCAL &&
	    (f->locals_only || row->seq > f->ap->applied_seq ||
	     is_held(f->ap, row->seq)))
		return 0;
	f->buf[f->n] = row->op;
	if (row->origin != DB_ORIGIN_LOCAL)
		wk_op_mask_remote(&f->buf[f->n], f->ap->world_writable);
	f->n++;
	f->fed++;
	if (f->n == FEED_CHUNK) {
		/* Rows may follow: the tree has not yet every local op the
		 * index has, so the index check cannot hold after this
		 * chunk's carry-out. */
		bool all = f->ap->locals_all_fed;

		f->ap->locals_all_fed = false;
		feed_flush(f);
		f->ap->locals_all_fed = all;
	}
	return 0;
}

static void place_copies(struct apply *ap, fuse_ino_t **old, size_t *nold);

/* Feeds ops after seq `after`: the local ones, or (locals_only false)
 * also remote ones up to applied_seq.  With old (a round's local ops),
 * what they change beside their own effect is carried out, and *old
 * gets the inodes to invalidate. */
static int feed_db(struct apply *ap, int64_t after, bool locals_only,
		   fuse_ino_t **old, size_t *nold)
{
	struct feed f = {.ap = ap,
			 .carry = old != NULL,
			 .locals_only = locals_only,
			 .last_seq = after};
	int rc;

	f.buf = xmalloc(FEED_CHUNK * sizeof(*f.buf));
	rc = db_ops_foreach(ap->db, after, 0, feed_row, &f);
	ap->tree_moved |= f.fed > 0;
	feed_flush(&f);
	free(f.buf);
	if (f.carry && ap->copies_astray)
		place_copies(ap, &f.old, &f.nold);
	if (old) {
		*old = f.old;
		*nold = f.nold;
	}
	if (!rc && f.last_seq > ap->local_seq)
		ap->local_seq = f.last_seq;
	return rc;
}

/* The tree of what DIR shows: every op up to applied_seq, and every local
 * op (their effects are on disk whatever their seq).  Lock held, or
 * before the apply thread exists. */
static int build_tree(struct apply *ap)
{
	if (ap->tree)
		tree_free(ap->tree);
	/* Conflict names come from the device each op carries (the
	 * recorder stamps local ops, syncd ships them): no lookup here. */
	ap->tree = tree_new();
	ap->local_seq = 0;
	return feed_db(ap, 0, false, NULL, NULL);
}

/* ---- the index -------------------------------------------------------- */

/*
 * The index after a batch (ch, the ops fed), or whole (ch NULL: at open).
 * With WKFS_CHECK_INDEX set (tests), the whole walk follows each batch and
 * must find nothing left to change, when the tree has every local op the
 * index has (locals_all_fed).  Lock held.
 */
static void sync_index(struct apply *ap, const struct tree_changes *ch,
		       const struct wk_op *ops, size_t n)
{
	struct index_sync s = {
		.fs = ap->fs, .tree = ap->tree, .inodes = ap->inodes};
	size_t left;

	if (!ch) {
		index_sync_all(&s);
		return;
	}
	index_sync_batch(&s, ch, ops, n);
	if (s.full)
		wk_debug("apply: the index needed a full walk");
	if (ap->check_index && ap->locals_all_fed &&
	    (left = index_sync_all(&s)) != 0) {
		wk_err("apply: %zu index entries out of line after a batch",
		       left);
		abort();
	}
}

/* ---- kernel caches ---------------------------------------------------- */

static void note_change(void *arg, enum tree_change_kind kind, const char *path,
			const char *new_path)
{
	struct apply *ap = arg;
	struct note *n;

	/* The inode table follows the moves (finodes know their place). */
	if (kind == TREE_CH_RENAME && ap->inodes)
		inode_moved(ap->fs, path, new_path);
	if (ap->nnotes == ap->anotes) {
		ap->anotes = ap->anotes ? 2 * ap->anotes : 32;
		ap->notes = xrealloc(ap->notes, ap->anotes * sizeof(*n));
	}
	n = &ap->notes[ap->nnotes++];
	n->kind = kind;
	n->path = xstrdup(path);
	n->new_path = new_path ? xstrdup(new_path) : NULL;
}

static bool in_sidecar(const char *path)
{
	return strcmp(path, ".wkfs") == 0 || strncmp(path, ".wkfs/", 6) == 0;
}

static fuse_ino_t known_ino(struct apply *ap, const char *path)
{
	struct stat st;

	if (beneath_lstat(ap->fs->rootfd, path, &st) < 0)
		return 0;
	return inode_ino_of(ap->fs, st.st_dev, st.st_ino);
}

/* A name appeared, went or changed under its directory. */
static void inval_name(struct apply *ap, const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	char *dir = xstrndup(path, slash ? (size_t)(slash - path) : 0);
	fuse_ino_t pino;

	if (!in_sidecar(path) && (pino = known_ino(ap, dir))) {
		fuse_lowlevel_notify_inval_entry(ap->fs->se, pino, name,
						 strlen(name));
		/* The directory's attributes and cached listing. */
		fuse_lowlevel_notify_inval_inode(ap->fs->se, pino, 0, 0);
	}
	free(dir);
}

static void inval_inode(struct apply *ap, fuse_ino_t ino)
{
	if (ino)
		fuse_lowlevel_notify_inval_inode(ap->fs->se, ino, 0, 0);
}

static void invalidate(struct apply *ap, fuse_ino_t *old, size_t nold)
{
	if (!ap->fs->se)
		return;
	for (size_t i = 0; i < nold; i++)
		inval_inode(ap, old[i]);
	for (size_t i = 0; i < ap->nnotes; i++) {
		struct note *n = &ap->notes[i];

		inval_name(ap, n->path);
		if (n->new_path)
			inval_name(ap, n->new_path);
		if (n->kind == TREE_CH_SETATTR || n->kind == TREE_CH_WRITE)
			inval_inode(ap, known_ino(ap, n->path));
	}
}

static void notes_release(struct apply *ap)
{
	for (size_t i = 0; i < ap->nnotes; i++) {
		free(ap->notes[i].path);
		free(ap->notes[i].new_path);
	}
	ap->nnotes = 0;
}

/* ---- a round ---------------------------------------------------------- */

struct take {
	struct apply *ap;
	struct plan_item *v; /* held items first, then new remote ops */
	size_t n, nheld;
	int64_t last_seq; /* the prefix of the log that is dealt with */
	bool more;
	uint64_t rejected;
};

/* A new row after applied_seq: a candidate for the plan, or dealt with. */
static int take_row(void *arg, const struct db_oprow *row)
{
	struct take *t = arg;
	struct apply *ap = t->ap;

	if (row->origin == DB_ORIGIN_LOCAL) {
		t->last_seq = row->seq; /* in the tree already */
		return 0;
	}
	if (t->n - t->nheld == ROUND_MAX) {
		t->more = true;
		return 1;
	}
	if (!tree_op_valid(&row->op) ||
	    rec_observe_l(ap->rec, row->op.id.hlc) != 0) {
		char id[WK_ID_STRLEN];

		wk_warn("refusing remote op %s (seq %" PRId64 "): invalid or"
			" too far in the future",
			wk_id_str(row->op.id, id), row->seq);
		t->rejected++;
		t->last_seq = row->seq;
		return 0;
	}
	t->v[t->n].op = row->op;
	wk_op_mask_remote(&t->v[t->n].op, ap->world_writable);
	t->v[t->n++].seq = row->seq;
	t->last_seq = row->seq;
	return 0;
}

/*
 * A put held for its content is asked again every round; the walk of the
 * whole index (O(nodes)) for a local file with that content is worth it
 * only when the tree moved since the last plan: a local file can gain the
 * content only through an op.  The store and the node's own file are
 * always looked at.
 */
static bool plan_content_here(void *arg, const struct plan_item *it)
{
	struct apply *ap = arg;

	return content_at_hand(ap, &it->op,
			       ap->tree_moved || !is_held(ap, it->seq));
}

static bool plan_busy(void *arg, const struct wk_op *op)
{
	return op_blocked(arg, op);
}

/* Where the user would look for what a held op is about: the node, or
 * for a create held back, its parent's place and its name. */
static char *held_path(struct apply *ap, const struct wk_op *op)
{
	char *dir, *path;

	path = tree_node_path(ap->tree, op->node);
	if (path || op->kind == WK_OP_PUT || op->kind == WK_OP_REMOVE)
		return path;
	dir = wk_id_eq(op->parent, WK_ID_NONE)
		      ? xstrdup("")
		      : tree_node_path(ap->tree, op->parent);
	if (!dir)
		return NULL;
	path = dir[0] ? xasprintf("%s/%s", dir, op->name) : xstrdup(op->name);
	free(dir);
	return path;
}

/*
 * After a round's plan is carried out: the held set becomes the items not
 * fed; rows are queued for those newly held or held for another reason,
 * and removed for those fed at last.  Lock held.
 */
static void update_held(struct apply *ap, struct take *t)
{
	size_t k = 0;
	bool writer = false;

	for (size_t i = 0; i < t->n; i++) {
		struct plan_item *it = &t->v[i];
		bool was = i < t->nheld;

		if (it->hold == PLAN_FEED) {
			if (was)
				rec_held_set_l(ap->rec, it->seq, 0, NULL);
			continue;
		}
		writer |= it->hold == PLAN_HOLD_WRITER;
		if (!was || ap->held[i].hold != it->hold) {
			char *path = held_path(ap, &it->op);

			rec_held_set_l(ap->rec, it->seq, (int)it->hold, path);
			if (plan_hold_needs_attention(it->hold))
				wk_warn("holding remote %s of %s: %s",
					wk_op_kind_name(it->op.kind),
					path ? path : "?",
					plan_hold_text(it->hold));
			free(path);
		}
	}
	/* t->v is the new held set once the fed ones are squeezed out. */
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].hold != PLAN_FEED)
			t->v[k++] = t->v[i];
	qsort(t->v, k, sizeof(*t->v), cmp_item_seq);
	free(ap->held);
	ap->held = t->v;
	ap->nheld = k;
	t->v = NULL;
	set_waiting(ap, writer);
}

static void set_applied(struct apply *ap, int64_t seq)
{
	if (seq <= ap->applied_seq)
		return;
	ap->applied_seq = seq;
	rec_meta_set_l(ap->rec, APPLY_SEQ_KEY, (uint64_t)seq);
}

/* Once applied_seq is durable: the batches' journals can go. */
static void forget_batches(struct apply *ap)
{
	int rc = mat_forget(ap->mat);

	if (rc)
		wk_warn("cannot delete finished journals in .wkfs/tmp: %s",
			strerror(-rc));
}

/* Objects of applied puts that no pending put needs (lib/mat_gc.h). */
static void drop_objects(struct apply *ap)
{
	int rc = mat_gc_run(&ap->gc, ap->mat, ap->db, ap->applied_seq);

	if (rc)
		wk_warn("cannot read the oplog to drop objects: %s",
			db_errmsg(ap->db));
}

/* Holds the files WRITEs will replace and REMOVEs delete (before the
 * batch). */
static size_t hold_replaced(struct apply *ap, const struct tree_changes *ch,
			    struct replaced *out)
{
	size_t n = 0;

	for (size_t i = 0; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];
		struct stat st;
		int fd;

		if (c->kind != TREE_CH_WRITE && c->kind != TREE_CH_REMOVE)
			continue;
		fd = beneath_open(ap->fs->rootfd, c->path, O_PATH, NULL);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			continue;
		}
		out[n].dev = st.st_dev;
		out[n].ino = st.st_ino;
		out[n++].fd = fd;
	}
	return n;
}

/*
 * After the batch: the held files' finodes no longer speak for the node,
 * and those the batch unlinked take no new writer (inode_retire: an open
 * through a dentry the kernel still has gets ESTALE and looks again).
 * Their FUSE inode numbers go to old[] for invalidation.
 */
static void release_replaced(struct apply *ap, struct replaced *rep,
			     size_t nrep, fuse_ino_t *old, size_t *nold)
{
	for (size_t i = 0; i < nrep; i++) {
		old[*nold] = inode_ino_of(ap->fs, rep[i].dev, rep[i].ino);
		if (old[*nold])
			(*nold)++;
		inode_tie(ap->fs, rep[i].dev, rep[i].ino, WK_ID_NONE);
		inode_retire(ap->fs, rep[i].fd);
		close(rep[i].fd);
	}
}

/*
 * One batch.  Returns 1 when more remote ops may be ready right away, 0
 * when done for now, -errno on a database error.
 */
static void set_waiting(struct apply *ap, bool on)
{
	pthread_mutex_lock(&ap->lock);
	ap->waiting = on;
	pthread_mutex_unlock(&ap->lock);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- what local ops change beside their own effect --------------------- */

/*
 * A local op is on disk already, but it can change how other entries are
 * shown: renaming a file renames its conflict copies, a name it frees goes
 * to a collision's loser.  Those changes are carried out like a remote
 * batch's; the ones DIR shows already (the op's own effect) are dropped.
 * Local ops changed the index as they were recorded, so the index says
 * what DIR shows.  Recorder lock held.
 */
static bool in_staging(const char *path)
{
	size_t n = strlen(TREE_STAGE_DIR);

	return strncmp(path, TREE_STAGE_DIR, n) == 0 && path[n] == '/';
}

/* The index entry that stands for what c shows: a conflict copy's version,
 * or the node. */
static struct nnode *entry_of(struct apply *ap, const struct tree_change *c)
{
	return nindex_get(rec_index(ap->rec),
			  c->conflict_copy ? c->version : c->node);
}

static bool entry_at(struct apply *ap, const struct tree_change *c,
		     const char *path)
{
	struct nnode *e = entry_of(ap, c);
	char p[4096];

	return e && nindex_path(e, p, sizeof(p)) == 0 && strcmp(p, path) == 0;
}

/* The index entry at path, or NULL. */
static struct nnode *entry_at_path(struct apply *ap, const char *path)
{
	return nindex_lookup(rec_index(ap->rec), path, strlen(path));
}

/* Is what c moves (a file, or one of its versions: a copy that becomes
 * the file, or the reverse) still at c's old path in the index? */
static bool still_at_old_path(struct apply *ap, const struct tree_change *c)
{
	struct nnode *e = entry_at_path(ap, c->path);

	return e && (wk_id_eq(e->id, c->node) || wk_id_eq(e->id, c->version) ||
		     (nnode_is_copy(e) && wk_id_eq(e->copy_of, c->node)));
}

/* Is c the content of another name of its file, e one of the names in
 * DIR of the same inode as that name (a put on one name of a link group
 * changes them all: DIR shows it, and a copy written over it would part
 * the names)? */
static bool linked_here(struct apply *ap, const struct tree_change *c,
			const struct nnode *e)
{
	struct nnode *src;

	if (c->conflict_copy || wk_id_eq(c->link, WK_ID_NONE) ||
	    wk_id_eq(c->link, c->node) || !e->ino)
		return false;
	src = nindex_get(rec_index(ap->rec), c->link);
	return src && src->ino == e->ino;
}

/*
 * Does DIR show c already?  The index shows the state after *all* the
 * round's local ops, while a chunk's list leads to the state after its
 * own: an entry a later chunk moved, rewrote or replaced must not be
 * touched on the strength of an earlier one.  So a change is carried
 * out only when the index still shows the entry where and as the change
 * finds it, a side effect the local ops could not have made themselves:
 *  - REMOVE and the first step of a RENAME: the entry is still at the
 *    old path (a local remove or move took it away already);
 *  - MKDIR, SYMLINK: the index has no such entry anywhere, and this
 *    replica did not make it (its own mkdir or symlink showed it in DIR
 *    at once; absent now, a later local op removed it);
 *  - WRITE: the entry is at the path with older content than the change
 *    (a local put is this or a later version), a conflict copy the
 *    index does not have, or a file a local remove took the shown
 *    version of while another replica's version lives on, where the
 *    index has nothing;
 *  - SETATTR: only of a conflict copy the index has at the path (it
 *    shows its node's mode, which a local chmod of the file changes;
 *    other entries' attributes local ops set on disk themselves).
 */
static bool shown(struct apply *ap, const struct tree_changes *ch, size_t i)
{
	const struct tree_change *c = &ch->v[i];
	struct nnode *e;

	switch (c->kind) {
	case TREE_CH_REMOVE:
		return !entry_at(ap, c, c->path);
	case TREE_CH_RENAME:
		/* A move goes through staging in two steps: the second
		 * goes with the first. */
		if (in_staging(c->path)) {
			for (size_t j = 0; j < i; j++)
				if (ch->v[j].kind == TREE_CH_RENAME &&
				    strcmp(ch->v[j].new_path, c->path) == 0)
					return shown(ap, ch, j);
			return true;
		}
		return !still_at_old_path(ap, c);
	case TREE_CH_MKDIR:
	case TREE_CH_SYMLINK:
		return entry_of(ap, c) != NULL ||
		       c->node.actor == ap->own_actor;
	case TREE_CH_WRITE:
		e = entry_of(ap, c);
		/* A node the index lacks: a conflict copy the local ops
		 * made (DIR lacks it), or a file whose shown version a local
		 * remove took while another version lives on and takes the
		 * name (DIR lacks it, unless a later local op put something
		 * there since; its own conflict copy there goes first). */
		if (!e) {
			if (c->conflict_copy)
				return false;
			/* A version this replica made was in DIR when it was
			 * recorded; a local remove took the node since (in
			 * this chunk or a later one, whose REMOVE then finds
			 * nothing to do): writing it back would bring a
			 * removed file back to life. */
			if (c->version.actor == ap->own_actor)
				return true;
			e = entry_at_path(ap, c->path);
			return e && !(nnode_is_copy(e) &&
				      wk_id_eq(e->copy_of, c->node));
		}
		return c->conflict_copy || !entry_at(ap, c, c->path) ||
		       wk_id_cmp(e->content, c->version) >= 0 ||
		       linked_here(ap, c, e);
	case TREE_CH_SETATTR:
		/* A copy shows its node's mode: a local chmod of the
		 * file changes the copies beside it. */
		return !(c->conflict_copy && entry_at(ap, c, c->path));
	}
	return true;
}

static void change_release(struct tree_change *c)
{
	free(c->path);
	free(c->new_path);
	free(c->target);
	free(c->link_path);
}

/*
 * A conflict copy a chunk's ops retired, which a later local move of a
 * directory above it took elsewhere: the REMOVE names where the copy was,
 * the index where it is.  No local op removes a copy but an unlink of it
 * (which takes it out of the index), so while the index has it and the
 * list shows it nowhere else, it goes from where the index has it.
 */
static void follow_copy(struct apply *ap, struct tree_changes *ch, size_t i)
{
	struct tree_change *c = &ch->v[i];
	struct nnode *e;
	char p[4096];

	if (c->kind != TREE_CH_REMOVE || !c->conflict_copy)
		return;
	e = entry_of(ap, c);
	if (!e || !nnode_is_copy(e) || nindex_path(e, p, sizeof(p)) != 0 ||
	    strcmp(p, c->path) == 0)
		return;
	for (size_t j = 0; j < ch->n; j++)
		if (j != i && ch->v[j].conflict_copy &&
		    wk_id_eq(ch->v[j].version, c->version))
			return;
	free(c->path);
	c->path = xstrdup(p);
}

/* Is c the move of a conflict copy that the index has at another place
 * than c's old path (a later local op moved a directory above it)? */
static bool copy_astray(struct apply *ap, const struct tree_change *c)
{
	struct nnode *e;
	char p[4096];

	if (c->kind != TREE_CH_RENAME || !c->conflict_copy ||
	    in_staging(c->path))
		return false;
	e = entry_of(ap, c);
	return e && nnode_is_copy(e) && nindex_path(e, p, sizeof(p)) == 0 &&
	       strcmp(p, c->path) != 0;
}

struct astray {
	struct apply *ap;
	struct tree_changes ch;
};

/* A copy the view shows at path and the index at another place: a move
 * from there, when path's directory is where the index has it and path
 * is free. */
static int astray_visit(const char *path, const struct tree_entry *te,
			void *arg)
{
	struct astray *a = arg;
	struct nindex *ix = rec_index(a->ap->rec);
	const char *slash = strrchr(path, '/');
	struct nnode *e, *dir;
	struct tree_change *c;
	char p[4096];

	if (!te->conflict_copy || te->kind != WK_KIND_FILE)
		return 0;
	e = nindex_get(ix, te->version);
	if (!e || !nnode_is_copy(e) || nindex_path(e, p, sizeof(p)) != 0 ||
	    strcmp(p, path) == 0 || nindex_lookup(ix, path, strlen(path)))
		return 0;
	dir = slash ? nindex_lookup(ix, path, (size_t)(slash - path))
		    : nindex_root(ix);
	if (!dir || dir->kind != WK_KIND_DIR)
		return 0;
	c = tree_changes_add(&a->ch);
	c->kind = TREE_CH_RENAME;
	c->type = WK_KIND_FILE;
	c->path = xstrdup(p);
	c->new_path = xstrdup(path);
	c->node = te->node;
	c->version = te->version;
	c->conflict_copy = true;
	c->link = WK_ID_NONE;
	return 0;
}

/*
 * Conflict copies left where they were: a chunk's list moves a copy from
 * where it was when the chunk began, and a later local op of the round
 * (a directory moved above it) took it elsewhere, so the move was dropped
 * as done (shown()).  After the last chunk the view is final: each copy
 * the index has at another place than the view goes there.  A walk of
 * the whole view, so only in the rare round that dropped such a move.
 * Lock held.
 */
static void place_copies(struct apply *ap, fuse_ino_t **old, size_t *nold)
{
	struct astray a = {.ap = ap};

	ap->copies_astray = false;
	tree_changes_init(&a.ch);
	tree_foreach(ap->tree, astray_visit, &a);
	if (a.ch.n) {
		log_changes(ap, "copy placed:", &a.ch);
		carry_out_local(ap, &a.ch, old, nold);
	}
	tree_changes_release(&a.ch);
}

/* Keeps in ch only what DIR does not show yet; returns how many. */
static size_t drop_shown(struct apply *ap, struct tree_changes *ch)
{
	bool *keep = xcalloc(ch->n + 1, sizeof(*keep));
	size_t k = 0;

	for (size_t i = 0; i < ch->n; i++) {
		follow_copy(ap, ch, i);
		keep[i] = !shown(ap, ch, i);
		if (!keep[i] && copy_astray(ap, &ch->v[i]))
			ap->copies_astray = true;
	}
	for (size_t i = 0; i < ch->n; i++) {
		if (keep[i])
			ch->v[k++] = ch->v[i];
		else
			change_release(&ch->v[i]);
	}
	ch->n = k;
	free(keep);
	return k;
}

/* Create-like ops carry no mtime: show their creation time (the node
 * id's hlc), the same on every replica, rather than 1970. */
static void creation_mtimes(struct tree_changes *ch)
{
	for (size_t i = 0; i < ch->n; i++)
		if (ch->v[i].mtime_ns == 0 && ch->v[i].kind != TREE_CH_REMOVE &&
		    ch->v[i].kind != TREE_CH_RENAME)
			ch->v[i].mtime_ns =
				(int64_t)hlc_ms(ch->v[i].node.hlc) * 1000000;
}

/*
 * Carries out what local ops changed for other entries (drop_shown left
 * them in ch), as a batch of its own.  *old gets the FUSE inodes to
 * invalidate.  A batch that must wait (a file open for writing) is not
 * retried: the tree has the ops already.  Lock held.
 */
static void carry_out_local(struct apply *ap, struct tree_changes *ch,
			    fuse_ino_t **old, size_t *nold)
{
	carry_out(ap, "local changes", ch, old, nold);
}

/* carry_out_local() for any list of changes; what names it in the log. */
static void carry_out(struct apply *ap, const char *what,
		      struct tree_changes *ch, fuse_ino_t **old, size_t *nold)
{
	const struct tree_change *blocked;
	struct mat_result res = {0};
	struct replaced *rep;
	size_t nrep;
	int rc;

	batch_begin(ap);
	drop_unready(ap, ch);
	blocked = blocking_change(ap, ch);
	if (blocked) {
		batch_end(ap);
		wk_warn("%s: %zu changes wait (%s is open for writing); left "
			"as they are",
			what, ch->n, blocked->path);
		log_changes(ap, "left:", ch);
		return;
	}
	creation_mtimes(ch);
	log_changes(ap, "carry out:", ch);
	rep = xmalloc((ch->n + 1) * sizeof(*rep));
	nrep = hold_replaced(ap, ch, rep);
	rc = mat_apply(ap->mat, ch, 0, &res);
	ap->repair_due = true;
	*old = xrealloc(*old, (*nold + nrep + 1) * sizeof(**old));
	release_replaced(ap, rep, nrep, *old, nold);
	batch_end(ap);
	free(rep);
	if (rc || res.failed)
		ap->repair_disk = true;
	if (rc)
		wk_err("cannot carry out %s: %s", what, strerror(-rc));
	else if (res.failed)
		wk_warn("%s: %zu of %zu changes failed; first: %s: %s", what,
			res.failed, ch->n,
			res.first_path ? res.first_path : "?",
			strerror(-res.first_err));
	if (!rc)
		sync_index(ap, ch, NULL, 0);
	mat_result_release(&res);
}

/* view_repair_have_fn: is c's content in the store or a file here? */
static bool repair_have(void *arg, const struct tree_change *c)
{
	struct apply *ap = arg;
	int fd;

	if (c->size == 0 || mat_object_have(ap->mat, &c->hash))
		return true;
	fd = local_source(ap, c);
	if (fd < 0) {
		/* The relay has it if anyone sent it. */
		refetch_want(ap->refetch, &c->hash, c->size);
		return false;
	}
	close(fd);
	return true;
}

/*
 * Takes out of ch every WRITE whose content is neither in the store nor
 * in a file here, each said in the log; the batch then leaves those
 * entries as they are (a file keeps its last content, a new one is not
 * made yet) and the repair pass gives them once the content comes.
 * Lock held.
 */
static void drop_unready(struct apply *ap, struct tree_changes *ch)
{
	size_t kept = 0;

	for (size_t i = 0; i < ch->n; i++) {
		struct tree_change *c = &ch->v[i];

		if (c->kind != TREE_CH_WRITE || repair_have(ap, c)) {
			ch->v[kept++] = *c;
			continue;
		}
		wk_warn("not shown yet: %s%s: its content (%" PRIu64
			" bytes) is not here; the rest of the batch goes on",
			c->path, c->conflict_copy ? " (a conflict copy)" : "",
			c->size);
		tree_change_release(c);
	}
	/* The index sync may still take a dropped entry from the view (a
	 * full walk): the pass must ask the disk. */
	if (kept < ch->n)
		ap->repair_due = ap->repair_disk = true;
	ch->n = kept;
}

/*
 * The repair pass (view_repair.h): once nothing waits, every local op is
 * in the view and a batch changed DIR since the last pass, what DIR lacks
 * of the view is carried out as a batch of its own.  Finding anything is
 * a bug elsewhere, so it is said.  Lock held.
 */
static void repair_view(struct apply *ap, fuse_ino_t **old, size_t *nold)
{
	struct tree_changes ch;

	bool disk;

	pthread_mutex_lock(&ap->lock);
	if (ap->content_came)
		ap->repair_due = ap->repair_disk = true;
	ap->content_came = false;
	pthread_mutex_unlock(&ap->lock);
	if (!ap->repair_due || !ap->locals_all_fed || !rec_idle_l(ap->rec))
		return;
	disk = ap->repair_disk;
	ap->repair_due = ap->repair_disk = false;
	tree_changes_init(&ch);
	if (view_repair_collect(ap->tree, rec_index(ap->rec), ap->fs->rootfd,
				disk, repair_have, ap, &ch) > 0) {
		wk_warn("repair: DIR lacked %zu entries or modes that the "
			"view shows (first: %s); giving them back",
			ch.n, ch.v[0].path);
		log_changes(ap, "repair:", &ch);
		carry_out(ap, "repair", &ch, old, nold);
	}
	tree_changes_release(&ch);
}

static void check_view(struct apply *ap, int64_t seq);

static int apply_round(struct apply *ap)
{
	struct recorder *r = ap->rec;
	struct take t = {.ap = ap};
	struct plan_env env = {.arg = ap,
			       .content_here = plan_content_here,
			       .busy = plan_busy};
	const struct tree_change *blocked;
	struct tree_changes ch;
	struct mat_result res = {0};
	struct replaced *rep = NULL;
	struct wk_op *fed = NULL;
	fuse_ino_t *old = NULL, *lold = NULL;
	size_t nrep = 0, nold = 0, nfed = 0, nlold = 0;
	struct timespec t0, t1;
	double mat_ms, index_ms;
	int rc;

	tree_changes_init(&ch);
	/* No local name changes while the round runs (fs.h: nslock). */
	pthread_rwlock_wrlock(&ap->fs->nslock);
	rec_lock(r);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rec_flush_l(r, false);
	/* The flush lets go of the lock while it waits: ops queued then
	 * may still be on their way to the oplog, so not in the tree. */
	ap->locals_all_fed = rec_idle_l(r);
	rc = feed_db(ap,
		     ap->local_seq > ap->applied_seq ? ap->local_seq
						     : ap->applied_seq,
		     true, &lold, &nlold);
	if (rc)
		goto out_unlock;
	/* What was held before is planned again with what is new: content
	 * may have come, a file been closed, a later op superseded it. */
	t.last_seq = ap->applied_seq;
	t.v = xmalloc((ap->nheld + ROUND_MAX + 1) * sizeof(*t.v));
	if (ap->nheld)
		memcpy(t.v, ap->held, ap->nheld * sizeof(*t.v));
	t.n = t.nheld = ap->nheld;
	rc = db_ops_foreach(ap->db, ap->applied_seq, 0, take_row, &t);
	if (rc < 0)
		goto out_unlock;
	rc = 0;
	env.tree = ap->tree;
	plan_decide(t.v, t.n, &env);
	ap->tree_moved = false;
	fed = xmalloc((t.n + 1) * sizeof(*fed));
	for (size_t i = 0; i < t.n; i++)
		if (t.v[i].hold == PLAN_FEED)
			fed[nfed++] = t.v[i].op;
	if (nfed == 0) {
		update_held(ap, &t);
		set_applied(ap, t.last_seq);
		drop_objects(ap); /* ones an earlier round had to leave */
		check_view(ap, t.last_seq);
		repair_view(ap, &lold, &nlold);
		goto out_unlock;
	}
	log_ops(ap, "remote op:", fed, nfed);
	tree_apply(ap->tree, fed, nfed, &ch);
	log_changes(ap, "remote change:", &ch);
	ap->tree_moved = true;
	batch_begin(ap);
	/* A content that is nowhere here (a version this replica wrote and
	 * wrote over since, shown as a conflict copy) must not stop the
	 * batch for good: the rest goes on, and the repair pass writes the
	 * entry once the content is at hand. */
	drop_unready(ap, &ch);
	blocked = blocking_change(ap, &ch);
	if (blocked) {
		/* Opened for writing since: the engine cannot take ops
		 * back, so start again from the oplog. */
		batch_end(ap);
		wk_info("deferring %zu remote ops: %s is open for writing",
			nfed, blocked->path);
		set_waiting(ap, true);
		build_tree(ap);
		t.more = false;
		goto out_unlock;
	}
	creation_mtimes(&ch);
	link_sources(ap, &ch);
	rep = xmalloc((ch.n + 1) * sizeof(*rep));
	nrep = hold_replaced(ap, &ch, rep);
	fault_pause("apply.before_mat");
	/* Tagged with the applied_seq it brings: if we die before that is
	 * committed, the next mount's mat_recover() says so (apply_open). */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rc = mat_apply(ap->mat, &ch, (uint64_t)t.last_seq, &res);
	ap->repair_due = true;
	mat_ms = ms_since(&t1);
	old = xmalloc((nrep + 1) * sizeof(*old));
	release_replaced(ap, rep, nrep, old, &nold);
	batch_end(ap);
	if (rc) {
		wk_err("cannot apply remote changes: %s", strerror(-rc));
		build_tree(ap);
		t.more = false;
		goto out_unlock;
	}
	fault_point("apply.before_commit");
	if (res.failed)
		ap->repair_disk = true;
	if (res.failed)
		wk_warn("%zu of %zu remote changes failed; first: %s: %s",
			res.failed, ch.n, res.first_path ? res.first_path : "?",
			strerror(-res.first_err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sync_index(ap, &ch, fed, nfed);
	index_ms = ms_since(&t1);
	/* The held rows go in the transaction that moves applied_seq past
	 * them: a crash leaves both or neither. */
	update_held(ap, &t);
	set_applied(ap, t.last_seq);
	/* Durable before the materializer forgets the batch. */
	rec_flush_l(r, true);
	fault_point("apply.after_commit");
	forget_batches(ap);
	mat_gc_note(&ap->gc, fed, nfed);
	drop_objects(ap);
	wk_debug("apply: %zu ops, %zu changes in %.2f ms (materializer %.2f,"
		 " index %.2f)",
		 nfed, ch.n, ms_since(&t0), mat_ms, index_ms);
	check_view(ap, t.last_seq);
	rec_unlock(r);
	pthread_rwlock_unlock(&ap->fs->nslock);
	invalidate(ap, old, nold);
	goto out;

out_unlock:
	rec_unlock(r);
	pthread_rwlock_unlock(&ap->fs->nslock);
out:
	/* What local ops changed for other entries (and nothing else, on
	 * the paths that did not get this far). */
	invalidate(ap, lold, nlold);
	notes_release(ap);
	mat_result_release(&res);
	tree_changes_release(&ch);
	free(lold);
	free(t.v);
	free(fed);
	free(rep);
	free(old);
	if (rc < 0)
		return rc;
	return t.more ? 1 : 0;
}

/* With WKFS_CHECK_VIEW: the changes a batch carries out, one line each. */
static void log_changes(struct apply *ap, const char *what,
			const struct tree_changes *ch)
{
	static const char kinds[] = "?-RMWLS";
	char id[WK_ID_STRLEN];

	if (!ap->check_view)
		return;
	for (size_t i = 0; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];

		wk_warn("%s %c %s%s%s node %s%s", what,
			kinds[c->kind < 7 ? c->kind : 0], c->path,
			c->new_path ? " -> " : "",
			c->new_path ? c->new_path : "", wk_id_str(c->node, id),
			c->conflict_copy ? " (copy)" : "");
	}
}

static void log_ops(struct apply *ap, const char *what,
		    const struct wk_op *ops, size_t n)
{
	char id[WK_ID_STRLEN], p[WK_ID_STRLEN];

	if (!ap->check_view)
		return;
	for (size_t i = 0; i < n; i++)
		wk_warn("%s %s node %s parent %s %s%s%s", what,
			wk_op_kind_name(ops[i].kind),
			wk_id_str(ops[i].node, id),
			wk_id_str(ops[i].kind == WK_OP_MOVE ? ops[i].new_parent
							    : ops[i].parent,
				  p),
			ops[i].name, ops[i].kind == WK_OP_MOVE ? " -> " : "",
			ops[i].kind == WK_OP_MOVE ? ops[i].new_name : "");
}

/* ---- checking (tests) ------------------------------------------------ */

/*
 * With WKFS_CHECK_VIEW set (a diagnostic for stress tests), each round
 * ends by comparing the view of every op fed with the index (what DIR
 * shows): every view entry must be in the index at its path, as the same
 * node (a merged directory: one of its members) or conflict copy, and the
 * index must hold nothing else.  The first differences are logged with
 * the round's last seq; nothing is changed.  Lock held.
 */
struct view_check {
	struct apply *ap;
	size_t bad;
	int64_t seq;
};

static void view_bad(struct view_check *vc, const char *path, const char *why)
{
	if (vc->bad++ < 8)
		wk_warn("check-view (seq %lld): %s: %s", (long long)vc->seq,
			path, why);
}

static bool is_member(struct apply *ap, const char *path, struct wk_id id)
{
	struct wk_id ids[16];
	int n = tree_dir_members(ap->tree, path, ids, 16);

	for (int i = 0; i < n && i < 16; i++)
		if (wk_id_eq(ids[i], id))
			return true;
	return false;
}

static int view_visit(const char *path, const struct tree_entry *te, void *arg)
{
	struct view_check *vc = arg;
	struct nnode *e = entry_at_path(vc->ap, path);

	if (!*path)
		return 0;
	if (!e)
		view_bad(vc, path, "in the view, not in the index");
	else if (e->kind != te->kind)
		view_bad(vc, path, "another kind in the index");
	else if (te->conflict_copy ? !wk_id_eq(e->id, te->version) ||
					     !wk_id_eq(e->copy_of, te->node)
		 : te->kind == WK_KIND_DIR ? !is_member(vc->ap, path, e->id)
					   : !wk_id_eq(e->id, te->node))
		view_bad(vc, path, "another node in the index");
	else if (te->kind == WK_KIND_FILE && !te->conflict_copy &&
		 !wk_id_eq(e->content, te->version))
		view_bad(vc, path, "other content in the index");
	return 0;
}

static void index_extra(struct view_check *vc, struct nnode *dir,
			char *path, size_t len)
{
	struct tree_entry te;

	for (struct nnode *c = dir->first_child; c; c = c->next_sibling) {
		size_t l = strlen(c->name);

		if (len + l + 2 > 4096)
			continue;
		if (len)
			path[len] = '/';
		memcpy(path + len + !!len, c->name, l + 1);
		if (tree_lookup(vc->ap->tree, path, &te) != 0)
			view_bad(vc, path, "in the index, not in the view");
		else if (c->kind == WK_KIND_DIR)
			index_extra(vc, c, path, len + !!len + l);
		path[len] = '\0';
	}
}

static void check_view(struct apply *ap, int64_t seq)
{
	struct view_check vc = {.ap = ap, .seq = seq};
	char path[4096] = "";

	/* Local ops queued but not committed are in the index and not
	 * yet in the view: compare only when there are none. */
	if (!ap->check_view || !rec_idle_l(ap->rec))
		return;
	tree_foreach(ap->tree, view_visit, &vc);
	index_extra(&vc, nindex_root(rec_index(ap->rec)), path, 0);
	if (vc.bad)
		wk_warn("check-view (seq %lld): %zu differences", (long long)seq,
			vc.bad);
}

/* ---- the thread ------------------------------------------------------- */

static void *apply_main(void *arg)
{
	struct apply *ap = arg;

	pthread_mutex_lock(&ap->lock);
	while (!ap->stop) {
		uint64_t round = ap->requested;
		int rc, i = 0;

		ap->kicked = false;
		pthread_mutex_unlock(&ap->lock);
		do
			rc = apply_round(ap);
		while (rc == 1 && ++i < ROUNDS_PER_WAKE);
		if (rc < 0)
			wk_err("applying remote ops: %s", strerror(-rc));
		pthread_mutex_lock(&ap->lock);
		ap->finished = round;
		pthread_cond_broadcast(&ap->done);
		if (!ap->stop && !ap->kicked && ap->requested == round) {
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += PERIOD_S;
			pthread_cond_timedwait(&ap->wake, &ap->lock, &until);
		}
	}
	pthread_mutex_unlock(&ap->lock);
	return NULL;
}

int apply_start(struct apply *ap)
{
	int rc;

	ap->inodes = true;
	/* A crash may have left DIR short of the view (the scan made the
	 * index what the disk holds). */
	ap->repair_due = true;
	rc = -pthread_create(&ap->thread, NULL, apply_main, ap);

	ap->running = rc == 0;
	return rc;
}

void apply_set_refetch(struct apply *ap, struct refetch *rf)
{
	ap->refetch = rf;
}

void apply_content_came(void *arg)
{
	struct apply *ap = arg;

	pthread_mutex_lock(&ap->lock);
	ap->content_came = true;
	pthread_mutex_unlock(&ap->lock);
	apply_kick(ap);
}

void apply_kick(struct apply *ap)
{
	if (!ap)
		return;
	pthread_mutex_lock(&ap->lock);
	ap->kicked = true;
	pthread_cond_signal(&ap->wake);
	pthread_mutex_unlock(&ap->lock);
}

void apply_kick_if_waiting(struct apply *ap)
{
	bool waiting;

	if (!ap)
		return;
	/* Every close of a written file ends here: a round flushes the
	 * recorder's queue, which would turn group commit into a commit per
	 * file, so wake the thread only when something waits for a close. */
	pthread_mutex_lock(&ap->lock);
	waiting = ap->waiting;
	pthread_mutex_unlock(&ap->lock);
	if (waiting)
		apply_kick(ap);
}

int apply_request(struct apply *ap, int run, struct apply_counts *c)
{
	int rc;

	if (run && ap->running) {
		pthread_mutex_lock(&ap->lock);
		uint64_t want = ++ap->requested;

		pthread_cond_signal(&ap->wake);
		while (ap->finished < want && !ap->stop)
			pthread_cond_wait(&ap->done, &ap->lock);
		pthread_mutex_unlock(&ap->lock);
	}
	/* The read connection is the apply thread's: count through the
	 * recorder's lock, which that thread holds while it uses it. */
	rec_lock(ap->rec);
	c->applied = ap->applied_seq;
	c->held = (int64_t)ap->nheld;
	c->attention = 0;
	for (size_t i = 0; i < ap->nheld; i++)
		c->attention += plan_hold_needs_attention(ap->held[i].hold);
	rc = db_ops_remote_after(ap->db, ap->applied_seq, &c->pending);
	rec_unlock(ap->rec);
	return rc;
}

void apply_stop(struct apply *ap)
{
	if (!ap || !ap->running)
		return;
	pthread_mutex_lock(&ap->lock);
	ap->stop = true;
	pthread_cond_broadcast(&ap->wake);
	pthread_cond_broadcast(&ap->done);
	pthread_mutex_unlock(&ap->lock);
	pthread_join(ap->thread, NULL);
	ap->running = false;
}

/* ---- open and close --------------------------------------------------- */

static int load_held(void *arg, const struct db_held *h)
{
	struct apply *ap = arg;
	struct plan_item *it;

	ap->held = xrealloc(ap->held, (ap->nheld + 1) * sizeof(*ap->held));
	it = &ap->held[ap->nheld++];
	it->op = h->row.op;
	wk_op_mask_remote(&it->op, ap->world_writable);
	it->seq = h->row.seq;
	it->hold = (enum plan_hold)h->reason;
	return 0;
}

int apply_open(struct wkfs *fs, const struct wk_config *cfg, struct apply **out,
	       char *err, size_t errlen)
{
	struct apply *ap = xcalloc(1, sizeof(*ap));
	struct mat_result res = {0};
	uint64_t seq = 0, recovered;
	int rc;

	ap->fs = fs;
	ap->rec = fs->rec;
	pthread_mutex_init(&ap->lock, NULL);
	pthread_cond_init(&ap->wake, NULL);
	pthread_cond_init(&ap->done, NULL);
	pthread_cond_init(&ap->batch_cv, NULL);
	mat_gc_init(&ap->gc);
	ap->check_index = getenv("WKFS_CHECK_INDEX") != NULL;
	ap->check_view = getenv("WKFS_CHECK_VIEW") != NULL;
	/* Remote ops enter the tree with their modes masked (feed_row,
	 * take_row, load_held): the oplog keeps what they said. */
	ap->world_writable = cfg->world_writable;

	rc = mat_open(fs->rootfd, &ap->mat);
	if (rc) {
		snprintf(err, errlen,
			 "cannot open .wkfs/tmp and .wkfs/objects:"
			 " %s",
			 strerror(-rc));
		goto out_free;
	}
	mat_set_source(ap->mat, local_source, ap);
	mat_set_notify(ap->mat, note_change, ap);
	rc = mat_recover(ap->mat, &res);
	if (res.done || res.failed)
		wk_info("finished an interrupted batch of remote changes: %zu"
			" done, %zu failed",
			res.done, res.failed);
	recovered = res.tag;
	mat_result_release(&res);
	if (rc && rc != -EBADMSG) {
		snprintf(err, errlen,
			 "cannot finish interrupted remote"
			 " changes: %s",
			 strerror(-rc));
		goto out_free;
	}
	notes_release(ap); /* nothing the kernel has seen yet */
	rc = db_open_at(fs->rootfd, 0, &ap->db, err, errlen);
	if (rc)
		goto out_free;
	rec_lock(fs->rec);
	ap->own_actor = rec_actor(fs->rec);
	rec_unlock(fs->rec);
	if (db_meta_get_u64(ap->db, APPLY_SEQ_KEY, &seq) == 0)
		ap->applied_seq = (int64_t)seq;
	rec_lock(fs->rec);
	/* A batch DIR shows whose applied_seq never reached the database
	 * (a crash in between): record it now, or the scan would take its
	 * effects for local changes and the ops would be applied again. */
	if ((int64_t)recovered > ap->applied_seq) {
		set_applied(ap, (int64_t)recovered);
		rec_flush_l(fs->rec, true);
	}
	forget_batches(ap);
	rc = db_held_foreach(ap->db, load_held, ap);
	if (!rc)
		rc = build_tree(ap);
	if (!rc)
		sync_index(ap, NULL, NULL, 0);
	if (!rc && mat_gc_sweep(ap->mat, ap->db, ap->applied_seq) != 0)
		wk_warn("cannot read the oplog to drop objects: %s",
			db_errmsg(ap->db));
	rec_unlock(fs->rec);
	if (rc) {
		snprintf(err, errlen, "cannot read the oplog: %s",
			 db_errmsg(ap->db));
		goto out_free;
	}
	*out = ap;
	return 0;

out_free:
	apply_close(ap);
	return rc;
}

void apply_close(struct apply *ap)
{
	if (!ap)
		return;
	apply_stop(ap);
	notes_release(ap);
	free(ap->notes);
	if (ap->tree)
		tree_free(ap->tree);
	mat_gc_release(&ap->gc);
	free(ap->held);
	if (ap->mat)
		mat_close(ap->mat);
	db_close(ap->db);
	pthread_cond_destroy(&ap->wake);
	pthread_cond_destroy(&ap->done);
	pthread_cond_destroy(&ap->batch_cv);
	pthread_mutex_destroy(&ap->lock);
	free(ap);
}

int apply_dir_members_l(struct apply *ap, struct nnode *dir, struct wk_id *ids,
			size_t max)
{
	char *path;
	int n;

	if (!ap || !ap->tree)
		return -ENOENT;
	/* Where the tree shows dir: local ops since the last round (a
	 * rename of a parent, say) have not reached the tree yet, so the
	 * index's path may not be the tree's. */
	path = tree_node_path(ap->tree, dir->id);
	if (!path)
		return -ENOENT;
	n = tree_dir_members(ap->tree, path, ids, max);
	free(path);
	return n;
}
