/*
 * syncd_content.c - shipping file contents to the relay, and what the
 * content code shares: the recipe cache, the relay epoch, the data
 * connection.
 *
 * Shipping: before a put is pushed, the file it names is found through the
 * nodes table, read once to check it still has the put's hash and to cut
 * it into chunks (rcache_chunk_fd), and the chunks the relay may lack are
 * asked about (HAVE -> MISSING) and sent with CHUNK_PUT, each hashed again
 * as it is read.  A file of several chunks also ships its recipe as a
 * chunk, the put names it (payload format 4, docs/protocol.md): a delta
 * against the recipe of a content the relay has (usually the version the
 * put replaced) when that is smaller, else the plain recipe; nothing when
 * the relay has this content's recipe chunk already.  A file
 * that changed since its put is not shipped: the put says so and a later
 * put carries the content.
 *
 * "May lack": a chunk that occurs in a cached recipe whose epoch is the
 * current relay epoch is on the relay already (that content was shipped
 * to it or fetched from it, and the relay never holds a put whose chunks
 * it lacks), so it is not even asked about.  After a one-byte edit that
 * leaves one new chunk and the new recipe to HAVE and send.  The epoch
 * (meta relay_epoch) is drawn anew when the relay url changes and when
 * the relay turns out to have lost our history (content_relay_lost), so
 * what was known about another or an older relay is never trusted.
 *
 * Fetching is syncd_fetch.c.  All requests go over the data connection
 * (syncd.h says why).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bytebuf.h"
#include "chunk.h"
#include "content.h"
#include "content_int.h"
#include "recipe.h"
#include "recipe_cache.h"
#include "wlog.h"

/* ---- the recipe cache and the relay epoch ---- */

static uint64_t new_epoch(void)
{
	uint64_t e = 0;

	if (getrandom(&e, sizeof(e), 0) != sizeof(e))
		e = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
	return e ? e : 1; /* 0 means "not known on any relay" */
}

int content_relay_lost(struct syncd *s)
{
	uint64_t e = new_epoch();
	int rc = db_meta_set_u64(s->db, "relay_epoch", e);

	if (!rc)
		s->epoch = e;
	return rc;
}

int content_open(struct syncd *s)
{
	char url[1024] = "";
	int rc;

	rc = rcache_open(s->dirfd, &s->rcache);
	if (rc) {
		/* Content still moves, only without the shortcuts. */
		wk_warn("%s: no recipe cache (%s): every chunk is asked for",
			s->real, strerror(-rc));
		s->rcache = NULL;
	}
	/* An epoch belongs to one relay url, like the cursor. */
	if (db_meta_get_u64(s->db, "relay_epoch", &s->epoch) ||
	    db_meta_get_str(s->db, "relay_epoch_url", url, sizeof(url)) ||
	    strcmp(url, s->cfg.remote_url) != 0) {
		rc = db_begin(s->db);
		if (!rc)
			rc = content_relay_lost(s);
		if (!rc)
			rc = db_meta_set_str(s->db, "relay_epoch_url",
					     s->cfg.remote_url);
		if (!rc)
			rc = db_commit(s->db, true);
		if (rc) {
			db_rollback(s->db);
			wk_err("%s: %s", s->real, db_errmsg(s->db));
			return rc;
		}
	}
	return 0;
}

void content_close(struct syncd *s)
{
	rcache_close(s->rcache);
	s->rcache = NULL;
}

/* ---- the data connection ---- */

int content_recv(struct syncd *s, struct wire_msg *m)
{
	for (;;) {
		int rc = wsc_recv(s->data, SYNCD_TIMEOUT_MS, m);

		if (rc) {
			syncd_fail(s, s->data, rc, "chunk transfer");
			/* Not to be taken for a chunk that does not match. */
			return rc == -EBADMSG ? -EPROTO : rc;
		}
		if (m->type != WIRE_OPS && m->type != WIRE_CAUGHT_UP &&
		    m->type != WIRE_PONG)
			return 0;
	}
}

int content_drain(struct syncd *s)
{
	struct wire_msg m;

	for (int i = 0; i < 64; i++) {
		int rc = wsc_recv(s->data, 1, &m);

		if (rc == -ETIMEDOUT)
			return 0;
		if (rc)
			return syncd_fail(s, s->data, rc, "chunk connection");
	}
	return 0;
}

int content_node_path(struct syncd *s, struct wk_id id, char *buf, size_t len,
		      bool *has_hash, struct wk_hash *hash)
{
	size_t pos = len - 1;
	struct wk_id cur = id;

	buf[pos] = '\0';
	for (int depth = 0; !wk_id_eq(cur, WK_ID_ROOT); depth++) {
		struct db_node n;
		size_t nl;
		int rc;

		if (depth > 2048)
			return -ELOOP;
		rc = db_node_get(s->db, cur, &n);
		if (rc)
			return rc;
		nl = strlen(n.name);
		if (nl + 1 >= pos) {
			db_node_release(&n);
			return -ENAMETOOLONG;
		}
		if (depth == 0) {
			*has_hash = n.has_hash && n.kind == WK_KIND_FILE;
			*hash = n.hash;
		} else {
			buf[--pos] = '/';
		}
		pos -= nl;
		memcpy(buf + pos, n.name, nl);
		cur = n.parent;
		db_node_release(&n);
	}
	memmove(buf, buf + pos, len - pos);
	return 0;
}

/* ---- uploading ---- */

/*
 * Uploads are pipelined: up to UPLOAD_WINDOW bytes of CHUNK_PUTs are sent
 * before their CHUNK_ACKs are collected (they come in request order), so
 * a link's round trip is paid once per window, not once per chunk.
 */
#define UPLOAD_WINDOW (8u << 20)

/* Queues one CHUNK_PUT (the frame is copied). */
static int send_chunk(struct syncd *s, const struct wk_hash *name,
		      const void *data, size_t len)
{
	struct wire_msg m = {.type = WIRE_CHUNK_PUT};
	int rc;

	memcpy(m.chunk.name, name->b, WIRE_NAME_LEN);
	m.chunk.data = data;
	m.chunk.len = (uint32_t)len;
	rc = wsc_send_msg(s->data, &m);
	return rc ? syncd_fail(s, s->data, rc, "chunk upload") : 0;
}

/* Waits for the CHUNK_ACKs of every CHUNK_PUT sent so far. */
static int collect_acks(struct syncd *s, uint32_t *pending)
{
	struct wire_msg m;
	int rc;

	while (*pending) {
		rc = content_recv(s, &m);
		if (rc)
			return rc;
		if (m.type == WIRE_CHUNK_ACK)
			(*pending)--;
	}
	return 0;
}

struct upload {
	int fd;
	const struct recipe *r;
	uint64_t *off;		 /* offset of each entry in the file */
	const struct bbuf *rec;	 /* recipe bytes, or NULL */
	struct wk_hash rec_name; /* their name: entry r->n */
	uint32_t *want;		 /* entries the relay may lack, */
	size_t nwant;		 /* each name once */
	uint8_t *buf;		 /* CHUNK_MAX bytes */
	uint32_t pending;	 /* CHUNK_PUTs not yet acknowledged */
	size_t inflight;	 /* bytes sent since the last collect */
};

static const struct wk_hash *entry_name(const struct upload *u, size_t i)
{
	return i < u->r->n ? &u->r->v[i].name : &u->rec_name;
}

/* Sends entry i: -ESTALE when the file no longer holds it. */
static int upload_entry(struct syncd *s, struct upload *u, size_t i)
{
	struct wk_hash h;
	ssize_t n;

	int rc;

	if (i == u->r->n) {
		rc = send_chunk(s, &u->rec_name, u->rec->p, u->rec->len);
		n = (ssize_t)u->rec->len;
	} else {
		n = pread(u->fd, u->buf, u->r->v[i].len, (off_t)u->off[i]);
		if (n != (ssize_t)u->r->v[i].len)
			return -ESTALE;
		content_hash_buf(u->buf, (size_t)n, &h);
		if (memcmp(&h, &u->r->v[i].name, sizeof(h)) != 0)
			return -ESTALE;
		rc = send_chunk(s, &h, u->buf, (size_t)n);
	}
	if (rc)
		return rc;
	u->pending++;
	u->inflight += (size_t)n;
	if (u->inflight < UPLOAD_WINDOW)
		return 0;
	u->inflight = 0;
	return collect_acks(s, &u->pending);
}

/* HAVE for want[g .. g + k), then uploads what the relay lacks. */
int content_have(struct syncd *s, size_t k, content_name_fn name,
		 content_lack_fn lack, void *arg, uint32_t *pending)
{
	struct wire_msg m = {.type = WIRE_HAVE};
	uint8_t *names = malloc(k * WIRE_NAME_LEN + 1), *missing = NULL;
	uint32_t nmiss;
	size_t i = 0;
	int rc;

	if (!names)
		return -ENOMEM;
	for (size_t j = 0; j < k; j++)
		memcpy(names + j * WIRE_NAME_LEN, name(arg, j)->b,
		       WIRE_NAME_LEN);
	m.names.count = (uint32_t)k;
	m.names.names = names;
	rc = wsc_send_msg(s->data, &m);
	free(names);
	if (rc)
		return syncd_fail(s, s->data, rc, "chunk upload");
	/* Acks of earlier CHUNK_PUTs may come first: they count, or the
	 * caller would wait for them forever. */
	do {
		rc = content_recv(s, &m);
		if (!rc && m.type == WIRE_CHUNK_ACK && *pending)
			(*pending)--;
	} while (!rc && m.type != WIRE_MISSING);
	if (rc)
		return rc;
	nmiss = m.names.count;
	missing = malloc((size_t)nmiss * WIRE_NAME_LEN + 1);
	if (!missing)
		return -ENOMEM;
	memcpy(missing, m.names.names, (size_t)nmiss * WIRE_NAME_LEN);
	/* MISSING lists names in the order asked. */
	for (uint32_t j = 0; j < nmiss && !rc; j++, i++) {
		while (i < k &&
		       memcmp(name(arg, i)->b, missing + j * WIRE_NAME_LEN,
			      WIRE_NAME_LEN) != 0)
			i++;
		if (i == k) {
			snprintf(s->err, sizeof(s->err),
				 "relay's MISSING names a chunk not asked for");
			rc = -EPROTO;
			break;
		}
		rc = lack(arg, i);
	}
	free(missing);
	return rc;
}

/* A group of u->want, for content_have(). */
struct want_group {
	struct syncd *s;
	struct upload *u;
	size_t g;
};

static const struct wk_hash *group_name(void *arg, size_t j)
{
	struct want_group *wg = arg;

	return entry_name(wg->u, wg->u->want[wg->g + j]);
}

static int group_lack(void *arg, size_t j)
{
	struct want_group *wg = arg;

	return upload_entry(wg->s, wg->u, wg->u->want[wg->g + j]);
}

/* HAVE for want[g .. g + k), then uploads what the relay lacks. */
static int upload_group(struct syncd *s, struct upload *u, size_t g, size_t k)
{
	struct want_group wg = {s, u, g};

	return content_have(s, k, group_name, group_lack, &wg, &u->pending);
}

static int known_place(void *arg, const struct wk_hash *content, uint64_t off,
		       uint64_t epoch)
{
	const struct syncd *s = arg;

	return epoch && epoch == s->epoch;
}

/* True when chunk e is on the relay for sure: this batch put it there
 * (syncd_batch.c), or it is in a content whose chunks are known to be
 * there at the current epoch. */
static bool on_relay(struct syncd *s, const struct recipe_entry *e)
{
	if (content_batch_has(s, &e->name))
		return true;
	return s->rcache &&
	       rcache_find(s->rcache, &e->name, e->len, known_place, s) == 1;
}

/*
 * Fills u->want with the entries to ask about: each name once, none the
 * relay is known to have; the recipe last unless rec_known.
 */
static int plan_upload(struct syncd *s, struct upload *u, bool rec_known)
{
	size_t slots = 16, n = u->r->n;
	uint32_t *seen;

	while (slots < 2 * n)
		slots *= 2;
	seen = malloc(slots * sizeof(*seen));
	u->want = malloc((n + 1) * sizeof(*u->want));
	if (!seen || !u->want) {
		free(seen);
		return -ENOMEM;
	}
	memset(seen, 0xff, slots * sizeof(*seen));
	for (uint32_t i = 0; i < n; i++) {
		const struct wk_hash *name = &u->r->v[i].name;
		uint64_t x;
		size_t k;

		/* Our own file's chunk names: no adversary picks them. */
		memcpy(&x, name->b, sizeof(x));
		for (k = x & (slots - 1); seen[k] != UINT32_MAX;
		     k = (k + 1) & (slots - 1))
			if (!memcmp(u->r->v[seen[k]].name.b, name->b, 16))
				break;
		if (seen[k] != UINT32_MAX)
			continue;
		seen[k] = i;
		if (!on_relay(s, &u->r->v[i]))
			u->want[u->nwant++] = i;
	}
	if (u->rec && !rec_known)
		u->want[u->nwant++] = (uint32_t)n;
	free(seen);
	return 0;
}

/* ---- the recipe chunk ---- */

static bool hash_zero(const struct wk_hash *h)
{
	static const struct wk_hash zero;

	return !memcmp(h, &zero, sizeof(zero));
}

/* Contents whose recipes may serve as the base of a delta. */
struct bases {
	struct syncd *s;
	const struct wk_hash *self;
	struct wk_hash v[RCACHE_FIND_MAX];
	size_t n;
};

static int add_base(void *arg, const struct wk_hash *content, uint64_t off,
		    uint64_t epoch)
{
	struct bases *b = arg;

	if (epoch != b->s->epoch || !memcmp(content, b->self, sizeof(*content)))
		return 0;
	for (size_t i = 0; i < b->n; i++)
		if (!memcmp(&b->v[i], content, sizeof(*content)))
			return 0;
	if (b->n < RCACHE_FIND_MAX)
		b->v[b->n++] = *content;
	return 0;
}

/* Encodes r as a delta against content c into d (reset first): 0, or
 * nonzero when c cannot serve (its recipe chunk is not known to be on the
 * relay, its chain is at the limit, or the delta does not fit). */
static int delta_against(struct syncd *s, const struct wk_hash *c,
			 const struct recipe *r, struct bbuf *d,
			 unsigned *depth)
{
	struct recipe base = RECIPE_INIT;
	struct rcache_ref ref;
	uint64_t epoch;
	int rc;

	if (rcache_ref(s->rcache, c, &epoch, &ref) || epoch != s->epoch ||
	    hash_zero(&ref.chunk) || ref.depth + 1 > RCHUNK_CHAIN_MAX ||
	    rcache_get(s->rcache, c, &base, NULL))
		return -ENOENT;
	bbuf_reset(d);
	bbuf_put_u8(d, RCHUNK_DELTA);
	bbuf_put(d, c->b, WIRE_NAME_LEN);
	bbuf_put(d, ref.chunk.b, WIRE_NAME_LEN);
	rc = recipe_delta_encode(&base, r, d);
	recipe_release(&base);
	*depth = ref.depth + 1;
	return rc ? rc : bbuf_error(d);
}

/*
 * Replaces the plain recipe in out by a delta against the cached recipe
 * of another content, when one is smaller.  The bases tried are the
 * contents that hold a few of r's chunks and whose recipe chunks are on
 * the relay at this epoch: after an edit, the version it replaced (the
 * put's base), but a copy or an older version serves as well; the
 * receiver needs only the chain the delta names.  *depth: 0 for plain.
 */
static void try_delta(struct syncd *s, const struct wk_hash *h,
		      const struct recipe *r, struct bbuf *out, unsigned *depth)
{
	struct bases b = {.s = s, .self = h};
	struct bbuf d;

	*depth = 0;
	if (!s->rcache || r->n < 2)
		return;
	for (size_t k = 0; k < 5; k++) {
		const struct recipe_entry *e = &r->v[(r->n - 1) * k / 4];

		rcache_find(s->rcache, &e->name, e->len, add_base, &b);
	}
	bbuf_init(&d, WIRE_CHUNK_MAX);
	for (size_t i = 0; i < b.n; i++) {
		struct bbuf t;
		unsigned dd;

		if (delta_against(s, &b.v[i], r, &d, &dd) || d.len >= out->len)
			continue;
		/* The smaller one wins; the buffers trade places. */
		t = *out;
		*out = d;
		d = t;
		*depth = dd;
	}
	bbuf_release(&d);
}

/*
 * The recipe chunk of content h (recipe r): *known when the relay has
 * one already (this content was shipped or fetched at this epoch: only
 * its name is needed), else its bytes in out.  *ref says what to cache
 * once it is uploaded.  -E2BIG: the recipe does not fit in a chunk.
 */
static int recipe_chunk(struct syncd *s, const struct wk_hash *h,
			const struct recipe *r, struct bbuf *out,
			struct rcache_ref *ref, bool *known)
{
	uint64_t epoch;
	int rc;

	*known = false;
	if (s->rcache && !rcache_ref(s->rcache, h, &epoch, ref) &&
	    epoch == s->epoch && !hash_zero(&ref->chunk)) {
		*known = true;
		return 0;
	}
	rc = recipe_encode(r, out);
	if (rc)
		return rc;
	/* Every session speaks version 2 (ws_client refuses a WELCOME of
	 * another), the one that has delta recipe chunks. */
	try_delta(s, h, r, out, &ref->depth);
	content_hash_buf(out->p, out->len, &ref->chunk);
	return 0;
}

static int upload(struct syncd *s, struct upload *u)
{
	uint64_t off = 0;
	int rc = 0;

	u->off = malloc(u->r->n * sizeof(*u->off) + 1);
	u->buf = malloc(CHUNK_MAX);
	if (!u->off || !u->buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < u->r->n; i++) {
		u->off[i] = off;
		off += u->r->v[i].len;
	}
	for (size_t g = 0; g < u->nwant && !rc; g += WIRE_NAMES_MAX)
		rc = upload_group(s, u, g,
				  u->nwant - g < WIRE_NAMES_MAX
					  ? u->nwant - g
					  : WIRE_NAMES_MAX);
	/* Even after -ESTALE: no stray CHUNK_ACK may be left behind. */
	if (rc == 0 || rc == -ESTALE) {
		int arc = collect_acks(s, &u->pending);

		if (arc)
			rc = arc;
	}
out:
	free(u->off);
	free(u->buf);
	return rc;
}

/* Cuts the open file, checks it against op, and uploads its chunks. */
static int ship_fd(struct syncd *s, int fd, const struct wk_op *op,
		   const char *path, struct wire_content_ref *cref)
{
	struct recipe r = RECIPE_INIT;
	struct upload u = {.fd = fd, .r = &r};
	struct rcache_ref ref = {.depth = 0};
	struct bbuf rec;
	struct wk_hash h;
	bool known = false;
	uint64_t size;
	int rc;

	bbuf_init(&rec, WIRE_CHUNK_MAX);
	/* One read: the hash and the chunks describe the same bytes. */
	rc = rcache_chunk_fd(fd, &r, &h, &size);
	if (rc == -ENOMEM)
		goto out;
	if (rc || memcmp(&h, &op->hash, sizeof(h)) != 0 || size != op->size) {
		content_not_shipped(op, path,
				    rc ? strerror(-rc)
				       : "the file changed since");
		rc = 0;
		goto out;
	}
	if (r.n > 1) {
		rc = recipe_chunk(s, &h, &r, &rec, &ref, &known);
		if (rc == -ENOMEM)
			goto out;
		if (rc) {
			content_not_shipped(op, path,
					    "its recipe exceeds one chunk");
			rc = 0;
			goto out;
		}
		u.rec_name = ref.chunk;
		u.rec = &rec;
	}
	rc = plan_upload(s, &u, known);
	if (!rc)
		rc = upload(s, &u);
	if (rc == -ESTALE) {
		content_not_shipped(op, path,
				    "the file changed while reading it");
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (r.n > 1 && known)
		wk_info("put of %s: %zu chunks, asked about %zu, recipe chunk "
			"on the relay already",
			path, r.n, u.nwant);
	else if (r.n > 1)
		wk_info("put of %s: %zu chunks, asked about %zu, recipe chunk "
			"of %zu bytes (%s, depth %u)",
			path, r.n, u.nwant, rec.len,
			ref.depth ? "delta" : "plain", ref.depth);
	else
		wk_debug("put of %s: one chunk, asked about %zu", path,
			 u.nwant);
	cref->how = r.n > 1 ? WIRE_CONTENT_RECIPE : WIRE_CONTENT_WHOLE;
	if (r.n > 1) {
		cref->recipe = u.rec_name;
		/* Every chunk and the recipe are on the relay now. */
		if (s->rcache)
			rcache_put_ref(s->rcache, &h, &r, s->epoch, &ref);
	}
out:
	free(u.want);
	recipe_release(&r);
	bbuf_release(&rec);
	return rc;
}

/* Opens the file of put op where the nodes table says it is now: the fd,
 * or -errno with *why saying why not. */
static int open_node(struct syncd *s, const struct wk_op *op, char *path,
		     size_t len, const char **why)
{
	struct wk_hash h;
	bool has_hash = false;
	int fd, rc;

	rc = content_node_path(s, op->node, path, len, &has_hash, &h);
	if (rc) {
		snprintf(path, len, "a node no longer tracked");
		*why = strerror(-rc);
		return rc;
	}
	if (!has_hash || memcmp(&h, &op->hash, sizeof(h)) != 0) {
		*why = "the file has newer content";
		return -ESTALE;
	}
	fd = openat(s->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		*why = strerror(errno);
	return fd < 0 ? -errno : fd;
}

/*
 * A put whose version lost a conflict before it was shipped: its content
 * is in a conflict copy beside the node's file (path), which has no nodes
 * row.  Looks in path's directory for a regular file named like a copy
 * with the put's size and hash; on success path names it.  An fd at
 * offset 0, or -ENOENT.
 */
static int open_copy(struct syncd *s, const struct wk_op *op, char *path,
		     size_t len)
{
	char *slash = strrchr(path, '/');
	char *base = slash ? slash + 1 : path; /* where the copy's name goes */
	size_t room = len - (size_t)(base - path);
	struct dirent *de;
	int dfd, fd = -ENOENT;
	DIR *d;

	if (slash)
		*slash = '\0';
	dfd = openat(s->dirfd, slash ? path : ".",
		     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (slash)
		*slash = '/';
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return -ENOENT;
	}
	while (fd < 0 && (de = readdir(d))) {
		struct wk_hash h;
		struct stat st;
		uint64_t n;
		int f;

		if (!strstr(de->d_name, ".conflict-") ||
		    strlen(de->d_name) >= room)
			continue;
		f = openat(dirfd(d), de->d_name,
			   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (f < 0)
			continue;
		if (fstat(f, &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size == op->size &&
		    content_hash_fd(f, &h, &n) == 0 &&
		    memcmp(&h, &op->hash, sizeof(h)) == 0 &&
		    lseek(f, 0, SEEK_SET) == 0) {
			memcpy(base, de->d_name, strlen(de->d_name) + 1);
			fd = f;
		} else {
			close(f);
		}
	}
	closedir(d);
	return fd;
}

/*
 * The file at path, if it holds op's content although the nodes table
 * says otherwise: the table follows the merge's view, which can lag the
 * mount's latest put of a file a remote op touched in the same moment.
 * An fd at offset 0, or -ESTALE.
 */
static int open_if_same(struct syncd *s, const struct wk_op *op,
			const char *path)
{
	struct wk_hash h;
	uint64_t size;
	int fd = openat(s->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -ESTALE;
	if (content_hash_fd(fd, &h, &size) == 0 && size == op->size &&
	    memcmp(&h, &op->hash, sizeof(h)) == 0 &&
	    lseek(fd, 0, SEEK_SET) == 0)
		return fd;
	close(fd);
	return -ESTALE;
}

/*
 * The file at the place the put was made (its parent's row and its name),
 * if it holds op's content: for a node the nodes table has no row for
 * at the moment (a move of a directory above it on its way, say).  On
 * success path names it.
 */
static int open_at_place(struct syncd *s, const struct wk_op *op, char *path,
			 size_t len)
{
	char dir[4096], p[4096];
	struct wk_hash h;
	bool has_hash;
	int fd;

	if (!op->name[0] ||
	    content_node_path(s, op->parent, dir, sizeof(dir), &has_hash, &h))
		return -ENOENT;
	if ((size_t)snprintf(p, sizeof(p), "%s%s%s", dir, *dir ? "/" : "",
			     op->name) >= sizeof(p))
		return -ENAMETOOLONG;
	fd = open_if_same(s, op, p);
	if (fd >= 0)
		snprintf(path, len, "%s", p);
	return fd;
}

/* The node's file when it has op's content, else a copy that has it, else
 * the file at the put's place when the node has no row. */
static int open_version(struct syncd *s, const struct wk_op *op, char *path,
			size_t len, const char **why)
{
	int fd = open_node(s, op, path, len, why);
	int other;

	if (fd >= 0)
		return fd;
	if (fd != -ESTALE) {
		other = open_at_place(s, op, path, len);
		return other >= 0 ? other : fd;
	}
	if ((other = open_if_same(s, op, path)) >= 0)
		return other;
	if ((other = open_copy(s, op, path, len)) >= 0)
		return other;
	return fd;
}

int content_open_put(struct syncd *s, const struct wk_op *op, char *path,
		     size_t len)
{
	const char *why = "";
	int fd = open_version(s, op, path, len, &why);

	/* The file moved (a temporary renamed into place, say) and the
	 * mount has not committed the move yet: the nodes table still
	 * names the old place.  Once committed it names the new one. */
	if (fd < 0 && syncd_flush_mount(s))
		fd = open_version(s, op, path, len, &why);
	if (fd < 0)
		content_not_shipped(op, path, why);
	return fd;
}

int content_ship(struct syncd *s, const struct wk_op *op,
		 struct wire_content_ref *ref)
{
	char path[4096];
	int fd, rc;

	memset(ref, 0, sizeof(*ref));
	ref->how = WIRE_CONTENT_NONE;
	if (op->size == 0) {
		ref->how = WIRE_CONTENT_WHOLE;
		return 0;
	}
	fd = content_open_put(s, op, path, sizeof(path));
	if (fd < 0)
		return 0;
	rc = ship_fd(s, fd, op, path, ref);
	close(fd);
	return rc;
}
