/*
 * recipe.h - a file's recipe: the ordered list of its chunks, and the two
 * encodings that carry recipes between replicas.
 *
 * A recipe is (name, length) for every chunk of a file in order (chunk.h);
 * the file is the concatenation of those chunks.  A replica that has the
 * recipe and the chunks can rebuild the file; one that has an older version
 * needs only the chunks whose names it lacks.
 *
 * Two encodings, told apart by their first byte:
 *
 *   plain (0x01)  varint count, then count x (16-byte name, varint length)
 *   delta (0x02)  varint base_count, 8-byte base digest (big-endian
 *                 XXH3-64 of every base entry as 16-byte name + 4-byte
 *                 big-endian length), varint new_count, then instructions
 *                 to the end of the input, each starting with a varint
 *                 op = count << 1 | kind:
 *                   kind 0, COPY: varint zigzag(start - cursor); appends
 *                       base[start .. start + count); cursor is where the
 *                       previous COPY ended in the base (0 at first), so
 *                       copying on from there costs one byte;
 *                   kind 1, ADD: count x (16-byte name, varint length).
 *
 * Varints are unsigned LEB128 (bytebuf.h), shortest form only.  Counts are
 * at least 1.  Lengths are 1 .. CHUNK_MAX.  A delta of a one-chunk edit in
 * a 4,000-chunk file is about 30 bytes: COPY, ADD one entry, COPY.
 *
 * Decoding trusts nothing: every count, index, length and varint is checked
 * against what the input and the base hold; a recipe never exceeds
 * RECIPE_MAX_ENTRIES; memory grows only with entries actually produced.
 * Bad input gives -EBADMSG, never an over-read.  These encodings are part
 * of the on-wire format.
 *
 * Pure code: no I/O except recipe_from_fd(), which reads the caller's fd.
 */
#ifndef WKFS_RECIPE_H
#define WKFS_RECIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytebuf.h"
#include "op.h"

/* At 64 KiB a chunk on average, files up to about 64 GiB. */
#define RECIPE_MAX_ENTRIES (1u << 20)

#define RECIPE_TAG_PLAIN 0x01
#define RECIPE_TAG_DELTA 0x02

struct recipe_entry {
	struct wk_hash name; /* XXH3-128 of the chunk */
	uint32_t len;	     /* 1 .. CHUNK_MAX */
};

/*
 * struct recipe r = RECIPE_INIT (or recipe_init(&r)); recipe_push()...;
 * recipe_release(&r) frees and leaves it empty and reusable.
 */
struct recipe {
	struct recipe_entry *v;
	size_t n;     /* entries */
	size_t alloc; /* entries allocated */
};

#define RECIPE_INIT        \
	{                  \
		NULL, 0, 0 \
	}

void recipe_init(struct recipe *r);
void recipe_release(struct recipe *r);

/* Appends one entry: 0, -EINVAL (len 0 or > CHUNK_MAX), -E2BIG (would pass
 * RECIPE_MAX_ENTRIES) or -ENOMEM. */
int recipe_push(struct recipe *r, const struct wk_hash *name, uint32_t len);

bool recipe_eq(const struct recipe *a, const struct recipe *b);
/* The file's size: the sum of the lengths. */
uint64_t recipe_size(const struct recipe *r);

/* Chunks fd from offset 0 (chunk_fd) into *out, which the call
 * initialises; 0 or -errno (out left empty). */
int recipe_from_fd(int fd, struct recipe *out);

/* Appends the plain encoding of r to out: 0, -E2BIG (out's cap, or too
 * many entries) or -ENOMEM. */
int recipe_encode(const struct recipe *r, struct bbuf *out);

/*
 * Appends a delta that turns base into r to out: 0, -E2BIG or -ENOMEM.
 * Insertions and deletions that shift later chunks cost a few bytes: runs of
 * r are found in base wherever they are.  A hostile base (names built to
 * collide) cannot slow it down, only make the delta larger.
 */
int recipe_delta_encode(const struct recipe *base, const struct recipe *r,
			struct bbuf *out);

/*
 * Decodes p[0 .. n) into *out, which the call initialises: a plain encoding
 * (base is then unused and may be NULL) or a delta against base.  0;
 * -EBADMSG for malformed input; -ESTALE for a delta made against another
 * base (count or digest differ) or with base NULL: fall back to asking for
 * a plain recipe; -ENOMEM.  On
 * error *out is left empty.
 */
int recipe_decode(const struct recipe *base, const void *p, size_t n,
		  struct recipe *out);

/* The same, but a delta is required (a plain encoding is -EBADMSG). */
int recipe_delta_apply(const struct recipe *base, const void *p, size_t n,
		       struct recipe *out);

/*
 * Calls fn(arg, name) for every chunk name the encoding p[0 .. n) lists
 * itself: each entry of a plain encoding; each ADD entry of a delta (its
 * COPYs name entries of a base this call does not have).  For a relay,
 * which must hold the chunks a recipe names without decoding the chain
 * below it.  0; fn's first nonzero return; -EBADMSG for input that
 * recipe_decode() would refuse whatever the base (fn may have been called
 * for entries before the fault).
 */
typedef int (*recipe_name_fn)(void *arg, const struct wk_hash *name);
int recipe_names(const void *p, size_t n, recipe_name_fn fn, void *arg);

#endif
