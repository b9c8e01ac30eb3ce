/*
 * fault.c - named fault points (see fault.h).
 */
#include "fault.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long fault_hits;

/*
 * WKFS_FAULT_DIR/name exists: armed.  It holds how many hits are left
 * (empty: 1); the last deletes it and dies.  Under a lock: points are
 * reached from several threads.
 */
static void fault_file(const char *dir, const char *name)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char arm[4096], left[24] = "";
	unsigned long n = 1;
	ssize_t got;
	int fd;

	snprintf(arm, sizeof(arm), "%s/%s", dir, name);
	pthread_mutex_lock(&lock);
	fd = open(arm, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		goto out;
	got = read(fd, left, sizeof(left) - 1);
	if (got > 0 && left[0] >= '0' && left[0] <= '9')
		n = strtoul(left, NULL, 10);
	if (n <= 1 && unlink(arm) == 0)
		_exit(FAULT_EXIT);
	snprintf(left, sizeof(left), "%lu\n", n - 1);
	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, left, strlen(left), 0) != (ssize_t)strlen(left))
		unlink(arm); /* cannot count: disarmed rather than wrong */
	close(fd);
out:
	pthread_mutex_unlock(&lock);
}

/* WKFS_FAULT names this point: "name", or "name:N" for the N-th hit. */
static bool fault_named(const char *armed, const char *name,
			unsigned long *want)
{
	size_t len = strlen(name);

	if (strncmp(armed, name, len) != 0)
		return false;
	if (armed[len] == ':') {
		*want = strtoul(armed + len + 1, NULL, 10);
		return true;
	}
	return armed[len] == '\0';
}

void fault_point(const char *name)
{
	const char *armed = getenv("WKFS_FAULT");
	const char *dir = getenv("WKFS_FAULT_DIR");
	const char *at = getenv("WKFS_FAULT_AT");
	unsigned long want = 1;

	if (dir)
		fault_file(dir, name);
	if (at && *at)
		want = strtoul(at, NULL, 10);
	if (!armed || !fault_named(armed, name, &want))
		return;
	if (__atomic_add_fetch(&fault_hits, 1, __ATOMIC_SEQ_CST) == want)
		_exit(FAULT_EXIT);
}

void fault_pause(const char *name)
{
	const char *dir = getenv("WKFS_PAUSE_DIR");
	char arm[4096], paused[4096];
	struct timespec tick = {0, 10 * 1000 * 1000};
	int fd;

	if (!dir)
		return;
	snprintf(arm, sizeof(arm), "%s/%s", dir, name);
	snprintf(paused, sizeof(paused), "%s/%s.paused", dir, name);
	if (unlink(arm) < 0)
		return; /* not armed */
	fd = open(paused, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	close(fd);
	for (int i = 0; i < 60000 && access(paused, F_OK) == 0; i++)
		nanosleep(&tick, NULL);
}
