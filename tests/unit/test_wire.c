/*
 * test_wire.c - the replication codec: every message round-trips, hostile
 * frames are refused without reading past their end, op payloads round-trip
 * (with and without a device name) and refuse bad names and device names,
 * and a seeded fuzz loop finds no crash.
 *
 * Frames are decoded from heap copies of exactly their length, so that
 * AddressSanitizer (make SAN=1) catches any over-read.  The fuzz seed is
 * printed on failure; WKFS_SEED=N reproduces a run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wire.h"

/* Decodes a heap copy of exactly len bytes. */
static int decode_copy(const uint8_t *p, size_t len, struct wire_msg *m,
		       uint8_t **keep)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	if (len)
		memcpy(copy, p, len);
	rc = wire_decode(copy, len, m);
	if (keep)
		*keep = copy;
	else
		free(copy);
	return rc;
}

/* The frame the last round_trip() decoded: its output points into it. */
static uint8_t *rt_frame;

/* Encodes m, decodes it, encodes the result: both encodings must match. */
static void round_trip(const struct wire_msg *m, struct wire_msg *out)
{
	struct wire_buf a, b;
	uint8_t *copy;

	free(rt_frame);
	rt_frame = NULL;

	wire_buf_init(&a, 16, WIRE_FRAME_MAX);
	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	assert_int_equal(wire_encode(&a, m), 0);
	assert_int_equal(wire_buf_data(&a)[0], (uint8_t)m->type);
	assert_int_equal(
		decode_copy(wire_buf_data(&a), wire_buf_len(&a), out, &copy),
		0);
	assert_int_equal(out->type, m->type);
	assert_int_equal(wire_encode(&b, out), 0);
	assert_int_equal(wire_buf_len(&a), wire_buf_len(&b));
	assert_memory_equal(wire_buf_data(&a), wire_buf_data(&b),
			    wire_buf_len(&a));
	/* Every strict prefix is truncated, one more byte is trailing. */
	for (size_t n = 0; n < wire_buf_len(&a); n++) {
		struct wire_msg t;

		assert_int_equal(decode_copy(wire_buf_data(&a), n, &t, NULL),
				 -EBADMSG);
	}
	{
		struct wire_msg t;
		uint8_t zero = 0;

		assert_int_equal(wire_buf_append(&a, &zero, 1), 0);
		assert_int_equal(decode_copy(wire_buf_data(&a),
					     wire_buf_len(&a), &t, NULL),
				 -EBADMSG);
	}
	rt_frame = copy;
	wire_buf_release(&a);
	wire_buf_release(&b);
}

static void test_buf_cap(void **state)
{
	struct wire_buf b;
	uint8_t x[100];

	memset(x, 7, sizeof(x));
	wire_buf_init(&b, 8, 150);
	assert_int_equal(wire_buf_append(&b, x, 100), 0);
	assert_int_equal(wire_buf_append(&b, x, 51), -EMSGSIZE);
	assert_int_equal(wire_buf_len(&b), 100);
	assert_int_equal(wire_buf_append(&b, x, 50), 0);
	assert_int_equal(wire_buf_len(&b), 150);
	assert_int_equal(wire_buf_append(&b, x, 1), -EMSGSIZE);
	assert_int_equal(wire_buf_reserve(&b, SIZE_MAX), -EMSGSIZE);
	assert_ptr_equal(wire_buf_data(&b), b.mem + 8);
	wire_buf_truncate(&b, 10);
	assert_int_equal(wire_buf_len(&b), 10);
	wire_buf_reset(&b);
	assert_int_equal(wire_buf_len(&b), 0);
	wire_buf_release(&b);
}

static void test_round_trip_small(void **state)
{
	struct wire_msg m, out;
	uint8_t names[3 * WIRE_NAME_LEN];

	memset(&m, 0, sizeof(m));
	m.type = WIRE_HELLO;
	m.hello.version = WIRE_VERSION;
	strcpy(m.hello.folder, "Notes_2024.v-1");
	for (unsigned i = 0; i < WIRE_TOKEN_LEN; i++)
		m.hello.token[i] = (uint8_t)(i * 7);
	m.hello.actor = 0x1122334455667788ULL;
	m.hello.cursor = 42;
	round_trip(&m, &out);
	assert_string_equal(out.hello.folder, "Notes_2024.v-1");
	assert_memory_equal(out.hello.token, m.hello.token, WIRE_TOKEN_LEN);
	assert_true(out.hello.actor == m.hello.actor);
	assert_int_equal(out.hello.cursor, 42);

	memset(&m, 0, sizeof(m));
	m.type = WIRE_WELCOME;
	m.welcome.version = 1;
	m.welcome.head_seq = UINT64_MAX;
	round_trip(&m, &out);
	assert_true(out.welcome.head_seq == UINT64_MAX);

	for (int t = 0; t < 2; t++) {
		memset(&m, 0, sizeof(m));
		m.type = t ? WIRE_CURSOR : WIRE_CAUGHT_UP;
		m.cursor.seq = 1234567;
		round_trip(&m, &out);
		assert_int_equal(out.cursor.seq, 1234567);
	}

	memset(&m, 0, sizeof(m));
	m.type = WIRE_ACK;
	m.ack.batch_id = 9;
	m.ack.high_seq = 77;
	round_trip(&m, &out);
	assert_int_equal(out.ack.batch_id, 9);
	assert_int_equal(out.ack.high_seq, 77);

	for (unsigned i = 0; i < sizeof(names); i++)
		names[i] = (uint8_t)i;
	static const enum wire_type lists[] = {WIRE_HAVE, WIRE_MISSING,
					       WIRE_CHUNK_GET, WIRE_NOT_FOUND};
	for (unsigned t = 0; t < 4; t++) {
		for (uint32_t n = 0; n <= 3; n++) {
			memset(&m, 0, sizeof(m));
			m.type = lists[t];
			m.names.count = n;
			m.names.names = n ? names : NULL;
			round_trip(&m, &out);
			assert_int_equal(out.names.count, n);
			if (n)
				assert_memory_equal(out.names.names, names,
						    n * WIRE_NAME_LEN);
		}
	}

	for (int t = 0; t < 2; t++) {
		static const uint8_t data[] = "chunk bytes";

		memset(&m, 0, sizeof(m));
		m.type = t ? WIRE_CHUNK : WIRE_CHUNK_PUT;
		memset(m.chunk.name, 0xab, WIRE_NAME_LEN);
		m.chunk.data = data;
		m.chunk.len = sizeof(data);
		round_trip(&m, &out);
		assert_int_equal(out.chunk.len, sizeof(data));
		assert_memory_equal(out.chunk.name, m.chunk.name,
				    WIRE_NAME_LEN);
	}
	memset(&m, 0, sizeof(m));
	m.type = WIRE_CHUNK_ACK;
	memset(m.chunk.name, 0x5a, WIRE_NAME_LEN);
	round_trip(&m, &out);
	assert_int_equal(out.chunk.name[15], 0x5a);

	for (int t = 0; t < 2; t++) {
		memset(&m, 0, sizeof(m));
		m.type = t ? WIRE_PONG : WIRE_PING;
		m.ping.nonce = 0xdeadbeef;
		round_trip(&m, &out);
		assert_int_equal(out.ping.nonce, 0xdeadbeef);
	}

	memset(&m, 0, sizeof(m));
	m.type = WIRE_ERROR;
	m.error.code = WIRE_ERR_AUTH;
	strcpy(m.error.reason, "bad folder or token");
	round_trip(&m, &out);
	assert_int_equal(out.error.code, WIRE_ERR_AUTH);
	assert_string_equal(out.error.reason, "bad folder or token");
	memset(&m, 0, sizeof(m));
	m.type = WIRE_ERROR;
	round_trip(&m, &out);
	assert_string_equal(out.error.reason, "");
}

static void test_round_trip_batches(void **state)
{
	for (int t = 0; t < 2; t++) {
		enum wire_type type = t ? WIRE_PUSH : WIRE_OPS;
		struct wire_buf b, b2;
		struct wire_msg m;
		struct wire_iter it;
		struct wire_opent e;
		uint8_t pay[300];
		uint32_t n = 0;

		for (unsigned i = 0; i < sizeof(pay); i++)
			pay[i] = (uint8_t)(i ^ 0x5c);
		wire_buf_init(&b, 0, WIRE_FRAME_MAX);
		assert_int_equal(wire_batch_begin(&b, type, 99), 0);
		for (uint32_t i = 0; i < 50; i++) {
			e = (struct wire_opent){.seq = 100 + i,
						.actor = 7,
						.hlc = 1000 + i,
						.payload = pay,
						.len = i * 5};
			assert_int_equal(wire_batch_add(&b, &e), 0);
		}
		assert_int_equal(wire_batch_count(&b), 50);
		wire_batch_set_through(&b, 555);
		assert_int_equal(
			wire_decode(wire_buf_data(&b), wire_buf_len(&b), &m),
			0);
		assert_int_equal(m.type, type);
		assert_int_equal(m.batch.count, 50);
		if (type == WIRE_OPS)
			assert_int_equal(m.batch.through, 555);
		else
			assert_int_equal(m.batch.batch_id, 99);
		wire_iter_init(&it, &m);
		while (wire_iter_next(&it, &e)) {
			assert_int_equal(e.seq, type == WIRE_OPS ? 100 + n : 0);
			assert_int_equal(e.actor, 7);
			assert_int_equal(e.hlc, 1000 + n);
			assert_int_equal(e.len, n * 5);
			if (e.len)
				assert_memory_equal(e.payload, pay, e.len);
			n++;
		}
		assert_int_equal(n, 50);

		/* Re-encoding the decoded struct gives the same bytes. */
		wire_buf_init(&b2, 0, WIRE_FRAME_MAX);
		assert_int_equal(wire_encode(&b2, &m), 0);
		assert_int_equal(wire_buf_len(&b2), wire_buf_len(&b));
		assert_memory_equal(wire_buf_data(&b2), wire_buf_data(&b),
				    wire_buf_len(&b));
		round_trip(&m, &m);
		wire_buf_release(&b);
		wire_buf_release(&b2);

		/* An empty batch is a batch. */
		wire_buf_init(&b, 0, 64);
		assert_int_equal(wire_batch_begin(&b, type, 1), 0);
		assert_int_equal(
			wire_decode(wire_buf_data(&b), wire_buf_len(&b), &m),
			0);
		assert_int_equal(m.batch.count, 0);
		wire_buf_release(&b);
	}
}

static void test_batch_limits(void **state)
{
	struct wire_buf b;
	struct wire_opent e = {.seq = 1, .actor = 2, .hlc = 3};
	uint8_t *big = calloc(1, WIRE_PAYLOAD_MAX + 1);
	uint32_t n = 0;

	/* The count limit. */
	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	assert_int_equal(wire_batch_begin(&b, WIRE_OPS, 0), 0);
	assert_int_equal(wire_batch_begin(&b, WIRE_OPS, 0), -EINVAL);
	while (wire_batch_add(&b, &e) == 0)
		n++;
	assert_int_equal(n, WIRE_BATCH_MAX);
	wire_buf_release(&b);

	/* The buffer's cap: a full batch is left intact. */
	wire_buf_init(&b, 0, 1000);
	assert_int_equal(wire_batch_begin(&b, WIRE_PUSH, 5), 0);
	e.payload = big;
	e.len = 100;
	n = 0;
	while (wire_batch_add(&b, &e) == 0)
		n++;
	assert_int_equal(n, (1000 - 13) / (20 + 100));
	{
		struct wire_msg m;

		assert_int_equal(
			wire_decode(wire_buf_data(&b), wire_buf_len(&b), &m),
			0);
		assert_int_equal(m.batch.count, n);
	}
	wire_buf_release(&b);

	/* A payload no batch may carry. */
	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	assert_int_equal(wire_batch_begin(&b, WIRE_PUSH, 5), 0);
	e.len = WIRE_PAYLOAD_MAX + 1;
	assert_int_equal(wire_batch_add(&b, &e), -EINVAL);
	e.len = WIRE_PAYLOAD_MAX;
	assert_int_equal(wire_batch_add(&b, &e), 0);
	wire_buf_release(&b);
	free(big);
}

static size_t hexframe(const char *hex, uint8_t *out)
{
	size_t n = 0;

	while (hex[0] && hex[1]) {
		if (hex[0] == ' ') {
			hex++;
			continue;
		}
		sscanf(hex, "%2hhx", &out[n++]);
		hex += 2;
	}
	return n;
}

static void expect_hex(const char *hex, int want)
{
	uint8_t f[512];
	struct wire_msg m;
	size_t n = hexframe(hex, f);

	assert_int_equal(decode_copy(f, n, &m, NULL), want);
}

static void test_hostile_frames(void **state)
{
	struct wire_msg m;
	uint8_t *huge;
	char hello[512];
	const char *tok = "0000000000000000000000000000000000000000000000000000"
			  "000000000000";

	expect_hex("", -EBADMSG);
	expect_hex("00", -EBADMSG);			/* unknown type */
	expect_hex("08 0000000000000000", -EBADMSG);	/* unknown type */
	expect_hex("80", -EBADMSG);			/* unknown type */
	expect_hex("03 01020304050607", -EBADMSG);	/* short u64 */
	expect_hex("03 0102030405060708", 0);		/* CURSOR */
	expect_hex("03 0102030405060708 00", -EBADMSG); /* trailing */
	/* HAVE: a count far beyond the bytes there */
	expect_hex("04 ffffffff 00112233445566778899aabbccddeeff", -EBADMSG);
	/* HAVE: 4097 names would be too many, but are not there either */
	expect_hex("04 01100000", -EBADMSG);
	/* PUSH: a count that lies */
	expect_hex("02 0100000000000000 02000000"
		   " 0100000000000000 0200000000000000 00000000",
		   -EBADMSG);
	/* PUSH: a payload length running past the end */
	expect_hex("02 0100000000000000 01000000"
		   " 0100000000000000 0200000000000000 05000000 aabb",
		   -EBADMSG);
	/* PUSH: too many ops */
	expect_hex("02 0100000000000000 01040000", -EMSGSIZE);
	/* ERROR with a NUL in its reason */
	expect_hex("ff 0100 03000000 610062", -EBADMSG);
	/* ERROR: reason too long (claims 300 bytes, has them not) */
	expect_hex("ff 0100 2c010000", -EBADMSG);
	/* CHUNK_ACK short name */
	expect_hex("86 00112233445566778899aabbccddee", -EBADMSG);

	/* HELLO: good, then bad folders and tokens. */
	snprintf(hello, sizeof(hello),
		 "01 01000000 05000000 4e6f746573 20000000 %s"
		 " 0100000000000000 0000000000000000",
		 tok);
	expect_hex(hello, 0);
	snprintf(hello, sizeof(hello),
		 "01 01000000 05000000 2e6f746573 20000000 %s"
		 " 0100000000000000 0000000000000000",
		 tok); /* ".otes" */
	expect_hex(hello, -EBADMSG);
	snprintf(hello, sizeof(hello),
		 "01 01000000 05000000 4e2f746573 20000000 %s"
		 " 0100000000000000 0000000000000000",
		 tok); /* "N/tes" */
	expect_hex(hello, -EBADMSG);
	snprintf(hello, sizeof(hello),
		 "01 01000000 00000000 20000000 %s"
		 " 0100000000000000 0000000000000000",
		 tok); /* empty folder */
	expect_hex(hello, -EBADMSG);
	expect_hex("01 01000000 05000000 4e6f746573 04000000 00000000"
		   " 0100000000000000 0000000000000000",
		   -EBADMSG); /* short token */

	/* Oversized: the frame, a chunk, a names list, a folder. */
	huge = calloc(1, WIRE_FRAME_MAX + 1);
	assert_non_null(huge);
	huge[0] = WIRE_PING;
	assert_int_equal(wire_decode(huge, WIRE_FRAME_MAX + 1, &m), -EMSGSIZE);
	huge[0] = WIRE_CHUNK_PUT;
	huge[17] = 0x01;
	huge[19] = 0x10; /* len = 0x100001 = 1 MiB + 1 */
	assert_int_equal(wire_decode(huge, 1 + 16 + 4 + (1u << 20) + 1, &m),
			 -EMSGSIZE);
	huge[19] = 0x10;
	huge[17] = 0x00;
	assert_int_equal(wire_decode(huge, 1 + 16 + 4 + (1u << 20), &m), 0);
	memset(huge, 0, 32);
	huge[0] = WIRE_HAVE;
	huge[1] = 0x01;
	huge[2] = 0x10; /* 4097 names */
	assert_int_equal(wire_decode(huge, 5 + 4097 * 16, &m), -EMSGSIZE);
	huge[1] = 0x00;
	assert_int_equal(wire_decode(huge, 5 + 4096 * 16, &m), 0);
	memset(huge, 0, 32);
	huge[0] = WIRE_HELLO;
	huge[5] = 65;
	memset(huge + 9, 'a', 65);
	assert_int_equal(wire_decode(huge, 9 + 65 + 4 + 32 + 16, &m),
			 -EMSGSIZE);
	free(huge);
}

static void test_encode_refuses(void **state)
{
	struct wire_buf b;
	struct wire_msg m;

	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	memset(&m, 0, sizeof(m));
	m.type = WIRE_HELLO;
	strcpy(m.hello.folder, "..");
	assert_int_equal(wire_encode(&b, &m), -EINVAL);
	m.type = (enum wire_type)0x42;
	assert_int_equal(wire_encode(&b, &m), -EINVAL);
	m.type = WIRE_HAVE;
	m.names.count = WIRE_NAMES_MAX + 1;
	m.names.names = (const uint8_t *)"";
	assert_int_equal(wire_encode(&b, &m), -EINVAL);
	assert_int_equal(wire_buf_len(&b), 0);
	wire_buf_release(&b);

	/* Past the cap: nothing is left behind. */
	wire_buf_init(&b, 0, 10);
	memset(&m, 0, sizeof(m));
	m.type = WIRE_ACK;
	assert_int_equal(wire_encode(&b, &m), -EMSGSIZE);
	assert_int_equal(wire_buf_len(&b), 0);
	wire_buf_release(&b);

	assert_true(wire_type_from_client(WIRE_PUSH));
	assert_false(wire_type_from_client(WIRE_OPS));
	assert_string_equal(wire_err_name(WIRE_ERR_HASH), "hash");
	assert_string_equal(wire_err_name(999), "unknown");
	assert_string_equal(wire_type_name(WIRE_CAUGHT_UP), "CAUGHT_UP");
}

/* ---- op payloads ---- */

static struct wk_op base_op(enum wk_op_kind kind)
{
	struct wk_op op;

	memset(&op, 0, sizeof(op));
	op.base = WK_ID_NONE;
	op.link = WK_ID_NONE;
	op.id = (struct wk_id){0x1234, 0x99};
	op.kind = kind;
	op.node = (struct wk_id){0x1000, 0x99};
	return op;
}

static void op_round_trip(const struct wk_op *op)
{
	struct wire_buf b;
	struct wk_op out;
	uint8_t *copy;

	wire_buf_init(&b, 0, WIRE_PAYLOAD_MAX);
	assert_int_equal(wire_op_encode(&b, op), 0);
	copy = malloc(wire_buf_len(&b));
	memcpy(copy, wire_buf_data(&b), wire_buf_len(&b));
	assert_int_equal(wire_op_decode(copy, wire_buf_len(&b), op->id.actor,
					op->id.hlc, &out),
			 0);
	assert_memory_equal(&out, op, sizeof(out));
	for (size_t n = 0; n < wire_buf_len(&b); n++)
		assert_int_equal(wire_op_decode(copy, n, 1, 1, &out), -EBADMSG);
	free(copy);
	wire_buf_release(&b);
}

static struct wk_op *sample_ops(size_t *n)
{
	static struct wk_op ops[8];
	struct wk_op *o = ops;

	*o = base_op(WK_OP_MKDIR);
	o->parent = WK_ID_ROOT;
	strcpy(o->name, "docs");
	o->mode = 0755;
	strcpy(o->device, "laptop"); /* format 3 */
	o++;
	*o = base_op(WK_OP_CREATE);
	o->parent = (struct wk_id){5, 6};
	memset(o->name, 'x', WK_NAME_MAX);
	o->mode = 07777;
	o++;
	*o = base_op(WK_OP_PUT);
	for (int i = 0; i < 16; i++)
		o->hash.b[i] = (uint8_t)(0xf0 + i);
	o->size = 1ULL << 40;
	o->mtime_ns = -5;
	o++;
	*o = base_op(WK_OP_PUT);
	o->base = (struct wk_id){77, 88};
	memset(o->device, 'd', WK_DEVICE_MAX);
	o->device[1] = '.';
	o->device[2] = '-';
	o->device[3] = '_';
	o++;
	*o = base_op(WK_OP_MOVE);
	o->parent = (struct wk_id){1, 2};
	strcpy(o->name, "a.txt");
	o->new_parent = WK_ID_ROOT;
	strcpy(o->new_name, "b .txt \xc3\xa9");
	o++;
	*o = base_op(WK_OP_REMOVE);
	o->parent = (struct wk_id){1, 2};
	strcpy(o->name, "gone");
	o->base = (struct wk_id){3, 4};
	o++;
	*o = base_op(WK_OP_SETATTR);
	o->attrs = WK_ATTR_MODE | WK_ATTR_MTIME;
	o->mode = 0600;
	o->mtime_ns = 1700000000123456789LL;
	o++;
	*o = base_op(WK_OP_SYMLINK);
	o->parent = WK_ID_ROOT;
	strcpy(o->name, "link");
	memset(o->target, '/', WK_TARGET_MAX);
	strcpy(o->device, "D");
	o++;
	*n = (size_t)(o - ops);
	return ops;
}

static void test_op_round_trip(void **state)
{
	size_t n;
	struct wk_op *ops = sample_ops(&n);

	for (size_t i = 0; i < n; i++)
		op_round_trip(&ops[i]);
}

/* Encodes op with its name replaced by the bytes given. */
static int decode_with_name(const char *name, size_t len)
{
	struct wire_buf b;
	struct wk_op op = base_op(WK_OP_MKDIR), out;
	uint8_t le[4] = {(uint8_t)len, (uint8_t)(len >> 8), 0, 0};
	uint8_t hdr[2] = {WIRE_OP_FORMAT, WK_OP_MKDIR};
	uint8_t zero[16] = {0};
	int rc;

	wire_buf_init(&b, 0, 1 << 20);
	wire_buf_append(&b, hdr, 2);
	wire_buf_append(&b, zero, 16); /* node */
	wire_buf_append(&b, zero, 16); /* parent */
	wire_buf_append(&b, le, 4);
	wire_buf_append(&b, name, len);
	wire_buf_append(&b, zero, 4); /* mode */
	rc = wire_op_decode(wire_buf_data(&b), wire_buf_len(&b), 1, 1, &out);
	wire_buf_release(&b);
	(void)op;
	return rc;
}

static void test_op_hostile(void **state)
{
	char longname[WK_NAME_MAX + 2];
	struct wire_buf b;
	struct wk_op op, out;

	assert_int_equal(decode_with_name("ok", 2), 0);
	assert_int_equal(decode_with_name("", 0), -EBADMSG);
	assert_int_equal(decode_with_name(".", 1), -EBADMSG);
	assert_int_equal(decode_with_name("..", 2), -EBADMSG);
	assert_int_equal(decode_with_name("a/b", 3), -EBADMSG);
	assert_int_equal(decode_with_name("a\0b", 3), -EBADMSG);
	memset(longname, 'n', sizeof(longname));
	assert_int_equal(decode_with_name(longname, WK_NAME_MAX), 0);
	assert_int_equal(decode_with_name(longname, WK_NAME_MAX + 1), -EBADMSG);

	/* Encoders refuse what decoders would. */
	wire_buf_init(&b, 0, 1 << 20);
	op = base_op(WK_OP_MOVE);
	strcpy(op.name, "a");
	strcpy(op.new_name, "..");
	assert_int_equal(wire_op_encode(&b, &op), -EINVAL);
	op = base_op(WK_OP_SETATTR);
	assert_int_equal(wire_op_encode(&b, &op), -EINVAL);
	op.attrs = 4;
	assert_int_equal(wire_op_encode(&b, &op), -EINVAL);
	op.attrs = WK_ATTR_MODE;
	op.mode = 010000;
	assert_int_equal(wire_op_encode(&b, &op), -EINVAL);
	op = base_op(WK_OP_SYMLINK);
	strcpy(op.name, "l");
	assert_int_equal(wire_op_encode(&b, &op), -EINVAL); /* no target */
	op = base_op((enum wk_op_kind)9);
	assert_int_equal(wire_op_encode(&b, &op), -EINVAL);
	assert_int_equal(wire_buf_len(&b), 0);

	/* A bad format byte, a bad kind, trailing bytes. */
	op = base_op(WK_OP_PUT);
	assert_int_equal(wire_op_encode(&b, &op), 0);
	wire_buf_data(&b)[0] = 2;
	assert_int_equal(
		wire_op_decode(wire_buf_data(&b), wire_buf_len(&b), 1, 1, &out),
		-EBADMSG);
	wire_buf_data(&b)[0] = WIRE_OP_FORMAT;
	wire_buf_data(&b)[1] = 0;
	assert_int_equal(
		wire_op_decode(wire_buf_data(&b), wire_buf_len(&b), 1, 1, &out),
		-EBADMSG);
	wire_buf_data(&b)[1] = WK_OP_PUT;
	assert_int_equal(
		wire_op_decode(wire_buf_data(&b), wire_buf_len(&b), 1, 1, &out),
		0);
	wire_buf_append(&b, "", 1);
	assert_int_equal(
		wire_op_decode(wire_buf_data(&b), wire_buf_len(&b), 1, 1, &out),
		-EBADMSG);
	wire_buf_release(&b);
}

/* ---- fuzz ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: small, seedable, good enough to shake a parser. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/* One valid frame of each kind, as fuzz seeds. */
static void build_seeds(struct wire_buf *seeds, size_t *n)
{
	static const uint8_t names[2 * WIRE_NAME_LEN] = {1, 2, 3};
	static const uint8_t data[40] = {9, 9, 9};
	struct wire_msg m;
	size_t nops;
	struct wk_op *ops = sample_ops(&nops);
	size_t k = 0;

#define SEED(...)                                                \
	do {                                                     \
		memset(&m, 0, sizeof(m));                        \
		__VA_ARGS__;                                     \
		wire_buf_init(&seeds[k], 0, WIRE_FRAME_MAX);     \
		assert_int_equal(wire_encode(&seeds[k], &m), 0); \
		k++;                                             \
	} while (0)
	SEED(m.type = WIRE_HELLO; m.hello.version = 1;
	     strcpy(m.hello.folder, "f"); m.hello.cursor = 3);
	SEED(m.type = WIRE_WELCOME; m.welcome.head_seq = 5);
	SEED(m.type = WIRE_CURSOR; m.cursor.seq = 5);
	SEED(m.type = WIRE_ACK);
	SEED(m.type = WIRE_MISSING; m.names.count = 2; m.names.names = names);
	SEED(m.type = WIRE_CHUNK; m.chunk.data = data;
	     m.chunk.len = sizeof(data));
	SEED(m.type = WIRE_CHUNK_ACK);
	SEED(m.type = WIRE_ERROR; strcpy(m.error.reason, "why"));
#undef SEED
	for (int t = 0; t < 2; t++) {
		struct wire_buf p;

		wire_buf_init(&seeds[k], 0, WIRE_FRAME_MAX);
		wire_buf_init(&p, 0, WIRE_PAYLOAD_MAX);
		wire_batch_begin(&seeds[k], t ? WIRE_PUSH : WIRE_OPS, 1);
		for (size_t i = 0; i < nops; i++) {
			struct wire_opent e = {.seq = i + 1, .actor = 2};

			wire_buf_reset(&p);
			assert_int_equal(wire_op_encode(&p, &ops[i]), 0);
			e.payload = wire_buf_data(&p);
			e.len = (uint32_t)wire_buf_len(&p);
			assert_int_equal(wire_batch_add(&seeds[k], &e), 0);
		}
		wire_buf_release(&p);
		k++;
	}
	*n = k;
}

/* Whatever decodes must re-encode to the same bytes, payloads included. */
static bool check_frame(const uint8_t *f, size_t len)
{
	struct wire_msg m;
	struct wire_buf b;
	uint8_t *copy = malloc(len ? len : 1);
	bool ok;

	memcpy(copy, f, len);
	ok = wire_decode(copy, len, &m) == 0;
	if (ok) {
		wire_buf_init(&b, 0, WIRE_FRAME_MAX);
		assert_int_equal(wire_encode(&b, &m), 0);
		assert_int_equal(wire_buf_len(&b), len);
		assert_memory_equal(wire_buf_data(&b), f, len);
		wire_buf_release(&b);
		if (m.type == WIRE_OPS || m.type == WIRE_PUSH) {
			struct wire_iter it;
			struct wire_opent e;
			struct wire_content_ref ref;
			struct wk_op op;

			wire_iter_init(&it, &m);
			while (wire_iter_next(&it, &e)) {
				uint8_t *p = malloc(e.len ? e.len : 1);

				memcpy(p, e.payload, e.len);
				if (wire_op_decode_ref(p, e.len, e.actor, e.hlc,
						       &op, &ref) == 0) {
					bool put2 = p[0] == 2 || p[0] == 4;

					wire_buf_init(&b, 0, WIRE_PAYLOAD_MAX);
					assert_int_equal(
						put2 ? wire_put_encode(&b, &op,
								       &ref)
						     : wire_op_encode(&b, &op),
						0);
					assert_int_equal(wire_buf_len(&b),
							 e.len);
					assert_memory_equal(wire_buf_data(&b),
							    p, e.len);
					wire_buf_release(&b);
				}
				free(p);
			}
		}
	}
	free(copy);
	return ok;
}

static void test_fuzz(void **state)
{
	struct wire_buf seeds[16];
	size_t nseeds, iters = 100000, decoded = 0;
	const char *s = getenv("WKFS_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL);
	uint8_t frame[4096];

	fprintf(stderr, "test_wire: fuzz seed %llu (WKFS_SEED=%llu repeats)\n",
		(unsigned long long)seed, (unsigned long long)seed);
	rng_state = seed * 2654435761ULL + 1;
	build_seeds(seeds, &nseeds);
	for (size_t i = 0; i < iters; i++) {
		size_t len;

		if (i % 4 == 0) {
			/* Random bytes behind a valid type byte (mostly). */
			len = rng() % 64;
			for (size_t j = 0; j < len; j++)
				frame[j] = (uint8_t)rng();
			if (len && rng() % 4)
				frame[0] = (uint8_t)wire_buf_data(
					&seeds[rng() % nseeds])[0];
		} else {
			/* A valid frame, mutated a little. */
			struct wire_buf *sd = &seeds[rng() % nseeds];
			int muts = 1 + (int)(rng() % 4);

			len = wire_buf_len(sd);
			if (len > sizeof(frame))
				len = sizeof(frame);
			memcpy(frame, wire_buf_data(sd), len);
			while (muts--) {
				size_t at = len ? rng() % len : 0;

				switch (rng() % 5) {
				case 0: /* flip a bit */
					if (len)
						frame[at] ^=
							(uint8_t)(1u << (rng() %
									 8));
					break;
				case 1: /* a random byte */
					if (len)
						frame[at] = (uint8_t)rng();
					break;
				case 2: /* truncate */
					len = at;
					break;
				case 3: /* append garbage */
					if (len < sizeof(frame) - 8) {
						for (int j = 0; j < 8; j++)
							frame[len++] =
								(uint8_t)rng();
					}
					break;
				case 4: /* a huge or small length */
					if (len >= 4 && at <= len - 4) {
						uint32_t v = (uint32_t)rng();

						if (rng() % 2)
							v %= 64;
						memcpy(frame + at, &v, 4);
					}
					break;
				}
			}
		}
		decoded += check_frame(frame, len);
	}
	fprintf(stderr, "test_wire: %zu of %zu fuzzed frames decoded\n",
		decoded, iters);
	/* The mutations must reach the paths past the first check. */
	assert_true(decoded > iters / 50);
	for (size_t i = 0; i < nseeds; i++)
		wire_buf_release(&seeds[i]);
}

/* Format 2: a put with where its content is, and the refusals. */
static void test_put_content_ref(void **state)
{
	struct wk_op *op = calloc(1, sizeof(*op)),
		     *got = calloc(1, sizeof(*op));
	struct wire_content_ref ref = {WIRE_CONTENT_RECIPE, {{0}}}, back;
	struct wire_buf b;

	wire_buf_init(&b, 0, WIRE_PAYLOAD_MAX);
	op->kind = WK_OP_PUT;
	op->node = (struct wk_id){3, 4};
	op->size = 1 << 20;
	op->hash.b[0] = 0x11;
	op->base = WK_ID_NONE;
	ref.recipe.b[15] = 0x99;
	assert_int_equal(wire_put_encode(&b, op, &ref), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_CONTENT);
	assert_int_equal(
		wire_op_decode_ref(wire_buf_data(&b), b.len, 4, 5, got, &back),
		0);
	assert_int_equal(back.how, WIRE_CONTENT_RECIPE);
	assert_int_equal(back.recipe.b[15], 0x99);
	assert_int_equal(got->size, 1 << 20);
	assert_int_equal(got->hash.b[0], 0x11);
	/* The plain decoder takes it too. */
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 4, 5, got),
			 0);
	/* Trailing or missing bytes, an unknown how. */
	wire_buf_append(&b, "x", 1);
	assert_int_equal(
		wire_op_decode_ref(wire_buf_data(&b), b.len, 4, 5, got, &back),
		-EBADMSG);
	assert_int_equal(wire_op_decode_ref(wire_buf_data(&b), b.len - 2, 4, 5,
					    got, &back),
			 -EBADMSG);
	wire_buf_data(&b)[b.len - 18] = 7;
	assert_int_equal(wire_op_decode_ref(wire_buf_data(&b), b.len - 1, 4, 5,
					    got, &back),
			 -EBADMSG);
	/* A recipe name with another how is refused both ways. */
	wire_buf_reset(&b);
	ref.how = WIRE_CONTENT_NONE;
	assert_int_equal(wire_put_encode(&b, op, &ref), -EINVAL);
	memset(&ref.recipe, 0, sizeof(ref.recipe));
	assert_int_equal(wire_put_encode(&b, op, &ref), 0);
	assert_int_equal(
		wire_op_decode_ref(wire_buf_data(&b), b.len, 4, 5, got, &back),
		0);
	assert_int_equal(back.how, WIRE_CONTENT_NONE);
	/* Format 1 decodes as WHOLE; format 2 is for puts only. */
	wire_buf_reset(&b);
	assert_int_equal(wire_op_encode(&b, op), 0);
	assert_int_equal(
		wire_op_decode_ref(wire_buf_data(&b), b.len, 4, 5, got, &back),
		0);
	assert_int_equal(back.how, WIRE_CONTENT_WHOLE);
	op->kind = WK_OP_SETATTR;
	assert_int_equal(wire_put_encode(&b, op, &ref), -EINVAL);
	wire_buf_release(&b);
	free(op);
	free(got);
}

/* Builds a format-3 setattr payload whose device field is len, then the
 * bytes given, and decodes it. */
static int decode_with_device(unsigned len, const char *dev, size_t n)
{
	struct wire_buf b;
	struct wk_op op = base_op(WK_OP_SETATTR), *out = malloc(sizeof(*out));
	uint8_t l = (uint8_t)len, *copy;
	int rc;

	op.attrs = WK_ATTR_MODE;
	op.mode = 0644;
	wire_buf_init(&b, 0, 1 << 20);
	assert_int_equal(wire_op_encode(&b, &op), 0);
	wire_buf_data(&b)[0] = WIRE_OP_FORMAT_DEVICE;
	wire_buf_append(&b, &l, 1);
	wire_buf_append(&b, dev, n);
	/* A copy of exactly its length, for ASan. */
	copy = malloc(wire_buf_len(&b));
	memcpy(copy, wire_buf_data(&b), wire_buf_len(&b));
	rc = wire_op_decode(copy, wire_buf_len(&b), 1, 1, out);
	if (rc == 0)
		assert_int_equal(strlen(out->device), len);
	else
		assert_string_equal(out->device, "");
	free(copy);
	free(out);
	wire_buf_release(&b);
	return rc;
}

/* Formats 3 and 4: the device travels; hostile device names are refused
 * by the decoder, and the encoder refuses to make them. */
/* Version negotiation: the relay speaks 1 and 2; a folder that stored ops
 * of a version-2 session refuses version 1. */
/* A put names the node it was a hard link of: formats 5 and 6 carry it
 * after the device; every older format decodes as naming none. */
static void test_op_link(void **state)
{
	struct wk_op *op = calloc(1, sizeof(*op)),
		     *got = calloc(1, sizeof(*got));
	struct wire_content_ref ref = {WIRE_CONTENT_RECIPE, {{0}}}, back;
	struct wk_id link = {0x1122334455667788ULL, 0x99aabbccddeeff00ULL};
	struct wire_buf b;
	size_t plain;

	(void)state;
	ref.recipe.b[0] = 7;
	wire_buf_init(&b, 0, WIRE_PAYLOAD_MAX);
	*op = base_op(WK_OP_PUT);
	op->size = 12;
	op->hash.b[3] = 3;
	strcpy(op->device, "desk");
	assert_int_equal(wire_op_encode(&b, op), 0);
	plain = b.len;
	op->link = link;
	wire_buf_reset(&b);
	assert_int_equal(wire_op_encode(&b, op), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_LINK);
	assert_int_equal(b.len, plain + 16); /* the id, after the device */
	assert_memory_equal(wire_buf_data(&b) + plain - 4, "desk", 4);
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, op->id.actor,
					op->id.hlc, got),
			 0);
	assert_memory_equal(got, op, sizeof(*op));
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(
			wire_op_decode(wire_buf_data(&b), n, 1, 1, got),
			-EBADMSG);
	/* With the content reference: format 6. */
	wire_buf_reset(&b);
	assert_int_equal(wire_put_encode(&b, op, &ref), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_CONTENT_LINK);
	assert_int_equal(wire_op_decode_ref(wire_buf_data(&b), b.len,
					    op->id.actor, op->id.hlc, got,
					    &back),
			 0);
	assert_memory_equal(got, op, sizeof(*op));
	assert_int_equal(back.how, WIRE_CONTENT_RECIPE);
	assert_int_equal(back.recipe.b[0], 7);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(
			wire_op_decode(wire_buf_data(&b), n, 1, 1, got),
			-EBADMSG);
	/* Claimed by a format that has none: trailing bytes. */
	wire_buf_data(&b)[0] = WIRE_OP_FORMAT_CONTENT_DEVICE;
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 1, 1, got),
			 -EBADMSG);

	/* Older formats (and an op without a link) decode as none. */
	for (int f = 0; f < 4; f++) {
		*op = base_op(WK_OP_PUT);
		op->link = f < 2 ? link : WK_ID_NONE;
		if (f % 2)
			strcpy(op->device, "desk");
		wire_buf_reset(&b);
		assert_int_equal(f < 2 ? wire_put_encode(&b, op, &ref)
				       : wire_op_encode(&b, op),
				 0);
		/* No device: a wkfs that knew no links; the link stays home. */
		if (f == 0)
			assert_int_equal(wire_buf_data(&b)[0],
					 WIRE_OP_FORMAT_CONTENT);
		assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 1, 1,
						got),
				 0);
		assert_true(wk_id_eq(got->link, f == 1 ? link : WK_ID_NONE));
	}
	/* An old format-3 payload, byte for byte, names none. */
	*op = base_op(WK_OP_PUT);
	strcpy(op->device, "desk");
	wire_buf_reset(&b);
	assert_int_equal(wire_op_encode(&b, op), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_DEVICE);
	memset(got, 0xff, sizeof(*got));
	got->link = link;
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 1, 1, got),
			 0);
	assert_true(wk_id_eq(got->link, WK_ID_NONE));

	/* Hostile links: none, the root, the put's own node; on another
	 * kind. */
	{
		struct wk_id bad[] = {WK_ID_NONE, WK_ID_ROOT, {0x1000, 0x99}};

		for (size_t i = 0; i < 3; i++) {
			*op = base_op(WK_OP_PUT);
			strcpy(op->device, "desk");
			wire_buf_reset(&b);
			assert_int_equal(wire_op_encode(&b, op), 0);
			wire_buf_data(&b)[0] = WIRE_OP_FORMAT_LINK;
			assert_int_equal(wire_buf_append(&b, &bad[i].hlc, 8), 0);
			assert_int_equal(
				wire_buf_append(&b, &bad[i].actor, 8), 0);
			assert_int_equal(wire_op_decode(wire_buf_data(&b),
							b.len, 1, 1, got),
					 -EBADMSG);
		}
	}
	*op = base_op(WK_OP_SETATTR);
	op->attrs = WK_ATTR_MODE;
	op->link = link; /* ignored: only puts carry one */
	strcpy(op->device, "desk");
	wire_buf_reset(&b);
	assert_int_equal(wire_op_encode(&b, op), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_DEVICE);
	assert_int_equal(wire_buf_append(&b, &link, 16), 0);
	wire_buf_data(&b)[0] = WIRE_OP_FORMAT_LINK;
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 1, 1, got),
			 -EBADMSG);
	wire_buf_release(&b);
	free(op);
	free(got);
}

static void test_version_accept(void **state)
{
	(void)state;
	assert_int_equal(WIRE_VERSION, 2);
	assert_int_equal(WIRE_VERSION_MIN, 1);
	assert_int_equal(wire_version_accept(1, 1), WIRE_VERSION_OK);
	assert_int_equal(wire_version_accept(2, 1), WIRE_VERSION_OK);
	assert_int_equal(wire_version_accept(2, 2), WIRE_VERSION_OK);
	assert_int_equal(wire_version_accept(1, 2), WIRE_VERSION_OLD);
	assert_int_equal(wire_version_accept(0, 1), WIRE_VERSION_UNKNOWN);
	assert_int_equal(wire_version_accept(3, 1), WIRE_VERSION_UNKNOWN);
	assert_int_equal(wire_version_accept(3, 3), WIRE_VERSION_UNKNOWN);
	assert_int_equal(wire_version_accept(UINT32_MAX, 2),
			 WIRE_VERSION_UNKNOWN);
}

static void test_op_device(void **state)
{
	static const char *const bad[] = {
		"my laptop",   "-x",   "x-",  "x.",   ".x",   "a/b",
		"caf\xc3\xa9", "a\tb", "a:b", "\x7f", "a\nb",
	};
	char max[WK_DEVICE_MAX + 2];
	struct wk_op *op = calloc(1, sizeof(*op)),
		     *got = calloc(1, sizeof(*got));
	struct wire_content_ref ref = {WIRE_CONTENT_WHOLE, {{0}}}, back;
	struct wire_buf b;

	/* Round trips, and the format byte says what follows. */
	wire_buf_init(&b, 0, WIRE_PAYLOAD_MAX);
	*op = base_op(WK_OP_PUT);
	strcpy(op->device, "desk");
	assert_int_equal(wire_op_encode(&b, op), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_DEVICE);
	/* The device is last: u8 length, then the bytes. */
	assert_int_equal(wire_buf_data(&b)[b.len - 5], 4);
	assert_memory_equal(wire_buf_data(&b) + b.len - 4, "desk", 4);
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, op->id.actor,
					op->id.hlc, got),
			 0);
	assert_memory_equal(got, op, sizeof(*op));
	wire_buf_reset(&b);
	assert_int_equal(wire_put_encode(&b, op, &ref), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_CONTENT_DEVICE);
	assert_int_equal(wire_op_decode_ref(wire_buf_data(&b), b.len,
					    op->id.actor, op->id.hlc, got,
					    &back),
			 0);
	assert_memory_equal(got, op, sizeof(*op));
	assert_int_equal(back.how, WIRE_CONTENT_WHOLE);
	/* Cut anywhere, it is refused. */
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(
			wire_op_decode(wire_buf_data(&b), n, 1, 1, got),
			-EBADMSG);
	/* Without a device: formats 1 and 2, as before. */
	op->device[0] = '\0';
	wire_buf_reset(&b);
	assert_int_equal(wire_put_encode(&b, op, &ref), 0);
	assert_int_equal(wire_buf_data(&b)[0], WIRE_OP_FORMAT_CONTENT);
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 1, 1, got),
			 0);
	assert_string_equal(got->device, "");

	/* Format 4 is for puts only (5 and 6 too); format 7 does not
	 * exist. */
	*op = base_op(WK_OP_REMOVE);
	strcpy(op->name, "x");
	strcpy(op->device, "desk");
	wire_buf_reset(&b);
	assert_int_equal(wire_op_encode(&b, op), 0);
	wire_buf_data(&b)[0] = WIRE_OP_FORMAT_CONTENT_DEVICE;
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 1, 1, got),
			 -EBADMSG);
	for (uint8_t f = WIRE_OP_FORMAT_LINK; f <= 7; f++) {
		wire_buf_data(&b)[0] = f;
		assert_int_equal(
			wire_op_decode(wire_buf_data(&b), b.len, 1, 1, got),
			-EBADMSG);
	}
	/* Format 1 with a device behind it: trailing bytes. */
	wire_buf_data(&b)[0] = WIRE_OP_FORMAT;
	assert_int_equal(wire_op_decode(wire_buf_data(&b), b.len, 1, 1, got),
			 -EBADMSG);

	/* Hostile device fields. */
	memset(max, 'm', sizeof(max));
	assert_int_equal(decode_with_device(4, "desk", 4), 0);
	assert_int_equal(decode_with_device(WK_DEVICE_MAX, max, WK_DEVICE_MAX),
			 0);
	assert_int_equal(decode_with_device(0, "", 0), -EBADMSG);
	assert_int_equal(
		decode_with_device(WK_DEVICE_MAX + 1, max, WK_DEVICE_MAX + 1),
		-EBADMSG);
	assert_int_equal(decode_with_device(255, max, WK_DEVICE_MAX + 1),
			 -EBADMSG);
	assert_int_equal(decode_with_device(5, "desk", 4), -EBADMSG);
	assert_int_equal(decode_with_device(3, "desk", 4), -EBADMSG);
	assert_int_equal(decode_with_device(3, "a\0b", 3), -EBADMSG);
	assert_int_equal(decode_with_device(1, "\0", 1), -EBADMSG);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(decode_with_device((unsigned)strlen(bad[i]),
						    bad[i], strlen(bad[i])),
				 -EBADMSG);
		*op = base_op(WK_OP_PUT);
		strcpy(op->device, bad[i]);
		wire_buf_reset(&b);
		assert_int_equal(wire_op_encode(&b, op), -EINVAL);
		assert_int_equal(wire_put_encode(&b, op, &ref), -EINVAL);
		assert_int_equal(wire_buf_len(&b), 0);
	}
	/* An unterminated device field (33 bytes, no NUL) is not encoded. */
	*op = base_op(WK_OP_PUT);
	memset(op->device, 'x', sizeof(op->device));
	assert_int_equal(wire_op_encode(&b, op), -EINVAL);
	wire_buf_release(&b);
	free(op);
	free(got);
}

/* ---- what a relay must hold for a put ---- */

struct names_seen {
	struct wk_hash v[8];
	size_t n;
	size_t stop_at; /* return 1 at this call (0: never) */
};

static int note_name(void *arg, const struct wk_hash *name)
{
	struct names_seen *ns = arg;

	if (ns->n < 8)
		ns->v[ns->n] = *name;
	ns->n++;
	return ns->n == ns->stop_at ? 1 : 0;
}

/* Runs wire_rchunk_names() on a heap copy of exactly n bytes. */
static int rchunk_names_copy(const uint8_t *p, size_t n, struct names_seen *ns)
{
	uint8_t *copy = malloc(n ? n : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, p, n);
	rc = wire_rchunk_names(copy, n, note_name, ns);
	free(copy);
	return rc;
}

static void test_rchunk_names(void **state)
{
	struct recipe base = RECIPE_INIT, r = RECIPE_INIT;
	struct wk_hash h[4], base_content, base_chunk;
	struct names_seen ns = {0};
	struct bbuf plain, delta;

	for (int i = 0; i < 4; i++)
		memset(h[i].b, 0x10 + i, sizeof(h[i].b));
	memset(base_content.b, 0xc0, 16);
	memset(base_chunk.b, 0xcc, 16);
	/* base: h0 h1 h2; new: h0 h1 h3 h2, so one COPY, one ADD, one COPY */
	for (int i = 0; i < 3; i++)
		assert_int_equal(recipe_push(&base, &h[i], 1000), 0);
	assert_int_equal(recipe_push(&r, &h[0], 1000), 0);
	assert_int_equal(recipe_push(&r, &h[1], 1000), 0);
	assert_int_equal(recipe_push(&r, &h[3], 500), 0);
	assert_int_equal(recipe_push(&r, &h[2], 1000), 0);

	/* plain: every entry */
	bbuf_init(&plain, WIRE_CHUNK_MAX);
	assert_int_equal(recipe_encode(&r, &plain), 0);
	assert_int_equal(rchunk_names_copy(plain.p, plain.len, &ns), 0);
	assert_int_equal(ns.n, 4);
	assert_memory_equal(&ns.v[2], &h[3], 16);

	/* delta recipe chunk: the base recipe chunk, then the ADD only */
	bbuf_init(&delta, WIRE_CHUNK_MAX);
	bbuf_put_u8(&delta, WIRE_RCHUNK_DELTA);
	bbuf_put(&delta, base_content.b, 16);
	bbuf_put(&delta, base_chunk.b, 16);
	assert_int_equal(recipe_delta_encode(&base, &r, &delta), 0);
	ns = (struct names_seen){0};
	assert_int_equal(rchunk_names_copy(delta.p, delta.len, &ns), 0);
	assert_int_equal(ns.n, 2);
	assert_memory_equal(&ns.v[0], &base_chunk, 16);
	assert_memory_equal(&ns.v[1], &h[3], 16);
	/* fn's first nonzero return ends the walk */
	ns = (struct names_seen){.stop_at = 1};
	assert_int_equal(rchunk_names_copy(delta.p, delta.len, &ns), 1);
	assert_int_equal(ns.n, 1);

	/* every cut of either is refused, never read past */
	for (size_t n = 0; n < plain.len; n++) {
		ns = (struct names_seen){0};
		assert_int_equal(rchunk_names_copy(plain.p, n, &ns), -EBADMSG);
	}
	for (size_t n = 0; n < delta.len; n++) {
		ns = (struct names_seen){0};
		assert_int_equal(rchunk_names_copy(delta.p, n, &ns), -EBADMSG);
	}
	/* a delta without the header, a header over a plain recipe, a
	 * trailing byte, an unknown tag */
	ns = (struct names_seen){0};
	assert_int_equal(rchunk_names_copy(delta.p + WIRE_RCHUNK_HEAD_LEN,
					   delta.len - WIRE_RCHUNK_HEAD_LEN,
					   &ns),
			 -EBADMSG);
	delta.len = WIRE_RCHUNK_HEAD_LEN;
	bbuf_put(&delta, plain.p, plain.len);
	assert_int_equal(rchunk_names_copy(delta.p, delta.len, &ns), -EBADMSG);
	bbuf_put_u8(&plain, 0);
	assert_int_equal(rchunk_names_copy(plain.p, plain.len, &ns), -EBADMSG);
	plain.p[0] = 0x07;
	assert_int_equal(rchunk_names_copy(plain.p, plain.len, &ns), -EBADMSG);

	bbuf_release(&plain);
	bbuf_release(&delta);
	recipe_release(&base);
	recipe_release(&r);
}

static void test_missing_put(void **state)
{
	struct wk_id id = {0x5, 0x7}, got;
	char ids[WK_ID_STRLEN], reason[WIRE_REASON_MAX + 1];

	snprintf(reason, sizeof(reason),
		 WIRE_MISSING_PREFIX "%s names chunk 00, which ...",
		 wk_id_str(id, ids));
	assert_int_equal(wire_missing_put(reason, &got), 0);
	assert_true(wk_id_eq(got, id));
	id = (struct wk_id){UINT64_MAX, 0xabcdef};
	snprintf(reason, sizeof(reason), WIRE_MISSING_PREFIX "%s",
		 wk_id_str(id, ids));
	assert_int_equal(wire_missing_put(reason, &got), 0);
	assert_true(wk_id_eq(got, id));

	assert_int_equal(wire_missing_put("", &got), -EINVAL);
	assert_int_equal(wire_missing_put("put ", &got), -EINVAL);
	assert_int_equal(
		wire_missing_put("put 0000000000000005-000000000000000", &got),
		-EINVAL);
	assert_int_equal(
		wire_missing_put("put 0000000000000005-00000000000000077",
				 &got),
		-EINVAL);
	assert_int_equal(
		wire_missing_put("put 0000000000000005+0000000000000007", &got),
		-EINVAL);
	assert_int_equal(
		wire_missing_put("put 000000000000000X-0000000000000007", &got),
		-EINVAL);
	assert_int_equal(
		wire_missing_put("got 0000000000000005-0000000000000007", &got),
		-EINVAL);
	assert_string_equal(wire_err_name(WIRE_ERR_MISSING), "missing");
	assert_string_equal(wire_err_name(WIRE_ERR_ACTOR), "actor");
	assert_string_equal(wire_err_name(WIRE_ERR_LIMIT), "limit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_round_trip_small),
		cmocka_unit_test(test_round_trip_batches),
		cmocka_unit_test(test_batch_limits),
		cmocka_unit_test(test_hostile_frames),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_op_round_trip),
		cmocka_unit_test(test_op_hostile),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_put_content_ref),
		cmocka_unit_test(test_op_device),
		cmocka_unit_test(test_op_link),
		cmocka_unit_test(test_version_accept),
		cmocka_unit_test(test_rchunk_names),
		cmocka_unit_test(test_missing_put),
	};

	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	free(rt_frame);
	return rc;
}
