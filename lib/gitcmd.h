/*
 * gitcmd.h - running the git command: one call (git_cmd) with a clean
 * environment, stdin from a buffer, stdout into a capped buffer, git's
 * own one-line reason on failure and a deadline; and a long-lived
 * `git cat-file --batch` (git_batch).  Used by wkfs-syncd's git remotes,
 * wkfs-relay's git backing and `wkfs init`/`wkfs hooks`.
 */
#ifndef WKFS_GITCMD_H
#define WKFS_GITCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire.h"

#define GIT_TIMEOUT_MS	   60000  /* local plumbing */
#define GIT_NET_TIMEOUT_MS 120000 /* fetch and push */

/* The mirror and the remote, as the child processes see them. */
struct git_repo {
	char dir[2048];	      /* the mirror, absolute */
	char env_dir[2064];   /* GIT_DIR=... */
	char env_index[2096]; /* GIT_INDEX_FILE=.../wkfs-index */
	char remote[4096];    /* what fetch and push are given */
	char branch_ref[300]; /* refs/heads/BRANCH */
	char fetch_spec[320]; /* +refs/heads/BRANCH:refs/wkfs/remote */
};

/* One git invocation. */
struct git_call {
	const char *what;	 /* for messages: "fetch", "push" */
	const char *const *args; /* after "git", NULL-terminated */
	const char *const *env;	 /* extra NAME=VALUE, or NULL */
	const uint8_t *in;	 /* stdin bytes (inlen may be 0) */
	size_t inlen;
	struct wire_buf *out; /* stdout (capped), or NULL: dropped */
	int timeout_ms;	      /* 0: GIT_TIMEOUT_MS */
	char *err;	      /* "what: git's message" on failure */
	size_t errlen;
	char *stderr_copy; /* all of stderr (may be NULL) */
	size_t stderr_len;
	bool discover; /* no GIT_DIR/GIT_INDEX_FILE: git finds the
			* repository itself (give it -C DIR) */
};

/*
 * Runs git: 0 when it exited 0; -EIO when it failed (c->err holds what
 * and git's own message), -ETIMEDOUT (killed), -EMSGSIZE (stdout over the
 * cap of c->out), -errno.
 */
int git_cmd(const struct git_repo *g, const struct git_call *c);
int git_cmd_out(const struct git_repo *g, const char *what,
		const char *const *args, struct wire_buf *out, char *err,
		size_t errlen);

/* A `git cat-file --batch` kept running. */
struct git_batch {
	pid_t pid;
	int in, out, errfd;
	uint8_t buf[65536];
	size_t pos, len;
};

int git_batch_open(const struct git_repo *g, struct git_batch *b);
void git_batch_close(struct git_batch *b);
/*
 * Reads the object spec names ("<oid>", "<commit>:<path>") into buf:
 * 0 with *len set, -ENOENT when there is none, -EMSGSIZE when it is larger
 * than max, or an error that leaves the batch unusable (close it).
 */
int git_batch_get(struct git_batch *b, const char *spec, void *buf, size_t max,
		  size_t *len);

/* The first line of out as a NUL-terminated object id: 0 or -EPROTO. */
int git_take_oid(const struct wire_buf *out, char *id, size_t len);

/*
 * ---- adding files to a branch (gittree.c) ----
 *
 * One commit's new files are staged as files in a directory of the
 * repository (bytes written there, or an existing file named), named all
 * at once by one `hash-object -w --stdin-paths` into update-index lines,
 * then laid over a tip's tree in a private index and committed on the
 * tip; the caller moves a ref or pushes.  Used by wkfs-syncd's git
 * remotes and wkfs-relay's git backing, which keep the same layout.
 *
 *	struct git_stage st;
 *	git_stage_init(&st, repo, "wkfs-stage");
 *	if (!git_stage_tip_has(&st, tip, "chunks/ab/cdef..."))
 *		git_stage_bytes(&st, "chunks/ab/cdef...", p, len);
 *	git_stage_names(&st, &info, err, errlen);
 *	git_tree_commit(repo, tip, &info, msg, env, commit, ...);
 *	git_stage_release(&st);		// removes the staged files
 */
struct git_stage {
	const struct git_repo *repo;
	char dir[2112];		/* where staged files are written */
	struct wire_buf paths;	/* files for hash-object, one a line */
	struct wire_buf where;	/* their paths in the tree, one a line */
	unsigned n;		/* files named so far */
	unsigned written;	/* of them, files written into dir */
	struct git_batch check; /* cat-file --batch for tip_has */
	bool checking;
};

/* dir is a directory of the repository (made when missing). */
int git_stage_init(struct git_stage *st, const struct git_repo *g,
		   const char *subdir);
void git_stage_release(struct git_stage *st);
/* True when commit tip (may be "") has path. */
bool git_stage_tip_has(struct git_stage *st, const char *tip, const char *path);
/* Stages len bytes, or an existing file, as path where in the tree. */
int git_stage_bytes(struct git_stage *st, const char *where, const void *p,
		    size_t len);
int git_stage_file(struct git_stage *st, const char *file, const char *where);
/* Writes every staged blob; appends their update-index lines to info. */
int git_stage_names(struct git_stage *st, struct wire_buf *info, char *err,
		    size_t errlen);
/*
 * tip's tree (none when tip is "") plus info's entries, as a commit with
 * message msg, tip as its parent, and env (GIT_AUTHOR_* ...; may be
 * NULL): 0 and its id in commit, or -errno with err set.  Uses the
 * repository's index file (GIT_INDEX_FILE of g).
 */
int git_tree_commit(const struct git_repo *g, const char *tip,
		    const struct wire_buf *info, const char *msg,
		    const char *const *env, char *commit, size_t len, char *err,
		    size_t errlen);

#endif
