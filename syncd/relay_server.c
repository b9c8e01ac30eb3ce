/*
 * relay_server.c - wkfs-relay's WebSocket server (docs/protocol.md).
 *
 * One lws context, one service loop, one thread: every callback below runs
 * on it, so nothing is locked.  As in the lws minimal examples, data is
 * sent only from LWS_CALLBACK_SERVER_WRITEABLE, one message per callback,
 * with LWS_PRE bytes of headroom; anything that wants to send asks for a
 * writeable callback instead.
 *
 * What each client message does is relay_session.c's; this file owns the
 * connections (admitted through relay_admit.c), their output and the loop.
 *
 * Memory per connection stays bounded whatever a peer does:
 *  - a message is reassembled in a buffer capped at WIRE_FRAME_MAX, and
 *    at hello-bytes before HELLO;
 *  - replies wait in a queue whose size is accounted: over
 *    RELAY_PENDING_SOFT the relay stops reading that connection, over
 *    RELAY_PENDING_HARD it gives up on it;
 *  - ops are never queued: each connection has a send cursor and the next
 *    OPS is read from the database when the connection can take it; chunks
 *    asked for are queued by name and read when they are sent.
 * A connection that misbehaves gets ERROR and is closed; no other is
 * touched.  Messages are built in two relay-wide scratch buffers, which is
 * safe because lws copies whatever it cannot send at once.
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>

#include "fault.h"
#include "relay_admit.h"
#include "relay_chunks.h"
#include "relay_db.h"
#include "relay_int.h"
#include "wire.h"
#include "wlog.h"
#include "xalloc.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = sig;
}

/* ---- output queue ---- */

static void q_free(struct conn *c)
{
	while (c->q_head) {
		struct outmsg *m = c->q_head;

		c->q_head = m->next;
		wire_buf_release(&m->frame);
		free(m);
	}
	c->q_tail = NULL;
	c->q_bytes = 0;
}

static size_t outmsg_cost(const struct outmsg *m)
{
	return sizeof(*m) + m->frame.alloc;
}

static void q_push(struct conn *c, struct outmsg *m)
{
	if (c->q_tail)
		c->q_tail->next = m;
	else
		c->q_head = m;
	c->q_tail = m;
	c->q_bytes += outmsg_cost(m);
}

/* Marks the connection failed: only the ERROR goes out, then it closes. */
void __attribute__((format(printf, 3, 4)))
conn_fail(struct conn *c, int code, const char *fmt, ...)
{
	va_list ap;

	if (c->state == CONN_FAILING || c->state == CONN_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err_reason, sizeof(c->err_reason), fmt, ap);
	va_end(ap);
	c->err_code = (uint16_t)code;
	c->state = CONN_FAILING;
	relay_stats_error(&c->r->stats, code, c->handling == WIRE_PUSH,
			  c->folder, c->actor, c->addr, c->err_reason);
	q_free(c);
	if (c->r->o->verbose)
		wk_info("closing a connection (folder %s): %s: %s",
			c->folder[0] ? c->folder : "-", wire_err_name(code),
			c->err_reason);
	lws_callback_on_writable(c->wsi);
}

void conn_queue(struct conn *c, const struct wire_msg *msg)
{
	struct outmsg *m = xcalloc(1, sizeof(*m));
	int rc;

	wire_buf_init(&m->frame, LWS_PRE, WIRE_FRAME_MAX);
	rc = wire_encode(&m->frame, msg);
	if (rc) {
		wire_buf_release(&m->frame);
		free(m);
		conn_fail(c, WIRE_ERR_STORAGE, "cannot encode %s: %s",
			  wire_type_name(msg->type), strerror(-rc));
		return;
	}
	q_push(c, m);
	if (c->q_bytes > RELAY_PENDING_HARD) {
		conn_fail(c, WIRE_ERR_OVERLOAD,
			  "over %u bytes of replies waiting: read them",
			  RELAY_PENDING_HARD);
		return;
	}
	lws_callback_on_writable(c->wsi);
}

void conn_queue_chunk(struct conn *c, const uint8_t *name)
{
	struct outmsg *m = xcalloc(1, sizeof(*m));

	m->lazy_chunk = true;
	memcpy(m->name, name, WIRE_NAME_LEN);
	q_push(c, m);
	lws_callback_on_writable(c->wsi);
}

/* Tells every other welcomed connection of the folder to send new ops. */
void fan_out(struct relay *r, struct conn *from)
{
	for (struct conn *c = r->live; c; c = c->next)
		if (c != from && c->folder_id == from->folder_id &&
		    c->state == CONN_READY)
			lws_callback_on_writable(c->wsi);
}

void live_add(struct conn *c)
{
	c->next = c->r->live;
	c->prev = NULL;
	if (c->next)
		c->next->prev = c;
	c->r->live = c;
}

static void live_remove(struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (c->r->live == c)
		c->r->live = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* Stops or resumes reading the connection for one reason of PAUSE_*;
 * it is read again when no reason is left. */
void conn_pause(struct conn *c, unsigned why, bool on)
{
	unsigned was = c->paused;

	c->paused = on ? was | why : was & ~why;
	if (!was != !c->paused)
		lws_rx_flow_control(c->wsi, !c->paused);
}

static void chunk_done(void *owner, const uint8_t name[WIRE_NAME_LEN], int rc,
		       void *arg)
{
	struct wire_msg ack = {.type = WIRE_CHUNK_ACK};
	struct conn *c = owner;

	if (rc) {
		conn_fail(c, WIRE_ERR_STORAGE, "cannot store a chunk: %s",
			  strerror(-rc));
		return;
	}
	memcpy(ack.chunk.name, name, WIRE_NAME_LEN);
	conn_queue(c, &ack);
}

/* Makes the chunks staged so far durable and acknowledges them. */
void commit_chunks(struct relay *r)
{
	int rc;

	lws_usec_t t0 = lws_now_usecs();

	lws_sul_cancel(&r->commit_sul);
	r->staged_since = 0;
	rc = relay_chunk_commit(r->stage, chunk_done, r);
	relay_stats_commit(&r->stats, RELAY_COMMIT_CHUNKS,
			   lws_now_usecs() - t0);
	if (rc)
		wk_warn("cannot store chunks: %s", strerror(-rc));
}

static void commit_due(lws_sorted_usec_list_t *sul)
{
	commit_chunks(lws_container_of(sul, struct relay, commit_sul));
}

/*
 * A client streams the CHUNK_PUTs of many files and then waits for their
 * acknowledgements: commit once the stream pauses (RELAY_COMMIT_IDLE_US
 * without a new chunk), or RELAY_COMMIT_MAX_US after the first, so a
 * burst costs a few disk flushes, not one or two per chunk.
 */
void commit_later(struct relay *r)
{
	lws_usec_t now = lws_now_usecs(), at = now + RELAY_COMMIT_IDLE_US;

	if (!relay_chunk_staged_any(r->stage))
		return;
	if (r->staged_since == 0)
		r->staged_since = now;
	if (at > r->staged_since + RELAY_COMMIT_MAX_US)
		at = r->staged_since + RELAY_COMMIT_MAX_US;
	lws_sul_schedule(r->ctx, 0, &r->commit_sul, commit_due,
			 at > now ? at - now : 1);
}

/* ---- sending ---- */

static int write_frame(struct conn *c, struct wire_buf *b)
{
	size_t len = wire_buf_len(b);
	int n = lws_write(c->wsi, wire_buf_data(b), len, LWS_WRITE_BINARY);

	if (n < (int)len)
		return -EIO;
	c->r->stats.bytes_out += len;
	return 0;
}

struct batch_fill {
	struct wire_buf *b;
	uint64_t last;
	bool full;
};

static int batch_fill_op(void *arg, const struct wire_opent *e)
{
	struct batch_fill *bf = arg;
	int rc = wire_batch_add(bf->b, e);

	if (rc == -EMSGSIZE) {
		bf->full = true;
		return 1;
	}
	if (rc)
		return rc;
	bf->last = e->seq;
	return 0;
}

/*
 * Sends the next OPS after c->send_seq, if there is one for this client;
 * *sent says whether a message went out.  Ops of the client's own actor
 * are skipped, and `through` tells it how far it got.
 */
static int send_ops(struct conn *c, bool *sent)
{
	struct relay *r = c->r;
	struct batch_fill bf = {&r->ops_buf, c->send_seq, false};
	uint64_t head, through;
	unsigned rows;
	int rc;

	*sent = false;
	rc = relay_db_head(r->db, c->folder_id, &head);
	if (rc || c->send_seq >= head)
		return rc;
	wire_buf_reset(&r->ops_buf);
	rc = wire_batch_begin(&r->ops_buf, WIRE_OPS, 0);
	if (!rc)
		rc = relay_db_ops_after(r->db, c->folder_id, c->send_seq,
					c->actor, WIRE_BATCH_MAX, batch_fill_op,
					&bf, &rows);
	if (rc)
		return rc;
	bf.full = bf.full || rows == WIRE_BATCH_MAX;
	/* Nothing was written since head was read: one thread. */
	through = bf.full ? bf.last : head;
	if (wire_batch_count(&r->ops_buf) == 0) {
		c->send_seq = through;
		return 0;
	}
	wire_batch_set_through(&r->ops_buf, through);
	rc = write_frame(c, &r->ops_buf);
	if (rc)
		return rc;
	relay_stats_folder(&r->stats, c->folder_id)->ops_out +=
		wire_batch_count(&r->ops_buf);
	c->send_seq = through;
	*sent = true;
	return 0;
}

static int send_queued(struct conn *c)
{
	struct relay *r = c->r;
	struct outmsg *m = c->q_head;
	int rc;

	c->q_head = m->next;
	if (!c->q_head)
		c->q_tail = NULL;
	c->q_bytes -= outmsg_cost(m);
	if (m->lazy_chunk) {
		struct wire_msg ch = {.type = WIRE_CHUNK};

		wire_buf_reset(&r->chunk);
		wire_buf_reset(&r->frame);
		rc = relay_chunk_get(r->o->data_dir, c->folder, m->name,
				     &r->chunk);
		if (!rc) {
			memcpy(ch.chunk.name, m->name, WIRE_NAME_LEN);
			ch.chunk.data = wire_buf_data(&r->chunk);
			ch.chunk.len = (uint32_t)wire_buf_len(&r->chunk);
			rc = wire_encode(&r->frame, &ch);
		}
		if (!rc)
			rc = write_frame(c, &r->frame);
		else
			conn_fail(c, WIRE_ERR_STORAGE,
				  "cannot read a chunk: %s", strerror(-rc));
	} else {
		/* An ACK: the PUSH is stored; does the client learn it? */
		bool ack = wire_buf_data(&m->frame)[0] == WIRE_ACK;

		if (ack)
			fault_point("relay.before_ack");
		rc = write_frame(c, &m->frame);
		if (ack && !rc)
			fault_point("relay.after_ack");
	}
	wire_buf_release(&m->frame);
	free(m);
	if ((c->paused & PAUSE_REPLIES) && c->q_bytes < RELAY_PENDING_SOFT / 2)
		conn_pause(c, PAUSE_REPLIES, false);
	return rc;
}

static int send_error(struct conn *c)
{
	struct wire_msg e = {.type = WIRE_ERROR};

	e.error.code = c->err_code;
	memcpy(e.error.reason, c->err_reason, sizeof(e.error.reason));
	wire_buf_reset(&c->r->frame);
	if (wire_encode(&c->r->frame, &e))
		return -EIO;
	c->state = CONN_CLOSING;
	/* What the peer still sends is read and dropped until it is quiet
	 * (on_writeable()), for RELAY_HELLO_SECS at most. */
	conn_pause(c, PAUSE_REPLIES, false);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, RELAY_HELLO_SECS);
	return write_frame(c, &c->r->frame);
}

static void linger_done(lws_sorted_usec_list_t *sul)
{
	struct conn *c = lws_container_of(sul, struct conn, linger_sul);

	lws_callback_on_writable(c->wsi);
}

static bool more_to_send(struct conn *c)
{
	uint64_t head = 0;

	if (c->state != CONN_READY)
		return c->state != CONN_HELLO || c->q_head;
	if (c->q_head || !c->caught_up_sent)
		return true;
	return relay_db_head(c->r->db, c->folder_id, &head) == 0 &&
	       c->send_seq < head;
}

/* LWS_CALLBACK_SERVER_WRITEABLE: at most one message. */
static int on_writeable(struct conn *c)
{
	bool sent = false;
	int rc = 0;

	if (c->state == CONN_CLOSING) {
		size_t n = strnlen(c->err_reason, 123);

		lws_usec_t quiet = lws_now_usecs() - c->last_rx;

		/*
		 * Closing while the peer is still sending (a message too big,
		 * a flood) would reset the connection and could destroy the
		 * ERROR before the peer reads it: drain what it sends until
		 * its message is over and it has been quiet a moment, within
		 * the timeout send_error() set.
		 */
		if (c->in_msg)
			return 0;
		if (quiet < RELAY_LINGER_US) {
			lws_sul_schedule(lws_get_context(c->wsi), 0,
					 &c->linger_sul, linger_done,
					 RELAY_LINGER_US - quiet);
			return 0;
		}

		lws_close_reason(c->wsi,
				 c->err_code == WIRE_ERR_STORAGE
					 ? LWS_CLOSE_STATUS_UNEXPECTED_CONDITION
					 : LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)c->err_reason, n);
		return -1;
	}
	if (c->state == CONN_FAILING)
		rc = send_error(c);
	else if (c->q_head)
		rc = send_queued(c);
	else if (c->state == CONN_READY) {
		rc = send_ops(c, &sent);
		if (rc) {
			conn_fail(c, WIRE_ERR_STORAGE, "cannot read ops: %s",
				  strerror(-rc));
			rc = 0;
		} else if (!sent && !c->caught_up_sent) {
			struct wire_msg cu = {.type = WIRE_CAUGHT_UP};

			cu.cursor.seq = c->send_seq;
			c->caught_up_sent = true;
			wire_buf_reset(&c->r->frame);
			rc = wire_encode(&c->r->frame, &cu);
			if (!rc)
				rc = write_frame(c, &c->r->frame);
		}
	}
	if (rc == -EIO)
		return -1; /* the socket is gone */
	if (more_to_send(c))
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* ---- revocation ---- */

/* Ends sessions whose folder token was revoked or replaced meanwhile. */
static void revoke_check(lws_sorted_usec_list_t *sul)
{
	struct relay *r = (struct relay *)((char *)sul -
					   offsetof(struct relay, revoke_sul));
	struct relay_folder f;

	for (struct conn *c = r->live; c; c = c->next) {
		if (c->state != CONN_READY)
			continue;
		if (relay_db_folder_get(r->db, c->folder, &f) == 0 &&
		    f.active && f.id == c->folder_id &&
		    CRYPTO_memcmp(f.token_hash, c->token_hash,
				  RELAY_TOKEN_HASH_LEN) == 0)
			continue;
		conn_fail(c, WIRE_ERR_REVOKED,
			  "the folder's token was revoked");
	}
	lws_sul_schedule(r->ctx, 0, &r->revoke_sul, revoke_check,
			 RELAY_REVOKE_CHECK_SECS * LWS_US_PER_SEC);
}

/* ---- lws glue ---- */

/*
 * A TCP connection was accepted: counted against connections and
 * connections-per-address until lws destroys it (WSI_DESTROY).  One over
 * a limit goes on to the WebSocket handshake for a few seconds to read
 * its ERROR (refuse_over()), unless many are being refused already.
 */
static int admit(struct relay *r, struct lws *wsi)
{
	const char *over;
	void *ticket =
		relay_admit_conn(r->admit, lws_get_socket_fd(wsi), &over);

	if (!ticket)
		return -1; /* lws closes it */
	lws_set_opaque_user_data(wsi, ticket);
	if (over)
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
				RELAY_REFUSE_SECS);
	return 0;
}

static void refuse_over(struct conn *c)
{
	const char *over =
		relay_admit_refused(lws_get_opaque_user_data(c->wsi));
	const struct relay_limits *l = c->r->lim;

	if (!over)
		return;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, RELAY_REFUSE_SECS);
	conn_fail(c, WIRE_ERR_LIMIT,
		  "too many connections%s: over the limit %s=%" PRIu64,
		  strcmp(over, "connections") ? " from your address" : "", over,
		  strcmp(over, "connections") ? l->connections_addr
					      : l->connections);
}

static int relay_callback(struct lws *wsi, enum lws_callback_reasons reason,
			  void *user, void *in, size_t len)
{
	struct conn *c = user;
	struct relay *r = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		return admit(r, wsi);
	case LWS_CALLBACK_WSI_DESTROY:
		relay_admit_release(r->admit, lws_get_opaque_user_data(wsi));
		lws_set_opaque_user_data(wsi, NULL);
		return 0;
	case LWS_CALLBACK_ESTABLISHED:
		memset(c, 0, sizeof(*c));
		c->wsi = wsi;
		c->r = r;
		lws_get_peer_simple(wsi, c->addr, sizeof(c->addr));
		wire_buf_init(&c->rx, 0, WIRE_FRAME_MAX);
		if (lws_hdr_copy(wsi, c->path, sizeof(c->path),
				 WSI_TOKEN_GET_URI) < 0)
			strcpy(c->path, "?"); /* too long: matches no folder */
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, RELAY_HELLO_SECS);
		refuse_over(c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		relay_on_receive(c, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(c);
	case LWS_CALLBACK_CLOSED:
		if (c->seen) {
			c->seen->sessions--;
			c->seen->last_seen = time(NULL);
		}
		lws_sul_cancel(&c->linger_sul);
		relay_chunk_disown(r->stage, c);
		live_remove(c);
		q_free(c);
		wire_buf_release(&c->rx);
		return 0;
	/* Plain HTTP: /metrics and the status page (relay_http.c). */
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* the --metrics listener speaks HTTP only */
		return r->metrics_vh && lws_get_vhost(wsi) == r->metrics_vh;
	/* c is NULL on a connection that sent no request yet (a browser
	 * opens some ahead). */
	case LWS_CALLBACK_HTTP:
		return c ? relay_http_request(c, wsi, in ? in : "") : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return c ? relay_http_writeable(c, wsi) : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
		if (c)
			relay_http_done(c);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols relay_protocols[] = {
	{
		.name = "wkfs",
		.callback = relay_callback,
		.per_session_data_size = sizeof(struct conn),
		.rx_buffer_size = 65536,
	},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static int open_store(struct relay *r, int *lock_fd)
{
	const char *dir = r->o->data_dir;
	char err[512], *path;
	int rc;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		wk_err("cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	path = xasprintf("%s/chunks", dir);
	rc = mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
	free(path);
	if (rc) {
		wk_err("cannot create %s/chunks: %s", dir, strerror(-rc));
		return rc;
	}
	path = xasprintf("%s/relay.lock", dir);
	*lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX | LOCK_NB) < 0) {
		wk_err("%s is in use by another wkfs-relay", dir);
		return -EBUSY;
	}
	rc = relay_db_open(dir, &r->db, err, sizeof(err));
	if (rc)
		wk_err("%s", err);
	return rc;
}

/* --metrics: a second vhost on its own address, plain HTTP, that answers
 * GET /metrics to anyone and refuses WebSocket sessions. */
static int metrics_listen(struct relay *r,
			  struct lws_context_creation_info *info)
{
	const struct relay_opts *o = r->o;

	info->port = o->metrics_port;
	info->iface = o->metrics_host;
	info->options &= ~(unsigned long long)LWS_SERVER_OPTION_DISABLE_IPV6;
	if (!strchr(o->metrics_host, ':'))
		info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info->vhost_name = "wkfs-metrics";
	info->ssl_cert_filepath = NULL;
	info->ssl_private_key_filepath = NULL;
	r->metrics_vh = lws_create_vhost(r->ctx, info);
	if (!r->metrics_vh || lws_get_vhost_listen_port(r->metrics_vh) <= 0) {
		wk_err("cannot listen on %s:%d for --metrics", o->metrics_host,
		       o->metrics_port);
		return -EADDRNOTAVAIL;
	}
	printf(strchr(o->metrics_host, ':') ? "metrics on [%s]:%d\n"
					    : "metrics on %s:%d\n",
	       o->metrics_host, lws_get_vhost_listen_port(r->metrics_vh));
	return 0;
}

int relay_serve(const struct relay_opts *o)
{
	struct lws_context_creation_info info;
	struct relay r;
	struct lws_vhost *vh;
	int lock_fd = -1, rc;

	memset(&r, 0, sizeof(r));
	r.o = o;
	relay_stats_init(&r.stats);
	r.lim = o->limits;
	r.admit = relay_admit_new(r.lim);
	rc = open_store(&r, &lock_fd);
	if (rc)
		goto out;
	if (o->git) {
		rc = relay_git_start(o->git, o->data_dir, &r.git);
		if (rc)
			goto out;
	}
	wire_buf_init(&r.ops_buf, LWS_PRE, RELAY_OPS_BYTES);
	wire_buf_init(&r.frame, LWS_PRE, WIRE_FRAME_MAX);
	wire_buf_init(&r.chunk, 0, WIRE_CHUNK_MAX);
	r.stage = relay_chunk_stage_new(o->data_dir);

	lws_set_log_level(o->verbose ? LLL_ERR | LLL_WARN : LLL_ERR,
			  relay_admit_log_lws);
	memset(&info, 0, sizeof(info));
	/* A connection that never finishes its HTTP request goes too. */
	info.timeout_secs = RELAY_HELLO_SECS;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (o->tls_cert)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.user = &r;
	r.ctx = lws_create_context(&info);
	if (!r.ctx) {
		wk_err("cannot start libwebsockets");
		rc = -EIO;
		goto out;
	}
	info.port = o->port;
	info.iface = o->host;
	/* With IPv6 on, lws binds an IPv4 address as the IPv6 wildcard:
	 * every interface.  An IPv4 address gets an IPv4 socket. */
	if (!strchr(o->host, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = relay_protocols;
	info.vhost_name = "wkfs-relay";
	info.ssl_cert_filepath = o->tls_cert;
	info.ssl_private_key_filepath = o->tls_key;
	vh = lws_create_vhost(r.ctx, &info);
	if (!vh || lws_get_vhost_listen_port(vh) <= 0) {
		wk_err("cannot listen on %s:%d", o->host, o->port);
		rc = -EADDRNOTAVAIL;
		goto out;
	}
	if (o->metrics_host) {
		rc = metrics_listen(&r, &info);
		if (rc)
			goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	lws_sul_schedule(r.ctx, 0, &r.revoke_sul, revoke_check,
			 RELAY_REVOKE_CHECK_SECS * LWS_US_PER_SEC);
	printf(strchr(o->host, ':') ? "listening on [%s]:%d\n"
				    : "listening on %s:%d\n",
	       o->host, lws_get_vhost_listen_port(vh));
	fflush(stdout);

	while (!stop_requested) {
		if (lws_service(r.ctx, 0) < 0)
			break;
		/* Out of descriptors, the listening socket stays readable
		 * and lws would fail to accept in a loop: let some close. */
		if (relay_admit_accept_failed())
			usleep(RELAY_ACCEPT_PAUSE_US);
	}
	if (o->verbose)
		wk_info("stopping");

out:
	if (r.ctx) {
		lws_sul_cancel(&r.revoke_sul);
		lws_sul_cancel(&r.commit_sul);
		lws_context_destroy(r.ctx);
	}
	relay_chunk_stage_free(r.stage);
	relay_git_stop(r.git); /* the last commit, after the last op */
	relay_db_close(r.db);
	relay_admit_free(r.admit);
	relay_stats_release(&r.stats);
	while (r.uses) {
		struct folder_use *u = r.uses;

		r.uses = u->next;
		free(u);
	}
	wire_buf_release(&r.ops_buf);
	wire_buf_release(&r.frame);
	wire_buf_release(&r.chunk);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}
