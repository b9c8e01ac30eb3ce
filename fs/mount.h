/*
 * mount.h - the commands fs/ provides to the wkfs tool.
 */
#ifndef WKFS_MOUNT_H
#define WKFS_MOUNT_H

/* `wkfs mount DIR [MNT] [-f] [-o OPTS] [--accept-deletions]`; argv[0] is
 * "mount".  Returns the exit status. */
int fs_mount_main(int argc, char **argv);

/* `wkfs umount DIR`. */
int fs_umount_main(int argc, char **argv);

#endif
