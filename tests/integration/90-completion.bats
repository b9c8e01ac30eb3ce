#!/usr/bin/env bats
# 90-completion: contrib/bash-completion/wkfs, sourced and asked the way
# bash asks it: COMP_WORDS and COMP_CWORD set, _wkfs called, COMPREPLY read.

load helpers

setup() {
	ROOT=$(realpath "$BATS_TEST_DIRNAME/../..")
	# shellcheck source=../../contrib/bash-completion/wkfs
	source "$ROOT/contrib/bash-completion/wkfs"
}

# completions WORD...: what completing the last WORD (may be "") of the
# command line "wkfs WORD..." offers, sorted, one per line.
completions() {
	COMP_WORDS=(wkfs "$@")
	COMP_CWORD=$#
	COMP_LINE="wkfs $*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_wkfs
	[ ${#COMPREPLY[@]} = 0 ] || printf '%s\n' "${COMPREPLY[@]}" | sort
}

# words LIST: LIST sorted, one per line.
words() { printf '%s\n' $1 | sort; }

@test "the completion is registered for wkfs" {
	run complete -p wkfs
	assert_output "complete -F _wkfs wkfs"
}

@test "the first word completes to the commands" {
	run completions ""
	assert_output "$(words "conflicts help history hooks init log mount restore status stop sync umount")"
	run completions s
	assert_output "$(words "status stop sync")"
	run completions --v
	assert_output --version
}

@test "each command completes its own options" {
	run completions mount --
	assert_output "$(words "--accept-deletions --help --no-syncd")"
	run completions log -
	assert_output "$(words "--json -n")"
	run completions status --
	assert_output "$(words "--interval --json --watch")"
	run completions init /tmp/x --
	assert_output "$(words "--ca --device --hooks --insecure --remote --token --token-file")"
	run completions hooks ""
	assert_output "$(words "install remove")"
	run completions conflicts --re
	assert_output --resolve
	run completions sync --
	assert_output --timeout
}

@test "--keep completes to mine, theirs and both" {
	run completions conflicts --resolve notes.txt --keep ""
	assert_output "$(words "both mine theirs")"
	run completions conflicts --resolve notes.txt --keep t
	assert_output theirs
}

@test "a folder argument completes to directories only" {
	cd "$BATS_TEST_TMPDIR"
	mkdir -p Notes Nothing/deeper Music
	touch Notes.txt Nfile
	run completions mount N
	assert_output "$(words "Notes Nothing")"
	run completions status Nothing/
	assert_output Nothing/deeper
	run completions umount ""
	assert_output "$(words "Music Notes Nothing")"
}

@test "-o completes mount options, one after the other" {
	run completions mount ~/Notes -o noat
	assert_output noatime
	run completions mount ~/Notes -o ro,nos
	assert_output ro,nosuid
	run completions mount ~/Notes -o x-
	assert_output x-systemd.automount
}

@test "values that are free text complete to nothing" {
	run completions init ~/Notes --remote ""
	assert_output ""
	run completions log -n ""
	assert_output ""
}

@test "help completes to the commands" {
	run completions help u
	assert_output umount
}

# The lists in the completion must follow the code and the manual.

@test "the completion knows every mount option of fs/mount.c" {
	code=$(sed -n '/^static const char \*const \(passed\|dropped\)_opts/,/};/p' \
		"$ROOT/fs/mount.c" | grep -o '"[^"]*"' | tr -d '"' |
		sed 's/^x-$/x-systemd.automount/' | sort)
	[ -n "$code" ]
	assert_equal "$(words "$_wkfs_mount_opts")" "$code"
}

@test "the completion knows every command of wkfs(1)" {
	# the .It Cm entries of the section's outer list, not nested ones
	man=$(sed -n '/^\.Sh COMMANDS/,/^\.Sh /p' "$ROOT/docs/man/wkfs.1" |
		awk '/^\.Bl/ { d++ } /^\.El/ { d-- }
			d == 1 && $1 == ".It" && $2 == "Cm" { print $3 }' |
		sort -u)
	[ -n "$man" ]
	assert_equal "$(words "$_wkfs_commands")" "$man"
}
