/*
 * init.c - `wkfs init DIR [--remote URL] [--token T] [--device NAME]`: create
 * the sidecar (config.ini, wkfs.db, tmp/, objects/) and record what DIR holds
 * as the first ops.
 *
 * A failed init removes what it made, so it leaves no half-made sidecar
 * behind and can simply be run again.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "config.h"
#include "db.h"
#include "recorder.h"
#include "scan.h"
#include "wlog.h"

int cmd_init(int argc, char **argv)
{
	static const struct option longs[] = {
		{"device", required_argument, NULL, 'd'},
		{"remote", required_argument, NULL, 'r'},
		{"token", required_argument, NULL, 't'},
		{0},
	};
	struct wk_config cfg;
	struct recorder *rec = NULL;
	struct scan_stats stats;
	char dir[PATH_MAX], err[512];
	const char *device = NULL, *remote = NULL, *token = NULL;
	const char *usage = "usage: wkfs init DIR [--remote URL] [--token T] "
			    "[--device NAME]\n";
	int c, fd, ret = 1, rc;
	FILE *f;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 'd') {
			device = optarg;
		} else if (c == 'r') {
			remote = optarg;
		} else if (c == 't') {
			token = optarg;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (remote && strncmp(remote, "ws://", 5) &&
	    strncmp(remote, "wss://", 6) && strncmp(remote, "git:", 4)) {
		wk_err("--remote %s: give ws://HOST:PORT/FOLDER, "
		       "wss://HOST:PORT/FOLDER or git:PATH-or-URL",
		       remote);
		return 2;
	}
	if (remote && strncmp(remote, "git:", 4) != 0 &&
	    (!token || strlen(token) != 64 ||
	     strspn(token, "0123456789abcdefABCDEF") != 64)) {
		wk_err("--token: a relay needs the 64 hex digits 'wkfs-relay "
		       "folder add' printed");
		return 2;
	}
	if (token && !remote) {
		wk_err("--token goes with --remote");
		return 2;
	}
	if (!realpath(argv[optind], dir)) {
		wk_err("%s: %s: give an existing directory", argv[optind],
		       strerror(errno));
		return 1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		wk_err("%s: %s: give an existing directory", dir,
		       strerror(errno));
		return 1;
	}
	if (faccessat(fd, ".wkfs", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		wk_err("%s: already initialised (.wkfs exists)", dir);
		goto out_close;
	}
	if (mkdirat(fd, ".wkfs", 0700) < 0 ||
	    mkdirat(fd, ".wkfs/tmp", 0700) < 0 ||
	    mkdirat(fd, ".wkfs/objects", 0700) < 0) {
		wk_err("%s: cannot create .wkfs: %s", dir, strerror(errno));
		goto out_close;
	}
	config_init(&cfg);
	if (device) {
		free(cfg.device_name);
		cfg.device_name = strdup(device);
	}
	if (remote) {
		cfg.remote_url = strdup(remote);
		cfg.remote_token = token ? strdup(token) : NULL;
	}
	{
		int cfd = openat(fd, ".wkfs/config.ini",
				 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		f = cfd >= 0 ? fdopen(cfd, "w") : NULL;
		if (!f || config_write(f, &cfg) != 0 || fclose(f) != 0) {
			wk_err("%s: cannot write .wkfs/config.ini", dir);
			goto out_undo;
		}
	}
	rc = rec_open(fd, &cfg, true, &rec, err, sizeof(err));
	if (rc) {
		wk_err("%s: %s", dir, err);
		goto out_undo;
	}
	rc = scan_tree(rec, fd, true, &stats, err, sizeof(err));
	rec_close(rec);
	if (rc) {
		wk_err("%s: %s", dir, err);
		goto out_undo;
	}
	printf("initialised %s: %llu entries recorded\n", dir,
	       (unsigned long long)stats.created);
	ret = 0;
	goto out_config;

out_undo:
	/* Leave nothing half-made. */
	unlinkat(fd, ".wkfs/config.ini", 0);
	unlinkat(fd, ".wkfs/wkfs.db", 0);
	unlinkat(fd, ".wkfs/wkfs.db-wal", 0);
	unlinkat(fd, ".wkfs/wkfs.db-shm", 0);
	unlinkat(fd, ".wkfs/tmp", AT_REMOVEDIR);
	unlinkat(fd, ".wkfs/objects", AT_REMOVEDIR);
	unlinkat(fd, ".wkfs", AT_REMOVEDIR);
out_config:
	config_release(&cfg);
out_close:
	close(fd);
	return ret;
}
