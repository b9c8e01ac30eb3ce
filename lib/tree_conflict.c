/*
 * tree_conflict.c - conflict names and the checks on incoming ops.
 *
 * Both are pure functions of an op (a conflict name of the losing op's id
 * and the device name it carried), which is what lets every replica derive
 * the same conflict name for the same losing version without talking to
 * the others.  Which entry loses is decided in
 * tree_view.c; this file only spells names and says which ops are garbage.
 */
#include "tree_int.h"

#include "hlc.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void tree_conflict_name(char *buf, const char *name, struct wk_id loser,
			const char *device, unsigned n)
{
	char dev[WK_DEVICE_MAX + 1], suffix[96], num[16] = "";
	time_t secs = (time_t)(hlc_ms(loser.hlc) / 1000);
	size_t len = strlen(name), stem = len, ext = len, room;
	const char *dot = strrchr(name, '.');
	struct tm tm;

	/* Checked, not trusted: the name goes into the directory. */
	if (device && wk_device_valid(device))
		snprintf(dev, sizeof(dev), "%s", device);
	else
		snprintf(dev, sizeof(dev), "%016" PRIx64, loser.actor);
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
