/*
 * relay_test.c - wkfs-relay-test, a protocol client for shell tests.
 *
 * Speaks docs/protocol.md through ws_client.h and prints one line per event,
 * so bats tests can drive a relay and grep what happened.  Not installed.
 *
 *   wkfs-relay-test [--timeout S] CMD ...
 *     push [--as A] URL TOKEN ACTOR N [FIRST_HLC [SIZE]]
 *                                          N ops (mkdir "op-HLC") of ACTOR,
 *                                          hlc FIRST_HLC.. (default 1); with
 *                                          SIZE, opaque SIZE-byte payloads;
 *                                          --as: HELLO as actor A instead
 *     stall URL TOKEN ACTOR                HELLO, then never read again
 *     pull URL TOKEN ACTOR CURSOR          ops until CAUGHT_UP
 *     watch URL TOKEN ACTOR [CURSOR [N]]   ops until N live ones or timeout
 *     cursor URL TOKEN ACTOR SEQ           send CURSOR
 *     have URL TOKEN NAME...               which chunks the relay lacks
 *     chunk-put URL TOKEN FILE [NAME]      NAME: claim another name
 *     chunk-get URL TOKEN NAME [OUT]       OUT: write the bytes there
 *     raw [--token T] [--pad N] URL HEX    send a frame (after HELLO with
 *                                          --token; --pad adds N zero bytes)
 *     put [--chunk FILE]... URL TOKEN ACTOR HLC HOW SIZE HASH [RECIPE]
 *                                          CHUNK_PUT each FILE, then at once
 *                                          a PUSH of one put (a node of its
 *                                          hlc and actor + 1)
 *                                          with content HOW (none, whole or
 *                                          recipe) and the recipe chunk name
 *     pings URL TOKEN N                    N PINGs at once, then their PONGs;
 *                                          "pongs N MS": how long it took
 *     name FILE...                         "name NAME" of each file's bytes
 *     recipe [--delta BASE BASE_CHUNK] OUT FILE...
 *                                          writes the recipe chunk of a file
 *                                          made of FILEs (one chunk each) to
 *                                          OUT: plain, or a delta recipe
 *                                          chunk against content BASE (an
 *                                          empty recipe, so all ADDs); prints
 *                                          "recipe NAME"
 *
 * wss:// URLs are checked against the CA file in WKFS_TLS_CA when set
 * (WKFS_TLS_INSECURE=1: not at all).
 *
 * Lines: "welcome HEAD", "op SEQ ACTOR HLC LEN KIND NAME", "caught_up SEQ",
 * "ack BATCH HIGH_SEQ", "missing NAME", "chunk_ack NAME", "chunk NAME LEN",
 * "not_found NAME", "error CODE NAME: REASON", "close STATUS REASON",
 * "recv TYPE" (raw: any other message; "recv WELCOME version V").
 * Exit: 0 done, 1 usage or connection failure, 3 the relay sent ERROR or
 * closed, 4 timeout, 5 chunk not found.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bytebuf.h"
#include "content.h"
#include "recipe.h"
#include "wire.h"
#include "wlog.h"
#include "ws_client.h"

static int timeout_ms = 10000;

static void usage(void)
{
	fprintf(stderr,
		"usage: wkfs-relay-test [--timeout S] push [--as A] URL TOKEN"
		" ACTOR N [FIRST_HLC [SIZE]]\n"
		"       ... stall URL TOKEN ACTOR\n"
		"       ... pull URL TOKEN ACTOR CURSOR\n"
		"       ... watch URL TOKEN ACTOR [CURSOR [N]]\n"
		"       ... cursor URL TOKEN ACTOR SEQ\n"
		"       ... have URL TOKEN NAME...\n"
		"       ... chunk-put URL TOKEN FILE [NAME]\n"
		"       ... chunk-get URL TOKEN NAME [OUT]\n"
		"       ... raw [--token T] [--pad N] URL HEXFRAME\n"
		"       ... put [--chunk FILE]... URL TOKEN ACTOR HLC"
		" none|whole|recipe SIZE HASH [RECIPE]\n"
		"       ... pings URL TOKEN N\n"
		"       ... name FILE...\n"
		"       ... recipe [--delta BASE BASE_CHUNK] OUT FILE...\n");
	exit(1);
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || end == s)
		usage();
	return v;
}

static int parse_hex(const char *hex, uint8_t *out, size_t max, size_t *len)
{
	size_t n = strlen(hex);

	if (n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return 0;
}

static void print_hex(const char *prefix, const uint8_t *p, size_t len,
		      const char *suffix)
{
	printf("%s", prefix);
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	printf("%s", suffix);
}

/* Reports how a session ended badly; returns the exit code. */
static int report(struct wsc *c, int rc)
{
	const char *reason;
	struct wire_msg m;
	int code;

	if (rc == -ETIMEDOUT) {
		printf("timeout\n");
		return 4;
	}
	if (rc == -EPROTO) {
		code = wsc_peer_error(c, &reason);
		printf("error %d %s: %s\n", code, wire_err_name(code), reason);
		/* The relay closes after an ERROR: wait for it. */
		while (wsc_recv(c, timeout_ms, &m) == 0)
			;
	} else if (rc == -EBADMSG) {
		printf("bad message from the relay\n");
	}
	if (wsc_closed(c)) {
		code = wsc_close_status(c, &reason);
		printf("close %d %s\n", code, reason);
	}
	return rc == -EBADMSG ? 1 : 3;
}

static struct wsc *open_session(const char *url, const char *token_hex,
				uint64_t actor, uint64_t cursor, int *rc)
{
	uint8_t token[WIRE_TOKEN_LEN];
	uint64_t head;
	struct wsc *c;
	char err[512];

	if (wsc_token_parse(token_hex, token)) {
		/* Still send something: tests check a bad token's answer. */
		memset(token, 0, sizeof(token));
	}
	*rc = wsc_connect(url, getenv("WKFS_TLS_CA"), timeout_ms, &c, err,
			  sizeof(err));
	if (*rc) {
		fprintf(stderr, "wkfs-relay-test: %s\n", err);
		*rc = 1;
		return NULL;
	}
	*rc = wsc_hello(c, token, actor, cursor, timeout_ms, &head);
	if (*rc) {
		*rc = report(c, *rc);
		wsc_close(c);
		return NULL;
	}
	printf("welcome %" PRIu64 "\n", head);
	fflush(stdout);
	return c;
}

static void print_op(const struct wire_opent *e)
{
	struct wk_op op;
	const char *kind = "opaque", *name = "-";

	if (wire_op_decode(e->payload, e->len, e->actor, e->hlc, &op) == 0) {
		kind = wk_op_kind_name(op.kind);
		name = op.name[0] ? op.name : "-";
	}
	printf("op %" PRIu64 " %016" PRIx64 " %" PRIu64 " %u %s %s\n", e->seq,
	       e->actor, e->hlc, e->len, kind, name);
}

static int cmd_push(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"as", required_argument, NULL, 'a'},
		{NULL, 0, NULL, 0},
	};
	uint64_t actor, n, first = 1, high = 0, batch_id = 0, size = 0;
	uint64_t hello_actor;
	bool as = false;
	struct wire_buf frame, pay;
	struct wire_msg m;
	struct wsc *c;
	int opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+a:", longopts, NULL)) != -1) {
		if (opt != 'a')
			usage();
		hello_actor = parse_u64(optarg);
		as = true;
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 5 || argc > 7)
		usage();
	actor = parse_u64(argv[3]);
	if (!as)
		hello_actor = actor;
	n = parse_u64(argv[4]);
	if (argc >= 6)
		first = parse_u64(argv[5]);
	if (argc == 7)
		size = parse_u64(argv[6]);
	if (size > WIRE_PAYLOAD_MAX)
		usage();
	c = open_session(argv[1], argv[2], hello_actor, 0, &rc);
	if (!c)
		return rc;
	wire_buf_init(&frame, 0, WIRE_FRAME_MAX);
	wire_buf_init(&pay, 0, WIRE_PAYLOAD_MAX);
	for (uint64_t i = 0; i < n && !rc; batch_id++) {
		wire_buf_reset(&frame);
		wire_batch_begin(&frame, WIRE_PUSH, batch_id);
		for (; i < n; i++) {
			struct wk_op op;
			struct wire_opent e = {.actor = actor,
					       .hlc = first + i};

			memset(&op, 0, sizeof(op));
			op.kind = WK_OP_MKDIR;
			op.node = (struct wk_id){first + i, actor};
			op.mode = 0755;
			snprintf(op.name, sizeof(op.name), "op-%" PRIu64,
				 first + i);
			wire_buf_reset(&pay);
			wire_op_encode(&pay, &op);
			/* SIZE: an opaque payload of that many bytes instead.
			 */
			if (size) {
				wire_buf_reset(&pay);
				for (uint64_t k = 0; k < size; k++)
					wire_buf_append(&pay, &op.name[k % 4],
							1);
			}
			e.payload = wire_buf_data(&pay);
			e.len = (uint32_t)wire_buf_len(&pay);
			if (wire_batch_count(&frame) >= 100 ||
			    wire_batch_add(&frame, &e))
				break;
		}
		rc = wsc_send(c, wire_buf_data(&frame), wire_buf_len(&frame));
		while (!rc) {
			rc = wsc_recv(c, timeout_ms, &m);
			if (!rc && m.type == WIRE_ACK &&
			    m.ack.batch_id == batch_id) {
				high = m.ack.high_seq;
				printf("ack %" PRIu64 " %" PRIu64 "\n",
				       batch_id, high);
				break;
			}
		}
	}
	wire_buf_release(&frame);
	wire_buf_release(&pay);
	if (!rc)
		printf("pushed %" PRIu64 " high_seq %" PRIu64 "\n", n, high);
	else
		rc = report(c, rc);
	wsc_close(c);
	return rc;
}

/* pull and watch: ops until CAUGHT_UP, then `live` more (or timeout). */
static int receive_ops(struct wsc *c, bool watch, uint64_t live)
{
	struct wire_msg m;
	struct wire_iter it;
	struct wire_opent e;
	bool caught_up = false;
	uint64_t seen = 0;
	int rc;

	for (;;) {
		rc = wsc_recv(c, timeout_ms, &m);
		if (rc == -ETIMEDOUT && watch && !live)
			return 0;
		if (rc)
			return report(c, rc);
		if (m.type == WIRE_CAUGHT_UP) {
			printf("caught_up %" PRIu64 "\n", m.cursor.seq);
			fflush(stdout);
			caught_up = true;
			if (!watch)
				return 0;
			continue;
		}
		if (m.type != WIRE_OPS)
			continue;
		wire_iter_init(&it, &m);
		while (wire_iter_next(&it, &e)) {
			print_op(&e);
			if (caught_up)
				seen++;
		}
		printf("through %" PRIu64 "\n", m.batch.through);
		fflush(stdout);
		if (watch && live && seen >= live)
			return 0;
	}
}

static int cmd_pull(int argc, char **argv, bool watch)
{
	uint64_t cursor = 0, live = 0;
	struct wsc *c;
	int rc;

	if (watch ? argc < 4 || argc > 6 : argc != 5)
		usage();
	if (argc >= 5)
		cursor = parse_u64(argv[4]);
	if (argc == 6)
		live = parse_u64(argv[5]);
	c = open_session(argv[1], argv[2], parse_u64(argv[3]), cursor, &rc);
	if (!c)
		return rc;
	rc = receive_ops(c, watch, live);
	wsc_close(c);
	return rc;
}

/* Sends m then a PING, and waits for the PONG: m was handled by then. */
static int send_and_sync(struct wsc *c, const struct wire_msg *m)
{
	struct wire_msg ping = {.type = WIRE_PING}, r;
	int rc;

	ping.ping.nonce = 42;
	rc = wsc_send_msg(c, m);
	if (!rc)
		rc = wsc_send_msg(c, &ping);
	while (!rc) {
		rc = wsc_recv(c, timeout_ms, &r);
		if (!rc && r.type == WIRE_PONG)
			return 0;
	}
	return report(c, rc);
}

static int cmd_cursor(int argc, char **argv)
{
	struct wire_msg m = {.type = WIRE_CURSOR};
	struct wsc *c;
	int rc;

	if (argc != 5)
		usage();
	m.cursor.seq = parse_u64(argv[4]);
	c = open_session(argv[1], argv[2], parse_u64(argv[3]), 0, &rc);
	if (!c)
		return rc;
	rc = send_and_sync(c, &m);
	if (!rc)
		printf("ok\n");
	wsc_close(c);
	return rc;
}

static int cmd_have(int argc, char **argv)
{
	struct wire_msg m = {.type = WIRE_HAVE};
	uint8_t *names;
	struct wsc *c;
	size_t len;
	int rc;

	if (argc < 4 || argc - 3 > (int)WIRE_NAMES_MAX)
		usage();
	names = calloc((size_t)(argc - 3), WIRE_NAME_LEN);
	for (int i = 3; i < argc; i++)
		if (parse_hex(argv[i], names + (i - 3) * WIRE_NAME_LEN,
			      WIRE_NAME_LEN, &len) ||
		    len != WIRE_NAME_LEN)
			usage();
	m.names.count = (uint32_t)(argc - 3);
	m.names.names = names;
	c = open_session(argv[1], argv[2], 0, 0, &rc);
	if (!c) {
		free(names);
		return rc;
	}
	rc = wsc_send_msg(c, &m);
	free(names);
	while (!rc) {
		rc = wsc_recv(c, timeout_ms, &m);
		if (!rc && m.type == WIRE_MISSING) {
			for (uint32_t i = 0; i < m.names.count; i++)
				print_hex("missing ",
					  m.names.names + i * WIRE_NAME_LEN,
					  WIRE_NAME_LEN, "\n");
			printf("missing_count %u\n", m.names.count);
			break;
		}
	}
	if (rc)
		rc = report(c, rc);
	wsc_close(c);
	return rc;
}

static int read_file(const char *path, uint8_t *buf, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, max);
	close(fd);
	if (n < 0)
		return -errno;
	*len = (size_t)n;
	return 0;
}

static int cmd_chunk_put(int argc, char **argv)
{
	struct wire_msg m = {.type = WIRE_CHUNK_PUT};
	uint8_t *data = malloc(WIRE_CHUNK_MAX + 1);
	struct wk_hash h;
	struct wsc *c;
	size_t len = 0, nlen;
	int rc;

	if (argc < 4 || argc > 5)
		usage();
	rc = read_file(argv[3], data, WIRE_CHUNK_MAX + 1, &len);
	if (rc) {
		fprintf(stderr, "wkfs-relay-test: %s: %s\n", argv[3],
			strerror(-rc));
		free(data);
		return 1;
	}
	content_hash_buf(data, len, &h);
	memcpy(m.chunk.name, h.b, WIRE_NAME_LEN);
	if (argc == 5 &&
	    (parse_hex(argv[4], m.chunk.name, WIRE_NAME_LEN, &nlen) ||
	     nlen != WIRE_NAME_LEN))
		usage();
	m.chunk.data = data;
	m.chunk.len = (uint32_t)len;
	c = open_session(argv[1], argv[2], 0, 0, &rc);
	if (c) {
		/* wsc_send, not _msg: a chunk over the limit must still go. */
		struct wire_buf b;

		wire_buf_init(&b, 0, 2 * WIRE_FRAME_MAX);
		if (len > WIRE_CHUNK_MAX) {
			uint8_t t = WIRE_CHUNK_PUT, l[4];

			for (int i = 0; i < 4; i++)
				l[i] = (uint8_t)(len >> (8 * i));
			wire_buf_append(&b, &t, 1);
			wire_buf_append(&b, m.chunk.name, WIRE_NAME_LEN);
			wire_buf_append(&b, l, 4);
			rc = wire_buf_append(&b, data, len);
		} else {
			rc = wire_encode(&b, &m);
		}
		if (!rc)
			rc = wsc_send(c, wire_buf_data(&b), wire_buf_len(&b));
		wire_buf_release(&b);
		while (!rc) {
			rc = wsc_recv(c, timeout_ms, &m);
			if (!rc && m.type == WIRE_CHUNK_ACK) {
				print_hex("chunk_ack ", m.chunk.name,
					  WIRE_NAME_LEN, "\n");
				break;
			}
		}
		if (rc)
			rc = report(c, rc);
		wsc_close(c);
	}
	free(data);
	return rc;
}

static int cmd_chunk_get(int argc, char **argv)
{
	struct wire_msg m = {.type = WIRE_CHUNK_GET};
	uint8_t name[WIRE_NAME_LEN];
	struct wsc *c;
	size_t len;
	int rc;

	if (argc < 4 || argc > 5 ||
	    parse_hex(argv[3], name, WIRE_NAME_LEN, &len) ||
	    len != WIRE_NAME_LEN)
		usage();
	m.names.count = 1;
	m.names.names = name;
	c = open_session(argv[1], argv[2], 0, 0, &rc);
	if (!c)
		return rc;
	rc = wsc_send_msg(c, &m);
	while (!rc) {
		rc = wsc_recv(c, timeout_ms, &m);
		if (rc)
			break;
		if (m.type == WIRE_NOT_FOUND) {
			print_hex("not_found ", name, WIRE_NAME_LEN, "\n");
			rc = 5;
			break;
		}
		if (m.type != WIRE_CHUNK)
			continue;
		print_hex("chunk ", m.chunk.name, WIRE_NAME_LEN, "");
		printf(" %u\n", m.chunk.len);
		if (argc == 5) {
			FILE *f = fopen(argv[4], "wb");

			if (!f || fwrite(m.chunk.data, 1, m.chunk.len, f) !=
					  m.chunk.len) {
				perror(argv[4]);
				rc = 1;
			}
			if (f)
				fclose(f);
		}
		break;
	}
	if (rc < 0)
		rc = report(c, rc);
	wsc_close(c);
	return rc;
}

/* A reader that never reads: the relay must not buffer for it. */
static int cmd_stall(int argc, char **argv)
{
	struct wsc *c;
	int rc;

	if (argc != 4)
		usage();
	c = open_session(argv[1], argv[2], parse_u64(argv[3]), 0, &rc);
	if (!c)
		return rc;
	printf("stalling\n");
	for (;;)
		pause();
}

static int cmd_raw(int argc, char **argv)
{
	const char *token = NULL;
	size_t pad = 0, len;
	uint8_t *frame;
	struct wire_msg m;
	struct wsc *c;
	char err[512];
	int opt, rc;

	static const struct option longopts[] = {
		{"token", required_argument, NULL, 't'},
		{"pad", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+t:p:", longopts, NULL)) != -1) {
		if (opt == 't')
			token = optarg;
		else if (opt == 'p')
			pad = (size_t)parse_u64(optarg);
		else
			usage();
	}
	if (argc - optind != 2 || pad > 2 * WIRE_FRAME_MAX)
		usage();
	len = strlen(argv[optind + 1]) / 2;
	frame = calloc(1, len + pad + 1);
	if (parse_hex(argv[optind + 1], frame, len, &len))
		usage();
	len += pad;
	if (token) {
		c = open_session(argv[optind], token, 0, 0, &rc);
		if (!c) {
			free(frame);
			return rc;
		}
	} else {
		rc = wsc_connect(argv[optind], getenv("WKFS_TLS_CA"),
				 timeout_ms, &c, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "wkfs-relay-test: %s\n", err);
			free(frame);
			return 1;
		}
	}
	rc = wsc_send(c, frame, len);
	free(frame);
	while (!rc) {
		rc = wsc_recv(c, timeout_ms, &m);
		if (!rc && m.type == WIRE_WELCOME)
			printf("recv WELCOME version %u\n", m.welcome.version);
		else if (!rc)
			printf("recv %s\n", wire_type_name(m.type));
	}
	rc = report(c, rc);
	wsc_close(c);
	return rc;
}

static void parse_name(const char *hex, uint8_t name[WIRE_NAME_LEN])
{
	size_t len;

	if (parse_hex(hex, name, WIRE_NAME_LEN, &len) || len != WIRE_NAME_LEN)
		usage();
}

/* Reads a chunk-sized file into a new buffer (*len bytes); exits if not. */
static uint8_t *read_chunk_file(const char *path, size_t *len)
{
	uint8_t *data = malloc(WIRE_CHUNK_MAX + 1);
	int rc =
		data ? read_file(path, data, WIRE_CHUNK_MAX + 1, len) : -ENOMEM;

	if (!rc && *len > WIRE_CHUNK_MAX)
		rc = -EFBIG;
	if (rc) {
		fprintf(stderr, "wkfs-relay-test: %s: %s\n", path,
			strerror(-rc));
		exit(1);
	}
	return data;
}

/* Sends one CHUNK_PUT of a file without waiting for its CHUNK_ACK. */
static int send_chunk_file(struct wsc *c, const char *path)
{
	struct wire_msg m = {.type = WIRE_CHUNK_PUT};
	struct wk_hash h;
	size_t len;
	uint8_t *data = read_chunk_file(path, &len);
	int rc;

	content_hash_buf(data, len, &h);
	memcpy(m.chunk.name, h.b, WIRE_NAME_LEN);
	m.chunk.data = data;
	m.chunk.len = (uint32_t)len;
	rc = wsc_send_msg(c, &m);
	free(data);
	return rc;
}

static int cmd_put(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"chunk", required_argument, NULL, 'c'},
		{NULL, 0, NULL, 0},
	};
	const char *chunks[64];
	struct wire_content_ref ref = {.how = WIRE_CONTENT_NONE};
	struct wire_buf frame, pay;
	struct wire_opent e;
	struct wire_msg m;
	struct wk_op op;
	struct wsc *c;
	int nchunks = 0, opt, rc;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:", longopts, NULL)) != -1) {
		if (opt != 'c' || nchunks == 64)
			usage();
		chunks[nchunks++] = optarg;
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 8 || argc > 9)
		usage();
	memset(&op, 0, sizeof(op));
	op.kind = WK_OP_PUT;
	op.id.actor = parse_u64(argv[3]);
	op.id.hlc = parse_u64(argv[4]);
	/* Not the put's own id: a first put (base none) retires its node's
	 * create, which would be itself, and receivers skip its content. */
	op.node = (struct wk_id){op.id.hlc, op.id.actor + 1};
	op.base = WK_ID_NONE;
	if (strcmp(argv[5], "whole") == 0)
		ref.how = WIRE_CONTENT_WHOLE;
	else if (strcmp(argv[5], "recipe") == 0 && argc == 9)
		ref.how = WIRE_CONTENT_RECIPE;
	else if (strcmp(argv[5], "none") != 0)
		usage();
	op.size = parse_u64(argv[6]);
	parse_name(argv[7], op.hash.b);
	if (ref.how == WIRE_CONTENT_RECIPE)
		parse_name(argv[8], ref.recipe.b);
	c = open_session(argv[1], argv[2], op.id.actor, 0, &rc);
	if (!c)
		return rc;
	for (int i = 0; i < nchunks && !rc; i++)
		rc = send_chunk_file(c, chunks[i]);
	wire_buf_init(&frame, 0, WIRE_FRAME_MAX);
	wire_buf_init(&pay, 0, WIRE_PAYLOAD_MAX);
	if (!rc)
		rc = wire_put_encode(&pay, &op, &ref);
	e = (struct wire_opent){.actor = op.id.actor,
				.hlc = op.id.hlc,
				.payload = wire_buf_data(&pay),
				.len = (uint32_t)wire_buf_len(&pay)};
	if (!rc)
		rc = wire_batch_begin(&frame, WIRE_PUSH, 1);
	if (!rc)
		rc = wire_batch_add(&frame, &e);
	if (!rc)
		rc = wsc_send(c, wire_buf_data(&frame), wire_buf_len(&frame));
	while (!rc) {
		rc = wsc_recv(c, timeout_ms, &m);
		if (!rc && m.type == WIRE_CHUNK_ACK)
			print_hex("chunk_ack ", m.chunk.name, WIRE_NAME_LEN,
				  "\n");
		if (!rc && m.type == WIRE_ACK) {
			printf("ack %" PRIu64 " %" PRIu64 "\n", m.ack.batch_id,
			       m.ack.high_seq);
			break;
		}
	}
	wire_buf_release(&frame);
	wire_buf_release(&pay);
	if (rc)
		rc = report(c, rc);
	wsc_close(c);
	return rc;
}

static int cmd_pings(int argc, char **argv)
{
	struct wire_msg ping = {.type = WIRE_PING}, m;
	uint64_t n, got = 0;
	struct timespec t0, t1;
	struct wsc *c;
	int rc = 0;

	if (argc != 4)
		usage();
	n = parse_u64(argv[3]);
	c = open_session(argv[1], argv[2], 0, 0, &rc);
	if (!c)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < n && !rc; i++) {
		ping.ping.nonce = i;
		rc = wsc_send_msg(c, &ping);
	}
	while (!rc && got < n) {
		rc = wsc_recv(c, timeout_ms, &m);
		if (!rc && m.type == WIRE_PONG)
			got++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc)
		rc = report(c, rc);
	else
		printf("pongs %" PRIu64 " %lld\n", got,
		       (long long)(t1.tv_sec - t0.tv_sec) * 1000 +
			       (t1.tv_nsec - t0.tv_nsec) / 1000000);
	wsc_close(c);
	return rc;
}

static int cmd_name(int argc, char **argv)
{
	if (argc < 2)
		usage();
	for (int i = 1; i < argc; i++) {
		struct wk_hash h;
		size_t len;
		uint8_t *data = read_chunk_file(argv[i], &len);

		content_hash_buf(data, len, &h);
		print_hex("name ", h.b, WIRE_NAME_LEN, "\n");
		free(data);
	}
	return 0;
}

static int cmd_recipe(int argc, char **argv)
{
	uint8_t base[WIRE_NAME_LEN], base_chunk[WIRE_NAME_LEN];
	struct recipe r = RECIPE_INIT, empty = RECIPE_INIT;
	bool delta = false;
	struct wk_hash h;
	struct bbuf out;
	FILE *f;
	int rc = 0;

	if (argc >= 4 && strcmp(argv[1], "--delta") == 0) {
		parse_name(argv[2], base);
		parse_name(argv[3], base_chunk);
		delta = true;
		argc -= 3;
		argv += 3;
	}
	if (argc < 3)
		usage();
	for (int i = 2; i < argc && !rc; i++) {
		size_t len;
		uint8_t *data = read_chunk_file(argv[i], &len);

		content_hash_buf(data, len, &h);
		rc = recipe_push(&r, &h, (uint32_t)len);
		free(data);
	}
	bbuf_init(&out, WIRE_CHUNK_MAX);
	if (delta) {
		bbuf_put_u8(&out, WIRE_RCHUNK_DELTA);
		bbuf_put(&out, base, WIRE_NAME_LEN);
		bbuf_put(&out, base_chunk, WIRE_NAME_LEN);
		if (!rc)
			rc = recipe_delta_encode(&empty, &r, &out);
	} else if (!rc) {
		rc = recipe_encode(&r, &out);
	}
	if (!rc)
		rc = bbuf_error(&out);
	f = rc ? NULL : fopen(argv[1], "wb");
	if (f && fwrite(out.p, 1, out.len, f) != out.len)
		rc = -EIO;
	if (f && fclose(f))
		rc = -EIO;
	if (!rc && !f)
		rc = -errno;
	if (!rc) {
		content_hash_buf(out.p, out.len, &h);
		print_hex("recipe ", h.b, WIRE_NAME_LEN, "\n");
	} else {
		fprintf(stderr, "wkfs-relay-test: recipe: %s\n", strerror(-rc));
	}
	bbuf_release(&out);
	recipe_release(&r);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"timeout", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0},
	};
	const char *cmd;
	int opt;

	wlog_init(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		if (opt != 'T')
			usage();
		timeout_ms = (int)(parse_u64(optarg) * 1000);
	}
	if (optind >= argc)
		usage();
	argc -= optind;
	argv += optind;
	cmd = argv[0];
	if (strcmp(cmd, "push") == 0)
		return cmd_push(argc, argv);
	if (strcmp(cmd, "pull") == 0)
		return cmd_pull(argc, argv, false);
	if (strcmp(cmd, "watch") == 0)
		return cmd_pull(argc, argv, true);
	if (strcmp(cmd, "cursor") == 0)
		return cmd_cursor(argc, argv);
	if (strcmp(cmd, "have") == 0)
		return cmd_have(argc, argv);
	if (strcmp(cmd, "chunk-put") == 0)
		return cmd_chunk_put(argc, argv);
	if (strcmp(cmd, "chunk-get") == 0)
		return cmd_chunk_get(argc, argv);
	if (strcmp(cmd, "stall") == 0)
		return cmd_stall(argc, argv);
	if (strcmp(cmd, "raw") == 0)
		return cmd_raw(argc, argv);
	if (strcmp(cmd, "put") == 0)
		return cmd_put(argc, argv);
	if (strcmp(cmd, "name") == 0)
		return cmd_name(argc, argv);
	if (strcmp(cmd, "pings") == 0)
		return cmd_pings(argc, argv);
	if (strcmp(cmd, "recipe") == 0)
		return cmd_recipe(argc, argv);
	usage();
	return 1;
}
