/*
 * init.c - `wkfs init DIR [--remote URL] [--token T] [--device NAME]
 * [--hooks]`: create the sidecar (config.ini, wkfs.db, tmp/, objects/) and
 * record what DIR holds as the first ops.
 *
 * A failed init removes what it made, so it leaves no half-made sidecar
 * behind and can simply be run again.
 *
 * A git remote is checked first and its branch created when missing
 * (gitremote.c).  A local one (git:., git:PATH, file://) that is not a
 * repository is an error and nothing is written: that is a typo to fix
 * now.  A URL that cannot be reached is only a warning: the laptop may be
 * offline, and as with any synced folder the work starts locally and
 * reaches the remote later (wkfs-syncd makes the branch at its first
 * push).  git:. with DIR the work tree's root ignores .git, so the mount
 * never records the repository itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "config.h"
#include "db.h"
#include "gitremote.h"
#include "recorder.h"
#include "scan.h"
#include "wlog.h"

/* Checks a git remote and makes its branch; -1 when init must stop. */
static int prepare_git(const char *dir, struct wk_config *cfg, bool hooks)
{
	const char *url = cfg->remote_url;
	bool dot = !strcmp(url, "git:.") || !strcmp(url, "git:");
	char remote[4096], err[1024];
	int rc;

	if (hooks && !dot) {
		wk_err("--hooks goes with --remote git:. (hooks of the "
		       "repository around DIR)");
		return -1;
	}
	if (gitr_remote_of(dir, url, remote, sizeof(remote), err,
			   sizeof(err))) {
		wk_err("%s", err);
		return -1;
	}
	rc = gitr_ensure_branch(remote, cfg->remote_branch, dot, err,
				sizeof(err));
	if (rc < 0 && (dot || gitr_is_local(remote))) {
		wk_err("%s", err);
		return -1;
	}
	if (rc < 0)
		wk_warn("%s; going on: the branch is made at the first sync",
			err);
	else if (rc == 1)
		printf("created branch %s in %s\n", cfg->remote_branch, remote);
	if (dot) {
		char dotgit[PATH_MAX + 8];

		snprintf(dotgit, sizeof(dotgit), "%s/.git", dir);
		if (access(dotgit, F_OK) == 0) {
			cfg->ignore =
				realloc(cfg->ignore,
					(cfg->n_ignore + 1) * sizeof(char *));
			if (!cfg->ignore)
				return -1;
			cfg->ignore[cfg->n_ignore++] = strdup(".git");
			printf("note: .git is not synced: 'ignore = .git' "
			       "added "
			       "to [sync] in .wkfs/config.ini\n");
		}
	}
	return 0;
}

int cmd_init(int argc, char **argv)
{
	static const struct option longs[] = {
		{"device", required_argument, NULL, 'd'},
		{"remote", required_argument, NULL, 'r'},
		{"token", required_argument, NULL, 't'},
		{"hooks", no_argument, NULL, 'H'},
		{0},
	};
	struct wk_config cfg;
	struct recorder *rec = NULL;
	struct scan_stats stats;
	char dir[PATH_MAX], err[512];
	const char *device = NULL, *remote = NULL, *token = NULL;
	const char *usage = "usage: wkfs init DIR [--remote URL] [--token T] "
			    "[--device NAME] [--hooks]\n";
	bool hooks = false;
	int c, fd, ret = 1, rc;
	FILE *f;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 'd') {
			device = optarg;
		} else if (c == 'r') {
			remote = optarg;
		} else if (c == 't') {
			token = optarg;
		} else if (c == 'H') {
			hooks = true;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (remote && strncmp(remote, "ws://", 5) &&
	    strncmp(remote, "wss://", 6) && strncmp(remote, "git:", 4)) {
		wk_err("--remote %s: give ws://HOST:PORT/FOLDER, "
		       "wss://HOST:PORT/FOLDER or git:PATH-or-URL",
		       remote);
		return 2;
	}
	if (remote && strncmp(remote, "git:", 4) != 0 &&
	    (!token || strlen(token) != 64 ||
	     strspn(token, "0123456789abcdefABCDEF") != 64)) {
		wk_err("--token: a relay needs the 64 hex digits 'wkfs-relay "
		       "folder add' printed");
		return 2;
	}
	if (token && !remote) {
		wk_err("--token goes with --remote");
		return 2;
	}
	if (hooks && !remote) {
		wk_err("--hooks goes with --remote git:.");
		return 2;
	}
	if (!realpath(argv[optind], dir)) {
		wk_err("%s: %s: give an existing directory", argv[optind],
		       strerror(errno));
		return 1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		wk_err("%s: %s: give an existing directory", dir,
		       strerror(errno));
		return 1;
	}
	if (faccessat(fd, ".wkfs", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		wk_err("%s: already initialised (.wkfs exists)", dir);
		goto out_close;
	}
	config_init(&cfg);
	if (remote) {
		cfg.remote_url = strdup(remote);
		cfg.remote_token = token ? strdup(token) : NULL;
	}
	if (remote && !strncmp(remote, "git:", 4) &&
	    prepare_git(dir, &cfg, hooks))
		goto out_config;
	if (mkdirat(fd, ".wkfs", 0700) < 0 ||
	    mkdirat(fd, ".wkfs/tmp", 0700) < 0 ||
	    mkdirat(fd, ".wkfs/objects", 0700) < 0) {
		wk_err("%s: cannot create .wkfs: %s", dir, strerror(errno));
		goto out_undo;
	}
	if (device) {
		free(cfg.device_name);
		cfg.device_name = strdup(device);
	}
	{
		int cfd = openat(fd, ".wkfs/config.ini",
				 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		f = cfd >= 0 ? fdopen(cfd, "w") : NULL;
		if (!f || config_write(f, &cfg) != 0 || fclose(f) != 0) {
			wk_err("%s: cannot write .wkfs/config.ini", dir);
			goto out_undo;
		}
	}
	rc = rec_open(fd, &cfg, true, &rec, err, sizeof(err));
	if (rc) {
		wk_err("%s: %s", dir, err);
		goto out_undo;
	}
	rc = scan_tree(rec, fd, true, &stats, err, sizeof(err));
	rec_close(rec);
	if (rc) {
		wk_err("%s: %s", dir, err);
		goto out_undo;
	}
	printf("initialised %s: %llu entries recorded\n", dir,
	       (unsigned long long)stats.created);
	ret = 0;
	if (hooks) {
		if (hooks_install(dir, err, sizeof(err))) {
			wk_err("%s; the folder is set up, the hooks are not "
			       "('wkfs hooks install %s' tries again)",
			       err, dir);
			ret = 1;
		} else {
			printf("git hooks post-merge and pre-push start a "
			       "sync of %s\n",
			       dir);
		}
	}
	goto out_config;

out_undo:
	/* Leave nothing half-made. */
	unlinkat(fd, ".wkfs/config.ini", 0);
	unlinkat(fd, ".wkfs/wkfs.db", 0);
	unlinkat(fd, ".wkfs/wkfs.db-wal", 0);
	unlinkat(fd, ".wkfs/wkfs.db-shm", 0);
	unlinkat(fd, ".wkfs/tmp", AT_REMOVEDIR);
	unlinkat(fd, ".wkfs/objects", AT_REMOVEDIR);
	unlinkat(fd, ".wkfs", AT_REMOVEDIR);
out_config:
	config_release(&cfg);
out_close:
	close(fd);
	return ret;
}
