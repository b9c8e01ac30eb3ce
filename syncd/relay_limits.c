/*
 * relay_limits.c - the relay's configured limits: parsing `--limit
 * NAME=VALUE` and the config file's values, their defaults, and fitting
 * the connection cap in the descriptors the process may open (see
 * relay_limits.h).  Enforcing them is relay_session.c's and
 * relay_admit.c's.
 */
#include "relay_limits.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "wire.h"
#include "wlog.h"

/* One limit: its name, where it lives, its bounds, whether 0 (none) and
 * a K/M/G/T suffix are allowed. */
struct limit_def {
	const char *name;
	size_t off;
	uint64_t min, max;
	bool bytes;
};

#define LIMIT(n, f, lo, hi, b)                                 \
	{                                                      \
		n, offsetof(struct relay_limits, f), lo, hi, b \
	}

static const struct limit_def limit_defs[] = {
	/* A HELLO is at most 1 + 4 + 4 + 64 + 4 + 32 + 16 bytes, plus 14 of
	 * WebSocket framing. */
	LIMIT("hello-bytes", hello_bytes, 256, WIRE_FRAME_MAX, true),
	LIMIT("connections", connections, 1, 1u << 20, false),
	LIMIT("connections-per-address", connections_addr, 1, 1u << 20, false),
	LIMIT("messages-per-second", messages_sec, 0, 1u << 24, false),
	LIMIT("frames-per-second", frames_sec, 0, 1u << 24, false),
	LIMIT("put-bytes", put_bytes, 0, WIRE_PUT_MAX, true),
	LIMIT("folder-bytes", folder_bytes, 0, UINT64_MAX >> 1, true),
};

#define NLIMITS (sizeof(limit_defs) / sizeof(limit_defs[0]))

static uint64_t *field(struct relay_limits *l, const struct limit_def *d)
{
	return (uint64_t *)((char *)l + d->off);
}

void relay_limits_init(struct relay_limits *l)
{
	*l = (struct relay_limits){
		.hello_bytes = 512,
		.connections = RELAY_CONNECTIONS_DEFAULT,
		.connections_addr = 64,
		.messages_sec = 10000,
		.frames_sec = 40000,
		.put_bytes = WIRE_PUT_MAX,
		.folder_bytes = 0,
	};
}

/* "123", "64K", "16G": *v; false when not a number or it overflows. */
static bool parse_value(const char *s, bool bytes, uint64_t *v)
{
	static const char units[] = "KMGT";
	unsigned shift = 0;
	char *end;
	const char *u;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end && bytes && end[1] == '\0' && (u = strchr(units, *end))) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (*end)
		return false;
	if (shift && *v > (UINT64_MAX >> shift))
		return false;
	*v <<= shift;
	return true;
}

/* "hello-bytes, connections, ... and folder-bytes" */
static void limit_names(char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < NLIMITS && n < len; i++) {
		int k = snprintf(out + n, len - n, "%s%s",
				 !i		   ? ""
				 : i + 1 < NLIMITS ? ", "
						   : " and ",
				 limit_defs[i].name);

		if (k < 0)
			break;
		n += (size_t)k;
	}
}

int relay_limit_set(struct relay_limits *l, const char *name, const char *value,
		    char *err, size_t errlen)
{
	char names[256];
	uint64_t v;

	for (size_t i = 0; i < NLIMITS; i++) {
		const struct limit_def *d = &limit_defs[i];

		if (strcmp(name, d->name) != 0)
			continue;
		if (!parse_value(value, d->bytes, &v) || (v && v < d->min) ||
		    (!v && d->min) || v > d->max) {
			snprintf(err, errlen,
				 "%s takes a whole number%s from %" PRIu64
				 " to %" PRIu64 "%s",
				 d->name,
				 d->bytes ? " of bytes (K, M, G, T: 1024s)"
					  : "",
				 d->min ? d->min : 1, d->max,
				 d->min ? "" : ", or 0 for none");
			return -EINVAL;
		}
		*field(l, d) = v;
		return 0;
	}
	limit_names(names, sizeof(names));
	snprintf(err, errlen, "no limit '%s': the limits are %s", name, names);
	return -EINVAL;
}

int relay_limit_parse(struct relay_limits *l, const char *arg, char *err,
		      size_t errlen)
{
	const char *eq = strchr(arg, '=');
	char name[64], why[512];

	snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - arg) : 0, arg);
	if (!eq || relay_limit_set(l, name, eq + 1, why, sizeof(why))) {
		if (!eq)
			snprintf(why, sizeof(why), "use NAME=VALUE");
		snprintf(err, errlen, "bad --limit '%s': %s", arg, why);
		return -EINVAL;
	}
	return 0;
}

void relay_limits_fit_fds(struct relay_limits *l, int set_connections)
{
	struct rlimit rl;
	uint64_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max && rl.rlim_cur < RELAY_NOFILE_MAX) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max < RELAY_NOFILE_MAX ? rl.rlim_max
							     : RELAY_NOFILE_MAX;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = old;
	}
	room = rl.rlim_cur > 2 * RELAY_FD_RESERVE
		       ? rl.rlim_cur - RELAY_FD_RESERVE
		       : rl.rlim_cur / 2;
	if (!set_connections) {
		if (l->connections > room)
			l->connections = room;
	} else if (l->connections > room) {
		wk_warn("limit connections=%" PRIu64
			" is more than the %" PRIu64
			" descriptors left of the %llu this process may"
			" open: raise its fd limit (LimitNOFILE=) or accepts"
			" will fail",
			l->connections, room, (unsigned long long)rl.rlim_cur);
	}
}

void relay_limits_describe(const struct relay_limits *l, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < NLIMITS && n < len; i++) {
		uint64_t v = *(const uint64_t *)((const char *)l +
						 limit_defs[i].off);
		int k = snprintf(out + n, len - n, "%s%s=%" PRIu64,
				 i ? " " : "", limit_defs[i].name, v);

		if (k < 0)
			break;
		n += (size_t)k;
	}
}
