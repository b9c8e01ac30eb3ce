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

int content_hash_fd(int fd, struct wk_hash *out, uint64_t *size)
{
	XXH3_state_t *st = XXH3_createState();
	char *buf = malloc(HASH_PIECE);
	uint64_t off = 0;
	int rc = 0;

	if (!st || !buf) {
		rc = -ENOMEM;
		goto out_free;
	}
	XXH3_128bits_reset(st);
	for (;;) {
		ssize_t n = pread(fd, buf, HASH_PIECE, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		XXH3_128bits_update(st, buf, n);
		off += n;
	}
	canonical(XXH3_128bits_digest(st), out);
	if (size)
		*size = off;

out_free:
	free(buf);
	XXH3_freeState(st);
	return rc;
}
