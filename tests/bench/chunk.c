/*
 * bench/chunk.c - throughput of content-defined chunking and chunk naming.
 *
 *	bench-chunk [-s MiB] [-d DIR]
 *
 * Over MiB (default 1024) of pseudo-random data in memory: the gear scan
 * alone, the scan plus XXH3-128 names, and XXH3-128 alone (the naming
 * cost); then chunk_fd() over the same bytes written to a file in DIR
 * (default $TMPDIR or /tmp; read back warm from the page cache).  Each is
 * the best of three runs.  Not a test: prints numbers, checks only that
 * every way of chunking agrees.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "chunk.h"

#define RUNS 3

struct tally {
	uint64_t n, bytes, sum; /* sum: of names' first bytes, to compare */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_chunk(void *arg, const struct chunk *ch)
{
	struct tally *t = arg;

	t->n++;
	t->bytes += ch->len;
	t->sum += ch->name.b[0];
	return 0;
}

static struct tally chunk_mem(const uint8_t *p, size_t n, unsigned flags)
{
	struct tally t = {0};
	struct chunker c;
	struct chunk ch;

	if (chunker_init(&c, flags) < 0) {
		perror("chunker_init");
		exit(1);
	}
	chunker_feed(&c, p, n, count_chunk, &t);
	if (chunker_finish(&c, &ch))
		count_chunk(&t, &ch);
	chunker_release(&c);
	return t;
}

static void report(const char *what, size_t n, double best)
{
	printf("%-34s %8.0f MB/s  (%.3f s for %zu MiB)\n", what, n / best / 1e6,
	       best, n >> 20);
}

int main(int argc, char **argv)
{
	size_t mib = 1024, n;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	uint64_t seed = 1, sink = 0;
	struct tally bare = {0}, named = {0}, file = {0};
	double best[4] = {1e9, 1e9, 1e9, 1e9};
	char path[4096];
	uint8_t *p;
	int opt, fd;

	while ((opt = getopt(argc, argv, "s:d:")) != -1) {
		if (opt == 's')
			mib = strtoul(optarg, NULL, 10);
		else if (opt == 'd')
			dir = optarg;
		else {
			fprintf(stderr,
				"usage: bench-chunk [-s MiB] [-d DIR]\n");
			return 2;
		}
	}
	n = mib << 20;
	p = malloc(n);
	if (!p || !n) {
		fprintf(stderr, "bench-chunk: cannot allocate %zu MiB\n", mib);
		return 1;
	}
	for (size_t i = 0; i < n; i += 8) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(p + i, &z, 8);
	}

	for (int r = 0; r < RUNS; r++) {
		double t0 = now_s(), t1;

		bare = chunk_mem(p, n, 0);
		t1 = now_s();
		best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
		named = chunk_mem(p, n, CHUNKER_NAME);
		t0 = now_s();
		best[1] = t0 - t1 < best[1] ? t0 - t1 : best[1];
		sink += XXH3_128bits(p, n).low64;
		t1 = now_s();
		best[2] = t1 - t0 < best[2] ? t1 - t0 : best[2];
	}

	snprintf(path, sizeof(path), "%s/bench-chunk.XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	unlink(path);
	for (size_t off = 0; off < n;) {
		ssize_t w = pwrite(fd, p + off, n - off, off);

		if (w < 0) {
			perror("write");
			return 1;
		}
		off += w;
	}
	for (int r = 0; r < RUNS; r++) {
		double t0 = now_s(), t1;
		int rc;

		file = (struct tally){0};
		rc = chunk_fd(fd, count_chunk, &file);
		t1 = now_s();
		if (rc) {
			fprintf(stderr, "chunk_fd: %s\n", strerror(-rc));
			return 1;
		}
		best[3] = t1 - t0 < best[3] ? t1 - t0 : best[3];
	}
	close(fd);

	if (bare.n != named.n || named.n != file.n || named.sum != file.sum ||
	    file.bytes != n) {
		fprintf(stderr, "bench-chunk: the ways of chunking disagree\n");
		return 1;
	}
	printf("%zu MiB pseudo-random: %" PRIu64 " chunks, average %.1f KiB\n",
	       mib, named.n, (double)n / named.n / 1024);
	report("gear scan (cut points only)", n, best[0]);
	report("scan + XXH3-128 names", n, best[1]);
	report("XXH3-128 alone (naming cost)", n, best[2]);
	report("chunk_fd, warm file", n, best[3]);
	printf("naming adds %.2f ns/byte to %.2f ns/byte of scanning\n",
	       best[2] / n * 1e9, best[0] / n * 1e9);
	free(p);
	return sink == 42; /* keep the hash from being optimised away */
}
