/*
 * mat_recover.c - opening the materializer and finishing what a crash
 * interrupted (contract: materialize.h).
 *
 * .wkfs/tmp holds, besides the engine's staged entries, only names the
 * materializer made: journal.<n> (a batch in progress), done.<n> (a
 * finished tagged batch the caller has not forgotten yet), journal.<n>.bad
 * (a corrupt one set aside), and temporaries "<tag>.<pid>.<k>" (w: file
 * content, l: symlink, o: object, j: journal) that a crash may leave.
 * Batch numbers go on from the highest one found, so staged names of a
 * batch never meet a leftover of an earlier one.
 */
#include "mat_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wlog.h"
#include "xalloc.h"

/* Parses the decimal number at s up to end (or NUL); false if not one. */
static bool parse_u64(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == s)
		return false;
	*end = p;
	*out = v;
	return true;
}

/* "<prefix><n>" exactly: true and *seq. */
static bool numbered(const char *name, const char *prefix, uint64_t *seq)
{
	size_t l = strlen(prefix);
	const char *end;

	return strncmp(name, prefix, l) == 0 &&
	       parse_u64(name + l, &end, seq) && *end == '\0';
}

/* The batch number a name in .wkfs/tmp carries, if any. */
static bool batch_of(const char *name, uint64_t *seq)
{
	size_t l = strlen("merge-");
	const char *end;

	if (strncmp(name, MAT_JOURNAL_PREFIX, strlen(MAT_JOURNAL_PREFIX)) == 0)
		return parse_u64(name + strlen(MAT_JOURNAL_PREFIX), &end, seq);
	if (strncmp(name, MAT_DONE_PREFIX, strlen(MAT_DONE_PREFIX)) == 0)
		return parse_u64(name + strlen(MAT_DONE_PREFIX), &end, seq);
	return strncmp(name, "merge-", l) == 0 &&
	       parse_u64(name + l, &end, seq) && *end == '-';
}

static bool is_temporary(const char *name)
{
	return strchr("wloj", name[0]) && name[0] && name[1] == '.';
}

struct seqs {
	uint64_t *v;
	size_t n, alloc;
};

static void seqs_add(struct seqs *s, uint64_t seq)
{
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? 2 * s->alloc : 4;
		s->v = xrealloc(s->v, s->alloc * sizeof(*s->v));
	}
	s->v[s->n++] = seq;
}

struct tmp_scan {
	uint64_t max_seq;
	struct seqs journals, done;
};

/* Lists .wkfs/tmp; removes stale temporaries when clean is set. */
static int scan_tmp(struct mat *m, bool clean, struct tmp_scan *s)
{
	int fd = openat(m->tmpfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	memset(s, 0, sizeof(*s));
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		uint64_t seq;

		if (batch_of(de->d_name, &seq) && seq > s->max_seq)
			s->max_seq = seq;
		if (numbered(de->d_name, MAT_JOURNAL_PREFIX, &seq))
			seqs_add(&s->journals, seq);
		else if (numbered(de->d_name, MAT_DONE_PREFIX, &seq))
			seqs_add(&s->done, seq);
		else if (clean && is_temporary(de->d_name))
			unlinkat(m->tmpfd, de->d_name, 0);
	}
	closedir(d);
	return 0;
}

static void tmp_scan_release(struct tmp_scan *s)
{
	free(s->journals.v);
	free(s->done.v);
}

/* Opens (creating it 0700 if missing) the directory name in dirfd. */
static int open_subdir(int dirfd, const char *name)
{
	int fd;

	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int mat_open(int rootfd, struct mat **out)
{
	struct mat *m = xcalloc(1, sizeof(*m));
	struct tmp_scan s;
	int wkfs, rc;

	m->rootfd = m->tmpfd = m->objfd = -1;
	m->no_openat2 = getenv("WKFS_NO_OPENAT2") != NULL;
	m->nosync = getenv("WKFS_NOSYNC") != NULL;
	m->rootfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (m->rootfd < 0) {
		rc = -errno;
		goto out_free;
	}
	wkfs = openat(m->rootfd, ".wkfs",
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (wkfs < 0) {
		rc = -errno;
		goto out_free;
	}
	m->tmpfd = rc = open_subdir(wkfs, "tmp");
	if (rc >= 0)
		m->objfd = rc = open_subdir(wkfs, "objects");
	close(wkfs);
	if (rc < 0)
		goto out_free;
	rc = scan_tmp(m, false, &s);
	if (rc < 0)
		goto out_free;
	tmp_scan_release(&s);
	m->seq = s.max_seq + 1;
	*out = m;
	return 0;

out_free:
	mat_close(m);
	return rc;
}

void mat_close(struct mat *m)
{
	if (!m)
		return;
	/* Deferred objects never flushed: nothing relies on them. */
	for (size_t i = 0; i < m->npending; i++)
		unlinkat(m->tmpfd, m->pending[i].tmp, 0);
	free(m->pending);
	if (m->objfd >= 0)
		close(m->objfd);
	if (m->tmpfd >= 0)
		close(m->tmpfd);
	if (m->rootfd >= 0)
		close(m->rootfd);
	free(m);
}

void mat_set_source(struct mat *m, mat_source_fn fn, void *arg)
{
	m->source = fn;
	m->source_arg = arg;
}

void mat_set_notify(struct mat *m, mat_notify_fn fn, void *arg)
{
	m->notify = fn;
	m->notify_arg = arg;
}

/* Reads the whole journal fd (at most MAT_JOURNAL_MAX bytes). */
static int read_all(int fd, uint8_t **out, size_t *len)
{
	struct stat st;
	size_t off = 0;
	uint8_t *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size > MAT_JOURNAL_MAX)
		return -EBADMSG;
	p = malloc((size_t)st.st_size + 1);
	if (!p)
		return -ENOMEM;
	while (off < (size_t)st.st_size) {
		ssize_t n = pread(fd, p + off, (size_t)st.st_size - off,
				  (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(p);
			return n < 0 ? -errno : -EBADMSG;
		}
		off += (size_t)n;
	}
	*out = p;
	*len = off;
	return 0;
}

/*
 * Opens and decodes the journal prefix<seq> (O_RDWR: a replay marks
 * progress in it).  *fdp gets the fd (or -1); ch, tag, start and poff as
 * mat_journal_decode() fills them.  0 or -errno; -EBADMSG for anything
 * that is not a journal, which is then set aside as <name>.bad.
 */
static int open_journal(struct mat *m, const char *prefix, uint64_t seq,
			int *fdp, struct tree_changes *ch, uint64_t *tag,
			size_t *start, size_t *poff)
{
	char name[64], bad[80];
	size_t len = 0;
	uint8_t *buf = NULL;
	int fd, rc;

	snprintf(name, sizeof(name), "%s%" PRIu64, prefix, seq);
	fd = openat(m->tmpfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		rc = errno == ELOOP ? -EBADMSG : -errno;
	else
		rc = read_all(fd, &buf, &len);
	if (rc == 0)
		rc = mat_journal_decode(seq, buf, len, ch, tag, start, poff);
	free(buf);
	if (rc < 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	if (rc == -EBADMSG) {
		snprintf(bad, sizeof(bad), "%s.bad", name);
		wk_err("materialize: %s/%s is corrupt; set aside as %s",
		       TREE_STAGE_DIR, name, bad);
		renameat(m->tmpfd, name, m->tmpfd, bad);
	}
	*fdp = fd;
	return rc;
}

/* Replays journal seq; -EBADMSG sets it aside as journal.<seq>.bad. */
static int replay(struct mat *m, uint64_t seq, struct mat_result *res)
{
	struct tree_changes ch;
	size_t start = 0, poff = 0;
	uint64_t tag = 0;
	int fd, rc;

	tree_changes_init(&ch);
	rc = open_journal(m, MAT_JOURNAL_PREFIX, seq, &fd, &ch, &tag, &start,
			  &poff);
	if (rc == 0) {
		wk_info("materialize: finishing batch %" PRIu64
			" from change %zu of %zu",
			seq, start, ch.n);
		rc = mat_run_batch(m, &ch, seq, tag, fd, poff, start, res);
		close(fd);
	}
	tree_changes_release(&ch);
	return rc;
}

/* The tag of the finished batch done.<seq> into res (the highest). */
static int read_done(struct mat *m, uint64_t seq, struct mat_result *res)
{
	struct tree_changes ch;
	size_t start = 0, poff = 0;
	uint64_t tag = 0;
	int fd, rc;

	tree_changes_init(&ch);
	rc = open_journal(m, MAT_DONE_PREFIX, seq, &fd, &ch, &tag, &start,
			  &poff);
	if (rc == 0) {
		close(fd);
		if (tag > res->tag)
			res->tag = tag;
	}
	tree_changes_release(&ch);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int mat_recover(struct mat *m, struct mat_result *res)
{
	struct tmp_scan s;
	int rc, first = 0;

	memset(res, 0, sizeof(*res));
	rc = scan_tmp(m, true, &s);
	if (rc < 0)
		return rc;
	if (s.max_seq >= m->seq)
		m->seq = s.max_seq + 1;
	if (s.journals.n > 1)
		qsort(s.journals.v, s.journals.n, sizeof(*s.journals.v),
		      cmp_u64);
	for (size_t i = 0; i < s.journals.n; i++) {
		rc = replay(m, s.journals.v[i], res);
		if (rc < 0 && first == 0)
			first = rc;
	}
	/* Replayed tagged batches are done.<n> now: res->tag has theirs. */
	for (size_t i = 0; i < s.done.n; i++) {
		rc = read_done(m, s.done.v[i], res);
		if (rc < 0 && first == 0)
			first = rc;
	}
	tmp_scan_release(&s);
	return first;
}

int mat_forget(struct mat *m)
{
	struct tmp_scan s;
	char name[64];
	int rc;

	rc = scan_tmp(m, false, &s);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s.done.n; i++) {
		snprintf(name, sizeof(name), MAT_DONE_PREFIX "%" PRIu64,
			 s.done.v[i]);
		if (unlinkat(m->tmpfd, name, 0) < 0 && errno != ENOENT &&
		    rc == 0)
			rc = -errno;
	}
	tmp_scan_release(&s);
	return rc;
}
