#!/usr/bin/env bats
# 82-local-effects: a local op can change how *other* entries are shown
# (renaming a file renames its conflict copies; a name it frees goes to a
# collision's loser).  Those changes must reach the writer's own disk too,
# not only the other replicas, or the replicas part for good and a later
# save on the writer removes the other side's file.  Two folders mounted
# in place, each with its wkfs-syncd, one relay on 127.0.0.1.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=60

setup() { replicas_setup; }
teardown() { replicas_teardown; }

has_file() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
mode_is() { [ "$(stat -c %a "$1" 2>/dev/null)" = "$2" ]; }

# conflict NAME: A and B write NAME while B's daemon is away; both then
# hold NAME and one conflict copy of it.
conflict() {
	stop_syncd b
	echo from-a >"$A/$1"
	echo from-b >"$B/$1"
	wait_until 30 all_shipped "$A"
	start_syncd b
	wait_same "$SYNC_WAIT" "$A" "$B"
}

# conflicted NAME: both replicas, NAME synced, then a conflict on it; W is
# the replica whose own version NAME shows, O the other, and other the
# content of O's version (W's conflict copy).
conflicted() {
	replica a
	replica b
	mkdir -p "$(dirname "$A/$1")"
	echo base >"$A/$1"
	wait_same "$SYNC_WAIT" "$A" "$B"
	conflict "$1"
	if has_file "$A/$1" from-a; then
		W=$A O=$B other=from-b
	else
		W=$B O=$A other=from-a
	fi
}

@test "renaming a file that has a conflict copy renames the copy on the writer too" {
	replica a
	replica b
	echo base >"$A/f.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	conflict f.txt
	mv "$A/f.txt" "$A/g.txt"
	wait_until "$SYNC_WAIT" test -e "$B/g.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	run ls "$A"
	assert_output --regexp 'g\.conflict-[0-9]{8}-[0-9]{6}-a\.txt'
	refute_output --partial 'f.conflict-'
}

@test "a name a local rename frees goes to the other file, and a save there edits it" {
	replica a
	replica b
	conflict f.txt
	# W's own file kept the name; the other's is the conflict copy.
	if has_file "$A/f.txt" from-a; then
		W=$A O=$B
	else
		W=$B O=$A
	fi
	mv "$W/f.txt" "$W/g.txt"
	wait_until "$SYNC_WAIT" test -e "$O/g.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	# The copy took the freed name, on the writer as everywhere.
	run ls "$W"
	refute_output --partial '.conflict-'
	chmod 600 "$O/f.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	echo new >"$W/f.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	has_file "$A/f.txt" new
	# Nothing written was lost: the other side's content was edited,
	# not removed behind its back.
	run "$WKFS_BIN" log "$W"
	refute_output --regexp 'remove +f\.txt'
}

@test "deleting a file that has a conflict copy leaves the other version under the name, on the writer too" {
	conflicted f.txt
	# W deletes what f.txt shows there; the other version (its conflict
	# copy) lives on and takes the name.
	rm "$W/f.txt"
	wait_until "$SYNC_WAIT" has_file "$O/f.txt" "$other"
	wait_same "$SYNC_WAIT" "$A" "$B"
	has_file "$W/f.txt" "$other"
	run ls "$W"
	refute_output --partial '.conflict-'
	# A save on the writer afterwards edits that file everywhere.
	echo later >"$W/f.txt"
	wait_until "$SYNC_WAIT" has_file "$O/f.txt" later
	wait_same "$SYNC_WAIT" "$A" "$B"
}

@test "deleting and writing anew a file that has a conflict copy keeps every version" {
	conflicted f.txt
	# What f.txt showed goes; a new file takes the name at once; the
	# other version lives on beside it, on both replicas.
	rm "$W/f.txt"
	echo new >"$W/f.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	has_file "$A/f.txt" new
	run grep -rlx -- "$other" "$A" "$B"
	[ "${#lines[@]}" = 2 ]
}

@test "a chmod of a file that has a conflict copy changes the copy's mode on the writer too" {
	conflicted f.txt
	# The copy shows its node's mode, so both names take the new one,
	# on the replica that made the chmod as on the other.
	chmod 600 "$A/f.txt"
	wait_until "$SYNC_WAIT" mode_is "$B/f.txt" 600
	wait_same "$SYNC_WAIT" "$A" "$B"
	run stat -c '%a %n' "$A"/f.conflict-*
	assert_output --regexp '^600 '
}

@test "deleting a file that has a conflict copy, then moving its directory, leaves no stale copy" {
	conflicted d/f.txt
	# In one go, as a script would: the copy's version takes the name,
	# and the directory moves with it; no copy is left anywhere.
	rm "$W/d/f.txt" && mv "$W/d" "$W/e"
	wait_until "$SYNC_WAIT" test -e "$A/e"
	wait_until "$SYNC_WAIT" test -e "$B/e"
	wait_same "$SYNC_WAIT" "$A" "$B"
	has_file "$W/e/f.txt" "$other"
	run ls "$A/e" "$B/e"
	refute_output --partial '.conflict-'
}

@test "a chmod of a directory both replicas made reaches the other replica from either side" {
	replica a
	replica b
	stop_syncd b
	mkdir "$A/d"
	mkdir "$B/d"
	wait_until 30 all_shipped "$A"
	start_syncd b
	wait_same "$SYNC_WAIT" "$A" "$B"
	# The tree shows one of the two directories' attributes; a chmod
	# recorded for the other alone would show nowhere.
	chmod 700 "$A/d"
	wait_until "$SYNC_WAIT" mode_is "$B/d" 700
	chmod 750 "$B/d"
	wait_until "$SYNC_WAIT" mode_is "$A/d" 750
	wait_same "$SYNC_WAIT" "$A" "$B"
	assert_view_matches "$A" "$A"
	assert_view_matches "$B" "$B"
}

@test "a directory that lost its name to a file merges into a directory made there anew" {
	replica a
	replica b
	stop_syncd b
	mkdir "$A/d"
	echo inner >"$A/d/inner.txt"
	wait_until 30 all_shipped "$A"
	sleep 0.05
	echo file >"$B/d"
	start_syncd b
	wait_same "$SYNC_WAIT" "$A" "$B"
	# The file keeps the name (made last); the directory is beside it.
	[ -f "$B/d" ]
	ls -d "$B"/d.conflict-* >/dev/null
	# Replacing the file with a directory gives the name back to the
	# other one: the two merge, on the writer as on the other replica.
	rm "$B/d"
	mkdir "$B/d"
	echo mine >"$B/d/mine.txt"
	wait_until "$SYNC_WAIT" has_file "$A/d/mine.txt" mine
	wait_until "$SYNC_WAIT" has_file "$B/d/inner.txt" inner
	wait_same "$SYNC_WAIT" "$A" "$B"
	run ls -d "$B"/d.conflict-*
	[ "$status" != 0 ]
	assert_view_matches "$A" "$A"
	assert_view_matches "$B" "$B"
}

@test "a copy renamed with its file follows a directory moved hundreds of ops later" {
	conflicted D/f.txt
	# One round of local ops, fed to the tree in chunks: the rename of
	# the file (and of its copy) is in the first chunk, the move of
	# the directory hundreds of ops later.
	stop_syncd a
	stop_syncd b
	python3 - "$W" <<'PYEOF'
import os, sys
w = sys.argv[1]
os.rename(os.path.join(w, "D/f.txt"), os.path.join(w, "D/g.txt"))
for i in range(200):
    with open(os.path.join(w, "D/n%03d" % i), "w") as f:
        f.write("%d\n" % i)
os.rename(os.path.join(w, "D"), os.path.join(w, "E"))
PYEOF
	start_syncd a
	start_syncd b
	wait_until "$SYNC_WAIT" test -e "$O/E/g.txt"
	wait_same "$SYNC_WAIT" "$A" "$B"
	run ls "$W"/E/g.conflict-*
	assert_success
	assert_view_matches "$W" "$W"
}
