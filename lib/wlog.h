/*
 * wlog.h - diagnostics.
 *
 * Messages go to stderr, prefixed with the program name, until wlog_syslog()
 * switches a daemon to syslog.  wk_err() is for failures the user must see,
 * wk_warn() for trouble that was handled, wk_info() for state changes,
 * wk_debug() only with WKFS_DEBUG=1 in the environment.
 */
#ifndef WKFS_WLOG_H
#define WKFS_WLOG_H

#include <stdbool.h>

void wlog_init(const char *progname);
void wlog_syslog(void);
bool wlog_debug_enabled(void);

void wk_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wk_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wk_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wk_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
