/*
 * bytebuf.h - a growable byte buffer with a hard cap, for encoders.
 *
 * Anything whose size is decided by input (a file's recipe, a peer's
 * request) is built in a bbuf: it grows geometrically up to the cap given at
 * init and no further, so a hostile or runaway input gets -E2BIG, never an
 * out-of-memory kill.  Errors are sticky, as with git's strbuf users who
 * check once: after the first failure every later append is a no-op and
 * bbuf_error() reports it, so an encoder can append freely and check at the
 * end.
 *
 * Calling sequence:
 *
 *	struct bbuf b;
 *	bbuf_init(&b, 1 << 20);
 *	bbuf_put(&b, p, n); bbuf_put_u8(&b, 1); bbuf_put_varint(&b, x);
 *	if ((rc = bbuf_error(&b)) < 0) ...;
 *	use b.p[0 .. b.len);
 *	bbuf_release(&b);	(frees; the bbuf may be initialised again)
 *
 * Not thread-safe; a bbuf belongs to one thread at a time.
 */
#ifndef WKFS_BYTEBUF_H
#define WKFS_BYTEBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bbuf {
	uint8_t *p;   /* NULL until the first append */
	size_t len;   /* bytes used */
	size_t alloc; /* bytes allocated */
	size_t cap;   /* len never exceeds this */
	int err;      /* 0, or the first error: -E2BIG, -ENOMEM */
};

/* Longest encoding of a 64-bit varint (LEB128, 7 bits a byte). */
#define BBUF_VARINT_MAX 10

void bbuf_init(struct bbuf *b, size_t cap);
void bbuf_release(struct bbuf *b);
/* Forgets the contents and any error, keeps the memory. */
void bbuf_reset(struct bbuf *b);

/* Appends; 0 or the sticky error (-E2BIG past the cap, -ENOMEM). */
int bbuf_put(struct bbuf *b, const void *p, size_t n);
int bbuf_put_u8(struct bbuf *b, uint8_t v);
/* Unsigned LEB128: 7 bits a byte, low bits first, high bit = more. */
int bbuf_put_varint(struct bbuf *b, uint64_t v);

static inline int bbuf_error(const struct bbuf *b)
{
	return b->err;
}

/*
 * The reading side: a cursor over untrusted bytes.  Every read checks the
 * bounds and returns false at the end of the input or on a malformed value,
 * so a decoder can chain reads and fail once:
 *
 *	struct bread in;
 *	bread_init(&in, p, n);
 *	if (!bread_varint(&in, &count) || !bread_bytes(&in, name, 16)) ...
 */
struct bread {
	const uint8_t *p, *end;
};

static inline void bread_init(struct bread *in, const void *p, size_t n)
{
	in->p = p;
	in->end = in->p + n;
}

static inline size_t bread_left(const struct bread *in)
{
	return (size_t)(in->end - in->p);
}

/* A varint as bbuf_put_varint writes it; only the shortest form is taken. */
bool bread_varint(struct bread *in, uint64_t *out);
bool bread_u8(struct bread *in, uint8_t *out);
bool bread_bytes(struct bread *in, void *dst, size_t n);

#endif
