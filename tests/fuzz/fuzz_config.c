/*
 * fuzz_config.c - libFuzzer harness for config.ini (lib/config.c, inih):
 * any bytes as DIR/.wkfs/config.ini.  A file that parses is written out
 * and parsed again, which must succeed (what `wkfs init` writes must load).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	struct wk_config c, again;
	char err[256], *out = NULL;
	size_t outlen = 0;
	FILE *f;

	f = fmemopen((void *)p, n, "r");
	if (!f)
		return 0;
	config_init(&c);
	if (config_parse(f, "config.ini", &c, err, sizeof(err)) != 0) {
		fclose(f);
		config_release(&c);
		return 0;
	}
	fclose(f);
	f = open_memstream(&out, &outlen);
	assert(f);
	assert(config_write(f, &c) == 0);
	fclose(f);
	f = fmemopen(out, outlen, "r");
	assert(f);
	config_init(&again);
	assert(config_parse(f, "config.ini", &again, err, sizeof(err)) == 0);
	fclose(f);
	free(out);
	config_release(&again);
	config_release(&c);
	return 0;
}
