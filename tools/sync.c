/*
 * sync.c - `wkfs sync [DIR] [--timeout S]` and `wkfs stop [DIR]`: asking
 * a folder's wkfs-syncd to exchange now, and to go.
 *
 * sync first has the mount commit what it has recorded, makes sure a
 * daemon no older than this program runs (starting one, or replacing an
 * older one: the version handshake), then sends `sync` on its socket and
 * reads progress lines until the answer.  On a terminal the progress is
 * one line rewritten in place; the result is one line either way.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "ctl.h"
#include "folder.h"
#include "out.h"
#include "syncctl.h"
#include "wlog.h"

/* Reads one line from fd, waiting at most until deadline (ms, wall). */
static int read_until(int fd, char *buf, size_t len, int64_t deadline)
{
	struct pollfd p = {fd, POLLIN, 0};
	int64_t left = deadline - out_now_ms();

	if (left <= 0)
		return -ETIMEDOUT;
	if (poll(&p, 1, (int)(left > 60000 ? 60000 : left)) == 0)
		return -ETIMEDOUT;
	return ctl_read_line(fd, buf, len);
}

static int64_t num(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p ? atoll(p + strlen(key)) : 0;
}

/* One line, rewritten in place: what is left to send (files, bytes,
 * ops) and to receive, what went, and how fast. */
static void progress(const char *line, int64_t start)
{
	double secs = (double)(out_now_ms() - start) / 1000.0;
	int64_t pushed = num(line, "pushed="), got = num(line, "received=");
	int64_t bytes = num(line, "pending_bytes=");
	int64_t files = num(line, "pending_files=");
	int64_t in = num(line, "to_receive=");
	char b[32];

	out_bytes((uint64_t)(bytes > 0 ? bytes : 0), b, sizeof(b));
	fprintf(stderr,
		"\r\033[Ksyncing: %" PRId64 " files (%s) in %" PRId64
		" ops to send, %" PRId64 " ops to receive; %" PRId64
		" sent, %" PRId64 " received, %.0f ops/s",
		files > 0 ? files : 0, b, num(line, "pending_ops="),
		in > 0 ? in : 0, pushed, got,
		secs > 0 ? (double)(pushed + got) / secs : 0.0);
}

static int resolve_arg(int argc, char **argv, struct folder *f)
{
	char err[512];

	if (argc - optind > 1)
		return 2;
	if (folder_resolve(optind < argc ? argv[optind] : NULL, f, err,
			   sizeof(err))) {
		fprintf(stderr, "wkfs: %s\n", err);
		return 1;
	}
	return 0;
}

/*
 * The exchange is over and the mount has had its round: is everything
 * that came in applied?  A remote op held back (content that never came,
 * a file still open for writing) means the replicas do not agree yet, so
 * sync must not say synced.  Says why on stderr when not.
 */
static bool all_applied(const struct folder *f)
{
	char sock[RUNDIR_MAX + 16], line[CTL_LINE_MAX];
	long long seq, pending, held, attention;

	snprintf(sock, sizeof(sock), "%s/fs.sock", f->run);
	if (ctl_request(sock, "applied", line, sizeof(line), NULL) != 0 ||
	    sscanf(line, "ok %lld %lld %lld %lld", &seq, &pending, &held,
		   &attention) != 4)
		return true; /* an older mount: it cannot tell */
	if (attention > 0)
		fprintf(stderr,
			"wkfs: %s: %lld remote changes cannot be applied:"
			" their content never arrived ('wkfs status' names"
			" them)\n",
			f->dir, attention);
	if (held - attention > 0)
		fprintf(stderr,
			"wkfs: %s: %lld remote changes wait for files open"
			" for writing to be closed\n",
			f->dir, held - attention);
	if (pending > 0)
		fprintf(stderr,
			"wkfs: %s: %lld remote changes are not applied yet;"
			" run 'wkfs sync' again\n",
			f->dir, pending);
	return held == 0 && pending == 0;
}

int cmd_sync(int argc, char **argv)
{
	static const struct option longs[] = {
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	char sock[RUNDIR_MAX + 16], line[CTL_LINE_MAX];
	bool tty = isatty(2), restarted;
	struct folder f;
	int64_t start, deadline;
	long timeout = 120;
	int c, fd, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:h", longs, NULL)) != -1) {
		char *end;

		if (c == 't') {
			timeout = strtol(optarg, &end, 10);
			if (*end || timeout <= 0) {
				fprintf(stderr, "wkfs: --timeout takes a "
						"number of seconds\n");
				return 2;
			}
			continue;
		}
		fprintf(c == 'h' ? stdout : stderr,
			"usage: wkfs sync [DIR] [--timeout SECONDS]\n");
		return c == 'h' ? 0 : 2;
	}
	rc = resolve_arg(argc, argv, &f);
	if (rc == 2)
		fprintf(stderr, "usage: wkfs sync [DIR] [--timeout SECONDS]\n");
	if (rc)
		return rc;
	rc = folder_has_remote(&f, line, sizeof(line));
	if (rc < 0) {
		fprintf(stderr, "wkfs: %s\n", line);
		return 1;
	}
	if (rc == 0) {
		printf("%s: local only (no [remote] in .wkfs/config.ini), "
		       "nothing to sync\n",
		       f.dir);
		return 0;
	}
	if (f.mounted) {
		/* What was written before `wkfs sync` goes with it. */
		snprintf(sock, sizeof(sock), "%s/fs.sock", f.run);
		ctl_request(sock, "flush", line, sizeof(line), NULL);
	}
	rc = syncctl_ensure(f.key, f.run, &restarted);
	if (rc == -ECHILD)
		return 1; /* wkfs-syncd said why (or: local only) */
	if (rc) {
		fprintf(stderr, "wkfs: %s: cannot start wkfs-syncd: %s\n",
			f.dir, strerror(-rc));
		return 1;
	}
	if (restarted)
		fprintf(stderr, "wkfs: %s: restarted an older wkfs-syncd\n",
			f.dir);
	snprintf(sock, sizeof(sock), "%s/syncd.sock", f.run);
	fd = ctl_connect(sock, "sync");
	if (fd < 0) {
		fprintf(stderr, "wkfs: %s: %s\n", sock, strerror(-fd));
		return 1;
	}
	start = out_now_ms();
	deadline = start + timeout * 1000;
	while ((rc = read_until(fd, line, sizeof(line), deadline)) == 0 &&
	       strncmp(line, "progress ", 9) == 0)
		if (tty)
			progress(line, start);
	close(fd);
	if (tty)
		fputs("\r\033[K", stderr);
	if (rc == -ETIMEDOUT) {
		fprintf(stderr,
			"wkfs: %s: not done after %ld s; the daemon goes on "
			"in the background ('wkfs status' shows how far)\n",
			f.dir, timeout);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "wkfs: %s: lost the daemon: %s\n", f.dir,
			strerror(-rc));
		return 1;
	}
	if (strncmp(line, "ok", 2) != 0) {
		/* The daemon's reason may quote the relay: wk_err escapes. */
		wk_err("%s: sync failed: %s", f.dir,
		       strncmp(line, "error ", 6) == 0 ? line + 6 : line);
		return 1;
	}
	if (f.mounted && !all_applied(&f))
		return 1;
	printf("%s: synced (%" PRId64 " ops sent, %" PRId64
	       " received, %.1f s)\n",
	       f.dir, num(line, "pushed="), num(line, "received="),
	       (double)(out_now_ms() - start) / 1000.0);
	return 0;
}

int cmd_stop(int argc, char **argv)
{
	struct folder f;
	pid_t pid;
	int rc;

	optind = 1;
	if (argc > 1 &&
	    (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: wkfs stop [DIR]\n");
		return 0;
	}
	rc = resolve_arg(argc, argv, &f);
	if (rc == 2)
		fprintf(stderr, "usage: wkfs stop [DIR]\n");
	if (rc)
		return rc;
	pid = syncctl_pid(f.run);
	if (!pid) {
		printf("%s: wkfs-syncd is not running\n", f.dir);
		return 0;
	}
	rc = syncctl_stop(f.run, 20000);
	if (rc) {
		fprintf(stderr,
			"wkfs: %s: wkfs-syncd (pid %d) did not stop: "
			"%s\n",
			f.dir, (int)pid, strerror(-rc));
		return 1;
	}
	printf("%s: wkfs-syncd stopped\n", f.dir);
	return 0;
}
