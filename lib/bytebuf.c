/*
 * bytebuf.c - a growable byte buffer with a hard cap (see bytebuf.h).
 */
#include "bytebuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bbuf_init(struct bbuf *b, size_t cap)
{
	*b = (struct bbuf){.cap = cap};
}

void bbuf_release(struct bbuf *b)
{
	free(b->p);
	bbuf_init(b, b->cap);
}

void bbuf_reset(struct bbuf *b)
{
	b->len = 0;
	b->err = 0;
}

/* Makes room for n more bytes; 0 or the (now sticky) error. */
static int bbuf_grow(struct bbuf *b, size_t n)
{
	size_t want, alloc;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (n > b->cap || b->len > b->cap - n)
		return b->err = -E2BIG;
	want = b->len + n;
	if (want <= b->alloc)
		return 0;
	alloc = b->alloc ? b->alloc : 64;
	while (alloc < want)
		alloc = alloc > SIZE_MAX / 2 ? want : alloc * 2;
	if (alloc > b->cap)
		alloc = b->cap;
	p = realloc(b->p, alloc);
	if (!p)
		return b->err = -ENOMEM;
	b->p = p;
	b->alloc = alloc;
	return 0;
}

int bbuf_put(struct bbuf *b, const void *p, size_t n)
{
	int rc = bbuf_grow(b, n);

	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

int bbuf_put_u8(struct bbuf *b, uint8_t v)
{
	return bbuf_put(b, &v, 1);
}

int bbuf_put_varint(struct bbuf *b, uint64_t v)
{
	uint8_t tmp[BBUF_VARINT_MAX];
	size_t n = 0;

	do {
		tmp[n] = v & 0x7f;
		v >>= 7;
		if (v)
			tmp[n] |= 0x80;
		n++;
	} while (v);
	return bbuf_put(b, tmp, n);
}

bool bread_varint(struct bread *in, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t c;

		if (in->p == in->end)
			return false;
		c = *in->p++;
		/* The 10th byte holds bit 63 only. */
		if (shift == 63 && c > 1)
			return false;
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			/* Shortest form only: no trailing zero byte. */
			if (c == 0 && shift > 0)
				return false;
			*out = v;
			return true;
		}
	}
	return false;
}

bool bread_u8(struct bread *in, uint8_t *out)
{
	if (in->p == in->end)
		return false;
	*out = *in->p++;
	return true;
}

bool bread_bytes(struct bread *in, void *dst, size_t n)
{
	if (bread_left(in) < n)
		return false;
	memcpy(dst, in->p, n);
	in->p += n;
	return true;
}
