/*
 * syncd_gitmirror.c - where a git remote's work happens: the folder's
 * private bare mirror in the user's state directory, and what git is told
 * the remote is (git:PATH, git:URL, and git:. found from DIR).
 *
 * Not here: fetching, pushing and the loop (syncd_git.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "syncd.h"
#include "syncd_git.h"
#include "syncd_gitint.h"

/*
 * git:. : the repository that contains DIR, asked of git itself at the
 * first exchange of every start (`rev-parse --git-common-dir` from DIR:
 * the common directory, so a linked worktree's branches are the main
 * repository's), so a folder that moves with its repository keeps
 * working and the config holds no derived path.  Mounted in place, DIR
 * is the mount and .git is reached through it like every other git
 * command the user runs there; hence not at open: the mount starts us
 * before it serves requests, and git would wait on it.
 */
int gitb_dot_repo(struct syncd *s, char *buf, size_t len)
{
	const char *args[] = {"-C",
			      s->real,
			      "rev-parse",
			      "--path-format=absolute",
			      "--git-common-dir",
			      NULL};
	struct wire_buf out;
	struct git_call c = {.what = "git:.",
			     .args = args,
			     .out = &out,
			     .err = s->err,
			     .errlen = sizeof(s->err),
			     .discover = true};
	int rc;

	wire_buf_init(&out, 0, 8192);
	rc = git_cmd(&s->git->repo, &c);
	if (!rc && (wire_buf_len(&out) < 2 || wire_buf_len(&out) >= len))
		rc = -ENAMETOOLONG;
	if (!rc) {
		memcpy(buf, wire_buf_data(&out), wire_buf_len(&out));
		buf[wire_buf_len(&out)] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	if (rc == -EIO)
		snprintf(s->err, sizeof(s->err),
			 "git:. : %.300s is not inside a git repository",
			 s->real);
	wire_buf_release(&out);
	return rc;
}

/* What git is told the remote is: url after "git:", with ~/ expanded and
 * a relative path taken from DIR; git:. the repository around DIR. */
static int remote_of(struct syncd *s, char *buf, size_t len)
{
	const char *u = s->cfg.remote_url + 4, *home = getenv("HOME");
	const char *colon = strchr(u, ':'), *slash = strchr(u, '/');
	int n;

	if (!*u || !strcmp(u, ".")) {
		s->git->dot = true; /* found by the first exchange */
		return 0;
	}
	if (!strncmp(u, "~/", 2) && home)
		n = snprintf(buf, len, "%s/%s", home, u + 2);
	else if (strstr(u, "://") || u[0] == '/' ||
		 (colon && (!slash || colon < slash)))
		n = snprintf(buf, len, "%s", u);
	else
		n = snprintf(buf, len, "%s/%s", s->real, u);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * Where the mirror lives: WKFS_STATE_DIR, or /var/lib/wkfs for root,
 * $XDG_STATE_HOME/wkfs or ~/.local/state/wkfs for a user; then
 * git/<actor>.git.
 *
 * Not DIR/.wkfs/git: with DIR mounted in place that is reachable only as
 * /proc/PID/fd/N/.wkfs/git, and git resolves its directory to a real path
 * in places (rev-list --all lists worktrees, which fetch's connectivity
 * check and gc run), which leads through the mount, where .wkfs is hidden.
 */
static int state_dir(char *buf, size_t len)
{
	const char *env = getenv("WKFS_STATE_DIR"), *home = getenv("HOME");
	const char *xdg = getenv("XDG_STATE_HOME");
	int n;

	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (getuid() == 0)
		n = snprintf(buf, len, "/var/lib/wkfs");
	else if (xdg && *xdg == '/')
		n = snprintf(buf, len, "%s/wkfs", xdg);
	else if (home && *home == '/')
		n = snprintf(buf, len, "%s/.local/state/wkfs", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len - 64 ? -ENAMETOOLONG : 0;
}

/* mkdir -p of an absolute path. */
static int make_path(char *p)
{
	for (char *q = p + 1;; q++) {
		if (*q != '/' && *q)
			continue;
		char was = *q;

		*q = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			return -errno;
		*q = was;
		if (!was)
			return 0;
	}
}

/*
 * Creates the bare mirror by hand (git init would do, but this is four
 * files): HEAD, objects/ and refs/ are what git needs to take it for a
 * repository; the config says it is bare and keeps gc in the foreground
 * (a detached gc would outlive a daemon that is being stopped).
 */
static int make_mirror(struct syncd *s)
{
	static const char *const dirs[] = {"objects", "refs", "refs/heads",
					   "refs/tags", "wkfs-stage"};
	static const char head[] = "ref: refs/heads/main\n";
	static const char cfg[] = "[core]\n\trepositoryformatversion = 0\n"
				  "\tbare = true\n[gc]\n"
				  "\tautoDetach = false\n";
	static const struct {
		const char *path, *text;
	} files[] = {{"config", cfg}, {"HEAD", head}};
	struct git_repo *g = &s->git->repo;
	char path[1024], mk[sizeof(g->dir)];
	int rc;

	rc = state_dir(path, sizeof(path));
	if (rc)
		return rc;
	snprintf(g->dir, sizeof(g->dir), "%s/git/%016" PRIx64 ".git", path,
		 s->actor);
	memcpy(mk, g->dir, sizeof(mk));
	rc = make_path(mk);
	if (rc)
		return rc;
	s->git->fd = open(g->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->git->fd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (mkdirat(s->git->fd, dirs[i], 0700) && errno != EEXIST)
			return -errno;
	if (faccessat(s->git->fd, "HEAD", F_OK, 0) == 0)
		return 0;
	/* HEAD last: its presence says the mirror is complete. */
	for (size_t i = 0; i < 2; i++) {
		size_t len = strlen(files[i].text);
		int fd = openat(s->git->fd, files[i].path,
				O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (fd < 0)
			return -errno;
		if (write(fd, files[i].text, len) != (ssize_t)len)
			rc = errno ? -errno : -EIO;
		close(fd);
		if (rc)
			return rc;
	}
	return 0;
}

int syncd_git_open(struct syncd *s)
{
	const char *branch = s->cfg.remote_branch && *s->cfg.remote_branch
				     ? s->cfg.remote_branch
				     : "wk/oplog";
	struct git_repo *g;
	int rc;

	s->git = calloc(1, sizeof(*s->git));
	if (!s->git)
		return -ENOMEM;
	s->git->fd = -1;
	g = &s->git->repo;
	snprintf(g->branch_ref, sizeof(g->branch_ref), "refs/heads/%s", branch);
	snprintf(g->fetch_spec, sizeof(g->fetch_spec),
		 "+refs/heads/%s:refs/wkfs/remote", branch);
	snprintf(s->git->keep_ref, sizeof(s->git->keep_ref),
		 "refs/wkfs/keep/%s", branch);
	snprintf(s->git->keep_spec, sizeof(s->git->keep_spec),
		 "+refs/wkfs/keep/%s:refs/wkfs/remote", branch);
	rc = remote_of(s, g->remote, sizeof(g->remote));
	if (rc)
		return rc;
	rc = make_mirror(s);
	if (rc)
		snprintf(s->err, sizeof(s->err), "cannot create %.300s: %s",
			 g->dir[0] ? g->dir : "the git mirror", strerror(-rc));
	snprintf(g->env_dir, sizeof(g->env_dir), "GIT_DIR=%s", g->dir);
	snprintf(g->env_index, sizeof(g->env_index),
		 "GIT_INDEX_FILE=%s/wkfs-index", g->dir);
	return rc;
}

void syncd_git_close(struct syncd *s)
{
	if (s->git && s->git->fd >= 0)
		close(s->git->fd);
	free(s->git);
	s->git = NULL;
}
