/*
 * out.h - what the wkfs command's output shares: JSON strings, times,
 * sizes, and colour only on a terminal (NO_COLOR honoured).
 */
#ifndef WKFS_OUT_H
#define WKFS_OUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Writes s as a JSON string literal. */
void out_json_str(FILE *f, const char *s);

/* Undoes the control socket's escaping of names in place: \\, \t, \n
 * (fs/ctl_conflicts.c). */
void out_unescape(char *s);

/* "2026-11-23T10:11:12.345Z" for milliseconds since the epoch. */
void out_iso_ms(int64_t ms, char *buf, size_t len);

/* "12 B", "3.4 KiB", "1.2 GiB". */
void out_bytes(uint64_t n, char *buf, size_t len);

/* "just now", "12 s ago", "5 min ago", "3 h ago", "2 days ago". */
void out_ago(int64_t ms_then, int64_t ms_now, char *buf, size_t len);

enum out_colour { OUT_PLAIN, OUT_GREEN, OUT_YELLOW, OUT_RED, OUT_BOLD };

/* The escape that starts colour c on f, or "" when f is no terminal or
 * NO_COLOR is set; out_reset(f) ends it. */
const char *out_colour(FILE *f, enum out_colour c);
const char *out_reset(FILE *f);

/* Wall clock, milliseconds since the epoch. */
int64_t out_now_ms(void);

#endif
