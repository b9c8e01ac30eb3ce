/*
 * rundir.c - runtime directories keyed by a synced folder's path.
 */
#include "rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

int rundir_base(char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (geteuid() == 0)
		n = snprintf(out, len, "/run/wkfs");
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, len, "%s/wkfs", xdg);
	else
		n = snprintf(out, len, "/tmp/wkfs-%u", (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int rundir_for(const char *dir, char *out, size_t len)
{
	char base[RUNDIR_MAX];
	int rc, n;

	rc = rundir_base(base, sizeof(base));
	if (rc)
		return rc;
	n = snprintf(out, len, "%s/%016llx", base,
		     (unsigned long long)XXH64(dir, strlen(dir), 0));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int mkdir_private(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	/* An existing one must be ours and a directory: another user must not
	 * be able to plant sockets where we look for them. */
	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	return 0;
}

int rundir_make(const char *dir, char *out, size_t len)
{
	char base[RUNDIR_MAX];
	int rc, fd;
	ssize_t n;
	char *p;

	rc = rundir_base(base, sizeof(base));
	if (!rc)
		rc = mkdir_private(base);
	if (!rc)
		rc = rundir_for(dir, out, len);
	if (!rc)
		rc = mkdir_private(out);
	if (rc)
		return rc;
	p = malloc(strlen(out) + 6);
	if (!p)
		return -ENOMEM;
	sprintf(p, "%s/path", out);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	free(p);
	if (fd < 0)
		return -errno;
	n = write(fd, dir, strlen(dir));
	rc = n == (ssize_t)strlen(dir) ? 0 : -EIO;
	close(fd);
	return rc;
}
