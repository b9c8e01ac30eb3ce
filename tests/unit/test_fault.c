/*
 * test_fault.c - fault points (lib/fault.h): each case forks a child that
 * reaches a point some number of times under an environment, and checks
 * at which hit it died (exit FAULT_EXIT), if at all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"

static void set_or_unset(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

/*
 * Forks a child that sets WKFS_FAULT, WKFS_FAULT_AT and WKFS_FAULT_DIR to
 * fault, at and dir (NULL: unset), then reaches `point` `hits` times,
 * writing one byte to a pipe before each.  Returns the hit it died at
 * (1-based), or 0 when it lived through them all.
 */
static int died_at(const char *fault, const char *at, const char *dir,
		   const char *point, int hits)
{
	int fds[2], status, n = 0;
	char b;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		set_or_unset("WKFS_FAULT", fault);
		set_or_unset("WKFS_FAULT_AT", at);
		set_or_unset("WKFS_FAULT_DIR", dir);
		for (int i = 0; i < hits; i++) {
			if (write(fds[1], "h", 1) != 1)
				_exit(2);
			fault_point(point);
		}
		_exit(0);
	}
	close(fds[1]);
	while (read(fds[0], &b, 1) == 1)
		n++;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 0)
		return 0;
	assert_int_equal(WEXITSTATUS(status), FAULT_EXIT);
	return n;
}

static void test_env_names_the_point(void **state)
{
	assert_int_equal(died_at("a.b", NULL, NULL, "a.b", 5), 1);
	assert_int_equal(died_at("a.b", NULL, NULL, "a.bc", 5), 0);
	assert_int_equal(died_at("a.b", NULL, NULL, "a", 5), 0);
	assert_int_equal(died_at("a.b", "3", NULL, "a.b", 5), 3);
	assert_int_equal(died_at("a.b:4", NULL, NULL, "a.b", 5), 4);
	assert_int_equal(died_at("a.b:4", NULL, NULL, "a.b", 3), 0);
	assert_int_equal(died_at(NULL, NULL, NULL, "a.b", 5), 0);
}

/* Writes text to path (a new file). */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_dir_arms_by_file(void **state)
{
	char dir[] = "/tmp/wkfs-fault.XXXXXX", arm[64];

	assert_non_null(mkdtemp(dir));
	snprintf(arm, sizeof(arm), "%s/x.y", dir);
	/* no file: unarmed */
	assert_int_equal(died_at(NULL, NULL, dir, "x.y", 3), 0);
	/* an empty file: the next hit, and the file is gone */
	write_file(arm, "");
	assert_int_equal(died_at(NULL, NULL, dir, "other", 3), 0);
	assert_int_equal(died_at(NULL, NULL, dir, "x.y", 3), 1);
	assert_int_equal(access(arm, F_OK), -1);
	assert_int_equal(died_at(NULL, NULL, dir, "x.y", 3), 0);
	/* a count: that hit, counted down across processes */
	write_file(arm, "5\n");
	assert_int_equal(died_at(NULL, NULL, dir, "x.y", 3), 0);
	assert_int_equal(died_at(NULL, NULL, dir, "x.y", 3), 2);
	assert_int_equal(access(arm, F_OK), -1);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_names_the_point),
		cmocka_unit_test(test_dir_arms_by_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
