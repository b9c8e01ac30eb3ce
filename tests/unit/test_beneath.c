/*
 * test_beneath.c - resolution beneath a directory fd (beneath.h): files,
 * directories and a symlink itself are reached; a symlink on the way, an
 * escape by ".." or an absolute path are refused, with openat2 and with
 * the walk that stands in for it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beneath.h"

struct fixture {
	char top[64];	     /* holds root/ and outside/ */
	int rootfd;	     /* top/root */
	bool walk;	     /* the walk instead of openat2 */
	struct stat outside; /* top/outside/secret */
};

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/*
 * top/root: dir/file, dir/sub/, link -> file (relative), up -> .. ,
 * abs -> top/outside, hop/ -> dir (a symlinked directory);
 * top/outside/secret.
 */
static int setup(void **state, bool walk)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char p[256];

	snprintf(f->top, sizeof(f->top), "/tmp/wkfs-beneath-XXXXXX");
	assert_non_null(mkdtemp(f->top));
	snprintf(p, sizeof(p), "%s/root", f->top);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/outside", f->top);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/outside/secret", f->top);
	put(p, "secret");
	assert_int_equal(stat(p, &f->outside), 0);
	snprintf(p, sizeof(p), "%s/root/dir", f->top);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/root/dir/sub", f->top);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/root/dir/file", f->top);
	put(p, "inside");
	snprintf(p, sizeof(p), "%s/root/link", f->top);
	assert_int_equal(symlink("dir/file", p), 0);
	snprintf(p, sizeof(p), "%s/root/up", f->top);
	assert_int_equal(symlink("..", p), 0);
	snprintf(p, sizeof(p), "%s/root/hop", f->top);
	assert_int_equal(symlink("dir", p), 0);
	{
		char target[128], abs[256];

		snprintf(target, sizeof(target), "%s/outside", f->top);
		snprintf(abs, sizeof(abs), "%s/root/abs", f->top);
		assert_int_equal(symlink(target, abs), 0);
	}
	snprintf(p, sizeof(p), "%s/root", f->top);
	f->rootfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->rootfd >= 0);
	f->walk = walk;
	*state = f;
	return 0;
}

static int setup_openat2(void **state)
{
	return setup(state, false);
}

static int setup_walk(void **state)
{
	return setup(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	close(f->rootfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->top);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int open_in(struct fixture *f, const char *path, int flags)
{
	bool walk = f->walk;

	return beneath_open(f->rootfd, path, flags, &walk);
}

static void read_is(int fd, const char *want)
{
	char buf[64];
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
	close(fd);
}

static void test_reaches_what_is_inside(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	int fd;

	read_is(open_in(f, "dir/file", O_RDONLY), "inside");
	fd = open_in(f, "dir/sub", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	close(fd);
	/* "" and "." are DIR itself. */
	fd = open_in(f, "", O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	close(fd);
	fd = open_in(f, ".", O_PATH);
	assert_true(fd >= 0);
	close(fd);
	/* O_PATH opens a symlink itself. */
	fd = open_in(f, "link", O_PATH);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	close(fd);
}

static void test_never_follows_a_symlink(void **state)
{
	struct fixture *f = *state;

	/* The last component... */
	assert_int_equal(open_in(f, "link", O_RDONLY), -ELOOP);
	/* ...and any on the way. */
	assert_true(open_in(f, "hop/file", O_RDONLY) < 0);
	assert_true(open_in(f, "hop/file", O_PATH) < 0);
	assert_true(open_in(f, "abs/secret", O_RDONLY) < 0);
	assert_true(open_in(f, "up/outside/secret", O_PATH) < 0);
}

static void test_never_climbs_out(void **state)
{
	struct fixture *f = *state;
	char abs[128];

	assert_int_equal(open_in(f, "..", O_PATH), -EXDEV);
	assert_int_equal(open_in(f, "../outside/secret", O_RDONLY), -EXDEV);
	assert_int_equal(open_in(f, "dir/../../outside/secret", O_RDONLY),
			 -EXDEV);
	snprintf(abs, sizeof(abs), "%s/outside/secret", f->top);
	assert_int_equal(open_in(f, abs, O_RDONLY), -EXDEV);
}

/* The wrappers use the process-wide choice (openat2 here). */
static void test_lstat_and_readlink(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	char buf[64];

	assert_int_equal(beneath_lstat(f->rootfd, "link", &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(beneath_lstat(f->rootfd, "", &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_true(beneath_lstat(f->rootfd, "abs/secret", &st) < 0);
	assert_true(beneath_lstat(f->rootfd, "hop/file", &st) < 0);
	assert_int_equal(beneath_readlink(f->rootfd, "link", buf, sizeof(buf)),
			 8);
	assert_string_equal(buf, "dir/file");
	assert_int_equal(beneath_readlink(f->rootfd, "link", buf, 8),
			 -ENAMETOOLONG);
	assert_true(beneath_readlink(f->rootfd, "up/outside", buf,
				     sizeof(buf)) < 0);
	assert_true(beneath_readlink(f->rootfd, "dir/file", buf, sizeof(buf)) <
		    0);
}

#define T(fn, s) cmocka_unit_test_setup_teardown(fn, s, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reaches_what_is_inside, setup_openat2),
		T(test_never_follows_a_symlink, setup_openat2),
		T(test_never_climbs_out, setup_openat2),
		T(test_lstat_and_readlink, setup_openat2),
		T(test_reaches_what_is_inside, setup_walk),
		T(test_never_follows_a_symlink, setup_walk),
		T(test_never_climbs_out, setup_walk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
