/*
 * content.c - XXH3-128 content hashes.
 */
#include "content.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <xxhash.h>

/* Below malloc's mmap threshold: hashing runs on every close of a small
 * file, and an mmap/munmap pair per call costs more than the hash. */
#define HASH_PIECE (64 << 10)

static void canonical(XXH128_hash_t h, struct wk_hash *out)
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	for (int i = 0; i < 16; i++)
		out->b[i] = c.digest[i];
}

void content_hash_buf(const void *p, size_t len, struct wk_hash *out)
{
	canonical(XXH3_128bits(p, len), out);
}

int content_read_pieces(int fd, size_t piece, content_piece_fn fn, void *arg,
			uint64_t *size)
{
	char *buf = malloc(piece);
	uint64_t off = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = pread(fd, buf, piece, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		off += n;
		rc = fn(arg, buf, n);
		if (rc)
			break;
	}
	free(buf);
	if (size)
		*size = off;
	return rc;
}

static int hash_piece(void *arg, const void *p, size_t n)
{
	XXH3_128bits_update(arg, p, n);
	return 0;
}

int content_hash_fd(int fd, struct wk_hash *out, uint64_t *size)
{
	XXH3_state_t *st = XXH3_createState();
	int rc;

	if (!st)
		return -ENOMEM;
	XXH3_128bits_reset(st);
	rc = content_read_pieces(fd, HASH_PIECE, hash_piece, st, size);
	if (!rc)
		canonical(XXH3_128bits_digest(st), out);
	XXH3_freeState(st);
	return rc;
}
