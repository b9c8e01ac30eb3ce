#!/usr/bin/env bats
# 40-clients: real programs on a directory mounted over itself.  After each,
# the content is right and the oplog, replayed by node id, describes exactly
# the tree on disk (paths, types, and each file's latest put size).

load helpers

setup() {
	wk_setup_inplace
}

teardown() {
	wk_teardown
}

# vim_edit FILE CMD...: vim in Ex mode, no vimrc/viminfo, appending "hello".
vim_edit() {
	local f=$1
	shift
	local args=()
	for c in "$@"; do args+=(-c "$c"); done
	(cd "$(dirname "$f")" && vim -Es -u NONE -i NONE "${args[@]}" \
		-c 'normal Gohello' -c wq "$(basename "$f")" </dev/null 3>&-)
}

# only_ops_on SINCE PATH: every op after SINCE is on PATH.
only_ops_on() {
	local others
	others=$(ops_summary "$1" | grep -v " $2\$" || true)
	if [ -n "$others" ]; then
		printf 'ops on other paths than %s:\n%s\n' "$2" "$others" >&2
		return 1
	fi
}

@test "vim :set backupcopy=yes rewrites in place: puts on the same node" {
	printf 'line1\n' >"$D/f"
	wait_op put f
	node=$(op_field create f node)
	mark=$(ops_mark)
	vim_edit "$D/f" 'set backupcopy=yes'
	assert_equal "$(cat "$D/f")" "$(printf 'line1\nhello')"
	assert_op put f "$mark"
	assert_state_matches "$D"
	only_ops_on "$mark" f
	assert_no_op create '*' "$mark"
	assert_no_op remove '*' "$mark"
	assert_no_op move '*' "$mark"
	assert_equal "$(op_field put f node)" "$node"
	assert_latest_put_size f 12
}

@test "vim :set backupcopy=no writes a new file: only f is recorded" {
	printf 'line1\n' >"$D/f"
	wait_op put f
	mark=$(ops_mark)
	vim_edit "$D/f" 'set backupcopy=no' 'set writebackup'
	assert_equal "$(cat "$D/f")" "$(printf 'line1\nhello')"
	[ ! -e "$D/f~" ]
	assert_op put f "$mark"
	assert_state_matches "$D"
	only_ops_on "$mark" f
	assert_latest_put_size f 12
}

@test "vim with a swap file in the mount (directory=.)" {
	printf 'line1\n' >"$D/f"
	wait_op put f
	mark=$(ops_mark)
	vim_edit "$D/f" 'set swapfile directory=.' \
		"call writefile([swapname('%')], '$T/swapname')"
	[[ $(cat "$T/swapname") =~ ^$D/\.f\.sw[a-z]$ ]] # in the mount
	[ ! -e "$(cat "$T/swapname")" ]
	assert_equal "$(cat "$D/f")" "$(printf 'line1\nhello')"
	assert_op put f "$mark"
	assert_state_matches "$D"
	only_ops_on "$mark" f
	assert_latest_put_size f 12
}

@test "sed -i replaces the file through a temp file" {
	printf 'one\ntwo\nthree\n' >"$D/f"
	wait_op put f
	sed -i 's/two/TWO-2/' "$D/f"
	assert_equal "$(cat "$D/f")" "$(printf 'one\nTWO-2\nthree')"
	assert_state_matches "$D" # sed's temp file is gone from the ops' tree too
	assert_latest_put_size f 16
}

@test "python write-temp, fsync, os.replace" {
	printf 'old\n' >"$D/f"
	wait_op put f
	pyc 'import os, sys
d = sys.argv[1]
with open(os.path.join(d, "f.tmp"), "wb") as t:
    t.write(b"new content\n" * 100)
    t.flush()
    os.fsync(t.fileno())
os.replace(os.path.join(d, "f.tmp"), os.path.join(d, "f"))' "$D"
	[ ! -e "$D/f.tmp" ]
	assert_equal "$(stat -c %s "$D/f")" 1200
	assert_state_matches "$D"
	assert_latest_put_size f 1200
}

@test "git init/add/commit/branch/checkout/gc; fsck --full is clean" {
	r=$D/repo
	git init -q -b main "$r"
	cd "$r"
	git config user.name t
	git config user.email t@example.org
	mkdir src
	printf 'hello\n' >README
	for i in $(seq 20); do printf 'int f%d(void) { return %d; }\n' "$i" "$i" >"src/f$i.c"; done
	git add -A
	git commit -q -m first
	git branch feature
	git checkout -q feature
	echo feature >>README
	git rm -q src/f1.c
	git mv src/f2.c src/g2.c
	git commit -q -am second
	git checkout -q main
	assert_equal "$(cat README)" hello
	[ -f src/f1.c ] && [ ! -e src/g2.c ]
	git checkout -q feature
	assert_equal "$(tail -n 1 README)" feature
	git gc -q --prune=now
	run git fsck --full --strict
	assert_success
	refute_output --regexp 'error|missing|broken|corrupt|bad'
	run git status --porcelain
	assert_output ''
	assert_equal "$(git rev-list --count feature)" 2
	assert_equal "$(git rev-list --count main)" 1
	cd "$T"
	assert_state_matches "$D"
}

@test "sqlite3 in WAL mode: inserts, integrity_check ok" {
	db=$D/w.db
	sqlite3 "$db" 'PRAGMA journal_mode=WAL;' \
		'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);' >/dev/null
	for i in $(seq 5); do
		sqlite3 "$db" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000)
			INSERT INTO t(v) SELECT hex(randomblob(50)) || '$i' FROM c;"
	done
	sqlite3 "$db" 'DELETE FROM t WHERE id % 7 = 0;'
	run sqlite3 "$db" 'PRAGMA integrity_check;'
	assert_output ok
	run sqlite3 "$db" 'PRAGMA journal_mode;'
	assert_output wal
	assert_equal "$(sqlite3 "$db" 'SELECT count(*) FROM t')" $((5000 - 5000 / 7))
	[ ! -e "$db-wal" ]
	assert_state_matches "$D"
	assert_latest_put_size w.db "$(stat -c %s "$db")"
}

@test "sqlite3 in rollback mode (journal_mode=DELETE): integrity_check ok" {
	db=$D/r.db
	sqlite3 "$db" 'PRAGMA journal_mode=DELETE;' \
		'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);' >/dev/null
	for i in $(seq 5); do
		sqlite3 "$db" "BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000)
			INSERT INTO t(v) SELECT hex(randomblob(50)) FROM c; COMMIT;"
	done
	sqlite3 "$db" 'UPDATE t SET v = upper(v) || v WHERE id % 3 = 0;'
	run sqlite3 "$db" 'PRAGMA integrity_check;'
	assert_output ok
	assert_equal "$(sqlite3 "$db" 'SELECT count(*) FROM t')" 5000
	[ ! -e "$db-journal" ]
	assert_state_matches "$D"
	assert_latest_put_size r.db "$(stat -c %s "$db")"
}

# make_tree DIR: a small tree with nested dirs, modes, a symlink, an empty
# file and a larger binary file.
make_tree() {
	mkdir -p "$1/a/b/c" "$1/empty-dir"
	printf 'top\n' >"$1/top.txt"
	printf 'deep\n' >"$1/a/b/c/deep.txt"
	: >"$1/a/empty"
	head -c 300000 /dev/urandom >"$1/a/b/blob.bin"
	printf '#!/bin/sh\necho run\n' >"$1/a/run.sh"
	chmod 755 "$1/a/run.sh"
	chmod 600 "$1/a/b/c/deep.txt"
	ln -s b/c/deep.txt "$1/a/link"
	touch -d '2019-03-04 05:06:07' "$1/top.txt" "$1/a/b/blob.bin"
}

# listing DIR: path, type, mode, size (files) and mtime (s) of everything
# below DIR, and each symlink's target.
listing() {
	(
		cd "$1" || exit 1
		{
			find . -mindepth 1 -type f -printf '%P f %m %s %TY%Tm%Td%TH%TM%TS\n'
			find . -mindepth 1 -type d -printf '%P d %m %TY%Tm%Td%TH%TM%TS\n'
			find . -mindepth 1 -type l -printf '%P l %l\n'
		} | sed 's/\.[0-9]*$//' | sort
	)
}

@test "tar c/x round trip through the mount" {
	make_tree "$T/src"
	tar -C "$T/src" -cf "$D/a.tar" .
	mkdir "$D/x"
	tar -C "$D/x" -xf "$D/a.tar"
	diff -r "$T/src" "$D/x"
	diff <(listing "$T/src") <(listing "$D/x")
	tar -C "$D/x" -cf "$T/b.tar" .
	mkdir "$T/y"
	tar -C "$T/y" -xf "$T/b.tar"
	diff -r "$T/src" "$T/y"
	diff <(listing "$T/src") <(listing "$T/y")
	assert_state_matches "$D"
	assert_latest_put_size a.tar "$(stat -c %s "$D/a.tar")"
	assert_latest_put_size x/a/b/blob.bin 300000
}

@test "rsync -a --delete mirrors a tree into the mount" {
	make_tree "$T/src"
	rsync -a "$T/src/" "$D/r/"
	diff -r "$T/src" "$D/r"
	diff <(listing "$T/src") <(listing "$D/r")
	# change the source: delete a file and a dir, edit a file, add one
	rm "$T/src/a/b/c/deep.txt" "$T/src/a/link"
	rm -r "$T/src/empty-dir"
	printf 'TOP\n' >"$T/src/top.txt"
	echo new >"$T/src/a/new.txt"
	rsync -a --delete "$T/src/" "$D/r/"
	diff -r "$T/src" "$D/r"
	diff <(listing "$T/src") <(listing "$D/r")
	# nothing left to do: sizes and mtimes read back as rsync set them
	run rsync -ai --delete "$T/src/" "$D/r/"
	assert_success
	assert_output ''
	assert_state_matches "$D"
	assert_latest_put_size r/top.txt 4
}

@test "make -j2 builds a small C project; touching one .c rebuilds only it" {
	p=$D/proj
	mkdir "$p"
	printf 'int fa(void);\nint fb(void);\n' >"$p/proj.h"
	printf '#include <stdio.h>\n#include "proj.h"\nint main(void) { printf("%%d %%d\\n", fa(), fb()); return 0; }\n' >"$p/main.c"
	printf '#include "proj.h"\nint fa(void) { return 1; }\n' >"$p/a.c"
	printf '#include "proj.h"\nint fb(void) { return 2; }\n' >"$p/b.c"
	printf 'OBJS = main.o a.o b.o\nprog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n%%.o: %%.c proj.h\n\t$(CC) -O0 -c -o $@ $<\n' >"$p/Makefile"
	run make -s -j2 -C "$p"
	assert_success
	run "$p/prog"
	assert_output '1 2'
	run make -q -C "$p"
	assert_success # up to date: mtimes read back consistently

	now=$(date +%s)
	touch -d "@$((now - 200))" "$p"/*.c "$p/proj.h" "$p/Makefile"
	touch -d "@$((now - 100))" "$p"/*.o "$p/prog"
	before_a=$(stat -c %Y "$p/a.o")
	before_main=$(stat -c %Y "$p/main.o")
	printf '#include "proj.h"\nint fb(void) { return 42; }\n' >"$p/b.c"
	run make -n -C "$p"
	assert_success
	assert_output --partial 'b.c'
	refute_output --partial 'a.c'
	refute_output --partial 'main.c'
	assert_output --partial '-o prog'
	run make -s -j2 -C "$p"
	assert_success
	run "$p/prog"
	assert_output '1 42'
	assert_equal "$(stat -c %Y "$p/a.o")" "$before_a"
	assert_equal "$(stat -c %Y "$p/main.o")" "$before_main"
	[ "$(stat -c %Y "$p/b.o")" -gt $((now - 100)) ]
	run make -q -C "$p"
	assert_success
	assert_state_matches "$D"
	assert_latest_put_size proj/prog "$(stat -c %s "$p/prog")"
}
