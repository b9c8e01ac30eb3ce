/*
 * syncd_main.c - wkfs-syncd: ships DIR's local ops to a wkfs-relay and
 * brings other replicas' ops and contents back.
 *
 *   wkfs-syncd DIR [-f] [--once]
 *
 * DIR/.wkfs/config.ini's [remote] names the relay (url, token) or a git
 * remote (url git:..., syncd_git.c); without it the folder is local only
 * and the daemon exits 0.  One instance per DIR:
 * RUNDIR/<key>/syncd.lock is flock'ed for the daemon's life (a crash
 * releases it) and syncd.pid names the holder.
 *
 * --once: connect, push everything unshipped, pull until CAUGHT_UP, ask the
 * mount to apply, exit (0, or 1 with one line saying why).  Otherwise the
 * daemon stays connected, ships local ops the moment the mount commits
 * them (syncd_wake.c), handles live OPS, and reconnects with capped
 * exponential backoff and jitter; without -f it detaches and logs to
 * syslog.
 *
 * The session itself is syncd_session.c; contents syncd_content.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "locate.h"
#include "syncd.h"
#include "wlog.h"

#define BACKOFF_MIN_MS 500
#define APPLY_JOIN_MAX 16 /* OPS messages handled before one apply */
#define BACKOFF_MAX_MS 60000
/* After the relay ended a session over one of its limits: a new session
 * at once would start with a fresh budget and be refused again. */
#define BACKOFF_LIMIT_MS 5000

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

void syncd_request_stop(void)
{
	stopping = 1;
}

bool syncd_stopping(void)
{
	return stopping != 0;
}

static bool is_git(const struct syncd *s)
{
	return strncmp(s->cfg.remote_url, "git:", 4) == 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: wkfs-syncd DIR [-f] [--once]\n");
	exit(2);
}

/* True when fd is still the file at path (not one unlinked meanwhile). */
static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Takes RUNDIR/syncd.lock and writes syncd.pid; the fd stays open.  An
 * exiting daemon unlinks the lock file while holding it, so a lock won on
 * a file no longer at the path does not count: try again.
 */
static int take_lock(struct syncd *s, int *lockfd)
{
	char p[RUNDIR_MAX + 32], tmp[RUNDIR_MAX + 48], other[32] = "?";
	FILE *f;
	int fd;

	snprintf(p, sizeof(p), "%s/syncd.lock", s->run);
	for (int tries = 0;; tries++) {
		fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			wk_err("%s: %s", p, strerror(errno));
			return -1;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0)
			break;
		if (same_file(fd, p))
			goto locked;
		close(fd);
		if (tries == 10) {
			wk_err("%s: cannot take the lock", p);
			return -1;
		}
	}
	snprintf(p, sizeof(p), "%s/syncd.pid", s->run);
	f = fopen(p, "re");
	if (f) {
		if (!fgets(other, sizeof(other), f))
			snprintf(other, sizeof(other), "?");
		other[strcspn(other, "\n")] = '\0';
		fclose(f);
	}
	wk_err("%s: already running (pid %s)", s->real, other);
	close(fd);
	return -1;
locked:
	/* A pid file a crash left behind is simply replaced. */
	snprintf(p, sizeof(p), "%s/syncd.pid", s->run);
	snprintf(tmp, sizeof(tmp), "%s/syncd.pid.tmp", s->run);
	f = fopen(tmp, "we");
	if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) ||
	    rename(tmp, p)) {
		wk_err("%s: %s", p, strerror(errno));
		close(fd);
		return -1;
	}
	*lockfd = fd;
	return 0;
}

/*
 * Leaves no trace of a clean exit: the pid and lock files (unlinked while
 * the lock is held), and, when no mount uses the runtime directory, its
 * "path" file and the directory itself.
 */
static void drop_rundir(struct syncd *s)
{
	char p[RUNDIR_MAX + 32];

	snprintf(p, sizeof(p), "%s/syncd.pid", s->run);
	unlink(p);
	snprintf(p, sizeof(p), "%s/syncd.lock", s->run);
	unlink(p);
	snprintf(p, sizeof(p), "%s/fs.sock", s->run);
	if (access(p, F_OK) == 0)
		return;
	snprintf(p, sizeof(p), "%s/path", s->run);
	unlink(p);
	rmdir(s->run);
}

/* Opens DIR's database, object store and cursor. */
static int open_state(struct syncd *s, const char *dir)
{
	char err[1024], url[1024] = "";
	int rc;

	s->dirfd = locate_dirfd(dir, err, sizeof(err));
	if (s->dirfd < 0) {
		wk_err("%s", err);
		return -1;
	}
	rc = config_load_at(s->dirfd, &s->cfg, err, sizeof(err));
	if (rc) {
		wk_err("%s: %s", s->real, err);
		return -1;
	}
	if (!s->cfg.remote_url) {
		printf("%s: local only (no [remote] in .wkfs/config.ini)\n",
		       s->real);
		return 1;
	}
	if (!is_git(s) && (!s->cfg.remote_token ||
			   wsc_token_parse(s->cfg.remote_token, s->token))) {
		wk_err("%s: [remote] token must be the 64 hex digits "
		       "'wkfs-relay folder add' printed",
		       s->real);
		return -1;
	}
	/* ws:// off this machine: refused before anything is sent. */
	if (!is_git(s) &&
	    remote_url_check(s->cfg.remote_url, s->cfg.remote_insecure, err,
			     sizeof(err))) {
		wk_err("%s: %s", s->real, err);
		return -1;
	}
	rc = db_open_at(s->dirfd, 0, &s->db, err, sizeof(err));
	if (rc) {
		wk_err("%s: %s", s->real, err);
		return -1;
	}
	if (db_meta_get_u64(s->db, "actor", &s->actor)) {
		wk_err("%s: the database has no actor id", s->real);
		return -1;
	}
	rc = mat_open(s->dirfd, &s->mat);
	if (rc) {
		wk_err("%s: cannot open the object store: %s", s->real,
		       strerror(-rc));
		return -1;
	}
	if (is_git(s)) {
		rc = syncd_git_open(s);
		if (rc) {
			wk_err("%s: %s", s->real, s->err);
			return -1;
		}
		return 0;
	}
	/* A cursor belongs to one relay folder: another url starts over. */
	if (db_meta_get_str(s->db, "relay_url", url, sizeof(url)) ||
	    strcmp(url, s->cfg.remote_url) != 0) {
		if (db_meta_set_str(s->db, "relay_url", s->cfg.remote_url) ||
		    db_meta_set_u64(s->db, "relay_cursor", 0)) {
			wk_err("%s: %s", s->real, db_errmsg(s->db));
			return -1;
		}
	}
	if (db_meta_get_u64(s->db, "relay_cursor", &s->cursor))
		s->cursor = 0;
	return content_open(s) ? -1 : 0;
}

static void close_state(struct syncd *s)
{
	syncd_session_close(s);
	syncd_git_close(s);
	content_close(s);
	if (s->mat)
		mat_close(s->mat);
	if (s->db)
		db_close(s->db);
	if (s->dirfd >= 0)
		close(s->dirfd);
	config_release(&s->cfg);
}

static int run_once(struct syncd *s)
{
	int rc;

	/* A push the relay refused for lack of chunks goes again in a new
	 * session: at most twice, as the second refusal makes the put go
	 * without its content (syncd_session.c). */
	for (int tries = 0;; tries++) {
		s->refused_now = false;
		rc = syncd_session_open(s);
		if (!rc)
			rc = syncd_push(s);
		if (!rc || !s->refused_now || tries == 2 || stopping)
			break;
		wk_warn("%s; retrying", s->err);
		syncd_apply(s);
		syncd_session_close(s);
	}
	while (!rc && !s->caught_up && !stopping) {
		rc = syncd_session_step(s, SYNCD_TIMEOUT_MS);
		if (rc == -ETIMEDOUT)
			syncd_fail(s, NULL, rc, "waiting for CAUGHT_UP");
	}
	/* What came in is applied even when the session then failed. */
	syncd_apply(s);
	syncd_session_close(s);
	if (rc) {
		wk_err("%s: %s", s->real, s->err);
		return 1;
	}
	if (stopping)
		return 1;
	printf("sent %" PRIu64 " bytes, received %" PRIu64 " bytes\n",
	       s->tx_bytes, s->rx_bytes);
	return 0;
}

/* Sleeps, cut short by a signal or a sync request. */
static void sleep_ms(struct syncd *s, long ms)
{
	while (ms > 0 && !stopping && !syncd_sync_wanted(s)) {
		long step = ms < 50 ? ms : 50;
		struct timespec ts = {0, step * 1000000L};

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/*
 * `wkfs sync`: push what is unshipped, take in everything the relay sent
 * before a PING, have the mount apply it, and answer.
 */
static int sync_round(struct syncd *s, uint64_t asked)
{
	int rc = syncd_push(s);

	if (!rc)
		rc = syncd_barrier(s);
	if (!rc) {
		s->need_apply = true;
		syncd_apply(s);
		syncd_publish(s, SYNCD_CONNECTED, true);
	}
	syncd_sync_answer(s, asked, rc);
	return rc;
}

/*
 * Records when the daemon was last in step with the relay (meta
 * last_sync_ms), for `wkfs status` while no daemon runs: at most every
 * 10 s, and at the end of a session.
 */
static void note_sync(struct syncd *s, bool now)
{
	static int64_t noted;
	struct timespec ts;
	int64_t ms;

	if (s->ops == NULL && !now)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (!now && ms - noted < 10000)
		return;
	pthread_mutex_lock(&s->sh.lock);
	ms = s->sh.last_ok_ms;
	pthread_mutex_unlock(&s->sh.lock);
	if (ms > noted && db_meta_set_u64(s->db, "last_sync_ms", (uint64_t)ms))
		wk_warn("cannot record the sync time: %s", db_errmsg(s->db));
	noted = ms;
}

/* The connected part of the loop: until an error or a signal. */
static int serve(struct syncd *s)
{
	int rc = syncd_push(s);

	while (!rc && !stopping) {
		uint64_t asked = syncd_sync_wanted(s);

		if (asked) {
			rc = sync_round(s, asked);
			if (rc)
				break;
		}
		syncd_refetch_serve(s);
		rc = syncd_session_wait(s, SYNCD_POLL_MS);
		if (rc == -ETIMEDOUT)
			rc = content_drain(s);
		else if (rc == -EINTR)
			rc = 0; /* woken: local ops or a request */
		/* OPS already waiting join this apply: a replica that fell
		 * behind catches up in a few big applies, not many small. */
		for (int i = 0; !rc && s->need_apply && i < APPLY_JOIN_MAX;
		     i++) {
			rc = syncd_session_step(s, 1);
			if (rc == -ETIMEDOUT) {
				rc = 0;
				break;
			}
		}
		if (!rc)
			rc = syncd_push(s);
		syncd_apply(s);
		if (!rc) {
			syncd_publish(s, SYNCD_CONNECTED, true);
			note_sync(s, false);
		}
	}
	note_sync(s, true);
	return rc;
}

static enum syncd_conn failed_state(const struct syncd *s)
{
	if (s->peer_error == WIRE_ERR_AUTH || s->peer_error == WIRE_ERR_REVOKED)
		return SYNCD_AUTH_FAILED;
	return SYNCD_OFFLINE;
}

static int run_daemon(struct syncd *s)
{
	long backoff = BACKOFF_MIN_MS;
	char last[sizeof(s->err)] = "";
	bool limited = false;

	srandom((unsigned)(time(NULL) ^ getpid()));
	while (!stopping) {
		uint64_t asked = syncd_sync_wanted(s);
		int rc;

		s->peer_error = 0;
		rc = syncd_session_open(s);
		if (!rc) {
			/* A session refused over a limit was no good one:
			 * the wait keeps growing. */
			if (!limited)
				backoff = BACKOFF_MIN_MS;
			last[0] = '\0';
			syncd_publish(s, SYNCD_CONNECTED, true);
			rc = serve(s);
		} else if (asked) {
			/* Asked to sync while offline: say why it cannot. */
			syncd_sync_answer(s, asked, rc);
		}
		syncd_apply(s);
		limited = syncd_session_limited(s);
		syncd_session_close(s);
		if (stopping)
			break;
		if (limited && backoff < BACKOFF_LIMIT_MS)
			backoff = BACKOFF_LIMIT_MS;
		syncd_publish(s, failed_state(s), false);
		/* Say it once, not at every retry. */
		if (strcmp(last, s->err) != 0) {
			wk_warn("%s; retrying", s->err);
			snprintf(last, sizeof(last), "%s", s->err);
		}
		/* Jitter: between half and all of the backoff. */
		sleep_ms(s, backoff / 2 + random() % (backoff / 2 + 1));
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
						       : backoff * 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"once", no_argument, NULL, 'o'},
		{"foreground", no_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	struct syncd s = {
		.dirfd = -1, .ctl_fd = -1, .watch_fd = -1, .watch_stop = -1};
	bool once = false, fg = false;
	char err[1024];
	int opt, lockfd = -1, rc;
	struct sigaction sa = {.sa_handler = on_signal};

	wlog_init("wkfs-syncd");
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "f", longopts, NULL)) != -1) {
		if (opt == 'o')
			once = true;
		else if (opt == 'f')
			fg = true;
		else
			usage();
	}
	if (argc - optind != 1)
		usage();
	config_init(&s.cfg);
	pthread_mutex_init(&s.sh.lock, NULL);
	pthread_cond_init(&s.sh.cond, NULL);
	if (!realpath(argv[optind], s.real)) {
		wk_err("%s: %s", argv[optind], strerror(errno));
		return 1;
	}
	rc = open_state(&s, argv[optind]);
	if (rc) {
		close_state(&s);
		return rc < 0 ? 1 : 0;
	}
	if (rundir_make(s.real, s.run, sizeof(s.run), err, sizeof(err))) {
		wk_err("%s: %s", s.real, err);
		close_state(&s);
		return 1;
	}
	if (!fg && !once) {
		if (daemon(0, 0) < 0) {
			wk_err("cannot detach: %s", strerror(errno));
			close_state(&s);
			return 1;
		}
		wlog_syslog();
	}
	if (take_lock(&s, &lockfd)) {
		close_state(&s);
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!once && syncd_ctl_start(&s)) {
		close_state(&s);
		drop_rundir(&s);
		close(lockfd);
		return 1;
	}
	if (!once)
		syncd_wake_start(&s);
	if (is_git(&s))
		rc = once ? syncd_git_once(&s) : syncd_git_run(&s);
	else
		rc = once ? run_once(&s) : run_daemon(&s);
	syncd_wake_stop(&s);
	syncd_ctl_stop(&s);
	close_state(&s);
	drop_rundir(&s);
	close(lockfd);
	return rc;
}
