#!/usr/bin/env bats
# 30-ignore: ignored paths work normally through the mount but produce no
# ops: built-in defaults, .wkfsignore files (gitignore syntax, anywhere) and
# [sync] ignore in config.ini.  Crossing the line by rename records the file
# as created (into tracked) or removed (out of tracked).  Rules judge new
# names only: what is tracked when a rule starts to match it stays tracked,
# and no scan removes it.

load helpers

setup() {
	wk_dirs
}

teardown() {
	wk_teardown
}

DEFAULT_IGNORED=(.notes.txt.swp .notes.txt.swx 4913 'notes.txt~' '#notes.txt#'
	'.#notes.txt' '~$report.docx' '.~lock.report.odt#' 'video.mp4.part'
	'setup.exe.crdownload' .DS_Store Thumbs.db)

@test "default ignore patterns: files work normally, no ops" {
	wk_init "$D"
	wk_mount "$D"
	mkdir "$D/sub"
	wait_op mkdir sub
	mark=$(ops_mark)
	for n in "${DEFAULT_IGNORED[@]}"; do
		printf 'data %s\n' "$n" >"$D/$n"
		printf 'data %s\n' "$n" >"$D/sub/$n"
		assert_equal "$(cat "$D/$n")" "data $n"
		echo more >>"$D/sub/$n"
		chmod 600 "$D/sub/$n"
		touch -d '2020-01-01' "$D/sub/$n"
	done
	mv "$D/video.mp4.part" "$D/other.part"
	mv "$D/.DS_Store" "$D/sub/.DS_Store"
	rm "$D/4913"
	# names that only look like ignored ones are tracked
	for n in swp.txt notes.part.txt 'a~b' 4913.txt DS_Store '#x'; do
		echo tracked >"$D/$n"
	done
	echo last >"$D/marker"
	wait_op put marker
	assert_ops_set_since "$mark" \
		"create swp.txt" "put swp.txt" "create notes.part.txt" \
		"put notes.part.txt" "create a~b" "put a~b" "create 4913.txt" \
		"put 4913.txt" "create DS_Store" "put DS_Store" "create #x" "put #x" \
		"create marker" "put marker"
	wk_umount "$D"
	# the ignored files are real files in the backing directory
	assert_equal "$(cat "$D/other.part")" "data video.mp4.part"
	assert_equal "$(cat "$D/sub/.DS_Store")" "data .DS_Store"
	assert_equal "$(cat "$D/sub/Thumbs.db")" "$(printf 'data Thumbs.db\nmore')"
	[ ! -e "$D/4913" ] && [ -f "$D/sub/4913" ]
}

@test "root .wkfsignore: patterns, negation, dir-only, anchoring" {
	wk_init "$D"
	wk_mount "$D"
	printf '# comment\n*.log\n!keep.log\nbuild/\n/rootonly.txt\ncache/\n!cache/keep\n' \
		>"$D/.wkfsignore"
	wait_op put .wkfsignore
	mark=$(ops_mark)
	mkdir -p "$D/sub" "$D/build/obj" "$D/cache" "$D/sub/build"
	for f in a.log keep.log sub/b.log sub/keep.log build/x.o build/obj/y.o \
		rootonly.txt sub/rootonly.txt cache/keep sub/build/z.o plain.txt; do
		echo "$f" >"$D/$f"
	done
	mkdir "$D/sub2"
	echo build >"$D/sub2/build" # "build/" only matches directories
	echo file >"$D/sub/build.txt"
	assert_ops_set_since "$mark" \
		"mkdir sub" \
		"create keep.log" "put keep.log" \
		"create sub/keep.log" "put sub/keep.log" \
		"create sub/rootonly.txt" "put sub/rootonly.txt" \
		"create plain.txt" "put plain.txt" \
		"mkdir sub2" "create sub2/build" "put sub2/build" \
		"create sub/build.txt" "put sub/build.txt"
	for f in a.log sub/b.log build/x.o rootonly.txt cache/keep sub/build/z.o; do
		assert_equal "$(cat "$D/$f")" "$f"
	done
}

@test ".wkfsignore in a subdirectory applies below it; deeper rules win" {
	mkdir -p "$D/sub/deep"
	printf '*.dat\n' >"$D/.wkfsignore"
	printf '*.tmp\n!important.tmp\n/anchored.txt\n!keep.dat\n' >"$D/sub/.wkfsignore"
	wk_init "$D"
	wk_mount "$D"
	mark=$(ops_mark)
	for f in a.tmp sub/a.tmp sub/deep/b.tmp sub/important.tmp sub/deep/important.tmp \
		anchored.txt sub/anchored.txt sub/deep/anchored.txt \
		keep.dat sub/keep.dat sub/deep/keep.dat sub/other.dat; do
		echo "$f" >"$D/$f"
	done
	assert_ops_set_since "$mark" \
		"create a.tmp" "put a.tmp" \
		"create sub/important.tmp" "put sub/important.tmp" \
		"create sub/deep/important.tmp" "put sub/deep/important.tmp" \
		"create anchored.txt" "put anchored.txt" \
		"create sub/deep/anchored.txt" "put sub/deep/anchored.txt" \
		"create sub/keep.dat" "put sub/keep.dat" \
		"create sub/deep/keep.dat" "put sub/deep/keep.dat"
}

@test "[sync] ignore in config.ini is obeyed" {
	wk_init "$D"
	config_add_ignore "$D" '*.bak' '/secret/'
	wk_mount "$D"
	mark=$(ops_mark)
	mkdir -p "$D/sub/secret" "$D/secret"
	for f in x.bak sub/y.bak secret/s.txt sub/secret/t.txt plain; do
		echo "$f" >"$D/$f"
	done
	assert_ops_set_since "$mark" \
		"mkdir sub" "mkdir sub/secret" \
		"create sub/secret/t.txt" "put sub/secret/t.txt" \
		"create plain" "put plain"
	assert_equal "$(cat "$D/secret/s.txt")" secret/s.txt
}

@test "init and the mount scan skip ignored files" {
	mkdir "$D/sub"
	for n in "${DEFAULT_IGNORED[@]}"; do
		echo x >"$D/sub/$n"
	done
	echo x >"$D/a.log"
	printf '*.log\n' >"$D/.wkfsignore"
	echo keep >"$D/keep.txt"
	wk_init "$D"
	assert_equal "$(ops_summary | sort)" "$(printf '%s\n' 'create .wkfsignore' \
		'create keep.txt' 'mkdir sub' 'put .wkfsignore' 'put keep.txt' | sort)"
	# made while unmounted: the scan at mount must skip them too
	echo y >"$D/b.log"
	echo y >"$D/sub/new.part"
	echo y >"$D/new.txt"
	mark=$(ops_mark)
	wk_mount "$D"
	assert_ops_set_since "$mark" "create new.txt" "put new.txt"
}

@test "vim with a swap file in the mount records only the edited file" {
	wk_init "$D"
	wk_mount "$D"
	printf 'line1\n' >"$D/notes.txt"
	wait_op put notes.txt
	mark=$(ops_mark)
	(cd "$D" && vim -Es -u NONE -i NONE -c 'set swapfile directory=.' \
		-c 'normal Gohello' \
		-c "call writefile([swapname('%')], '$T/swapname')" \
		-c wq notes.txt </dev/null 3>&-)
	[[ $(cat "$T/swapname") =~ ^$D/\.notes\.txt\.sw[a-z]$ ]] # in the mount
	[ ! -e "$(cat "$T/swapname")" ]
	assert_equal "$(cat "$D/notes.txt")" "$(printf 'line1\nhello')"
	assert_op put notes.txt "$mark"
	run ops_summary "$mark"
	refute_output --regexp 'swp|swx|4913|~'
	[ "$(ops_summary "$mark" | grep -vc ' notes.txt$')" = 0 ]
	assert_state_matches "$D"
	assert_latest_put_size notes.txt 12
}

@test "rename ignored -> tracked records create+put; tracked -> ignored a remove" {
	wk_init "$D"
	wk_mount "$D"
	echo data >"$D/dl.part"
	echo data >"$D/ref"
	wait_op put ref
	mark=$(ops_mark)
	mv "$D/dl.part" "$D/dl.bin"
	wait_op put dl.bin 1 "$mark"
	assert_op create dl.bin "$mark"
	assert_equal "$(op_field put dl.bin size)" 5
	assert_equal "$(op_field put dl.bin hash)" "$(op_field put ref hash)"
	assert_equal "$(op_field put dl.bin node)" "$(op_field create dl.bin node)"
	run ops_summary
	refute_output --partial dl.part
	assert_state_matches "$D"

	mark=$(ops_mark)
	mv "$D/dl.bin" "$D/dl.bin~"
	assert_ops_since "$mark" "remove dl.bin"
	assert_equal "$(cat "$D/dl.bin~")" data
	assert_state_matches "$D"

	mark=$(ops_mark)
	mv "$D/dl.bin~" "$D/back.bin"
	wait_op put back.bin 1 "$mark"
	assert_op create back.bin "$mark"
	assert_equal "$(op_field put back.bin hash)" "$(op_field put ref hash)"
	assert_state_matches "$D"
}

@test "renaming an ignored directory to a tracked name records its contents" {
	wk_init "$D"
	wk_mount "$D"
	printf 'build/\n' >"$D/.wkfsignore"
	wait_op put .wkfsignore
	mkdir -p "$D/build/sub"
	echo one >"$D/build/a"
	echo two >"$D/build/sub/b"
	echo ref >"$D/ref"
	wait_op put ref
	mark=$(ops_mark)
	mv "$D/build" "$D/out"
	assert_equal "$(cat "$D/out/sub/b")" two
	assert_state_matches "$D"
	assert_op mkdir out "$mark"
	assert_op put out/sub/b "$mark"
	run ops_summary
	refute_output --partial build
}

@test "an ignored directory renamed to a tracked name below the root: contents" {
	wk_init "$D"
	wk_mount "$D"
	printf 'build/\n' >"$D/.wkfsignore"
	wait_op put .wkfsignore
	mkdir -p "$D/top/build/sub" "$D/top/build/empty"
	echo one >"$D/top/build/a"
	echo two >"$D/top/build/sub/b"
	ln -s sub/b "$D/top/build/link"
	echo ref >"$D/top/ref"
	wait_op put top/ref
	mark=$(ops_mark)
	mv "$D/top/build" "$D/top/out"
	assert_equal "$(cat "$D/top/out/sub/b")" two
	assert_state_matches "$D"
	assert_op mkdir top/out "$mark"
	assert_op mkdir top/out/empty "$mark"
	assert_op put top/out/a "$mark"
	assert_op put top/out/sub/b "$mark"
	assert_op symlink top/out/link "$mark"
}


# ---- rules never delete: a tracked name stays tracked --------------------
#
# A rule that starts to match tracked files stops new names from being
# tracked, nothing more: the scan at the next mount still looks at the
# tracked ones (no remove, no mass-delete refusal), and changes made to them
# through the mount are still recorded.

@test "a '*' rule over tracked files: no mass-delete refusal, nothing removed" {
	wk_init "$D"
	wk_mount "$D"
	mkdir "$D/sub"
	for i in $(seq 12); do echo "$i" >"$D/f$i"; done
	echo s >"$D/sub/s"
	wait_op put sub/s
	wait_op put f12
	echo '*' >"$D/.wkfsignore"
	wait_op put .wkfsignore
	wk_umount "$D"
	mark=$(ops_mark)
	wk_mount "$D"
	assert_no_op remove '*' "$mark"
	for i in $(seq 12); do assert_equal "$(cat "$D/f$i")" "$i"; done
	echo edit >>"$D/sub/s"
	echo edit >>"$D/f3"
	echo new >"$D/new"
	wait_op put f3 1 "$mark"
	wait_op put sub/s 1 "$mark"
	assert_no_op create new "$mark"
	assert_no_op remove '*' "$mark"
	assert_equal "$(cat "$D/sub/s")" "$(printf 's\nedit')"
}

@test "[sync] ignore added to config.ini over tracked files: nothing removed" {
	wk_init "$D"
	wk_mount "$D"
	echo report >"$D/report.docx"
	mkdir "$D/build"
	echo o >"$D/build/x.o"
	wait_op put build/x.o
	wait_op put report.docx
	wk_umount "$D"
	config_add_ignore "$D" '*.docx' '/build/'
	mark=$(ops_mark)
	wk_mount "$D"
	assert_no_op remove '*' "$mark"
	echo more >>"$D/report.docx"
	echo more >>"$D/build/x.o"
	echo new >"$D/build/y.o"
	wait_op put report.docx 1 "$mark"
	wait_op put build/x.o 1 "$mark"
	assert_no_op create build/y.o "$mark"
	assert_equal "$(cat "$D/report.docx")" "$(printf 'report\nmore')"
}

# mount_d MODE: mounts D in place (inplace) or at M (mnt); W is where the
# files are reached.
mount_d() {
	if [ "$1" = mnt ]; then
		wk_mount "$D" "$M"
		W=$M
	else
		wk_mount "$D"
		W=$D
	fi
}

# last_put_size_is PATH SIZE SINCE
last_put_size_is() { [ "$(op_field put "$1" size "$3")" = "$2" ]; }

# tracked_then_rule MODE: report.docx, notes/a.txt and plain.txt tracked
# through a mount, then a root .wkfsignore with *.docx and notes/ written
# through it too; unmounts.
tracked_then_rule() {
	wk_init "$D"
	mount_d "$1"
	mkdir "$W/notes"
	echo report >"$W/report.docx"
	echo a >"$W/notes/a.txt"
	echo plain >"$W/plain.txt"
	wait_op put plain.txt
	wait_op put report.docx
	printf '*.docx\nnotes/\n' >"$W/.wkfsignore"
	wait_op put .wkfsignore
	wk_umount "$W"
}

# rule_keeps_tracked MODE
rule_keeps_tracked() {
	tracked_then_rule "$1"
	mark=$(ops_mark)
	mount_d "$1"
	assert_no_op remove '*' "$mark"
	assert_equal "$(cat "$W/report.docx")" report
	assert_equal "$(cat "$W/notes/a.txt")" a
	# still tracked: edits, chmod, renames through the mount are recorded
	echo more >>"$W/report.docx"
	wait_op put report.docx 1 "$mark"
	chmod 600 "$W/notes/a.txt"
	wait_op setattr notes/a.txt 1 "$mark"
	mv "$W/report.docx" "$W/final.docx"
	assert_op move report.docx "$mark"
	# new names the rules match are not
	echo new >"$W/new.docx"
	echo new >"$W/notes/b.txt"
	echo marker >"$W/marker"
	wait_op put marker 1 "$mark"
	assert_no_op create new.docx "$mark"
	assert_no_op create notes/b.txt "$mark"
	assert_no_op remove '*' "$mark"
	wk_umount "$W"
	# ... nor by the next scan; a tracked file's offline edit and deletion
	# are (nothing was skipped for them)
	echo offline >>"$D/final.docx"
	rm "$D/notes/a.txt"
	echo late >"$D/late.docx"
	mark=$(ops_mark)
	mount_d "$1"
	assert_ops_set_since "$mark" "put final.docx" "remove notes/a.txt"
	assert_equal "$(cat "$W/final.docx")" "$(printf 'report\nmore\noffline')"
	[ -f "$W/notes/b.txt" ] && [ -f "$W/new.docx" ] && [ -f "$W/late.docx" ]
}

@test "a rule matching tracked files: the remount removes nothing (in place)" {
	rule_keeps_tracked inplace
}

@test "a rule matching tracked files: the remount removes nothing (at MNT)" {
	rule_keeps_tracked mnt
}

@test "a save through a temporary over a tracked file a rule matches is a put" {
	wk_init "$D"
	wk_mount "$D"
	echo report >"$D/report.docx"
	wait_op put report.docx
	node=$(op_field create report.docx node)
	printf '*.docx\n*.tmp\n' >"$D/.wkfsignore"
	wait_op put .wkfsignore
	mark=$(ops_mark)
	# the temporary is ignored (untracked), the file it replaces tracked
	echo saved >"$D/report.docx.tmp"
	mv "$D/report.docx.tmp" "$D/report.docx"
	wait_op put report.docx 1 "$mark"
	assert_no_op remove '*' "$mark"
	assert_equal "$(op_field put report.docx node "$mark")" "$node"
	assert_equal "$(op_field put report.docx size "$mark")" 6
	# sed -i's temporary is tracked: the usual atomic save
	sed -i 's/saved/sed/' "$D/report.docx"
	assert_equal "$(cat "$D/report.docx")" sed
	wait_until "$WK_TIMEOUT" last_put_size_is report.docx 4 "$mark"
	assert_equal "$(op_field put report.docx node "$mark")" "$node"
}

@test "a save that renames a tracked file a rule matches away is a new file" {
	wk_init "$D"
	wk_mount "$D"
	printf 'line1\n' >"$D/notes.txt"
	wait_op put notes.txt
	echo '*.txt' >"$D/.wkfsignore"
	wait_op put .wkfsignore
	mark=$(ops_mark)
	# vim's writebackup with backupcopy=no: rename the file to a backup
	# name, write it anew, remove the backup
	mv "$D/notes.txt" "$D/notes.txt~"
	printf 'line1\nhello\n' >"$D/notes.txt"
	rm "$D/notes.txt~"
	assert_op put notes.txt "$mark"
	assert_state_matches "$D"
	assert_latest_put_size notes.txt 12
	# other new names the rule matches are not tracked
	echo x >"$D/new.txt"
	echo m >"$D/marker"
	wait_op put marker 1 "$mark"
	assert_no_op create new.txt "$mark"
}
