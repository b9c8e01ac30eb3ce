/*
 * version.h - the one place wkfs's version is set.
 *
 * The wkfs command and wkfs-syncd compare versions over the control socket
 * (syncd's "hello"): a newer wkfs restarts an older daemon.  Bump it with
 * any change a running daemon must not miss.
 */
#ifndef WKFS_VERSION_H
#define WKFS_VERSION_H

#define WKFS_VERSION "0.2.0"

/* Compares dotted versions ("0.10.1" > "0.9.3"): <0, 0 or >0. */
int wkfs_version_cmp(const char *a, const char *b);

#endif
