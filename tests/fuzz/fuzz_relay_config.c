/*
 * fuzz_relay_config.c - libFuzzer harness for wkfs-relay's config file
 * (syncd/relay_config.c, inih): any bytes as relay.ini.  A file either
 * parses into a config whose values the flags' own parsers take, or is
 * refused with a one-line "NAME:LINE: ..." reason.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "relay_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n);

/* A value relay_config_parse() took must be one relay_parse_addr() takes. */
static void check_addr(const char *v)
{
	char s[128];
	const char *host;
	int port = 0;

	if (!v)
		return;
	assert(strlen(v) < sizeof(s));
	memcpy(s, v, strlen(v) + 1);
	assert(relay_parse_addr(s, &host, &port) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	struct relay_config c;
	char err[512];
	FILE *f;
	int rc;

	f = fmemopen((void *)p, n, "r");
	if (!f)
		return 0;
	relay_config_init(&c);
	err[0] = '\0';
	rc = relay_config_parse(f, "relay.ini", &c, err, sizeof(err));
	fclose(f);
	if (rc) {
		assert(strncmp(err, "relay.ini", 9) == 0);
		assert(!strchr(err, '\n'));
	} else {
		assert(!c.tls_cert == !c.tls_key);
		check_addr(c.bind);
		check_addr(c.metrics);
	}
	relay_config_release(&c);
	return 0;
}
