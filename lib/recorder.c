/*
 * recorder.c - ops stamped in memory, committed in batches by one thread.
 *
 * What a crash costs: ops still in the queue are lost, but the change they
 * describe is in the backing directory, and the scan at the next mount
 * records it again (see scan.c).  So the queue trades nothing the user saved
 * for a create that does not wait for SQLite.
 */
#include "recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beneath.h"
#include "content.h"
#include "db.h"
#include "fault.h"
#include "hlc.h"
#include "ignore.h"
#include "wlog.h"
#include "xalloc.h"

enum qkind {
	Q_OP,	/* an op and the row of its node */
	Q_NODE, /* a node row only (index changed by remote ops) */
	Q_META, /* a meta value */
	Q_HELD, /* a held remote op's row (value: reason, 0 to drop it) */
};

struct qitem {
	enum qkind what;
	struct wk_op op; /* Q_NODE: op.node names the row */
	int fd;		 /* put: content still to hash, -1 otherwise */
	char key[32];	 /* Q_META */
	uint64_t value;	 /* Q_META; Q_HELD: the reason */
	int64_t seq;	 /* Q_HELD */
	char *path;	 /* Q_HELD, may be NULL */
	struct qitem *next;
};

struct recorder {
	int dirfd;
	struct wkdb *db; /* the writer thread's alone once it runs */

	pthread_mutex_t lock;
	/* Under lock: */
	struct nindex *ix;
	struct hlc clock;
	uint64_t actor;
	char device[WK_DEVICE_MAX + 1]; /* stamped on every op; set at open */
	struct ignore *ig;
	struct qitem *head, *tail;
	uint64_t queued;       /* ops queued since open */
	uint64_t committed;    /* ops committed since open */
	uint64_t durable_upto; /* ops fsynced since open */
	bool want_durable;
	unsigned waiters; /* threads in rec_flush() */
	bool stop;
	pthread_cond_t work; /* signals the writer */
	pthread_cond_t done; /* signals flush waiters */

	pthread_t writer;
	bool writer_running;
};

#define IGNORE_FILE ".wkfsignore"

/* Group commit (see gather()): how long ops may wait, and how many. */
#define GATHER_MS  20
#define GATHER_MAX 4096
/* Queued ops past which rec_throttle_l() waits for the writer. */
#define THROTTLE_OPS (4 * GATHER_MAX)

void rec_lock(struct recorder *r)
{
	pthread_mutex_lock(&r->lock);
}

void rec_unlock(struct recorder *r)
{
	pthread_mutex_unlock(&r->lock);
}

struct nindex *rec_index(struct recorder *r)
{
	return r->ix;
}

uint64_t rec_actor(struct recorder *r)
{
	return r->actor;
}

uint64_t rec_recorded(struct recorder *r)
{
	uint64_t n;

	rec_lock(r);
	n = r->queued;
	rec_unlock(r);
	return n;
}

/* ---- loading ---------------------------------------------------------- */

/*
 * Rows come in the table's order, not the tree's: a directory rewritten
 * after its children were recorded comes after them.  Such children wait
 * (few do); every other row goes into the index as it is read, since a
 * copy of the whole table would cost more memory than the index itself.
 */
struct load_ctx {
	struct nindex *ix;
	struct db_node **pending; /* rows read before their parent */
	size_t n_pending, cap_pending;
};

static void fill_nnode(struct nnode *n, const struct db_node *d)
{
	n->mode = d->mode;
	n->size = d->size;
	n->mtime_ns = d->mtime_ns;
	n->has_hash = d->has_hash;
	n->hash = d->hash;
	n->target = d->target ? xstrdup(d->target) : NULL;
	n->version = d->version;
	n->content = d->content;
	n->ino = d->ino;
}

static void attach_row(struct nindex *ix, struct nnode *parent,
		       const struct db_node *d)
{
	struct nnode *n;

	if (nindex_add(ix, d->id, parent, d->name, d->kind, &n) == 0)
		fill_nnode(n, d);
	else
		wk_warn("dropping duplicate node %s", d->name);
}

static int load_row(void *arg, const struct db_node *d)
{
	struct load_ctx *c = arg;
	struct nnode *parent;
	struct db_node *p;

	if (d->kind == 0)
		return 0;
	parent = nindex_get(c->ix, d->parent);
	if (parent) {
		attach_row(c->ix, parent, d);
		return 0;
	}
	if (c->n_pending == c->cap_pending) {
		c->cap_pending = c->cap_pending ? 2 * c->cap_pending : 256;
		c->pending = xrealloc(c->pending,
				      c->cap_pending * sizeof(*c->pending));
	}
	p = xmalloc(sizeof(*p));
	*p = *d;
	p->target = d->target ? xstrdup(d->target) : NULL;
	c->pending[c->n_pending++] = p;
	return 0;
}

/* Places the rows that waited, in passes until none finds its parent; what
 * is left are orphans of a damaged table.  Returns how many. */
static size_t place_pending(struct load_ctx *c)
{
	size_t left = c->n_pending;

	while (left) {
		size_t placed = 0;

		for (size_t i = 0; i < c->n_pending; i++) {
			struct db_node *d = c->pending[i];
			struct nnode *parent;

			if (!d)
				continue;
			parent = nindex_get(c->ix, d->parent);
			if (!parent)
				continue;
			attach_row(c->ix, parent, d);
			db_node_release(d);
			free(d);
			c->pending[i] = NULL;
			placed++;
			left--;
		}
		if (!placed)
			break;
	}
	return left;
}

int rec_load_tree(struct wkdb *db, struct nindex *ix, char *err, size_t errlen)
{
	struct load_ctx c = {.ix = ix};
	size_t left;
	int rc;

	rc = db_nodes_foreach(db, load_row, &c);
	if (rc) {
		snprintf(err, errlen, "cannot read the nodes table: %s",
			 db_errmsg(db));
		goto out;
	}
	left = place_pending(&c);
	if (left)
		wk_warn("%zu nodes of the database have no parent; the scan"
			" will record what is on disk instead",
			left);
out:
	for (size_t i = 0; i < c.n_pending; i++) {
		if (c.pending[i])
			db_node_release(c.pending[i]);
		free(c.pending[i]);
	}
	free(c.pending);
	return rc;
}

/* Reads the .wkfsignore in dir (a tracked directory) into the rules. */
void rec_reload_ignore_l(struct recorder *r, const char *path)
{
	char file[4096 + 16];
	char *buf = NULL;
	struct stat st;
	int fd = -1;
	ssize_t n;

	snprintf(file, sizeof(file), "%s%s%s", path, path[0] ? "/" : "",
		 IGNORE_FILE);
	fd = beneath_open(r->dirfd, file, O_RDONLY, NULL);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > (1 << 20)) {
		ignore_remove_file(r->ig, path);
		goto out;
	}
	buf = xmalloc(st.st_size + 1);
	n = pread(fd, buf, st.st_size, 0);
	if (n < 0)
		ignore_remove_file(r->ig, path);
	else
		ignore_set_file(r->ig, path, buf, n);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
}

static void reload_ignore_of(struct recorder *r, struct nnode *dir)
{
	char path[4096];

	if (nindex_path(dir, path, sizeof(path)) == 0)
		rec_reload_ignore_l(r, path);
}

bool rec_ignored_path_l(struct recorder *r, const char *path, bool is_dir)
{
	if (strcmp(path, ".wkfs") == 0)
		return true;
	return ignore_match_leaf(r->ig, path, is_dir);
}

static void load_ignore_files(struct recorder *r, struct nnode *dir)
{
	struct nnode *c;

	if (nindex_child(r->ix, dir, IGNORE_FILE))
		reload_ignore_of(r, dir);
	for (c = dir->first_child; c; c = c->next_sibling)
		if (c->kind == WK_KIND_DIR)
			load_ignore_files(r, c);
}

static uint64_t random_actor(void)
{
	uint64_t a = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &a, sizeof(a)) != sizeof(a))
			a = 0;
		close(fd);
	}
	/* 0 is the root's actor; never use it. */
	return a ? a : (uint64_t)getpid() << 20 | 1;
}

void rec_device_name(const struct wk_config *cfg, char out[WK_DEVICE_MAX + 1])
{
	char host[256];

	if (cfg->device_name && wk_device_sanitize(out, cfg->device_name))
		return;
	/* The short host name: "desk" of "desk.example.org". */
	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	wk_device_sanitize(out, host);
}

static void *writer_main(void *arg);

int rec_open(int dirfd, const struct wk_config *cfg, bool create,
	     struct recorder **out, char *err, size_t errlen)
{
	struct recorder *r = xcalloc(1, sizeof(*r));
	uint64_t last = 0;
	int rc;

	r->dirfd = dirfd;
	rec_device_name(cfg, r->device);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->done, NULL);
	r->ix = nindex_new();
	r->ig = ignore_new();
	for (size_t i = 0; i < cfg->n_ignore; i++)
		ignore_add_pattern(r->ig, "", cfg->ignore[i]);

	rc = db_open_at(dirfd, create ? DB_CREATE : 0, &r->db, err, errlen);
	if (rc)
		goto out_free;
	rc = db_meta_get_u64(r->db, "actor", &r->actor);
	if (rc == -ENOENT && create) {
		r->actor = random_actor();
		rc = db_meta_set_u64(r->db, "actor", r->actor);
	}
	if (rc) {
		snprintf(err, errlen,
			 "the database has no actor id (%s):"
			 " was it made by 'wkfs init'?",
			 strerror(-rc));
		goto out_free;
	}
	if (db_meta_get_u64(r->db, "hlc", &last) == -ENOENT)
		last = 0;
	hlc_init(&r->clock, last);
	rc = rec_load_tree(r->db, r->ix, err, errlen);
	if (rc)
		goto out_free;
	load_ignore_files(r, nindex_root(r->ix));

	rc = -pthread_create(&r->writer, NULL, writer_main, r);
	if (rc) {
		snprintf(err, errlen, "cannot start the writer thread");
		goto out_free;
	}
	r->writer_running = true;
	*out = r;
	return 0;

out_free:
	db_close(r->db);
	nindex_free(r->ix);
	ignore_free(r->ig);
	free(r);
	return rc;
}

void rec_close(struct recorder *r)
{
	if (!r)
		return;
	if (r->writer_running) {
		rec_flush(r, true);
		rec_lock(r);
		r->stop = true;
		pthread_cond_signal(&r->work);
		rec_unlock(r);
		pthread_join(r->writer, NULL);
	}
	db_close(r->db);
	nindex_free(r->ix);
	ignore_free(r->ig);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->done);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- recording -------------------------------------------------------- */

bool rec_ignored_l(struct recorder *r, struct nnode *parent, const char *name,
		   bool is_dir)
{
	char path[4096];
	size_t len;

	if (!parent->parent && strcmp(name, ".wkfs") == 0)
		return true;
	if (nindex_path(parent, path, sizeof(path)))
		return false;
	len = strlen(path);
	if (len + strlen(name) + 2 > sizeof(path))
		return false;
	snprintf(path + len, sizeof(path) - len, "%s%s", len ? "/" : "", name);
	/* The directories above count too: one a rule matches may still be
	 * tracked, and new names in it are not. */
	return ignore_match(r->ig, path, is_dir);
}

static struct qitem *new_op(struct recorder *r, enum wk_op_kind kind,
			    struct nnode *n)
{
	struct qitem *q = xcalloc(1, sizeof(*q));

	q->fd = -1;
	q->op.id.hlc = hlc_now(&r->clock);
	q->op.id.actor = r->actor;
	memcpy(q->op.device, r->device, sizeof(q->op.device));
	q->op.kind = kind;
	q->op.node = n ? n->id : WK_ID_NONE;
	q->op.base = WK_ID_NONE;
	q->op.link = WK_ID_NONE;
	return q;
}

static void enqueue(struct recorder *r, struct qitem *q)
{
	if (r->tail)
		r->tail->next = q;
	else
		r->head = q;
	r->tail = q;
	r->queued++;
	/* Wake the writer for the first op; it gathers the rest. */
	if (r->queued - r->committed == 1 ||
	    r->queued - r->committed >= GATHER_MAX)
		pthread_cond_signal(&r->work);
}

static void set_place(struct wk_op *op, struct nnode *parent, const char *name)
{
	op->parent = parent->id;
	snprintf(op->name, sizeof(op->name), "%s", name);
}

static bool is_ignore_file(struct nnode *n)
{
	return n->kind == WK_KIND_FILE && strcmp(n->name, IGNORE_FILE) == 0;
}

int rec_create_l(struct recorder *r, struct nnode *parent, const char *name,
		 enum wk_kind kind, uint32_t mode, uint64_t ino,
		 const char *target, struct nnode **out)
{
	static const enum wk_op_kind op_of[] = {
		[WK_KIND_FILE] = WK_OP_CREATE,
		[WK_KIND_DIR] = WK_OP_MKDIR,
		[WK_KIND_SYMLINK] = WK_OP_SYMLINK,
	};
	struct qitem *q;
	struct nnode *n;
	uint64_t hlc;
	int rc;

	if (!wk_name_valid(name))
		return -EINVAL;
	if (target && strlen(target) > WK_TARGET_MAX)
		return -ENAMETOOLONG;
	q = new_op(r, op_of[kind], NULL);
	hlc = q->op.id.hlc;
	rc = nindex_add(r->ix, q->op.id, parent, name, kind, &n);
	if (rc) {
		free(q);
		return rc;
	}
	(void)hlc;
	n->mode = mode & 07777;
	n->ino = ino;
	if (target) {
		n->target = xstrdup(target);
		n->size = strlen(target);
		snprintf(q->op.target, sizeof(q->op.target), "%s", target);
	}
	if (kind == WK_KIND_FILE) {
		content_hash_buf("", 0, &n->hash);
		n->has_hash = true;
	}
	q->op.node = n->id;
	q->op.mode = n->mode;
	set_place(&q->op, parent, name);
	enqueue(r, q);
	if (out)
		*out = n;
	return 0;
}

int rec_put_l(struct recorder *r, struct nnode *n, int fd,
	      const struct wk_hash *hash, uint64_t size, int64_t mtime_ns)
{
	return rec_put_link_l(r, n, fd, hash, size, mtime_ns, NULL);
}

int rec_put_link_l(struct recorder *r, struct nnode *n, int fd,
		   const struct wk_hash *hash, uint64_t size, int64_t mtime_ns,
		   const struct nnode *link)
{
	struct qitem *q;

	if (n->kind != WK_KIND_FILE || nnode_is_copy(n)) {
		if (fd >= 0)
			close(fd);
		return nnode_is_copy(n) ? -EPERM : -EISDIR;
	}
	q = new_op(r, WK_OP_PUT, n);
	set_place(&q->op, n->parent, n->name);
	q->op.base = n->content;
	if (link && link != n && link->kind == WK_KIND_FILE &&
	    !nnode_is_copy(link))
		q->op.link = link->id;
	q->fd = fd;
	if (fd < 0) {
		q->op.hash = *hash;
		q->op.size = size;
		q->op.mtime_ns = mtime_ns;
		n->hash = *hash;
		n->has_hash = true;
		n->size = size;
		n->mtime_ns = mtime_ns;
	}
	n->content = n->version = q->op.id;
	enqueue(r, q);
	if (is_ignore_file(n))
		reload_ignore_of(r, n->parent);
	return 0;
}

int rec_move_l(struct recorder *r, struct nnode *n, struct nnode *parent,
	       const char *name)
{
	struct nnode *old_parent = n->parent;
	struct qitem *q;
	int rc;

	if (nnode_is_copy(n))
		return -EPERM;
	if (!wk_name_valid(name))
		return -EINVAL;
	q = new_op(r, WK_OP_MOVE, n);
	set_place(&q->op, n->parent, n->name);
	q->op.new_parent = parent->id;
	snprintf(q->op.new_name, sizeof(q->op.new_name), "%s", name);
	rc = nindex_move(r->ix, n, parent, name);
	if (rc) {
		free(q);
		return rc;
	}
	n->version = q->op.id;
	enqueue(r, q);
	if (is_ignore_file(n) || strcmp(q->op.name, IGNORE_FILE) == 0) {
		reload_ignore_of(r, old_parent);
		reload_ignore_of(r, parent);
	}
	return 0;
}

int rec_remove_l(struct recorder *r, struct nnode *n)
{
	struct nnode *parent = n->parent;
	bool ign = is_ignore_file(n);
	struct qitem *q;
	int rc;

	while (n->first_child) {
		rc = rec_remove_l(r, n->first_child);
		if (rc)
			return rc;
	}
	q = new_op(r, WK_OP_REMOVE, n);
	set_place(&q->op, n->parent, n->name);
	/* What the remove saw: a later merge keeps edits it did not see. */
	q->op.base = n->content;
	if (nnode_is_copy(n)) {
		/* Only the losing version goes; the file keeps its name. */
		q->op.node = n->copy_of;
		q->op.base = n->id;
	}
	rc = nindex_remove(r->ix, n);
	if (rc) {
		free(q);
		return rc;
	}
	enqueue(r, q);
	if (ign)
		reload_ignore_of(r, parent);
	return 0;
}

void rec_forget_l(struct recorder *r, struct nnode *n)
{
	struct wk_id id = n->id;

	while (n->first_child)
		rec_forget_l(r, n->first_child);
	if (nindex_remove(r->ix, n) == 0 && !wk_id_eq(id, WK_ID_ROOT))
		rec_node_sync_l(r, id);
}

int rec_move_member_l(struct recorder *r, struct wk_id id, struct nnode *from,
		      const char *from_name, struct nnode *parent,
		      const char *name)
{
	struct qitem *q;

	if (!wk_name_valid(name))
		return -EINVAL;
	q = new_op(r, WK_OP_MOVE, NULL);
	q->op.node = id;
	set_place(&q->op, from, from_name);
	q->op.new_parent = parent->id;
	snprintf(q->op.new_name, sizeof(q->op.new_name), "%s", name);
	enqueue(r, q);
	return 0;
}

int rec_remove_member_l(struct recorder *r, struct wk_id id, struct nnode *from,
			const char *from_name)
{
	struct qitem *q = new_op(r, WK_OP_REMOVE, NULL);

	/* base none: retires the directory's own (only) version */
	q->op.node = id;
	set_place(&q->op, from, from_name);
	enqueue(r, q);
	return 0;
}

int rec_setattr_l(struct recorder *r, struct nnode *n, uint32_t attrs,
		  uint32_t mode, int64_t mtime_ns)
{
	struct qitem *q;

	if (nnode_is_copy(n))
		return -EPERM;
	if (attrs & WK_ATTR_MODE && n->kind == WK_KIND_SYMLINK)
		attrs &= ~WK_ATTR_MODE;
	if (attrs & WK_ATTR_MODE && (mode & 07777) == n->mode)
		attrs &= ~WK_ATTR_MODE;
	if (attrs & WK_ATTR_MTIME && mtime_ns == n->mtime_ns)
		attrs &= ~WK_ATTR_MTIME;
	if (!attrs)
		return 0;
	q = new_op(r, WK_OP_SETATTR, n);
	set_place(&q->op, n->parent, n->name);
	q->op.attrs = attrs;
	if (attrs & WK_ATTR_MODE)
		q->op.mode = n->mode = mode & 07777;
	if (attrs & WK_ATTR_MTIME)
		q->op.mtime_ns = n->mtime_ns = mtime_ns;
	n->version = q->op.id;
	enqueue(r, q);
	return 0;
}

int rec_setattr_member_l(struct recorder *r, struct wk_id id,
			 struct nnode *parent, const char *name, uint32_t attrs,
			 uint32_t mode, int64_t mtime_ns)
{
	struct qitem *q = new_op(r, WK_OP_SETATTR, NULL);

	q->op.node = id;
	set_place(&q->op, parent, name);
	q->op.attrs = attrs;
	if (attrs & WK_ATTR_MODE)
		q->op.mode = mode & 07777;
	if (attrs & WK_ATTR_MTIME)
		q->op.mtime_ns = mtime_ns;
	enqueue(r, q);
	return 0;
}

int rec_flush(struct recorder *r, bool durable)
{
	int rc;

	rec_lock(r);
	rc = rec_flush_l(r, durable);
	rec_unlock(r);
	return rc;
}

int rec_flush_l(struct recorder *r, bool durable)
{
	uint64_t target;

	target = r->queued;
	r->waiters++;
	if (durable)
		r->want_durable = true;
	pthread_cond_signal(&r->work);
	while (r->committed < target || (durable && r->durable_upto < target))
		pthread_cond_wait(&r->done, &r->lock);
	r->waiters--;
	return 0;
}

void rec_throttle_l(struct recorder *r)
{
	if (r->queued - r->committed < THROTTLE_OPS)
		return;
	r->waiters++;
	pthread_cond_signal(&r->work);
	while (r->queued - r->committed >= THROTTLE_OPS / 2)
		pthread_cond_wait(&r->done, &r->lock);
	r->waiters--;
}

bool rec_idle_l(const struct recorder *r)
{
	return r->committed >= r->queued;
}

/* ---- remote ops ------------------------------------------------------- */

int rec_observe_l(struct recorder *r, uint64_t hlc)
{
	return hlc_update(&r->clock, hlc) ? 0 : -ERANGE;
}

void rec_node_sync_l(struct recorder *r, struct wk_id id)
{
	struct qitem *q = xcalloc(1, sizeof(*q));

	q->what = Q_NODE;
	q->fd = -1;
	q->op.node = id;
	enqueue(r, q);
}

void rec_meta_set_l(struct recorder *r, const char *key, uint64_t v)
{
	struct qitem *q = xcalloc(1, sizeof(*q));

	q->what = Q_META;
	q->fd = -1;
	snprintf(q->key, sizeof(q->key), "%s", key);
	q->value = v;
	enqueue(r, q);
}

void rec_held_set_l(struct recorder *r, int64_t seq, int reason,
		    const char *path)
{
	struct qitem *q = xcalloc(1, sizeof(*q));

	q->what = Q_HELD;
	q->fd = -1;
	q->seq = seq;
	q->value = (uint64_t)reason;
	q->path = path ? xstrdup(path) : NULL;
	enqueue(r, q);
}

int rec_promote_l(struct recorder *r, struct nnode **np)
{
	struct nnode *n = *np, *parent = n->parent, *nn = NULL;
	struct wk_id node = n->copy_of, version = n->id;
	struct wk_hash hash = n->hash;
	bool has_hash = n->has_hash;
	uint64_t size = n->size, ino = n->ino;
	int64_t mtime = n->mtime_ns;
	uint32_t mode = n->mode;
	char *name;
	struct qitem *q;
	int rc;

	if (!nnode_is_copy(n))
		return 0;
	name = xstrdup(n->name);
	nindex_remove(r->ix, n);
	*np = NULL;
	rc = rec_create_l(r, parent, name, WK_KIND_FILE, mode, ino, NULL, &nn);
	if (rc)
		goto out;
	if (has_hash && size > 0)
		rc = rec_put_l(r, nn, -1, &hash, size, mtime);
	else
		nn->mtime_ns = mtime;
	/* The version the copy showed is retired: the copy is now nn. */
	q = new_op(r, WK_OP_REMOVE, NULL);
	q->op.node = node;
	q->op.base = version;
	set_place(&q->op, parent, name);
	enqueue(r, q);
	*np = nn;
out:
	free(name);
	return rc;
}

/* ---- the writer thread ------------------------------------------------ */

static void hash_put(struct recorder *r, struct qitem *q)
{
	struct stat st;
	struct nnode *n;
	uint64_t size;
	int rc;

	rc = content_hash_fd(q->fd, &q->op.hash, &size);
	if (rc == 0 && fstat(q->fd, &st) == 0) {
		q->op.size = size;
		q->op.mtime_ns =
			st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	} else {
		wk_warn("cannot read a file to hash it: %s", strerror(-rc));
	}
	close(q->fd);
	q->fd = -1;
	rec_lock(r);
	n = nindex_get(r->ix, q->op.node);
	if (n && wk_id_eq(n->content, q->op.id)) {
		n->hash = q->op.hash;
		n->has_hash = true;
		n->size = q->op.size;
		n->mtime_ns = q->op.mtime_ns;
	}
	rec_unlock(r);
}

/* Writes the node row of id as the index holds it now, or deletes it. */
static int write_node(struct recorder *r, struct wk_id id)
{
	struct db_node d = {0};
	struct nnode *n;
	bool gone;

	rec_lock(r);
	n = nindex_get(r->ix, id);
	gone = !n || !n->parent || nnode_is_copy(n);
	if (!gone) {
		d.id = n->id;
		d.parent = n->parent->id;
		snprintf(d.name, sizeof(d.name), "%s", n->name);
		d.kind = n->kind;
		d.mode = n->mode;
		d.size = n->size;
		d.mtime_ns = n->mtime_ns;
		d.has_hash = n->has_hash;
		d.hash = n->hash;
		d.target = n->target ? xstrdup(n->target) : NULL;
		d.version = n->version;
		d.content = n->content;
		d.ino = n->ino;
	}
	rec_unlock(r);
	if (gone)
		return db_node_delete(r->db, id);
	int rc = db_node_put(r->db, &d);

	db_node_release(&d);
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	return wk_id_cmp(*(const struct wk_id *)a, *(const struct wk_id *)b);
}

static int commit_batch(struct recorder *r, struct qitem *batch, bool durable,
			uint64_t last)
{
	struct wk_id *ids;
	size_t n_ids = 0;
	struct qitem *q;
	int rc;

	for (q = batch; q; q = q->next)
		if (q->fd >= 0)
			hash_put(r, q);
	rc = db_begin(r->db);
	if (rc)
		return rc;
	for (q = batch; q && !rc; q = q->next) {
		if (q->what == Q_META)
			rc = db_meta_set_u64(r->db, q->key, q->value);
		else if (q->what == Q_HELD && q->value)
			rc = db_held_set(r->db, q->seq, (int)q->value, q->path,
					 (int64_t)time(NULL) * 1000);
		else if (q->what == Q_HELD)
			rc = db_held_clear(r->db, q->seq);
		else if (q->what == Q_OP)
			rc = db_op_append(r->db, &q->op, DB_ORIGIN_LOCAL, NULL);
		if (rc == -EEXIST)
			rc = 0; /* already there: a retried batch */
	}
	/* A node touched by several ops of the batch (create, put, move...)
	 * gets its row written once, as it is now. */
	for (q = batch; q; q = q->next)
		n_ids++;
	ids = xmalloc(n_ids * sizeof(*ids));
	n_ids = 0;
	for (q = batch; q; q = q->next)
		if (q->what == Q_OP || q->what == Q_NODE)
			ids[n_ids++] = q->op.node;
	qsort(ids, n_ids, sizeof(*ids), cmp_id);
	for (size_t i = 0; i < n_ids && !rc; i++)
		if (i == 0 || !wk_id_eq(ids[i], ids[i - 1]))
			rc = write_node(r, ids[i]);
	free(ids);
	if (!rc)
		rc = db_meta_set_u64(r->db, "hlc", last);
	fault_point("rec.before_commit");
	if (!rc)
		rc = db_commit(r->db, durable);
	if (rc)
		db_rollback(r->db);
	else
		fault_point("rec.after_commit");
	return rc;
}

/*
 * Group commit: a transaction costs a WAL append of every page it touches,
 * so one op per transaction would make a burst of creates rewrite the same
 * pages thousands of times.  Nobody on the request path waits for commits,
 * so the writer lets ops gather for a moment, unless someone is waiting
 * (fsync, `wkfs log`, unmount) or the queue is already large.
 */
static void gather(struct recorder *r)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += GATHER_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!r->stop && !r->want_durable && r->waiters == 0 &&
	       r->queued - r->committed < GATHER_MAX)
		if (pthread_cond_timedwait(&r->work, &r->lock, &until) ==
		    ETIMEDOUT)
			break;
}

static void *writer_main(void *arg)
{
	struct recorder *r = arg;

	rec_lock(r);
	for (;;) {
		struct qitem *batch, *q;
		uint64_t upto, last;
		bool durable;
		int rc;

		while (!r->head && !r->want_durable && !r->stop)
			pthread_cond_wait(&r->work, &r->lock);
		if (!r->head && !r->want_durable && r->stop)
			break;
		gather(r);
		batch = r->head;
		r->head = r->tail = NULL;
		upto = r->queued;
		durable = r->want_durable;
		r->want_durable = false;
		last = hlc_last(&r->clock);
		rec_unlock(r);

		rc = commit_batch(r, batch, durable, last);

		rec_lock(r);
		if (rc) {
			/* Disk full or I/O error: keep the batch and try
			 * again in a second; nothing is dropped. */
			wk_err("cannot write the oplog (%s), retrying: %s",
			       strerror(-rc), db_errmsg(r->db));
			q = batch;
			while (q && q->next)
				q = q->next;
			if (q) {
				q->next = r->head;
				if (!r->head)
					r->tail = q;
				r->head = batch;
			}
			r->want_durable |= durable;
			rec_unlock(r);
			sleep(1);
			rec_lock(r);
			continue;
		}
		r->committed = upto;
		if (durable)
			r->durable_upto = upto;
		pthread_cond_broadcast(&r->done);
		while (batch) {
			q = batch->next;
			free(batch->path);
			free(batch);
			batch = q;
		}
	}
	rec_unlock(r);
	return NULL;
}
