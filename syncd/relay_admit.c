/*
 * relay_admit.c - counting connections per address and in total, and
 * the rate-limited log of lws (see relay_admit.h).
 *
 * Addresses are kept as 16 bytes (IPv4 as ::ffff:a.b.c.d; IPv6 cut to its
 * /64) in a small chained hash table of the addresses that have a
 * connection now: an entry goes when its last connection closes.
 */
#include "relay_admit.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "wlog.h"
#include "xalloc.h"

#define ADMIT_BUCKETS 256

struct admit_peer {
	struct admit_peer *next;
	uint8_t key[16];
	uint64_t n;
};

/* The tickets of refused connections: which limit, by address. */
struct admit_refusal {
	const char *limit;
};

static const struct admit_refusal over_total = {"connections"};
static const struct admit_refusal over_addr = {"connections-per-address"};

struct relay_admit {
	const struct relay_limits *l;
	struct admit_peer *bucket[ADMIT_BUCKETS];
	uint64_t total;	   /* admitted connections */
	unsigned refusing; /* refused ones still open, to read their ERROR */
	/* refusals not yet logged, and when the last line was */
	uint64_t refused_unlogged;
	time_t refused_logged_at;
	char refused_last[INET6_ADDRSTRLEN];
};

struct relay_admit *relay_admit_new(const struct relay_limits *l)
{
	struct relay_admit *a = xcalloc(1, sizeof(*a));

	a->l = l;
	return a;
}

void relay_admit_free(struct relay_admit *a)
{
	if (!a)
		return;
	for (int i = 0; i < ADMIT_BUCKETS; i++)
		while (a->bucket[i]) {
			struct admit_peer *p = a->bucket[i];

			a->bucket[i] = p->next;
			free(p);
		}
	free(a);
}

/* fd's peer as a key, and as text for the log; false when unknown. */
static bool peer_key(int fd, uint8_t key[16], char *text, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
		return false;
	memset(key, 0, 16);
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
		inet_ntop(AF_INET, &in->sin_addr, text, (socklen_t)len);
		return true;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		memcpy(key, &in6->sin6_addr, 16);
		inet_ntop(AF_INET6, &in6->sin6_addr, text, (socklen_t)len);
		/* A host gets a /64; IPv4-mapped addresses stay whole. */
		if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			memset(key + 8, 0, 8);
		return true;
	}
	return false;
}

static struct admit_peer **peer_slot(struct relay_admit *a,
				     const uint8_t key[16])
{
	unsigned h = 0;
	struct admit_peer **pp;

	for (int i = 0; i < 16; i++)
		h = h * 31 + key[i];
	pp = &a->bucket[h % ADMIT_BUCKETS];
	while (*pp && memcmp((*pp)->key, key, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* One line per RELAY_LOG_EVERY_SECS about refused connections. */
static void log_refusal(struct relay_admit *a, const char *limit,
			const char *from)
{
	time_t now = time(NULL);

	a->refused_unlogged++;
	snprintf(a->refused_last, sizeof(a->refused_last), "%s", from);
	if (now - a->refused_logged_at < RELAY_LOG_EVERY_SECS)
		return;
	wk_warn("refused %" PRIu64 " connection%s since the last such line"
		" (the last from %s: over the limit %s=%" PRIu64 ")",
		a->refused_unlogged, a->refused_unlogged == 1 ? "" : "s",
		a->refused_last, limit,
		limit == over_total.limit ? a->l->connections
					  : a->l->connections_addr);
	a->refused_unlogged = 0;
	a->refused_logged_at = now;
}

void *relay_admit_conn(struct relay_admit *a, int fd, const char **over)
{
	char text[INET6_ADDRSTRLEN] = "?";
	const struct admit_refusal *no = NULL;
	struct admit_peer **pp, *p;
	uint8_t key[16];

	*over = NULL;
	if (!peer_key(fd, key, text, sizeof(text)))
		memset(key, 0, sizeof(key)); /* not IP: counted as one */
	pp = peer_slot(a, key);
	if (a->total >= a->l->connections)
		no = &over_total;
	else if (*pp && (*pp)->n >= a->l->connections_addr)
		no = &over_addr;
	if (no) {
		log_refusal(a, no->limit, text);
		if (a->refusing >= RELAY_ADMIT_REFUSING)
			return NULL;
		a->refusing++;
		*over = no->limit;
		return (void *)no;
	}
	if (!*pp) {
		*pp = xcalloc(1, sizeof(**pp));
		memcpy((*pp)->key, key, 16);
	}
	p = *pp;
	p->n++;
	a->total++;
	return p;
}

void relay_admit_release(struct relay_admit *a, void *ticket)
{
	struct admit_peer *p = ticket, **pp;

	if (!ticket)
		return;
	if (ticket == &over_total || ticket == &over_addr) {
		a->refusing--;
		return;
	}
	a->total--;
	if (--p->n)
		return;
	pp = peer_slot(a, p->key);
	*pp = p->next;
	free(p);
}

const char *relay_admit_refused(const void *ticket)
{
	if (ticket == &over_total || ticket == &over_addr)
		return ((const struct admit_refusal *)ticket)->limit;
	return NULL;
}

/* ---- lws's log ---- */

static struct {
	char last[160];
	uint64_t repeats; /* of last, not written */
	time_t written_at;
	bool accept_failed;
} lws_log;

void relay_admit_log_lws(int level, const char *line)
{
	char text[sizeof(lws_log.last)];
	time_t now = time(NULL);
	size_t n;

	/* lws prefixes a timestamp and the level: "[2026/.. ] E: text" */
	if (line[0] == '[' && strstr(line, "] "))
		line = strstr(line, "] ") + 2;
	if (line[0] && line[1] == ':' && line[2] == ' ')
		line += 3;
	snprintf(text, sizeof(text), "%s", line);
	n = strlen(text);
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	if (strncmp(text, "accept:", 7) == 0)
		lws_log.accept_failed = true;
	if (strcmp(text, lws_log.last) == 0 &&
	    now - lws_log.written_at < RELAY_LOG_EVERY_SECS) {
		lws_log.repeats++;
		return;
	}
	if (lws_log.repeats && strcmp(text, lws_log.last) == 0)
		wk_warn("libwebsockets: %s (and %" PRIu64
			" more times in %d s)",
			text, lws_log.repeats, (int)(now - lws_log.written_at));
	else {
		if (lws_log.repeats)
			wk_warn("libwebsockets: %s (%" PRIu64 " more times)",
				lws_log.last, lws_log.repeats);
		wk_warn("libwebsockets: %s", text);
	}
	snprintf(lws_log.last, sizeof(lws_log.last), "%s", text);
	lws_log.repeats = 0;
	lws_log.written_at = now;
	(void)level;
}

bool relay_admit_accept_failed(void)
{
	bool was = lws_log.accept_failed;

	lws_log.accept_failed = false;
	return was;
}
