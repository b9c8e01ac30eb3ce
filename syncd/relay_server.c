/*
 * relay_server.c - wkfs-relay's WebSocket server (docs/protocol.md).
 *
 * One lws context, one service loop, one thread: every callback below runs
 * on it, so nothing is locked.  As in the lws minimal examples, data is
 * sent only from LWS_CALLBACK_SERVER_WRITEABLE, one message per callback,
 * with LWS_PRE bytes of headroom; anything that wants to send asks for a
 * writeable callback instead.
 *
 * Memory per connection stays bounded whatever a peer does:
 *  - a message is reassembled in a buffer capped at WIRE_FRAME_MAX;
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
#include <unistd.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fault.h"
#include "relay_admit.h"
#include "relay_chunks.h"
#include "relay_db.h"
#include "wire.h"
#include "wlog.h"
#include "xalloc.h"

enum conn_state {
	CONN_HELLO,   /* waiting for HELLO */
	CONN_READY,   /* welcomed: catch-up, then live */
	CONN_FAILING, /* an ERROR is to be sent */
	CONN_CLOSING, /* the ERROR went out: close at the next writeable */
};

/* A reply waiting to be sent: a whole frame, or a chunk to read then. */
struct outmsg {
	struct outmsg *next;
	bool lazy_chunk;
	uint8_t name[WIRE_NAME_LEN];
	struct wire_buf frame;
};

/* Why a connection is not read from: its replies are piling up, or it
 * sent over messages-per-second. */
#define PAUSE_REPLIES 1u
#define PAUSE_RATE    2u

/* A folder's bytes (chunks and op payloads) for folder-bytes, counted
 * once when first needed and kept up to date by this relay. */
struct folder_use {
	struct folder_use *next;
	int64_t id;
	uint64_t bytes;
};

/* Per connection; lws allocates and zeroes it (per_session_data_size). */
struct conn {
	struct lws *wsi;
	struct relay *r;
	enum conn_state state;
	struct conn *next, *prev; /* r->live, once READY */
	char path[WIRE_FOLDER_MAX + 2];

	/* the session, from HELLO */
	int64_t folder_id;
	char folder[WIRE_FOLDER_MAX + 1];
	uint8_t token_hash[RELAY_TOKEN_HASH_LEN];
	uint64_t actor;
	uint32_t version;      /* agreed in HELLO */
	uint32_t folder_proto; /* relay_db_proto_get(), kept up to date */
	uint64_t send_seq;     /* every op up to here was sent (or skipped) */
	bool caught_up_sent;

	/* input */
	struct wire_buf rx;
	bool in_msg;
	unsigned paused;     /* PAUSE_*: why the relay stops reading */
	uint64_t hello_rx;   /* bytes received before HELLO */
	lws_usec_t rate_tat; /* when its message budget is back to full */
	lws_sorted_usec_list_t rate_sul; /* resumes reading (PAUSE_RATE) */

	/* output */
	struct outmsg *q_head, *q_tail;
	size_t q_bytes;
	uint16_t err_code;
	char err_reason[WIRE_REASON_MAX + 1];
};

struct relay {
	const struct relay_opts *o;
	struct lws_context *ctx;
	struct relay_db *db;
	struct relay_git *git;	   /* --git: commits on a thread of its own */
	struct conn *live;	   /* welcomed connections, for fan-out */
	struct wire_buf ops_buf;   /* scratch: OPS being built */
	struct wire_buf frame;	   /* scratch: any other frame being sent */
	struct wire_buf chunk;	   /* scratch: a chunk read from the store */
	struct chunk_stage *stage; /* CHUNK_PUTs not yet durable */
	lws_sorted_usec_list_t commit_sul;
	lws_usec_t staged_since; /* when the oldest staged chunk came */
	lws_sorted_usec_list_t revoke_sul;
	const struct relay_limits *lim;
	struct relay_admit *admit; /* connections per address, in total */
	struct folder_use *uses;   /* folder-bytes, when it is set */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = sig;
}

static void token_hash(const uint8_t *token, size_t len,
		       uint8_t out[RELAY_TOKEN_HASH_LEN])
{
	unsigned int n = RELAY_TOKEN_HASH_LEN;

	EVP_Digest(token, len, out, &n, EVP_sha256(), NULL);
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
static void __attribute__((format(printf, 3, 4)))
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
	q_free(c);
	if (c->r->o->verbose)
		wk_info("closing a connection (folder %s): %s: %s",
			c->folder[0] ? c->folder : "-", wire_err_name(code),
			c->err_reason);
	lws_callback_on_writable(c->wsi);
}

static void conn_queue(struct conn *c, const struct wire_msg *msg)
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

static void conn_queue_chunk(struct conn *c, const uint8_t *name)
{
	struct outmsg *m = xcalloc(1, sizeof(*m));

	m->lazy_chunk = true;
	memcpy(m->name, name, WIRE_NAME_LEN);
	q_push(c, m);
	lws_callback_on_writable(c->wsi);
}

/* Tells every other welcomed connection of the folder to send new ops. */
static void fan_out(struct relay *r, struct conn *from)
{
	for (struct conn *c = r->live; c; c = c->next)
		if (c != from && c->folder_id == from->folder_id &&
		    c->state == CONN_READY)
			lws_callback_on_writable(c->wsi);
}

static void live_add(struct conn *c)
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
static void conn_pause(struct conn *c, unsigned why, bool on)
{
	unsigned was = c->paused;

	c->paused = on ? was | why : was & ~why;
	if (!was != !c->paused)
		lws_rx_flow_control(c->wsi, !c->paused);
}

static void rate_resume(lws_sorted_usec_list_t *sul)
{
	conn_pause(lws_container_of(sul, struct conn, rate_sul), PAUSE_RATE,
		   false);
}

/*
 * messages-per-second, as a budget of one second's worth that refills at
 * that rate (GCRA: rate_tat is when the budget is full again): a peer
 * over it is not read until it has some again.  Slowed, not refused: a
 * replica that streams thousands of small chunks must not be dropped for
 * it, and a peer that is not read cannot send faster.
 */
static void rate_count(struct conn *c)
{
	uint64_t rate = c->r->lim->messages_sec;
	lws_usec_t now, ahead;

	if (!rate)
		return;
	now = lws_now_usecs();
	if (c->rate_tat < now)
		c->rate_tat = now;
	c->rate_tat += (lws_usec_t)(LWS_US_PER_SEC / rate);
	ahead = c->rate_tat - now;
	if (ahead <= LWS_US_PER_SEC || (c->paused & PAUSE_RATE))
		return;
	conn_pause(c, PAUSE_RATE, true);
	lws_sul_schedule(lws_get_context(c->wsi), 0, &c->rate_sul, rate_resume,
			 ahead - LWS_US_PER_SEC);
}

/* The folder's bytes, counted when first asked for; NULL if unreadable
 * (the caller answers `storage`). */
static struct folder_use *folder_use(struct conn *c)
{
	struct relay *r = c->r;
	struct folder_use *u;
	uint64_t ops = 0, chunks = 0;

	for (u = r->uses; u; u = u->next)
		if (u->id == c->folder_id)
			return u;
	if (relay_db_payload_bytes(r->db, c->folder_id, &ops) ||
	    relay_chunks_bytes(r->o->data_dir, c->folder, &chunks))
		return NULL;
	u = xcalloc(1, sizeof(*u));
	u->id = c->folder_id;
	u->bytes = ops + chunks;
	u->next = r->uses;
	r->uses = u;
	return u;
}

/* How many more bytes the folder may take (UINT64_MAX: no limit); false
 * when it cannot be measured (the connection failed). */
static bool folder_budget(struct conn *c, uint64_t *budget)
{
	uint64_t lim = c->r->lim->folder_bytes;
	struct folder_use *u;

	*budget = UINT64_MAX;
	if (!lim)
		return true;
	u = folder_use(c);
	if (!u) {
		conn_fail(c, WIRE_ERR_STORAGE, "cannot measure the folder");
		return false;
	}
	*budget = u->bytes < lim ? lim - u->bytes : 0;
	return true;
}

/* ERROR `limit`: `more` bytes of what (after folder_budget()) do not fit. */
static void folder_full(struct conn *c, uint64_t more, const char *what)
{
	struct folder_use *u = folder_use(c);

	conn_fail(c, WIRE_ERR_LIMIT,
		  "folder %s holds %" PRIu64 " bytes: %s of %" PRIu64
		  " more is over the limit folder-bytes=%" PRIu64,
		  c->folder, u ? u->bytes : 0, what, more,
		  c->r->lim->folder_bytes);
}

static void folder_grew(struct conn *c, uint64_t bytes)
{
	struct folder_use *u;

	if (!c->r->lim->folder_bytes)
		return;
	for (u = c->r->uses; u; u = u->next)
		if (u->id == c->folder_id)
			u->bytes += bytes;
}

/* ---- requests ---- */

static void on_hello(struct conn *c, const struct wire_msg *m)
{
	static const uint8_t nobody[RELAY_TOKEN_HASH_LEN];
	struct relay_folder f;
	struct wire_msg w = {.type = WIRE_WELCOME};
	uint8_t hash[RELAY_TOKEN_HASH_LEN];
	bool ok;
	int rc;

	if (wire_version_accept(m->hello.version, WIRE_VERSION_MIN) ==
	    WIRE_VERSION_UNKNOWN) {
		conn_fail(c, WIRE_ERR_VERSION,
			  "protocol version %u is not supported; this relay"
			  " speaks versions %d to %d: upgrade wkfs-relay",
			  m->hello.version, WIRE_VERSION_MIN, WIRE_VERSION);
		return;
	}
	token_hash(m->hello.token, WIRE_TOKEN_LEN, hash);
	rc = relay_db_folder_get(c->r->db, m->hello.folder, &f);
	if (rc && rc != -ENOENT) {
		conn_fail(c, WIRE_ERR_STORAGE, "cannot read folders: %s",
			  strerror(-rc));
		return;
	}
	/* The same work, and the same answer, for an unknown folder. */
	ok = CRYPTO_memcmp(hash, rc == 0 && f.active ? f.token_hash : nobody,
			   RELAY_TOKEN_HASH_LEN) == 0 &&
	     rc == 0 && f.active;
	if (!ok) {
		conn_fail(c, WIRE_ERR_AUTH, "bad folder or token");
		return;
	}
	if (c->path[0] && strcmp(c->path, "/") != 0 &&
	    strcmp(c->path + 1, m->hello.folder) != 0) {
		conn_fail(c, WIRE_ERR_AUTH,
			  "the URL names another folder than HELLO");
		return;
	}
	/* After auth: a stranger learns nothing about the folder. */
	rc = relay_db_proto_get(c->r->db, f.id, &c->folder_proto);
	if (rc) {
		conn_fail(c, WIRE_ERR_STORAGE, "cannot read folders: %s",
			  strerror(-rc));
		return;
	}
	if (wire_version_accept(m->hello.version, c->folder_proto) ==
	    WIRE_VERSION_OLD) {
		conn_fail(c, WIRE_ERR_VERSION,
			  "this folder holds ops of protocol version %u, which"
			  " a version %u client would skip: upgrade wkfs",
			  c->folder_proto, m->hello.version);
		return;
	}
	if (m->hello.cursor > f.head) {
		conn_fail(c, WIRE_ERR_CURSOR,
			  "cursor %llu is beyond this relay's head %llu:"
			  " a different or restored relay?",
			  (unsigned long long)m->hello.cursor,
			  (unsigned long long)f.head);
		return;
	}
	if (relay_db_hello_cursor(c->r->db, f.id, m->hello.actor,
				  m->hello.cursor) == -ESTALE) {
		conn_fail(c, WIRE_ERR_CURSOR,
			  "cursor %llu is from before this relay was rebuilt"
			  " from git",
			  (unsigned long long)m->hello.cursor);
		return;
	}
	c->folder_id = f.id;
	memcpy(c->folder, f.name, sizeof(c->folder));
	memcpy(c->token_hash, f.token_hash, sizeof(c->token_hash));
	c->actor = m->hello.actor;
	c->version = m->hello.version;
	c->send_seq = m->hello.cursor;
	c->state = CONN_READY;
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	live_add(c);
	w.welcome.version = c->version;
	w.welcome.head_seq = f.head;
	conn_queue(c, &w);
	if (c->r->o->verbose)
		wk_info("session: folder %s actor %016llx cursor %llu",
			c->folder, (unsigned long long)c->actor,
			(unsigned long long)c->send_seq);
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
static void commit_chunks(struct relay *r)
{
	int rc;

	lws_sul_cancel(&r->commit_sul);
	r->staged_since = 0;
	rc = relay_chunk_commit(r->stage, chunk_done, r);
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
static void commit_later(struct relay *r)
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

/*
 * The first push of a newer session raises the folder's version (durably,
 * before its ops are stored) and ends the sessions of older clients, which
 * would skip what they cannot read and move their cursor past it.
 */
static int raise_proto(struct conn *c)
{
	int rc = relay_db_proto_raise(c->r->db, c->folder_id, c->version);

	if (rc) {
		conn_fail(c, WIRE_ERR_STORAGE, "cannot store ops: %s",
			  strerror(-rc));
		return rc;
	}
	for (struct conn *o = c->r->live; o; o = o->next) {
		if (o->folder_id != c->folder_id)
			continue;
		o->folder_proto = c->version;
		if (o->version < c->version)
			conn_fail(o, WIRE_ERR_VERSION,
				  "this folder now holds ops of protocol"
				  " version %u: upgrade wkfs",
				  c->version);
	}
	return 0;
}

/*
 * put-bytes: a put with content names a file of op->size bytes, which
 * receivers build from its chunks whatever they weigh on the relay (a
 * recipe repeating one chunk makes a big file of a small upload), and
 * check against that size.  The reason starts as `missing`'s ("put HLC-ACTOR
 * ..."), so that the sender can tell which put.
 */
static bool put_too_big(struct conn *c, const struct wk_op *op,
			const struct wire_content_ref *ref)
{
	uint64_t lim = c->r->lim->put_bytes;
	char ids[WK_ID_STRLEN];

	/* Without content ("none") nobody builds the file. */
	if (op->kind != WK_OP_PUT || ref->how == WIRE_CONTENT_NONE || !lim ||
	    op->size <= lim)
		return false;
	conn_fail(c, WIRE_ERR_LIMIT,
		  WIRE_MISSING_PREFIX
		  "%s is a file of %" PRIu64
		  " bytes: over the limit put-bytes=%" PRIu64,
		  wk_id_str(op->id, ids), op->size, lim);
	return true;
}

/*
 * True when every chunk the puts of a PUSH name is in the folder's store;
 * otherwise the connection fails with ERROR `missing` naming the first
 * such put and chunk.  Receivers take a stored put's content to be on the
 * relay (docs/protocol.md, "Content of a put") and a stored op is history
 * for good, so the check comes before the PUSH is stored, and after the
 * staged chunks are committed: a chunk uploaded just before counts.
 * A payload that does not decode is not judged here: receivers refuse it.
 */
static bool push_content_held(struct conn *c, const struct wire_msg *m)
{
	struct wk_op *op = xmalloc(sizeof(*op));
	struct wire_content_ref ref;
	struct wire_iter it;
	struct wire_opent e;
	struct wk_hash missing;
	char ids[WK_ID_STRLEN], hs[WK_HASH_STRLEN];
	int rc = 0;

	wire_iter_init(&it, m);
	while (!rc && wire_iter_next(&it, &e)) {
		if (wire_op_decode_ref(e.payload, e.len, e.actor, e.hlc, op,
				       &ref))
			continue;
		if (put_too_big(c, op, &ref))
			goto out;
		rc = relay_chunks_named(c->r->o->data_dir, c->folder, op, &ref,
					&c->r->chunk, &missing);
	}
	if (rc == -ENOENT || rc == -EBADMSG)
		conn_fail(c, WIRE_ERR_MISSING,
			  WIRE_MISSING_PREFIX "%s names chunk %s%s",
			  wk_id_str(op->id, ids), wk_hash_str(&missing, hs),
			  rc == -ENOENT ? ", which this relay does not hold"
					: " as its recipe, but it is not one");
	else if (rc)
		conn_fail(c, WIRE_ERR_STORAGE, "cannot read a chunk: %s",
			  strerror(-rc));
out:
	free(op);
	return rc == 0 && c->state == CONN_READY;
}

/*
 * A session pushes the ops of the actor its HELLO named, and no other: a
 * token opens a folder, it does not make its holder every replica.  An
 * op claiming another actor would be stored under that actor's name, and
 * that replica's own op of the same clock would then be dropped as a
 * duplicate (docs/protocol.md, "Pushing").  True when every op is the
 * session's; otherwise the connection fails with ERROR `actor` and
 * nothing of the PUSH is stored.
 */
static bool push_actor_ours(struct conn *c, const struct wire_msg *m)
{
	struct wire_iter it;
	struct wire_opent e;

	wire_iter_init(&it, m);
	while (wire_iter_next(&it, &e)) {
		if (e.actor == c->actor)
			continue;
		conn_fail(c, WIRE_ERR_ACTOR,
			  "op %016" PRIx64 "-%016" PRIx64
			  " claims actor %016" PRIx64
			  ", but this session is actor %016" PRIx64
			  " (HELLO): a replica pushes only its own ops",
			  e.hlc, e.actor, e.actor, c->actor);
		return false;
	}
	return true;
}

static void on_push(struct conn *c, const struct wire_msg *m)
{
	struct wire_msg ack = {.type = WIRE_ACK};
	uint64_t head, added_bytes, budget;
	uint32_t added;
	int rc;

	if (!push_actor_ours(c, m))
		return;

	/* The chunks a put names are durable before the put is. */
	if (relay_chunk_staged_any(c->r->stage))
		commit_chunks(c->r);
	/* A chunk of ours that could not be stored failed the connection:
	 * nothing of this PUSH is stored either. */
	if (c->state != CONN_READY || !push_content_held(c, m))
		return;
	fault_point("relay.push");
	if (c->version > c->folder_proto && m->batch.count) {
		rc = raise_proto(c);
		if (rc)
			return;
	}
	if (!folder_budget(c, &budget))
		return;
	rc = relay_db_push(c->r->db, c->folder_id, m, budget, &head, &added,
			   &added_bytes);
	if (rc == -EDQUOT) {
		folder_full(c, added_bytes, "this push");
		return;
	}
	if (rc) {
		wk_warn("folder %s: cannot store ops: %s", c->folder,
			relay_db_errmsg(c->r->db));
		conn_fail(c, WIRE_ERR_STORAGE, "cannot store ops: %s",
			  strerror(-rc));
		return;
	}
	folder_grew(c, added_bytes);
	ack.ack.batch_id = m->batch.batch_id;
	ack.ack.high_seq = head;
	conn_queue(c, &ack);
	if (added)
		fan_out(c->r, c);
}

static void on_cursor(struct conn *c, const struct wire_msg *m)
{
	uint64_t head = 0;
	int rc = relay_db_head(c->r->db, c->folder_id, &head);

	if (!rc && m->cursor.seq > head) {
		conn_fail(c, WIRE_ERR_CURSOR, "cursor %llu is beyond head %llu",
			  (unsigned long long)m->cursor.seq,
			  (unsigned long long)head);
		return;
	}
	if (!rc)
		rc = relay_db_cursor_set(c->r->db, c->folder_id, c->actor,
					 m->cursor.seq);
	if (rc)
		conn_fail(c, WIRE_ERR_STORAGE, "cannot store the cursor: %s",
			  strerror(-rc));
}

/* HAVE -> MISSING, and CHUNK_GET's NOT_FOUND. */
static void on_names(struct conn *c, const struct wire_msg *m)
{
	struct wire_msg out = {.type = m->type == WIRE_HAVE ? WIRE_MISSING
							    : WIRE_NOT_FOUND};
	uint8_t *lack = xmalloc((size_t)m->names.count * WIRE_NAME_LEN + 1);
	const char *dir = c->r->o->data_dir;
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->names.count; i++) {
		const uint8_t *name = m->names.names + i * WIRE_NAME_LEN;

		if (relay_chunk_has(dir, c->folder, name, NULL)) {
			if (m->type == WIRE_CHUNK_GET)
				conn_queue_chunk(c, name);
			continue;
		}
		memcpy(lack + (size_t)n * WIRE_NAME_LEN, name, WIRE_NAME_LEN);
		n++;
	}
	out.names.count = n;
	out.names.names = lack;
	if (m->type == WIRE_HAVE || n)
		conn_queue(c, &out);
	free(lack);
}

static void on_chunk_put(struct conn *c, const struct wire_msg *m)
{
	struct wire_msg ack = {.type = WIRE_CHUNK_ACK};
	uint64_t budget;
	bool stored;
	int rc;

	/* A chunk the folder has costs nothing more. */
	if (c->r->lim->folder_bytes &&
	    !relay_chunk_has(c->r->o->data_dir, c->folder, m->chunk.name,
			     NULL)) {
		if (!folder_budget(c, &budget))
			return;
		if (m->chunk.len > budget) {
			folder_full(c, m->chunk.len, "a chunk");
			return;
		}
	}
	rc = relay_chunk_stage(c->r->stage, c->folder, m->chunk.name,
			       m->chunk.data, m->chunk.len, c, &stored);
	if (rc == -EILSEQ) {
		conn_fail(c, WIRE_ERR_HASH,
			  "chunk data does not hash to its name");
		return;
	}
	if (rc) {
		conn_fail(c, WIRE_ERR_STORAGE, "cannot store a chunk: %s",
			  strerror(-rc));
		return;
	}
	if (!stored) {
		folder_grew(c, m->chunk.len);
		commit_later(c->r); /* acknowledged then */
		return;
	}
	memcpy(ack.chunk.name, m->chunk.name, WIRE_NAME_LEN);
	conn_queue(c, &ack);
}

static void on_frame(struct conn *c, const uint8_t *p, size_t len)
{
	struct wire_msg m;
	int rc = wire_decode(p, len, &m);

	if (rc == -EMSGSIZE) {
		conn_fail(c, WIRE_ERR_TOO_BIG, "%s over a protocol limit",
			  wire_type_name(p[0]) ? wire_type_name(p[0])
					       : "message");
		return;
	}
	if (rc) {
		conn_fail(c, WIRE_ERR_MALFORMED, "malformed %s message",
			  len && wire_type_name(p[0]) ? wire_type_name(p[0])
						      : "unknown");
		return;
	}
	if (!wire_type_from_client(m.type)) {
		conn_fail(c, WIRE_ERR_STATE, "%s is sent by servers only",
			  wire_type_name(m.type));
		return;
	}
	if (m.type == WIRE_ERROR) {
		conn_fail(c, WIRE_ERR_STATE, "the client gave up: %s",
			  m.error.reason);
		return;
	}
	if ((c->state == CONN_HELLO) != (m.type == WIRE_HELLO)) {
		conn_fail(c, WIRE_ERR_STATE,
			  c->state == CONN_HELLO ? "HELLO must come first"
						 : "HELLO was already sent");
		return;
	}
	switch (m.type) {
	case WIRE_HELLO:
		on_hello(c, &m);
		break;
	case WIRE_PUSH:
		on_push(c, &m);
		break;
	case WIRE_CURSOR:
		on_cursor(c, &m);
		break;
	case WIRE_HAVE:
	case WIRE_CHUNK_GET:
		on_names(c, &m);
		break;
	case WIRE_CHUNK_PUT:
		on_chunk_put(c, &m);
		break;
	case WIRE_PING: {
		struct wire_msg pong = {.type = WIRE_PONG};

		pong.ping.nonce = m.ping.nonce;
		conn_queue(c, &pong);
		break;
	}
	default:
		break;
	}
}

/*
 * hello-bytes: what a connection sends before it is authenticated stays
 * within a few hundred bytes (a HELLO is about 140), so that strangers
 * cost the relay next to nothing.  Counted over the whole message being
 * received, as announced.
 */
static bool hello_room(struct conn *c, size_t len)
{
	uint64_t lim = c->r->lim->hello_bytes;

	if (c->state != CONN_HELLO)
		return true;
	c->hello_rx += len;
	if (c->hello_rx + lws_remaining_packet_payload(c->wsi) <= lim)
		return true;
	conn_fail(c, WIRE_ERR_LIMIT,
		  "%" PRIu64 " bytes before HELLO: over the limit"
		  " hello-bytes=%" PRIu64,
		  c->hello_rx + lws_remaining_packet_payload(c->wsi), lim);
	c->in_msg = !lws_is_final_fragment(c->wsi);
	return false;
}

static void on_receive(struct conn *c, const uint8_t *in, size_t len)
{
	if (c->state == CONN_FAILING || c->state == CONN_CLOSING) {
		/* Drained, not read: see on_writeable(). */
		c->in_msg = !lws_is_final_fragment(c->wsi);
		if (!c->in_msg && c->state == CONN_CLOSING)
			lws_callback_on_writable(c->wsi);
		return;
	}
	if (!c->in_msg) {
		c->in_msg = true;
		wire_buf_reset(&c->rx);
		if (!lws_frame_is_binary(c->wsi)) {
			conn_fail(c, WIRE_ERR_MALFORMED,
				  "text messages are not part of the protocol");
			return;
		}
		if (len + lws_remaining_packet_payload(c->wsi) >
		    WIRE_FRAME_MAX) {
			conn_fail(c, WIRE_ERR_TOO_BIG, "message over %u bytes",
				  WIRE_FRAME_MAX);
			return;
		}
	}
	if (!hello_room(c, len))
		return;
	if (!lws_remaining_packet_payload(c->wsi))
		rate_count(c); /* the end of a WebSocket frame */
	if (wire_buf_append(&c->rx, in, len)) {
		conn_fail(c, WIRE_ERR_TOO_BIG, "message over %u bytes",
			  WIRE_FRAME_MAX);
		return;
	}
	if (!lws_is_final_fragment(c->wsi))
		return;
	c->in_msg = false;
	on_frame(c, wire_buf_data(&c->rx), wire_buf_len(&c->rx));
	/* Keep a big message's memory only while it is needed. */
	if (c->rx.alloc > 65536)
		wire_buf_release(&c->rx);
	else
		wire_buf_reset(&c->rx);
	if (c->q_bytes > RELAY_PENDING_SOFT && c->state == CONN_READY)
		conn_pause(c, PAUSE_REPLIES, true);
}

/* ---- sending ---- */

static int write_frame(struct conn *c, struct wire_buf *b)
{
	size_t len = wire_buf_len(b);
	int n = lws_write(c->wsi, wire_buf_data(b), len, LWS_WRITE_BINARY);

	return n < (int)len ? -EIO : 0;
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
		rc = write_frame(c, &m->frame);
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
	return write_frame(c, &c->r->frame);
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

		/*
		 * Closing while the peer is still sending a message (one too
		 * big, say) would reset the connection and could destroy the
		 * ERROR before the peer reads it: drain the message first,
		 * for a few seconds at most.
		 */
		if (c->in_msg) {
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK,
					RELAY_HELLO_SECS);
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
		wire_buf_init(&c->rx, 0, WIRE_FRAME_MAX);
		if (lws_hdr_copy(wsi, c->path, sizeof(c->path),
				 WSI_TOKEN_GET_URI) < 0)
			strcpy(c->path, "?"); /* too long: matches no folder */
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, RELAY_HELLO_SECS);
		refuse_over(c);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		on_receive(c, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return on_writeable(c);
	case LWS_CALLBACK_CLOSED:
		lws_sul_cancel(&c->rate_sul);
		relay_chunk_disown(r->stage, c);
		live_remove(c);
		q_free(c);
		wire_buf_release(&c->rx);
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

int relay_serve(const struct relay_opts *o)
{
	struct lws_context_creation_info info;
	struct relay r;
	struct lws_vhost *vh;
	int lock_fd = -1, rc;

	memset(&r, 0, sizeof(r));
	r.o = o;
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
