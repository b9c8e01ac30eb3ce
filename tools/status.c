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
 *
 * --watch [--interval S] shows it again every S seconds until interrupted:
 * on a terminal the view is redrawn in place (plain ANSI: cursor home,
 * erase to the end of each line and of the screen; colour as ever, none
 * under NO_COLOR), with each folder's rate since the last view; anywhere
 * else (a pipe, a file, TERM=dumb) each view is printed after a
 * "--- TIME" line, or as one JSON document per line with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <time.h>
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
#include "store.h"
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
	bool have_store;
	struct store_usage store; /* the sidecar's disk use */

	pid_t pid;
	bool answered; /* the daemon answered status */
	char version[64];
	char state[32]; /* "" unknown */
	char error[512];
	int64_t pending_ops, pending_bytes; /* -1 unknown */
	int64_t pending_files;		    /* files among them, -1 */
	int64_t to_receive;		    /* ops on the relay not yet here */
	double tx_rate, rx_rate; /* bytes/s since the last view, -1 */
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
	int64_t v2;
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
	s->have_store = store_usage_at(fd, &s->store) == 0;
	if (db_open_at(fd, DB_READONLY, &db, err, sizeof(err))) {
		snprintf(s->problem, sizeof(s->problem), "%s", err);
		goto out;
	}
	s->have_actor = db_meta_get_u64(db, "actor", &s->actor) == 0;
	if (db_pending(db, &s->pending_ops, &s->pending_bytes))
		s->pending_ops = s->pending_bytes = -1;
	if (db_pending_files(db, &s->pending_files, &v2))
		s->pending_files = -1;
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
	char sock[RUNDIR_MAX + 16], reply[CTL_LINE_MAX], v[64], c[64];

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
	if (field(reply, "pending_files", v, sizeof(v)) && atoll(v) >= 0)
		s->pending_files = atoll(v);
	if (field(reply, "remote_head", v, sizeof(v)) &&
	    field(reply, "cursor", c, sizeof(c)))
		s->to_receive = atoll(v) > atoll(c) ? atoll(v) - atoll(c) : 0;
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
	else if (s->pending_ops > 0 || s->waiting > 0 || s->to_receive > 0)
		s->attention = false, s->summary = "Syncing";
	else
		s->attention = false, s->summary = "Synced";
}

static void gather(struct fstatus *s)
{
	s->pending_ops = s->pending_bytes = s->pending_files = -1;
	s->to_receive = -1;
	s->tx_rate = s->rx_rate = -1;
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

static void row(FILE *o, const char *label, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void row(FILE *o, const char *label, const char *fmt, ...)
{
	va_list ap;

	char *text;

	/* Rows show names, URLs and the daemon's errors (which may quote a
	 * relay): escaped for the terminal, all of it. */
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	fprintf(o, "  %-11s ", label);
	if (text)
		term_fputs(text, o);
	free(text);
	fputc('\n', o);
}

/* What is on its way, out and in, and (watching) how fast. */
static void print_progress(FILE *o, const struct fstatus *s)
{
	char a[64], b[64];

	if (s->pending_ops >= 0) {
		out_bytes(
			(uint64_t)(s->pending_bytes > 0 ? s->pending_bytes : 0),
			a, sizeof(a));
		if (s->pending_files > 0)
			snprintf(b, sizeof(b), " (%" PRId64 " files)",
				 s->pending_files);
		else
			b[0] = '\0';
		row(o, "pending", "%" PRId64 " ops, %s not yet sent%s",
		    s->pending_ops, a, b);
	} else {
		row(o, "pending", "unknown");
	}
	if (s->to_receive > 0)
		row(o, "to receive",
		    "%" PRId64 " ops on the remote not yet here",
		    s->to_receive);
	if (s->tx_rate >= 0 && (s->tx_rate > 0 || s->rx_rate > 0)) {
		out_bytes((uint64_t)s->tx_rate, a, sizeof(a));
		out_bytes((uint64_t)s->rx_rate, b, sizeof(b));
		row(o, "rate", "%s/s out, %s/s in", a, b);
	}
}

/* "store  1.2 MiB: oplog 1 MiB, 3 objects 200 KiB, recipes 4 KiB" */
static void print_store(FILE *o, const struct store_usage *u)
{
	char all[32], db[32], obj[32], rec[32], chunks[80] = "";

	out_bytes(store_total(u), all, sizeof(all));
	out_bytes(u->db_bytes, db, sizeof(db));
	out_bytes(u->object_bytes, obj, sizeof(obj));
	out_bytes(u->recipe_bytes, rec, sizeof(rec));
	if (u->chunk_bytes) {
		char c[32];

		out_bytes(u->chunk_bytes, c, sizeof(c));
		snprintf(chunks, sizeof(chunks), ", chunks %s", c);
	}
	row(o, "store", "%s: oplog %s, %" PRIu64 " object%s %s, recipes %s%s",
	    all, db, u->objects, u->objects == 1 ? "" : "s", obj, rec, chunks);
}

static void print_human(FILE *o, const struct fstatus *s)
{
	enum out_colour c =
		s->attention ? OUT_RED
		: strcmp(s->summary, "Synced") == 0 ||
				strcmp(s->summary, "Local only") == 0
			? OUT_GREEN
			: OUT_YELLOW;
	char a[64], b[64];

	fputs(out_colour(stdout, OUT_BOLD), o);
	term_fputs(s->f.dir, o);
	fprintf(o, "%s  %s%s%s\n", out_reset(stdout), out_colour(stdout, c),
		s->summary, out_reset(stdout));
	if (s->problem[0])
		row(o, "problem", "%s", s->problem);
	if (!s->f.mounted)
		row(o, "mount", "not mounted");
	else if (strcmp(s->f.mnt, s->f.dir) == 0)
		row(o, "mount", "mounted in place");
	else
		row(o, "mount", "mounted on %s", s->f.mnt);
	if (!s->has_remote) {
		row(o, "remote", "none (local only)");
	} else {
		if (s->answered)
			row(o, "daemon", "running (pid %d, version %s)",
			    (int)s->pid, s->version);
		else if (s->pid)
			row(o, "daemon", "running (pid %d), not answering",
			    (int)s->pid);
		else
			row(o, "daemon", "not running: 'wkfs sync' starts it");
		row(o, "remote", "%s %s", s->remote_type, s->url);
		if (s->answered)
			row(o, "connection", "%s%s%s",
			    strcmp(s->state, "auth-failed") == 0 ? "auth failed"
								 : s->state,
			    s->error[0] ? ": " : "", s->error);
		else
			row(o, "connection", "unknown (no daemon)");
	}
	print_progress(o, s);
	if (s->tx_bytes >= 0) {
		out_bytes((uint64_t)s->tx_bytes, a, sizeof(a));
		out_bytes((uint64_t)s->rx_bytes, b, sizeof(b));
		row(o, "traffic",
		    "%s sent, %s received since the daemon started", a, b);
	}
	if (s->waiting > 0)
		row(o, "incoming", "%" PRId64 " ops waiting to be applied",
		    s->waiting);
	for (int i = 0; i < s->nheld && i < HELD_SHOWN; i++)
		row(o, i ? "" : "not applied", "%s (%s): %s", s->held[i].path,
		    s->held[i].kind, s->held[i].why);
	if (s->nheld > HELD_SHOWN)
		row(o, "", "and %d more ('wkfs status --json' lists them all)",
		    s->nheld - HELD_SHOWN);
	if (s->has_remote) {
		if (s->last_ok_ms > 0) {
			out_ago(s->last_ok_ms, out_now_ms(), a, sizeof(a));
			row(o, "last sync", "%s", a);
		} else {
			row(o, "last sync", "never");
		}
	}
	if (s->conflicts < 0)
		row(o, "conflicts", "unknown (not mounted)");
	else if (s->conflicts == 0)
		row(o, "conflicts", "none");
	else
		for (int i = 0; i < s->conflicts; i++)
			row(o, i ? "" : "conflicts", "%s%s", s->copies[i],
			    i == 0 && s->conflicts > 1
				    ? (snprintf(b, sizeof(b), " (%d in all)",
						s->conflicts),
				       b)
				    : "");
	if (s->have_actor)
		row(o, "actor", "%016" PRIx64 " (device %s)", s->actor,
		    s->device);
	if (s->have_store)
		print_store(o, &s->store);
}

/* ---- JSON ---- */

static void jstr_or_null(FILE *o, const char *s)
{
	if (s && *s)
		out_json_str(o, s);
	else
		fputs("null", o);
}

static void jnum_or_null(FILE *o, int64_t v)
{
	if (v >= 0)
		fprintf(o, "%" PRId64, v);
	else
		fputs("null", o);
}

static void print_json(FILE *o, const struct fstatus *s)
{
	char t[64];

	fputs("{\"path\":", o);
	out_json_str(o, s->f.dir);
	fputs(",\"mountpoint\":", o);
	jstr_or_null(o, s->f.mounted ? s->f.mnt : NULL);
	fprintf(o, ",\"summary\":\"%s\",\"needs_attention\":%s,\"mounted\":%s",
		s->summary, s->attention ? "true" : "false",
		s->f.mounted ? "true" : "false");
	fprintf(o, ",\"daemon\":{\"running\":%s,\"pid\":",
		s->pid ? "true" : "false");
	jnum_or_null(o, s->pid ? s->pid : -1);
	fputs(",\"version\":", o);
	jstr_or_null(o, s->answered ? s->version : NULL);
	fprintf(o, "},\"remote\":{\"type\":\"%s\",\"url\":",
		s->has_remote ? s->remote_type : "none");
	jstr_or_null(o, s->has_remote ? s->url : NULL);
	fputs("},\"connection\":", o);
	jstr_or_null(o, s->answered ? (strcmp(s->state, "auth-failed") == 0
					       ? "auth failed"
					       : s->state)
				    : NULL);
	fputs(",\"pending\":{\"ops\":", o);
	jnum_or_null(o, s->pending_ops);
	fputs(",\"bytes\":", o);
	jnum_or_null(o, s->pending_bytes);
	fputs(",\"files\":", o);
	jnum_or_null(o, s->pending_files);
	fputs("},\"to_receive\":", o);
	jnum_or_null(o, s->to_receive);
	fputs(",\"waiting_to_apply\":", o);
	jnum_or_null(o, s->waiting);
	fputs(",\"not_applied\":[", o);
	for (int i = 0; i < s->nheld; i++) {
		fprintf(o, "%s{\"path\":", i ? "," : "");
		out_json_str(o, s->held[i].path);
		fputs(",\"op\":", o);
		out_json_str(o, s->held[i].kind);
		fputs(",\"reason\":", o);
		out_json_str(o, s->held[i].why);
		fputs(",\"since\":", o);
		out_iso_ms(s->held[i].since_ms, t, sizeof(t));
		out_json_str(o, t);
		fputc('}', o);
	}
	fputc(']', o);
	fputs(",\"traffic\":{\"sent\":", o);
	jnum_or_null(o, s->tx_bytes);
	fputs(",\"received\":", o);
	jnum_or_null(o, s->rx_bytes);
	fputs("},\"last_sync\":", o);
	if (s->last_ok_ms > 0) {
		out_iso_ms(s->last_ok_ms, t, sizeof(t));
		out_json_str(o, t);
	} else {
		fputs("null", o);
	}
	fputs(",\"conflicts\":{\"count\":", o);
	jnum_or_null(o, s->conflicts);
	fputs(",\"paths\":[", o);
	for (int i = 0; i < s->conflicts; i++) {
		if (i)
			fputc(',', o);
		out_json_str(o, s->copies[i]);
	}
	fputs("]},\"actor\":", o);
	if (s->have_actor) {
		snprintf(t, sizeof(t), "%016" PRIx64, s->actor);
		out_json_str(o, t);
	} else {
		fputs("null", o);
	}
	fputs(",\"device\":", o);
	jstr_or_null(o, s->device);
	fputs(",\"store\":", o);
	if (s->have_store)
		fprintf(o,
			"{\"bytes\":%" PRIu64 ",\"oplog_bytes\":%" PRIu64
			",\"objects\":%" PRIu64 ",\"object_bytes\":%" PRIu64
			",\"recipe_bytes\":%" PRIu64 ",\"chunk_bytes\":%" PRIu64
			"}",
			store_total(&s->store), s->store.db_bytes,
			s->store.objects, s->store.object_bytes,
			s->store.recipe_bytes, s->store.chunk_bytes);
	else
		fputs("null", o);
	fputs(",\"error\":", o);
	jstr_or_null(o, s->problem[0] ? s->problem
			: s->error[0] ? s->error
				      : NULL);
	fputc('}', o);
}

/* The folders to show: each DIR, or every mounted one; *n of them.  1
 * when a DIR is not a synced folder (said on stderr), 0 otherwise. */
static int collect(char **dirs, int ndirs, struct fstatus **out, int *n)
{
	struct fstatus *v;
	int ret = 0;

	*n = 0;
	if (ndirs > 0) {
		v = xcalloc((size_t)ndirs, sizeof(*v));
		for (int i = 0; i < ndirs; i++) {
			char err[1024];

			if (folder_resolve(dirs[i], &v[*n].f, err,
					   sizeof(err))) {
				fprintf(stderr, "wkfs: %s\n", err);
				ret = 1;
				continue;
			}
			(*n)++;
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
			return -1;
		}
		v = xcalloc((size_t)k + 1, sizeof(*v));
		for (*n = 0; *n < k; (*n)++)
			v[*n].f = f[*n];
		free(f);
	}
	*out = v;
	return ret;
}

/* Traffic counters of the last view, for the rates (--watch). */
struct seen_traffic {
	char dir[sizeof(((struct folder *)0)->dir)];
	int64_t tx, rx, at_ms;
};

static void rate_of(struct fstatus *s, struct seen_traffic **seen, int *nseen)
{
	int64_t now = out_now_ms();
	struct seen_traffic *t = NULL;

	if (s->tx_bytes < 0)
		return;
	for (int i = 0; i < *nseen && !t; i++)
		if (strcmp((*seen)[i].dir, s->f.dir) == 0)
			t = &(*seen)[i];
	if (!t) {
		*seen = xrealloc(*seen, (size_t)(*nseen + 1) * sizeof(**seen));
		t = &(*seen)[(*nseen)++];
		snprintf(t->dir, sizeof(t->dir), "%s", s->f.dir);
	} else if (now > t->at_ms && s->tx_bytes >= t->tx &&
		   s->rx_bytes >= t->rx) {
		s->tx_rate = (double)(s->tx_bytes - t->tx) * 1000.0 /
			     (double)(now - t->at_ms);
		s->rx_rate = (double)(s->rx_bytes - t->rx) * 1000.0 /
			     (double)(now - t->at_ms);
	}
	t->tx = s->tx_bytes;
	t->rx = s->rx_bytes;
	t->at_ms = now;
}

struct status_view {
	char **dirs;
	int ndirs;
	bool json;
	struct seen_traffic *seen; /* --watch: rates */
	int nseen;
};

/* One view of every folder on o; 0, 1 (a DIR is no synced folder) or 3
 * (a folder needs attention). */
static int show(struct status_view *w, FILE *o)
{
	struct fstatus *v;
	int n, ret = collect(w->dirs, w->ndirs, &v, &n);

	if (ret < 0)
		return 1;
	if (w->json)
		fprintf(o, "{\"version\":\"%s\",\"folders\":[", WKFS_VERSION);
	else if (n == 0 && ret == 0)
		fprintf(o, "no synced folder is mounted: 'wkfs status DIR' "
			   "shows one that is not\n");
	for (int i = 0; i < n; i++) {
		gather(&v[i]);
		if (w->nseen >= 0)
			rate_of(&v[i], &w->seen, &w->nseen);
		if (w->json) {
			if (i)
				fputc(',', o);
			print_json(o, &v[i]);
		} else {
			if (i)
				fputc('\n', o);
			print_human(o, &v[i]);
		}
		if (v[i].attention && ret == 0)
			ret = 3;
		release(&v[i]);
	}
	if (w->json)
		fputs("]}\n", o);
	free(v);
	return ret;
}

static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig)
{
	watch_stop = sig;
}

/* Copies a view to the terminal over the last one: each line erases what
 * was left of the old one, and the screen below is erased after it. */
static void redraw(const char *text, int secs)
{
	char now[16];
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(now, sizeof(now), "%H:%M:%S", &tm);
	printf("\033[H%swkfs status%s, every %d s, %s (Ctrl-C to quit)\033[K\n"
	       "\033[K\n",
	       out_colour(stdout, OUT_BOLD), out_reset(stdout), secs, now);
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");

		printf("%.*s\033[K\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
	fputs("\033[J", stdout);
	fflush(stdout);
}

/* --watch: a view every secs seconds until SIGINT or SIGTERM. */
static int watch(struct status_view *w, int secs)
{
	const char *term = getenv("TERM");
	bool redraws =
		!w->json && isatty(1) && !(term && !strcmp(term, "dumb"));
	struct sigaction sa = {.sa_handler = on_watch_signal};

	sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: the sleep ends */
	sigaction(SIGTERM, &sa, NULL);
	w->nseen = 0;
	if (redraws)
		fputs("\033[?25l\033[H\033[2J", stdout); /* hide the cursor */
	while (!watch_stop) {
		struct timespec nap = {secs, 0};

		if (redraws) {
			char *text = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&text, &len);

			if (!m)
				break;
			show(w, m);
			fclose(m);
			redraw(text, secs);
			free(text);
		} else {
			if (!w->json) {
				char now[32];

				out_iso_ms(out_now_ms(), now, sizeof(now));
				printf("--- %s\n", now);
			}
			show(w, stdout);
			fflush(stdout);
		}
		while (!watch_stop && nanosleep(&nap, &nap) < 0 &&
		       errno == EINTR)
			;
	}
	if (redraws)
		fputs("\033[?25h\n", stdout);
	free(w->seen);
	return 0;
}

static const char status_usage[] =
	"usage: wkfs status [DIR...] [--json] [--watch [--interval SECONDS]]\n";

int cmd_status(int argc, char **argv)
{
	static const struct option longs[] = {
		{"json", no_argument, NULL, 'j'},
		{"watch", no_argument, NULL, 'w'},
		{"interval", required_argument, NULL, 'i'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct status_view w = {.nseen = -1};
	bool watching = false;
	long secs = 2;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jwi:h", longs, NULL)) != -1) {
		switch (c) {
		case 'j':
			w.json = true;
			break;
		case 'w':
			watching = true;
			break;
		case 'i':
			secs = strtol(optarg, &end, 10);
			if (*end || end == optarg || secs < 1 || secs > 3600) {
				fprintf(stderr,
					"wkfs: --interval takes whole seconds,"
					" 1 to 3600\n");
				return 2;
			}
			break;
		default:
			fputs(status_usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	w.dirs = argv + optind;
	w.ndirs = argc - optind;
	if (watching)
		return watch(&w, (int)secs);
	return show(&w, stdout);
}
