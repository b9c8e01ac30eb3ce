/*
 * store.c - the sidecar's disk use (contract: store.h).
 *
 * Sizes are the files' lengths, not their blocks: what a user compares
 * with the files of the folder.  One directory level each: the stores
 * are flat.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Regular files directly in dir (beneath dirfd), and their bytes. */
static void sum_dir(int dirfd, const char *dir, uint64_t *files,
		    uint64_t *bytes)
{
	int fd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *d;
	struct stat st;
	DIR *dp;

	if (fd < 0)
		return;
	dp = fdopendir(fd);
	if (!dp) {
		close(fd);
		return;
	}
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.' ||
		    fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (files)
			(*files)++;
		*bytes += (uint64_t)st.st_size;
	}
	closedir(dp);
}

static uint64_t file_size(int dirfd, const char *path)
{
	struct stat st;

	return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			       S_ISREG(st.st_mode)
		       ? (uint64_t)st.st_size
		       : 0;
}

int store_usage_at(int dirfd, struct store_usage *u)
{
	struct stat st;

	memset(u, 0, sizeof(*u));
	if (fstatat(dirfd, ".wkfs", &st, 0) != 0)
		return -errno;
	sum_dir(dirfd, ".wkfs/objects", &u->objects, &u->object_bytes);
	sum_dir(dirfd, ".wkfs/recipes", NULL, &u->recipe_bytes);
	sum_dir(dirfd, ".wkfs/chunks", NULL, &u->chunk_bytes);
	u->db_bytes = file_size(dirfd, ".wkfs/wkfs.db") +
		      file_size(dirfd, ".wkfs/wkfs.db-wal");
	return 0;
}

uint64_t store_total(const struct store_usage *u)
{
	return u->object_bytes + u->recipe_bytes + u->chunk_bytes + u->db_bytes;
}
