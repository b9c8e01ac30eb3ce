/*
 * fuzz_wire.c - libFuzzer harness for the wire decoder (lib/wire.c): one
 * frame as a peer could send it.  A frame that decodes is walked op by op
 * (each payload through wire_op_decode_ref, as relay and daemon do; an
 * ERROR's reason through wire_missing_put) and encoded again, which must
 * succeed and decode to the same type.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

static void walk_ops(const struct wire_msg *m)
{
	struct wire_content_ref ref;
	struct wire_iter it;
	struct wire_opent e;
	struct wk_op op;
	uint32_t seen = 0;

	wire_iter_init(&it, m);
	while (wire_iter_next(&it, &e)) {
		wire_op_decode_ref(e.payload, e.len, e.actor, e.hlc, &op, &ref);
		seen++;
	}
	assert(seen == m->batch.count);
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	struct wire_content_ref ref;
	struct wire_msg m, again;
	struct wire_buf b;
	struct wk_op op;

	/* The bytes as an op payload too: the relay stores them opaque. */
	wire_op_decode_ref(p, n, 1, 1, &op, &ref);
	if (wire_decode(p, n, &m) != 0)
		return 0;
	if (m.type == WIRE_OPS || m.type == WIRE_PUSH)
		walk_ops(&m);
	if (m.type == WIRE_ERROR) {
		struct wk_id put;

		/* wkfs-syncd reads the put an ERROR `missing` names. */
		wire_missing_put(m.error.reason, &put);
	}
	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	assert(wire_encode(&b, &m) == 0);
	assert(wire_decode(wire_buf_data(&b), wire_buf_len(&b), &again) == 0);
	assert(again.type == m.type);
	wire_buf_release(&b);
	return 0;
}
