#!/usr/bin/env bats
# 81-held: no remote op waits forever on another (invariant 7).  A put
# whose content never comes is held back, with the path and the reason in
# `wkfs status`, `wkfs sync` and `wkfs log`; everything after it goes on;
# a later op of the file (or the content) resolves it; and a new file whose
# content never came is never shown as an empty stand-in.  Real mounts, a
# real relay on 127.0.0.1, each replica with its own wkfs-syncd.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=60

setup() { replicas_setup; }
teardown() {
	[ -n "${HOLDER:-}" ] && kill "$HOLDER" 2>/dev/null
	[ -n "${HOLDER:-}" ] && wait "$HOLDER" 2>/dev/null
	replicas_teardown
}

status_json() { "$WKFS_BIN" status "$1" --json </dev/null 3>&-; }
summary_is() { [ "$(status_json "$1" | jq -r '.folders[0].summary')" = "$2" ]; }

# wait_summary DIR SUMMARY: waits (30 s) until status says SUMMARY; shows
# the whole status when it does not.
wait_summary() {
	wait_until 30 summary_is "$1" "$2" && return 0
	"$WKFS_BIN" status "$1" >&2
	status_json "$1" >&2
	return 1
}
has_file() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }

# hold_open FILE TEXT: writes FILE and closes it (a put), then opens it
# again and writes TEXT without closing: the mount records no put for
# TEXT until the close.  HOLDER is the process; it closes when
# $T/release appears.
hold_open() {
	"$PY" - "$1" "$2" "$T/release" "$T/held" <<'PYEOF' &
import os, sys, time
path, text, release, ready = sys.argv[1:]
with open(path, "w") as f:
    f.write("first\n")
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
# No fsync: that would record a put of TEXT.
os.write(fd, text.encode())
open(ready, "w").close()
while not os.path.exists(release):
    time.sleep(0.05)
os.close(fd)
PYEOF
	HOLDER=$!
	wait_until 10 test -e "$T/held"
}

@test "a file created and deleted while offline does not stall the next changes" {
	replica b
	replica c
	stop_syncd b
	echo draft >"$B/tmp.txt"
	rm "$B/tmp.txt"
	start_syncd b
	run "$WKFS_BIN" sync "$B"
	assert_success
	echo two >"$B/later.txt"
	wait_until "$SYNC_WAIT" has_file "$C/later.txt" two
	[ ! -e "$C/tmp.txt" ]
	wait_summary "$C" Synced
	run "$WKFS_BIN" sync "$C"
	assert_success
	wait_same "$SYNC_WAIT" "$B" "$C"
}

@test "a put whose content never came is held, shown, and resolved by the next put" {
	replica b
	replica c
	echo old >"$B/doc.txt"
	wait_until "$SYNC_WAIT" has_file "$C/doc.txt" old
	# B's daemon ships the put of "first" only after the file holds
	# something else: it ships it without content.
	stop_syncd b
	hold_open "$B/doc.txt" "second, still open"
	start_syncd b
	echo after >"$B/after.txt"
	# What came after the contentless put is applied...
	wait_until "$SYNC_WAIT" has_file "$C/after.txt" after
	# ...and the file keeps its last good content, named in status.
	run cat "$C/doc.txt"
	assert_output old
	wait_summary "$C" "Needs attention"
	run status_json "$C"
	assert_output --partial '"path":"doc.txt"'
	assert_output --partial 'content never arrived'
	run "$WKFS_BIN" status "$C"
	assert_output --partial 'doc.txt (put)'
	run "$WKFS_BIN" sync "$C"
	assert_failure
	assert_output --partial 'cannot be applied'
	run "$WKFS_BIN" log "$C"
	assert_output --partial '[not applied: its content never arrived'
	# The close records the put that supersedes it: resolved everywhere.
	touch "$T/release"
	wait "$HOLDER"
	HOLDER=
	wait_until "$SYNC_WAIT" has_file "$C/doc.txt" "second, still open"
	wait_summary "$C" Synced
	run "$WKFS_BIN" sync "$C"
	assert_success
	run "$WKFS_BIN" log "$C"
	refute_output --partial 'not applied'
	wait_same "$SYNC_WAIT" "$B" "$C"
}

@test "a new file whose content never came is not shown as an empty placeholder" {
	replica b
	replica c
	stop_syncd b
	hold_open "$B/new.txt" "real content"
	start_syncd b
	echo after >"$B/after.txt"
	wait_until "$SYNC_WAIT" has_file "$C/after.txt" after
	# No empty new.txt on C that an editor could save back.
	[ ! -e "$C/new.txt" ]
	wait_summary "$C" "Needs attention"
	run status_json "$C"
	assert_output --partial '"path":"new.txt"'
	# It survives a remount of C, still held.
	stop_syncd c
	wk_umount "$C"
	replica_mount c
	start_syncd c
	[ ! -e "$C/new.txt" ]
	run status_json "$C"
	assert_output --partial '"path":"new.txt"'
	touch "$T/release"
	wait "$HOLDER"
	HOLDER=
	wait_until "$SYNC_WAIT" has_file "$C/new.txt" "real content"
	wait_summary "$C" Synced
	wait_same "$SYNC_WAIT" "$B" "$C"
}

@test "a fresh replica fetches only the versions that count" {
	replica a
	for i in 1 2 3 4 5; do
		head -c 400000 /dev/urandom >"$A/big.bin"
		wait_until 30 all_shipped "$A"
	done
	replica c
	wait_same "$SYNC_WAIT" "$A" "$C"
	# Five versions on the relay, four superseded: one content fetched.
	run grep -c '^.*content [0-9a-f]*: ' "$T/c.syncd.log"
	assert_output 1
	run grep -c 'refusing the content' "$T/c.syncd.log"
	assert_output 0
}

@test "a version that lost a conflict before it was shipped still ships its content" {
	replica a
	replica b
	echo base >"$A/f.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	# B saves while its daemon is away; A saves later and ships; B's
	# mount then takes A's save (as its daemon would have) before B's
	# own is shipped: B's version is now the conflict copy on B, and
	# the file's content is A's.
	stop_syncd b
	echo from-b >"$B/f.txt"
	sleep 0.05
	echo from-a >"$A/f.txt"
	wait_until 30 all_shipped "$A"
	run "$WKFS_BIN" debug import "$A" "$B"
	[ "$status" = 0 ]
	has_file "$B/f.txt" from-a
	run grep -lx from-b "$B"/f.conflict-*
	[ "$status" = 0 ]
	# Shipped from the copy: A gets B's version, and nothing waits.
	start_syncd b
	wait_same "$SYNC_WAIT" "$A" "$B"
	wait_summary "$A" "Needs attention"
	run "$WKFS_BIN" status "$A" --json
	[ "$(jq -r '.folders[0].not_applied | length' <<<"$output")" = 0 ]
	run grep -lx from-b "$A"/f.conflict-*
	[ "$status" = 0 ]
}

@test "a put ships its content when the file holds it, even if the nodes table lags" {
	# A mounted beside its folder, so that the test reaches .wkfs.
	local ma=$BATS_TEST_TMPDIR/ma
	mkdir "$ma"
	replica_init a
	wk_mount "$A" "$ma" --no-syncd
	start_syncd a
	replica b
	echo base >"$ma/f.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	stop_syncd a
	echo new >"$ma/f.txt"
	wait_until 30 [ "$(unshipped "$A")" -gt 0 ]
	# The nodes table names other content for the file (as it did for a
	# moment after a remote remove of a file written again at once).
	sqlite3 "$A/.wkfs/wkfs.db" \
		"UPDATE nodes SET hash = zeroblob(16) WHERE name = 'f.txt'"
	start_syncd a
	wait_until "$SYNC_WAIT" has_file "$B/f.txt" new
	wait_until 30 all_shipped "$A"
	# Or has no row for it at all (a move above it on its way): the
	# file at the put's place is read.
	stop_syncd a
	echo newer >"$ma/f.txt"
	wait_until 30 [ "$(unshipped "$A")" -gt 0 ]
	sqlite3 "$A/.wkfs/wkfs.db" "DELETE FROM nodes WHERE name = 'f.txt'"
	start_syncd a
	wait_until "$SYNC_WAIT" has_file "$B/f.txt" newer
	wait_until 30 all_shipped "$A"
	run status_json "$B"
	[ "$(jq -r '.folders[0].not_applied | length' <<<"$output")" = 0 ]
}
