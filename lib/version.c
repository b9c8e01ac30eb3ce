/*
 * version.c - comparing dotted version strings.
 */
#include <stdlib.h>

#include "version.h"

int wkfs_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		char *ea, *eb;
		unsigned long x = strtoul(a, &ea, 10);
		unsigned long y = strtoul(b, &eb, 10);

		if (x != y)
			return x < y ? -1 : 1;
		/* Anything after the numbers ("0.2.0-test") orders as text. */
		if (ea == a || eb == b) {
			while (*a && *a == *b)
				a++, b++;
			return (unsigned char)*a - (unsigned char)*b;
		}
		a = *ea == '.' ? ea + 1 : ea;
		b = *eb == '.' ? eb + 1 : eb;
		if (ea == a && eb == b && !*a && !*b)
			break;
	}
	return 0;
}
