/*
 * refetch.h - asking wkfs-syncd for contents the apply thread lacks.
 *
 * A batch can need a content that is nowhere here: a version this
 * replica wrote and then wrote over before another replica's put made it
 * a conflict copy, or a version a batch went on without.  The relay keeps
 * every chunk it was sent, and wkfs-syncd brings one back into the object
 * store on request (syncd.sock `fetch HASH SIZE`, syncd/syncd_refetch.c).
 * The request can take seconds, so a thread of its own makes it, never the
 * apply thread with its locks held; when a content came, the callback
 * says so (the apply thread's repair pass then writes what waited).
 */
#ifndef WKFS_REFETCH_H
#define WKFS_REFETCH_H

#include <stdint.h>

#include "op.h"

struct refetch;

typedef void (*refetch_came_fn)(void *arg);

/* Starts the thread for the daemon whose control socket is in run; NULL
 * when it cannot (the mount then does without). */
struct refetch *refetch_start(const char *run, refetch_came_fn came, void *arg);

/* Asks for content h of size bytes, unless asked for already (a content
 * that failed is asked again after a while).  Never blocks; NULL rf is a
 * no-op. */
void refetch_want(struct refetch *rf, const struct wk_hash *h, uint64_t size);

/* Stops the thread (waiting for a request under way) and frees rf. */
void refetch_stop(struct refetch *rf);

#endif
