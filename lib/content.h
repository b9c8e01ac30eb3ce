/*
 * content.h - content hashes of files.
 *
 * A file's content is named by XXH3-128 of its bytes (the same hash names
 * chunks later).  Reading is bounded by what the file holds, in fixed-size
 * pieces, so any file size works in constant memory.
 */
#ifndef WKFS_CONTENT_H
#define WKFS_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "op.h"

/* Hashes everything readable from fd, from offset 0 (pread); *size gets the
 * number of bytes hashed.  0 or -errno. */
int content_hash_fd(int fd, struct wk_hash *out, uint64_t *size);

/*
 * Reads fd from offset 0 to its end (pread) in pieces of at most `piece`
 * bytes, calling fn for each.  A non-zero return of fn stops the read and
 * is returned; otherwise 0 or -errno.  *size (may be NULL) gets the bytes
 * read.
 */
typedef int (*content_piece_fn)(void *arg, const void *p, size_t n);
int content_read_pieces(int fd, size_t piece, content_piece_fn fn, void *arg,
			uint64_t *size);

/* Hashes a buffer (symlink targets, tests). */
void content_hash_buf(const void *p, size_t len, struct wk_hash *out);

#endif
