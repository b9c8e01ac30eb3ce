/*
 * test_tree.c - one test per merge rule, each with the exact final tree.
 *
 * Every scenario runs through check_all_orders(): the same ops applied at
 * once, one by one forwards and backwards, and in shuffled orders with
 * duplicates and random batch cuts, each time into a fresh tree whose
 * changes are executed on a strict fake directory.  The tree dump and the
 * fake directory's dump must both equal the expected text every time.
 * Random-schedule testing at scale is test_tree_sim.c's job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tree.h"
#include "tree_testlib.h"

#define T0     UINT64_C(1700000000000) /* 2023-11-14 22:13:20 UTC */
#define LAPTOP 1
#define DESK   2
#define TABLET 3
#define ODD    0xabcdef

#define ID(ms, actor) tl_id(T0 + (ms), 0, (actor))
#define ROOT	      WK_ID_ROOT
#define NONE	      WK_ID_NONE

#define H(b)  #b #b #b #b #b #b #b #b #b #b #b #b #b #b #b #b
#define HASH0 "00000000000000000000000000000000"

/* The device name each test replica stamps on its ops (ODD: none, as an
 * older wkfs made them). */
static const char *device_of(uint64_t actor)
{
	switch (actor) {
	case LAPTOP:
		return "laptop";
	case DESK:
		return "desk";
	case TABLET:
		return "tablet";
	}
	return "";
}

static uint64_t rng_state = 42;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Applies ops[idx[0..n)] in batches cut at random (cut 0: one batch). */
static char *run_order(const struct wk_op *ops, const size_t *idx, size_t n,
		       int cut)
{
	struct wk_op *batch = malloc((n + 1) * sizeof(*batch));
	struct tree *t = tree_new();
	struct fakefs *f = fakefs_new();
	char why[256] = "";
	char *dump, *fdump;
	size_t i = 0;

	while (i < n) {
		struct tree_changes ch;
		size_t k = 0;

		do
			batch[k++] = ops[idx[i++]];
		while (i < n && (cut == 0 || rnd() % cut));
		tree_changes_init(&ch);
		assert_int_equal(tree_apply(t, batch, k, &ch), 0);
		if (fakefs_apply(f, &ch, why, sizeof(why)))
			fail_msg("fake dir: %s", why);
		tree_changes_release(&ch);
		if (tree_check(t, why, sizeof(why)))
			fail_msg("tree_check: %s", why);
	}
	dump = tree_dump(t);
	fdump = fakefs_dump(f);
	assert_string_equal(fdump, dump);
	free(fdump);
	fakefs_free(f);
	tree_free(t);
	free(batch);
	return dump;
}

/* check_all_orders() with the ops' device names as they are. */
static void check_orders_as_is(const struct wk_op *ops, size_t n,
			       const char *want)
{
	size_t idx[64];
	char *got;

	assert_true(n <= 32);
	for (int pass = 0; pass < 40; pass++) {
		size_t m = n;

		for (size_t i = 0; i < n; i++)
			idx[i] = pass == 2 ? n - 1 - i : i;
		if (pass >= 3) {
			for (size_t i = n; i > 1; i--) {
				size_t j = rnd() % i, tmp = idx[i - 1];

				idx[i - 1] = idx[j];
				idx[j] = tmp;
			}
			for (size_t d = rnd() % 4; d > 0; d--)
				idx[m++] = idx[rnd() % n];
		}
		got = run_order(ops, idx, m, pass == 0 ? 0 : pass == 1 ? 1 : 3);
		if (strcmp(got, want) != 0)
			print_error("pass %d:\n%s", pass, got);
		assert_string_equal(got, want);
		free(got);
	}
}

/* Every op made by its actor's device (device_of), then all orders. */
static void check_all_orders(const struct wk_op *ops, size_t n,
			     const char *want)
{
	struct wk_op *o = malloc(n * sizeof(*o));

	for (size_t i = 0; i < n; i++) {
		o[i] = ops[i];
		snprintf(o[i].device, sizeof(o[i].device), "%s",
			 device_of(o[i].id.actor));
	}
	check_orders_as_is(o, n, want);
	free(o);
}

/* ---- rules ------------------------------------------------------------ */

static void test_basic_tree(void **state)
{
	struct wk_op o[6];

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "docs");
	tl_create(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), "a.txt");
	tl_put(&o[2], ID(3, LAPTOP), ID(2, LAPTOP), ID(2, LAPTOP), 0x11);
	tl_symlink(&o[3], ID(4, LAPTOP), ID(1, LAPTOP), "link", "a.txt");
	tl_create(&o[4], ID(5, LAPTOP), ROOT, "empty");
	tl_mkdir(&o[5], ID(6, LAPTOP), ID(1, LAPTOP), ".wkfs");
	check_all_orders(
		o, 6,
		"docs d 0755 0 - -\n"
		"docs/.wkfs d 0755 0 - -\n"
		"docs/a.txt f 0644 0 " H(11) " -\n"
					     "docs/link l 0777 0 - a.txt\n"
					     "empty f 0644 0 " HASH0 " -\n");
}

static void test_duplicates_are_ignored(void **state)
{
	struct wk_op o[2];
	struct tree *t = tree_new();
	struct tree_stats st;
	char *a, *b;

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "f");
	tl_put(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), NONE, 0x22);
	tree_apply(t, o, 2, NULL);
	a = tree_dump(t);
	tree_apply(t, o, 2, NULL);
	tree_apply(t, &o[1], 1, NULL);
	b = tree_dump(t);
	assert_string_equal(a, b);
	assert_string_equal(a, "f f 0644 0 " H(22) " -\n");
	tree_get_stats(t, &st);
	assert_int_equal(st.applied, 2);
	assert_int_equal(st.duplicates, 3);
	free(a);
	free(b);
	tree_free(t);
}

/* An old move arriving after newer ones is placed by undo, do, redo. */
static void test_late_move_is_replayed_in_order(void **state)
{
	struct wk_op o[6];
	struct tree *t = tree_new();
	struct tree_stats st;
	char *d;

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "a");
	tl_mkdir(&o[1], ID(2, LAPTOP), ROOT, "b");
	tl_create(&o[2], ID(3, LAPTOP), ROOT, "f");
	tl_move(&o[3], ID(10, DESK), ID(3, LAPTOP), ID(2, LAPTOP), "g");
	/* older than the move above: must not win */
	tl_move(&o[4], ID(5, LAPTOP), ID(3, LAPTOP), ID(1, LAPTOP), "h");
	tl_move(&o[5], ID(11, DESK), ID(1, LAPTOP), ID(2, LAPTOP), "a2");
	tree_apply(t, o, 4, NULL);
	tree_apply(t, &o[5], 1, NULL);
	tree_apply(t, &o[4], 1, NULL);
	tree_get_stats(t, &st);
	assert_int_equal(st.redone, 2);
	d = tree_dump(t);
	assert_string_equal(d, "b d 0755 0 - -\n"
			       "b/a2 d 0755 0 - -\n"
			       "b/g f 0644 0 " HASH0 " -\n");
	free(d);
	tree_free(t);
	check_all_orders(o, 6,
			 "b d 0755 0 - -\n"
			 "b/a2 d 0755 0 - -\n"
			 "b/g f 0644 0 " HASH0 " -\n");
}

/* a into b on one replica, b into a on another: the later is skipped. */
static void test_move_cycle_is_skipped(void **state)
{
	struct wk_op o[4];

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "a");
	tl_mkdir(&o[1], ID(2, LAPTOP), ROOT, "b");
	tl_move(&o[2], ID(10, LAPTOP), ID(1, LAPTOP), ID(2, LAPTOP), "a");
	tl_move(&o[3], ID(10, DESK), ID(2, LAPTOP), ID(1, LAPTOP), "b");
	check_all_orders(o, 4,
			 "b d 0755 0 - -\n"
			 "b/a d 0755 0 - -\n");
}

static void test_concurrent_moves_later_wins(void **state)
{
	struct wk_op o[5];

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "x");
	tl_mkdir(&o[1], ID(2, LAPTOP), ROOT, "y");
	tl_create(&o[2], ID(3, LAPTOP), ROOT, "f");
	tl_move(&o[3], ID(20, DESK), ID(3, LAPTOP), ID(1, LAPTOP), "from-desk");
	tl_move(&o[4], ID(20, TABLET), ID(3, LAPTOP), ID(2, LAPTOP), "tab");
	check_all_orders(o, 5,
			 "x d 0755 0 - -\n"
			 "y d 0755 0 - -\n"
			 "y/tab f 0644 0 " HASH0 " -\n");
}

static void test_put_conflict_keeps_both(void **state)
{
	struct wk_op o[3];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "notes.txt");
	tl_put(&o[1], ID(2000, LAPTOP), ID(1, LAPTOP), ID(1, LAPTOP), 0xaa);
	tl_put(&o[2], ID(2000, DESK), ID(1, LAPTOP), NONE, 0xbb);
	check_all_orders(
		o, 3,
		"notes.conflict-20231114-221322-laptop.txt f 0644 0 " H(
			aa) " -\n"
			    "notes.txt f 0644 0 " H(bb) " -\n");
}

static void test_sequential_puts_do_not_conflict(void **state)
{
	struct wk_op o[4];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "f");
	tl_put(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), NONE, 0xaa);
	tl_put(&o[2], ID(3, DESK), ID(1, LAPTOP), ID(2, LAPTOP), 0xbb);
	tl_put(&o[3], ID(4, LAPTOP), ID(1, LAPTOP), ID(3, DESK), 0xcc);
	check_all_orders(o, 4, "f f 0644 0 " H(cc) " -\n");
}

static void test_identical_puts_do_not_conflict(void **state)
{
	struct wk_op o[3];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "f");
	tl_put(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), NONE, 0xaa);
	tl_put(&o[2], ID(3, DESK), ID(1, LAPTOP), NONE, 0xaa);
	check_all_orders(o, 3, "f f 0644 0 " H(aa) " -\n");
}

/* Two losers from one device in one second get told apart. */
static void test_conflict_names_get_suffixes(void **state)
{
	struct wk_op o[4];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "Makefile");
	tl_put(&o[1], tl_id(T0 + 5, 0, LAPTOP), ID(1, LAPTOP), NONE, 0xaa);
	tl_put(&o[2], tl_id(T0 + 5, 1, LAPTOP), ID(1, LAPTOP), NONE, 0xbb);
	tl_put(&o[3], ID(7, ODD), ID(1, LAPTOP), NONE, 0xcc);
	check_all_orders(
		o, 4,
		"Makefile f 0644 0 " H(
			cc) " -\n"
			    "Makefile.conflict-20231114-221320-laptop f 0644 "
			    "0 " H(aa) " -\n"
				       "Makefile.conflict-20231114-221320-"
				       "laptop-2 f 0644 0 " H(bb) " -\n");
}

static void test_conflict_name_forms(void **state)
{
	char buf[WK_NAME_MAX + 1], longname[WK_NAME_MAX + 1];
	struct wk_id id = ID(0, TABLET);

	tree_conflict_name(buf, "notes.txt", id, "tablet", 0);
	assert_string_equal(buf, "notes.conflict-20231114-221320-tablet.txt");
	tree_conflict_name(buf, ".bashrc", id, "tablet", 0);
	assert_string_equal(buf, ".bashrc.conflict-20231114-221320-tablet");
	tree_conflict_name(buf, "a.tar.gz", id, "tablet", 2);
	assert_string_equal(buf, "a.tar.conflict-20231114-221320-tablet-3.gz");
	tree_conflict_name(buf, "trailing.", id, "tablet", 0);
	assert_string_equal(buf, "trailing..conflict-20231114-221320-tablet");
	tree_conflict_name(buf, "x.c", id, "desk.lan", 0);
	assert_string_equal(buf, "x.conflict-20231114-221320-desk.lan.c");
	/* No device, or one that is not a device name: the actor in hex. */
	tree_conflict_name(buf, "x.c", ID(0, ODD), NULL, 0);
	assert_string_equal(buf,
			    "x.conflict-20231114-221320-0000000000abcdef.c");
	tree_conflict_name(buf, "x.c", ID(0, ODD), "", 0);
	assert_string_equal(buf,
			    "x.conflict-20231114-221320-0000000000abcdef.c");
	tree_conflict_name(buf, "x.c", ID(0, ODD), "../../etc", 0);
	assert_string_equal(buf,
			    "x.conflict-20231114-221320-0000000000abcdef.c");
	memset(longname, 'n', WK_NAME_MAX);
	longname[WK_NAME_MAX] = '\0';
	longname[WK_NAME_MAX - 4] = '.';
	tree_conflict_name(buf, longname, id, "tablet", 0);
	assert_int_equal(strlen(buf), WK_NAME_MAX);
	assert_string_equal(buf + WK_NAME_MAX - 4, ".nnn");
	tree_conflict_name(buf, longname, id,
			   "0123456789abcdef0123456789abcdef", 0);
	assert_int_equal(strlen(buf), WK_NAME_MAX);
	assert_string_equal(buf + WK_NAME_MAX - 4, ".nnn");
}

/*
 * A conflict copy is named by the device its own op carried, not by what
 * its actor is called now or elsewhere: the laptop was renamed twice,
 * made one op without a device (an older wkfs) and one with a name that
 * is not a device name; desk wins every name (same time, higher actor).
 * Whatever the order ops arrive in, each copy keeps its op's name.
 */
static void test_conflict_name_follows_the_losing_op(void **state)
{
	static const char *const dev[] = {"laptop", "lap-new",	 "",
					  "laptop", "my laptop", "laptop"};
	static const char *const name[] = {"a.txt", "b.txt", "c.txt",
					   "d.txt", "e.txt", "f.txt"};
	struct wk_op o[12];
	struct tree *t;

	for (int i = 0; i < 6; i++) {
		tl_create(&o[2 * i], ID(1000 + i, LAPTOP), ROOT, name[i]);
		strcpy(o[2 * i].device, dev[i]);
		tl_create(&o[2 * i + 1], ID(1000 + i, DESK), ROOT, name[i]);
		strcpy(o[2 * i + 1].device, "desk");
	}
	check_orders_as_is(
		o, 12,
		"a.conflict-20231114-221321-laptop.txt f 0644 0 " HASH0 " -\n"
		"a.txt f 0644 0 " HASH0 " -\n"
		"b.conflict-20231114-221321-lap-new.txt f 0644 0 " HASH0 " -\n"
		"b.txt f 0644 0 " HASH0 " -\n"
		"c.conflict-20231114-221321-0000000000000001.txt f 0644 "
		"0 " HASH0 " -\n"
		"c.txt f 0644 0 " HASH0 " -\n"
		"d.conflict-20231114-221321-laptop.txt f 0644 0 " HASH0 " -\n"
		"d.txt f 0644 0 " HASH0 " -\n"
		"e.conflict-20231114-221321-0000000000000001.txt f 0644 "
		"0 " HASH0 " -\n"
		"e.txt f 0644 0 " HASH0 " -\n"
		"f.conflict-20231114-221321-laptop.txt f 0644 0 " HASH0 " -\n"
		"f.txt f 0644 0 " HASH0 " -\n");

	/* Newest first: every op lands inside or before what is known. */
	t = tree_new();
	for (int i = 11; i >= 0; i--)
		tree_apply(t, &o[i], 1, NULL);
	for (int i = 0; i < 6; i++) {
		const char *got = tree_op_device(t, o[2 * i].id);

		if (i == 2 || i == 4)
			assert_null(got);
		else
			assert_string_equal(got, dev[i]);
		assert_string_equal(tree_op_device(t, o[2 * i + 1].id), "desk");
	}
	/* Ops the tree never took have no device. */
	assert_null(tree_op_device(t, ID(1003, TABLET)));
	assert_null(tree_op_device(t, ID(999, LAPTOP)));
	assert_null(tree_op_device(t, ID(2000, DESK)));
	tree_free(t);
}

static void test_edit_beats_delete(void **state)
{
	struct wk_op o[4];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "f.txt");
	tl_put(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), NONE, 0xaa);
	tl_remove(&o[2], ID(10, LAPTOP), ID(1, LAPTOP), ID(2, LAPTOP));
	tl_put(&o[3], ID(5, DESK), ID(1, LAPTOP), ID(2, LAPTOP), 0xbb);
	check_all_orders(o, 4, "f.txt f 0644 0 " H(bb) " -\n");
}

static void test_delete_that_saw_the_edit_wins(void **state)
{
	struct wk_op o[4];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "f.txt");
	tl_put(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), NONE, 0xaa);
	tl_put(&o[2], ID(5, DESK), ID(1, LAPTOP), ID(2, LAPTOP), 0xbb);
	tl_remove(&o[3], ID(10, LAPTOP), ID(1, LAPTOP), ID(5, DESK));
	check_all_orders(o, 4, "");
}

static void test_rmdir_loses_to_add_inside(void **state)
{
	struct wk_op o[5];

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "d");
	tl_create(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), "old");
	tl_remove(&o[2], ID(10, LAPTOP), ID(2, LAPTOP), NONE);
	tl_remove(&o[3], ID(11, LAPTOP), ID(1, LAPTOP), NONE);
	tl_create(&o[4], ID(5, DESK), ID(1, LAPTOP), "new");
	check_all_orders(o, 5,
			 "d d 0755 0 - -\n"
			 "d/new f 0644 0 " HASH0 " -\n");
}

static void test_rmdir_loses_to_edit_inside(void **state)
{
	struct wk_op o[7];

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "d");
	tl_mkdir(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), "e");
	tl_create(&o[2], ID(3, LAPTOP), ID(2, LAPTOP), "f");
	tl_remove(&o[3], ID(10, LAPTOP), ID(3, LAPTOP), NONE);
	tl_remove(&o[4], ID(11, LAPTOP), ID(2, LAPTOP), NONE);
	tl_remove(&o[5], ID(12, LAPTOP), ID(1, LAPTOP), NONE);
	tl_put(&o[6], ID(5, DESK), ID(3, LAPTOP), ID(3, LAPTOP), 0x33);
	check_all_orders(o, 7,
			 "d d 0755 0 - -\n"
			 "d/e d 0755 0 - -\n"
			 "d/e/f f 0644 0 " H(33) " -\n");
}

static void test_same_name_files_both_kept(void **state)
{
	struct wk_op o[4];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "x.md");
	tl_put(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), NONE, 0x11);
	tl_create(&o[2], ID(1, DESK), ROOT, "x.md");
	tl_put(&o[3], ID(2, DESK), ID(1, DESK), NONE, 0x22);
	check_all_orders(o, 4,
			 "x.conflict-20231114-221320-laptop.md f 0644 0 " H(
				 11) " -\n"
				     "x.md f 0644 0 " H(22) " -\n");
}

static void test_same_name_dirs_merge(void **state)
{
	struct wk_op o[6];
	struct tree *t = tree_new();
	struct wk_id ids[4];

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "src");
	tl_create(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), "a.c");
	tl_create(&o[2], ID(3, LAPTOP), ID(1, LAPTOP), "same");
	tl_mkdir(&o[3], ID(1, DESK), ROOT, "src");
	tl_create(&o[4], ID(2, DESK), ID(1, DESK), "b.c");
	tl_mkdir(&o[5], ID(3, DESK), ID(1, DESK), "same");
	check_all_orders(
		o, 6,
		"src d 0755 0 - -\n"
		"src/a.c f 0644 0 " HASH0 " -\n"
		"src/b.c f 0644 0 " HASH0 " -\n"
		"src/same d 0755 0 - -\n"
		"src/same.conflict-20231114-221320-laptop f 0644 0 " HASH0
		" -\n");
	tree_apply(t, o, 6, NULL);
	assert_int_equal(tree_dir_members(t, "src", ids, 4), 2);
	assert_true(wk_id_eq(ids[0], ID(1, LAPTOP)));
	assert_true(wk_id_eq(ids[1], ID(1, DESK)));
	tree_free(t);
}

static void test_rename_onto_taken_name(void **state)
{
	struct wk_op o[6];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "draft");
	tl_mkdir(&o[1], ID(2, LAPTOP), ROOT, "d");
	tl_mkdir(&o[2], ID(3, LAPTOP), ROOT, "e");
	tl_move(&o[3], ID(10, LAPTOP), ID(1, LAPTOP), ROOT, "final");
	tl_create(&o[4], ID(11, DESK), ROOT, "final");
	/* dirs renamed onto one name concurrently merge */
	tl_move(&o[5], ID(12, DESK), ID(3, LAPTOP), ROOT, "d");
	check_all_orders(o, 6,
			 "d d 0755 0 - -\n"
			 "final f 0644 0 " HASH0 " -\n"
			 "final.conflict-20231114-221320-laptop f 0644 0 " HASH0
			 " -\n");
}

static void test_symlinks_are_data(void **state)
{
	struct wk_op o[3];

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "d");
	tl_symlink(&o[1], ID(2, DESK), ID(1, LAPTOP), "up", "../../etc/passwd");
	tl_symlink(&o[2], ID(3, DESK), ID(1, LAPTOP), "abs", "/etc");
	check_all_orders(o, 3,
			 "d d 0755 0 - -\n"
			 "d/abs l 0777 0 - /etc\n"
			 "d/up l 0777 0 - ../../etc/passwd\n");
}

static void test_bad_names_are_rejected(void **state)
{
	static const char *bad[] = {"", ".", "..", "a/b", ".wkfs"};
	struct wk_op o;
	struct tree *t = tree_new();
	struct tree_stats st;
	char *d;
	uint64_t ms = 1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tl_create(&o, ID(ms++, DESK), ROOT, bad[i]);
		tree_apply(t, &o, 1, NULL);
		tl_mkdir(&o, ID(ms++, DESK), ROOT, bad[i]);
		tree_apply(t, &o, 1, NULL);
	}
	tl_create(&o, ID(ms++, DESK), ROOT, "ok");
	memset(o.name, 'x', sizeof(o.name)); /* no NUL: 256 bytes */
	tree_apply(t, &o, 1, NULL);
	tl_create(&o, ID(ms, DESK), ROOT, "ok");
	tree_apply(t, &o, 1, NULL);
	tl_move(&o, ID(ms + 1, DESK), ID(ms, DESK), ROOT, ".wkfs");
	tree_apply(t, &o, 1, NULL);
	tl_move(&o, ID(ms + 2, DESK), ID(ms, DESK), ROOT, "..");
	tree_apply(t, &o, 1, NULL);
	tl_move(&o, ID(ms + 3, DESK), ROOT, ROOT, "root");
	tree_apply(t, &o, 1, NULL);
	tree_get_stats(t, &st);
	assert_int_equal(st.rejected, 14);
	assert_int_equal(st.applied, 1);
	d = tree_dump(t);
	assert_string_equal(d, "ok f 0644 0 " HASH0 " -\n");
	free(d);
	tree_free(t);
}

static void test_chmod_last_writer_wins(void **state)
{
	struct wk_op o[4];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "run.sh");
	tl_chmod(&o[1], ID(5, LAPTOP), ID(1, LAPTOP), 0755);
	tl_chmod(&o[2], ID(5, DESK), ID(1, LAPTOP), 0700);
	tl_chmod(&o[3], ID(4, TABLET), ID(1, LAPTOP), 0600);
	check_all_orders(o, 4, "run.sh f 0700 0 " HASH0 " -\n");
}

/* Names swapped by moves: the staged change list must stay valid. */
static void test_swap_and_nest_moves(void **state)
{
	struct wk_op o[8];

	tl_create(&o[0], ID(1, LAPTOP), ROOT, "a");
	tl_create(&o[1], ID(2, LAPTOP), ROOT, "b");
	tl_mkdir(&o[2], ID(3, LAPTOP), ROOT, "d");
	tl_move(&o[3], ID(10, LAPTOP), ID(1, LAPTOP), ROOT, "tmp");
	tl_move(&o[4], ID(11, LAPTOP), ID(2, LAPTOP), ROOT, "a");
	tl_move(&o[5], ID(12, LAPTOP), ID(1, LAPTOP), ROOT, "b");
	tl_mkdir(&o[6], ID(13, LAPTOP), ROOT, "n");
	tl_move(&o[7], ID(14, LAPTOP), ID(3, LAPTOP), ID(13, LAPTOP), "d");
	o[1].kind = WK_OP_MKDIR;
	check_all_orders(o, 8,
			 "a d 0644 0 - -\n"
			 "b f 0644 0 " HASH0 " -\n"
			 "n d 0755 0 - -\n"
			 "n/d d 0755 0 - -\n");
}

static void test_compact_keeps_the_tree(void **state)
{
	struct wk_op o[5];
	struct tree *t = tree_new();
	struct tree_stats st;
	char *d;

	tl_mkdir(&o[0], ID(1, LAPTOP), ROOT, "d");
	tl_create(&o[1], ID(2, LAPTOP), ID(1, LAPTOP), "f");
	tl_move(&o[2], ID(3, LAPTOP), ID(2, LAPTOP), ROOT, "g");
	tl_put(&o[3], ID(4, LAPTOP), ID(2, LAPTOP), NONE, 0x44);
	tl_move(&o[4], ID(9, DESK), ID(2, LAPTOP), ID(1, LAPTOP), "h");
	tree_apply(t, o, 4, NULL);
	tree_compact(t, ID(4, LAPTOP).hlc);
	tree_get_stats(t, &st);
	assert_int_equal(st.log_len, 0);
	tree_apply(t, o, 5, NULL); /* old ones are duplicates now */
	tree_get_stats(t, &st);
	assert_int_equal(st.duplicates, 4);
	assert_int_equal(st.log_len, 1);
	d = tree_dump(t);
	assert_string_equal(d, "d d 0755 0 - -\n"
			       "d/h f 0644 0 " H(44) " -\n");
	free(d);
	tree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic_tree),
		cmocka_unit_test(test_duplicates_are_ignored),
		cmocka_unit_test(test_late_move_is_replayed_in_order),
		cmocka_unit_test(test_move_cycle_is_skipped),
		cmocka_unit_test(test_concurrent_moves_later_wins),
		cmocka_unit_test(test_put_conflict_keeps_both),
		cmocka_unit_test(test_sequential_puts_do_not_conflict),
		cmocka_unit_test(test_identical_puts_do_not_conflict),
		cmocka_unit_test(test_conflict_names_get_suffixes),
		cmocka_unit_test(test_conflict_name_forms),
		cmocka_unit_test(test_conflict_name_follows_the_losing_op),
		cmocka_unit_test(test_edit_beats_delete),
		cmocka_unit_test(test_delete_that_saw_the_edit_wins),
		cmocka_unit_test(test_rmdir_loses_to_add_inside),
		cmocka_unit_test(test_rmdir_loses_to_edit_inside),
		cmocka_unit_test(test_same_name_files_both_kept),
		cmocka_unit_test(test_same_name_dirs_merge),
		cmocka_unit_test(test_rename_onto_taken_name),
		cmocka_unit_test(test_symlinks_are_data),
		cmocka_unit_test(test_bad_names_are_rejected),
		cmocka_unit_test(test_chmod_last_writer_wins),
		cmocka_unit_test(test_swap_and_nest_moves),
		cmocka_unit_test(test_compact_keeps_the_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
