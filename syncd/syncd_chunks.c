/*
 * syncd_chunks.c - a file as chunks, for every remote type: cutting the
 * file of a local put into chunks and a recipe (before it ships), and
 * assembling a received put's file from its chunks into the object store.
 * Where the chunks travel is the caller's business: the relay path
 * (syncd_content.c) uploads and downloads them, the git path
 * (syncd_git.c) stores them as blobs of the branch.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chunk.h"
#include "content_int.h"
#include "content.h"
#include "syncd.h"
#include "wlog.h"

void content_not_shipped(const struct wk_op *op, const char *path,
			 const char *why)
{
	char hs[WK_HASH_STRLEN];

	wk_info("put %s of %s: content not shipped (%s); a later put "
		"carries it",
		wk_hash_str(&op->hash, hs), path, why);
}

void content_cut_release(struct content_cut *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	recipe_release(&c->r);
	bbuf_release(&c->rec);
	free(c->off);
	c->off = NULL;
}

/* Cuts the open file, checked against op. */
static int cut_fd(struct content_cut *c, const struct wk_op *op)
{
	struct wk_hash h;
	uint64_t size, off = 0;
	int rc;

	if (content_hash_fd(c->fd, &h, &size) ||
	    memcmp(&h, &op->hash, sizeof(h)) != 0 || size != op->size) {
		content_not_shipped(op, c->path, "the file changed since");
		return 1;
	}
	rc = recipe_from_fd(c->fd, &c->r);
	if (rc)
		return rc;
	if (recipe_size(&c->r) != op->size) {
		content_not_shipped(op, c->path, "the file changed since");
		return 1;
	}
	c->off = malloc(c->r.n * sizeof(*c->off) + 1);
	if (!c->off)
		return -ENOMEM;
	for (size_t i = 0; i < c->r.n; i++) {
		c->off[i] = off;
		off += c->r.v[i].len;
	}
	if (c->r.n > 1) {
		if (recipe_encode(&c->r, &c->rec)) {
			content_not_shipped(op, c->path,
					    "its recipe exceeds one chunk");
			return 1;
		}
		content_hash_buf(c->rec.p, c->rec.len, &c->rec_name);
	}
	return 0;
}

int content_cut_open(struct syncd *s, const struct wk_op *op,
		     struct content_cut *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	recipe_init(&c->r);
	bbuf_init(&c->rec, WIRE_CHUNK_MAX);
	c->fd = content_open_put(s, op, c->path, sizeof(c->path));
	if (c->fd < 0) {
		c->fd = -1;
		return 1;
	}
	rc = cut_fd(c, op);
	if (rc)
		content_cut_release(c);
	return rc;
}

ssize_t content_cut_read(const struct content_cut *c, size_t i, uint8_t *buf)
{
	struct wk_hash h;
	ssize_t n;

	n = pread(c->fd, buf, c->r.v[i].len, (off_t)c->off[i]);
	if (n != (ssize_t)c->r.v[i].len)
		return -ESTALE;
	content_hash_buf(buf, (size_t)n, &h);
	if (memcmp(&h, &c->r.v[i].name, sizeof(h)) != 0)
		return -ESTALE;
	return n;
}

/* ---- assembling ---- */

void content_refuse(const struct wk_op *op, const char *why)
{
	char hs[WK_HASH_STRLEN], ids[WK_ID_STRLEN];

	wk_err("refusing the content of put %s (%s): %s",
	       wk_id_str(op->id, ids), wk_hash_str(&op->hash, hs), why);
}

bool content_wanted(struct syncd *s, const struct wk_op *op,
		    const struct wire_content_ref *ref)
{
	if (op->size == 0 || mat_object_have(s->mat, &op->hash))
		return false;
	/* Superseded in the same batch: never shown anywhere, and the
	 * mount feeds it without its content (lib/apply_plan.h). */
	if (s->superseded && plan_retired_has(s->superseded, op))
		return false;
	if (ref->how == WIRE_CONTENT_NONE) {
		content_refuse(op, "its sender did not ship it (the file "
				   "changed)");
		return false;
	}
	if (ref->how == WIRE_CONTENT_WHOLE && op->size > CHUNK_MAX) {
		content_refuse(op, "a whole-file chunk larger than any chunk");
		return false;
	}
	/* No relay takes a bigger put (its put-bytes is at most this), and
	 * a recipe repeating one chunk would make a file that big here of
	 * a small upload: refused before anything is fetched. */
	if (op->size > WIRE_PUT_MAX) {
		content_refuse(op, "a file over the 16 GiB a put may name");
		return false;
	}
	return true;
}

int content_open_tmp(struct syncd *s)
{
	char name[64];
	int fd;

	fd = openat(s->dirfd, ".wkfs/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC,
		    0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd >= 0 ? fd : -errno;
	snprintf(name, sizeof(name), ".wkfs/tmp/s.%d", (int)getpid());
	fd = openat(s->dirfd, name,
		    O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	unlinkat(s->dirfd, name, 0);
	return fd;
}

int content_assemble(struct syncd *s, const struct recipe *r,
		     content_chunk_fn fn, void *arg, struct wk_hash *got)
{
	uint8_t *buf = malloc(CHUNK_MAX);
	int fd = content_open_tmp(s), rc = 0;

	if (!buf || fd < 0) {
		rc = fd < 0 ? fd : -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->n && !rc; i++) {
		ssize_t n = fn(arg, &r->v[i].name, buf, CHUNK_MAX);

		if (n < 0)
			rc = (int)n;
		else if ((size_t)n != r->v[i].len)
			rc = -EBADMSG;
		else if (write(fd, buf, (size_t)n) != n)
			rc = errno ? -errno : -EIO;
	}
	if (!rc)
		rc = mat_object_put(s->mat, fd, got);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}
