/*
 * syncctl.c - starting, asking and stopping a folder's wkfs-syncd.
 */
#include "syncctl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "rundir.h"
#include "version.h"

static void run_file(const char *run, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", run, name);
}

/* True while pid is a live process (a zombie is not: it is gone, only
 * not yet reaped by whoever started it). */
static bool alive(pid_t pid)
{
	char p[64], st[512];
	ssize_t n;
	char *rp;
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, st, sizeof(st) - 1);
	close(fd);
	if (n <= 0)
		return false;
	st[n] = '\0';
	/* "pid (comm) S ...": comm may hold spaces and parentheses. */
	rp = strrchr(st, ')');
	return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* True when pid is a wkfs-syncd (the pid file may name a reused pid). */
static bool is_syncd(pid_t pid)
{
	char p[64], comm[64] = "";
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
	f = fopen(p, "re");
	if (!f)
		return false;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	return strncmp(comm, "wkfs-syncd", 10) == 0;
}

static pid_t read_pid(const char *run)
{
	char p[RUNDIR_MAX + 16];
	int pid = 0;
	FILE *f;

	run_file(run, "syncd.pid", p, sizeof(p));
	f = fopen(p, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1 || pid <= 0)
		pid = 0;
	fclose(f);
	return pid;
}

pid_t syncctl_pid(const char *run)
{
	char p[RUNDIR_MAX + 16], reply[CTL_LINE_MAX];
	pid_t pid = read_pid(run);

	if (pid > 0 && alive(pid) && is_syncd(pid))
		return pid;
	/* Stale: nothing runs, or the pid was reused.  A daemon starting
	 * right now answers on its socket; leave that one alone. */
	run_file(run, "syncd.sock", p, sizeof(p));
	if (ctl_request(p, "hello " WKFS_VERSION, reply, sizeof(reply), NULL) ==
	    0) {
		pid = read_pid(run);
		return pid > 0 ? pid : 0;
	}
	unlink(p);
	if (pid > 0) {
		run_file(run, "syncd.pid", p, sizeof(p));
		unlink(p);
	}
	return 0;
}

/* The wkfs-syncd next to this program, or NULL to search PATH. */
static char *sibling_exe(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 16);
	char *slash;

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return NULL;
	strcpy(slash + 1, "wkfs-syncd");
	return access(buf, X_OK) == 0 ? buf : NULL;
}

int syncctl_start(const char *dir, const char *run, int timeout_ms)
{
	char exe[PATH_MAX], sock[RUNDIR_MAX + 16], reply[CTL_LINE_MAX];
	const char *path = sibling_exe(exe, sizeof(exe));
	int status;
	pid_t child;

	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		int null = open("/dev/null", O_RDWR);

		/* Nothing of ours (the FUSE device, a ready pipe) may stay
		 * open in the daemon; its errors still reach our stderr. */
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		closefrom(3);
		if (path)
			execl(path, "wkfs-syncd", dir, (char *)NULL);
		else
			execlp("wkfs-syncd", "wkfs-syncd", dir, (char *)NULL);
		fprintf(stderr, "wkfs: cannot run wkfs-syncd: %s\n",
			strerror(errno));
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -ECHILD;
	run_file(run, "syncd.sock", sock, sizeof(sock));
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		if (ctl_request(sock, "hello " WKFS_VERSION, reply,
				sizeof(reply), NULL) == 0)
			return 0;
		poll(NULL, 0, 20);
	}
	return -ETIMEDOUT;
}

static bool wait_gone(pid_t pid, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 20) {
		if (!alive(pid))
			return true;
		poll(NULL, 0, 20);
	}
	return !alive(pid);
}

int syncctl_stop(const char *run, int timeout_ms)
{
	char sock[RUNDIR_MAX + 16], reply[CTL_LINE_MAX];
	pid_t pid = syncctl_pid(run);

	if (pid == 0)
		return 0;
	run_file(run, "syncd.sock", sock, sizeof(sock));
	if (ctl_request(sock, "stop", reply, sizeof(reply), NULL) == 0 &&
	    wait_gone(pid, timeout_ms))
		return 0;
	if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
		return -errno;
	return wait_gone(pid, timeout_ms) ? 0 : -ETIMEDOUT;
}

int syncctl_hello(const char *run, char *version, size_t len)
{
	char sock[RUNDIR_MAX + 16], reply[CTL_LINE_MAX];
	int rc;

	run_file(run, "syncd.sock", sock, sizeof(sock));
	rc = ctl_request(sock, "hello " WKFS_VERSION, reply, sizeof(reply),
			 NULL);
	if (rc)
		return rc;
	if (strncmp(reply, "ok wkfs-syncd ", 14) != 0)
		return -EPROTO;
	snprintf(version, len, "%s", reply + 14);
	return 0;
}

int syncctl_ensure(const char *dir, const char *run, bool *restarted)
{
	char version[64];
	int rc;

	if (restarted)
		*restarted = false;
	if (syncctl_pid(run) > 0) {
		rc = syncctl_hello(run, version, sizeof(version));
		if (rc == 0 && wkfs_version_cmp(version, WKFS_VERSION) >= 0)
			return 0;
		/* Older, or deaf to hello: replace it. */
		rc = syncctl_stop(run, 10000);
		if (rc)
			return rc;
		if (restarted)
			*restarted = true;
	}
	return syncctl_start(dir, run, 10000);
}
