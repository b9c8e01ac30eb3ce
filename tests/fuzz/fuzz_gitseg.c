/*
 * fuzz_gitseg.c - libFuzzer harness for the git segment reader
 * (syncd/syncd_gitseg.c): a segment file as a git remote could hold it,
 * its records walked and each payload decoded as syncd_gitpull does.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "syncd_git.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	struct wire_content_ref ref;
	struct gitseg_iter it;
	const uint8_t *rec;
	struct wk_op op;
	uint64_t hlc;
	uint32_t len;
	int rc;

	if (gitseg_iter_init(&it, p, n) != 0)
		return 0;
	while ((rc = gitseg_next(&it, &hlc, &rec, &len)) == 1) {
		/* Records lie within the segment. */
		assert(rec >= p && rec + len <= p + n);
		wire_op_decode_ref(rec, len, it.actor, hlc, &op, &ref);
	}
	assert(rc == 0 || rc == -EBADMSG);
	return 0;
}
