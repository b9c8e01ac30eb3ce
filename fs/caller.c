/*
 * caller.c - a request's thread takes on its caller's credentials for one
 * backing syscall (see caller.h).
 *
 * Not a security boundary of its own: the kernel has already checked the
 * request against what the mount shows (default_permissions).  What the
 * switch buys is ownership as the kernel's file systems give it, done by
 * the backing file system itself (the directory's set-group-ID bit, the
 * caller's groups), with its own check of the caller's rights on top.
 */
#include "caller.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wlog.h"
#include "xalloc.h"

#define GROUPS_ON_STACK 64

/* The mount process's own credentials, set once before any thread. */
static struct {
	bool can_switch; /* root: may act as anyone */
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t *groups;
} self;

void caller_init(void)
{
	int n;

	self.uid = geteuid();
	self.gid = getegid();
	self.can_switch = self.uid == 0;
	n = getgroups(0, NULL);
	if (n > 0) {
		self.groups = xcalloc((size_t)n, sizeof(gid_t));
		n = getgroups(n, self.groups);
	}
	self.ngroups = n > 0 ? n : 0;
}

/* The per-thread system call: glibc's setgroups() changes every thread. */
static int thread_setgroups(int n, const gid_t *groups)
{
	return syscall(SYS_setgroups, (size_t)n, groups) < 0 ? -errno : 0;
}

/*
 * Whether this thread has a umask of its own: 0 not yet asked, 1 yes, -1
 * no (unshare failed; the process's umask is shared and left alone).
 */
static __thread int own_umask;

/* Sets the thread's umask to the caller's; false when it cannot. */
static bool set_umask(struct caller *c, mode_t mask)
{
	if (own_umask == 0)
		own_umask = unshare(CLONE_FS) == 0 ? 1 : -1;
	if (own_umask < 0)
		return false;
	c->umask = umask(mask);
	c->masked = true;
	return true;
}

void caller_end(struct caller *c)
{
	int saved = errno;

	if (c->masked)
		umask(c->umask);
	c->masked = false;
	if (!c->switched) {
		errno = saved;
		return;
	}
	/* fsuid first: back at 0, the thread gets its capabilities back. */
	setfsuid(self.uid);
	setfsgid(self.gid);
	if (thread_setgroups(self.ngroups, self.groups) != 0 ||
	    (uid_t)setfsuid(-1) != self.uid ||
	    (gid_t)setfsgid(-1) != self.gid) {
		/* Serving further requests as somebody else would be worse
		 * than stopping. */
		wk_err("cannot restore the mount's credentials; stopping");
		abort();
	}
	c->switched = false;
	errno = saved;
}

int caller_begin(fuse_req_t req, struct caller *c, mode_t *mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t stack[GROUPS_ON_STACK], *groups = stack;
	int n, rc;

	c->switched = false;
	c->masked = false;
	if (mode && !set_umask(c, ctx->umask & 0777))
		*mode &= ~ctx->umask;
	if (!self.can_switch || (ctx->uid == self.uid && ctx->gid == self.gid))
		return 0;
	/* Read from /proc: the request carries no groups.  A caller gone
	 * meanwhile (or hidden by hidepid) has its own group only. */
	n = fuse_req_getgroups(req, GROUPS_ON_STACK, stack);
	if (n > GROUPS_ON_STACK) {
		int cap = n;

		groups = xcalloc((size_t)cap, sizeof(gid_t));
		n = fuse_req_getgroups(req, cap, groups);
		if (n > cap)
			n = cap;
	}
	if (n < 0)
		n = 0;
	c->switched = true;
	rc = thread_setgroups(n, groups);
	if (!rc) {
		setfsgid(ctx->gid);
		setfsuid(ctx->uid);
		if ((gid_t)setfsgid(-1) != ctx->gid ||
		    (uid_t)setfsuid(-1) != ctx->uid)
			rc = -EPERM;
	}
	if (groups != stack)
		free(groups);
	if (rc)
		caller_end(c);
	return rc;
}
