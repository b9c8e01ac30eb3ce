/*
 * test_recipe.c - recipes and their encodings: round trips of every kind
 * of edit, the size of small deltas, and hostile input (a table of
 * hand-made bad encodings, then seeded fuzzing) that must give -EBADMSG or
 * -ESTALE without over-reading (run under SAN=1 to check that).
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

#include "bytebuf.h"
#include "chunk.h"
#include "recipe.h"

#define ENC_CAP (64u << 20)

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct recipe_entry random_entry(uint64_t *seed)
{
	struct recipe_entry e;
	uint64_t a = splitmix64(seed), b = splitmix64(seed);

	memcpy(e.name.b, &a, 8);
	memcpy(e.name.b + 8, &b, 8);
	e.len = CHUNK_MIN + splitmix64(seed) % (CHUNK_MAX - CHUNK_MIN + 1);
	return e;
}

static void push(struct recipe *r, const struct recipe_entry *e)
{
	assert_int_equal(recipe_push(r, &e->name, e->len), 0);
}

static struct recipe random_recipe(size_t n, uint64_t seed)
{
	struct recipe r = RECIPE_INIT;

	for (size_t i = 0; i < n; i++) {
		struct recipe_entry e = random_entry(&seed);

		push(&r, &e);
	}
	return r;
}

/* A copy of a's entries [from, to). */
static void append_range(struct recipe *r, const struct recipe *a, size_t from,
			 size_t to)
{
	for (size_t i = from; i < to; i++)
		push(r, &a->v[i]);
}

/* Delta-encodes new against base, applies it, checks the result; returns
 * the delta's size.  Also round-trips new through the plain encoding. */
static size_t roundtrip(const struct recipe *base, const struct recipe *r)
{
	struct bbuf b;
	struct recipe out;
	size_t size;

	bbuf_init(&b, ENC_CAP);
	assert_int_equal(recipe_delta_encode(base, r, &b), 0);
	size = b.len;
	assert_int_equal(recipe_delta_apply(base, b.p, b.len, &out), 0);
	assert_true(recipe_eq(&out, r));
	recipe_release(&out);
	assert_int_equal(recipe_decode(base, b.p, b.len, &out), 0);
	assert_true(recipe_eq(&out, r));
	recipe_release(&out);

	bbuf_reset(&b);
	assert_int_equal(recipe_encode(r, &b), 0);
	assert_int_equal(recipe_decode(NULL, b.p, b.len, &out), 0);
	assert_true(recipe_eq(&out, r));
	assert_int_equal(recipe_size(&out), recipe_size(r));
	recipe_release(&out);
	/* A plain recipe is not a delta. */
	assert_int_equal(recipe_delta_apply(base, b.p, b.len, &out), -EBADMSG);
	assert_int_equal(out.n, 0);
	bbuf_release(&b);
	return size;
}

static void test_varint_bytes(void **state)
{
	static const struct {
		uint64_t v;
		size_t len;
		uint8_t b[10];
	} cases[] = {
		{0, 1, {0x00}},
		{1, 1, {0x01}},
		{127, 1, {0x7f}},
		{128, 2, {0x80, 0x01}},
		{300, 2, {0xac, 0x02}},
		{UINT64_MAX,
		 10,
		 {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	};
	struct bbuf b;

	bbuf_init(&b, 64);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bbuf_reset(&b);
		assert_int_equal(bbuf_put_varint(&b, cases[i].v), 0);
		assert_int_equal(b.len, cases[i].len);
		assert_memory_equal(b.p, cases[i].b, cases[i].len);
	}
	bbuf_release(&b);
}

static void test_bbuf_cap(void **state)
{
	struct bbuf b;
	uint8_t x[10] = {0};

	bbuf_init(&b, 16);
	assert_int_equal(bbuf_put(&b, x, 10), 0);
	assert_int_equal(bbuf_put(&b, x, 7), -E2BIG);
	/* Sticky: later appends fail too, and nothing was written. */
	assert_int_equal(bbuf_put_u8(&b, 1), -E2BIG);
	assert_int_equal(bbuf_error(&b), -E2BIG);
	assert_int_equal(b.len, 10);
	bbuf_reset(&b);
	assert_int_equal(bbuf_put(&b, x, 10), 0);
	assert_int_equal(bbuf_put(&b, x, 6), 0);
	assert_int_equal(b.len, 16);
	assert_true(b.alloc <= 16);
	bbuf_release(&b);
}

static void test_push_limits(void **state)
{
	struct recipe r = RECIPE_INIT;
	struct wk_hash h = {{1}};
	struct bbuf b;

	assert_int_equal(recipe_push(&r, &h, 0), -EINVAL);
	assert_int_equal(recipe_push(&r, &h, CHUNK_MAX + 1), -EINVAL);
	for (size_t i = 0; i < RECIPE_MAX_ENTRIES; i++)
		assert_int_equal(recipe_push(&r, &h, 1), 0);
	assert_int_equal(recipe_push(&r, &h, 1), -E2BIG);
	assert_int_equal(r.n, RECIPE_MAX_ENTRIES);
	/* An encoding that would pass its buffer's cap is -E2BIG. */
	bbuf_init(&b, 1000);
	assert_int_equal(recipe_encode(&r, &b), -E2BIG);
	bbuf_release(&b);
	recipe_release(&r);
}

static void test_plain_sizes(void **state)
{
	struct recipe r = random_recipe(4000, 1), empty = RECIPE_INIT;
	struct bbuf b;

	bbuf_init(&b, ENC_CAP);
	assert_int_equal(recipe_encode(&empty, &b), 0);
	assert_int_equal(b.len, 2);
	bbuf_reset(&b);
	assert_int_equal(recipe_encode(&r, &b), 0);
	/* tag, 2-byte count, 16-byte name + 3-byte length each */
	assert_int_equal(b.len, 1 + 2 + 4000 * 19);
	bbuf_release(&b);
	roundtrip(&empty, &r);
	roundtrip(&r, &empty);
	roundtrip(&empty, &empty);
	recipe_release(&r);
}

/* Every kind of edit between two versions of a 4,000-chunk file. */
static void test_delta_roundtrips(void **state)
{
	const size_t n = 4000;
	struct recipe base = random_recipe(n, 2), r = RECIPE_INIT;
	uint64_t seed = 3;
	struct recipe_entry fresh[3];
	size_t size;

	for (int i = 0; i < 3; i++)
		fresh[i] = random_entry(&seed);

	size = roundtrip(&base, &base);
	print_message("identical: %zu bytes\n", size);
	assert_true(size <= 20);

	append_range(&r, &base, 0, 2000);
	push(&r, &fresh[0]);
	append_range(&r, &base, 2001, n);
	size = roundtrip(&base, &r);
	print_message("one chunk changed: %zu bytes\n", size);
	assert_true(size < 200);
	recipe_release(&r);

	/* An insertion shifts every later chunk by +3 positions. */
	append_range(&r, &base, 0, 1234);
	for (int i = 0; i < 3; i++)
		push(&r, &fresh[i]);
	append_range(&r, &base, 1234, n);
	size = roundtrip(&base, &r);
	print_message("three chunks inserted: %zu bytes\n", size);
	assert_true(size < 200);
	recipe_release(&r);

	/* A deletion shifts them by -500. */
	append_range(&r, &base, 0, 1000);
	append_range(&r, &base, 1500, n);
	size = roundtrip(&base, &r);
	print_message("500 chunks deleted: %zu bytes\n", size);
	assert_true(size < 40);
	recipe_release(&r);

	append_range(&r, &base, 0, n);
	push(&r, &fresh[1]);
	size = roundtrip(&base, &r);
	print_message("appended: %zu bytes\n", size);
	assert_true(size < 60);
	recipe_release(&r);

	append_range(&r, &base, 0, n / 3);
	size = roundtrip(&base, &r);
	print_message("truncated: %zu bytes\n", size);
	assert_true(size < 30);
	recipe_release(&r);

	/* Blocks of 100 in reverse order, each costing one COPY. */
	for (size_t k = n / 100; k-- > 0;)
		append_range(&r, &base, k * 100, k * 100 + 100);
	size = roundtrip(&base, &r);
	print_message("40 blocks shuffled: %zu bytes\n", size);
	assert_true(size < 40 * 8);
	recipe_release(&r);

	/* Entries at random places: still exact, if not small. */
	for (size_t i = 0; i < n; i++)
		push(&r, &base.v[splitmix64(&seed) % n]);
	roundtrip(&base, &r);
	recipe_release(&r);

	/* Same name, another length: not the same entry. */
	append_range(&r, &base, 0, n);
	r.v[10].len = r.v[10].len == CHUNK_MAX ? 1 : r.v[10].len + 1;
	roundtrip(&base, &r);
	recipe_release(&r);

	recipe_release(&base);
}

/* Recipes with repeated chunks (a file of zeros, a repeated block). */
static void test_delta_repeats(void **state)
{
	struct recipe base = RECIPE_INIT, r = RECIPE_INIT;
	uint64_t seed = 4;
	struct recipe_entry z = random_entry(&seed), x = random_entry(&seed);
	size_t size;

	for (int i = 0; i < 3000; i++)
		push(&base, &z);
	for (int i = 0; i < 5000; i++)
		push(&r, i == 2500 ? &x : &z);
	size = roundtrip(&base, &r);
	print_message("zeros grown, one chunk changed: %zu bytes\n", size);
	assert_true(size < 60);
	recipe_release(&r);
	recipe_release(&base);
}

/* Names built to collide in the encoder's index (same first 8 bytes) must
 * not make it quadratic; the result is still exact. */
static void test_delta_colliding_names(void **state)
{
	struct recipe base = RECIPE_INIT, r = RECIPE_INIT;
	uint64_t seed = 5;

	for (size_t i = 0; i < 100000; i++) {
		struct recipe_entry e = random_entry(&seed);

		memset(e.name.b, 0xab, 8);
		push(&base, &e);
	}
	append_range(&r, &base, 50000, 100000);
	append_range(&r, &base, 0, 50000);
	roundtrip(&base, &r);
	recipe_release(&r);
	recipe_release(&base);
}

static void test_delta_wrong_base(void **state)
{
	struct recipe base = random_recipe(100, 6),
		      other = random_recipe(100, 7);
	struct recipe r = RECIPE_INIT, out;
	struct bbuf b;

	append_range(&r, &base, 0, 50);
	bbuf_init(&b, ENC_CAP);
	assert_int_equal(recipe_delta_encode(&base, &r, &b), 0);
	/* Same length, other names: the digest tells. */
	assert_int_equal(recipe_delta_apply(&other, b.p, b.len, &out), -ESTALE);
	assert_int_equal(out.n, 0);
	assert_int_equal(recipe_decode(NULL, b.p, b.len, &out), -ESTALE);
	other.n = 99;
	assert_int_equal(recipe_delta_apply(&other, b.p, b.len, &out), -ESTALE);
	bbuf_release(&b);
	recipe_release(&r);
	recipe_release(&other);
	recipe_release(&base);
}

static int write_all(int fd, const void *p, size_t n)
{
	return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

static void test_recipe_from_fd(void **state)
{
	size_t n = 3 << 20;
	uint8_t *p = malloc(n);
	uint64_t seed = 8;
	int fd = memfd_create("test_recipe", 0);
	struct recipe r, r2;
	struct bbuf b;

	assert_non_null(p);
	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++)
		p[i] = splitmix64(&seed);
	assert_int_equal(recipe_from_fd(fd, &r), 0);
	assert_int_equal(r.n, 0);
	recipe_release(&r);
	assert_int_equal(write_all(fd, p, n), 0);
	assert_int_equal(recipe_from_fd(fd, &r), 0);
	assert_true(r.n > 10);
	assert_int_equal(recipe_size(&r), n);
	/* Change a byte in the middle: the delta is a COPY, ADD, COPY. */
	p[n / 2] ^= 1;
	assert_int_equal(pwrite(fd, p + n / 2, 1, n / 2), 1);
	assert_int_equal(recipe_from_fd(fd, &r2), 0);
	bbuf_init(&b, ENC_CAP);
	assert_int_equal(recipe_delta_encode(&r, &r2, &b), 0);
	print_message("one byte edited in 3 MiB: delta %zu bytes\n", b.len);
	assert_true(b.len < 60);
	bbuf_release(&b);
	recipe_release(&r2);
	recipe_release(&r);
	close(fd);
	assert_int_equal(recipe_from_fd(fd, &r), -EBADF);
	free(p);
}

/* The 10-byte delta header for a 10-entry base: tag, count, digest. */
#define HDR_LEN 10
#define NAME16	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
#define FF9	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff

static const struct bad_case {
	const char *what;
	bool hdr; /* prefix the valid delta header */
	size_t len;
	uint8_t b[40];
	int rc;
} bad_cases[] = {
	{"empty input", false, 0, {0}, -EBADMSG},
	{"unknown tag", false, 1, {0x03}, -EBADMSG},
	{"plain, no count", false, 1, {0x01}, -EBADMSG},
	{"plain, truncated varint", false, 2, {0x01, 0x80}, -EBADMSG},
	{"plain, overlong varint", false, 3, {0x01, 0x80, 0x00}, -EBADMSG},
	{"plain, 11-byte varint", false, 12, {0x01, FF9, 0xff, 0x01}, -EBADMSG},
	{"plain, 2^64-1 entries", false, 11, {0x01, FF9, 0x01}, -EBADMSG},
	{"plain, 2^20+1 entries", false, 4, {0x01, 0x81, 0x80, 0x40}, -EBADMSG},
	{"plain, trailing byte", false, 3, {0x01, 0x00, 0x00}, -EBADMSG},
	{"plain, entry without length",
	 false,
	 18,
	 {0x01, 0x01, NAME16},
	 -EBADMSG},
	{"plain, length 0", false, 19, {0x01, 0x01, NAME16, 0x00}, -EBADMSG},
	{"plain, length CHUNK_MAX + 1",
	 false,
	 21,
	 {0x01, 0x01, NAME16, 0x81, 0x80, 0x10},
	 -EBADMSG},
	{"plain, two announced, one given",
	 false,
	 19,
	 {0x01, 0x02, NAME16, 0x01},
	 -EBADMSG},
	{"plain, one entry (valid)", false, 19, {0x01, 0x01, NAME16, 0x01}, 0},
	{"delta, no header", false, 1, {0x02}, -EBADMSG},
	{"delta, truncated digest", false, 5, {0x02, 0x0a, 1, 2, 3}, -EBADMSG},
	{"delta, other base count", false, 11, {0x02, 0x0b, NAME16}, -ESTALE},
	{"delta, no new count", true, 0, {0}, -EBADMSG},
	{"delta, new count 2^20+1", true, 3, {0x81, 0x80, 0x40}, -EBADMSG},
	{"delta, nothing produced", true, 1, {0x01}, -EBADMSG},
	{"delta, empty (valid)", true, 1, {0x00}, 0},
	{"delta, identity (valid)", true, 3, {0x0a, 0x14, 0x00}, 0},
	{"delta, count 0", true, 2, {0x01, 0x00}, -EBADMSG},
	{"delta, count past new count", true, 3, {0x05, 0x0c, 0x00}, -EBADMSG},
	{"delta, copy past base end", true, 3, {0x05, 0x0a, 0x0c}, -EBADMSG},
	{"delta, copy starts past end", true, 3, {0x05, 0x0a, 0x16}, -EBADMSG},
	{"delta, copy before start", true, 3, {0x05, 0x0a, 0x01}, -EBADMSG},
	{"delta, copy offset 2^64-1",
	 true,
	 12,
	 {0x05, 0x0a, FF9, 0x01},
	 -EBADMSG},
	{"delta, copy offset 2^64-2",
	 true,
	 12,
	 {0x05, 0x0a, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	  0x01},
	 -EBADMSG},
	{"delta, copy without offset", true, 2, {0x01, 0x02}, -EBADMSG},
	{"delta, copy back (valid)",
	 true,
	 5,
	 {0x02, 0x02, 0x08, 0x02, 0x03},
	 0},
	{"delta, add without entry", true, 2, {0x01, 0x03}, -EBADMSG},
	{"delta, add length 0", true, 19, {0x01, 0x03, NAME16, 0x00}, -EBADMSG},
	{"delta, add huge count", true, 11, {0x02, FF9, 0x01}, -EBADMSG},
	{"delta, op after the end",
	 true,
	 21,
	 {0x01, 0x03, NAME16, 0x01, 0x03},
	 -EBADMSG},
	{"delta, add (valid)", true, 19, {0x01, 0x03, NAME16, 0x01}, 0},
};

static void test_hostile_table(void **state)
{
	struct recipe base = random_recipe(10, 9), out;
	struct bbuf hdr;

	bbuf_init(&hdr, 1024);
	assert_int_equal(recipe_delta_encode(&base, &base, &hdr), 0);
	assert_int_equal(hdr.p[0], RECIPE_TAG_DELTA);
	assert_int_equal(hdr.p[1], 10);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t pre = c->hdr ? HDR_LEN : 0;
		/* Exactly sized, so that ASan sees any over-read. */
		uint8_t *p = malloc(pre + c->len + 1);
		int rc;

		assert_non_null(p);
		memcpy(p, hdr.p, pre);
		memcpy(p + pre, c->b, c->len);
		rc = recipe_decode(&base, p, pre + c->len, &out);
		if (rc != c->rc)
			print_message("case '%s': %d, expected %d\n", c->what,
				      rc, c->rc);
		assert_int_equal(rc, c->rc);
		if (rc < 0)
			assert_int_equal(out.n, 0);
		recipe_release(&out);
		free(p);
	}
	bbuf_release(&hdr);
	recipe_release(&base);
}

/* A random edit of base, as a new recipe. */
static struct recipe random_edit(const struct recipe *base, uint64_t *seed)
{
	struct recipe r = RECIPE_INIT;
	size_t n = base->n, at = splitmix64(seed) % (n + 1);
	size_t k = 1 + splitmix64(seed) % 20;

	switch (splitmix64(seed) % 5) {
	case 0: /* insert k new entries */
		append_range(&r, base, 0, at);
		for (size_t i = 0; i < k; i++) {
			struct recipe_entry e = random_entry(seed);

			push(&r, &e);
		}
		append_range(&r, base, at, n);
		break;
	case 1: /* delete up to k */
		append_range(&r, base, 0, at);
		append_range(&r, base, at + k < n ? at + k : n, n);
		break;
	case 2: /* random picks */
		for (size_t i = 0; i < k * 5; i++)
			push(&r, &base->v[splitmix64(seed) % n]);
		break;
	case 3: /* rotate */
		append_range(&r, base, at, n);
		append_range(&r, base, 0, at);
		break;
	default:
		append_range(&r, base, 0, n);
	}
	return r;
}

/* Mutates a copy of p[0 .. *n) in place of *q (exactly sized). */
static uint8_t *mutate(const uint8_t *p, size_t *n, uint64_t *seed)
{
	size_t len = *n, cap = len + 8;
	uint8_t *q = malloc(cap);
	int rounds = 1 + splitmix64(seed) % 4;

	assert_non_null(q);
	memcpy(q, p, len);
	for (int i = 0; i < rounds; i++) {
		uint64_t r = splitmix64(seed);
		/* Most mutations past the header, where the parser is. */
		size_t lo = len > HDR_LEN + 1 && r % 8 ? HDR_LEN + 1 : 0;
		size_t at = len > lo ? lo + (r >> 8) % (len - lo) : 0;

		switch (r % 6) {
		case 0:
			if (len)
				q[at] ^= 1u << (r >> 40) % 8;
			break;
		case 1:
			if (len)
				q[at] = r >> 48;
			break;
		case 2:
			len = at;
			break;
		case 3:
			if (len < cap) {
				memmove(q + at + 1, q + at, len - at);
				q[at] = r >> 48;
				len++;
			}
			break;
		case 4:
			if (len) {
				memmove(q + at, q + at + 1, len - at - 1);
				len--;
			}
			break;
		default:
			if (len)
				q[at] = 0xff;
		}
	}
	/* Exactly sized copy for ASan. */
	{
		uint8_t *e = malloc(len ? len : 1);

		assert_non_null(e);
		memcpy(e, q, len);
		free(q);
		*n = len;
		return e;
	}
}

static void test_fuzz(void **state)
{
	const unsigned iterations = 60000;
	uint64_t seed = 0x5eed0001;
	struct recipe base = random_recipe(60, 10);
	unsigned ok = 0, bad = 0, stale = 0;
	struct bbuf b;

	bbuf_init(&b, ENC_CAP);
	for (unsigned it = 0; it < iterations; it++) {
		uint64_t case_seed = seed;
		struct recipe r = random_edit(&base, &seed), out;
		size_t n;
		uint8_t *q;
		int rc;

		bbuf_reset(&b);
		if (it % 4 == 0)
			assert_int_equal(recipe_encode(&r, &b), 0);
		else
			assert_int_equal(recipe_delta_encode(&base, &r, &b), 0);
		n = b.len;
		q = mutate(b.p, &n, &seed);
		rc = recipe_decode(&base, q, n, &out);
		if (rc != 0 && rc != -EBADMSG && rc != -ESTALE)
			print_message("fuzz seed %#" PRIx64 ": %d\n", case_seed,
				      rc);
		if (rc == 0) {
			ok++;
			assert_true(out.n <= RECIPE_MAX_ENTRIES);
			for (size_t i = 0; i < out.n; i++)
				assert_true(out.v[i].len >= 1 &&
					    out.v[i].len <= CHUNK_MAX);
		} else if (rc == -ESTALE) {
			stale++;
		} else {
			assert_int_equal(rc, -EBADMSG);
			assert_int_equal(out.n, 0);
			bad++;
		}
		recipe_release(&out);
		recipe_release(&r);
		free(q);
	}
	print_message("fuzz: %u iterations: %u decoded, %u bad, %u stale\n",
		      iterations, ok, bad, stale);
	assert_true(bad > iterations / 4);
	bbuf_release(&b);
	recipe_release(&base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_bytes),
		cmocka_unit_test(test_bbuf_cap),
		cmocka_unit_test(test_push_limits),
		cmocka_unit_test(test_plain_sizes),
		cmocka_unit_test(test_delta_roundtrips),
		cmocka_unit_test(test_delta_repeats),
		cmocka_unit_test(test_delta_colliding_names),
		cmocka_unit_test(test_delta_wrong_base),
		cmocka_unit_test(test_recipe_from_fd),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
