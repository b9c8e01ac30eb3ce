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
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gitremote.h"

extern char **environ;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char **child_env(const char *const *extra)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	for (size_t i = 0; extra && extra[i]; i++)
		n++;
	env = calloc(n + 3, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; environ[i]; i++)
		if (strncmp(environ[i], "GIT_", 4) != 0 &&
		    strncmp(environ[i], "LC_ALL=", 7) != 0)
			env[k++] = environ[i];
	env[k++] = (char *)"LC_ALL=C";
	env[k++] = (char *)"GIT_TERMINAL_PROMPT=0";
	for (size_t i = 0; extra && extra[i]; i++)
		env[k++] = (char *)extra[i];
	env[k] = NULL;
	return env;
}

/* git's reason: its first "fatal:"/"error:" line (the later ones say
 * less: "Could not read from remote repository"), else its last line. */
static void reason(const char *text, char *err, size_t errlen)
{
	const char *p = text, *best = NULL, *last = NULL;
	size_t bestlen = 0, lastlen = 0;

	while (*p) {
		size_t len = strcspn(p, "\n");

		if (len) {
			last = p;
			lastlen = len;
		}
		if (!best &&
		    (!strncmp(p, "fatal: ", 7) || !strncmp(p, "error: ", 7))) {
			best = p + 7;
			bestlen = len - 7;
		}
		p += len;
		if (*p)
			p++;
	}
	if (!best) {
		best = last;
		bestlen = lastlen;
	}
	snprintf(err, errlen, "%.*s", (int)bestlen, best ? best : "git failed");
}

int gitr_run(const char *const *args, const char *const *env, char *out,
	     size_t outlen, char *err, size_t errlen, int timeout_s)
{
	const char *argv[32];
	char errs[4096];
	size_t n = 0, olen = 0, elen = 0;
	int po[2], pe[2], status = 0, rc = 0;
	long long deadline = now_ms() + timeout_s * 1000LL;
	char **cenv;
	pid_t pid;

	argv[n++] = "git";
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	cenv = child_env(env);
	if (!cenv)
		return -ENOMEM;
	if (pipe2(po, O_CLOEXEC)) {
		free(cenv);
		return -errno;
	}
	if (pipe2(pe, O_CLOEXEC)) {
		rc = -errno;
		goto out_po;
	}
	pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		dup2(nul, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execvpe("git", (char *const *)argv, cenv);
		fprintf(stderr, "fatal: cannot run git: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		rc = -errno;
		goto out_pe;
	}
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd pf[2] = {{.fd = po[0], .events = POLLIN},
				       {.fd = pe[0], .events = POLLIN}};
		long long left = deadline - now_ms();
		char buf[4096];
		ssize_t r;

		if (left <= 0) {
			rc = -ETIMEDOUT;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(pf, 2, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &pe[0] : &po[0];

			if (!pf[i].revents)
				continue;
			r = read(*fd, buf, sizeof(buf));
			if (r <= 0) {
				close(*fd);
				*fd = -1;
				continue;
			}
			if (i && elen + (size_t)r < sizeof(errs)) {
				memcpy(errs + elen, buf, (size_t)r);
				elen += (size_t)r;
			} else if (!i && out && olen + (size_t)r < outlen) {
				memcpy(out + olen, buf, (size_t)r);
				olen += (size_t)r;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	errs[elen] = '\0';
	if (out && outlen) {
		out[olen] = '\0';
		if (olen && out[olen - 1] == '\n')
			out[olen - 1] = '\0';
	}
	if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "git %s took longer than %d s", args[0],
			 timeout_s);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		reason(errs, err, errlen);
		rc = -EIO;
	}
out_pe:
	for (int i = 0; i < 2; i++)
		if (pe[i] >= 0)
			close(pe[i]);
out_po:
	for (int i = 0; i < 2; i++)
		if (po[i] >= 0)
			close(po[i]);
	free(cenv);
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
