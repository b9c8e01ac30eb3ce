/*
 * termesc.h - text from elsewhere, made safe for a terminal or a log line.
 *
 * Names of files come from any replica, reasons in ERROR messages from any
 * client: printed raw, an ESC sequence recolours or retitles the terminal,
 * a newline forges a line of a log.  Everything wkfs prints for a person
 * (wkfs log, status, conflicts, the daemons' and the relay's logs) goes
 * through term_escape(), the one rule:
 *
 *   \\  a backslash (so every escape below is unambiguous in a name;
 *       not in a log line: TERM_ESC_LOG, whose own text has backslashes)
 *   \n \t \r \e    newline, tab, carriage return, ESC
 *   \xHH           any other byte below 0x20, DEL (0x7f), and every byte
 *                  that is not part of valid UTF-8
 *   \uHHHH         the C1 controls U+0080..U+009F and the characters that
 *                  reorder or hide text: U+200B..U+200F, U+2028..U+202E,
 *                  U+2060..U+2069, U+FEFF
 *
 * Everything else (printable ASCII, other valid UTF-8) is copied as it is.
 * JSON output escapes with its own rules (out_json_str) and is not passed
 * through here.
 */
#ifndef WKFS_TERMESC_H
#define WKFS_TERMESC_H

#include <stddef.h>
#include <stdio.h>

/* The most a byte of input can become (\xHH); for sizing buffers. */
#define TERM_ESC_MAX_PER_BYTE 4

/* For a log line (lib/wlog.c): a backslash stays as it is. */
#define TERM_ESC_LOG 0x1

/*
 * Escapes n bytes of s into out (outlen bytes, NUL-terminated).  Returns
 * the length the whole result has (like snprintf: >= outlen means it was
 * cut, and never in the middle of an escape).  flags: 0 or TERM_ESC_LOG.
 */
size_t term_escape(char *out, size_t outlen, const char *s, size_t n,
		   unsigned flags);

/* The escaped copy of the string s, malloc'ed (xalloc: never NULL). */
char *term_escape_dup(const char *s);

/* Writes the string s escaped to f. */
void term_fputs(const char *s, FILE *f);

#endif
