/*
 * relay.h - wkfs-relay's pieces: the server (relay_server.c, with
 * relay_session.c for what each client message does) and the
 * folder commands (relay_main.c).
 *
 * The server is one libwebsockets context served by one thread; it owns the
 * database handle and the chunk store and speaks docs/protocol.md.  Limits
 * that are the relay's own (not the protocol's) are here.
 */
#ifndef WKFS_RELAY_H
#define WKFS_RELAY_H

#include <stdbool.h>

#include "relay_git.h"
#include "relay_limits.h"

/* An OPS message the relay builds stays under this many bytes. */
#define RELAY_OPS_BYTES (1u << 20)
/* Replies queued for one connection: over SOFT the relay stops reading from
 * it until they drain below half of SOFT; over HARD it gives up on it. */
#define RELAY_PENDING_SOFT (4u << 20)
#define RELAY_PENDING_HARD (16u << 20)
/* Staged chunks are made durable and acknowledged once no new one came
 * for IDLE microseconds, or MAX after the first (relay_server.c). */
#define RELAY_COMMIT_IDLE_US 2000
#define RELAY_COMMIT_MAX_US  50000
/* Seconds a new connection has to send HELLO (and to finish its HTTP
 * request before that). */
#define RELAY_HELLO_SECS 10
/* Seconds a connection over a limit has to read its ERROR. */
#define RELAY_REFUSE_SECS 2
/* How long the loop sleeps after lws failed to accept (no descriptor). */
#define RELAY_ACCEPT_PAUSE_US 20000
/* An HTTP answer (metrics, status page) stays under this many bytes. */
#define RELAY_HTTP_MAX (8u << 20)
/* Seconds between checks that live sessions' tokens are still valid. */
#define RELAY_REVOKE_CHECK_SECS 2

struct relay_opts {
	const char *host; /* numeric address to bind */
	int port;	  /* 0: any free port (printed when listening) */
	const char *data_dir;
	const char *tls_cert; /* both or neither */
	const char *tls_key;
	const struct relay_git_opts *git; /* --git, or NULL */
	const struct relay_limits *limits;
	/* --metrics: a plain HTTP listener for GET /metrics (relay_http.c) */
	const char *metrics_host; /* NULL: none */
	int metrics_port;
	/* --admin-token-file: SHA-256 of the token that opens /metrics on
	 * the relay's own port and the status page */
	bool has_admin;
	uint8_t admin_hash[32];
	bool status_page; /* --status-page: GET / */
	bool verbose;
};

/*
 * Serves until SIGINT or SIGTERM; 0 on a clean stop, else -errno (after
 * printing why).  Prints "listening on HOST:PORT" on stdout once clients
 * may connect.
 */
int relay_serve(const struct relay_opts *o);

#endif
