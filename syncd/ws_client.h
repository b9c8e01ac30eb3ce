/*
 * ws_client.h - a blocking WebSocket client for the wkfs protocol.
 *
 * One connection to a relay, with its own libwebsockets context, driven only
 * from inside these calls: each call services the connection until what it
 * waits for happens or its timeout passes.  Simple to use from a thread of
 * its own (wkfs-syncd) or a test tool; not thread-safe (lws is not;
 * wsc_wake() excepted), and a struct wsc must stay on the thread that made
 * it.
 *
 *     struct wsc *c;
 *     if (wsc_connect("ws://127.0.0.1:7890/Notes", 5000, &c, err, sizeof err))
 *             ...;
 *     rc = wsc_hello(c, token, actor, cursor, 5000, &head);
 *     wsc_send_msg(c, &push);                   // queued, sent while servicing
 *     while ((rc = wsc_recv(c, 5000, &m)) == 0)  // OPS, ACK, ... in order
 *             ...;                               // m points into c: valid
 *                                                // until the next wsc_recv
 *     wsc_close(c);
 *
 * Errors are -errno: -ETIMEDOUT (nothing within the timeout; the connection
 * is still usable), -ECONNRESET (the connection is gone: wsc_peer_error()
 * and wsc_close_status() say why), -EBADMSG (the server sent a frame that
 * does not decode: close it), -EPROTO (an ERROR message arrived: it is in
 * wsc_peer_error(); the server closes after it), -EMSGSIZE (over a limit).
 * Memory is bounded: frames received but not yet taken by wsc_recv stop the
 * reading once they pass 2 * WIRE_FRAME_MAX, queued output is capped at
 * WSC_OUT_MAX.
 */
#ifndef WKFS_WS_CLIENT_H
#define WKFS_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define WSC_OUT_MAX (32u << 20)

struct wsc;

/*
 * Connects to ws://HOST:PORT/FOLDER or wss://... (HOST a name, an IPv4
 * address or [IPv6]).  wss:// checks the relay's certificate and that it
 * names HOST: against ca_file (PEM) when not NULL, else against the
 * system's CAs.  With WKFS_TLS_INSECURE=1 in the environment, wss accepts
 * any certificate (tests only).  Whether ws:// may be used at all is the
 * caller's question (remote_url_check() in config.h).  Blocks until the
 * WebSocket is open, failing after timeout_ms; err gets a one-line reason.
 */
int wsc_connect(const char *url, const char *ca_file, int timeout_ms,
		struct wsc **out, char *err, size_t errlen);

/* Closes cleanly (status 1000) and frees everything.  NULL is fine. */
void wsc_close(struct wsc *c);

/* The folder named by the URL's path. */
const char *wsc_folder(const struct wsc *c);

/*
 * Adds the bytes of every message sent and received from now on to *tx and
 * *rx (those counted since the connect, the HELLO and WELCOME, are added
 * at once).  Message bytes as handed to and taken from libwebsockets:
 * WebSocket framing (2-14 bytes a frame), the HTTP upgrade, TLS and TCP
 * are not counted.  The counters must outlive c.
 */
void wsc_count_into(struct wsc *c, uint64_t *tx, uint64_t *rx);

/* Queues one frame (copied) or message; sent as the connection allows. */
int wsc_send(struct wsc *c, const void *frame, size_t len);
int wsc_send_msg(struct wsc *c, const struct wire_msg *m);

/* Waits until every queued frame has been handed to the socket. */
int wsc_flush(struct wsc *c, int timeout_ms);

/* Receives one message; see above for what m points into. */
int wsc_recv(struct wsc *c, int timeout_ms, struct wire_msg *m);

/*
 * The same, but returns -EINTR as soon as wsc_wake() has been called since
 * the last wsc_recv_wakeable() (a message already received comes first).
 */
int wsc_recv_wakeable(struct wsc *c, int timeout_ms, struct wire_msg *m);

/*
 * Cuts a wsc_recv_wakeable() short, from any thread: the one call that is
 * thread-safe.  The caller makes sure c is not closed meanwhile.
 */
void wsc_wake(struct wsc *c);

/*
 * HELLO with the URL's folder, then waits for WELCOME: 0 and *head, or
 * -EPROTO with the ERROR in wsc_peer_error().
 */
int wsc_hello(struct wsc *c, const uint8_t token[WIRE_TOKEN_LEN],
	      uint64_t actor, uint64_t cursor, int timeout_ms, uint64_t *head);

/* The ERROR the server sent, if any: its code (0: none) and reason. */
int wsc_peer_error(const struct wsc *c, const char **reason);

/* The close status and reason the server sent (0 and "" if none). */
int wsc_close_status(const struct wsc *c, const char **reason);

/* True once the connection is closed. */
bool wsc_closed(const struct wsc *c);

/* Parses 64 hex digits into a token: 0 or -EINVAL. */
int wsc_token_parse(const char *hex, uint8_t token[WIRE_TOKEN_LEN]);

#endif
