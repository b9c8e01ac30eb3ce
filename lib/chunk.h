/*
 * chunk.h - content-defined chunking (FastCDC-style) and chunk names.
 *
 * A file is cut into chunks at positions chosen by its content, not by
 * offsets, so an insertion or deletion moves the cut points near the edit and
 * leaves every later chunk byte-identical: after a one-byte edit in a large
 * file only one or two chunks differ, and only those travel.  Each chunk is
 * named by XXH3-128 of its bytes (canonical big-endian, as content.h names
 * whole files).
 *
 * The cut rule, after Xia et al., "FastCDC" (USENIX ATC 2016), with our own
 * parameters: a gear hash h = (h << 1) + gear[byte] runs over the chunk from
 * CHUNK_MIN on (the first CHUNK_MIN bytes are never a cut point and are not
 * hashed); a chunk ends after the byte where the top bits of h selected by
 * the mask are all zero.  "Normalized chunking": before CHUNK_NORMAL bytes
 * the mask has 18 bits (a cut is unlikely), from there on 14 bits (likely),
 * which pulls chunk sizes towards the middle; at CHUNK_MAX bytes the chunk
 * ends regardless.  CHUNK_NORMAL is set so that random data averages about
 * 64 KiB a chunk (skipping CHUNK_MIN bytes makes chunks longer than the
 * masks alone would).
 *
 * ON-WIRE FORMAT: the gear table (chunk_gear), the masks and the sizes below
 * decide where every replica cuts; chunk names travel between replicas and
 * are stored by the relay.  Changing any of them makes every replica
 * re-chunk and re-send everything and defeats deduplication against stored
 * chunks.  They must never change; tests/unit/test_chunk.c pins them with
 * golden values.
 *
 * Pure code: no I/O except chunk_fd(), which reads the caller's descriptor.
 */
#ifndef WKFS_CHUNK_H
#define WKFS_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"

/* Chunk sizes in bytes: only a stream's last chunk may be under CHUNK_MIN;
 * the easier mask applies from CHUNK_NORMAL on; none exceeds CHUNK_MAX. */
#define CHUNK_MIN    (16u * 1024)
#define CHUNK_NORMAL (52u * 1024)
#define CHUNK_MAX    (256u * 1024)
/* A cut needs these bits of the gear hash zero: the top 18 bits before
 * CHUNK_NORMAL (1 in 256 Ki bytes), the top 14 after (1 in 16 Ki). */
#define CHUNK_MASK_HARD (~0ULL << (64 - 18))
#define CHUNK_MASK_EASY (~0ULL << (64 - 14))

/*
 * The gear table: 256 values of splitmix64 (Steele et al.) seeded with
 * 0x776b667367656172 ("wkfsgear" in ASCII), in order.  Part of the on-wire
 * format (see above).
 */
extern const uint64_t chunk_gear[256];

/* One chunk: where it is in the stream and what it is called. */
struct chunk {
	uint64_t off;	     /* offset of its first byte in the stream */
	uint32_t len;	     /* 1 .. CHUNK_MAX bytes */
	struct wk_hash name; /* XXH3-128 of the bytes; zero unless naming */
};

/*
 * A streaming chunker.  Feed it the stream in pieces of any size (a byte at a
 * time, or megabytes); the chunks it reports depend only on the bytes, never
 * on how they were split.  The chunker keeps no copy of the data: it carries
 * only the running gear hash and, when naming, an XXH3 state.
 *
 * Calling sequence (pull style):
 *
 *	struct chunker c;
 *	struct chunk ch;
 *	size_t used;
 *	if (chunker_init(&c, CHUNKER_NAME) < 0) ...;
 *	for each piece (p, n):
 *		while (chunk_next(&c, p, n, &used, &ch)) {
 *			... ch is a complete chunk ...
 *			p += used; n -= used;
 *		}
 *	if (chunker_finish(&c, &ch)) ... ch is the last chunk ...;
 *	chunker_release(&c);
 *
 * or push style with chunker_feed() and a callback.  One chunker belongs to
 * one thread at a time.
 */
struct chunker {
	uint64_t off; /* stream offset of the current chunk's first byte */
	uint32_t len; /* bytes of the current chunk seen so far */
	uint64_t h;   /* gear hash of the current chunk from CHUNK_MIN on */
	void *xx; /* XXH3_state_t of the current chunk; NULL unless naming */
};

/* chunker_init() flags. */
#define CHUNKER_NAME 0x1 /* compute chunk names (else name is all zero) */

/* 0 or -ENOMEM. */
int chunker_init(struct chunker *c, unsigned flags);
void chunker_release(struct chunker *c);

/*
 * Consumes bytes from p[0 .. n) up to the end of the current chunk.  Returns
 * true when a chunk ended within them: *out describes it and *used says how
 * many bytes of p were consumed (the rest belongs to the next chunk).
 * Returns false when all n bytes were consumed without a cut (*used = n).
 */
bool chunk_next(struct chunker *c, const void *p, size_t n, size_t *used,
		struct chunk *out);

/*
 * Ends the stream: true with the last chunk in *out if any bytes are pending
 * (it may be shorter than CHUNK_MIN), false if none are (an empty stream has
 * no chunks).  The chunker is then ready for a new stream at offset 0.
 */
bool chunker_finish(struct chunker *c, struct chunk *out);

/*
 * Called for each chunk; return 0 to go on, anything else to stop (the value
 * is passed back to the caller of chunker_feed()/chunk_fd()).
 */
typedef int chunk_fn(void *arg, const struct chunk *ch);

/* Push style: chunk_next() over all of p[0 .. n), calling fn per chunk. */
int chunker_feed(struct chunker *c, const void *p, size_t n, chunk_fn *fn,
		 void *arg);

/*
 * Chunks and names everything readable from fd, from offset 0 to EOF (pread
 * in large pieces, so the file offset is untouched), calling fn in stream
 * order.  Returns 0, -errno (read failure, -ENOMEM) or fn's non-zero value.
 */
int chunk_fd(int fd, chunk_fn *fn, void *arg);

#endif
