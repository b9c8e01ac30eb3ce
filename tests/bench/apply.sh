#!/usr/bin/env bash
# tests/bench/apply.sh - how the cost of applying a small remote batch grows
# with the size of the tree it lands in.
#
# Two replicas mounted in place: A holds one file, B holds N files (made
# before `wkfs init`, in 100 directories).  Each round edits A's file and
# runs `wkfs debug import A B` (copy the new ops, then one apply round in
# B's mount): one batch of one put landing in an N-file tree.  B's mount
# runs in the foreground with WKFS_DEBUG=1, and its per-round line ("apply:
# ... in X ms (materializer Y, index Z)") gives the time spent inside the
# round; the import's wall time is shown too.  Medians over the rounds.
# What it is not: a test (nothing is asserted) or a network benchmark.
#
#   tests/bench/apply.sh               N = 0 and 10000, 50 rounds each
#   BENCH_N="0 1000 10000" BENCH_ROUNDS=20 tests/bench/apply.sh
#
# A trap unmounts what the script mounted and removes its directory.
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
B=${B:-build}
W=${WKFS_BIN:-$root/$B/wkfs}
NS=${BENCH_N:-0 10000}
ROUNDS=${BENCH_ROUNDS:-50}
work=$(mktemp -d "${TMPDIR:-/tmp}/wkfs-bench-apply.XXXXXX")
mounted=()

cleanup() {
	local m
	for m in "${mounted[@]}"; do
		"$W" umount "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

now_ms() {
	date +%s%3N
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "-") }'
}

# run_n N: one line of medians for N files.
run_n() {
	local n=$1 a=$work/a$1 b=$work/b$1 log=$work/b$1.log i t0 t1 walls=()
	mkdir -p "$a" "$b"
	((n == 0)) || mkdir "$b"/d{0..99}
	for ((i = 0; i < n; i++)); do
		echo "$i" >"$b/d$((i % 100))/f$i"
	done
	"$W" init "$a" --device a >/dev/null
	"$W" init "$b" --device b >/dev/null
	"$W" mount "$a" && mounted+=("$a")
	WKFS_DEBUG=1 "$W" mount -f "$b" 2>"$log" &
	mounted+=("$b")
	until "$W" debug apply "$b" >/dev/null 2>&1; do sleep 0.1; done
	echo start >"$a/f"
	"$W" debug import "$a" "$b" >/dev/null || return 1
	: >"$log"
	for ((i = 0; i < ROUNDS; i++)); do
		echo "round $i" >"$a/f"
		"$W" debug apply "$a" >/dev/null # A's put is committed
		t0=$(now_ms)
		"$W" debug import "$a" "$b" >/dev/null || return 1
		t1=$(now_ms)
		walls+=($((t1 - t0)))
	done
	printf '%7d files: round %s ms (index %s ms), import wall %s ms\n' \
		"$n" \
		"$(sed -n 's/.*apply: .* in \([0-9.]*\) ms.*/\1/p' "$log" | median)" \
		"$(sed -n 's/.*index \([0-9.]*\)).*/\1/p' "$log" | median)" \
		"$(printf '%s\n' "${walls[@]}" | median)"
}

for n in $NS; do
	run_n "$n" || {
		echo "round failed for N=$n" >&2
		exit 1
	}
done
