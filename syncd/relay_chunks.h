/*
 * relay_chunks.h - wkfs-relay's chunk store, DATA/chunks/FOLDER/ab/cdef....
 *
 * A chunk is a file named by the hex of its XXH3-128 (the first two digits
 * are a directory, so no directory holds more than 1/256 of a folder's
 * chunks).  Chunks are kept per folder so that one folder's token can never
 * read, or learn of, another folder's content.  Writes are atomic and
 * durable: temp file, fsync, rename, fsync of the directory (or, staged,
 * the same for many chunks with two syncfs); a crash leaves at worst a
 * stray temp file (named .tmp-*), never a torn chunk.
 *
 * The folder name must already be valid (wire_folder_valid()), which keeps
 * paths inside DATA/chunks.  Functions return 0 or -errno.
 */
#ifndef WKFS_RELAY_CHUNKS_H
#define WKFS_RELAY_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* The chunk's file (which may not exist) into file (relay_git.c). */
int relay_chunk_path(const char *data_dir, const char *folder,
		     const uint8_t name[WIRE_NAME_LEN], char *file, size_t len);

/* True when the folder's store holds the chunk; *size gets its size. */
bool relay_chunk_has(const char *data_dir, const char *folder,
		     const uint8_t name[WIRE_NAME_LEN], uint32_t *size);

/*
 * Verifies that data hashes to name (-EILSEQ if not), then stores it.  A
 * chunk already there is not rewritten.
 */
int relay_chunk_put(const char *data_dir, const char *folder,
		    const uint8_t name[WIRE_NAME_LEN], const uint8_t *data,
		    size_t len);

/*
 * Many chunks at the cost of two syncfs(): relay_chunk_stage() checks a
 * chunk and writes it to a temporary in its directory, unsynced;
 * relay_chunk_commit() makes every staged temporary durable with one
 * syncfs, renames each into place, syncs again (the renames), and reports
 * each chunk to done() with its owner.  Until then a staged chunk is not
 * in the store (relay_chunk_has() says no), so nothing can rely on it; a
 * crash leaves only temporaries, never a torn chunk.  The relay stages the
 * CHUNK_PUTs of one service pass and commits them before it acknowledges
 * them, or before it stores a PUSH.
 */
struct chunk_stage;

struct chunk_stage *relay_chunk_stage_new(const char *data_dir);
void relay_chunk_stage_free(struct chunk_stage *st);
/* 0 (staged, or already stored: *stored set), -EILSEQ, -errno. */
int relay_chunk_stage(struct chunk_stage *st, const char *folder,
		      const uint8_t name[WIRE_NAME_LEN], const uint8_t *data,
		      size_t len, void *owner, bool *stored);
bool relay_chunk_staged_any(const struct chunk_stage *st);
/* The owner went away: its chunks are still stored, not reported. */
void relay_chunk_disown(struct chunk_stage *st, void *owner);
typedef void (*chunk_done_fn)(void *owner, const uint8_t name[WIRE_NAME_LEN],
			      int rc, void *arg);
/* Stores everything staged: 0, or -errno when the store failed (each
 * chunk was reported with its own result). */
int relay_chunk_commit(struct chunk_stage *st, chunk_done_fn done, void *arg);

/* The bytes the folder's chunk files take (one walk of its store). */
int relay_chunks_bytes(const char *data_dir, const char *folder,
		       uint64_t *bytes);

/* Appends the chunk's bytes to out (-ENOENT if absent, -EIO if a stored
 * file is larger than WIRE_CHUNK_MAX). */
int relay_chunk_get(const char *data_dir, const char *folder,
		    const uint8_t name[WIRE_NAME_LEN], struct wire_buf *out);

/*
 * Whether the folder's store holds every chunk a put names (docs/protocol.md,
 * "Content of a put"), so that a PUSH naming content the relay lacks can be
 * refused before it enters the folder's history: with ref->how
 *   WIRE_CONTENT_WHOLE   the chunk named by op->hash (none for an empty file);
 *   WIRE_CONTENT_RECIPE  the recipe chunk, read from the store (into
 *                        scratch, capped at WIRE_CHUNK_MAX), and what it
 *                        names (wire_rchunk_names(): a plain recipe's
 *                        entries; a delta's base recipe chunk and ADDs);
 *   WIRE_CONTENT_NONE    nothing.
 * Only existence is checked, one stat() a chunk: a stored chunk was hashed
 * when it came.  0 when everything is there; -ENOENT with *missing the
 * first chunk absent; -EBADMSG when the recipe chunk *missing is not a
 * recipe chunk; -errno when the store cannot be read.
 */
int relay_chunks_named(const char *data_dir, const char *folder,
		       const struct wk_op *op,
		       const struct wire_content_ref *ref,
		       struct wire_buf *scratch, struct wk_hash *missing);

#endif
