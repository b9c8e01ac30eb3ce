/*
 * ctl.h - the mount process's control socket (RUNDIR/fs.sock).
 *
 * A unix stream socket; a client sends one request line and reads one reply
 * line.  Requests (version 1):
 *
 *   dirfd   -> "ok" with DIR's directory fd attached (SCM_RIGHTS): how other
 *              processes reach the hidden DIR/.wkfs while DIR is mounted
 *   flush   -> "ok" once every op recorded so far is committed to wkfs.db
 *   pid     -> "ok PID"
 *   apply   -> runs a round of the apply thread (fs/apply.h) and, once it
 *              is over, "ok APPLIED PENDING HELD ATTENTION": applied_seq
 *              (every op with seq <= it is in the merge engine's tree, but
 *              the held ones), how many remote ops after it are not taken
 *              yet, how many are held back (lib/apply_plan.h: content
 *              missing, a file open for writing), and how many of those
 *              need attention (all but the ones waiting for a close)
 *   applied -> the same answer without running a round
 *
 * Any other line -> "error unknown request".  Lines are at most
 * CTL_LINE_MAX bytes.  wkfs-syncd's socket (syncd.sock) speaks the same
 * framing with its own requests (syncd/syncd_ctl.c).  Who may connect:
 * the socket's directory is 0700 and checked before use (rundir.h), and
 * the servers accept only through ctl_accept(), which checks the peer's
 * uid (SO_PEERCRED) as well.
 */
#ifndef WKFS_CTL_H
#define WKFS_CTL_H

#include <stddef.h>
#include <sys/types.h>

#define CTL_LINE_MAX 4096

/* Listens on path (an old socket file there is replaced). Returns fd. */
int ctl_listen(const char *path);

/* Connects, sends req, reads the reply line into reply (NUL-terminated, no
 * newline).  With fd_out non-NULL, a passed fd is stored there (-1 if none).
 * Returns 0 or -errno (-ECONNREFUSED / -ENOENT: nobody listening). */
int ctl_request(const char *path, const char *req, char *reply, size_t len,
		int *fd_out);

/*
 * Connects and sends req, for a request answered with several lines: read
 * them with ctl_read_line() and close the fd.  Returns the fd or -errno.
 */
int ctl_connect(const char *path, const char *req);

/*
 * The one check of a client of a control socket: its uid (SO_PEERCRED)
 * must be this process's effective uid, or root's.  0, -EACCES, or -errno;
 * *uid (when not NULL) gets the peer's uid.
 */
int ctl_peer_ok(int fd, uid_t *uid);

/*
 * Server side: accepts the next client that passes ctl_peer_ok(); others
 * get "error permission denied: ..." and are closed (and logged).  Returns
 * the fd, or -errno once the listening socket fails (shut down).
 */
int ctl_accept(int lfd);

/* Server side: reads one request line from a connected client. */
int ctl_read_line(int fd, char *buf, size_t len);

/* Server side: sends a reply line, with fd attached when pass_fd >= 0. */
int ctl_reply(int fd, const char *line, int pass_fd);

#endif
