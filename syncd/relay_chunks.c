/*
 * relay_chunks.c - the relay's chunk store (see relay_chunks.h).
 */
#include "relay_chunks.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content.h"
#include "xalloc.h"

#define CHUNK_PATH_MAX 4096

/* DATA/chunks/FOLDER/ab and the file name cdef... (30 hex digits). */
static int chunk_paths(const char *data_dir, const char *folder,
		       const uint8_t name[WIRE_NAME_LEN], char *dir, char *file)
{
	static const char hex[] = "0123456789abcdef";
	char h[2 * WIRE_NAME_LEN + 1];
	int n;

	for (unsigned i = 0; i < WIRE_NAME_LEN; i++) {
		h[2 * i] = hex[name[i] >> 4];
		h[2 * i + 1] = hex[name[i] & 15];
	}
	h[2 * WIRE_NAME_LEN] = '\0';
	n = snprintf(dir, CHUNK_PATH_MAX, "%s/chunks/%s/%.2s", data_dir, folder,
		     h);
	if (n < 0 || n >= CHUNK_PATH_MAX)
		return -ENAMETOOLONG;
	n = snprintf(file, CHUNK_PATH_MAX, "%s/%s", dir, h + 2);
	if (n < 0 || n >= CHUNK_PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int relay_chunk_path(const char *data_dir, const char *folder,
		     const uint8_t name[WIRE_NAME_LEN], char *file, size_t len)
{
	char dir[CHUNK_PATH_MAX], f[CHUNK_PATH_MAX];
	int rc = chunk_paths(data_dir, folder, name, dir, f);

	if (!rc && snprintf(file, len, "%s", f) >= (int)len)
		rc = -ENAMETOOLONG;
	return rc;
}

bool relay_chunk_has(const char *data_dir, const char *folder,
		     const uint8_t name[WIRE_NAME_LEN], uint32_t *size)
{
	char dir[CHUNK_PATH_MAX], file[CHUNK_PATH_MAX];
	struct stat st;

	if (chunk_paths(data_dir, folder, name, dir, file))
		return false;
	if (stat(file, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	if (size)
		*size = (uint32_t)st.st_size;
	return true;
}

/* Adds the sizes of the regular files in dir (temporaries too: they
 * take the disk as well). */
static int dir_bytes(int dfd, uint64_t *bytes, bool sub)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	struct stat st;
	int rc = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] == '.' &&
		    (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (S_ISREG(st.st_mode)) {
			*bytes += (uint64_t)st.st_size;
		} else if (sub && S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd(d), e->d_name,
					O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			rc = fd < 0 ? -errno : dir_bytes(fd, bytes, false);
		}
	}
	closedir(d);
	return rc;
}

int relay_chunks_bytes(const char *data_dir, const char *folder,
		       uint64_t *bytes)
{
	char *path = xasprintf("%s/chunks/%s", data_dir, folder);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	free(path);
	*bytes = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	return dir_bytes(fd, bytes, true);
}

/* fsync of path, or with whole_fs syncfs of its file system. */
static int sync_path(const char *path, int flags, bool whole_fs)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if ((whole_fs ? syncfs(fd) : fsync(fd)) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int fsync_dir(const char *dir)
{
	return sync_path(dir, O_DIRECTORY, false);
}

/* mkdir, and when it made one, fsync of the parent that gained it. */
static int mkdir_synced(char *path)
{
	char *slash = strrchr(path, '/');
	int rc;

	if (mkdir(path, 0700) < 0)
		return errno == EEXIST ? 0 : -errno;
	if (!slash)
		return 0;
	*slash = '\0';
	rc = fsync_dir(path);
	*slash = '/';
	return rc;
}

/* Creates DATA/chunks/FOLDER and DATA/chunks/FOLDER/ab as needed. */
static int make_dirs(const char *dir)
{
	char path[CHUNK_PATH_MAX];
	char *slash;
	int rc;

	snprintf(path, sizeof(path), "%s", dir);
	slash = strrchr(path, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	rc = mkdir_synced(path);
	*slash = '/';
	return rc ? rc : mkdir_synced(path);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Checks data against name and writes it, unsynced, to a new temporary
 * in its directory: 0 with tmp and file set, 1 when the chunk is stored
 * already, or -errno (-EILSEQ: not its name).
 */
static int write_tmp(const char *data_dir, const char *folder,
		     const uint8_t name[WIRE_NAME_LEN], const uint8_t *data,
		     size_t len, char *tmp, char *file)
{
	char dir[CHUNK_PATH_MAX];
	struct wk_hash h;
	int fd, rc;

	if (len > WIRE_CHUNK_MAX)
		return -EMSGSIZE;
	content_hash_buf(data, len, &h);
	if (memcmp(h.b, name, WIRE_NAME_LEN) != 0)
		return -EILSEQ;
	rc = chunk_paths(data_dir, folder, name, dir, file);
	if (rc)
		return rc;
	if (access(file, F_OK) == 0)
		return 1;
	rc = make_dirs(dir);
	if (rc)
		return rc;
	if (snprintf(tmp, CHUNK_PATH_MAX, "%s/.tmp-XXXXXX", dir) >=
	    CHUNK_PATH_MAX)
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

int relay_chunk_put(const char *data_dir, const char *folder,
		    const uint8_t name[WIRE_NAME_LEN], const uint8_t *data,
		    size_t len)
{
	char file[CHUNK_PATH_MAX], tmp[CHUNK_PATH_MAX];
	int rc = write_tmp(data_dir, folder, name, data, len, tmp, file);

	if (rc)
		return rc < 0 ? rc : 0;
	rc = sync_path(tmp, 0, false);
	if (!rc && rename(tmp, file) < 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	*strrchr(file, '/') = '\0';
	return fsync_dir(file);
}

/* ---- staged chunks ---- */

struct staged {
	void *owner; /* NULL once disowned */
	uint8_t name[WIRE_NAME_LEN];
	char tmp[CHUNK_PATH_MAX];
	char file[CHUNK_PATH_MAX];
};

struct chunk_stage {
	const char *data_dir;
	struct staged *v;
	size_t n, alloc;
};

struct chunk_stage *relay_chunk_stage_new(const char *data_dir)
{
	struct chunk_stage *st = xcalloc(1, sizeof(*st));

	st->data_dir = data_dir;
	return st;
}

void relay_chunk_stage_free(struct chunk_stage *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		unlink(st->v[i].tmp);
	free(st->v);
	free(st);
}

bool relay_chunk_staged_any(const struct chunk_stage *st)
{
	return st->n > 0;
}

void relay_chunk_disown(struct chunk_stage *st, void *owner)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->v[i].owner == owner)
			st->v[i].owner = NULL;
}

int relay_chunk_stage(struct chunk_stage *st, const char *folder,
		      const uint8_t name[WIRE_NAME_LEN], const uint8_t *data,
		      size_t len, void *owner, bool *stored)
{
	struct staged *e;
	int rc;

	if (st->n == st->alloc) {
		st->alloc = st->alloc ? 2 * st->alloc : 64;
		st->v = xrealloc(st->v, st->alloc * sizeof(*st->v));
	}
	e = &st->v[st->n];
	rc = write_tmp(st->data_dir, folder, name, data, len, e->tmp, e->file);
	*stored = rc == 1;
	if (rc)
		return rc < 0 ? rc : 0;
	e->owner = owner;
	memcpy(e->name, name, WIRE_NAME_LEN);
	st->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int fsync_dirs(struct chunk_stage *st)
{
	char **dirs = xcalloc(st->n, sizeof(*dirs));
	int rc = 0;

	for (size_t i = 0; i < st->n; i++) {
		dirs[i] = st->v[i].file;
		*strrchr(dirs[i], '/') = '\0';
	}
	qsort(dirs, st->n, sizeof(*dirs), cmp_str);
	for (size_t i = 0; i < st->n && !rc; i++)
		if (i == 0 || strcmp(dirs[i], dirs[i - 1]) != 0)
			rc = fsync_dir(dirs[i]);
	for (size_t i = 0; i < st->n; i++)
		st->v[i].file[strlen(st->v[i].file)] = '/';
	free(dirs);
	return rc;
}

/* Below this many chunks, an fsync each; from it on, syncfs(). */
#define SYNCFS_MIN 8

/*
 * Every fsync costs a disk cache flush, even when the first one's journal
 * commit already holds the rest; syncfs() costs one for everything (but
 * also waits for the rest of the file system's dirty data: not for a
 * few chunks).
 */
int relay_chunk_commit(struct chunk_stage *st, chunk_done_fn done, void *arg)
{
	bool many = st->n >= SYNCFS_MIN;
	int rc = 0;

	if (st->n == 0)
		return 0;
	if (many)
		rc = sync_path(st->data_dir, O_DIRECTORY, true);
	for (size_t i = 0; i < st->n && !rc && !many; i++)
		rc = sync_path(st->v[i].tmp, 0, false);
	for (size_t i = 0; i < st->n; i++) {
		struct staged *e = &st->v[i];

		if (!rc && rename(e->tmp, e->file) < 0)
			rc = -errno;
		if (rc)
			unlink(e->tmp);
	}
	/* The directories that gained names. */
	if (!rc)
		rc = many ? sync_path(st->data_dir, O_DIRECTORY, true)
			  : fsync_dirs(st);
	for (size_t i = 0; i < st->n; i++)
		if (st->v[i].owner)
			done(st->v[i].owner, st->v[i].name, rc, arg);
	st->n = 0;
	return rc;
}

int relay_chunk_get(const char *data_dir, const char *folder,
		    const uint8_t name[WIRE_NAME_LEN], struct wire_buf *out)
{
	char dir[CHUNK_PATH_MAX], file[CHUNK_PATH_MAX];
	struct stat st;
	size_t start = wire_buf_len(out), got = 0;
	int fd, rc;

	rc = chunk_paths(data_dir, folder, name, dir, file);
	if (rc)
		return rc;
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > WIRE_CHUNK_MAX) {
		rc = -EIO;
		goto out_close;
	}
	rc = wire_buf_reserve(out, (size_t)st.st_size);
	if (rc)
		goto out_close;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, wire_buf_data(out) + start + got,
				 (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			goto out_close;
		}
		got += (size_t)n;
	}
	out->len += got;

out_close:
	close(fd);
	return rc;
}

/* ---- what a put names ---- */

struct named {
	const char *data_dir;
	const char *folder;
	struct wk_hash *missing;
};

/* recipe_name_fn: -ENOENT (and the name) for a chunk the store lacks. */
static int named_one(void *arg, const struct wk_hash *name)
{
	struct named *nm = arg;

	if (relay_chunk_has(nm->data_dir, nm->folder, name->b, NULL))
		return 0;
	*nm->missing = *name;
	return -ENOENT;
}

int relay_chunks_named(const char *data_dir, const char *folder,
		       const struct wk_op *op,
		       const struct wire_content_ref *ref,
		       struct wire_buf *scratch, struct wk_hash *missing)
{
	struct named nm = {data_dir, folder, missing};
	int rc;

	if (op->kind != WK_OP_PUT || ref->how == WIRE_CONTENT_NONE)
		return 0;
	if (ref->how == WIRE_CONTENT_WHOLE)
		return op->size == 0 ? 0 : named_one(&nm, &op->hash);
	*missing = ref->recipe;
	wire_buf_reset(scratch);
	rc = relay_chunk_get(data_dir, folder, ref->recipe.b, scratch);
	if (rc)
		return rc;
	rc = wire_rchunk_names(wire_buf_data(scratch), wire_buf_len(scratch),
			       named_one, &nm);
	if (rc == -EBADMSG)
		*missing = ref->recipe;
	return rc;
}
