/*
 * hooks.c - `wkfs hooks install|remove DIR` (and `wkfs init --hooks`): the
 * git hooks that start a sync of DIR after a merge or pull (post-merge)
 * and as a push starts (pre-push; git has no post-push hook).
 *
 * Ours is a small sh script in the repository's hooks directory as git
 * itself finds it (`rev-parse --git-path hooks`, which honours
 * core.hooksPath).  Between the markers "# >>> wkfs" and "# <<< wkfs" it
 * holds one line per folder, each starting `wkfs sync` in the background
 * with every descriptor on /dev/null, so git never waits for it and a
 * daemon that is down never makes `git pull` hang.  A hook the user had
 * is never replaced: it is renamed to HOOK.wkfs-chained and ours execs it
 * (arguments, stdin and exit status passed through) when it is
 * executable, as git would run it.  Removing the last folder renames it
 * back, byte for byte the file it was.
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
#include "gitremote.h"
#include "wlog.h"

#define BEGIN_MARK "# >>> wkfs"
#define END_MARK   "# <<< wkfs"
#define HOOK_MAX   65536

static const char *const hook_names[] = {"post-merge", "pre-push"};

static int hooks_dir(const char *dir, char *buf, size_t len, char *err,
		     size_t errlen)
{
	const char *args[] = {
		"-C",	      dir,     "rev-parse", "--path-format=absolute",
		"--git-path", "hooks", NULL};
	char why[512];
	int rc = gitr_run(args, NULL, buf, len, why, sizeof(why), 60);

	if (rc)
		snprintf(err, errlen, "%s is not inside a git repository: %s",
			 dir, why);
	else if (mkdir(buf, 0755) && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", buf,
			 strerror(errno));
	}
	return rc;
}

/* The line that syncs dir: dir single-quoted for sh. */
static int sync_line(const char *dir, char *buf, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	size_t k = 0;

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	k = (size_t)snprintf(buf, len, "'%s' sync --timeout 300 '", self);
	for (const char *p = dir; *p && k + 8 < len; p++) {
		if (*p == '\'') {
			memcpy(buf + k, "'\\''", 4);
			k += 4;
		} else {
			buf[k++] = *p;
		}
	}
	if (k + 40 >= len)
		return -ENAMETOOLONG;
	k += (size_t)snprintf(buf + k, len - k,
			      "' </dev/null >/dev/null 2>&1 &\n");
	return 0;
}

/* Reads path (at most HOOK_MAX bytes) into a NUL-terminated string. */
static int read_hook(const char *path, char **text)
{
	FILE *f = fopen(path, "re");
	size_t n;

	*text = NULL;
	if (!f)
		return -errno;
	*text = calloc(1, HOOK_MAX + 1);
	if (!*text) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(*text, 1, HOOK_MAX, f);
	fclose(f);
	(*text)[n] = '\0';
	return 0;
}

/* Writes our hook with the folder lines in lines (atomically). */
static int write_hook(const char *path, const char *lines)
{
	char tmp[PATH_MAX + 64];
	FILE *f;
	int rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.wkfs-new", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"#!/bin/sh\n" BEGIN_MARK "\n"
		"# Written by wkfs: each line starts a sync of a folder in "
		"the\n# background. 'wkfs hooks remove DIR' takes a folder "
		"out.\n%s" END_MARK "\n"
		"chained=\"$0.wkfs-chained\"\n"
		"if [ -x \"$chained\" ]; then exec \"$chained\" \"$@\"; fi\n"
		"exit 0\n",
		lines);
	if (fflush(f) || fsync(fileno(f)))
		rc = -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && chmod(tmp, 0755))
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

/* The folder lines of our hook text (between the markers), or NULL when
 * text is not ours. */
static char *our_lines(const char *text)
{
	const char *b = strstr(text, BEGIN_MARK "\n"), *e;
	char *out, *o;

	if (!b || !(e = strstr(b, END_MARK "\n")))
		return NULL;
	out = calloc(1, (size_t)(e - b) + 1);
	if (!out)
		return NULL;
	o = out;
	for (const char *p = strchr(b, '\n') + 1; p < e;) {
		const char *nl = strchr(p, '\n');

		if (*p != '#') {
			memcpy(o, p, (size_t)(nl - p) + 1);
			o += nl - p + 1;
		}
		p = nl + 1;
	}
	return out;
}

/* Drops the line line from lines; true when it was there. */
static bool drop_line(char *lines, const char *line)
{
	char *p = strstr(lines, line);

	if (!p || (p != lines && p[-1] != '\n'))
		return false;
	memmove(p, p + strlen(line), strlen(p + strlen(line)) + 1);
	return true;
}

static int install_one(const char *hdir, const char *name, const char *line,
		       char *err, size_t errlen)
{
	char path[PATH_MAX + 32], chained[PATH_MAX + 64], *text = NULL;
	char *lines = NULL;
	char *all;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", hdir, name);
	snprintf(chained, sizeof(chained), "%s.wkfs-chained", path);
	rc = read_hook(path, &text);
	if (rc && rc != -ENOENT)
		goto out_err;
	lines = rc ? NULL : our_lines(text);
	if (lines && strstr(lines, line)) {
		rc = 0; /* already there */
		goto out;
	}
	if (!lines && rc == 0) {
		/* The user's hook: set aside, never overwritten. */
		if (access(chained, F_OK) == 0) {
			snprintf(err, errlen,
				 "%s: both a hook and %s exist; "
				 "not touching them",
				 path, chained);
			rc = -EEXIST;
			goto out;
		}
		if (rename(path, chained)) {
			rc = -errno;
			goto out_err;
		}
	}
	all = malloc(strlen(lines ? lines : "") + strlen(line) + 1);
	if (!all) {
		rc = -ENOMEM;
		goto out;
	}
	strcpy(all, lines ? lines : "");
	strcat(all, line);
	rc = write_hook(path, all);
	free(all);
	if (rc && !lines && access(chained, F_OK) == 0 &&
	    access(path, F_OK) != 0)
		rename(chained, path); /* put the user's hook back */
	if (rc)
		goto out_err;
out:
	free(lines);
	free(text);
	return rc;
out_err:
	snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	goto out;
}

static int remove_one(const char *hdir, const char *name, const char *line,
		      char *err, size_t errlen)
{
	char path[PATH_MAX + 32], chained[PATH_MAX + 64], *text = NULL;
	char *lines = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", hdir, name);
	snprintf(chained, sizeof(chained), "%s.wkfs-chained", path);
	rc = read_hook(path, &text);
	if (rc == -ENOENT) {
		free(text);
		return 0;
	}
	lines = rc ? NULL : our_lines(text);
	if (!lines || !drop_line(lines, line)) {
		free(lines);
		free(text);
		if (rc)
			snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc; /* not ours, or not this folder's */
	}
	if (lines[0])
		rc = write_hook(path, lines);
	else if (access(chained, F_OK) == 0)
		rc = rename(chained, path) ? -errno : 0;
	else
		rc = unlink(path) ? -errno : 0;
	if (rc)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	free(lines);
	free(text);
	return rc;
}

static int hooks_change(const char *dir, bool install, char *err, size_t errlen)
{
	char hdir[PATH_MAX], line[PATH_MAX * 2 + 128];
	int rc;

	rc = hooks_dir(dir, hdir, sizeof(hdir), err, errlen);
	if (rc)
		return rc;
	rc = sync_line(dir, line, sizeof(line));
	if (rc) {
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < sizeof(hook_names) / sizeof(hook_names[0]);
	     i++) {
		rc = install ? install_one(hdir, hook_names[i], line, err,
					   errlen)
			     : remove_one(hdir, hook_names[i], line, err,
					  errlen);
		if (rc)
			return rc;
	}
	return 0;
}

int hooks_install(const char *dir, char *err, size_t errlen)
{
	return hooks_change(dir, true, err, errlen);
}

int hooks_remove(const char *dir, char *err, size_t errlen)
{
	return hooks_change(dir, false, err, errlen);
}

int cmd_hooks(int argc, char **argv)
{
	const char *usage = "usage: wkfs hooks install|remove DIR\n";
	char dir[PATH_MAX], err[1024];
	bool install;

	if (argc != 3 ||
	    (strcmp(argv[1], "install") && strcmp(argv[1], "remove"))) {
		fputs(usage, stderr);
		return 2;
	}
	install = !strcmp(argv[1], "install");
	if (!realpath(argv[2], dir)) {
		wk_err("%s: %s", argv[2], strerror(errno));
		return 1;
	}
	if (hooks_change(dir, install, err, sizeof(err))) {
		wk_err("%s", err);
		return 1;
	}
	printf("%s: git hooks post-merge and pre-push %s\n", dir,
	       install ? "start a sync (chained with any hook you had)"
		       : "no longer start a sync");
	return 0;
}
