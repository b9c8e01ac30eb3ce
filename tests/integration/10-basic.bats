#!/usr/bin/env bats
# 10-basic: init, mount/umount, and every filesystem operation, each checked
# through the mount, in the backing directory, and in the recorded ops.
# Most tests mount DIR at an explicit MNT ($M) so that $D is the backing.

load helpers

setup() {
	wk_dirs
}

teardown() {
	wk_teardown
}

mnt() {
	wk_init "$D"
	wk_mount "$D" "$M"
}

@test "init records the existing tree as mkdir/create/put/symlink ops" {
	mkdir -p "$D/sub/deep"
	printf 'hello\n' >"$D/a.txt"
	printf 'hello\n' >"$D/sub/b.txt"
	printf 'other text\n' >"$D/sub/deep/c.txt"
	: >"$D/empty"
	ln -s a.txt "$D/ln"
	chmod 0640 "$D/sub/b.txt"
	chmod 0700 "$D/sub/deep"

	run --separate-stderr "$WKFS_BIN" init "$D"
	assert_success
	[ -f "$D/.wkfs/wkfs.db" ]
	[ -f "$D/.wkfs/config.ini" ]
	[ -d "$D/.wkfs/tmp" ]

	got=$(ops_summary | grep -v ' empty$' | sort)
	want=$(printf '%s\n' 'create a.txt' 'create sub/b.txt' \
		'create sub/deep/c.txt' 'mkdir sub' 'mkdir sub/deep' \
		'put a.txt' 'put sub/b.txt' 'put sub/deep/c.txt' 'symlink ln' | sort)
	assert_equal "$got" "$want"
	assert_op_count 1 create empty
	assert_no_op '*' '.wkfs'
	[ "$(ops_summary | grep -c '\.wkfs')" = 0 ]

	# parents before children, create before put
	[ "$(op_field mkdir sub seq)" -lt "$(op_field mkdir sub/deep seq)" ]
	[ "$(op_field mkdir sub/deep seq)" -lt "$(op_field create sub/deep/c.txt seq)" ]
	[ "$(op_field create a.txt seq)" -lt "$(op_field put a.txt seq)" ]

	assert_equal "$(op_field create a.txt mode)" 0644
	assert_equal "$(op_field create sub/b.txt mode)" 0640
	assert_equal "$(op_field mkdir sub mode)" 0755
	assert_equal "$(op_field mkdir sub/deep mode)" 0700
	assert_equal "$(op_field symlink ln target)" a.txt
	assert_equal "$(op_field put a.txt size)" 6
	assert_equal "$(op_field put sub/deep/c.txt size)" 11
	assert_equal "$(op_field put a.txt node)" "$(op_field create a.txt node)"
	assert_equal "$(op_field create sub/b.txt parent)" "$(op_field mkdir sub node)"
	# same bytes, same hash; other bytes, other hash
	assert_equal "$(op_field put a.txt hash)" "$(op_field put sub/b.txt hash)"
	[ "$(op_field put a.txt hash)" != "$(op_field put sub/deep/c.txt hash)" ]
	assert_state_matches "$D"
}

@test "every op carries well-formed fields; a node is named by its creating op" {
	mkdir "$D/sub"
	printf 'x\n' >"$D/sub/f"
	ln -s nowhere "$D/l"
	mnt
	echo y >>"$M/sub/f"
	mv "$M/sub/f" "$M/g"
	chmod 600 "$M/g"
	touch -d '2021-05-06 07:08:09' "$M/g"
	rm "$M/l"
	wait_op remove l
	run _wkops check
	assert_success
	assert_output ''
	# the id of the op that created a node is the node id: hlc-actor in hex
	hlc=$(op_field create sub/f hlc)
	actor=$(op_field create sub/f actor)
	assert_equal "$(op_field create sub/f node)" "$(printf '%016x-%s' "$hlc" "$actor")"
	assert_equal "$(op_field move sub/f shipped)" false
	assert_equal "$(op_field move sub/f origin)" local
}

@test "mount in place returns once ready; umount returns once unmounted" {
	echo before >"$D/f"
	wk_init "$D"
	wk_mount "$D" # asserts the fuse mount is there when the command returns
	run cat "$D/f"
	assert_output before
	[ ! -e "$D/.wkfs" ]
	echo through >"$D/g"
	wait_op put g
	wk_umount "$D"
	[ -d "$D/.wkfs" ]
	assert_equal "$(cat "$D/g")" through
	assert_equal "$(op_field put g size)" 8

	wk_mount "$D" "$M"
	run cat "$M/g"
	assert_output through
	wk_umount "$M"
	not_mounted "$M"
	not_mounted "$D"
}

@test "write then read a new file: create, then exactly one put" {
	mnt
	mark=$(ops_mark)
	echo hi >"$M/f"
	assert_equal "$(cat "$M/f")" hi
	assert_equal "$(cat "$D/f")" hi
	assert_ops_since "$mark" "create f" "put f"
	assert_equal "$(op_field create f mode)" 0644
	assert_equal "$(op_field put f size)" 3
	assert_equal "$(op_field put f node)" "$(op_field create f node)"
	[[ $(op_field put f hash) =~ ^[0-9a-f]{32}$ ]]

	# a larger file, read back byte for byte
	head -c 3000000 /dev/urandom >"$T/rand"
	mark=$(ops_mark)
	cp "$T/rand" "$M/rand"
	cmp "$T/rand" "$M/rand"
	cmp "$T/rand" "$D/rand"
	assert_ops_since "$mark" "create rand" "put rand"
	assert_equal "$(op_field put rand size)" 3000000

	# same bytes through the mount, same hash
	mark=$(ops_mark)
	echo hi >"$M/f2"
	assert_ops_since "$mark" "create f2" "put f2"
	assert_equal "$(op_field put f2 hash)" "$(op_field put f hash)"
}

@test "100 writes then close give one put; fsync gives a put while open" {
	mnt
	mark=$(ops_mark)
	pyc 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
for i in range(100):
    os.write(fd, b"%03d" % i * 33 + b"\n")
os.close(fd)' "$M/many"
	assert_equal "$(stat -c %s "$D/many")" 10000
	assert_ops_since "$mark" "create many" "put many"
	assert_equal "$(op_field put many size)" 10000

	# 100 appends through one open file description (bash group redirect)
	mark=$(ops_mark)
	{ for i in $(seq 100); do echo "line $i"; done; } >>"$M/many"
	size=$(stat -c %s "$D/many")
	assert_equal "$size" $((10000 + 792))
	assert_ops_since "$mark" "put many"
	assert_equal "$(op_field put many size)" "$size"

	# fsync records the content while the file is still open
	mark=$(ops_mark)
	pyc 'import json, os, subprocess, sys, time
bin, d, path, mark = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def puts():
    out = subprocess.run([bin, "log", d, "--json"], capture_output=True,
                         check=True, text=True).stdout
    return [o for o in map(json.loads, out.splitlines())
            if o["seq"] > mark and o["kind"] == "put" and o["path"] == "synced"]
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"12345")
os.fsync(fd)
deadline = time.time() + 10
while not puts():
    if time.time() > deadline:
        sys.exit("no put after fsync while the file is open")
    time.sleep(0.05)
assert puts()[-1]["size"] == 5, puts()
os.write(fd, b"678")
os.close(fd)' "$WKFS_BIN" "$D" "$M/synced" "$mark"
	wait_op put synced 2 "$mark"
	assert_equal "$(op_field put synced size)" 8
	assert_op_count 2 put synced "$mark"
}

@test "append records one put whose base names the put it replaced" {
	mnt
	printf 'a\n' >"$M/f"
	wait_op put f
	first_hlc=$(op_field put f hlc)
	first_actor=$(op_field put f actor)
	first_hash=$(op_field put f hash)
	mark=$(ops_mark)
	echo b >>"$M/f"
	assert_equal "$(cat "$D/f")" "$(printf 'a\nb')"
	assert_ops_since "$mark" "put f"
	assert_equal "$(op_field put f size)" 4
	assert_equal "$(op_field put f base)" "$(printf '%016x-%s' "$first_hlc" "$first_actor")"
	[ "$(op_field put f hash)" != "$first_hash" ]
}

@test "truncate shorter, longer and O_TRUNC each record one put" {
	mnt
	printf '0123456789' >"$M/f"
	wait_op put f
	mark=$(ops_mark)
	truncate -s 4 "$M/f"
	assert_equal "$(cat "$D/f")" 0123
	assert_equal "$(cat "$M/f")" 0123
	assert_ops_since "$mark" "put f"
	assert_equal "$(op_field put f size)" 4

	mark=$(ops_mark)
	truncate -s 100 "$M/f"
	assert_equal "$(stat -c %s "$D/f")" 100
	assert_equal "$(stat -c %s "$M/f")" 100
	pyc 'import sys; d = open(sys.argv[1], "rb").read()
assert d == b"0123" + b"\0" * 96, d' "$D/f"
	assert_ops_since "$mark" "put f"
	assert_equal "$(op_field put f size)" 100

	mark=$(ops_mark)
	: >"$M/f"
	assert_equal "$(stat -c %s "$D/f")" 0
	assert_ops_since "$mark" "put f"
	assert_equal "$(op_field put f size)" 0
}

@test "rename in a dir, across dirs, and of a dir keeps the node id" {
	mnt
	echo a >"$M/a"
	mkdir "$M/sub"
	wait_op put a
	wait_op mkdir sub
	node=$(op_field create a node)
	subnode=$(op_field mkdir sub node)

	mark=$(ops_mark)
	mv "$M/a" "$M/b"
	[ ! -e "$D/a" ] && [ -f "$D/b" ]
	assert_ops_since "$mark" "move a b"
	assert_equal "$(op_field move a node)" "$node"
	assert_equal "$(op_field move a new_name)" b
	assert_equal "$(op_field move a new_parent)" "$(op_field create a parent)"

	mark=$(ops_mark)
	mv "$M/b" "$M/sub/c"
	[ ! -e "$D/b" ] && [ "$(cat "$D/sub/c")" = a ]
	assert_ops_since "$mark" "move b sub/c"
	assert_equal "$(op_field move b node)" "$node"
	assert_equal "$(op_field move b new_parent)" "$subnode"

	mark=$(ops_mark)
	mv "$M/sub" "$M/sub2"
	[ "$(cat "$D/sub2/c")" = a ]
	assert_ops_since "$mark" "move sub sub2"
	assert_equal "$(op_field move sub node)" "$subnode"

	# the file's later ops follow it to its new path, same node
	mark=$(ops_mark)
	echo more >>"$M/sub2/c"
	assert_ops_since "$mark" "put sub2/c"
	assert_equal "$(op_field put sub2/c node)" "$node"
	assert_state_matches "$D"
	# an op's path is where it happened, not where the node is now
	assert_op_count 1 put a
	assert_equal "$(op_field put a node)" "$node"
}

@test "rename of a file over a tracked file is a save: b keeps its node" {
	# Editors save by writing a temporary and renaming it over the file.
	# wkfs records that as new content for the file that was replaced
	# (same node id, so a concurrent edit elsewhere meets an edit, not a
	# delete) and the removal of the temporary's node.
	mnt
	printf aaa >"$M/a"
	printf bbbb >"$M/b"
	wait_op put a
	wait_op put b
	anode=$(op_field create a node)
	bnode=$(op_field create b node)
	ahash=$(op_field put a hash)
	mark=$(ops_mark)
	mv -f "$M/a" "$M/b"
	[ ! -e "$D/a" ]
	assert_equal "$(cat "$D/b")" aaa
	assert_equal "$(cat "$M/b")" aaa
	assert_op_count 1 put b "$mark"
	assert_equal "$(op_field put b node "$mark")" "$bnode"
	assert_equal "$(op_field put b hash "$mark")" "$ahash"
	assert_equal "$(op_field put b size "$mark")" 3
	assert_op_count 1 remove a "$mark"
	assert_equal "$(op_field remove a node "$mark")" "$anode"
	assert_no_op move '*' "$mark"
	assert_no_op create '*' "$mark"
	assert_state_matches "$D"
	mark=$(ops_mark)
	echo z >>"$M/b"
	assert_ops_since "$mark" "put b"
	assert_equal "$(op_field put b node "$mark")" "$bnode"
}

@test "rename of a directory over an empty directory: one move" {
	mnt
	mkdir "$M/x" "$M/y"
	echo in >"$M/x/f"
	wait_op put x/f
	xnode=$(op_field mkdir x node)
	mark=$(ops_mark)
	mv -T "$M/x" "$M/y"
	assert_equal "$(cat "$D/y/f")" in
	assert_op_count 1 move x "$mark"
	assert_equal "$(op_field move x node "$mark")" "$xnode"
	assert_equal "$(op_field move x new_path "$mark")" y
	assert_op_count 1 remove y "$mark"
	assert_state_matches "$D"
}

@test "renameat2 RENAME_NOREPLACE fails on an existing target, works otherwise" {
	mnt
	echo a >"$M/a"
	echo b >"$M/b"
	wait_op put a
	wait_op put b
	mark=$(ops_mark)
	run renameat2 "$M/a" "$M/b" 1
	assert_output EEXIST
	assert_equal "$(cat "$D/a")" a
	assert_equal "$(cat "$D/b")" b
	run renameat2 "$M/a" "$M/c" 1
	assert_output ok
	[ ! -e "$D/a" ] && [ "$(cat "$D/c")" = a ]
	assert_ops_since "$mark" "move a c"
}

@test "renameat2 RENAME_EXCHANGE swaps two files and their nodes" {
	mnt
	printf AAA >"$M/a"
	printf BB >"$M/b"
	wait_op put a
	wait_op put b
	anode=$(op_field create a node)
	bnode=$(op_field create b node)
	mark=$(ops_mark)
	run renameat2 "$M/a" "$M/b" 2
	assert_output ok
	assert_equal "$(cat "$D/a")" BB
	assert_equal "$(cat "$D/b")" AAA
	assert_equal "$(cat "$M/a")" BB
	assert_equal "$(cat "$M/b")" AAA
	assert_no_op create '*' "$mark"
	assert_no_op remove '*' "$mark"
	assert_state_matches "$D" # sizes: a is 2 bytes, b is 3
	mark=$(ops_mark)
	echo x >>"$M/a"
	echo x >>"$M/b"
	assert_op_count 1 put a "$mark"
	assert_op_count 1 put b "$mark"
	assert_equal "$(op_field put a node)" "$bnode"
	assert_equal "$(op_field put b node)" "$anode"
}

@test "unlink records one remove of the file's node" {
	mnt
	echo x >"$M/f"
	wait_op put f
	node=$(op_field create f node)
	mark=$(ops_mark)
	rm "$M/f"
	[ ! -e "$D/f" ] && [ ! -e "$M/f" ]
	assert_ops_since "$mark" "remove f"
	assert_equal "$(op_field remove f node)" "$node"
	# the put made before keeps its path
	assert_op_count 1 put f
}

@test "mkdir and rmdir; rmdir of a non-empty dir fails ENOTEMPTY" {
	mnt
	mark=$(ops_mark)
	mkdir "$M/d"
	[ -d "$D/d" ]
	assert_ops_since "$mark" "mkdir d"
	assert_equal "$(op_field mkdir d mode)" 0755
	mkdir -m 0711 "$M/d2"
	assert_equal "$(stat -c %a "$D/d2")" 711
	assert_equal "$(op_field mkdir d2 mode)" 0711

	mark=$(ops_mark)
	rmdir "$M/d"
	[ ! -e "$D/d" ]
	assert_ops_since "$mark" "remove d"

	mkdir "$M/full"
	echo x >"$M/full/x"
	wait_op put full/x
	mark=$(ops_mark)
	run pyc 'import errno, os, sys
try:
    os.rmdir(sys.argv[1])
except OSError as e:
    print(errno.errorcode[e.errno])' "$M/full"
	assert_output ENOTEMPTY
	[ -f "$D/full/x" ]
	assert_no_op remove '*' "$mark"
	assert_equal "$(ops_summary "$mark")" ""
}

@test "symlink and readlink; removing the link" {
	mnt
	mark=$(ops_mark)
	ln -s ../target/x "$M/l"
	assert_equal "$(readlink "$M/l")" ../target/x
	assert_equal "$(readlink "$D/l")" ../target/x
	[ -L "$D/l" ]
	assert_ops_since "$mark" "symlink l"
	assert_equal "$(op_field symlink l target)" ../target/x

	echo data >"$M/real"
	ln -s real "$M/l2"
	assert_equal "$(cat "$M/l2")" data
	mark=$(ops_mark)
	rm "$M/l"
	[ ! -L "$D/l" ]
	assert_ops_since "$mark" "remove l"
}

@test "hard link: both names read the same data, nlink 2, recorded as create+put" {
	mnt
	echo data >"$M/a"
	wait_op put a
	mark=$(ops_mark)
	ln "$M/a" "$M/b"
	assert_equal "$(cat "$M/b")" data
	assert_equal "$(stat -c %h "$M/a")" 2
	assert_equal "$(stat -c %h "$M/b")" 2
	assert_equal "$(stat -c %h "$D/b")" 2
	assert_equal "$(stat -c %i "$D/a")" "$(stat -c %i "$D/b")"
	assert_ops_since "$mark" "create b" "put b"
	assert_equal "$(op_field put b hash)" "$(op_field put a hash)"
	assert_equal "$(op_field put b size)" 5
	[ "$(op_field create b node)" != "$(op_field create a node)" ]
	echo more >>"$M/a"
	assert_equal "$(cat "$M/b")" "$(printf 'data\nmore')"
	rm "$M/a"
	assert_equal "$(stat -c %h "$M/b")" 1
	assert_equal "$(cat "$M/b")" "$(printf 'data\nmore')"
}

@test "hard links: what a name that outlives the others shows is recorded for it" {
	mnt
	# A chmod through the inode's finode after a rename replaced the
	# name it was looked up by: recorded for the name that lives on.
	echo data >"$M/a"
	ln "$M/a" "$M/b"
	echo new >"$M/c"
	mv "$M/c" "$M/a"
	chmod 600 "$M/b"
	# A link to a file emptied by a truncate carries its mtime.
	echo x >"$M/e"
	truncate -s 0 "$M/e"
	touch -d @1000000000 "$M/e"
	ln "$M/e" "$M/e2"
	assert_view_matches "$D" "$M"
	assert_view_matches "$D" "$D"
}

@test "chmod records a setattr with the mode" {
	mnt
	echo x >"$M/f"
	mkdir "$M/d"
	wait_op put f
	mark=$(ops_mark)
	chmod 600 "$M/f"
	assert_equal "$(stat -c %a "$D/f")" 600
	assert_equal "$(stat -c %a "$M/f")" 600
	assert_ops_since "$mark" "setattr f"
	assert_equal "$(op_field setattr f mode)" 0600
	assert_equal "$(op_field setattr f mtime_ns)" ""
	mark=$(ops_mark)
	chmod 2755 "$M/d"
	assert_equal "$(stat -c %a "$D/d")" 2755
	assert_ops_since "$mark" "setattr d"
	assert_equal "$((8#$(op_field setattr d mode)))" "$((8#2755))"
}

@test "chown (root) changes the backing owner and records no content op" {
	mnt
	echo x >"$M/f"
	wait_op put f
	mark=$(ops_mark)
	chown 1234:5678 "$M/f"
	assert_equal "$(stat -c %u:%g "$D/f")" 1234:5678
	assert_equal "$(stat -c %u:%g "$M/f")" 1234:5678
	assert_equal "$(cat "$M/f")" x
	for k in create put remove move; do
		assert_no_op "$k" '*' "$mark"
	done
}

@test "utimens keeps nanoseconds and records a setattr with mtime_ns" {
	mnt
	echo x >"$M/f"
	wait_op put f
	mark=$(ops_mark)
	touch -d '2020-01-02 03:04:05.123456789' "$M/f"
	assert_equal "$(stat -c %y "$M/f")" '2020-01-02 03:04:05.123456789 +0000'
	assert_equal "$(stat -c %y "$D/f")" '2020-01-02 03:04:05.123456789 +0000'
	assert_ops_since "$mark" "setattr f"
	assert_equal "$(op_field setattr f mtime_ns)" 1577934245123456789
	assert_equal "$(op_field put f size)" 2
}

@test "statfs reports the backing filesystem" {
	mnt
	run df "$M"
	assert_success
	assert_equal "$(stat -f -c '%b %S %c' "$M")" "$(stat -f -c '%b %S %c' "$D")"
}

@test "fallocate -l 1M allocates in the backing file and records its size" {
	mnt
	mark=$(ops_mark)
	fallocate -l 1M "$M/big"
	assert_equal "$(stat -c %s "$M/big")" 1048576
	assert_equal "$(stat -c %s "$D/big")" 1048576
	[ $(($(stat -c %b "$D/big") * $(stat -c %B "$D/big"))) -ge 1048576 ]
	assert_ops_since "$mark" "create big" "put big"
	assert_equal "$(op_field put big size)" 1048576
}

@test "lseek SEEK_DATA/SEEK_HOLE on a sparse file match the backing file" {
	mnt
	pyc 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.pwrite(fd, b"x" * 4096, 0)
os.pwrite(fd, b"y" * 4096, 1 << 20)
os.close(fd)' "$M/sparse"
	seeks='import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_HOLE), os.lseek(fd, 4096, os.SEEK_DATA))'
	backing=$(pyc "$seeks" "$D/sparse")
	[ "$backing" = "4096 1048576" ] ||
		skip "backing fs reports no holes ($backing)"
	run pyc "$seeks" "$M/sparse"
	assert_output "$backing"
	assert_equal "$(op_field put sparse size)" $((1048576 + 4096))
}

@test "SEEK_DATA/SEEK_HOLE on a file still being written see its data (cp --sparse too)" {
	mnt
	# The writer keeps its descriptor open, so the data is still in the
	# kernel's writeback cache when cp and lseek look for it; the same
	# writes to a file outside the mount give the answers to expect.
	run pyc 'import errno, os, subprocess, sys
path, copy, ref = sys.argv[1:4]
def layout(fd):
    out = []
    for whence in (os.SEEK_DATA, os.SEEK_HOLE):
        for off in (0, 5000, 1 << 20, (1 << 20) + 100, 3 << 20):
            try:
                out.append(str(os.lseek(fd, off, whence)))
            except OSError as e:
                out.append(errno.errorcode[e.errno])
    return " ".join(out)
got = []
for p in (path, ref):
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, b"x" * 10000, 0)
    os.pwrite(fd, b"y" * 5000, 1 << 20)
    if p == path:
        subprocess.run(["cp", "--sparse=always", path, copy], check=True)
        with open(path, "rb") as a, open(copy, "rb") as b:
            print("copy", "same" if a.read() == b.read() else "differs")
    os.pwrite(fd, b"z" * 100, 2 << 20)
    got.append(layout(fd))
    os.close(fd)
print("mount:" + got[0])
print("backing:" + got[1])' "$M/f" "$M/copy" "$T/ref"
	assert_success
	assert_line --index 0 "copy same"
	assert_equal "${lines[1]#mount:}" "${lines[2]#backing:}"
	assert_equal "$(cmp "$M/f" "$T/ref" && echo same)" same
}

@test "copy_file_range copies through the mount and records the copy" {
	mnt
	head -c 200000 /dev/urandom >"$M/src"
	wait_op put src
	mark=$(ops_mark)
	pyc 'import os, sys
i = os.open(sys.argv[1], os.O_RDONLY)
o = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
left = os.fstat(i).st_size
while left:
    n = os.copy_file_range(i, o, left)
    assert n > 0
    left -= n
os.close(o)
os.close(i)' "$M/src" "$M/dst"
	cmp "$M/src" "$M/dst"
	cmp "$D/src" "$D/dst"
	assert_ops_since "$mark" "create dst" "put dst"
	assert_equal "$(op_field put dst hash)" "$(op_field put src hash)"
	assert_equal "$(op_field put dst size)" 200000
}

@test "user xattrs set through the mount land on the backing file" {
	touch "$T/probe"
	pyc 'import os, sys; os.setxattr(sys.argv[1], "user.p", b"1")' "$T/probe" 2>/dev/null ||
		skip "the backing filesystem of $T has no user xattrs"
	mnt
	echo x >"$M/f"
	run pyc 'import errno, os, sys
m, d = sys.argv[1], sys.argv[2]
os.setxattr(m, "user.x", b"v1")
assert os.getxattr(m, "user.x") == b"v1"
assert os.getxattr(d, "user.x") == b"v1"
assert "user.x" in os.listxattr(m), os.listxattr(m)
os.setxattr(m, "user.x", b"value two")
assert os.getxattr(d, "user.x") == b"value two"
os.removexattr(m, "user.x")
for p in (m, d):
    try:
        os.getxattr(p, "user.x")
        sys.exit("user.x still there on " + p)
    except OSError as e:
        assert e.errno == errno.ENODATA, e
print("ok")' "$M/f" "$D/f"
	assert_output ok
}

@test "flock held by one process makes flock -n fail in another" {
	mnt
	flock "$M/lockf" -c "touch '$T/held'; until [ -e '$T/release' ]; do sleep 0.05; done" \
		3>&- &
	holder=$!
	WK_PIDS+=("$holder")
	wait_until 10 test -e "$T/held"
	run flock -n "$M/lockf" true
	assert_failure 1
	touch "$T/release"
	wait "$holder"
	run flock -n "$M/lockf" true
	assert_success
}

@test "POSIX locks (lockf) conflict between processes" {
	mnt
	echo x >"$M/lk"
	pyc 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)' "$M/lk" "$T/held" "$T/release" 3>&- &
	holder=$!
	WK_PIDS+=("$holder")
	wait_until 10 test -e "$T/held"
	try='import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("locked")
except OSError as e:
    print("busy" if e.errno in (errno.EAGAIN, errno.EACCES) else e)'
	run pyc "$try" "$M/lk"
	assert_output busy
	touch "$T/release"
	wait "$holder"
	run pyc "$try" "$M/lk"
	assert_output locked
}
