/*
 * ops_ns.c - FUSE handlers that change or read the namespace: lookup,
 * mkdir, mknod, symlink, link, unlink, rmdir, rename, readdir.
 *
 * Each handler does the syscall on the backing directory first and records
 * the op only when it succeeded; the recorder's lock is never held across a
 * syscall or a reply.  DIR/.wkfs does not exist as far as the mount is
 * concerned: lookups fail with ENOENT and attempts to create it with EPERM.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "caller.h"
#include "content.h"
#include "hlc.h"
#include "ops_common.h"
#include "scan.h"
#include "wlog.h"
#include "xalloc.h"

bool is_sidecar(struct wkfs *fs, fuse_ino_t parent, const char *name)
{
	return inode_get(fs, parent) == &fs->root && strcmp(name, ".wkfs") == 0;
}

static int lookup_once(struct wkfs *fs, fuse_ino_t parent, const char *name,
		       struct fuse_entry_param *e)
{
	struct finode *p = inode_get(fs, parent), *in;
	int rc;

	memset(e, 0, sizeof(*e));
	if (is_sidecar(fs, parent, name))
		return -ENOENT;
	rc = inode_lookup(fs, p, name, &e->attr, &in);
	if (rc)
		return rc;
	pthread_mutex_lock(&fs->ilock);
	bool untracked = wk_id_eq(in->node, WK_ID_NONE);
	pthread_mutex_unlock(&fs->ilock);
	if (untracked) {
		struct nnode *pn, *n = NULL;

		rec_lock(fs->rec);
		pn = inode_node_l(fs, p);
		if (pn)
			n = nindex_child(rec_index(fs->rec), pn, name);
		if (n) {
			pthread_mutex_lock(&fs->ilock);
			in->node = n->id;
			pthread_mutex_unlock(&fs->ilock);
		}
		rec_unlock(fs->rec);
	}
	e->ino = (uintptr_t)in;
	e->attr_timeout = fs->timeout;
	e->entry_timeout = fs->timeout;
	return 0;
}

/*
 * True when what the lookup found was unlinked or moved by a remote batch
 * that ran meanwhile (it may wait for the recorder's lock, which a batch
 * holds): the name holds something else now, and the kernel would cache
 * the old inode for as long as the entry timeout; and the finode's place,
 * set by the lookup, would lead nowhere.  gen: the batch generation before.
 */
static bool lookup_stale(struct wkfs *fs, const struct fuse_entry_param *e,
			 uint64_t gen)
{
	struct finode *in = inode_get(fs, e->ino);
	bool replaced;

	pthread_mutex_lock(&fs->ilock);
	replaced = in->replaced;
	pthread_mutex_unlock(&fs->ilock);
	if (replaced)
		return true;
	if (!(gen & 1) && apply_batch_gen(fs) == gen)
		return false;
	return !inode_placed(fs, in);
}

int do_lookup(struct wkfs *fs, fuse_ino_t parent, const char *name,
	      struct fuse_entry_param *e)
{
	for (int tries = 0;; tries++) {
		uint64_t gen = apply_batch_gen(fs);
		int rc = lookup_once(fs, parent, name, e);

		/* A batch per try: a few tries are plenty. */
		if (rc || tries == 8 || !lookup_stale(fs, e, gen))
			return rc;
		inode_forget(fs, inode_get(fs, e->ino), 1);
	}
}

static void wkfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	int rc = do_lookup(fs, parent, name, &e);

	if (rc == -ENOENT) {
		/* A negative entry, cached like a positive one. */
		e.ino = 0;
		e.entry_timeout = fs->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_entry(req, &e);
}

/* True (once) when parent/name is the name a tracked file that rules
 * match was last renamed away from.  Recorder lock held. */
static bool take_vacated_l(struct wkfs *fs, struct nnode *parent,
			   const char *name)
{
	if (!fs->vacated_name[0] || !wk_id_eq(fs->vacated_parent, parent->id) ||
	    strcmp(fs->vacated_name, name) != 0)
		return false;
	fs->vacated_name[0] = '\0';
	return true;
}

/*
 * A create op carries no mtime: every other replica shows the op's time
 * (its hlc, in ms).  So does this one, or a file created and never
 * written, or a symlink, would show another mtime here than everywhere
 * else.  Sets it on the new entry before the kernel hears of it.
 */
static void show_creation_time(struct wkfs *fs, struct finode *p,
			       const char *name, struct fuse_entry_param *e,
			       struct finode *in, uint64_t ms)
{
	struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT},
				 {.tv_sec = (time_t)(ms / 1000),
				  .tv_nsec = (long)(ms % 1000) * 1000000}};
	int64_t now = ts_ns(&e->attr.st_mtim);
	int pfd, rc;

	/* The clock runs ahead only after a remote op from a clock ahead
	 * of ours: then keep the real time rather than one in the future. */
	if (llabs((int64_t)ms * 1000000 - now) > 1000000000LL)
		return;
	pfd = inode_fd(fs, p);
	if (pfd < 0)
		return;
	rc = utimensat(pfd, name, tv, AT_SYMLINK_NOFOLLOW);
	inode_unfd(fs, p);
	if (rc < 0)
		return;
	e->attr.st_mtim = tv[1];
	pthread_mutex_lock(&fs->ilock);
	in->kmtime_ns = (int64_t)ms * 1000000;
	pthread_mutex_unlock(&fs->ilock);
}

/* Records a new name under parent (file, directory or symlink) and ties the
 * finode of e to its node. */
void record_new(struct wkfs *fs, fuse_ino_t parent, const char *name,
		struct fuse_entry_param *e, const char *target)
{
	struct finode *p = inode_get(fs, parent);
	struct finode *in = inode_get(fs, e->ino);
	enum wk_kind kind = S_ISDIR(e->attr.st_mode)   ? WK_KIND_DIR
			    : S_ISLNK(e->attr.st_mode) ? WK_KIND_SYMLINK
			    : S_ISREG(e->attr.st_mode) ? WK_KIND_FILE
						       : 0;
	struct nnode *pn, *n = NULL;
	uint64_t created_ms;
	int rc;

	if (!kind)
		return;
	rec_lock(fs->rec);
	/* A remote batch (which holds this lock) replaced what the syscall
	 * made: the name holds the batch's entry now, not ours to record. */
	pthread_mutex_lock(&fs->ilock);
	bool gone = in->replaced;
	pthread_mutex_unlock(&fs->ilock);
	if (gone)
		goto out;
	pn = inode_node_l(fs, p);
	if (!pn)
		goto out;
	n = nindex_child(rec_index(fs->rec), pn, name);
	/* Rules judge new names only; a name still tracked stays so, and
	 * so does one an editor just renamed a tracked file away from to
	 * write the file anew (see vacated in fs.h). */
	if (!n && rec_ignored_l(fs->rec, pn, name, kind == WK_KIND_DIR) &&
	    !take_vacated_l(fs, pn, name))
		goto out;
	if (n) {
		/* The syscall made the name, so DIR had nothing there: the
		 * index is out of line with DIR.  What it showed may live on
		 * elsewhere; never record a remove nobody made (for a
		 * directory, of everything below it). */
		char path[4096] = "?";

		nindex_path(n, path, sizeof(path));
		wk_warn("%s was in the index but not in the folder; left to"
			" the other replicas, not removed",
			path);
		rec_forget_l(fs->rec, n);
		n = NULL;
	}
	rc = rec_create_l(fs->rec, pn, name, kind, e->attr.st_mode,
			  e->attr.st_ino, target, &n);
	if (rc) {
		wk_warn("cannot record %s: %s", name, strerror(-rc));
		n = NULL;
	}
out:
	if (n) {
		pthread_mutex_lock(&fs->ilock);
		in->node = n->id;
		pthread_mutex_unlock(&fs->ilock);
	}
	created_ms = n && kind != WK_KIND_DIR ? hlc_ms(n->id.hlc) : 0;
	rec_unlock(fs->rec);
	if (created_ms)
		show_creation_time(fs, p, name, e, in, created_ms);
}

static void reply_new(fuse_req_t req, struct wkfs *fs, fuse_ino_t parent,
		      const char *name, const char *target)
{
	struct fuse_entry_param e;
	int rc = do_lookup(fs, parent, name, &e);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	record_new(fs, parent, name, &e, target);
	fuse_reply_entry(req, &e);
}

/* What make_as makes. */
enum make_kind { MAKE_DIR, MAKE_NODE, MAKE_SYMLINK };

/* Makes name in pfd (the parent's fd, the mount's, taken before) as the
 * caller (caller.h): a directory or node of mode (rdev), or a symlink to
 * link.  0, or -1 with errno, as WITH_FD expects. */
static int make_as(fuse_req_t req, int pfd, const char *name,
		   enum make_kind kind, mode_t mode, dev_t rdev,
		   const char *link)
{
	struct caller c;
	int rc = caller_begin(req, &c, kind == MAKE_SYMLINK ? NULL : &mode);

	if (!rc) {
		if ((kind == MAKE_DIR	 ? mkdirat(pfd, name, mode)
		     : kind == MAKE_NODE ? mknodat(pfd, name, mode, rdev)
					 : symlinkat(link, pfd, name)) < 0)
			rc = -errno;
		caller_end(&c);
	}
	if (!rc)
		return 0;
	errno = -rc;
	return -1;
}

static void named_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int rc;

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = WITH_FD(fs, parent, pfd,
		     make_as(req, pfd, name, MAKE_DIR, mode, 0, NULL));
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_new(req, fs, parent, name, NULL);
}

static void named_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int rc;

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = WITH_FD(fs, parent, pfd,
		     make_as(req, pfd, name, MAKE_NODE, mode, rdev, NULL));
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_new(req, fs, parent, name, NULL);
}

static void named_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int rc;

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = WITH_FD(fs, parent, pfd,
		     make_as(req, pfd, name, MAKE_SYMLINK, 0, 0, link));
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_new(req, fs, parent, name, link);
}

/* Records parent/name, which link() made, as a new node of kind (target:
 * a symlink's), unless the name is untracked or the index holds it; the
 * node, or NULL.  Recorder lock held. */
static struct nnode *record_link_l(struct wkfs *fs, fuse_ino_t parent,
				   const char *name,
				   const struct fuse_entry_param *e,
				   enum wk_kind kind, const char *target)
{
	struct nnode *pn = inode_node_l(fs, inode_get(fs, parent)), *n = NULL;

	if (!pn || rec_ignored_l(fs->rec, pn, name, false) ||
	    nindex_child(rec_index(fs->rec), pn, name) ||
	    rec_create_l(fs->rec, pn, name, kind, e->attr.st_mode,
			 e->attr.st_ino, target, &n) != 0)
		return NULL;
	return n;
}

static void named_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent,
		       const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct finode *in = inode_get(fs, ino);
	struct fuse_entry_param e;
	char proc[64];
	int fd, rc;

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fd = inode_fd(fs, in);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rc = WITH_FD(fs, parent, pfd,
		     linkat(AT_FDCWD, proc, pfd, name, AT_SYMLINK_FOLLOW));
	if (!rc)
		rc = do_lookup(fs, parent, name, &e);
	if (rc) {
		inode_unfd(fs, in);
		fuse_reply_err(req, -rc);
		return;
	}
	/* The new name is a new node with the same content (create, then a
	 * put naming the node of the file it links, when tracked, so that
	 * other replicas make it a link too: docs/architecture.md, "Hard
	 * links"); the put also when the file is empty, for its mtime and
	 * the link.  A link to a symlink is a symlink with the same target
	 * and the linked inode's mtime on other replicas (a link group of
	 * symlinks is not replicated). */
	if (S_ISREG(e.attr.st_mode)) {
		struct nnode *n, *src;

		rec_lock(fs->rec);
		src = inode_node_l(fs, in);
		n = record_link_l(fs, parent, name, &e, WK_KIND_FILE, NULL);
		if (n) {
			int rfd = open(proc, O_RDONLY | O_CLOEXEC);

			if (rfd >= 0)
				rec_put_link_l(fs->rec, n, rfd, NULL, 0, 0,
					       src);
		}
		rec_unlock(fs->rec);
	} else if (S_ISLNK(e.attr.st_mode)) {
		char target[WK_TARGET_MAX + 1];
		ssize_t len = readlinkat(fd, "", target, sizeof(target));
		struct nnode *n;

		if (len > 0 && (size_t)len < sizeof(target)) {
			target[len] = '\0';
			rec_lock(fs->rec);
			n = record_link_l(fs, parent, name, &e, WK_KIND_SYMLINK,
					  target);
			if (n)
				rec_setattr_l(fs->rec, n, WK_ATTR_MTIME, 0,
					      ts_ns(&e.attr.st_mtim));
			rec_unlock(fs->rec);
		}
	}
	inode_unfd(fs, in);
	fuse_reply_entry(req, &e);
}

/* ---- merged directories ---------------------------------------------- */

/*
 * Directories two replicas created at one place concurrently are merged
 * by the tree: one directory in DIR and in the index, several nodes in the
 * tree (tree.h: tree_dir_members).  A remove or move recorded for the
 * index's node alone would leave the others live, so the directory would
 * stay (or come back) at its old place everywhere.  The helpers below act
 * on every member.  Recorder lock held throughout.
 */
#define MEMBERS_MAX 64

/* The members merged with directory n other than n itself, into ids
 * (at most MEMBERS_MAX); how many. */
static size_t other_members_l(struct wkfs *fs, struct nnode *n,
			      struct wk_id *ids)
{
	struct wk_id all[MEMBERS_MAX];
	size_t k = 0;
	int m;

	if (n->kind != WK_KIND_DIR || nnode_is_copy(n))
		return 0;
	m = apply_dir_members_l(fs->apply, n, all, MEMBERS_MAX);
	if (m > MEMBERS_MAX) {
		wk_warn("%s: merged from %d directories; only %d follow",
			n->name, m, MEMBERS_MAX);
		m = MEMBERS_MAX;
	}
	for (int i = 0; i < m; i++)
		if (!wk_id_eq(all[i], n->id))
			ids[k++] = all[i];
	return k;
}

/* Records the removal of n and, for a merged directory, of every member. */
static void remove_all_l(struct wkfs *fs, struct nnode *n)
{
	struct wk_id ids[MEMBERS_MAX];
	size_t k = other_members_l(fs, n, ids);
	struct nnode *parent = n->parent;
	char name[WK_NAME_MAX + 1];

	snprintf(name, sizeof(name), "%s", n->name);
	if (rec_remove_l(fs->rec, n) != 0)
		return;
	for (size_t i = 0; i < k; i++)
		rec_remove_member_l(fs->rec, ids[i], parent, name);
}

/* Records the move of n to parent/name and, for a merged directory, of
 * every member (they merge again there). */
static int move_all_l(struct wkfs *fs, struct nnode *n, struct nnode *parent,
		      const char *name)
{
	struct wk_id ids[MEMBERS_MAX];
	size_t k = other_members_l(fs, n, ids);
	struct nnode *from = n->parent;
	char from_name[WK_NAME_MAX + 1];
	int rc;

	snprintf(from_name, sizeof(from_name), "%s", n->name);
	rc = rec_move_l(fs->rec, n, parent, name);
	if (rc)
		return rc;
	for (size_t i = 0; i < k; i++)
		rec_move_member_l(fs->rec, ids[i], from, from_name, parent,
				  name);
	return 0;
}

void setattr_all_l(struct wkfs *fs, struct nnode *n, uint32_t attrs,
		   uint32_t mode, int64_t mtime_ns)
{
	struct wk_id ids[MEMBERS_MAX];
	size_t k = other_members_l(fs, n, ids);

	rec_setattr_l(fs->rec, n, attrs, mode, mtime_ns);
	for (size_t i = 0; i < k; i++)
		rec_setattr_member_l(fs->rec, ids[i], n->parent, n->name, attrs,
				     mode, mtime_ns);
}

/* Records the removal of parent/name, if it is tracked. */
static void record_remove(struct wkfs *fs, fuse_ino_t parent, const char *name)
{
	struct nnode *pn, *n;

	rec_lock(fs->rec);
	pn = inode_node_l(fs, inode_get(fs, parent));
	n = pn ? nindex_child(rec_index(fs->rec), pn, name) : NULL;
	if (n)
		remove_all_l(fs, n);
	rec_unlock(fs->rec);
}

/* unlinkat(2) of name in parent, the inode table kept right. */
static int unlink_in(struct wkfs *fs, fuse_ino_t parent, const char *name,
		     int flags)
{
	struct finode *p = inode_get(fs, parent);
	int pfd = inode_fd(fs, p), rc;

	if (pfd < 0)
		return pfd;
	rc = inode_unlinkat(fs, p, pfd, name, flags);
	inode_unfd(fs, p);
	return rc;
}

static void named_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int rc;

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	rc = unlink_in(fs, parent, name, 0);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	record_remove(fs, parent, name);
	fuse_reply_err(req, 0);
}

static void named_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int rc;

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	rc = unlink_in(fs, parent, name, AT_REMOVEDIR);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	record_remove(fs, parent, name);
	fuse_reply_err(req, 0);
}

/* Ties the finode now at parent/name (if the kernel knows it) to n. */
static void retie(struct wkfs *fs, struct finode *parent, const char *name,
		  struct nnode *n)
{
	struct finode *in;
	struct stat st;
	int pfd = inode_fd(fs, parent), rc;

	if (pfd < 0)
		return;
	rc = fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW);
	inode_unfd(fs, parent);
	if (rc < 0)
		return;
	in = inode_find(fs, st.st_dev, st.st_ino);
	if (!in)
		return;
	pthread_mutex_lock(&fs->ilock);
	in->node = n ? n->id : WK_ID_NONE;
	pthread_mutex_unlock(&fs->ilock);
}

/* Ties the finode of the file st (if the kernel knows it) to a node with
 * its inode number, if one has it. */
static void retie_ino(struct wkfs *fs, const struct stat *st)
{
	struct finode *in = inode_find(fs, st->st_dev, st->st_ino);

	if (!in)
		return;
	rec_lock(fs->rec);
	inode_retie_l(fs, in);
	rec_unlock(fs->rec);
}

/* The content now at a renamed name, read before taking the recorder's
 * lock: a hash for a small file, a descriptor to hash later for a big one;
 * fd -2 when it is not a regular file. */
struct pre_content {
	int fd;
	struct wk_hash hash;
	uint64_t size;
	int64_t mtime;
	mode_t mode;
	ino_t ino;
};

static void read_content(int dirfd, const char *name, struct pre_content *pre)
{
	struct stat st;
	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	pre->fd = -2;
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	pre->mtime = ts_ns(&st.st_mtim);
	pre->mode = st.st_mode;
	pre->ino = st.st_ino;
	pre->fd = fd;
	if (st.st_size <= (1 << 20) &&
	    content_hash_fd(fd, &pre->hash, &pre->size) == 0) {
		close(fd);
		pre->fd = -1;
	}
}

static void record_rename(struct wkfs *fs, fuse_ino_t parent, const char *name,
			  fuse_ino_t newparent, const char *newname,
			  unsigned int flags, struct pre_content *pre)
{
	struct finode *op = inode_get(fs, parent);
	struct finode *np = inode_get(fs, newparent);
	struct recorder *r = fs->rec;
	struct nnode *opn, *npn, *src = NULL, *dst = NULL, *moved = NULL;
	bool dir_src, src_ruled, track;

	rec_lock(r);
	opn = inode_node_l(fs, op);
	npn = inode_node_l(fs, np);
	if (opn)
		src = nindex_child(rec_index(r), opn, name);
	if (npn)
		dst = nindex_child(rec_index(r), npn, newname);

	if (flags & RENAME_EXCHANGE) {
		/* Two moves through a name no replica will ever show: the
		 * merge orders them, so both land where the kernel put
		 * them. */
		if (src && dst && npn && opn) {
			char tmp[64];

			snprintf(tmp, sizeof(tmp), ".wkfs-exchange-%016llx",
				 (unsigned long long)src->id.hlc);
			move_all_l(fs, src, npn, tmp);
			move_all_l(fs, dst, opn, name);
			move_all_l(fs, src, npn, newname);
		} else {
			/* Tracked on one side only: the other side's name
			 * changes its status; rescan both names. */
			if (src)
				remove_all_l(fs, src);
			if (dst)
				remove_all_l(fs, dst);
			if (opn && !rec_ignored_l(r, opn, name, false))
				scan_import_l(r, fs->rootfd, opn, name, NULL);
			if (npn && !rec_ignored_l(r, npn, newname, false))
				scan_import_l(r, fs->rootfd, npn, newname,
					      &moved);
		}
		rec_unlock(r);
		if (moved)
			retie(fs, np, newname, moved);
		return;
	}

	/* A renamed conflict copy, or one an atomic save replaces, becomes
	 * a file of its own first (docs/merge.md). */
	if (src && nnode_is_copy(src) &&
	    !(dst && dst != src && dst->kind == WK_KIND_FILE))
		rec_promote_l(r, &src);
	if (dst && dst != src && nnode_is_copy(dst) &&
	    (src ? src->kind == WK_KIND_FILE : pre->fd != -2))
		rec_promote_l(r, &dst);
	dir_src = src ? src->kind == WK_KIND_DIR : false;
	if (dst && dst != src && dst->kind == WK_KIND_FILE && pre->fd != -2 &&
	    (!src || src->kind == WK_KIND_FILE)) {
		/* An atomic save (write a temporary, rename it over the
		 * file): the file keeps its identity and gets new content,
		 * so a concurrent edit elsewhere meets it as an edit.  The
		 * temporary may be untracked (a name rules match). */
		mode_t mode = src ? src->mode : pre->mode & 07777;

		if (mode != dst->mode)
			rec_setattr_l(r, dst, WK_ATTR_MODE, mode, 0);
		rec_put_l(r, dst, pre->fd, &pre->hash, pre->size, pre->mtime);
		pre->fd = -1;
		/* The file lives on the temporary's inode now.  Left at the
		 * old number, the index would give the node to whatever file
		 * gets that number next (inode_node_l's hard-link rule). */
		dst->ino = pre->ino;
		if (src)
			rec_remove_l(r, src);
		rec_unlock(r);
		retie(fs, np, newname, dst);
		return;
	}
	/* Rules judge new names only: a node they match already (tracked
	 * from before the rule) keeps being tracked wherever it goes, and a
	 * name that was tracked takes what replaces it. */
	src_ruled = src && rec_ignored_l(r, opn, name, dir_src);
	track = npn && ((dst && dst != src) || src_ruled ||
			!rec_ignored_l(r, npn, newname, dir_src));
	if (src_ruled && src->kind == WK_KIND_FILE) {
		fs->vacated_parent = opn->id;
		snprintf(fs->vacated_name, sizeof(fs->vacated_name), "%s",
			 name);
	}
	if (dst && dst != src)
		remove_all_l(fs, dst); /* an empty directory, or a file */
	if (!track) {
		/* Into an untracked place: gone as far as replicas care. */
		if (src)
			remove_all_l(fs, src);
		moved = NULL;
	} else if (src) {
		move_all_l(fs, src, npn, newname);
		moved = src;
	} else {
		/* From an ignored name to a synced one: new, with content. */
		scan_import_l(r, fs->rootfd, npn, newname, &moved);
	}
	rec_unlock(r);
	retie(fs, np, newname, moved);
}

static void named_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	struct wkfs *fs = fuse_req_userdata(req);

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (is_sidecar(fs, newparent, newname)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	struct finode *op = inode_get(fs, parent);
	struct finode *np = inode_get(fs, newparent);
	struct pre_content pre = {.fd = -2};
	struct stat replaced;
	bool had_dst;
	int opfd, npfd, rc;

	opfd = inode_fd(fs, op);
	if (opfd < 0) {
		fuse_reply_err(req, -opfd);
		return;
	}
	npfd = inode_fd(fs, np);
	if (npfd < 0) {
		inode_unfd(fs, op);
		fuse_reply_err(req, -npfd);
		return;
	}
	/* What the rename replaces: its finode must stop speaking for the
	 * node (the kernel still sends it late setattrs). */
	had_dst = !(flags & RENAME_EXCHANGE) &&
		  fstatat(npfd, newname, &replaced, AT_SYMLINK_NOFOLLOW) == 0;
	rc = inode_renameat(fs, op, opfd, name, np, npfd, newname, flags);
	if (rc) {
		inode_unfd(fs, np);
		inode_unfd(fs, op);
		fuse_reply_err(req, -rc);
		return;
	}
	if (had_dst) {
		struct finode *old =
			inode_find(fs, replaced.st_dev, replaced.st_ino);

		if (old) {
			pthread_mutex_lock(&fs->ilock);
			old->node = WK_ID_NONE;
			pthread_mutex_unlock(&fs->ilock);
		}
	}
	/* Only a rename over a file can be an atomic save that needs the
	 * new content (see record_rename). */
	if (had_dst && S_ISREG(replaced.st_mode))
		read_content(npfd, newname, &pre);
	inode_unfd(fs, np);
	inode_unfd(fs, op);
	record_rename(fs, parent, name, newparent, newname, flags, &pre);
	if (pre.fd >= 0)
		close(pre.fd);
	/* A file with other names lives on: its finode speaks for one of
	 * them from now on (the node at newname may be the one it spoke
	 * for, now holding the new content: an atomic save). */
	if (had_dst && replaced.st_nlink > 1)
		retie_ino(fs, &replaced);
	fuse_reply_err(req, 0);
}

/* ---- directories ------------------------------------------------------ */

struct dirh {
	DIR *dp;
	off_t offset;
	struct dirent *entry;
};

static void wkfs_opendir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct finode *in = inode_get(fs, ino);
	struct dirh *d;
	int ifd = inode_fd(fs, in), fd, err;

	if (ifd < 0) {
		fuse_reply_err(req, -ifd);
		return;
	}
	fd = openat(ifd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = errno;
	inode_unfd(fs, in);
	if (fd < 0) {
		fuse_reply_err(req, err);
		return;
	}
	d = xcalloc(1, sizeof(*d));
	d->dp = fdopendir(fd);
	if (!d->dp) {
		err = errno;
		close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)d;
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

/*
 * Plain readdir only: with readdirplus the kernel has every entry looked
 * up (a statx and a finode each), which a find that only wants names and
 * types pays for a million times; ls -l pays per file either way (its
 * xattr calls go to us one by one).  wkfs_init() turns it off.
 */
static void wkfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			 off_t offset, struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	bool at_root = inode_get(fs, ino) == &fs->root;
	char *buf = xcalloc(1, size), *p = buf;
	size_t rem = size;
	int err = 0;

	if (offset != d->offset) {
		seekdir(d->dp, offset);
		d->entry = NULL;
		d->offset = offset;
	}
	for (;;) {
		struct stat st;
		size_t used;
		off_t next;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		next = d->entry->d_off;
		if (!(at_root && strcmp(d->entry->d_name, ".wkfs") == 0)) {
			memset(&st, 0, sizeof(st));
			st.st_ino = d->entry->d_ino;
			st.st_mode = d->entry->d_type << 12;
			used = fuse_add_direntry(req, p, rem, d->entry->d_name,
						 &st, next);
			if (used > rem)
				break;
			p += used;
			rem -= used;
		}
		d->entry = NULL;
		d->offset = next;
	}
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void wkfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi)
{
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;

	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void wkfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
			  struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct dirh *d = (struct dirh *)(uintptr_t)fi->fh;
	int rc = datasync ? fdatasync(dirfd(d->dp)) : fsync(dirfd(d->dp));

	if (rc == 0)
		rec_flush(fs->rec, true);
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

/* The handlers that change names, each under fs->nslock (fs.h). */
static void wkfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_mkdir(req, parent, name, mode);
	pthread_rwlock_unlock(&fs->nslock);
}

static void wkfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, dev_t rdev)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_mknod(req, parent, name, mode, rdev);
	pthread_rwlock_unlock(&fs->nslock);
}

static void wkfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			 const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_symlink(req, link, parent, name);
	pthread_rwlock_unlock(&fs->nslock);
}

static void wkfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent,
		      const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_link(req, ino, parent, name);
	pthread_rwlock_unlock(&fs->nslock);
}

static void wkfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_unlink(req, parent, name);
	pthread_rwlock_unlock(&fs->nslock);
}

static void wkfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_rmdir(req, parent, name);
	pthread_rwlock_unlock(&fs->nslock);
}

static void wkfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_rename(req, parent, name, newparent, newname, flags);
	pthread_rwlock_unlock(&fs->nslock);
}

void ops_ns_fill(struct fuse_lowlevel_ops *o)
{
	o->lookup = wkfs_lookup;
	o->mkdir = wkfs_mkdir;
	o->mknod = wkfs_mknod;
	o->symlink = wkfs_symlink;
	o->link = wkfs_link;
	o->unlink = wkfs_unlink;
	o->rmdir = wkfs_rmdir;
	o->rename = wkfs_rename;
	o->opendir = wkfs_opendir;
	o->readdir = wkfs_readdir;
	o->releasedir = wkfs_releasedir;
	o->fsyncdir = wkfs_fsyncdir;
}
