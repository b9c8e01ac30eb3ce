/*
 * syncd_wake.c - waking the daemon's loop the moment there is work.
 *
 * The loop waits on the relay connection (wsc_recv_wakeable).  Three
 * things cut that wait short:
 *
 *   - the mount committed local ops: the watcher thread here sees
 *     .wkfs/wkfs.db-wal (or wkfs.db) change through inotify on DIR's .wkfs
 *     directory (reached through the daemon's dirfd, so it works with DIR
 *     mounted in place: the mount writes the underlying files);
 *   - `wkfs sync` and `stop` on the control socket (syncd_ctl.c);
 *   - nothing else: the loop's own timeout is only a fallback.
 *
 * Without this the loop polled the oplog every 200 ms, which was most of
 * the latency from a save on one replica to the file on another.  Wakes
 * are cheap and may be spurious (the daemon's own commits change the WAL
 * too): a woken loop looks for unshipped ops and finds none.  A burst of
 * commits costs one wake per read() of the inotify fd, not one per commit.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "syncd.h"
#include "wlog.h"

/* Called with s->sh.lock held. */
static void wake_locked(struct syncd *s)
{
	if (s->sh.wake_conn)
		wsc_wake(s->sh.wake_conn);
}

void syncd_wake(struct syncd *s)
{
	pthread_mutex_lock(&s->sh.lock);
	wake_locked(s);
	pthread_mutex_unlock(&s->sh.lock);
}

void syncd_wake_target(struct syncd *s, struct wsc *c)
{
	pthread_mutex_lock(&s->sh.lock);
	s->sh.wake_conn = c;
	pthread_mutex_unlock(&s->sh.lock);
}

static bool is_db_file(const char *name)
{
	return strcmp(name, "wkfs.db-wal") == 0 || strcmp(name, "wkfs.db") == 0;
}

static void *watch_main(void *arg)
{
	struct syncd *s = arg;
	/* Room for a burst of events, aligned for struct inotify_event. */
	char buf[8192]
		__attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		struct pollfd p[2] = {{.fd = s->watch_fd, .events = POLLIN},
				      {.fd = s->watch_stop, .events = POLLIN}};
		bool db = false;
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		n = read(s->watch_fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		for (char *q = buf; q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;

			/* An overflow may have hidden a commit: wake. */
			if ((ev->mask & IN_Q_OVERFLOW) ||
			    (ev->len && is_db_file(ev->name)))
				db = true;
			q += sizeof(*ev) + ev->len;
		}
		if (db)
			syncd_wake(s);
	}
	return NULL;
}

int syncd_wake_start(struct syncd *s)
{
	char path[64];
	int rc;

	s->watch_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s->watch_fd < 0)
		goto fallback;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/.wkfs", s->dirfd);
	if (inotify_add_watch(s->watch_fd, path,
			      IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
				      IN_CREATE) < 0)
		goto fallback;
	s->watch_stop = eventfd(0, EFD_CLOEXEC);
	if (s->watch_stop < 0)
		goto fallback;
	rc = pthread_create(&s->watch_thread, NULL, watch_main, s);
	if (rc) {
		errno = rc;
		goto fallback;
	}
	return 0;
fallback:
	/* Local ops then wait for the loop's timeout. */
	wk_warn("%s: cannot watch .wkfs (%s): local changes are picked up "
		"every %d ms",
		s->real, strerror(errno), SYNCD_POLL_MS);
	if (s->watch_fd >= 0)
		close(s->watch_fd);
	if (s->watch_stop >= 0)
		close(s->watch_stop);
	s->watch_fd = s->watch_stop = -1;
	return -1;
}

void syncd_wake_stop(struct syncd *s)
{
	uint64_t one = 1;

	if (s->watch_stop < 0)
		return;
	if (write(s->watch_stop, &one, sizeof(one)) != sizeof(one))
		wk_warn("cannot stop the watcher: %s", strerror(errno));
	pthread_join(s->watch_thread, NULL);
	close(s->watch_fd);
	close(s->watch_stop);
	s->watch_fd = s->watch_stop = -1;
}
