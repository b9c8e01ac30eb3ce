/*
 * relay_stats.c - wkfs-relay's counters (relay_stats.h).  Plain memory
 * updated from the service thread; relay_http.c renders it.
 */
#include "relay_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

const double relay_stats_bounds[RELAY_STATS_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
	0.05,	0.1,   0.25,   0.5,   1.0,  2.5,
};

void relay_stats_init(struct relay_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->started = time(NULL);
}

void relay_stats_release(struct relay_stats *s)
{
	while (s->folders) {
		struct relay_folder_stats *f = s->folders;

		s->folders = f->next;
		free(f);
	}
	while (s->replicas) {
		struct relay_replica_seen *p = s->replicas;

		s->replicas = p->next;
		free(p);
	}
	s->n_replicas = 0;
}

struct relay_folder_stats *relay_stats_folder(struct relay_stats *s, int64_t id)
{
	struct relay_folder_stats *f;

	for (f = s->folders; f; f = f->next)
		if (f->id == id)
			return f;
	f = xcalloc(1, sizeof(*f));
	f->id = id;
	f->next = s->folders;
	s->folders = f;
	return f;
}

struct relay_replica_seen *relay_stats_replica(struct relay_stats *s,
					       int64_t folder, uint64_t actor)
{
	struct relay_replica_seen *p;

	for (p = s->replicas; p; p = p->next)
		if (p->folder == folder && p->actor == actor)
			return p;
	/* HELLO names any actor: a peer with a token must not make the
	 * relay remember without end. */
	if (s->n_replicas >= RELAY_STATS_REPLICAS)
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->folder = folder;
	p->actor = actor;
	p->next = s->replicas;
	s->replicas = p;
	s->n_replicas++;
	return p;
}

void relay_stats_error(struct relay_stats *s, int code, bool push,
		       const char *folder, uint64_t actor, const char *addr,
		       const char *reason)
{
	struct relay_error_seen *e =
		&s->last_errors[s->n_errors % RELAY_STATS_ERRORS];
	unsigned i = code > 0 && code < RELAY_STATS_CODES ? (unsigned)code : 0;

	s->errors[i]++;
	if (push)
		s->refused[i]++;
	s->n_errors++;
	e->at = time(NULL);
	e->code = (uint16_t)code;
	e->actor = actor;
	snprintf(e->folder, sizeof(e->folder), "%s", folder ? folder : "");
	snprintf(e->addr, sizeof(e->addr), "%s", addr ? addr : "");
	snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
}

void relay_stats_commit(struct relay_stats *s, enum relay_commit_kind kind,
			int64_t usec)
{
	double secs = usec > 0 ? (double)usec / 1e6 : 0;

	for (int i = 0; i < RELAY_STATS_BUCKETS; i++)
		if (secs <= relay_stats_bounds[i])
			s->commit_buckets[kind][i]++;
	s->commit_count[kind]++;
	s->commit_sum[kind] += secs;
}

const struct relay_error_seen *
relay_stats_last_error(const struct relay_stats *s, unsigned i)
{
	if (i >= s->n_errors || i >= RELAY_STATS_ERRORS)
		return NULL;
	return &s->last_errors[(s->n_errors - 1 - i) % RELAY_STATS_ERRORS];
}
