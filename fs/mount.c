/*
 * mount.c - `wkfs mount DIR [MNT]`: check, scan, mount, serve.
 *
 * The order matters.  Everything that can fail because of the user's input
 * (path, initialisation, database, config, the mass-delete guard) is checked
 * before the mount exists, so a failed mount changes nothing.  DIR is opened
 * before mounting, so an in-place mount keeps reaching the real files.  The
 * parent process of a daemonised mount waits on a pipe and exits 0 only once
 * the mount answers, so scripts can use the mount right after the command.
 */
#include "fs.h"
#include "apply.h"
#include "caller.h"
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "refetch.h"
#include "rundir.h"
#include "scan.h"
#include "syncctl.h"
#include "wlog.h"
#include "xalloc.h"

void wkfs_ops_fill(struct fuse_lowlevel_ops *o);

struct mount_opts {
	char dir[PATH_MAX];
	char mnt[PATH_MAX];
	bool foreground;
	bool accept_deletions;
	bool no_syncd; /* --no-syncd: do not start wkfs-syncd */
	char *fuse_opts; /* -o options FUSE gets (filter_opts), or NULL */
};

/* Finds the fstype of the mount whose mount point is path, if any. */
static bool mounted_at(const char *path, char *fstype, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX], type[256];
		char *sep = strstr(line, " - ");

		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 || !sep ||
		    sscanf(sep + 3, "%255s", type) != 1)
			continue;
		/* mountinfo escapes spaces etc. as \040; compare raw only
		 * for paths without them, which is all we can match. */
		if (strcmp(mp, path) == 0) {
			snprintf(fstype, len, "%s", type);
			found = true; /* the last one is the top */
		}
	}
	fclose(f);
	return found;
}

/* A wkfs mount whose process died answers ENOTCONN: detach it. */
static int clear_dead_mount(const char *path)
{
	char type[256];
	struct statfs sfs;

	if (!mounted_at(path, type, sizeof(type)))
		return 0;
	if (strcmp(type, "fuse.wkfs") != 0 && strcmp(type, "fuse") != 0)
		return 0;
	/* statfs always asks the filesystem; stat may be answered from the
	 * kernel's attribute cache long after the process died. */
	if (statfs(path, &sfs) == 0) {
		if (strcmp(type, "fuse.wkfs") == 0)
			return -EBUSY;
		return 0;
	}
	if (errno != ENOTCONN && errno != ECONNABORTED)
		return 0;
	wk_info("%s: clearing the mount left by a crashed wkfs", path);
	if (umount2(path, MNT_DETACH) == 0)
		return 0;
	{
		pid_t pid = fork();

		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", "-z", path,
			       (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	return 0;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wk_err("%s", msg);
	return 1;
}

/*
 * realpath(), except that a mount point left by a crashed wkfs (every
 * access fails with ENOTCONN) is detached first, so that a crash never
 * needs a manual fusermount before mounting again.
 */
static char *resolve(const char *arg, char out[PATH_MAX])
{
	char abs[PATH_MAX];

	if (realpath(arg, out))
		return out;
	if (errno != ENOTCONN && errno != ECONNABORTED)
		return NULL;
	if (arg[0] == '/') {
		snprintf(abs, sizeof(abs), "%s", arg);
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)) ||
		    snprintf(abs, sizeof(abs), "%s/%s", cwd, arg) >=
			    (int)sizeof(abs))
			return NULL;
	}
	/* mountinfo lists canonical paths: drop a trailing slash. */
	for (size_t n = strlen(abs); n > 1 && abs[n - 1] == '/'; n--)
		abs[n - 1] = '\0';
	clear_dead_mount(abs);
	return realpath(arg, out);
}

/*
 * Mount options: FUSE's and the kernel's that make sense for wkfs are passed
 * on; fstab's own (defaults, _netdev, x-systemd.*...) are for mount(8) and
 * systemd and are dropped; anything else is an error naming it, before
 * anything is touched.
 */
static const char *const passed_opts[] = {
	"ro", "rw", "allow_other", "allow_root", "default_permissions",
	"noatime", "atime", "relatime", "strictatime", "nodiratime", "nosuid",
	"suid", "nodev", "dev", "noexec", "exec", "sync", "async", "dirsync",
	"auto_unmount", "debug", "max_read=", "fsname=", "subtype=", NULL,
};
static const char *const dropped_opts[] = {
	"defaults", "_netdev", "nofail", "noauto", "auto", "user", "users",
	"nouser", "owner", "group", "x-", "comment=", NULL,
};

static bool opt_in(const char *opt, size_t len, const char *const *list)
{
	for (; *list; list++) {
		size_t l = strlen(*list);

		if ((*list)[l - 1] == '=' || (*list)[l - 1] == '-') {
			if (len >= l && strncmp(opt, *list, l) == 0)
				return true;
		} else if (len == l && strncmp(opt, *list, l) == 0) {
			return true;
		}
	}
	return false;
}

/* Checks opts and keeps in *kept (a fresh string, or NULL when empty) the
 * ones FUSE gets.  Returns 0, or 1 after saying which option is wrong. */
static int filter_opts(const char *opts, char **kept)
{
	size_t n = strlen(opts);
	char *out = xmalloc(n + 1);
	size_t used = 0;

	*kept = NULL;
	for (const char *p = opts; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len && opt_in(p, len, passed_opts)) {
			if (used)
				out[used++] = ',';
			memcpy(out + used, p, len);
			used += len;
		} else if (len && !opt_in(p, len, dropped_opts)) {
			free(out);
			return fail("unknown mount option '%.*s': run 'wkfs"
				    " mount --help' for the options wkfs takes",
				    (int)len, p);
		}
		p += len + (end ? 1 : 0);
	}
	out[used] = '\0';
	if (used)
		*kept = out;
	else
		free(out);
	return 0;
}

static int parse(int argc, char **argv, struct mount_opts *o)
{
	static const struct option longs[] = {
		{"foreground", no_argument, NULL, 'f'},
		{"accept-deletions", no_argument, NULL, 'A'},
		{"no-syncd", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fo:h", longs, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case 'A':
			o->accept_deletions = true;
			break;
		case 'S':
			o->no_syncd = true;
			break;
		case 'o':
			free(o->fuse_opts);
			if (filter_opts(optarg, &o->fuse_opts))
				return 1;
			break;
		case 'h':
			printf("usage: wkfs mount DIR [MOUNTPOINT] [-f] "
			       "[-o OPTIONS] [--accept-deletions] [--no-syncd]\n"
			       "  -f                   stay in the foreground\n"
			       "  --accept-deletions   record files missing "
			       "since the last mount as deleted\n"
			       "  --no-syncd           do not start wkfs-syncd "
			       "(started when [remote] is set)\n"
			       "  -o OPTIONS           comma-separated:\n"
			       "    passed to FUSE:  ro rw allow_other allow_root"
			       " noatime relatime nosuid nodev\n"
			       "                     noexec sync dirsync "
			       "auto_unmount debug max_read= fsname=\n"
			       "    for fstab, ignored: defaults _netdev nofail "
			       "noauto auto user users x-*\n");
			exit(0);
		default:
			return 2;
		}
	}
	if (optind >= argc || argc - optind > 2) {
		fprintf(stderr, "usage: wkfs mount DIR [MOUNTPOINT] [-f] "
				"[-o OPTIONS] [--accept-deletions] "
				"[--no-syncd]\n");
		return 2;
	}
	if (!resolve(argv[optind], o->dir))
		return fail("%s: %s: give the path of an existing directory",
			    argv[optind], strerror(errno));
	if (argc - optind == 2) {
		if (!resolve(argv[optind + 1], o->mnt))
			return fail("%s: %s: create the mount point first",
				    argv[optind + 1], strerror(errno));
	} else {
		snprintf(o->mnt, sizeof(o->mnt), "%s", o->dir);
	}
	return 0;
}

/* The control socket's thread: answers dirfd, flush, pid, apply,
 * applied, conflicts (ctl.h). */
struct ctl_server {
	int lfd;
	struct wkfs *fs;
	pthread_t thread;
};

static void *ctl_main(void *arg)
{
	struct ctl_server *c = arg;

	for (;;) {
		char line[CTL_LINE_MAX];
		int cfd = ctl_accept(c->lfd);

		if (cfd < 0)
			break;
		if (ctl_read_line(cfd, line, sizeof(line)) == 0) {
			if (strcmp(line, "dirfd") == 0) {
				ctl_reply(cfd, "ok", c->fs->rootfd);
			} else if (strcmp(line, "flush") == 0) {
				rec_flush(c->fs->rec, false);
				ctl_reply(cfd, "ok", -1);
			} else if (strcmp(line, "apply") == 0 ||
				   strcmp(line, "applied") == 0) {
				char r[96];
				struct apply_counts n = {0};
				int rc = apply_request(c->fs->apply,
						       line[5] == '\0', &n);

				/* "ok APPLIED PENDING HELD ATTENTION" */
				if (rc)
					snprintf(r, sizeof(r), "error %s",
						 strerror(-rc));
				else
					snprintf(r, sizeof(r),
						 "ok %lld %lld %lld %lld",
						 (long long)n.applied,
						 (long long)n.pending,
						 (long long)n.held,
						 (long long)n.attention);
				ctl_reply(cfd, r, -1);
			} else if (strcmp(line, "conflicts") == 0) {
				ctl_conflicts(c->fs, cfd);
			} else if (strcmp(line, "pid") == 0) {
				char r[32];

				snprintf(r, sizeof(r), "ok %d", (int)getpid());
				ctl_reply(cfd, r, -1);
			} else {
				ctl_reply(cfd, "error unknown request", -1);
			}
		}
		close(cfd);
	}
	return NULL;
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "we");
	int rc = 0;

	if (!f || fputs(text, f) < 0)
		rc = -errno;
	if (f && fclose(f) != 0 && !rc)
		rc = -errno;
	free(p);
	return rc;
}

static int check_dir(struct mount_opts *o, int *dirfd_out)
{
	struct statvfs vfs;
	struct stat st;
	int fd, rc;

	/* Dead mounts first: they make every later check fail oddly. */
	rc = clear_dead_mount(o->mnt);
	if (rc == -EBUSY)
		return fail("%s: already mounted by wkfs: run 'wkfs umount "
			    "%s' first",
			    o->mnt, o->mnt);
	/* DIR mounted over itself hides its .wkfs: say so, not "init". */
	if (strcmp(o->dir, o->mnt) != 0 && clear_dead_mount(o->dir) == -EBUSY)
		return fail("%s: already mounted by wkfs over itself: run "
			    "'wkfs umount %s' first",
			    o->dir, o->dir);
	if (stat(o->dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail("%s: not a directory: give the synced directory",
			    o->dir);
	fd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail("%s: %s", o->dir, strerror(errno));
	if (faccessat(fd, ".wkfs/wkfs.db", F_OK, 0) < 0) {
		close(fd);
		return fail("%s: not a wkfs directory (no .wkfs/wkfs.db): run"
			    " 'wkfs init %s' first",
			    o->dir, o->dir);
	}
	if (fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
		close(fd);
		return fail("%s: on a read-only filesystem: wkfs records"
			    " changes into .wkfs and needs it writable",
			    o->dir);
	}
	if (faccessat(fd, ".wkfs", W_OK, AT_EACCESS) < 0 ||
	    faccessat(fd, ".wkfs/wkfs.db", R_OK | W_OK, AT_EACCESS) < 0) {
		close(fd);
		return fail("%s/.wkfs: %s: wkfs needs to read and write its"
			    " database",
			    o->dir, strerror(errno));
	}
	*dirfd_out = fd;
	return 0;
}

static struct fuse_session *new_session(struct wkfs *fs, struct mount_opts *o)
{
	struct fuse_lowlevel_ops ops;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	char *fsname = xasprintf("-ofsname=%s,subtype=wkfs", o->dir);

	fuse_opt_add_arg(&args, "wkfs");
	fuse_opt_add_arg(&args, fsname);
	fuse_opt_add_arg(&args, "-odefault_permissions");
	if (o->fuse_opts) {
		char *opt = xasprintf("-o%s", o->fuse_opts);

		fuse_opt_add_arg(&args, opt);
		free(opt);
	}
	free(fsname);
	wkfs_ops_fill(&ops);
	se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);
	return se;
}

/* Daemonises: the parent waits for one status byte on a pipe. */
static int daemonize(int *notify_fd)
{
	int p[2];
	pid_t pid;
	char status = 1;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			status = 1;
		_exit(status);
	}
	close(p[0]);
	setsid();
	*notify_fd = p[1];
	return 0;
}

/* A daemon keeps none of its parent's descriptors but the ones it needs
 * (a test harness waits for every holder of its pipes to exit). */
static void close_inherited(int keep1, int keep2)
{
	int lo = keep1 < keep2 ? keep1 : keep2;
	int hi = keep1 < keep2 ? keep2 : keep1;

	close_range(3, lo - 1, 0);
	if (hi > lo + 1)
		close_range(lo + 1, hi - 1, 0);
	close_range(hi + 1, ~0U, 0);
}

static void notify(int *fd, char status)
{
	if (*fd < 0)
		return;
	if (write(*fd, &status, 1) != 1) {
		/* The parent is gone; nothing to tell. */
	}
	close(*fd);
	*fd = -1;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	close(fd);
	wlog_syslog();
}

static int mount_run(struct mount_opts *opts);

/*
 * The soft limit of open files, raised to the hard one: the inode table
 * keeps a share of it open (fs/inode.c), and the soft limit a shell gives
 * (often 1,024) is far below what the system allows a process.
 */
static size_t raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t cur = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = cur;
	}
	return rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20
					    : (size_t)rl.rlim_cur;
}

int fs_mount_main(int argc, char **argv)
{
	struct mount_opts o = {0};
	int rc = parse(argc, argv, &o);

	if (!rc)
		rc = mount_run(&o);
	free(o.fuse_opts);
	return rc;
}

static int mount_run(struct mount_opts *opts)
{
	struct mount_opts o = *opts;
	struct wkfs fs = {0};
	struct wk_config cfg;
	struct ctl_server ctl = {.lfd = -1};
	struct scan_stats stats;
	char err[512], run[RUNDIR_MAX];
	int rc, notify_fd = -1, ret = 1;

	rc = check_dir(&o, &fs.rootfd);
	if (rc)
		return rc;
	config_init(&cfg);
	rc = config_load_at(fs.rootfd, &cfg, err, sizeof(err));
	if (rc) {
		fail("%s/.wkfs/%s: fix the file and mount again", o.dir, err);
		goto out_config;
	}
	/* Fork before any thread exists; the child reports back. */
	if (!o.foreground) {
		if (daemonize(&notify_fd) < 0) {
			fail("cannot start in the background: %s",
			     strerror(errno));
			goto out_config;
		}
		close_inherited(fs.rootfd, notify_fd);
	}
	caller_init();
	/* Before apply_open: rebuilding the index ties conflict copies to
	 * inodes the kernel may know, which looks in this table. */
	inode_table_init(&fs);
	inode_table_limit(&fs, raise_nofile());
	rc = rec_open(fs.rootfd, &cfg, false, &fs.rec, err, sizeof(err));
	if (rc) {
		fail("%s: %s", o.dir, err);
		goto out_table;
	}
	/* Finish a crashed batch of remote changes and rebuild the merge
	 * engine's tree before the scan compares DIR with the index. */
	rc = apply_open(&fs, &cfg, &fs.apply, err, sizeof(err));
	if (rc) {
		fail("%s: %s", o.dir, err);
		goto out_rec;
	}
	rc = scan_tree(fs.rec, fs.rootfd, o.accept_deletions, &stats, err,
		       sizeof(err));
	if (rc) {
		fail("%s: %s", o.dir, err);
		goto out_apply;
	}
	if (stats.created + stats.changed + stats.moved + stats.removed)
		wk_info("%s: recorded changes made while unmounted: %llu new,"
			" %llu changed, %llu moved, %llu removed",
			o.dir, (unsigned long long)stats.created,
			(unsigned long long)stats.changed,
			(unsigned long long)stats.moved,
			(unsigned long long)stats.removed);

	{
		struct stat st;

		fstat(fs.rootfd, &st);
		fs.root.fd = open(o.dir, O_PATH | O_CLOEXEC);
		fs.root.dev = st.st_dev;
		fs.root.ino = st.st_ino;
		fs.root.is_dir = true;
		fs.root.nlookup = 2;
		fs.root.node = WK_ID_ROOT;
	}
	/* Mounted in place, nobody else can change the files behind our
	 * back, so the kernel may cache for long. */
	fs.timeout = strcmp(o.dir, o.mnt) == 0 ? 86400.0 : 1.0;
	fs.se = new_session(&fs, &o);
	if (!fs.se) {
		fail("%s: bad mount options '%s'", o.mnt,
		     o.fuse_opts ? o.fuse_opts : "");
		goto out_inodes;
	}
	if (fuse_set_signal_handlers(fs.se) != 0 ||
	    fuse_session_mount(fs.se, o.mnt) != 0) {
		fail("%s: cannot mount (is /dev/fuse there, and are you "
		     "allowed to mount here?)",
		     o.mnt);
		goto out_session;
	}
	rc = rundir_make(o.mnt, run, sizeof(run), err, sizeof(err));
	if (rc) {
		fail("%s: %s", o.mnt, err);
		goto out_unmount;
	}
	{
		char *sock = xasprintf("%s/fs.sock", run);
		char pid[32];

		ctl.lfd = ctl_listen(sock);
		free(sock);
		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		write_file(run, "fs.pid", pid);
		write_file(run, "backing", o.dir);
	}
	if (ctl.lfd < 0) {
		fail("%s: cannot create the control socket in %s", o.mnt,
		     run);
		goto out_unmount;
	}
	/* Contents a batch lacks come from the relay through the daemon. */
	if (cfg.remote_url)
		fs.refetch = refetch_start(run, apply_content_came, fs.apply);
	apply_set_refetch(fs.apply, fs.refetch);
	if (apply_start(fs.apply) != 0) {
		fail("%s: cannot start the apply thread", o.mnt);
		goto out_unmount;
	}
	ctl.fs = &fs;
	pthread_create(&ctl.thread, NULL, ctl_main, &ctl);
	/* The daemon reaches DIR through our control socket: start it
	 * once that answers.  A daemon that cannot start does not stop the
	 * mount: status says it is not running. */
	if (cfg.remote_url && !o.no_syncd) {
		rc = syncctl_ensure(o.mnt, run, NULL);
		if (rc)
			wk_warn("%s: wkfs-syncd did not start (%s); run "
				"'wkfs sync %s' to retry",
				o.mnt, strerror(-rc), o.mnt);
	}

	if (!o.foreground) {
		notify(&notify_fd, 0);
		detach_stdio();
	}
	{
		struct fuse_loop_config lc = {.clone_fd = 0,
					      .max_idle_threads = 10};

		ret = fuse_session_loop_mt(fs.se, &lc) != 0;
	}
	/* The daemon goes with the mount, whoever unmounted it. */
	if (cfg.remote_url && !o.no_syncd)
		syncctl_stop(run, 20000);
	shutdown(ctl.lfd, SHUT_RDWR);
	close(ctl.lfd);
	pthread_join(ctl.thread, NULL);
	apply_stop(fs.apply);
	refetch_stop(fs.refetch);
	fs.refetch = NULL;
	{
		char *p = xasprintf("%s/fs.sock", run);

		unlink(p);
		free(p);
		p = xasprintf("%s/fs.pid", run);
		unlink(p);
		free(p);
		/* Leave no trace of a clean unmount (a crash leaves files
		 * that the next mount replaces). */
		for (const char *const *f = (const char *const[]){
			     "path", "backing", NULL};
		     *f; f++) {
			p = xasprintf("%s/%s", run, *f);
			unlink(p);
			free(p);
		}
		rmdir(run);
	}
	ret = 0;
out_unmount:
	apply_stop(fs.apply);
	refetch_stop(fs.refetch);
	fs.refetch = NULL;
	fuse_session_unmount(fs.se);
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_inodes:
	close(fs.root.fd);
out_apply:
	apply_close(fs.apply);
out_rec:
	rec_close(fs.rec);
out_table:
	inode_table_free(&fs);
out_config:
	config_release(&cfg);
	close(fs.rootfd);
	notify(&notify_fd, 1);
	return ret;
}

int fs_umount_main(int argc, char **argv)
{
	char path[PATH_MAX], run[RUNDIR_MAX], type[256];
	char *pidfile;
	pid_t pid = 0, child;
	FILE *f;
	int status;

	if (argc != 2) {
		fprintf(stderr, "usage: wkfs umount DIR\n");
		return 2;
	}
	if (!realpath(argv[1], path))
		return fail("%s: %s", argv[1], strerror(errno));
	if (!mounted_at(path, type, sizeof(type)) ||
	    strcmp(type, "fuse.wkfs") != 0)
		return fail("%s: not mounted by wkfs", path);
	if (rundir_for(path, run, sizeof(run), NULL, 0) == 0) {
		pidfile = xasprintf("%s/fs.pid", run);
		f = fopen(pidfile, "re");
		if (f && fscanf(f, "%d", &pid) != 1)
			pid = 0;
		if (f)
			fclose(f);
		free(pidfile);
	}
	child = fork();
	if (child == 0) {
		execlp("fusermount3", "fusermount3", "-u", path, (char *)NULL);
		_exit(127);
	}
	if (child < 0 || waitpid(child, &status, 0) < 0 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail("%s: cannot unmount (is a file still open in it?)",
			    path);
	/* Return once the mount process has committed and exited. */
	for (int i = 0; pid > 0 && i < 600 && kill(pid, 0) == 0; i++)
		poll(NULL, 0, 50);
	return 0;
}
