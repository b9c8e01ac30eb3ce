/*
 * relay_int.h - what relay_server.c (connections, the output queue,
 * sending, the lws glue) and relay_session.c (what each client message
 * does) share inside wkfs-relay.  Not a public interface: one service
 * thread uses all of it, so nothing here is locked.
 */
#ifndef WKFS_RELAY_INT_H
#define WKFS_RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "relay.h"
#include "relay_db.h"
#include "relay_stats.h"
#include "wire.h"

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

/* Why a connection is not read from: its replies are piling up. */
#define PAUSE_REPLIES 1u

/* After its ERROR, a connection is closed once its peer has sent nothing
 * for this long (RELAY_HELLO_SECS at most). */
#define RELAY_LINGER_US (200 * LWS_US_PER_MS)

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
	int64_t msg_tat;     /* ns: when its message bucket is full again */
	int64_t frame_tat;   /* ... and its frame bucket */
	lws_usec_t last_rx;  /* when it last sent anything */

	/* output */
	struct outmsg *q_head, *q_tail;
	size_t q_bytes;
	uint16_t err_code;
	char err_reason[WIRE_REASON_MAX + 1];
	lws_sorted_usec_list_t linger_sul; /* closes it once it is quiet */

	/* for the metrics and status page */
	char addr[64];			 /* the peer's address */
	int handling;			 /* the message type being handled */
	struct relay_replica_seen *seen; /* NULL before HELLO */

	/* a plain HTTP request instead (relay_http.c): its answer */
	struct wire_buf http_out;
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
	struct relay_stats stats;  /* for /metrics and the status page */
	struct lws_vhost *metrics_vh; /* --metrics: HTTP only */
};

/* Marks the connection failed: only the ERROR goes out, then it closes. */
void conn_fail(struct conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Queues a reply (a copy: msg may go). */
void conn_queue(struct conn *c, const struct wire_msg *msg);
/* Queues a CHUNK, read from the store when it is sent. */
void conn_queue_chunk(struct conn *c, const uint8_t *name);
/* Stops (on) or resumes reading for one of PAUSE_*. */
void conn_pause(struct conn *c, unsigned why, bool on);
/* A welcomed connection joins r->live, for fan_out(). */
void live_add(struct conn *c);
/* Tells every other welcomed connection of the folder to send new ops. */
void fan_out(struct relay *r, struct conn *from);
/* Makes the staged chunks durable and acknowledges them, now or soon. */
void commit_chunks(struct relay *r);
void commit_later(struct relay *r);

/* LWS_CALLBACK_RECEIVE: a fragment of a client's message. */
void relay_on_receive(struct conn *c, const uint8_t *in, size_t len);

/*
 * Plain HTTP on the relay's vhosts (relay_http.c): LWS_CALLBACK_HTTP
 * answers GET /metrics and GET / (the status page) or an error, and
 * HTTP_WRITEABLE sends the answer; each returns nonzero to close.
 * relay_http_done() frees what a request left (CLOSED_HTTP).
 */
int relay_http_request(struct conn *c, struct lws *wsi, const char *uri);
int relay_http_writeable(struct conn *c, struct lws *wsi);
void relay_http_done(struct conn *c);

#endif
