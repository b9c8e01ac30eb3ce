/*
 * tree_map.c - the hash tables and strings of the merge engine.
 *
 * Two open-addressing tables with linear probing and backward-shift
 * deletion (no tombstones, so a table that sees many removals stays fast):
 * struct idset keeps op ids inline with a few flag bits (one entry per op,
 * so it must be small), struct pmap keeps pointers under a hash the caller
 * computes.  Both grow at 1/2 load.  Not a general library: just what
 * tree.c and tree_view.c need.
 */
#include "tree_int.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* splitmix64's finaliser: good enough mixing for ids and string hashes. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

uint64_t tree_hash_id(struct wk_id id)
{
	return mix64(id.hlc ^ mix64(id.actor + UINT64_C(0x9e3779b97f4a7c15)));
}

/* FNV-1a, then mixed: names are short. */
uint64_t tree_hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= UINT64_C(0x100000001b3);
	}
	return mix64(h);
}

struct tstr *tstr_new(const char *s, size_t len)
{
	struct tstr *t = xmalloc(sizeof(*t) + len + 1);

	t->refs = 1;
	t->len = (uint32_t)len;
	t->hash = tree_hash_bytes(s, len);
	memcpy(t->s, s, len);
	t->s[len] = '\0';
	return t;
}

struct tstr *tstr_get(struct tstr *s)
{
	if (s)
		s->refs++;
	return s;
}

void tstr_put(struct tstr *s)
{
	if (s && --s->refs == 0)
		free(s);
}

bool tstr_eq(const struct tstr *a, const struct tstr *b)
{
	if (a == b)
		return true;
	if (!a || !b || a->hash != b->hash || a->len != b->len)
		return false;
	return memcmp(a->s, b->s, a->len) == 0;
}

/* ---- idset ------------------------------------------------------------ */

static bool id_empty(struct wk_id id)
{
	return id.hlc == 0 && id.actor == 0;
}

void idset_init(struct idset *s)
{
	s->mask = 63;
	s->n = 0;
	s->v = xcalloc(s->mask + 1, sizeof(*s->v));
}

void idset_release(struct idset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static size_t idset_slot(const struct idset *s, struct wk_id id)
{
	size_t i = tree_hash_id(id) & s->mask;

	while (!id_empty(s->v[i].id) && !wk_id_eq(s->v[i].id, id))
		i = (i + 1) & s->mask;
	return i;
}

static void idset_resize(struct idset *s, size_t cap)
{
	struct idslot *old = s->v;
	size_t oldcap = s->mask + 1;

	s->v = xcalloc(cap, sizeof(*s->v));
	s->mask = cap - 1;
	for (size_t i = 0; i < oldcap; i++)
		if (!id_empty(old[i].id))
			s->v[idset_slot(s, old[i].id)] = old[i];
	free(old);
}

uint32_t idset_get(const struct idset *s, struct wk_id id)
{
	return s->v[idset_slot(s, id)].flags;
}

uint32_t idset_set(struct idset *s, struct wk_id id, uint32_t flags)
{
	size_t i = idset_slot(s, id);
	uint32_t had = s->v[i].flags;

	if (id_empty(s->v[i].id)) {
		if (2 * (s->n + 1) > s->mask + 1) {
			idset_resize(s, 2 * (s->mask + 1));
			i = idset_slot(s, id);
		}
		s->v[i].id = id;
		s->n++;
	}
	s->v[i].flags |= flags;
	return had;
}

void idset_prune(struct idset *s, uint64_t floor)
{
	struct idslot *old = s->v;
	size_t oldcap = s->mask + 1, keep = 0, cap = 64;

	for (size_t i = 0; i < oldcap; i++)
		if (!id_empty(old[i].id) && old[i].id.hlc > floor)
			keep++;
	while (cap < 2 * keep + 2)
		cap *= 2;
	s->v = xcalloc(cap, sizeof(*s->v));
	s->mask = cap - 1;
	s->n = keep;
	for (size_t i = 0; i < oldcap; i++)
		if (!id_empty(old[i].id) && old[i].id.hlc > floor)
			s->v[idset_slot(s, old[i].id)] = old[i];
	free(old);
}

/* ---- pmap ------------------------------------------------------------- */

void pmap_init(struct pmap *m)
{
	m->mask = 63;
	m->n = 0;
	m->v = xcalloc(m->mask + 1, sizeof(*m->v));
}

void pmap_release(struct pmap *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

void *pmap_find(const struct pmap *m, uint64_t h, pmap_eq_fn eq,
		const void *key)
{
	for (size_t i = h & m->mask; m->v[i].p; i = (i + 1) & m->mask)
		if (m->v[i].h == h && eq(m->v[i].p, key))
			return m->v[i].p;
	return NULL;
}

static void pmap_place(struct pmap *m, uint64_t h, void *item)
{
	size_t i = h & m->mask;

	while (m->v[i].p)
		i = (i + 1) & m->mask;
	m->v[i].h = h;
	m->v[i].p = item;
}

void pmap_insert(struct pmap *m, uint64_t h, void *item)
{
	if (2 * (m->n + 1) > m->mask + 1) {
		struct pslot *old = m->v;
		size_t oldcap = m->mask + 1;

		m->mask = 2 * oldcap - 1;
		m->v = xcalloc(m->mask + 1, sizeof(*m->v));
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].p)
				pmap_place(m, old[i].h, old[i].p);
		free(old);
	}
	pmap_place(m, h, item);
	m->n++;
}

bool pmap_remove(struct pmap *m, uint64_t h, const void *item)
{
	size_t i = h & m->mask, j;

	while (m->v[i].p != item) {
		if (!m->v[i].p)
			return false;
		i = (i + 1) & m->mask;
	}
	/* Backward shift: pull later entries of the cluster into the hole
	 * unless their home slot lies cyclically in (hole, their slot]. */
	j = i;
	for (;;) {
		size_t home;

		m->v[i].p = NULL;
		for (;;) {
			j = (j + 1) & m->mask;
			if (!m->v[j].p)
				goto out;
			home = m->v[j].h & m->mask;
			if (i <= j ? (i < home && home <= j)
				   : (i < home || home <= j))
				continue;
			break;
		}
		m->v[i] = m->v[j];
		i = j;
	}
out:
	m->n--;
	return true;
}
