/*
 * cmds.h - subcommands of the wkfs tool; each returns the exit status.
 */
#ifndef WKFS_CMDS_H
#define WKFS_CMDS_H

int cmd_init(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_conflicts(int argc, char **argv);
int cmd_hooks(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_restore(int argc, char **argv);
/* Test-only helpers (tools/debug.c). */
int cmd_debug(int argc, char **argv);

#endif
