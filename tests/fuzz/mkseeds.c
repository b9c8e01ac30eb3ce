/*
 * mkseeds.c - writes the seed corpus of the fuzz harnesses into
 * tests/fuzz/corpus/NAME/ (committed; run again only when a format
 * changes): a few small valid inputs of each kind, made by the real
 * encoders, so the fuzzers start from inputs that get past the headers.
 *
 *	make build-fuzz/mkseeds && build-fuzz/mkseeds tests/fuzz/corpus
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bytebuf.h"
#include "recipe.h"
#include "syncd_git.h"
#include "wire.h"

static const char *root;

static void put(const char *kind, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, kind);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s/%s", root, kind, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		goto fail;
	return;
fail:
	perror(path);
	exit(1);
}

static void put_msg(const char *name, const struct wire_msg *m)
{
	struct wire_buf b;

	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	if (wire_encode(&b, m) != 0) {
		fprintf(stderr, "cannot encode %s\n", name);
		exit(1);
	}
	put("wire", name, wire_buf_data(&b), wire_buf_len(&b));
	wire_buf_release(&b);
}

static struct wk_op sample_op(enum wk_op_kind kind)
{
	struct wk_op op = {.kind = kind};

	op.id = (struct wk_id){.hlc = 1000, .actor = 7};
	op.node = (struct wk_id){.hlc = 900, .actor = 7};
	op.parent = WK_ID_ROOT;
	op.mode = kind == WK_OP_MKDIR ? 0755 : 0644;
	op.base = WK_ID_NONE;
	op.link = WK_ID_NONE;
	strcpy(op.name, "notes.txt");
	strcpy(op.device, "laptop");
	if (kind == WK_OP_PUT) {
		op.size = 12;
		op.mtime_ns = 1700000000000000000;
		memset(op.hash.b, 0xab, sizeof(op.hash.b));
	}
	return op;
}

static void wire_seeds(void)
{
	struct wire_msg m = {.type = WIRE_HELLO};
	struct wire_opent e = {.seq = 1, .actor = 7, .hlc = 1000};
	struct wire_content_ref ref = {.how = WIRE_CONTENT_RECIPE};
	struct wire_buf b, payload;
	struct wk_op op;

	m.hello.version = WIRE_VERSION;
	strcpy(m.hello.folder, "Notes");
	m.hello.actor = 7;
	put_msg("hello", &m);
	m = (struct wire_msg){.type = WIRE_ACK};
	m.ack.batch_id = 3;
	m.ack.high_seq = 42;
	put_msg("ack", &m);
	m = (struct wire_msg){.type = WIRE_ERROR};
	m.error.code = 1;
	strcpy(m.error.reason, "malformed: a test");
	put_msg("error", &m);

	wire_buf_init(&payload, 0, WIRE_PAYLOAD_MAX);
	wire_buf_init(&b, 0, WIRE_FRAME_MAX);
	wire_batch_begin(&b, WIRE_OPS, 0);
	op = sample_op(WK_OP_MKDIR);
	wire_op_encode(&payload, &op);
	e.payload = wire_buf_data(&payload);
	e.len = (uint32_t)wire_buf_len(&payload);
	wire_batch_add(&b, &e);
	wire_buf_reset(&payload);
	op = sample_op(WK_OP_PUT);
	wire_put_encode(&payload, &op, &ref);
	e.seq = 2;
	e.hlc = 1001;
	e.payload = wire_buf_data(&payload);
	e.len = (uint32_t)wire_buf_len(&payload);
	wire_batch_add(&b, &e);
	wire_batch_set_through(&b, 2);
	put("wire", "ops", wire_buf_data(&b), wire_buf_len(&b));
	put("wire", "put-payload", wire_buf_data(&payload),
	    wire_buf_len(&payload));

	/* the same op in a segment, for the git reader */
	wire_buf_reset(&b);
	gitseg_begin(&b, 7);
	gitseg_add(&b, 1001, wire_buf_data(&payload),
		   (uint32_t)wire_buf_len(&payload));
	wire_buf_reset(&payload);
	op = sample_op(WK_OP_CREATE);
	wire_op_encode(&payload, &op);
	gitseg_add(&b, 1002, wire_buf_data(&payload),
		   (uint32_t)wire_buf_len(&payload));
	put("gitseg", "two-ops", wire_buf_data(&b), wire_buf_len(&b));
	wire_buf_reset(&b);
	gitseg_begin(&b, 9);
	put("gitseg", "empty", wire_buf_data(&b), wire_buf_len(&b));
	wire_buf_release(&b);
	wire_buf_release(&payload);
}

static void recipe_seeds(void)
{
	struct recipe base = RECIPE_INIT, r = RECIPE_INIT;
	struct bbuf enc;

	for (uint8_t i = 0; i < 4; i++) {
		struct wk_hash h;

		memset(&h, i + 1, sizeof(h));
		recipe_push(&base, &h, 1000u * (i + 1));
		if (i != 2)
			recipe_push(&r, &h, 1000u * (i + 1));
	}
	bbuf_init(&enc, 1 << 20);
	recipe_encode(&base, &enc);
	put("recipe", "plain", enc.p, enc.len);
	bbuf_release(&enc);
	bbuf_init(&enc, 1 << 20);
	recipe_delta_encode(&base, &r, &enc);
	put("recipe", "delta", enc.p, enc.len);
	bbuf_release(&enc);
	recipe_release(&base);
	recipe_release(&r);
}

static void text_seeds(void)
{
	static const char config[] =
		"[device]\nname = laptop\n[sync]\nignore = *.log\n"
		"ignore = build/\n[remote]\nurl = ws://127.0.0.1:7890/Notes\n"
		"token = 00112233445566778899aabbccddeeff"
		"00112233445566778899aabbccddeeff\n";
	static const char git[] =
		"[remote]\nurl = git:/srv/notes.git\nbranch = wk/oplog\n"
		"interval = 30\n";
	static const char ignore[] =
		"# comment\n*.o\n!keep.o\n/build/\ndocs/**/tmp\n[ab]?.txt\n"
		"\0a.o\0keep.o\0build\0docs/x/y/tmp\0sub/ab.txt";

	static const char relay_ini[] =
		"; wkfs-relay\n[relay]\nbind = [::1]:7890\n"
		"metrics = 127.0.0.1:9101\nstatus-page = no\n"
		"[tls]\ncert = cert.pem\nkey = key.pem\n[limits]\n"
		"hello-bytes = 1K\nconnections = 100\n"
		"messages-per-second = 0\nfolder-bytes = 10G\n";

	put("config", "relay", config, sizeof(config) - 1);
	put("config", "git", git, sizeof(git) - 1);
	put("relay_config", "all-sections", relay_ini, sizeof(relay_ini) - 1);
	put("ignore", "rules-and-paths", ignore, sizeof(ignore) - 1);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds CORPUS-DIR\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	wire_seeds();
	recipe_seeds();
	text_seeds();
	return 0;
}
