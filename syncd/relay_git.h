/*
 * relay_git.h - wkfs-relay's git backing (docs/architecture.md,
 * "wkfs-relay", "Git backing"): the relay's ops and chunks committed to a
 * git repository in the layout of a git remote's branch (syncd_git.h), one
 * branch per folder, and a relay rebuilt from those branches.
 *
 * Calling sequence: relay_git_start() once the relay's database is open
 * (it creates the repository if missing and starts the committing thread),
 * relay_git_stop() when the service loop has ended (one last commit, one
 * last push, then the thread is joined).  relay_git_rebuild()
 * (relay_gitrebuild.c) runs alone, without a server.  All git work is done
 * by git_cmd() (syncd_gitcmd.c).
 */
#ifndef WKFS_RELAY_GIT_H
#define WKFS_RELAY_GIT_H

#include <stdbool.h>
#include <stddef.h>

#define RELAY_GIT_BRANCH      "wk/relay"
#define RELAY_GIT_COMMIT_SECS 60
#define RELAY_GIT_PUSH_SECS   300

struct relay_git_opts {
	const char *dir;    /* --git: a bare repository, created if missing */
	const char *branch; /* --git-branch: folder F's branch is BRANCH/F */
	int commit_secs;    /* --git-commit-interval */
	const char
		*remote; /* --git-remote: what `git push` is given, or NULL */
	int push_secs;	 /* --git-push-interval */
	bool verbose;	 /* log each commit and push */
};

struct relay_git;

/*
 * Opens (creating with `git init --bare` if it does not exist) o->dir and
 * starts the thread that commits every o->commit_secs seconds.  0, or
 * -errno after printing why (a path that is not a repository, a bad
 * branch name).  o and data_dir must outlive relay_git_stop().
 */
int relay_git_start(const struct relay_git_opts *o, const char *data_dir,
		    struct relay_git **out);

/* Commits what is left, pushes if a remote is set, joins, frees.  NULL is
 * fine. */
void relay_git_stop(struct relay_git *g);

/*
 * Builds DATA_DIR/relay.db and DATA_DIR/chunks from the branches
 * BRANCH/<folder> of git_dir: every folder, created revoked (tokens are
 * not in git), its ops renumbered in (hlc, actor) order, its chunks
 * checked against their names.  data_dir must be new and empty (the
 * caller renames it into place).  0, or -errno after printing why.
 */
int relay_git_rebuild(const char *git_dir, const char *branch,
		      const char *data_dir);

/* 0 when BRANCH/<folder> is a git branch name (for folders git accepts:
 * relay_git.c skips, with a warning, names with ".." or ending in "." or
 * ".lock"), else -EINVAL. */
int relay_git_branch_check(const char *branch);

/* Shared with relay_gitrebuild.c: the git_repo of directory dir (made
 * absolute), and 0 when it is a repository (else err says why). */
struct git_repo;
int relay_git_repo_setup(struct git_repo *g, const char *dir);
int relay_git_repo_check(struct git_repo *g, char *err, size_t errlen);

#endif
