/*
 * rundir.h - where a mounted folder's processes meet.
 *
 * While wkfs is mounted over DIR, DIR/.wkfs is hidden from every process, so
 * the mount process publishes a control socket in a runtime directory keyed
 * by DIR's absolute path:
 *
 *   /run/wkfs/<key>/            (root)
 *   $XDG_RUNTIME_DIR/wkfs/<key>/ (a user; without it /run/user/<uid>/wkfs
 *                                when that exists, else /tmp/wkfs-<uid>)
 *     path      DIR's absolute path, for listings
 *     fs.pid    the mount process
 *     fs.sock   its control socket (see ctl.h)
 *
 * <key> is 16 hex digits of XXH64 of the path: fixed length, so socket
 * paths stay under the 108 bytes of sun_path whatever DIR is.
 *
 * Nothing in a runtime directory is used before rundir_safe() passed on
 * it: another user could otherwise plant /tmp/wkfs-<uid> (or a socket in a
 * directory they may write to) and answer our requests.  XDG_RUNTIME_DIR
 * and /run/user/<uid> are used only when they are ours and not writable
 * by others.  The servers check their clients too (ctl_peer_ok()).
 */
#ifndef WKFS_RUNDIR_H
#define WKFS_RUNDIR_H

#include <stddef.h>

#define RUNDIR_MAX 4096

/*
 * The one check of a runtime directory: path must be a directory (not a
 * symbolic link), owned by the effective uid, with no permission for the
 * group or others (mode 0700).  0, -ENOENT when it does not exist, or
 * -EPERM (-errno) with a one-line reason and what to do in err.
 */
int rundir_safe(const char *path, char *err, size_t errlen);

/*
 * The runtime base for this user (not created).  0 when it is missing or
 * passes rundir_safe(); else -EPERM with the reason in err.
 */
int rundir_base(char *out, size_t len, char *err, size_t errlen);

/* The runtime directory of the synced folder at absolute path dir: 0 when
 * it (and the base) are missing or safe, else -EPERM and err. */
int rundir_for(const char *dir, char *out, size_t len, char *err,
	       size_t errlen);

/* Same, creating both (mode 0700) and writing its "path" file. */
int rundir_make(const char *dir, char *out, size_t len, char *err,
		size_t errlen);

#endif
