/*
 * test_history.c - the history queries (lib/history.h) on small oplogs
 * built by hand: each test states the exact lines a path's history must
 * have.  Every log is also given in reverse order, since ops reach the
 * database in any order and the queries must not care.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "history.h"
#include "tree_testlib.h"

#define T0     UINT64_C(1700000000000)
#define LAPTOP 1
#define DESK   2

#define ID(ms, actor) tl_id(T0 + (ms), 0, (actor))
#define ROOT	      WK_ID_ROOT
#define NONE	      WK_ID_NONE

/* "kind path[<-from] [size]" per line, for one assertion per history. */
static char *render(const struct history *h)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	for (size_t i = 0; i < h->n; i++) {
		const struct hist_entry *e = &h->v[i];

		assert_int_equal(e->number, i + 1);
		fprintf(f, "%s %s", hist_kind_name(e->kind), e->path);
		if (e->from)
			fprintf(f, "<-%s", e->from);
		if (e->has_content)
			fprintf(f, " %" PRIu64, e->size);
		fputc('\n', f);
	}
	fclose(f);
	return out;
}

static void reverse(struct wk_op *ops, size_t n)
{
	for (size_t i = 0; i < n / 2; i++) {
		struct wk_op t = ops[i];

		ops[i] = ops[n - 1 - i];
		ops[n - 1 - i] = t;
	}
}

typedef int (*query_fn)(const struct hist_op *ops, size_t n, const char *path,
			struct history *h);

/* The ops as the queries take them; free with hist_free(). */
static struct hist_op *hist_of(const struct wk_op *ops, size_t n)
{
	struct hist_op *h = calloc(n, sizeof(*h));

	assert_non_null(h);
	for (size_t i = 0; i < n; i++)
		history_op_set(&h[i], &ops[i]);
	return h;
}

static void hist_free(struct hist_op *h, size_t n)
{
	history_ops_release(h, n);
	free(h);
}

/* history_tree_at() of ops built as struct wk_op. */
static struct tree *tree_at(const struct wk_op *ops, size_t n,
			    struct wk_id upto)
{
	struct hist_op *h = hist_of(ops, n);
	struct tree *t = history_tree_at(h, n, upto);

	hist_free(h, n);
	return t;
}

/* query of ops, in the given order and reversed, renders as want. */
static void check_query(query_fn query, struct wk_op *ops, size_t n,
			const char *path, const char *want)
{
	for (int pass = 0; pass < 2; pass++) {
		struct hist_op *hops = hist_of(ops, n);
		struct history h;
		char *got;

		assert_int_equal(query(hops, n, path, &h), 0);
		hist_free(hops, n);
		got = render(&h);
		assert_string_equal(got, want);
		free(got);
		history_release(&h);
		reverse(ops, n);
	}
}

#define check_history(ops, n, path, want) \
	check_query(history_of_path, ops, n, path, want)
#define check_deleted(ops, n, path, want) \
	check_query(history_deleted, ops, n, path, want)

static void test_saves_then_move_are_followed(void **state)
{
	struct wk_op ops[5];
	struct wk_id f = ID(1, LAPTOP);

	(void)state;
	tl_create(&ops[0], f, ROOT, "a.txt");
	tl_put(&ops[1], ID(2, LAPTOP), f, NONE, 3);
	tl_put(&ops[2], ID(3, LAPTOP), f, ID(2, LAPTOP), 5);
	tl_move(&ops[3], ID(4, DESK), f, ROOT, "b.txt");
	tl_chmod(&ops[4], ID(5, DESK), f, 0600);
	/* By its new name and by its old one: the same node. */
	static const char want[] = "create a.txt 0\n"
				   "save a.txt 3\n"
				   "save a.txt 5\n"
				   "move b.txt<-a.txt 5\n"
				   "attr b.txt 5\n";
	check_history(ops, 5, "b.txt", want);
	check_history(ops, 5, "a.txt", want);
	check_history(ops, 5, "c.txt", "");
}

static void test_delete_keeps_what_it_removed(void **state)
{
	struct wk_op ops[4];
	struct wk_id f = ID(1, LAPTOP), g = ID(10, DESK);

	(void)state;
	tl_create(&ops[0], f, ROOT, "f");
	tl_put(&ops[1], ID(2, LAPTOP), f, NONE, 7);
	tl_remove(&ops[2], ID(3, DESK), f, ID(2, LAPTOP));
	/* A new file under the old name: its history joins the path's. */
	tl_create(&ops[3], g, ROOT, "f");
	check_history(ops, 4, "f",
		      "create f 0\n"
		      "save f 7\n"
		      "delete f 7\n"
		      "create f 0\n");
	/* f is there again, but the first node is gone: listed. */
	check_deleted(ops, 4, "", "delete f 7\n");
	check_deleted(ops, 4, "f", "delete f 7\n");
	check_deleted(ops, 4, "g", "");
}

/* Copies the path of the first conflict copy into arg. */
static int copy_path(const char *path, const struct tree_entry *e, void *arg)
{
	if (!e->conflict_copy)
		return 0;
	snprintf(arg, WK_NAME_MAX + 1, "%s", path);
	return 1;
}

static int count_copies(const char *path, const struct tree_entry *e, void *arg)
{
	(void)path;
	*(int *)arg += e->conflict_copy;
	return 0;
}

static void test_concurrent_saves_mark_the_loser(void **state)
{
	struct wk_op ops[4];
	struct wk_id f = ID(1, LAPTOP);
	char copy[WK_NAME_MAX + 1];
	struct tree *t;
	int ncopies;

	(void)state;
	tl_create(&ops[0], f, ROOT, "doc");
	tl_put(&ops[1], ID(2, LAPTOP), f, NONE, 4);
	/* Both saw version 2; the desk's is newer and keeps the name. */
	tl_put(&ops[2], ID(5, LAPTOP), f, ID(2, LAPTOP), 6);
	tl_put(&ops[3], ID(6, DESK), f, ID(2, LAPTOP), 9);
	check_history(ops, 4, "doc",
		      "create doc 0\n"
		      "save doc 4\n"
		      "conflict copy doc 6\n"
		      "save doc 9\n");
	/* The copy's name leads to its file's history. */
	t = tree_at(ops, 4, WK_ID_NONE);
	assert_int_equal(tree_foreach(t, copy_path, copy), 1);
	tree_free(t);
	check_history(ops, 4, copy,
		      "create doc 0\n"
		      "save doc 4\n"
		      "conflict copy doc 6\n"
		      "save doc 9\n");
	/* Three saw version 2: the laptop's first has the newest's content,
	 * so only the desk's is a copy. */
	tl_put(&ops[1], ID(5, LAPTOP), f, NONE, 9);
	tl_put(&ops[2], ID(6, DESK), f, NONE, 4);
	tl_put(&ops[3], ID(7, LAPTOP), f, NONE, 9);
	check_history(ops, 4, "doc",
		      "create doc 0\n"
		      "save doc 9\n"
		      "conflict copy doc 4\n"
		      "save doc 9\n");
	/* ... as the engine shows it: one copy. */
	t = tree_at(ops, 4, WK_ID_NONE);
	ncopies = 0;
	tree_foreach(t, count_copies, &ncopies);
	assert_int_equal(ncopies, 1);
	tree_free(t);
	/* Equal contents do not conflict. */
	tl_put(&ops[1], ID(2, LAPTOP), f, NONE, 4);
	tl_put(&ops[3], ID(6, DESK), f, ID(2, LAPTOP), 9);
	tl_put(&ops[2], ID(5, LAPTOP), f, ID(2, LAPTOP), 9);
	check_history(ops, 4, "doc",
		      "create doc 0\n"
		      "save doc 4\n"
		      "save doc 9\n"
		      "save doc 9\n");
}

static void test_directory_history_holds_its_entries(void **state)
{
	struct wk_op ops[6];
	struct wk_id d = ID(1, LAPTOP), x = ID(2, LAPTOP), y = ID(3, LAPTOP);

	(void)state;
	tl_mkdir(&ops[0], d, ROOT, "d");
	tl_create(&ops[1], x, d, "x");
	tl_create(&ops[2], y, d, "y");
	tl_create(&ops[3], ID(4, LAPTOP), ROOT, "dx"); /* not inside d */
	tl_move(&ops[4], ID(5, DESK), d, ROOT, "e");
	tl_put(&ops[5], ID(6, DESK), x, NONE, 2);
	check_history(ops, 6, "e",
		      "mkdir d\n"
		      "create d/x 0\n"
		      "create d/y 0\n"
		      "move e<-d\n"
		      "save e/x 2\n");
	/* A file under a renamed directory: found by where it is now. */
	check_history(ops, 6, "e/y", "create d/y 0\n");
	check_history(ops, 6, "",
		      "mkdir d\n"
		      "create d/x 0\n"
		      "create d/y 0\n"
		      "create dx 0\n"
		      "move e<-d\n"
		      "save e/x 2\n");
}

static void test_deleted_tree_is_listed_whole(void **state)
{
	struct wk_op ops[7];
	struct wk_id d = ID(1, LAPTOP), x = ID(2, LAPTOP), k = ID(3, LAPTOP);

	(void)state;
	tl_mkdir(&ops[0], d, ROOT, "d");
	tl_create(&ops[1], x, d, "x");
	tl_put(&ops[2], ID(4, LAPTOP), x, NONE, 8);
	tl_create(&ops[3], k, ROOT, "keep");
	tl_remove(&ops[4], ID(5, LAPTOP), x, ID(4, LAPTOP));
	tl_remove(&ops[5], ID(6, LAPTOP), d, NONE);
	/* A remove that saw an older version loses: keep stays. */
	tl_put(&ops[6], ID(7, DESK), k, NONE, 1);
	check_deleted(ops, 7, "d",
		      "delete d/x 8\n"
		      "delete d\n");
	check_deleted(ops, 7, "",
		      "delete d/x 8\n"
		      "delete d\n");
	tl_remove(&ops[4], ID(5, LAPTOP), k, NONE);
	check_deleted(ops, 7, "keep", "");
}

static void test_tree_at_a_moment(void **state)
{
	struct wk_op ops[4];
	struct wk_id f = ID(1, LAPTOP);
	struct tree_entry e;
	struct tree *t;

	(void)state;
	tl_create(&ops[0], f, ROOT, "f");
	tl_put(&ops[1], ID(2, LAPTOP), f, NONE, 3);
	tl_put(&ops[2], ID(5, DESK), f, ID(2, LAPTOP), 4);
	tl_move(&ops[3], ID(8, DESK), f, ROOT, "g");

	t = tree_at(ops, 4, history_id_at_ms((int64_t)T0 + 4));
	assert_int_equal(tree_lookup(t, "f", &e), 0);
	assert_int_equal(e.size, 3);
	assert_int_equal(tree_lookup(t, "g", &e), -ENOENT);
	tree_free(t);

	/* The bound takes every op of its millisecond. */
	t = tree_at(ops, 4, history_id_at_ms((int64_t)T0 + 5));
	assert_int_equal(tree_lookup(t, "f", &e), 0);
	assert_int_equal(e.size, 4);
	tree_free(t);

	t = tree_at(ops, 4, WK_ID_NONE);
	assert_int_equal(tree_lookup(t, "g", &e), 0);
	tree_free(t);

	t = tree_at(ops, 4, history_id_at_ms((int64_t)T0));
	assert_int_equal(tree_lookup(t, "f", &e), -ENOENT);
	tree_free(t);
}

static void test_parse_time(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(history_parse_time("2023-11-14T22:13:20.005Z", &ms),
			 0);
	assert_int_equal(ms, 1700000000005);
	assert_int_equal(history_parse_time("2023-11-14 22:13:20", &ms), 0);
	assert_int_equal(ms, 1700000000000);
	assert_int_equal(history_parse_time("2023-11-14T22:13", &ms), 0);
	assert_int_equal(ms, 1699999980000);
	assert_int_equal(history_parse_time("2024-02-29", &ms), 0);
	assert_int_equal(ms, 1709164800000);
	assert_int_equal(history_parse_time("@1700000000", &ms), 0);
	assert_int_equal(ms, 1700000000000);
	assert_int_equal(history_parse_time("2023-11-14T22:13:20.5", &ms), 0);
	assert_int_equal(ms, 1700000000500);

	static const char *const bad[] = {
		"",
		"yesterday",
		"2023-13-01",
		"2023-02-29",
		"2023-1-1",
		"2023-11-14T25:00",
		"2023-11-14T",
		"@",
		"@12x",
		"2023-11-14T22:13:20.",
		"2023-11-14Z",
		"2023-11-14T22:13:20+01:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(history_parse_time(bad[i], &ms), -EINVAL);
}

static void test_ops_keep_every_field(void **state)
{
	struct wk_op ops[3], back;
	struct hist_op h;

	(void)state;
	tl_symlink(&ops[0], ID(1, LAPTOP), ROOT, "l", "some/where");
	tl_move(&ops[1], ID(2, DESK), ID(1, LAPTOP), ID(9, DESK), "m");
	tl_put(&ops[2], ID(3, DESK), ID(7, LAPTOP), ID(5, DESK), 8);
	ops[2].link = ID(4, LAPTOP);
	ops[2].mtime_ns = -5;
	for (int i = 0; i < 3; i++) {
		history_op_set(&h, &ops[i]);
		memset(&back, 0xa5, sizeof(back));
		history_op_get(&h, &back);
		history_ops_release(&h, 1);
		assert_true(wk_id_eq(back.id, ops[i].id));
		assert_int_equal(back.kind, ops[i].kind);
		assert_true(wk_id_eq(back.node, ops[i].node));
		assert_true(wk_id_eq(back.parent, ops[i].parent));
		assert_true(wk_id_eq(back.new_parent, ops[i].new_parent));
		assert_true(wk_id_eq(back.base, ops[i].base));
		assert_true(wk_id_eq(back.link, ops[i].link));
		assert_int_equal(back.mode, ops[i].mode);
		assert_int_equal(back.attrs, ops[i].attrs);
		assert_int_equal(back.mtime_ns, ops[i].mtime_ns);
		assert_int_equal(back.size, ops[i].size);
		assert_memory_equal(&back.hash, &ops[i].hash,
				    sizeof(back.hash));
		assert_string_equal(back.name, ops[i].name);
		assert_string_equal(back.new_name, ops[i].new_name);
		assert_string_equal(back.target, ops[i].target);
		assert_string_equal(back.device, ops[i].device);
	}
}

static void test_path_within(void **state)
{
	(void)state;
	assert_true(history_path_within("a/b", "a"));
	assert_true(history_path_within("a", "a"));
	assert_true(history_path_within("a", ""));
	assert_false(history_path_within("ab", "a"));
	assert_false(history_path_within("a", "a/b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_saves_then_move_are_followed),
		cmocka_unit_test(test_delete_keeps_what_it_removed),
		cmocka_unit_test(test_concurrent_saves_mark_the_loser),
		cmocka_unit_test(test_directory_history_holds_its_entries),
		cmocka_unit_test(test_deleted_tree_is_listed_whole),
		cmocka_unit_test(test_tree_at_a_moment),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_ops_keep_every_field),
		cmocka_unit_test(test_path_within),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
