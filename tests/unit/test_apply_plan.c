/*
 * test_apply_plan.c - what a round feeds and what it holds back
 * (lib/apply_plan.h): one test per case, each with the decision for every
 * op.  Content is a byte (tree_testlib's tl_put); a test says which
 * contents are "here" and which files are open for writing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "apply_plan.h"
#include "tree.h"
#include "tree_testlib.h"

#define T0   UINT64_C(1700000000000)
#define A    1
#define B    2
#define ROOT WK_ID_NONE

#define ID(ms, actor) tl_id(T0 + (ms), 0, (actor))

struct world {
	bool here[256];	      /* content byte -> at hand */
	struct wk_id busy[4]; /* nodes open for writing */
	size_t nbusy;
};

static bool content_here(void *arg, const struct plan_item *it)
{
	struct world *w = arg;

	return w->here[it->op.size & 0xff];
}

static bool busy(void *arg, const struct wk_op *op)
{
	struct world *w = arg;

	for (size_t i = 0; i < w->nbusy; i++)
		if (wk_id_eq(w->busy[i], op->node))
			return true;
	return false;
}

static void decide(struct plan_item *v, size_t n, struct world *w,
		   const struct tree *t)
{
	struct plan_env env = {.tree = t,
			       .arg = w,
			       .content_here = content_here,
			       .busy = busy};

	for (size_t i = 0; i < n; i++)
		v[i].seq = (int64_t)i + 1;
	plan_decide(v, n, &env);
}

/* A put whose content is here is fed, and so is everything structural. */
static void test_ready_ops_are_fed(void **state)
{
	struct world w = {.here = {[7] = true}};
	struct plan_item v[4];
	struct wk_id d = ID(1, A), f = ID(2, A);

	(void)state;
	tl_mkdir(&v[0].op, d, ROOT, "d");
	tl_create(&v[1].op, f, d, "f");
	tl_put(&v[2].op, ID(3, A), f, WK_ID_NONE, 7);
	tl_chmod(&v[3].op, ID(4, A), f, 0600);
	decide(v, 4, &w, NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(v[i].hold, PLAN_FEED);
}

/* The reproduction of issue 12: create, a put shipped without content
 * (the file was gone), a remove of what that put wrote.  Nothing waits,
 * and nothing is left: the remove retires the put, the put its create. */
static void test_removed_put_without_content_is_fed(void **state)
{
	struct world w = {0};
	struct plan_item v[3];
	struct wk_id f = ID(1, B), p = ID(2, B);

	(void)state;
	tl_create(&v[0].op, f, ROOT, "tmp.txt");
	tl_put(&v[1].op, p, f, WK_ID_NONE, 6);
	tl_remove(&v[2].op, ID(3, B), f, p);
	decide(v, 3, &w, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(v[i].hold, PLAN_FEED);
}

/* A put whose content never came, and nothing supersedes it: held; the
 * create it fills is held too (no empty placeholder), an op of another
 * file goes on. */
static void test_missing_content_holds_put_and_its_create(void **state)
{
	struct world w = {.here = {[9] = true}};
	struct plan_item v[4];
	struct wk_id f = ID(1, B), g = ID(3, B);

	(void)state;
	tl_create(&v[0].op, f, ROOT, "new.txt");
	tl_put(&v[1].op, ID(2, B), f, f, 6);
	tl_create(&v[2].op, g, ROOT, "after.txt");
	tl_put(&v[3].op, ID(4, B), g, WK_ID_NONE, 9);
	decide(v, 4, &w, NULL);
	assert_int_equal(v[0].hold, PLAN_HOLD_CREATE);
	assert_int_equal(v[1].hold, PLAN_HOLD_CONTENT);
	assert_int_equal(v[2].hold, PLAN_FEED);
	assert_int_equal(v[3].hold, PLAN_FEED);
	assert_true(plan_hold_needs_attention(v[0].hold));
	assert_true(plan_hold_needs_attention(v[1].hold));
	assert_string_not_equal(plan_hold_text(v[1].hold), "");
}

/* An update whose content never came: only the put waits; the file (its
 * create long applied, so not in the plan) keeps its content. */
static void test_missing_update_holds_only_the_put(void **state)
{
	struct world w = {0};
	struct plan_item v[2];
	struct wk_id f = ID(1, B);

	(void)state;
	tl_put(&v[0].op, ID(5, B), f, ID(2, B), 6);
	tl_chmod(&v[1].op, ID(6, B), f, 0640);
	decide(v, 2, &w, NULL);
	assert_int_equal(v[0].hold, PLAN_HOLD_CONTENT);
	assert_int_equal(v[1].hold, PLAN_FEED);
}

/* A chain of puts without content ended by one with content: all fed,
 * each retired by the next. */
static void test_chain_of_superseded_puts_is_fed(void **state)
{
	struct world w = {.here = {[3] = true}};
	struct plan_item v[4];
	struct wk_id f = ID(1, A);

	(void)state;
	tl_create(&v[0].op, f, ROOT, "f");
	/* Out of order on purpose: the plan does not depend on it. */
	tl_put(&v[1].op, ID(4, A), f, ID(3, A), 3);
	tl_put(&v[2].op, ID(3, A), f, ID(2, A), 2);
	tl_put(&v[3].op, ID(2, A), f, WK_ID_NONE, 1);
	decide(v, 4, &w, NULL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(v[i].hold, PLAN_FEED);
}

/* A put without content that a concurrent put did not see: it stays held
 * (it would be a head: a conflict copy needing its content), but the
 * create is fed, since the other put gives the file content. */
static void test_concurrent_put_with_content_frees_the_create(void **state)
{
	struct world w = {.here = {[4] = true}};
	struct plan_item v[3];
	struct wk_id f = ID(1, A);

	(void)state;
	tl_create(&v[0].op, f, ROOT, "f");
	tl_put(&v[1].op, ID(2, A), f, WK_ID_NONE, 5);
	tl_put(&v[2].op, ID(2, B), f, WK_ID_NONE, 4);
	decide(v, 3, &w, NULL);
	assert_int_equal(v[0].hold, PLAN_FEED);
	assert_int_equal(v[1].hold, PLAN_HOLD_CONTENT);
	assert_int_equal(v[2].hold, PLAN_FEED);
}

/* A retirement the tree already knows (a local put fed earlier, or a
 * remote op of an earlier round) frees a held put. */
static void test_retired_in_the_tree_is_fed(void **state)
{
	struct world w = {0};
	struct tree *t = tree_new();
	struct plan_item v[1];
	struct wk_op ops[2];
	struct wk_id f = ID(1, A), p = ID(2, B);

	(void)state;
	tl_create(&ops[0], f, ROOT, "f");
	tl_put(&ops[1], ID(3, A), f, p, 8);
	tree_apply(t, ops, 2, NULL);
	tl_put(&v[0].op, p, f, WK_ID_NONE, 6);
	decide(v, 1, &w, t);
	assert_int_equal(v[0].hold, PLAN_FEED);
	assert_true(tree_version_retired(t, f, p));
	assert_false(tree_version_retired(t, f, ID(3, A)));
	tree_free(t);
}

/* A file open for writing: its put, remove and move wait for the close
 * (not a problem to show), so the writer's name still holds what the
 * writer read; a chmod does not wait. */
static void test_busy_file_holds_put_remove_and_move(void **state)
{
	struct world w = {.here = {[2] = true}, .nbusy = 1};
	struct plan_item v[4];
	struct wk_id f = ID(1, A);

	(void)state;
	w.busy[0] = f;
	tl_put(&v[0].op, ID(5, B), f, ID(2, A), 2);
	tl_remove(&v[1].op, ID(6, B), f, ID(5, B));
	tl_move(&v[2].op, ID(7, B), f, ROOT, "g");
	tl_chmod(&v[3].op, ID(8, B), f, 0600);
	decide(v, 4, &w, NULL);
	assert_int_equal(v[0].hold, PLAN_HOLD_WRITER);
	assert_int_equal(v[1].hold, PLAN_HOLD_WRITER);
	assert_int_equal(v[2].hold, PLAN_HOLD_WRITER);
	assert_int_equal(v[3].hold, PLAN_FEED);
	assert_false(plan_hold_needs_attention(v[0].hold));
}

/* A held remove does not free the put it names: it is not fed. */
static void test_held_remove_retires_nothing(void **state)
{
	struct world w = {.nbusy = 1};
	struct plan_item v[2];
	struct wk_id f = ID(1, A), p = ID(2, B);

	(void)state;
	w.busy[0] = f;
	tl_put(&v[0].op, p, f, ID(1, A), 6);
	tl_remove(&v[1].op, ID(3, B), f, p);
	decide(v, 2, &w, NULL);
	assert_int_equal(v[0].hold, PLAN_HOLD_WRITER);
	assert_int_equal(v[1].hold, PLAN_HOLD_WRITER);
}

/* Empty contents never wait: there is nothing to fetch. */
static void test_empty_put_is_fed(void **state)
{
	struct world w = {0};
	struct plan_item v[1];

	(void)state;
	tl_put(&v[0].op, ID(2, A), ID(1, A), WK_ID_NONE, 0);
	decide(v, 1, &w, NULL);
	assert_int_equal(v[0].hold, PLAN_FEED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_ops_are_fed),
		cmocka_unit_test(test_removed_put_without_content_is_fed),
		cmocka_unit_test(test_missing_content_holds_put_and_its_create),
		cmocka_unit_test(test_missing_update_holds_only_the_put),
		cmocka_unit_test(test_chain_of_superseded_puts_is_fed),
		cmocka_unit_test(
			test_concurrent_put_with_content_frees_the_create),
		cmocka_unit_test(test_retired_in_the_tree_is_fed),
		cmocka_unit_test(test_busy_file_holds_put_remove_and_move),
		cmocka_unit_test(test_held_remove_retires_nothing),
		cmocka_unit_test(test_empty_put_is_fed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
