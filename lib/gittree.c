/*
 * gittree.c - adding one commit's files to a branch with git plumbing
 * (gitcmd.h, "adding files to a branch").
 *
 * Blobs go through files rather than stdin so that one hash-object names
 * them all: a process per blob would dominate a commit of thousands of
 * chunks.  The tree is built in the repository's index (read-tree of the
 * tip, update-index --index-info, write-tree), never in a work tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gitcmd.h"

#define STAGE_LIST_CAP (64u << 20)

int git_take_oid(const struct wire_buf *out, char *id, size_t len)
{
	const char *p = (const char *)wire_buf_data(out);
	size_t n = 0;

	while (n < wire_buf_len(out) && p[n] != '\n' && n + 1 < len)
		n++;
	if (n < 40)
		return -EPROTO;
	memcpy(id, p, n);
	id[n] = '\0';
	return 0;
}

int git_stage_init(struct git_stage *st, const struct git_repo *g,
		   const char *subdir)
{
	memset(st, 0, sizeof(*st));
	st->repo = g;
	wire_buf_init(&st->paths, 0, STAGE_LIST_CAP);
	wire_buf_init(&st->where, 0, STAGE_LIST_CAP);
	if (snprintf(st->dir, sizeof(st->dir), "%s/%s", g->dir, subdir) >=
	    (int)sizeof(st->dir))
		return -ENAMETOOLONG;
	if (mkdir(st->dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

void git_stage_release(struct git_stage *st)
{
	char file[2200];

	for (unsigned i = 0; i < st->written; i++) {
		snprintf(file, sizeof(file), "%s/%u", st->dir, i);
		unlink(file);
	}
	st->written = st->n = 0;
	if (st->checking)
		git_batch_close(&st->check);
	st->checking = false;
	wire_buf_release(&st->paths);
	wire_buf_release(&st->where);
}

bool git_stage_tip_has(struct git_stage *st, const char *tip, const char *path)
{
	char spec[4200];
	uint8_t one[1];
	size_t len;
	int rc;

	if (!tip[0])
		return false;
	if (!st->checking) {
		if (git_batch_open(st->repo, &st->check))
			return false;
		st->checking = true;
	}
	snprintf(spec, sizeof(spec), "%s:%s", tip, path);
	rc = git_batch_get(&st->check, spec, one, 0, &len);
	return rc == 0 || rc == -EMSGSIZE;
}

static int add_line(struct wire_buf *b, const char *s)
{
	int rc = wire_buf_append(b, s, strlen(s));

	return rc ? rc : wire_buf_append(b, "\n", 1);
}

int git_stage_file(struct git_stage *st, const char *file, const char *where)
{
	int rc = add_line(&st->paths, file);

	if (!rc)
		rc = add_line(&st->where, where);
	if (!rc)
		st->n++;
	return rc;
}

int git_stage_bytes(struct git_stage *st, const char *where, const void *p,
		    size_t len)
{
	char file[2200];
	int fd, rc = 0;

	snprintf(file, sizeof(file), "%s/%u", st->dir, st->written);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	st->written++; /* removed by git_stage_release whatever happens */
	if (write(fd, p, len) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc ? rc : git_stage_file(st, file, where);
}

int git_stage_names(struct git_stage *st, struct wire_buf *info, char *err,
		    size_t errlen)
{
	static const char *const args[] = {"hash-object", "-w", "--no-filters",
					   "--stdin-paths", NULL};
	struct git_call c = {.what = "hash-object",
			     .args = args,
			     .in = wire_buf_data(&st->paths),
			     .inlen = wire_buf_len(&st->paths),
			     .err = err,
			     .errlen = errlen};
	const char *o, *w, *oe, *we;
	struct wire_buf out;
	char line[4200];
	int rc;

	if (!st->n)
		return 0;
	wire_buf_init(&out, 0, (size_t)st->n * 72 + 64);
	c.out = &out;
	rc = git_cmd(st->repo, &c);
	o = (const char *)wire_buf_data(&out);
	oe = o + wire_buf_len(&out);
	w = (const char *)wire_buf_data(&st->where);
	we = w + wire_buf_len(&st->where);
	for (unsigned i = 0; !rc && i < st->n; i++) {
		const char *onl = memchr(o, '\n', oe - o);
		const char *wnl = memchr(w, '\n', we - w);

		if (!onl || !wnl || onl - o < 40 || onl - o > 64) {
			snprintf(err, errlen, "hash-object: unexpected output");
			rc = -EPROTO;
			break;
		}
		snprintf(line, sizeof(line), "100644 %.*s\t%.*s\n",
			 (int)(onl - o), o, (int)(wnl - w), w);
		rc = wire_buf_append(info, line, strlen(line));
		o = onl + 1;
		w = wnl + 1;
	}
	wire_buf_release(&out);
	return rc;
}

int git_tree_commit(const struct git_repo *g, const char *tip,
		    const struct wire_buf *info, const char *msg,
		    const char *const *env, char *commit, size_t len, char *err,
		    size_t errlen)
{
	const char *rd[] = {"read-tree", tip[0] ? tip : "--empty", NULL};
	static const char *const upd[] = {"update-index", "--add",
					  "--index-info", NULL};
	static const char *const wt[] = {"write-tree", NULL};
	char tree[72];
	const char *ct[] = {"commit-tree", tree, "-m", msg, NULL, NULL, NULL};
	struct git_call c = {.what = "update-index",
			     .args = upd,
			     .in = wire_buf_data(info),
			     .inlen = wire_buf_len(info),
			     .err = err,
			     .errlen = errlen};
	struct wire_buf out;
	int rc;

	if (tip[0]) {
		ct[4] = "-p";
		ct[5] = tip;
	}
	wire_buf_init(&out, 0, 4096);
	rc = git_cmd_out(g, "read-tree", rd, NULL, err, errlen);
	if (!rc)
		rc = git_cmd(g, &c);
	if (!rc)
		rc = git_cmd_out(g, "write-tree", wt, &out, err, errlen);
	if (!rc)
		rc = git_take_oid(&out, tree, sizeof(tree));
	if (!rc) {
		struct git_call cc = {.what = "commit-tree",
				      .args = ct,
				      .env = env,
				      .out = &out,
				      .err = err,
				      .errlen = errlen};

		wire_buf_reset(&out);
		rc = git_cmd(g, &cc);
	}
	if (!rc)
		rc = git_take_oid(&out, commit, len);
	wire_buf_release(&out);
	return rc;
}
