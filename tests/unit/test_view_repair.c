/*
 * test_view_repair.c - what DIR lacks of the view (view_repair.h): an
 * entry neither the index nor the file system has comes back, parents
 * first; a mode the index holds otherwise is set again; nothing that DIR
 * has at a path is replaced; a content not at hand waits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nindex.h"
#include "tree.h"
#include "tree_testlib.h"
#include "view_repair.h"

#define A 1 /* the actor of every op */

struct fixture {
	char dir[64];
	int rootfd;
	struct tree *view;
	struct nindex *ix;
	struct tree_changes ch;
	uint8_t missing; /* content byte have() says is not at hand */
};

/* The view: d/ (0755), d/f (content 7, chmod 0600), d/l -> x, e/ (0700
 * by chmod), e/g (content 9), d/x (content 3). */
static struct wk_id D, F, L, E, G, X;

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct wk_op ops[16];
	size_t n = 0;

	D = tl_id(1, 0, A);
	F = tl_id(2, 0, A);
	L = tl_id(3, 0, A);
	E = tl_id(4, 0, A);
	G = tl_id(5, 0, A);
	X = tl_id(6, 0, A);
	tl_mkdir(&ops[n++], D, WK_ID_ROOT, "d");
	tl_create(&ops[n++], F, D, "f");
	tl_put(&ops[n++], tl_id(10, 0, A), F, WK_ID_NONE, 7);
	tl_chmod(&ops[n++], tl_id(11, 0, A), F, 0600);
	tl_symlink(&ops[n++], L, D, "l", "x");
	tl_mkdir(&ops[n++], E, WK_ID_ROOT, "e");
	tl_chmod(&ops[n++], tl_id(12, 0, A), E, 0700);
	tl_create(&ops[n++], G, E, "g");
	tl_put(&ops[n++], tl_id(13, 0, A), G, WK_ID_NONE, 9);
	tl_create(&ops[n++], X, D, "x");
	tl_put(&ops[n++], tl_id(14, 0, A), X, WK_ID_NONE, 3);
	fx->view = tree_new();
	assert_int_equal(tree_apply(fx->view, ops, n, NULL), 0);

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/wkfs-repair-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->rootfd = open(fx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fx->rootfd >= 0);
	/* DIR holds d/ and d/x (a file the index does not know yet). */
	assert_int_equal(mkdirat(fx->rootfd, "d", 0755), 0);
	close(openat(fx->rootfd, "d/x", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));

	/* The index: d/, and d/f at the view's version but mode 0644. */
	{
		struct nnode *d, *f;

		fx->ix = nindex_new();
		assert_int_equal(nindex_add(fx->ix, D, nindex_root(fx->ix), "d",
					    WK_KIND_DIR, &d),
				 0);
		d->mode = 0755;
		assert_int_equal(
			nindex_add(fx->ix, F, d, "f", WK_KIND_FILE, &f), 0);
		f->mode = 0644;
		f->content = tl_id(10, 0, A);
		f->size = 7;
	}
	tree_changes_init(&fx->ch);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	tree_changes_release(&fx->ch);
	nindex_free(fx->ix);
	tree_free(fx->view);
	close(fx->rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

static bool have(void *arg, const struct tree_change *c)
{
	struct fixture *fx = arg;

	return c->hash.b[0] != fx->missing;
}

static const struct tree_change *find(const struct fixture *fx,
				      const char *path)
{
	for (size_t i = 0; i < fx->ch.n; i++)
		if (strcmp(fx->ch.v[i].path, path) == 0)
			return &fx->ch.v[i];
	return NULL;
}

static size_t index_of(const struct fixture *fx, const char *path)
{
	for (size_t i = 0; i < fx->ch.n; i++)
		if (strcmp(fx->ch.v[i].path, path) == 0)
			return i;
	fail_msg("no change for %s", path);
	return 0;
}

static void test_gives_back_what_dir_lacks(void **state)
{
	struct fixture *fx = *state;
	const struct tree_change *c;
	size_t n = view_repair_collect(fx->view, fx->ix, fx->rootfd, false,
				       have, fx, &fx->ch);

	/* d/l, e, e/g made; d/f's mode set; d/ and d/x left alone. */
	assert_int_equal(n, 4);
	assert_int_equal(fx->ch.n, 4);
	c = find(fx, "d/l");
	assert_non_null(c);
	assert_int_equal(c->kind, TREE_CH_SYMLINK);
	assert_string_equal(c->target, "x");
	c = find(fx, "e");
	assert_non_null(c);
	assert_int_equal(c->kind, TREE_CH_MKDIR);
	assert_int_equal(c->mode & 07777, 0700);
	c = find(fx, "e/g");
	assert_non_null(c);
	assert_int_equal(c->kind, TREE_CH_WRITE);
	assert_int_equal(c->size, 9);
	assert_int_equal(c->hash.b[0], 9);
	assert_true(wk_id_eq(c->node, G));
	assert_true(index_of(fx, "e") < index_of(fx, "e/g"));
	c = find(fx, "d/f");
	assert_non_null(c);
	assert_int_equal(c->kind, TREE_CH_SETATTR);
	assert_int_equal(c->mode & 07777, 0600);
	assert_null(find(fx, "d"));
	assert_null(find(fx, "d/x"));
}

static void test_a_content_not_at_hand_waits(void **state)
{
	struct fixture *fx = *state;

	fx->missing = 9;
	view_repair_collect(fx->view, fx->ix, fx->rootfd, false, have, fx,
			    &fx->ch);
	assert_null(find(fx, "e/g"));
	assert_non_null(find(fx, "e"));
	assert_int_equal(fx->ch.n, 3);
}

static void test_dir_that_has_it_is_left_alone(void **state)
{
	struct fixture *fx = *state;
	struct nnode *l, *e, *g, *d = nindex_lookup(fx->ix, "d", 1);

	/* Everything in the index, with the view's modes. */
	nindex_lookup(fx->ix, "d/f", 3)->mode = 0600;
	assert_int_equal(nindex_add(fx->ix, L, d, "l", WK_KIND_SYMLINK, &l), 0);
	assert_int_equal(nindex_add(fx->ix, X, d, "x", WK_KIND_FILE, &l), 0);
	l->content = tl_id(14, 0, A);
	l->mode = 0644;
	assert_int_equal(nindex_add(fx->ix, E, nindex_root(fx->ix), "e",
				    WK_KIND_DIR, &e),
			 0);
	e->mode = 0700;
	assert_int_equal(nindex_add(fx->ix, G, e, "g", WK_KIND_FILE, &g), 0);
	g->content = tl_id(13, 0, A);
	g->mode = 0644;
	assert_int_equal(view_repair_collect(fx->view, fx->ix, fx->rootfd,
					     false, have, fx, &fx->ch),
			 0);
	assert_int_equal(fx->ch.n, 0);
}

/* The index holds the file at an older version than the view's (a batch
 * went on without the content): the view's is written, once at hand. */
static void test_an_older_version_is_brought_up(void **state)
{
	struct fixture *fx = *state;
	const struct tree_change *c;

	nindex_lookup(fx->ix, "d/f", 3)->content = tl_id(9, 0, A);
	nindex_lookup(fx->ix, "d/f", 3)->mode = 0600;
	fx->missing = 7;
	view_repair_collect(fx->view, fx->ix, fx->rootfd, false, have, fx,
			    &fx->ch);
	assert_null(find(fx, "d/f"));
	tree_changes_release(&fx->ch);
	tree_changes_init(&fx->ch);
	fx->missing = 0;
	view_repair_collect(fx->view, fx->ix, fx->rootfd, false, have, fx,
			    &fx->ch);
	c = find(fx, "d/f");
	assert_non_null(c);
	assert_int_equal(c->kind, TREE_CH_WRITE);
	assert_int_equal(c->size, 7);
	assert_true(wk_id_eq(c->version, tl_id(10, 0, A)));
}

/* With check_disk, the disk is asked even where the index has the entry:
 * what a failed step left out comes back, a mode the disk has otherwise
 * is set, and a file DIR has is still left alone. */
static void test_check_disk_asks_the_disk(void **state)
{
	struct fixture *fx = *state;
	struct nnode *n, *e, *d = nindex_lookup(fx->ix, "d", 1);
	const struct tree_change *c;

	nindex_lookup(fx->ix, "d/f", 3)->mode = 0600;
	assert_int_equal(nindex_add(fx->ix, L, d, "l", WK_KIND_SYMLINK, &n), 0);
	assert_int_equal(nindex_add(fx->ix, X, d, "x", WK_KIND_FILE, &n), 0);
	n->content = tl_id(14, 0, A);
	n->mode = 0644;
	assert_int_equal(nindex_add(fx->ix, E, nindex_root(fx->ix), "e",
				    WK_KIND_DIR, &e),
			 0);
	e->mode = 0700;
	assert_int_equal(nindex_add(fx->ix, G, e, "g", WK_KIND_FILE, &n), 0);
	n->content = tl_id(13, 0, A);
	n->mode = 0644;
	/* Without the disk: nothing to do. */
	assert_int_equal(view_repair_collect(fx->view, fx->ix, fx->rootfd,
					     false, have, fx, &fx->ch),
			 0);
	/* DIR's d/x has another mode than the view's. */
	assert_int_equal(fchmodat(fx->rootfd, "d/x", 0600, 0), 0);
	view_repair_collect(fx->view, fx->ix, fx->rootfd, true, have, fx,
			    &fx->ch);
	c = find(fx, "d/f");
	assert_non_null(c);
	assert_int_equal(c->kind, TREE_CH_WRITE);
	assert_int_equal(find(fx, "d/l")->kind, TREE_CH_SYMLINK);
	assert_int_equal(find(fx, "e")->kind, TREE_CH_MKDIR);
	assert_int_equal(find(fx, "e/g")->kind, TREE_CH_WRITE);
	c = find(fx, "d/x");
	assert_non_null(c);
	assert_int_equal(c->kind, TREE_CH_SETATTR);
	assert_int_equal(c->mode & 07777, 0644);
	assert_null(find(fx, "d"));
	assert_int_equal(fx->ch.n, 5);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_gives_back_what_dir_lacks),
		T(test_a_content_not_at_hand_waits),
		T(test_dir_that_has_it_is_left_alone),
		T(test_check_disk_asks_the_disk),
		T(test_an_older_version_is_brought_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
