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

/* Hashes a buffer (symlink targets, tests). */
void content_hash_buf(const void *p, size_t len, struct wk_hash *out);

#endif
