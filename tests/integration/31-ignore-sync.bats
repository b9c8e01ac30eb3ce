#!/usr/bin/env bats
# 31-ignore-sync: ignore rules between replicas.  A .wkfsignore made on one
# replica reaches the others like any file and changes only what each
# records from then on: a file both already track stays tracked, and a
# replica's remount (its scan) removes nothing the rule matches.  Two
# folders mounted in place, each with its own wkfs-syncd, one relay on
# 127.0.0.1.

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay

SYNC_WAIT=60 # seconds a change may take to reach every replica

setup() { replicas_setup; }
teardown() { replicas_teardown; }

# has_content FILE TEXT
has_content() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

@test "a .wkfsignore from A matching a tracked file: B's remount deletes nothing" {
	replica a
	replica b
	echo report >"$A/report.docx"
	wait_same "$SYNC_WAIT" "$A" "$B"
	printf '*.docx\n' >"$A/.wkfsignore"
	wait_until "$SYNC_WAIT" has_content "$B/.wkfsignore" '*.docx'

	# B knows the rule from the moment the file arrives: new names it
	# matches are not recorded there
	echo local >"$B/before-remount.docx"
	echo m1 >"$B/marker1"
	D=$B wait_op put marker1
	D=$B assert_no_op create before-remount.docx

	# an ordinary reboot of B
	stop_syncd b
	wk_umount "$B"
	replica_mount b
	start_syncd b
	# B's ops (a remove, if its scan recorded one) reach A before this
	echo m2 >"$B/marker2"
	wait_until "$SYNC_WAIT" has_content "$A/marker2" m2
	has_content "$A/report.docx" report
	has_content "$B/report.docx" report
	D=$A assert_no_op remove '*'
	D=$B assert_no_op remove '*'

	# still tracked on both: an edit on A reaches B, one on B reaches A
	echo from-a >>"$A/report.docx"
	wait_until "$SYNC_WAIT" has_content "$B/report.docx" $'report\nfrom-a'
	echo from-b >>"$B/report.docx"
	wait_until "$SYNC_WAIT" has_content "$A/report.docx" \
		$'report\nfrom-a\nfrom-b'
	# and the new names stayed where they were made
	[ ! -e "$A/before-remount.docx" ]
	D=$A assert_no_op remove '*'
	D=$B assert_no_op remove '*'
}
