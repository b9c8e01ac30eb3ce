/*
 * syncd_fetch.c - bringing the content of a received put into the object
 * store, fetching only the chunks no local content holds.
 *
 * The recipe is one whole chunk named by the put's hash, or the recipe
 * chunk the put names: taken from the recipe cache when it has the put's
 * content from that chunk (or re-encodes to it), else fetched: a plain
 * recipe, or a delta recipe chunk resolved against the cached recipe of
 * its base content or, failing that, by following its chain of base
 * recipe chunks on the relay (resolve()).
 * Then each chunk comes from .wkfs/chunks (fetched earlier), from a local
 * content that holds it (syncd_local.c: the put's own file in DIR, an
 * object, any file whose cached recipe names it), or from the relay with
 * CHUNK_GET.  The file is assembled in .wkfs/tmp; each local chunk is
 * hashed as it is copied, and one that no longer matches (its file
 * changed under us) is fetched after all and written in its place.  The
 * object store (mat_object_put) hashes what it stored; a mismatch with the
 * put's hash is refused and logged.
 *
 * The recipe then goes into the cache at the current relay epoch: the
 * relay holds all its chunks, since its sender made sure of that before
 * pushing the put.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytebuf.h"
#include "chunk.h"
#include "content.h"
#include "content_int.h"
#include "recipe.h"
#include "recipe_cache.h"
#include "wlog.h"

/* ---- fetched chunks waiting in .wkfs/chunks ---- */

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

static void cache_drop(struct syncd *s, const struct wk_hash *h)
{
	char p[128];

	cache_path(h, p, sizeof(p));
	unlinkat(s->dirfd, p, 0);
}

/* ---- CHUNK_GET ---- */

static int cmp_name(const void *a, const void *b)
{
	return memcmp(a, b, WIRE_NAME_LEN);
}

/* CHUNK_GET for a group of distinct names: 0, -ENOENT (the relay lacks
 * one), -EBADMSG (a chunk does not match its name). */
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
		rc = content_recv(s, &m);
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

/* Brings the n names (WIRE_NAME_LEN bytes each; sorted and deduplicated
 * here) into .wkfs/chunks; *fetched (may be NULL) gets how many were
 * asked for. */
static int get_names(struct syncd *s, uint8_t *names, size_t n, size_t *fetched)
{
	size_t k = 0;
	int rc = 0;

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
	if (fetched)
		*fetched += k;
	return rc;
}

/* ---- the recipe ---- */

/* The cached recipe of the put's content, if it came from the chunk the
 * put names (or its plain encoding is that chunk). */
static bool recipe_from_cache(struct syncd *s, const struct wk_op *op,
			      const struct wire_content_ref *ref,
			      struct recipe *r, unsigned *depth)
{
	struct rcache_ref have;
	struct wk_hash name;
	uint64_t epoch;
	struct bbuf b;
	bool ok;

	if (!s->rcache || rcache_get(s->rcache, &op->hash, r, NULL))
		return false;
	*depth = 0;
	if (!rcache_ref(s->rcache, &op->hash, &epoch, &have) &&
	    !memcmp(&have.chunk, &ref->recipe, sizeof(have.chunk))) {
		*depth = have.depth;
		return true;
	}
	bbuf_init(&b, WIRE_CHUNK_MAX);
	ok = !recipe_encode(r, &b);
	if (ok)
		content_hash_buf(b.p, b.len, &name);
	ok = ok && !memcmp(&name, &ref->recipe, sizeof(name));
	bbuf_release(&b);
	if (!ok)
		recipe_release(r);
	return ok;
}

/* Reads recipe chunk name (fetched if need be) into buf: its length or
 * -errno. */
static ssize_t read_rchunk(struct syncd *s, const struct wk_hash *name,
			   uint8_t *buf)
{
	uint8_t n[WIRE_NAME_LEN];
	int rc;

	memcpy(n, name->b, WIRE_NAME_LEN);
	if (!cache_have(s, name)) {
		rc = get_names(s, n, 1, NULL);
		if (rc)
			return rc;
	}
	return cache_read(s, name, buf, WIRE_CHUNK_MAX);
}

/*
 * Applies the delta recipe chunk in buf[0 .. n) to the cached recipe of
 * its base content: 0 with *out and *depth (the deltas from this chunk to
 * a plain one: RCHUNK_CHAIN_MAX when the base's own chain is not known);
 * -ESTALE when nothing usable is cached (absent, or not the recipe the
 * delta was made against: follow the chain instead); -errno.
 */
static int from_cached_base(struct syncd *s, const struct wk_hash *content,
			    const struct wk_hash *chunk, const uint8_t *buf,
			    size_t n, struct recipe *out, unsigned *depth)
{
	char hs[WK_HASH_STRLEN];
	struct recipe cached;
	struct rcache_ref ref;
	uint64_t epoch;
	int rc;

	if (!s->rcache || rcache_get(s->rcache, content, &cached, NULL))
		return -ESTALE;
	rc = recipe_delta_apply(&cached, buf + RCHUNK_HEAD_LEN,
				n - RCHUNK_HEAD_LEN, out);
	recipe_release(&cached);
	if (rc == -ESTALE)
		wk_warn("the cached recipe of %s is not the one a delta "
			"recipe was made against: following its chain",
			wk_hash_str(content, hs));
	if (rc)
		return rc;
	*depth = RCHUNK_CHAIN_MAX;
	if (!rcache_ref(s->rcache, content, &epoch, &ref) &&
	    !memcmp(&ref.chunk, chunk, sizeof(ref.chunk)))
		*depth = 1 + ref.depth;
	return 0;
}

/*
 * The recipe in recipe chunk `top`, following delta recipe chunks down to
 * a base whose recipe this replica has cached (and that the delta accepts:
 * a cached recipe that is not the one the delta was made against gives
 * -ESTALE and the chain is followed further) or to a plain recipe chunk,
 * then applying the deltas back up.  *depth gets the deltas between top
 * and a plain chunk (RCHUNK_CHAIN_MAX when a cached base's is not known).
 * 0; -EBADMSG (a malformed chunk); -ELOOP (a chain over the limit);
 * -ESTALE (a delta does not fit the recipe its chain leads to); -ENOENT
 * (the relay lacks a chunk of the chain); -errno.
 */
static int resolve(struct syncd *s, const struct wk_hash *top,
		   struct recipe *out, unsigned *depth)
{
	/* Every chunk read, top first: at most the deltas and a plain. */
	struct wk_hash seen[RCHUNK_CHAIN_MAX + 1], base_content;
	struct recipe base = RECIPE_INIT, next;
	uint8_t *buf = malloc(WIRE_CHUNK_MAX);
	size_t nseen = 0, ndelta; /* deltas still to apply: seen[0..) */
	ssize_t n;
	int rc = 0;

	recipe_init(out);
	if (!buf)
		return -ENOMEM;
	seen[nseen++] = *top;
	for (;;) {
		n = read_rchunk(s, &seen[nseen - 1], buf);
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n > 0 && buf[0] == RECIPE_TAG_PLAIN) {
			rc = recipe_decode(NULL, buf, (size_t)n, &base);
			ndelta = nseen - 1;
			*depth = (unsigned)ndelta;
			break;
		}
		if (n <= RCHUNK_HEAD_LEN || buf[0] != RCHUNK_DELTA) {
			rc = -EBADMSG;
			goto out;
		}
		if (nseen == RCHUNK_CHAIN_MAX + 1) {
			rc = -ELOOP;
			goto out;
		}
		memcpy(base_content.b, buf + 1, WIRE_NAME_LEN);
		memcpy(seen[nseen].b, buf + 1 + WIRE_NAME_LEN, WIRE_NAME_LEN);
		nseen++;
		rc = from_cached_base(s, &base_content, &seen[nseen - 1], buf,
				      (size_t)n, &base, depth);
		if (rc != -ESTALE) {
			/* Done (this delta applied) or failed. */
			ndelta = nseen - 2;
			*depth += (unsigned)ndelta;
			break;
		}
	}
	/* Back up the chain: each delta applies to the recipe below it. */
	while (!rc && ndelta > 0) {
		n = cache_read(s, &seen[--ndelta], buf, WIRE_CHUNK_MAX);
		if (n <= RCHUNK_HEAD_LEN) {
			rc = n < 0 ? (int)n : -EBADMSG;
			break;
		}
		rc = recipe_delta_apply(&base, buf + RCHUNK_HEAD_LEN,
					(size_t)n - RCHUNK_HEAD_LEN, &next);
		recipe_release(&base);
		base = next;
	}
	if (!rc) {
		*out = base;
		recipe_init(&base);
	}
out:
	for (size_t i = 0; i < nseen; i++)
		cache_drop(s, &seen[i]);
	recipe_release(&base);
	free(buf);
	return rc;
}

/* The recipe of a put: one whole chunk, cached, or fetched and decoded
 * (*depth: its delta chain, 0 for plain). */
static int load_recipe(struct syncd *s, const struct wk_op *op,
		       const struct wire_content_ref *ref, struct recipe *r,
		       unsigned *depth)
{
	recipe_init(r);
	*depth = 0;
	if (ref->how == WIRE_CONTENT_WHOLE)
		return recipe_push(r, &op->hash, (uint32_t)op->size);
	if (recipe_from_cache(s, op, ref, r, depth))
		return 0;
	return resolve(s, &ref->recipe, r, depth);
}

/* ---- assembling ---- */

enum source {
	FROM_CACHE, /* .wkfs/chunks (fetched now or before) */
	FROM_LOCAL, /* a local content, verified when read */
	FROM_RETRY, /* was local, did not check out: fetched after all */
};

struct fetch {
	struct recipe r;
	uint8_t *src; /* enum source per entry */
	struct local lc;
	size_t nlocal;	/* entries read locally */
	size_t fetched; /* distinct chunks fetched */
};

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t k = pwrite(fd, p, n, (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		p += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* Decides where each chunk comes from and fetches what is nowhere
 * here. */
static int plan(struct syncd *s, struct fetch *f)
{
	uint8_t *names = malloc(f->r.n * WIRE_NAME_LEN + 1);
	size_t n = 0;
	int rc;

	f->src = malloc(f->r.n + 1);
	if (!names || !f->src) {
		free(names);
		return -ENOMEM;
	}
	for (size_t i = 0; i < f->r.n; i++) {
		const struct recipe_entry *e = &f->r.v[i];

		f->src[i] = FROM_CACHE;
		if (cache_have(s, &e->name))
			continue;
		if (local_has(&f->lc, e)) {
			f->src[i] = FROM_LOCAL;
			continue;
		}
		memcpy(names + n++ * WIRE_NAME_LEN, e->name.b, WIRE_NAME_LEN);
	}
	rc = get_names(s, names, n, &f->fetched);
	free(names);
	return rc;
}

/* Writes entry i (at off) from .wkfs/chunks into fd. */
static int copy_cached(struct syncd *s, struct fetch *f, size_t i, int fd,
		       uint64_t off, uint8_t *buf)
{
	ssize_t n = cache_read(s, &f->r.v[i].name, buf, CHUNK_MAX);

	if (n < 0)
		return (int)n;
	if ((size_t)n != f->r.v[i].len)
		return -EBADMSG;
	return pwrite_all(fd, buf, (size_t)n, off);
}

/* Concatenates the chunks of f->r into the object store: *got gets the
 * hash of what was stored. */
static int assemble(struct syncd *s, struct fetch *f, struct wk_hash *got)
{
	uint8_t *buf = malloc(CHUNK_MAX), *retry = NULL;
	int fd = -1, rc = 0;
	size_t nretry = 0;
	uint64_t off = 0;

	fd = content_open_tmp(s);
	if (!buf || fd < 0) {
		rc = fd < 0 ? fd : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < f->r.n && !rc; off += f->r.v[i].len, i++) {
		if (f->src[i] == FROM_CACHE) {
			rc = copy_cached(s, f, i, fd, off, buf);
		} else if (local_read(&f->lc, &f->r.v[i], buf) == 0) {
			f->nlocal++;
			rc = pwrite_all(fd, buf, f->r.v[i].len, off);
		} else {
			f->src[i] = FROM_RETRY;
			nretry++;
		}
	}
	if (!rc && nretry) {
		size_t k = 0;

		retry = malloc(nretry * WIRE_NAME_LEN);
		if (!retry) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < f->r.n; i++)
			if (f->src[i] == FROM_RETRY)
				memcpy(retry + k++ * WIRE_NAME_LEN,
				       f->r.v[i].name.b, WIRE_NAME_LEN);
		rc = get_names(s, retry, nretry, &f->fetched);
		off = 0;
		for (size_t i = 0; i < f->r.n && !rc; off += f->r.v[i].len, i++)
			if (f->src[i] == FROM_RETRY)
				rc = copy_cached(s, f, i, fd, off, buf);
	}
	if (!rc)
		rc = mat_object_put(s->mat, fd, got);
out:
	if (fd >= 0)
		close(fd);
	free(retry);
	free(buf);
	return rc;
}

int content_fetch(struct syncd *s, const struct wk_op *op,
		  const struct wire_content_ref *ref)
{
	struct fetch f = {.src = NULL};
	char hs[WK_HASH_STRLEN];
	struct rcache_ref cref = {.depth = 0};
	struct wk_hash got;
	int rc;

	if (!content_wanted(s, op, ref))
		return 0;
	mkdirat(s->dirfd, CHUNK_CACHE, 0700);
	local_init(&f.lc, s, op);
	rc = load_recipe(s, op, ref, &f.r, &cref.depth);
	if (!rc && recipe_size(&f.r) != op->size)
		rc = -EBADMSG;
	if (!rc)
		rc = plan(s, &f);
	if (!rc)
		rc = assemble(s, &f, &got);
	if (!rc && memcmp(&got, &op->hash, sizeof(got)) != 0) {
		mat_object_drop(s->mat, &got);
		rc = -EBADMSG;
	}
	if (!rc) {
		wk_info("content %s: %zu chunks, %zu found here, %zu fetched",
			wk_hash_str(&op->hash, hs), f.r.n, f.nlocal, f.fetched);
		/* The relay has this recipe in the chunk the put names. */
		cref.chunk = ref->recipe;
		if (f.r.n > 1 && s->rcache)
			rcache_put_ref(s->rcache, &op->hash, &f.r, s->epoch,
				       &cref);
	}
	for (size_t i = 0; i < f.r.n; i++)
		cache_drop(s, &f.r.v[i].name);
	local_release(&f.lc);
	recipe_release(&f.r);
	free(f.src);
	switch (rc) {
	case -ENOENT:
		content_refuse(op, "the relay lacks a chunk of it (or of its "
				   "recipe's chain)");
		return 0;
	case -EBADMSG:
		content_refuse(op,
			       "it (or its recipe) does not match its hash");
		return 0;
	case -ESTALE:
	case -ELOOP:
		content_refuse(
			op, rc == -ELOOP ? "its delta recipe chain is too long"
					 : "its delta recipe does not fit the "
					   "recipe its chain leads to");
		return 0;
	}
	return rc;
}
