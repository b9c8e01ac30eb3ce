/*
 * mat_journal.c - the materializer's journal: a batch of changes as bytes.
 *
 * Layout (integers are unsigned LEB128 varints unless said otherwise):
 *
 *	"WKFSJNL2"			8 bytes of magic
 *	seq				the batch number, as in the file name
 *	tag				the caller's tag (materialize.h), 0:
 *none count				changes that follow (<= MAT_MAX_CHANGES)
 *	count times:
 *	    kind, type, flags		1 byte each; flags: 1 conflict copy,
 *					2 new_path follows, 4 target follows
 *	    mode, zigzag(mtime_ns), size
 *	    hash			16 bytes
 *	    node.hlc, node.actor, version.hlc, version.actor
 *	    path			length (0..MAT_STR_MAX), bytes
 *	    [new_path]			same
 *	    [target]			same
 *	checksum			XXH3-64 of all the above, 8 bytes BE
 *	progress			count bytes: 0 to do, 1 done
 *
 * The journal is ours, but it is read back after a crash from a directory a
 * user can reach, so decoding trusts nothing: every length is bounded by the
 * bytes left, every field by its range, strings may not hold a NUL, and the
 * done steps must form a prefix.  Only the progress bytes are outside the
 * checksum (they change while the batch runs; one byte each, so a write of
 * one cannot tear).
 *
 * "WKFSJNL1" journals (before tags) have no tag field; they are still read,
 * with tag 0, so a crash under an older build is finished by a newer one.
 */
#include "mat_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "bytebuf.h"
#include "xalloc.h"

static const char magic[8] = "WKFSJNL2";
static const char magic_v1[8] = "WKFSJNL1";

#define FL_CONFLICT 1
#define FL_NEW_PATH 2
#define FL_TARGET   4

static void put_str(struct bbuf *b, const char *s)
{
	size_t l = strlen(s);

	bbuf_put_varint(b, l);
	bbuf_put(b, s, l);
}

static void put_change(struct bbuf *b, const struct tree_change *c)
{
	uint64_t mt =
		(uint64_t)c->mtime_ns << 1 ^ (uint64_t)(c->mtime_ns >> 63);
	uint8_t flags = (c->conflict_copy ? FL_CONFLICT : 0) |
			(c->new_path ? FL_NEW_PATH : 0) |
			(c->target ? FL_TARGET : 0);

	bbuf_put_u8(b, (uint8_t)c->kind);
	bbuf_put_u8(b, (uint8_t)c->type);
	bbuf_put_u8(b, flags);
	bbuf_put_varint(b, c->mode);
	bbuf_put_varint(b, mt);
	bbuf_put_varint(b, c->size);
	bbuf_put(b, c->hash.b, sizeof(c->hash.b));
	bbuf_put_varint(b, c->node.hlc);
	bbuf_put_varint(b, c->node.actor);
	bbuf_put_varint(b, c->version.hlc);
	bbuf_put_varint(b, c->version.actor);
	put_str(b, c->path);
	if (c->new_path)
		put_str(b, c->new_path);
	if (c->target)
		put_str(b, c->target);
}

static bool str_ok(const char *s)
{
	return s && strnlen(s, MAT_STR_MAX + 1) <= MAT_STR_MAX;
}

int mat_journal_encode(uint64_t seq, uint64_t tag,
		       const struct tree_changes *ch, uint8_t **out,
		       size_t *len, size_t *progress_off)
{
	struct bbuf b;
	uint8_t sum[8];
	uint64_t h;
	int rc;

	if (ch->n > MAT_MAX_CHANGES)
		return -E2BIG;
	for (size_t i = 0; i < ch->n; i++) {
		const struct tree_change *c = &ch->v[i];

		if (!str_ok(c->path) || (c->new_path && !str_ok(c->new_path)) ||
		    (c->target && !str_ok(c->target)))
			return -EINVAL;
	}
	bbuf_init(&b, MAT_JOURNAL_MAX);
	bbuf_put(&b, magic, sizeof(magic));
	bbuf_put_varint(&b, seq);
	bbuf_put_varint(&b, tag);
	bbuf_put_varint(&b, ch->n);
	for (size_t i = 0; i < ch->n; i++)
		put_change(&b, &ch->v[i]);
	rc = bbuf_error(&b);
	if (rc < 0)
		goto out_release;
	h = XXH3_64bits(b.p, b.len);
	for (int i = 0; i < 8; i++)
		sum[i] = (uint8_t)(h >> (56 - 8 * i));
	bbuf_put(&b, sum, sizeof(sum));
	*progress_off = b.len;
	for (size_t i = 0; i < ch->n; i++)
		bbuf_put_u8(&b, 0);
	rc = bbuf_error(&b);
	if (rc < 0)
		goto out_release;
	*out = b.p;
	*len = b.len;
	return 0;

out_release:
	bbuf_release(&b);
	return rc;
}

/* ---- decoding: a cursor over untrusted bytes ---- */

/* A string of up to MAT_STR_MAX bytes without NUL, as a fresh copy. */
static bool rd_str(struct bread *in, char **out)
{
	uint64_t l;

	if (!bread_varint(in, &l) || l > MAT_STR_MAX ||
	    l > (uint64_t)(in->end - in->p) || memchr(in->p, 0, l))
		return false;
	*out = xstrndup((const char *)in->p, l);
	in->p += l;
	return true;
}

static bool rd_change(struct bread *in, struct tree_change *c)
{
	uint8_t kind, type, flags;
	uint64_t mode, mt, v[4];

	if (!bread_u8(in, &kind) || !bread_u8(in, &type) ||
	    !bread_u8(in, &flags))
		return false;
	if (kind < TREE_CH_REMOVE || kind > TREE_CH_SETATTR ||
	    type < WK_KIND_FILE || type > WK_KIND_SYMLINK || flags > 7)
		return false;
	c->kind = kind;
	c->type = type;
	c->conflict_copy = flags & FL_CONFLICT;
	if (!bread_varint(in, &mode) || mode > 07777 ||
	    !bread_varint(in, &mt) || !bread_varint(in, &c->size) ||
	    !bread_bytes(in, c->hash.b, sizeof(c->hash.b)))
		return false;
	c->mode = (uint32_t)mode;
	c->mtime_ns = (int64_t)(mt >> 1 ^ (0 - (mt & 1)));
	for (int i = 0; i < 4; i++)
		if (!bread_varint(in, &v[i]))
			return false;
	c->node = (struct wk_id){v[0], v[1]};
	c->version = (struct wk_id){v[2], v[3]};
	if (!rd_str(in, &c->path))
		return false;
	if ((flags & FL_NEW_PATH) && !rd_str(in, &c->new_path))
		return false;
	if ((flags & FL_TARGET) && !rd_str(in, &c->target))
		return false;
	/* What each kind needs, and nothing it must not have. */
	if ((kind == TREE_CH_RENAME) != !!c->new_path)
		return false;
	if ((kind == TREE_CH_SYMLINK) != !!c->target)
		return false;
	return true;
}

static void push(struct tree_changes *ch, struct tree_change *c)
{
	if (ch->n == ch->alloc) {
		ch->alloc = ch->alloc ? 2 * ch->alloc : 16;
		ch->v = xrealloc(ch->v, ch->alloc * sizeof(*ch->v));
	}
	ch->v[ch->n++] = *c;
}

int mat_journal_decode(uint64_t seq, const uint8_t *p, size_t len,
		       struct tree_changes *ch, uint64_t *tag, size_t *start,
		       size_t *progress_off)
{
	struct bread in;

	bread_init(&in, p, len);
	uint64_t fseq, count, h = 0;
	uint8_t m[8];
	const uint8_t *body_end;
	bool v1;
	size_t i;

	*tag = 0;
	if (!bread_bytes(&in, m, sizeof(m)))
		return -EBADMSG;
	v1 = memcmp(m, magic_v1, sizeof(m)) == 0;
	if ((!v1 && memcmp(m, magic, sizeof(m))) || !bread_varint(&in, &fseq) ||
	    fseq != seq || (!v1 && !bread_varint(&in, tag)) ||
	    !bread_varint(&in, &count) || count > MAT_MAX_CHANGES)
		return -EBADMSG;
	/* Checksum first: it sits count progress bytes before the end. */
	if (len < count + 8)
		return -EBADMSG;
	body_end = p + len - count - 8;
	if (body_end < in.p)
		return -EBADMSG;
	for (i = 0; i < 8; i++)
		h = h << 8 | body_end[i];
	if (XXH3_64bits(p, (size_t)(body_end - p)) != h)
		return -EBADMSG;
	in.end = body_end;
	for (i = 0; i < count; i++) {
		struct tree_change c;

		memset(&c, 0, sizeof(c));
		c.link = WK_ID_NONE; /* not journaled: a rerun copies */
		if (!rd_change(&in, &c)) {
			free(c.path);
			free(c.new_path);
			free(c.target);
			goto out_bad;
		}
		push(ch, &c);
	}
	if (in.p != in.end)
		goto out_bad;
	*progress_off = (size_t)(body_end + 8 - p);
	for (i = 0; i < count && p[*progress_off + i] == 1; i++)
		;
	*start = i;
	for (; i < count; i++)
		if (p[*progress_off + i] != 0)
			goto out_bad;
	return 0;

out_bad:
	tree_changes_release(ch);
	tree_changes_init(ch);
	return -EBADMSG;
}
