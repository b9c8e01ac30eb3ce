/*
 * out.c - shared output helpers of the wkfs command.
 */
#include "out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void out_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void out_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			*o++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

void out_iso_ms(int64_t ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void out_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, unit[u]);
}

void out_ago(int64_t then, int64_t now, char *buf, size_t len)
{
	int64_t s = (now - then) / 1000;

	if (s < 2)
		snprintf(buf, len, "just now");
	else if (s < 120)
		snprintf(buf, len, "%" PRId64 " s ago", s);
	else if (s < 7200)
		snprintf(buf, len, "%" PRId64 " min ago", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%" PRId64 " h ago", s / 3600);
	else
		snprintf(buf, len, "%" PRId64 " days ago", s / 86400);
}

static bool use_colour(FILE *f)
{
	const char *nc = getenv("NO_COLOR");

	return isatty(fileno(f)) && !(nc && *nc);
}

const char *out_colour(FILE *f, enum out_colour c)
{
	static const char *const esc[] = {"", "\033[32m", "\033[33m",
					  "\033[31m", "\033[1m"};

	return use_colour(f) ? esc[c] : "";
}

const char *out_reset(FILE *f)
{
	return use_colour(f) ? "\033[0m" : "";
}

int64_t out_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
