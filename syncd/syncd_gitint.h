/*
 * syncd_gitint.h - what syncd_git.c (fetch, push, the loop) and
 * syncd_gitpull.c (importing the branch) share: the folder's git state
 * and the helpers that read the branch.  Internal to those two files.
 */
#ifndef WKFS_SYNCD_GITINT_H
#define WKFS_SYNCD_GITINT_H

#include <stdbool.h>
#include <stdint.h>

#include "content.h"
#include "syncd.h"
#include "syncd_git.h"

#define LIST_CAP   (256u << 20) /* an ls-tree listing */
#define PACK_EVERY 16 /* pushes and pulls between repacks of the mirror */

struct syncd_git {
	struct git_repo repo;
	int fd;		      /* the mirror directory */
	char tip[48];	      /* refs/wkfs/remote after the last fetch, or "" */
	int64_t last_push_ms; /* monotonic */
	bool dot;	      /* git:. : the repository around DIR */
	char keep_ref[300];   /* git:. : refs/wkfs/keep/BRANCH, the copy */
	char keep_spec[320];  /* +refs/wkfs/keep/BRANCH:refs/wkfs/remote */
	bool restore;	      /* the branch is gone, the copy is not */
	bool reset;	      /* our newest segment is gone from the branch */
	unsigned since_pack;  /* pushes and pulls since the last repack */
};

/* One line of `ls-tree -r`: "MODE TYPE OID\tPATH". */
struct gitb_entry {
	char oid[48];
	const char *path; /* into the listing */
	size_t plen;
};

/* Runs git on the mirror; stdout into out (NULL: dropped), the reason
 * into s->err. */
int gitb_run(struct syncd *s, const char *what, const char *const *args,
	     struct wire_buf *out);
/* Exit 0 of a git command that answers yes or no by its status. */
bool gitb_yes(struct syncd *s, const char *const *args);
/* The next line of an ls-tree listing between *p and end. */
bool gitb_next_entry(const char **p, const char *end, struct gitb_entry *e);
/* "ops/<16 hex>/<16 hex>.seg": the actor and the name part. */
bool gitb_seg_path(const struct gitb_entry *e, uint64_t *actor, char name[17]);
/* `ls-tree -r` of path on the fetched tip. */
int gitb_list_tree(struct syncd *s, const char *path, struct wire_buf *out);
/* chunks/<2 hex>/<30 hex> of a chunk name. */
void gitb_chunk_path(const struct wk_hash *h, char *buf, size_t len);

/* git:. : the common git directory of the repository around DIR, into
 * buf (syncd_gitmirror.c). */
int gitb_dot_repo(struct syncd *s, char *buf, size_t len);

/* Imports what is new on the fetched tip (syncd_gitpull.c). */
int syncd_git_pull(struct syncd *s);

#endif
