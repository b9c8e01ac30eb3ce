/*
 * hlc.h - hybrid logical clock (Kulkarni et al., 2014).
 *
 * A timestamp is 64 bits: the high 48 are wall-clock milliseconds since the
 * epoch, the low 16 a logical counter.  hlc_now() stamps a local event and
 * hlc_update() merges a timestamp received from another replica; both return
 * a value greater than every value returned before, even if the wall clock
 * steps back.  When the counter would overflow, the clock borrows the next
 * millisecond instead, so it stays monotonic and only runs a little ahead.
 *
 * The clock keeps no I/O of its own: whoever owns it persists hlc_last() and
 * hands it back to hlc_init() on restart, so time never goes backwards across
 * restarts either.  The struct is not locked; callers serialise access.
 */
#ifndef WKFS_HLC_H
#define WKFS_HLC_H

#include <stdint.h>

#define HLC_LOGICAL_BITS 16
#define HLC_LOGICAL_MASK ((UINT64_C(1) << HLC_LOGICAL_BITS) - 1)

/* Returns wall-clock milliseconds; replaceable so tests can drive time. */
typedef uint64_t (*hlc_clock_fn)(void *arg);

struct hlc {
	uint64_t last;      /* the greatest timestamp handed out or seen */
	hlc_clock_fn clock; /* NULL: CLOCK_REALTIME */
	void *clock_arg;
};

/* Starts a clock that will never return a value <= persisted_last. */
void hlc_init(struct hlc *h, uint64_t persisted_last);

/* Same, with a test clock. */
void hlc_init_clock(struct hlc *h, uint64_t persisted_last, hlc_clock_fn fn,
		    void *arg);

/* A timestamp for a local event. */
uint64_t hlc_now(struct hlc *h);

/*
 * Merges a remote timestamp; returns the timestamp for the receive event.
 * A remote value more than HLC_MAX_DRIFT_MS ahead of the wall clock is
 * refused (returns 0 and changes nothing): a corrupt or hostile peer must
 * not drag every replica's clock into the future or wrap it.
 */
uint64_t hlc_update(struct hlc *h, uint64_t remote);

#define HLC_MAX_DRIFT_MS (24ULL * 3600 * 1000)

/* The greatest value handed out or seen: what to persist. */
uint64_t hlc_last(const struct hlc *h);

static inline uint64_t hlc_pack(uint64_t ms, uint64_t logical)
{
	return (ms << HLC_LOGICAL_BITS) | (logical & HLC_LOGICAL_MASK);
}

static inline uint64_t hlc_ms(uint64_t t)
{
	return t >> HLC_LOGICAL_BITS;
}

static inline uint64_t hlc_logical(uint64_t t)
{
	return t & HLC_LOGICAL_MASK;
}

#endif
