/*
 * ignore.h - which paths are never synced.
 *
 * Rules come from three places: built-in defaults (editor swap and backup
 * files, partial downloads, OS litter), [sync] ignore in config.ini (anchored
 * at the root), and .wkfsignore files anywhere in the tree (anchored at the
 * directory that holds them).  Patterns use gitignore syntax: '#' comments,
 * '!' re-includes, a trailing '/' matches directories only, a '/' at the start
 * or in the middle anchors the pattern at its base directory, otherwise it
 * matches a name at any depth below the base; '*', '?', '[...]' do not cross
 * '/', '**' does.  Later rules win over earlier ones; rules of a deeper
 * .wkfsignore come after shallower ones.  As in git, nothing below an ignored
 * directory can be re-included.
 *
 * Paths are relative to the synced root, without a leading '/', e.g.
 * "notes/a.txt"; the root itself is "".  Not thread-safe: the owner locks.
 */
#ifndef WKFS_IGNORE_H
#define WKFS_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

struct ignore;

/* A rule set holding the built-in defaults. */
struct ignore *ignore_new(void);
void ignore_free(struct ignore *ig);

/* Adds one pattern line anchored at base ("" for the root). 0 or -EINVAL. */
int ignore_add_pattern(struct ignore *ig, const char *base,
		       const char *pattern);

/*
 * Replaces the rules of the .wkfsignore in directory base with the lines of
 * text (len bytes, need not be NUL-terminated).  Bad lines are skipped.
 */
void ignore_set_file(struct ignore *ig, const char *base, const char *text,
		     size_t len);

/* Forgets the rules of the .wkfsignore in directory base. */
void ignore_remove_file(struct ignore *ig, const char *base);

/* True when path (a directory when is_dir) is ignored, itself or through
 * an ignored ancestor directory. */
bool ignore_match(const struct ignore *ig, const char *path, bool is_dir);

/* Same, but assumes no ancestor is ignored: only path's own rules count. */
bool ignore_match_leaf(const struct ignore *ig, const char *path, bool is_dir);

/* The built-in default patterns, NULL-terminated (for docs and `wkfs`). */
extern const char *const ignore_defaults[];

#endif
