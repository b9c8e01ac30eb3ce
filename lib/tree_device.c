/*
 * tree_device.c - which device made each op the tree took.
 *
 * A conflict copy is named by the device of its losing op (a version or a
 * name stamp, always an op the tree took), as the op itself carries it, so
 * that every replica spells the name alike and renaming a device later
 * does not rename old copies.  Keeping a name per op would cost 33 bytes an
 * op; instead the tree keeps, per actor, runs of hlcs [lo, hi] whose ops
 * (all ops of that actor it took in that range) carried the same name, and
 * each distinct name once.  A replica's device name changes rarely, so an
 * actor has one run, or a few: about nothing per op.
 *
 * A run never covers an op that carried another name: an op arriving
 * inside a run with a different name splits it in three.  So the answer
 * for an op depends only on that op, whatever order ops arrive in.  Runs
 * are kept through tree_compact(): versions and stamps below the floor
 * still need their names.  Ops without a valid device name are recorded as
 * runs of "none" (NULL) like any other name, so they do not take on a
 * neighbour's.
 */
#include "tree_int.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* hlcs lo..hi of one actor carried name dev (NULL: none). */
struct tdrun {
	uint64_t lo, hi;
	struct tstr *dev;
};

struct tdactor {
	uint64_t actor;
	uint32_t n, alloc;
	struct tdrun *runs; /* sorted, disjoint */
};

static bool actor_eq(const void *item, const void *key)
{
	return ((const struct tdactor *)item)->actor == *(const uint64_t *)key;
}

static uint64_t actor_hash(uint64_t actor)
{
	return tree_hash_id((struct wk_id){0, actor});
}

struct dkey {
	const char *s;
	size_t len;
	uint64_t hash;
};

static bool name_eq(const void *item, const void *key)
{
	const struct tstr *s = item;
	const struct dkey *k = key;

	return s->len == k->len && memcmp(s->s, k->s, k->len) == 0;
}

void tdev_init(struct tree *t)
{
	pmap_init(&t->dactors);
	pmap_init(&t->dnames);
	t->dlast = NULL;
}

void tdev_release(struct tree *t)
{
	for (size_t i = 0; i <= t->dactors.mask; i++) {
		struct tdactor *a = t->dactors.v[i].p;

		if (!a)
			continue;
		free(a->runs);
		free(a);
	}
	for (size_t i = 0; i <= t->dnames.mask; i++)
		tstr_put(t->dnames.v[i].p);
	pmap_release(&t->dactors);
	pmap_release(&t->dnames);
}

static struct tdactor *actor_find(const struct tree *t, uint64_t actor)
{
	if (t->dlast && t->dlast->actor == actor)
		return t->dlast;
	return pmap_find(&t->dactors, actor_hash(actor), actor_eq, &actor);
}

/* The interned name for an op's device field; NULL when not valid. */
static struct tstr *intern(struct tree *t, const char *dev)
{
	struct dkey k;
	struct tstr *s;

	if (!wk_device_valid(dev))
		return NULL;
	k.s = dev;
	k.len = strlen(dev);
	k.hash = tree_hash_bytes(dev, k.len);
	s = pmap_find(&t->dnames, k.hash, name_eq, &k);
	if (!s) {
		s = tstr_new(dev, k.len);
		pmap_insert(&t->dnames, k.hash, s);
	}
	return s;
}

/* Index of the first run with lo > h: the run before it may hold h. */
static uint32_t run_after(const struct tdactor *a, uint64_t h)
{
	uint32_t lo = 0, hi = a->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a->runs[mid].lo <= h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Inserts count runs at index k (their contents set by the caller). */
static void runs_open(struct tdactor *a, uint32_t k, uint32_t count)
{
	if (a->n + count > a->alloc) {
		a->alloc = a->alloc ? 2 * a->alloc : 2;
		if (a->alloc < a->n + count)
			a->alloc = a->n + count;
		a->runs = xrealloc(a->runs, a->alloc * sizeof(*a->runs));
	}
	memmove(a->runs + k + count, a->runs + k,
		(a->n - k) * sizeof(*a->runs));
	a->n += count;
}

/* Op hlc h of a carried dev; h was not seen before from a. */
static void runs_note(struct tdactor *a, uint64_t h, struct tstr *dev)
{
	uint32_t k = run_after(a, h);
	struct tdrun *prev = k > 0 ? &a->runs[k - 1] : NULL;
	struct tdrun *next = k < a->n ? &a->runs[k] : NULL;
	struct tdrun r;

	if (prev && h <= prev->hi) {
		/* Inside a run: split it around h, unless h agrees. */
		if (prev->dev == dev)
			return;
		r = *prev;
		k--;
		if (h > r.lo) {
			a->runs[k].hi = h - 1;
			k++;
			runs_open(a, k, 1);
		}
		a->runs[k] = (struct tdrun){h, h, dev};
		if (h < r.hi) {
			runs_open(a, k + 1, 1);
			a->runs[k + 1] = (struct tdrun){h + 1, r.hi, r.dev};
		}
		return;
	}
	/* Between runs: no op of a lies between them and h. */
	if (prev && prev->dev == dev) {
		prev->hi = h;
		if (next && next->dev == dev) {
			prev->hi = next->hi;
			memmove(next, next + 1,
				(a->n - k - 1) * sizeof(*a->runs));
			a->n--;
		}
	} else if (next && next->dev == dev) {
		next->lo = h;
	} else {
		runs_open(a, k, 1);
		a->runs[k] = (struct tdrun){h, h, dev};
	}
}

/* True when op's device field names dev (NULL: carries none). */
static bool same_name(const struct tstr *dev, const char *s)
{
	return dev ? strcmp(dev->s, s) == 0 : s[0] == '\0';
}

void tdev_note(struct tree *t, const struct wk_op *op)
{
	uint64_t actor = op->id.actor, h = op->id.hlc;
	struct tdactor *a = actor_find(t, actor);
	struct tdrun *last;
	uint32_t k;

	if (!a) {
		a = xcalloc(1, sizeof(*a));
		a->actor = actor;
		pmap_insert(&t->dactors, actor_hash(actor), a);
	}
	t->dlast = a;
	last = a->n ? &a->runs[a->n - 1] : NULL;
	/* The common cases, without interning: a newer op with the last
	 * run's name, or a late one inside a run of its name. */
	if (last && h > last->hi && same_name(last->dev, op->device)) {
		last->hi = h;
		return;
	}
	k = run_after(a, h);
	if (k > 0 && h <= a->runs[k - 1].hi &&
	    same_name(a->runs[k - 1].dev, op->device))
		return;
	runs_note(a, h, intern(t, op->device));
}

const char *tree_op_device(const struct tree *t, struct wk_id op)
{
	const struct tdactor *a = actor_find(t, op.actor);
	uint32_t k;

	if (!a)
		return NULL;
	k = run_after(a, op.hlc);
	if (k == 0 || op.hlc > a->runs[k - 1].hi || !a->runs[k - 1].dev)
		return NULL;
	return a->runs[k - 1].dev->s;
}

size_t tdev_runs(const struct tree *t)
{
	size_t n = 0;

	for (size_t i = 0; i <= t->dactors.mask; i++) {
		const struct tdactor *a = t->dactors.v[i].p;

		if (a)
			n += a->n;
	}
	return n;
}
