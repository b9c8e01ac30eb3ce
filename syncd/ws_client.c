/*
 * ws_client.c - a blocking wkfs protocol client over libwebsockets (see
 * ws_client.h).
 *
 * Each struct wsc owns one lws context with one client connection.  The
 * public calls run lws_service() until their condition holds; a timer on
 * the context (`wake`) makes sure the service call returns by the caller's
 * deadline.  The lws callback only moves bytes: complete received messages
 * go to an inbound list, queued frames go out from CLIENT_WRITEABLE, one
 * per callback, with LWS_PRE headroom.
 */
#include "ws_client.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "fault.h"
#include "wlog.h"
#include "xalloc.h"

/* A frame in a queue: LWS_PRE bytes of headroom, then len bytes. */
struct wsc_frame {
	struct wsc_frame *next;
	size_t len;
	uint8_t mem[];
};

struct wsc {
	struct lws_context *ctx;
	struct lws *wsi;
	bool established;
	bool closed;
	bool closing;
	char conn_err[256];

	char host[256];
	char folder[WIRE_FOLDER_MAX + 1];

	struct wsc_frame *out_head, *out_tail;
	size_t out_bytes;

	struct wire_buf rx; /* the message being reassembled */
	bool in_msg;
	bool rx_bad;
	struct wsc_frame *in_head, *in_tail;
	size_t in_bytes;
	bool rx_paused;
	struct wsc_frame *cur; /* what the last wsc_recv() result points into */

	int peer_err;
	char peer_reason[WIRE_REASON_MAX + 1];
	int close_code;
	char close_reason[128];

	lws_sorted_usec_list_t wake;
	atomic_bool woken; /* wsc_wake() since the last wsc_recv_wakeable() */

	/* Message bytes sent and received, added to where wsc_count_into()
	 * points (else to the dummies). */
	uint64_t *tx_bytes, *rx_bytes;
	uint64_t tx_dummy, rx_dummy;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_noop(lws_sorted_usec_list_t *sul)
{
}

static struct wsc_frame *frame_new(const void *p, size_t len)
{
	struct wsc_frame *f = xmalloc(sizeof(*f) + LWS_PRE + len);

	f->next = NULL;
	f->len = len;
	if (len)
		memcpy(f->mem + LWS_PRE, p, len);
	return f;
}

static void frames_free(struct wsc_frame *f)
{
	while (f) {
		struct wsc_frame *next = f->next;

		free(f);
		f = next;
	}
}

static void on_receive(struct wsc *c, const void *in, size_t len)
{
	struct wsc_frame *f;

	*c->rx_bytes += len;
	if (c->rx_bad)
		return;
	if (wire_buf_append(&c->rx, in, len)) {
		c->rx_bad = true; /* reported when the caller gets there */
		f = frame_new("", 0);
	} else if (!lws_is_final_fragment(c->wsi)) {
		return;
	} else {
		f = frame_new(wire_buf_data(&c->rx), wire_buf_len(&c->rx));
	}
	wire_buf_reset(&c->rx);
	if (c->in_tail)
		c->in_tail->next = f;
	else
		c->in_head = f;
	c->in_tail = f;
	c->in_bytes += f->len;
	if (c->in_bytes > 2 * (size_t)WIRE_FRAME_MAX && !c->rx_paused) {
		c->rx_paused = true;
		lws_rx_flow_control(c->wsi, 0);
	}
}

static int on_writeable(struct wsc *c)
{
	struct wsc_frame *f = c->out_head;
	bool push;
	int n;

	if (c->closing) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	if (!f)
		return 0;
	c->out_head = f->next;
	if (!c->out_head)
		c->out_tail = NULL;
	c->out_bytes -= f->len;
	*c->tx_bytes += f->len;
	/* Read before lws_write, which masks the frame in place. */
	push = f->len && f->mem[LWS_PRE] == WIRE_PUSH;
	n = lws_write(c->wsi, f->mem + LWS_PRE, f->len, LWS_WRITE_BINARY);
	/* wkfs-syncd's PUSH is on the wire, its ACK not yet read. */
	if (n >= 0 && push)
		fault_point("syncd.after_send");
	free(f);
	if (n < 0)
		return -1;
	if (c->out_head)
		lws_callback_on_writable(c->wsi);
	return 0;
}

static int wsc_callback(struct lws *wsi, enum lws_callback_reasons reason,
			void *user, void *in, size_t len)
{
	struct wsc *c = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->established = true;
		if (c->out_head)
			lws_callback_on_writable(wsi);
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		on_receive(c, in, len);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return on_writeable(c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (len >= 2) {
			const uint8_t *p = in;
			size_t n = len - 2 < sizeof(c->close_reason) - 1
					   ? len - 2
					   : sizeof(c->close_reason) - 1;

			c->close_code = p[0] << 8 | p[1];
			memcpy(c->close_reason, p + 2, n);
			c->close_reason[n] = '\0';
		}
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		snprintf(c->conn_err, sizeof(c->conn_err), "%s",
			 in ? (const char *)in : "connection failed");
		c->closed = true;
		c->wsi = NULL;
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		c->closed = true;
		c->wsi = NULL;
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols wsc_protocols[] = {
	{
		.name = "wkfs",
		.callback = wsc_callback,
		.rx_buffer_size = 65536,
	},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/*
 * Services until done(c) or the deadline: 0, -ETIMEDOUT, -ECONNRESET, and
 * with wakeable -EINTR once wsc_wake() was called.
 */
static int service_until(struct wsc *c, int64_t deadline,
			 bool (*done)(const struct wsc *c), bool wakeable)
{
	while (!done(c)) {
		int64_t left = deadline - now_ms();

		if (c->closed)
			return -ECONNRESET;
		if (wakeable && atomic_exchange(&c->woken, false))
			return -EINTR;
		if (left <= 0)
			return -ETIMEDOUT;
		lws_sul_schedule(c->ctx, 0, &c->wake, wake_noop,
				 left * LWS_US_PER_MS);
		if (lws_service(c->ctx, 0) < 0)
			return -ECONNRESET;
	}
	return 0;
}

void wsc_wake(struct wsc *c)
{
	atomic_store(&c->woken, true);
	/* The one lws call that may come from another thread. */
	lws_cancel_service(c->ctx);
}

/* Splits ws[s]://host[:port]/path. */
static int parse_url(struct wsc *c, const char *url, bool *tls, int *port,
		     char *err, size_t errlen)
{
	const char *p, *slash, *hend;
	size_t hlen;

	if (strncmp(url, "ws://", 5) == 0) {
		*tls = false;
		*port = 80;
		p = url + 5;
	} else if (strncmp(url, "wss://", 6) == 0) {
		*tls = true;
		*port = 443;
		p = url + 6;
	} else {
		snprintf(err, errlen, "%s: not a ws:// or wss:// URL", url);
		return -EINVAL;
	}
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	if (*p == '[') {
		hend = memchr(p, ']', (size_t)(slash - p));
		if (!hend)
			goto out_bad;
		hlen = (size_t)(hend - p - 1);
		p++;
		hend++;
	} else {
		hend = memchr(p, ':', (size_t)(slash - p));
		if (!hend)
			hend = slash;
		hlen = (size_t)(hend - p);
	}
	if (hlen == 0 || hlen >= sizeof(c->host))
		goto out_bad;
	memcpy(c->host, p, hlen);
	c->host[hlen] = '\0';
	if (hend < slash) {
		char *end;
		long v;

		if (*hend != ':')
			goto out_bad;
		v = strtol(hend + 1, &end, 10);
		if (end != slash || v <= 0 || v > 65535)
			goto out_bad;
		*port = (int)v;
	}
	if (!*slash || !wire_folder_valid(slash + 1, strlen(slash + 1))) {
		snprintf(err, errlen, "%s: the path must name a folder", url);
		return -EINVAL;
	}
	snprintf(c->folder, sizeof(c->folder), "%s", slash + 1);
	return 0;

out_bad:
	snprintf(err, errlen, "%s: bad host or port", url);
	return -EINVAL;
}

static bool is_established(const struct wsc *c)
{
	return c->established;
}

int wsc_connect(const char *url, const char *ca_file, int timeout_ms,
		struct wsc **out, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	struct wsc *c = xcalloc(1, sizeof(*c));
	char path[WIRE_FOLDER_MAX + 2];
	const char *insecure = getenv("WKFS_TLS_INSECURE");
	bool tls;
	int port, rc;

	err[0] = '\0';
	c->tx_bytes = &c->tx_dummy;
	c->rx_bytes = &c->rx_dummy;
	wire_buf_init(&c->rx, 0, WIRE_FRAME_MAX);
	rc = parse_url(c, url, &tls, &port, err, errlen);
	if (rc)
		goto out_free;
	lws_set_log_level(wlog_debug_enabled() ? LLL_ERR | LLL_WARN : 0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = wsc_protocols;
	info.user = c;
	if (tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		if (ca_file && access(ca_file, R_OK) != 0) {
			snprintf(err, errlen, "%s: [remote] ca %s: %s", url,
				 ca_file, strerror(errno));
			rc = -ENOENT;
			goto out_free;
		}
		info.client_ssl_ca_filepath = ca_file;
	}
	c->ctx = lws_create_context(&info);
	if (!c->ctx) {
		snprintf(err, errlen, "cannot start libwebsockets");
		rc = -ENOMEM;
		goto out_free;
	}
	snprintf(path, sizeof(path), "/%s", c->folder);
	memset(&ci, 0, sizeof(ci));
	ci.context = c->ctx;
	ci.address = c->host;
	ci.port = port;
	ci.path = path;
	ci.host = c->host;
	ci.origin = c->host;
	ci.protocol = "wkfs";
	ci.pwsi = &c->wsi;
	if (tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (insecure && strcmp(insecure, "1") == 0)
			ci.ssl_connection |=
				LCCSCF_ALLOW_SELFSIGNED |
				LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
	}
	if (!lws_client_connect_via_info(&ci)) {
		snprintf(err, errlen, "cannot connect to %s", url);
		rc = -ECONNREFUSED;
		goto out_free;
	}
	rc = service_until(c, now_ms() + timeout_ms, is_established, false);
	if (rc) {
		snprintf(err, errlen, "cannot connect to %s: %s", url,
			 rc == -ETIMEDOUT ? "timed out"
			 : c->conn_err[0] ? c->conn_err
					  : "connection closed");
		goto out_free;
	}
	*out = c;
	return 0;

out_free:
	wsc_close(c);
	return rc;
}

static bool is_closed(const struct wsc *c)
{
	return c->closed;
}

void wsc_close(struct wsc *c)
{
	if (!c)
		return;
	if (c->ctx && c->wsi && !c->closed) {
		c->closing = true;
		lws_callback_on_writable(c->wsi);
		service_until(c, now_ms() + 1000, is_closed, false);
	}
	if (c->ctx)
		lws_context_destroy(c->ctx);
	frames_free(c->out_head);
	frames_free(c->in_head);
	free(c->cur);
	wire_buf_release(&c->rx);
	free(c);
}

void wsc_count_into(struct wsc *c, uint64_t *tx, uint64_t *rx)
{
	*tx += c->tx_dummy;
	*rx += c->rx_dummy;
	c->tx_dummy = c->rx_dummy = 0;
	c->tx_bytes = tx;
	c->rx_bytes = rx;
}

const char *wsc_folder(const struct wsc *c)
{
	return c->folder;
}

int wsc_send(struct wsc *c, const void *frame, size_t len)
{
	struct wsc_frame *f;

	if (c->closed || !c->wsi)
		return -ECONNRESET;
	if (len > WSC_OUT_MAX - c->out_bytes)
		return -EMSGSIZE;
	f = frame_new(frame, len);
	if (c->out_tail)
		c->out_tail->next = f;
	else
		c->out_head = f;
	c->out_tail = f;
	c->out_bytes += len;
	lws_callback_on_writable(c->wsi);
	return 0;
}

int wsc_send_msg(struct wsc *c, const struct wire_msg *m)
{
	struct wire_buf b;
	int rc;

	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	rc = wire_encode(&b, m);
	if (!rc)
		rc = wsc_send(c, wire_buf_data(&b), wire_buf_len(&b));
	wire_buf_release(&b);
	return rc;
}

static bool out_empty(const struct wsc *c)
{
	return !c->out_head;
}

int wsc_flush(struct wsc *c, int timeout_ms)
{
	return service_until(c, now_ms() + timeout_ms, out_empty, false);
}

static bool have_input(const struct wsc *c)
{
	return c->in_head != NULL;
}

static int recv_msg(struct wsc *c, int timeout_ms, bool wakeable,
		    struct wire_msg *m)
{
	struct wsc_frame *f;
	int rc;

	free(c->cur);
	c->cur = NULL;
	memset(m, 0, sizeof(*m));
	/* What arrived before a close is delivered first. */
	if (!c->in_head) {
		rc = service_until(c, now_ms() + timeout_ms, have_input,
				   wakeable);
		if (rc)
			return rc;
	}
	f = c->in_head;
	c->in_head = f->next;
	if (!c->in_head)
		c->in_tail = NULL;
	c->in_bytes -= f->len;
	c->cur = f;
	if (c->rx_paused && c->in_bytes < WIRE_FRAME_MAX && c->wsi) {
		c->rx_paused = false;
		lws_rx_flow_control(c->wsi, 1);
	}
	if (c->rx_bad && !c->in_head)
		return -EMSGSIZE;
	rc = wire_decode(f->mem + LWS_PRE, f->len, m);
	if (rc)
		return -EBADMSG;
	if (m->type == WIRE_ERROR) {
		c->peer_err = m->error.code;
		memcpy(c->peer_reason, m->error.reason, sizeof(c->peer_reason));
		return -EPROTO;
	}
	return 0;
}

int wsc_recv(struct wsc *c, int timeout_ms, struct wire_msg *m)
{
	return recv_msg(c, timeout_ms, false, m);
}

int wsc_recv_wakeable(struct wsc *c, int timeout_ms, struct wire_msg *m)
{
	return recv_msg(c, timeout_ms, true, m);
}

int wsc_hello(struct wsc *c, const uint8_t token[WIRE_TOKEN_LEN],
	      uint64_t actor, uint64_t cursor, int timeout_ms, uint64_t *head)
{
	struct wire_msg m = {.type = WIRE_HELLO};
	int rc;

	m.hello.version = WIRE_VERSION;
	memcpy(m.hello.folder, c->folder, sizeof(m.hello.folder));
	memcpy(m.hello.token, token, WIRE_TOKEN_LEN);
	m.hello.actor = actor;
	m.hello.cursor = cursor;
	rc = wsc_send_msg(c, &m);
	if (!rc)
		rc = wsc_recv(c, timeout_ms, &m);
	if (rc)
		return rc;
	if (m.type != WIRE_WELCOME || m.welcome.version != WIRE_VERSION)
		return -EBADMSG;
	*head = m.welcome.head_seq;
	return 0;
}

int wsc_peer_error(const struct wsc *c, const char **reason)
{
	if (reason)
		*reason = c->peer_reason;
	return c->peer_err;
}

int wsc_close_status(const struct wsc *c, const char **reason)
{
	if (reason)
		*reason = c->close_reason;
	return c->close_code;
}

bool wsc_closed(const struct wsc *c)
{
	return c->closed;
}

int wsc_token_parse(const char *hex, uint8_t token[WIRE_TOKEN_LEN])
{
	if (strlen(hex) != 2 * WIRE_TOKEN_LEN)
		return -EINVAL;
	for (unsigned i = 0; i < WIRE_TOKEN_LEN; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char ch = hex[2 * i + j];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= (unsigned)(ch - '0');
			else if (ch >= 'a' && ch <= 'f')
				v |= (unsigned)(ch - 'a' + 10);
			else if (ch >= 'A' && ch <= 'F')
				v |= (unsigned)(ch - 'A' + 10);
			else
				return -EINVAL;
		}
		token[i] = (uint8_t)v;
	}
	return 0;
}
