/*
 * syncd_gitseg.c - the segment files of a git remote's branch: one push's
 * ops of one actor (the format is in syncd_git.h).  Pure code: a segment
 * comes from anyone who can push, so decoding checks every length.
 */
#include <errno.h>
#include <string.h>

#include "syncd_git.h"

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

void gitseg_begin(struct wire_buf *b, uint64_t actor)
{
	uint8_t h[GITSEG_HEADER];

	memcpy(h, GITSEG_MAGIC, 7);
	h[7] = GITSEG_VERSION;
	put_be(h + 8, actor, 8);
	wire_buf_reset(b);
	wire_buf_append(b, h, sizeof(h));
}

int gitseg_add(struct wire_buf *b, uint64_t hlc, const uint8_t *p, uint32_t len)
{
	uint8_t h[12];
	size_t was = wire_buf_len(b);
	int rc;

	put_be(h, hlc, 8);
	put_be(h + 8, len, 4);
	rc = wire_buf_append(b, h, sizeof(h));
	if (!rc)
		rc = wire_buf_append(b, p, len);
	if (rc)
		wire_buf_truncate(b, was);
	return rc;
}

int gitseg_iter_init(struct gitseg_iter *it, const uint8_t *p, size_t len)
{
	if (len < GITSEG_HEADER || memcmp(p, GITSEG_MAGIC, 7) != 0 ||
	    p[7] != GITSEG_VERSION)
		return -EBADMSG;
	it->actor = get_be(p + 8, 8);
	it->p = p + GITSEG_HEADER;
	it->end = p + len;
	return 0;
}

int gitseg_next(struct gitseg_iter *it, uint64_t *hlc, const uint8_t **p,
		uint32_t *len)
{
	size_t left = (size_t)(it->end - it->p);

	if (left == 0)
		return 0;
	if (left < 12)
		return -EBADMSG;
	*hlc = get_be(it->p, 8);
	*len = (uint32_t)get_be(it->p + 8, 4);
	if (*len > WIRE_PAYLOAD_MAX || *len > left - 12)
		return -EBADMSG;
	*p = it->p + 12;
	it->p += 12 + *len;
	return 1;
}
