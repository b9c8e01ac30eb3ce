/*
 * relay_limits.h - what one peer, one address and one folder may cost a
 * wkfs-relay (docs/protocol.md, "Relay limits"), set with
 * `--limit NAME=VALUE` or in the config file's [limits] (relay_config.h),
 * and the descriptor budget they must fit in.
 *
 * The protocol's own limits (a message, a batch, a chunk) are in wire.h;
 * these are the operator's, and each has a name that the relay's ERROR
 * `limit` reasons repeat, so a refused client can say which one to raise.
 */
#ifndef WKFS_RELAY_LIMITS_H
#define WKFS_RELAY_LIMITS_H

#include <stddef.h>
#include <stdint.h>

struct relay_limits {
	uint64_t hello_bytes;	   /* bytes a connection sends before HELLO */
	uint64_t connections;	   /* TCP connections at once, in total */
	uint64_t connections_addr; /* ... from one address (IPv6: one /64) */
	uint64_t messages_sec;	   /* messages per second per session */
	uint64_t frames_sec;	   /* WebSocket frames per second per session */
	uint64_t put_bytes;	   /* a put's size (its file, expanded) */
	uint64_t folder_bytes;	   /* a folder's chunks and op payloads */
};

/* Descriptors kept for the relay's own use (database, lock, chunk files,
 * the git thread's pipes) out of RLIMIT_NOFILE. */
#define RELAY_FD_RESERVE 32
/* RLIMIT_NOFILE is raised to its hard limit, but not above this: lws
 * sizes tables by it. */
#define RELAY_NOFILE_MAX 65536
/* messages-per-second and frames-per-second allow this many seconds'
 * worth at once before a session is refused. */
#define RELAY_RATE_BURST_SECS 10
/* The default of connections, when the descriptors allow it. */
#define RELAY_CONNECTIONS_DEFAULT 4096

/* The defaults; connections is set by relay_limits_fit_fds(). */
void relay_limits_init(struct relay_limits *l);

/*
 * Sets limit name to value (a whole number; byte limits take a K, M, G
 * or T suffix, powers of 1024; 0 means none for the limits that allow
 * it).  0, or -EINVAL with a one-line reason in err (no prefix: the
 * caller says where the value came from).
 */
int relay_limit_set(struct relay_limits *l, const char *name, const char *value,
		    char *err, size_t errlen);

/* relay_limit_set() of `--limit NAME=VALUE`; err says "bad --limit". */
int relay_limit_parse(struct relay_limits *l, const char *arg, char *err,
		      size_t errlen);

/*
 * Raises RLIMIT_NOFILE's soft limit to its hard one (at most
 * RELAY_NOFILE_MAX) and fits connections in it: its default becomes
 * what the descriptors allow; a value set above that is kept, with a
 * warning.  Call before lws_create_context(), which reads the limit.
 */
void relay_limits_fit_fds(struct relay_limits *l, int set_connections);

/* The name and value of each limit, for the startup log line. */
void relay_limits_describe(const struct relay_limits *l, char *out, size_t len);

#endif
