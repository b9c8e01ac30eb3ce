/*
 * hlc.c - hybrid logical clock (see hlc.h for the contract).
 *
 * The rules are those of Kulkarni et al., folded into one 64-bit value: the
 * physical part is max(wall, last.ms[, remote.ms]); the logical part counts
 * up while the physical part stands still and restarts at 0 when it moves.
 * Because the packed value compares like the pair, "greater than last" is
 * simply last + 1 whenever the wall clock has not moved ahead, and that also
 * carries a full counter into the next millisecond instead of wrapping.
 */
#include "hlc.h"

#include <time.h>

static uint64_t wall_ms(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void hlc_init_clock(struct hlc *h, uint64_t persisted_last, hlc_clock_fn fn,
		    void *arg)
{
	h->last = persisted_last;
	h->clock = fn ? fn : wall_ms;
	h->clock_arg = arg;
}

void hlc_init(struct hlc *h, uint64_t persisted_last)
{
	hlc_init_clock(h, persisted_last, NULL, NULL);
}

static uint64_t advance(struct hlc *h, uint64_t floor)
{
	uint64_t wall = hlc_pack(h->clock(h->clock_arg), 0);
	uint64_t t = floor + 1;

	/* A wall clock ahead of everything seen starts a fresh millisecond. */
	if (wall > floor)
		t = wall;
	h->last = t;
	return t;
}

uint64_t hlc_now(struct hlc *h)
{
	return advance(h, h->last);
}

uint64_t hlc_update(struct hlc *h, uint64_t remote)
{
	uint64_t wall = h->clock(h->clock_arg);

	if (hlc_ms(remote) > wall + HLC_MAX_DRIFT_MS)
		return 0;
	return advance(h, remote > h->last ? remote : h->last);
}

uint64_t hlc_last(const struct hlc *h)
{
	return h->last;
}
