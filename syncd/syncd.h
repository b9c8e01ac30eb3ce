/*
 * syncd.h - wkfs-syncd's internals, shared by syncd_*.c.
 *
 * One daemon per synced directory DIR.  A session is two WebSocket
 * connections to the relay named in DIR/.wkfs/config.ini:
 *
 *   ops   HELLO with the stored cursor, then OPS/CAUGHT_UP in, PUSH and
 *         CURSOR out (syncd_session.c);
 *   data  HELLO too, but only HAVE/CHUNK_PUT/CHUNK_GET and their replies;
 *         OPS arriving on it are read and dropped (syncd_content.c).
 *
 * Two connections keep the flow simple and memory bounded: while a batch
 * of received ops waits for its content, more OPS pile up in the kernel's
 * socket buffers of the ops connection instead of in ours, and a reply to
 * a chunk request never hides behind a backlog of ops.
 *
 * Everything runs on one thread; the struct is not locked.
 */
#ifndef WKFS_SYNCD_H
#define WKFS_SYNCD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <sys/types.h>

#include "apply_plan.h"
#include "bytebuf.h"
#include "config.h"
#include "db.h"
#include "materialize.h"
#include "recipe.h"
#include "recipe_cache.h"
#include "rundir.h"
#include "wire.h"
#include "ws_client.h"

#define SYNCD_TIMEOUT_MS 15000
/* How long the loop waits when nothing wakes it (syncd_wake.c). */
#define SYNCD_POLL_MS 1000

/* The connection state `wkfs status` shows. */
enum syncd_conn {
	SYNCD_CONNECTING = 0,
	SYNCD_CONNECTED,
	SYNCD_OFFLINE,
	SYNCD_AUTH_FAILED,
};

/*
 * What the main thread and the control socket's thread share
 * (syncd_ctl.c), under lock.  The main thread publishes its state; the
 * control thread asks for a sync (sync_asked++) and waits on cond until
 * sync_done catches up.
 */
struct syncd_shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum syncd_conn conn;
	char err[512];	       /* why the last session failed, or "" */
	int64_t last_ok_ms;    /* wall clock of the last successful exchange */
	int64_t started_ms;    /* when the daemon started */
	uint64_t pushed;       /* ops pushed and acknowledged, since start */
	uint64_t received;     /* remote ops stored, since start */
	uint64_t tx_bytes;     /* bytes sent: relay messages, or git blobs */
	uint64_t rx_bytes;     /* and received, since start */
	uint64_t cursor;       /* the relay seq received through */
	uint64_t remote_head;  /* the relay's head as last heard (WELCOME,
				* OPS), at least cursor; 0: unknown (git) */
	uint64_t sync_asked;   /* sync requests so far */
	uint64_t sync_done;    /* requests answered */
	int sync_rc;	       /* result of the last answered round */
	char sync_err[512];    /* its reason when it failed */
	struct wsc *wake_conn; /* what syncd_wake() interrupts, or NULL */
	uint64_t fetch_asked;  /* restore's fetch requests so far */
	uint64_t fetch_done;   /* and answered (syncd_refetch.c) */
	int fetch_rc;	       /* result of the last one answered */
	struct wk_hash fetch_hash; /* the content asked for */
	uint64_t fetch_size;
};

struct syncd {
	char real[4096];      /* DIR, absolute */
	char run[RUNDIR_MAX]; /* its runtime directory */
	int dirfd;	      /* DIR (the mount's fd when mounted) */
	struct wkdb *db;
	struct mat *mat; /* object store */
	/* The versions the batch being received retires (NULL outside one):
	 * their contents are not fetched (content_wanted). */
	struct plan_retired *superseded;
	struct wk_config cfg;
	uint8_t token[WIRE_TOKEN_LEN];
	uint64_t actor;

	struct wsc *ops; /* NULL when offline */
	struct wsc *data;
	uint64_t cursor;      /* last relay seq applied (meta relay_cursor) */
	uint64_t remote_head; /* the relay's head, as last heard */
	bool caught_up;	      /* CAUGHT_UP seen this session */
	bool cursor_refused;  /* the last HELLO got ERROR `cursor` */
	int peer_error;	      /* WIRE_ERR_* the last HELLO got, or 0 */
	bool need_apply;      /* remote ops inserted since the last apply */
	int64_t shipped_upto; /* local ops at or below this seq are shipped */
	uint64_t batch_id;    /* of the last PUSH sent */
	bool acked;	      /* an ACK arrived this session: */
	uint64_t ack_batch;   /* the batch it acknowledged */
	char err[512];	      /* one-line reason of the last failure */
	uint64_t ping_nonce;  /* of the last PING sent */
	uint64_t pong_nonce;  /* of the last PONG received */
	uint64_t pushed;      /* ops acknowledged, this process */
	uint64_t received;    /* remote ops stored, this process */
	/* ERROR `missing` (syncd_session.c): the put the relay refused last,
	 * how many times in a row, and its local seq once seen again (0
	 * before); refused_now: the last session ended that way;
	 * refused_over: it was ERROR `limit` (put-bytes) instead. */
	struct wk_id refused_put;
	unsigned refused_times;
	int64_t refused_seq;
	bool refused_now;
	bool refused_over;

	struct syncd_git *git;		/* git remotes only (syncd_git.c) */
	struct name_set *shipped_names; /* on the relay: syncd_batch.c */

	struct syncd_shared sh;
	int ctl_fd; /* listening on RUNDIR/syncd.sock, or -1 */
	pthread_t ctl_thread;
	int watch_fd;	/* inotify on DIR/.wkfs, or -1 (syncd_wake.c) */
	int watch_stop; /* eventfd that ends the watcher, or -1 */
	pthread_t watch_thread;
	struct rcache *rcache; /* recipes seen (syncd_content.c) */
	uint64_t epoch;	       /* relay epoch (meta relay_epoch) */
	uint64_t tx_bytes;     /* bytes sent: relay messages, or git blobs */
	uint64_t rx_bytes;     /* and received, since the start */
};

/* syncd_main.c */
/* Asks the daemon's loop to end (a signal or the `stop` request). */
void syncd_request_stop(void);
/* True once a signal or `stop` asked the loop to end. */
bool syncd_stopping(void);

/* syncd_git.c: git:PATH and git:URL remotes (syncd_git.h) */
int syncd_git_open(struct syncd *s);
void syncd_git_close(struct syncd *s);
/* --once: push, pull, apply; 0 or 1 (the reason logged). */
int syncd_git_once(struct syncd *s);
/* The daemon's loop for a git remote, until stopped. */
int syncd_git_run(struct syncd *s);

/* syncd_ctl.c: the control socket RUNDIR/syncd.sock */
int syncd_ctl_start(struct syncd *s);
void syncd_ctl_stop(struct syncd *s);
/* The main thread publishes its state (locks sh). */
void syncd_publish(struct syncd *s, enum syncd_conn conn, bool ok);
/* Publishes the counters only, while an exchange runs (`wkfs sync` and
 * `wkfs status --watch` show how far it got). */
void syncd_publish_progress(struct syncd *s);
/* The sync requests not yet answered: 0 when none. */
uint64_t syncd_sync_wanted(struct syncd *s);
/* Answers the requests up to asked with rc (and s->err when rc != 0). */
void syncd_sync_answer(struct syncd *s, uint64_t asked, int rc);

/* syncd_batch.c: the round trips of a whole batch's small puts at once */
struct name_set;
/* Uploads the chunks of rows' small puts the relay lacks; until
 * content_batch_reset(), content_batch_has() knows them on the relay. */
int content_ship_batch(struct syncd *s, const struct db_oprow *rows, size_t n);
bool content_batch_has(struct syncd *s, const struct wk_hash *name);
void content_batch_reset(struct syncd *s);
/* Fetches the whole-file contents of an OPS message's puts into the
 * object store, in one request; what fails is left to content_fetch(). */
int content_fetch_batch(struct syncd *s, const struct wire_msg *ops);

/* syncd_wake.c: cutting the loop's wait short */
/* Watches DIR/.wkfs for the mount's commits; -1 when it cannot (logged:
 * the loop then finds local ops at its SYNCD_POLL_MS timeout). */
int syncd_wake_start(struct syncd *s);
void syncd_wake_stop(struct syncd *s);
/* From any thread: interrupts the wait on the connection set below. */
void syncd_wake(struct syncd *s);
/* The connection syncd_wake() interrupts (NULL before closing it). */
void syncd_wake_target(struct syncd *s, struct wsc *c);

/* syncd_session.c */
int syncd_session_open(struct syncd *s);
void syncd_session_close(struct syncd *s);
/* True when the relay ended the session (either connection) with ERROR
 * `limit` over a cap of its own (a rate, folder-bytes), not one naming a
 * put, which the next session settles at once.  Call before
 * syncd_session_close(). */
bool syncd_session_limited(const struct syncd *s);
/* Receives and handles one message on the ops connection (OPS, CAUGHT_UP,
 * stray replies): 0, -ETIMEDOUT, or an error that ends the session. */
int syncd_session_step(struct syncd *s, int timeout_ms);
/* The same, but -EINTR as soon as syncd_wake() is called. */
int syncd_session_wait(struct syncd *s, int timeout_ms);
/* Pushes every local op not yet shipped, content first.  A PUSH the
 * relay refuses with `missing` ends the session (-EPROTO) with
 * s->refused_now set: a new session pushes it again (see there). */
int syncd_push(struct syncd *s);
/* Sends PING on the ops connection and handles what arrives until its
 * PONG: everything the relay sent before it has been taken in. */
int syncd_barrier(struct syncd *s);
/* Asks the mount (if any) to apply what was inserted. */
void syncd_apply(struct syncd *s);
/* Asks the mount to commit what it has recorded (fs.sock "flush"), so
 * that the nodes table shows it; false when no mount answered. */
bool syncd_flush_mount(struct syncd *s);

/* syncd_refetch.c: `fetch HASH SIZE` from syncd.sock (wkfs restore).
 * The control thread asks and waits; the loop serves between rounds. */
void syncd_refetch_answer(struct syncd *s, int fd, const char *args);
void syncd_refetch_serve(struct syncd *s);

/* syncd_content.c */
struct wk_op;
/* Opens the recipe cache and the relay epoch (after the database). */
int content_open(struct syncd *s);
void content_close(struct syncd *s);
/* The relay may have lost every chunk: draws a new epoch, so nothing is
 * taken to be on it any more.  Inside the caller's transaction. */
int content_relay_lost(struct syncd *s);
/* Makes sure the relay has the content of put op; fills *ref. */
int content_ship(struct syncd *s, const struct wk_op *op,
		 struct wire_content_ref *ref);
/* Brings the content of a received put into the object store.  Content
 * that does not match is refused (logged, 0); network trouble is an
 * error. */
int content_fetch(struct syncd *s, const struct wk_op *op,
		  const struct wire_content_ref *ref);

/* Reads (and drops) what the relay fanned out to the data connection
 * while it was idle, so it never waits behind a backlog. */
int content_drain(struct syncd *s);

/*
 * syncd_chunks.c: a file as chunks, for every remote type.
 *
 * content_cut_open() finds the file of local put op through the nodes
 * table, checks it still holds the put's content and cuts it: 0 with c
 * ready (release it), 1 when the content cannot ship (logged: a later put
 * carries it), or -errno.  With more than one chunk, rec holds the plain
 * recipe, named rec_name.  content_cut_read() reads chunk i into buf
 * (CHUNK_MAX bytes), checked against its name: -ESTALE when the file
 * changed meanwhile.
 */
struct content_cut {
	int fd;
	char path[4096];
	struct recipe r;
	uint64_t *off; /* offset of each chunk in the file */
	struct bbuf rec;
	struct wk_hash rec_name;
};
int content_cut_open(struct syncd *s, const struct wk_op *op,
		     struct content_cut *c);
ssize_t content_cut_read(const struct content_cut *c, size_t i, uint8_t *buf);
void content_cut_release(struct content_cut *c);
void content_not_shipped(const struct wk_op *op, const char *path,
			 const char *why);
/* Reads chunk name into buf (at most max bytes): its length or -errno. */
typedef ssize_t (*content_chunk_fn)(void *arg, const struct wk_hash *name,
				    uint8_t *buf, size_t max);
/* An unnamed file in .wkfs/tmp (a named one, unlinked at once, where
 * O_TMPFILE is not supported): fd or -errno. */
int content_open_tmp(struct syncd *s);
/* Logs why the content of a received put is not taken. */
void content_refuse(const struct wk_op *op, const char *why);
/* False when the content of received put op (ref: where it is) need not
 * be fetched (empty, already in the object store) or cannot be (not
 * shipped, a bad reference: logged). */
bool content_wanted(struct syncd *s, const struct wk_op *op,
		    const struct wire_content_ref *ref);
/* Writes the chunks of r, read with fn, into the object store; *got gets
 * the hash of what was stored (the caller compares).  -EBADMSG when a
 * chunk's length is not the recipe's. */
int content_assemble(struct syncd *s, const struct recipe *r,
		     content_chunk_fn fn, void *arg, struct wk_hash *got);

/* Fills s->err from a failed wsc call and returns rc. */
int syncd_fail(struct syncd *s, struct wsc *c, int rc, const char *what);

#endif
