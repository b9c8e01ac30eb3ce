/*
 * gitremote.h - the wkfs command's own git work for [remote] url = git:...:
 * running git, finding the repository around a folder (git:.), checking a
 * remote and creating its branch at `wkfs init`, and the hooks of `wkfs
 * hooks` (hooks.c).  wkfs-syncd's git work is syncd/syncd_git*.c; this is
 * only what the command does once, in the foreground.
 */
#ifndef WKFS_GITREMOTE_H
#define WKFS_GITREMOTE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Runs git with args (after "git"; no shell) through git_cmd() (lib/
 * gitcmd.h: no GIT_* of ours, LC_ALL=C, GIT_TERMINAL_PROMPT=0, env last;
 * git finds the repository itself).  stdin is empty.  stdout,
 * NUL-terminated and without its last newline, goes to out (may be
 * NULL).  The child is killed after timeout_s.  0 when git exited 0;
 * -EIO (err: "git: " and git's own reason), -EMSGSIZE (stdout does not
 * fit outlen), -ETIMEDOUT or -errno.
 */
int gitr_run(const char *const *args, const char *const *env, char *out,
	     size_t outlen, char *err, size_t errlen, int timeout_s);

/* The common git directory of the repository containing dir (absolute):
 * 0, or -ENOENT with err saying dir is in none. */
int gitr_dot_repo(const char *dir, char *gitdir, size_t len, char *err,
		  size_t errlen);

/* What git is given as the remote for url ("git:..."), as wkfs-syncd
 * does: git:. the repository around dir, ~/ expanded, a relative path
 * taken from dir. */
int gitr_remote_of(const char *dir, const char *url, char *buf, size_t len,
		   char *err, size_t errlen);

/*
 * Makes sure remote has branch: 0 when it had it, 1 when it was created
 * (one empty root commit, and for git:. the copy refs/wkfs/keep/BRANCH),
 * -EIO when the remote cannot be reached or is not a repository (err:
 * why, in one line), or -errno.
 */
int gitr_ensure_branch(const char *remote, const char *branch, bool dot,
		       char *err, size_t errlen);

/* True when remote is a local path rather than a URL git talks to. */
bool gitr_is_local(const char *remote);

/*
 * The post-merge and pre-push hooks that start `wkfs sync DIR` in the
 * background (hooks.c).  Installing chains with a hook the user has: it
 * is renamed to HOOK.wkfs-chained, which ours runs (exec, with its
 * arguments and stdin) after starting the sync; removing renames it back.
 * Several folders in one repository share the hook, one line each.
 * 0 or -errno with err set.
 */
int hooks_install(const char *dir, char *err, size_t errlen);
int hooks_remove(const char *dir, char *err, size_t errlen);

#endif
