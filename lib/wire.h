/*
 * wire.h - the replication protocol's codec (docs/protocol.md is the spec).
 *
 * Pure code: no sockets, no libwebsockets, no SQLite.  Three parts:
 *
 * 1. struct wire_buf, a growable byte buffer with a hard cap.  Anything whose
 *    size a peer decides goes through one, so a hostile peer gets -EMSGSIZE,
 *    never an OOM kill.  A buffer may keep headroom in front of its data
 *    (libwebsockets wants LWS_PRE bytes before what it sends).
 *
 *        struct wire_buf b;
 *        wire_buf_init(&b, LWS_PRE, WIRE_FRAME_MAX);
 *        rc = wire_encode(&b, &msg);            // or wire_batch_*()
 *        ... send wire_buf_data(&b), wire_buf_len(&b) ...
 *        wire_buf_release(&b);
 *
 * 2. Messages: struct wire_msg is a tagged union.  wire_encode() appends one
 *    message to a buffer; wire_decode() parses one received frame.  The
 *    decoded message points into the frame for bulk data (batches, names,
 *    chunk bytes), so the frame must outlive it; small fields are copied.
 *    Decoding checks every length against the end of the frame and the
 *    limits below, refuses trailing bytes, and never reads out of bounds:
 *    0, -EBADMSG (malformed) or -EMSGSIZE (over a limit).
 *    Ops of a decoded OPS or PUSH are walked with wire_iter (already
 *    validated by wire_decode).  Large batches are built in place with
 *    wire_batch_begin()/wire_batch_add().
 *
 * 3. Op payloads: wire_op_encode()/wire_op_decode() turn a struct wk_op into
 *    the opaque payload bytes the relay stores, and back.
 *
 * Nothing here allocates except wire_buf, which uses malloc and reports
 * failure as -ENOMEM.
 */
#ifndef WKFS_WIRE_H
#define WKFS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "op.h"
#include "recipe.h"

/*
 * Protocol versions (docs/protocol.md): a client speaks WIRE_VERSION; the
 * relay speaks WIRE_VERSION_MIN .. WIRE_VERSION and answers WELCOME with
 * the client's.  Version 2 adds delta recipe chunks and says that payloads
 * of formats 3 and 4 may be in the folder, so a folder that stored ops of
 * a version-2 session refuses version-1 HELLOs.
 */
#define WIRE_VERSION	 2
#define WIRE_VERSION_MIN 1

/*
 * The relay's answer to a HELLO of version `hello` for a folder at version
 * `folder` (the highest version of a session that stored ops in it):
 *   WIRE_VERSION_OK       WELCOME, speaking `hello`;
 *   WIRE_VERSION_UNKNOWN  ERROR version: the relay does not speak it;
 *   WIRE_VERSION_OLD      ERROR version: the folder holds ops a client of
 *                         that version would skip (upgrade the client).
 */
enum wire_version_verdict {
	WIRE_VERSION_OK = 0,
	WIRE_VERSION_UNKNOWN,
	WIRE_VERSION_OLD,
};
enum wire_version_verdict wire_version_accept(uint32_t hello, uint32_t folder);

#define WIRE_FRAME_MAX	 (8u << 20)  /* one message */
#define WIRE_BATCH_MAX	 1024u	     /* ops in one OPS or PUSH */
#define WIRE_PAYLOAD_MAX (64u << 10) /* one op's payload */
#define WIRE_NAMES_MAX	 4096u	     /* names in one names list */
#define WIRE_CHUNK_MAX	 (1u << 20)  /* one chunk */
#define WIRE_FOLDER_MAX	 64u	     /* folder name, bytes */
#define WIRE_TOKEN_LEN	 32u	     /* token, bytes */
#define WIRE_REASON_MAX	 256u	     /* ERROR reason, bytes */
#define WIRE_NAME_LEN	 16u	     /* a chunk name: XXH3-128 */
/* The largest file a put may name: a plain recipe chunk (at most
 * WIRE_CHUNK_MAX, 20 bytes an entry) of chunks of at most 256 KiB
 * (chunk.h) describes under 13 GiB.  Receivers refuse bigger ones, and a
 * relay's put-bytes limit cannot go above it. */
#define WIRE_PUT_MAX (16ull << 30)

enum wire_type {
	/* client to server */
	WIRE_HELLO = 0x01,
	WIRE_PUSH = 0x02,
	WIRE_CURSOR = 0x03,
	WIRE_HAVE = 0x04,
	WIRE_CHUNK_PUT = 0x05,
	WIRE_CHUNK_GET = 0x06,
	WIRE_PING = 0x07,
	/* server to client */
	WIRE_WELCOME = 0x81,
	WIRE_OPS = 0x82,
	WIRE_CAUGHT_UP = 0x83,
	WIRE_ACK = 0x84,
	WIRE_MISSING = 0x85,
	WIRE_CHUNK_ACK = 0x86,
	WIRE_CHUNK = 0x87,
	WIRE_NOT_FOUND = 0x88,
	WIRE_PONG = 0x89,
	/* either way */
	WIRE_ERROR = 0xff,
};

enum wire_err {
	WIRE_ERR_MALFORMED = 1,
	WIRE_ERR_VERSION = 2,
	WIRE_ERR_AUTH = 3,
	WIRE_ERR_TOO_BIG = 4,
	WIRE_ERR_STATE = 5,
	WIRE_ERR_HASH = 6,
	WIRE_ERR_CURSOR = 7,
	WIRE_ERR_OVERLOAD = 8,
	WIRE_ERR_STORAGE = 9,
	WIRE_ERR_REVOKED = 10,
	/* A PUSH names content the relay lacks (wire_missing_put()). */
	WIRE_ERR_MISSING = 11,
	/* A PUSH holds an op of another actor than the session's HELLO. */
	WIRE_ERR_ACTOR = 12,
	/* Over one of the relay's configured limits (the reason names it). */
	WIRE_ERR_LIMIT = 13,
};

/* ---- capped buffer ---- */

struct wire_buf {
	uint8_t *mem; /* headroom bytes, then len bytes of data */
	size_t head;  /* headroom in front of the data */
	size_t len;   /* bytes of data */
	size_t alloc; /* bytes allocated for data (excluding headroom) */
	size_t cap;   /* len never exceeds this */
};

void wire_buf_init(struct wire_buf *b, size_t headroom, size_t cap);
void wire_buf_release(struct wire_buf *b);
/* Empties the buffer, keeping its memory. */
void wire_buf_reset(struct wire_buf *b);
/* Appends n bytes: 0, -EMSGSIZE past the cap (nothing appended), -ENOMEM. */
int wire_buf_append(struct wire_buf *b, const void *p, size_t n);
/* Makes room for n more bytes without appending them. */
int wire_buf_reserve(struct wire_buf *b, size_t n);
/* Cuts the data back to len bytes (len <= current length). */
void wire_buf_truncate(struct wire_buf *b, size_t len);

static inline uint8_t *wire_buf_data(const struct wire_buf *b)
{
	return b->mem ? b->mem + b->head : NULL;
}

static inline size_t wire_buf_len(const struct wire_buf *b)
{
	return b->len;
}

/* ---- messages ---- */

/* One op of an OPS (seq set) or PUSH (seq 0) batch. */
struct wire_opent {
	uint64_t seq;
	uint64_t actor;
	uint64_t hlc;
	const uint8_t *payload;
	uint32_t len;
};

struct wire_msg {
	enum wire_type type;
	union {
		struct {
			uint32_t version;
			char folder[WIRE_FOLDER_MAX + 1]; /* NUL-terminated */
			uint8_t token[WIRE_TOKEN_LEN];
			uint64_t actor;
			uint64_t cursor;
		} hello;
		struct {
			uint32_t version;
			uint64_t head_seq;
		} welcome;
		/* OPS (through) and PUSH (batch_id) */
		struct {
			uint64_t through;
			uint64_t batch_id;
			uint32_t count;
			const uint8_t *raw; /* count encoded entries */
			size_t raw_len;
		} batch;
		/* CURSOR and CAUGHT_UP */
		struct {
			uint64_t seq;
		} cursor;
		struct {
			uint64_t batch_id;
			uint64_t high_seq;
		} ack;
		/* HAVE, MISSING, CHUNK_GET, NOT_FOUND */
		struct {
			uint32_t count;
			const uint8_t *names; /* count * WIRE_NAME_LEN bytes */
		} names;
		/* CHUNK_PUT, CHUNK, CHUNK_ACK (no data) */
		struct {
			uint8_t name[WIRE_NAME_LEN];
			const uint8_t *data;
			uint32_t len;
		} chunk;
		/* PING and PONG */
		struct {
			uint64_t nonce;
		} ping;
		struct {
			uint16_t code;
			char reason[WIRE_REASON_MAX + 1]; /* NUL-terminated */
		} error;
	};
};

/* "HELLO", "OPS"...; NULL for an unknown type. */
const char *wire_type_name(int type);
/* True for types a client sends (the server must refuse the others). */
bool wire_type_from_client(int type);

/* "malformed", "auth"...; "unknown" for anything else. */
const char *wire_err_name(int code);

/*
 * ERROR `missing`: the relay refuses a whole PUSH because a put in it
 * names a chunk the relay does not hold.  Its reason starts with
 * WIRE_MISSING_PREFIX and the put's id as wk_id_str() writes it ("put
 * 0000000000000005-0000000000000007 names chunk ..."), so a client can
 * tell which put: wire_missing_put() reads it back, 0 or -EINVAL.
 */
#define WIRE_MISSING_PREFIX "put "
int wire_missing_put(const char *reason, struct wk_id *put);

/*
 * True when s (len bytes) is a folder name: 1..WIRE_FOLDER_MAX bytes of
 * [A-Za-z0-9._-], not starting with '.'.  Folder names become directory
 * names in the relay's store, so this is deliberately narrow.
 */
bool wire_folder_valid(const char *s, size_t len);

/*
 * Appends the encoding of m to b.  Checks the limits an encoder can know
 * (lengths, counts, a valid folder): -EINVAL for a message that would not
 * decode, -EMSGSIZE past the buffer's cap, -ENOMEM.  On error the buffer is
 * as it was.
 */
int wire_encode(struct wire_buf *b, const struct wire_msg *m);

/* Parses one whole frame: 0, -EBADMSG, -EMSGSIZE. */
int wire_decode(const uint8_t *p, size_t len, struct wire_msg *m);

/* Builds an OPS or PUSH in an empty buffer, one op at a time. */
int wire_batch_begin(struct wire_buf *b, enum wire_type type, uint64_t id);
/*
 * Adds one op.  -EMSGSIZE (buffer unchanged) when it would pass the
 * buffer's cap or WIRE_BATCH_MAX: send what is there and start a new batch.
 * -EINVAL for a payload over WIRE_PAYLOAD_MAX, which no batch can carry.
 */
int wire_batch_add(struct wire_buf *b, const struct wire_opent *e);
/* Ops added so far; and, for OPS, sets `through`. */
uint32_t wire_batch_count(const struct wire_buf *b);
void wire_batch_set_through(struct wire_buf *b, uint64_t through);

/* Walks the ops of a decoded OPS or PUSH. */
struct wire_iter {
	const uint8_t *p;
	const uint8_t *end;
	uint32_t left;
	bool has_seq;
};

void wire_iter_init(struct wire_iter *it, const struct wire_msg *m);
/* Fills e with the next op; false at the end. */
bool wire_iter_next(struct wire_iter *it, struct wire_opent *e);

/* ---- op payloads ---- */

/*
 * Payload formats (docs/protocol.md, "Op payload"): 1 is the op alone, 2 a
 * put with its content reference; 3 and 4 are 1 and 2 followed by the
 * device name of the op's maker (op->device); 5 and 6 (puts only) are 3
 * and 4 followed by the node the put's file was a hard link of (op->link).
 * Encoders write 5 or 6 for a put with a link and a device, else 3 or 4
 * when op->device is not empty, else 1 or 2; the decoder takes all six and
 * leaves op->device empty for 1 and 2 and op->link WK_ID_NONE for 1 to 4.
 */
#define WIRE_OP_FORMAT		      1
#define WIRE_OP_FORMAT_CONTENT	      2
#define WIRE_OP_FORMAT_DEVICE	      3
#define WIRE_OP_FORMAT_CONTENT_DEVICE 4
#define WIRE_OP_FORMAT_LINK	      5
#define WIRE_OP_FORMAT_CONTENT_LINK   6

/*
 * Appends op's payload (without op->id, which travels in the envelope).
 * -EINVAL for an op that would not decode (bad kind, name, target, mode,
 * a device name that is not empty and not wk_device_valid()).
 */
int wire_op_encode(struct wire_buf *b, const struct wk_op *op);

/*
 * Decodes a payload into *op, with op->id = {hlc, actor} from the envelope.
 * 0 or -EBADMSG; hostile bytes are refused, never over-read.
 */
int wire_op_decode(const uint8_t *p, size_t len, uint64_t actor, uint64_t hlc,
		   struct wk_op *op);

/*
 * Format 2 (puts only): the format-1 put followed by where its content is,
 * `u8 how` and `name recipe` (docs/protocol.md, "Content of a put"); format
 * 4 is format 2 followed by the device.  How:
 *   WIRE_CONTENT_NONE    not shipped (the file changed before it could be;
 *                        a later put carries the content); recipe zero
 *   WIRE_CONTENT_WHOLE   one chunk named by the put's hash holds the whole
 *                        file (or the file is empty); recipe zero
 *   WIRE_CONTENT_RECIPE  recipe names a chunk holding the plain recipe
 *                        encoding (recipe.h) of the file
 * A format-1 put decodes as WIRE_CONTENT_WHOLE.
 */
enum wire_content {
	WIRE_CONTENT_NONE = 0,
	WIRE_CONTENT_WHOLE = 1,
	WIRE_CONTENT_RECIPE = 2,
};

struct wire_content_ref {
	enum wire_content how;
	struct wk_hash recipe; /* WIRE_CONTENT_RECIPE only, else zero */
};

/* Appends a format-2 (or with a device 4) put payload: -EINVAL for an op
 * that is not a put or a bad ref, else as wire_op_encode(). */
int wire_put_encode(struct wire_buf *b, const struct wk_op *op,
		    const struct wire_content_ref *ref);

/*
 * wire_op_decode() that also returns a put's content reference in *ref
 * (may be NULL; left as WIRE_CONTENT_WHOLE for anything but a format-2 or
 * 4 put).  wire_op_decode() accepts every format.
 */
int wire_op_decode_ref(const uint8_t *p, size_t len, uint64_t actor,
		       uint64_t hlc, struct wk_op *op,
		       struct wire_content_ref *ref);

/*
 * Recipe chunks (docs/protocol.md, "Delta recipe chunks"): what a
 * WIRE_CONTENT_RECIPE put names is a plain recipe encoding (recipe.h,
 * first byte RECIPE_TAG_PLAIN) or, in version-2 sessions, a delta recipe
 * chunk:
 *
 *	u8 WIRE_RCHUNK_DELTA  name base_content  name base_chunk  delta
 *
 * where delta is a recipe.h delta (RECIPE_TAG_DELTA) against the recipe
 * of base_content, and base_chunk is that content's recipe chunk on the
 * same relay (plain or a delta again).  A chain from a put's chunk down
 * to a plain one is at most WIRE_RCHUNK_CHAIN_MAX deltas long.
 */
#define WIRE_RCHUNK_DELTA     0x03
#define WIRE_RCHUNK_HEAD_LEN  (1 + 2 * WIRE_NAME_LEN)
#define WIRE_RCHUNK_CHAIN_MAX 16

/*
 * Calls fn(arg, name) for each chunk that must be on a relay beside the
 * recipe chunk p[0 .. n): every entry of a plain recipe; for a delta
 * recipe chunk its base_chunk first, then the entries its delta ADDs (the
 * entries it COPYs are the base's, which the relay holds if it holds
 * base_chunk's put).  0, fn's first nonzero return, or -EBADMSG (neither
 * form, or a recipe that does not decode whatever its base).
 */
int wire_rchunk_names(const uint8_t *p, size_t n, recipe_name_fn fn, void *arg);

#endif
