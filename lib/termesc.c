/*
 * termesc.c - the one rule for printing foreign text (see termesc.h).
 */
#include "termesc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Length of the valid UTF-8 sequence at s (n bytes left) and its code
 * point, or 0 when it is not one (overlong, surrogate, past U+10FFFF,
 * cut short). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Code points shown as \uHHHH: C1 controls, and those that reorder or
 * hide text (bidi overrides and isolates, zero-width characters, line
 * and paragraph separators, the BOM). */
static bool cp_hidden(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || (c >= 0x200b && c <= 0x200f) ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x2069) ||
	       c == 0xfeff;
}

size_t term_escape(char *out, size_t outlen, const char *s, size_t n,
		   unsigned flags)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i = 0;
	bool cut = false;

	if (outlen)
		out[0] = '\0';
	while (i < n) {
		char esc[8];
		const char *piece;
		size_t plen, take;
		uint32_t cp = 0;

		take = utf8_seq(p + i, n - i, &cp);
		if (take == 0) {
			snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
			piece = esc, plen = 4, take = 1;
		} else if (cp == '\\' && !(flags & TERM_ESC_LOG)) {
			piece = "\\\\", plen = 2;
		} else if (cp == '\n') {
			piece = "\\n", plen = 2;
		} else if (cp == '\t') {
			piece = "\\t", plen = 2;
		} else if (cp == '\r') {
			piece = "\\r", plen = 2;
		} else if (cp == 0x1b) {
			piece = "\\e", plen = 2;
		} else if (cp < 0x20 || cp == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
			piece = esc, plen = 4;
		} else if (cp_hidden(cp)) {
			snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
			piece = esc, plen = 6;
		} else {
			piece = s + i, plen = take;
		}
		/* Whole pieces only: a cut never leaves half an escape. */
		if (!cut && o + plen < outlen) {
			memcpy(out + o, piece, plen);
			out[o + plen] = '\0';
		} else {
			cut = true;
		}
		o += plen;
		i += take;
	}
	return o;
}

char *term_escape_dup(const char *s)
{
	size_t n = strlen(s);
	size_t len = n * TERM_ESC_MAX_PER_BYTE + 1;
	char *out = xmalloc(len);

	term_escape(out, len, s, n, 0);
	return out;
}

void term_fputs(const char *s, FILE *f)
{
	char *e = term_escape_dup(s);

	fputs(e, f);
	free(e);
}
