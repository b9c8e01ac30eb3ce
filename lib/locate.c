/*
 * locate.c - reaching .wkfs/ of a folder that may be mounted over itself.
 */
#include "locate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "rundir.h"
#include "xalloc.h"

static int ask_mount(const char *run, char *err, size_t errlen)
{
	char *sock = xasprintf("%s/fs.sock", run);
	char reply[CTL_LINE_MAX];
	int fd = -1, rc;

	rc = ctl_request(sock, "flush", reply, sizeof(reply), NULL);
	if (!rc)
		rc = ctl_request(sock, "dirfd", reply, sizeof(reply), &fd);
	free(sock);
	if (!rc && (strcmp(reply, "ok") != 0 || fd < 0)) {
		if (fd >= 0)
			close(fd);
		rc = -EPROTO;
	}
	return rc ? rc : fd;
}

/* Looks for a runtime directory whose "backing" file names path. */
static int find_by_backing(const char *path, char *run, size_t len)
{
	char base[RUNDIR_MAX];
	struct dirent *de;
	DIR *d;
	int rc = -ENOENT;

	if (rundir_base(base, sizeof(base), NULL, 0) || !(d = opendir(base)))
		return -ENOENT;
	while ((de = readdir(d))) {
		char buf[PATH_MAX] = "";
		char *p;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s/backing", base, de->d_name);
		f = fopen(p, "re");
		free(p);
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		if (strcmp(buf, path) == 0 &&
		    strlen(base) + strlen(de->d_name) + 2 <= len) {
			snprintf(run, len, "%.*s/%s", (int)strlen(base), base,
				 de->d_name);
			rc = 0;
			break;
		}
	}
	closedir(d);
	return rc;
}

int locate_dirfd(const char *path, char *err, size_t errlen)
{
	char real[PATH_MAX], run[RUNDIR_MAX];
	int fd;

	if (!realpath(path, real)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -ENOENT;
	}
	/* A runtime directory that is not safe is an error, not a reason
	 * to look elsewhere: someone may be waiting there for our
	 * requests, and the user must hear of it. */
	fd = rundir_for(real, run, sizeof(run), err, errlen);
	if (fd < 0)
		return fd;
	fd = ask_mount(run, err, errlen);
	if (fd >= 0)
		return fd;
	if (find_by_backing(real, run, sizeof(run)) == 0) {
		fd = ask_mount(run, err, errlen);
		if (fd >= 0)
			return fd;
	}
	fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", real, strerror(errno));
		return -errno;
	}
	if (faccessat(fd, ".wkfs/wkfs.db", F_OK, 0) < 0) {
		snprintf(err, errlen,
			 "%s: not a wkfs directory: run 'wkfs init %s' first",
			 real, real);
		close(fd);
		return -ENOENT;
	}
	return fd;
}
