/*
 * wkfs.c - the wkfs command: dispatch to its subcommands.
 *
 * Exit status: 0 fine, 1 error, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "mount.h"
#include "wlog.h"

#define WKFS_VERSION "0.1.0"

static void usage(FILE *f)
{
	fputs("usage: wkfs COMMAND [ARGS]\n"
	      "  init DIR [--device NAME]      start syncing DIR\n"
	      "  mount DIR [MNT] [-f] [-o OPTS] [--accept-deletions]\n"
	      "  umount DIR                    unmount\n"
	      "  log DIR [--json] [-n N]       the recorded operations\n"
	      "  --version, help\n",
	      f);
}

int main(int argc, char **argv)
{
	wlog_init("wkfs");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("wkfs %s\n", WKFS_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "init"))
		return cmd_init(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mount"))
		return fs_mount_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "umount") || !strcmp(argv[1], "unmount"))
		return fs_umount_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "log"))
		return cmd_log(argc - 1, argv + 1);
	if (!strcmp(argv[1], "debug"))
		return cmd_debug(argc - 1, argv + 1);
	fprintf(stderr, "wkfs: unknown command '%s': see 'wkfs help'\n",
		argv[1]);
	return 2;
}
