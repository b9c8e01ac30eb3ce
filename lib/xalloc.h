/*
 * xalloc.h - allocation that aborts on out-of-memory.
 *
 * Only for small allocations whose size the program controls.  Anything sized
 * by a file, the network or a peer must use a capped buffer and return an
 * error instead (see the wire codec).
 */
#ifndef WKFS_XALLOC_H
#define WKFS_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
