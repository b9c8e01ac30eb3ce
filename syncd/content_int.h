/*
 * content_int.h - what syncd_content.c (shipping), syncd_fetch.c
 * (fetching) and syncd_local.c (chunks found locally) share.  Not for the
 * rest of wkfs-syncd: syncd.h is its interface.
 */
#ifndef WKFS_CONTENT_INT_H
#define WKFS_CONTENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recipe.h"
#include "syncd.h"

/* Where fetched chunks wait until their file is assembled (relative to
 * DIR). */
#define CHUNK_CACHE ".wkfs/chunks"

/* Recipe chunks: wire.h describes them (the relay reads them too). */
#define RCHUNK_DELTA	 WIRE_RCHUNK_DELTA
#define RCHUNK_HEAD_LEN	 WIRE_RCHUNK_HEAD_LEN
#define RCHUNK_CHAIN_MAX WIRE_RCHUNK_CHAIN_MAX

/* syncd_content.c */

/* Next reply on the data connection (OPS there are skipped). */
int content_recv(struct syncd *s, struct wire_msg *m);
/*
 * HAVE for k names (name(arg, i) for i < k, at most WIRE_NAMES_MAX), then
 * lack(arg, i) for each the relay's MISSING lists, in order.  CHUNK_ACKs
 * of earlier uploads arriving meanwhile are taken off *pending.  0 or
 * the first error.
 */
typedef const struct wk_hash *(*content_name_fn)(void *arg, size_t i);
typedef int (*content_lack_fn)(void *arg, size_t i);
int content_have(struct syncd *s, size_t k, content_name_fn name,
		 content_lack_fn lack, void *arg, uint32_t *pending);

/* The path of node id below DIR, and the hash the nodes table has for
 * it (*has_hash false for anything but a file with a hash).  0 or
 * -errno (-ENOENT: no such node). */
/*
 * Opens the file of local put op read-only where the nodes table says it
 * is (path gets it): the fd, or -errno after saying on the log why the
 * content is not shipped.  When the file is not found there, the mount is
 * asked to commit what it recorded and the table is read again: a file
 * just renamed into place is found at its new name.
 */
int content_open_put(struct syncd *s, const struct wk_op *op, char *path,
		     size_t len);
int content_node_path(struct syncd *s, struct wk_id id, char *buf, size_t len,
		      bool *has_hash, struct wk_hash *hash);

/* syncd_local.c: chunks of a put being fetched, found in local contents
 * through the recipe cache.
 *
 *	struct local lc;
 *	local_init(&lc, s, op);
 *	if (local_has(&lc, &entry)) ... plan to read it locally
 *	rc = local_read(&lc, &entry, buf);	// 0: buf holds it, verified
 *	local_release(&lc);
 */
struct local_src;

struct local {
	struct syncd *s;
	const struct wk_op *op;
	struct local_src *v; /* contents looked for, with their fds */
	size_t n, alloc;
	bool node_seen; /* the op's own file was looked at */
};

void local_init(struct local *lc, struct syncd *s, const struct wk_op *op);
void local_release(struct local *lc);

/* True when a local content that can be opened is said (by the recipe
 * cache) to hold chunk e.  Reads no chunk. */
bool local_has(struct local *lc, const struct recipe_entry *e);

/* Reads chunk e from a local content into buf (CHUNK_MAX bytes) and
 * checks that it hashes to its name: 0, or -ENOENT when no local copy
 * checks out (a file changed under us: fetch it). */
int local_read(struct local *lc, const struct recipe_entry *e, uint8_t *buf);

#endif
