/*
 * log.c - `wkfs log DIR [--json] [-n N]`: the oplog, oldest first.
 *
 * Text: "SEQ TIME DEVICE KIND PATH [-> NEWPATH] [details]", DEVICE being
 * the device name the op carries ("-" for none).  JSON: one object per
 * line (JSON Lines), fields as in docs/architecture.md.  Names, devices
 * and targets are escaped for the terminal in text (lib/termesc.h), as
 * JSON strings in JSON.  A path is the op's
 * directory as it is named now plus the name the op recorded, so a put
 * shows the name the file had when it was written.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply_plan.h"
#include "cmds.h"
#include "db.h"
#include "folder.h"
#include "hlc.h"
#include "locate.h"
#include "nindex.h"
#include "out.h"
#include "recorder.h"
#include "termesc.h"
#include "wlog.h"
#include "xalloc.h"

/* A remote op the mount holds back (lib/apply_plan.h). */
struct held_seq {
	int64_t seq;
	int reason;
};

struct log_ctx {
	struct nindex *ix;
	bool json;
	struct held_seq *held; /* by seq */
	size_t nheld;
};

static int add_held(void *arg, const struct db_held *h)
{
	struct log_ctx *c = arg;

	c->held = xrealloc(c->held, (c->nheld + 1) * sizeof(*c->held));
	c->held[c->nheld].seq = h->row.seq;
	c->held[c->nheld++].reason = h->reason;
	return 0;
}

static int cmp_held(const void *a, const void *b)
{
	const struct held_seq *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Why the op of row seq is not applied, or NULL. */
static const char *held_why(const struct log_ctx *c, int64_t seq)
{
	struct held_seq key = {.seq = seq}, *h;

	h = c->nheld ? bsearch(&key, c->held, c->nheld, sizeof(*c->held),
			       cmp_held)
		     : NULL;
	return h ? plan_hold_text((enum plan_hold)h->reason) : NULL;
}

static void place(struct nindex *ix, struct wk_id parent, const char *name,
		  char *out, size_t len)
{
	struct nnode *p = nindex_get(ix, parent);
	char dir[4096] = "";

	if (p && nindex_path(p, dir, sizeof(dir)) != 0)
		dir[0] = '\0';
	snprintf(out, len, "%s%s%s", dir, dir[0] ? "/" : "", name);
}

/* The path of node id now, for ops that name no place (put, setattr). */
static void node_path(struct nindex *ix, struct wk_id id, char *out, size_t len)
{
	struct nnode *n = nindex_get(ix, id);

	if (!n || nindex_path(n, out, len) != 0)
		snprintf(out, len, "?");
}

static int print_op(void *arg, const struct db_oprow *r)
{
	struct log_ctx *c = arg;
	const struct wk_op *op = &r->op;
	const char *kind = wk_op_kind_name(op->kind);
	char path[8192], npath[8192], t[64], id[WK_ID_STRLEN];
	char h[WK_HASH_STRLEN];
	/* Ops from before names were recorded on puts have none. */
	bool placed = op->name[0] != '\0';
	const char *why = held_why(c, r->seq);

	if (placed)
		place(c->ix, op->parent, op->name, path, sizeof(path));
	else
		node_path(c->ix, op->node, path, sizeof(path));
	if (op->kind == WK_OP_MOVE)
		place(c->ix, op->new_parent, op->new_name, npath,
		      sizeof(npath));
	out_iso_ms((int64_t)hlc_ms(op->id.hlc), t, sizeof(t));

	if (!c->json) {
		/* Names and devices come from any replica: escaped. */
		printf("%" PRId64 " %s ", r->seq, t);
		term_fputs(op->device[0] ? op->device : "-", stdout);
		printf(" %-7s ", kind ? kind : "?");
		term_fputs(path, stdout);
		if (op->kind == WK_OP_MOVE) {
			fputs(" -> ", stdout);
			term_fputs(npath, stdout);
		}
		if (op->kind == WK_OP_PUT)
			printf(" size=%" PRIu64 " hash=%s", op->size,
			       wk_hash_str(&op->hash, h));
		if (op->kind == WK_OP_SETATTR && op->attrs & WK_ATTR_MODE)
			printf(" mode=0%03o", op->mode);
		if (op->kind == WK_OP_SETATTR && op->attrs & WK_ATTR_MTIME)
			printf(" mtime_ns=%" PRId64, op->mtime_ns);
		if (op->kind == WK_OP_SYMLINK) {
			fputs(" target=", stdout);
			term_fputs(op->target, stdout);
		}
		if (why)
			printf(" [not applied: %s]", why);
		putchar('\n');
		return 0;
	}
	printf("{\"seq\":%" PRId64 ",\"hlc\":%" PRIu64 ",\"time\":\"%s\","
	       "\"actor\":\"%016" PRIx64 "\",\"device\":",
	       r->seq, op->id.hlc, t, op->id.actor);
	if (op->device[0])
		out_json_str(stdout, op->device);
	else
		printf("null");
	printf(",\"kind\":\"%s\",\"node\":\"%s\"", kind ? kind : "?",
	       wk_id_str(op->node, id));
	if (placed) {
		printf(",\"parent\":\"%s\",\"name\":",
		       wk_id_str(op->parent, id));
		out_json_str(stdout, op->name);
	}
	printf(",\"path\":");
	out_json_str(stdout, path);
	if (op->kind == WK_OP_MOVE) {
		printf(",\"new_parent\":\"%s\",\"new_name\":",
		       wk_id_str(op->new_parent, id));
		out_json_str(stdout, op->new_name);
		printf(",\"new_path\":");
		out_json_str(stdout, npath);
	}
	if (op->kind == WK_OP_MKDIR || op->kind == WK_OP_CREATE ||
	    (op->kind == WK_OP_SETATTR && op->attrs & WK_ATTR_MODE))
		printf(",\"mode\":\"0%03o\"", op->mode);
	if (op->kind == WK_OP_PUT ||
	    (op->kind == WK_OP_SETATTR && op->attrs & WK_ATTR_MTIME))
		printf(",\"mtime_ns\":%" PRId64, op->mtime_ns);
	if (op->kind == WK_OP_PUT) {
		printf(",\"size\":%" PRIu64 ",\"hash\":\"%s\",\"base\":\"%s\"",
		       op->size, wk_hash_str(&op->hash, h),
		       wk_id_str(op->base, id));
	}
	if (op->kind == WK_OP_REMOVE && !wk_id_eq(op->base, WK_ID_NONE))
		printf(",\"base\":\"%s\"", wk_id_str(op->base, id));
	if (op->kind == WK_OP_SYMLINK) {
		printf(",\"target\":");
		out_json_str(stdout, op->target);
	}
	if (why) {
		printf(",\"not_applied\":");
		out_json_str(stdout, why);
	}
	printf(",\"origin\":\"%s\",\"shipped\":%s}\n",
	       r->origin == DB_ORIGIN_LOCAL ? "local" : "remote",
	       r->shipped ? "true" : "false");
	return 0;
}

int cmd_log(int argc, char **argv)
{
	static const struct option longs[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct log_ctx c = {0};
	struct wkdb *db = NULL;
	struct folder f;
	const char *dir;
	char err[512];
	long last_n = 0;
	int opt, fd, rc, ret = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:", longs, NULL)) != -1) {
		if (opt == 'j') {
			c.json = true;
		} else if (opt == 'n') {
			char *end;

			last_n = strtol(optarg, &end, 10);
			if (*end || last_n <= 0) {
				fprintf(stderr, "wkfs log: -n takes a positive"
						" number\n");
				return 2;
			}
		} else {
			fprintf(stderr,
				"usage: wkfs log [DIR] [--json] [-n N]\n");
			return 2;
		}
	}
	/* DIR, or the synced folder around the current directory. */
	if (folder_resolve(optind < argc ? argv[optind] : NULL, &f, err,
			   sizeof(err))) {
		wk_err("%s", err);
		return 1;
	}
	dir = f.key;
	fd = locate_dirfd(dir, err, sizeof(err));
	if (fd < 0) {
		wk_err("%s", err);
		return 1;
	}
	rc = db_open_at(fd, DB_READONLY, &db, err, sizeof(err));
	if (rc) {
		wk_err("%s: %s", dir, err);
		goto out_close;
	}
	c.ix = nindex_new();
	rc = rec_load_tree(db, c.ix, err, sizeof(err));
	if (!rc)
		rc = db_held_foreach(db, add_held, &c);
	if (!rc)
		rc = db_ops_foreach(db, 0, last_n, print_op, &c);
	if (rc)
		wk_err("%s: cannot read the oplog: %s", dir, strerror(-rc));
	else
		ret = 0;
	nindex_free(c.ix);
	free(c.held);
	db_close(db);
out_close:
	close(fd);
	return ret;
}
