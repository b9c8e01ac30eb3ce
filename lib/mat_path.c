/*
 * mat_path.c - the materializer's checked path resolution and its object
 * store (see materialize.h for the rules, mat_int.h for the functions).
 *
 * Every path a change names is checked component by component before any
 * syscall sees it, then its parent is opened beneath DIR with openat2()
 * (beneath.h): no symlink is followed and nothing escapes, so a symlink
 * planted in DIR cannot redirect a step.
 */
#include "mat_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"
#include "content.h"
#include "xalloc.h"

bool mat_is_stage(const char *path)
{
	size_t l = strlen(MAT_STAGE_PREFIX);

	return strncmp(path, MAT_STAGE_PREFIX, l) == 0 && path[l] != '\0' &&
	       strchr(path + l, '/') == NULL;
}

/* Checks every component of path; 0, -EINVAL or -EPERM. */
static int check_path(const char *path, bool stage)
{
	char comp[WK_NAME_MAX + 2];
	const char *p = path;
	size_t len = strnlen(path, MAT_PATH_MAX + 1);

	if (len == 0 || len > MAT_PATH_MAX)
		return -EINVAL;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t l = slash ? (size_t)(slash - p) : strlen(p);

		if (l > WK_NAME_MAX)
			return -EINVAL;
		memcpy(comp, p, l);
		comp[l] = '\0';
		if (!wk_name_valid(comp))
			return -EINVAL;
		if (p == path && strcmp(comp, ".wkfs") == 0 &&
		    !(stage && mat_is_stage(path)))
			return -EPERM;
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

/* Opens directory dir (checked, relative, "" = DIR) beneath DIR. */
static int open_beneath(struct mat *m, const char *dir, int flags)
{
	return beneath_open(m->rootfd, dir, flags | O_DIRECTORY,
			    &m->no_openat2);
}

int mat_parent(struct mat *m, const char *path, bool stage, int *dirfd,
	       const char **name)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int rc = check_path(path, stage);

	if (rc < 0)
		return rc;
	dir = xstrndup(path, slash ? (size_t)(slash - path) : 0);
	rc = open_beneath(m, dir, O_PATH);
	free(dir);
	if (rc < 0)
		return rc;
	*dirfd = rc;
	*name = slash ? slash + 1 : path;
	return 0;
}

int mat_open_dir(struct mat *m, const char *path)
{
	if (path[0] != '\0') {
		int rc = check_path(path, false);

		/* The staging directory itself is fine to open, too. */
		if (rc < 0 && strcmp(path, TREE_STAGE_DIR) != 0)
			return rc;
	}
	return open_beneath(m, path, O_RDONLY);
}

int mat_sync(struct mat *m, int fd)
{
	return m->nosync ? 0 : fsync(fd);
}

int mat_datasync(struct mat *m, int fd)
{
	return m->nosync ? 0 : fdatasync(fd);
}

void mat_tmpname(struct mat *m, char tag, char buf[64])
{
	snprintf(buf, 64, "%c.%ld.%llu", tag, (long)getpid(),
		 (unsigned long long)m->tmpn++);
}

/* ---- the object store ---- */

int mat_object_open(struct mat *m, const struct wk_hash *h)
{
	char hex[WK_HASH_STRLEN];
	int fd;

	wk_hash_str(h, hex);
	fd = openat(m->objfd, hex, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd < 0 ? -errno : fd;
	/* Put but not yet flushed (mat_object_defer). */
	for (size_t i = 0; i < m->npending; i++)
		if (memcmp(&m->pending[i].hash, h, sizeof(*h)) == 0) {
			fd = openat(m->tmpfd, m->pending[i].tmp,
				    O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			return fd < 0 ? -errno : fd;
		}
	return -ENOENT;
}

int mat_sync_many(struct mat *m, size_t n)
{
	if (m->nosync || n < MAT_SYNCFS_MIN)
		return 1;
	return syncfs(m->tmpfd) < 0 ? -errno : 0;
}

int mat_object_flush(struct mat *m)
{
	char hex[WK_HASH_STRLEN];
	int rc = mat_sync_many(m, m->npending);

	for (size_t i = 0; i < m->npending && rc > 0; i++) {
		int fd = openat(m->tmpfd, m->pending[i].tmp,
				O_RDONLY | O_CLOEXEC);

		if (fd < 0 || fsync(fd) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
	}
	if (rc > 0)
		rc = 0;
	for (size_t i = 0; i < m->npending; i++) {
		struct mat_pending *p = &m->pending[i];

		if (!rc && renameat(m->tmpfd, p->tmp, m->objfd,
				    wk_hash_str(&p->hash, hex)) < 0)
			rc = -errno;
		if (rc)
			unlinkat(m->tmpfd, p->tmp, 0);
	}
	if (!rc && m->npending && mat_sync(m, m->objfd) < 0)
		rc = -errno;
	m->npending = 0;
	return rc;
}

void mat_object_defer(struct mat *m, bool on)
{
	m->defer = on;
}

bool mat_object_have(struct mat *m, const struct wk_hash *h)
{
	char hex[WK_HASH_STRLEN];
	struct stat st;

	for (size_t i = 0; i < m->npending; i++)
		if (memcmp(&m->pending[i].hash, h, sizeof(*h)) == 0)
			return true;

	wk_hash_str(h, hex);
	return fstatat(m->objfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

int mat_object_drop(struct mat *m, const struct wk_hash *h)
{
	char hex[WK_HASH_STRLEN];

	wk_hash_str(h, hex);
	return unlinkat(m->objfd, hex, 0) < 0 ? -errno : 0;
}

/* The hash an object's name spells (32 lowercase hex digits), if any. */
static bool parse_object_name(const char *name, struct wk_hash *h)
{
	for (int i = 0; i < 32; i++) {
		const char *x = strchr("0123456789abcdef", name[i]);

		if (!name[i] || !x)
			return false;
		if (i % 2 == 0)
			h->b[i / 2] = (uint8_t)((x - "0123456789abcdef") << 4);
		else
			h->b[i / 2] |= (uint8_t)(x - "0123456789abcdef");
	}
	return name[32] == '\0';
}

int mat_object_list(struct mat *m, struct wk_hash **out, size_t *n)
{
	int fd = openat(m->objfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t alloc = 0;
	struct dirent *de;
	DIR *d;

	*out = NULL;
	*n = 0;
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		struct wk_hash h;

		if (!parse_object_name(de->d_name, &h))
			continue;
		if (*n == alloc) {
			alloc = alloc ? 2 * alloc : 16;
			*out = xrealloc(*out, alloc * sizeof(**out));
		}
		(*out)[(*n)++] = h;
	}
	closedir(d);
	return 0;
}

int mat_copy_fd(int src, int dst)
{
	static const size_t piece = 1 << 20;
	loff_t in = 0;
	char *buf;

	for (;;) {
		ssize_t n = copy_file_range(src, &in, dst, NULL, piece, 0);

		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP && errno != EBADF)
			return -errno;
		break;
	}
	/* No copy_file_range between these two: copy by hand, from where
	 * it stopped (dst's offset moved with it). */
	buf = xmalloc(piece);
	for (;;) {
		ssize_t n = pread(src, buf, piece, in), w = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : 0;
		}
		while (w < n) {
			ssize_t k = write(dst, buf + w, (size_t)(n - w));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				free(buf);
				return -errno;
			}
			w += k;
		}
		in += n;
	}
}

int mat_object_put(struct mat *m, int srcfd, struct wk_hash *out)
{
	char tmp[64], hex[WK_HASH_STRLEN];
	struct wk_hash h;
	uint64_t size;
	int fd, rc;

	mat_tmpname(m, 'o', tmp);
	fd = openat(m->tmpfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0)
		return -errno;
	rc = mat_copy_fd(srcfd, fd);
	/* Named by what was copied, whatever the source did meanwhile. */
	if (rc == 0)
		rc = content_hash_fd(fd, &h, &size);
	if (rc == 0 && out)
		*out = h;
	if (rc == 0 && mat_object_have(m, &h))
		goto out_unlink;
	if (rc == 0 && m->defer) {
		/* Renamed into the store by mat_object_flush(), once
		 * synced: a crash must not leave a torn object under a
		 * name that says what it holds. */
		struct mat_pending *p;

		if (m->npending == m->pending_alloc) {
			m->pending_alloc =
				m->pending_alloc ? 2 * m->pending_alloc : 64;
			m->pending = xrealloc(m->pending,
					      m->pending_alloc *
						      sizeof(*m->pending));
		}
		p = &m->pending[m->npending++];
		p->hash = h;
		memcpy(p->tmp, tmp, sizeof(p->tmp));
		close(fd);
		return 0;
	}
	if (rc == 0 && mat_sync(m, fd) < 0)
		rc = -errno;
	if (rc == 0 &&
	    renameat(m->tmpfd, tmp, m->objfd, wk_hash_str(&h, hex)) < 0)
		rc = -errno;
	if (rc == 0 && mat_sync(m, m->objfd) < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		unlinkat(m->tmpfd, tmp, 0);
	return rc;

out_unlink:
	close(fd);
	unlinkat(m->tmpfd, tmp, 0);
	return 0;
}
