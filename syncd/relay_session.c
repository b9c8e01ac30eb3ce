/*
 * relay_session.c - what wkfs-relay does with each message a client sends
 * (docs/protocol.md): HELLO, PUSH, CURSOR, HAVE, CHUNK_PUT, CHUNK_GET and
 * PING, and the limits a session is held to while it sends them
 * (hello-bytes, messages-per-second, frames-per-second, put-bytes,
 * folder-bytes; the connection limits are relay_admit.c's).
 *
 * Runs on the relay's one service thread, like relay_server.c, which
 * owns the connections, the output queue and sending; replies go through
 * conn_queue(), failures through conn_fail() (relay_int.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "fault.h"
#include "relay.h"
#include "relay_chunks.h"
#include "relay_db.h"
#include "relay_int.h"
#include "wire.h"
#include "wlog.h"
#include "xalloc.h"

static void token_hash(const uint8_t *token, size_t len,
		       uint8_t out[RELAY_TOKEN_HASH_LEN])
{
	unsigned int n = RELAY_TOKEN_HASH_LEN;

	EVP_Digest(token, len, out, &n, EVP_sha256(), NULL);
}

/*
 * messages-per-second and frames-per-second: a token bucket per session
 * holding RELAY_RATE_BURST_SECS seconds' worth, refilled at the rate (as
 * GCRA: *tat is when the bucket is full again, in ns).  A replica that
 * uploads many small chunks at once stays within the burst; a peer that
 * keeps sending faster than the rate gets ERROR `limit` and is closed,
 * as over any other cap.  False when this frame or message is over.
 */
static bool rate_take(struct conn *c, int64_t *tat, uint64_t rate,
		      const char *what, const char *limit)
{
	const int64_t burst = (int64_t)RELAY_RATE_BURST_SECS * 1000000000;
	int64_t now;

	if (!rate)
		return true;
	now = (int64_t)lws_now_usecs() * 1000;
	if (*tat < now)
		*tat = now;
	*tat += (int64_t)(1000000000 / rate);
	if (*tat - now <= burst)
		return true;
	conn_fail(c, WIRE_ERR_LIMIT,
		  "%s faster than %" PRIu64 " a second for %d s: over the"
		  " limit %s=%" PRIu64,
		  what, rate, RELAY_RATE_BURST_SECS, limit, rate);
	return false;
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
	c->seen = relay_stats_replica(&c->r->stats, c->folder_id, c->actor);
	if (c->seen) {
		c->seen->sessions++;
		c->seen->last_seen = time(NULL);
		memcpy(c->seen->addr, c->addr, sizeof(c->addr));
	}
	w.welcome.version = c->version;
	w.welcome.head_seq = f.head;
	conn_queue(c, &w);
	if (c->r->o->verbose)
		wk_info("session: folder %s actor %016llx cursor %llu",
			c->folder, (unsigned long long)c->actor,
			(unsigned long long)c->send_seq);
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
	struct relay_folder_stats *fs;
	lws_usec_t t0;
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
	t0 = lws_now_usecs();
	rc = relay_db_push(c->r->db, c->folder_id, m, budget, &head, &added,
			   &added_bytes);
	relay_stats_commit(&c->r->stats, RELAY_COMMIT_OPS,
			   lws_now_usecs() - t0);
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
	fault_point("relay.after_commit");
	folder_grew(c, added_bytes);
	fs = relay_stats_folder(&c->r->stats, c->folder_id);
	fs->pushes++;
	fs->ops_in += added;
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
	if (c->seen)
		c->seen->last_seen = time(NULL);
	c->handling = m.type;
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
	c->handling = 0;
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

void relay_on_receive(struct conn *c, const uint8_t *in, size_t len)
{
	c->r->stats.bytes_in += len;
	c->last_rx = lws_now_usecs();
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
	/* The end of a WebSocket frame, and maybe of a message. */
	if (!lws_remaining_packet_payload(c->wsi) &&
	    (!rate_take(c, &c->frame_tat, c->r->lim->frames_sec, "frames",
			"frames-per-second") ||
	     (lws_is_final_fragment(c->wsi) &&
	      !rate_take(c, &c->msg_tat, c->r->lim->messages_sec, "messages",
			 "messages-per-second")))) {
		c->in_msg = !lws_is_final_fragment(c->wsi);
		return;
	}
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
