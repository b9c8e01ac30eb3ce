/*
 * syncd_git.c - replication through a git remote: fetch, push and the
 * daemon's loop for [remote] url = git:PATH, git:URL or git:. (the mirror
 * and the remote: syncd_gitmirror.c; importing: syncd_gitpull.c).
 *
 * The branch (config [remote] branch, default wk/oplog) holds
 *   ops/<actor>/<first hlc>.seg   one push's ops of one actor (syncd_git.h)
 *   chunks/<2 hex>/<30 hex>       chunks and recipe chunks by XXH3-128 name
 * Each replica adds only files of its own and never rewrites one, so any
 * two trees union without conflict.
 *
 * Pushing: fetch; the unshipped local ops become one new segment and the
 * chunks of their puts new blobs; the new tree is the fetched tip's plus
 * those (a private index: read-tree, update-index, write-tree), committed
 * on top of the tip and pushed without force.  A push refused as not a
 * fast-forward (someone pushed first) fetches and builds the commit again
 * on the new tip, a bounded number of times.  Only then are the ops
 * marked shipped.  A crash between the push and the mark is found at the
 * next push: local ops at or below the last hlc of our own newest segment
 * on the branch are already there, so a segment is never written twice.
 *
 * A branch that lost our newest segment (reset or deleted on the remote)
 * gets all our ops again; for git:. a copy of the branch under refs/wkfs/
 * brings back a branch deleted with `git branch -D`.
 *
 * The loop fetches every [remote] interval seconds and at once on `wkfs
 * sync`, pushes after local changes (at most once every PUSH_GAP_MS), and
 * backs off after a failure, which status shows with git's message.  Now
 * and then it packs the mirror.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chunk.h"
#include "content.h"
#include "syncd.h"
#include "syncd_git.h"
#include "syncd_gitint.h"
#include "wlog.h"

#define GIT_ROWS       1024 /* local ops in one segment */
#define PUSH_TRIES     8    /* pushes refused as not fast-forward */
#define PUSH_GAP_MS    2000 /* between pushes under constant writing */
#define POLL_MS	       200
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs git; stdout into out (NULL: dropped), reason into s->err. */
int gitb_run(struct syncd *s, const char *what, const char *const *args,
	     struct wire_buf *out)
{
	return git_cmd_out(&s->git->repo, what, args, out, s->err,
			   sizeof(s->err));
}

/* ---- fetch ---- */

/* git fetch of spec into refs/wkfs/remote: 0, 1 when the remote has no
 * such ref, or an error. */
static int fetch_ref(struct syncd *s, const char *spec)
{
	struct git_repo *g = &s->git->repo;
	const char *args[] = {
		"fetch",   "-q", "--no-tags", "--no-write-fetch-head",
		g->remote, spec, NULL};
	char errs[2048] = "";
	struct git_call c = {.what = "fetch",
			     .args = args,
			     .timeout_ms = GIT_NET_TIMEOUT_MS,
			     .err = s->err,
			     .errlen = sizeof(s->err),
			     .stderr_copy = errs,
			     .stderr_len = sizeof(errs)};
	int rc = git_cmd(g, &c);

	if (rc == -EIO && strstr(errs, "couldn't find remote ref"))
		return 1;
	return rc;
}

/* Exit 0 of a git command that answers yes or no by its status. */
bool gitb_yes(struct syncd *s, const char *const *args)
{
	char err[512];

	return git_cmd_out(&s->git->repo, "check", args, NULL, err,
			   sizeof(err)) == 0;
}

/*
 * A branch that was reset or deleted on the remote: when the segment we
 * pushed last (meta git_own_seg) is not on the fetched tip, every local
 * op is marked unshipped again and pushed anew (the push skips what the
 * tip still holds of ours, own_last_hlc).
 */
static int check_own(struct syncd *s)
{
	char path[64] = "", spec[128];
	const char *args[] = {"cat-file", "-e", spec, NULL};
	int rc;

	if (db_meta_get_str(s->db, "git_own_seg", path, sizeof(path)) ||
	    !path[0])
		return 0;
	snprintf(spec, sizeof(spec), "%s:%s", s->git->tip, path);
	if (s->git->tip[0] && gitb_yes(s, args))
		return 0;
	wk_warn("%s lacks our segment %s (reset or deleted): pushing our "
		"ops again",
		s->git->repo.branch_ref + 11, path);
	rc = db_ops_unship_local(s->db);
	if (!rc)
		rc = db_meta_set_str(s->db, "git_own_seg", "");
	if (rc) {
		snprintf(s->err, sizeof(s->err),
			 "cannot mark ops unshipped: %s", db_errmsg(s->db));
		return rc;
	}
	s->shipped_upto = 0;
	s->git->reset = true;
	return 0;
}

/*
 * Fetches the branch into refs/wkfs/remote and sets tip (a missing branch
 * is an empty one: the first push makes it).  git:. : a branch deleted in
 * the user's repository (git branch -D) is taken from the copy syncd keeps
 * beside it, refs/wkfs/keep/BRANCH, and pushed back (restore).
 */
static int fetch(struct syncd *s)
{
	static const char *const tip[] = {"rev-parse", "-q", "--verify",
					  "refs/wkfs/remote^{commit}", NULL};
	struct wire_buf out;
	int rc;

	rc = fetch_ref(s, s->git->repo.fetch_spec);
	if (rc == 1 && s->git->dot) {
		rc = fetch_ref(s, s->git->keep_spec);
		if (rc == 0) {
			wk_warn("%s was deleted: restoring it from %s",
				s->git->repo.branch_ref + 11, s->git->keep_ref);
			s->git->restore = true;
		}
	}
	if (rc == 1) {
		s->git->tip[0] = '\0';
		return check_own(s);
	}
	if (rc)
		return rc;
	wire_buf_init(&out, 0, 4096);
	rc = gitb_run(s, "rev-parse", tip, &out);
	if (!rc)
		rc = git_take_oid(&out, s->git->tip, sizeof(s->git->tip));
	wire_buf_release(&out);
	return rc ? rc : check_own(s);
}

/* ---- reading the branch ---- */

bool gitb_next_entry(const char **p, const char *end, struct gitb_entry *e)
{
	while (*p < end) {
		const char *line = *p, *nl = memchr(line, '\n', end - line);
		const char *tab, *sp;

		if (!nl)
			nl = end;
		*p = nl + 1;
		tab = memchr(line, '\t', nl - line);
		sp = tab ? tab : line;
		while (sp > line && sp[-1] != ' ')
			sp--;
		if (!tab || tab - sp >= (ptrdiff_t)sizeof(e->oid) ||
		    tab - sp < 40)
			continue;
		memcpy(e->oid, sp, tab - sp);
		e->oid[tab - sp] = '\0';
		e->path = tab + 1;
		e->plen = nl - tab - 1;
		return true;
	}
	return false;
}

/* "ops/<16 hex>/<16 hex>.seg": the actor and the name part. */
bool gitb_seg_path(const struct gitb_entry *e, uint64_t *actor, char name[17])
{
	char a[17];

	if (e->plen != 4 + 16 + 1 + 16 + 4 || strncmp(e->path, "ops/", 4) ||
	    e->path[20] != '/' || strncmp(e->path + 37, ".seg", 4))
		return false;
	memcpy(a, e->path + 4, 16);
	a[16] = '\0';
	memcpy(name, e->path + 21, 16);
	name[16] = '\0';
	if (strspn(a, "0123456789abcdef") != 16 ||
	    strspn(name, "0123456789abcdef") != 16)
		return false;
	*actor = strtoull(a, NULL, 16);
	return true;
}

int gitb_list_tree(struct syncd *s, const char *path, struct wire_buf *out)
{
	const char *args[] = {"ls-tree", "-r", "--full-tree", s->git->tip,
			      "--",	 path, NULL};

	wire_buf_init(out, 0, LIST_CAP);
	return gitb_run(s, "ls-tree", args, out);
}

/* The hlc of the last op of our own newest segment on the branch, or 0. */
static int own_last_hlc(struct syncd *s, uint64_t *last)
{
	char dir[32], name[17], best[48] = "", bestname[17] = "";
	struct wire_buf out, blob;
	struct gitseg_iter it;
	struct git_batch b;
	struct gitb_entry e;
	const char *p, *end;
	uint64_t actor, hlc;
	const uint8_t *pay;
	uint32_t plen;
	size_t len;
	int rc;

	*last = 0;
	if (!s->git->tip[0])
		return 0;
	snprintf(dir, sizeof(dir), "ops/%016" PRIx64, s->actor);
	rc = gitb_list_tree(s, dir, &out);
	p = (const char *)wire_buf_data(&out);
	end = p + wire_buf_len(&out);
	while (!rc && p && gitb_next_entry(&p, end, &e))
		if (gitb_seg_path(&e, &actor, name) && actor == s->actor &&
		    strcmp(name, bestname) > 0) {
			snprintf(best, sizeof(best), "%s", e.oid);
			snprintf(bestname, sizeof(bestname), "%s", name);
		}
	wire_buf_release(&out);
	if (rc || !best[0])
		return rc;
	rc = git_batch_open(&s->git->repo, &b);
	if (rc)
		return rc;
	wire_buf_init(&blob, 0, GITSEG_MAX);
	rc = wire_buf_reserve(&blob, GITSEG_MAX);
	if (!rc)
		rc = git_batch_get(&b, best, blob.mem, GITSEG_MAX, &len);
	git_batch_close(&b);
	if (!rc)
		rc = gitseg_iter_init(&it, blob.mem, len);
	if (!rc)
		while ((rc = gitseg_next(&it, &hlc, &pay, &plen)) == 1)
			if (hlc > *last)
				*last = hlc;
	wire_buf_release(&blob);
	if (rc < 0)
		snprintf(s->err, sizeof(s->err),
			 "reading our own segment %s: %s", bestname,
			 strerror(-rc));
	return rc < 0 ? rc : 0;
}

/* ---- pushing ---- */

struct outbox {
	struct db_oprow *rows;
	size_t n;
	int64_t last_seen;
};

static int collect(void *arg, const struct db_oprow *r)
{
	struct outbox *o = arg;

	o->last_seen = r->seq;
	if (r->origin != DB_ORIGIN_LOCAL || r->shipped)
		return 0;
	o->rows[o->n++] = *r;
	return o->n == GIT_ROWS ? 1 : 0;
}

void gitb_chunk_path(const struct wk_hash *h, char *buf, size_t len)
{
	char hs[WK_HASH_STRLEN];

	wk_hash_str(h, hs);
	snprintf(buf, len, "chunks/%.2s/%s", hs, hs + 2);
}

/* Stages chunk h unless the fetched tip has it. */
static int stage_chunk(struct syncd *s, struct git_stage *st,
		       const struct wk_hash *h, const void *p, size_t len)
{
	char path[64];

	gitb_chunk_path(h, path, sizeof(path));
	if (git_stage_tip_has(st, s->git->tip, path))
		return 0;
	/* What goes to the remote counts as traffic, as the relay's does. */
	s->tx_bytes += len;
	return git_stage_bytes(st, path, p, len);
}

/* Stages the chunks of a local put; *ref says where its content is. */
static int stage_put(struct syncd *s, struct git_stage *st,
		     const struct wk_op *op, struct wire_content_ref *ref)
{
	struct content_cut c;
	uint8_t *buf;
	int rc;

	memset(ref, 0, sizeof(*ref));
	ref->how = WIRE_CONTENT_NONE;
	if (op->size == 0) {
		ref->how = WIRE_CONTENT_WHOLE;
		return 0;
	}
	rc = content_cut_open(s, op, &c);
	if (rc)
		return rc > 0 ? 0 : rc;
	buf = malloc(CHUNK_MAX);
	if (!buf) {
		content_cut_release(&c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < c.r.n && !rc; i++) {
		ssize_t n = content_cut_read(&c, i, buf);

		rc = n < 0 ? (int)n
			   : stage_chunk(s, st, &c.r.v[i].name, buf, (size_t)n);
	}
	if (!rc && c.r.n > 1)
		rc = stage_chunk(s, st, &c.rec_name, c.rec.p, c.rec.len);
	if (rc == -ESTALE) {
		content_not_shipped(op, c.path,
				    "the file changed while reading it");
		rc = 0;
	} else if (!rc) {
		ref->how = c.r.n > 1 ? WIRE_CONTENT_RECIPE : WIRE_CONTENT_WHOLE;
		if (c.r.n > 1)
			ref->recipe = c.rec_name;
	}
	free(buf);
	content_cut_release(&c);
	return rc;
}

/* The segment of the rows past `skip_upto` (an hlc already pushed). */
static int build_segment(struct syncd *s, struct outbox *o, uint64_t skip_upto,
			 struct git_stage *st, struct wire_buf *seg,
			 uint64_t *first, size_t *count)
{
	struct wire_content_ref ref;
	struct wire_buf pay;
	int rc = 0;

	*first = 0;
	*count = 0;
	gitseg_begin(seg, s->actor);
	wire_buf_init(&pay, 0, WIRE_PAYLOAD_MAX);
	for (size_t i = 0; i < o->n && !rc; i++) {
		const struct wk_op *op = &o->rows[i].op;

		if (op->id.hlc <= skip_upto)
			continue;
		wire_buf_reset(&pay);
		if (op->kind == WK_OP_PUT) {
			rc = stage_put(s, st, op, &ref);
			if (!rc)
				rc = wire_put_encode(&pay, op, &ref);
		} else {
			rc = wire_op_encode(&pay, op);
		}
		if (rc == -EINVAL) {
			char ids[WK_ID_STRLEN];

			wk_err("local op %s cannot be encoded; not shipped",
			       wk_id_str(op->id, ids));
			rc = 0;
			continue;
		}
		if (!rc)
			rc = gitseg_add(seg, op->id.hlc, wire_buf_data(&pay),
					(uint32_t)wire_buf_len(&pay));
		if (!rc && !*first)
			*first = op->id.hlc;
		if (!rc)
			(*count)++;
	}
	wire_buf_release(&pay);
	return rc;
}

/* The tip's tree plus info's entries, committed on top of the tip. */
static int make_commit(struct syncd *s, struct wire_buf *info, size_t count,
		       char *commit, size_t len)
{
	char msg[96], who[64];
	const char *env[] = {"GIT_AUTHOR_NAME=wkfs", who,
			     "GIT_COMMITTER_NAME=wkfs",
			     "GIT_COMMITTER_EMAIL=wkfs@wkfs", NULL};

	snprintf(who, sizeof(who), "GIT_AUTHOR_EMAIL=%016" PRIx64 "@wkfs",
		 s->actor);
	snprintf(msg, sizeof(msg), "wkfs: %zu ops from %016" PRIx64, count,
		 s->actor);
	return git_tree_commit(&s->git->repo, s->git->tip, info, msg, env,
			       commit, len, s->err, sizeof(s->err));
}

/*
 * git push COMMIT:refs/heads/BRANCH: 0, -EAGAIN when refused as not a
 * fast-forward, or an error.  git:. : also (forced) to the copy
 * refs/wkfs/keep/BRANCH, which `git branch -D` does not touch.
 */
static int push_commit(struct syncd *s, const char *commit)
{
	struct git_repo *g = &s->git->repo;
	char spec[400], keep[400], errs[2048] = "";
	const char *args[] = {"push",	 "-q", "--porcelain",
			      g->remote, spec, s->git->dot ? keep : NULL,
			      NULL};
	struct wire_buf out;
	struct git_call c = {.what = "push",
			     .args = args,
			     .timeout_ms = GIT_NET_TIMEOUT_MS,
			     .err = s->err,
			     .errlen = sizeof(s->err),
			     .stderr_copy = errs,
			     .stderr_len = sizeof(errs)};
	int rc;

	snprintf(spec, sizeof(spec), "%s:%s", commit, g->branch_ref);
	snprintf(keep, sizeof(keep), "+%s:%s", commit, s->git->keep_ref);
	wire_buf_init(&out, 0, 65536);
	c.out = &out;
	rc = git_cmd(g, &c);
	if (rc == -EIO) {
		wire_buf_append(&out, "", 1);
		/* Someone pushed first: refused as not a fast-forward, or
		 * (a race inside receive-pack) the ref moved meanwhile. */
		if (strstr((char *)wire_buf_data(&out), "[rejected]") ||
		    strstr(errs, "[rejected]") ||
		    strstr(errs, "cannot lock ref"))
			rc = -EAGAIN;
		else if (strstr((char *)wire_buf_data(&out),
				"[remote rejected]"))
			snprintf(s->err + strlen(s->err),
				 sizeof(s->err) - strlen(s->err), " (%s)",
				 strstr((char *)wire_buf_data(&out),
					"[remote rejected]"));
	}
	s->err[strcspn(s->err, "\n")] = '\0';
	wire_buf_release(&out);
	return rc;
}

/* Pushes one segment's worth of unshipped ops: 1 when there were none. */
static int push_round(struct syncd *s, struct outbox *o)
{
	struct git_stage st;
	struct wire_buf seg, info;
	uint64_t skip, first;
	size_t count;
	char commit[48], where[64];
	int rc;

again:
	o->n = 0;
	o->last_seen = s->shipped_upto;
	rc = db_ops_foreach(s->db, s->shipped_upto, 0, collect, o);
	if (rc < 0) {
		snprintf(s->err, sizeof(s->err), "cannot read the oplog: %s",
			 db_errmsg(s->db));
		return rc;
	}
	if (o->n == 0) {
		s->shipped_upto = o->last_seen;
		return 1;
	}
	rc = fetch(s);
	if (!rc && s->git->reset) {
		/* Our ops are gone from the branch: collect from the start. */
		s->git->reset = false;
		goto again;
	}
	if (!rc)
		rc = own_last_hlc(s, &skip);
	if (rc)
		return rc;
	wire_buf_init(&seg, 0, GITSEG_MAX);
	wire_buf_init(&info, 0, 64u << 20);
	rc = git_stage_init(&st, &s->git->repo, "wkfs-stage");
	if (!rc)
		rc = build_segment(s, o, skip, &st, &seg, &first, &count);
	if (rc)
		snprintf(s->err, sizeof(s->err), "cannot prepare the push: %s",
			 strerror(-rc));
	if (!rc && count) {
		snprintf(where, sizeof(where),
			 "ops/%016" PRIx64 "/%016" PRIx64 ".seg", s->actor,
			 first);
		rc = git_stage_bytes(&st, where, wire_buf_data(&seg),
				     wire_buf_len(&seg));
		s->tx_bytes += wire_buf_len(&seg);
		if (!rc)
			rc = git_stage_names(&st, &info, s->err,
					     sizeof(s->err));
	}
	for (int tries = 0; !rc && count; tries++) {
		rc = make_commit(s, &info, count, commit, sizeof(commit));
		if (!rc)
			rc = push_commit(s, commit);
		if (rc != -EAGAIN)
			break;
		if (tries == PUSH_TRIES) {
			snprintf(s->err, sizeof(s->err),
				 "push: refused %d times as not a "
				 "fast-forward",
				 tries + 1);
			break;
		}
		wk_debug("push refused as not a fast-forward; fetching");
		rc = fetch(s);
	}
	if (!rc && count) {
		const char *up[] = {"update-ref", "refs/wkfs/remote", commit,
				    NULL};

		snprintf(s->git->tip, sizeof(s->git->tip), "%s", commit);
		gitb_run(s, "update-ref", up, NULL);
		s->git->restore = false;
		s->git->since_pack++;
		if (db_meta_set_str(s->db, "git_own_seg", where))
			wk_warn("cannot record our segment: %s",
				db_errmsg(s->db));
	}
	git_stage_release(&st);
	wire_buf_release(&seg);
	wire_buf_release(&info);
	if (rc)
		return rc;
	rc = db_ops_mark_shipped(s->db, o->rows[o->n - 1].seq, NULL);
	if (rc) {
		snprintf(s->err, sizeof(s->err), "cannot mark ops shipped: %s",
			 db_errmsg(s->db));
		return rc;
	}
	s->shipped_upto = o->rows[o->n - 1].seq;
	s->pushed += count;
	s->git->last_push_ms = mono_ms();
	if (count)
		wk_info("pushed %zu ops to %s", count, s->cfg.remote_url);
	return 0;
}

static int git_push(struct syncd *s)
{
	struct outbox o = {.rows = malloc(GIT_ROWS * sizeof(*o.rows))};
	int rc;

	if (!o.rows)
		return -ENOMEM;
	while ((rc = push_round(s, &o)) == 0 && o.n == GIT_ROWS)
		;
	free(o.rows);
	return rc < 0 ? rc : 0;
}

static int any_local(void *arg, const struct db_oprow *r)
{
	int64_t *last = arg;

	if (r->origin == DB_ORIGIN_LOCAL && !r->shipped)
		return 1;
	*last = r->seq;
	return 0;
}

/* True when a local op waits to be pushed. */
static bool has_unshipped(struct syncd *s)
{
	int64_t last = s->shipped_upto;
	int rc = db_ops_foreach(s->db, s->shipped_upto, 0, any_local, &last);

	if (rc == 0)
		s->shipped_upto = last;
	return rc != 0;
}

/* ---- the loop ---- */

/*
 * Packs the mirror's loose objects now and then: every push and every
 * fetch leaves some (segments, chunks, trees, commits), and the gc that
 * fetch runs only looks once there are thousands.  In the foreground
 * (the mirror's gc.autoDetach is off): a detached gc would outlive a
 * daemon being stopped.  A failure is logged and changes nothing else.
 */
static void maybe_pack(struct syncd *s)
{
	static const char *const repack[] = {"repack", "-d", "-q", NULL};
	static const char *const gc[] = {"gc", "--auto", "--quiet", NULL};
	char err[512];

	if (s->git->since_pack < PACK_EVERY)
		return;
	s->git->since_pack = 0;
	if (git_cmd_out(&s->git->repo, "repack", repack, NULL, err,
			sizeof(err)) ||
	    git_cmd_out(&s->git->repo, "gc", gc, NULL, err, sizeof(err)))
		wk_warn("packing the mirror: %s", err);
}

/* The branch is gone but its copy was fetched: push the copy back. */
static int restore_branch(struct syncd *s)
{
	int rc = push_commit(s, s->git->tip);

	if (rc == -EAGAIN) /* someone made the branch meanwhile: fine */
		rc = 0;
	if (!rc) {
		s->git->restore = false;
		wk_info("restored %s from %s", s->git->repo.branch_ref + 11,
			s->git->keep_ref);
	}
	return rc;
}

/* Push what is unshipped, then (pull) fetch and import. */
static int exchange(struct syncd *s, bool pull)
{
	struct git_repo *g = &s->git->repo;
	int rc = 0;

	if (s->git->dot && !g->remote[0])
		rc = gitb_dot_repo(s, g->remote, sizeof(g->remote));
	if (!rc)
		rc = git_push(s);

	if (!rc && pull)
		rc = fetch(s);
	if (!rc && s->git->reset) {
		s->git->reset = false;
		rc = git_push(s);
	}
	if (!rc && s->git->restore && s->git->tip[0])
		rc = restore_branch(s);
	if (!rc && pull)
		rc = syncd_git_pull(s);
	maybe_pack(s);
	if (!rc && db_meta_set_u64(s->db, "last_sync_ms", (uint64_t)wall_ms()))
		wk_warn("cannot record the sync time: %s", db_errmsg(s->db));
	return rc;
}

int syncd_git_once(struct syncd *s)
{
	int rc;

	rc = exchange(s, true);

	syncd_apply(s);
	if (rc) {
		wk_err("%s: %s", s->real, s->err);
		return 1;
	}
	return syncd_stopping() ? 1 : 0;
}

/* Sleeps up to ms, cut short by a stop or a sync request. */
static void nap(struct syncd *s, long ms)
{
	while (ms > 0 && !syncd_stopping() && !syncd_sync_wanted(s)) {
		long step = ms < 50 ? ms : 50;
		struct timespec ts = {0, step * 1000000L};

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

int syncd_git_run(struct syncd *s)
{
	int64_t next_fetch = 0, next_try = 0;
	long backoff = BACKOFF_MIN_MS;
	char said[sizeof(s->err)] = "";

	wk_info("syncing with %s (branch %s)",
		s->git->dot ? "git:." : s->git->repo.remote,
		s->git->repo.branch_ref + 11);
	while (!syncd_stopping()) {
		uint64_t asked = syncd_sync_wanted(s);
		int64_t now = mono_ms();
		bool pull = asked || now >= next_fetch;
		bool push = now - s->git->last_push_ms >= PUSH_GAP_MS &&
			    has_unshipped(s);
		int rc;

		if (!asked && (now < next_try || (!pull && !push))) {
			nap(s, POLL_MS);
			continue;
		}
		rc = exchange(s, pull);
		if (!rc) {
			backoff = BACKOFF_MIN_MS;
			next_try = 0;
			said[0] = '\0';
			if (pull)
				next_fetch = now +
					     (int64_t)s->cfg.remote_interval_s *
						     1000;
			syncd_publish(s, SYNCD_CONNECTED, true);
		} else {
			if (strcmp(said, s->err) != 0) {
				wk_warn("%s; retrying", s->err);
				snprintf(said, sizeof(said), "%s", s->err);
			}
			next_try = now + backoff / 2 +
				   random() % (backoff / 2 + 1);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							       : backoff * 2;
			syncd_publish(s, SYNCD_OFFLINE, false);
		}
		/* A sync is answered once the mount has applied what came
		 * in: `wkfs sync` returns with the files in place. */
		syncd_apply(s);
		if (asked)
			syncd_sync_answer(s, asked, rc);
	}
	return 0;
}
