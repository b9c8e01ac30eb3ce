/*
 * relay_stats.h - what wkfs-relay counts about itself, for its /metrics
 * and its status page (relay_http.c): bytes and ops through it, pushes
 * and sessions refused by reason, the latency of its commits, the
 * replicas it has seen and the last errors it sent.
 *
 * Only counting: nothing here reads the database or speaks HTTP.  The
 * relay's one service thread updates and reads it, so nothing is locked.
 * Everything is in memory and starts from zero when the relay starts;
 * what outlives a restart (heads, cursors, chunk stores) is read from
 * the store when a page is made.
 */
#ifndef WKFS_RELAY_STATS_H
#define WKFS_RELAY_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "wire.h"

/* ERROR codes counted one by one (wire.h's are 1..13); others count as 0. */
#define RELAY_STATS_CODES 16
/* The last errors kept for the status page. */
#define RELAY_STATS_ERRORS 12
/* Replicas remembered (folder, actor); past that new ones go uncounted. */
#define RELAY_STATS_REPLICAS 10000
/* Upper bounds of the commit latency histogram, in seconds (+Inf last). */
#define RELAY_STATS_BUCKETS 12
extern const double relay_stats_bounds[RELAY_STATS_BUCKETS];

enum relay_commit_kind {
	RELAY_COMMIT_OPS,    /* a PUSH stored (relay_db_push) */
	RELAY_COMMIT_CHUNKS, /* staged chunks made durable */
	RELAY_COMMIT_KINDS
};

/* Per folder (by database id), made when first counted. */
struct relay_folder_stats {
	struct relay_folder_stats *next;
	int64_t id;
	uint64_t ops_in;  /* new ops stored from pushes */
	uint64_t ops_out; /* ops sent in OPS messages */
	uint64_t pushes;  /* PUSH messages stored */
};

/* A replica (an actor in a folder) that said HELLO since the start. */
struct relay_replica_seen {
	struct relay_replica_seen *next;
	int64_t folder;
	uint64_t actor;
	time_t last_seen;  /* its last message, or when it went */
	unsigned sessions; /* connected now */
	char addr[64];	   /* the peer address of its last session */
};

/* An ERROR the relay sent, and to whom. */
struct relay_error_seen {
	time_t at;
	uint16_t code;
	uint64_t actor;			  /* 0 before HELLO */
	char folder[WIRE_FOLDER_MAX + 1]; /* "" before HELLO */
	char addr[64];
	char reason[WIRE_REASON_MAX + 1];
};

struct relay_stats {
	time_t started;
	uint64_t bytes_in, bytes_out;	     /* WebSocket message bytes */
	uint64_t errors[RELAY_STATS_CODES];  /* ERRORs sent, by code */
	uint64_t refused[RELAY_STATS_CODES]; /* of those, in answer to PUSH */
	struct relay_folder_stats *folders;
	struct relay_replica_seen *replicas;
	unsigned n_replicas;
	struct relay_error_seen last_errors[RELAY_STATS_ERRORS]; /* a ring */
	unsigned n_errors; /* ever recorded; the newest is [(n - 1) % N] */
	uint64_t commit_buckets[RELAY_COMMIT_KINDS][RELAY_STATS_BUCKETS];
	uint64_t commit_count[RELAY_COMMIT_KINDS];
	double commit_sum[RELAY_COMMIT_KINDS];
};

void relay_stats_init(struct relay_stats *s);
void relay_stats_release(struct relay_stats *s);

/* The folder's counters, made (zero) on first use. */
struct relay_folder_stats *relay_stats_folder(struct relay_stats *s,
					      int64_t id);

/* The replica's record, made on first use; NULL when RELAY_STATS_REPLICAS
 * are remembered already. */
struct relay_replica_seen *relay_stats_replica(struct relay_stats *s,
					       int64_t folder, uint64_t actor);

/* Counts an ERROR sent (push: in answer to a PUSH) and keeps it among the
 * last errors. */
void relay_stats_error(struct relay_stats *s, int code, bool push,
		       const char *folder, uint64_t actor, const char *addr,
		       const char *reason);

/* Counts a commit that took usec microseconds. */
void relay_stats_commit(struct relay_stats *s, enum relay_commit_kind kind,
			int64_t usec);

/* The i-th newest error kept (0: the newest), or NULL. */
const struct relay_error_seen *
relay_stats_last_error(const struct relay_stats *s, unsigned i);

#endif
