#!/usr/bin/env bash
# tests/bench/converge.sh - how long real work on one replica takes to
# converge on the other, through a relay and through a git remote.
#
# Runs the convergence suites themselves (tests/integration/92-converge.bats
# for the relay, 93-converge-git.bats for a bare git repository on disk;
# the workloads and the check are in tests/integration/converge.bash) and
# tabulates the time each step took from its last write on A until B
# equalled A and both said Synced: the `# converge STEP T s` lines the
# suites print.  One column per remote; with BENCH_RUNS > 1, the median.
#
# A step that did not converge within the suite's deadline shows "fail";
# when only mtimes kept A and B apart it shows the time everything else
# took, marked "*".  A test stops at its first failure, so its later
# steps show "-".  What it is not: a throughput benchmark (sync.sh) or a
# correctness verdict (run the suites for that: make check-run
# WKFS_TESTS=converge).
#
#   tests/bench/converge.sh                    both remotes, one run each
#   BENCH_ONLY=relay BENCH_RUNS=3 tests/bench/converge.sh
#   BENCH_FILTER=vim tests/bench/converge.sh   only tests matching (bats -f)
#
# Environment: BENCH_ONLY (relay git), BENCH_RUNS (1), BENCH_FILTER (a
# regex on test names), BENCH_WAIT (seconds a step may take, the suites'
# CV_WAIT, default 30), BENCH_TIMEOUT (seconds one suite run may take,
# default 1800), B (build directory), CV_FIELDS (passed on: what the
# suites compare).  Needs root (FUSE mounts) and bats.  The table goes to
# stdout and to tests/bench/out/converge-<timestamp>.txt, progress to
# stderr, each run's TAP output to the work directory (kept with
# BENCH_KEEP=1).  The suites clean up after themselves (their teardown
# unmounts and stops what they started, by pid); a trap stops a suite
# still running.  Exits 1 if a step failed.
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$here/lib.sh"

die()
{
	echo "converge.sh: $*" >&2
	exit 1
}

say()
{
	printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

B=${B:-build}
export WKFS_BUILD=$root/$B WKFS_BIN=$root/$B/wkfs TZ=UTC
export CV_WAIT=${BENCH_WAIT:-30}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
RUNS=${BENCH_RUNS:-1}
ONLY=${BENCH_ONLY:-relay,git}
FILTER=${BENCH_FILTER:-}
bench_is_number "$RUNS" && [ "$RUNS" -ge 1 ] || die "BENCH_RUNS must be 1 or more"

declare -A SUITE=([relay]=92-converge.bats [git]=93-converge-git.bats)
REMOTES=()
for r in ${ONLY//,/ }; do
	[ -n "${SUITE[$r]:-}" ] || die "unknown remote '$r' (known: relay git)"
	REMOTES+=("$r")
done
[ "$(id -u)" = 0 ] || die "needs root (FUSE mounts)"
command -v bats >/dev/null || die "bats is missing (tools/install-deps)"
for f in wkfs wkfs-relay wkfs-syncd; do
	[ -x "$WKFS_BUILD/$f" ] || die "$WKFS_BUILD/$f is not built (make -j2)"
done

base=$(bench_workdir "$here/out") || exit 1
trap 'bench_cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
W=$(mktemp -d "$base/converge-bench.XXXXXX") || die "mktemp in $base failed"
[ "${BENCH_KEEP:-0}" = 1 ] || BENCH_WORKDIR=$W

declare -A VAL	# VAL[step,remote]: space-separated values, one per run
STEPS=()	# in the order first seen
FAILED=0

# parse REMOTE TAPFILE: the `# converge` lines into VAL.
parse()
{
	local remote=$1 line step rest v
	while IFS= read -r line; do
		[[ $line == '# converge '* ]] || continue
		rest=${line#'# converge '}
		step=${rest%% *}
		rest=${rest#"$step "}
		if [[ $rest =~ ^([0-9.]+)\ s$ ]]; then
			v=${BASH_REMATCH[1]}
		elif [[ $rest =~ after\ ([0-9.]+)\ s\) ]]; then
			v="${BASH_REMATCH[1]}*"
			FAILED=1
		else
			v=fail
			FAILED=1
		fi
		[ -n "${VAL[$step,x]:-}" ] || { STEPS+=("$step"); VAL[$step,x]=1; }
		VAL[$step,$remote]="${VAL[$step,$remote]:-} $v"
	done <"$2"
}

# cell VALUES...: the median of the numbers; "fail" if any run failed;
# "T*" (median of the starred ones) if some only differed in mtimes.
cell()
{
	local v nums=() star=0
	[ $# -gt 0 ] || { echo -; return; }
	for v in "$@"; do
		case $v in
		fail) echo fail; return ;;
		*'*') star=1; nums+=("${v%'*'}") ;;
		*) nums+=("$v") ;;
		esac
	done
	v=$(bench_median "${nums[@]}")
	bench_is_number "$v" && v=$(printf '%.2f' "$v")
	[ "$star" = 1 ] && v="$v*"
	echo "$v"
}

say "work directory $W; CV_WAIT=$CV_WAIT s${FILTER:+, tests matching '$FILTER'}"
for ((run = 1; run <= RUNS; run++)); do
	for r in "${REMOTES[@]}"; do
		out=$W/$r-$run.tap
		say "run $run/$RUNS: $r (${SUITE[$r]})"
		bench_run bats --tap ${FILTER:+-f "$FILTER"} \
			"$root/tests/integration/${SUITE[$r]}" >"$out" 2>&1
		grep -E '^(ok|not ok) ' "$out" | sed 's/^/  /' >&2
		parse "$r" "$out"
	done
done

print_table()
{
	local s r
	printf 'wkfs convergence: time from the last write on A until B equals A and both are Synced\n'
	printf '%s, %s CPUs, %s run(s), deadline %s s%s\n\n' "$(date -u +%FT%TZ)" \
		"$(nproc)" "$RUNS" "$CV_WAIT" "${FILTER:+, tests matching '$FILTER'}"
	printf '%-34s' step
	for r in "${REMOTES[@]}"; do printf ' %10s' "$r"; done
	printf '\n'
	for s in "${STEPS[@]}"; do
		printf '%-34s' "$s"
		for r in "${REMOTES[@]}"; do
			# shellcheck disable=SC2086 # one value per word
			printf ' %10s' "$(cell ${VAL[$s,$r]:-})"
		done
		printf '\n'
	done
	echo
	echo "seconds; fail: not converged within $CV_WAIT s; T*: only mtimes"
	echo "differed (everything else converged after T s); -: not reached"
	echo "(the test had failed at an earlier step) or not run."
}

mkdir -p "$here/out"
outf=$here/out/converge-$(date +%Y%m%d-%H%M%S).txt
print_table | tee "$outf"
echo "(also in $outf)" >&2
exit $FAILED
