#!/usr/bin/env bats
# 85-commands: the everyday commands on a real pair of replicas: A and B
# mounted in place against one wkfs-relay on 127.0.0.1, each with the
# wkfs-syncd its mount started.  status (text, --json field by field, exit
# codes), sync, stop, conflicts and their resolution, init --remote, the
# version handshake and a daemon killed with -9.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

W() { "$WKFS_BIN" "$@" </dev/null 3>&-; }

# js DIR FILTER: one field of `wkfs status DIR --json`, with jq.
js() { W status "$1" --json | jq -r ".folders[0]$2"; }

# the runtime directory of a folder mounted in place at $1
run_of() {
	local base f
	if [ "$(id -u)" = 0 ]; then base=/run/wkfs
	elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then base=$XDG_RUNTIME_DIR/wkfs
	else base=/tmp/wkfs-$(id -u); fi
	f=$(grep -lxF -- "$1" "$base"/*/path 2>/dev/null | head -n 1)
	[ -z "$f" ] || dirname "$f"
}

syncd_pid() { cat "$(run_of "$1")/syncd.pid" 2>/dev/null; }
has_syncd() { [ -n "$(syncd_pid "$1")" ] && kill -0 "$(syncd_pid "$1")"; }
field_is() { [ "$(js "$1" "$2")" = "$3" ]; }

setup() {
	DATA=$BATS_TEST_TMPDIR/data
	RLOG=$BATS_TEST_TMPDIR/relay.log
	umask 022
	mkdir -p "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	A=$(realpath "$BATS_TEST_TMPDIR/a")
	B=$(realpath "$BATS_TEST_TMPDIR/b")
	WK_DIRS+=("$A" "$B")
	start_relay
	TOK=$("$RELAY" --data "$DATA" folder add Notes)
	URL=ws://127.0.0.1:$PORT/Notes
}

teardown() {
	wk_teardown
	stop_relay
	if grep -E 'Sanitizer|runtime error' "$RLOG" >&2; then
		return 1
	fi
}

# pair: A (device laptop) and B (device desk), both mounted, both synced.
pair() {
	W init "$A" --remote "$URL" --token "$TOK" --device laptop >/dev/null
	W init "$B" --remote "$URL" --token "$TOK" --device desk >/dev/null
	wk_mount "$A"
	wk_mount "$B"
}

@test "init --remote writes the remote; bad remotes and tokens are refused" {
	run W init "$A" --remote "$URL" --token "$TOK"
	assert_success
	grep -qx "url = $URL" "$A/.wkfs/config.ini"
	grep -qx "token = $TOK" "$A/.wkfs/config.ini"
	run W init "$B" --remote "http://127.0.0.1:$PORT/Notes" --token "$TOK"
	assert_failure 2
	assert_output --partial 'ws://HOST:PORT/FOLDER'
	run W init "$B" --remote "$URL" --token abc
	assert_failure 2
	assert_output --partial '64 hex digits'
	run W init "$B" --token "$TOK"
	assert_failure 2
	[ ! -e "$B/.wkfs" ]
}

@test "the mount starts wkfs-syncd and the unmount stops it" {
	pair
	has_syncd "$A"
	has_syncd "$B"
	pid=$(syncd_pid "$A")
	wk_umount "$A"
	wait_until 20 not_running "$pid"
	[ ! -e "$(run_of "$A")/syncd.sock" ] || [ -z "$(run_of "$A")" ]
	# --no-syncd leaves it to the user
	wk_mount "$A" --no-syncd
	run ! has_syncd "$A"
}

@test "status of a synced pair: Synced, every field, exit 0" {
	pair
	echo hello >"$A/x.txt"
	run W sync "$A"
	assert_success
	assert_output --regexp "^$A: synced \\([0-9]+ ops sent"
	W sync "$B"
	[ "$(cat "$B/x.txt")" = hello ]
	run W status "$A"
	assert_success
	assert_line --index 0 --regexp "^$A +Synced$"
	assert_line --regexp '^  mount +mounted in place$'
	assert_line --regexp '^  daemon +running \(pid [0-9]+, version [0-9.]+\)$'
	assert_line --regexp "^  remote +relay $URL$"
	assert_line --regexp '^  connection +connected$'
	assert_line --regexp '^  pending +0 ops, 0 B not yet sent$'
	assert_line --regexp '^  conflicts +none$'
	assert_line --regexp '^  actor +[0-9a-f]{16} \(device laptop\)$'
	refute_output --partial "$TOK"
	run W status "$A" --json
	assert_success
	echo "$output" | jq -e --arg a "$A" --arg url "$URL" \
		--arg v "$(W --version | cut -d' ' -f2)" '
		.version == $v and (.folders | length) == 1 and
		(.folders[0] | .path == $a and .mountpoint == $a and
		 .summary == "Synced" and .needs_attention == false and
		 .mounted == true and .daemon.running == true and
		 (.daemon.pid | type) == "number" and .daemon.version == $v and
		 .remote.type == "relay" and .remote.url == $url and
		 .connection == "connected" and .pending.ops == 0 and
		 .pending.bytes == 0 and .waiting_to_apply == 0 and
		 .traffic.sent > 0 and .traffic.received > 0 and
		 (.last_sync | test("^20[0-9-]+T[0-9:.]+Z$")) and
		 .conflicts.count == 0 and .conflicts.paths == [] and
		 (.actor | test("^[0-9a-f]{16}$")) and .device == "laptop" and
		 .error == null)'
	# the actor is the database's
	actor=$(js "$A" .actor)
	W log "$A" --json | grep -q "\"actor\":\"$actor\""
}

@test "status with no DIR lists every mounted folder; DIR defaults to the current folder" {
	pair
	# (other folders mounted on this machine may need attention: the
	# exit status is theirs too)
	run W status --json
	echo "$output" | jq -e --arg a "$A" --arg b "$B" '
		[.folders[] | select(.path == $a or .path == $b) | .summary]
		== ["Synced", "Synced"]'
	mkdir "$A/sub"
	cd "$A/sub"
	run W status --json
	echo "$output" | jq -e --arg a "$A" '.folders | length >= 2'
	run "$WKFS_BIN" status . --json
	assert_success
	echo "$output" | jq -e --arg a "$A" '.folders[0].path == $a'
}

@test "stop: status says not running, needs attention (exit 3); sync starts it again" {
	pair
	run W stop "$A"
	assert_success
	assert_output "$A: wkfs-syncd stopped"
	run W status "$A"
	assert_failure 3
	assert_line --index 0 --regexp "^$A +Needs attention$"
	assert_line --regexp "^  daemon +not running"
	assert_line --regexp '^  connection +unknown \(no daemon\)$'
	field_is "$A" .daemon.running false
	field_is "$A" .connection null
	# the database still tells what is pending, read-only
	echo offline >"$A/y.txt"
	wait_until 30 field_is "$A" .pending.ops 2
	run W stop "$A"
	assert_output "$A: wkfs-syncd is not running"
	run W sync "$A"
	assert_success
	has_syncd "$A"
	field_is "$A" .pending.ops 0
	W sync "$B"
	[ "$(cat "$B/y.txt")" = offline ]
}

@test "a daemon killed with -9: stale files cleaned, not running until restarted" {
	pair
	run_dir=$(run_of "$A")
	pid=$(syncd_pid "$A")
	kill -9 "$pid"
	wait_until 10 not_running "$pid"
	[ -e "$run_dir/syncd.pid" ]
	[ -e "$run_dir/syncd.sock" ]
	run W status "$A"
	assert_failure 3
	assert_line --regexp "^  daemon +not running"
	[ ! -e "$run_dir/syncd.pid" ]
	[ ! -e "$run_dir/syncd.sock" ]
	run W sync "$A"
	assert_success
	[ "$(syncd_pid "$A")" != "$pid" ]
	has_syncd "$A"
}

@test "version handshake: a newer wkfs restarts an older daemon" {
	pair
	W stop "$A"
	WKFS_TEST_VERSION=0.0.1 "$SYNCD" "$A" </dev/null 3>&-
	wait_until 20 field_is "$A" .daemon.version 0.0.1
	old=$(syncd_pid "$A")
	run W sync "$A"
	assert_success
	assert_output --partial 'restarted an older wkfs-syncd'
	[ "$(syncd_pid "$A")" != "$old" ]
	field_is "$A" .daemon.version "$(W --version | cut -d' ' -f2)"
}

@test "a wrong token: status says auth failed, exit 3; sync fails with the reason" {
	W init "$A" --remote "$URL" --token "$(printf '%064d' 7)" >/dev/null
	wk_mount "$A"
	wait_until 30 field_is "$A" .connection "auth failed"
	run W status "$A"
	assert_failure 3
	assert_line --regexp '^  connection +auth failed: .*auth'
	field_is "$A" .summary "Needs attention"
	run W sync "$A" --timeout 30
	assert_failure 1
	assert_output --partial 'sync failed'
	assert_output --partial 'auth'
}

@test "relay gone: Offline (exit 0), sync fails in one line, back when it returns" {
	pair
	stop_relay
	wait_until 30 field_is "$A" .connection offline
	run W status "$A"
	assert_success
	assert_line --index 0 --regexp "^$A +Offline$"
	echo queued >"$A/q.txt"
	run W sync "$A" --timeout 30
	assert_failure 1
	assert_output --regexp "^wkfs: $A: sync failed: "
	start_relay "127.0.0.1:$PORT"
	run W sync "$A" --timeout 60
	assert_success
	W sync "$B" --timeout 60
	[ "$(cat "$B/q.txt")" = queued ]
	field_is "$A" .connection connected
}

# conflict: the same file edited on A and B while B's daemon is stopped.
conflict() {
	pair
	echo base >"$A/n.txt"
	W sync "$A"
	W sync "$B"
	W stop "$B"
	echo from-a >"$A/n.txt"
	W sync "$A"
	echo from-b >"$B/n.txt"
	W sync "$B"
	W sync "$A"
	COPY=$(cd "$A" && ls | grep '^n\.conflict-')
	[ -n "$COPY" ]
	[ -e "$B/$COPY" ]
}

@test "conflicts: listed with both sides, status needs attention" {
	conflict
	run W conflicts "$A"
	assert_success
	assert_line --index 0 "$COPY"
	assert_line --index 1 '  belongs to n.txt'
	assert_line --regexp '^  copy: actor [0-9a-f]{16} at 20[-0-9T:.]+Z, [0-9]+ bytes$'
	run W conflicts "$B" --json
	assert_success
	echo "$output" | jq -e --arg c "$COPY" '.conflicts | length == 1 and
		.[0].copy == $c and .[0].file == "n.txt" and
		(.[0].copy_version.actor | test("^[0-9a-f]{16}$")) and
		(.[0].file_version.time | test("Z$")) and
		.[0].copy_version.actor != .[0].file_version.actor'
	run W status "$A"
	assert_failure 3
	assert_line --regexp "^  conflicts +$COPY$"
	field_is "$A" .conflicts.count 1
	field_is "$A" ".conflicts.paths[0]" "$COPY"
}

@test "a folder holding a conflict copy mounts again, the copy still known" {
	conflict
	wk_umount "$A"
	wk_mount "$A"
	run W conflicts "$A"
	assert_success
	assert_line --index 0 "$COPY"
	[ -e "$A/$COPY" ]
}

@test "conflicts --resolve --keep theirs: the copy's content wins everywhere" {
	conflict
	theirs=$(cat "$A/$COPY")
	run W conflicts "$A" --resolve "$A/$COPY" --keep theirs
	assert_success
	[ "$(cat "$A/n.txt")" = "$theirs" ]
	[ ! -e "$A/$COPY" ]
	W sync "$A"
	W sync "$B"
	[ "$(cat "$B/n.txt")" = "$theirs" ]
	[ ! -e "$B/$COPY" ]
	run W conflicts "$B"
	assert_output 'no conflicts'
	field_is "$A" .summary Synced
}

@test "conflicts --resolve --keep mine, and --keep both" {
	conflict
	mine=$(cat "$A/n.txt")
	cd "$A"
	run "$WKFS_BIN" conflicts --resolve "$COPY" --keep mine
	assert_success
	[ ! -e "$A/$COPY" ]
	W sync "$A"
	W sync "$B"
	[ ! -e "$B/$COPY" ]
	[ "$(cat "$B/n.txt")" = "$mine" ]
	cd "$BATS_TEST_TMPDIR"

	# a second conflict, kept as two files
	W stop "$B"
	echo a2 >"$A/n.txt"
	W sync "$A"
	echo b2 >"$B/n.txt"
	W sync "$B"
	W sync "$A"
	COPY=$(cd "$A" && ls | grep '^n\.conflict-')
	run W conflicts "$A" --resolve "$A/n.txt" --keep both
	assert_success
	run W conflicts "$A"
	assert_output 'no conflicts'
	[ -e "$A/$COPY" ]
	W sync "$A"
	W sync "$B"
	[ -e "$B/$COPY" ]
	run W conflicts "$B"
	assert_output 'no conflicts'
	cmp "$A/$COPY" "$B/$COPY"
}

@test "not mounted: status says so (exit 0) from the database alone" {
	W init "$A" --remote "$URL" --token "$TOK" >/dev/null
	run W status "$A"
	assert_success
	assert_line --index 0 --regexp "^$A +Not mounted$"
	assert_line --regexp '^  conflicts +unknown \(not mounted\)$'
	W status "$A" --json | jq -e '.folders[0] | .mounted == false and
		.mountpoint == null and .conflicts.count == null and
		.pending.ops == 0 and .daemon.running == false'
	run W conflicts "$A"
	assert_failure 1
	assert_output --partial 'is not mounted'
}

@test "usage and bad input: exit 2 or 1 with one line" {
	run W status --bogus
	assert_failure 2
	run W sync "$A" "$B"
	assert_failure 2
	run W status "$BATS_TEST_TMPDIR/nowhere"
	assert_failure 1
	assert_output --partial 'nowhere'
	mkdir "$BATS_TEST_TMPDIR/plain"
	run W sync "$BATS_TEST_TMPDIR/plain"
	assert_failure 1
	assert_output --partial 'not in a synced folder'
	run W conflicts "$A" --resolve x
	assert_failure 2
	run W conflicts "$A" --resolve x --keep neither
	assert_failure 2
	run W help sync
	assert_success
	assert_line --index 0 --partial 'usage: wkfs sync [DIR]'
	run W help nosuch
	assert_failure 2
	W init "$A" >/dev/null
	run W sync "$A"
	assert_success
	assert_output --partial 'local only'
}

@test "log with no DIR: the folder around the current directory" {
	pair
	mkdir "$A/deep"
	echo x >"$A/deep/f"
	cd "$A/deep"
	wait_until 30 bash -c '"$WKFS_BIN" log --json | grep -q "\"path\":\"deep/f\""'
	run "$WKFS_BIN" log -n 1
	assert_success
	assert_output --partial 'deep/f'
	cd "$BATS_TEST_TMPDIR"
	run "$WKFS_BIN" log
	assert_failure 1
	assert_output --partial 'not in a synced folder'
}
