/*
 * history.c - `wkfs history PATH [--json]`: every version of a file, or of
 * the entries of a directory, from the oplog (lib/history.h), oldest
 * first.
 *
 * Text: "N TIME DEVICE KIND SIZE CONTENT PATH [<- FROM]", CONTENT saying
 * where the version's bytes are (versions_where()).  JSON: one object per
 * line, as `wkfs log --json` (fields in docs/architecture.md, "History and
 * restore").  N is what `wkfs restore --version N` takes.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "history.h"
#include "hlc.h"
#include "out.h"
#include "termesc.h"
#include "versions.h"
#include "wlog.h"

static const char *node_type(enum wk_kind k)
{
	return k == WK_KIND_DIR	      ? "dir"
	       : k == WK_KIND_SYMLINK ? "symlink"
				      : "file";
}

static void print_text(const struct versions *v, const struct hist_entry *e)
{
	const struct hist_op *op = &v->ops[e->op];
	const char *where = versions_where(v, e);
	char t[64], size[32] = "-", actor[17], *dev;

	out_iso_ms((int64_t)hlc_ms(op->id.hlc), t, sizeof(t));
	if (e->has_content && e->node_kind == WK_KIND_FILE)
		out_bytes(e->size, size, sizeof(size));
	snprintf(actor, sizeof(actor), "%016" PRIx64, op->id.actor);
	/* Devices and names come from any replica: escaped. */
	dev = term_escape_dup(op->device[0] ? op->device : actor);
	printf("%-3u %s %-8s %-13s %9s %-5s ", e->number, t, dev,
	       hist_kind_name(e->kind), size, where ? where : "-");
	free(dev);
	term_fputs(e->path[0] ? e->path : ".", stdout);
	if (e->from) {
		fputs(" <- ", stdout);
		term_fputs(e->from[0] ? e->from : ".", stdout);
	}
	putchar('\n');
}

static void print_json(const struct versions *v, const struct hist_entry *e)
{
	const struct hist_op *op = &v->ops[e->op];
	const char *where = versions_where(v, e);
	char t[64], id[WK_ID_STRLEN], h[WK_HASH_STRLEN];

	out_iso_ms((int64_t)hlc_ms(op->id.hlc), t, sizeof(t));
	printf("{\"version\":%u,\"time\":\"%s\",\"hlc\":%" PRIu64
	       ",\"actor\":\"%016" PRIx64 "\",\"device\":",
	       e->number, t, op->id.hlc, op->id.actor);
	if (op->device[0])
		out_json_str(stdout, op->device);
	else
		fputs("null", stdout);
	printf(",\"kind\":\"%s\",\"type\":\"%s\",\"node\":\"%s\",\"path\":",
	       hist_kind_name(e->kind), node_type(e->node_kind),
	       wk_id_str(e->node, id));
	out_json_str(stdout, e->path);
	if (e->from) {
		fputs(",\"from\":", stdout);
		out_json_str(stdout, e->from);
	}
	if (where)
		printf(",\"size\":%" PRIu64
		       ",\"hash\":\"%s\",\"content\":\"%s\"",
		       e->size, wk_hash_str(&e->hash, h), where);
	fputs("}\n", stdout);
}

int cmd_history(int argc, char **argv)
{
	static const struct option longs[] = {
		{"json", no_argument, NULL, 'j'},
		{0},
	};
	struct versions v;
	struct history h;
	bool json = false;
	char err[PATH_MAX + 256];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (opt != 'j')
			goto usage;
		json = true;
	}
	if (optind != argc - 1)
		goto usage;
	if (versions_open(argv[optind], &v, err, sizeof(err))) {
		wk_err("%s", err);
		return 1;
	}
	history_of_path(v.ops, v.n, v.rel, &h);
	if (!h.n) {
		/* wk_err escapes what it prints. */
		wk_err("%s: no such file or directory, now or in the history "
		       "of %s",
		       argv[optind], v.root);
		versions_release(&v);
		return 1;
	}
	for (size_t i = 0; i < h.n; i++) {
		if (json)
			print_json(&v, &h.v[i]);
		else
			print_text(&v, &h.v[i]);
	}
	history_release(&h);
	versions_release(&v);
	return 0;
usage:
	fprintf(stderr, "usage: wkfs history PATH [--json]\n");
	return 2;
}
