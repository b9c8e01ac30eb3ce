#!/usr/bin/env bats
# 90-man: the man pages in docs/man lint clean (`make lint-man`: mandoc -T
# lint -W warning, any output fails), and they keep up with the code: every
# config key, mount option and long option the code knows is documented.

load helpers

setup() {
	ROOT=$(realpath "$BATS_TEST_DIRNAME/../..")
	MAN=$ROOT/docs/man
}

lint_man() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$ROOT" --no-print-directory -s lint-man "$@" </dev/null 3>&-
}

# long_opts FILE...: the long options of the getopt_long tables in FILE.
long_opts() {
	grep -ho '{"[a-z][a-z-]*", *\(no\|required\|optional\)_argument' "$@" |
		sed 's/{"\([^"]*\)".*/\1/' | sort -u
}

# documented PAGE OPTION...: each --OPTION appears as a flag (Fl \-OPTION)
# in PAGE; names the ones missing.
documented() {
	local page=$1 o missing=()
	shift
	for o in "$@"; do
		grep -q "Fl \\\\-${o//-/\\\\-}\\b" "$MAN/$page" || missing+=("--$o")
	done
	[ ${#missing[@]} = 0 ] || { echo "$page lacks ${missing[*]}" >&2; return 1; }
}

@test "the man pages lint clean" {
	run lint_man
	assert_success
	assert_output ""
}

@test "the lint fails on a page with a warning" {
	printf '.Dd November 23, 2025\n.Dt BAD 1\n.Os\n.Sh NAME\n.Nm bad\n.Nd bad\n.Sh DESCRIPTION\n.Xr nonesuch\n' \
		>"$BATS_TEST_TMPDIR/bad.1"
	run lint_man MAN_PAGES="$BATS_TEST_TMPDIR/bad.1"
	assert_failure
	assert_output --partial "bad.1"
}

@test "wkfs.conf(5) documents every section and key of lib/config.c" {
	keys=$(sed -n 's/^\t\[KEY_[A-Z]*\] = {"\([a-z]*\)", "\([a-z]*\)".*/\1 \2/p' \
		"$ROOT/lib/config.c")
	[ -n "$keys" ]
	while read -r section key; do
		grep -qx "\\.Ss \\[$section\\]" "$MAN/wkfs.conf.5" ||
			{ echo "no [$section]" >&2; return 1; }
		# the key, in the list of its section
		sed -n "/^\\.Ss \\[$section\\]/,/^\\.S[sh] /p" "$MAN/wkfs.conf.5" |
			grep -q "^\\.It Cm $key No = " ||
			{ echo "no $key in [$section]" >&2; return 1; }
	done <<<"$keys"
}

@test "wkfs(1) documents every mount option of fs/mount.c" {
	opts=$(sed -n '/^static const char \*const \(passed\|dropped\)_opts/,/};/p' \
		"$ROOT/fs/mount.c" | grep -o '"[^"]*"' | tr -d '"')
	[ -n "$opts" ]
	# the section, its continued lines joined
	section=$(sed -n '/^\.Sh MOUNT OPTIONS/,/^\.Sh /p' "$MAN/wkfs.1" |
		sed -e ':a' -e '/\\$/N; s/\\\n//; ta')
	for o in $opts; do
		grep -qE "(Cm|,) ${o}( |\$)" <<<"$section" ||
			{ echo "MOUNT OPTIONS lacks $o" >&2; return 1; }
	done
}

@test "wkfs(1) documents every command 'wkfs help' lists" {
	run "$WKFS_BIN" help
	assert_success
	cmds=$(sed -n 's/^  \([a-z][a-z]*\) .*/\1/p' <<<"$output" | grep -vx wkfs)
	[ -n "$cmds" ]
	man=$(sed -n '/^\.Sh COMMANDS/,/^\.Sh /p' "$MAN/wkfs.1" |
		awk '/^\.Bl/ { d++ } /^\.El/ { d-- }
			d == 1 && $1 == ".It" && $2 == "Cm" { print $3 }')
	for c in $cmds; do
		grep -qx "$c" <<<"$man" || { echo "wkfs(1) lacks $c" >&2; return 1; }
	done
}

@test "wkfs(1) documents every long option of the wkfs command" {
	documented wkfs.1 $(long_opts "$ROOT"/tools/*.c "$ROOT/fs/mount.c")
}

@test "wkfs-syncd(8) documents every long option of wkfs-syncd" {
	documented wkfs-syncd.8 $(long_opts "$ROOT/syncd/syncd_main.c")
}

@test "wkfs-relay(8) documents every long option of wkfs-relay" {
	documented wkfs-relay.8 $(long_opts "$ROOT/syncd/relay_main.c")
}

@test "the documented check fails on an undocumented option" {
	run documented wkfs.1 json colour
	assert_failure
	assert_output --partial "lacks --colour"
}
