/*
 * nindex.c - the tracked tree in memory (see nindex.h).
 *
 * Two chained hash tables over the same nodes, one keyed by id and one by
 * (parent id, name), grown by doubling so inserts stay O(1) amortised with a
 * few hundred thousand nodes.
 */
#include "nindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "xalloc.h"

struct nindex {
	struct nnode **by_id;
	struct nnode **by_name;
	size_t n_buckets; /* a power of two */
	size_t count;     /* nodes, the root included */
	struct nnode *root;
};

static size_t hash_id(struct wk_id id)
{
	return (size_t)XXH3_64bits(&id, sizeof(id));
}

static size_t hash_name(struct wk_id parent, const char *name)
{
	return (size_t)XXH3_64bits_withSeed(name, strlen(name),
					    parent.hlc ^ (parent.actor * 31));
}

static void link_id(struct nindex *ix, struct nnode *n)
{
	size_t b = hash_id(n->id) & (ix->n_buckets - 1);

	n->id_next = ix->by_id[b];
	ix->by_id[b] = n;
}

static void link_name(struct nindex *ix, struct nnode *n)
{
	size_t b = hash_name(n->parent->id, n->name) & (ix->n_buckets - 1);

	n->name_next = ix->by_name[b];
	ix->by_name[b] = n;
}

static void unlink_id(struct nindex *ix, struct nnode *n)
{
	struct nnode **p = &ix->by_id[hash_id(n->id) & (ix->n_buckets - 1)];

	while (*p && *p != n)
		p = &(*p)->id_next;
	if (*p)
		*p = n->id_next;
}

static void unlink_name(struct nindex *ix, struct nnode *n)
{
	struct nnode **p;

	p = &ix->by_name[hash_name(n->parent->id, n->name) &
			 (ix->n_buckets - 1)];
	while (*p && *p != n)
		p = &(*p)->name_next;
	if (*p)
		*p = n->name_next;
}

static void grow(struct nindex *ix)
{
	struct nnode **old = ix->by_id;
	size_t old_n = ix->n_buckets;

	free(ix->by_name);
	ix->n_buckets *= 2;
	ix->by_id = xcalloc(ix->n_buckets, sizeof(*ix->by_id));
	ix->by_name = xcalloc(ix->n_buckets, sizeof(*ix->by_name));
	for (size_t i = 0; i < old_n; i++) {
		struct nnode *n = old[i], *next;

		for (; n; n = next) {
			next = n->id_next;
			link_id(ix, n);
			if (n->parent)
				link_name(ix, n);
		}
	}
	free(old);
}

struct nindex *nindex_new(void)
{
	struct nindex *ix = xcalloc(1, sizeof(*ix));
	struct nnode *root = xcalloc(1, sizeof(*root));

	ix->n_buckets = 1024;
	ix->by_id = xcalloc(ix->n_buckets, sizeof(*ix->by_id));
	ix->by_name = xcalloc(ix->n_buckets, sizeof(*ix->by_name));
	root->id = WK_ID_ROOT;
	root->name = xstrdup("");
	root->kind = WK_KIND_DIR;
	root->mode = 0755;
	root->version = root->content = WK_ID_ROOT;
	link_id(ix, root);
	ix->root = root;
	ix->count = 1;
	return ix;
}

static void free_node(struct nnode *n)
{
	free(n->name);
	free(n->target);
	free(n);
}

void nindex_free(struct nindex *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->n_buckets; i++) {
		struct nnode *n = ix->by_id[i], *next;

		for (; n; n = next) {
			next = n->id_next;
			free_node(n);
		}
	}
	free(ix->by_id);
	free(ix->by_name);
	free(ix);
}

struct nnode *nindex_root(struct nindex *ix)
{
	return ix->root;
}

size_t nindex_count(const struct nindex *ix)
{
	return ix->count - 1;
}

struct nnode *nindex_get(const struct nindex *ix, struct wk_id id)
{
	struct nnode *n = ix->by_id[hash_id(id) & (ix->n_buckets - 1)];

	while (n && !wk_id_eq(n->id, id))
		n = n->id_next;
	return n;
}

struct nnode *nindex_child(const struct nindex *ix, const struct nnode *dir,
			   const char *name)
{
	struct nnode *n;

	n = ix->by_name[hash_name(dir->id, name) & (ix->n_buckets - 1)];
	while (n && !(n->parent == dir && strcmp(n->name, name) == 0))
		n = n->name_next;
	return n;
}

struct nnode *nindex_lookup(struct nindex *ix, const char *path, size_t len)
{
	struct nnode *n = nindex_root(ix);
	char name[WK_NAME_MAX + 1];
	size_t i = 0;

	while (n && i < len) {
		size_t l = strcspn(path + i, "/");

		if (l > len - i)
			l = len - i;
		if (l > WK_NAME_MAX)
			return NULL;
		memcpy(name, path + i, l);
		name[l] = '\0';
		n = nindex_child(ix, n, name);
		i += l + 1;
	}
	return n;
}

static void attach(struct nnode *parent, struct nnode *n)
{
	n->parent = parent;
	n->prev_sibling = NULL;
	n->next_sibling = parent->first_child;
	if (parent->first_child)
		parent->first_child->prev_sibling = n;
	parent->first_child = n;
	parent->n_children++;
}

static void detach(struct nnode *n)
{
	struct nnode *p = n->parent;

	if (n->prev_sibling)
		n->prev_sibling->next_sibling = n->next_sibling;
	else
		p->first_child = n->next_sibling;
	if (n->next_sibling)
		n->next_sibling->prev_sibling = n->prev_sibling;
	n->next_sibling = n->prev_sibling = NULL;
	p->n_children--;
}

int nindex_add(struct nindex *ix, struct wk_id id, struct nnode *parent,
	       const char *name, enum wk_kind kind, struct nnode **out)
{
	struct nnode *n;

	if (parent->kind != WK_KIND_DIR)
		return -ENOTDIR;
	if (nindex_get(ix, id) || nindex_child(ix, parent, name))
		return -EEXIST;
	if (ix->count >= ix->n_buckets)
		grow(ix);
	n = xcalloc(1, sizeof(*n));
	n->id = id;
	n->name = xstrdup(name);
	n->kind = kind;
	n->version = n->content = id;
	attach(parent, n);
	link_id(ix, n);
	link_name(ix, n);
	ix->count++;
	*out = n;
	return 0;
}

bool nindex_is_within(const struct nnode *n, const struct nnode *a)
{
	for (; n; n = n->parent)
		if (n == a)
			return true;
	return false;
}

int nindex_move(struct nindex *ix, struct nnode *n, struct nnode *parent,
		const char *name)
{
	struct nnode *other = nindex_child(ix, parent, name);

	if (other == n)
		return 0;
	if (other)
		return -EEXIST;
	if (parent->kind != WK_KIND_DIR)
		return -ENOTDIR;
	if (nindex_is_within(parent, n))
		return -ELOOP;
	unlink_name(ix, n);
	detach(n);
	free(n->name);
	n->name = xstrdup(name);
	attach(parent, n);
	link_name(ix, n);
	return 0;
}

int nindex_remove(struct nindex *ix, struct nnode *n)
{
	if (n->first_child)
		return -ENOTEMPTY;
	if (!n->parent)
		return -EINVAL;
	unlink_name(ix, n);
	unlink_id(ix, n);
	detach(n);
	ix->count--;
	free_node(n);
	return 0;
}

int nindex_path(const struct nnode *n, char *buf, size_t len)
{
	size_t pos = len;

	if (len == 0)
		return -ENAMETOOLONG;
	buf[--pos] = '\0';
	for (; n && n->parent; n = n->parent) {
		size_t l = strlen(n->name);

		if (pos < l + (n->parent->parent ? 1 : 0))
			return -ENAMETOOLONG;
		pos -= l;
		memcpy(buf + pos, n->name, l);
		if (n->parent->parent)
			buf[--pos] = '/';
	}
	memmove(buf, buf + pos, len - pos);
	return 0;
}

static void find_ino(struct nnode *dir, uint64_t ino, const struct nnode *skip,
		     struct nnode **out, size_t max, size_t *k)
{
	for (struct nnode *c = dir->first_child; c; c = c->next_sibling) {
		if (c->kind == WK_KIND_DIR) {
			find_ino(c, ino, skip, out, max, k);
		} else if (c != skip && c->kind == WK_KIND_FILE &&
			   c->ino == ino && !nnode_is_copy(c)) {
			if (*k < max)
				out[*k] = c;
			(*k)++;
		}
	}
}

size_t nindex_with_ino(struct nindex *ix, uint64_t ino,
		       const struct nnode *skip, struct nnode **out, size_t max)
{
	size_t k = 0;

	if (ino)
		find_ino(nindex_root(ix), ino, skip, out, max, &k);
	return k;
}
