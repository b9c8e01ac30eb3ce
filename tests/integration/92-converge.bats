#!/usr/bin/env bats
# 92-converge: convergence under real work, through a relay.  Replicas A
# and B are mounted in place, each with its own wkfs-syncd, meeting at one
# wkfs-relay on 127.0.0.1, both online throughout.  Each test is one
# workload done on A with the real programs; after each of its steps B
# must equal A exactly (tests/tools/treecmp.py: names, types, modes,
# sizes, contents, symlink targets, file and symlink mtimes to the
# nanosecond) and both must say Synced with nothing pending, within 30 s.
# Then an edit on B comes back, and rm -rf on A empties B.  Hard-link
# groups are compared apart, last in each test (reported, not failed,
# until hard links replicate as links: the skipped last test).  The workloads and
# the check are in converge.bash (shared with 93-converge-git); the time
# each step took to converge goes to fd 3 ("# converge vim/bkc-no 0.12 s").

load helpers

RELAY=$WKFS_BUILD/wkfs-relay
SYNCD=$WKFS_BUILD/wkfs-syncd

load relay
load converge

setup() { cv_setup_relay; }
teardown() { cv_teardown; }

@test "vim: backupcopy yes, no and auto, backup, undofile, writebackup, swap" {
	cv_wl_vim
}

@test "vim: editing through a symlink" {
	cv_wl_vim_symlink
}

@test "vim: editing a hard-linked file" {
	cv_wl_vim_hardlink
}

@test "sed -i, perl -pi and a python atomic writer" {
	cv_wl_edit_tools
}

@test "cp -a of a tree" {
	cv_wl_cp
}

@test "rsync -a --delete from a source tree" {
	cv_wl_rsync
}

@test "tar x of an archive" {
	cv_wl_tar
}

@test "git: init, commit, branch, checkout back and forth, merge, gc, repack" {
	cv_wl_git
}

@test "sqlite3 in WAL mode" {
	cv_wl_sqlite WAL
}

@test "sqlite3 in DELETE journal mode" {
	cv_wl_sqlite DELETE
}

@test "make: build, rebuild after an edit, clean" {
	cv_wl_make
}

@test "1-process random stress without hard links" {
	cv_wl_stress stress 1 --no-link
}

@test "1-process random stress with hard links" {
	cv_wl_stress stress-links 1
}

@test "4-process random stress without hard links" {
	cv_wl_stress stress 4 --no-link
}

@test "4-process random stress with hard links" {
	cv_wl_stress stress-links 4
}

@test "hard links arrive as hard links" {
	cv_wl_vim_hardlink
	CV_LINKS=strict cv_assert_links
}
