/*
 * wire.c - the replication protocol's codec (wire.h is the contract,
 * docs/protocol.md the spec).
 *
 * Decoding goes through struct rd, a cursor over the frame whose every read
 * checks the bytes left first and sticks at the first error, so a field
 * after a bad one reads as zero and the caller looks at the error once.
 * Encoders append to a capped wire_buf and cut it back on failure.
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- capped buffer ---- */

void wire_buf_init(struct wire_buf *b, size_t headroom, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->head = headroom;
	b->cap = cap;
}

void wire_buf_release(struct wire_buf *b)
{
	free(b->mem);
	b->mem = NULL;
	b->len = 0;
	b->alloc = 0;
}

void wire_buf_reset(struct wire_buf *b)
{
	b->len = 0;
}

void wire_buf_truncate(struct wire_buf *b, size_t len)
{
	if (len < b->len)
		b->len = len;
}

int wire_buf_reserve(struct wire_buf *b, size_t n)
{
	size_t want, alloc;
	uint8_t *mem;

	if (n > b->cap || b->len > b->cap - n)
		return -EMSGSIZE;
	want = b->len + n;
	if (want <= b->alloc && b->mem)
		return 0;
	alloc = b->alloc ? b->alloc : 256;
	while (alloc < want)
		alloc = alloc > b->cap / 2 ? b->cap : alloc * 2;
	if (alloc < want)
		alloc = want;
	mem = realloc(b->mem, b->head + alloc);
	if (!mem)
		return -ENOMEM;
	b->mem = mem;
	b->alloc = alloc;
	return 0;
}

int wire_buf_append(struct wire_buf *b, const void *p, size_t n)
{
	int rc = wire_buf_reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->mem + b->head + b->len, p, n);
	b->len += n;
	return 0;
}

/* ---- little-endian helpers ---- */

static void le_store(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_load(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int put_le(struct wire_buf *b, uint64_t v, size_t n)
{
	uint8_t tmp[8];

	le_store(tmp, v, n);
	return wire_buf_append(b, tmp, n);
}

static int put_bytes(struct wire_buf *b, const void *p, size_t n)
{
	int rc = put_le(b, n, 4);

	return rc ? rc : wire_buf_append(b, p, n);
}

/* ---- reader ---- */

struct rd {
	const uint8_t *p;
	size_t left;
	int err; /* 0, -EBADMSG or -EMSGSIZE: the first failure */
};

static void rd_fail(struct rd *r, int err)
{
	if (!r->err)
		r->err = err;
	r->left = 0;
}

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->err || r->left < n) {
		rd_fail(r, -EBADMSG);
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static uint64_t rd_le(struct rd *r, size_t n)
{
	const uint8_t *p = rd_take(r, n);

	return p ? le_load(p, n) : 0;
}

/* A u32 length then that many bytes, at most max. */
static const uint8_t *rd_bytes(struct rd *r, uint32_t max, uint32_t *len)
{
	uint32_t n = (uint32_t)rd_le(r, 4);

	*len = 0;
	if (r->err)
		return NULL;
	if (n > r->left) {
		rd_fail(r, -EBADMSG);
		return NULL;
	}
	if (n > max) {
		rd_fail(r, -EMSGSIZE);
		return NULL;
	}
	*len = n;
	return rd_take(r, n);
}

/* ---- names of things ---- */

const char *wire_type_name(int type)
{
	switch (type) {
	case WIRE_HELLO:
		return "HELLO";
	case WIRE_PUSH:
		return "PUSH";
	case WIRE_CURSOR:
		return "CURSOR";
	case WIRE_HAVE:
		return "HAVE";
	case WIRE_CHUNK_PUT:
		return "CHUNK_PUT";
	case WIRE_CHUNK_GET:
		return "CHUNK_GET";
	case WIRE_PING:
		return "PING";
	case WIRE_WELCOME:
		return "WELCOME";
	case WIRE_OPS:
		return "OPS";
	case WIRE_CAUGHT_UP:
		return "CAUGHT_UP";
	case WIRE_ACK:
		return "ACK";
	case WIRE_MISSING:
		return "MISSING";
	case WIRE_CHUNK_ACK:
		return "CHUNK_ACK";
	case WIRE_CHUNK:
		return "CHUNK";
	case WIRE_NOT_FOUND:
		return "NOT_FOUND";
	case WIRE_PONG:
		return "PONG";
	case WIRE_ERROR:
		return "ERROR";
	}
	return NULL;
}

bool wire_type_from_client(int type)
{
	return (type >= WIRE_HELLO && type <= WIRE_PING) || type == WIRE_ERROR;
}

const char *wire_err_name(int code)
{
	static const char *const names[] = {
		[WIRE_ERR_MALFORMED] = "malformed",
		[WIRE_ERR_VERSION] = "version",
		[WIRE_ERR_AUTH] = "auth",
		[WIRE_ERR_TOO_BIG] = "too_big",
		[WIRE_ERR_STATE] = "state",
		[WIRE_ERR_HASH] = "hash",
		[WIRE_ERR_CURSOR] = "cursor",
		[WIRE_ERR_OVERLOAD] = "overload",
		[WIRE_ERR_STORAGE] = "storage",
		[WIRE_ERR_REVOKED] = "revoked",
		[WIRE_ERR_MISSING] = "missing",
		[WIRE_ERR_ACTOR] = "actor",
		[WIRE_ERR_LIMIT] = "limit",
	};

	if (code <= 0 || code >= (int)(sizeof(names) / sizeof(names[0])) ||
	    !names[code])
		return "unknown";
	return names[code];
}

/* n hex digits at s into *v: true when they all are. */
static bool hex_u64(const char *s, size_t n, uint64_t *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return false;
		*v = *v << 4 | d;
	}
	return true;
}

int wire_missing_put(const char *reason, struct wk_id *put)
{
	size_t plen = strlen(WIRE_MISSING_PREFIX);
	const char *id = reason + plen;

	/* strnlen: the id's 33 bytes must be there before they are read. */
	if (strncmp(reason, WIRE_MISSING_PREFIX, plen) != 0 ||
	    strnlen(id, WK_ID_STRLEN - 1) != WK_ID_STRLEN - 1 ||
	    id[16] != '-' || (id[33] != ' ' && id[33] != '\0') ||
	    !hex_u64(id, 16, &put->hlc) || !hex_u64(id + 17, 16, &put->actor))
		return -EINVAL;
	return 0;
}

bool wire_folder_valid(const char *s, size_t len)
{
	if (len == 0 || len > WIRE_FOLDER_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

/* ---- encoding ---- */

#define BATCH_HDR 13 /* type, u64 through or batch_id, u32 count */

/* The size of one batch entry on the wire. */
static size_t opent_size(bool has_seq, uint32_t len)
{
	return (has_seq ? 8 : 0) + 8 + 8 + 4 + (size_t)len;
}

static int enc_names(struct wire_buf *b, uint32_t count, const uint8_t *names)
{
	int rc;

	if (count > WIRE_NAMES_MAX || (count && !names))
		return -EINVAL;
	rc = put_le(b, count, 4);
	return rc ? rc
		  : wire_buf_append(b, names, (size_t)count * WIRE_NAME_LEN);
}

static int enc_batch(struct wire_buf *b, const struct wire_msg *m)
{
	bool has_seq = m->type == WIRE_OPS;
	struct rd r = {m->batch.raw, m->batch.raw_len, 0};
	uint8_t hdr[BATCH_HDR];
	int rc;

	if (m->batch.count > WIRE_BATCH_MAX ||
	    (m->batch.raw_len && !m->batch.raw))
		return -EINVAL;
	/* The entries come raw: they must parse as a received batch would. */
	for (uint32_t i = 0; i < m->batch.count; i++) {
		uint32_t len;

		rd_take(&r, has_seq ? 24 : 16);
		rd_bytes(&r, WIRE_PAYLOAD_MAX, &len);
	}
	if (r.err || r.left)
		return -EINVAL;
	hdr[0] = (uint8_t)m->type;
	le_store(hdr + 1, has_seq ? m->batch.through : m->batch.batch_id, 8);
	le_store(hdr + 9, m->batch.count, 4);
	rc = wire_buf_append(b, hdr, sizeof(hdr));
	return rc ? rc : wire_buf_append(b, m->batch.raw, m->batch.raw_len);
}

static int enc_body(struct wire_buf *b, const struct wire_msg *m)
{
	size_t n;
	int rc = 0;

	switch (m->type) {
	case WIRE_HELLO:
		n = strnlen(m->hello.folder, sizeof(m->hello.folder));
		if (!wire_folder_valid(m->hello.folder, n))
			return -EINVAL;
		if ((rc = put_le(b, m->hello.version, 4)) ||
		    (rc = put_bytes(b, m->hello.folder, n)) ||
		    (rc = put_bytes(b, m->hello.token, WIRE_TOKEN_LEN)) ||
		    (rc = put_le(b, m->hello.actor, 8)))
			return rc;
		return put_le(b, m->hello.cursor, 8);
	case WIRE_WELCOME:
		if ((rc = put_le(b, m->welcome.version, 4)))
			return rc;
		return put_le(b, m->welcome.head_seq, 8);
	case WIRE_CURSOR:
	case WIRE_CAUGHT_UP:
		return put_le(b, m->cursor.seq, 8);
	case WIRE_ACK:
		if ((rc = put_le(b, m->ack.batch_id, 8)))
			return rc;
		return put_le(b, m->ack.high_seq, 8);
	case WIRE_HAVE:
	case WIRE_MISSING:
	case WIRE_CHUNK_GET:
	case WIRE_NOT_FOUND:
		return enc_names(b, m->names.count, m->names.names);
	case WIRE_CHUNK_PUT:
	case WIRE_CHUNK:
		if (m->chunk.len > WIRE_CHUNK_MAX ||
		    (m->chunk.len && !m->chunk.data))
			return -EINVAL;
		if ((rc = wire_buf_append(b, m->chunk.name, WIRE_NAME_LEN)))
			return rc;
		return put_bytes(b, m->chunk.data, m->chunk.len);
	case WIRE_CHUNK_ACK:
		return wire_buf_append(b, m->chunk.name, WIRE_NAME_LEN);
	case WIRE_PING:
	case WIRE_PONG:
		return put_le(b, m->ping.nonce, 8);
	case WIRE_ERROR:
		n = strnlen(m->error.reason, sizeof(m->error.reason));
		if (n > WIRE_REASON_MAX)
			return -EINVAL;
		if ((rc = put_le(b, m->error.code, 2)))
			return rc;
		return put_bytes(b, m->error.reason, n);
	case WIRE_OPS:
	case WIRE_PUSH:
		break;
	}
	return -EINVAL;
}

int wire_encode(struct wire_buf *b, const struct wire_msg *m)
{
	size_t start = b->len;
	uint8_t type = (uint8_t)m->type;
	int rc;

	if (!wire_type_name(m->type))
		return -EINVAL;
	if (m->type == WIRE_OPS || m->type == WIRE_PUSH) {
		rc = enc_batch(b, m);
	} else {
		rc = wire_buf_append(b, &type, 1);
		if (!rc)
			rc = enc_body(b, m);
	}
	if (!rc && b->len - start > WIRE_FRAME_MAX)
		rc = -EMSGSIZE;
	if (rc)
		wire_buf_truncate(b, start);
	return rc;
}

/* ---- batches built in place ---- */

int wire_batch_begin(struct wire_buf *b, enum wire_type type, uint64_t id)
{
	uint8_t hdr[BATCH_HDR];

	if ((type != WIRE_OPS && type != WIRE_PUSH) || b->len)
		return -EINVAL;
	hdr[0] = (uint8_t)type;
	le_store(hdr + 1, id, 8);
	le_store(hdr + 9, 0, 4);
	return wire_buf_append(b, hdr, sizeof(hdr));
}

uint32_t wire_batch_count(const struct wire_buf *b)
{
	if (b->len < BATCH_HDR)
		return 0;
	return (uint32_t)le_load(wire_buf_data(b) + 9, 4);
}

void wire_batch_set_through(struct wire_buf *b, uint64_t through)
{
	if (b->len >= BATCH_HDR && wire_buf_data(b)[0] == WIRE_OPS)
		le_store(wire_buf_data(b) + 1, through, 8);
}

int wire_batch_add(struct wire_buf *b, const struct wire_opent *e)
{
	bool has_seq;
	uint32_t count;
	size_t need;
	uint8_t hdr[28], *h = hdr;
	int rc;

	if (b->len < BATCH_HDR)
		return -EINVAL;
	if (e->len > WIRE_PAYLOAD_MAX || (e->len && !e->payload))
		return -EINVAL;
	has_seq = wire_buf_data(b)[0] == WIRE_OPS;
	count = wire_batch_count(b);
	need = opent_size(has_seq, e->len);
	if (count >= WIRE_BATCH_MAX || need > b->cap - b->len ||
	    b->len + need > WIRE_FRAME_MAX)
		return -EMSGSIZE;
	rc = wire_buf_reserve(b, need);
	if (rc)
		return rc;
	if (has_seq) {
		le_store(h, e->seq, 8);
		h += 8;
	}
	le_store(h, e->actor, 8);
	le_store(h + 8, e->hlc, 8);
	le_store(h + 16, e->len, 4);
	h += 20;
	/* Cannot fail: the room was reserved above. */
	wire_buf_append(b, hdr, (size_t)(h - hdr));
	wire_buf_append(b, e->payload, e->len);
	le_store(wire_buf_data(b) + 9, count + 1, 4);
	return 0;
}

/* ---- decoding ---- */

static void dec_batch(struct rd *r, struct wire_msg *m)
{
	bool has_seq = m->type == WIRE_OPS;
	uint64_t id = rd_le(r, 8);
	uint32_t count = (uint32_t)rd_le(r, 4);
	const uint8_t *start = r->p;

	if (has_seq)
		m->batch.through = id;
	else
		m->batch.batch_id = id;
	if (r->err)
		return;
	if (count > WIRE_BATCH_MAX) {
		rd_fail(r, -EMSGSIZE);
		return;
	}
	/* Every entry is at least its fixed part: refuse lying counts early. */
	if ((size_t)count * opent_size(has_seq, 0) > r->left) {
		rd_fail(r, -EBADMSG);
		return;
	}
	for (uint32_t i = 0; i < count && !r->err; i++) {
		uint32_t len;

		rd_take(r, has_seq ? 24 : 16);
		rd_bytes(r, WIRE_PAYLOAD_MAX, &len);
	}
	m->batch.count = count;
	m->batch.raw = start;
	m->batch.raw_len = (size_t)(r->p - start);
}

static void dec_names(struct rd *r, struct wire_msg *m)
{
	uint32_t count = (uint32_t)rd_le(r, 4);

	if (r->err)
		return;
	if ((size_t)count * WIRE_NAME_LEN > r->left) {
		rd_fail(r, -EBADMSG);
		return;
	}
	if (count > WIRE_NAMES_MAX) {
		rd_fail(r, -EMSGSIZE);
		return;
	}
	m->names.count = count;
	m->names.names = rd_take(r, (size_t)count * WIRE_NAME_LEN);
}

static void dec_hello(struct rd *r, struct wire_msg *m)
{
	const uint8_t *p;
	uint32_t len;

	m->hello.version = (uint32_t)rd_le(r, 4);
	p = rd_bytes(r, WIRE_FOLDER_MAX, &len);
	if (r->err)
		return;
	if (!wire_folder_valid((const char *)p, len)) {
		rd_fail(r, -EBADMSG);
		return;
	}
	memcpy(m->hello.folder, p, len);
	m->hello.folder[len] = '\0';
	p = rd_bytes(r, WIRE_TOKEN_LEN, &len);
	if (!r->err && len != WIRE_TOKEN_LEN)
		rd_fail(r, -EBADMSG);
	if (r->err)
		return;
	memcpy(m->hello.token, p, WIRE_TOKEN_LEN);
	m->hello.actor = rd_le(r, 8);
	m->hello.cursor = rd_le(r, 8);
}

static void dec_error(struct rd *r, struct wire_msg *m)
{
	const uint8_t *p;
	uint32_t len;

	m->error.code = (uint16_t)rd_le(r, 2);
	p = rd_bytes(r, WIRE_REASON_MAX, &len);
	if (r->err)
		return;
	if (memchr(p, '\0', len)) {
		rd_fail(r, -EBADMSG);
		return;
	}
	memcpy(m->error.reason, p, len);
	m->error.reason[len] = '\0';
}

static void dec_chunk(struct rd *r, struct wire_msg *m, bool with_data)
{
	const uint8_t *p = rd_take(r, WIRE_NAME_LEN);

	if (!p)
		return;
	memcpy(m->chunk.name, p, WIRE_NAME_LEN);
	if (with_data)
		m->chunk.data = rd_bytes(r, WIRE_CHUNK_MAX, &m->chunk.len);
}

int wire_decode(const uint8_t *p, size_t len, struct wire_msg *m)
{
	struct rd r = {p, len, 0};

	memset(m, 0, sizeof(*m));
	if (len > WIRE_FRAME_MAX)
		return -EMSGSIZE;
	m->type = (enum wire_type)rd_le(&r, 1);
	switch ((int)m->type) {
	case WIRE_HELLO:
		dec_hello(&r, m);
		break;
	case WIRE_WELCOME:
		m->welcome.version = (uint32_t)rd_le(&r, 4);
		m->welcome.head_seq = rd_le(&r, 8);
		break;
	case WIRE_OPS:
	case WIRE_PUSH:
		dec_batch(&r, m);
		break;
	case WIRE_CURSOR:
	case WIRE_CAUGHT_UP:
		m->cursor.seq = rd_le(&r, 8);
		break;
	case WIRE_ACK:
		m->ack.batch_id = rd_le(&r, 8);
		m->ack.high_seq = rd_le(&r, 8);
		break;
	case WIRE_HAVE:
	case WIRE_MISSING:
	case WIRE_CHUNK_GET:
	case WIRE_NOT_FOUND:
		dec_names(&r, m);
		break;
	case WIRE_CHUNK_PUT:
	case WIRE_CHUNK:
		dec_chunk(&r, m, true);
		break;
	case WIRE_CHUNK_ACK:
		dec_chunk(&r, m, false);
		break;
	case WIRE_PING:
	case WIRE_PONG:
		m->ping.nonce = rd_le(&r, 8);
		break;
	case WIRE_ERROR:
		dec_error(&r, m);
		break;
	default:
		rd_fail(&r, -EBADMSG);
	}
	if (!r.err && r.left)
		r.err = -EBADMSG; /* trailing bytes */
	if (r.err)
		memset(m, 0, sizeof(*m));
	return r.err;
}

void wire_iter_init(struct wire_iter *it, const struct wire_msg *m)
{
	memset(it, 0, sizeof(*it));
	if (m->type != WIRE_OPS && m->type != WIRE_PUSH)
		return;
	it->p = m->batch.raw;
	it->end = m->batch.raw ? m->batch.raw + m->batch.raw_len : NULL;
	it->left = m->batch.count;
	it->has_seq = m->type == WIRE_OPS;
}

bool wire_iter_next(struct wire_iter *it, struct wire_opent *e)
{
	struct rd r;

	if (!it->left || !it->p)
		return false;
	r = (struct rd){it->p, (size_t)(it->end - it->p), 0};
	e->seq = it->has_seq ? rd_le(&r, 8) : 0;
	e->actor = rd_le(&r, 8);
	e->hlc = rd_le(&r, 8);
	e->payload = rd_bytes(&r, WIRE_PAYLOAD_MAX, &e->len);
	if (r.err) {
		it->left = 0;
		return false;
	}
	it->p = r.p;
	it->left--;
	return true;
}

/* ---- op payloads ---- */

static int put_id(struct wire_buf *b, struct wk_id id)
{
	int rc = put_le(b, id.hlc, 8);

	return rc ? rc : put_le(b, id.actor, 8);
}

static int put_str(struct wire_buf *b, const char *s)
{
	return put_bytes(b, s, strlen(s));
}

static bool target_valid(const char *s, size_t len)
{
	return len >= 1 && len <= WK_TARGET_MAX && !memchr(s, '\0', len);
}

static bool name_field_valid(const char *s)
{
	return strnlen(s, WK_NAME_MAX + 1) <= WK_NAME_MAX && wk_name_valid(s);
}

static int enc_op_body(struct wire_buf *b, const struct wk_op *op)
{
	int rc;

	switch (op->kind) {
	case WK_OP_MKDIR:
	case WK_OP_CREATE:
		if (!name_field_valid(op->name) || op->mode > 07777)
			return -EINVAL;
		if ((rc = put_id(b, op->parent)) || (rc = put_str(b, op->name)))
			return rc;
		return put_le(b, op->mode, 4);
	case WK_OP_PUT:
		if ((rc = wire_buf_append(b, op->hash.b, 16)) ||
		    (rc = put_le(b, op->size, 8)) ||
		    (rc = put_le(b, (uint64_t)op->mtime_ns, 8)))
			return rc;
		return put_id(b, op->base);
	case WK_OP_MOVE:
		if (!name_field_valid(op->name) ||
		    !name_field_valid(op->new_name))
			return -EINVAL;
		if ((rc = put_id(b, op->parent)) ||
		    (rc = put_str(b, op->name)) ||
		    (rc = put_id(b, op->new_parent)))
			return rc;
		return put_str(b, op->new_name);
	case WK_OP_REMOVE:
		if (!name_field_valid(op->name))
			return -EINVAL;
		if ((rc = put_id(b, op->parent)) || (rc = put_str(b, op->name)))
			return rc;
		return put_id(b, op->base);
	case WK_OP_SETATTR:
		if (!op->attrs ||
		    (op->attrs & ~(WK_ATTR_MODE | WK_ATTR_MTIME)) ||
		    op->mode > 07777)
			return -EINVAL;
		if ((rc = put_le(b, op->attrs, 4)) ||
		    (rc = put_le(b, op->mode, 4)))
			return rc;
		return put_le(b, (uint64_t)op->mtime_ns, 8);
	case WK_OP_SYMLINK:
		if (!name_field_valid(op->name) ||
		    !target_valid(op->target,
				  strnlen(op->target, WK_TARGET_MAX + 1)))
			return -EINVAL;
		if ((rc = put_id(b, op->parent)) || (rc = put_str(b, op->name)))
			return rc;
		return put_str(b, op->target);
	}
	return -EINVAL;
}

/* The device trailer of formats 3 and 4: u8 length, then the name. */
static int put_device(struct wire_buf *b, const char *dev)
{
	uint8_t len = (uint8_t)strlen(dev);
	int rc = wire_buf_append(b, &len, 1);

	return rc ? rc : wire_buf_append(b, dev, len);
}

static const struct wk_hash zero_hash;

static bool ref_valid(const struct wire_content_ref *ref)
{
	return ref->how <= WIRE_CONTENT_RECIPE &&
	       (ref->how == WIRE_CONTENT_RECIPE ||
		memcmp(&ref->recipe, &zero_hash, sizeof(zero_hash)) == 0);
}

/* The payload format for op: see wire.h. */
static uint8_t op_format(bool ref, bool dev, bool link)
{
	if (link)
		return ref ? WIRE_OP_FORMAT_CONTENT_LINK : WIRE_OP_FORMAT_LINK;
	if (ref)
		return dev ? WIRE_OP_FORMAT_CONTENT_DEVICE
			   : WIRE_OP_FORMAT_CONTENT;
	return dev ? WIRE_OP_FORMAT_DEVICE : WIRE_OP_FORMAT;
}

/*
 * Any payload format: the format-1 fields, then the content reference when
 * ref is given (a put: format 2, 4 or 6), then the device when the op has
 * one (format 3, 4, 5 or 6), then the link of a put that names one (5, 6).
 * The link travels only with a device: an op without one is from a wkfs
 * that knew no links (and a link is a hint, never needed for content).
 */
static int enc_op(struct wire_buf *b, const struct wk_op *op,
		  const struct wire_content_ref *ref)
{
	size_t start = b->len;
	bool dev = op->device[0] != '\0';
	bool link = dev && wk_op_has_link(op);
	uint8_t hdr[2], how;
	int rc;

	if (!wk_op_kind_name(op->kind) || (dev && !wk_device_valid(op->device)))
		return -EINVAL;
	hdr[0] = op_format(ref != NULL, dev, link);
	hdr[1] = (uint8_t)op->kind;
	rc = wire_buf_append(b, hdr, 2);
	if (!rc)
		rc = put_id(b, op->node);
	if (!rc)
		rc = enc_op_body(b, op);
	if (!rc && ref) {
		how = (uint8_t)ref->how;
		rc = wire_buf_append(b, &how, 1);
		if (!rc)
			rc = wire_buf_append(b, ref->recipe.b, 16);
	}
	if (!rc && dev)
		rc = put_device(b, op->device);
	if (!rc && link)
		rc = put_id(b, op->link);
	if (rc)
		wire_buf_truncate(b, start);
	return rc;
}

int wire_op_encode(struct wire_buf *b, const struct wk_op *op)
{
	return enc_op(b, op, NULL);
}

int wire_put_encode(struct wire_buf *b, const struct wk_op *op,
		    const struct wire_content_ref *ref)
{
	if (op->kind != WK_OP_PUT || !ref_valid(ref))
		return -EINVAL;
	return enc_op(b, op, ref);
}

static struct wk_id rd_id(struct rd *r)
{
	struct wk_id id;

	id.hlc = rd_le(r, 8);
	id.actor = rd_le(r, 8);
	return id;
}

/* Reads a name into dst (WK_NAME_MAX + 1 bytes) and validates it. */
static void rd_name(struct rd *r, char *dst)
{
	uint32_t len;
	const uint8_t *p = rd_bytes(r, WK_NAME_MAX, &len);

	if (r->err)
		return;
	if (memchr(p, '\0', len)) {
		rd_fail(r, -EBADMSG);
		return;
	}
	memcpy(dst, p, len);
	dst[len] = '\0';
	if (!wk_name_valid(dst))
		rd_fail(r, -EBADMSG);
}

static void dec_op_body(struct rd *r, struct wk_op *op)
{
	const uint8_t *p;
	uint32_t len;

	switch (op->kind) {
	case WK_OP_MKDIR:
	case WK_OP_CREATE:
		op->parent = rd_id(r);
		rd_name(r, op->name);
		op->mode = (uint32_t)rd_le(r, 4);
		if (op->mode > 07777)
			rd_fail(r, -EBADMSG);
		return;
	case WK_OP_PUT:
		p = rd_take(r, 16);
		if (p)
			memcpy(op->hash.b, p, 16);
		op->size = rd_le(r, 8);
		op->mtime_ns = (int64_t)rd_le(r, 8);
		op->base = rd_id(r);
		return;
	case WK_OP_MOVE:
		op->parent = rd_id(r);
		rd_name(r, op->name);
		op->new_parent = rd_id(r);
		rd_name(r, op->new_name);
		return;
	case WK_OP_REMOVE:
		op->parent = rd_id(r);
		rd_name(r, op->name);
		op->base = rd_id(r);
		return;
	case WK_OP_SETATTR:
		op->attrs = (uint32_t)rd_le(r, 4);
		op->mode = (uint32_t)rd_le(r, 4);
		op->mtime_ns = (int64_t)rd_le(r, 8);
		if (!op->attrs ||
		    (op->attrs & ~(uint32_t)(WK_ATTR_MODE | WK_ATTR_MTIME)) ||
		    op->mode > 07777)
			rd_fail(r, -EBADMSG);
		return;
	case WK_OP_SYMLINK:
		op->parent = rd_id(r);
		rd_name(r, op->name);
		p = rd_bytes(r, WK_TARGET_MAX, &len);
		if (r->err)
			return;
		if (!target_valid((const char *)p, len)) {
			rd_fail(r, -EBADMSG);
			return;
		}
		memcpy(op->target, p, len);
		op->target[len] = '\0';
		return;
	}
	rd_fail(r, -EBADMSG);
}

/* The content reference after the body of a format-2 or 4 put. */
static void dec_content_ref(struct rd *r, struct wire_content_ref *ref)
{
	unsigned how = (unsigned)rd_le(r, 1);
	const uint8_t *p = rd_take(r, 16);

	if (r->err)
		return;
	memcpy(ref->recipe.b, p, 16);
	ref->how = (enum wire_content)how;
	if (!ref_valid(ref))
		rd_fail(r, -EBADMSG);
}

/* The device at the end of a format-3 or 4 payload, into dst. */
static void dec_device(struct rd *r, char dst[WK_DEVICE_MAX + 1])
{
	unsigned len = (unsigned)rd_le(r, 1);
	const uint8_t *p;

	if (r->err)
		return;
	if (len == 0 || len > WK_DEVICE_MAX) {
		rd_fail(r, -EBADMSG);
		return;
	}
	p = rd_take(r, len);
	if (!p)
		return;
	memcpy(dst, p, len);
	dst[len] = '\0';
	/* Also refuses a NUL inside: the name would end early. */
	if (strlen(dst) != len || !wk_device_valid(dst))
		rd_fail(r, -EBADMSG);
}

int wire_op_decode(const uint8_t *p, size_t len, uint64_t actor, uint64_t hlc,
		   struct wk_op *op)
{
	return wire_op_decode_ref(p, len, actor, hlc, op, NULL);
}

int wire_op_decode_ref(const uint8_t *p, size_t len, uint64_t actor,
		       uint64_t hlc, struct wk_op *op,
		       struct wire_content_ref *ref)
{
	struct wire_content_ref dummy;
	struct rd r = {p, len, 0};
	unsigned kind, format;
	bool has_ref, has_dev, has_link;

	if (!ref)
		ref = &dummy;
	memset(ref, 0, sizeof(*ref));
	ref->how = WIRE_CONTENT_WHOLE;
	memset(op, 0, sizeof(*op));
	op->base = WK_ID_NONE;
	op->link = WK_ID_NONE;
	format = (unsigned)rd_le(&r, 1);
	if (format < WIRE_OP_FORMAT || format > WIRE_OP_FORMAT_CONTENT_LINK)
		rd_fail(&r, -EBADMSG);
	has_ref = format == WIRE_OP_FORMAT_CONTENT ||
		  format == WIRE_OP_FORMAT_CONTENT_DEVICE ||
		  format == WIRE_OP_FORMAT_CONTENT_LINK;
	has_link = format == WIRE_OP_FORMAT_LINK ||
		   format == WIRE_OP_FORMAT_CONTENT_LINK;
	has_dev = format != WIRE_OP_FORMAT && format != WIRE_OP_FORMAT_CONTENT;
	kind = (unsigned)rd_le(&r, 1);
	op->kind = (enum wk_op_kind)kind;
	if ((has_ref || has_link) && kind != WK_OP_PUT)
		rd_fail(&r, -EBADMSG);
	op->node = rd_id(&r);
	if (!r.err)
		dec_op_body(&r, op);
	if (!r.err && has_ref)
		dec_content_ref(&r, ref);
	if (!r.err && has_dev)
		dec_device(&r, op->device);
	if (!r.err && has_link) {
		op->link = rd_id(&r);
		/* None, the root or the put's own node are no link: only an
		 * encoder that means one writes these formats. */
		if (!r.err && !wk_op_has_link(op))
			rd_fail(&r, -EBADMSG);
		if (!r.err && wk_id_eq(op->link, op->node))
			rd_fail(&r, -EBADMSG);
	}
	if (!r.err && r.left)
		r.err = -EBADMSG;
	if (r.err) {
		memset(op, 0, sizeof(*op));
		return -EBADMSG;
	}
	op->id.hlc = hlc;
	op->id.actor = actor;
	return 0;
}

enum wire_version_verdict wire_version_accept(uint32_t hello, uint32_t folder)
{
	if (hello < WIRE_VERSION_MIN || hello > WIRE_VERSION)
		return WIRE_VERSION_UNKNOWN;
	return hello < folder ? WIRE_VERSION_OLD : WIRE_VERSION_OK;
}

/* ---- recipe chunks ---- */

int wire_rchunk_names(const uint8_t *p, size_t n, recipe_name_fn fn, void *arg)
{
	struct wk_hash base_chunk;
	int rc;

	if (n > 0 && p[0] == RECIPE_TAG_PLAIN)
		return recipe_names(p, n, fn, arg);
	/* A delta recipe chunk holds a delta, never a plain recipe. */
	if (n <= WIRE_RCHUNK_HEAD_LEN || p[0] != WIRE_RCHUNK_DELTA ||
	    p[WIRE_RCHUNK_HEAD_LEN] != RECIPE_TAG_DELTA)
		return -EBADMSG;
	memcpy(base_chunk.b, p + 1 + WIRE_NAME_LEN, WIRE_NAME_LEN);
	rc = fn(arg, &base_chunk);
	if (rc)
		return rc;
	return recipe_names(p + WIRE_RCHUNK_HEAD_LEN, n - WIRE_RCHUNK_HEAD_LEN,
			    fn, arg);
}
