#!/usr/bin/env bash
# tests/bench/git.sh - how long changes take to reach a second replica
# through a git remote (a bare repository on local disk).
#
# Two folders, A and B, mounted in place against one bare repository.
# Two measurements, each from the first write on A until B holds the
# result (`wkfs sync A`, then `wkfs sync B`, timed together with the
# writing):
#   ops      1,000 small files created on A (about 2,000 ops: create + put)
#   content  100 MiB of new random content on A (one file)
# Prints one line per measurement.  Everything is local: it measures
# wkfs-syncd and git plumbing, not a network.  A trap unmounts what the
# script mounted and removes its work directory.
#
#   tests/bench/git.sh          B=build-san, WKFS_BIN as in tests/run
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
W=${WKFS_BIN:-$here/../../${B:-build}/wkfs}
work=$(mktemp -d "${TMPDIR:-/tmp}/wkfs-gitbench.XXXXXX")
export WKFS_STATE_DIR=$work/state
A=$work/a
B_=$work/b
mounted=()

cleanup() {
	local m
	for m in "${mounted[@]}"; do "$W" umount "$m" >/dev/null 2>&1; done
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }

# settle COND...: `wkfs sync` A then B until COND holds (puts are recorded
# when the kernel sends RELEASE, a moment after close).
settle() {
	local i
	for i in $(seq 1 120); do
		"$W" sync "$A" --timeout 600 >/dev/null &&
			"$W" sync "$B_" --timeout 600 >/dev/null || return 1
		"$@" && return 0
		sleep 0.2
	done
	return 1
}
b_has_files() { [ "$(ls "$B_" | wc -l)" -ge 1000 ]; }
b_has_big() { cmp -s "$A/big.bin" "$B_/big.bin"; }

mkdir -p "$A" "$B_"
git init -q --bare "$work/r.git"
for d in "$A" "$B_"; do
	"$W" init "$d" --remote "git:$work/r.git" >/dev/null
	"$W" mount "$d"
	mounted+=("$d")
done

t0=$(now)
for i in $(seq 1 1000); do echo "file $i" >"$A/f$i.txt"; done
settle b_has_files || { echo "the files did not reach B" >&2; exit 1; }
t1=$(now)
ops=$("$W" log "$B_" --json | jq -s 'length')
printf 'git ops:     %d ops (1,000 files) from A to B in %.1f s\n' \
	"$ops" "$(echo "$t1 - $t0" | bc)"

t0=$(now)
head -c $((100 << 20)) /dev/urandom >"$A/big.bin"
settle b_has_big || { echo "big.bin did not reach B" >&2; exit 1; }
t1=$(now)
printf 'git content: 100 MiB of new content from A to B in %.1f s\n' \
	"$(echo "$t1 - $t0" | bc)"
