/*
 * syncd_content.c - moving file contents between DIR and the relay.
 *
 * Shipping: before a put is pushed, the file it names is found through the
 * nodes table, checked to still have the put's hash, cut into chunks
 * (chunk.h), and the chunks the relay lacks (HAVE -> MISSING) are sent with
 * CHUNK_PUT, each hashed again as it is read.  A file of several chunks
 * also ships its plain recipe as a chunk; the put names it (payload format
 * 2, docs/protocol.md).  A file that changed since its put is not shipped:
 * the put says so and a later put carries the content.
 *
 * Fetching: the recipe (or the single chunk) of a received put is fetched
 * into .wkfs/chunks/, the file is assembled in .wkfs/tmp and handed to the
 * object store (mat_object_put), which hashes what it stored; a mismatch
 * with the put's hash is refused and logged.
 *
 * All requests go over the data connection (syncd.h says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytebuf.h"
#include "chunk.h"
#include "content.h"
#include "recipe.h"
#include "syncd.h"
#include "wlog.h"

#define CHUNK_CACHE ".wkfs/chunks"

/* Next reply on the data connection; OPS there are not ours to handle. */
static int data_recv(struct syncd *s, struct wire_msg *m)
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

/* The path of node id below DIR, and the hash the nodes table has for it. */
static int node_path(struct syncd *s, struct wk_id id, char *buf, size_t len,
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
		rc = data_recv(s, &m);
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

/* HAVE for entries [g, g + k), then uploads what the relay lacks. */
static int upload_group(struct syncd *s, struct upload *u, size_t g, size_t k)
{
	struct wire_msg m = {.type = WIRE_HAVE};
	uint8_t *names = malloc(k * WIRE_NAME_LEN), *missing = NULL;
	uint32_t nmiss = 0;
	size_t i = g;
	int rc;

	if (!names)
		return -ENOMEM;
	for (size_t j = 0; j < k; j++)
		memcpy(names + j * WIRE_NAME_LEN, entry_name(u, g + j)->b,
		       WIRE_NAME_LEN);
	m.names.count = (uint32_t)k;
	m.names.names = names;
	rc = wsc_send_msg(s->data, &m);
	free(names);
	if (rc)
		return syncd_fail(s, s->data, rc, "chunk upload");
	/* Acks of the previous group's last window may come first: they
	 * count, or collect_acks() would wait for them forever. */
	do {
		rc = data_recv(s, &m);
		if (!rc && m.type == WIRE_CHUNK_ACK && u->pending)
			u->pending--;
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
		while (i < g + k &&
		       memcmp(entry_name(u, i)->b, missing + j * WIRE_NAME_LEN,
			      WIRE_NAME_LEN) != 0)
			i++;
		if (i == g + k) {
			snprintf(s->err, sizeof(s->err),
				 "relay's MISSING names a chunk not asked for");
			rc = -EPROTO;
			break;
		}
		rc = upload_entry(s, u, i);
	}
	free(missing);
	return rc;
}

static int upload(struct syncd *s, struct upload *u)
{
	size_t total = u->r->n + (u->rec ? 1 : 0);
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
	for (size_t g = 0; g < total && !rc; g += WIRE_NAMES_MAX)
		rc = upload_group(s, u, g,
				  total - g < WIRE_NAMES_MAX ? total - g
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

static void not_shipped(const struct wk_op *op, const char *path,
			const char *why)
{
	char hs[WK_HASH_STRLEN];

	wk_info("put %s of %s: content not shipped (%s); a later put "
		"carries it",
		wk_hash_str(&op->hash, hs), path, why);
}

/* Cuts the open file, checks it against op, and uploads its chunks. */
static int ship_fd(struct syncd *s, int fd, const struct wk_op *op,
		   const char *path, struct wire_content_ref *ref)
{
	struct recipe r = RECIPE_INIT;
	struct upload u = {.fd = fd, .r = &r};
	struct bbuf rec;
	struct wk_hash h;
	uint64_t size;
	int rc;

	bbuf_init(&rec, WIRE_CHUNK_MAX);
	if (content_hash_fd(fd, &h, &size) ||
	    memcmp(&h, &op->hash, sizeof(h)) != 0 || size != op->size) {
		not_shipped(op, path, "the file changed since");
		rc = 0;
		goto out;
	}
	rc = recipe_from_fd(fd, &r);
	if (rc)
		goto out;
	if (recipe_size(&r) != op->size) {
		not_shipped(op, path, "the file changed since");
		goto out;
	}
	if (r.n > 1) {
		if (recipe_encode(&r, &rec)) {
			not_shipped(op, path, "its recipe exceeds one chunk");
			goto out;
		}
		content_hash_buf(rec.p, rec.len, &u.rec_name);
		u.rec = &rec;
	}
	rc = upload(s, &u);
	if (rc == -ESTALE) {
		not_shipped(op, path, "the file changed while reading it");
		rc = 0;
		goto out;
	}
	if (!rc) {
		ref->how = r.n > 1 ? WIRE_CONTENT_RECIPE : WIRE_CONTENT_WHOLE;
		if (r.n > 1)
			ref->recipe = u.rec_name;
	}
out:
	recipe_release(&r);
	bbuf_release(&rec);
	return rc;
}

int content_ship(struct syncd *s, const struct wk_op *op,
		 struct wire_content_ref *ref)
{
	char path[4096];
	struct wk_hash h;
	bool has_hash = false;
	int fd, rc;

	memset(ref, 0, sizeof(*ref));
	ref->how = WIRE_CONTENT_NONE;
	if (op->size == 0) {
		ref->how = WIRE_CONTENT_WHOLE;
		return 0;
	}
	rc = node_path(s, op->node, path, sizeof(path), &has_hash, &h);
	if (rc) {
		not_shipped(op, "a node no longer tracked", strerror(-rc));
		return 0;
	}
	if (!has_hash || memcmp(&h, &op->hash, sizeof(h)) != 0) {
		not_shipped(op, path, "the file has newer content");
		return 0;
	}
	fd = openat(s->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		not_shipped(op, path, strerror(errno));
		return 0;
	}
	rc = ship_fd(s, fd, op, path, ref);
	close(fd);
	return rc;
}

/* ---- fetching ---- */

static void cache_path(const struct wk_hash *h, char *buf, size_t len)
{
	char hs[WK_HASH_STRLEN];

	snprintf(buf, len, CHUNK_CACHE "/%s", wk_hash_str(h, hs));
}

static bool cache_have(struct syncd *s, const struct wk_hash *h)
{
	char p[128];

	cache_path(h, p, sizeof(p));
	return faccessat(s->dirfd, p, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Stores a received chunk after checking it hashes to its name. */
static int cache_store(struct syncd *s, const uint8_t name[WIRE_NAME_LEN],
		       const uint8_t *data, uint32_t len)
{
	struct wk_hash h, want;
	char p[128], tmp[160];
	int fd, rc = 0;

	memcpy(want.b, name, WIRE_NAME_LEN);
	content_hash_buf(data, len, &h);
	if (memcmp(&h, &want, sizeof(h)) != 0)
		return -EBADMSG;
	cache_path(&want, p, sizeof(p));
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", p, (int)getpid());
	fd = openat(s->dirfd, tmp,
		    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && renameat(s->dirfd, tmp, s->dirfd, p))
		rc = -errno;
	if (rc)
		unlinkat(s->dirfd, tmp, 0);
	return rc;
}

static int cmp_name(const void *a, const void *b)
{
	return memcmp(a, b, WIRE_NAME_LEN);
}

/* CHUNK_GET for a group of distinct names: 0, -ENOENT (the relay lacks
 * one: *lacking set), -EBADMSG (a chunk does not match its name). */
static int get_group(struct syncd *s, const uint8_t *names, uint32_t k)
{
	struct wire_msg m = {.type = WIRE_CHUNK_GET};
	uint32_t got = 0;
	int rc;

	m.names.count = k;
	m.names.names = names;
	rc = wsc_send_msg(s->data, &m);
	if (rc)
		return syncd_fail(s, s->data, rc, "chunk download");
	while (got < k) {
		rc = data_recv(s, &m);
		if (rc)
			return rc;
		if (m.type == WIRE_NOT_FOUND)
			return -ENOENT;
		if (m.type != WIRE_CHUNK)
			continue;
		rc = cache_store(s, m.chunk.name, m.chunk.data, m.chunk.len);
		if (rc)
			return rc;
		got++;
	}
	return 0;
}

/* Brings every chunk of r that is not cached into the cache. */
static int get_chunks(struct syncd *s, const struct recipe *r)
{
	uint8_t *names = malloc(r->n * WIRE_NAME_LEN + 1);
	size_t n = 0, k = 0;
	int rc = 0;

	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++)
		if (!cache_have(s, &r->v[i].name))
			memcpy(names + n++ * WIRE_NAME_LEN, r->v[i].name.b,
			       WIRE_NAME_LEN);
	/* A name asked twice would be answered twice. */
	qsort(names, n, WIRE_NAME_LEN, cmp_name);
	for (size_t i = 0; i < n; i++)
		if (!k || memcmp(names + (k - 1) * WIRE_NAME_LEN,
				 names + i * WIRE_NAME_LEN, WIRE_NAME_LEN))
			memmove(names + k++ * WIRE_NAME_LEN,
				names + i * WIRE_NAME_LEN, WIRE_NAME_LEN);
	for (size_t g = 0; g < k && !rc; g += WIRE_NAMES_MAX)
		rc = get_group(s, names + g * WIRE_NAME_LEN,
			       (uint32_t)(k - g < WIRE_NAMES_MAX
						  ? k - g
						  : WIRE_NAMES_MAX));
	free(names);
	return rc;
}

/* Reads a cached chunk (at most max bytes) into buf. */
static ssize_t cache_read(struct syncd *s, const struct wk_hash *h,
			  uint8_t *buf, size_t max)
{
	char p[128];
	ssize_t n;
	int fd;

	cache_path(h, p, sizeof(p));
	fd = openat(s->dirfd, p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, max);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

static int open_tmp(struct syncd *s)
{
	char name[64];
	int fd;

	fd = openat(s->dirfd, ".wkfs/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
		    0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd >= 0 ? fd : -errno;
	snprintf(name, sizeof(name), ".wkfs/tmp/s.%d", (int)getpid());
	fd = openat(s->dirfd, name,
		    O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	unlinkat(s->dirfd, name, 0);
	return fd;
}

/* Concatenates the cached chunks of r into the object store: *got gets
 * the hash of what was stored. */
static int assemble(struct syncd *s, const struct recipe *r,
		    struct wk_hash *got)
{
	uint8_t *buf = malloc(CHUNK_MAX);
	int fd = open_tmp(s), rc = 0;

	if (!buf || fd < 0) {
		rc = fd < 0 ? fd : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->n && !rc; i++) {
		ssize_t n = cache_read(s, &r->v[i].name, buf, CHUNK_MAX);

		if (n < 0)
			rc = (int)n;
		else if ((size_t)n != r->v[i].len)
			rc = -EBADMSG;
		else if (write(fd, buf, (size_t)n) != n)
			rc = errno ? -errno : -EIO;
	}
	if (!rc)
		rc = mat_object_put(s->mat, fd, got);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

static void cache_drop(struct syncd *s, const struct wk_hash *h)
{
	char p[128];

	cache_path(h, p, sizeof(p));
	unlinkat(s->dirfd, p, 0);
}

/* The recipe of a put: one whole chunk, or fetched and decoded. */
static int load_recipe(struct syncd *s, const struct wk_op *op,
		       const struct wire_content_ref *ref, struct recipe *r)
{
	struct recipe one = RECIPE_INIT;
	uint8_t *buf;
	ssize_t n;
	int rc;

	recipe_init(r);
	if (ref->how == WIRE_CONTENT_WHOLE)
		return recipe_push(r, &op->hash, (uint32_t)op->size);
	rc = recipe_push(&one, &ref->recipe, 1);
	if (!rc)
		rc = cache_have(s, &ref->recipe) ? 0 : get_chunks(s, &one);
	recipe_release(&one);
	if (rc)
		return rc;
	buf = malloc(WIRE_CHUNK_MAX);
	if (!buf)
		return -ENOMEM;
	n = cache_read(s, &ref->recipe, buf, WIRE_CHUNK_MAX);
	cache_drop(s, &ref->recipe);
	rc = n < 0 ? (int)n : recipe_decode(NULL, buf, (size_t)n, r);
	free(buf);
	if (rc == -ESTALE)
		rc = -EBADMSG;
	return rc;
}

static void refuse(const struct wk_op *op, const char *why)
{
	char hs[WK_HASH_STRLEN], ids[WK_ID_STRLEN];

	wk_err("refusing the content of put %s (%s): %s",
	       wk_id_str(op->id, ids), wk_hash_str(&op->hash, hs), why);
}

int content_fetch(struct syncd *s, const struct wk_op *op,
		  const struct wire_content_ref *ref)
{
	struct recipe r;
	struct wk_hash got;
	int rc;

	if (op->size == 0 || mat_object_have(s->mat, &op->hash))
		return 0;
	if (ref->how == WIRE_CONTENT_NONE) {
		refuse(op, "its sender did not ship it (the file changed)");
		return 0;
	}
	if (ref->how == WIRE_CONTENT_WHOLE && op->size > CHUNK_MAX) {
		refuse(op, "a whole-file chunk larger than any chunk");
		return 0;
	}
	mkdirat(s->dirfd, CHUNK_CACHE, 0700);
	rc = load_recipe(s, op, ref, &r);
	if (!rc && recipe_size(&r) != op->size)
		rc = -EBADMSG;
	if (!rc)
		rc = get_chunks(s, &r);
	if (!rc)
		rc = assemble(s, &r, &got);
	if (!rc && memcmp(&got, &op->hash, sizeof(got)) != 0) {
		mat_object_drop(s->mat, &got);
		rc = -EBADMSG;
	}
	for (size_t i = 0; i < r.n; i++)
		cache_drop(s, &r.v[i].name);
	recipe_release(&r);
	if (rc == -EBADMSG || rc == -ENOENT) {
		refuse(op, rc == -ENOENT ? "the relay lacks a chunk of it"
					 : "it does not match its hash");
		return 0;
	}
	return rc;
}
