/*
 * merge.c - benchmark of the merge engine: 1,000,000 remote ops merged into
 * a 100,000-node tree.
 *
 *	build/bench-merge [-n ops] [-b batch] [mode...]
 *
 * Modes (each runs in a forked child, so peak RSS is its own):
 *   inorder   ops in (hlc, actor) order, in batches of -b (default 4096)
 *   window    each window of 65,536 ops shuffled, in batches of -b: ops
 *             late by up to a window, as after a partition heals
 *   shuffled  all ops in random order, in batches of 65,536: a replica
 *             catching up on a long backlog (every batch reaches back to
 *             the start of the log, so each undoes and redoes it all)
 * Default: all three.  Prints ops/s for the merge (tree_apply() with its
 * change list; building the initial tree is not counted) and the peak RSS,
 * which includes the benchmark's own compact op array (about 40 bytes an
 * op).  Ops carry device names (one per actor), as recorded ones do; the
 * engine keeps them as runs per actor, printed as "device runs".  The final
 * trees of every mode are the same (checked by hash).
 *
 * Not a unit test and not linked into them: `make bench-merge` runs it.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hlc.h"
#include "tree.h"
#include "xalloc.h"

#define NDIRS  1000
#define NFILES 99000
#define WINDOW 65536
#define T0     UINT64_C(1700000000000)

/* One op, compactly; expanded into a struct wk_op batch by batch. */
struct bop {
	struct wk_id id;
	struct wk_id node;
	struct wk_id base;
	uint32_t parent; /* index into nodes[] */
	uint32_t name;	 /* names are "n<name>" */
	uint8_t kind;
};

struct node {
	struct wk_id id;
	struct wk_id version;
	bool dir, dead;
};

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static struct node *nodes;
static size_t nnodes;

static struct wk_id next_id(uint64_t *clock, uint64_t actor)
{
	*clock += 1;
	return (struct wk_id){*clock, actor};
}

/* The initial tree, then n ops by 4 actors on it, in id order. */
static struct bop *make_ops(size_t n, size_t *ninit)
{
	size_t cap = NDIRS + NFILES + n, k = 0, ndirs = 0;
	struct bop *ops = xcalloc(cap, sizeof(*ops));
	uint64_t clock = hlc_pack(T0, 0);

	nodes = xcalloc(cap + 1, sizeof(*nodes));
	nodes[nnodes++] = (struct node){WK_ID_ROOT, WK_ID_ROOT, true, false};
	for (size_t i = 0; i < NDIRS + NFILES; i++) {
		bool dir = i < NDIRS;
		struct bop *o = &ops[k++];

		o->id = next_id(&clock, 1);
		o->node = o->id;
		o->kind = dir ? WK_OP_MKDIR : WK_OP_CREATE;
		/* 100 top dirs, 900 below them; files spread over all */
		o->parent = dir ? (i < 100 ? 0 : 1 + (uint32_t)(i % 100))
				: 1 + (uint32_t)(rnd() % NDIRS);
		o->name = (uint32_t)i;
		nodes[nnodes++] = (struct node){o->id, o->id, dir, false};
		ndirs += dir;
	}
	*ninit = k;
	for (size_t i = 0; i < n; i++) {
		struct bop *o = &ops[k++];
		uint64_t actor = 1 + rnd() % 4, dice = rnd() % 100;
		struct node *nd =
			&nodes[1 + NDIRS + rnd() % (nnodes - 1 - NDIRS)];

		o->id = next_id(&clock, actor);
		o->node = nd->id;
		if (dice < 10 || nd->dead) { /* new file */
			o->kind = WK_OP_CREATE;
			o->node = o->id;
			o->parent = 1 + (uint32_t)(rnd() % NDIRS);
			o->name = (uint32_t)(NDIRS + NFILES + i);
			nodes[nnodes++] =
				(struct node){o->id, o->id, false, false};
		} else if (dice < 65) { /* write */
			o->kind = WK_OP_PUT;
			o->base = nd->version;
			nd->version = o->id;
		} else if (dice < 80) { /* rename, often to another dir */
			o->kind = WK_OP_MOVE;
			o->parent = 1 + (uint32_t)(rnd() % NDIRS);
			o->name = (uint32_t)(NDIRS + NFILES + i);
		} else if (dice < 95) { /* chmod */
			o->kind = WK_OP_SETATTR;
		} else { /* delete */
			o->kind = WK_OP_REMOVE;
			o->base = nd->version;
			nd->dead = true;
		}
	}
	return ops;
}

static void expand(const struct bop *b, struct wk_op *op)
{
	static const char *const device[] = {"laptop", "desk", "tablet",
					     "phone", "server"};

	/* Every op carries its maker's device name, as the recorder makes
	 * them (the memset in apply_range stops before it). */
	snprintf(op->device, sizeof(op->device), "%s", device[b->id.actor % 5]);
	op->id = b->id;
	op->kind = b->kind;
	op->node = b->node;
	op->base = b->base;
	switch (b->kind) {
	case WK_OP_MKDIR:
	case WK_OP_CREATE:
		op->parent = nodes[b->parent].id;
		snprintf(op->name, sizeof(op->name), "n%" PRIu32, b->name);
		op->mode = b->kind == WK_OP_MKDIR ? 0755 : 0644;
		break;
	case WK_OP_MOVE:
		op->new_parent = nodes[b->parent].id;
		snprintf(op->new_name, sizeof(op->new_name), "n%" PRIu32,
			 b->name);
		break;
	case WK_OP_PUT:
		memcpy(op->hash.b, &b->id, sizeof(op->hash.b));
		op->size = b->id.hlc & 0xffff;
		break;
	case WK_OP_SETATTR:
		op->attrs = WK_ATTR_MODE;
		op->mode = b->id.hlc & 1 ? 0600 : 0644;
		break;
	}
}

static size_t apply_range(struct tree *t, const struct bop *ops, size_t n,
			  size_t batch)
{
	struct wk_op *buf = xcalloc(batch, sizeof(*buf));
	size_t changes = 0;

	for (size_t i = 0; i < n; i += batch) {
		size_t m = n - i < batch ? n - i : batch;
		struct tree_changes ch;

		for (size_t j = 0; j < m; j++) {
			memset(&buf[j], 0, offsetof(struct wk_op, target) + 1);
			expand(&ops[i + j], &buf[j]);
		}
		tree_changes_init(&ch);
		tree_apply(t, buf, m, &ch);
		changes += ch.n;
		tree_changes_release(&ch);
	}
	free(buf);
	return changes;
}

static void shuffle(struct bop *v, size_t n, size_t window)
{
	for (size_t w = 0; w < n; w += window) {
		size_t m = n - w < window ? n - w : window;

		for (size_t i = m; i > 1; i--) {
			size_t j = rnd() % i;
			struct bop tmp = v[w + i - 1];

			v[w + i - 1] = v[w + j];
			v[w + j] = tmp;
		}
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t dump_hash(const struct tree *t)
{
	char *d = tree_dump(t);
	uint64_t h = 1469598103934665603ull;

	for (const char *p = d; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	free(d);
	return h;
}

static void run(const char *mode, size_t n, size_t batch)
{
	struct tree *t = tree_new();
	struct tree_stats st;
	struct rusage ru;
	size_t ninit, changes;
	struct bop *ops = make_ops(n, &ninit);
	double t0, t1;

	apply_range(t, ops, ninit, batch);
	if (strcmp(mode, "window") == 0)
		shuffle(ops + ninit, n, WINDOW);
	else if (strcmp(mode, "shuffled") == 0) {
		shuffle(ops + ninit, n, n);
		batch = 65536; /* struct wk_op is 4.6 KiB: 300 MiB a batch */
	}
	t0 = now_s();
	changes = apply_range(t, ops + ninit, n, batch);
	t1 = now_s();
	getrusage(RUSAGE_SELF, &ru);
	tree_get_stats(t, &st);
	printf("%-8s %8zu ops  batch %7zu  %6.2f s  %9.0f ops/s  "
	       "redone %9" PRIu64 "  changes %8zu  peak RSS %6ld MiB  "
	       "device runs %" PRIu64 "  tree %016" PRIx64 "\n",
	       mode, n, batch, t1 - t0, (double)n / (t1 - t0), st.redone,
	       changes, ru.ru_maxrss / 1024, st.device_runs, dump_hash(t));
	fflush(stdout);
	tree_free(t);
	free(ops);
	free(nodes);
}

int main(int argc, char **argv)
{
	static const char *const all[] = {"inorder", "window", "shuffled"};
	size_t n = 1000000, batch = 4096;
	int opt, nmodes;
	const char *const *modes;

	while ((opt = getopt(argc, argv, "n:b:")) != -1) {
		if (opt == 'n')
			n = strtoul(optarg, NULL, 0);
		else if (opt == 'b')
			batch = strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	modes = optind < argc ? (const char *const *)argv + optind : all;
	nmodes = optind < argc ? argc - optind : 3;
	printf("merge: %d dirs + %d files, then %zu ops (55%% put, 10%% "
	       "create, 15%% move, 15%% chmod, 5%% remove) from 4 actors\n",
	       NDIRS, NFILES, n);
	fflush(stdout);
	for (int i = 0; i < nmodes; i++) {
		pid_t pid;
		int status;

		pid = fork();
		if (pid == 0) {
			rng = 88172645463325252ull;
			run(modes[i], n, batch);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) < 0 ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			return 1;
	}
	return 0;
}
