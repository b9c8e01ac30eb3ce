/*
 * rundir.h - where a mounted folder's processes meet.
 *
 * While wkfs is mounted over DIR, DIR/.wkfs is hidden from every process, so
 * the mount process publishes a control socket in a runtime directory keyed
 * by DIR's absolute path:
 *
 *   /run/wkfs/<key>/            (root)
 *   $XDG_RUNTIME_DIR/wkfs/<key>/ (a user; /tmp/wkfs-<uid>/<key>/ without it)
 *     path      DIR's absolute path, for listings
 *     fs.pid    the mount process
 *     fs.sock   its control socket (see ctl.h)
 *
 * <key> is 16 hex digits of XXH64 of the path: fixed length, so socket
 * paths stay under the 108 bytes of sun_path whatever DIR is.
 */
#ifndef WKFS_RUNDIR_H
#define WKFS_RUNDIR_H

#include <stddef.h>

#define RUNDIR_MAX 4096

/* The runtime base for this user (not created). */
int rundir_base(char *out, size_t len);

/* The runtime directory of the synced folder at absolute path dir. */
int rundir_for(const char *dir, char *out, size_t len);

/* Same, creating it (mode 0700) and writing its "path" file. */
int rundir_make(const char *dir, char *out, size_t len);

#endif
