/*
 * recipe_cache.c - cached recipes on disk and a chunk-name index over them
 * (see recipe_cache.h).
 *
 * What it is not: it reads no contents (only the caller knows where a
 * content lives: the object store, a file in DIR) and trusts nothing it
 * finds on disk beyond its checksum.
 */
#include "recipe_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "bytebuf.h"
#include "chunk.h"
#include "content.h"

#define MAGIC	    "WKRC"
#define VERSION	    2
#define HEAD1_LEN   13 /* version 1: magic, version, epoch */
#define HEAD_LEN    30 /* and the relay's recipe chunk, its depth */
#define TRAILER_LEN 8  /* checksum */
/* The largest plain recipe: tag, count, entries of name + 3-byte length. */
#define FILE_MAX                                                            \
	(HEAD_LEN + 1 + BBUF_VARINT_MAX + (size_t)RECIPE_MAX_ENTRIES * 19 + \
	 TRAILER_LEN)
#define NONE UINT32_MAX

struct rc_src {
	struct wk_hash hash;   /* a content */
	uint64_t epoch;	       /* its relay epoch, 0 when unknown */
	struct rcache_ref ref; /* valid with epoch only */
};

/* One distinct chunk name of one content. */
struct rc_ent {
	struct wk_hash name;
	uint64_t off;  /* where its first occurrence starts in the content */
	uint32_t len;  /* its length */
	uint32_t src;  /* the content, an index into rc->src */
	uint32_t next; /* the previous (older) entry with this name, NONE */
};

/* Open addressing over 32-bit values whose keys live in rc's arrays;
 * linear probing, at most half full. */
struct rc_tab {
	uint32_t *slot; /* NONE when empty */
	size_t mask;	/* slots - 1 */
	size_t used;
};

struct rcache {
	int dirfd;     /* DIR/.wkfs/recipes */
	bool loaded;   /* every file is in the index */
	bool full;     /* RCACHE_INDEX_MAX reached: no more names indexed */
	uint64_t seed; /* of the slot hash, per process */

	struct rc_src *src;
	size_t nsrc, asrc;
	struct rc_ent *ent;
	size_t nent, aent;
	struct rc_tab names; /* name -> its newest entry */
	struct rc_tab srcs;  /* content hash -> its src */
};

typedef const struct wk_hash *(*rc_key_fn)(const struct rcache *rc, uint32_t v);

static const struct wk_hash *name_key(const struct rcache *rc, uint32_t v)
{
	return &rc->ent[v].name;
}

static const struct wk_hash *src_key(const struct rcache *rc, uint32_t v)
{
	return &rc->src[v].hash;
}

/* The slot holding k, or the empty slot where it would go. */
static uint32_t *tab_slot(const struct rcache *rc, const struct rc_tab *t,
			  rc_key_fn key, const struct wk_hash *k)
{
	size_t s = XXH3_64bits_withSeed(k->b, sizeof(k->b), rc->seed) & t->mask;

	for (;; s = (s + 1) & t->mask) {
		uint32_t v = t->slot[s];

		if (v == NONE || !memcmp(key(rc, v)->b, k->b, sizeof(k->b)))
			return &t->slot[s];
	}
}

/* Makes room for one more key: 0 or -ENOMEM. */
static int tab_reserve(const struct rcache *rc, struct rc_tab *t, rc_key_fn key)
{
	struct rc_tab nt;
	size_t slots = t->slot ? t->mask + 1 : 0;

	if (2 * (t->used + 1) <= slots)
		return 0;
	slots = slots ? 2 * slots : 1024;
	nt.slot = malloc(slots * sizeof(*nt.slot));
	if (!nt.slot)
		return -ENOMEM;
	memset(nt.slot, 0xff, slots * sizeof(*nt.slot));
	nt.mask = slots - 1;
	nt.used = t->used;
	for (size_t i = 0; t->slot && i <= t->mask; i++)
		if (t->slot[i] != NONE)
			*tab_slot(rc, &nt, key, key(rc, t->slot[i])) =
				t->slot[i];
	free(t->slot);
	*t = nt;
	return 0;
}

static uint32_t src_find(const struct rcache *rc, const struct wk_hash *h)
{
	return rc->srcs.slot ? *tab_slot(rc, &rc->srcs, src_key, h) : NONE;
}

/* Grows *v (of *alloc elements of size sz) to hold n + 1. */
static int grow(void **v, size_t *alloc, size_t n, size_t sz)
{
	size_t na = *alloc ? 2 * *alloc : 64;
	void *p;

	if (n < *alloc)
		return 0;
	p = realloc(*v, na * sz);
	if (!p)
		return -ENOMEM;
	*v = p;
	*alloc = na;
	return 0;
}

/* Adds content h with recipe r to the index: 0 or -ENOMEM. */
static int index_add(struct rcache *rc, const struct wk_hash *h,
		     const struct recipe *r, uint64_t epoch,
		     const struct rcache_ref *ref)
{
	uint32_t s = (uint32_t)rc->nsrc, *slot;
	uint64_t off = 0;
	int rc_;

	rc_ = grow((void **)&rc->src, &rc->asrc, rc->nsrc, sizeof(*rc->src));
	if (!rc_)
		rc_ = tab_reserve(rc, &rc->srcs, src_key);
	if (rc_)
		return rc_;
	rc->src[s] = (struct rc_src){.hash = *h, .epoch = epoch, .ref = *ref};
	rc->nsrc++;
	*tab_slot(rc, &rc->srcs, src_key, h) = s;
	rc->srcs.used++;
	for (size_t i = 0; i < r->n && !rc->full; off += r->v[i].len, i++) {
		const struct recipe_entry *e = &r->v[i];
		struct rc_ent *ne;

		if (rc->nent == RCACHE_INDEX_MAX ||
		    grow((void **)&rc->ent, &rc->aent, rc->nent,
			 sizeof(*rc->ent)) ||
		    tab_reserve(rc, &rc->names, name_key)) {
			/* Stored but not indexed: costs bytes, not
			 * correctness. */
			rc->full = true;
			break;
		}
		slot = tab_slot(rc, &rc->names, name_key, &e->name);
		/* A name repeated in one content is indexed once. */
		if (*slot != NONE && rc->ent[*slot].src == s)
			continue;
		ne = &rc->ent[rc->nent];
		*ne = (struct rc_ent){.name = e->name,
				      .off = off,
				      .len = e->len,
				      .src = s,
				      .next = *slot};
		if (*slot == NONE)
			rc->names.used++;
		*slot = (uint32_t)rc->nent++;
	}
	return 0;
}

/* ---- files ---- */

static void put_u64le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static bool parse_hex(const char *s, struct wk_hash *h)
{
	if (strlen(s) != 32)
		return false;
	for (int i = 0; i < 32; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
					       : -1;

		if (v < 0)
			return false;
		if (i % 2 == 0)
			h->b[i / 2] = (uint8_t)(v << 4);
		else
			h->b[i / 2] |= (uint8_t)v;
	}
	return true;
}

/* Reads the file of content hex: 0, -ENOENT (absent or damaged: removed),
 * -ENOMEM, -errno. */
static int read_file(struct rcache *rc, const char *hex, struct recipe *out,
		     uint64_t *epoch, struct rcache_ref *ref)
{
	size_t head;

	uint8_t *p = NULL;
	struct stat st;
	size_t n = 0;
	int fd, rc_ = 0;

	recipe_init(out);
	fd = openat(rc->dirfd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc_ = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < HEAD1_LEN + 2 + TRAILER_LEN ||
	    (uint64_t)st.st_size > FILE_MAX)
		goto out_bad;
	p = malloc((size_t)st.st_size);
	if (!p) {
		rc_ = -ENOMEM;
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t k = pread(fd, p + n, (size_t)st.st_size - n, (off_t)n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			goto out_bad;
		n += (size_t)k;
	}
	/* Version 1 files (no recipe chunk) are read as they are. */
	head = p[4] == 1 ? HEAD1_LEN : HEAD_LEN;
	if (memcmp(p, MAGIC, 4) || (p[4] != 1 && p[4] != VERSION) ||
	    n < head + 2 + TRAILER_LEN ||
	    XXH3_64bits(p, n - TRAILER_LEN) != get_u64le(p + n - TRAILER_LEN) ||
	    recipe_decode(NULL, p + head, n - head - TRAILER_LEN, out))
		goto out_bad;
	if (epoch)
		*epoch = get_u64le(p + 5);
	if (ref) {
		memset(ref, 0, sizeof(*ref));
		if (head == HEAD_LEN) {
			memcpy(ref->chunk.b, p + HEAD1_LEN, 16);
			ref->depth = p[HEAD1_LEN + 16];
		}
	}
	goto out;

out_bad:
	unlinkat(rc->dirfd, hex, 0);
	rc_ = -ENOENT;
out:
	free(p);
	close(fd);
	return rc_;
}

static int write_file(struct rcache *rc, const struct wk_hash *h,
		      const struct recipe *r, uint64_t epoch,
		      const struct rcache_ref *ref)
{
	char hex[WK_HASH_STRLEN], tmp[64];
	uint8_t head[HEAD_LEN], sum[TRAILER_LEN];
	struct bbuf b;
	size_t done = 0;
	int fd, rc_;

	memcpy(head, MAGIC, 4);
	head[4] = VERSION;
	put_u64le(head + 5, epoch);
	memcpy(head + HEAD1_LEN, ref->chunk.b, 16);
	head[HEAD1_LEN + 16] = (uint8_t)ref->depth;
	bbuf_init(&b, FILE_MAX);
	bbuf_put(&b, head, sizeof(head));
	recipe_encode(r, &b);
	rc_ = bbuf_error(&b);
	if (rc_)
		goto out;
	put_u64le(sum, XXH3_64bits(b.p, b.len));
	rc_ = bbuf_put(&b, sum, sizeof(sum));
	if (rc_)
		goto out;
	wk_hash_str(h, hex);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", hex, (int)getpid());
	fd = openat(rc->dirfd, tmp,
		    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		rc_ = -errno;
		goto out;
	}
	while (done < b.len && !rc_) {
		ssize_t k = write(fd, b.p + done, b.len - done);

		if (k < 0 && errno != EINTR)
			rc_ = -errno;
		else if (k > 0)
			done += (size_t)k;
	}
	if (close(fd) < 0 && !rc_)
		rc_ = -errno;
	if (!rc_ && renameat(rc->dirfd, tmp, rc->dirfd, hex) < 0)
		rc_ = -errno;
	if (rc_)
		unlinkat(rc->dirfd, tmp, 0);
out:
	bbuf_release(&b);
	return rc_;
}

struct rc_file {
	struct wk_hash hash;
	struct timespec mtime;
};

static int by_mtime(const void *a, const void *b)
{
	const struct rc_file *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return memcmp(x->hash.b, y->hash.b, sizeof(x->hash.b));
}

/* Lists the cache's files (temporaries a crash left behind are removed)
 * into *out, oldest first. */
static int list_files(struct rcache *rc, struct rc_file **out, size_t *n)
{
	struct rc_file *v = NULL;
	struct dirent *de;
	size_t alloc = 0;
	DIR *d;
	int fd, rc_ = 0;

	*n = 0;
	fd = openat(rc->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct wk_hash h;
		struct stat st;

		if (strstr(de->d_name, ".tmp.")) {
			unlinkat(rc->dirfd, de->d_name, 0);
			continue;
		}
		if (!parse_hex(de->d_name, &h) ||
		    fstatat(rc->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		rc_ = grow((void **)&v, &alloc, *n, sizeof(*v));
		if (rc_)
			break;
		v[(*n)++] = (struct rc_file){.hash = h, .mtime = st.st_mtim};
	}
	closedir(d);
	if (rc_) {
		free(v);
		return rc_;
	}
	if (*n)
		qsort(v, *n, sizeof(*v), by_mtime);
	*out = v;
	return 0;
}

/*
 * Indexes every file, oldest first, so that rcache_find() reports the
 * contents stored last first, across restarts too: after an edit, the
 * version it replaced is the best base for a delta and the likeliest
 * local copy of a chunk.
 */
static int load_all(struct rcache *rc)
{
	struct rc_file *v = NULL;
	size_t n;
	int rc_;

	if (rc->loaded)
		return 0;
	rc_ = list_files(rc, &v, &n);
	for (size_t i = 0; i < n && !rc_; i++) {
		char hex[WK_HASH_STRLEN];
		struct rcache_ref ref;
		struct recipe r;
		uint64_t epoch;

		if (src_find(rc, &v[i].hash) != NONE ||
		    read_file(rc, wk_hash_str(&v[i].hash, hex), &r, &epoch,
			      &ref))
			continue;
		rc_ = index_add(rc, &v[i].hash, &r, epoch, &ref);
		recipe_release(&r);
	}
	free(v);
	if (!rc_)
		rc->loaded = true;
	return rc_;
}

/* ---- the interface ---- */

int rcache_open(int dirfd, struct rcache **out)
{
	struct rcache *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return -ENOMEM;
	if (mkdirat(dirfd, RCACHE_DIR, 0700) < 0 && errno != EEXIST) {
		free(rc);
		return -errno;
	}
	rc->dirfd = openat(dirfd, RCACHE_DIR,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rc->dirfd < 0) {
		int e = -errno;

		free(rc);
		return e;
	}
	if (getrandom(&rc->seed, sizeof(rc->seed), GRND_NONBLOCK) !=
	    sizeof(rc->seed))
		rc->seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	*out = rc;
	return 0;
}

void rcache_close(struct rcache *rc)
{
	if (!rc)
		return;
	close(rc->dirfd);
	free(rc->src);
	free(rc->ent);
	free(rc->names.slot);
	free(rc->srcs.slot);
	free(rc);
}

int rcache_put(struct rcache *rc, const struct wk_hash *h,
	       const struct recipe *r, uint64_t epoch)
{
	return rcache_put_ref(rc, h, r, epoch, NULL);
}

int rcache_put_ref(struct rcache *rc, const struct wk_hash *h,
		   const struct recipe *r, uint64_t epoch,
		   const struct rcache_ref *ref)
{
	static const struct rcache_ref none;
	uint32_t s;
	int rc_;

	rc_ = load_all(rc);
	if (rc_)
		return rc_;
	s = src_find(rc, h);
	if (epoch == 0 || !ref)
		ref = &none;
	/* Without a chunk, the same epoch keeps the chunk known. */
	if (s != NONE &&
	    (epoch == 0 ||
	     (rc->src[s].epoch == epoch &&
	      (ref == &none || !memcmp(&rc->src[s].ref.chunk, &ref->chunk,
				       sizeof(ref->chunk))))))
		return 0;
	rc_ = write_file(rc, h, r, epoch, ref);
	if (rc_)
		return rc_;
	if (s != NONE) {
		rc->src[s].epoch = epoch;
		rc->src[s].ref = *ref;
		return 0;
	}
	return index_add(rc, h, r, epoch, ref);
}

int rcache_get(struct rcache *rc, const struct wk_hash *h, struct recipe *out,
	       uint64_t *epoch)
{
	char hex[WK_HASH_STRLEN];

	return read_file(rc, wk_hash_str(h, hex), out, epoch, NULL);
}

int rcache_ref(struct rcache *rc, const struct wk_hash *h, uint64_t *epoch,
	       struct rcache_ref *ref)
{
	uint32_t s;

	if (load_all(rc))
		return -ENOENT;
	s = src_find(rc, h);
	if (s == NONE)
		return -ENOENT;
	*epoch = rc->src[s].epoch;
	*ref = rc->src[s].ref;
	return 0;
}

int rcache_epoch(struct rcache *rc, const struct wk_hash *h, uint64_t *epoch)
{
	struct rcache_ref ref;

	return rcache_ref(rc, h, epoch, &ref);
}

int rcache_find(struct rcache *rc, const struct wk_hash *name, uint32_t len,
		rcache_place_fn fn, void *arg)
{
	uint32_t e;
	int rc_;

	rc_ = load_all(rc);
	if (rc_)
		return rc_;
	if (!rc->names.slot)
		return 0;
	e = *tab_slot(rc, &rc->names, name_key, name);
	for (int k = 0; e != NONE && k < RCACHE_FIND_MAX;
	     e = rc->ent[e].next, k++) {
		const struct rc_ent *en = &rc->ent[e];

		if (en->len != len)
			continue;
		rc_ = fn(arg, &rc->src[en->src].hash, en->off,
			 rc->src[en->src].epoch);
		if (rc_)
			return rc_;
	}
	return 0;
}

/* ---- one read for the hash and the recipe ---- */

struct scan {
	XXH3_state_t *xx;
	struct chunker c;
	struct recipe *r;
};

static int scan_chunk(void *arg, const struct chunk *ch)
{
	struct scan *sc = arg;

	return recipe_push(sc->r, &ch->name, ch->len);
}

static int scan_piece(void *arg, const void *p, size_t n)
{
	struct scan *sc = arg;

	XXH3_128bits_update(sc->xx, p, n);
	return chunker_feed(&sc->c, p, n, scan_chunk, sc);
}

int rcache_chunk_fd(int fd, struct recipe *out, struct wk_hash *hash,
		    uint64_t *size)
{
	struct scan sc = {.r = out};
	XXH128_canonical_t canon;
	struct chunk ch;
	int rc_;

	recipe_init(out);
	sc.xx = XXH3_createState();
	if (!sc.xx)
		return -ENOMEM;
	rc_ = chunker_init(&sc.c, CHUNKER_NAME);
	if (rc_) {
		XXH3_freeState(sc.xx);
		return rc_;
	}
	XXH3_128bits_reset(sc.xx);
	rc_ = content_read_pieces(fd, 4u << 20, scan_piece, &sc, size);
	if (!rc_ && chunker_finish(&sc.c, &ch))
		rc_ = scan_chunk(&sc, &ch);
	if (!rc_) {
		XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(sc.xx));
		memcpy(hash->b, canon.digest, sizeof(hash->b));
	} else {
		recipe_release(out);
	}
	chunker_release(&sc.c);
	XXH3_freeState(sc.xx);
	return rc_;
}
