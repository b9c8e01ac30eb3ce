/*
 * relay_http.c - what wkfs-relay answers to plain HTTP: GET /metrics in
 * the Prometheus text format, and GET / (with --status-page) a small
 * HTML page of the same, for a person with a browser.
 *
 * Who may ask (wkfs-relay(8), MONITORING):
 *  - on the --metrics listener, /metrics is open to whoever reaches that
 *    address (bind it to loopback or a private network);
 *  - on the relay's own port, /metrics wants the admin token
 *    (--admin-token-file), as `Authorization: Bearer TOKEN` or as the
 *    password of HTTP Basic (any user name), since that port faces the
 *    replicas and folder names are not for strangers;
 *  - the status page wants the admin token on either.
 *
 * An answer is made whole into the connection's capped buffer, then sent
 * from HTTP_WRITEABLE (lws keeps what the socket does not take at once).
 * Every string a peer could have chosen (a folder name is checked, an
 * error reason may quote a client) is escaped for HTML; the page loads
 * nothing from anywhere.  Runs on the service thread, like the rest.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "relay.h"
#include "relay_chunks.h"
#include "relay_db.h"
#include "relay_int.h"
#include "op.h"
#include "relay_stats.h"
#include "wire.h"
#include "xalloc.h"

/* ---- building an answer ---- */

static void __attribute__((format(printf, 2, 3)))
out_printf(struct wire_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	/* Past the cap the answer stops growing; relay_http_request()
	 * sees the shortfall and answers 500. */
	if (n < 0 || wire_buf_reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf((char *)wire_buf_data(b) + wire_buf_len(b), (size_t)n + 1,
		  fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* s, escaped for HTML text and attribute values. */
static void out_html(struct wire_buf *b, const char *s)
{
	static const char *const esc[256] = {
		['&'] = "&amp;",  ['<'] = "&lt;",   ['>'] = "&gt;",
		['"'] = "&quot;", ['\''] = "&#39;",
	};

	for (; *s; s++) {
		const char *e = esc[(unsigned char)*s];

		if (e)
			out_printf(b, "%s", e);
		else
			out_printf(b, "%c", *s);
	}
}

/* s, escaped for a Prometheus label value. */
static void out_label(struct wire_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			out_printf(b, "\\%c", *s);
		else if (*s == '\n')
			out_printf(b, "\\n");
		else
			out_printf(b, "%c", *s);
	}
}

/* ---- what a page shows of each folder ---- */

struct folder_row {
	struct relay_folder f;
	unsigned connected; /* replicas with a session now */
	uint64_t chunk_bytes;
	uint64_t max_lag; /* the most ops a replica has yet to get */
	unsigned known;	  /* replicas with a cursor */
	const struct relay_folder_stats *st;
};

struct folder_rows {
	struct relay *r;
	struct folder_row *v;
	size_t n;
};

struct lag_walk {
	struct relay *r;
	struct folder_row *row;
};

/* A replica's lag: the ops of others after its cursor (its own need no
 * applying, and the relay sends it none). */
static int lag_of(void *arg, uint64_t actor, uint64_t seq)
{
	struct lag_walk *w = arg;
	uint64_t lag;
	int rc = relay_db_ops_behind(w->r->db, w->row->f.id, seq, actor, &lag);

	if (rc)
		return rc;
	w->row->known++;
	if (lag > w->row->max_lag)
		w->row->max_lag = lag;
	return 0;
}

static int row_of(void *arg, const struct relay_folder *f)
{
	struct folder_rows *l = arg;
	struct folder_row *row;

	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	row = &l->v[l->n++];
	memset(row, 0, sizeof(*row));
	row->f = *f;
	return 0;
}

/* Every folder with what the store and this relay know of it. */
static int folder_rows(struct relay *r, struct folder_rows *l)
{
	int rc;

	l->r = r;
	l->v = NULL;
	l->n = 0;
	rc = relay_db_folders_foreach(r->db, row_of, l);
	for (size_t i = 0; !rc && i < l->n; i++) {
		struct folder_row *row = &l->v[i];

		/* A replica holds two sessions (ops and data): count its
		 * actor once. */
		for (struct relay_replica_seen *p = r->stats.replicas; p;
		     p = p->next)
			if (p->folder == row->f.id && p->sessions > 0)
				row->connected++;
		rc = relay_chunks_bytes(r->o->data_dir, row->f.name,
					&row->chunk_bytes);
		if (!rc) {
			struct lag_walk w = {r, row};

			rc = relay_db_cursors_foreach(r->db, row->f.id, lag_of,
						      &w);
		}
		row->st = relay_stats_folder(&r->stats, row->f.id);
	}
	return rc;
}

/* ---- GET /metrics ---- */

static void family(struct wire_buf *b, const char *name, const char *type,
		   const char *help)
{
	out_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct folder_metric {
	const char *name, *type, *help;
	uint64_t (*value)(const struct folder_row *);
};

/* One sample per folder of a per-folder value. */
static void per_folder(struct wire_buf *b, const struct folder_rows *l,
		       const struct folder_metric *m)
{
	family(b, m->name, m->type, m->help);
	for (size_t i = 0; i < l->n; i++) {
		out_printf(b, "%s{folder=\"", m->name);
		out_label(b, l->v[i].f.name);
		out_printf(b, "\"} %" PRIu64 "\n", m->value(&l->v[i]));
	}
}

static uint64_t v_connected(const struct folder_row *w)
{
	return w->connected;
}
static uint64_t v_head(const struct folder_row *w)
{
	return w->f.head;
}
static uint64_t v_ops_in(const struct folder_row *w)
{
	return w->st->ops_in;
}
static uint64_t v_ops_out(const struct folder_row *w)
{
	return w->st->ops_out;
}
static uint64_t v_pushes(const struct folder_row *w)
{
	return w->st->pushes;
}
static uint64_t v_chunks(const struct folder_row *w)
{
	return w->chunk_bytes;
}
static uint64_t v_lag(const struct folder_row *w)
{
	return w->max_lag;
}
static uint64_t v_known(const struct folder_row *w)
{
	return w->known;
}

static const struct folder_metric folder_metrics[] = {
	{"wkfs_relay_replicas", "gauge", "Replicas connected now.",
	 v_connected},
	{"wkfs_relay_replicas_known", "gauge",
	 "Replicas that ever said HELLO (with a cursor).", v_known},
	{"wkfs_relay_head_seq", "gauge",
	 "The folder's highest op sequence number.", v_head},
	{"wkfs_relay_ops_received_total", "counter",
	 "New ops stored from pushes.", v_ops_in},
	{"wkfs_relay_ops_sent_total", "counter", "Ops sent to replicas.",
	 v_ops_out},
	{"wkfs_relay_pushes_total", "counter", "Pushes stored.", v_pushes},
	{"wkfs_relay_chunk_store_bytes", "gauge",
	 "Bytes of the folder's chunk store.", v_chunks},
	{"wkfs_relay_cursor_lag_max", "gauge",
	 "Ops of others the furthest-behind replica has yet to get.", v_lag},
};

/* A counter by ERROR code, every code named (zeros too). */
static void by_reason(struct wire_buf *b, const char *name, const char *help,
		      const uint64_t *counts)
{
	family(b, name, "counter", help);
	for (int code = 1; code < RELAY_STATS_CODES; code++)
		if (strcmp(wire_err_name(code), "unknown") != 0)
			out_printf(b, "%s{reason=\"%s\"} %" PRIu64 "\n", name,
				   wire_err_name(code), counts[code]);
	out_printf(b, "%s{reason=\"unknown\"} %" PRIu64 "\n", name, counts[0]);
}

static void commit_histogram(struct wire_buf *b, const struct relay_stats *s)
{
	static const char *const what[RELAY_COMMIT_KINDS] = {"ops", "chunks"};
	const char *n = "wkfs_relay_commit_seconds";

	family(b, n, "histogram",
	       "Time to make a push (ops) or staged chunks durable.");
	for (int k = 0; k < RELAY_COMMIT_KINDS; k++) {
		for (int i = 0; i < RELAY_STATS_BUCKETS; i++)
			out_printf(b,
				   "%s_bucket{what=\"%s\",le=\"%g\"} %" PRIu64
				   "\n",
				   n, what[k], relay_stats_bounds[i],
				   s->commit_buckets[k][i]);
		out_printf(b,
			   "%s_bucket{what=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
			   n, what[k], s->commit_count[k]);
		out_printf(b, "%s_sum{what=\"%s\"} %.6f\n", n, what[k],
			   s->commit_sum[k]);
		out_printf(b, "%s_count{what=\"%s\"} %" PRIu64 "\n", n, what[k],
			   s->commit_count[k]);
	}
}

static int render_metrics(struct relay *r, struct wire_buf *b)
{
	const struct relay_stats *s = &r->stats;
	struct folder_rows l;
	unsigned active = 0;
	int rc = folder_rows(r, &l);

	if (rc)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		active += l.v[i].f.active;
	family(b, "wkfs_relay_folders", "gauge", "Folders with a valid token.");
	out_printf(b, "wkfs_relay_folders %u\n", active);
	for (size_t i = 0; i < sizeof(folder_metrics) / sizeof(*folder_metrics);
	     i++)
		per_folder(b, &l, &folder_metrics[i]);
	family(b, "wkfs_relay_bytes_received_total", "counter",
	       "WebSocket message bytes received.");
	out_printf(b, "wkfs_relay_bytes_received_total %" PRIu64 "\n",
		   s->bytes_in);
	family(b, "wkfs_relay_bytes_sent_total", "counter",
	       "WebSocket message bytes sent.");
	out_printf(b, "wkfs_relay_bytes_sent_total %" PRIu64 "\n",
		   s->bytes_out);
	by_reason(b, "wkfs_relay_pushes_refused_total",
		  "Pushes refused, by the ERROR that answered them.",
		  s->refused);
	by_reason(b, "wkfs_relay_errors_total",
		  "Sessions ended by an ERROR, by its reason.", s->errors);
	commit_histogram(b, s);
	family(b, "wkfs_relay_start_time_seconds", "gauge",
	       "When the relay started (Unix time).");
	out_printf(b, "wkfs_relay_start_time_seconds %lld\n",
		   (long long)s->started);
out:
	free(l.v);
	return rc;
}

/* ---- GET / ---- */

static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta http-equiv=\"refresh\" content=\"10\">"
	"<title>wkfs-relay</title><style>"
	"body{font-family:sans-serif;margin:1.5em;color:#222}"
	"table{border-collapse:collapse;margin:.5em 0 1.5em}"
	"th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left}"
	"th{background:#eee}td.n{text-align:right}"
	".on{color:#070;font-weight:bold}.off{color:#888}"
	"</style></head><body>\n<h1>wkfs-relay</h1>\n";

static void out_when(struct wire_buf *b, time_t t, time_t now)
{
	struct tm tm;
	char s[32];

	if (!t) {
		out_printf(b, "before this start");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S UTC", &tm);
	out_printf(b, "%s (%llds ago)", s, (long long)(now > t ? now - t : 0));
}

struct replica_rows {
	struct relay *r;
	struct wire_buf *b;
	const struct folder_row *row;
	time_t now;
};

/* The device name an op carries (the replica's, when it made it). */
static int device_of(void *arg, const struct wire_opent *e)
{
	struct wk_op *op = xmalloc(sizeof(*op));
	char *device = arg;

	if (wire_op_decode(e->payload, e->len, e->actor, e->hlc, op) == 0)
		memcpy(device, op->device, WK_DEVICE_MAX + 1);
	free(op);
	return 0;
}

static int replica_row(void *arg, uint64_t actor, uint64_t seq)
{
	struct replica_rows *rr = arg;
	struct relay_replica_seen *p;
	struct wire_buf *b = rr->b;
	char device[WK_DEVICE_MAX + 1] = "";
	bool on = false;
	uint64_t lag;
	int rc =
		relay_db_ops_behind(rr->r->db, rr->row->f.id, seq, actor, &lag);

	if (rc)
		return rc;
	for (p = rr->r->stats.replicas; p; p = p->next)
		if (p->folder == rr->row->f.id && p->actor == actor)
			break;
	on = p && p->sessions > 0;
	rc = relay_db_last_op(rr->r->db, rr->row->f.id, actor, device_of,
			      device);
	if (rc)
		return rc;
	out_printf(b, "<tr class=\"replica\"><td class=\"device\">");
	out_html(b, device[0] ? device : "?");
	out_printf(b, " <code>%016" PRIx64 "</code></td><td>", actor);
	out_html(b, p ? p->addr : "");
	out_printf(b, "</td><td class=\"%s\">%s</td><td>", on ? "on" : "off",
		   on ? "connected" : "away");
	if (on)
		out_printf(b, "now");
	else
		out_when(b, p ? p->last_seen : 0, rr->now);
	out_printf(b,
		   "</td><td class=\"n\">%" PRIu64
		   "</td><td class=\"n\">%" PRIu64 "</td></tr>\n",
		   seq, lag);
	return 0;
}

static int render_folder(struct relay *r, struct wire_buf *b,
			 const struct folder_row *row, time_t now)
{
	struct replica_rows rr = {r, b, row, now};

	out_printf(b, "<h2>Folder <span class=\"folder\">");
	out_html(b, row->f.name);
	out_printf(b,
		   "</span>%s</h2>\n<p>head %" PRIu64 ", %u connected, "
		   "%" PRIu64 " ops in, %" PRIu64
		   " ops out, chunk store %" PRIu64
		   " bytes, furthest behind %" PRIu64 " ops</p>\n",
		   row->f.active ? "" : " (revoked)", row->f.head,
		   row->connected, row->st->ops_in, row->st->ops_out,
		   row->chunk_bytes, row->max_lag);
	out_printf(b, "<table><tr><th>device, actor</th><th>address</th>"
		      "<th>state</th><th>last seen</th><th>cursor</th>"
		      "<th>lag (ops)</th></tr>\n");
	int rc = relay_db_cursors_foreach(r->db, row->f.id, replica_row, &rr);
	out_printf(b, "</table>\n");
	return rc;
}

static void render_errors(struct relay *r, struct wire_buf *b, time_t now)
{
	const struct relay_error_seen *e;

	out_printf(b, "<h2>Last errors</h2>\n");
	if (!relay_stats_last_error(&r->stats, 0)) {
		out_printf(b, "<p>none since the start</p>\n");
		return;
	}
	out_printf(b, "<table><tr><th>when</th><th>folder</th><th>actor</th>"
		      "<th>address</th><th>error</th><th>reason</th></tr>\n");
	for (unsigned i = 0; (e = relay_stats_last_error(&r->stats, i)); i++) {
		out_printf(b, "<tr class=\"error\"><td>");
		out_when(b, e->at, now);
		out_printf(b, "</td><td>");
		out_html(b, e->folder[0] ? e->folder : "-");
		if (e->actor)
			out_printf(b, "</td><td><code>%016" PRIx64 "</code>",
				   e->actor);
		else
			out_printf(b, "</td><td>-");
		out_printf(b, "</td><td>");
		out_html(b, e->addr);
		out_printf(b, "</td><td>%s</td><td>", wire_err_name(e->code));
		out_html(b, e->reason);
		out_printf(b, "</td></tr>\n");
	}
	out_printf(b, "</table>\n");
}

static int render_status(struct relay *r, struct wire_buf *b)
{
	const struct relay_stats *s = &r->stats;
	time_t now = time(NULL);
	struct folder_rows l;
	int rc = folder_rows(r, &l);

	if (rc)
		goto out;
	out_printf(b, "%s<p>started ", page_head);
	out_when(b, s->started, now);
	out_printf(b,
		   "; %" PRIu64 " bytes in, %" PRIu64 " bytes out; "
		   "%zu folder(s)</p>\n",
		   s->bytes_in, s->bytes_out, l.n);
	for (size_t i = 0; !rc && i < l.n; i++)
		rc = render_folder(r, b, &l.v[i], now);
	render_errors(r, b, now);
	out_printf(b, "<p><a href=\"/metrics\">metrics</a></p>\n"
		      "</body></html>\n");
out:
	free(l.v);
	return rc;
}

/* ---- requests ---- */

/* The request carries the admin token (Bearer, or Basic's password). */
static bool admin_ok(struct relay *r, struct lws *wsi)
{
	char h[512], dec[512];
	uint8_t hash[32];
	unsigned int hn = sizeof(hash);
	const char *tok = NULL, *colon;
	bool ok;

	if (!r->o->has_admin ||
	    lws_hdr_copy(wsi, h, sizeof(h), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
		return false;
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		tok = h + 7;
	} else if (strncasecmp(h, "Basic ", 6) == 0 &&
		   lws_b64_decode_string(h + 6, dec, sizeof(dec)) > 0 &&
		   (colon = strchr(dec, ':'))) {
		tok = colon + 1;
	}
	if (!tok)
		return false;
	EVP_Digest(tok, strlen(tok), hash, &hn, EVP_sha256(), NULL);
	ok = CRYPTO_memcmp(hash, r->o->admin_hash, sizeof(hash)) == 0;
	OPENSSL_cleanse(h, sizeof(h));
	OPENSSL_cleanse(dec, sizeof(dec));
	return ok;
}

static int send_head(struct conn *c, struct lws *wsi, unsigned status,
		     const char *type)
{
	uint8_t hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
				     *end = hdr + sizeof(hdr) - 1;
	static const char realm[] = "Basic realm=\"wkfs-relay\"";

	if (lws_add_http_common_headers(wsi, status, type,
					wire_buf_len(&c->http_out), &p, end))
		return -1;
	if (lws_add_http_header_by_name(
		    wsi, (const unsigned char *)"cache-control:",
		    (const unsigned char *)"no-store", 8, &p, end))
		return -1;
	if (status == HTTP_STATUS_UNAUTHORIZED &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
					 (const unsigned char *)realm,
					 (int)strlen(realm), &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

/* A one-line text answer. */
static int send_text(struct conn *c, struct lws *wsi, unsigned status,
		     const char *line)
{
	wire_buf_reset(&c->http_out);
	out_printf(&c->http_out, "%s\n", line);
	return send_head(c, wsi, status, "text/plain; charset=utf-8");
}

int relay_http_request(struct conn *c, struct lws *wsi, const char *uri)
{
	struct relay *r = lws_context_user(lws_get_context(wsi));
	bool open_port = r->metrics_vh && lws_get_vhost(wsi) == r->metrics_vh;
	bool metrics = strcmp(uri, "/metrics") == 0;
	int rc;

	wire_buf_release(&c->http_out);
	wire_buf_init(&c->http_out, LWS_PRE, RELAY_HTTP_MAX);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
		return send_text(c, wsi, HTTP_STATUS_METHOD_NOT_ALLOWED,
				 "only GET is answered here");
	if (!metrics && (strcmp(uri, "/") != 0 || !r->o->status_page))
		return send_text(c, wsi, HTTP_STATUS_NOT_FOUND,
				 "not found: this relay answers GET /metrics"
				 " and, with --status-page, GET /");
	if (metrics && !open_port && !r->o->has_admin)
		return send_text(c, wsi, HTTP_STATUS_NOT_FOUND,
				 "not found: /metrics on this port needs"
				 " --admin-token-file (or use --metrics"
				 " ADDR:PORT)");
	if ((!metrics || !open_port) && !admin_ok(r, wsi))
		return send_text(c, wsi, HTTP_STATUS_UNAUTHORIZED,
				 "the admin token is needed (Authorization:"
				 " Bearer TOKEN, or as the Basic password)");
	rc = metrics ? render_metrics(r, &c->http_out)
		     : render_status(r, &c->http_out);
	if (!rc && wire_buf_len(&c->http_out) + 1 >= RELAY_HTTP_MAX)
		rc = -EMSGSIZE; /* out_printf() stopped at the cap */
	if (rc)
		return send_text(c, wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR,
				 "cannot read the relay's store, or the"
				 " answer is too big");
	return send_head(c, wsi, HTTP_STATUS_OK,
			 metrics ? "text/plain; version=0.0.4; charset=utf-8"
				 : "text/html; charset=utf-8");
}

int relay_http_writeable(struct conn *c, struct lws *wsi)
{
	size_t len = wire_buf_len(&c->http_out);
	int n;

	if (!c->http_out.mem)
		return 0;
	n = lws_write(wsi, wire_buf_data(&c->http_out), len,
		      LWS_WRITE_HTTP_FINAL);
	wire_buf_release(&c->http_out);
	if (n < (int)len)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void relay_http_done(struct conn *c)
{
	wire_buf_release(&c->http_out);
}
