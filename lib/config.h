/*
 * config.h - DIR/.wkfs/config.ini, read with inih.
 *
 *   [device]  name = laptop          short name used in conflict file names
 *   [sync]    ignore = *.log         gitignore pattern; repeat the key for more
 *             world-writable = no    may modes from other replicas give
 *                                    write permission to others (o+w)?
 *                                    (wk_remote_mode() in op.h)
 *   [remote]  url = ws://host:7890/notes | wss://... | git:PATH-or-URL
 *             token = ...            relay access token
 *             insecure = no          yes: ws:// to a host other than this
 *                                    one is allowed (remote_url_check())
 *             ca = /path/ca.pem      wss://: trust the certificates this
 *                                    CA file names (else the system's)
 *             branch = wk/oplog      git remotes
 *             interval = 30          git remotes: seconds between fetches
 *
 * Unknown sections, unknown keys and bad values are errors naming the file,
 * the line and the key; nothing is guessed.  A missing file means defaults.
 */
#ifndef WKFS_CONFIG_H
#define WKFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct wk_config {
	char *device_name;  /* NULL: hostname */
	char **ignore;      /* patterns from [sync] ignore, in file order */
	size_t n_ignore;
	bool world_writable; /* [sync] world-writable = yes */
	char *remote_url;   /* NULL: local only */
	char *remote_token;
	bool remote_insecure; /* [remote] insecure = yes */
	char *remote_ca;      /* [remote] ca, an absolute path, or NULL */
	char *remote_branch;         /* default "wk/oplog" */
	unsigned remote_interval_s;  /* default 30 */
};

/* Sets every field to its default. */
void config_init(struct wk_config *c);
void config_release(struct wk_config *c);

/*
 * Parses f (named fname in messages).  Returns 0, or -EINVAL with a one-line
 * message such as "config.ini:4: unknown key 'colour' in [sync]" in err.
 * On error c holds defaults only.
 */
int config_parse(FILE *f, const char *fname, struct wk_config *c, char *err,
		 size_t errlen);

/*
 * Reads .wkfs/config.ini beneath the directory fd dirfd (missing: defaults).
 * Errors as config_parse, or -errno when the file exists but cannot be read.
 */
int config_load_at(int dirfd, struct wk_config *c, char *err, size_t errlen);

/*
 * The transport rule for a relay URL: ws:// sends the folder's token and
 * every op in clear, so it is allowed only to this machine (localhost,
 * 127.0.0.0/8, [::1]) unless insecure is set ([remote] insecure = yes);
 * wss:// and git: are always allowed.  Decided from the URL alone, before
 * any name is resolved or any connection made.  0, or -EPERM with a
 * one-line reason and what to do in err.
 */
int remote_url_check(const char *url, bool insecure, char *err, size_t errlen);

/* Writes c as an ini file to f (what `wkfs init` creates). 0 or -errno. */
int config_write(FILE *f, const struct wk_config *c);

#endif
