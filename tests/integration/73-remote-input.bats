#!/usr/bin/env bats
# 73-remote-input: what other replicas and peers send is held to this
# replica's rules.  Modes from a remote lose setuid, setgid and sticky,
# and write for others unless [sync] world-writable = yes (wk_remote_mode
# in lib/op.h); names from a remote print escaped (lib/termesc.h), and so
# does a client's text in the relay's log.  Replicas exchange with `wkfs
# debug import` (standing in for wkfs-syncd) and a made-up remote op
# (`wkfs debug inject`); the relay is the real one on 127.0.0.1.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
RT=$WKFS_BUILD/wkfs-relay-test

load relay

setup() {
	umask 022
	T=$(realpath "$BATS_TEST_TMPDIR")
	A=$T/a B=$T/b C=$T/c
	mkdir -p "$A" "$B" "$C"
	WK_DIRS+=("$A" "$B" "$C")
	DATA=$T/data
	RLOG=$T/relay.log
}

teardown() {
	wk_teardown
	stop_relay
	if [ -e "$RLOG" ] && grep -E 'Sanitizer|runtime error' "$RLOG" >&2; then
		return 1
	fi
}

# import SRC DST: SRC's ops into DST, all applied.
import() {
	run "$WKFS_BIN" debug import "$1" "$2"
	assert_success
	assert_output --regexp $'(^|\n)imported [0-9]+ applied [0-9]+ 0$'
}

mode() { stat -c %a "$1"; }

@test "modes from a remote lose setuid, setgid and sticky, and o+w unless world-writable = yes" {
	wk_init "$A" --device a
	wk_init "$B" --device b
	wk_mount "$A"
	wk_mount "$B"
	mkdir "$A/d"
	chmod 7777 "$A/d"
	echo x >"$A/f"
	chmod 7777 "$A/f"
	echo shared >"$A/w"
	chmod 666 "$A/w"
	# A's own ops keep what its user gave
	assert_equal "$(mode "$A/d")" 7777
	assert_equal "$(mode "$A/f")" 7777
	D=$A wait_op setattr f
	D=$A wait_op setattr w
	import "$A" "$B"
	assert_equal "$(mode "$B/d")" 775
	assert_equal "$(mode "$B/f")" 775
	assert_equal "$(mode "$B/w")" 664
	# C allows world-write
	wk_init "$C" --device c
	printf '[sync]\nworld-writable = yes\n' >>"$C/.wkfs/config.ini"
	wk_mount "$C"
	import "$A" "$C"
	assert_equal "$(mode "$C/d")" 777
	assert_equal "$(mode "$C/f")" 777
	assert_equal "$(mode "$C/w")" 666
	# the oplog keeps what the op said
	run "$WKFS_BIN" log "$B"
	assert_output --partial "f mode=07777"
	# a peer's mkdir and create with every bit, straight into the oplog
	run "$WKFS_BIN" debug inject "$B" mkdir:7777 dir7
	assert_success
	run "$WKFS_BIN" debug inject "$B" create:6666 file6
	assert_success
	assert_equal "$(mode "$B/dir7")" 775
	assert_equal "$(mode "$B/file6")" 664
	# what the mount's engine holds agrees with the disk: a remount's
	# scan finds no change of B's own to record
	wk_umount "$B"
	wk_mount "$B"
	assert_equal "$(mode "$B/dir7")" 775
	assert_equal "$(mode "$B/d")" 775
	assert_equal "$(wkfs_ops "$B" | grep -c '"origin":"local"')" 0
}

@test "a name with ESC and a newline from another replica prints escaped in wkfs log" {
	wk_init "$A" --device a
	wk_init "$B" --device b
	wk_mount "$A"
	wk_mount "$B"
	name=$'evil\e[31mred\nline\x07'
	echo boo >"$A/$name"
	ln -s "$name" "$A/link"
	D=$A wait_op put "$name"
	import "$A" "$B"
	[ -f "$B/$name" ]
	run "$WKFS_BIN" log "$B"
	assert_success
	assert_output --partial 'create  evil\e[31mred\nline\x07'
	assert_output --partial 'target=evil\e[31mred\nline\x07'
	[[ $output != *$'\e'* ]]
	[[ $output != *$'\a'* ]]
	# one line per op: no newline of the name's own
	assert_equal "${#lines[@]}" "$(wkfs_ops "$B" | wc -l)"
	# JSON keeps the name, as JSON escapes
	run "$WKFS_BIN" log "$B" --json
	assert_output --partial '"name":"evil\u001b[31mred\u000aline\u0007"'
}

@test "an unauthenticated client's ERROR text lands escaped in the relay's log" {
	start_relay
	# ERROR (0xff), code 1, then the reason: ESC sequences and a newline
	# that would forge a line of the log
	hex=$("$PY" -c '
import struct
r = b"bye\x1b[2J\x1b]0;pwned\x07\nwkfs-relay: FORGED line"
print((b"\xff" + struct.pack("<HI", 1, len(r)) + r).hex())')
	run "$RT" --timeout 5 raw "ws://127.0.0.1:$PORT/Notes" "$hex"
	assert_failure 3
	wait_until 10 grep -q 'the client gave up' "$RLOG"
	run grep 'FORGED' "$RLOG"
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_output --partial 'the client gave up: bye\e[2J\e]0;pwned\x07\nwkfs-relay: FORGED line'
	run grep -c $'\e' "$RLOG"
	assert_output 0
	run grep '^wkfs-relay: FORGED' "$RLOG"
	assert_failure
}
