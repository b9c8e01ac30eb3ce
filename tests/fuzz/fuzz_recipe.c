/*
 * fuzz_recipe.c - libFuzzer harness for the recipe decoder (lib/recipe.c)
 * and the recipe chunks a relay checks (wire_rchunk_names).  The input is
 * a recipe chunk as a remote would ship it; it is decoded plain, as a
 * delta against a small fixed base, and walked for its names.  A plain
 * recipe that decodes encodes back to the same bytes.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytebuf.h"
#include "recipe.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

static int count_name(void *arg, const struct wk_hash *name)
{
	(void)name;
	++*(size_t *)arg;
	return 0;
}

/* A base of four chunks, for deltas. */
static void make_base(struct recipe *base)
{
	recipe_init(base);
	for (uint8_t i = 0; i < 4; i++) {
		struct wk_hash h;

		memset(&h, i + 1, sizeof(h));
		recipe_push(base, &h, 1000u * (i + 1));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	struct recipe base, out;
	size_t names = 0;

	make_base(&base);
	if (recipe_decode(NULL, p, n, &out) == 0) {
		struct bbuf enc;

		bbuf_init(&enc, SIZE_MAX);
		assert(recipe_encode(&out, &enc) == 0);
		assert(enc.len == n && memcmp(enc.p, p, n) == 0);
		bbuf_release(&enc);
		recipe_release(&out);
	}
	if (recipe_decode(&base, p, n, &out) == 0)
		recipe_release(&out);
	if (recipe_delta_apply(&base, p, n, &out) == 0)
		recipe_release(&out);
	recipe_names(p, n, count_name, &names);
	wire_rchunk_names(p, n, count_name, &names);
	recipe_release(&base);
	return 0;
}
