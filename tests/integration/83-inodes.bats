#!/usr/bin/env bats
# The inode table holds no fd per inode (fs/inode.c): a mount whose open
# file limit is far below the number of files still lists and walks them
# all and creates files afterwards; and an inode reached through a name
# that changed since (a directory a remote op or another process renamed,
# with a process inside) stays usable after its fd left the table's cache.
# Each mount runs under a small `ulimit -n`, which it cannot raise.

load helpers

# mount_limited DIR NOFILE: mounts DIR in place with at most NOFILE open
# files (soft and hard limit: the mount cannot raise it).
mount_limited() {
	WK_MOUNTS+=("$1")
	WK_DIRS+=("$1")
	(
		ulimit -n "$2"
		"$WKFS_BIN" mount "$1" </dev/null 3>&-
	)
}

# tree DIR DIRS FILES: DIRS directories of FILES empty files each, two
# levels deep, made natively.
tree() {
	"$PY" - "$@" <<'EOF'
import os, sys
root, ndirs, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in range(ndirs):
    p = os.path.join(root, "d%03d" % (d // 10), "e%d" % (d % 10))
    os.makedirs(p)
    for f in range(nfiles):
        open(os.path.join(p, "f%04d" % f), "w").close()
EOF
}

setup() {
	wk_dirs
}

teardown() {
	wk_teardown
}

# many_files NDIRS NFILES NOFILE
many_files() {
	local d=$D n
	tree "$d" "$1" "$2"
	"$WKFS_BIN" init "$d" >/dev/null
	n=$(find "$d" -path "$d/.wkfs" -prune -o -print | wc -l)
	mount_limited "$d" "$3"
	run find "$d"
	assert_success
	[ "${#lines[@]}" = "$n" ]
	run ls -lR "$d"
	assert_success
	[ "$(grep -c '^-' <<<"$output")" = $(($1 * $2)) ]
	echo made here >"$d/d000/e0/new"
	run cat "$d/d000/e0/new"
	assert_output "made here"
	run "$WKFS_BIN" log "$d" --json
	assert_output --partial '"name":"new"'
}

@test "find and ls -lR over 20,000 files with 256 fds, then a create works" {
	many_files 200 100 256
}

@test "find and ls -lR over 200,000 files with 1,024 fds (check-long)" {
	[ "${WKFS_LONG:-}" = 1 ] || skip "200,000 files: make check-long"
	many_files 1000 200 1024
}

# evict DIR: walks 1,000 files, so that the mount's fds (at most 32 kept
# with a limit of 128) are all of other inodes afterwards.
evict() {
	run ls -lR "$1/spare"
	assert_success
}

@test "a directory renamed under a process inside it stays usable" {
	local d=$D
	mkdir -p "$d/a/sub" "$d/spare"
	echo one >"$d/a/sub/f"
	tree "$d/spare" 10 100
	"$WKFS_BIN" init "$d" >/dev/null
	mount_limited "$d" 128
	cd "$d/a/sub"
	# Another process renames it, and the mount's fds go to other files.
	mv "$d/a" "$d/b"
	evict "$d"
	run cat f
	assert_output one
	echo two >g
	run cat "$d/b/sub/g"
	assert_output two
	[ ! -e "$d/a" ]
}

@test "a directory a remote op renamed stays usable from inside it" {
	local a=$T/ra b=$T/rb
	mkdir -p "$a" "$b"
	"$WKFS_BIN" init "$a" --device ra >/dev/null
	"$WKFS_BIN" init "$b" --device rb >/dev/null
	mkdir -p "$b/top/dir/sub" "$b/spare"
	echo one >"$b/top/dir/sub/f"
	tree "$b/spare" 10 100
	WK_DIRS+=("$a")
	wk_mount "$a"
	mount_limited "$b" 128
	"$WKFS_BIN" debug import "$b" "$a" >/dev/null
	[ "$(cat "$a/top/dir/sub/f")" = one ]
	cd "$b/top/dir/sub"
	# On a: the directory moves to another parent and a new name.
	mkdir "$a/other"
	mv "$a/top/dir" "$a/other/moved"
	run "$WKFS_BIN" debug import "$a" "$b"
	assert_success
	assert_output --regexp $'(^|\n)imported [0-9]+ applied [0-9]+ 0$'
	# No lookup through the new names before: those would tell the
	# mount where the directory went.
	evict "$b"
	run cat f
	assert_output one
	echo two >g
	run ls
	assert_output $'f\ng'
	[ ! -e "$b/top/dir" ]
	run cat "$b/other/moved/sub/g"
	assert_output two
	# g was recorded where it is, and reaches a.
	run "$WKFS_BIN" debug import "$b" "$a"
	assert_success
	run cat "$a/other/moved/sub/g"
	assert_output two
}

# backing_of DIR: a path to the directory under DIR's in-place mount (the
# mount's own fd of it), to change files behind the mount's back.
backing_of() {
	local pid fd
	for pid in $(wk_pids_for "$1"); do
		for fd in /proc/"$pid"/fd/*; do
			if [ "$(readlink "$fd")" = "$1" ] && [ -d "$fd/.wkfs" ]; then
				echo "$fd"
				return 0
			fi
		done
	done
	return 1
}

# The mount keeps no fd per inode, so a file that goes behind its back (as
# a batch removes one) frees its inode number while the kernel still has
# the FUSE inode.  A new file that the file system gives that number must
# be a new inode to the kernel: with the old one it would show the old
# file's size, which the writeback cache keeps.
@test "a file that takes the inode number of one gone behind the mount is a new inode" {
	local d=$D root i old=0 new=1
	mkdir -p "$d/spare"
	tree "$d/spare" 10 100
	"$WKFS_BIN" init "$d" >/dev/null
	mount_limited "$d" 128
	root=$(backing_of "$d")
	for i in 1 2 3 4 5 6 7 8; do
		head -c 5000 /dev/zero | tr '\0' x >"$d/old$i"
		[ "$(stat -c %s "$d/old$i")" = 5000 ]
		evict "$d"
		old=$(stat -c %i "$root/old$i")
		rm "$root/old$i"
		printf 'ten bytes!' >"$root/new$i"
		new=$(stat -c %i "$root/new$i")
		[ "$old" = "$new" ] && break
	done
	[ "$old" = "$new" ] || skip "the file system gave no inode number back"
	run stat -c %s "$d/new$i"
	assert_output 10
	run cat "$d/new$i"
	assert_output "ten bytes!"
}

# sizes DIR: "path size" of every regular file under DIR (not .wkfs).
sizes() {
	"$PY" - "$1" <<'PYEOF'
import os, sys
root = sys.argv[1]
out = []
for d, dirs, files in os.walk(root):
    if d == root and ".wkfs" in dirs:
        dirs.remove(".wkfs")
    for f in files:
        p = os.path.join(d, f)
        st = os.lstat(p)
        if (st.st_mode & 0o170000) == 0o100000:
            out.append("%s %d" % (os.path.relpath(p, root), st.st_size))
print("\n".join(sorted(out)))
PYEOF
}

# With the writeback cache the kernel keeps each file's size itself and
# never takes it from the mount again.  An O_TRUNC open, a truncate(2) and
# a write-back of another process's pages on one file must reach the file
# in the order the kernel saw them, or the mount shows a size the file
# does not have, for good.  Before wkfs_init turned atomic O_TRUNC off,
# this stress left such a file in about one run of three (the kernel set
# its size to 0 after the OPEN, outside its inode lock).
@test "four processes racing over one set of names leave every size as the file has it" {
	local d=$D root
	"$WKFS_BIN" init "$d" >/dev/null
	mount_limited "$d" 1024
	root=$(backing_of "$d")
	mkdir "$d/stress"
	run "$PY" "$BATS_TEST_DIRNAME/../tools/fsstress.py" "$d/stress" \
		--seed 106 --procs 4 --ops 2000 --no-link
	assert_success
	sizes "$d/stress" >"$T/through-mount"
	sizes "$root/stress" >"$T/in-file"
	run diff "$T/through-mount" "$T/in-file"
	assert_success
}
