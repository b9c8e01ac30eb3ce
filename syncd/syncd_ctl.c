/*
 * syncd_ctl.c - wkfs-syncd's control socket, RUNDIR/syncd.sock.
 *
 * Line requests in the framing of lib/ctl.h, version 1:
 *
 *   hello VERSION -> "ok wkfs-syncd DAEMON_VERSION": the caller (a wkfs
 *                    command of VERSION) restarts a daemon older than
 *                    itself
 *   status        -> "ok key=value ...", one line: version, pid, state
 *                    (connecting, connected, offline, auth-failed), url,
 *                    pending_ops, pending_bytes, pending_files,
 *                    last_ok_ms, started_ms, pushed, received (ops),
 *                    tx_bytes, rx_bytes (message bytes), cursor,
 *                    remote_head (relay seqs), and last error=... (the
 *                    rest of the line, may hold spaces)
 *   sync          -> exchange now: "progress key=value ..." lines every
 *                    PROGRESS_MS while it runs (pushed, received,
 *                    pending_ops, pending_bytes, pending_files,
 *                    to_receive), then "ok pushed=N received=N" or
 *                    "error REASON"
 *   stop          -> "ok", then the daemon exits
 *   fetch HASH SIZE -> the content into .wkfs/objects from the relay, for
 *                    wkfs restore: "ok" or "error REASON"
 *                    (syncd_refetch.c)
 *
 * The socket lives in the folder's runtime directory (mode 0700, checked:
 * rundir_safe()), and ctl_accept() turns away clients of another uid than
 * ours (root excepted).  status and stop are answered on the listening thread;
 * each sync gets a thread of its own, so a long sync never holds up a
 * status.  Pending counts come from a read-only handle on wkfs.db owned by
 * the thread that asks: the main thread's handle is never shared.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "syncd.h"
#include "version.h"
#include "wlog.h"

#define PROGRESS_MS 250

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The version this daemon reports: tests inject an older one to check that
 * a newer wkfs restarts it. */
static const char *own_version(void)
{
	const char *v = getenv("WKFS_TEST_VERSION");

	return v && *v ? v : WKFS_VERSION;
}

static const char *conn_name(enum syncd_conn c)
{
	switch (c) {
	case SYNCD_CONNECTED:
		return "connected";
	case SYNCD_OFFLINE:
		return "offline";
	case SYNCD_AUTH_FAILED:
		return "auth-failed";
	default:
		return "connecting";
	}
}

/* ---- the main thread's side ---- */

void syncd_publish(struct syncd *s, enum syncd_conn conn, bool ok)
{
	pthread_mutex_lock(&s->sh.lock);
	s->sh.conn = conn;
	if (ok) {
		s->sh.last_ok_ms = now_ms();
		s->sh.err[0] = '\0';
	} else if (conn != SYNCD_CONNECTED && conn != SYNCD_CONNECTING) {
		snprintf(s->sh.err, sizeof(s->sh.err), "%s", s->err);
	}
	pthread_mutex_unlock(&s->sh.lock);
	syncd_publish_progress(s);
}

void syncd_publish_progress(struct syncd *s)
{
	pthread_mutex_lock(&s->sh.lock);
	s->sh.pushed = s->pushed;
	s->sh.received = s->received;
	s->sh.tx_bytes = s->tx_bytes;
	s->sh.rx_bytes = s->rx_bytes;
	s->sh.cursor = s->cursor;
	s->sh.remote_head =
		s->remote_head > s->cursor ? s->remote_head : s->cursor;
	pthread_mutex_unlock(&s->sh.lock);
}

uint64_t syncd_sync_wanted(struct syncd *s)
{
	uint64_t asked;

	pthread_mutex_lock(&s->sh.lock);
	asked = s->sh.sync_asked > s->sh.sync_done ? s->sh.sync_asked : 0;
	pthread_mutex_unlock(&s->sh.lock);
	return asked;
}

void syncd_sync_answer(struct syncd *s, uint64_t asked, int rc)
{
	pthread_mutex_lock(&s->sh.lock);
	if (asked > s->sh.sync_done) {
		s->sh.sync_done = asked;
		s->sh.sync_rc = rc;
		snprintf(s->sh.sync_err, sizeof(s->sh.sync_err), "%s",
			 rc ? s->err : "");
	}
	s->sh.pushed = s->pushed;
	s->sh.received = s->received;
	pthread_cond_broadcast(&s->sh.cond);
	pthread_mutex_unlock(&s->sh.lock);
}

/* ---- the control threads ---- */

static int active_syncs; /* sync threads alive, under s->sh.lock */

/* What is left to send: ops, bytes of content, files (-1: unknown). */
static void pending_of(struct syncd *s, struct wkdb **db, int64_t *ops,
		       int64_t *bytes, int64_t *files)
{
	char err[256];
	int64_t puts;

	*ops = *bytes = *files = -1;
	if (!*db && db_open_at(s->dirfd, DB_READONLY, db, err, sizeof(err)))
		*db = NULL;
	if (*db && db_pending(*db, ops, bytes))
		*ops = *bytes = -1;
	if (*db && db_pending_files(*db, files, &puts))
		*files = -1;
}

static void answer_status(struct syncd *s, int fd, struct wkdb **db)
{
	char line[CTL_LINE_MAX];
	struct syncd_shared sh;
	int64_t ops, bytes, files;

	pending_of(s, db, &ops, &bytes, &files);
	pthread_mutex_lock(&s->sh.lock);
	sh = s->sh;
	pthread_mutex_unlock(&s->sh.lock);
	snprintf(line, sizeof(line),
		 "ok version=%s pid=%d state=%s url=%s pending_ops=%" PRId64
		 " pending_bytes=%" PRId64 " pending_files=%" PRId64
		 " last_ok_ms=%" PRId64 " started_ms=%" PRId64
		 " pushed=%" PRIu64 " received=%" PRIu64 " tx_bytes=%" PRIu64
		 " rx_bytes=%" PRIu64 " cursor=%" PRIu64 " remote_head=%" PRIu64
		 " error=%s",
		 own_version(), (int)getpid(), conn_name(sh.conn),
		 s->cfg.remote_url, ops, bytes, files, sh.last_ok_ms,
		 sh.started_ms, sh.pushed, sh.received, sh.tx_bytes,
		 sh.rx_bytes, sh.cursor, sh.remote_head, sh.err);
	ctl_reply(fd, line, -1);
}

struct sync_job {
	struct syncd *s;
	int fd;
};

static void *sync_main(void *arg)
{
	struct sync_job *j = arg;
	struct syncd *s = j->s;
	struct wkdb *db = NULL;
	char line[CTL_LINE_MAX];
	uint64_t mine, pushed0, received0;
	int rc = 0;

	pthread_mutex_lock(&s->sh.lock);
	mine = ++s->sh.sync_asked;
	if (s->sh.wake_conn)
		wsc_wake(s->sh.wake_conn);
	pushed0 = s->sh.pushed;
	received0 = s->sh.received;
	while (s->sh.sync_done < mine) {
		struct timespec until;
		uint64_t pushed = s->sh.pushed, received = s->sh.received;
		uint64_t to_receive = s->sh.remote_head - s->sh.cursor;
		int64_t ops, bytes, files;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += PROGRESS_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_cond_timedwait(&s->sh.cond, &s->sh.lock, &until) !=
		    ETIMEDOUT)
			continue;
		pthread_mutex_unlock(&s->sh.lock);
		pending_of(s, &db, &ops, &bytes, &files);
		snprintf(line, sizeof(line),
			 "progress pushed=%" PRIu64 " received=%" PRIu64
			 " pending_ops=%" PRId64 " pending_bytes=%" PRId64
			 " pending_files=%" PRId64 " to_receive=%" PRIu64,
			 pushed - pushed0, received - received0, ops, bytes,
			 files, to_receive);
		rc = ctl_reply(j->fd, line, -1);
		pthread_mutex_lock(&s->sh.lock);
		if (rc)
			break; /* the client went away: the round goes on */
	}
	if (!rc) {
		if (s->sh.sync_rc)
			snprintf(line, sizeof(line), "error %s",
				 s->sh.sync_err);
		else
			snprintf(line, sizeof(line),
				 "ok pushed=%" PRIu64 " received=%" PRIu64,
				 s->sh.pushed - pushed0,
				 s->sh.received - received0);
	}
	pthread_mutex_unlock(&s->sh.lock);
	if (!rc)
		ctl_reply(j->fd, line, -1);
	if (db)
		db_close(db);
	close(j->fd);
	free(j);
	pthread_mutex_lock(&s->sh.lock);
	active_syncs--;
	pthread_cond_broadcast(&s->sh.cond);
	pthread_mutex_unlock(&s->sh.lock);
	return NULL;
}

static void start_sync(struct syncd *s, int fd)
{
	struct sync_job *j = malloc(sizeof(*j));
	pthread_t t;

	if (!j) {
		ctl_reply(fd, "error out of memory", -1);
		close(fd);
		return;
	}
	j->s = s;
	j->fd = fd;
	pthread_mutex_lock(&s->sh.lock);
	active_syncs++;
	pthread_mutex_unlock(&s->sh.lock);
	if (pthread_create(&t, NULL, sync_main, j) != 0) {
		pthread_mutex_lock(&s->sh.lock);
		active_syncs--;
		pthread_mutex_unlock(&s->sh.lock);
		ctl_reply(fd, "error cannot start a thread", -1);
		close(fd);
		free(j);
		return;
	}
	pthread_detach(t);
}

static void *ctl_main(void *arg)
{
	struct syncd *s = arg;
	struct wkdb *db = NULL;

	for (;;) {
		char line[CTL_LINE_MAX], reply[128];
		int fd = ctl_accept(s->ctl_fd);

		if (fd < 0)
			break;
		if (ctl_read_line(fd, line, sizeof(line)) != 0) {
			close(fd);
			continue;
		}
		if (strncmp(line, "hello", 5) == 0 &&
		    (line[5] == ' ' || !line[5])) {
			snprintf(reply, sizeof(reply), "ok wkfs-syncd %s",
				 own_version());
			ctl_reply(fd, reply, -1);
		} else if (strcmp(line, "status") == 0) {
			answer_status(s, fd, &db);
		} else if (strcmp(line, "sync") == 0) {
			start_sync(s, fd);
			continue; /* the sync thread owns fd */
		} else if (strncmp(line, "fetch ", 6) == 0) {
			syncd_refetch_answer(s, fd, line + 6);
		} else if (strcmp(line, "stop") == 0) {
			ctl_reply(fd, "ok", -1);
			syncd_request_stop();
			syncd_wake(s);
		} else {
			ctl_reply(fd, "error unknown request", -1);
		}
		close(fd);
	}
	if (db)
		db_close(db);
	return NULL;
}

int syncd_ctl_start(struct syncd *s)
{
	char path[RUNDIR_MAX + 16];

	s->sh.started_ms = now_ms();
	snprintf(path, sizeof(path), "%s/syncd.sock", s->run);
	/* A socket file a crash left behind is replaced. */
	s->ctl_fd = ctl_listen(path);
	if (s->ctl_fd < 0) {
		wk_err("%s: cannot listen: %s", path, strerror(-s->ctl_fd));
		return -1;
	}
	if (pthread_create(&s->ctl_thread, NULL, ctl_main, s) != 0) {
		wk_err("cannot start the control thread");
		close(s->ctl_fd);
		s->ctl_fd = -1;
		unlink(path);
		return -1;
	}
	return 0;
}

void syncd_ctl_stop(struct syncd *s)
{
	char path[RUNDIR_MAX + 16];

	if (s->ctl_fd < 0)
		return;
	snprintf(path, sizeof(path), "%s/syncd.sock", s->run);
	unlink(path);
	shutdown(s->ctl_fd, SHUT_RDWR);
	close(s->ctl_fd);
	pthread_join(s->ctl_thread, NULL);
	s->ctl_fd = -1;
	/* Answer what still waits, and let the sync threads finish. */
	snprintf(s->err, sizeof(s->err), "wkfs-syncd is stopping");
	pthread_mutex_lock(&s->sh.lock);
	if (s->sh.sync_asked > s->sh.sync_done) {
		s->sh.sync_done = s->sh.sync_asked;
		s->sh.sync_rc = -ESHUTDOWN;
		snprintf(s->sh.sync_err, sizeof(s->sh.sync_err), "%s", s->err);
	}
	pthread_cond_broadcast(&s->sh.cond);
	while (active_syncs > 0)
		pthread_cond_wait(&s->sh.cond, &s->sh.lock);
	pthread_mutex_unlock(&s->sh.lock);
}
