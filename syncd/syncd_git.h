/*
 * syncd_git.h - wkfs-syncd's git remotes (docs/architecture.md, "Git
 * remotes"): the git runner (syncd_gitcmd.c), the branch's segment format
 * (syncd_gitseg.c); the mirror (syncd_gitmirror.c), push and loop
 * (syncd_git.c) and pull (syncd_gitpull.c) share syncd_gitint.h.
 *
 * A folder whose [remote] url is git:PATH, git:URL or git:. keeps a private
 * bare mirror in the user's state directory, named by the folder's actor id
 * (syncd_git.c says why not in DIR/.wkfs).  All git work is the git
 * command's plumbing, run by git_cmd().
 */
#ifndef WKFS_SYNCD_GIT_H
#define WKFS_SYNCD_GIT_H

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

/* ---- segments (syncd_gitseg.c) ----
 *
 * A segment is one push's ops of one actor, ops/<actor>/<first hlc>.seg
 * with both numbers as 16 lower-case hex digits:
 *
 *   "wkfsseg" u8 version (1), u64 actor, then records to the end:
 *   u64 hlc, u32 len, len bytes of op payload (wire_op_encode, or
 *   wire_put_encode for a put), all big-endian.
 */
#define GITSEG_MAGIC   "wkfsseg"
#define GITSEG_VERSION 1
#define GITSEG_HEADER  16
#define GITSEG_MAX     (32u << 20)

void gitseg_begin(struct wire_buf *b, uint64_t actor);
/* -EMSGSIZE (b unchanged) when it would pass the buffer's cap. */
int gitseg_add(struct wire_buf *b, uint64_t hlc, const uint8_t *p,
	       uint32_t len);

struct gitseg_iter {
	const uint8_t *p, *end;
	uint64_t actor;
};

/* Checks the header: 0 or -EBADMSG. */
int gitseg_iter_init(struct gitseg_iter *it, const uint8_t *p, size_t len);
/* 1 with the next record, 0 at the end, -EBADMSG for a truncated one. */
int gitseg_next(struct gitseg_iter *it, uint64_t *hlc, const uint8_t **p,
		uint32_t *len);

#endif
