/*
 * relay_git.c - wkfs-relay's git backing: commits of its ops and chunks
 * (relay_git.h is the contract; relay_gitrebuild.c reads them back).
 *
 * Folder F's branch, BRANCH/F, holds exactly what a git remote's branch
 * holds (syncd_git.h), so a `git:` replica can read it:
 *   ops/<actor>/<first hlc>.seg   the ops of one actor that arrived
 *                                 between two commits, in seq order, with
 *                                 their payloads as the relay stored them
 *   chunks/<2 hex>/<30 hex>       the chunks and recipe chunks their puts
 *                                 name, from DATA/chunks/F
 * Each commit has the previous one as its only parent (fast-forward only)
 * and ends with a trailer "wkfs-relay-seq: <id> <seq>", the folder's id
 * (meta git_id, random) and the last seq it holds.  Meta git_seq is that
 * seq too, written after the ref moved; a crash between the two is found
 * by the trailer, so a restart never writes a segment twice.
 *
 * Where the work runs: a thread of its own with its own database
 * connection, never the service loop.  Building a commit means reading
 * ops and chunk files and waiting for several git processes; a slice of
 * that on the lws thread would still stall every connection for a git
 * process's start-up, and a child process would need the database and
 * store opened again anyway.  The thread reads ops with one SELECT at a
 * time (each statement is a consistent snapshot; ops below the head never
 * change) in slices of at most ROUND_OPS ops or ROUND_BYTES bytes, one
 * commit each, so its memory is bounded whatever the backlog.  It writes
 * only meta rows; WAL lets the service loop write meanwhile.
 */
#include "relay_git.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recipe.h"
#include "relay_chunks.h"
#include "relay_db.h"
#include "syncd_git.h"
#include "wire.h"
#include "wlog.h"
#include "xalloc.h"

#define ROUND_OPS   4096
#define ROUND_BYTES (64u << 20)
#define LIST_CAP    (256u << 20)
#define TRAILER	    "\nwkfs-relay-seq: "

struct relay_git {
	const struct relay_git_opts *o;
	const char *data_dir;
	struct git_repo repo;
	struct relay_db *db; /* the thread's own connection */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;	    /* lock */
	bool unpushed;	    /* commits not pushed yet (thread only) */
	bool committed;	    /* this round made a commit (thread only) */
	int64_t warned[16]; /* folders whose names git refuses, told */
	unsigned nwarned;
	char err[1024];
};

/* ---- the repository ---- */

int relay_git_repo_setup(struct git_repo *g, const char *dir)
{
	char cwd[1024];
	int n;

	memset(g, 0, sizeof(*g));
	if (dir[0] == '/')
		n = snprintf(g->dir, sizeof(g->dir), "%s", dir);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(g->dir, sizeof(g->dir), "%s/%s", cwd, dir);
	else
		return -errno;
	if (n < 0 || (size_t)n >= sizeof(g->dir) - 64)
		return -ENAMETOOLONG;
	snprintf(g->env_dir, sizeof(g->env_dir), "GIT_DIR=%s", g->dir);
	snprintf(g->env_index, sizeof(g->env_index),
		 "GIT_INDEX_FILE=%s/wkfs-relay-index", g->dir);
	return 0;
}

static int run(struct git_repo *g, const char *what, const char *const *args,
	       struct wire_buf *out, char *err, size_t errlen)
{
	return git_cmd_out(g, what, args, out, err, errlen);
}

/* 0 when g->dir is a git repository; err says why not. */
int relay_git_repo_check(struct git_repo *g, char *err, size_t errlen)
{
	static const char *const args[] = {"rev-parse", "--git-dir", NULL};
	struct stat st;

	if (stat(g->dir, &st) < 0) {
		snprintf(err, errlen, "%.900s: %s", g->dir, strerror(errno));
		return -errno;
	}
	if (run(g, "rev-parse", args, NULL, err, errlen)) {
		snprintf(err, errlen, "%.900s is not a git repository", g->dir);
		return -ENOTDIR;
	}
	return 0;
}

/* `git init --bare` when dir does not exist, else it must be one. */
static int repo_open(struct git_repo *g, char *err, size_t errlen)
{
	static const char *const init[] = {"init", "-q", "--bare", NULL};
	static const char *const nodetach[] = {"config", "gc.autoDetach",
					       "false", NULL};
	struct stat st;
	int rc;

	if (stat(g->dir, &st) == 0 || errno != ENOENT)
		return relay_git_repo_check(g, err, errlen);
	rc = run(g, "init", init, NULL, err, errlen);
	/* A detached gc would outlive a relay that is being stopped. */
	if (!rc)
		rc = run(g, "config", nodetach, NULL, err, errlen);
	return rc;
}

int relay_git_branch_check(const char *b)
{
	size_t n = strlen(b);

	if (!n || b[0] == '/' || b[n - 1] == '/' || b[n - 1] == '.' ||
	    strstr(b, "..") || strstr(b, "//") || strstr(b, "@{") ||
	    strstr(b, "/.") || b[0] == '.' || strpbrk(b, " ~^:?*[\\\x7f"))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)b[i] < 0x20)
			return -EINVAL;
	if (n >= 5 && (strstr(b, ".lock/") || !strcmp(b + n - 5, ".lock")))
		return -EINVAL;
	return 0;
}

/* Folder names wire_folder_valid() accepts but git refuses as a name. */
static bool folder_ref_ok(const char *name)
{
	size_t n = strlen(name);

	return !strstr(name, "..") && name[n - 1] != '.' &&
	       !(n >= 5 && !strcmp(name + n - 5, ".lock"));
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- one commit of a folder ---- */

/* The open segment of one actor in this slice. */
struct seg {
	uint64_t actor;
	uint64_t first;
	struct wire_buf b;
};

struct slice {
	struct relay_git *g;
	const struct relay_folder *f;
	char tip[48]; /* the branch's commit, or "" */
	struct seg *segs;
	size_t nsegs;
	struct git_stage st;  /* the commit's new files */
	unsigned count;	      /* ops taken */
	uint64_t first, last; /* seqs */
	size_t bytes;
	struct wire_buf chunk; /* a recipe chunk being read */
	int rc;
};

/* Stages a finished segment. */
static int stage_segment(struct slice *s, struct seg *sg)
{
	char where[64];

	snprintf(where, sizeof(where), "ops/%016" PRIx64 "/%016" PRIx64 ".seg",
		 sg->actor, sg->first);
	return git_stage_bytes(&s->st, where, wire_buf_data(&sg->b),
			       wire_buf_len(&sg->b));
}

/* Stages chunk `name` from the store unless the tip has it. */
static int stage_chunk(struct slice *s, const struct wk_hash *name)
{
	char hex[33], where[64], file[4096];
	struct stat st;
	int rc;

	hex_of(name->b, sizeof(name->b), hex);
	snprintf(where, sizeof(where), "chunks/%.2s/%s", hex, hex + 2);
	if (git_stage_tip_has(&s->st, s->tip, where))
		return 0;
	rc = relay_chunk_path(s->g->data_dir, s->f->name, name->b, file,
			      sizeof(file));
	if (rc)
		return rc;
	if (stat(file, &st) < 0) {
		/* The relay never stores a put before its chunks. */
		wk_warn("git: folder %s: chunk %s named by a put is not in"
			" the store; not committed",
			s->f->name, hex);
		return 0;
	}
	return git_stage_file(&s->st, file, where);
}

/* The chunks of a put: its one chunk, or its recipe and the recipe's. */
static int stage_put(struct slice *s, const struct wire_opent *e)
{
	struct wire_content_ref ref;
	struct wk_op op;
	struct recipe r;
	int rc;

	if (wire_op_decode_ref(e->payload, e->len, e->actor, e->hlc, &op,
			       &ref) ||
	    op.kind != WK_OP_PUT || op.size == 0 ||
	    ref.how == WIRE_CONTENT_NONE)
		return 0;
	if (ref.how == WIRE_CONTENT_WHOLE)
		return stage_chunk(s, &op.hash);
	rc = stage_chunk(s, &ref.recipe);
	if (rc)
		return rc;
	wire_buf_reset(&s->chunk);
	if (relay_chunk_get(s->g->data_dir, s->f->name, ref.recipe.b,
			    &s->chunk))
		return 0; /* warned about above */
	recipe_init(&r);
	rc = recipe_decode(NULL, wire_buf_data(&s->chunk),
			   wire_buf_len(&s->chunk), &r);
	if (rc) {
		wk_warn("git: folder %s: a put's recipe does not decode;"
			" its chunks are not committed",
			s->f->name);
		recipe_release(&r);
		return 0;
	}
	for (size_t i = 0; i < r.n && !rc; i++)
		rc = stage_chunk(s, &r.v[i].name);
	recipe_release(&r);
	return rc;
}

/* relay_op_fn: one op into its actor's segment. */
static int take_op(void *arg, const struct wire_opent *e)
{
	struct slice *s = arg;
	struct seg *sg = NULL;
	int rc;

	if (s->count &&
	    (s->count >= ROUND_OPS || s->bytes + e->len + 12 > ROUND_BYTES))
		return 1;
	for (size_t i = 0; i < s->nsegs; i++)
		if (s->segs[i].actor == e->actor)
			sg = &s->segs[i];
	if (!sg) {
		s->segs = xrealloc(s->segs, (s->nsegs + 1) * sizeof(*s->segs));
		sg = &s->segs[s->nsegs++];
		sg->actor = e->actor;
		sg->first = e->hlc;
		wire_buf_init(&sg->b, 0, GITSEG_MAX);
		gitseg_begin(&sg->b, e->actor);
	}
	rc = gitseg_add(&sg->b, e->hlc, e->payload, e->len);
	if (rc == -EMSGSIZE) {
		/* This actor's segment is full: a new one from this op. */
		rc = stage_segment(s, sg);
		if (rc)
			return rc;
		sg->first = e->hlc;
		gitseg_begin(&sg->b, e->actor);
		rc = gitseg_add(&sg->b, e->hlc, e->payload, e->len);
	}
	if (!rc)
		rc = stage_put(s, e);
	if (rc)
		return rc;
	if (!s->count)
		s->first = e->seq;
	s->last = e->seq;
	s->count++;
	s->bytes += e->len + 12;
	return 0;
}

/* The tip's tree plus info, committed on the tip; the ref moved to it. */
static int make_commit(struct slice *s, struct wire_buf *info, uint64_t id,
		       const char *ref)
{
	struct relay_git *g = s->g;
	static const char *const env[] = {
		"GIT_AUTHOR_NAME=wkfs-relay", "GIT_AUTHOR_EMAIL=relay@wkfs",
		"GIT_COMMITTER_NAME=wkfs-relay",
		"GIT_COMMITTER_EMAIL=relay@wkfs", NULL};
	char commit[48], msg[256];
	/* update-ref's old value "" means: must not exist yet. */
	const char *ur[] = {"update-ref", ref, commit, s->tip, NULL};
	int rc;

	snprintf(msg, sizeof(msg),
		 "wkfs-relay: %u ops of folder %s (seq %" PRIu64 "-%" PRIu64
		 ")\n" TRAILER "%016" PRIx64 " %" PRIu64 "\n",
		 s->count, s->f->name, s->first, s->last, id, s->last);
	rc = git_tree_commit(&g->repo, s->tip, info, msg, env, commit,
			     sizeof(commit), g->err, sizeof(g->err));
	if (!rc)
		rc = run(&g->repo, "update-ref", ur, NULL, g->err,
			 sizeof(g->err));
	if (!rc)
		snprintf(s->tip, sizeof(s->tip), "%s", commit);
	return rc;
}

static void slice_release(struct slice *s)
{
	git_stage_release(&s->st);
	for (size_t i = 0; i < s->nsegs; i++)
		wire_buf_release(&s->segs[i].b);
	free(s->segs);
	s->segs = NULL;
	s->nsegs = 0;
	wire_buf_release(&s->chunk);
}

/* One commit of the ops after `base` (at most a slice of them). */
static int commit_slice(struct relay_git *g, const struct relay_folder *f,
			char *tip, uint64_t id, uint64_t base, uint64_t *last)
{
	struct slice s = {.g = g, .f = f};
	struct wire_buf info;
	char ref[600];
	unsigned rows;
	int rc;

	snprintf(s.tip, sizeof(s.tip), "%s", tip);
	snprintf(ref, sizeof(ref), "refs/heads/%s/%s", g->o->branch, f->name);
	wire_buf_init(&s.chunk, 0, WIRE_CHUNK_MAX);
	wire_buf_init(&info, 0, LIST_CAP);
	rc = git_stage_init(&s.st, &g->repo, "wkfs-relay-stage");
	if (rc) {
		snprintf(g->err, sizeof(g->err), "%s/wkfs-relay-stage: %s",
			 g->repo.dir, strerror(-rc));
		goto out;
	}
	rc = relay_db_ops_range(g->db, f->id, base, ROUND_OPS, take_op, &s,
				&rows);
	if (rc) {
		snprintf(g->err, sizeof(g->err), "reading ops: %s",
			 strerror(-rc));
		goto out;
	}
	if (!s.count)
		goto out;
	for (size_t i = 0; i < s.nsegs && !rc; i++)
		rc = stage_segment(&s, &s.segs[i]);
	if (rc) {
		snprintf(g->err, sizeof(g->err), "staging a segment: %s",
			 strerror(-rc));
		goto out;
	}
	rc = git_stage_names(&s.st, &info, g->err, sizeof(g->err));
	if (!rc)
		rc = make_commit(&s, &info, id, ref);
	if (rc)
		goto out;
	/* The ref moved: a crash now is caught by the trailer. */
	rc = relay_db_meta_set(g->db, f->id, "git_seq", s.last);
	if (rc) {
		snprintf(g->err, sizeof(g->err), "recording the commit: %s",
			 strerror(-rc));
		goto out;
	}
	memcpy(tip, s.tip, sizeof(s.tip));
	*last = s.last;
	g->unpushed = true;
	g->committed = true;
	if (g->o->verbose)
		wk_info("git: folder %s: committed seq %" PRIu64 "-%" PRIu64,
			f->name, s.first, s.last);
out:
	wire_buf_release(&info);
	slice_release(&s);
	return rc;
}

/* The branch's tip (or "") and the seq its trailer names for id (or 0). */
static int read_tip(struct relay_git *g, const char *ref, uint64_t id,
		    char *tip, uint64_t *seq)
{
	char spec[640];
	const char *rp[] = {"rev-parse", "-q", "--verify", spec, NULL};
	const char *cat[] = {"cat-file", "commit", tip, NULL};
	struct wire_buf out;
	const char *p, *end, *hit = NULL;
	unsigned long long tid, tseq;
	int rc;

	tip[0] = '\0';
	*seq = 0;
	snprintf(spec, sizeof(spec), "%s^{commit}", ref);
	wire_buf_init(&out, 0, 1u << 20);
	if (run(&g->repo, "rev-parse", rp, &out, g->err, sizeof(g->err))) {
		wire_buf_release(&out);
		return 0; /* no branch yet */
	}
	rc = git_take_oid(&out, tip, 48);
	wire_buf_reset(&out);
	if (!rc)
		rc = run(&g->repo, "cat-file", cat, &out, g->err,
			 sizeof(g->err));
	if (!rc) {
		p = (const char *)wire_buf_data(&out);
		end = p + wire_buf_len(&out);
		while ((p = memmem(p, end - p, TRAILER, strlen(TRAILER)))) {
			p += strlen(TRAILER);
			hit = p;
		}
		if (hit && sscanf(hit, "%16llx %llu", &tid, &tseq) == 2 &&
		    tid == id)
			*seq = tseq;
	}
	wire_buf_release(&out);
	return rc;
}

/* The folder's id in trailers: drawn once, kept in meta git_id. */
static int folder_git_id(struct relay_git *g, int64_t folder, uint64_t *id)
{
	int rc = relay_db_meta_get(g->db, folder, "git_id", id);

	if (rc != -ENOENT)
		return rc;
	if (getrandom(id, sizeof(*id), 0) != sizeof(*id))
		return -errno;
	return relay_db_meta_set(g->db, folder, "git_id", *id);
}

/* Commits everything of folder f that is not committed yet. */
static int commit_folder(struct relay_git *g, const struct relay_folder *f)
{
	char ref[600], tip[48];
	uint64_t id, base = 0, tseq, last;
	int rc;

	if (!folder_ref_ok(f->name)) {
		for (unsigned i = 0; i < g->nwarned; i++)
			if (g->warned[i] == f->id)
				return 0;
		if (g->nwarned < sizeof(g->warned) / sizeof(g->warned[0]))
			g->warned[g->nwarned++] = f->id;
		wk_warn("git: folder %s is not committed: git takes no"
			" branch name with '..' or ending in '.' or '.lock'",
			f->name);
		return 0;
	}
	rc = folder_git_id(g, f->id, &id);
	if (!rc) {
		rc = relay_db_meta_get(g->db, f->id, "git_seq", &base);
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc) {
		snprintf(g->err, sizeof(g->err), "reading meta: %s",
			 strerror(-rc));
		return rc;
	}
	snprintf(ref, sizeof(ref), "refs/heads/%s/%s", g->o->branch, f->name);
	rc = read_tip(g, ref, id, tip, &tseq);
	if (rc)
		return rc;
	if (tseq > base)
		base = tseq;
	while (base < f->head) {
		last = base;
		rc = commit_slice(g, f, tip, id, base, &last);
		if (rc || last == base)
			break;
		base = last;
	}
	return rc;
}

struct folder_list {
	struct relay_folder *v;
	size_t n;
};

static int list_folder(void *arg, const struct relay_folder *f)
{
	struct folder_list *l = arg;

	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = *f;
	return 0;
}

static void commit_all(struct relay_git *g)
{
	/* Plumbing never packs: loose chunks would pile up forever. */
	static const char *const gc[] = {
		"-c", "gc.autoDetach=false", "gc", "--auto", "--quiet", NULL};
	struct folder_list l = {NULL, 0};
	int rc;

	rc = relay_db_folders_foreach(g->db, list_folder, &l);
	if (rc)
		wk_warn("git: cannot list folders: %s", strerror(-rc));
	for (size_t i = 0; i < l.n; i++) {
		g->err[0] = '\0';
		rc = commit_folder(g, &l.v[i]);
		if (rc)
			wk_warn("git: folder %s not committed: %s", l.v[i].name,
				g->err[0] ? g->err : strerror(-rc));
	}
	free(l.v);
	if (g->committed &&
	    run(&g->repo, "gc", gc, NULL, g->err, sizeof(g->err)))
		wk_warn("git: %s", g->err);
	g->committed = false;
}

/* Pushes every folder branch; a failure is logged and retried later. */
static void push_all(struct relay_git *g)
{
	char glob[600], spec[1300];
	const char *fe[] = {"for-each-ref", "--count=1", "--format=%(refname)",
			    glob, NULL};
	const char *args[] = {"push", "-q", g->o->remote, spec, NULL};
	struct git_call c = {.what = "push",
			     .args = args,
			     .timeout_ms = GIT_NET_TIMEOUT_MS,
			     .err = g->err,
			     .errlen = sizeof(g->err)};
	struct wire_buf out;
	int rc;

	snprintf(glob, sizeof(glob), "refs/heads/%s/", g->o->branch);
	snprintf(spec, sizeof(spec), "refs/heads/%s/*:refs/heads/%s/*",
		 g->o->branch, g->o->branch);
	wire_buf_init(&out, 0, 4096);
	rc = run(&g->repo, "for-each-ref", fe, &out, g->err, sizeof(g->err));
	if (!rc && wire_buf_len(&out) == 0) {
		wire_buf_release(&out);
		return; /* nothing committed yet */
	}
	wire_buf_release(&out);
	if (!rc)
		rc = git_cmd(&g->repo, &c);
	if (rc) {
		wk_warn("git: push to %s failed (retried in %d s): %s",
			g->o->remote, g->o->push_secs, g->err);
		return;
	}
	g->unpushed = false;
	if (g->o->verbose)
		wk_info("git: pushed to %s", g->o->remote);
}

static int64_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void *git_thread(void *arg)
{
	struct relay_git *g = arg;
	int64_t next_commit = mono_s() + g->o->commit_secs;
	int64_t next_push = mono_s() + g->o->push_secs;
	struct timespec until;

	g->unpushed = true; /* whatever an earlier run left unpushed */
	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		int64_t now = mono_s(), next = next_commit;

		if (g->o->remote && next_push < next)
			next = next_push;
		if (now < next) {
			until.tv_sec = next;
			until.tv_nsec = 0;
			pthread_cond_timedwait(&g->wake, &g->lock, &until);
			continue;
		}
		pthread_mutex_unlock(&g->lock);
		if (now >= next_commit) {
			commit_all(g);
			next_commit = mono_s() + g->o->commit_secs;
		}
		if (g->o->remote && now >= next_push) {
			if (g->unpushed)
				push_all(g);
			next_push = mono_s() + g->o->push_secs;
		}
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	commit_all(g);
	if (g->o->remote && g->unpushed)
		push_all(g);
	return NULL;
}

int relay_git_start(const struct relay_git_opts *o, const char *data_dir,
		    struct relay_git **out)
{
	struct relay_git *g = xcalloc(1, sizeof(*g));
	pthread_condattr_t ca;
	char err[512], stage[2200];
	int rc;

	g->o = o;
	g->data_dir = data_dir;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	rc = relay_git_repo_setup(&g->repo, o->dir);
	if (rc) {
		wk_err("--git %s: %s", o->dir, strerror(-rc));
		goto out_free;
	}
	rc = repo_open(&g->repo, g->err, sizeof(g->err));
	if (rc) {
		wk_err("--git: %s", g->err);
		goto out_free;
	}
	snprintf(stage, sizeof(stage), "%s/wkfs-relay-stage", g->repo.dir);
	if (mkdir(stage, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		wk_err("cannot create %s: %s", stage, strerror(-rc));
		goto out_free;
	}
	rc = relay_db_open(data_dir, &g->db, err, sizeof(err));
	if (rc) {
		wk_err("%s", err);
		goto out_free;
	}
	rc = -pthread_create(&g->thread, NULL, git_thread, g);
	if (rc) {
		wk_err("cannot start the git thread: %s", strerror(-rc));
		goto out_free;
	}
	g->started = true;
	*out = g;
	return 0;

out_free:
	relay_git_stop(g);
	return rc;
}

void relay_git_stop(struct relay_git *g)
{
	if (!g)
		return;
	if (g->started) {
		pthread_mutex_lock(&g->lock);
		g->stopping = true;
		pthread_cond_signal(&g->wake);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	relay_db_close(g->db);
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
