/*
 * test_chunk.c - content-defined chunking: cut points that depend on the
 * bytes alone, sizes within bounds, resynchronisation after edits, and
 * golden values that pin the on-wire format (gear table, masks, sizes).
 *
 * Data is splitmix64 from fixed seeds, so every run sees the same bytes; a
 * seed is printed with any failure that depends on it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "chunk.h"

#define MiB (1024u * 1024)

/* Pinned by test_golden_boundaries: never change (see chunk.h). */
#define GOLDEN_N	  70
#define GOLDEN_BOUNDARIES 0x4b80b9a3e2a9dedcULL
#define GOLDEN_FIRST	  "f7fd7fa4c8e928725c6ac43edc11ffc8"

/* Sanitizers slow the gear loop several times: use less data there. */
#if defined(__SANITIZE_ADDRESS__)
#define BIG (16 * MiB)
#else
#define BIG (64 * MiB)
#endif

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint8_t *random_bytes(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n);

	assert_non_null(p);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = splitmix64(&seed);

		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
	return p;
}

/* A growing list of chunks, filled by the chunk_fn below. */
struct chunks {
	struct chunk *v;
	size_t n, alloc;
};

static int collect(void *arg, const struct chunk *ch)
{
	struct chunks *cs = arg;

	if (cs->n == cs->alloc) {
		cs->alloc = cs->alloc ? cs->alloc * 2 : 64;
		cs->v = realloc(cs->v, cs->alloc * sizeof(*cs->v));
		assert_non_null(cs->v);
	}
	cs->v[cs->n++] = *ch;
	return 0;
}

static void chunks_free(struct chunks *cs)
{
	free(cs->v);
	*cs = (struct chunks){0};
}

/* Chunks p[0 .. n) in one piece. */
static struct chunks chunk_buf(const void *p, size_t n, unsigned flags)
{
	struct chunks cs = {0};
	struct chunker c;
	struct chunk ch;

	assert_int_equal(chunker_init(&c, flags), 0);
	assert_int_equal(chunker_feed(&c, p, n, collect, &cs), 0);
	if (chunker_finish(&c, &ch))
		collect(&cs, &ch);
	chunker_release(&c);
	return cs;
}

static void assert_chunks_equal(const struct chunks *a, const struct chunks *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		assert_int_equal(a->v[i].off, b->v[i].off);
		assert_int_equal(a->v[i].len, b->v[i].len);
		assert_memory_equal(a->v[i].name.b, b->v[i].name.b, 16);
	}
}

static void test_gear_table_is_splitmix64(void **state)
{
	uint64_t seed = 0x776b667367656172ULL; /* "wkfsgear" */

	for (int i = 0; i < 256; i++)
		assert_int_equal(chunk_gear[i], splitmix64(&seed));
	assert_int_equal(chunk_gear[0], 0xeca95d92db63108aULL);
}

/*
 * The golden values: where a fixed 4 MiB input is cut and what its first
 * chunk is called.  A change here changes every replica's chunks: it is a
 * format break, not a test to update.
 */
static void test_golden_boundaries(void **state)
{
	uint8_t *p = random_bytes(4 * MiB, 1);
	struct chunks cs = chunk_buf(p, 4 * MiB, CHUNKER_NAME);
	uint64_t pairs[2 * 128];
	char hex[WK_HASH_STRLEN];

	assert_true(cs.n <= 128);
	for (size_t i = 0; i < cs.n; i++) {
		pairs[2 * i] = cs.v[i].off;
		pairs[2 * i + 1] = cs.v[i].len;
	}
	print_message("golden: %zu chunks, boundaries %016" PRIx64
		      ", first %s\n",
		      cs.n, (uint64_t)XXH3_64bits(pairs, cs.n * 16),
		      wk_hash_str(&cs.v[0].name, hex));
	assert_int_equal(cs.n, GOLDEN_N);
	assert_int_equal(XXH3_64bits(pairs, cs.n * 16), GOLDEN_BOUNDARIES);
	assert_string_equal(wk_hash_str(&cs.v[0].name, hex), GOLDEN_FIRST);
	/* The name is XXH3-128 of the bytes, big-endian (as content.c). */
	{
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits(p, cs.v[0].len));
		assert_memory_equal(c.digest, cs.v[0].name.b, 16);
	}
	chunks_free(&cs);
	free(p);
}

/* Feeds p in pieces of random sizes (some empty, some single bytes), using
 * chunk_next() directly. */
static struct chunks chunk_pieces(const uint8_t *p, size_t n, uint64_t seed)
{
	struct chunks cs = {0};
	struct chunker c;
	struct chunk ch;
	size_t at = 0;

	assert_int_equal(chunker_init(&c, CHUNKER_NAME), 0);
	while (at < n) {
		uint64_t r = splitmix64(&seed);
		size_t piece, used;

		switch (r % 4) {
		case 0:
			piece = r >> 32 & 3; /* 0 .. 3 bytes */
			break;
		case 1:
			piece = (r >> 32) % 4096;
			break;
		default:
			piece = (r >> 32) % (3 * CHUNK_MAX);
		}
		if (piece > n - at)
			piece = n - at;
		while (chunk_next(&c, p + at, piece, &used, &ch)) {
			collect(&cs, &ch);
			at += used;
			piece -= used;
		}
		at += piece;
	}
	if (chunker_finish(&c, &ch))
		collect(&cs, &ch);
	chunker_release(&c);
	return cs;
}

static void test_split_does_not_matter(void **state)
{
	size_t n = 8 * MiB + 12345;
	uint8_t *p = random_bytes(n, 2);
	struct chunks whole = chunk_buf(p, n, CHUNKER_NAME);

	for (uint64_t seed = 100; seed < 110; seed++) {
		struct chunks parts = chunk_pieces(p, n, seed);

		if (parts.n != whole.n)
			print_message("split seed %" PRIu64 "\n", seed);
		assert_chunks_equal(&whole, &parts);
		chunks_free(&parts);
	}
	chunks_free(&whole);
	free(p);
}

/* One byte at a time, across several cut points and a forced one. */
static void test_byte_at_a_time(void **state)
{
	size_t n = 3 * CHUNK_MAX / 2;
	uint8_t *p = random_bytes(n, 3);
	struct chunks whole, bytes = {0};
	struct chunker c;
	struct chunk ch;
	size_t used;

	memset(p + CHUNK_MAX / 2, 0, CHUNK_MAX); /* zeros: a forced cut */
	whole = chunk_buf(p, n, CHUNKER_NAME);
	assert_true(whole.n >= 3);
	assert_int_equal(chunker_init(&c, CHUNKER_NAME), 0);
	for (size_t i = 0; i < n; i++) {
		if (chunk_next(&c, p + i, 1, &used, &ch)) {
			assert_int_equal(used, 1);
			collect(&bytes, &ch);
		} else {
			assert_int_equal(used, 1);
		}
	}
	if (chunker_finish(&c, &ch))
		collect(&bytes, &ch);
	chunker_release(&c);
	assert_chunks_equal(&whole, &bytes);
	chunks_free(&whole);
	chunks_free(&bytes);
	free(p);
}

static void test_sizes_and_average(void **state)
{
	size_t n = BIG;
	uint8_t *p = random_bytes(n, 4);
	struct chunks cs = chunk_buf(p, n, 0);
	uint64_t off = 0;
	double avg;

	assert_true(cs.n > 1);
	for (size_t i = 0; i < cs.n; i++) {
		assert_int_equal(cs.v[i].off, off);
		assert_true(cs.v[i].len <= CHUNK_MAX);
		if (i + 1 < cs.n)
			assert_true(cs.v[i].len >= CHUNK_MIN);
		off += cs.v[i].len;
	}
	assert_int_equal(off, n);
	avg = (double)n / cs.n / 1024;
	print_message("%zu MiB: %zu chunks, average %.1f KiB\n", n / MiB, cs.n,
		      avg);
	assert_true(avg >= 40 && avg <= 100);
	chunks_free(&cs);
	free(p);
}

/* Short streams: nothing, one byte, less than CHUNK_MIN. */
static void test_short_streams(void **state)
{
	uint8_t *p = random_bytes(CHUNK_MIN, 5);
	struct chunks cs;

	cs = chunk_buf(p, 0, CHUNKER_NAME);
	assert_int_equal(cs.n, 0);
	chunks_free(&cs);
	cs = chunk_buf(p, 1, CHUNKER_NAME);
	assert_int_equal(cs.n, 1);
	assert_int_equal(cs.v[0].len, 1);
	chunks_free(&cs);
	cs = chunk_buf(p, CHUNK_MIN, CHUNKER_NAME);
	assert_int_equal(cs.n, 1);
	assert_int_equal(cs.v[0].len, CHUNK_MIN);
	chunks_free(&cs);
	free(p);
}

/* Data with no cut point is cut every CHUNK_MAX bytes, into equal chunks
 * (a file of zeros deduplicates to one chunk). */
static void test_zeros_cut_at_max(void **state)
{
	size_t n = 4 * CHUNK_MAX + 100;
	uint8_t *p = calloc(1, n);
	struct chunks cs = chunk_buf(p, n, CHUNKER_NAME);

	assert_int_equal(cs.n, 5);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(cs.v[i].len, CHUNK_MAX);
		assert_memory_equal(cs.v[i].name.b, cs.v[0].name.b, 16);
	}
	assert_int_equal(cs.v[4].len, 100);
	chunks_free(&cs);
	free(p);
}

static int cmp_name(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* How many chunks of b have a name that a lacks. */
static size_t new_names(const struct chunks *a, const struct chunks *b)
{
	struct wk_hash *names = malloc(a->n * sizeof(*names));
	size_t fresh = 0;

	assert_non_null(names);
	for (size_t i = 0; i < a->n; i++)
		names[i] = a->v[i].name;
	qsort(names, a->n, sizeof(*names), cmp_name);
	for (size_t i = 0; i < b->n; i++)
		if (!bsearch(&b->v[i].name, names, a->n, sizeof(*names),
			     cmp_name))
			fresh++;
	free(names);
	return fresh;
}

/*
 * Edits in the middle of a big buffer change at most three chunks: CDC
 * finds the old cut points again after the edit.  Chunks before the edit
 * keep their offsets; those after it keep their names at shifted offsets.
 */
static void check_edit(const uint8_t *old, size_t old_n, const uint8_t *edited,
		       size_t new_n, const char *what)
{
	struct chunks a = chunk_buf(old, old_n, CHUNKER_NAME);
	struct chunks b = chunk_buf(edited, new_n, CHUNKER_NAME);
	size_t fresh = new_names(&a, &b), gone = new_names(&b, &a);
	size_t head = 0, tail = 0;

	print_message("%s: %zu -> %zu chunks, %zu new, %zu gone\n", what, a.n,
		      b.n, fresh, gone);
	assert_true(fresh >= 1 && fresh <= 3);
	assert_true(gone <= 3);
	/* Chunks before the edit keep their offsets; after it, their names. */
	while (head < a.n && head < b.n && a.v[head].off == b.v[head].off &&
	       a.v[head].len == b.v[head].len &&
	       !memcmp(a.v[head].name.b, b.v[head].name.b, 16))
		head++;
	while (tail < a.n - head && tail < b.n - head &&
	       !memcmp(a.v[a.n - 1 - tail].name.b, b.v[b.n - 1 - tail].name.b,
		       16))
		tail++;
	assert_true(a.n - head - tail <= 3);
	assert_true(b.n - head - tail <= 3);
	assert_true(head > a.n / 3 && tail > a.n / 3);
	chunks_free(&a);
	chunks_free(&b);
}

static void test_edit_resynchronises(void **state)
{
	size_t n = BIG, mid = n / 2 + 777;
	uint8_t *old = random_bytes(n, 6);
	uint8_t *edited = malloc(n + 100);

	assert_non_null(edited);
	memcpy(edited, old, n);
	edited[mid] ^= 0x5a;
	check_edit(old, n, edited, n, "one byte changed");

	/* 100 bytes inserted. */
	memcpy(edited, old, mid);
	for (int i = 0; i < 100; i++)
		edited[mid + i] = (uint8_t)(i * 37);
	memcpy(edited + mid + 100, old + mid, n - mid);
	check_edit(old, n, edited, n + 100, "100 bytes inserted");

	/* 100 bytes deleted. */
	memcpy(edited, old, mid);
	memcpy(edited + mid, old + mid + 100, n - mid - 100);
	check_edit(old, n, edited, n - 100, "100 bytes deleted");

	/* The last byte of a chunk in the middle: its cut point moves. */
	{
		struct chunks cs = chunk_buf(old, n, 0);
		const struct chunk *at = &cs.v[cs.n / 2];

		memcpy(edited, old, n);
		edited[at->off + at->len - 1] ^= 0x01;
		check_edit(old, n, edited, n, "cut byte changed");
		chunks_free(&cs);
	}

	free(edited);
	free(old);
}

static int stop_at_third(void *arg, const struct chunk *ch)
{
	int *seen = arg;

	return ++*seen == 3 ? 42 : 0;
}

/* chunk_fd() reads a file (in pieces unrelated to the cut points) and
 * gives what chunking the bytes in memory gives. */
static void test_chunk_fd_matches_memory(void **state)
{
	size_t n = 9 * MiB + 5;
	uint8_t *p = random_bytes(n, 7);
	struct chunks mem = chunk_buf(p, n, CHUNKER_NAME), file = {0};
	int fd = memfd_create("test_chunk", 0), seen = 0;

	assert_true(fd >= 0);
	assert_int_equal(chunk_fd(fd, collect, &file), 0);
	assert_int_equal(file.n, 0); /* empty file: no chunks */
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(chunk_fd(fd, collect, &file), 0);
	assert_chunks_equal(&mem, &file);
	/* A callback's non-zero value stops the walk and comes back. */
	assert_int_equal(chunk_fd(fd, stop_at_third, &seen), 42);
	assert_int_equal(seen, 3);
	close(fd);
	assert_int_equal(chunk_fd(fd, collect, &file), -EBADF);
	chunks_free(&mem);
	chunks_free(&file);
	free(p);
}

/* Without CHUNKER_NAME the cut points are the same and names are zero. */
static void test_unnamed_same_cuts(void **state)
{
	size_t n = 2 * MiB;
	uint8_t *p = random_bytes(n, 8);
	struct chunks named = chunk_buf(p, n, CHUNKER_NAME);
	struct chunks bare = chunk_buf(p, n, 0);
	static const uint8_t zero[16];

	assert_int_equal(named.n, bare.n);
	for (size_t i = 0; i < bare.n; i++) {
		assert_int_equal(named.v[i].off, bare.v[i].off);
		assert_int_equal(named.v[i].len, bare.v[i].len);
		assert_memory_equal(bare.v[i].name.b, zero, 16);
	}
	chunks_free(&named);
	chunks_free(&bare);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gear_table_is_splitmix64),
		cmocka_unit_test(test_golden_boundaries),
		cmocka_unit_test(test_split_does_not_matter),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_sizes_and_average),
		cmocka_unit_test(test_short_streams),
		cmocka_unit_test(test_zeros_cut_at_max),
		cmocka_unit_test(test_edit_resynchronises),
		cmocka_unit_test(test_chunk_fd_matches_memory),
		cmocka_unit_test(test_unnamed_same_cuts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
