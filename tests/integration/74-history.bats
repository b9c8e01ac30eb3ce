#!/usr/bin/env bats
# 74-history: `wkfs history` and `wkfs restore` on two folders mounted in
# place, each with its own wkfs-syncd, meeting at one wkfs-relay on
# 127.0.0.1.  Edits, moves, deletes and a conflict are made on both sides;
# the history must name each version the same way on both replicas, and a
# restore made on one must reach the other byte for byte.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=60

setup() { replicas_setup; }
teardown() { replicas_teardown; }

# hist DIR PATH: "kind path[<-from] device" per version, from --json.
hist() {
	(cd "$1" && "$WKFS_BIN" history --json "$2") | "$PY" -c '
import json, sys
for line in sys.stdin:
    v = json.loads(line)
    frm = "<-" + v["from"] if "from" in v else ""
    print(v["version"], v["kind"], v["path"] + frm, v["device"])'
}

# hist_same PATH: A and B tell the same history of PATH (where the content
# is may differ: each replica holds its own files).
hist_same() { [ "$(hist "$A" "$1")" = "$(hist "$B" "$1")" ]; }

# hist_field DIR PATH N FIELD: FIELD of version N in --json.
hist_field() {
	(cd "$1" && "$WKFS_BIN" history --json "$2") | "$PY" -c '
import json, sys
n, f = int(sys.argv[1]), sys.argv[2]
for line in sys.stdin:
    v = json.loads(line)
    if v["version"] == n:
        print(v.get(f, ""))' "$3" "$4"
}

@test "history follows a file through edits on both replicas, a move and a delete" {
	replica a
	replica b
	printf 'one\n' >"$A/notes.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	printf 'two\n' >>"$B/notes.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	mkdir "$A/old"
	mv "$A/notes.txt" "$A/old/kept.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"

	run hist "$A" old/kept.txt
	assert_success
	assert_output "1 create notes.txt a
2 save notes.txt a
3 save notes.txt b
4 move old/kept.txt<-notes.txt a"
	# by its old name too, and the same on B
	assert_equal "$(hist "$A" notes.txt)" "$output"
	wait_until "$SYNC_WAIT" hist_same old/kept.txt

	# the text form: sizes, and the current version is at hand
	run "$WKFS_BIN" history "$A/old/kept.txt"
	assert_success
	assert_line --index 2 --regexp '^3 +[0-9T:.-]+Z b +save +8 B here +notes.txt$'
	assert_line --index 3 --regexp ' a +move +8 B here +old/kept.txt <- notes.txt$'
	# the first save was overwritten on both sides, but the relay has it
	assert_equal "$(hist_field "$A" old/kept.txt 2 content)" relay
	assert_equal "$(hist_field "$A" old/kept.txt 2 size)" 4

	rm "$B/old/kept.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	run hist "$A" old/kept.txt
	assert_line --index 4 "5 delete old/kept.txt b"
	# a directory's history holds its entries
	run hist "$A" old
	assert_output "1 create notes.txt a
2 save notes.txt a
3 save notes.txt b
4 mkdir old a
5 move old/kept.txt<-notes.txt a
6 delete old/kept.txt b"
}

@test "history marks the version that lost a concurrent edit as a conflict copy" {
	replica a
	replica b
	echo base >"$A/both.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	stop_syncd b
	echo from-a >"$A/both.txt"
	echo from-b >"$B/both.txt"
	wait_until "$SYNC_WAIT" all_shipped "$A"
	start_syncd b
	wait_same "$SYNC_WAIT" "$A" "$B"

	run hist "$A" both.txt
	assert_success
	assert_line --index 0 "1 create both.txt a"
	assert_line --index 1 "2 save both.txt a"
	# the two concurrent saves, in (hlc, actor) order: the older lost
	local edits
	edits=$(grep -E '^[0-9]+ (save|conflict copy) ' <<<"$output" |
		tail -n 2 | cut -d' ' -f2-)
	[[ "$edits" == $'conflict copy both.txt a\nsave both.txt b' ||
		"$edits" == $'conflict copy both.txt b\nsave both.txt a' ]]
	[ "$(grep -c 'conflict copy' <<<"$output")" = 1 ]
	wait_until "$SYNC_WAIT" hist_same both.txt
	# the losing content is the conflict copy's, at hand on both sides
	local n
	n=$(grep 'conflict copy' <<<"$output" | cut -d' ' -f1)
	assert_equal "$(hist_field "$A" both.txt "$n" content)" here
	assert_equal "$(hist_field "$B" both.txt "$n" content)" here
}

@test "history errors: unknown path, outside the folder, bad usage" {
	replica_init a
	replica_mount a
	run "$WKFS_BIN" history "$A/never-was"
	assert_failure 1
	assert_output "wkfs: $A/never-was: no such file or directory, now or in the history of $A"
	run "$WKFS_BIN" history "$T"
	assert_failure 1
	assert_output --partial 'is not in a synced folder'
	run "$WKFS_BIN" history "$A/.wkfs/config.ini"
	assert_failure 1
	assert_output --partial "sidecar"
	run "$WKFS_BIN" history
	assert_failure 2
	assert_output --partial 'usage: wkfs history PATH'
}
