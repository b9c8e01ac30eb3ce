/*
 * syncd_session.c - one session with the relay: pull, push, apply.
 *
 * Pulling: each OPS message is handled whole before the next is read: the
 * content of its puts is fetched (syncd_content.c), then its ops are
 * inserted into wkfs.db as remote ops together with the new cursor
 * (meta relay_cursor) in one durable transaction, and only then is CURSOR
 * sent.  A crash in between fetches the batch again; the ops table's
 * UNIQUE(hlc, actor) drops what was already inserted.
 *
 * Pushing: local ops not yet shipped, in seq order, content first, in PUSH
 * batches; after a batch's ACK its ops are marked shipped.  A crash before
 * the mark pushes the batch again, which the relay dedupes.  A PUSH the
 * relay refuses because it lacks chunks of a put (ERROR `missing`) means
 * the relay lost chunks we took to be there: the session ends, what we
 * knew to be on the relay is forgotten (a new relay epoch), and the next
 * session uploads every chunk the relay lacks and pushes again; the same
 * put refused twice in a row then goes without content ("none"), so one
 * put cannot hold back the ops after it for ever.
 *
 * Not here: the connection loop and backoff (syncd_main.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fault.h"
#include "syncd.h"
#include "wlog.h"

int syncd_fail(struct syncd *s, struct wsc *c, int rc, const char *what)
{
	const char *reason = "";
	int code;

	if (rc == -EPROTO && c && (code = wsc_peer_error(c, &reason)))
		snprintf(s->err, sizeof(s->err), "relay refused %s: %s: %s",
			 what, wire_err_name(code), reason);
	else if (rc == -ECONNRESET && c &&
		 (code = wsc_close_status(c, &reason)))
		snprintf(s->err, sizeof(s->err),
			 "relay closed the connection during %s (%d %s)", what,
			 code, reason);
	else
		snprintf(s->err, sizeof(s->err), "%s: %s", what, strerror(-rc));
	return rc;
}

static int open_one(struct syncd *s, uint64_t cursor, struct wsc **out,
		    uint64_t *head)
{
	char err[512];
	int rc;

	rc = wsc_connect(s->cfg.remote_url, s->cfg.remote_ca, 5000, out, err,
			 sizeof(err));
	if (rc) {
		snprintf(s->err, sizeof(s->err), "%s", err);
		return rc;
	}
	wsc_count_into(*out, &s->tx_bytes, &s->rx_bytes);
	rc = wsc_hello(*out, s->token, s->actor, cursor, SYNCD_TIMEOUT_MS,
		       head);
	s->peer_error = rc == -EPROTO ? wsc_peer_error(*out, NULL) : 0;
	s->cursor_refused = s->peer_error == WIRE_ERR_CURSOR;
	if (rc) {
		syncd_fail(s, *out, rc, "the session");
		/* A relay of protocol 1 names only its own version. */
		if (s->peer_error == WIRE_ERR_VERSION &&
		    !strstr(s->err, "upgrade"))
			snprintf(s->err + strlen(s->err),
				 sizeof(s->err) - strlen(s->err),
				 ": upgrade wkfs-relay");
		wsc_close(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * The relay answered `cursor`: it does not have the history we saw (a
 * different or restored relay).  Our cursor means nothing there: pull from
 * 0 and push every local op again; the relay and our ops table both drop
 * what they already hold.
 */
static int start_over(struct syncd *s)
{
	int rc;

	wk_warn("%s; starting over: pulling from 0, pushing every local op",
		s->err);
	rc = db_begin(s->db);
	if (!rc)
		rc = content_relay_lost(s);
	if (!rc)
		rc = db_meta_set_u64(s->db, "relay_cursor", 0);
	if (!rc)
		rc = db_ops_unship_local(s->db);
	if (!rc)
		rc = db_commit(s->db, true);
	if (rc) {
		db_rollback(s->db);
		snprintf(s->err, sizeof(s->err), "cannot reset the cursor: %s",
			 db_errmsg(s->db));
		return rc;
	}
	s->cursor = 0;
	s->shipped_upto = 0;
	s->refused_times = 0;
	return 0;
}

int syncd_session_open(struct syncd *s)
{
	uint64_t head, head2;
	int rc;

	rc = open_one(s, s->cursor, &s->ops, &head);
	if (rc == -EPROTO && s->cursor && s->cursor_refused) {
		rc = start_over(s);
		if (!rc)
			rc = open_one(s, s->cursor, &s->ops, &head);
	}
	if (rc)
		return rc;
	/* The data connection starts at the head: it drops OPS anyway. */
	rc = open_one(s, head, &s->data, &head2);
	if (rc) {
		wsc_close(s->ops);
		s->ops = NULL;
		return rc;
	}
	s->caught_up = false;
	s->acked = false;
	s->remote_head = head;
	syncd_publish_progress(s);
	syncd_wake_target(s, s->ops);
	wk_info("connected to %s (head %" PRIu64 ", cursor %" PRIu64 ")",
		s->cfg.remote_url, head, s->cursor);
	return 0;
}

void syncd_session_close(struct syncd *s)
{
	syncd_wake_target(s, NULL);
	wsc_close(s->data);
	wsc_close(s->ops);
	s->data = s->ops = NULL;
}

static bool over_limit(const struct wsc *c)
{
	const char *reason;
	struct wk_id put;

	return c && wsc_peer_error(c, &reason) == WIRE_ERR_LIMIT &&
	       wire_missing_put(reason, &put) != 0;
}

bool syncd_session_limited(const struct syncd *s)
{
	return over_limit(s->ops) || over_limit(s->data);
}

/* Fetches the content of the puts of an OPS message. */
static int fetch_batch(struct syncd *s, const struct wire_msg *m,
		       struct wk_op *op)
{
	struct wire_content_ref ref;
	struct wire_iter it;
	struct wire_opent e;
	int rc;

	wire_iter_init(&it, m);
	while (wire_iter_next(&it, &e)) {
		if (e.actor == s->actor ||
		    wire_op_decode_ref(e.payload, e.len, e.actor, e.hlc, op,
				       &ref) ||
		    op->kind != WK_OP_PUT)
			continue;
		rc = content_fetch(s, op, &ref);
		if (rc)
			return rc;
	}
	return 0;
}

/* Inserts the ops of an OPS message and the new cursor, durably. */
static int insert_batch(struct syncd *s, const struct wire_msg *m,
			struct wk_op *op, int *inserted)
{
	struct wire_iter it;
	struct wire_opent e;
	int rc;

	rc = db_begin(s->db);
	if (rc)
		return rc;
	wire_iter_init(&it, m);
	while (wire_iter_next(&it, &e)) {
		if (e.actor == s->actor)
			continue;
		if (wire_op_decode_ref(e.payload, e.len, e.actor, e.hlc, op,
				       NULL)) {
			wk_warn("relay seq %" PRIu64 ": op %016" PRIx64
				"/%" PRIu64 " does not decode; skipped",
				e.seq, e.actor, e.hlc);
			continue;
		}
		rc = db_op_append(s->db, op, DB_ORIGIN_REMOTE, NULL);
		if (rc == -EEXIST) {
			rc = 0;
			continue;
		}
		if (rc)
			goto out_rollback;
		(*inserted)++;
	}
	rc = db_meta_set_u64(s->db, "relay_cursor", m->batch.through);
	fault_point("syncd.before_apply");
	if (!rc)
		rc = db_commit(s->db, true);
	if (!rc) {
		fault_point("syncd.after_apply");
		return 0;
	}
out_rollback:
	db_rollback(s->db);
	snprintf(s->err, sizeof(s->err), "cannot store remote ops: %s",
		 db_errmsg(s->db));
	return rc;
}

static int send_cursor(struct syncd *s, uint64_t seq)
{
	struct wire_msg c = {.type = WIRE_CURSOR};
	int rc;

	c.cursor.seq = seq;
	rc = wsc_send_msg(s->ops, &c);
	return rc ? syncd_fail(s, s->ops, rc, "CURSOR") : 0;
}

/* What the ops of an OPS message retire among themselves. */
static void note_superseded(struct syncd *s, const struct wire_msg *m,
			    struct wk_op *op, struct plan_retired *r)
{
	struct wire_iter it;
	struct wire_opent e;

	wire_iter_init(&it, m);
	while (wire_iter_next(&it, &e))
		if (e.actor != s->actor &&
		    !wire_op_decode_ref(e.payload, e.len, e.actor, e.hlc, op,
					NULL))
			plan_retired_add(r, op);
	s->superseded = r;
}

static int handle_ops(struct syncd *s, const struct wire_msg *m)
{
	struct wk_op *op = malloc(sizeof(*op));
	struct plan_retired superseded = {0};
	int inserted = 0, rc;

	if (!op)
		return -ENOMEM;
	note_superseded(s, m, op, &superseded);
	/* One flush for the batch's objects, before the ops that need
	 * them are recorded: not two fsyncs per object. */
	mat_object_defer(s->mat, true);
	rc = content_fetch_batch(s, m);
	if (!rc)
		rc = fetch_batch(s, m, op);
	mat_object_defer(s->mat, false);
	s->superseded = NULL;
	plan_retired_release(&superseded);
	if (!rc && (rc = mat_object_flush(s->mat)) != 0)
		snprintf(s->err, sizeof(s->err),
			 "cannot make fetched contents durable: %s",
			 strerror(-rc));
	if (!rc)
		rc = insert_batch(s, m, op, &inserted);
	free(op);
	if (rc)
		return rc;
	if (m->batch.through > s->cursor)
		s->cursor = m->batch.through;
	if (inserted) {
		s->need_apply = true;
		s->received += (uint64_t)inserted;
		wk_info("received %d ops (through seq %" PRIu64 ")", inserted,
			m->batch.through);
	}
	syncd_publish_progress(s);
	return send_cursor(s, s->cursor);
}

static int handle_caught_up(struct syncd *s, uint64_t seq)
{
	int rc;

	s->caught_up = true;
	if (seq <= s->cursor)
		return 0;
	rc = db_meta_set_u64(s->db, "relay_cursor", seq);
	if (rc) {
		snprintf(s->err, sizeof(s->err), "cannot store the cursor: %s",
			 db_errmsg(s->db));
		return rc;
	}
	s->cursor = seq;
	return send_cursor(s, seq);
}

static int step(struct syncd *s, int timeout_ms, bool wakeable)
{
	struct wire_msg m;
	int rc;

	rc = wakeable ? wsc_recv_wakeable(s->ops, timeout_ms, &m)
		      : wsc_recv(s->ops, timeout_ms, &m);
	if (rc == -ETIMEDOUT || rc == -EINTR)
		return rc;
	if (rc)
		return syncd_fail(s, s->ops, rc, "the session");
	switch (m.type) {
	case WIRE_OPS:
		return handle_ops(s, &m);
	case WIRE_CAUGHT_UP:
		return handle_caught_up(s, m.cursor.seq);
	case WIRE_ACK:
		s->acked = true;
		s->ack_batch = m.ack.batch_id;
		return 0;
	case WIRE_PONG:
		s->pong_nonce = m.ping.nonce;
		return 0;
	default:
		return 0;
	}
}

int syncd_session_step(struct syncd *s, int timeout_ms)
{
	return step(s, timeout_ms, false);
}

int syncd_session_wait(struct syncd *s, int timeout_ms)
{
	return step(s, timeout_ms, true);
}

/* ---- pushing ---- */

#define PUSH_ROWS 256

struct pending {
	struct db_oprow *rows;
	size_t n;
	int64_t last_seen; /* highest seq looked at */
};

static int collect(void *arg, const struct db_oprow *r)
{
	struct pending *p = arg;

	p->last_seen = r->seq;
	if (r->origin != DB_ORIGIN_LOCAL || r->shipped)
		return 0;
	p->rows[p->n++] = *r;
	return p->n == PUSH_ROWS ? 1 : 0;
}

/*
 * The relay refused a PUSH with `missing` (reason: wire_missing_put()):
 * it lacks a chunk we took to be there, so it lost chunks.  A new epoch
 * makes the next session ask about (and upload) every chunk again; s->err
 * says what happens next.  Returns -EPROTO: the session is over.
 */
static int push_refused(struct syncd *s, const char *reason)
{
	char ids[WK_ID_STRLEN];
	struct wk_id put;
	int rc;

	if (wire_missing_put(reason, &put) != 0)
		put = WK_ID_NONE; /* not ours to read: no put goes "none" */
	s->refused_over = false;
	if (s->refused_times && wk_id_eq(put, s->refused_put)) {
		s->refused_times++;
	} else {
		s->refused_put = put;
		s->refused_times = 1;
		s->refused_seq = 0;
	}
	s->refused_now = true;
	rc = db_begin(s->db);
	if (!rc)
		rc = content_relay_lost(s);
	if (!rc)
		rc = db_commit(s->db, true);
	if (rc) {
		db_rollback(s->db);
		snprintf(s->err, sizeof(s->err),
			 "cannot draw a relay epoch: %s", db_errmsg(s->db));
		return -EPROTO;
	}
	if (s->refused_times > 1 && !wk_id_eq(put, WK_ID_NONE))
		snprintf(s->err, sizeof(s->err),
			 "relay refused a push again (%s): pushing put %s "
			 "without its content",
			 reason, wk_id_str(put, ids));
	else
		snprintf(s->err, sizeof(s->err),
			 "relay refused a push (%s): uploading every chunk it "
			 "lacks again",
			 reason);
	return -EPROTO;
}

/*
 * The relay refused a PUSH with ERROR `limit` naming a put (put-bytes: a
 * file bigger than it takes).  Uploading again cannot help: the put goes
 * without its content in the next session, at once, so that the ops
 * after it are not held back (as for a second `missing`).  Other limits
 * (folder-bytes...) name no put and end the session as any ERROR does.
 */
static int push_over_limit(struct syncd *s, const char *reason)
{
	char ids[WK_ID_STRLEN];
	struct wk_id put;

	if (wire_missing_put(reason, &put) != 0)
		return -EPROTO;
	s->refused_put = put;
	s->refused_times = 2;
	s->refused_seq = 0;
	s->refused_now = true;
	s->refused_over = true;
	snprintf(s->err, sizeof(s->err),
		 "relay refused a push (%s): pushing put %s without its"
		 " content",
		 reason, wk_id_str(put, ids));
	return -EPROTO;
}

/* Sends the PUSH in frame and waits for its ACK; then marks up to last. */
static int send_batch(struct syncd *s, struct wire_buf *frame, int64_t last)
{
	uint32_t n = wire_batch_count(frame);
	const char *reason;
	int rc;

	/* Content uploaded, PUSH not sent: where a relay can lose it. */
	fault_pause("syncd.push");
	fault_point("syncd.before_send");
	rc = wsc_send(s->ops, wire_buf_data(frame), wire_buf_len(frame));
	if (rc)
		return syncd_fail(s, s->ops, rc, "PUSH");
	while (!s->acked || s->ack_batch != s->batch_id) {
		rc = syncd_session_step(s, SYNCD_TIMEOUT_MS);
		if (rc == -ETIMEDOUT)
			return syncd_fail(s, NULL, rc, "waiting for ACK");
		if (rc == -EPROTO &&
		    wsc_peer_error(s->ops, &reason) == WIRE_ERR_MISSING)
			return push_refused(s, reason);
		if (rc == -EPROTO &&
		    wsc_peer_error(s->ops, &reason) == WIRE_ERR_LIMIT)
			return push_over_limit(s, reason);
		if (rc)
			return rc;
	}
	/* Acknowledged, not yet marked shipped: sent again next session. */
	fault_point("syncd.after_ack");
	/* The refused put is in: its story is over. */
	if (s->refused_seq && last >= s->refused_seq)
		s->refused_times = 0;
	rc = db_ops_mark_shipped(s->db, last, NULL);
	if (rc) {
		snprintf(s->err, sizeof(s->err), "cannot mark ops shipped: %s",
			 db_errmsg(s->db));
		return rc;
	}
	s->shipped_upto = last;
	s->pushed += n;
	syncd_publish_progress(s);
	wk_info("pushed %u ops (through local seq %" PRId64 ")", n, last);
	return 0;
}

static int encode_row(struct syncd *s, const struct db_oprow *r,
		      struct wire_buf *pay)
{
	struct wire_content_ref ref;
	int rc;

	wire_buf_reset(pay);
	if (r->op.kind != WK_OP_PUT)
		return wire_op_encode(pay, &r->op);
	if (s->refused_times && wk_id_eq(r->op.id, s->refused_put)) {
		s->refused_seq = r->seq;
		/* Uploaded again, refused again: the relay will not take
		 * this content from us, and the ops after it must go. */
		if (s->refused_times > 1) {
			char ids[WK_ID_STRLEN];

			memset(&ref, 0, sizeof(ref));
			ref.how = WIRE_CONTENT_NONE;
			wk_warn(s->refused_over
					? "put %s: over the relay's put-bytes;"
					  " pushed without its content"
					: "put %s: the relay refused its "
					  "content"
					  " twice; pushed without it (a later"
					  " put carries it)",
				wk_id_str(r->op.id, ids));
			return wire_put_encode(pay, &r->op, &ref);
		}
	}
	rc = content_ship(s, &r->op, &ref);
	if (rc)
		return rc;
	return wire_put_encode(pay, &r->op, &ref);
}

/* Pushes the rows of p in as many batches as they need. */
static int push_rows(struct syncd *s, struct pending *p, struct wire_buf *frame,
		     struct wire_buf *pay)
{
	int64_t last = 0;
	size_t i = 0;
	int rc;

	rc = content_ship_batch(s, p->rows, p->n);
	if (rc)
		return rc;
	wire_buf_reset(frame);
	wire_batch_begin(frame, WIRE_PUSH, ++s->batch_id);
	while (i < p->n) {
		const struct db_oprow *r = &p->rows[i];
		struct wire_opent e = {.actor = r->op.id.actor,
				       .hlc = r->op.id.hlc};

		rc = encode_row(s, r, pay);
		if (rc == -EINVAL) {
			char ids[WK_ID_STRLEN];

			wk_err("local op %s (seq %" PRId64 ") cannot be "
			       "encoded; not shipped",
			       wk_id_str(r->op.id, ids), r->seq);
			last = r->seq;
			i++;
			continue;
		}
		if (rc)
			return rc;
		e.payload = wire_buf_data(pay);
		e.len = (uint32_t)wire_buf_len(pay);
		rc = wire_batch_add(frame, &e);
		if (rc == -EMSGSIZE && wire_batch_count(frame) > 0) {
			rc = send_batch(s, frame, last);
			if (rc)
				return rc;
			wire_buf_reset(frame);
			wire_batch_begin(frame, WIRE_PUSH, ++s->batch_id);
			continue; /* the same row again (content is there) */
		}
		if (rc)
			return rc;
		last = r->seq;
		i++;
	}
	if (wire_batch_count(frame) > 0)
		return send_batch(s, frame, last);
	if (last) {
		rc = db_ops_mark_shipped(s->db, last, NULL);
		if (!rc)
			s->shipped_upto = last;
	}
	return 0;
}

int syncd_push(struct syncd *s)
{
	struct pending p = {.rows = malloc(PUSH_ROWS * sizeof(*p.rows))};
	struct wire_buf frame, pay;
	int rc = 0;

	if (!p.rows)
		return -ENOMEM;
	wire_buf_init(&frame, 0, WIRE_FRAME_MAX);
	wire_buf_init(&pay, 0, WIRE_PAYLOAD_MAX);
	for (;;) {
		p.n = 0;
		p.last_seen = s->shipped_upto;
		rc = db_ops_foreach(s->db, s->shipped_upto, 0, collect, &p);
		if (rc < 0) {
			snprintf(s->err, sizeof(s->err),
				 "cannot read the oplog: %s", db_errmsg(s->db));
			break;
		}
		if (p.n == 0) {
			/* Everything up to here is remote or shipped. */
			s->shipped_upto = p.last_seen;
			rc = 0;
			break;
		}
		rc = push_rows(s, &p, &frame, &pay);
		content_batch_reset(s);
		if (rc)
			break;
	}
	wire_buf_release(&frame);
	wire_buf_release(&pay);
	free(p.rows);
	return rc;
}

int syncd_barrier(struct syncd *s)
{
	struct wire_msg m = {.type = WIRE_PING};
	int rc;

	m.ping.nonce = ++s->ping_nonce;
	rc = wsc_send_msg(s->ops, &m);
	if (rc)
		return syncd_fail(s, s->ops, rc, "PING");
	while (s->pong_nonce != s->ping_nonce) {
		rc = syncd_session_step(s, SYNCD_TIMEOUT_MS);
		if (rc == -ETIMEDOUT)
			return syncd_fail(s, NULL, rc, "waiting for PONG");
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the mount ---- */

bool syncd_flush_mount(struct syncd *s)
{
	char sock[RUNDIR_MAX + 16], reply[CTL_LINE_MAX];

	snprintf(sock, sizeof(sock), "%s/fs.sock", s->run);
	return ctl_request(sock, "flush", reply, sizeof(reply), NULL) == 0 &&
	       strcmp(reply, "ok") == 0;
}

void syncd_apply(struct syncd *s)
{
	char sock[RUNDIR_MAX + 16], reply[CTL_LINE_MAX];
	int rc;

	if (!s->need_apply)
		return;
	snprintf(sock, sizeof(sock), "%s/fs.sock", s->run);
	rc = ctl_request(sock, "apply", reply, sizeof(reply), NULL);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		/* Not mounted: the mount applies at its next start. */
		s->need_apply = false;
		return;
	}
	if (rc) {
		wk_warn("cannot ask the mount to apply: %s", strerror(-rc));
		return;
	}
	if (strcmp(reply, "ok") != 0)
		wk_debug("mount answered apply with \"%s\"", reply);
	s->need_apply = false;
}
