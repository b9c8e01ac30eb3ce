#!/usr/bin/env bats
# Applying other replicas' ops in a mounted folder: replicas A, B (and C)
# are each `wkfs init` + `wkfs mount` in place in their own temp dir and
# share nothing but what `wkfs debug import` (test-only, standing in for
# wkfs-syncd) carries: ops into the other's oplog, content into its
# .wkfs/objects, then an `apply` request to its mount.  Mounts are
# unmounted, and their processes stopped by pid, in teardown.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

B=${WKFS_BUILD:-$BATS_TEST_DIRNAME/../../build}
W=${WKFS_BIN:-$B/wkfs}
# Every mount checks that each batch's index update (proportional to the
# batch) leaves nothing a full walk would change; it aborts if it does.
export WKFS_CHECK_INDEX=1

# wait_until SECONDS CMD...: polls CMD until it succeeds or time runs out.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= deadline)) && return 1
		sleep 0.05
	done
}

# The pid of the mount process of DIR, from its runtime directory (one
# grep: the runtime directory may hold thousands of entries).
mount_pid() {
	local f base
	for base in /run/wkfs "${XDG_RUNTIME_DIR:-/nonexistent}/wkfs" \
		"/tmp/wkfs-$(id -u)"; do
		f=$(grep -lxF -- "$1" "$base"/*/backing 2>/dev/null | head -n 1)
		if [ -n "$f" ]; then
			cat "$(dirname "$f")/fs.pid" 2>/dev/null
			return 0
		fi
	done
	return 1
}

# replica NAME: a fresh folder with device name NAME, mounted in place.
replica() {
	local d=$BATS_TEST_TMPDIR/$1
	mkdir -p "$d"
	"$W" init "$d" --device "$1" >/dev/null
	"$W" mount "$d"
	MOUNTS+=("$d")
	PIDS+=("$(mount_pid "$d")")
}

# import SRC DST: SRC's ops into DST, applied; fails if any stays pending.
# The import may say that it found no content for a put whose file has
# changed since (SRC's store keeps remote content only until it is
# applied): DST then needs none, since a later put of that node follows,
# and the last line (nothing pending) is what counts.
import() {
	run "$W" debug import "$BATS_TEST_TMPDIR/$1" "$BATS_TEST_TMPDIR/$2"
	assert_success
	assert_output --regexp $'(^|\n)imported [0-9]+ applied [0-9]+ 0$'
}

# Everything a replica shows: path, type, mode, size, symlink target.
listing() {
	(cd "$BATS_TEST_TMPDIR/$1" && find . -printf '%p %y %m %s %l\n' |
		sort)
}

# Regular files with a content digest, for exact comparisons.
contents() {
	(cd "$BATS_TEST_TMPDIR/$1" && find . -type f -print0 | sort -z |
		xargs -0r md5sum)
}

# mtimes_agree NAME1 NAME2 SLACK: every regular file of NAME1 has an mtime
# on NAME2 within SLACK ns.
mtimes_agree() {
	python3 - "$BATS_TEST_TMPDIR/$1" "$BATS_TEST_TMPDIR/$2" "$3" <<'EOF'
import os, sys
a, b, slack = sys.argv[1], sys.argv[2], int(sys.argv[3])
bad = 0
for root, dirs, files in os.walk(a):
    for f in files:
        p = os.path.join(root, f)
        q = os.path.join(b, os.path.relpath(p, a))
        ta, tb = os.lstat(p).st_mtime_ns, os.lstat(q).st_mtime_ns
        if abs(ta - tb) > slack:
            print(os.path.relpath(p, a), ta, tb); bad = 1
sys.exit(bad)
EOF
}

# mtimes of regular files agree within 50 ms (the kernel's writeback cache
# shows its own write time for a file, a few ms from the recorded one).
same_mtimes() { mtimes_agree "$1" "$2" 50000000; }

same() {
	diff <(listing "$1") <(listing "$2")
	diff <(contents "$1") <(contents "$2")
	same_mtimes "$1" "$2"
}

setup() {
	MOUNTS=()
	PIDS=()
	BG_PIDS=()
}

teardown() {
	local p m
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	for m in "${MOUNTS[@]}"; do
		"$W" umount "$m" 2>/dev/null || fusermount3 -u -z "$m" || true
	done
	for p in "${PIDS[@]}"; do
		[ -n "$p" ] || continue
		wait_until 10 eval "! kill -0 $p 2>/dev/null" ||
			kill -9 "$p" 2>/dev/null || true
	done
}

@test "create, write, mkdir, symlink, chmod and touch reach B" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	mkdir -p "$A/docs/deep"
	echo hello >"$A/docs/note.txt"
	printf 'x%.0s' {1..3000} >"$A/docs/deep/big"
	: >"$A/empty"
	ln -s docs/note.txt "$A/link"
	echo run >"$A/script.sh"
	chmod 750 "$A/script.sh"
	chmod 700 "$A/docs/deep"
	touch -m -d '2001-02-03 04:05:06.123456789' "$A/docs/note.txt"
	import a b
	same a b
	run readlink "$Bd/link"
	assert_output docs/note.txt
	run stat -c %y "$Bd/docs/note.txt"
	assert_output --partial '2001-02-03 04:05:06.123456789'
}

@test "append, truncate, rename, move, delete and rmdir reach B" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a
	mkdir -p "$A/d1" "$A/d2" "$A/gone/sub"
	echo one >"$A/d1/f"
	echo keep >"$A/t"
	echo x >"$A/gone/sub/x"
	echo r >"$A/r"
	import a b
	same a b
	echo two >>"$A/d1/f"
	truncate -s 2 "$A/t"
	mv "$A/d1/f" "$A/d2/g"
	mv "$A/r" "$A/d1/r2"
	rm -r "$A/gone"
	rmdir "$A/d1" 2>/dev/null || true
	chmod 711 "$A/d2"
	import a b
	same a b
	run cat "$BATS_TEST_TMPDIR/b/d2/g"
	assert_output $'one\ntwo'
}

@test "both directions: B's changes reach A, A's reach B" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	echo from-a >"$A/fa"
	mkdir "$A/shared"
	import a b
	echo from-b >"$Bd/shared/fb"
	mv "$Bd/fa" "$Bd/shared/fa"
	import b a
	same a b
	echo more >>"$A/shared/fb"
	import a b
	same a b
	run cat "$Bd/shared/fb"
	assert_output $'from-b\nmore'
}

@test "three replicas: A's ops reach C through B" {
	replica a
	replica b
	replica c
	A=$BATS_TEST_TMPDIR/a
	mkdir "$A/p"
	echo pa >"$A/p/x"
	import a b
	echo pb >"$BATS_TEST_TMPDIR/b/p/y"
	import b c
	same b c
	run cat "$BATS_TEST_TMPDIR/c/p/y"
	assert_output pb
	import c a
	same a b
	same b c
}

@test "a file open for writing is not clobbered; on close a conflict keeps both" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	echo base >"$A/doc.txt"
	import a b
	python3 -c '
import sys, time
f = open(sys.argv[1], "w")
f.write("local edit\n"); f.flush()
while True: time.sleep(0.1)
' "$Bd/doc.txt" &
	BG_PIDS+=($!)
	wait_until 5 grep -q 'local edit' "$Bd/doc.txt"
	echo remote edit >"$A/doc.txt"
	run "$W" debug import "$A" "$Bd"
	assert_success
	assert_output --regexp 'applied [0-9]+ [1-9][0-9]*$'
	run cat "$Bd/doc.txt"
	assert_output 'local edit'
	kill "${BG_PIDS[0]}"
	wait "${BG_PIDS[0]}" 2>/dev/null || true
	BG_PIDS=()
	wait_until 10 eval "ls '$Bd' | grep -q '^doc.conflict-'"
	run cat "$Bd"/doc.txt "$Bd"/doc.conflict-*.txt
	assert_output --partial 'local edit'
	assert_output --partial 'remote edit'
	import b a
	import a b
	same a b
}

@test "concurrent edits: the same winner and conflict sibling on both" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	echo base >"$A/notes.md"
	import a b
	echo from-a >"$A/notes.md"
	echo from-b >"$Bd/notes.md"
	import a b
	import b a
	same a b
	run ls "$A"
	# The copy is named by the device of the losing op (replica a or b);
	# `same a b` above checks that both replicas chose the same name.
	assert_output --regexp 'notes\.conflict-[0-9]{8}-[0-9]{6}-(a|b)\.md'
	run cat "$A"/notes.md "$A"/notes.conflict-*.md
	assert_output --partial from-a
	assert_output --partial from-b
}

@test "deleting a conflict copy removes it on both; editing one keeps it" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	echo base >"$A/x.txt"
	echo base >"$A/y.txt"
	import a b
	echo a1 >"$A/x.txt"
	echo b1 >"$Bd/x.txt"
	echo a2 >"$A/y.txt"
	echo b2 >"$Bd/y.txt"
	import a b
	import b a
	same a b
	rm "$Bd"/x.conflict-*.txt
	echo edited >"$(ls -d "$Bd"/y.conflict-*.txt)"
	import b a
	import a b
	same a b
	run ls "$A"
	refute_output --partial x.conflict-
	assert_output --partial y.conflict-
	run cat "$A"/y.conflict-*.txt
	assert_output edited
}

@test "edit beats delete" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	mkdir "$A/dir"
	echo v1 >"$A/dir/f"
	import a b
	rm -r "$A/dir"
	echo v2 >"$Bd/dir/f"
	import a b
	import b a
	same a b
	run cat "$A/dir/f"
	assert_output v2
}

@test "hostile names from a remote are refused; nothing outside is touched" {
	replica b
	Bd=$BATS_TEST_TMPDIR/b
	before=$(ls -a "$BATS_TEST_TMPDIR")
	for name in ../escape .wkfs a/b .. . ''; do
		run "$W" debug inject "$Bd" create "$name"
		assert_success
	done
	run "$W" debug inject "$Bd" mkdir ../evil-dir
	assert_success
	[ "$(ls -a "$BATS_TEST_TMPDIR")" = "$before" ]
	[ ! -e "$BATS_TEST_TMPDIR/escape" ]
	run ls -A "$Bd"
	assert_output ''
	# The sidecar is intact: the mount still records and applies.
	echo ok >"$Bd/f"
	run "$W" debug apply "$Bd"
	assert_output --regexp '^ok [0-9]+ 0 0 0$'
}

@test "a symlink from a remote is created, never followed" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	ln -s /etc "$A/etc-link"
	import a b
	mkdir "$A/real"
	echo in >"$A/real/f"
	import a b
	run readlink "$Bd/etc-link"
	assert_output /etc
	[ ! -e /etc/f ]
	same a b
}

@test "kernel caches: B shows new content, names and attributes at once" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	mkdir "$A/d"
	echo old >"$A/d/f"
	echo stay >"$A/d/s"
	import a b
	# Let B's kernel cache everything (86400 s timeouts in place).
	run cat "$Bd/d/f"
	assert_output old
	ls -l "$Bd/d" >/dev/null
	stat "$Bd/d/s" "$Bd/d/nope" >/dev/null 2>&1 || true
	echo new >"$A/d/f"
	chmod 600 "$A/d/s"
	echo here >"$A/d/nope"
	mv "$A/d/f" "$A/d/f2"
	import a b
	run cat "$Bd/d/f2"
	assert_output new
	[ ! -e "$Bd/d/f" ]
	run cat "$Bd/d/nope"
	assert_output here
	run stat -c %a "$Bd/d/s"
	assert_output 600
	run ls "$Bd/d"
	assert_output $'f2\nnope\ns'
}

@test "remote ops wait while unmounted and are applied at the next mount" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	echo one >"$A/f"
	import a b
	"$W" umount "$Bd"
	echo two >"$A/f"
	echo three >"$A/g"
	run "$W" debug import "$A" "$Bd"
	assert_output --partial 'not mounted'
	"$W" mount "$Bd"
	PIDS+=("$(mount_pid "$Bd")")
	run "$W" debug apply "$Bd"
	assert_output --regexp '^ok [0-9]+ 0 0 0$'
	same a b
}

# Local ops B has recorded (the scan at mount records what it finds).
local_ops() {
	"$W" log "$BATS_TEST_TMPDIR/$1" --json | { grep -c '"origin":"local"' || true; }
}

# remount NAME [ENV...]: stops NAME's mount (or clears a dead one) and
# mounts it again with ENV set for the mount process.
remount() {
	local d=$BATS_TEST_TMPDIR/$1 p
	shift
	p=$(mount_pid "$d") || true
	"$W" umount "$d" 2>/dev/null || true
	[ -z "$p" ] || wait_until 30 eval "! kill -0 $p 2>/dev/null"
	env "$@" "$W" mount "$d"
	PIDS+=("$(mount_pid "$d")")
}

@test "a crash after a batch is on disk, before applied_seq commits: nothing applied twice" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	mkdir "$A/d"
	echo old >"$A/d/edit.txt"
	echo keep >"$A/keep.txt"
	echo bye >"$A/gone.txt"
	import a b
	remount b WKFS_FAULT=apply.before_commit
	pid=$(mount_pid "$Bd")
	before=$(local_ops b)
	echo new >"$A/new.txt"
	echo newer >"$A/d/edit.txt"
	mv "$A/keep.txt" "$A/d/kept.txt"
	rm "$A/gone.txt"
	mkdir "$A/nd"
	echo x >"$A/nd/x"
	# B's mount process dies between mat_apply and the commit.
	run "$W" debug import "$A" "$Bd"
	assert_output --partial 'not mounted'
	wait_until 30 eval "! kill -0 $pid 2>/dev/null"
	remount b
	run "$W" debug apply "$Bd"
	assert_output --regexp '^ok [0-9]+ 0 0 0$'
	# The scan found DIR as the finished batch left it: no local op.
	assert_equal "$(local_ops b)" "$before"
	same a b
	run ls -R "$Bd"
	refute_output --partial conflict
	import b a
	same a b
	run cat "$A/d/edit.txt"
	assert_output newer
}

@test "a merged directory: rmdir and rename through the mount take every member" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	# Made on both replicas at once: the tree merges each pair into one.
	mkdir "$A/gone" "$Bd/gone" "$A/moved" "$Bd/moved"
	echo a >"$A/gone/a.txt"
	echo b >"$Bd/gone/b.txt"
	echo a2 >"$A/moved/x"
	echo b2 >"$Bd/moved/y"
	import a b
	import b a
	same a b
	[ -e "$A/gone/b.txt" ] && [ -e "$Bd/gone/a.txt" ]
	[ -e "$A/moved/y" ] && [ -e "$Bd/moved/x" ]
	rm -r "$A/gone"
	mv "$Bd/moved" "$Bd/renamed"
	import a b
	import b a
	import a b
	same a b
	[ ! -e "$A/gone" ] && [ ! -e "$Bd/gone" ]
	[ ! -e "$A/moved" ] && [ ! -e "$Bd/moved" ]
	run ls "$A/renamed"
	assert_output $'x\ny'
	# Nothing comes back: not at the next round, not at the next mount.
	remount a
	remount b
	run "$W" debug apply "$A"
	assert_output --regexp '^ok [0-9]+ 0 0 0$'
	import a b
	import b a
	same a b
	run ls "$A" "$Bd"
	refute_output --partial gone
	refute_output --partial moved
}

# in_mount PID: the process is inside a request to a FUSE file system.
in_mount() {
	grep -q fuse "/proc/$1/stack" 2>/dev/null
}

@test "a file opened for writing while a batch is about to replace it keeps the writer's data" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	P=$BATS_TEST_TMPDIR/pause
	mkdir "$P"
	remount b WKFS_PAUSE_DIR="$P"
	echo base >"$A/seen.txt"
	echo base >"$A/unseen.txt"
	import a b
	# B's kernel caches one name (the open goes straight to the old
	# inode), not the other (the open looks it up first).
	cat "$Bd/seen.txt" >/dev/null
	echo remote edit >"$A/seen.txt"
	echo remote edit >"$A/unseen.txt"
	# B's apply stops after checking that nobody writes the files,
	# before the remote content is renamed over them.
	touch "$P/apply.before_mat"
	"$W" debug import "$A" "$Bd" >"$BATS_TEST_TMPDIR/import.out" &
	imp=$!
	BG_PIDS+=("$imp")
	wait_until 60 test -e "$P/apply.before_mat.paused"
	for f in seen unseen; do
		python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
open(sys.argv[2], "w").close()
os.write(fd, b"local edit\n")
os.close(fd)' "$Bd/$f.txt" "$BATS_TEST_TMPDIR/opened-$f" &
		BG_PIDS+=($!)
		# It has opened the file, or it waits inside the mount.
		wait_until 60 eval "test -e '$BATS_TEST_TMPDIR/opened-$f' ||
			in_mount $!"
	done
	rm "$P/apply.before_mat.paused"
	wait "${BG_PIDS[@]}"
	BG_PIDS=()
	run "$W" debug apply "$Bd"
	assert_output --regexp '^ok [0-9]+ 0 0 0$'
	import b a
	same a b
	for f in seen unseen; do
		run cat "$A/$f.txt"
		assert_output --partial 'local edit'
		run cat "$A/$f".*
		assert_output --partial 'remote edit'
	done
}

@test "the object store does not grow: 20 versions of a file leave none behind" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	for i in $(seq 20); do
		echo "version $i" >"$A/f.txt"
		import a b
	done
	same a b
	p=$(mount_pid "$Bd")
	"$W" umount "$Bd"
	wait_until 30 eval "! kill -0 $p 2>/dev/null"
	run find "$Bd/.wkfs/objects" -type f
	assert_output ''
}

@test "an object a deferred put needs stays in the store" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	echo base >"$A/doc.txt"
	import a b
	# B holds doc.txt open for writing (and writes nothing).
	python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
os.close(fd)' "$Bd/doc.txt" "$BATS_TEST_TMPDIR/opened" "$BATS_TEST_TMPDIR/close" &
	BG_PIDS+=($!)
	wait_until 30 test -e "$BATS_TEST_TMPDIR/opened"
	# One batch applies copy.txt's content; the same content for doc.txt
	# waits for the close.
	echo same >"$A/copy.txt"
	echo same >"$A/doc.txt"
	run "$W" debug import "$A" "$Bd"
	assert_output --regexp 'applied [0-9]+ [1-9][0-9]*$'
	# No file of B has that content now: only the store does.
	rm "$Bd/copy.txt"
	touch "$BATS_TEST_TMPDIR/close"
	wait "${BG_PIDS[@]}"
	BG_PIDS=()
	wait_until 60 eval "[ \"\$(cat '$Bd/doc.txt')\" = same ]"
	import b a
	same a b
}

# exact_mtimes NAME1 NAME2: every file of NAME1 has the same mtime on
# NAME2, to the nanosecond.
exact_mtimes() { mtimes_agree "$1" "$2" 0; }

@test "a file rewritten through a lock file shows the writer's mtime on B" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a
	mkdir -p "$A/refs"
	# As git updates a ref: write ref.lock, rename it over ref.  The
	# inode the rename frees gets reused by the next new file (another
	# lock, removed at once), whose late kernel setattr must not be
	# taken for one of ref's.
	for i in $(seq 20); do
		echo "commit $i" >"$A/refs/ref.lock"
		mv "$A/refs/ref.lock" "$A/refs/ref"
		for j in 1 2 3 4 5; do
			echo "x" >"$A/refs/other-$j.lock"
		done
		rm "$A/refs/"other-*.lock
	done
	import a b
	same a b
	run exact_mtimes a b
	assert_success
}

@test "a file written, closed, then given an mtime and renamed keeps that mtime on B" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a
	mkdir -p "$A/m"
	# As rsync and cp -p finish a file: close, set its times, rename.
	# The put must be the close's: one recorded after the utimensat (at
	# the release, which close does not wait for) would undo it.
	python3 - "$A/m" <<'EOF2'
import os, sys
d = sys.argv[1]
for i in range(60):
    tmp = os.path.join(d, ".f%d.tmp" % i)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b"content %d\n" % i * 100)
    os.close(fd)
    t = 1500000000_123456789 + i
    os.utime(tmp, ns=(t, t))
    os.rename(tmp, os.path.join(d, "f%d" % (i % 10)))
EOF2
	import a b
	same a b
	run exact_mtimes a b
	assert_success
}

@test "close records the put, even while another descriptor keeps the file open" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a Bd=$BATS_TEST_TMPDIR/b
	# The release comes only when the last descriptor goes; close(2)
	# (a flush) must record the content it leaves.
	python3 - "$A/held.txt" "$BATS_TEST_TMPDIR/closed" \
		"$BATS_TEST_TMPDIR/go" <<'EOF2' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"written\n")
keep = os.dup(fd)
os.close(fd)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
os.close(keep)
EOF2
	BG_PIDS+=($!)
	wait_until 30 test -e "$BATS_TEST_TMPDIR/closed"
	import a b
	run cat "$Bd/held.txt"
	assert_output written
	touch "$BATS_TEST_TMPDIR/go"
	wait "${BG_PIDS[@]}"
	BG_PIDS=()
	import a b
	same a b
	run exact_mtimes a b
	assert_success
}

@test "a symlink and a directory made and removed on A stay removed on A" {
	replica a
	replica b
	A=$BATS_TEST_TMPDIR/a
	# More local ops between the creates and the removes than one
	# apply round feeds the tree at a time (256): the creates' chunk
	# must not make them again on A's disk (the index lacks them, for a
	# later op of the same round removed them).
	ln -s nowhere "$A/s"
	mkdir "$A/d"
	for i in $(seq 300); do : >"$A/f$i"; done
	rm "$A/s"
	rmdir "$A/d"
	import b a
	[ ! -e "$A/s" ] && [ ! -L "$A/s" ]
	[ ! -e "$A/d" ]
	import a b
	same a b
}
