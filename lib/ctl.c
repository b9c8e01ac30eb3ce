/*
 * ctl.c - line requests over a unix socket, with fd passing.
 */
#include "ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "wlog.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int ctl_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, rc;

	rc = fill_addr(&sa, path);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Reads up to a newline, with a deadline so a stuck peer cannot hang us. */
static int read_line_fd(int fd, char *buf, size_t len, int *passed)
{
	size_t n = 0;

	if (passed)
		*passed = -1;
	while (n + 1 < len) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = {buf + n, 1};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t r;

		if (passed) {
			msg.msg_control = cbuf;
			msg.msg_controllen = sizeof(cbuf);
		}
		r = poll(&pfd, 1, 30000);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r < 0)
			continue;
		r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ECONNRESET;
		if (passed) {
			struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

			if (c && c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS)
				memcpy(passed, CMSG_DATA(c), sizeof(int));
		}
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

int ctl_read_line(int fd, char *buf, size_t len)
{
	return read_line_fd(fd, buf, len, NULL);
}

int ctl_reply(int fd, const char *line, int pass_fd)
{
	char buf[CTL_LINE_MAX + 1];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	int n = snprintf(buf, sizeof(buf), "%s\n", line);

	if (n < 0 || n >= (int)sizeof(buf))
		return -EMSGSIZE;
	iov.iov_base = buf;
	iov.iov_len = n;
	if (pass_fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == n ? 0 : -errno;
}

int ctl_peer_ok(int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -errno;
	if (uid)
		*uid = cr.uid;
	return cr.uid == geteuid() || cr.uid == 0 ? 0 : -EACCES;
}

int ctl_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		char line[128];
		uid_t uid = (uid_t)-1;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return -errno;
		}
		if (ctl_peer_ok(fd, &uid) == 0)
			return fd;
		snprintf(line, sizeof(line),
			 "error permission denied: uid %d may not use this "
			 "socket",
			 (int)uid);
		ctl_reply(fd, line, -1);
		/* Take its request line, if it comes at once, so that it
		 * reads the refusal rather than a broken pipe. */
		shutdown(fd, SHUT_WR);
		{
			struct pollfd p = {fd, POLLIN, 0};

			if (poll(&p, 1, 200) > 0)
				(void)!recv(fd, line, sizeof(line),
					    MSG_DONTWAIT);
		}
		close(fd);
		wk_warn("refused a control connection from uid %d (only uid "
			"%u and root may connect)",
			(int)uid, (unsigned)geteuid());
	}
}

int ctl_connect(const char *path, const char *req)
{
	struct sockaddr_un sa;
	char line[CTL_LINE_MAX + 1];
	int fd, rc, n;

	rc = fill_addr(&sa, path);
	if (rc)
		return rc;
	n = snprintf(line, sizeof(line), "%s\n", req);
	if (n < 0 || n >= (int)sizeof(line))
		return -EMSGSIZE;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, line, n, MSG_NOSIGNAL) != n) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int ctl_request(const char *path, const char *req, char *reply, size_t len,
		int *fd_out)
{
	int fd, rc;

	if (fd_out)
		*fd_out = -1;
	fd = ctl_connect(path, req);
	if (fd < 0)
		return fd;
	/* Read byte by byte: the fd rides on the first byte's message. */
	rc = read_line_fd(fd, reply, len, fd_out);
	close(fd);
	return rc;
}
