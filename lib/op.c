/*
 * op.c - names and printable forms of ops, ids and hashes; which names and
 * device names are valid, and the one function that makes device names.
 */
#include "op.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *wk_op_kind_name(enum wk_op_kind kind)
{
	switch (kind) {
	case WK_OP_MKDIR:
		return "mkdir";
	case WK_OP_CREATE:
		return "create";
	case WK_OP_PUT:
		return "put";
	case WK_OP_MOVE:
		return "move";
	case WK_OP_REMOVE:
		return "remove";
	case WK_OP_SETATTR:
		return "setattr";
	case WK_OP_SYMLINK:
		return "symlink";
	}
	return NULL;
}

char *wk_id_str(struct wk_id id, char buf[WK_ID_STRLEN])
{
	snprintf(buf, WK_ID_STRLEN, "%016" PRIx64 "-%016" PRIx64, id.hlc,
		 id.actor);
	return buf;
}

char *wk_hash_str(const struct wk_hash *h, char buf[WK_HASH_STRLEN])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		buf[2 * i] = hex[h->b[i] >> 4];
		buf[2 * i + 1] = hex[h->b[i] & 15];
	}
	buf[32] = '\0';
	return buf;
}

bool wk_name_valid(const char *name)
{
	size_t len = strnlen(name, WK_NAME_MAX + 1);

	if (len == 0 || len > WK_NAME_MAX)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strchr(name, '/') == NULL;
}

static bool device_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* Device names may not start or end with these (trimmed away). */
static bool device_edge(char c)
{
	return c == '.' || c == '-';
}

bool wk_device_valid(const char *s)
{
	size_t len = strnlen(s, WK_DEVICE_MAX + 1);

	if (len == 0 || len > WK_DEVICE_MAX)
		return false;
	if (device_edge(s[0]) || device_edge(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!device_char(s[i]))
			return false;
	return true;
}

size_t wk_device_sanitize(char out[WK_DEVICE_MAX + 1], const char *in)
{
	size_t n = 0;
	bool gap = false;

	for (; *in && n < WK_DEVICE_MAX; in++) {
		if (!device_char(*in)) {
			gap = true;
			continue;
		}
		/* A run of other bytes becomes one '-', but not in front. */
		if (gap && n > 0)
			out[n++] = '-';
		gap = false;
		if (n < WK_DEVICE_MAX && !(n == 0 && device_edge(*in)))
			out[n++] = *in;
	}
	while (n > 0 && device_edge(out[n - 1]))
		n--;
	out[n] = '\0';
	return n;
}

uint32_t wk_remote_mode(uint32_t mode, bool world_writable)
{
	return mode & (world_writable ? 0777u : 0775u);
}

void wk_op_mask_remote(struct wk_op *op, bool world_writable)
{
	if (op->kind == WK_OP_MKDIR || op->kind == WK_OP_CREATE ||
	    (op->kind == WK_OP_SETATTR && (op->attrs & WK_ATTR_MODE)))
		op->mode = wk_remote_mode(op->mode, world_writable);
}
