/*
 * tree_testlib.h - helpers for the merge engine's tests: op builders, and
 * a fake backing directory that executes tree_change lists strictly.
 *
 * Test code only; linked into every unit test binary but used by the tree
 * tests alone.  The fake directory fails loudly (returns -errno with a
 * message) on any step the real filesystem would refuse: a missing source
 * or parent, a taken target, a non-empty directory to remove.
 */
#ifndef WKFS_TREE_TESTLIB_H
#define WKFS_TREE_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "tree.h"

/* An id at ms milliseconds (+ logical) from actor. */
struct wk_id tl_id(uint64_t ms, uint64_t logical, uint64_t actor);
/* A hash whose 16 bytes are all b (b = 0: the empty file). */
struct wk_hash tl_hash(uint8_t b);

void tl_mkdir(struct wk_op *op, struct wk_id id, struct wk_id parent,
	      const char *name);
void tl_create(struct wk_op *op, struct wk_id id, struct wk_id parent,
	       const char *name);
void tl_symlink(struct wk_op *op, struct wk_id id, struct wk_id parent,
		const char *name, const char *target);
void tl_put(struct wk_op *op, struct wk_id id, struct wk_id node,
	    struct wk_id base, uint8_t content);
void tl_move(struct wk_op *op, struct wk_id id, struct wk_id node,
	     struct wk_id new_parent, const char *new_name);
void tl_remove(struct wk_op *op, struct wk_id id, struct wk_id node,
	       struct wk_id base);
void tl_chmod(struct wk_op *op, struct wk_id id, struct wk_id node,
	      uint32_t mode);

/* A fake backing directory. */
struct fakefs;
struct fakefs *fakefs_new(void);
void fakefs_free(struct fakefs *f);
/* Executes the changes in order; 0, or -errno and a message in why. */
int fakefs_apply(struct fakefs *f, const struct tree_changes *ch, char *why,
		 size_t whylen);
/* Same format as tree_dump(). */
char *fakefs_dump(const struct fakefs *f);

#endif
