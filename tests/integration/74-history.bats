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

# version_of DIR PATH KIND SIZE: the number of the last version of PATH of
# KIND ("save") with SIZE bytes.
version_of() {
	(cd "$1" && "$WKFS_BIN" history --json "$2") | "$PY" -c '
import json, sys
kind, size = sys.argv[1], int(sys.argv[2])
n = ""
for line in sys.stdin:
    v = json.loads(line)
    if v["kind"] == kind and v.get("size") == size:
        n = v["version"]
print(n)' "$3" "$4"
}

@test "restore brings back a version overwritten on both replicas, from the relay, and B gets it" {
	replica a
	replica b
	# v1 is cut in several chunks: its recipe comes from the cache
	head -c 300000 /dev/urandom >"$T/v1"
	head -c 7000 /dev/urandom >"$T/v2"
	cp "$T/v1" "$A/doc.bin"
	wait_same "$SYNC_WAIT" "$A" "$B"
	cp "$T/v2" "$B/doc.bin"
	wait_same "$SYNC_WAIT" "$A" "$B"
	cmp "$T/v2" "$A/doc.bin"

	local n
	n=$(version_of "$A" doc.bin save 300000)
	[ -n "$n" ]
	# neither replica holds it any more: only the relay does
	assert_equal "$(hist_field "$A" doc.bin "$n" content)" relay
	run "$WKFS_BIN" restore "$A/doc.bin" --version "$n"
	assert_success
	assert_output "restored 1 entry to doc.bin"
	cmp "$T/v1" "$A/doc.bin"
	# the fetched content stays in A's object store, which status shows
	"$WKFS_BIN" status "$A" --json | "$PY" -c '
import json, sys
st = json.load(sys.stdin)["folders"][0]["store"]
assert st["objects"] >= 1 and st["object_bytes"] >= 300000, st
assert st["bytes"] == st["oplog_bytes"] + st["object_bytes"] + \
    st["recipe_bytes"] + st["chunk_bytes"], st'
	run "$WKFS_BIN" status "$A"
	assert_line --regexp '^  store +[0-9.]+ [KM]iB: oplog [0-9.]+ [KM]?i?B, [0-9]+ objects? [0-9.]+ [KM]?i?B, recipes [0-9.]+ [KM]?i?B$'
	# an ordinary change: a new save by a, which reaches B
	wait_until "$SYNC_WAIT" cmp -s "$T/v1" "$B/doc.bin"
	wait_same "$SYNC_WAIT" "$A" "$B"
	run hist "$B" doc.bin
	assert_line --partial "save doc.bin a"
	[ "$(version_of "$B" doc.bin save 300000)" -gt "$n" ]
	no_conflict_copies "$A" "$B"

	# the same again changes nothing; --to makes a copy beside it
	run "$WKFS_BIN" restore "$A/doc.bin" --version "$n"
	assert_output "restored 0 entries to doc.bin (1 already as they were)"
	n=$(version_of "$A" doc.bin save 7000)
	run "$WKFS_BIN" restore "$A/doc.bin" --version "$n" --to "$A/old/v2.bin"
	assert_success
	cmp "$T/v2" "$A/old/v2.bin"
	cmp "$T/v1" "$A/doc.bin"
	wait_same "$SYNC_WAIT" "$A" "$B"
}

@test "restore --deleted lists and brings back what B deleted; a directory comes back as it was at a time" {
	replica a
	replica b
	mkdir -p "$A/docs" "$A/proj/src"
	echo alpha >"$A/docs/a.txt"
	echo keep >"$A/docs/keep.txt"
	echo one >"$A/proj/f1"
	echo two >"$A/proj/src/f2"
	chmod 600 "$A/proj/f1"
	wait_same "$SYNC_WAIT" "$A" "$B"
	local then before
	then=$("$WKFS_BIN" history --json "$A/proj" | tail -n 1 |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["time"])')
	before=$(listing "$A/proj")

	rm "$B/docs/a.txt"
	echo changed >"$B/proj/f1"
	rm -r "$B/proj/src"
	echo new >"$B/proj/f3"
	wait_same "$SYNC_WAIT" "$A" "$B"

	run "$WKFS_BIN" restore --deleted "$A/docs"
	assert_success
	assert_output --regexp '^[0-9T:.-]+Z b +6 B relay +docs/a.txt$'
	run "$WKFS_BIN" restore --deleted "$A/docs/a.txt"
	assert_success
	run cat "$A/docs/a.txt"
	assert_output alpha
	# a file that was not there is written in place: no temporary name
	# in its history
	run hist "$A" docs/a.txt
	refute_output --partial wkfs-restore
	assert_line --regexp '^[0-9]+ save docs/a.txt a$'
	wait_same "$SYNC_WAIT" "$A" "$B"

	# the directory as it was: a copy first, then in place
	run "$WKFS_BIN" restore "$A/proj" --at "$then" --to "$A/proj-then"
	assert_success
	assert_equal "$(listing "$A/proj-then")" "$before"
	run "$WKFS_BIN" restore "$A/proj" --at "$then"
	assert_success
	# f1 and src/f2 are back; f3, made since, stays (restore deletes
	# nothing)
	assert_equal "$(listing "$A/proj" | grep -v '^f3 ')" "$before"
	[ -f "$A/proj/f3" ]
	wait_same "$SYNC_WAIT" "$A" "$B"
	no_conflict_copies "$A" "$B"
}

@test "errors: unknown path, bad time, no such version, content gone, usage" {
	wk_dirs
	wk_init "$D"
	wk_mount "$D"
	echo first >"$D/f"
	echo second >"$D/f"
	wait_until 10 "$WKFS_BIN" history "$D/f"

	run "$WKFS_BIN" history "$D/never-was"
	assert_failure 1
	assert_output "wkfs: $D/never-was: no such file or directory, now or in the history of $D"
	run "$WKFS_BIN" history "$T"
	assert_failure 1
	assert_output --partial 'is not in a synced folder'
	run "$WKFS_BIN" history "$D/.wkfs/config.ini"
	assert_failure 1
	assert_output --partial "sidecar"
	run "$WKFS_BIN" history
	assert_failure 2
	assert_output --partial 'usage: wkfs history PATH'

	run "$WKFS_BIN" restore "$D/f" --at yesterday
	assert_failure 1
	assert_output "wkfs: cannot read the time 'yesterday': give it as 2026-12-08T10:11:12Z (UTC, as wkfs history shows times), 2026-12-08, or @SECONDS"
	run "$WKFS_BIN" restore "$D/f" --version 99
	assert_failure 1
	assert_output --regexp "^wkfs: $D/f has no version 99: its versions are 1 to [0-9]+ \(wkfs history $D/f\)$"
	run "$WKFS_BIN" restore "$D/f" --at 2001-01-01
	assert_failure 1
	assert_output "wkfs: $D/f did not exist at 2001-01-01; wkfs history $D/f lists its versions"
	run "$WKFS_BIN" restore "$D/never-was"
	assert_failure 1
	assert_output "wkfs: $D/never-was: nothing was deleted there; wkfs restore --deleted DIR lists what was deleted in DIR"
	run "$WKFS_BIN" restore "$D/f"
	assert_failure 1
	assert_output --partial "is there now: say which version"
	# a local-only folder never sent the first version anywhere
	local n
	n=$(version_of "$D" f save 6)
	run "$WKFS_BIN" restore "$D/f" --version "$n"
	assert_failure 1
	assert_output --regexp "^wkfs: content of f version $n \([0-9T:.-]+Z, [^)]+\) is not on this replica, and no remote was sent it: it is gone$"
	run cat "$D/f"
	assert_output second
	run "$WKFS_BIN" restore "$D/f" --version 1 --at 2001-01-01
	assert_failure 2
	run "$WKFS_BIN" restore --deleted "$D/f" --version 1
	assert_failure 2
	# nothing was written by any of them
	[ -z "$(ls -A "$D" | grep -v '^f$')" ]

	# a directory replaced by a symlink to outside the folder: a restore
	# never writes through it
	mkdir "$D/d"
	echo inside >"$D/d/g"
	wait_until 10 eval '"$WKFS_BIN" history "$D/d/g" | grep -q " save "'
	local then
	then=$("$WKFS_BIN" history --json "$D/d" | tail -n 1 |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["time"])')
	rm -r "$D/d"
	mkdir "$T/outside"
	ln -s "$T/outside" "$D/d"
	run "$WKFS_BIN" restore "$D" --at "$then"
	assert_failure 1
	assert_output "wkfs: d is not a directory now; restore to another path with --to"
	run "$WKFS_BIN" restore --deleted "$D/d/g"
	assert_failure 1
	assert_output --partial "outside is not in a synced folder"
	[ -z "$(ls -A "$T/outside")" ]
}

@test "restore in an unmounted folder writes the directory; the next mount records it" {
	wk_dirs
	wk_init "$D"
	wk_mount "$D"
	echo same >"$D/a"
	echo same >"$D/b"
	rm "$D/a"
	wait_until 10 "$WKFS_BIN" history "$D/a"
	wk_umount "$D"

	run "$WKFS_BIN" restore --deleted "$D/a"
	assert_success
	assert_line "restored 1 entry to a"
	assert_line "$D is not mounted: the change is recorded when it is mounted next"
	run cat "$D/a"
	assert_output same
	wk_mount "$D"
	wait_until 10 eval '"$WKFS_BIN" history "$D/a" | tail -n 1 | grep -q " save "'
}
