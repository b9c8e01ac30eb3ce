#!/usr/bin/env bats
# 93-converge-git: convergence under real work, through a git remote.  The
# workloads and the check of 92-converge (converge.bash), with replicas A
# and B meeting at a bare repository on disk instead of a relay: each
# mounted in place with its own wkfs-syncd fetching every second
# ([remote] interval = 1; a push goes at most every 2 s).  After each step
# B must equal A exactly and both must say Synced with nothing pending,
# within 30 s; then an edit on B comes back and rm -rf on A empties B.
# Hard-link groups are a separate assertion, last in each test.

load helpers

SYNCD=$WKFS_BUILD/wkfs-syncd

load relay
load converge

setup() { cv_setup_git; }
teardown() { cv_teardown; }

@test "git remote: vim: backupcopy yes, no and auto, backup, undofile, writebackup, swap" {
	cv_wl_vim
}

@test "git remote: vim: editing through a symlink" {
	cv_wl_vim_symlink
}

@test "git remote: vim: editing a hard-linked file" {
	cv_wl_vim_hardlink
}

@test "git remote: sed -i, perl -pi and a python atomic writer" {
	cv_wl_edit_tools
}

@test "git remote: cp -a of a tree" {
	cv_wl_cp
}

@test "git remote: rsync -a --delete from a source tree" {
	cv_wl_rsync
}

@test "git remote: tar x of an archive" {
	cv_wl_tar
}

@test "git remote: git: init, commit, branch, checkout back and forth, merge, gc, repack" {
	cv_wl_git
}
