/*
 * syncd_refetch.c - bringing an old version's content back from the relay
 * into the object store, for `wkfs restore` (syncd.sock `fetch HASH SIZE`).
 *
 * A replica keeps only the contents its folder shows: an overwritten
 * version lives on at the relay, which keeps every chunk it was sent.  The
 * control thread takes the request and waits; the loop's thread, the only
 * one that may use the relay connections (ws_client.h), does the fetch
 * between two rounds with content_fetch(), exactly as for a received put.
 * Its recipe is one whole chunk named by the content's hash when the
 * content is that small, else the recipe cache's (every content this
 * replica sent or fetched in several chunks is there); a content whose
 * recipe is known neither way cannot be fetched.
 *
 * One request at a time, answered within REFETCH_WAIT_MS: while it waits
 * the control thread answers nothing else (a restore is rare, and short
 * for all but large files).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chunk.h"
#include "content.h"
#include "ctl.h"
#include "syncd.h"
#include "wlog.h"

#define REFETCH_WAIT_MS 25000 /* within ctl_request()'s 30 s */

/* ---- the loop's side ---- */

/* How the relay holds content h of size bytes: 0 with *ref, or -ENOENT. */
static int ref_of(struct syncd *s, const struct wk_op *op,
		  struct wire_content_ref *ref)
{
	struct recipe r;
	struct bbuf b;
	int rc;

	memset(ref, 0, sizeof(*ref));
	if (s->rcache && rcache_get(s->rcache, &op->hash, &r, NULL) == 0) {
		if (r.n <= 1) {
			recipe_release(&r);
			ref->how = WIRE_CONTENT_WHOLE;
			return 0;
		}
		/* content_fetch() takes the cached recipe when the ref
		 * names its plain encoding. */
		bbuf_init(&b, WIRE_CHUNK_MAX);
		rc = recipe_encode(&r, &b);
		if (!rc)
			content_hash_buf(b.p, b.len, &ref->recipe);
		bbuf_release(&b);
		recipe_release(&r);
		ref->how = WIRE_CONTENT_RECIPE;
		return rc;
	}
	/* Below the smallest cut a content is one chunk, named by its hash;
	 * up to the largest it may be (tried: the relay says if not). */
	if (op->size <= CHUNK_MAX) {
		ref->how = WIRE_CONTENT_WHOLE;
		return 0;
	}
	return -ENOENT;
}

void syncd_refetch_serve(struct syncd *s)
{
	struct wire_content_ref ref;
	struct wk_op op;
	uint64_t asked;
	char hs[WK_HASH_STRLEN];
	int rc;

	memset(&op, 0, sizeof(op));
	pthread_mutex_lock(&s->sh.lock);
	asked = s->sh.fetch_asked > s->sh.fetch_done ? s->sh.fetch_asked : 0;
	op.hash = s->sh.fetch_hash;
	op.size = s->sh.fetch_size;
	pthread_mutex_unlock(&s->sh.lock);
	if (!asked)
		return;
	op.kind = WK_OP_PUT;
	op.base = op.link = WK_ID_NONE;
	rc = ref_of(s, &op, &ref);
	if (!rc)
		rc = content_fetch(s, &op, &ref);
	/* A content refused (the relay lacks a chunk, a mismatch) is
	 * logged and leaves no object. */
	if (!rc && !mat_object_have(s->mat, &op.hash))
		rc = -ENOENT;
	wk_info("fetch of content %s for a restore: %s",
		wk_hash_str(&op.hash, hs), rc ? strerror(-rc) : "done");
	pthread_mutex_lock(&s->sh.lock);
	s->sh.fetch_done = asked;
	s->sh.fetch_rc = rc;
	pthread_cond_broadcast(&s->sh.cond);
	pthread_mutex_unlock(&s->sh.lock);
}

/* ---- the control thread's side ---- */

static int parse(const char *args, struct wk_hash *h, uint64_t *size)
{
	char hex[33], rest;
	unsigned v;

	if (sscanf(args, "%32[0-9a-f] %" SCNu64 "%c", hex, size, &rest) != 2 ||
	    strlen(hex) != 32)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		h->b[i] = (uint8_t)v;
	}
	return 0;
}

static void deadline_in(struct timespec *t, long ms)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

void syncd_refetch_answer(struct syncd *s, int fd, const char *args)
{
	struct timespec until, step;
	uint64_t mine, size;
	struct wk_hash h;
	char line[600];
	int rc = -ETIMEDOUT;

	if (parse(args, &h, &size)) {
		ctl_reply(fd, "error usage: fetch HASH SIZE", -1);
		return;
	}
	if (strncmp(s->cfg.remote_url, "git:", 4) == 0) {
		ctl_reply(fd,
			  "error fetching from a git remote is not built "
			  "yet",
			  -1);
		return;
	}
	deadline_in(&until, REFETCH_WAIT_MS);
	pthread_mutex_lock(&s->sh.lock);
	s->sh.fetch_hash = h;
	s->sh.fetch_size = size;
	mine = ++s->sh.fetch_asked;
	if (s->sh.wake_conn)
		wsc_wake(s->sh.wake_conn);
	while (s->sh.fetch_done < mine && !syncd_stopping()) {
		/* Short waits, so that a stop is seen. */
		deadline_in(&step, 250);
		if (pthread_cond_timedwait(&s->sh.cond, &s->sh.lock, &step) ==
			    ETIMEDOUT &&
		    (step.tv_sec > until.tv_sec ||
		     (step.tv_sec == until.tv_sec &&
		      step.tv_nsec >= until.tv_nsec)))
			break;
	}
	if (s->sh.fetch_done >= mine)
		rc = s->sh.fetch_rc;
	if (rc == -ETIMEDOUT || rc == -ENOENT || !rc)
		snprintf(line, sizeof(line), "%s",
			 !rc		 ? "ok"
			 : rc == -ENOENT ? "error the relay does not have it"
			 : s->sh.conn != SYNCD_CONNECTED
				 ? "error not connected to the relay"
				 : "error no answer in time");
	else
		snprintf(line, sizeof(line), "error %s", strerror(-rc));
	pthread_mutex_unlock(&s->sh.lock);
	ctl_reply(fd, line, -1);
}
