/*
 * test_gitseg.c - the segment files of git remotes (syncd/syncd_gitseg.c)
 * with the op payloads they carry: puts that name a hard link, and the
 * payloads of older wkfs versions that name none, come back as written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "op.h"
#include "syncd_git.h"
#include "wire.h"

static struct wk_op put_op(uint64_t hlc, const char *device, struct wk_id link)
{
	struct wk_op op;

	memset(&op, 0, sizeof(op));
	op.id = (struct wk_id){hlc, 0x42};
	op.kind = WK_OP_PUT;
	op.node = (struct wk_id){hlc - 1, 0x42};
	op.base = WK_ID_NONE;
	op.link = link;
	op.size = hlc;
	op.hash.b[0] = (uint8_t)hlc;
	strcpy(op.device, device);
	return op;
}

static void test_segment_round_trip_with_and_without_links(void **state)
{
	struct wk_id link = {0x777, 0x42};
	struct wire_content_ref ref = {WIRE_CONTENT_WHOLE, {{0}}}, back;
	struct wk_op ops[4], got;
	struct wire_buf seg, p;
	struct gitseg_iter it;
	const uint8_t *pl;
	uint32_t len;
	uint64_t hlc;
	size_t k = 0;

	(void)state;
	ops[0] = put_op(10, "desk", link);	  /* format 6 */
	ops[1] = put_op(11, "desk", WK_ID_NONE); /* format 4 */
	ops[2] = put_op(12, "", WK_ID_NONE);	  /* format 2 (old wkfs) */
	ops[3] = put_op(13, "desk", link);
	ops[3].link = (struct wk_id){0x778, 0x43};
	wire_buf_init(&seg, 0, GITSEG_MAX);
	wire_buf_init(&p, 0, WIRE_PAYLOAD_MAX);
	gitseg_begin(&seg, 0x42);
	for (size_t i = 0; i < 4; i++) {
		wire_buf_reset(&p);
		assert_int_equal(wire_put_encode(&p, &ops[i], &ref), 0);
		assert_int_equal(gitseg_add(&seg, ops[i].id.hlc,
					    wire_buf_data(&p), wire_buf_len(&p)),
				 0);
	}
	assert_int_equal(gitseg_iter_init(&it, wire_buf_data(&seg),
					  wire_buf_len(&seg)),
			 0);
	assert_int_equal(it.actor, 0x42);
	while (gitseg_next(&it, &hlc, &pl, &len) == 1) {
		assert_int_equal(wire_op_decode_ref(pl, len, it.actor, hlc,
						    &got, &back),
				 0);
		assert_memory_equal(&got, &ops[k], sizeof(got));
		k++;
	}
	assert_int_equal(k, 4);
	/* A segment cut inside the last link is refused, not misread. */
	assert_int_equal(gitseg_iter_init(&it, wire_buf_data(&seg),
					  wire_buf_len(&seg) - 3),
			 0);
	for (k = 0; k < 3; k++)
		assert_int_equal(gitseg_next(&it, &hlc, &pl, &len), 1);
	assert_int_equal(gitseg_next(&it, &hlc, &pl, &len), -EBADMSG);
	wire_buf_release(&p);
	wire_buf_release(&seg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_segment_round_trip_with_and_without_links),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
