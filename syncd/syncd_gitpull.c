/*
 * syncd_gitpull.c - importing a git remote's branch: the segments of other
 * actors that are new on the fetched tip, their contents into the object
 * store from the tree, then their ops as remote ops with the actor's mark
 * (meta git_seg_<actor>), durably, one segment at a time.
 *
 * Not here: fetching, pushing, the loop (syncd_git.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"
#include "content.h"
#include "syncd.h"
#include "syncd_git.h"
#include "syncd_gitint.h"
#include "wlog.h"

struct source {
	struct syncd *s;
	struct git_batch *b;
};

/* content_chunk_fn: a chunk from the fetched tree, checked by name. */
static ssize_t tree_chunk(void *arg, const struct wk_hash *name, uint8_t *buf,
			  size_t max)
{
	struct source *src = arg;
	char spec[160], path[64];
	struct wk_hash h;
	size_t len;
	int rc;

	gitb_chunk_path(name, path, sizeof(path));
	snprintf(spec, sizeof(spec), "%s:%s", src->s->git->tip, path);
	rc = git_batch_get(src->b, spec, buf, max, &len);
	if (rc == -EMSGSIZE)
		return -EBADMSG;
	if (rc)
		return rc;
	src->s->rx_bytes += len;
	content_hash_buf(buf, len, &h);
	if (memcmp(&h, name, sizeof(h)) != 0)
		return -EBADMSG;
	return (ssize_t)len;
}

/* The recipe of a received put, from the fetched tree. */
static int load_recipe(struct source *src, const struct wk_op *op,
		       const struct wire_content_ref *ref, struct recipe *r)
{
	uint8_t *buf;
	ssize_t n;
	int rc;

	recipe_init(r);
	if (ref->how == WIRE_CONTENT_WHOLE)
		return recipe_push(r, &op->hash, (uint32_t)op->size);
	buf = malloc(WIRE_CHUNK_MAX);
	if (!buf)
		return -ENOMEM;
	n = tree_chunk(src, &ref->recipe, buf, WIRE_CHUNK_MAX);
	rc = n < 0 ? (int)n : recipe_decode(NULL, buf, (size_t)n, r);
	free(buf);
	return rc == -ESTALE ? -EBADMSG : rc;
}

/* Brings the content of a received put into the object store. */
static int fetch_content(struct source *src, const struct wk_op *op,
			 const struct wire_content_ref *ref)
{
	struct syncd *s = src->s;
	struct wk_hash got;
	struct recipe r;
	int rc;

	if (!content_wanted(s, op, ref))
		return 0;
	rc = load_recipe(src, op, ref, &r);
	if (!rc && recipe_size(&r) != op->size)
		rc = -EBADMSG;
	if (!rc)
		rc = content_assemble(s, &r, tree_chunk, src, &got);
	if (!rc && memcmp(&got, &op->hash, sizeof(got)) != 0) {
		mat_object_drop(s->mat, &got);
		rc = -EBADMSG;
	}
	recipe_release(&r);
	if (rc == -EBADMSG || rc == -ENOENT) {
		content_refuse(op, rc == -ENOENT
					   ? "the branch lacks a chunk of it"
					   : "it does not match its hash");
		return 0;
	}
	if (rc)
		snprintf(s->err, sizeof(s->err),
			 "cannot bring in a file's content: %s", strerror(-rc));
	return rc;
}

/* Imports one segment of another actor, with its mark, durably. */
static int import_segment(struct source *src, const struct gitb_entry *e,
			  uint64_t actor, const char *name, uint8_t *buf)
{
	struct syncd *s = src->s;
	struct wk_op *op = malloc(sizeof(*op));
	struct wire_content_ref ref;
	struct plan_retired superseded = {0};
	struct gitseg_iter it;
	char key[48];
	const uint8_t *p;
	uint64_t hlc;
	uint32_t plen;
	size_t len;
	int rc, inserted = 0;

	if (!op)
		return -ENOMEM;
	snprintf(key, sizeof(key), "git_seg_%016" PRIx64, actor);
	rc = git_batch_get(src->b, e->oid, buf, GITSEG_MAX, &len);
	if (rc == 0)
		s->rx_bytes += len;
	if (rc == 0 && (gitseg_iter_init(&it, buf, len) || it.actor != actor))
		rc = -EBADMSG;
	if (rc == -EBADMSG || rc == -EMSGSIZE) {
		wk_warn("segment %.*s is not a wkfs segment; skipped",
			(int)e->plen, e->path);
		rc = db_meta_set_str(s->db, key, name);
		free(op);
		return rc;
	}
	if (rc)
		goto out;
	/* What the segment itself supersedes is not fetched. */
	while (gitseg_next(&it, &hlc, &p, &plen) == 1)
		if (!wire_op_decode_ref(p, plen, actor, hlc, op, NULL))
			plan_retired_add(&superseded, op);
	s->superseded = &superseded;
	gitseg_iter_init(&it, buf, len);
	/* Contents first: the ops go in only once their files are here. */
	while ((rc = gitseg_next(&it, &hlc, &p, &plen)) == 1) {
		if (wire_op_decode_ref(p, plen, actor, hlc, op, &ref) ||
		    op->kind != WK_OP_PUT)
			continue;
		rc = fetch_content(src, op, &ref);
		if (rc)
			break;
	}
	s->superseded = NULL;
	if (rc < 0 && rc != -EBADMSG)
		goto out;
	rc = db_begin(s->db);
	if (rc)
		goto out;
	gitseg_iter_init(&it, buf, len);
	while ((rc = gitseg_next(&it, &hlc, &p, &plen)) == 1) {
		if (wire_op_decode_ref(p, plen, actor, hlc, op, NULL)) {
			wk_warn("op %016" PRIx64 "/%" PRIu64 " of %.*s does "
				"not decode; skipped",
				actor, hlc, (int)e->plen, e->path);
			continue;
		}
		rc = db_op_append(s->db, op, DB_ORIGIN_REMOTE, NULL);
		if (rc == -EEXIST)
			continue;
		if (rc)
			break;
		inserted++;
	}
	if (rc == -EBADMSG)
		wk_warn("segment %.*s ends in a truncated record", (int)e->plen,
			e->path);
	if (rc < 0 && rc != -EBADMSG) {
		db_rollback(s->db);
		goto out_db;
	}
	rc = db_meta_set_str(s->db, key, name);
	if (!rc)
		rc = db_commit(s->db, true);
	if (rc) {
		db_rollback(s->db);
		goto out_db;
	}
	if (inserted) {
		s->need_apply = true;
		s->received += (uint64_t)inserted;
		wk_info("received %d ops (%.*s)", inserted, (int)e->plen,
			e->path);
	}
	free(op);
	plan_retired_release(&superseded);
	return 0;
out_db:
	snprintf(s->err, sizeof(s->err), "cannot store remote ops: %s",
		 db_errmsg(s->db));
out:
	free(op);
	plan_retired_release(&superseded);
	return rc;
}

/* "ops/<16 hex>" of a listing of ops/: the actor. */
static bool actor_path(const struct gitb_entry *e, uint64_t *actor)
{
	char a[17];

	if (e->plen != 4 + 16 || strncmp(e->path, "ops/", 4))
		return false;
	memcpy(a, e->path + 4, 16);
	a[16] = '\0';
	if (strspn(a, "0123456789abcdef") != 16)
		return false;
	*actor = strtoull(a, NULL, 16);
	return true;
}

/* `ls-tree COMMIT -- ops/`: one line per actor, with its subtree's id. */
static int list_actors(struct syncd *s, const char *commit,
		       struct wire_buf *out)
{
	const char *args[] = {"ls-tree", commit, "--", "ops/", NULL};

	wire_buf_init(out, 0, LIST_CAP);
	return gitb_run(s, "ls-tree", args, out);
}

/* True when actor's subtree in the listing old has the id oid. */
static bool same_subtree(struct wire_buf *old, uint64_t actor, const char *oid)
{
	const char *p = (const char *)wire_buf_data(old);
	const char *end = p + wire_buf_len(old);
	struct gitb_entry e;
	uint64_t a;

	while (gitb_next_entry(&p, end, &e))
		if (actor_path(&e, &a) && a == actor)
			return !strcmp(e.oid, oid);
	return false;
}

/* Imports actor's segments after its mark (fresh: after none). */
static int pull_actor(struct source *src, uint64_t actor, bool fresh,
		      uint8_t *buf)
{
	struct syncd *s = src->s;
	char dir[32], key[48], last[24] = "-", name[17];
	struct wire_buf list;
	struct gitb_entry e;
	const char *p, *end;
	uint64_t a;
	int rc;

	snprintf(key, sizeof(key), "git_seg_%016" PRIx64, actor);
	if (fresh || db_meta_get_str(s->db, key, last, sizeof(last)))
		snprintf(last, sizeof(last), "-");
	snprintf(dir, sizeof(dir), "ops/%016" PRIx64, actor);
	rc = gitb_list_tree(s, dir, &list);
	p = (const char *)wire_buf_data(&list);
	end = p + wire_buf_len(&list);
	while (!rc && gitb_next_entry(&p, end, &e)) {
		if (!gitb_seg_path(&e, &a, name) || a != actor ||
		    strcmp(name, last) <= 0)
			continue;
		rc = import_segment(src, &e, actor, name, buf);
		if (!rc)
			snprintf(last, sizeof(last), "%s", name);
	}
	wire_buf_release(&list);
	return rc;
}

/*
 * Imports what is new on the fetched tip.  Only the actors whose ops/
 * subtree differs from the one at the tip pulled last are listed, each
 * from its mark on.  A tip that does not descend from the last one (the
 * branch was reset or re-made) reads every actor from its start: the
 * marks may name segments that are gone, and ops already here are
 * skipped as duplicates.
 */
int syncd_git_pull(struct syncd *s)
{
	struct wire_buf now, old;
	struct git_batch b;
	struct source src = {.s = s, .b = &b};
	struct gitb_entry e;
	const char *p, *end;
	char pulled[48] = "";
	const char *anc[] = {"merge-base", "--is-ancestor", pulled, s->git->tip,
			     NULL};
	uint64_t actor;
	uint8_t *buf = NULL;
	bool fresh;
	int rc;

	if (!s->git->tip[0])
		return 0;
	if (!db_meta_get_str(s->db, "git_pulled", pulled, sizeof(pulled)) &&
	    !strcmp(pulled, s->git->tip))
		return 0;
	fresh = !pulled[0] || !gitb_yes(s, anc);
	wire_buf_init(&old, 0, LIST_CAP);
	if (!fresh && list_actors(s, pulled, &old))
		fresh = true;
	rc = list_actors(s, s->git->tip, &now);
	if (!rc) {
		buf = malloc(GITSEG_MAX);
		rc = buf ? git_batch_open(&s->git->repo, &b) : -ENOMEM;
	}
	if (rc)
		goto out;
	p = (const char *)wire_buf_data(&now);
	end = p + wire_buf_len(&now);
	while (!rc && gitb_next_entry(&p, end, &e)) {
		if (!actor_path(&e, &actor) || actor == s->actor ||
		    (!fresh && same_subtree(&old, actor, e.oid)))
			continue;
		rc = pull_actor(&src, actor, fresh, buf);
	}
	git_batch_close(&b);
	if (!rc && db_meta_set_str(s->db, "git_pulled", s->git->tip))
		wk_warn("cannot record the pulled tip: %s", db_errmsg(s->db));
	if (!rc)
		s->git->since_pack++;
out:
	free(buf);
	wire_buf_release(&now);
	wire_buf_release(&old);
	return rc;
}
