/*
 * rundir.c - runtime directories keyed by a synced folder's path, and the
 * one check that says whether such a directory may be trusted.
 */
#include "rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int rundir_safe(const char *path, char *err, size_t errlen)
{
	uid_t me = geteuid();
	struct stat st;

	if (lstat(path, &st) < 0) {
		int e = errno;

		errf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		errf(err, errlen,
		     "%s: not a directory (%s): refusing it as wkfs's runtime "
		     "directory; remove it and wkfs makes a new one",
		     path, S_ISLNK(st.st_mode) ? "a symbolic link" : "a file");
		return -EPERM;
	}
	if (st.st_uid != me) {
		errf(err, errlen,
		     "%s: owned by uid %u, not by you (uid %u): refusing it "
		     "as wkfs's runtime directory (another user may have "
		     "made it to catch your requests); remove it, or set "
		     "XDG_RUNTIME_DIR to a directory of yours",
		     path, (unsigned)st.st_uid, (unsigned)me);
		return -EPERM;
	}
	if (st.st_mode & 077) {
		errf(err, errlen,
		     "%s: mode %04o lets other users in: refusing it as "
		     "wkfs's runtime directory; remove it and wkfs makes a new "
		     "one (mode 0700)",
		     path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* A directory to put our base in: one that is ours and that nobody else
 * may write to (XDG_RUNTIME_DIR, /run/user/UID). */
static bool parent_ok(const char *path)
{
	struct stat st;

	return path[0] == '/' && stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
	       st.st_uid == geteuid() && !(st.st_mode & 022);
}

/* Where the base goes, without checking it. */
static int base_path(char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char user[64];
	int n;

	snprintf(user, sizeof(user), "/run/user/%u", (unsigned)geteuid());
	if (geteuid() == 0)
		n = snprintf(out, len, "/run/wkfs");
	else if (xdg && parent_ok(xdg))
		n = snprintf(out, len, "%s/wkfs", xdg);
	else if (parent_ok(user))
		n = snprintf(out, len, "%s/wkfs", user);
	else
		n = snprintf(out, len, "/tmp/wkfs-%u", (unsigned)geteuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* 0 when path is missing (it is made when needed) or safe. */
static int check_existing(const char *path, char *err, size_t errlen)
{
	int rc = rundir_safe(path, err, errlen);

	if (rc == -ENOENT) {
		errf(err, errlen, "%s", "");
		return 0;
	}
	return rc;
}

int rundir_base(char *out, size_t len, char *err, size_t errlen)
{
	int rc = base_path(out, len);

	if (rc) {
		errf(err, errlen, "the runtime directory's path is too long");
		return rc;
	}
	return check_existing(out, err, errlen);
}

int rundir_for(const char *dir, char *out, size_t len, char *err, size_t errlen)
{
	char base[RUNDIR_MAX];
	int rc, n;

	rc = rundir_base(base, sizeof(base), err, errlen);
	if (rc)
		return rc;
	n = snprintf(out, len, "%s/%016llx", base,
		     (unsigned long long)XXH64(dir, strlen(dir), 0));
	if (n < 0 || (size_t)n >= len) {
		errf(err, errlen, "the runtime directory's path is too long");
		return -ENAMETOOLONG;
	}
	return check_existing(out, err, errlen);
}

/* Makes path (mode 0700, whatever the umask) unless it exists; then it
 * must pass rundir_safe(). */
static int mkdir_private(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) == 0) {
		if (chmod(path, 0700) < 0) {
			int e = errno;

			errf(err, errlen, "%s: %s", path, strerror(e));
			return -e;
		}
	} else if (errno != EEXIST) {
		int e = errno;

		errf(err, errlen, "cannot create %s: %s", path, strerror(e));
		return -e;
	}
	return rundir_safe(path, err, errlen);
}

int rundir_make(const char *dir, char *out, size_t len, char *err,
		size_t errlen)
{
	char base[RUNDIR_MAX];
	int rc, fd;
	ssize_t n;
	char *p;

	rc = base_path(base, sizeof(base));
	if (!rc)
		rc = mkdir_private(base, err, errlen);
	if (!rc)
		rc = rundir_for(dir, out, len, err, errlen);
	if (!rc)
		rc = mkdir_private(out, err, errlen);
	if (rc)
		return rc;
	p = malloc(strlen(out) + 6);
	if (!p)
		return -ENOMEM;
	sprintf(p, "%s/path", out);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		rc = -errno;
		errf(err, errlen, "cannot write %s: %s", p, strerror(-rc));
		free(p);
		return rc;
	}
	free(p);
	n = write(fd, dir, strlen(dir));
	rc = n == (ssize_t)strlen(dir) ? 0 : -EIO;
	close(fd);
	if (rc)
		errf(err, errlen, "cannot write %s/path", out);
	return rc;
}
