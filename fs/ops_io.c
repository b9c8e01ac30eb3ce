/*
 * ops_io.c - FUSE handlers for attributes and file contents, and the
 * handler table.
 *
 * A file's content is recorded once per close, not per write(): writes only
 * mark the finode dirty, and flush (every close(2)), release and fsync turn
 * a dirty finode into one put.  The hash is computed by the recorder's
 * thread from a descriptor handed over here, so close does not wait for it;
 * fsync does, since it promises the op is on disk too.
 *
 * Locks (flock, POSIX) are left to the kernel: every process that can reach
 * the files goes through this one mount, so local locking is complete.
 */
#include "fs.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "apply.h"
#include "caller.h"
#include "content.h"
#include "fault.h"
#include "ops_common.h"
#include "wlog.h"

#define MAX_WRITE     (1 << 20)
#define SYNC_HASH_MAX (1 << 20)

static void proc_path(char buf[64], int fd)
{
	snprintf(buf, 64, "/proc/self/fd/%d", fd);
}

static void mark_dirty(struct wkfs *fs, struct finode *in)
{
	pthread_mutex_lock(&fs->ilock);
	in->dirty = true;
	in->wrote = true;
	in->kernel_mtime = fs->writeback;
	pthread_mutex_unlock(&fs->ilock);
}

/*
 * A setattr changed in's size.  A truncation to 0 by path while the file
 * is open for writing is how open(O_TRUNC) arrives (no atomic O_TRUNC,
 * see wkfs_init): like the O_TRUNC it stands for, it makes the release
 * record a put, but not a close before anything is written (a shell's
 * `>` dup2()s and closes the original first), which would ship an empty
 * version (see wkfs_flush).
 */
static void mark_resized(struct wkfs *fs, struct finode *in, off_t size,
			 bool by_handle)
{
	pthread_mutex_lock(&fs->ilock);
	bool at_open = size == 0 && !by_handle && in->nwriters > 0;

	in->dirty = true;
	in->wrote |= !at_open;
	in->kernel_mtime = fs->writeback;
	pthread_mutex_unlock(&fs->ilock);
}

/* Sets the backing file's mtime to ns and refreshes st.  Through the
 * inode's own descriptor (inode_fd): a late setattr's file handle may be
 * closed and its number reused by then. */
static int restore_mtime(struct wkfs *fs, struct finode *in, int64_t ns,
			 struct stat *st)
{
	struct timespec tv[2] = {
		{.tv_nsec = UTIME_OMIT},
		{.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL}};
	int fd = inode_fd(fs, in), rc = -1;
	char p[64];

	if (fd < 0)
		return -1;
	proc_path(p, fd);
	if (utimensat(AT_FDCWD, p, tv, 0) == 0)
		rc = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	inode_unfd(fs, in);
	return rc;
}

/*
 * The node in speaks for, made a file of its own first if it is a conflict
 * copy (docs/merge.md: an edit or chmod of a copy promotes it).  Recorder
 * lock held.
 */
static struct nnode *node_to_change_l(struct wkfs *fs, struct finode *in)
{
	struct nnode *n = inode_node_l(fs, in);

	if (n && nnode_is_copy(n)) {
		if (rec_promote_l(fs->rec, &n) != 0)
			wk_warn("cannot make a conflict copy a file of its"
				" own");
		pthread_mutex_lock(&fs->ilock);
		in->node = n ? n->id : WK_ID_NONE;
		pthread_mutex_unlock(&fs->ilock);
	}
	return n;
}

#define LINKS_MAX 64 /* other names of one file that get its puts */

/*
 * The other names of a file with hard links are nodes of their own (the
 * merge knows no hard links): a write through one name changed them all,
 * so each gets the put too, or the other replicas would keep the old
 * content under those names, silently.  Each put names the node put just
 * before it as its link (the first names n, whose own put comes last and
 * names the last of them), so the names form one chain: a replica that
 * applies the puts in any order can link each to one already done (see
 * docs/architecture.md, "Hard links").  rfd as for rec_put_l (not
 * consumed here).  Returns the node n's put names as its link (NULL: no
 * other name).  Recorder lock held.
 */
static struct nnode *put_links_l(struct wkfs *fs, struct nnode *n, int rfd,
				 const struct wk_hash *h, uint64_t size,
				 int64_t mtime)
{
	struct nnode *links[LINKS_MAX], *prev = n, *last = NULL;
	size_t k = nindex_with_ino(rec_index(fs->rec), n->ino, n, links,
				   LINKS_MAX);

	for (size_t i = 0; i < k && i < LINKS_MAX; i++) {
		int fd = rfd >= 0 ? fcntl(rfd, F_DUPFD_CLOEXEC, 0) : -1;

		if (rfd >= 0 && fd < 0)
			break;
		if (rec_put_link_l(fs->rec, links[i], fd, h, size, mtime,
				   prev) == 0)
			last = prev = links[i];
	}
	return last;
}

/*
 * Records a put for in if it is dirty.  fd is a descriptor of the file to
 * read the content from (not consumed); durable waits for the op to reach
 * the disk.
 */
static void record_put(struct wkfs *fs, struct finode *in, int fd, bool durable)
{
	struct nnode *n, *link = NULL;
	struct wk_hash h;
	uint64_t size = 0;
	struct stat st;
	int rfd;

	pthread_mutex_lock(&fs->ilock);
	bool dirty = in->dirty, have;
	int64_t kmtime;

	in->dirty = false;
	in->wrote = false;
	pthread_mutex_unlock(&fs->ilock);
	if (!dirty)
		return;
	if (fd >= 0) {
		rfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	} else {
		int ifd = inode_fd(fs, in);
		char p[64];

		rfd = -1;
		errno = -ifd;
		if (ifd >= 0) {
			proc_path(p, ifd);
			rfd = open(p, O_RDONLY | O_CLOEXEC);
			inode_unfd(fs, in);
		}
	}
	if (rfd < 0) {
		wk_warn("cannot record new content: %s", strerror(errno));
		return;
	}
	/* With the writeback cache the kernel keeps the mtime of a file
	 * itself and never takes ours, while our writes of its data move the
	 * backing file's.  The put carries the time the kernel shows, and
	 * so does the file, so that every replica shows what this one does.
	 * A setattr of the same inode (a program's utimensat, the kernel's
	 * own time) waits for the put to be recorded, or the put for it. */
	pthread_mutex_lock(&in->mtime_lock);
	pthread_mutex_lock(&fs->ilock);
	kmtime = fs->writeback ? in->kmtime_ns : 0;
	pthread_mutex_unlock(&fs->ilock);
	have = fstat(rfd, &st) == 0;
	if (have && kmtime && ts_ns(&st.st_mtim) != kmtime)
		restore_mtime(fs, in, kmtime, &st); /* st as it is now */
	/* Small files are hashed here, so the put carries exactly what this
	 * close left; big ones go to the writer thread, which may then see a
	 * later write (that write brings its own put). */
	if (have && st.st_size <= SYNC_HASH_MAX &&
	    content_hash_fd(rfd, &h, &size) == 0) {
		close(rfd);
		rfd = -1;
	}
	rec_lock(fs->rec);
	/* No name left: nothing to put (see wkfs_setattr). */
	n = st.st_nlink ? node_to_change_l(fs, in) : NULL;
	if (n && st.st_nlink > 1)
		link = put_links_l(fs, n, rfd, &h, size, ts_ns(&st.st_mtim));
	if (n)
		rec_put_link_l(fs->rec, n, rfd, &h, size, ts_ns(&st.st_mtim),
			       link);
	else if (rfd >= 0)
		close(rfd);
	rec_unlock(fs->rec);
	pthread_mutex_unlock(&in->mtime_lock);
	if (durable)
		rec_flush(fs->rec, true);
}

static void wkfs_init(void *data, struct fuse_conn_info *conn)
{
	struct wkfs *fs = data;

	if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) {
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
		fs->writeback = true;
	}
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* With ACLs in the kernel, an ACL write that changes the mode comes
	 * back to us as a setattr, which records it (sed -i copies modes
	 * that way). */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* The handlers that create apply the caller's umask themselves,
	 * or a default ACL instead, as a local file system does (caller.h). */
	if (conn->capable & FUSE_CAP_DONT_MASK)
		conn->want |= FUSE_CAP_DONT_MASK;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* The kernel does flock and POSIX locks itself (see above). */
	conn->want &= ~(FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_POSIX_LOCKS);
	/*
	 * No atomic O_TRUNC: the kernel then truncates with a SETATTR under
	 * its inode lock, after the OPEN.  With the writeback cache and an
	 * atomic O_TRUNC, the kernel sets its size to 0 after our OPEN
	 * reply without that lock, so a truncate(2) or a write-back of
	 * another process's pages could land in between: the file held
	 * 100000 bytes while the mount showed 100, for good (the writeback
	 * cache never takes the size from us).  The 4-process stress of
	 * tests/integration/92-converge.bats found it.
	 */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* Names and types only (see wkfs_readdir). */
	conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	conn->max_write = MAX_WRITE;
	conn->max_readahead = MAX_WRITE;
}

static void wkfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct wkfs *fs = fuse_req_userdata(req);

	inode_forget(fs, inode_get(fs, ino), nlookup);
	fuse_reply_none(req);
}

static void wkfs_forget_multi(fuse_req_t req, size_t count,
			      struct fuse_forget_data *forgets)
{
	struct wkfs *fs = fuse_req_userdata(req);

	for (size_t i = 0; i < count; i++)
		inode_forget(fs, inode_get(fs, forgets[i].ino),
			     forgets[i].nlookup);
	fuse_reply_none(req);
}

static void wkfs_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct stat st;
	int rc = WITH_FD(
		fs, ino, fd,
		fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_attr(req, &st, fs->timeout);
}

/* fd: the inode's (inode_fd). */
static int apply_setattr(int fd, struct stat *attr, int valid,
			 struct fuse_file_info *fi)
{
	char p[64];

	proc_path(p, fd);
	if (valid & FUSE_SET_ATTR_MODE) {
		if (fi ? fchmod(fi->fh, attr->st_mode)
		       : chmod(p, attr->st_mode))
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t u = valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t g = valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

		if (fchownat(fd, "", u, g,
			     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if (fi ? ftruncate(fi->fh, attr->st_size)
		       : truncate(p, attr->st_size))
			return -errno;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT},
					 {.tv_nsec = UTIME_OMIT}};

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (fi ? futimens(fi->fh, tv) : utimensat(AT_FDCWD, p, tv, 0))
			return -errno;
	}
	return 0;
}

static void wkfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int valid, struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct finode *in = inode_get(fs, ino);
	uint32_t attrs = 0;
	struct stat st;
	int fd, rc;

	/* The syscall and the op are one step for record_put (mtime_lock). */
	pthread_mutex_lock(&in->mtime_lock);
	fd = inode_fd(fs, in);
	rc = fd < 0 ? fd : apply_setattr(fd, attr, valid, fi);
	if (!rc &&
	    fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	if (fd >= 0)
		inode_unfd(fs, in);
	if (rc) {
		pthread_mutex_unlock(&in->mtime_lock);
		fuse_reply_err(req, -rc);
		return;
	}
	if (valid & FUSE_SET_ATTR_SIZE)
		mark_resized(fs, in, attr->st_size, fi != NULL);

	pthread_mutex_lock(&fs->ilock);
	bool kernel_mtime =
		in->kernel_mtime &&
		(valid & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME)) ==
			FUSE_SET_ATTR_MTIME;
	bool dirty = in->dirty;

	/* What the kernel shows from now on (record_put). */
	if (valid & FUSE_SET_ATTR_MTIME)
		in->kmtime_ns = ts_ns(&st.st_mtim);
	pthread_mutex_unlock(&fs->ilock);

	if (valid & FUSE_SET_ATTR_MODE)
		attrs |= WK_ATTR_MODE;
	if (valid & FUSE_SET_ATTR_MTIME)
		attrs |= WK_ATTR_MTIME;
	/* A file with no name left (the kernel sends the times of an
	 * unlinked inode late) is nobody's: its node went with its last
	 * name, and its inode number may be in the index for another. */
	if (!S_ISDIR(st.st_mode) && st.st_nlink == 0)
		attrs = 0;
	if (attrs) {
		struct nnode *n;
		int64_t mt = ts_ns(&st.st_mtim);

		rec_lock(fs->rec);
		n = inode_node_l(fs, in);
		/* With the writeback cache the kernel sends the mtime of its
		 * own writes (mtime only, no atime), before the put (the file
		 * is dirty) or just after it: that time belongs to the put,
		 * not to the user. */
		if (kernel_mtime && dirty)
			attrs &= ~WK_ATTR_MTIME; /* the put to come has it */
		else if (n && kernel_mtime && mt == n->mtime_ns)
			attrs &= ~WK_ATTR_MTIME;
		/* After the put, a kernel time that differs stays: the
		 * kernel shows it whatever we say, so the setattr recorded
		 * here makes every replica show it too. */
		if (n && attrs && nnode_is_copy(n))
			n = node_to_change_l(fs, in);
		if (n && attrs && st.st_nlink > 1) {
			/* The other names of the file changed too. */
			struct nnode *links[LINKS_MAX];
			size_t k = nindex_with_ino(rec_index(fs->rec), n->ino,
						   n, links, LINKS_MAX);

			for (size_t i = 0; i < k && i < LINKS_MAX; i++)
				rec_setattr_l(fs->rec, links[i], attrs,
					      st.st_mode, mt);
		}
		if (n && attrs)
			setattr_all_l(fs, n, attrs, st.st_mode, mt);
		rec_unlock(fs->rec);
	}
	pthread_mutex_unlock(&in->mtime_lock);
	/* A truncate of a file nobody has open is a complete change. */
	if (valid & FUSE_SET_ATTR_SIZE && !fi) {
		pthread_mutex_lock(&fs->ilock);
		bool alone = in->nwriters == 0;
		pthread_mutex_unlock(&fs->ilock);
		if (alone)
			record_put(fs, in, -1, false);
	}
	fuse_reply_attr(req, &st, fs->timeout);
}

static void wkfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct wkfs *fs = fuse_req_userdata(req);
	char buf[PATH_MAX + 1];
	ssize_t n = -1;
	int rc = WITH_FD(fs, ino, fd, (n = readlinkat(fd, "", buf, PATH_MAX)));

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* With the writeback cache the kernel reads to fill pages of files open
 * for writing, and does O_APPEND itself. */
static int backing_flags(struct wkfs *fs, int flags)
{
	if (fs->writeback) {
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return (flags & ~O_NOFOLLOW) | O_CLOEXEC;
}

static bool may_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/*
 * Counts fi (open(2)ed after taking ticket) as a writer of in, unless a
 * remote batch replaced or removed the file in between: -ESTALE, and the
 * kernel opens the name again (see apply.h).
 */
static int opened(struct wkfs *fs, struct finode *in, struct fuse_file_info *fi,
		  uint64_t ticket)
{
	if (may_write(fi->flags)) {
		int rc;

		while ((rc = apply_writer_count(fs, in, ticket)) == 0)
			ticket = apply_writer_ticket(fs);
		if (rc < 0)
			return rc;
		pthread_mutex_lock(&fs->ilock);
		if (fi->flags & O_TRUNC)
			in->dirty = true;
		pthread_mutex_unlock(&fs->ilock);
	}
	fi->keep_cache = 1;
	return 0;
}

static void wkfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct finode *in = inode_get(fs, ino);
	uint64_t ticket = may_write(fi->flags) ? apply_writer_ticket(fs) : 0;
	char p[64];
	int fd = -1, rc;

	rc = WITH_FD(fs, ino, ifd,
		     (proc_path(p, ifd),
		      fd = open(p, backing_flags(fs, fi->flags) & ~O_CREAT)));
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = fd;
	rc = opened(fs, in, fi, ticket);
	if (rc) {
		close(fd);
		fuse_reply_err(req, -rc);
		return;
	}
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The request was interrupted: undo. */
		close(fd);
	}
}

/* True when fd is the inode st describes. */
static bool same_inode(int fd, const struct stat *st)
{
	struct stat fst;

	return fstat(fd, &fst) == 0 && fst.st_dev == st->st_dev &&
	       fst.st_ino == st->st_ino;
}

/* Opens name in pfd for a create: a new file, or the one there unless
 * O_EXCL. */
static int create_at(struct wkfs *fs, int pfd, const char *name, mode_t mode,
		     struct fuse_file_info *fi, bool *is_new)
{
	int fd = openat(pfd, name,
			backing_flags(fs, fi->flags) | O_CREAT | O_EXCL, mode);

	if (fd < 0 && errno == EEXIST && !(fi->flags & O_EXCL)) {
		*is_new = false;
		/* Never through a symlink made since the kernel's lookup: one
		 * that points into the mount would have us wait on ourselves.
		 */
		fd = openat(pfd, name,
			    (backing_flags(fs, fi->flags) & ~O_CREAT) |
				    O_NOFOLLOW);
	}
	return fd;
}

static void named_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct fuse_entry_param e;
	struct caller c;
	struct finode *pin;
	bool is_new = true;
	uint64_t ticket;
	int fd, pfd, rc;

	if (is_sidecar(fs, parent, name)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	ticket = apply_writer_ticket(fs);
	/* As the caller: the new file is theirs, and a name that turns out
	 * to exist is opened with their rights, which the kernel did not
	 * check (it took the name for a new one).  The parent's fd is the
	 * mount's, taken before. */
	pin = inode_get(fs, parent);
	pfd = inode_fd(fs, pin);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	rc = caller_begin(req, &c, &mode);
	if (!rc) {
		fd = create_at(fs, pfd, name, mode, fi, &is_new);
		rc = fd < 0 ? -errno : 0;
		caller_end(&c);
	}
	inode_unfd(fs, pin);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	/* Replaced by a remote batch already?  Then the name is not ours
	 * to record, nor the inode to write. */
	rc = apply_writer_settle(fs, fd, &ticket);
	if (!rc)
		rc = do_lookup(fs, parent, name, &e);
	if (!rc && !same_inode(fd, &e.attr)) {
		inode_forget(fs, inode_get(fs, e.ino), 1);
		rc = -ESTALE;
	}
	if (rc) {
		close(fd);
		fuse_reply_err(req, -rc);
		return;
	}
	if (is_new)
		record_new(fs, parent, name, &e, NULL);
	fi->fh = fd;
	rc = opened(fs, inode_get(fs, e.ino), fi, ticket);
	if (rc) {
		inode_forget(fs, inode_get(fs, e.ino), 1);
		close(fd);
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_create(req, &e, fi);
}

static void wkfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void wkfs_write_buf(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_bufvec *in_buf, off_t off,
			   struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in_buf));
	ssize_t n;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fi->fh;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in_buf, 0);
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	mark_dirty(fs, inode_get(fs, ino));
	fuse_reply_write(req, (size_t)n);
}

static void wkfs_flush(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int fd2;

	/* close(2) on a dup of ours: report its errors like close would. */
	fd2 = dup(fi->fh);
	if (fd2 >= 0 && close(fd2) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* libfuse gives flush no open flags (fi->flags is 0): ask the
	 * descriptor.  The put is taken here, while close(2) waits, and not
	 * only at the release, which comes after close has returned: by
	 * then the program may have set the file's mtime or renamed it, and
	 * a put recorded after that would undo the new mtime everywhere.
	 * Only once something was written: a shell's `>` opens with O_TRUNC,
	 * dup2()s and closes the original before writing, and that close
	 * must not ship an empty version (the release still records an
	 * O_TRUNC with nothing written). */
	struct finode *in = inode_get(fs, ino);
	int fl = fcntl(fi->fh, F_GETFL);

	pthread_mutex_lock(&fs->ilock);
	bool wrote = in->wrote;
	pthread_mutex_unlock(&fs->ilock);
	if (wrote && fl >= 0 && may_write(fl))
		record_put(fs, in, fi->fh, false);
	fuse_reply_err(req, 0);
}

static void wkfs_release(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct finode *in = inode_get(fs, ino);

	if (may_write(fi->flags)) {
		/* Writes through a shared mapping can land after flush. */
		record_put(fs, in, fi->fh, false);
		pthread_mutex_lock(&fs->ilock);
		bool last = --in->nwriters == 0;
		pthread_mutex_unlock(&fs->ilock);
		/* A remote update may be waiting for this close. */
		if (last)
			apply_kick_if_waiting(fs->apply);
	}
	close(fi->fh);
	fuse_reply_err(req, 0);
}

static void wkfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		       struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int rc = datasync ? fdatasync(fi->fh) : fsync(fi->fh);

	if (rc < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* The content is durable, its put not yet recorded. */
	fault_point("fs.after_fsync");
	record_put(fs, inode_get(fs, ino), fi->fh, false);
	rec_flush(fs->rec, true);
	fuse_reply_err(req, 0);
}

static void wkfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct wkfs *fs = fuse_req_userdata(req);
	struct statvfs st;

	if (fstatvfs(fs->rootfd, &st) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

static void wkfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			   off_t offset, off_t length,
			   struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);

	if (fallocate(fi->fh, mode, offset, length) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	mark_dirty(fs, inode_get(fs, ino));
	fuse_reply_err(req, 0);
}

/*
 * SEEK_DATA and SEEK_HOLE look at the backing file, which lags behind what
 * programs wrote while the kernel's writeback cache holds the data: a file
 * just written would look empty (ENXIO) and a sparse copy would skip what
 * was written.  So, while the file may have dirty pages (a handle that may
 * write is open), the kernel writes the range back first: an invalidation
 * does that and returns once the writes are done, served by other threads
 * (the kernel holds only the inode's lock, which writeback does not need).
 */
static void wkfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);
	off_t r;

	if (fs->writeback && off >= 0 &&
	    (whence == SEEK_DATA || whence == SEEK_HOLE)) {
		struct finode *in = inode_get(fs, ino);

		pthread_mutex_lock(&fs->ilock);
		bool writers = in->nwriters > 0;
		pthread_mutex_unlock(&fs->ilock);
		if (writers)
			fuse_lowlevel_notify_inval_inode(fs->se, ino, off, 0);
	}
	r = lseek(fi->fh, off, whence);

	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

static void wkfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in,
				 off_t off_in, struct fuse_file_info *fi_in,
				 fuse_ino_t ino_out, off_t off_out,
				 struct fuse_file_info *fi_out, size_t len,
				 int flags)
{
	struct wkfs *fs = fuse_req_userdata(req);
	ssize_t n = copy_file_range(fi_in->fh, &off_in, fi_out->fh, &off_out,
				    len, flags);

	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	mark_dirty(fs, inode_get(fs, ino_out));
	fuse_reply_write(req, (size_t)n);
}

/* xattrs of regular files and directories, through a real descriptor (an
 * O_PATH one cannot carry them); symlinks have none here. */
static int xattr_fd(struct wkfs *fs, fuse_ino_t ino)
{
	struct finode *in = inode_get(fs, ino);
	int ifd = inode_fd(fs, in), fd;
	struct stat st;
	char p[64];

	if (ifd < 0)
		return ifd;
	if (fstatat(ifd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		fd = -errno;
	} else if (S_ISLNK(st.st_mode)) {
		fd = -ENOTSUP;
	} else {
		proc_path(p, ifd);
		fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			fd = -errno;
	}
	inode_unfd(fs, in);
	return fd;
}

/* An access ACL carries the mode's bits: record the mode it left. */
static void record_mode(struct wkfs *fs, struct finode *in, int fd,
			const char *name)
{
	struct stat st;
	struct nnode *n;

	if (strcmp(name, "system.posix_acl_access") != 0 || fstat(fd, &st) < 0)
		return;
	rec_lock(fs->rec);
	n = inode_node_l(fs, in);
	if (n)
		rec_setattr_l(fs->rec, n, WK_ATTR_MODE, st.st_mode, 0);
	rec_unlock(fs->rec);
}

static void reply_xattr(fuse_req_t req, size_t size, char *buf, ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
}

static void wkfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  size_t size)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int fd = xattr_fd(fs, ino);
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		free(buf);
		return;
	}
	n = fgetxattr(fd, name, buf, size);
	reply_xattr(req, size, buf, n);
	close(fd);
	free(buf);
}

static void wkfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int fd = xattr_fd(fs, ino);
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (fd < 0) {
		/* No xattrs on a symlink: an empty list. */
		if (fd == -ENOTSUP && size == 0)
			fuse_reply_xattr(req, 0);
		else
			fuse_reply_err(req, -fd);
		free(buf);
		return;
	}
	n = flistxattr(fd, buf, size);
	reply_xattr(req, size, buf, n);
	close(fd);
	free(buf);
}

static void wkfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  const char *value, size_t size, int flags)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int fd = xattr_fd(fs, ino);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (fsetxattr(fd, name, value, size, flags) < 0) {
		fuse_reply_err(req, errno);
		close(fd);
		return;
	}
	record_mode(fs, inode_get(fs, ino), fd, name);
	close(fd);
	fuse_reply_err(req, 0);
}

static void wkfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct wkfs *fs = fuse_req_userdata(req);
	int fd = xattr_fd(fs, ino);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (fremovexattr(fd, name) < 0) {
		fuse_reply_err(req, errno);
		close(fd);
		return;
	}
	record_mode(fs, inode_get(fs, ino), fd, name);
	close(fd);
	fuse_reply_err(req, 0);
}


/* The handlers that change names, each under fs->nslock (fs.h). */
static void wkfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	struct wkfs *fs = fuse_req_userdata(req);

	pthread_rwlock_rdlock(&fs->nslock);
	named_create(req, parent, name, mode, fi);
	pthread_rwlock_unlock(&fs->nslock);
}

void wkfs_ops_fill(struct fuse_lowlevel_ops *o)
{
	memset(o, 0, sizeof(*o));
	ops_ns_fill(o);
	o->init = wkfs_init;
	o->forget = wkfs_forget;
	o->forget_multi = wkfs_forget_multi;
	o->getattr = wkfs_getattr;
	o->setattr = wkfs_setattr;
	o->readlink = wkfs_readlink;
	o->open = wkfs_open;
	o->create = wkfs_create;
	o->read = wkfs_read;
	o->write_buf = wkfs_write_buf;
	o->flush = wkfs_flush;
	o->release = wkfs_release;
	o->fsync = wkfs_fsync;
	o->statfs = wkfs_statfs;
	o->fallocate = wkfs_fallocate;
	o->lseek = wkfs_lseek;
	o->copy_file_range = wkfs_copy_file_range;
	o->getxattr = wkfs_getxattr;
	o->listxattr = wkfs_listxattr;
	o->setxattr = wkfs_setxattr;
	o->removexattr = wkfs_removexattr;
}
