/*
 * recipe.c - recipes, their plain and delta encodings (see recipe.h).
 *
 * What it is not: it does not know where chunks are stored or how they
 * travel; it only turns lists of chunk names into bytes and back.
 */
#include "recipe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "chunk.h"

/* Shortest possible encoded entry: 16-byte name + 1-byte length. */
#define ENTRY_MIN_BYTES 17

/* Delta encoder: base positions tried per lookup, probes per hash lookup. */
#define MATCH_CANDIDATES 16
#define INDEX_PROBES	 64
#define INDEX_NONE	 UINT32_MAX

void recipe_init(struct recipe *r)
{
	*r = (struct recipe)RECIPE_INIT;
}

void recipe_release(struct recipe *r)
{
	free(r->v);
	recipe_init(r);
}

/* Room for n more entries; 0, -E2BIG or -ENOMEM. */
static int recipe_reserve(struct recipe *r, size_t n)
{
	size_t alloc;
	struct recipe_entry *v;

	if (n > RECIPE_MAX_ENTRIES || r->n > RECIPE_MAX_ENTRIES - n)
		return -E2BIG;
	if (r->n + n <= r->alloc)
		return 0;
	alloc = r->alloc ? r->alloc : 16;
	while (alloc < r->n + n)
		alloc *= 2;
	if (alloc > RECIPE_MAX_ENTRIES)
		alloc = RECIPE_MAX_ENTRIES;
	v = realloc(r->v, alloc * sizeof(*v));
	if (!v)
		return -ENOMEM;
	r->v = v;
	r->alloc = alloc;
	return 0;
}

int recipe_push(struct recipe *r, const struct wk_hash *name, uint32_t len)
{
	int rc;

	if (len == 0 || len > CHUNK_MAX)
		return -EINVAL;
	rc = recipe_reserve(r, 1);
	if (rc < 0)
		return rc;
	r->v[r->n].name = *name;
	r->v[r->n].len = len;
	r->n++;
	return 0;
}

static bool entry_eq(const struct recipe_entry *a, const struct recipe_entry *b)
{
	return a->len == b->len && !memcmp(a->name.b, b->name.b, 16);
}

bool recipe_eq(const struct recipe *a, const struct recipe *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!entry_eq(&a->v[i], &b->v[i]))
			return false;
	return true;
}

uint64_t recipe_size(const struct recipe *r)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < r->n; i++)
		sum += r->v[i].len;
	return sum;
}

static int recipe_add_chunk(void *arg, const struct chunk *ch)
{
	return recipe_push(arg, &ch->name, ch->len);
}

int recipe_from_fd(int fd, struct recipe *out)
{
	int rc;

	recipe_init(out);
	rc = chunk_fd(fd, recipe_add_chunk, out);
	if (rc < 0)
		recipe_release(out);
	return rc;
}

/* ---- encoding ---- */

static void put_entry(struct bbuf *b, const struct recipe_entry *e)
{
	bbuf_put(b, e->name.b, sizeof(e->name.b));
	bbuf_put_varint(b, e->len);
}

int recipe_encode(const struct recipe *r, struct bbuf *out)
{
	if (r->n > RECIPE_MAX_ENTRIES)
		return -E2BIG;
	bbuf_put_u8(out, RECIPE_TAG_PLAIN);
	bbuf_put_varint(out, r->n);
	for (size_t i = 0; i < r->n; i++)
		put_entry(out, &r->v[i]);
	return bbuf_error(out);
}

/*
 * XXH3-64 of the base's entries, so that a delta cannot be applied to
 * another base by mistake.  0 or -ENOMEM.
 */
static int recipe_digest(const struct recipe *r, uint64_t *out)
{
	uint8_t tmp[64 * 20];
	size_t k = 0;
	XXH3_state_t *st = XXH3_createState();

	if (!st)
		return -ENOMEM;
	XXH3_64bits_reset(st);
	for (size_t i = 0; i < r->n; i++) {
		uint32_t len = r->v[i].len;

		memcpy(tmp + k, r->v[i].name.b, 16);
		tmp[k + 16] = len >> 24;
		tmp[k + 17] = len >> 16;
		tmp[k + 18] = len >> 8;
		tmp[k + 19] = len;
		k += 20;
		if (k == sizeof(tmp)) {
			XXH3_64bits_update(st, tmp, k);
			k = 0;
		}
	}
	XXH3_64bits_update(st, tmp, k);
	*out = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return 0;
}

/*
 * Where each name occurs in the base: open addressing over distinct names,
 * each slot heading the chain of that name's positions in ascending order.
 * A name that finds no slot within INDEX_PROBES is left out (the encoder
 * then ADDs it instead of copying), so names built to collide cost delta
 * size, never quadratic time.
 */
struct name_index {
	const struct recipe *base;
	uint32_t *head; /* slot -> first position, INDEX_NONE when empty */
	uint32_t *next; /* position -> next with the same name, INDEX_NONE */
	size_t mask;	/* slots - 1 */
	unsigned shift; /* 64 - log2(slots) */
};

/* The slot holding name, or the empty slot where it would go; NULL when
 * the probes run out. */
static uint32_t *index_slot(const struct name_index *ix,
			    const struct wk_hash *name)
{
	uint64_t x;
	size_t s;

	memcpy(&x, name->b, sizeof(x));
	s = (x * 0x9e3779b97f4a7c15ULL) >> ix->shift;
	for (int k = 0; k < INDEX_PROBES; k++, s = (s + 1) & ix->mask) {
		uint32_t pos = ix->head[s];

		if (pos == INDEX_NONE ||
		    !memcmp(ix->base->v[pos].name.b, name->b, 16))
			return &ix->head[s];
	}
	return NULL;
}

static uint32_t index_first(const struct name_index *ix,
			    const struct wk_hash *name)
{
	uint32_t *slot = index_slot(ix, name);

	return slot ? *slot : INDEX_NONE;
}

static void index_release(struct name_index *ix)
{
	free(ix->head);
	free(ix->next);
}

/* 0 or -ENOMEM.  base->n <= RECIPE_MAX_ENTRIES. */
static int index_build(struct name_index *ix, const struct recipe *base)
{
	size_t slots = 16;
	unsigned bits = 4;

	while (slots < 2 * base->n) {
		slots *= 2;
		bits++;
	}
	*ix = (struct name_index){
		.base = base, .mask = slots - 1, .shift = 64 - bits};
	ix->head = malloc(slots * sizeof(*ix->head));
	ix->next = malloc((base->n ? base->n : 1) * sizeof(*ix->next));
	if (!ix->head || !ix->next) {
		index_release(ix);
		return -ENOMEM;
	}
	memset(ix->head, 0xff, slots * sizeof(*ix->head));
	/* Backwards, so that each chain lists positions in ascending order. */
	for (size_t i = base->n; i-- > 0;) {
		uint32_t *slot = index_slot(ix, &base->v[i].name);

		ix->next[i] = slot ? *slot : INDEX_NONE;
		if (slot)
			*slot = i;
	}
	return 0;
}

struct delta_enc {
	struct bbuf *out;
	const struct recipe *base, *r;
	size_t cursor;	 /* base position where the last COPY ended */
	size_t add_from; /* first entry of r in the pending ADD */
	size_t add_n;	 /* entries in the pending ADD */
};

static void emit_add(struct delta_enc *e)
{
	if (!e->add_n)
		return;
	bbuf_put_varint(e->out, (uint64_t)e->add_n << 1 | 1);
	for (size_t i = 0; i < e->add_n; i++)
		put_entry(e->out, &e->r->v[e->add_from + i]);
	e->add_n = 0;
}

static void emit_copy(struct delta_enc *e, size_t start, size_t count)
{
	int64_t d = (int64_t)start - (int64_t)e->cursor;

	emit_add(e);
	bbuf_put_varint(e->out, (uint64_t)count << 1);
	bbuf_put_varint(e->out, (uint64_t)d << 1 ^ (uint64_t)(d >> 63));
	e->cursor = start + count;
}

/* How many entries of r from j equal those of base from b. */
static size_t run_len(const struct recipe *base, size_t b,
		      const struct recipe *r, size_t j)
{
	size_t n = 0;

	while (b + n < base->n && j + n < r->n &&
	       entry_eq(&base->v[b + n], &r->v[j + n]))
		n++;
	return n;
}

/*
 * Greedy: go on copying where the last COPY ended while that matches (the
 * common case after an edit: CDC resynchronises and the rest of the file
 * follows in order); else take the longest run among the first
 * MATCH_CANDIDATES base positions holding the entry's name.  Each candidate
 * scan is bounded by the run taken, so the whole is linear.
 */
int recipe_delta_encode(const struct recipe *base, const struct recipe *r,
			struct bbuf *out)
{
	struct delta_enc e = {.out = out, .base = base, .r = r};
	struct name_index ix;
	uint64_t digest;
	size_t j = 0;
	int rc;

	if (base->n > RECIPE_MAX_ENTRIES || r->n > RECIPE_MAX_ENTRIES)
		return -E2BIG;
	rc = recipe_digest(base, &digest);
	if (rc < 0)
		return rc;
	rc = index_build(&ix, base);
	if (rc < 0)
		return rc;
	bbuf_put_u8(out, RECIPE_TAG_DELTA);
	bbuf_put_varint(out, base->n);
	for (int k = 56; k >= 0; k -= 8)
		bbuf_put_u8(out, digest >> k);
	bbuf_put_varint(out, r->n);
	while (j < r->n && !bbuf_error(out)) {
		size_t best = e.cursor, best_len = 0;

		if (e.cursor < base->n)
			best_len = run_len(base, e.cursor, r, j);
		if (!best_len) {
			uint32_t pos = index_first(&ix, &r->v[j].name);

			for (int k = 0;
			     pos != INDEX_NONE && k < MATCH_CANDIDATES;
			     k++, pos = ix.next[pos]) {
				size_t len = run_len(base, pos, r, j);

				if (len > best_len) {
					best = pos;
					best_len = len;
				}
			}
		}
		if (!best_len) {
			if (!e.add_n)
				e.add_from = j;
			e.add_n++;
			j++;
			continue;
		}
		emit_copy(&e, best, best_len);
		j += best_len;
	}
	emit_add(&e);
	index_release(&ix);
	return bbuf_error(out);
}

/* ---- decoding ---- */

/* Reads count entries onto out: 0, -EBADMSG or -ENOMEM. */
static int rd_entries(struct bread *in, uint64_t count, struct recipe *out)
{
	struct wk_hash name;
	uint64_t len;
	int rc;

	if (count > bread_left(in) / ENTRY_MIN_BYTES)
		return -EBADMSG;
	rc = recipe_reserve(out, count);
	if (rc < 0)
		return rc == -E2BIG ? -EBADMSG : rc;
	for (uint64_t i = 0; i < count; i++) {
		if (!bread_bytes(in, name.b, sizeof(name.b)) ||
		    !bread_varint(in, &len) || len == 0 || len > CHUNK_MAX)
			return -EBADMSG;
		out->v[out->n].name = name;
		out->v[out->n].len = len;
		out->n++;
	}
	return 0;
}

static int decode_plain(struct bread *in, struct recipe *out)
{
	uint64_t count;
	int rc;

	if (!bread_varint(in, &count) || count > RECIPE_MAX_ENTRIES)
		return -EBADMSG;
	rc = rd_entries(in, count, out);
	if (rc < 0)
		return rc;
	return bread_left(in) ? -EBADMSG : 0;
}

static int decode_copy(struct bread *in, const struct recipe *base, uint64_t count,
		       size_t *cursor, struct recipe *out)
{
	uint64_t z, start;
	int rc;

	if (!bread_varint(in, &z))
		return -EBADMSG;
	/* start = cursor + unzigzag(z), computed without signed overflow. */
	if (z & 1) {
		if (z / 2 + 1 > *cursor)
			return -EBADMSG;
		start = *cursor - (z / 2 + 1);
	} else {
		if (z / 2 > base->n - *cursor)
			return -EBADMSG;
		start = *cursor + z / 2;
	}
	if (count > base->n - start)
		return -EBADMSG;
	rc = recipe_reserve(out, count);
	if (rc < 0)
		return rc == -E2BIG ? -EBADMSG : rc;
	memcpy(out->v + out->n, base->v + start, count * sizeof(*out->v));
	out->n += count;
	*cursor = start + count;
	return 0;
}

static int decode_delta(struct bread *in, const struct recipe *base,
			struct recipe *out)
{
	uint64_t base_n, digest, want, new_n, op, count;
	uint8_t d[8];
	size_t cursor = 0;
	int rc;

	if (!bread_varint(in, &base_n) || !bread_bytes(in, d, sizeof(d)) ||
	    !bread_varint(in, &new_n) || new_n > RECIPE_MAX_ENTRIES)
		return -EBADMSG;
	if (!base || base_n != base->n)
		return -ESTALE;
	rc = recipe_digest(base, &want);
	if (rc < 0)
		return rc;
	digest = 0;
	for (int k = 0; k < 8; k++)
		digest = digest << 8 | d[k];
	if (digest != want)
		return -ESTALE;
	while (bread_left(in)) {
		if (!bread_varint(in, &op))
			return -EBADMSG;
		count = op >> 1;
		if (count == 0 || count > new_n - out->n)
			return -EBADMSG;
		if (op & 1)
			rc = rd_entries(in, count, out);
		else
			rc = decode_copy(in, base, count, &cursor, out);
		if (rc < 0)
			return rc;
	}
	return out->n == new_n ? 0 : -EBADMSG;
}

static int decode(const struct recipe *base, const void *p, size_t n,
		  struct recipe *out, bool delta_only)
{
	struct bread in;

	bread_init(&in, p, n);
	uint8_t tag;
	int rc;

	recipe_init(out);
	if (!bread_bytes(&in, &tag, 1))
		rc = -EBADMSG;
	else if (tag == RECIPE_TAG_DELTA)
		rc = decode_delta(&in, base, out);
	else if (tag == RECIPE_TAG_PLAIN && !delta_only)
		rc = decode_plain(&in, out);
	else
		rc = -EBADMSG;
	if (rc < 0)
		recipe_release(out);
	return rc;
}

int recipe_decode(const struct recipe *base, const void *p, size_t n,
		  struct recipe *out)
{
	return decode(base, p, n, out, false);
}

int recipe_delta_apply(const struct recipe *base, const void *p, size_t n,
		       struct recipe *out)
{
	return decode(base, p, n, out, true);
}

/* ---- listing names ---- */

/* Reads count entries of in and hands their names to fn. */
static int names_of_entries(struct bread *in, uint64_t count, recipe_name_fn fn,
			    void *arg)
{
	struct wk_hash name;
	uint64_t len;
	int rc;

	if (count > bread_left(in) / ENTRY_MIN_BYTES)
		return -EBADMSG;
	for (uint64_t i = 0; i < count; i++) {
		if (!bread_bytes(in, name.b, sizeof(name.b)) ||
		    !bread_varint(in, &len) || len == 0 || len > CHUNK_MAX)
			return -EBADMSG;
		rc = fn(arg, &name);
		if (rc)
			return rc;
	}
	return 0;
}

/* A delta's ADD names; its COPYs are checked for form only. */
static int names_of_delta(struct bread *in, recipe_name_fn fn, void *arg)
{
	uint64_t base_n, new_n, op, count, z, done = 0;
	uint8_t d[8];
	int rc;

	if (!bread_varint(in, &base_n) || !bread_bytes(in, d, sizeof(d)) ||
	    !bread_varint(in, &new_n) || new_n > RECIPE_MAX_ENTRIES)
		return -EBADMSG;
	while (bread_left(in)) {
		if (!bread_varint(in, &op))
			return -EBADMSG;
		count = op >> 1;
		if (count == 0 || count > new_n - done)
			return -EBADMSG;
		if (op & 1)
			rc = names_of_entries(in, count, fn, arg);
		else
			rc = bread_varint(in, &z) ? 0 : -EBADMSG;
		if (rc)
			return rc;
		done += count;
	}
	return done == new_n ? 0 : -EBADMSG;
}

int recipe_names(const void *p, size_t n, recipe_name_fn fn, void *arg)
{
	struct bread in;
	uint64_t count;
	uint8_t tag;
	int rc;

	bread_init(&in, p, n);
	if (!bread_bytes(&in, &tag, 1))
		return -EBADMSG;
	if (tag == RECIPE_TAG_DELTA)
		return names_of_delta(&in, fn, arg);
	if (tag != RECIPE_TAG_PLAIN || !bread_varint(&in, &count) ||
	    count > RECIPE_MAX_ENTRIES)
		return -EBADMSG;
	rc = names_of_entries(&in, count, fn, arg);
	if (rc)
		return rc;
	return bread_left(&in) ? -EBADMSG : 0;
}
