/*
 * Lookup through the branches. In a directory that exists in one branch a
 * name is resolved with one fstatat; in a merged directory the directory's
 * listing says which branch holds the name, so the cost does not grow with
 * the number of branches. Every open is a single component relative to a
 * branch directory fd with O_NOFOLLOW: a symlink in a branch is never
 * followed by the daemon.
 */
#include "unionfs/namei.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/copyup.h"
#include "unionfs/inode.h"
#include "unionfs/readdir.h"
#include "unionfs/unionfs.h"

static void report_attr(const struct layer_set *layers, struct stat *st)
{
	st->st_ino = branch_pack_ino(layers->v[0].branch, st->st_ino);
	/* As overlayfs: counting subdirs of a merged dir is not worth it; 1 pacifies find. */
	if (S_ISDIR(st->st_mode) && layers->n > 1)
		st->st_nlink = 1;
}

int namei_getattr(struct unionfs *fs, struct node *node, struct stat *st)
{
	int r = node_stat(node, st);

	if (r < 0)
		return r;
	report_attr(node_layers(node), st);
	st->st_ino = node->ino;
	return 0;
}

static int open_object(int dirfd, const char *name, const struct stat *st)
{
	int flags = S_ISDIR(st->st_mode) ? O_RDONLY | O_DIRECTORY : O_PATH;

	return RET_NERRNO(openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC));
}

struct found {
	const struct layer_set *dir_layers; /* the parent's layers the lookup used */
	const struct node_layer *parent;    /* where the top-most object lives */
	const struct dir_entry *entry;	    /* from the listing, for merged directories */
	struct dir_listing *listing;
	struct stat st;
};

/*
 * Opens the lower directories of a merged child directory, stopping at the
 * first opaque one (its own contents are all there is below it).
 */
static int open_merged_dirs(const struct found *f, const char *name, struct layer_set *set)
{
	const struct dir_entry *e = f->entry;
	struct stat st;
	int r;

	for (uint16_t i = 0; i <= e->nlower; i++) {
		const struct node_layer *parent =
		    &f->dir_layers->v[i == 0 ? e->pos : e->lower[i - 1]];
		if (i > 0) {
			if (fstatat(parent->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISDIR(st.st_mode))
				break;
			r = open_object(parent->fd, name, &st);
			if (r < 0)
				return r;
			set->v[set->n++] = (struct node_layer){.fd = r, .branch = parent->branch};
		}
		/* Opacity matters only where something lies below. */
		if (i < e->nlower) {
			r = whiteout_dir_is_opaque(set->v[set->n - 1].fd);
			if (r < 0)
				return r;
			if (r > 0)
				break;
		}
	}
	return 0;
}

static int find_top(struct unionfs *fs, struct node *dir, const char *name, struct found *f)
{
	const struct layer_set *layers = node_layers(dir);
	int r;

	if (layers->n == 1) {
		f->dir_layers = layers;
		f->parent = &layers->v[0];
	} else {
		uint64_t max_age = fs->udba_reval ? (uint64_t)(fs->attr_timeout * 1e9) : 0;
		r = dir_listing_get(dir, max_age, &f->listing);
		if (r < 0)
			return r;
		f->entry = dir_listing_find(f->listing, name);
		if (!f->entry || f->entry->whiteout)
			return -ENOENT;
		f->dir_layers = f->listing->layers;
		f->parent = &f->dir_layers->v[f->entry->pos];
	}
	if (fstatat(f->parent->fd, name, &f->st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (whiteout_is_overlay(&f->st))
		return -ENOENT;
	return 0;
}

/*
 * The st_ino the union reports: a copied-up object keeps the one it had
 * below (recorded in our origin xattr at copy-up), others pack their own.
 */
static uint64_t object_ino(struct unionfs *fs, const struct found *f, const char *name)
{
	char path[PATH_MAX];
	uint64_t origin;

	if (f->parent->branch != 0 || fs->read_only)
		return branch_pack_ino(f->parent->branch, f->st.st_ino);
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", f->parent->fd, name);
	if (lgetxattr(path, copyup_origin_xattr(fs), &origin, sizeof(origin)) == sizeof(origin))
		return origin;
	return branch_pack_ino(0, f->st.st_ino);
}

static const char *redirect_xattr(const struct unionfs *fs)
{
	return fs->privileged ? "trusted.overlay.redirect" : "user.overlay.redirect";
}

int namei_redirect(struct unionfs *fs, int dirfd, char *buf, size_t size)
{
	ssize_t n = fgetxattr(dirfd, redirect_xattr(fs), buf, size - 1);

	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP ? 0 : -errno;
	buf[n] = '\0';
	return n > 0;
}

int namei_set_redirect(struct unionfs *fs, int dirfd, const char *path)
{
	return RET_NERRNO(fsetxattr(dirfd, redirect_xattr(fs), path, strlen(path), 0));
}

/*
 * A directory moved in the writable branch finds its lower parts where the
 * redirect says (an absolute path from the branch roots, or a name in the
 * parent's lower directories), as overlayfs's redirect_dir does.
 */
static int open_redirected_dirs(struct unionfs *fs, const struct found *f, const char *redirect,
				struct layer_set *set)
{
	bool absolute = redirect[0] == '/';
	const char *rel = absolute ? redirect + 1 : redirect;
	uint16_t count = absolute ? (uint16_t)fs->branches.count : f->dir_layers->n;
	int fd, r;

	for (uint16_t i = 0; i < count; i++) {
		int base = absolute ? fs->branches.v[i].fd : f->dir_layers->v[i].fd;
		uint16_t branch = absolute ? i : f->dir_layers->v[i].branch;
		if (branch == 0)
			continue;
		fd = *rel ? path_open_beneath(base, rel, O_RDONLY | O_DIRECTORY, 0, false)
			  : RET_NERRNO(openat(base, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			break; /* a non-directory (or a symlink) on the way stops the merge */
		set->v[set->n++] = (struct node_layer){.fd = fd, .branch = branch};
		r = whiteout_dir_is_opaque(set->v[set->n - 2].fd);
		if (r != 0) {
			/* The layer above was opaque: what we just opened is hidden. */
			close(set->v[--set->n].fd);
			break;
		}
	}
	return 0;
}

static int make_node(struct unionfs *fs, struct node *dir, const char *name, struct found *f,
		     uint64_t ino, struct node **out)
{
	bool is_dir = S_ISDIR(f->st.st_mode);
	uint16_t max = is_dir ? (uint16_t)fs->branches.count : 1;
	struct layer_set *set = layer_set_new(max);
	char redirect[PATH_MAX];
	struct node *node;
	int r;

	if (!set)
		return -ENOMEM;
	if (!is_dir && (f->parent->branch != 0 || fs->read_only)) {
		/* Reached through its directory when needed: see struct layer_set. */
		set->parent_fd = f->parent->fd;
		set->name = strdup(name);
		r = set->name ? -EBADF : -ENOMEM;
	} else {
		r = open_object(f->parent->fd, name, &f->st);
	}
	if (r < 0 && r != -EBADF)
		goto fail;
	set->v[set->n++] = (struct node_layer){.fd = r, .branch = f->parent->branch};
	r = 0;
	if (is_dir && f->parent->branch == 0 && !fs->read_only)
		r = namei_redirect(fs, set->v[0].fd, redirect, sizeof(redirect));
	if (r > 0)
		r = open_redirected_dirs(fs, f, redirect, set);
	else if (r == 0 && is_dir && f->entry && f->entry->nlower)
		r = open_merged_dirs(f, name, set);
	if (r < 0)
		goto fail;
	node = node_new(ino, f->st.st_mode & S_IFMT, dir, name, set);
	r = -ENOMEM;
	if (!node)
		goto fail;
	*out = node;
	return 0;
fail:
	layer_set_free(set);
	return r;
}

int namei_lookup(struct unionfs *fs, struct node *dir, const char *name, struct node **out,
		 struct stat *st)
{
	struct found f = {0};
	struct node *node;
	uint64_t ino;
	int r;

	if (whiteout_is_meta_name(name))
		return -ENOENT;
	r = find_top(fs, dir, name, &f);
	if (r < 0)
		goto out;
	ino = object_ino(fs, &f, name);
	node = node_table_get(&fs->nodes, ino);
	if (!node) {
		r = make_node(fs, dir, name, &f, ino, &node);
		if (r < 0)
			goto out;
		node = node_table_insert(&fs->nodes, node);
	}
	*st = f.st;
	report_attr(node_layers(node), st);
	st->st_ino = node->ino;
	*out = node;
out:
	dir_listing_unref(f.listing);
	return r;
}

int namei_make_root(struct unionfs *fs)
{
	uint16_t count = (uint16_t)fs->branches.count;
	struct layer_set *set = layer_set_new(count);
	struct stat st;
	int r;

	if (!set)
		return -ENOMEM;
	for (; set->n < count; set->n++) {
		r = RET_NERRNO(
		    openat(fs->branches.v[set->n].fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (r < 0)
			goto fail;
		set->v[set->n] = (struct node_layer){.fd = r, .branch = set->n};
	}
	r = -errno;
	if (fstat(set->v[0].fd, &st) < 0)
		goto fail;
	r = -ENOMEM;
	fs->root = node_new(branch_pack_ino(0, st.st_ino), S_IFDIR, NULL, "", set);
	if (!fs->root)
		goto fail;
	fs->root->nlookup = 1;
	return 0;
fail:
	layer_set_free(set);
	return r;
}
