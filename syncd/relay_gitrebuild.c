/*
 * relay_gitrebuild.c - wkfs-relay --rebuild-from-git: a relay's database
 * and chunk store made from the folder branches relay_git.c commits
 * (relay_git.h is the contract).
 *
 * Every branch BRANCH/F becomes folder F, created revoked (tokens are not
 * in git; relay_main.c issues new ones).  Its segments' ops go into the
 * database's staging table, which drops duplicates and numbers them in
 * (hlc, actor) order at the end (relay_db_import_finish); its chunks go
 * into the store through relay_chunk_put(), which checks each against its
 * name.  Anything else on the branch is left alone.  Any error fails the
 * whole rebuild: the caller built into a temporary directory and removes
 * it.
 */
#include "relay_git.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "relay_chunks.h"
#include "relay_db.h"
#include "syncd_git.h"
#include "wire.h"
#include "wlog.h"
#include "xalloc.h"

#define LIST_CAP (256u << 20)

struct rebuild {
	struct git_repo repo;
	struct relay_db *db;
	struct git_batch batch;
	const char *data_dir;
	const char *branch;
	struct wire_buf blob;
	char err[1024];
};

/* "chunks/ab/<30 hex>": the chunk's name. */
static bool chunk_entry(const char *path, size_t len, uint8_t name[16])
{
	char hex[33];

	if (len != 7 + 2 + 1 + 30 || strncmp(path, "chunks/", 7) ||
	    path[9] != '/')
		return false;
	memcpy(hex, path + 7, 2);
	memcpy(hex + 2, path + 10, 30);
	hex[32] = '\0';
	if (strspn(hex, "0123456789abcdef") != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		name[i] = (uint8_t)v;
	}
	return true;
}

/* "ops/<16 hex>/<16 hex>.seg": the actor. */
static bool seg_entry(const char *path, size_t len, uint64_t *actor)
{
	char a[17];

	if (len != 4 + 16 + 1 + 16 + 4 || strncmp(path, "ops/", 4) ||
	    path[20] != '/' || strncmp(path + 37, ".seg", 4))
		return false;
	memcpy(a, path + 4, 16);
	a[16] = '\0';
	if (strspn(a, "0123456789abcdef") != 16 ||
	    strspn(path + 21, "0123456789abcdef") < 16)
		return false;
	*actor = strtoull(a, NULL, 16);
	return true;
}

static int rebuild_entry(struct rebuild *rb, const struct relay_folder *f,
			 const char *oid, const char *path, size_t plen,
			 unsigned *nchunks, unsigned *nsegs)
{
	uint8_t name[16];
	struct gitseg_iter it;
	uint64_t actor, hlc;
	const uint8_t *p;
	uint32_t len;
	size_t got;
	int rc;

	if (chunk_entry(path, plen, name)) {
		rc = git_batch_get(&rb->batch, oid, rb->blob.mem,
				   WIRE_CHUNK_MAX, &got);
		if (rc == -EMSGSIZE)
			rc = -EILSEQ;
		if (!rc)
			rc = relay_chunk_put(rb->data_dir, f->name, name,
					     rb->blob.mem, got);
		if (rc == -EILSEQ)
			snprintf(rb->err, sizeof(rb->err),
				 "%s/%s: %.*s does not hash to its name",
				 rb->branch, f->name, (int)plen, path);
		else if (rc)
			snprintf(rb->err, sizeof(rb->err), "%s/%s: %.*s: %s",
				 rb->branch, f->name, (int)plen, path,
				 strerror(-rc));
		(*nchunks)++;
		return rc;
	}
	if (!seg_entry(path, plen, &actor))
		return 0; /* not ours: left alone */
	rc = git_batch_get(&rb->batch, oid, rb->blob.mem, GITSEG_MAX, &got);
	if (!rc &&
	    (gitseg_iter_init(&it, rb->blob.mem, got) || it.actor != actor))
		rc = -EBADMSG;
	while (!rc && (rc = gitseg_next(&it, &hlc, &p, &len)) == 1)
		rc = relay_db_import_op(rb->db, f->id, actor, hlc, p, len);
	if (rc < 0)
		snprintf(rb->err, sizeof(rb->err), "%s/%s: %.*s: %s",
			 rb->branch, f->name, (int)plen, path,
			 rc == -EBADMSG ? "not a wkfs segment" : strerror(-rc));
	(*nsegs)++;
	return rc < 0 ? rc : 0;
}

/* One folder from one branch. */
static int rebuild_folder(struct rebuild *rb, const char *oid, const char *name)
{
	const char *ls[] = {"ls-tree", "-r", "--full-tree", oid, NULL};
	struct relay_folder f;
	struct wire_buf list;
	const char *p, *end;
	unsigned nchunks = 0, nsegs = 0;
	uint64_t head;
	char *path;
	int rc;

	if (!wire_folder_valid(name, strlen(name))) {
		wk_warn("branch %s/%s: not a folder name; skipped", rb->branch,
			name);
		return 0;
	}
	rc = relay_db_folder_add(rb->db, name, NULL);
	if (!rc)
		rc = relay_db_folder_get(rb->db, name, &f);
	if (rc) {
		snprintf(rb->err, sizeof(rb->err), "folder %s: %s", name,
			 relay_db_errmsg(rb->db));
		return rc;
	}
	path = xasprintf("%s/chunks/%s", rb->data_dir, name);
	rc = mkdir(path, 0700) < 0 && errno != EEXIST ? -errno : 0;
	free(path);
	if (rc)
		return rc;
	wire_buf_init(&list, 0, LIST_CAP);
	rc = git_cmd_out(&rb->repo, "ls-tree", ls, &list, rb->err,
			 sizeof(rb->err));
	p = (const char *)wire_buf_data(&list);
	end = p + wire_buf_len(&list);
	/* "MODE TYPE OID\tPATH" per line */
	while (!rc && p && p < end) {
		const char *nl = memchr(p, '\n', end - p);
		const char *tab = memchr(p, '\t', (nl ? nl : end) - p);
		const char *sp;
		char eoid[48];

		if (!nl)
			nl = end;
		if (tab) {
			sp = tab;
			while (sp > p && sp[-1] != ' ')
				sp--;
			if (tab - sp >= 40 && tab - sp < 48) {
				memcpy(eoid, sp, tab - sp);
				eoid[tab - sp] = '\0';
				rc = rebuild_entry(rb, &f, eoid, tab + 1,
						   nl - tab - 1, &nchunks,
						   &nsegs);
			}
		}
		p = nl + 1;
	}
	wire_buf_release(&list);
	if (!rc)
		rc = relay_db_import_finish(rb->db, f.id, &head);
	if (rc && !rb->err[0])
		snprintf(rb->err, sizeof(rb->err), "folder %s: %s", name,
			 strerror(-rc));
	if (!rc)
		wk_info("folder %s: %" PRIu64 " ops from %u segments,"
			" %u chunks",
			name, head, nsegs, nchunks);
	return rc;
}

int relay_git_rebuild(const char *git_dir, const char *branch,
		      const char *data_dir)
{
	char glob[600], *chunks;
	const char *fe[] = {"for-each-ref", "--format=%(objectname) %(refname)",
			    glob, NULL};
	struct rebuild rb = {.data_dir = data_dir, .branch = branch};
	struct wire_buf refs;
	const char *p, *end;
	size_t skip;
	int rc, n = 0;

	rc = relay_git_repo_setup(&rb.repo, git_dir);
	if (!rc)
		rc = relay_git_repo_check(&rb.repo, rb.err, sizeof(rb.err));
	if (rc) {
		wk_err("--rebuild-from-git: %s",
		       rb.err[0] ? rb.err : strerror(-rc));
		return rc;
	}
	snprintf(glob, sizeof(glob), "refs/heads/%s/", branch);
	skip = strlen(glob);
	wire_buf_init(&refs, 0, LIST_CAP);
	wire_buf_init(&rb.blob, 0, GITSEG_MAX);
	rc = git_cmd_out(&rb.repo, "for-each-ref", fe, &refs, rb.err,
			 sizeof(rb.err));
	if (!rc && wire_buf_len(&refs) == 0) {
		snprintf(rb.err, sizeof(rb.err),
			 "%.700s has no branch %.200s/FOLDER", rb.repo.dir,
			 branch);
		rc = -ENOENT;
	}
	if (!rc)
		rc = wire_buf_reserve(&rb.blob, GITSEG_MAX);
	if (!rc) {
		chunks = xasprintf("%s/chunks", data_dir);
		rc = mkdir(chunks, 0700) < 0 && errno != EEXIST ? -errno : 0;
		free(chunks);
	}
	if (!rc)
		rc = relay_db_open(data_dir, &rb.db, rb.err, sizeof(rb.err));
	if (rc)
		goto out;
	rc = git_batch_open(&rb.repo, &rb.batch);
	if (rc)
		goto out;
	p = (const char *)wire_buf_data(&refs);
	end = p + wire_buf_len(&refs);
	while (!rc && p < end) {
		const char *nl = memchr(p, '\n', end - p), *sp;
		char oid[48], name[WIRE_FOLDER_MAX + 2];

		if (!nl)
			nl = end;
		sp = memchr(p, ' ', nl - p);
		if (sp && sp - p < 48 && (size_t)(nl - sp - 1) > skip &&
		    (size_t)(nl - sp - 1) - skip <= WIRE_FOLDER_MAX) {
			memcpy(oid, p, sp - p);
			oid[sp - p] = '\0';
			snprintf(name, sizeof(name), "%.*s",
				 (int)(nl - sp - 1 - skip), sp + 1 + skip);
			rc = rebuild_folder(&rb, oid, name);
			n++;
		}
		p = nl + 1;
	}
	git_batch_close(&rb.batch);
out:
	if (rc)
		wk_err("--rebuild-from-git: %s",
		       rb.err[0] ? rb.err : strerror(-rc));
	relay_db_close(rb.db);
	wire_buf_release(&refs);
	wire_buf_release(&rb.blob);
	return rc;
}
