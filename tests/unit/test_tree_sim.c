/*
 * test_tree_sim.c - random schedules of replicas editing one tree.
 *
 * Each schedule (seeded xorshift PRNG) runs 3 to 5 replicas that make
 * random local changes through their own view (create, write, rename and
 * move across directories including attempted cycles, delete, mkdir,
 * rmdir, chmod, symlink, same-name creates) and deliver each other's ops in
 * random order, with duplicates, delays and partitions.  Replicas stamp
 * their ops with a device name and now and then change it (or drop it, as
 * an older wkfs would), so conflict names depend on per-op devices.  Every
 * change list is executed on a strict fake directory.  After a full
 * exchange:
 *
 *  - every replica's dump is identical (conflict names included), and
 *    equals that of a fresh tree fed all ops in one batch, and that of its
 *    fake directory;
 *  - every replica records for every op the device that op carried;
 *  - tree_check() passes (no cycle, consistent counts and view);
 *  - every maximal put (no later put on the file was made by a replica that
 *    had seen it, and no remove retired it) still shows its content.
 *
 * WKFS_SEED=n reruns schedule n alone; WKFS_LONG=1 runs 200,000 schedules
 * instead of 10,000.  A failure prints the seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hlc.h"
#include "tree.h"
#include "tree_testlib.h"
#include "xalloc.h"

#define MAXREP 5
#define MAXOPS 128
#define WORDS  (MAXOPS / 64)

struct replica {
	struct tree *t;
	struct fakefs *f;
	struct hlc clock;
	const uint64_t *now; /* the simulation's wall clock */
	uint64_t skew;	     /* this replica's clock runs ahead by skew ms */
	uint64_t seen[WORDS];
	bool cut; /* partitioned: receives nothing */
	char device[WK_DEVICE_MAX + 1]; /* stamped on its ops; renamed */
};

struct sim {
	uint64_t seed, rng, now;
	int nrep;
	struct replica r[MAXREP];
	struct wk_op *ops;
	size_t nops;
	bool superseded[MAXOPS]; /* puts a later put's maker had seen */
	bool retired[MAXOPS];	 /* puts a remove named as its base */
	/* what the schedules covered, printed at the end */
	uint64_t n_ops, n_entries, n_conflicts, n_merged, n_redone;
	uint64_t n_unnamed; /* conflict names by actor id: op had no device */
	char why[512];
};

struct ent {
	char *path;
	struct tree_entry e;
};

struct view {
	struct ent *v;
	size_t n, alloc;
};

static const char *const names[] = {"a", "b", "c.txt", "c.txt", ".e", "f.md"};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static uint64_t rnd(struct sim *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static uint64_t pick(struct sim *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static uint64_t sim_clock(void *arg)
{
	const struct replica *r = arg;

	return *r->now + r->skew;
}

/* Replica ri takes a new device name: "r<ri>", "r<ri>-<k>", or none
 * (as an older wkfs), so that one actor's ops carry several names. */
static void rename_device(struct sim *s, int ri)
{
	struct replica *r = &s->r[ri];
	uint64_t k = pick(s, 4);

	if (k == 0)
		r->device[0] = '\0';
	else
		snprintf(r->device, sizeof(r->device), "r%d-%d", ri, (int)k);
}

/* ---- views ------------------------------------------------------------ */

static int collect(const char *path, const struct tree_entry *e, void *arg)
{
	struct view *v = arg;

	if (v->n == v->alloc) {
		v->alloc = v->alloc ? 2 * v->alloc : 32;
		v->v = xrealloc(v->v, v->alloc * sizeof(*v->v));
	}
	v->v[v->n].path = xstrdup(path);
	v->v[v->n].e = *e;
	v->v[v->n].e.name = NULL;
	v->v[v->n].e.target = NULL;
	v->n++;
	return 0;
}

static void view_release(struct view *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].path);
	free(v->v);
}

static bool taken(const struct view *v, const char *dir, const char *name)
{
	char *p = *dir ? xasprintf("%s/%s", dir, name) : xstrdup(name);
	bool hit = false;

	for (size_t i = 0; i < v->n && !hit; i++)
		hit = strcmp(v->v[i].path, p) == 0;
	free(p);
	return hit;
}

static bool has_children(const struct view *v, const char *dir)
{
	size_t l = strlen(dir);

	for (size_t i = 0; i < v->n; i++)
		if (strncmp(v->v[i].path, dir, l) == 0 &&
		    v->v[i].path[l] == '/')
			return true;
	return false;
}

/* A random directory: "" (root) or a dir entry; its node id in *id. */
static const char *pick_dir(struct sim *s, const struct view *v,
			    struct wk_id *id)
{
	size_t ndirs = 0, k;

	for (size_t i = 0; i < v->n; i++)
		ndirs += v->v[i].e.kind == WK_KIND_DIR;
	k = pick(s, ndirs + 1);
	*id = WK_ID_ROOT;
	for (size_t i = 0; i < v->n; i++) {
		if (v->v[i].e.kind != WK_KIND_DIR || k--)
			continue;
		*id = v->v[i].e.node;
		return v->v[i].path;
	}
	return "";
}

/* ---- making and delivering ops ---------------------------------------- */

static void seen_set(struct replica *r, size_t i)
{
	r->seen[i / 64] |= UINT64_C(1) << (i % 64);
}

static bool seen_has(const struct replica *r, size_t i)
{
	return r->seen[i / 64] >> (i % 64) & 1;
}

static bool deliver(struct sim *s, struct replica *r, const size_t *idx,
		    size_t n)
{
	struct wk_op *batch = xmalloc((n + 1) * sizeof(*batch));
	struct tree_changes ch;
	bool ok = true;

	for (size_t i = 0; i < n; i++) {
		batch[i] = s->ops[idx[i]];
		hlc_update(&r->clock, batch[i].id.hlc);
		seen_set(r, idx[i]);
	}
	if (getenv("WKFS_SIM_TRACE")) {
		char *d = tree_dump(r->t);

		printf("--- replica %d before:\n%s", (int)(r - s->r), d);
		free(d);
		for (size_t i = 0; i < n; i++) {
			char a[WK_ID_STRLEN], b[WK_ID_STRLEN], c[WK_ID_STRLEN];
			const struct wk_op *o = &batch[i];

			printf("  op %s %s node %s parent %s %s%s\n",
			       wk_op_kind_name(o->kind), wk_id_str(o->id, a),
			       wk_id_str(o->node, b),
			       wk_id_str(o->kind == WK_OP_MOVE ? o->new_parent
							       : o->parent,
					 c),
			       o->name, o->new_name);
		}
	}
	tree_changes_init(&ch);
	tree_apply(r->t, batch, n, &ch);
	if (fakefs_apply(r->f, &ch, s->why, sizeof(s->why)))
		ok = false;
	else if (tree_check(r->t, s->why, sizeof(s->why)))
		ok = false;
	tree_changes_release(&ch);
	free(batch);
	return ok;
}

/* Notes what a new op of replica r tells the oracle. */
static void oracle_note(struct sim *s, const struct replica *r,
			const struct wk_op *op)
{
	for (size_t i = 0; i < s->nops; i++) {
		const struct wk_op *p = &s->ops[i];

		if (p->kind != WK_OP_PUT || !wk_id_eq(p->node, op->node))
			continue;
		if (op->kind == WK_OP_PUT && seen_has(r, i))
			s->superseded[i] = true;
		if (op->kind == WK_OP_REMOVE && wk_id_eq(op->base, p->id))
			s->retired[i] = true;
	}
}

static bool emit(struct sim *s, int ri, struct wk_op *op)
{
	struct replica *r = &s->r[ri];
	size_t i = s->nops;

	memcpy(op->device, r->device, sizeof(op->device));
	oracle_note(s, r, op);
	s->ops[s->nops++] = *op;
	return deliver(s, r, &i, 1);
}

static void random_name(struct sim *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s", names[pick(s, NNAMES)]);
}

/* One local change on replica ri; false when a check failed. */
static bool local_op(struct sim *s, int ri)
{
	struct replica *r = &s->r[ri];
	struct view v = {0};
	struct wk_op *op = xcalloc(1, sizeof(*op));
	struct wk_id id, dir;
	const char *dpath;
	char name[16];
	const struct ent *e;
	bool ok = true;
	int what = (int)pick(s, 10);

	tree_foreach(r->t, collect, &v);
	id = (struct wk_id){hlc_now(&r->clock), (uint64_t)ri + 1};
	random_name(s, name, sizeof(name));
	e = v.n ? &v.v[pick(s, v.n)] : NULL;
	if (what <= 2) { /* create, mkdir, symlink */
		dpath = pick_dir(s, &v, &dir);
		if (taken(&v, dpath, name))
			goto out;
		if (what == 0)
			tl_create(op, id, dir, name);
		else if (what == 1)
			tl_mkdir(op, id, dir, name);
		else
			tl_symlink(op, id, dir, name, name);
	} else if (what <= 4) { /* write */
		if (!e || e->e.kind != WK_KIND_FILE)
			goto out;
		if (e->e.conflict_copy) /* deleting a conflict copy */
			tl_remove(op, id, e->e.node, e->e.version);
		else
			tl_put(op, id, e->e.node, e->e.version,
			       (uint8_t)(1 + pick(s, 6)));
	} else if (what <= 6) { /* rename or move, cycles allowed */
		if (!e || e->e.conflict_copy)
			goto out;
		dpath = pick_dir(s, &v, &dir);
		if (taken(&v, dpath, name))
			goto out;
		tl_move(op, id, e->e.node, dir, name);
	} else if (what <= 8) { /* remove, rmdir */
		if (!e ||
		    (e->e.kind == WK_KIND_DIR && has_children(&v, e->path)))
			goto out;
		if (e->e.kind == WK_KIND_DIR) {
			struct wk_id m[8];
			int nm = tree_dir_members(r->t, e->path, m, 8);

			for (int k = 0; ok && k < nm && k < 8; k++) {
				id = (struct wk_id){hlc_now(&r->clock),
						    (uint64_t)ri + 1};
				tl_remove(op, id, m[k], WK_ID_NONE);
				ok = emit(s, ri, op);
			}
			goto out;
		}
		tl_remove(op, id, e->e.node,
			  e->e.kind == WK_KIND_FILE ? e->e.version
						    : WK_ID_NONE);
	} else { /* chmod */
		if (!e || e->e.conflict_copy)
			goto out;
		tl_chmod(op, id, e->e.node, pick(s, 2) ? 0600 : 0755);
	}
	ok = emit(s, ri, op);
out:
	view_release(&v);
	free(op);
	return ok;
}

/* ---- one schedule ----------------------------------------------------- */

static bool hash_shown(const struct view *v, const struct wk_hash *h)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->v[i].e.kind == WK_KIND_FILE &&
		    memcmp(v->v[i].e.hash.b, h->b, sizeof(h->b)) == 0)
			return true;
	return false;
}

static bool final_checks(struct sim *s)
{
	struct tree *fresh = tree_new();
	char *want, *got;
	struct view v = {0};
	bool ok = true;

	tree_apply(fresh, s->ops, s->nops, NULL);
	want = tree_dump(fresh);
	for (int i = 0; ok && i < s->nrep; i++) {
		for (size_t j = 0; ok && j < s->nops; j++) {
			const char *d = tree_op_device(s->r[i].t, s->ops[j].id);

			if (strcmp(d ? d : "", s->ops[j].device) == 0)
				continue;
			snprintf(s->why, sizeof(s->why),
				 "replica %d: op %zu made by \"%s\" is "
				 "recorded as \"%s\"",
				 i, j, s->ops[j].device, d ? d : "(none)");
			ok = false;
		}
	}
	for (int i = 0; ok && i < s->nrep; i++) {
		got = tree_dump(s->r[i].t);
		if (strcmp(got, want) != 0) {
			snprintf(s->why, sizeof(s->why),
				 "replica %d differs:\n%s--- fresh:\n%s", i,
				 got, want);
			ok = false;
		}
		free(got);
		got = fakefs_dump(s->r[i].f);
		if (ok && strcmp(got, want) != 0) {
			snprintf(s->why, sizeof(s->why),
				 "replica %d directory differs:\n%s", i, got);
			ok = false;
		}
		free(got);
	}
	tree_foreach(fresh, collect, &v);
	s->n_ops += s->nops;
	s->n_entries += v.n;
	for (size_t i = 0; i < v.n; i++) {
		s->n_conflicts += strstr(v.v[i].path, ".conflict-") != NULL;
		s->n_unnamed += strstr(v.v[i].path, "-00000000000000") != NULL;
		s->n_merged += v.v[i].e.nmembers > 1;
	}
	for (size_t i = 0; ok && i < s->nops; i++) {
		if (s->ops[i].kind != WK_OP_PUT || s->superseded[i] ||
		    s->retired[i] || hash_shown(&v, &s->ops[i].hash))
			continue;
		snprintf(s->why, sizeof(s->why), "put %zu lost; tree:\n%s", i,
			 want);
		ok = false;
	}
	view_release(&v);
	free(want);
	tree_free(fresh);
	return ok;
}

static bool run_schedule(struct sim *s, uint64_t seed)
{
	int steps;
	bool ok = true;

	memset(s->superseded, 0, sizeof(s->superseded));
	memset(s->retired, 0, sizeof(s->retired));
	s->seed = seed;
	s->rng = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;
	s->now = UINT64_C(1700000000000);
	s->nops = 0;
	s->nrep = 3 + (int)pick(s, 3);
	s->why[0] = '\0';
	for (int i = 0; i < s->nrep; i++) {
		struct replica *r = &s->r[i];

		memset(r->seen, 0, sizeof(r->seen));
		r->t = tree_new();
		r->f = fakefs_new();
		r->cut = false;
		r->now = &s->now;
		r->skew = 1000 * pick(s, 3);
		snprintf(r->device, sizeof(r->device), "r%d", i);
		hlc_init_clock(&r->clock, 0, sim_clock, r);
	}
	steps = 40 + (int)pick(s, 100);
	for (int k = 0; ok && k < steps && s->nops < MAXOPS - 16; k++) {
		int ri = (int)pick(s, (uint64_t)s->nrep);
		struct replica *r = &s->r[ri];
		uint64_t dice = pick(s, 20);

		s->now += pick(s, 3) * 1000 + pick(s, 2);
		if (dice == 0) {
			r->cut = !r->cut;
		} else if (dice == 1 && pick(s, 4) == 0) {
			rename_device(s, ri);
		} else if (dice < 11) {
			ok = local_op(s, ri);
		} else if (!r->cut && s->nops) {
			size_t idx[4], n = 1 + pick(s, 4);

			for (size_t j = 0; j < n; j++)
				idx[j] = pick(s, s->nops);
			ok = deliver(s, r, idx, n);
		}
	}
	/* full exchange: everything missing, shuffled, some twice */
	for (int i = 0; ok && i < s->nrep; i++) {
		struct replica *r = &s->r[i];
		size_t idx[2 * MAXOPS], n = 0;

		for (size_t j = 0; j < s->nops; j++)
			if (!seen_has(r, j) || pick(s, 8) == 0)
				idx[n++] = j;
		for (size_t j = n; j > 1; j--) {
			size_t a = pick(s, j), tmp = idx[j - 1];

			idx[j - 1] = idx[a];
			idx[a] = tmp;
		}
		for (size_t j = 0; ok && j < n;) {
			size_t m = 1 + pick(s, 6);

			if (m > n - j)
				m = n - j;
			ok = deliver(s, r, idx + j, m);
			j += m;
		}
	}
	if (ok)
		ok = final_checks(s);
	for (int i = 0; i < s->nrep; i++) {
		struct tree_stats st;

		tree_get_stats(s->r[i].t, &st);
		s->n_redone += st.redone;
		tree_free(s->r[i].t);
		fakefs_free(s->r[i].f);
	}
	return ok;
}

static void test_random_schedules_converge(void **state)
{
	struct sim *s = xcalloc(1, sizeof(*s));
	const char *env = getenv("WKFS_SEED");
	uint64_t first = 1, count = 10000;

	s->ops = xcalloc(MAXOPS, sizeof(*s->ops));
	if (getenv("WKFS_LONG") && strcmp(getenv("WKFS_LONG"), "1") == 0)
		count = 200000;
	if (env) {
		first = strtoull(env, NULL, 0);
		count = 1;
	}
	for (uint64_t seed = first; seed < first + count; seed++) {
		if (run_schedule(s, seed))
			continue;
		print_error("%s\n", s->why);
		fail_msg("schedule failed: rerun with WKFS_SEED=%llu",
			 (unsigned long long)seed);
	}
	print_message("%llu schedules: %llu ops, %llu final entries, %llu "
		      "conflict names (%llu without a device), %llu merged "
		      "dirs, %llu ops redone\n",
		      (unsigned long long)count, (unsigned long long)s->n_ops,
		      (unsigned long long)s->n_entries,
		      (unsigned long long)s->n_conflicts,
		      (unsigned long long)s->n_unnamed,
		      (unsigned long long)s->n_merged,
		      (unsigned long long)s->n_redone);
	free(s->ops);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_schedules_converge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
