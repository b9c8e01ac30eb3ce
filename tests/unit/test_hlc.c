/*
 * test_hlc.c - the hybrid logical clock under a wall clock the test drives.
 *
 * Every case states the exact timestamp it expects as (ms, logical), so a
 * change to the rules of Kulkarni et al. shows up as a failure here, not as
 * a subtle reordering of ops between replicas.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "hlc.h"

struct fake_clock {
	uint64_t ms;
	unsigned calls;
};

static uint64_t fake_now(void *arg)
{
	struct fake_clock *fc = arg;

	fc->calls++;
	return fc->ms;
}

/* Expected values are spelled out independently of hlc_pack(). */
#define T(ms, l) (((uint64_t)(ms) << 16) | (uint64_t)(l))

static void test_pack_roundtrip(void **state)
{
	uint64_t t = hlc_pack(0x123456789abcULL, 0xfedc);

	assert_int_equal(t, 0x123456789abcfedcULL);
	assert_int_equal(hlc_ms(t), 0x123456789abcULL);
	assert_int_equal(hlc_logical(t), 0xfedc);
	assert_int_equal(HLC_LOGICAL_MASK, 0xffff);
	/* A logical part that does not fit is cut, not carried. */
	assert_int_equal(hlc_pack(5, 0x10001), T(5, 1));
	/* The packed value orders like the (ms, logical) pair. */
	assert_true(T(5, 0xffff) < T(6, 0));
}

static void test_now_follows_wall_clock(void **state)
{
	struct fake_clock fc = {.ms = 1000};
	struct hlc h;

	hlc_init_clock(&h, 0, fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(1000, 0));
	assert_int_equal(hlc_now(&h), T(1000, 1));
	assert_int_equal(hlc_now(&h), T(1000, 2));
	fc.ms = 1001;
	assert_int_equal(hlc_now(&h), T(1001, 0));
	fc.ms = 5000;
	assert_int_equal(hlc_now(&h), T(5000, 0));
	assert_int_equal(hlc_last(&h), T(5000, 0));
	assert_int_equal(fc.calls, 5);
}

static void test_now_wall_clock_steps_back(void **state)
{
	struct fake_clock fc = {.ms = 5000};
	struct hlc h;

	hlc_init_clock(&h, 0, fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(5000, 0));
	fc.ms = 4000; /* NTP steps the clock back a second */
	assert_int_equal(hlc_now(&h), T(5000, 1));
	assert_int_equal(hlc_now(&h), T(5000, 2));
	fc.ms = 0;
	assert_int_equal(hlc_now(&h), T(5000, 3));
	fc.ms = 5000; /* caught up, same millisecond: still counting */
	assert_int_equal(hlc_now(&h), T(5000, 4));
	fc.ms = 5001; /* ahead again: a fresh millisecond */
	assert_int_equal(hlc_now(&h), T(5001, 0));
}

/* A wall clock that jitters back and forth: always strictly increasing,
 * never behind the wall clock, never more than the jitter ahead of it. */
static void test_now_monotonic_under_jitter(void **state)
{
	struct fake_clock fc = {.ms = 1000000};
	uint32_t seed0 = (uint32_t)time(NULL), seed = seed0;
	uint64_t prev, max_wall = fc.ms;
	struct hlc h;

	hlc_init_clock(&h, 0, fake_now, &fc);
	prev = hlc_now(&h);
	for (int i = 0; i < 100000; i++) {
		uint64_t t;

		seed = seed * 1103515245u + 12345u;
		fc.ms += (seed >> 16) % 8;
		fc.ms -= (seed >> 8) % 7;
		if (fc.ms > max_wall)
			max_wall = fc.ms;
		t = hlc_now(&h);
		if (t <= prev || hlc_ms(t) < fc.ms || hlc_ms(t) > max_wall + 2)
			fail_msg("step %d (seed %" PRIu32 "): %" PRIx64
				 " after %" PRIx64 " at wall %" PRIu64,
				 i, seed0, t, prev, fc.ms);
		prev = t;
	}
}

/*
 * The receive rule: l' = max(l, remote.l, wall); the counter is
 * max(c, remote.c) + 1 when l' equals both l and remote.l, c + 1 or
 * remote.c + 1 when it equals only one of them, and 0 when the wall clock
 * alone is ahead.
 */
struct recv_case {
	uint64_t last, remote, wall, want;
};

static void test_update_receive_rule(void **state)
{
	static const struct recv_case cases[] = {
		/* wall ahead of both */
		{T(100, 5), T(90, 9), 200, T(200, 0)},
		{T(100, 5), T(150, 9), 200, T(200, 0)},
		/* l alone ahead */
		{T(300, 5), T(200, 9), 100, T(300, 6)},
		/* remote alone ahead */
		{T(200, 5), T(300, 9), 100, T(300, 10)},
		/* l and remote tie ahead of wall: the larger counter + 1 */
		{T(300, 5), T(300, 9), 100, T(300, 10)},
		{T(300, 9), T(300, 5), 100, T(300, 10)},
		{T(300, 7), T(300, 7), 100, T(300, 8)},
		/* wall equals l, remote behind */
		{T(300, 5), T(200, 9), 300, T(300, 6)},
		/* wall equals remote, l behind */
		{T(200, 5), T(300, 9), 300, T(300, 10)},
		/* all three equal */
		{T(300, 5), T(300, 9), 300, T(300, 10)},
		{T(300, 9), T(300, 5), 300, T(300, 10)},
		/* wall equals both ms with counters at 0 */
		{T(300, 0), T(300, 0), 300, T(300, 1)},
		/* a fresh clock receiving from the past */
		{0, T(50, 3), 100, T(100, 0)},
		/* a fresh clock receiving from the future */
		{0, T(500, 3), 100, T(500, 4)},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct recv_case *c = &cases[i];
		struct fake_clock fc = {.ms = c->wall};
		struct hlc h;
		uint64_t got;

		hlc_init_clock(&h, c->last, fake_now, &fc);
		got = hlc_update(&h, c->remote);
		if (got != c->want)
			fail_msg("case %zu: got (%" PRIu64 ", %" PRIu64
				 ") want (%" PRIu64 ", %" PRIu64 ")",
				 i, hlc_ms(got), hlc_logical(got),
				 hlc_ms(c->want), hlc_logical(c->want));
		assert_int_equal(hlc_last(&h), c->want);
	}
}

static void test_update_then_now(void **state)
{
	struct fake_clock fc = {.ms = 1000};
	struct hlc h;

	hlc_init_clock(&h, 0, fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(1000, 0));
	/* A peer whose clock runs 5 s ahead drags ours along... */
	assert_int_equal(hlc_update(&h, T(6000, 2)), T(6000, 3));
	assert_int_equal(hlc_now(&h), T(6000, 4));
	/* ...an old message changes nothing but the counter... */
	assert_int_equal(hlc_update(&h, T(10, 0)), T(6000, 5));
	/* ...until the wall clock passes it. */
	fc.ms = 6001;
	assert_int_equal(hlc_now(&h), T(6001, 0));
	assert_int_equal(hlc_update(&h, T(6001, 0)), T(6001, 1));
}

static void test_persisted_last_ahead_of_wall(void **state)
{
	struct fake_clock fc = {.ms = 9000};
	struct hlc h;

	/* The clock was at 10 s when we stopped; now the wall says 9 s. */
	hlc_init_clock(&h, T(10000, 5), fake_now, &fc);
	assert_int_equal(hlc_last(&h), T(10000, 5));
	assert_int_equal(hlc_now(&h), T(10000, 6));
	assert_int_equal(hlc_update(&h, T(9500, 0)), T(10000, 7));
	fc.ms = 10000;
	assert_int_equal(hlc_now(&h), T(10000, 8));
	fc.ms = 10001;
	assert_int_equal(hlc_now(&h), T(10001, 0));

	/* Same millisecond as the wall clock, counter > 0. */
	fc.ms = 20000;
	hlc_init_clock(&h, T(20000, 7), fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(20000, 8));

	/* Same millisecond, counter 0: still strictly greater. */
	hlc_init_clock(&h, T(20000, 0), fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(20000, 1));

	/* Wall clock ahead of what was persisted. */
	fc.ms = 30000;
	hlc_init_clock(&h, T(20000, 7), fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(30000, 0));
}

/* Restarting from hlc_last() never hands out a value seen before. */
static void test_persist_restart_cycle(void **state)
{
	struct fake_clock fc = {.ms = 7000};
	uint64_t persisted = 0, prev = 0;
	struct hlc h;

	for (int run = 0; run < 50; run++) {
		hlc_init_clock(&h, persisted, fake_now, &fc);
		for (int i = 0; i < 100; i++) {
			uint64_t t = hlc_now(&h);

			assert_true(t > prev);
			prev = t;
		}
		persisted = hlc_last(&h);
		assert_int_equal(persisted, prev);
		fc.ms -= 3; /* every restart finds the clock further back */
	}
	assert_int_equal(prev, T(7000, 0) + 50 * 100 - 1);
}

static void test_counter_overflow_carries(void **state)
{
	struct fake_clock fc = {.ms = 2000};
	struct hlc h;

	hlc_init_clock(&h, T(2000, 0xfffe), fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(2000, 0xffff));
	/* The counter is full: borrow the next millisecond. */
	assert_int_equal(hlc_now(&h), T(2001, 0));
	assert_int_equal(hlc_now(&h), T(2001, 1));
	fc.ms = 2001; /* the wall clock reaches the borrowed millisecond */
	assert_int_equal(hlc_now(&h), T(2001, 2));
	fc.ms = 2002;
	assert_int_equal(hlc_now(&h), T(2002, 0));

	/* The same through the receive rule. */
	fc.ms = 1000;
	hlc_init_clock(&h, T(100, 0), fake_now, &fc);
	assert_int_equal(hlc_update(&h, T(3000, 0xffff)), T(3001, 0));
	assert_int_equal(hlc_update(&h, T(3001, 0)), T(3001, 1));
}

/* 70,000 events in one millisecond: 65,536 fit, the rest run ahead. */
static void test_counter_overflow_burst(void **state)
{
	struct fake_clock fc = {.ms = 123456};
	uint64_t prev = 0, t = 0;
	struct hlc h;

	hlc_init_clock(&h, 0, fake_now, &fc);
	for (int i = 0; i < 70000; i++) {
		t = hlc_now(&h);
		assert_true(t > prev);
		prev = t;
	}
	assert_int_equal(t, T(123457, 70000 - 65536 - 1));
	/* The wall clock catching up does not reset the counter early. */
	fc.ms = 123457;
	assert_int_equal(hlc_now(&h), T(123457, 70000 - 65536));
}

static void test_real_clock(void **state)
{
	struct timespec ts;
	uint64_t before, after, t1, t2;
	struct hlc h;

	clock_gettime(CLOCK_REALTIME, &ts);
	before = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	hlc_init(&h, 0);
	t1 = hlc_now(&h);
	t2 = hlc_now(&h);
	clock_gettime(CLOCK_REALTIME, &ts);
	after = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	assert_true(hlc_ms(t1) >= before && hlc_ms(t1) <= after);
	assert_true(t2 > t1);
	assert_true(hlc_ms(t2) <= after + 1);

	/* hlc_init() honours the persisted value as well. */
	hlc_init(&h, T(after + 100000, 3));
	assert_int_equal(hlc_now(&h), T(after + 100000, 4));
}

/* A remote timestamp far in the future (or one that would wrap) is refused
 * and leaves the clock as it was; one just inside the limit is taken. */
static void test_update_refuses_runaway_remote(void **state)
{
	struct fake_clock fc = {.ms = 5000};
	struct hlc h;

	(void)state;
	hlc_init_clock(&h, 0, fake_now, &fc);
	assert_int_equal(hlc_now(&h), T(5000, 0));
	assert_int_equal(hlc_update(&h, UINT64_MAX), 0);
	assert_int_equal(hlc_update(&h, T(5000 + HLC_MAX_DRIFT_MS + 1, 0)), 0);
	assert_int_equal(hlc_last(&h), T(5000, 0));
	assert_int_equal(hlc_update(&h, T(5000 + HLC_MAX_DRIFT_MS, 3)),
			 T(5000 + HLC_MAX_DRIFT_MS, 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_roundtrip),
		cmocka_unit_test(test_now_follows_wall_clock),
		cmocka_unit_test(test_now_wall_clock_steps_back),
		cmocka_unit_test(test_now_monotonic_under_jitter),
		cmocka_unit_test(test_update_receive_rule),
		cmocka_unit_test(test_update_then_now),
		cmocka_unit_test(test_persisted_last_ahead_of_wall),
		cmocka_unit_test(test_persist_restart_cycle),
		cmocka_unit_test(test_counter_overflow_carries),
		cmocka_unit_test(test_counter_overflow_burst),
		cmocka_unit_test(test_real_clock),
		cmocka_unit_test(test_update_refuses_runaway_remote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
