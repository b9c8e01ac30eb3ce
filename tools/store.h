/*
 * store.h - how much disk a folder's sidecar takes, by part, for
 * `wkfs status`.
 */
#ifndef WKFS_STORE_H
#define WKFS_STORE_H

#include <stdint.h>

struct store_usage {
	uint64_t objects, object_bytes; /* .wkfs/objects: whole contents */
	uint64_t recipe_bytes;		/* .wkfs/recipes: the recipe cache */
	uint64_t chunk_bytes;		/* .wkfs/chunks: fetched chunks */
	uint64_t db_bytes;		/* wkfs.db with its WAL: the oplog */
};

/* Sums the parts beneath the directory fd of DIR; a part that is missing
 * counts 0.  0, or -errno when .wkfs cannot be read at all. */
int store_usage_at(int dirfd, struct store_usage *u);

/* All of it. */
uint64_t store_total(const struct store_usage *u);

#endif
