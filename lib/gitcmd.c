/*
 * syncd_gitcmd.c - running the git command for wkfs-syncd's git remotes.
 *
 * Every git call goes through git_cmd(): fork and exec of "git" (found on
 * PATH, no shell), stdin fed from a buffer, stdout collected into a capped
 * buffer, stderr kept for the one-line reason a failure reports, and a
 * deadline after which the child is killed.  The child's environment is
 * the daemon's without any GIT_* variable (a GIT_DIR or GIT_WORK_TREE the
 * user exported must never point us at their repository), plus GIT_DIR
 * and GIT_INDEX_FILE set to the folder's private mirror (unless the call
 * asks git to discover the repository from its -C), LC_ALL=C (the
 * messages we parse are git's English ones) and GIT_TERMINAL_PROMPT=0 (a
 * daemon has no one to ask for a password).
 *
 * git_batch is a long-lived `git cat-file --batch` for reading many
 * objects without a process each.
 *
 * Not here: what the commands do (syncd/syncd_git*.c, syncd/relay_git*.c,
 * tools/gitremote.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gitcmd.h"
#include "wlog.h"

extern char **environ;

#define ERR_CAP 8192

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child's environment: ours without GIT_*, then ours for git. */
static char **child_env(const struct git_repo *g, const char *const *extra,
			bool discover)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	for (size_t i = 0; extra && extra[i]; i++)
		n++;
	env = calloc(n + 8, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; environ[i]; i++)
		if (strncmp(environ[i], "GIT_", 4) != 0 &&
		    strncmp(environ[i], "LC_ALL=", 7) != 0)
			env[k++] = environ[i];
	if (!discover) {
		env[k++] = (char *)g->env_dir;
		env[k++] = (char *)g->env_index;
	}
	env[k++] = (char *)"LC_ALL=C";
	env[k++] = (char *)"GIT_TERMINAL_PROMPT=0";
	for (size_t i = 0; extra && extra[i]; i++)
		env[k++] = (char *)extra[i];
	env[k] = NULL;
	return env;
}

/* Starts git with args; *in_fd, *out_fd, *err_fd get our pipe ends. */
static int spawn(const struct git_repo *g, const char *const *args,
		 const char *const *extra, bool discover, pid_t *pid,
		 int *in_fd, int *out_fd, int *err_fd)
{
	int pin[2], pout[2], perr[2];
	const char *argv[64];
	size_t n = 0;
	char **env;

	argv[n++] = "git";
	for (size_t i = 0; args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	env = child_env(g, extra, discover);
	if (!env)
		return -ENOMEM;
	if (pipe2(pin, O_CLOEXEC)) {
		free(env);
		return -errno;
	}
	if (pipe2(pout, O_CLOEXEC)) {
		close(pin[0]);
		close(pin[1]);
		free(env);
		return -errno;
	}
	if (pipe2(perr, O_CLOEXEC)) {
		close(pin[0]);
		close(pin[1]);
		close(pout[0]);
		close(pout[1]);
		free(env);
		return -errno;
	}
	*pid = fork();
	if (*pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		if (chdir("/") == 0)
			execvpe("git", (char *const *)argv, env);
		fprintf(stderr, "fatal: cannot run git: %s\n", strerror(errno));
		_exit(127);
	}
	free(env);
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	if (*pid < 0) {
		int rc = -errno;

		close(pin[1]);
		close(pout[0]);
		close(perr[0]);
		return rc;
	}
	*in_fd = pin[1];
	*out_fd = pout[0];
	*err_fd = perr[0];
	return 0;
}

/*
 * git's stderr as one line: the lines that say what went wrong ("fatal:",
 * "error:", a hook's "remote:" lines, a push's " ! [...]" line), joined
 * with "; ", or the last line when none of them is there.
 */
static void append(char *err, size_t errlen, const char *line, size_t len)
{
	size_t pos = strlen(err);

	if (pos + 3 < errlen)
		snprintf(err + pos, errlen - pos, ": %.*s", (int)len, line);
}

static void reason_of(const char *text, const char *what, char *err,
		      size_t errlen)
{
	const char *p = text, *last = NULL;
	size_t lastlen = 0;
	bool any = false;

	snprintf(err, errlen, "%s", what);
	while (*p) {
		size_t len = strcspn(p, "\n");
		const char *line = p;
		bool keep = !strncmp(p, "remote: ", 8) || !strncmp(p, " ! ", 3);

		p += len;
		if (*p)
			p++;
		if (len >= 7 && (!strncmp(line, "fatal: ", 7) ||
				 !strncmp(line, "error: ", 7))) {
			keep = true;
			line += 7;
			len -= 7;
		}
		while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
			len--;
		if (!len)
			continue;
		last = line;
		lastlen = len;
		if (keep) {
			append(err, errlen, line, len);
			any = true;
		}
	}
	if (!any && last)
		append(err, errlen, last, lastlen);
}

int git_cmd(const struct git_repo *g, const struct git_call *c)
{
	struct wire_buf errs;
	pid_t pid;
	int in_fd, out_fd, err_fd, rc, status = 0;
	size_t fed = 0;
	int64_t deadline =
		mono_ms() + (c->timeout_ms ? c->timeout_ms : GIT_TIMEOUT_MS);
	uint8_t buf[65536];

	rc = spawn(g, c->args, c->env, c->discover, &pid, &in_fd, &out_fd,
		   &err_fd);
	if (rc) {
		snprintf(c->err, c->errlen, "%s: cannot run git: %s", c->what,
			 strerror(-rc));
		return rc;
	}
	wire_buf_init(&errs, 0, ERR_CAP);
	if (!c->inlen) {
		close(in_fd);
		in_fd = -1;
	}
	while (out_fd >= 0 || err_fd >= 0) {
		struct pollfd pf[3] = {{.fd = out_fd, .events = POLLIN},
				       {.fd = err_fd, .events = POLLIN},
				       {.fd = in_fd, .events = POLLOUT}};
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(pf, 3, (int)(left > 1000 ? 1000 : left)) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (pf[2].revents) {
			n = write(in_fd, c->in + fed, c->inlen - fed);
			if (n > 0)
				fed += (size_t)n;
			if (n < 0 || fed == c->inlen) {
				close(in_fd);
				in_fd = -1;
			}
		}
		if (pf[0].revents) {
			n = read(out_fd, buf, sizeof(buf));
			if (n <= 0) {
				close(out_fd);
				out_fd = -1;
			} else if (c->out && !rc &&
				   wire_buf_append(c->out, buf, (size_t)n)) {
				rc = -EMSGSIZE;
			}
		}
		if (pf[1].revents) {
			n = read(err_fd, buf, sizeof(buf));
			if (n <= 0) {
				close(err_fd);
				err_fd = -1;
			} else if (wire_buf_len(&errs) + (size_t)n < ERR_CAP) {
				wire_buf_append(&errs, buf, (size_t)n);
			}
		}
	}
	if (rc)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (in_fd >= 0)
		close(in_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	wire_buf_append(&errs, "", 1);
	if (c->stderr_copy)
		snprintf(c->stderr_copy, c->stderr_len, "%s",
			 (char *)wire_buf_data(&errs));
	if (rc == -ETIMEDOUT)
		snprintf(c->err, c->errlen, "%s: git took longer than %d s",
			 c->what,
			 (c->timeout_ms ? c->timeout_ms : GIT_TIMEOUT_MS) /
				 1000);
	else if (rc)
		snprintf(c->err, c->errlen, "%s: %s", c->what, strerror(-rc));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		reason_of((char *)wire_buf_data(&errs), c->what, c->err,
			  c->errlen);
		rc = -EIO;
	}
	wire_buf_release(&errs);
	return rc;
}

int git_cmd_out(const struct git_repo *g, const char *what,
		const char *const *args, struct wire_buf *out, char *err,
		size_t errlen)
{
	struct git_call c = {.what = what,
			     .args = args,
			     .out = out,
			     .err = err,
			     .errlen = errlen};

	return git_cmd(g, &c);
}

/* ---- cat-file --batch ---- */

int git_batch_open(const struct git_repo *g, struct git_batch *b)
{
	static const char *const args[] = {"cat-file", "--batch", NULL};
	int rc;

	b->len = b->pos = 0;
	rc = spawn(g, args, NULL, false, &b->pid, &b->in, &b->out, &b->errfd);
	if (rc)
		return rc;
	/* Its stderr stays unread: git writes nothing there on success, and
	 * a pipe buffer holds any complaint. */
	return 0;
}

void git_batch_close(struct git_batch *b)
{
	int status;

	if (b->pid <= 0)
		return;
	close(b->in);
	close(b->out);
	close(b->errfd);
	kill(b->pid, SIGKILL);
	while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
		;
	b->pid = 0;
}

/* Makes at least one more byte available in b->buf. */
static int batch_fill(struct git_batch *b)
{
	struct pollfd pf = {.fd = b->out, .events = POLLIN};
	ssize_t n;

	if (b->pos == b->len)
		b->pos = b->len = 0;
	if (b->len == sizeof(b->buf)) {
		memmove(b->buf, b->buf + b->pos, b->len - b->pos);
		b->len -= b->pos;
		b->pos = 0;
	}
	for (;;) {
		int r = poll(&pf, 1, GIT_TIMEOUT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : -errno;
		break;
	}
	n = read(b->out, b->buf + b->len, sizeof(b->buf) - b->len);
	if (n <= 0)
		return n == 0 ? -EPIPE : -errno;
	b->len += (size_t)n;
	return 0;
}

static int batch_read(struct git_batch *b, void *dst, size_t n)
{
	uint8_t *d = dst;

	while (n) {
		size_t k;
		int rc;

		if (b->pos == b->len && (rc = batch_fill(b)))
			return rc;
		k = b->len - b->pos < n ? b->len - b->pos : n;
		if (d) {
			memcpy(d, b->buf + b->pos, k);
			d += k;
		}
		b->pos += k;
		n -= k;
	}
	return 0;
}

static int batch_line(struct git_batch *b, char *line, size_t len)
{
	size_t k = 0;

	for (;;) {
		char ch;
		int rc = batch_read(b, &ch, 1);

		if (rc)
			return rc;
		if (ch == '\n')
			break;
		if (k + 1 < len)
			line[k++] = ch;
	}
	line[k] = '\0';
	return 0;
}

int git_batch_get(struct git_batch *b, const char *spec, void *buf, size_t max,
		  size_t *len)
{
	char line[512];
	unsigned long long size;
	size_t sl = strlen(spec);
	int rc;

	if (strchr(spec, '\n'))
		return -EINVAL;
	if (write(b->in, spec, sl) != (ssize_t)sl || write(b->in, "\n", 1) != 1)
		return -EPIPE;
	rc = batch_line(b, line, sizeof(line));
	if (rc)
		return rc;
	/* "<oid> <type> <size>", or "<spec> missing" */
	if (strlen(line) > 8 && !strcmp(line + strlen(line) - 8, " missing"))
		return -ENOENT;
	if (sscanf(line, "%*s %*s %llu", &size) != 1)
		return -EPROTO;
	if (size > max) {
		/* Skip it so the stream stays in step. */
		rc = batch_read(b, NULL, (size_t)size + 1);
		return rc ? rc : -EMSGSIZE;
	}
	rc = batch_read(b, buf, (size_t)size);
	if (!rc)
		rc = batch_read(b, NULL, 1);
	*len = (size_t)size;
	return rc;
}
