/*
 * wkfs.c - the wkfs command: dispatch to its subcommands.
 *
 * Exit status: 0 fine, 1 error, 2 usage, 3 needs attention (status).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "mount.h"
#include "wlog.h"

#include "version.h"

static const struct {
	const char *name, *args, *what;
} commands[] = {
	{"init",
	 "DIR [--remote URL [--token-file F | --token -] [--ca F] "
	 "[--insecure]] [--device NAME] [--hooks]",
	 "start syncing DIR: create DIR/.wkfs"},
	{"mount", "DIR [MNT] [-f] [-o OPTS] [--accept-deletions] [--no-syncd]",
	 "mount DIR (in place, or on MNT); starts wkfs-syncd"},
	{"umount", "DIR", "unmount DIR (its wkfs-syncd stops too)"},
	{"status", "[DIR...] [--json] [--watch [--interval S]]",
	 "the state of every mounted folder, or of DIR"},
	{"sync", "[DIR] [--timeout S]", "exchange with the remote now"},
	{"conflicts",
	 "[DIR] [--json] | [DIR] --resolve PATH --keep "
	 "mine|theirs|both",
	 "list conflict copies, or resolve one"},
	{"log", "[DIR] [--json] [-n N]", "the recorded operations"},
	{"history", "PATH [--json]",
	 "every version of a file, or of a directory's entries"},
	{"restore",
	 "PATH [--at TIME | --version N] [--to NEWPATH] | --deleted DIR",
	 "bring a version back as a new change"},
	{"stop", "[DIR]", "stop the folder's wkfs-syncd"},
	{"hooks", "install|remove DIR",
	 "git hooks that sync DIR after a merge or pull (git:.)"},
	{"help", "[COMMAND]", "this help, or one command's"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("usage: wkfs COMMAND [ARGS]    (DIR: the synced folder; "
	      "default: the one around the current directory)\n",
	      f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].what);
	fputs("  --version\n"
	      "mount helper form (fstab type fuse.wkfs, or mount.wkfs for type"
	      " wkfs):\n"
	      "  wkfs SRC MNT [-o OPTS]   mount SRC at MNT (SRC = MNT: in"
	      " place)\n"
	      "exit status: 0 fine, 1 error, 2 usage, 3 needs attention "
	      "(status)\n"
	      "'wkfs help COMMAND' or 'man wkfs' for more.\n",
	      f);
}

static int help(int argc, char **argv)
{
	if (argc < 3) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(argv[2], commands[i].name) == 0) {
			printf("usage: wkfs %s %s\n  %s\n", commands[i].name,
			       commands[i].args, commands[i].what);
			return 0;
		}
	}
	fprintf(stderr, "wkfs: no command '%s': see 'wkfs help'\n", argv[2]);
	return 2;
}

/*
 * The mount-helper form: `wkfs SRC MNT [-o OPTS]`, as mount.fuse3 runs it
 * for fstab type fuse.wkfs, and `mount.wkfs SRC MNT [-o OPTS]` (a link to
 * this program), as mount(8) runs it for type wkfs.  mount(8)'s helper
 * flags: -n (no mtab) -s (sloppy) -v are ignored, -f (fake) does nothing.
 */
static bool is_helper_form(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');

	base = base ? base + 1 : argv[0];
	if (strcmp(base, "mount.wkfs") == 0)
		return true;
	return argc >= 3 && strchr(argv[1], '/') && argv[2][0] != '-';
}

static int helper_mount(int argc, char **argv)
{
	char *args[8] = {"mount"};
	const char *src = NULL, *mnt = NULL, *opts = NULL;
	int n = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			opts = argv[++i];
		} else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2]) {
			opts = argv[i] + 2;
		} else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			i++;
		} else if (!strcmp(argv[i], "-n") || !strcmp(argv[i], "-s") ||
			   !strcmp(argv[i], "-v")) {
			continue;
		} else if (strcmp(argv[i], "-f") == 0) {
			return 0; /* mount -f: pretend */
		} else if (argv[i][0] == '-') {
			fprintf(stderr,
				"wkfs: unknown mount helper option "
				"'%s'\n",
				argv[i]);
			return 2;
		} else if (!src) {
			src = argv[i];
		} else if (!mnt) {
			mnt = argv[i];
		} else {
			fprintf(stderr,
				"usage: mount.wkfs SRC MNT [-o OPTS]\n");
			return 2;
		}
	}
	if (!src || !mnt) {
		fprintf(stderr, "usage: mount.wkfs SRC MNT [-o OPTS]\n");
		return 2;
	}
	args[n++] = (char *)src;
	args[n++] = (char *)mnt;
	if (opts) {
		args[n++] = "-o";
		args[n++] = (char *)opts;
	}
	args[n] = NULL;
	return fs_mount_main(n, args);
}

int main(int argc, char **argv)
{
	wlog_init("wkfs");
	if (is_helper_form(argc, argv))
		return helper_mount(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("wkfs %s\n", WKFS_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "help"))
		return help(argc, argv);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
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
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sync"))
		return cmd_sync(argc - 1, argv + 1);
	if (!strcmp(argv[1], "stop"))
		return cmd_stop(argc - 1, argv + 1);
	if (!strcmp(argv[1], "conflicts"))
		return cmd_conflicts(argc - 1, argv + 1);
	if (!strcmp(argv[1], "history"))
		return cmd_history(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(argv[1], "hooks"))
		return cmd_hooks(argc - 1, argv + 1);
	if (!strcmp(argv[1], "debug"))
		return cmd_debug(argc - 1, argv + 1);
	fprintf(stderr, "wkfs: unknown command '%s': see 'wkfs help'\n",
		argv[1]);
	return 2;
}
