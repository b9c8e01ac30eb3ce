/*
 * relay_config.h - wkfs-relay's config file: `--config FILE`, or
 * DATA/relay.ini when that exists (wkfs-relay(8), CONFIGURATION).
 *
 *   [relay]
 *   bind = 0.0.0.0:7890          as --bind
 *   metrics = 127.0.0.1:9101     as --metrics
 *   admin-token-file = FILE      as --admin-token-file
 *   status-page = yes            as --status-page
 *   [tls]
 *   cert = FILE                  as --tls-cert
 *   key = FILE                   as --tls-key
 *   [limits]
 *   NAME = VALUE                 as --limit NAME=VALUE
 *
 * The file gives the values the command line does not: wkfs-relay
 * applies it first and its flags after.  Parsing checks every value as
 * the flag's parser would and stops at the first problem, reported as
 * "FILE:LINE: what is wrong: what to do" (one line); nothing of a bad
 * file is used.  Not thread-safe; the relay reads it once, at start.
 */
#ifndef WKFS_RELAY_CONFIG_H
#define WKFS_RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "relay_limits.h"

/* The config file looked for in the data directory without --config. */
#define RELAY_CONFIG_NAME "relay.ini"

struct relay_config {
	char *path; /* the file relay_config_load() read, or NULL */
	char *bind;		 /* [relay] bind, or NULL */
	char *metrics;		 /* [relay] metrics, or NULL */
	char *admin_token_file;	 /* [relay] admin-token-file, or NULL */
	bool status_page;	 /* [relay] status-page = yes */
	char *tls_cert;		 /* [tls] cert, or NULL */
	char *tls_key;		 /* [tls] key, or NULL */
	struct relay_limits lim; /* the defaults, with [limits] set over */
	bool set_connections;	 /* [limits] connections was given */
};

/* An empty config: nothing set, the default limits. */
void relay_config_init(struct relay_config *c);
void relay_config_release(struct relay_config *c);

/*
 * Reads f (named name in errors) into c, which relay_config_init() made.
 * 0, or -EINVAL with "NAME:LINE: ..." in err; c is then to be released
 * and not used.
 */
int relay_config_parse(FILE *f, const char *name, struct relay_config *c,
		       char *err, size_t errlen);

/*
 * relay_config_parse() of the file at path, then checks that the files
 * it names can be read; c->path is then a copy of path.  -ENOENT when path does not exist (err says so:
 * the caller decides whether that is an error), another -errno with a
 * one-line err otherwise.
 */
int relay_config_load(const char *path, struct relay_config *c, char *err,
		      size_t errlen);

/*
 * "1.2.3.4:80", "[::1]:80", or an address alone (*port kept): a numeric
 * address only (lws takes a name as an interface's).  s is cut in place
 * and *host points into it.  0 or -EINVAL.
 */
int relay_parse_addr(char *s, const char **host, int *port);

#endif
