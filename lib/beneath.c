/*
 * beneath.c - path resolution that stays beneath a directory fd (see
 * beneath.h for why the mount needs it).
 */
#include "beneath.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The process-wide choice: WKFS_NO_OPENAT2 set, or a kernel without
 * openat2 seen. */
static bool process_walk_only;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void read_env(void)
{
	process_walk_only = getenv("WKFS_NO_OPENAT2") != NULL;
}

static bool *default_walk_only(void)
{
	pthread_once(&process_once, read_env);
	return &process_walk_only;
}

/* Is the component of length l at p "." or ".."? */
static bool dot(const char *p, size_t l)
{
	return (l == 1 && p[0] == '.') ||
	       (l == 2 && p[0] == '.' && p[1] == '.');
}

/*
 * The walk: each directory on the way opened O_PATH | O_NOFOLLOW from the
 * last, so a symlink on the way gives ENOTDIR or ELOOP and is never
 * followed; ".." is refused, "." and empty components skipped.
 */
static int walk(int rootfd, const char *path, int flags)
{
	const char *p = path, *last = strrchr(path, '/');
	int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int rc;

	last = last ? last + 1 : path;
	while (fd >= 0 && p < last) {
		size_t l = strcspn(p, "/");
		char comp[256];
		int next;

		if (l == 0 || dot(p, l)) {
			if (l == 2) {
				close(fd);
				return -EXDEV;
			}
			p += l + 1;
			continue;
		}
		if (l >= sizeof(comp)) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, l);
		comp[l] = '\0';
		next = openat(fd, comp,
			      O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		fd = next;
		p += l + 1;
	}
	if (fd < 0)
		return -errno;
	if (strcmp(last, "..") == 0) {
		close(fd);
		return -EXDEV;
	}
	rc = openat(fd, last[0] ? last : ".", flags | O_NOFOLLOW | O_CLOEXEC);
	if (rc < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int beneath_open(int rootfd, const char *path, int flags, bool *walk_only)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};

	if (!walk_only)
		walk_only = default_walk_only();
	if (path[0] == '\0')
		path = ".";
	if (path[0] == '/')
		return -EXDEV;
	for (int tries = 0; !*walk_only; tries++) {
		long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));

		if (fd >= 0)
			return (int)fd;
		if (errno == ENOSYS) {
			*walk_only = true;
			break;
		}
		/* EAGAIN: a rename somewhere raced the lookup; again. */
		if (errno != EAGAIN || tries == 8)
			return -errno;
	}
	return walk(rootfd, path, flags);
}

int beneath_lstat(int rootfd, const char *path, struct stat *st)
{
	int fd = beneath_open(rootfd, path, O_PATH, NULL);
	int rc = 0;

	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

ssize_t beneath_readlink(int rootfd, const char *path, char *buf, size_t len)
{
	int fd = beneath_open(rootfd, path, O_PATH, NULL);
	ssize_t n;

	if (fd < 0)
		return fd;
	/* An empty path reads the link an O_PATH fd stands for. */
	n = readlinkat(fd, "", buf, len);
	if (n < 0)
		n = -errno;
	else if ((size_t)n >= len)
		n = -ENAMETOOLONG;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}
