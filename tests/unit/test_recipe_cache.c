/*
 * test_recipe_cache.c - the recipe cache: round trips, epochs that never
 * go down, the chunk-name index (offsets, newest first, one place per
 * content, rebuilt after a reopen), damaged files treated as absent, and
 * rcache_chunk_fd agreeing with content_hash_fd + recipe_from_fd.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "bytebuf.h"
#include "chunk.h"
#include "content.h"
#include "recipe.h"
#include "recipe_cache.h"

struct env {
	char base[256];
	int dirfd;
	struct rcache *rc;
};

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(p) < 0 ? -1 : 0;
}

static int setup(void **state)
{
	const char *t = getenv("TMPDIR");
	struct env *e = calloc(1, sizeof(*e));
	char p[300];

	snprintf(e->base, sizeof(e->base), "%s/wkrc.XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(e->base))
		return -1;
	snprintf(p, sizeof(p), "%s/.wkfs", e->base);
	mkdir(p, 0700);
	e->dirfd = open(e->base, O_RDONLY | O_DIRECTORY);
	if (e->dirfd < 0 || rcache_open(e->dirfd, &e->rc))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	rcache_close(e->rc);
	close(e->dirfd);
	nftw(e->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return 0;
}

static struct wk_hash hash_of(uint64_t x)
{
	struct wk_hash h;

	content_hash_buf(&x, sizeof(x), &h);
	return h;
}

/* A recipe of n entries named by seed + i, of length 1000 + i. */
static struct recipe make(size_t n, uint64_t seed)
{
	struct recipe r = RECIPE_INIT;

	for (size_t i = 0; i < n; i++) {
		struct wk_hash h = hash_of(seed + i);

		assert_int_equal(recipe_push(&r, &h, 1000 + (uint32_t)i), 0);
	}
	return r;
}

struct places {
	int n;
	struct wk_hash content[RCACHE_FIND_MAX];
	uint64_t off[RCACHE_FIND_MAX], epoch[RCACHE_FIND_MAX];
};

static int collect(void *arg, const struct wk_hash *content, uint64_t off,
		   uint64_t epoch)
{
	struct places *p = arg;

	p->content[p->n] = *content;
	p->off[p->n] = off;
	p->epoch[p->n] = epoch;
	p->n++;
	return 0;
}

static struct places find(struct rcache *rc, const struct recipe_entry *en)
{
	struct places p = {0};

	assert_int_equal(rcache_find(rc, &en->name, en->len, collect, &p), 0);
	return p;
}

static void test_put_get_round_trip(void **state)
{
	struct env *e = *state;
	struct recipe r = make(100, 1), got;
	struct wk_hash h = hash_of(42), other = hash_of(43);
	uint64_t epoch = 0;

	assert_int_equal(rcache_get(e->rc, &h, &got, &epoch), -ENOENT);
	assert_int_equal(rcache_put(e->rc, &h, &r, 7), 0);
	assert_int_equal(rcache_get(e->rc, &h, &got, &epoch), 0);
	assert_true(recipe_eq(&r, &got));
	assert_int_equal(epoch, 7);
	recipe_release(&got);
	assert_int_equal(rcache_get(e->rc, &other, &got, NULL), -ENOENT);
	recipe_release(&r);
}

static void test_epoch_never_goes_down(void **state)
{
	struct env *e = *state;
	struct recipe r = make(3, 100), got;
	struct wk_hash h = hash_of(1);
	struct places p;
	uint64_t epoch;

	assert_int_equal(rcache_epoch(e->rc, &h, &epoch), -ENOENT);
	assert_int_equal(rcache_put(e->rc, &h, &r, 0), 0);
	assert_int_equal(rcache_epoch(e->rc, &h, &epoch), 0);
	assert_int_equal(epoch, 0);
	p = find(e->rc, &r.v[1]);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.epoch[0], 0);
	/* a known epoch replaces "unknown", in the file and the index */
	assert_int_equal(rcache_put(e->rc, &h, &r, 9), 0);
	assert_int_equal(rcache_get(e->rc, &h, &got, &epoch), 0);
	assert_int_equal(epoch, 9);
	recipe_release(&got);
	assert_int_equal(find(e->rc, &r.v[1]).epoch[0], 9);
	/* "unknown" does not lower it; another epoch replaces it */
	assert_int_equal(rcache_put(e->rc, &h, &r, 0), 0);
	assert_int_equal(find(e->rc, &r.v[1]).epoch[0], 9);
	assert_int_equal(rcache_put(e->rc, &h, &r, 11), 0);
	assert_int_equal(find(e->rc, &r.v[1]).epoch[0], 11);
	assert_int_equal(rcache_epoch(e->rc, &h, &epoch), 0);
	assert_int_equal(epoch, 11);
	recipe_release(&r);
}

static void test_find_offsets_newest_first(void **state)
{
	struct env *e = *state;
	struct recipe a = make(10, 500), b = RECIPE_INIT;
	struct wk_hash ha = hash_of(1), hb = hash_of(2);
	struct wk_hash nobody = hash_of(999999);
	struct places p;

	/* b: a new entry, then a's entries 5.. (an insertion at the start);
	 * a's entry 7 twice. */
	assert_int_equal(recipe_push(&b, &nobody, 77), 0);
	for (size_t i = 5; i < 10; i++)
		assert_int_equal(recipe_push(&b, &a.v[i].name, a.v[i].len), 0);
	assert_int_equal(recipe_push(&b, &a.v[7].name, a.v[7].len), 0);
	assert_int_equal(rcache_put(e->rc, &ha, &a, 1), 0);
	assert_int_equal(rcache_put(e->rc, &hb, &b, 2), 0);

	p = find(e->rc, &a.v[7]);
	assert_int_equal(p.n, 2);
	assert_memory_equal(&p.content[0], &hb, sizeof(hb));
	/* in b: 77 + a[5] + a[6], its first occurrence */
	assert_int_equal(p.off[0], 77 + a.v[5].len + a.v[6].len);
	assert_int_equal(p.epoch[0], 2);
	assert_memory_equal(&p.content[1], &ha, sizeof(ha));
	assert_int_equal(p.off[1], recipe_size(&(struct recipe){
					   .v = a.v, .n = 7, .alloc = 7}));
	assert_int_equal(p.epoch[1], 1);

	p = find(e->rc, &a.v[0]);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.off[0], 0);
	/* a wrong length is no match */
	p = (struct places){0};
	assert_int_equal(
		rcache_find(e->rc, &a.v[0].name, a.v[0].len + 1, collect, &p),
		0);
	assert_int_equal(p.n, 0);
	recipe_release(&a);
	recipe_release(&b);
}

/* After a reopen, the contents stored last still come first: files are
 * indexed by their modification times, not in directory order. */
static void test_find_newest_after_reopen(void **state)
{
	struct env *e = *state;
	struct recipe r = make(3, 4000);
	struct wk_hash h[12];
	struct places p;

	for (int i = 0; i < 12; i++) {
		/* stored in one order, modified in another */
		long age = (i * 7) % 12;
		struct timespec t[2] = {{.tv_sec = 1000000 + age},
					{.tv_sec = 1000000 + age}};
		char hex[WK_HASH_STRLEN], path[128];

		h[i] = hash_of(5000 + (uint64_t)i);
		assert_int_equal(rcache_put(e->rc, &h[i], &r, 3), 0);
		snprintf(path, sizeof(path), RCACHE_DIR "/%s",
			 wk_hash_str(&h[i], hex));
		assert_int_equal(utimensat(e->dirfd, path, t, 0), 0);
	}
	rcache_close(e->rc);
	assert_int_equal(rcache_open(e->dirfd, &e->rc), 0);
	p = find(e->rc, &r.v[1]);
	assert_int_equal(p.n, RCACHE_FIND_MAX);
	/* age 11 is i = 5 (35 % 12), age 10 is i = 10 (70 % 12) */
	assert_memory_equal(&p.content[0], &h[5], sizeof(h[5]));
	assert_memory_equal(&p.content[1], &h[10], sizeof(h[10]));
	recipe_release(&r);
}

static void test_index_rebuilt_after_reopen(void **state)
{
	struct env *e = *state;
	struct recipe r = make(5000, 7);
	struct wk_hash h = hash_of(3);
	char p[300];
	struct places pl;

	assert_int_equal(rcache_put(e->rc, &h, &r, 5), 0);
	rcache_close(e->rc);
	/* a temporary a crash left behind goes at the next load */
	snprintf(p, sizeof(p), "%s/" RCACHE_DIR "/x.tmp.1", e->base);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	assert_int_equal(rcache_open(e->dirfd, &e->rc), 0);
	pl = find(e->rc, &r.v[4321]);
	assert_int_equal(pl.n, 1);
	assert_memory_equal(&pl.content[0], &h, sizeof(h));
	assert_int_equal(pl.epoch[0], 5);
	assert_int_equal(access(p, F_OK), -1);
	recipe_release(&r);
}

static void test_damaged_file_is_absent(void **state)
{
	struct env *e = *state;
	struct recipe r = make(20, 9), got;
	struct wk_hash h = hash_of(4);
	char hex[WK_HASH_STRLEN], p[300];
	uint8_t byte;
	int fd;

	assert_int_equal(rcache_put(e->rc, &h, &r, 1), 0);
	snprintf(p, sizeof(p), "%s/" RCACHE_DIR "/%s", e->base,
		 wk_hash_str(&h, hex));
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, 30), 1);
	byte ^= 1;
	assert_int_equal(pwrite(fd, &byte, 1, 30), 1);
	close(fd);
	assert_int_equal(rcache_get(e->rc, &h, &got, NULL), -ENOENT);
	assert_int_equal(access(p, F_OK), -1);
	/* and a cut-short one */
	assert_int_equal(rcache_put(e->rc, &h, &r, 2), 0);
	assert_int_equal(truncate(p, 40), 0);
	assert_int_equal(rcache_get(e->rc, &h, &got, NULL), -ENOENT);
	recipe_release(&r);
}

static bool is_zero(const struct wk_hash *h)
{
	static const struct wk_hash zero;

	return !memcmp(h, &zero, sizeof(zero));
}

/* The relay's recipe chunk of a content: kept with its epoch, across a
 * reopen, replaced by another at the same epoch, dropped with a new one. */
static void test_ref_follows_epoch(void **state)
{
	struct env *e = *state;
	struct recipe r = make(10, 500);
	struct wk_hash h = hash_of(77);
	struct rcache_ref ref = {.chunk = hash_of(78), .depth = 3}, got;
	uint64_t epoch;

	assert_int_equal(rcache_ref(e->rc, &h, &epoch, &got), -ENOENT);
	assert_int_equal(rcache_put_ref(e->rc, &h, &r, 4, &ref), 0);
	assert_int_equal(rcache_ref(e->rc, &h, &epoch, &got), 0);
	assert_int_equal(epoch, 4);
	assert_memory_equal(&got.chunk, &ref.chunk, sizeof(ref.chunk));
	assert_int_equal(got.depth, 3);
	/* no ref at the same epoch keeps it; epoch 0 changes nothing */
	assert_int_equal(rcache_put(e->rc, &h, &r, 4), 0);
	assert_int_equal(rcache_put_ref(e->rc, &h, &r, 0, NULL), 0);
	rcache_close(e->rc);
	assert_int_equal(rcache_open(e->dirfd, &e->rc), 0);
	assert_int_equal(rcache_ref(e->rc, &h, &epoch, &got), 0);
	assert_int_equal(epoch, 4);
	assert_int_equal(got.depth, 3);
	assert_memory_equal(&got.chunk, &ref.chunk, sizeof(ref.chunk));
	/* another chunk at the same epoch replaces it */
	ref.chunk = hash_of(79);
	ref.depth = 0;
	assert_int_equal(rcache_put_ref(e->rc, &h, &r, 4, &ref), 0);
	assert_int_equal(rcache_ref(e->rc, &h, &epoch, &got), 0);
	assert_memory_equal(&got.chunk, &ref.chunk, sizeof(ref.chunk));
	assert_int_equal(got.depth, 0);
	/* a new epoch without one: nothing known about the new relay */
	assert_int_equal(rcache_put(e->rc, &h, &r, 5), 0);
	assert_int_equal(rcache_ref(e->rc, &h, &epoch, &got), 0);
	assert_int_equal(epoch, 5);
	assert_true(is_zero(&got.chunk));
	recipe_release(&r);
}

/* A file of version 1 (before refs) is read, with no ref. */
static void test_version1_file_is_read(void **state)
{
	struct env *e = *state;
	struct recipe r = make(4, 900), got;
	struct wk_hash h = hash_of(90);
	struct rcache_ref ref;
	char hex[WK_HASH_STRLEN], p[300];
	uint8_t buf[512], *q = buf;
	uint64_t epoch = 0, sum;
	struct bbuf b;
	int fd;

	memcpy(q, "WKRC\x01", 5);
	for (int i = 0; i < 8; i++)
		q[5 + i] = (uint8_t)((uint64_t)6 >> (8 * i));
	bbuf_init(&b, 400);
	assert_int_equal(recipe_encode(&r, &b), 0);
	memcpy(q + 13, b.p, b.len);
	sum = XXH3_64bits(buf, 13 + b.len);
	for (int i = 0; i < 8; i++)
		q[13 + b.len + i] = (uint8_t)(sum >> (8 * i));
	snprintf(p, sizeof(p), "%s/" RCACHE_DIR "/%s", e->base,
		 wk_hash_str(&h, hex));
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(fd, buf, 21 + b.len), (ssize_t)(21 + b.len));
	close(fd);
	bbuf_release(&b);
	assert_int_equal(rcache_get(e->rc, &h, &got, &epoch), 0);
	assert_true(recipe_eq(&r, &got));
	assert_int_equal(epoch, 6);
	assert_int_equal(rcache_ref(e->rc, &h, &epoch, &ref), 0);
	assert_true(is_zero(&ref.chunk));
	recipe_release(&got);
	recipe_release(&r);
}

static void test_chunk_fd_matches_separate_reads(void **state)
{
	struct env *e = *state;
	struct recipe a, b;
	struct wk_hash ha, hb;
	uint64_t sa, sb, x = 12345;
	size_t n = 3u << 20;
	uint8_t *buf = malloc(n);
	char p[300];
	int fd;

	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = (uint8_t)(x >> 56);
	}
	snprintf(p, sizeof(p), "%s/f", e->base);
	fd = open(p, O_RDWR | O_CREAT, 0600);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	assert_int_equal(rcache_chunk_fd(fd, &a, &ha, &sa), 0);
	assert_int_equal(content_hash_fd(fd, &hb, &sb), 0);
	assert_int_equal(recipe_from_fd(fd, &b), 0);
	assert_memory_equal(&ha, &hb, sizeof(ha));
	assert_int_equal(sa, n);
	assert_int_equal(sb, n);
	assert_true(a.n > 10);
	assert_true(recipe_eq(&a, &b));
	recipe_release(&a);
	recipe_release(&b);
	close(fd);
	free(buf);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_put_get_round_trip),
		T(test_epoch_never_goes_down),
		T(test_find_offsets_newest_first),
		T(test_find_newest_after_reopen),
		T(test_index_rebuilt_after_reopen),
		T(test_damaged_file_is_absent),
		T(test_chunk_fd_matches_separate_reads),
		T(test_ref_follows_epoch),
		T(test_version1_file_is_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
