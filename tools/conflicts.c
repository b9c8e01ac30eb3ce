/*
 * conflicts.c - `wkfs conflicts [DIR] [--json]` and
 * `wkfs conflicts [DIR] --resolve PATH --keep mine|theirs|both`.
 *
 * The list comes from the mount (fs.sock `conflicts`: only the merge
 * engine knows which files are conflict copies).  A resolution is made of
 * ordinary file operations through the mount, so it is recorded and synced
 * like any edit (docs/architecture.md, "Conflict copies in the index"):
 *
 *   mine    delete the copy: its version is retired, the file stays
 *   theirs  write the copy's content into the file, then delete the copy
 *   both    keep the copy as a file of its own (a chmod to its own mode
 *           promotes it), under its conflict name
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmds.h"
#include "ctl.h"
#include "folder.h"
#include "hlc.h"
#include "out.h"
#include "termesc.h"
#include "wlog.h"
#include "xalloc.h"

struct conflict {
	char *copy, *file; /* relative to the folder */
	uint64_t copy_hlc, copy_actor, file_hlc, file_actor;
	uint64_t copy_size, file_size;
};

/* Splits one reply line into *c: 0, or -EPROTO. */
static int parse_line(char *line, struct conflict *c)
{
	char *f[6];
	int n = 0;

	for (char *p = line; n < 6; n++) {
		f[n] = p;
		p = strchr(p, '\t');
		if (!p) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if (n != 6 ||
	    sscanf(f[2], "%16" SCNx64 "-%16" SCNx64, &c->copy_hlc,
		   &c->copy_actor) != 2 ||
	    sscanf(f[3], "%16" SCNx64 "-%16" SCNx64, &c->file_hlc,
		   &c->file_actor) != 2)
		return -EPROTO;
	out_unescape(f[0]);
	out_unescape(f[1]);
	c->copy = xstrdup(f[0]);
	c->file = xstrdup(f[1]);
	c->copy_size = strtoull(f[4], NULL, 10);
	c->file_size = strtoull(f[5], NULL, 10);
	return 0;
}

/* Asks the mount for its conflict copies; returns the count or -errno. */
static int fetch(const struct folder *f, struct conflict **out)
{
	char sock[RUNDIR_MAX + 16], line[CTL_LINE_MAX];
	struct conflict *v = NULL;
	int fd, n = 0, got = 0, rc = 0;

	*out = NULL;
	snprintf(sock, sizeof(sock), "%s/fs.sock", f->run);
	fd = ctl_connect(sock, "conflicts");
	if (fd < 0)
		return fd;
	if (ctl_read_line(fd, line, sizeof(line)) ||
	    sscanf(line, "ok %d", &n) != 1 || n < 0) {
		rc = -EPROTO;
		goto out;
	}
	v = xcalloc((size_t)n + 1, sizeof(*v));
	for (; got < n; got++) {
		rc = ctl_read_line(fd, line, sizeof(line));
		if (!rc)
			rc = parse_line(line, &v[got]);
		if (rc)
			break;
	}
out:
	close(fd);
	if (rc) {
		for (int i = 0; i < got; i++) {
			free(v[i].copy);
			free(v[i].file);
		}
		free(v);
		return rc;
	}
	*out = v;
	return n;
}

static void free_all(struct conflict *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].copy);
		free(v[i].file);
	}
	free(v);
}

static void side_json(const char *key, uint64_t hlc, uint64_t actor,
		      uint64_t size)
{
	char t[64];

	out_iso_ms((int64_t)hlc_ms(hlc), t, sizeof(t));
	printf("\"%s\":{\"actor\":\"%016" PRIx64 "\",\"time\":\"%s\","
	       "\"size\":%" PRIu64 "}",
	       key, actor, t, size);
}

static void list(const struct conflict *v, int n, bool json)
{
	char t1[64], t2[64];

	if (json) {
		fputs("{\"conflicts\":[", stdout);
		for (int i = 0; i < n; i++) {
			printf("%s{\"copy\":", i ? "," : "");
			out_json_str(stdout, v[i].copy);
			fputs(",\"file\":", stdout);
			out_json_str(stdout, v[i].file);
			putchar(',');
			side_json("copy_version", v[i].copy_hlc,
				  v[i].copy_actor, v[i].copy_size);
			putchar(',');
			side_json("file_version", v[i].file_hlc,
				  v[i].file_actor, v[i].file_size);
			putchar('}');
		}
		puts("]}");
		return;
	}
	if (n == 0) {
		puts("no conflicts");
		return;
	}
	for (int i = 0; i < n; i++) {
		out_iso_ms((int64_t)hlc_ms(v[i].copy_hlc), t1, sizeof(t1));
		out_iso_ms((int64_t)hlc_ms(v[i].file_hlc), t2, sizeof(t2));
		/* Names from any replica: escaped for the terminal. */
		term_fputs(v[i].copy, stdout);
		fputs("\n  belongs to ", stdout);
		term_fputs(v[i].file[0] ? v[i].file : "(gone)", stdout);
		printf("\n"
		       "  copy: actor %016" PRIx64 " at %s, %" PRIu64 " bytes\n"
		       "  file: actor %016" PRIx64 " at %s, %" PRIu64
		       " bytes\n",
		       v[i].copy_actor, t1, v[i].copy_size, v[i].file_actor, t2,
		       v[i].file_size);
	}
}

/* Copies src's bytes over dst (both paths in the mount). */
static int copy_over(const char *src, const char *dst)
{
	char buf[1 << 16];
	int in, out, rc = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t w = 0; w < n;) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0) {
				rc = -errno;
				goto out;
			}
			w += k;
		}
	}
	if (n < 0)
		rc = -errno;
out:
	close(in);
	if (close(out) < 0 && !rc)
		rc = -errno;
	return rc;
}

/* PATH relative to the folder: a path that exists (relative to the
 * current directory, or absolute) under its mount point, else as given,
 * relative to the folder. */
static const char *relative(const struct folder *f, const char *path, char *buf,
			    size_t len)
{
	size_t ml = strlen(f->mnt);
	char real[PATH_MAX];

	if (realpath(path, real) && strncmp(real, f->mnt, ml) == 0 &&
	    real[ml] == '/') {
		snprintf(buf, len, "%s", real + ml + 1);
		return buf;
	}
	return path;
}

static int resolve(const struct folder *f, const struct conflict *v, int n,
		   const char *path, const char *keep)
{
	char copy[2 * PATH_MAX], file[2 * PATH_MAX], buf[PATH_MAX];
	const char *rel = relative(f, path, buf, sizeof(buf));
	const struct conflict *c = NULL;
	int matches = 0, rc = 0;
	struct stat st;

	for (int i = 0; i < n; i++) {
		if (strcmp(v[i].copy, rel) == 0) {
			c = &v[i];
			matches = 1;
			break;
		}
		if (strcmp(v[i].file, rel) == 0) {
			c = &v[i];
			matches++;
		}
	}
	if (matches == 0) {
		fprintf(stderr,
			"wkfs: %s is not a conflict copy, nor a file "
			"with one: 'wkfs conflicts' lists them\n",
			path);
		return 1;
	}
	if (matches > 1) {
		fprintf(stderr,
			"wkfs: %s has %d conflict copies: name the "
			"copy to resolve\n",
			path, matches);
		return 1;
	}
	snprintf(copy, sizeof(copy), "%s/%s", f->mnt, c->copy);
	snprintf(file, sizeof(file), "%s/%s", f->mnt, c->file);
	if (strcmp(keep, "mine") == 0) {
		if (unlink(copy) < 0)
			rc = -errno;
	} else if (strcmp(keep, "theirs") == 0) {
		if (!c->file[0]) {
			wk_err("%s: its file is gone; keep 'both' to keep the "
			       "copy",
			       c->copy);
			return 1;
		}
		rc = copy_over(copy, file);
		if (!rc && unlink(copy) < 0)
			rc = -errno;
	} else {
		/* A chmod to its own mode makes the copy a file of its own. */
		if (stat(copy, &st) < 0 || chmod(copy, st.st_mode & 07777) < 0)
			rc = -errno;
	}
	if (rc) {
		wk_err("%s: %s", c->copy, strerror(-rc));
		return 1;
	}
	term_fputs(c->file[0] ? c->file : c->copy, stdout);
	printf(": kept %s\n", keep);
	return 0;
}

int cmd_conflicts(int argc, char **argv)
{
	static const struct option longs[] = {
		{"json", no_argument, NULL, 'j'},
		{"resolve", required_argument, NULL, 'r'},
		{"keep", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *usage = "usage: wkfs conflicts [DIR] [--json]\n"
			    "       wkfs conflicts [DIR] --resolve PATH "
			    "--keep mine|theirs|both\n";
	const char *target = NULL, *keep = NULL;
	struct conflict *v;
	struct folder f;
	char err[512];
	bool json = false;
	int c, n, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", longs, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'r') {
			target = optarg;
		} else if (c == 'k') {
			keep = optarg;
		} else {
			fputs(usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (argc - optind > 1 || !target != !keep ||
	    (keep && strcmp(keep, "mine") && strcmp(keep, "theirs") &&
	     strcmp(keep, "both"))) {
		fputs(usage, stderr);
		return 2;
	}
	if (folder_resolve(optind < argc ? argv[optind]
			   : target	 ? target
					 : NULL,
			   &f, err, sizeof(err))) {
		fprintf(stderr, "wkfs: %s\n", err);
		return 1;
	}
	if (!f.mounted) {
		fprintf(stderr,
			"wkfs: %s is not mounted: conflicts are known "
			"to its mount ('wkfs mount %s')\n",
			f.dir, f.dir);
		return 1;
	}
	n = fetch(&f, &v);
	if (n < 0) {
		fprintf(stderr, "wkfs: %s: the mount did not answer: %s\n",
			f.dir, strerror(-n));
		return 1;
	}
	if (target)
		rc = resolve(&f, v, n, target, keep);
	else
		list(v, n, json), rc = 0;
	free_all(v, n);
	return rc;
}
