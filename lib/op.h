/*
 * op.h - the operations wkfs records and replicates, and the ids they use.
 *
 * An op is one change to the synced tree, stamped with the HLC and actor of
 * the replica that made it.  Ops are totally ordered by (hlc, actor).  A node
 * (file, directory, symlink) is named for ever by the id of the op that
 * created it, so a rename moves a node instead of deleting and recreating it.
 *
 * This header is pure data: no I/O, no SQLite, no FUSE.
 */
#ifndef WKFS_OP_H
#define WKFS_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An op id, and so a node id: (hlc, actor).  The root directory is {0, 0}. */
struct wk_id {
	uint64_t hlc;
	uint64_t actor;
};

#define WK_ID_ROOT ((struct wk_id){0, 0})
#define WK_ID_NONE ((struct wk_id){UINT64_MAX, UINT64_MAX})

/* Content hash: XXH3-128 of a file's bytes (or of a symlink's target). */
struct wk_hash {
	uint8_t b[16];
};

enum wk_kind {
	WK_KIND_FILE = 1,
	WK_KIND_DIR = 2,
	WK_KIND_SYMLINK = 3,
};

enum wk_op_kind {
	WK_OP_MKDIR = 1,   /* node, parent, name, mode */
	WK_OP_CREATE = 2,  /* node, parent, name, mode (an empty file) */
	WK_OP_PUT = 3,     /* node, hash, size, mtime, base: new content */
	WK_OP_MOVE = 4,    /* node, parent/name -> new_parent/new_name */
	WK_OP_REMOVE = 5,  /* node (file, symlink or empty directory) */
	WK_OP_SETATTR = 6, /* node, mode and/or mtime (see flags) */
	WK_OP_SYMLINK = 7, /* node, parent, name, target */
};

/* Which attributes a WK_OP_SETATTR carries. */
#define WK_ATTR_MODE 0x1
#define WK_ATTR_MTIME 0x2

/* Longest name and symlink target an op may carry (bytes, without NUL). */
#define WK_NAME_MAX 255
#define WK_TARGET_MAX 4095

/*
 * Longest device name (bytes, without NUL).  A device name is the short
 * name of the replica that made an op ([device] name in config.ini, else
 * the host name), as wk_device_sanitize() leaves it: it becomes part of
 * conflict names on every replica, so it is kept short and plain.
 */
#define WK_DEVICE_MAX 32

struct wk_op {
	struct wk_id id;         /* hlc + actor of this op */
	enum wk_op_kind kind;
	struct wk_id node;       /* the node the op acts on */
	struct wk_id parent;     /* where it is (create, mkdir, symlink, move:
				    the old place) */
	char name[WK_NAME_MAX + 1];
	struct wk_id new_parent; /* move only: where it goes */
	char new_name[WK_NAME_MAX + 1];
	uint32_t mode;           /* permission bits (07777) */
	uint32_t attrs;          /* setattr: WK_ATTR_* */
	int64_t mtime_ns;        /* put, setattr */
	uint64_t size;           /* put */
	struct wk_hash hash;     /* put */
	struct wk_id base;       /* put: version of the content it replaced,
				    WK_ID_NONE for the first put */
	char target[WK_TARGET_MAX + 1]; /* symlink */
	/* put (and only a put): another file node that had the same backing
	 * inode as this node on the maker's replica when it made the put (a
	 * hard link), or WK_ID_NONE.  A hint for the materializer, which then
	 * makes the two names one file where it safely can; it never changes
	 * the merge.  Decoders of ops that carry none set WK_ID_NONE. */
	struct wk_id link;
	/* The device name of the replica that made the op, as it was named
	 * then (wk_device_valid()), or "" when the op carries none (ops of
	 * older wkfs versions).  Conflict copies of the op are named by it. */
	char device[WK_DEVICE_MAX + 1];
};

static inline bool wk_id_eq(struct wk_id a, struct wk_id b)
{
	return a.hlc == b.hlc && a.actor == b.actor;
}

/* Orders ids by (hlc, actor): negative, zero or positive like strcmp. */
static inline int wk_id_cmp(struct wk_id a, struct wk_id b)
{
	if (a.hlc != b.hlc)
		return a.hlc < b.hlc ? -1 : 1;
	if (a.actor != b.actor)
		return a.actor < b.actor ? -1 : 1;
	return 0;
}

/* True when op is a put that names a link (see struct wk_op.link).  The
 * root (a directory) is never one: an op zeroed without care names none. */
static inline bool wk_op_has_link(const struct wk_op *op)
{
	return op->kind == WK_OP_PUT && !wk_id_eq(op->link, WK_ID_NONE) &&
	       !wk_id_eq(op->link, WK_ID_ROOT);
}

/* "put", "move"...; NULL for an unknown kind. */
const char *wk_op_kind_name(enum wk_op_kind kind);

/*
 * The mode an op from another replica may give, the one rule: its
 * permission bits (0777) only, never setuid, setgid or sticky (04000,
 * 02000, 01000), and without write permission for others (0002) unless
 * world_writable ([sync] world-writable = yes in this replica's
 * config.ini).  Local ops keep the modes their user gave.
 */
uint32_t wk_remote_mode(uint32_t mode, bool world_writable);

/* Applies wk_remote_mode() to the mode an op carries (mkdir, create, a
 * setattr of the mode); other ops are left as they are. */
void wk_op_mask_remote(struct wk_op *op, bool world_writable);

/* Formats an id as 16+1+16 hex digits "hlc-actor" into buf (34 bytes). */
#define WK_ID_STRLEN 34
char *wk_id_str(struct wk_id id, char buf[WK_ID_STRLEN]);

/* Formats a hash as 32 hex digits into buf (33 bytes). */
#define WK_HASH_STRLEN 33
char *wk_hash_str(const struct wk_hash *h, char buf[WK_HASH_STRLEN]);

/*
 * True when name may appear in the tree: not empty, not "." or "..", no '/'
 * or NUL, at most WK_NAME_MAX bytes.  (".wkfs" at the root is checked by the
 * caller, which knows where the name goes.)
 */
bool wk_name_valid(const char *name);

/*
 * True when s is a device name as wk_device_sanitize() makes them: 1 to
 * WK_DEVICE_MAX bytes of [A-Za-z0-9._-], neither starting nor ending with
 * '.' or '-'.
 */
bool wk_device_valid(const char *s);

/*
 * Makes a device name of free text (a configured name, a host name): each
 * run of bytes outside [A-Za-z0-9._-] becomes one '-', leading and trailing
 * '.' and '-' are dropped, and the result is cut to WK_DEVICE_MAX bytes
 * (and trimmed again).  Writes "" when nothing is left (the caller falls
 * back to something else); otherwise out passes wk_device_valid().
 * Returns the length written.
 */
size_t wk_device_sanitize(char out[WK_DEVICE_MAX + 1], const char *in);

#endif
