/*
 * syncd_batch.c - the contents of many small files moved together.
 *
 * content_ship() and content_fetch() handle one put at a time: a HAVE and
 * a CHUNK_PUT, or a CHUNK_GET, each a round trip through the relay, so
 * ten thousand small files cost ten thousand round trips and as many
 * waits for the relay's disk.  Before a PUSH batch is encoded and before
 * an OPS batch is fetched, the functions here do the round trips for all
 * the batch's small puts at once:
 *
 *   shipping  every chunk of every small put in the batch is asked about
 *             in one HAVE and what is missing uploaded in one stream; the
 *             names the relay then holds are remembered for this batch
 *             (content_batch_has), so content_ship() asks nothing more;
 *   fetching  every whole-file put in the batch whose content is neither
 *             here nor findable locally is asked for in one CHUNK_GET and
 *             stored straight into the object store, so content_fetch()
 *             finds it there.
 *
 * Only a shortcut: whatever is skipped or fails here (a file changed, a
 * chunk the relay lacks) is left to the per-put path, which handles and
 * reports it as before.  Big files are left to it too: their chunks
 * already stream within one put.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunk.h"
#include "content.h"
#include "content_int.h"
#include "syncd.h"
#include "wlog.h"

/* Puts up to this size go through the batch. */
#define BATCH_FILE_MAX (1u << 20)
/* Bytes of CHUNK_PUT in flight before waiting for acknowledgements. */
#define BATCH_WINDOW (8u << 20)

/* ---- a set of chunk names ---- */

struct name_set {
	struct wk_hash *v;
	bool *used;
	size_t slots; /* a power of two */
	size_t n;
};

static void set_init(struct name_set *ns, size_t want)
{
	ns->slots = 64;
	while (ns->slots < 2 * want)
		ns->slots *= 2;
	ns->v = calloc(ns->slots, sizeof(*ns->v));
	ns->used = calloc(ns->slots, sizeof(*ns->used));
	ns->n = 0;
	if (!ns->v || !ns->used) {
		free(ns->v);
		free(ns->used);
		ns->v = NULL;
		ns->used = NULL;
		ns->slots = 0;
	}
}

static void set_release(struct name_set *ns)
{
	free(ns->v);
	free(ns->used);
	memset(ns, 0, sizeof(*ns));
}

/* The slot of h, or the free slot where it would go. */
static size_t set_slot(const struct name_set *ns, const struct wk_hash *h)
{
	uint64_t x;
	size_t k;

	/* Names are hashes already; a remote cannot add names here. */
	memcpy(&x, h->b, sizeof(x));
	for (k = x & (ns->slots - 1); ns->used[k];
	     k = (k + 1) & (ns->slots - 1))
		if (memcmp(&ns->v[k], h, sizeof(*h)) == 0)
			break;
	return k;
}

static bool set_has(const struct name_set *ns, const struct wk_hash *h)
{
	return ns->slots && ns->used[set_slot(ns, h)];
}

/* Adds h: true when it was not there.  Never fills past half. */
static bool set_add(struct name_set *ns, const struct wk_hash *h)
{
	size_t k;

	if (!ns->slots || 2 * (ns->n + 1) > ns->slots)
		return false;
	k = set_slot(ns, h);
	if (ns->used[k])
		return false;
	ns->used[k] = true;
	ns->v[k] = *h;
	ns->n++;
	return true;
}

/* ---- shipping ---- */

/* A chunk to ask about: entry e of cut c. */
struct want {
	struct content_cut *c;
	size_t e;
};

struct ship {
	struct content_cut *cuts;
	size_t ncuts;
	struct want *want;
	size_t nwant;
	uint8_t *buf; /* CHUNK_MAX */
	uint32_t pending;
	size_t inflight;
};

bool content_batch_has(struct syncd *s, const struct wk_hash *name)
{
	return s->shipped_names && set_has(s->shipped_names, name);
}

void content_batch_reset(struct syncd *s)
{
	if (!s->shipped_names)
		return;
	set_release(s->shipped_names);
	free(s->shipped_names);
	s->shipped_names = NULL;
}

static int wait_acks(struct syncd *s, struct ship *sh, uint32_t upto)
{
	struct wire_msg m;
	int rc;

	while (sh->pending > upto) {
		rc = content_recv(s, &m);
		if (rc)
			return rc;
		if (m.type == WIRE_CHUNK_ACK)
			sh->pending--;
	}
	return 0;
}

static const struct wk_hash *want_name(const struct want *w)
{
	return &w->c->r.v[w->e].name;
}

/* Uploads want[i] (*sent); a chunk its file no longer holds is skipped. */
static int put_one(struct syncd *s, struct ship *sh, size_t i, bool *sent)
{
	struct wire_msg m = {.type = WIRE_CHUNK_PUT};
	const struct want *w = &sh->want[i];
	ssize_t n = content_cut_read(w->c, w->e, sh->buf);
	int rc;

	*sent = false;
	if (n < 0)
		return 0; /* content_ship() finds out and says so */
	memcpy(m.chunk.name, want_name(w)->b, WIRE_NAME_LEN);
	m.chunk.data = sh->buf;
	m.chunk.len = (uint32_t)n;
	rc = wsc_send_msg(s->data, &m);
	if (rc)
		return syncd_fail(s, s->data, rc, "chunk upload");
	*sent = true;
	sh->pending++;
	sh->inflight += (size_t)n;
	if (sh->inflight < BATCH_WINDOW)
		return 0;
	sh->inflight = 0;
	return wait_acks(s, sh, 0);
}

/* A group of sh->want, for content_have(). */
struct group {
	struct syncd *s;
	struct ship *sh;
	size_t g;
	uint8_t *state; /* per name: LACKED, and SENT once uploaded */
};

#define LACKED 1
#define SENT   2

static const struct wk_hash *group_name(void *arg, size_t j)
{
	struct group *gr = arg;

	return want_name(&gr->sh->want[gr->g + j]);
}

static int group_lack(void *arg, size_t j)
{
	struct group *gr = arg;
	bool sent;
	int rc = put_one(gr->s, gr->sh, gr->g + j, &sent);

	gr->state[j] = LACKED | (sent ? SENT : 0);
	return rc;
}

/* HAVE for want[g .. g + k), then uploads what the relay lacks; every
 * name the relay holds afterwards goes into s->shipped_names. */
static int ship_group(struct syncd *s, struct ship *sh, size_t g, size_t k)
{
	struct group gr = {s, sh, g, calloc(k + 1, 1)};
	int rc;

	if (!gr.state)
		return -ENOMEM;
	rc = content_have(s, k, group_name, group_lack, &gr, &sh->pending);
	if (!rc)
		rc = wait_acks(s, sh, 0);
	/* Every CHUNK_ACK is in: what was sent is stored; a chunk that
	 * could not be read is not counted as there. */
	for (size_t j = 0; j < k && !rc; j++)
		if (gr.state[j] != LACKED)
			set_add(s->shipped_names, want_name(&sh->want[g + j]));
	free(gr.state);
	return rc;
}

static bool ship_candidate(const struct db_oprow *r)
{
	return r->op.kind == WK_OP_PUT && r->op.size > 0 &&
	       r->op.size <= BATCH_FILE_MAX;
}

int content_ship_batch(struct syncd *s, const struct db_oprow *rows, size_t n)
{
	struct ship sh = {0};
	size_t nputs = 0, nchunks = 0;
	int rc = 0;

	content_batch_reset(s);
	for (size_t i = 0; i < n; i++)
		nputs += ship_candidate(&rows[i]);
	if (nputs < 2)
		return 0; /* nothing to gain */
	sh.cuts = calloc(nputs, sizeof(*sh.cuts));
	sh.buf = malloc(CHUNK_MAX);
	s->shipped_names = calloc(1, sizeof(*s->shipped_names));
	if (!sh.cuts || !sh.buf || !s->shipped_names) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct content_cut *c = &sh.cuts[sh.ncuts];

		if (!ship_candidate(&rows[i]))
			continue;
		/* A put that cannot be cut is content_ship()'s to report. */
		if (content_cut_open(s, &rows[i].op, c) != 0)
			continue;
		sh.ncuts++;
		nchunks += c->r.n;
	}
	set_init(s->shipped_names, nchunks);
	sh.want = malloc((nchunks + 1) * sizeof(*sh.want));
	if (!s->shipped_names->slots || !sh.want) {
		rc = -ENOMEM;
		goto out;
	}
	{
		struct name_set asked;

		set_init(&asked, nchunks);
		for (size_t i = 0; i < sh.ncuts && asked.slots; i++)
			for (size_t e = 0; e < sh.cuts[i].r.n; e++)
				if (set_add(&asked, &sh.cuts[i].r.v[e].name))
					sh.want[sh.nwant++] =
						(struct want){&sh.cuts[i], e};
		set_release(&asked);
	}
	for (size_t g = 0; g < sh.nwant && !rc; g += WIRE_NAMES_MAX)
		rc = ship_group(s, &sh, g,
				sh.nwant - g < WIRE_NAMES_MAX ? sh.nwant - g
							      : WIRE_NAMES_MAX);
	if (!rc)
		wk_debug("batch of %zu puts: %zu chunks asked about, %zu on "
			 "the relay now",
			 sh.ncuts, sh.nwant, s->shipped_names->n);
out:
	for (size_t i = 0; i < sh.ncuts; i++)
		content_cut_release(&sh.cuts[i]);
	free(sh.cuts);
	free(sh.want);
	free(sh.buf);
	if (rc)
		content_batch_reset(s);
	return rc;
}

/* ---- fetching ---- */

/* A whole-file put worth asking the relay for now. */
static bool fetch_candidate(struct syncd *s, const struct wk_op *op,
			    const struct wire_content_ref *ref,
			    struct local *lc)
{
	struct recipe_entry e = {.name = op->hash, .len = (uint32_t)op->size};
	bool here;

	if (op->kind != WK_OP_PUT || ref->how != WIRE_CONTENT_WHOLE ||
	    !content_wanted(s, op, ref))
		return false;
	/* Found locally: content_fetch() copies it, no transfer. */
	local_init(lc, s, op);
	here = local_has(lc, &e);
	local_release(lc);
	return !here;
}

/* Stores a received whole-file chunk as an object: 0, or -EBADMSG. */
static int store_whole(struct syncd *s, const struct wire_msg *m)
{
	struct wk_hash h, got;
	int fd, rc;

	content_hash_buf(m->chunk.data, m->chunk.len, &h);
	if (memcmp(h.b, m->chunk.name, WIRE_NAME_LEN) != 0)
		return -EBADMSG;
	fd = content_open_tmp(s);
	if (fd < 0)
		return fd;
	rc = write(fd, m->chunk.data, m->chunk.len) == (ssize_t)m->chunk.len
		     ? 0
		     : -EIO;
	if (!rc)
		rc = mat_object_put(s->mat, fd, &got);
	close(fd);
	return rc;
}

int content_fetch_batch(struct syncd *s, const struct wire_msg *ops)
{
	struct wire_msg m = {.type = WIRE_CHUNK_GET};
	struct wire_content_ref ref;
	struct wire_iter it;
	struct wire_opent e;
	struct name_set asked;
	struct local lc;
	struct wk_op *op = malloc(sizeof(*op));
	uint8_t *names = NULL;
	uint32_t k = 0, got = 0;
	int rc = 0;

	set_init(&asked, WIRE_NAMES_MAX);
	names = malloc((size_t)WIRE_NAMES_MAX * WIRE_NAME_LEN);
	if (!op || !names || !asked.slots) {
		rc = -ENOMEM;
		goto out;
	}
	wire_iter_init(&it, ops);
	while (k < WIRE_NAMES_MAX && wire_iter_next(&it, &e)) {
		if (e.actor == s->actor ||
		    wire_op_decode_ref(e.payload, e.len, e.actor, e.hlc, op,
				       &ref) ||
		    !fetch_candidate(s, op, &ref, &lc) ||
		    !set_add(&asked, &op->hash))
			continue;
		memcpy(names + (size_t)k++ * WIRE_NAME_LEN, op->hash.b,
		       WIRE_NAME_LEN);
	}
	if (k < 2)
		goto out; /* nothing to gain */
	m.names.count = k;
	m.names.names = names;
	rc = wsc_send_msg(s->data, &m);
	if (rc) {
		rc = syncd_fail(s, s->data, rc, "chunk download");
		goto out;
	}
	/* One CHUNK per name the relay has, then one NOT_FOUND listing the
	 * rest (if any): those are content_fetch()'s to report. */
	while (got < k && !rc) {
		rc = content_recv(s, &m);
		if (rc)
			break;
		if (m.type == WIRE_NOT_FOUND) {
			got += m.names.count;
		} else if (m.type == WIRE_CHUNK) {
			got++;
			/* A bad chunk is fetched again, and refused, by
			 * content_fetch(). */
			rc = store_whole(s, &m);
			if (rc == -EBADMSG)
				rc = 0;
		}
	}
out:
	set_release(&asked);
	free(names);
	free(op);
	return rc;
}
