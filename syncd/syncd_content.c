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
	const struct content_cut *c;
	const struct recipe *r;	 /* &c->r */
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
	ssize_t n;
	int rc;

	if (i == u->r->n) {
		rc = send_chunk(s, &u->rec_name, u->rec->p, u->rec->len);
		n = (ssize_t)u->rec->len;
	} else {
		n = content_cut_read(u->c, i, u->buf);
		if (n < 0)
			return (int)n;
		rc = send_chunk(s, &u->r->v[i].name, u->buf, (size_t)n);
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
	do
		rc = data_recv(s, &m);
	while (!rc && m.type != WIRE_MISSING);
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
	int rc = 0;

	u->buf = malloc(CHUNK_MAX);
	if (!u->buf)
		return -ENOMEM;
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
	free(u->buf);
	return rc;
}

int content_ship(struct syncd *s, const struct wk_op *op,
		 struct wire_content_ref *ref)
{
	struct content_cut c;
	struct upload u = {.c = &c, .r = &c.r};
	int rc;

	memset(ref, 0, sizeof(*ref));
	ref->how = WIRE_CONTENT_NONE;
	if (op->size == 0) {
		ref->how = WIRE_CONTENT_WHOLE;
		return 0;
	}
	rc = content_cut_open(s, op, &c);
	if (rc)
		return rc > 0 ? 0 : rc;
	if (c.r.n > 1) {
		u.rec = &c.rec;
		u.rec_name = c.rec_name;
	}
	rc = upload(s, &u);
	if (rc == -ESTALE) {
		content_not_shipped(op, c.path,
				    "the file changed while reading it");
		rc = 0;
	} else if (!rc) {
		ref->how = c.r.n > 1 ? WIRE_CONTENT_RECIPE : WIRE_CONTENT_WHOLE;
		if (c.r.n > 1)
			ref->recipe = c.rec_name;
	}
	content_cut_release(&c);
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

/* Reads a cached chunk (at most max bytes) into buf (content_chunk_fn). */
static ssize_t cache_read(void *arg, const struct wk_hash *h, uint8_t *buf,
			  size_t max)
{
	struct syncd *s = arg;
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
		rc = content_assemble(s, &r, cache_read, s, &got);
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
