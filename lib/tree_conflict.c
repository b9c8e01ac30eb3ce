/*
 * tree_conflict.c - conflict names and the checks on incoming ops.
 *
 * Both are pure functions of an op (and the device-name callback), which is
 * what lets every replica derive the same conflict name for the same losing
 * version without talking to the others.  Which entry loses is decided in
 * tree_view.c; this file only spells names and says which ops are garbage.
 */
#include "tree_int.h"

#include "hlc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Copies the device name of actor into dev, sanitised; never empty. */
static void device_of(char dev[TREE_DEVICE_MAX + 1], uint64_t actor,
		      const struct tree_opts *opts)
{
	const char *s = NULL;
	size_t n = 0;

	if (opts && opts->device_name)
		s = opts->device_name(actor, opts->device_arg);
	for (; s && *s && n < TREE_DEVICE_MAX; s++) {
		char c = *s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-')
			dev[n++] = c;
	}
	dev[n] = '\0';
	if (n == 0)
		snprintf(dev, TREE_DEVICE_MAX + 1, "%016" PRIx64, actor);
}

void tree_conflict_name(char *buf, const char *name, struct wk_id loser,
			unsigned n, const struct tree_opts *opts)
{
	char dev[TREE_DEVICE_MAX + 1], suffix[96], num[16] = "";
	time_t secs = (time_t)(hlc_ms(loser.hlc) / 1000);
	size_t len = strlen(name), stem = len, ext = len, room;
	const char *dot = strrchr(name, '.');
	struct tm tm;

	device_of(dev, loser.actor, opts);
	gmtime_r(&secs, &tm);
	if (n > 0)
		snprintf(num, sizeof(num), "-%u", n + 1);
	snprintf(suffix, sizeof(suffix),
		 ".conflict-%04d%02d%02d-%02d%02d%02d-%s%s", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 dev, num);
	/* An extension follows a dot that neither starts nor ends the name. */
	if (dot && dot != name && dot[1] != '\0') {
		stem = (size_t)(dot - name);
		ext = stem;
	}
	room = WK_NAME_MAX - strlen(suffix);
	if (len - ext > room) {
		/* An absurd extension: treat the whole name as the stem. */
		stem = len;
		ext = len;
	}
	room -= len - ext;
	if (stem > room) {
		stem = room;
		/* Do not cut a UTF-8 sequence in two. */
		while (stem > 0 && ((unsigned char)name[stem] & 0xc0) == 0x80)
			stem--;
	}
	snprintf(buf, WK_NAME_MAX + 1, "%.*s%s%s", (int)stem, name, suffix,
		 name + ext);
}

static bool name_ok(struct wk_id parent, const char *name)
{
	/* The name must be NUL-terminated inside its WK_NAME_MAX+1 array. */
	if (strnlen(name, WK_NAME_MAX + 1) > WK_NAME_MAX)
		return false;
	if (!wk_name_valid(name))
		return false;
	return !(wk_id_eq(parent, WK_ID_ROOT) && strcmp(name, ".wkfs") == 0);
}

bool tree_op_valid(const struct wk_op *op)
{
	if (op->id.hlc == 0 || wk_id_eq(op->id, WK_ID_NONE))
		return false;
	switch (op->kind) {
	case WK_OP_MKDIR:
	case WK_OP_CREATE:
	case WK_OP_SYMLINK:
		if (!wk_id_eq(op->node, op->id) || op->mode > 07777)
			return false;
		if (op->kind == WK_OP_SYMLINK) {
			size_t tl = strnlen(op->target, WK_TARGET_MAX + 1);

			if (tl == 0 || tl > WK_TARGET_MAX)
				return false;
		}
		return name_ok(op->parent, op->name);
	case WK_OP_MOVE:
		if (wk_id_eq(op->node, WK_ID_ROOT))
			return false;
		return name_ok(op->new_parent, op->new_name);
	case WK_OP_PUT:
	case WK_OP_REMOVE:
		return !wk_id_eq(op->node, WK_ID_ROOT);
	case WK_OP_SETATTR:
		if ((op->attrs & WK_ATTR_MODE) && op->mode > 07777)
			return false;
		return !wk_id_eq(op->node, WK_ID_ROOT) &&
		       (op->attrs & (WK_ATTR_MODE | WK_ATTR_MTIME)) != 0;
	}
	return false;
}
