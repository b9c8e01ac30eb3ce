/*
 * op.c - names and printable forms of ops, ids and hashes.
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
