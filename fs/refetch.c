/*
 * refetch.c - the thread that asks wkfs-syncd for missing contents (see
 * refetch.h).
 */
#include "refetch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "rundir.h"
#include "wlog.h"
#include "xalloc.h"

#define WANT_MAX    256 /* contents remembered at once */
#define RETRY_AFTER 30	/* seconds before a failed content is asked again */

struct want {
	struct wk_hash hash;
	uint64_t size;
	bool done;     /* came (or asked and answered ok) */
	bool busy;     /* being asked now */
	time_t failed; /* when it last failed, 0 if never */
};

struct refetch {
	char sock[RUNDIR_MAX + 16];
	refetch_came_fn came;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	struct want v[WANT_MAX];
	size_t n;
};

/* The next content to ask for, marked busy, or NULL.  Lock held. */
static struct want *next_l(struct refetch *rf, time_t now)
{
	for (size_t i = 0; i < rf->n; i++) {
		struct want *w = &rf->v[i];

		if (!w->done && !w->busy &&
		    (!w->failed || now - w->failed >= RETRY_AFTER)) {
			w->busy = true;
			return w;
		}
	}
	return NULL;
}

/* The entry of content h, or NULL (forgotten meanwhile).  Lock held. */
static struct want *find_l(struct refetch *rf, const struct wk_hash *h)
{
	for (size_t i = 0; i < rf->n; i++)
		if (memcmp(&rf->v[i].hash, h, sizeof(*h)) == 0)
			return &rf->v[i];
	return NULL;
}

static void *refetch_main(void *arg)
{
	struct refetch *rf = arg;

	pthread_mutex_lock(&rf->lock);
	while (!rf->stop) {
		struct want *w = next_l(rf, time(NULL));
		char req[64 + WK_HASH_STRLEN], hex[WK_HASH_STRLEN];
		char reply[512];
		struct wk_hash h;
		uint64_t size;
		int rc;

		if (!w) {
			struct timespec until;

			/* Wake for new wants, or to retry failed ones. */
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += RETRY_AFTER;
			pthread_cond_timedwait(&rf->wake, &rf->lock, &until);
			continue;
		}
		/* The array may move while the lock is let go: by value. */
		h = w->hash;
		size = w->size;
		snprintf(req, sizeof(req), "fetch %s %" PRIu64,
			 wk_hash_str(&h, hex), size);
		pthread_mutex_unlock(&rf->lock);
		rc = ctl_request(rf->sock, req, reply, sizeof(reply), NULL);
		pthread_mutex_lock(&rf->lock);
		w = find_l(rf, &h);
		if (w)
			w->busy = false;
		if (rc == 0 && strcmp(reply, "ok") == 0) {
			if (w)
				w->done = true;
			wk_info("fetched the content %s (%" PRIu64
				" bytes) a change waited for",
				hex, size);
			pthread_mutex_unlock(&rf->lock);
			rf->came(rf->arg);
			pthread_mutex_lock(&rf->lock);
		} else {
			if (w)
				w->failed = time(NULL);
			wk_info("cannot fetch the content %s (%" PRIu64
				" bytes): %s; asking again later",
				hex, size, rc ? strerror(-rc) : reply);
		}
	}
	pthread_mutex_unlock(&rf->lock);
	return NULL;
}

struct refetch *refetch_start(const char *run, refetch_came_fn came, void *arg)
{
	struct refetch *rf = xcalloc(1, sizeof(*rf));

	snprintf(rf->sock, sizeof(rf->sock), "%s/syncd.sock", run);
	rf->came = came;
	rf->arg = arg;
	pthread_mutex_init(&rf->lock, NULL);
	pthread_cond_init(&rf->wake, NULL);
	if (pthread_create(&rf->thread, NULL, refetch_main, rf) != 0) {
		pthread_cond_destroy(&rf->wake);
		pthread_mutex_destroy(&rf->lock);
		free(rf);
		return NULL;
	}
	return rf;
}

void refetch_want(struct refetch *rf, const struct wk_hash *h, uint64_t size)
{
	if (!rf)
		return;
	pthread_mutex_lock(&rf->lock);
	if (find_l(rf, h))
		goto out;
	if (rf->n == WANT_MAX) {
		/* Forget a content that came, else the oldest. */
		size_t drop = 0;

		for (size_t i = 0; i < rf->n; i++)
			if (rf->v[i].done && !rf->v[i].busy) {
				drop = i;
				break;
			}
		if (rf->v[drop].busy)
			goto out;
		memmove(&rf->v[drop], &rf->v[drop + 1],
			(rf->n - drop - 1) * sizeof(rf->v[0]));
		rf->n--;
	}
	memset(&rf->v[rf->n], 0, sizeof(rf->v[0]));
	rf->v[rf->n].hash = *h;
	rf->v[rf->n].size = size;
	rf->n++;
	pthread_cond_signal(&rf->wake);
out:
	pthread_mutex_unlock(&rf->lock);
}

void refetch_stop(struct refetch *rf)
{
	if (!rf)
		return;
	pthread_mutex_lock(&rf->lock);
	rf->stop = true;
	pthread_cond_signal(&rf->wake);
	pthread_mutex_unlock(&rf->lock);
	pthread_join(rf->thread, NULL);
	pthread_cond_destroy(&rf->wake);
	pthread_mutex_destroy(&rf->lock);
	free(rf);
}
