/*
 * status.c - `wkfs status [DIR...] [--json]`: the state of synced folders
 * at a glance.
 *
 * Each folder is read from three places, each of which may be missing:
 * the sidecar (config.ini and wkfs.db, read-only: remote, actor, pending
 * ops, the last sync the daemon recorded), the daemon (syncd.sock
 * `status`: connection, live pending counts, version) and the mount
 * (fs.sock `applied` and `conflicts`).  What cannot be known is shown as
 * unknown (null in JSON), never guessed.
 *
 * Exit status: 0, or 3 when a folder needs attention (conflicts, auth
 * failed, daemon not running, unreadable sidecar); 1 for a DIR that is not
 * a synced folder; 2 usage.  The JSON schema is in docs/status.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply_plan.h"
#include "cmds.h"
#include "config.h"
#include "ctl.h"
#include "db.h"
#include "folder.h"
#include "locate.h"
#include "out.h"
#include "syncctl.h"
#include "termesc.h"
#include "version.h"
#include "xalloc.h"

struct fstatus {
	struct folder f;
	char problem[600]; /* the sidecar could not be read */
	bool has_remote;
	char url[1024]; /* without user info */
	const char *remote_type;
	char device[256];
	bool have_actor;
	uint64_t actor;

	pid_t pid;
	bool answered; /* the daemon answered status */
	char version[64];
	char state[32]; /* "" unknown */
	char error[512];
	int64_t pending_ops, pending_bytes; /* -1 unknown */
	int64_t last_ok_ms;		    /* 0 unknown */
	int64_t tx_bytes, rx_bytes;	    /* -1 unknown */

	int64_t waiting; /* remote ops the mount has not applied, -1 */
	/* Remote ops held back for a reason that needs attention (content
	 * that never came), from the held table: */
	struct held_row {
		char *path, *kind;
		const char *why;
		int64_t since_ms;
	} * held;
	int nheld;
	int conflicts; /* -1 unknown */
	char **copies;
	const char *summary;
	bool attention;
};

/* Copies url without "user:password@" (tokens never show). */
static void clean_url(const char *url, char *out, size_t len)
{
	const char *scheme = strstr(url, "://"), *at, *slash;

	if (!scheme) {
		snprintf(out, len, "%s", url);
		return;
	}
	at = strchr(scheme + 3, '@');
	slash = strchr(scheme + 3, '/');
	if (at && (!slash || at < slash))
		snprintf(out, len, "%.*s%s", (int)(scheme + 3 - url), url,
			 at + 1);
	else
		snprintf(out, len, "%s", url);
}

#define HELD_SHOWN 10 /* held paths listed in text; JSON lists them all */

static int add_held(void *arg, const struct db_held *h)
{
	struct fstatus *s = arg;
	struct held_row *r;
	const char *kind = wk_op_kind_name(h->row.op.kind);

	if (!plan_hold_needs_attention((enum plan_hold)h->reason))
		return 0;
	s->held = xrealloc(s->held, (size_t)(s->nheld + 1) * sizeof(*s->held));
	r = &s->held[s->nheld++];
	r->path = xstrdup(h->path[0] ? h->path : "?");
	r->kind = xstrdup(kind ? kind : "?");
	r->why = plan_hold_text((enum plan_hold)h->reason);
	r->since_ms = h->since_ms;
	return 0;
}

static void read_sidecar(struct fstatus *s)
{
	struct wk_config cfg;
	struct wkdb *db = NULL;
	char err[512];
	uint64_t v;
	int fd;

	config_init(&cfg);
	fd = locate_dirfd(s->f.key, err, sizeof(err));
	if (fd < 0) {
		snprintf(s->problem, sizeof(s->problem), "%s", err);
		return;
	}
	if (config_load_at(fd, &cfg, err, sizeof(err))) {
		snprintf(s->problem, sizeof(s->problem), ".wkfs/%s", err);
		goto out;
	}
	if (cfg.remote_url) {
		s->has_remote = true;
		clean_url(cfg.remote_url, s->url, sizeof(s->url));
		s->remote_type = strncmp(cfg.remote_url, "git:", 4) == 0
					 ? "git"
					 : "relay";
		/* The daemon would refuse it: say so here too. */
		if (remote_url_check(cfg.remote_url, cfg.remote_insecure,
				     s->problem, sizeof(s->problem)))
			goto out;
	}
	if (cfg.device_name)
		snprintf(s->device, sizeof(s->device), "%s", cfg.device_name);
	else if (gethostname(s->device, sizeof(s->device)))
		s->device[0] = '\0';
	if (db_open_at(fd, DB_READONLY, &db, err, sizeof(err))) {
		snprintf(s->problem, sizeof(s->problem), "%s", err);
		goto out;
	}
	s->have_actor = db_meta_get_u64(db, "actor", &s->actor) == 0;
	if (db_pending(db, &s->pending_ops, &s->pending_bytes))
		s->pending_ops = s->pending_bytes = -1;
	if (db_meta_get_u64(db, "last_sync_ms", &v) == 0)
		s->last_ok_ms = (int64_t)v;
	if (db_held_foreach(db, add_held, s))
		snprintf(s->problem, sizeof(s->problem),
			 "cannot read the held ops: %s", db_errmsg(db));
	db_close(db);
out:
	config_release(&cfg);
	close(fd);
}

/* Takes "key=value" out of a status reply (value up to the next space;
 * error= runs to the end). */
static bool field(const char *reply, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);
	const char *p = reply;

	while ((p = strstr(p, key))) {
		if ((p == reply || p[-1] == ' ') && p[kl] == '=') {
			const char *v = p + kl + 1;
			size_t n = strcmp(key, "error") == 0 ? strlen(v)
							     : strcspn(v, " ");

			snprintf(out, len, "%.*s", (int)n, v);
			return true;
		}
		p += kl;
	}
	return false;
}

static void ask_daemon(struct fstatus *s)
{
	char sock[RUNDIR_MAX + 16], reply[CTL_LINE_MAX], v[64];

	s->pid = syncctl_pid(s->f.run);
	if (!s->pid)
		return;
	snprintf(sock, sizeof(sock), "%s/syncd.sock", s->f.run);
	if (ctl_request(sock, "status", reply, sizeof(reply), NULL) ||
	    strncmp(reply, "ok ", 3) != 0)
		return;
	s->answered = true;
	field(reply, "version", s->version, sizeof(s->version));
	field(reply, "state", s->state, sizeof(s->state));
	field(reply, "error", s->error, sizeof(s->error));
	/* The daemon's counts are fresher than the database's. */
	if (field(reply, "pending_ops", v, sizeof(v)) && atoll(v) >= 0)
		s->pending_ops = atoll(v);
	if (field(reply, "pending_bytes", v, sizeof(v)) && atoll(v) >= 0)
		s->pending_bytes = atoll(v);
	if (field(reply, "last_ok_ms", v, sizeof(v)) && atoll(v) > 0)
		s->last_ok_ms = atoll(v);
	if (field(reply, "tx_bytes", v, sizeof(v)))
		s->tx_bytes = atoll(v);
	if (field(reply, "rx_bytes", v, sizeof(v)))
		s->rx_bytes = atoll(v);
}

static void ask_mount(struct fstatus *s)
{
	char sock[RUNDIR_MAX + 16], line[CTL_LINE_MAX];
	long long seq, pending, held = 0, attention = 0;
	int fd, n;

	snprintf(sock, sizeof(sock), "%s/fs.sock", s->f.run);
	/* Held ops that need attention are listed from the held table;
	 * those waiting for a close are just not applied yet. */
	if (ctl_request(sock, "applied", line, sizeof(line), NULL) == 0 &&
	    sscanf(line, "ok %lld %lld %lld %lld", &seq, &pending, &held,
		   &attention) >= 2)
		s->waiting = pending + held - attention;
	fd = ctl_connect(sock, "conflicts");
	if (fd < 0)
		return;
	if (ctl_read_line(fd, line, sizeof(line)) == 0 &&
	    sscanf(line, "ok %d", &n) == 1 && n >= 0) {
		s->copies = xcalloc((size_t)n + 1, sizeof(char *));
		s->conflicts = 0;
		while (s->conflicts < n &&
		       ctl_read_line(fd, line, sizeof(line)) == 0) {
			line[strcspn(line, "\t")] = '\0';
			out_unescape(line);
			s->copies[s->conflicts++] = xstrdup(line);
		}
	}
	close(fd);
}

static void summarize(struct fstatus *s)
{
	s->attention = true;
	if (s->problem[0])
		s->summary = "Needs attention";
	else if (!s->f.mounted)
		s->attention = false, s->summary = "Not mounted";
	else if (s->conflicts > 0 || s->nheld > 0)
		s->summary = "Needs attention";
	else if (!s->has_remote)
		s->attention = false, s->summary = "Local only";
	else if (!s->pid || strcmp(s->state, "auth-failed") == 0)
		s->summary = "Needs attention";
	else if (strcmp(s->state, "connected") != 0)
		s->attention = false, s->summary = "Offline";
	else if (s->pending_ops > 0 || s->waiting > 0)
		s->attention = false, s->summary = "Syncing";
	else
		s->attention = false, s->summary = "Synced";
}

static void gather(struct fstatus *s)
{
	s->pending_ops = s->pending_bytes = -1;
	s->waiting = -1;
	s->conflicts = -1;
	s->tx_bytes = s->rx_bytes = -1;
	read_sidecar(s);
	ask_daemon(s);
	if (s->f.mounted)
		ask_mount(s);
	summarize(s);
}

static void release(struct fstatus *s)
{
	for (int i = 0; s->copies && i < s->conflicts; i++)
		free(s->copies[i]);
	free(s->copies);
	for (int i = 0; i < s->nheld; i++) {
		free(s->held[i].path);
		free(s->held[i].kind);
	}
	free(s->held);
}

/* ---- human output ---- */

static void row(const char *label, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void row(const char *label, const char *fmt, ...)
{
	va_list ap;

	char *text;

	/* Rows show names, URLs and the daemon's errors (which may quote a
	 * relay): escaped for the terminal, all of it. */
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	printf("  %-11s ", label);
	if (text)
		term_fputs(text, stdout);
	free(text);
	putchar('\n');
}

static void print_human(const struct fstatus *s)
{
	enum out_colour c =
		s->attention ? OUT_RED
		: strcmp(s->summary, "Synced") == 0 ||
				strcmp(s->summary, "Local only") == 0
			? OUT_GREEN
			: OUT_YELLOW;
	char a[64], b[64];

	fputs(out_colour(stdout, OUT_BOLD), stdout);
	term_fputs(s->f.dir, stdout);
	printf("%s  %s%s%s\n", out_reset(stdout), out_colour(stdout, c),
	       s->summary, out_reset(stdout));
	if (s->problem[0])
		row("problem", "%s", s->problem);
	if (!s->f.mounted)
		row("mount", "not mounted");
	else if (strcmp(s->f.mnt, s->f.dir) == 0)
		row("mount", "mounted in place");
	else
		row("mount", "mounted on %s", s->f.mnt);
	if (!s->has_remote) {
		row("remote", "none (local only)");
	} else {
		if (s->answered)
			row("daemon", "running (pid %d, version %s)",
			    (int)s->pid, s->version);
		else if (s->pid)
			row("daemon", "running (pid %d), not answering",
			    (int)s->pid);
		else
			row("daemon", "not running: 'wkfs sync' starts it");
		row("remote", "%s %s", s->remote_type, s->url);
		if (s->answered)
			row("connection", "%s%s%s",
			    strcmp(s->state, "auth-failed") == 0 ? "auth failed"
								 : s->state,
			    s->error[0] ? ": " : "", s->error);
		else
			row("connection", "unknown (no daemon)");
	}
	if (s->pending_ops >= 0) {
		out_bytes(
			(uint64_t)(s->pending_bytes > 0 ? s->pending_bytes : 0),
			a, sizeof(a));
		row("pending", "%" PRId64 " ops, %s not yet sent",
		    s->pending_ops, a);
	} else {
		row("pending", "unknown");
	}
	if (s->tx_bytes >= 0) {
		out_bytes((uint64_t)s->tx_bytes, a, sizeof(a));
		out_bytes((uint64_t)s->rx_bytes, b, sizeof(b));
		row("traffic", "%s sent, %s received since the daemon started",
		    a, b);
	}
	if (s->waiting > 0)
		row("incoming", "%" PRId64 " ops waiting to be applied",
		    s->waiting);
	for (int i = 0; i < s->nheld && i < HELD_SHOWN; i++)
		row(i ? "" : "not applied", "%s (%s): %s", s->held[i].path,
		    s->held[i].kind, s->held[i].why);
	if (s->nheld > HELD_SHOWN)
		row("", "and %d more ('wkfs status --json' lists them all)",
		    s->nheld - HELD_SHOWN);
	if (s->has_remote) {
		if (s->last_ok_ms > 0) {
			out_ago(s->last_ok_ms, out_now_ms(), a, sizeof(a));
			row("last sync", "%s", a);
		} else {
			row("last sync", "never");
		}
	}
	if (s->conflicts < 0)
		row("conflicts", "unknown (not mounted)");
	else if (s->conflicts == 0)
		row("conflicts", "none");
	else
		for (int i = 0; i < s->conflicts; i++)
			row(i ? "" : "conflicts", "%s%s", s->copies[i],
			    i == 0 && s->conflicts > 1
				    ? (snprintf(b, sizeof(b), " (%d in all)",
						s->conflicts),
				       b)
				    : "");
	if (s->have_actor)
		row("actor", "%016" PRIx64 " (device %s)", s->actor, s->device);
}

/* ---- JSON ---- */

static void jstr_or_null(const char *s)
{
	if (s && *s)
		out_json_str(stdout, s);
	else
		fputs("null", stdout);
}

static void jnum_or_null(int64_t v)
{
	if (v >= 0)
		printf("%" PRId64, v);
	else
		fputs("null", stdout);
}

static void print_json(const struct fstatus *s)
{
	char t[64];

	fputs("{\"path\":", stdout);
	out_json_str(stdout, s->f.dir);
	fputs(",\"mountpoint\":", stdout);
	jstr_or_null(s->f.mounted ? s->f.mnt : NULL);
	printf(",\"summary\":\"%s\",\"needs_attention\":%s,\"mounted\":%s",
	       s->summary, s->attention ? "true" : "false",
	       s->f.mounted ? "true" : "false");
	printf(",\"daemon\":{\"running\":%s,\"pid\":",
	       s->pid ? "true" : "false");
	jnum_or_null(s->pid ? s->pid : -1);
	fputs(",\"version\":", stdout);
	jstr_or_null(s->answered ? s->version : NULL);
	printf("},\"remote\":{\"type\":\"%s\",\"url\":",
	       s->has_remote ? s->remote_type : "none");
	jstr_or_null(s->has_remote ? s->url : NULL);
	fputs("},\"connection\":", stdout);
	jstr_or_null(s->answered ? (strcmp(s->state, "auth-failed") == 0
					    ? "auth failed"
					    : s->state)
				 : NULL);
	fputs(",\"pending\":{\"ops\":", stdout);
	jnum_or_null(s->pending_ops);
	fputs(",\"bytes\":", stdout);
	jnum_or_null(s->pending_bytes);
	fputs("},\"waiting_to_apply\":", stdout);
	jnum_or_null(s->waiting);
	fputs(",\"not_applied\":[", stdout);
	for (int i = 0; i < s->nheld; i++) {
		printf("%s{\"path\":", i ? "," : "");
		out_json_str(stdout, s->held[i].path);
		fputs(",\"op\":", stdout);
		out_json_str(stdout, s->held[i].kind);
		fputs(",\"reason\":", stdout);
		out_json_str(stdout, s->held[i].why);
		fputs(",\"since\":", stdout);
		out_iso_ms(s->held[i].since_ms, t, sizeof(t));
		out_json_str(stdout, t);
		putchar('}');
	}
	putchar(']');
	fputs(",\"traffic\":{\"sent\":", stdout);
	jnum_or_null(s->tx_bytes);
	fputs(",\"received\":", stdout);
	jnum_or_null(s->rx_bytes);
	fputs("},\"last_sync\":", stdout);
	if (s->last_ok_ms > 0) {
		out_iso_ms(s->last_ok_ms, t, sizeof(t));
		out_json_str(stdout, t);
	} else {
		fputs("null", stdout);
	}
	fputs(",\"conflicts\":{\"count\":", stdout);
	jnum_or_null(s->conflicts);
	fputs(",\"paths\":[", stdout);
	for (int i = 0; i < s->conflicts; i++) {
		if (i)
			putchar(',');
		out_json_str(stdout, s->copies[i]);
	}
	fputs("]},\"actor\":", stdout);
	if (s->have_actor) {
		snprintf(t, sizeof(t), "%016" PRIx64, s->actor);
		out_json_str(stdout, t);
	} else {
		fputs("null", stdout);
	}
	fputs(",\"device\":", stdout);
	jstr_or_null(s->device);
	fputs(",\"error\":", stdout);
	jstr_or_null(s->problem[0] ? s->problem
		     : s->error[0] ? s->error
				   : NULL);
	putchar('}');
}

int cmd_status(int argc, char **argv)
{
	static const struct option longs[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct fstatus *v;
	bool json = false;
	int n = 0, c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", longs, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else {
			fprintf(c == 'h' ? stdout : stderr,
				"usage: wkfs status [DIR...] [--json]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (optind < argc) {
		v = xcalloc((size_t)(argc - optind), sizeof(*v));
		for (int i = optind; i < argc; i++) {
			char err[1024];

			if (folder_resolve(argv[i], &v[n].f, err,
					   sizeof(err))) {
				fprintf(stderr, "wkfs: %s\n", err);
				ret = 1;
				continue;
			}
			n++;
		}
	} else {
		struct folder *f;
		char err[1024] = "";
		int k = folder_list(&f, err, sizeof(err));

		if (k < 0) {
			if (err[0])
				fprintf(stderr, "wkfs: %s\n", err);
			else
				fprintf(stderr,
					"wkfs: cannot read the mount table: "
					"%s\n",
					strerror(-k));
			return 1;
		}
		v = xcalloc((size_t)k + 1, sizeof(*v));
		for (n = 0; n < k; n++)
			v[n].f = f[n];
		free(f);
	}
	if (json)
		printf("{\"version\":\"%s\",\"folders\":[", WKFS_VERSION);
	else if (n == 0 && ret == 0)
		printf("no synced folder is mounted: 'wkfs status DIR' "
		       "shows one that is not\n");
	for (int i = 0; i < n; i++) {
		gather(&v[i]);
		if (json) {
			if (i)
				putchar(',');
			print_json(&v[i]);
		} else {
			if (i)
				putchar('\n');
			print_human(&v[i]);
		}
		if (v[i].attention && ret == 0)
			ret = 3;
		release(&v[i]);
	}
	if (json)
		puts("]}");
	free(v);
	return ret;
}
