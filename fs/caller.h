/*
 * caller.h - doing a backing syscall as the process that asked for it.
 *
 * A mount run by root with allow_other serves every user of the machine.
 * What a user creates through it must be theirs (owner, group, the
 * set-group-ID rules of the directory), as on any local file system, so the
 * handlers that create names run their syscall with the caller's file-system
 * credentials: fsuid, fsgid and supplementary groups, switched for the
 * calling thread only (setfsuid/setfsgid are per thread, and the raw
 * setgroups system call is too, unlike glibc's wrapper, which changes every
 * thread).  The backing file system then also checks the caller's right to
 * create there, on top of the kernel's own check (default_permissions).
 *
 * The thread's umask becomes the caller's too (each worker thread gets its
 * own umask once, by unsharing its file-system attributes): the kernel
 * leaves the umask to the mount (FUSE_CAP_DONT_MASK), so the backing file
 * system applies it as locally, or a default ACL instead of it, and the
 * mount process's own umask no longer masks what users create.
 *
 * Only the request's thread changes, only between caller_begin and
 * caller_end, and nothing else runs on that thread in between: the apply
 * thread, the recorder's writer and the other handlers keep the mount's
 * credentials.  A mount run by another user cannot change credentials and
 * does nothing here (everything it creates is its own, as before).
 *
 * Calling sequence, around the syscall and nothing else:
 *
 *	struct caller c;
 *	int rc = caller_begin(req, &c, &mode);
 *	if (rc) reply the error;
 *	... mkdirat() ...; save errno;
 *	caller_end(&c);
 */
#ifndef WKFS_CALLER_H
#define WKFS_CALLER_H

#include "fs.h"

struct caller {
	bool switched; /* credentials changed: caller_end puts them back */
	bool masked;   /* the thread's umask is the caller's until then */
	mode_t umask;  /* the thread's umask before */
};

/* Notes the mount process's own credentials; once, before serving. */
void caller_init(void);

/*
 * Takes on the credentials and umask of req's caller for this thread.
 * mode (NULL for a syscall that takes none) is the mode to create with: in
 * the unlikely case the thread cannot have a umask of its own, the caller's
 * umask is taken out of it here instead.  0, or -errno with nothing
 * changed.
 */
int caller_begin(fuse_req_t req, struct caller *c, mode_t *mode);

/* Puts the mount's credentials back; errno is kept. */
void caller_end(struct caller *c);

#endif
