/*
 * fault.c - named fault points (see fault.h).
 */
#include "fault.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long fault_hits;

/* WKFS_FAULT_DIR/name exists: armed; deleting it is the one hit. */
static void fault_file(const char *dir, const char *name)
{
	char arm[4096];

	snprintf(arm, sizeof(arm), "%s/%s", dir, name);
	if (unlink(arm) == 0)
		_exit(FAULT_EXIT);
}

void fault_point(const char *name)
{
	const char *armed = getenv("WKFS_FAULT");
	const char *dir = getenv("WKFS_FAULT_DIR");
	const char *at;
	unsigned long want = 1;

	if (dir)
		fault_file(dir, name);
	if (!armed || strcmp(armed, name) != 0)
		return;
	at = getenv("WKFS_FAULT_AT");
	if (at && *at)
		want = strtoul(at, NULL, 10);
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
