/*
 * tree_view.h - the view's entries, shared by tree_view.c (which computes
 * them) and tree_change.c (which diffs, commits and reads them).  Internal
 * to the merge engine, like tree_int.h.
 *
 * Between rounds a vent's committed state (parent, name, a) is the view.
 * During tview_update() the claimed vents carry their next state in
 * nparent, nname and na; tview_commit() reports the difference and makes
 * it the committed state, so that outside a round nparent == parent and
 * nname == name everywhere.
 */
#ifndef WKFS_TREE_VIEW_H
#define WKFS_TREE_VIEW_H

#include "tree_int.h"

struct vattr {
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t size;
	struct wk_hash hash;
	struct wk_id version;
};

#define VS_OLD	0 /* shown before this round */
#define VS_NEW	1 /* first shown this round */
#define VS_GONE 2 /* shown before, not any more */

struct vent {
	struct vent *parent, *nparent;
	struct tstr *name, *nname;
	struct tnode *node; /* key: file/symlink node, dir lowest member */
	struct wk_id ver;   /* key: WK_ID_NONE or a conflict version */
	uint8_t kind;
	uint8_t state; /* VS_* */
	bool conflict; /* a conflict copy of node */
	bool full;     /* dir: recompute its entries on the next walk */
	struct vattr a, na;
	struct vent **kids; /* committed children, unordered */
	uint32_t nkids, akids;
	uint32_t ndirs;	    /* kids[0, ndirs) are the directories */
	uint32_t idx;	    /* index in parent->kids */
	struct tnode **mem; /* dir: members, by id */
	uint32_t nmem, amem;
	unsigned round; /* last round that claimed it */
	size_t stage;	/* index of its staging name while it moves */
	uint32_t nsec;	/* dir: entries under a conflict name */
	struct vchg {
		struct tnode *c;  /* a child that changed this round */
		struct vent *old; /* its main entry before the round */
	} * cg;
	uint32_t ncg, acg;
	unsigned cg_round;   /* the round cg is for */
	unsigned left_round; /* round its node left its committed parent */
};

struct vent *tview_by_key(const struct tree *t, struct wk_id node,
			  struct wk_id ver);
uint64_t tview_key_hash(struct wk_id node, struct wk_id ver);
uint64_t tview_name_hash(const struct vent *parent, uint64_t name_hash);
/* The committed child of dir called name, or NULL. */
struct vent *tview_child(const struct tree *t, const struct vent *dir,
			 const char *name, size_t len);
void tview_vent_free(struct vent *v);

/* Emits the round's changes (if out) and commits them. tree_change.c */
void tview_commit(struct tree *t, struct tree_changes *out);

#endif
