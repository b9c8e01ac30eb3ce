/*
 * wlog.c - diagnostics to stderr or, for daemons, syslog.
 */
#include "wlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "termesc.h"

static const char *prog = "wkfs";
static bool use_syslog;
static int debug_state = -1; /* -1: not read from the environment yet */

void wlog_init(const char *progname)
{
	const char *slash = strrchr(progname, '/');

	prog = slash ? slash + 1 : progname;
}

void wlog_syslog(void)
{
	openlog(prog, LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

bool wlog_debug_enabled(void)
{
	if (debug_state < 0) {
		const char *e = getenv("WKFS_DEBUG");

		debug_state = e && *e && strcmp(e, "0") != 0;
	}
	return debug_state;
}

/*
 * Every message is escaped for the terminal (termesc.h) before it is
 * written: messages carry names from other replicas and text from peers
 * (a relay's ERROR reason, a client's), which must not forge lines or
 * send escape sequences to whoever reads the log.
 */
static void emit(int prio, const char *fmt, va_list ap)
{
	char msg[1024], esc[1024];
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	term_escape(esc, sizeof(esc), msg,
		    (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1,
		    TERM_ESC_LOG);
	if (use_syslog) {
		syslog(prio, "%s", esc);
		return;
	}
	/* One write per message so lines from threads do not interleave. */
	char line[1100];

	snprintf(line, sizeof(line), "%.64s: %s\n", prog, esc);
	fputs(line, stderr);
}

#define DEFINE_LOG(fn, prio, cond)                                             \
	void fn(const char *fmt, ...)                                          \
	{                                                                      \
		va_list ap;                                                    \
		if (!(cond))                                                   \
			return;                                                \
		va_start(ap, fmt);                                             \
		emit(prio, fmt, ap);                                           \
		va_end(ap);                                                    \
	}

DEFINE_LOG(wk_err, LOG_ERR, true)
DEFINE_LOG(wk_warn, LOG_WARNING, true)
DEFINE_LOG(wk_info, LOG_INFO, true)
DEFINE_LOG(wk_debug, LOG_DEBUG, wlog_debug_enabled())
