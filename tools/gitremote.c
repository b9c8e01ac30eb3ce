/*
 * gitremote.c - the git work `wkfs init` does for a git remote: find the
 * repository around the folder (git:.), check that the remote answers and
 * create the branch when it has none (gitremote.h).
 *
 * The branch is created from a throwaway bare repository in $TMPDIR (one
 * empty-tree root commit, pushed without force), so git:PATH, git:URL
 * and git:. take one path and the user's repository only ever receives a
 * push, as it does from wkfs-syncd.  Not here: anything done more than
 * once (wkfs-syncd, syncd/syncd_git.c).
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gitcmd.h"
#include "gitremote.h"

int gitr_run(const char *const *args, const char *const *env, char *out,
	     size_t outlen, char *err, size_t errlen, int timeout_s)
{
	/* No mirror: git finds the repository from -C or the url. */
	static const struct git_repo none;
	struct wire_buf b;
	struct git_call c = {.what = "git",
			     .args = args,
			     .env = env,
			     .out = out && outlen ? &b : NULL,
			     .timeout_ms = timeout_s * 1000,
			     .err = err,
			     .errlen = errlen,
			     .discover = true};
	size_t n;
	int rc;

	wire_buf_init(&b, 0, outlen ? outlen - 1 : 0);
	rc = git_cmd(&none, &c);
	if (out && outlen) {
		n = rc ? 0 : wire_buf_len(&b);
		if (n)
			memcpy(out, wire_buf_data(&b), n);
		if (n && out[n - 1] == '\n')
			n--;
		out[n] = '\0';
	}
	wire_buf_release(&b);
	return rc;
}

int gitr_dot_repo(const char *dir, char *gitdir, size_t len, char *err,
		  size_t errlen)
{
	const char *args[] = {"-C",
			      dir,
			      "rev-parse",
			      "--path-format=absolute",
			      "--git-common-dir",
			      NULL};
	char why[512];
	int rc = gitr_run(args, NULL, gitdir, len, why, sizeof(why), 60);

	if (rc == -EIO) {
		snprintf(err, errlen,
			 "git:. : %s is not inside a git repository (%s)", dir,
			 why);
		return -ENOENT;
	}
	if (rc)
		snprintf(err, errlen, "git:. : %s", why);
	return rc;
}

bool gitr_is_local(const char *remote)
{
	const char *colon = strchr(remote, ':'), *slash = strchr(remote, '/');

	if (!strncmp(remote, "file://", 7))
		return true;
	return !strstr(remote, "://") && (!colon || (slash && slash < colon));
}

int gitr_remote_of(const char *dir, const char *url, char *buf, size_t len,
		   char *err, size_t errlen)
{
	const char *u = url + 4, *home = getenv("HOME");
	int n;

	if (!*u || !strcmp(u, "."))
		return gitr_dot_repo(dir, buf, len, err, errlen);
	if (!strncmp(u, "~/", 2) && home)
		n = snprintf(buf, len, "%s/%s", home, u + 2);
	else if (!gitr_is_local(u) || u[0] == '/')
		n = snprintf(buf, len, "%s", u);
	else
		n = snprintf(buf, len, "%s/%s", dir, u);
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "%s: too long", url);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Pushes one empty-tree root commit to remote's branch, made in a
 * throwaway bare repository. */
static int create_branch(const char *remote, const char *branch, bool dot,
			 char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096], gd[4200], tree[128], commit[128], spec[400], keep[400];
	const char *env[] = {"GIT_AUTHOR_NAME=wkfs",
			     "GIT_AUTHOR_EMAIL=wkfs@wkfs",
			     "GIT_COMMITTER_NAME=wkfs",
			     "GIT_COMMITTER_EMAIL=wkfs@wkfs", NULL};
	const char *init[] = {"init", "-q", "--bare", dir, NULL};
	const char *mk[] = {gd, "mktree", NULL};
	const char *ct[] = {gd, "commit-tree", tree, "-m", "wkfs: ops", NULL};
	const char *push[] = {
		gd, "push", "-q", remote, spec, dot ? keep : NULL, NULL};
	int rc;

	snprintf(dir, sizeof(dir), "%s/wkfs-init.XXXXXX",
		 tmp && *tmp == '/' ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a temporary directory: %s",
			 strerror(errno));
		return rc;
	}
	snprintf(gd, sizeof(gd), "--git-dir=%s", dir);
	rc = gitr_run(init, NULL, NULL, 0, err, errlen, 60);
	if (!rc)
		rc = gitr_run(mk, NULL, tree, sizeof(tree), err, errlen, 60);
	if (!rc)
		rc = gitr_run(ct, env, commit, sizeof(commit), err, errlen, 60);
	if (!rc) {
		snprintf(spec, sizeof(spec), "%s:refs/heads/%s", commit,
			 branch);
		snprintf(keep, sizeof(keep), "%s:refs/wkfs/keep/%s", commit,
			 branch);
		rc = gitr_run(push, NULL, NULL, 0, err, errlen, 120);
	}
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

int gitr_ensure_branch(const char *remote, const char *branch, bool dot,
		       char *err, size_t errlen)
{
	char ref[400], out[256], why[512];
	const char *ls[] = {"ls-remote", "--heads", remote, ref, NULL};
	int rc;

	snprintf(ref, sizeof(ref), "refs/heads/%s", branch);
	rc = gitr_run(ls, NULL, out, sizeof(out), why, sizeof(why), 120);
	if (rc) {
		snprintf(err, errlen, "git:%s: %s", remote, why);
		return rc;
	}
	if (out[0])
		return 0;
	rc = create_branch(remote, branch, dot, why, sizeof(why));
	if (rc) {
		/* Made meanwhile by another replica's init: fine. */
		if (!gitr_run(ls, NULL, out, sizeof(out), err, errlen, 120) &&
		    out[0])
			return 0;
		snprintf(err, errlen, "git:%s: cannot create branch %s: %s",
			 remote, branch, why);
		return rc;
	}
	return 1;
}
