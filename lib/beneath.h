/*
 * beneath.h - resolving a relative path beneath a directory fd without
 * ever leaving it: no symbolic link is followed at any step (not only the
 * last), and no ".." or absolute path can climb out.
 *
 * Why: the mount sits over DIR itself, so a walk from DIR's backing fd
 * that follows a symlink (a local program may put one where the index
 * still sees a directory) or climbs to DIR's parent comes back in through
 * the mount.  The mount process would then wait on a FUSE request that it
 * must serve itself; at unmount, with nobody left to answer, that wait
 * never ends and the process can never exit.
 *
 * openat2() with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS does it in one
 * call; kernels without it (or WKFS_NO_OPENAT2 set, for tests) get a walk
 * of O_NOFOLLOW opens over names checked to hold no "..".
 */
#ifndef WKFS_BENEATH_H
#define WKFS_BENEATH_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Opens path ("" or "." = the directory itself) beneath rootfd with the
 * open(2) flags given (O_CLOEXEC and O_NOFOLLOW are added: the last
 * component is never followed either; with O_PATH a symlink itself is
 * opened).  *walk_only selects the walk and is set when the kernel lacks
 * openat2; NULL uses a process-wide flag.  fd, or -errno (-ELOOP for a
 * symlink on the way, -EXDEV for an escape).
 */
int beneath_open(int rootfd, const char *path, int flags, bool *walk_only);

/* lstat(2) of path beneath rootfd.  0 or -errno. */
int beneath_lstat(int rootfd, const char *path, struct stat *st);

/* readlink(2) of path beneath rootfd, NUL-terminated.  Its length or
 * -errno (-ENAMETOOLONG when len is too small). */
ssize_t beneath_readlink(int rootfd, const char *path, char *buf, size_t len);

#endif
