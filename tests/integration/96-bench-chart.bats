#!/usr/bin/env bats
# 96-bench-chart: the benchmarks' charts (tests/bench/lib.sh bench_chart,
# which fs.sh and sync.sh call beside their tables) drawn by the real
# gnuplot from a table of ratios like theirs: a well-formed SVG with a
# bar per value, each series in the legend, the baseline named.

load helpers

setup() {
	T=$(realpath "$BATS_TEST_TMPDIR")
	LIB=$(realpath "$BATS_TEST_DIRNAME/../bench/lib.sh")
}

@test "bench_chart draws the ratios as an SVG bar chart" {
	printf '%s\n' $'workload\tbindfs\twkfs' \
		$'seq write 64 MiB\t6.1\t2.3' \
		$'10k files meta\t11.7\t-' \
		$'untar\t7.7\t0.8' >"$T/r.tsv"
	run bash -c '. "$1"; bench_chart "$2/r.tsv" "$2/r.svg" "test chart" native' \
		_ "$LIB" "$T"
	assert_success
	[ -s "$T/r.svg" ]
	"$PY" - "$T/r.svg" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
svg = ET.parse(sys.argv[1]).getroot()
text = " ".join(t.strip() for t in svg.itertext())
for want in ("test chart", "bindfs", "wkfs", "native = 1", "untar",
             "cost relative to native"):
    assert want in text, (want, text)
PYEOF
	# five values, one missing: five filled boxes, and one more per
	# series in the legend
	run grep -c "<polygon fill = 'rgb" "$T/r.svg"
	assert_output 7
}
