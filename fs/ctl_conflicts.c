/*
 * ctl_conflicts.c - the control socket's `conflicts` request: every
 * conflict copy the mount shows, with the file it belongs to.
 *
 *   conflicts -> "ok N", then N lines of tab-separated fields:
 *     COPY FILE COPY_VERSION FILE_VERSION COPY_SIZE FILE_SIZE
 *   paths relative to DIR with '\\', tab and newline escaped as \\\\, \\t,
 *   \\n (names may hold anything but '/' and NUL); versions as "hlc-actor"
 *   (wk_id_str: the op that made that content); FILE is "" when the node
 *   has no name of its own any more.
 *
 * The copies are collected under the recorder's lock and sent after it is
 * dropped, so a slow client never holds up the filesystem.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fs.h"
#include "nindex.h"
#include "recorder.h"
#include "xalloc.h"

struct lines {
	char **v;
	size_t n, alloc;
};

/* Copies s into out with \, tab and newline escaped. */
static void escape(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 3 < len; s++) {
		char e = *s == '\\'   ? '\\'
			 : *s == '\t' ? 't'
			 : *s == '\n' ? 'n'
				      : 0;

		if (e) {
			out[o++] = '\\';
			out[o++] = e;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

static void add_copy(struct nindex *ix, const struct nnode *c, struct lines *l)
{
	char path[PATH_MAX], cpath[2 * PATH_MAX], fpath[2 * PATH_MAX];
	char cver[WK_ID_STRLEN], fver[WK_ID_STRLEN];
	const struct nnode *f = nindex_get(ix, c->copy_of);

	if (nindex_path(c, path, sizeof(path)))
		return;
	escape(path, cpath, sizeof(cpath));
	fpath[0] = '\0';
	if (f && nindex_path(f, path, sizeof(path)) == 0)
		escape(path, fpath, sizeof(fpath));
	wk_id_str(c->id, cver);
	wk_id_str(f ? f->content : WK_ID_NONE, fver);
	if (l->n == l->alloc) {
		l->alloc = l->alloc ? 2 * l->alloc : 16;
		l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
	}
	l->v[l->n++] = xasprintf("%s\t%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64, cpath,
				 fpath, cver, fver, c->size, f ? f->size : 0);
}

/* Walks the tree without recursion: directories can be deep. */
static void collect(struct nindex *ix, struct lines *l)
{
	struct nnode *root = nindex_root(ix), *n = root->first_child;

	while (n) {
		if (nnode_is_copy(n))
			add_copy(ix, n, l);
		if (n->first_child) {
			n = n->first_child;
			continue;
		}
		while (n && n != root && !n->next_sibling)
			n = n->parent;
		n = n && n != root ? n->next_sibling : NULL;
	}
}

void ctl_conflicts(struct wkfs *fs, int fd)
{
	struct lines l = {0};
	char head[32];

	rec_lock(fs->rec);
	collect(rec_index(fs->rec), &l);
	rec_unlock(fs->rec);
	snprintf(head, sizeof(head), "ok %zu", l.n);
	if (ctl_reply(fd, head, -1) == 0) {
		for (size_t i = 0; i < l.n; i++)
			if (ctl_reply(fd, l.v[i], -1))
				break;
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
}
