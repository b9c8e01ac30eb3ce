/*
 * init.c - `wkfs init DIR [--remote URL] [--token-file F | --token -]
 * [--ca FILE] [--insecure] [--device NAME] [--hooks]`: create the sidecar
 * (config.ini, wkfs.db, tmp/, objects/) and record what DIR holds as the
 * first ops.
 *
 * A relay's token is read from a file or from standard input so that it
 * never shows in ps; `--token T` still works.  ws:// to another machine is
 * refused unless --insecure (remote_url_check()).
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

/*
 * The token from --token: T itself, or "-" for the first line of standard
 * input; or from --token-file F: F's first line.  Surrounding white space
 * is dropped.  A malloc'd string, or NULL after saying why.
 */
static char *read_token(const char *arg, const char *file)
{
	char buf[512];
	FILE *f;
	size_t n;
	char *s;

	if (arg && strcmp(arg, "-") != 0)
		return strdup(arg);
	f = file ? fopen(file, "re") : stdin;
	if (!f) {
		wk_err("--token-file %s: %s", file, strerror(errno));
		return NULL;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	if (file)
		fclose(f);
	s = buf + strspn(buf, " \t\r\n");
	n = strlen(s);
	while (n && strchr(" \t\r\n", s[n - 1]))
		s[--n] = '\0';
	if (!n) {
		wk_err("%s: no token there", file ? file : "standard input");
		return NULL;
	}
	return strdup(s);
}

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
		{"token-file", required_argument, NULL, 'T'},
		{"ca", required_argument, NULL, 'c'},
		{"insecure", no_argument, NULL, 'i'},
		{"hooks", no_argument, NULL, 'H'},
		{0},
	};
	struct wk_config cfg;
	struct recorder *rec = NULL;
	struct scan_stats stats;
	char dir[PATH_MAX], ca[PATH_MAX], err[1024];
	const char *device = NULL, *remote = NULL, *token_arg = NULL;
	const char *token_file = NULL, *ca_arg = NULL;
	const char *usage = "usage: wkfs init DIR [--remote URL [--token-file "
			    "F | --token -]"
			    " [--ca FILE] [--insecure]]\n"
			    "                     [--device NAME] [--hooks]\n";
	char *token = NULL;
	bool hooks = false, insecure = false;
	int c, fd, ret = 1, rc;
	FILE *f;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 'd') {
			device = optarg;
		} else if (c == 'r') {
			remote = optarg;
		} else if (c == 't') {
			token_arg = optarg;
		} else if (c == 'T') {
			token_file = optarg;
		} else if (c == 'c') {
			ca_arg = optarg;
		} else if (c == 'i') {
			insecure = true;
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
	if ((token_arg || token_file) && !remote) {
		wk_err("--token goes with --remote");
		return 2;
	}
	if (token_arg && token_file) {
		wk_err("give the token once: --token-file F, or --token - to "
		       "read it from standard input");
		return 2;
	}
	if (ca_arg && (!remote || strncmp(remote, "wss://", 6) != 0)) {
		wk_err("--ca goes with a wss:// --remote");
		return 2;
	}
	if (insecure && (!remote || strncmp(remote, "ws://", 5) != 0)) {
		wk_err("--insecure goes with a ws:// --remote");
		return 2;
	}
	if (remote && remote_url_check(remote, insecure, err, sizeof(err))) {
		wk_err("%s", err);
		return 2;
	}
	if (ca_arg && (!realpath(ca_arg, ca) || access(ca, R_OK) != 0)) {
		wk_err("--ca %s: %s: give a readable CA certificate file (PEM)",
		       ca_arg, strerror(errno));
		return 2;
	}
	if (remote && strncmp(remote, "git:", 4) != 0) {
		token = token_arg || token_file
				? read_token(token_arg, token_file)
				: NULL;
		if (!token && (token_arg || token_file))
			return 2;
		if (!token || strlen(token) != 64 ||
		    strspn(token, "0123456789abcdefABCDEF") != 64) {
			wk_err("a relay needs its token, the 64 hex digits "
			       "'wkfs-relay folder add' printed: --token-file "
			       "FILE, or --token - to read it from standard "
			       "input");
			free(token);
			return 2;
		}
	} else if (token_arg || token_file) {
		token = read_token(token_arg, token_file);
		if (!token)
			return 2;
	}
	if (hooks && !remote) {
		wk_err("--hooks goes with --remote git:.");
		return 2;
	}
	if (!realpath(argv[optind], dir)) {
		wk_err("%s: %s: give an existing directory", argv[optind],
		       strerror(errno));
		free(token);
		return 1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		wk_err("%s: %s: give an existing directory", dir,
		       strerror(errno));
		free(token);
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
		cfg.remote_insecure = insecure;
		cfg.remote_ca = ca_arg ? strdup(ca) : NULL;
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
	free(token);
	return ret;
}
