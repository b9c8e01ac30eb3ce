/*
 * test_op.c - names of op kinds, printable ids and hashes, which names may
 * enter the tree, and how device names are made and checked.  Ids, hashes
 * and device names are printed into logs, file names and the wire, so the
 * exact text is pinned here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "op.h"

static void test_kind_names(void **state)
{
	assert_string_equal(wk_op_kind_name(WK_OP_MKDIR), "mkdir");
	assert_string_equal(wk_op_kind_name(WK_OP_CREATE), "create");
	assert_string_equal(wk_op_kind_name(WK_OP_PUT), "put");
	assert_string_equal(wk_op_kind_name(WK_OP_MOVE), "move");
	assert_string_equal(wk_op_kind_name(WK_OP_REMOVE), "remove");
	assert_string_equal(wk_op_kind_name(WK_OP_SETATTR), "setattr");
	assert_string_equal(wk_op_kind_name(WK_OP_SYMLINK), "symlink");
	assert_null(wk_op_kind_name((enum wk_op_kind)0));
	assert_null(wk_op_kind_name((enum wk_op_kind)8));
	assert_null(wk_op_kind_name((enum wk_op_kind)99));
}

static void test_id_str(void **state)
{
	char buf[WK_ID_STRLEN + 1];

	/* A canary after the 34 bytes the function may use. */
	memset(buf, 'X', sizeof(buf));
	assert_ptr_equal(wk_id_str(WK_ID_ROOT, buf), buf);
	assert_string_equal(buf, "0000000000000000-0000000000000000");
	assert_int_equal(strlen(buf), WK_ID_STRLEN - 1);
	assert_int_equal(buf[WK_ID_STRLEN], 'X');

	wk_id_str((struct wk_id){0x0123456789abcdefULL, 0xfedcba9876543210ULL},
		  buf);
	assert_string_equal(buf, "0123456789abcdef-fedcba9876543210");

	wk_id_str((struct wk_id){1, 0xabc}, buf);
	assert_string_equal(buf, "0000000000000001-0000000000000abc");

	wk_id_str(WK_ID_NONE, buf);
	assert_string_equal(buf, "ffffffffffffffff-ffffffffffffffff");
	assert_int_equal(buf[WK_ID_STRLEN], 'X');
}

static void test_hash_str(void **state)
{
	struct wk_hash h;
	char buf[WK_HASH_STRLEN + 1];

	for (int i = 0; i < 16; i++)
		h.b[i] = (uint8_t)(i * 0x11);
	memset(buf, 'X', sizeof(buf));
	assert_ptr_equal(wk_hash_str(&h, buf), buf);
	assert_string_equal(buf, "00112233445566778899aabbccddeeff");
	assert_int_equal(buf[WK_HASH_STRLEN], 'X');

	memset(&h, 0, sizeof(h));
	h.b[0] = 0x0f;
	h.b[15] = 0xf0;
	wk_hash_str(&h, buf);
	assert_string_equal(buf, "0f0000000000000000000000000000f0");
}

static void test_id_order(void **state)
{
	struct wk_id a = {5, 9}, b = {6, 1}, c = {6, 2};

	assert_true(wk_id_cmp(a, b) < 0);
	assert_true(wk_id_cmp(b, a) > 0);
	assert_true(wk_id_cmp(b, c) < 0);
	assert_int_equal(wk_id_cmp(c, c), 0);
	assert_true(wk_id_eq(c, (struct wk_id){6, 2}));
	assert_false(wk_id_eq(b, c));
	assert_true(wk_id_cmp(WK_ID_ROOT, a) < 0);
	assert_true(wk_id_cmp(a, WK_ID_NONE) < 0);
}

static void test_name_valid(void **state)
{
	char name[WK_NAME_MAX + 2];

	assert_true(wk_name_valid("a"));
	assert_true(wk_name_valid("notes.txt"));
	assert_true(wk_name_valid("..."));
	assert_true(wk_name_valid(".hidden"));
	assert_true(wk_name_valid("..x"));
	assert_true(wk_name_valid("a b\tc"));
	assert_true(wk_name_valid("caf\xc3\xa9"));
	/* The caller decides about ".wkfs": it depends on where it goes. */
	assert_true(wk_name_valid(".wkfs"));

	assert_false(wk_name_valid(""));
	assert_false(wk_name_valid("."));
	assert_false(wk_name_valid(".."));
	assert_false(wk_name_valid("/"));
	assert_false(wk_name_valid("a/b"));
	assert_false(wk_name_valid("a/"));
	assert_false(wk_name_valid("/a"));
	assert_false(wk_name_valid("../etc"));

	memset(name, 'n', sizeof(name));
	name[WK_NAME_MAX] = '\0';
	assert_int_equal(strlen(name), 255);
	assert_true(wk_name_valid(name));
	name[WK_NAME_MAX] = 'n';
	name[WK_NAME_MAX + 1] = '\0';
	assert_int_equal(strlen(name), 256);
	assert_false(wk_name_valid(name));

	/* 255 bytes with a slash at the very end. */
	name[WK_NAME_MAX] = '\0';
	name[WK_NAME_MAX - 1] = '/';
	assert_false(wk_name_valid(name));
}

/* Sanitizes in and checks the result is want (and valid unless empty). */
static void sanitized(const char *in, const char *want)
{
	char out[WK_DEVICE_MAX + 2];

	memset(out, 'X', sizeof(out));
	assert_int_equal(wk_device_sanitize(out, in), strlen(want));
	assert_string_equal(out, want);
	assert_int_equal(out[WK_DEVICE_MAX + 1], 'X');
	assert_true(want[0] == '\0' || wk_device_valid(out));
}

static void test_device_names(void **state)
{
	char name[WK_DEVICE_MAX + 2];

	assert_true(wk_device_valid("laptop"));
	assert_true(wk_device_valid("Desk-2.home_lan"));
	assert_true(wk_device_valid("x"));
	assert_true(wk_device_valid("a--b..c"));
	assert_false(wk_device_valid(""));
	assert_false(wk_device_valid("my laptop"));
	assert_false(wk_device_valid("-desk"));
	assert_false(wk_device_valid("desk."));
	assert_false(wk_device_valid(".desk"));
	assert_false(wk_device_valid("a/b"));
	assert_false(wk_device_valid("caf\xc3\xa9"));
	memset(name, 'n', sizeof(name));
	name[WK_DEVICE_MAX] = '\0';
	assert_true(wk_device_valid(name));
	name[WK_DEVICE_MAX] = 'n';
	name[WK_DEVICE_MAX + 1] = '\0';
	assert_false(wk_device_valid(name));

	/* Runs of other bytes become one '-'; edges are trimmed. */
	sanitized("laptop", "laptop");
	sanitized("my laptop", "my-laptop");
	sanitized("Zo\xc3\xab's  Mac!", "Zo-s-Mac");
	sanitized("tab/let", "tab-let");
	sanitized("  --.desk.--  ", "desk");
	sanitized("desk.example.org", "desk.example.org");
	sanitized("a--b", "a--b");
	sanitized("", "");
	sanitized("\xc3\xa9\xc3\xa9", "");
	sanitized("...", "");
	/* Cut to WK_DEVICE_MAX, then trimmed again. */
	sanitized("0123456789abcdef0123456789abcdef0123",
		  "0123456789abcdef0123456789abcdef");
	sanitized("0123456789abcdef0123456789abcde-xyz",
		  "0123456789abcdef0123456789abcde");
	sanitized("0123456789abcdef0123456789abcde xyz",
		  "0123456789abcdef0123456789abcde");
}

/* The one rule for modes from a remote (wk_remote_mode). */
static void test_remote_mode(void **state)
{
	struct wk_op op = {.kind = WK_OP_MKDIR, .mode = 07777};

	assert_int_equal(wk_remote_mode(07777, false), 0775);
	assert_int_equal(wk_remote_mode(07777, true), 0777);
	assert_int_equal(wk_remote_mode(04755, false), 0755);
	assert_int_equal(wk_remote_mode(02775, false), 0775);
	assert_int_equal(wk_remote_mode(01777, false), 0775);
	assert_int_equal(wk_remote_mode(0666, false), 0664);
	assert_int_equal(wk_remote_mode(0640, false), 0640);
	assert_int_equal(wk_remote_mode(0, true), 0);

	wk_op_mask_remote(&op, false);
	assert_int_equal(op.mode, 0775);
	op = (struct wk_op){.kind = WK_OP_CREATE, .mode = 06666};
	wk_op_mask_remote(&op, true);
	assert_int_equal(op.mode, 0666);
	op = (struct wk_op){
		.kind = WK_OP_SETATTR, .attrs = WK_ATTR_MODE, .mode = 04777};
	wk_op_mask_remote(&op, false);
	assert_int_equal(op.mode, 0775);
	/* a setattr of the mtime only, and other kinds: untouched */
	op = (struct wk_op){
		.kind = WK_OP_SETATTR, .attrs = WK_ATTR_MTIME, .mode = 07777};
	wk_op_mask_remote(&op, false);
	assert_int_equal(op.mode, 07777);
	op = (struct wk_op){.kind = WK_OP_PUT, .mode = 07777};
	wk_op_mask_remote(&op, false);
	assert_int_equal(op.mode, 07777);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_id_str),
		cmocka_unit_test(test_hash_str),
		cmocka_unit_test(test_id_order),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_device_names),
		cmocka_unit_test(test_remote_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
