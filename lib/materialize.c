/*
 * materialize.c - carrying out the merge engine's changes in the backing
 * directory: one function per change kind, the journaled batch around
 * them, and recovery after a crash (contract: materialize.h).
 *
 * Each step is written so that running it again after it completed, with
 * nothing else done since, finds its effect and does nothing more: that
 * is what makes a crash between a step and its progress mark harmless.
 * Steps further back are never rerun; the journal's progress bytes say
 * where to resume.
 */
#include "mat_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content.h"
#include "fault.h"
#include "wlog.h"
#include "xalloc.h"

/* ---- small helpers ---- */

static struct timespec ns_to_ts(int64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

/* Sets the mtime of name in dirfd (never following it). */
static int set_mtime_at(int dirfd, const char *name, int64_t ns)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, ns_to_ts(ns)};

	return utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Permission bits a file may get: no setuid or setgid from a remote. */
static mode_t file_mode(uint32_t mode)
{
	return (mode_t)(mode & 07777 & ~(S_ISUID | S_ISGID));
}

/* renameat2(RENAME_NOREPLACE), emulated where a file system lacks it. */
static int rename_noreplace(int sfd, const char *s, int dfd, const char *d)
{
	struct stat st;

	if (renameat2(sfd, s, dfd, d, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL)
		return -errno;
	if (fstatat(dfd, d, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	return renameat(sfd, s, dfd, d) < 0 ? -errno : 0;
}

static bool exists_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Renames a finished temporary over name, between the fault points. */
static int put_in_place(int tmpfd, const char *tmp, int dirfd, const char *name,
			bool replace)
{
	int rc;

	fault_point("mat.before_rename");
	if (replace)
		rc = renameat(tmpfd, tmp, dirfd, name) < 0 ? -errno : 0;
	else
		rc = rename_noreplace(tmpfd, tmp, dirfd, name);
	if (rc < 0) {
		unlinkat(tmpfd, tmp, 0);
		return rc;
	}
	fault_point("mat.after_rename");
	return 0;
}

/* ---- the steps ---- */

/* True when dirfd/name is a regular file holding c's content; *fdp gets
 * it opened read-only (to fix its attributes). */
static bool has_content(int dirfd, const char *name,
			const struct tree_change *c, int *fdp)
{
	struct wk_hash h;
	struct stat st;
	uint64_t size;
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != c->size)
		goto out_close;
	if (c->size > 0 &&
	    (content_hash_fd(fd, &h, &size) < 0 || size != c->size ||
	     memcmp(h.b, c->hash.b, sizeof(h.b)) != 0))
		goto out_close;
	*fdp = fd;
	return true;

out_close:
	close(fd);
	return false;
}

static int set_file_attrs(int fd, const struct tree_change *c)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, ns_to_ts(c->mtime_ns)};

	if (fchmod(fd, file_mode(c->mode)) < 0 || futimens(fd, ts) < 0)
		return -errno;
	return 0;
}

/* An fd with c's content: the store, else the caller's source. */
static int open_content(struct mat *m, const struct tree_change *c)
{
	int fd = mat_object_open(m, &c->hash);

	if (fd >= 0 || !m->source)
		return fd;
	return m->source(m->source_arg, c);
}

/* Fills the temporary tfd with c's content and checks it. */
static int fill_tmp(struct mat *m, const struct tree_change *c, int tfd)
{
	struct wk_hash h;
	uint64_t size;
	int src, rc;

	if (c->size == 0)
		return 0;
	src = open_content(m, c);
	if (src < 0)
		return src;
	rc = mat_copy_fd(src, tfd);
	close(src);
	if (rc == 0)
		rc = content_hash_fd(tfd, &h, &size);
	if (rc == 0 && (size != c->size || memcmp(h.b, c->hash.b, 16) != 0))
		rc = -EBADMSG;
	return rc;
}

/*
 * Writes c's content and attributes into a new temporary (not synced):
 * 0 and its name in tmp, or -errno (nothing left behind).
 */
static int write_tmp(struct mat *m, const struct tree_change *c, char tmp[64])
{
	int fd, rc;

	mat_tmpname(m, 'w', tmp);
	fd = openat(m->tmpfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = fill_tmp(m, c, fd);
	if (rc == 0)
		rc = set_file_attrs(fd, c);
	close(fd);
	if (rc < 0)
		unlinkat(m->tmpfd, tmp, 0);
	return rc;
}

/* ---- hard links ---- */

/*
 * A put names the node its file was a hard link of on its maker's replica
 * (struct tree_change.link).  The file is then made a link of that node's
 * file here instead of a copy, in one of two ways, and only when both
 * would hold exactly the same content, permission bits and mtime (shared
 * by a link): the WRITE of that node in the same batch (their temporaries
 * are one inode, so both renames land it), or the file the caller found
 * holding that content (link_path, link_ino), which the batch leaves with
 * c's mode and mtime (the caller checked; a SETATTR of it may come later
 * in the list, so the link sets them itself).  Anything else, and every
 * step run again by mat_recover() (the journal keeps no links), writes a
 * copy as for any other file: a link never costs content.
 */

static bool names_link(const struct tree_change *c)
{
	return c->kind == TREE_CH_WRITE && !c->conflict_copy &&
	       !wk_id_eq(c->link, WK_ID_NONE) &&
	       !wk_id_eq(c->link, WK_ID_ROOT) && !wk_id_eq(c->link, c->node);
}

/* True when a and b write one file's worth: what a link shares. */
static bool same_file(const struct tree_change *a, const struct tree_change *b)
{
	return a->size == b->size && a->mtime_ns == b->mtime_ns &&
	       file_mode(a->mode) == file_mode(b->mode) &&
	       memcmp(a->hash.b, b->hash.b, sizeof(a->hash.b)) == 0;
}

/*
 * c's link source (link_path) when it is still what the caller saw (a
 * regular file, inode link_ino, of c's size): true, its parent in *dirfd
 * (to close) and name in *name.
 */
static bool link_source(struct mat *m, const struct tree_change *c,
			int *dirfd, const char **name, struct stat *st)
{
	if (!names_link(c) || !c->link_path || !c->link_ino ||
	    mat_parent(m, c->link_path, false, dirfd, name) < 0)
		return false;
	if (fstatat(*dirfd, *name, st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st->st_mode) && st->st_ino == c->link_ino &&
	    (uint64_t)st->st_size == c->size)
		return true;
	close(*dirfd);
	return false;
}

/* c's mode and mtime on the regular file dirfd/name.  0 or -errno. */
static int set_attrs_at(struct mat *m, const struct tree_change *c, int dirfd,
			const char *name)
{
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int rc;

	(void)m;
	if (fd < 0)
		return -errno;
	rc = set_file_attrs(fd, c);
	close(fd);
	return rc;
}

static bool link_source_ok(struct mat *m, const struct tree_change *c)
{
	const char *name;
	struct stat st;
	int dirfd;

	if (!link_source(m, c, &dirfd, &name, &st))
		return false;
	close(dirfd);
	return true;
}

/*
 * Makes dirfd/name a hard link of c's link source: linked into a
 * temporary, then renamed over name like any WRITE.  0 when done (or
 * found done), 1 when there is no source to link (write a copy), -errno
 * when the rename into place failed.
 */
static int link_write(struct mat *m, const struct tree_change *c, int dirfd,
		      const char *name)
{
	struct stat st, dst, tst;
	const char *sname;
	char tmp[64];
	int sfd, rc;

	if (!link_source(m, c, &sfd, &sname, &st))
		return 1;
	if (fstatat(dirfd, name, &dst, AT_SYMLINK_NOFOLLOW) == 0 &&
	    dst.st_dev == st.st_dev && dst.st_ino == st.st_ino) {
		close(sfd);
		return set_attrs_at(m, c, dirfd, name);
	}
	mat_tmpname(m, 'w', tmp);
	/* No AT_SYMLINK_FOLLOW: the entry itself, checked above. */
	rc = linkat(sfd, sname, m->tmpfd, tmp, 0);
	close(sfd);
	if (rc < 0)
		return 1;
	if (fstatat(m->tmpfd, tmp, &tst, AT_SYMLINK_NOFOLLOW) < 0 ||
	    tst.st_dev != st.st_dev || tst.st_ino != st.st_ino ||
	    set_attrs_at(m, c, m->tmpfd, tmp) < 0) {
		unlinkat(m->tmpfd, tmp, 0);
		return 1;
	}
	rc = put_in_place(m->tmpfd, tmp, dirfd, name, true);
	if (rc == 0 && m->notify) /* its link count changed */
		m->notify(m->notify_arg, TREE_CH_SETATTR, c->link_path, NULL);
	return rc;
}

/*
 * prepared: the temporary prepare_writes() made durable for c, or "";
 * shared: that temporary is also another WRITE's (a link), so it goes
 * into place even where the name holds the content already.
 */
static int do_write(struct mat *m, const struct tree_change *c, int dirfd,
		    const char *name, const char *prepared, bool shared)
{
	char tmp[64];
	int fd, rc;

	if (!prepared[0] && c->link_path) {
		rc = link_write(m, c, dirfd, name);
		if (rc <= 0)
			return rc;
	}
	if (!shared && has_content(dirfd, name, c, &fd)) {
		if (prepared[0])
			unlinkat(m->tmpfd, prepared, 0);
		rc = set_file_attrs(fd, c);
		close(fd);
		return rc;
	}
	if (prepared[0]) {
		snprintf(tmp, sizeof(tmp), "%s", prepared);
	} else {
		rc = write_tmp(m, c, tmp);
		if (rc < 0)
			return rc;
		fd = openat(m->tmpfd, tmp, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -errno : mat_sync(m, fd) < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
		if (rc < 0) {
			unlinkat(m->tmpfd, tmp, 0);
			return rc;
		}
	}
	/* Replaces a file or a symlink (the link, not what it points to);
	 * a directory there fails with EISDIR. */
	return put_in_place(m->tmpfd, tmp, dirfd, name, true);
}

static bool is_link_to(int dirfd, const char *name, const char *target)
{
	char buf[WK_TARGET_MAX + 2];
	ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf));

	return n >= 0 && (size_t)n == strlen(target) &&
	       memcmp(buf, target, (size_t)n) == 0;
}

static int do_symlink(struct mat *m, const struct tree_change *c, int dirfd,
		      const char *name)
{
	size_t tl = strnlen(c->target, WK_TARGET_MAX + 1);
	char tmp[64];
	int rc;

	if (tl == 0 || tl > WK_TARGET_MAX)
		return -EINVAL;
	if (is_link_to(dirfd, name, c->target))
		return set_mtime_at(dirfd, name, c->mtime_ns);
	mat_tmpname(m, 'l', tmp);
	if (symlinkat(c->target, m->tmpfd, tmp) < 0)
		return -errno;
	rc = set_mtime_at(m->tmpfd, tmp, c->mtime_ns);
	if (rc < 0) {
		unlinkat(m->tmpfd, tmp, 0);
		return rc;
	}
	return put_in_place(m->tmpfd, tmp, dirfd, name, false);
}

static int do_mkdir(const struct tree_change *c, int dirfd, const char *name)
{
	struct stat st;

	/* Writable for the rest of the batch; the real mode comes last. */
	if (mkdirat(dirfd, name, (c->mode | 0700) & 07777) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode))
		return 0;
	return -EEXIST;
}

static int do_remove(const struct tree_change *c, int dirfd, const char *name)
{
	int flags = c->type == WK_KIND_DIR ? AT_REMOVEDIR : 0;

	if (unlinkat(dirfd, name, flags) == 0 || errno == ENOENT)
		return 0;
	return -errno;
}

static int do_setattr(const struct tree_change *c, int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return 0; /* with the other directories, at the end */
	if (!S_ISLNK(st.st_mode) &&
	    fchmodat(dirfd, name, file_mode(c->mode), AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return set_mtime_at(dirfd, name, c->mtime_ns);
}

static bool is_dir_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISDIR(st.st_mode);
}

/*
 * A directory moved onto a directory made at that name meanwhile (a local
 * mkdir the tree merges with it): its entries go into the other one, then
 * it goes.  An entry whose name is taken there stays (the changes after
 * this one name it anew), and so does the directory: -EEXIST.
 */
static int merge_dir(int sfd, const char *sname, int dfd, const char *dname)
{
	int from, to, rc = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	from = openat(sfd, sname,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (from < 0)
		return -errno;
	to = openat(dfd, dname,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (to < 0 || !(d = fdopendir(from))) {
		rc = -errno;
		close(from);
		goto out;
	}
	/* Names first: moving entries while reading the directory could
	 * skip some. */
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	for (size_t i = 0; i < n; i++) {
		int r = rename_noreplace(dirfd(d), names[i], to, names[i]);

		if (r && !rc)
			rc = r;
		free(names[i]);
	}
	free(names);
	closedir(d);
	if (!rc && unlinkat(sfd, sname, AT_REMOVEDIR) < 0)
		rc = -errno;
out:
	if (to >= 0)
		close(to);
	return rc;
}

static int do_rename(struct mat *m, const struct tree_change *c)
{
	const char *sname, *dname;
	int sfd, dfd, rc;

	rc = mat_parent(m, c->path, true, &sfd, &sname);
	if (rc < 0)
		return rc;
	rc = mat_parent(m, c->new_path, true, &dfd, &dname);
	if (rc < 0)
		goto out_close_src;
	fault_point("mat.before_rename");
	rc = rename_noreplace(sfd, sname, dfd, dname);
	if (rc == -EEXIST && c->type == WK_KIND_DIR &&
	    !mat_is_stage(c->new_path) && is_dir_at(sfd, sname) &&
	    is_dir_at(dfd, dname))
		rc = merge_dir(sfd, sname, dfd, dname);
	if (rc == 0)
		fault_point("mat.after_rename");
	else if ((rc == -ENOENT || rc == -EEXIST) && !exists_at(sfd, sname)) {
		/* Done before (the destination is there), or nothing to
		 * stage: a list run a second time. */
		if (exists_at(dfd, dname) || mat_is_stage(c->new_path))
			rc = 0;
		else
			rc = -ENOENT;
	}
	close(dfd);
out_close_src:
	close(sfd);
	return rc;
}

static int run_step(struct mat *m, const struct tree_change *c,
		    const char *prepared, bool shared)
{
	const char *name;
	int dirfd, rc;

	if (c->kind == TREE_CH_RENAME)
		return do_rename(m, c);
	rc = mat_parent(m, c->path, false, &dirfd, &name);
	if (rc < 0)
		return rc;
	switch (c->kind) {
	case TREE_CH_WRITE:
		rc = do_write(m, c, dirfd, name, prepared, shared);
		break;
	case TREE_CH_SYMLINK:
		rc = do_symlink(m, c, dirfd, name);
		break;
	case TREE_CH_MKDIR:
		rc = do_mkdir(c, dirfd, name);
		break;
	case TREE_CH_REMOVE:
		rc = do_remove(c, dirfd, name);
		break;
	case TREE_CH_SETATTR:
		rc = do_setattr(c, dirfd, name);
		break;
	default:
		rc = -EINVAL;
	}
	close(dirfd);
	return rc;
}

/* ---- the batch ---- */

static size_t lead_of(size_t *lead, size_t i)
{
	while (lead[i] != i)
		i = lead[i] = lead[lead[i]];
	return i;
}

/*
 * Groups the WRITEs from start on that are to be one file (names_link and
 * same_file, followed through every link): lead[i] is the first step of
 * i's group.  NULL when the batch names no link.
 */
static size_t *link_groups(const struct tree_changes *ch, size_t start)
{
	size_t *lead = NULL;

	for (size_t i = start; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];

		if (!names_link(c))
			continue;
		for (size_t j = start; j < ch->n; j++) {
			const struct tree_change *d = &ch->v[j];
			size_t a, b;

			if (j == i || d->kind != TREE_CH_WRITE ||
			    d->conflict_copy || !wk_id_eq(d->node, c->link) ||
			    !same_file(c, d))
				continue;
			if (!lead) {
				lead = xcalloc(ch->n + 1, sizeof(*lead));
				for (size_t k = 0; k < ch->n; k++)
					lead[k] = k;
			}
			a = lead_of(lead, i);
			b = lead_of(lead, j);
			if (a < b)
				lead[b] = a;
			else
				lead[a] = b;
		}
	}
	return lead;
}

/*
 * Writes the content of every file the batch puts (steps from start on)
 * to a temporary first and only then makes them durable, all at once
 * (mat_sync_many): one disk flush per batch instead of one per file, which
 * made a batch of thousands of small files slow.  A crash leaves only
 * temporaries, which mat_recover() removes.  prep[i] is step i's temporary, or
 * "" (the step then writes its own, as before).  A WRITE grouped with an
 * earlier one (link_groups) gets a hard link of that one's temporary
 * (shared[i], and shared[lead] too); one whose link source the caller
 * gave and still checks out gets none (do_write links it then).
 */
static void prepare_writes(struct mat *m, const struct tree_changes *ch,
			   size_t start, char (*prep)[64], bool *shared)
{
	size_t *lead = link_groups(ch, start);
	size_t n = 0;
	int rc;

	/* A group's first WRITE gets a temporary for the others to link. */
	for (size_t i = start; lead && i < ch->n; i++)
		if (lead_of(lead, i) != i)
			shared[lead_of(lead, i)] = true;
	for (size_t i = start; i < ch->n; i++) {
		size_t l = lead ? lead_of(lead, i) : i;

		prep[i][0] = '\0';
		if (ch->v[i].kind != TREE_CH_WRITE)
			continue;
		if (l != i && prep[l][0]) {
			mat_tmpname(m, 'w', prep[i]);
			if (linkat(m->tmpfd, prep[l], m->tmpfd, prep[i], 0) ==
			    0) {
				shared[i] = shared[l] = true;
				continue;
			}
		}
		if (l == i && !shared[i] && ch->v[i].link_path &&
		    link_source_ok(m, &ch->v[i]))
			continue;
		if (write_tmp(m, &ch->v[i], prep[i]) == 0)
			n++;
		else
			prep[i][0] = '\0';
	}
	free(lead);
	rc = n ? mat_sync_many(m, n) : 0;
	for (size_t i = start; i < ch->n && rc > 0 && !m->nosync; i++) {
		int fd;

		if (!prep[i][0])
			continue;
		fd = openat(m->tmpfd, prep[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0)
			rc = -errno;
		if (fd >= 0)
			close(fd);
	}
	if (rc >= 0)
		return;
	for (size_t i = start; i < ch->n; i++)
		if (prep[i][0]) {
			unlinkat(m->tmpfd, prep[i], 0);
			prep[i][0] = '\0';
			shared[i] = false;
		}
}

static void account(struct mat_result *res, int rc, const char *path)
{
	if (rc == 0) {
		res->done++;
		return;
	}
	res->failed++;
	if (res->first_err == 0) {
		res->first_err = rc;
		res->first_path = xstrdup(path);
	}
}

/* Modes and mtimes of directories, deepest (last created) first. */
static void finish_dirs(struct mat *m, const struct tree_changes *ch,
			struct mat_result *res)
{
	for (size_t i = ch->n; i-- > 0;) {
		const struct tree_change *c = &ch->v[i];
		const char *name;
		struct stat st;
		int dirfd, rc;

		if (c->type != WK_KIND_DIR ||
		    (c->kind != TREE_CH_MKDIR && c->kind != TREE_CH_SETATTR))
			continue;
		if (mat_parent(m, c->path, false, &dirfd, &name) < 0)
			continue; /* failed (and counted) as a step */
		rc = 0;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			; /* gone since, or failed as a step */
		else if (fchmodat(dirfd, name, c->mode & 07777,
				  AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		else
			rc = set_mtime_at(dirfd, name, c->mtime_ns);
		close(dirfd);
		if (rc < 0)
			account(res, rc, c->path);
	}
}

/* Puts back staged entries whose move out of staging failed. */
static void rescue_staged(struct mat *m, const struct tree_changes *ch,
			  struct mat_result *res)
{
	for (size_t i = 0; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];
		const char *sname, *name;
		int sfd, dirfd;

		if (c->kind != TREE_CH_RENAME || !mat_is_stage(c->new_path) ||
		    mat_is_stage(c->path))
			continue;
		if (mat_parent(m, c->new_path, true, &sfd, &sname) < 0)
			continue;
		if (!exists_at(sfd, sname))
			goto next;
		if (mat_parent(m, c->path, false, &dirfd, &name) == 0) {
			int rc = rename_noreplace(sfd, sname, dirfd, name);

			close(dirfd);
			if (rc == 0) {
				wk_warn("materialize: put %s back after a "
					"failed move",
					c->path);
				goto next;
			}
		}
		res->stranded++;
		wk_warn("materialize: %s is left in %s: its move failed",
			c->path, c->new_path);
	next:
		close(sfd);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return xstrndup(path, slash ? (size_t)(slash - path) : 0);
}

/* Makes every directory entry the batch touched durable. */
static int sync_dirs(struct mat *m, const struct tree_changes *ch)
{
	char **dirs = xmalloc((2 * ch->n + 1) * sizeof(*dirs));
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < ch->n; i++) {
		dirs[n++] = dir_of(ch->v[i].path);
		if (ch->v[i].new_path)
			dirs[n++] = dir_of(ch->v[i].new_path);
	}
	qsort(dirs, n, sizeof(*dirs), cmp_str);
	for (size_t i = 0; i < n; i++) {
		int fd;

		if (i > 0 && strcmp(dirs[i], dirs[i - 1]) == 0)
			continue;
		fd = mat_open_dir(m, dirs[i]);
		if (fd >= 0) {
			if (mat_sync(m, fd) < 0 && rc == 0)
				rc = -errno;
			close(fd);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	return rc;
}

int mat_run_batch(struct mat *m, const struct tree_changes *ch, uint64_t seq,
		  uint64_t tag, int jfd, size_t poff, size_t start,
		  struct mat_result *res)
{
	char jname[64], dname[64], (*prep)[64];
	bool *shared;
	int rc;

	prep = xcalloc(ch->n + 1, sizeof(*prep));
	shared = xcalloc(ch->n + 1, sizeof(*shared));
	prepare_writes(m, ch, start, prep, shared);
	for (size_t i = start; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];

		rc = run_step(m, c, prep[i], shared[i]);
		/* A failed write leaves its prepared temporary unused. */
		if (rc < 0 && prep[i][0])
			unlinkat(m->tmpfd, prep[i], 0);
		account(res, rc, c->path);
		if (rc < 0)
			wk_debug("materialize: change %zu (%d) %s: %s", i,
				 c->kind, c->path, strerror(-rc));
		else if (m->notify)
			m->notify(m->notify_arg, c->kind, c->path, c->new_path);
		/* Running a rename or remove again after later steps could
		 * move or delete what took the name since: its mark must
		 * reach the disk before the next step can. */
		if (pwrite(jfd, "\1", 1, (off_t)(poff + i)) != 1 ||
		    ((c->kind == TREE_CH_RENAME || c->kind == TREE_CH_REMOVE) &&
		     mat_datasync(m, jfd) < 0)) {
			rc = errno ? -errno : -EIO;
			wk_err("materialize: journal %" PRIu64 ": %s", seq,
			       strerror(-rc));
			for (size_t j = i + 1; j < ch->n; j++)
				if (prep[j][0])
					unlinkat(m->tmpfd, prep[j], 0);
			free(prep);
			free(shared);
			return rc;
		}
		fault_point("mat.mid_batch");
	}
	free(prep);
	free(shared);
	finish_dirs(m, ch, res);
	rescue_staged(m, ch, res);
	rc = sync_dirs(m, ch);
	if (rc < 0) {
		wk_err("materialize: syncing batch %" PRIu64 ": %s", seq,
		       strerror(-rc));
		return rc;
	}
	/* All marks durable: should the unlink below be lost, a replay
	 * only finishes the batch again. */
	if (mat_datasync(m, jfd) < 0)
		return -errno;
	fault_point("mat.before_finish");
	snprintf(jname, sizeof(jname), MAT_JOURNAL_PREFIX "%" PRIu64, seq);
	if (tag) {
		/* Kept, with its tag, until the caller has recorded the
		 * batch (mat_forget).  Should the rename be lost, a replay
		 * finishes the batch again and renames it then. */
		snprintf(dname, sizeof(dname), MAT_DONE_PREFIX "%" PRIu64, seq);
		if (res->tag < tag)
			res->tag = tag;
		return renameat(m->tmpfd, jname, m->tmpfd, dname) < 0 ? -errno
								      : 0;
	}
	if (unlinkat(m->tmpfd, jname, 0) < 0 || mat_sync(m, m->tmpfd) < 0)
		return -errno;
	return 0;
}

/* Writes the journal of batch seq durably; the open fd or -errno. */
static int write_journal(struct mat *m, uint64_t seq, uint64_t tag,
			 const struct tree_changes *ch, size_t *poff)
{
	char tmp[64], jname[64];
	uint8_t *buf;
	size_t len, off = 0;
	int fd, rc;

	rc = mat_journal_encode(seq, tag, ch, &buf, &len, poff);
	if (rc < 0)
		return rc;
	mat_tmpname(m, 'j', tmp);
	fd = openat(m->tmpfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out_free;
	}
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out_unlink;
		}
		off += (size_t)n;
	}
	snprintf(jname, sizeof(jname), MAT_JOURNAL_PREFIX "%" PRIu64, seq);
	if (mat_sync(m, fd) < 0 ||
	    renameat(m->tmpfd, tmp, m->tmpfd, jname) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	if (mat_sync(m, m->tmpfd) < 0) {
		rc = -errno;
		unlinkat(m->tmpfd, jname, 0);
		close(fd);
		goto out_free;
	}
	free(buf);
	return fd;

out_unlink:
	unlinkat(m->tmpfd, tmp, 0);
	close(fd);
out_free:
	free(buf);
	return rc;
}

/* The engine's staging name, made unique to batch seq. */
static char *stage_unique(const char *path, uint64_t seq)
{
	size_t l = strlen(MAT_STAGE_PREFIX);

	if (strncmp(path, MAT_STAGE_PREFIX, l) != 0)
		return xstrdup(path);
	return xasprintf(MAT_STAGE_PREFIX "%" PRIu64 "-%s", seq, path + l);
}

static bool shape_ok(const struct tree_change *c)
{
	if (c->kind < TREE_CH_REMOVE || c->kind > TREE_CH_SETATTR ||
	    c->type < WK_KIND_FILE || c->type > WK_KIND_SYMLINK || !c->path)
		return false;
	if (c->kind == TREE_CH_RENAME && !c->new_path)
		return false;
	return c->kind != TREE_CH_SYMLINK || c->target;
}

int mat_apply(struct mat *m, const struct tree_changes *ch, uint64_t tag,
	      struct mat_result *res)
{
	struct tree_changes own;
	uint64_t seq = m->seq;
	size_t poff;
	int jfd, rc;

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < ch->n; i++)
		if (!shape_ok(&ch->v[i]))
			return -EINVAL;
	tree_changes_init(&own);
	own.v = xcalloc(ch->n + 1, sizeof(*own.v));
	own.alloc = ch->n + 1;
	for (size_t i = 0; i < ch->n; i++) {
		struct tree_change *c = &own.v[own.n++];

		*c = ch->v[i];
		c->path = stage_unique(ch->v[i].path, seq);
		if (c->new_path)
			c->new_path = stage_unique(c->new_path, seq);
		if (c->target)
			c->target = xstrdup(c->target);
		if (c->link_path)
			c->link_path = xstrdup(c->link_path);
	}
	m->seq++;
	jfd = write_journal(m, seq, tag, &own, &poff);
	if (jfd < 0) {
		rc = jfd;
		goto out_release;
	}
	fault_point("mat.after_journal");
	rc = mat_run_batch(m, &own, seq, tag, jfd, poff, 0, res);
	close(jfd);
out_release:
	tree_changes_release(&own);
	return rc;
}

bool mat_ready(struct mat *m, const struct tree_changes *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];
		int fd;

		if (c->kind != TREE_CH_WRITE || c->size == 0 ||
		    mat_object_have(m, &c->hash))
			continue;
		if (!m->source)
			return false;
		fd = m->source(m->source_arg, c);
		if (fd < 0)
			return false;
		close(fd);
	}
	return true;
}

void mat_result_release(struct mat_result *res)
{
	free(res->first_path);
	memset(res, 0, sizeof(*res));
}
