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

#include "gitcmd.h"
#include "wire.h"

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
