/*
 * relay_admit.h - which TCP connections wkfs-relay takes: at most
 * `connections` at once and `connections-per-address` from one address
 * (an IPv6 address counts by its /64, which one host usually holds
 * whole), from accept to close, whether they got as far as HELLO or not
 * (half-open HTTP requests cost a descriptor too).
 *
 * A connection over a limit is not dropped at once when it can be
 * helped: up to RELAY_ADMIT_REFUSING of them are let through the
 * WebSocket handshake, for a few seconds, so that the peer reads an
 * ERROR `limit` naming the limit; past that they are closed as soon as
 * accepted, so a flood costs one descriptor for an instant each.  Also
 * the relay's log of lws: a line repeated (accept failing for want of
 * descriptors) is written once per RELAY_LOG_EVERY_SECS with a count.
 *
 * Single-threaded: the relay's service loop only.
 */
#ifndef WKFS_RELAY_ADMIT_H
#define WKFS_RELAY_ADMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "relay_limits.h"

#define RELAY_ADMIT_REFUSING 16
#define RELAY_LOG_EVERY_SECS 10

struct relay_admit;

struct relay_admit *relay_admit_new(const struct relay_limits *l);
void relay_admit_free(struct relay_admit *a);

/*
 * A connection was accepted on fd.  Returns its ticket, to be given back
 * to relay_admit_release() when it closes; with *over NULL it is
 * admitted, else *over names the limit it is over and it must be refused
 * with an ERROR.  NULL: close it now (over a limit, and too many are
 * being refused already).
 */
void *relay_admit_conn(struct relay_admit *a, int fd, const char **over);
void relay_admit_release(struct relay_admit *a, void *ticket);

/* The limit a ticket was refused for, or NULL when it was admitted. */
const char *relay_admit_refused(const void *ticket);

/* lws's log lines (lws_set_log_level()), repeats counted, not written. */
void relay_admit_log_lws(int level, const char *line);
/* True once after lws logged an accept() failure: the caller pauses, as
 * the listening socket stays readable and lws would try again at once. */
bool relay_admit_accept_failed(void);

#endif
