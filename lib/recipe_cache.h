/*
 * recipe_cache.h - the recipes of contents this replica has had, kept on
 * disk, and where each chunk name occurs in them.
 *
 * wkfs-syncd cuts every file it ships into chunks and decodes the recipe of
 * every put it fetches; the cache keeps those recipes so that the next
 * version of the file costs only its new chunks:
 *
 *  - a receiver rebuilding a put looks up each chunk name (rcache_find) and
 *    reads the chunk from a local content that holds it (an object in
 *    .wkfs/objects, a file in DIR), fetching only the rest;
 *  - a sender skips the HAVE for names whose content is known to be on the
 *    relay: every recipe carries the relay epoch (a number wkfs-syncd
 *    draws whenever the relay it talks to may have lost its chunks) at
 *    which all of its chunks were on the relay, or 0 for "not known".
 *
 * The cache never proves anything about bytes: a content may have changed
 * or gone since its recipe was stored, so every chunk read through it must
 * be hashed against its name by the caller.
 *
 * On disk: DIR/.wkfs/recipes/<32 hex of the content hash>, each file
 *
 *	"WKRC"  u8 version (2)  u64 epoch  name chunk  u8 depth
 *	plain recipe (recipe.h)  u64 XXH3-64 of everything before it
 *
 * where chunk and depth are the content's rcache_ref (zero: none known);
 * files of version 1 (without them) are still read, as "none known".
 *
 * (integers little-endian), written to a temporary and renamed into place,
 * not fsynced: a file lost or torn by a crash fails its checksum and is
 * treated as absent (and removed); the cache is an optimisation only.
 * Nothing removes entries yet except that; see docs/architecture.md.
 *
 * In memory: an index from chunk name to (content, offset), built from
 * every file at the first rcache_find() and kept up to date by
 * rcache_put().  Slots are chosen by a seeded hash, so recipes crafted
 * with colliding names cannot make lookups slow; the index stops growing
 * at RCACHE_INDEX_MAX entries (later recipes are then stored but not
 * indexed).
 *
 * Calling sequence:
 *
 *	struct rcache *rc;
 *	rcache_open(dirfd, &rc);
 *	rcache_put(rc, &hash, &recipe, epoch);
 *	rcache_get(rc, &hash, &recipe, &epoch);
 *	rcache_find(rc, &name, len, fn, arg);
 *	rcache_close(rc);
 *
 * One thread at a time; one process per DIR (wkfs-syncd holds its lock).
 */
#ifndef WKFS_RECIPE_CACHE_H
#define WKFS_RECIPE_CACHE_H

#include <stdint.h>

#include "op.h"
#include "recipe.h"

#define RCACHE_DIR ".wkfs/recipes"
/* Places rcache_find() reports for one name at most, newest first. */
#define RCACHE_FIND_MAX 8
/* Index entries (distinct names per content) at most: about 64 GiB of
 * contents at 64 KiB a chunk, about 48 MiB of memory. */
#define RCACHE_INDEX_MAX (1u << 20)

struct rcache;

/*
 * How the relay has a content's recipe: the name of the recipe chunk a
 * put of it named (docs/protocol.md, "Content of a put"), and how many
 * delta recipe chunks lead from it to a plain one (0: it is plain).  Only
 * valid with the epoch it was stored with, like the chunks themselves.
 */
struct rcache_ref {
	struct wk_hash chunk; /* zero: not known */
	unsigned depth;	      /* 0 .. 255 */
};

/* Opens the cache beneath dirfd (a directory fd of DIR, dup'ed), creating
 * .wkfs/recipes (0700) when missing.  0 or -errno. */
int rcache_open(int dirfd, struct rcache **out);
void rcache_close(struct rcache *rc);

/*
 * Stores r as the recipe of content h.  epoch: the relay epoch at which
 * every chunk of r is on the relay, or 0 when unknown; storing 0 never
 * lowers a known epoch, and storing what is there already writes
 * nothing.  0 or -errno (-E2BIG for a recipe too large to encode).
 */
int rcache_put(struct rcache *rc, const struct wk_hash *h,
	       const struct recipe *r, uint64_t epoch);

/* rcache_put() that also records how the relay has the recipe (ref may
 * be NULL: not known; ignored with epoch 0).  At the epoch already
 * stored, a NULL ref keeps the one known and another ref replaces it. */
int rcache_put_ref(struct rcache *rc, const struct wk_hash *h,
		   const struct recipe *r, uint64_t epoch,
		   const struct rcache_ref *ref);

/* The epoch and ref of content h's recipe, from the index: 0, or -ENOENT
 * when none is cached (or the index cannot be built). */
int rcache_ref(struct rcache *rc, const struct wk_hash *h, uint64_t *epoch,
	       struct rcache_ref *ref);

/* Reads the recipe of content h into *out (initialised by the call) and
 * its epoch (may be NULL): 0, -ENOENT (none, or a damaged file, which is
 * removed), -ENOMEM. */
int rcache_get(struct rcache *rc, const struct wk_hash *h, struct recipe *out,
	       uint64_t *epoch);

/* The epoch of content h's recipe (0: unknown): 0, or -ENOENT when no
 * recipe of h is cached (or the index cannot be built). */
int rcache_epoch(struct rcache *rc, const struct wk_hash *h, uint64_t *epoch);

/*
 * For each place where a chunk named `name` of `len` bytes occurs in a
 * cached recipe (one per content, newest content first, at most
 * RCACHE_FIND_MAX), calls fn(arg, content, offset, epoch); a non-zero
 * return stops the walk and is returned.  0 when the walk ends, or -errno
 * when the index cannot be built (then nothing is reported).
 */
typedef int (*rcache_place_fn)(void *arg, const struct wk_hash *content,
			       uint64_t off, uint64_t epoch);
int rcache_find(struct rcache *rc, const struct wk_hash *name, uint32_t len,
		rcache_place_fn fn, void *arg);

/*
 * Reads fd once from offset 0 to its end and returns both its content
 * hash (as content_hash_fd) and its recipe (as recipe_from_fd), which
 * therefore describe the same bytes even if the file changes meanwhile.
 * *out is initialised by the call.  0 or -errno.
 */
int rcache_chunk_fd(int fd, struct recipe *out, struct wk_hash *hash,
		    uint64_t *size);

#endif
