#!/usr/bin/env bats
# 66-users: a mount made by root with allow_other serves every user of the
# machine, as a local file system does.  What a user creates is theirs
# (owner, group, their umask); the kernel's rules for chmod, chown, sticky
# directories, truncate and link hold for them; ownership stays out of the
# ops, and what other replicas' ops create still belongs to the mount's
# owner.  Other users are plain uids (setpriv, no account needed); the
# folder lives in a directory they can reach (the test's own is 0700).

load helpers

U1=4242 # two users with their own groups, no account needed
U2=4243
G=4300 # a group U1 may be given as a supplementary group

setup() {
	[ "$(id -u)" = 0 ] || skip "needs root (a mount that serves other users)"
	umask 022
	T=$(mktemp -d /tmp/wkfs-users.XXXXXX)
	chmod 755 "$T"
	D=$T/d
	M=$T/m
	mkdir "$D" "$M"
	WK_DIRS+=("$D")
	wk_init "$D"
}

teardown() {
	wk_teardown
	[ -z "${T:-}" ] || rm -rf "$T"
}

# as UID CMD...: CMD as UID, group UID, no supplementary group.
as() {
	local u=$1
	shift
	setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"
}

# as_in UID GROUPS CMD...: the same with supplementary GROUPS (a,b,...).
as_in() {
	local u=$1 g=$2
	shift 2
	setpriv --reuid="$u" --regid="$u" --groups="$g" -- "$@"
}

# shared: D mounted at M by root for every user, with a world-writable,
# sticky top directory (like /tmp) to work in.
shared() {
	wk_mount "$D" "$M" -o allow_other
	mkdir "$M/pub"
	chmod 1777 "$M/pub"
}

owner() { stat -c %u:%g "$1"; }

# import SRC DST: SRC's ops into DST (`wkfs debug import`, standing in for
# wkfs-syncd), all applied.
import() {
	run "$WKFS_BIN" debug import "$1" "$2"
	assert_success
	assert_output --regexp $'(^|\n)imported [0-9]+ applied [0-9]+ 0$'
}

@test "what another user creates is theirs, readable with umask 077, and theirs to delete" {
	shared
	as $U1 sh -c "umask 077 && cd '$M/pub' && echo secret >f &&
		mkdir dir && ln -s f link && mkfifo fifo && echo in >dir/g"
	for n in f dir link fifo dir/g; do
		assert_equal "$(owner "$M/pub/$n")" $U1:$U1
		assert_equal "$(owner "$D/pub/$n")" $U1:$U1
	done
	assert_equal "$(stat -c %a "$D/pub/f")" 600
	assert_equal "$(stat -c %a "$D/pub/dir")" 700
	assert_equal "$(stat -c %a "$D/pub/fifo")" 600
	run as $U1 cat "$M/pub/f" "$M/pub/dir/g"
	assert_success
	assert_output $'secret\nin'
	# and nobody else's: umask 077 keeps U2 out
	run as $U2 cat "$M/pub/f"
	assert_failure
	run as $U1 sh -c "cd '$M/pub' && rm f link fifo dir/g && rmdir dir"
	assert_success
	[ -z "$(ls -A "$D/pub")" ]
	assert_op remove pub/f
}

@test "the caller's umask applies, not the mount process's" {
	umask 077
	shared
	umask 022
	as $U1 sh -c "umask 002 && cd '$M/pub' && : >f && mkdir d"
	assert_equal "$(stat -c %a "$D/pub/f")" 664
	assert_equal "$(stat -c %a "$D/pub/d")" 775
	: >"$M/pub/r"
	assert_equal "$(stat -c %a "$D/pub/r")" 644
	assert_equal "$(owner "$D/pub/r")" 0:0
}

@test "group: a set-group-ID directory's, else the caller's; supplementary groups give access" {
	shared
	mkdir "$M/team"
	chgrp $G "$M/team"
	chmod 2775 "$M/team"
	as_in $U1 $G sh -c "cd '$M/team' && : >f && mkdir sub"
	assert_equal "$(owner "$D/team/f")" $U1:$G
	assert_equal "$(owner "$D/team/sub")" $U1:$G
	[ -g "$D/team/sub" ]
	# not in the group: no write access to the directory
	run as $U2 touch "$M/team/g"
	assert_failure
	[ ! -e "$D/team/g" ]
	as $U2 touch "$M/pub/g"
	assert_equal "$(owner "$D/pub/g")" $U2:$U2
}

@test "sticky directory: only the owner removes or renames their file" {
	shared
	as $U1 sh -c "cd '$M/pub' && echo a >a && mkdir ad"
	run as $U2 rm -f "$M/pub/a"
	assert_failure
	run as $U2 mv "$M/pub/a" "$M/pub/b"
	assert_failure
	run as $U2 rmdir "$M/pub/ad"
	assert_failure
	[ -f "$D/pub/a" ] && [ -d "$D/pub/ad" ]
	as $U1 mv "$M/pub/a" "$M/pub/b"
	as $U1 rm "$M/pub/b"
	as $U1 rmdir "$M/pub/ad"
	[ -z "$(ls -A "$D/pub")" ]
}

@test "chmod, chown, truncate and link follow the kernel's rules for users" {
	shared
	as $U1 sh -c "cd '$M/pub' && echo data >f && chmod 644 f"
	as $U1 chmod 640 "$M/pub/f"
	assert_equal "$(stat -c %a "$D/pub/f")" 640
	run as $U2 chmod 666 "$M/pub/f"
	assert_failure
	# only root gives a file away; its owner may give it to their groups
	run as $U1 chown $U2 "$M/pub/f"
	assert_failure
	run as $U1 chgrp $G "$M/pub/f"
	assert_failure
	as_in $U1 $G chgrp $G "$M/pub/f"
	assert_equal "$(owner "$D/pub/f")" $U1:$G
	# set-group-ID is dropped when the owner is not in the file's group
	as $U1 chmod 2750 "$M/pub/f"
	assert_equal "$(stat -c %a "$D/pub/f")" 750
	chown $U2:$U2 "$M/pub/f"
	assert_equal "$(owner "$D/pub/f")" $U2:$U2
	# U1 may no longer write it: no truncate, no hard link (protected)
	run as $U1 truncate -s 0 "$M/pub/f"
	assert_failure
	assert_equal "$(cat "$D/pub/f")" data
	if [ "$(cat /proc/sys/fs/protected_hardlinks)" = 1 ]; then
		run as $U1 ln "$M/pub/f" "$M/pub/l"
		assert_failure
	fi
	as $U2 truncate -s 0 "$M/pub/f"
	assert_equal "$(stat -c %s "$D/pub/f")" 0
}

@test "ops carry no owner; other replicas' files belong to the mount's owner" {
	# A serves other users; B is root's.  Files go both ways.
	A=$T/a
	B=$T/b
	mkdir "$A" "$B"
	WK_DIRS+=("$A" "$B")
	wk_init "$A" --device a
	wk_init "$B" --device b
	wk_mount "$A" -o allow_other
	wk_mount "$B"
	mkdir "$A/pub"
	chmod 1777 "$A/pub"
	as $U1 sh -c "cd '$A/pub' && echo mine >u && mkdir ud"
	assert_equal "$(owner "$A/pub/u")" $U1:$U1
	D=$A wait_op put pub/u
	run "$WKFS_BIN" log "$A" --json
	assert_success
	refute_output --regexp '"(uid|gid|owner|user|group)"'
	import "$A" "$B"
	assert_equal "$(cat "$B/pub/u")" mine
	assert_equal "$(owner "$B/pub/u")" 0:0
	assert_equal "$(owner "$B/pub/ud")" 0:0
	# A's threads have served U1: what B sends is still created as root
	echo theirs >"$B/pub/r"
	mkdir "$B/pub/rd"
	D=$B wait_op put pub/r
	import "$B" "$A"
	assert_equal "$(cat "$A/pub/r")" theirs
	assert_equal "$(owner "$A/pub/r")" 0:0
	assert_equal "$(owner "$A/pub/rd")" 0:0
	assert_equal "$(owner "$A/pub/u")" $U1:$U1
}
