/*
 * syncctl.h - a folder's wkfs-syncd seen from outside: is it running,
 * which version, start it, ask it, stop it.
 *
 * The daemon's files are in the folder's runtime directory (rundir.h):
 * syncd.pid, syncd.lock (flock'ed for its life) and syncd.sock (its control
 * socket, requests in syncd/syncd_ctl.c).  Used by `wkfs mount` (which
 * starts the daemon and stops it when the mount ends), `wkfs umount`,
 * `wkfs sync`, `wkfs stop` and `wkfs status`.
 */
#ifndef WKFS_SYNCCTL_H
#define WKFS_SYNCCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The pid of the wkfs-syncd running for the runtime directory run, or 0.
 * A pid file whose process is gone (kill -9, a crash) is stale: it is
 * removed, and so is a socket nobody answers on.
 */
pid_t syncctl_pid(const char *run);

/*
 * Starts wkfs-syncd for dir (the path its mount or folder is known by):
 * the binary next to this program, else wkfs-syncd from PATH.  The daemon
 * detaches itself; this waits up to timeout_ms for its socket to answer.
 * 0, or -errno (-ECHILD: it exited with an error, which it printed).
 */
int syncctl_start(const char *dir, const char *run, int timeout_ms);

/*
 * Asks the daemon to stop and waits up to timeout_ms for it to exit, then
 * sends SIGTERM and waits as long again.  0 once none runs.
 */
int syncctl_stop(const char *run, int timeout_ms);

/* Sends "hello VERSION" and copies the daemon's version into version. */
int syncctl_hello(const char *run, char *version, size_t len);

/*
 * Makes sure a daemon no older than this program runs for dir: starts one,
 * or stops an older one and starts ours (the version handshake).
 * *restarted (may be NULL) says whether an older one was replaced.
 */
int syncctl_ensure(const char *dir, const char *run, bool *restarted);

#endif
