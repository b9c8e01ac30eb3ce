/*
 * tree_int.h - the merge engine's insides, shared by lib/tree*.c only.
 *
 * tree.c owns the node state (structure, versions, liveness) and the undo
 * log; tree_view.c owns the view (struct vent) and the change lists;
 * tree_map.c the hash tables both use; tree_conflict.c names;
 * tree_device.c the device names ops carried.  Nothing here
 * is part of the contract in tree.h.
 */
#ifndef WKFS_TREE_INT_H
#define WKFS_TREE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tree.h"

/* ---- tree_map.c: hash tables ------------------------------------------ */

/* A refcounted immutable string (node names, view names). */
struct tstr {
	uint32_t refs;
	uint32_t len;
	uint64_t hash;
	char s[];
};

struct tstr *tstr_new(const char *s, size_t len);
struct tstr *tstr_get(struct tstr *s);
void tstr_put(struct tstr *s);
bool tstr_eq(const struct tstr *a, const struct tstr *b);

uint64_t tree_hash_bytes(const void *p, size_t n);
uint64_t tree_hash_id(struct wk_id id);

/* Flags kept per op id. */
#define OPF_SEEN    0x1 /* the op was taken */
#define OPF_RETIRED 0x2 /* the version of that id was retired */

/* Op ids seen, and versions retired: open addressing, keys inline. */
struct idset {
	struct idslot {
		struct wk_id id; /* {0,0}: empty slot */
		uint32_t flags;
	} * v;
	size_t mask, n;
};

void idset_init(struct idset *s);
void idset_release(struct idset *s);
uint32_t idset_get(const struct idset *s, struct wk_id id);
/* Ors flags into id's entry (creating it); returns the flags it had. */
uint32_t idset_set(struct idset *s, struct wk_id id, uint32_t flags);
/* Removes every entry whose hlc <= floor. */
void idset_prune(struct idset *s, uint64_t floor);

/* Pointers by caller-computed hash, compared by a callback. */
struct pmap {
	struct pslot {
		uint64_t h;
		void *p; /* NULL: empty */
	} * v;
	size_t mask, n;
};

typedef bool (*pmap_eq_fn)(const void *item, const void *key);

void pmap_init(struct pmap *m);
void pmap_release(struct pmap *m);
void *pmap_find(const struct pmap *m, uint64_t h, pmap_eq_fn eq,
		const void *key);
/* The item must not be in the map already. */
void pmap_insert(struct pmap *m, uint64_t h, void *item);
/* Removes exactly item (compared by pointer); false if absent. */
bool pmap_remove(struct pmap *m, uint64_t h, const void *item);

/* ---- tree.c: nodes ---------------------------------------------------- */

/* One version of a node: the create or a put. */
struct tver {
	struct wk_id id;
	struct wk_hash hash;
	uint64_t size;
	int64_t mtime_ns;
	struct wk_id link; /* puts: the op's link (a hint for WRITEs) */
};

#define TN_DIRTY    0x1 /* its children or their entries changed */
#define TN_SUBDIRTY 0x2 /* something below it did */
#define TN_CHANGED  0x4 /* in tree->chg: its own entry may differ */

struct vent;

struct tnode {
	struct wk_id id;
	uint8_t kind;	      /* enum wk_kind; 0 while only referenced by ops */
	bool created;	      /* its create op is applied (undone with it) */
	bool live;	      /* see tree.h */
	uint8_t dflags;	      /* TN_* */
	uint32_t nlive;	      /* live children */
	struct tnode *parent; /* NULL unless created (root: NULL) */
	struct tnode *first, *next, *prev; /* children, structural */
	struct tstr *name;
	struct wk_id stamp; /* op that gave it parent and name */
	uint32_t mode;
	struct wk_id mode_stamp;
	int64_t mtime_ns;
	struct wk_id mtime_stamp;
	struct tver *heads;
	uint32_t nheads, aheads;
	char *target;	   /* symlinks */
	struct vent *vent; /* where the view shows it (files: main entry) */
};

/* A structural op in the undo log. */
#define SL_CREATE 1
#define SL_MOVE	  2

struct slog {
	struct wk_id id;
	uint8_t kind;
	bool applied;
	struct tnode *node, *parent;
	struct tstr *name;
	/* undo information, valid while applied (moves) */
	struct tnode *old_parent;
	struct tstr *old_name;
	struct wk_id old_stamp;
};

struct tdactor;

struct tree {
	struct tnode *root;
	struct pmap nodes;    /* id -> struct tnode */
	struct idset ops;     /* op id -> OPF_SEEN */
	struct idset retired; /* tree_retired_key() -> OPF_RETIRED */
	struct slog *log;     /* sorted by id */
	size_t nlog, alog;
	uint64_t floor;
	struct tree_stats st;
	/* scratch for one batch */
	struct slog *batch;
	size_t nbatch, abatch;
	struct tnode **chg; /* nodes whose entries may have changed */
	size_t nchg, achg;

	/* view, tree_view.c */
	struct vent *vroot;
	struct pmap vkeys;  /* (node, version) -> vent */
	struct pmap vnames; /* (parent vent, name) -> vent */
	unsigned round;
	struct vent **touched; /* vents claimed or dropped this round */
	size_t ntouched, atouched;
	struct vent **walked; /* dirs recomputed this round */
	size_t nwalked, awalked;
	struct vent **stack;
	size_t nstack, astack;
	struct vent **mdrop; /* old entries of changed children */
	size_t nmdrop, amdrop;
	void *emit_a, *emit_b; /* tree_change.c scratch */
	size_t aemit;
	struct tview_scratch *vs;

	/* device names of ops, tree_device.c */
	struct pmap dactors;   /* actor -> its runs */
	struct pmap dnames;    /* the distinct names (struct tstr) */
	struct tdactor *dlast; /* the actor of the last op noted */
};

struct tnode *tree_node(const struct tree *t, struct wk_id id);
/* True when n's version id is among its heads. */
bool tnode_has_head(const struct tnode *n, struct wk_id id);

/* ---- tree_device.c: device names of ops -------------------------------- */

void tdev_init(struct tree *t);
void tdev_release(struct tree *t);
/* Records the device op carried; called once per op taken. */
void tdev_note(struct tree *t, const struct wk_op *op);
/* Runs held, for the stats. */
size_t tdev_runs(const struct tree *t);

/* ---- tree_view.c: the view -------------------------------------------- */

void tview_init(struct tree *t);
void tview_release(struct tree *t);
/* Brings the view up to date with the nodes; appends changes if out. */
void tview_update(struct tree *t, struct tree_changes *out);
int tview_check(const struct tree *t, char *why, size_t whylen);

#endif
