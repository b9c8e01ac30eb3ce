/*
 * fuzz_ignore.c - libFuzzer harness for the ignore rules (lib/ignore.c):
 * the input up to its first NUL is a .wkfsignore (and each of its lines a
 * [sync] ignore pattern); what follows, NUL-separated, are paths matched
 * against the rules, as files and as directories.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

/* A copy of p[0 .. n) with a NUL after it. */
static char *dup0(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, 0, n), *end = p + n;
	size_t rules = nul ? (size_t)(nul - p) : n;
	struct ignore *ig = ignore_new();
	char *text = dup0(p, rules), *line, *save = NULL;

	if (!ig || !text)
		goto out;
	ignore_set_file(ig, "sub", text, rules);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		ignore_add_pattern(ig, "", line);
	for (const uint8_t *q = nul ? nul + 1 : end; q < end;) {
		const uint8_t *e = memchr(q, 0, end - q);
		char *path = dup0(q, (e ? e : end) - q);

		if (path) {
			ignore_match(ig, path, false);
			ignore_match(ig, path, true);
			ignore_match_leaf(ig, path, false);
		}
		free(path);
		q = e ? e + 1 : end;
	}
	ignore_remove_file(ig, "sub");
out:
	free(text);
	ignore_free(ig);
	return 0;
}
