/*
 * config.h - DIR/.wkfs/config.ini, read with inih.
 *
 *   [device]  name = laptop          short name used in conflict file names
 *   [sync]    ignore = *.log         gitignore pattern; repeat the key for more
 *   [remote]  url = ws://host:7890/notes | wss://... | git:PATH-or-URL
 *             token = ...            relay access token
 *             branch = wk/oplog      git remotes
 *             interval = 30          git remotes: seconds between fetches
 *
 * Unknown sections, unknown keys and bad values are errors naming the file,
 * the line and the key; nothing is guessed.  A missing file means defaults.
 */
#ifndef WKFS_CONFIG_H
#define WKFS_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct wk_config {
	char *device_name;  /* NULL: hostname */
	char **ignore;      /* patterns from [sync] ignore, in file order */
	size_t n_ignore;
	char *remote_url;   /* NULL: local only */
	char *remote_token;
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

/* Writes c as an ini file to f (what `wkfs init` creates). 0 or -errno. */
int config_write(FILE *f, const struct wk_config *c);

#endif
