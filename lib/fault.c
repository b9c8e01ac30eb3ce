/*
 * fault.c - named fault points (see fault.h).
 */
#include "fault.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long fault_hits;

void fault_point(const char *name)
{
	const char *armed = getenv("WKFS_FAULT");
	const char *at;
	unsigned long want = 1;

	if (!armed || strcmp(armed, name) != 0)
		return;
	at = getenv("WKFS_FAULT_AT");
	if (at && *at)
		want = strtoul(at, NULL, 10);
	if (__atomic_add_fetch(&fault_hits, 1, __ATOMIC_SEQ_CST) == want)
		_exit(FAULT_EXIT);
}
