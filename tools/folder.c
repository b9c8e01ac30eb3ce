/*
 * folder.c - finding synced folders: by path, and every mounted one.
 */
#include "folder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "locate.h"
#include "syncctl.h"
#include "xalloc.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

struct mnt {
	char point[PATH_MAX];
	char source[PATH_MAX];
};

/* The fuse.wkfs mounts, in mount order.  Returns the count or -errno. */
static int wkfs_mounts(struct mnt **out)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	struct mnt *v = NULL;
	int n = 0;

	*out = NULL;
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char point[PATH_MAX], type[64], source[PATH_MAX];
		char *sep = strstr(line, " - ");

		if (!sep ||
		    sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 ||
		    sscanf(sep + 3, "%63s %4095s", type, source) != 2 ||
		    strcmp(type, "fuse.wkfs") != 0)
			continue;
		unescape(point);
		unescape(source);
		if ((size_t)n == alloc) {
			alloc = alloc ? 2 * alloc : 8;
			v = xrealloc(v, alloc * sizeof(*v));
		}
		snprintf(v[n].point, sizeof(v[n].point), "%s", point);
		snprintf(v[n].source, sizeof(v[n].source), "%s", source);
		n++;
	}
	free(line);
	fclose(f);
	*out = v;
	return n;
}

/* 0, or -EPERM when the folder's runtime directory is not safe (the
 * reason in err): nothing of it may be used then. */
static int fill(struct folder *f, const char *dir, const char *mnt, char *err,
		size_t errlen)
{
	int rc;

	snprintf(f->dir, sizeof(f->dir), "%s", dir);
	snprintf(f->mnt, sizeof(f->mnt), "%s", mnt ? mnt : "");
	f->mounted = mnt != NULL;
	snprintf(f->key, sizeof(f->key), "%s", mnt ? mnt : dir);
	rc = rundir_for(f->key, f->run, sizeof(f->run), err, errlen);
	if (rc)
		f->run[0] = '\0';
	return rc;
}

/* Matches path against the mounts: as a mount point or as a source. */
static const struct mnt *match_mount(const struct mnt *m, int n,
				     const char *path)
{
	/* The last match is the top mount. */
	for (int i = n - 1; i >= 0; i--)
		if (strcmp(m[i].point, path) == 0 ||
		    strcmp(m[i].source, path) == 0)
			return &m[i];
	return NULL;
}

static bool has_sidecar(const char *dir)
{
	char p[PATH_MAX + 8];
	struct stat st;

	snprintf(p, sizeof(p), "%s/.wkfs", dir);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int folder_resolve(const char *path, struct folder *f, char *err, size_t errlen)
{
	char cur[PATH_MAX];
	struct mnt *m;
	int n;

	if (!realpath(path ? path : ".", cur)) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", path ? path : ".", strerror(e));
		return -e;
	}
	n = wkfs_mounts(&m);
	if (n < 0)
		n = 0;
	for (;;) {
		const struct mnt *hit = match_mount(m, n, cur);
		char *slash;
		int rc;

		if (hit || has_sidecar(cur)) {
			rc = hit ? fill(f, hit->source, hit->point, err, errlen)
				 : fill(f, cur, NULL, err, errlen);
			free(m);
			return rc;
		}
		slash = strrchr(cur, '/');
		if (!slash || cur[1] == '\0')
			break;
		if (slash == cur)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(m);
	snprintf(err, errlen,
		 "%s is not in a synced folder: give its path, or run "
		 "'wkfs init DIR' first",
		 path ? path : "the current directory");
	return -ENOENT;
}

int folder_list(struct folder **out, char *err, size_t errlen)
{
	char base[RUNDIR_MAX];
	struct folder *v = NULL;
	struct mnt *m;
	size_t alloc;
	int n, rc, count = 0;
	DIR *d;

	n = wkfs_mounts(&m);
	if (n < 0)
		return n;
	alloc = (size_t)n + 8;
	v = xcalloc(alloc, sizeof(*v));
	for (int i = 0; i < n; i++) {
		rc = fill(&v[count++], m[i].source, m[i].point, err, errlen);
		if (rc) {
			free(m);
			free(v);
			return rc;
		}
	}
	free(m);
	/* Daemons of folders that are not mounted. */
	rc = rundir_base(base, sizeof(base), err, errlen);
	if (rc) {
		free(v);
		return rc;
	}
	if ((d = opendir(base))) {
		struct dirent *de;

		while ((de = readdir(d))) {
			char p[RUNDIR_MAX + 300], dir[PATH_MAX];
			bool known = false;
			FILE *f;

			if (de->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s/syncd.pid", base,
				 de->d_name);
			if (access(p, F_OK) != 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s/path", base, de->d_name);
			f = fopen(p, "re");
			if (!f)
				continue;
			if (!fgets(dir, sizeof(dir), f))
				dir[0] = '\0';
			fclose(f);
			dir[strcspn(dir, "\n")] = '\0';
			for (int i = 0; i < count && !known; i++)
				known = strcmp(v[i].key, dir) == 0;
			if (known || dir[0] != '/')
				continue;
			/* Only a daemon that runs (stale files are
			 * cleaned up on the way). */
			snprintf(p, sizeof(p), "%s/%s", base, de->d_name);
			if (syncctl_pid(p) == 0)
				continue;
			if ((size_t)count == alloc) {
				alloc *= 2;
				v = xrealloc(v, alloc * sizeof(*v));
			}
			if (fill(&v[count], dir, NULL, NULL, 0) == 0)
				count++;
		}
		closedir(d);
	}
	*out = v;
	return count;
}

int folder_has_remote(const struct folder *f, char *err, size_t errlen)
{
	struct wk_config cfg;
	char e[512];
	int fd, rc;

	fd = locate_dirfd(f->key, err, errlen);
	if (fd < 0)
		return fd;
	config_init(&cfg);
	rc = config_load_at(fd, &cfg, e, sizeof(e));
	if (rc)
		snprintf(err, errlen, "%s/.wkfs/%s", f->dir, e);
	else
		rc = cfg.remote_url ? 1 : 0;
	config_release(&cfg);
	close(fd);
	return rc;
}
