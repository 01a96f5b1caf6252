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
#include "unionfs/handle.h"
#include "unionfs/inode.h"
#include "unionfs/nlink.h"
#include "unionfs/readdir.h"
#include "unionfs/unionfs.h"

static void report_attr(const struct unionfs *fs, const struct layer_set *layers, struct stat *st)
{
	struct stat data;

	nlink_report(fs, layers, st);
	/* A metadata-only copy's blocks are its lower data's, as overlayfs reports them. */
	if (layers->metacopy &&
	    fstatat(layers->parent_fd, layers->name, &data, AT_SYMLINK_NOFOLLOW) == 0)
		st->st_blocks = data.st_blocks;
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
	report_attr(fs, node_layers(node), st);
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

/* The top-most object of name in a merged directory, asking each layer in turn. */
static int find_top_by_layer(const struct layer_set *layers, const char *name, struct found *f)
{
	char aufs[NAME_MAX + WHITEOUT_AUFS_PREFIX_LEN + 1];

	f->dir_layers = layers;
	snprintf(aufs, sizeof(aufs), WHITEOUT_AUFS_PREFIX "%s", name);
	for (uint16_t i = 0; i < layers->n; i++) {
		if (fstatat(layers->v[i].fd, name, &f->st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (whiteout_is_overlay(&f->st))
				return -ENOENT;
			f->parent = &layers->v[i];
			return 0;
		}
		if (errno != ENOENT && errno != ENOTDIR)
			return -errno;
		/* An aufs whiteout in this layer hides the name in the ones below. */
		if (faccessat(layers->v[i].fd, aufs, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return -ENOENT;
	}
	return -ENOENT;
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
		r = dir_listing_get_for_lookup(dir, max_age, &f->listing);
		if (r < 0)
			return r;
		if (!f->listing)
			return find_top_by_layer(layers, name, f);
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
 * The next directory below branch `after` that continues a merged directory:
 * by name in the parent's directories, or, after a redirect to an absolute
 * path, by that path from each branch root (as overlayfs's redirect_dir).
 * -ENOENT when no lower branch has it; -ENOTDIR when a non-directory or a
 * whiteout there stops the merge.
 */
static int open_next_dir(struct unionfs *fs, const struct found *f, const char *name,
			 const char *path, uint16_t after, uint16_t *branch)
{
	char aufs[PATH_MAX + WHITEOUT_AUFS_PREFIX_LEN];
	struct stat st;
	int fd;

	for (uint16_t b = after + 1; b < fs->branches.count; b++) {
		int base = -EBADF;
		if (path) {
			base = fs->branches.v[b].fd;
			fd =
			    *path
				? path_open_beneath(base, path, O_RDONLY | O_DIRECTORY, 0, false)
				: RET_NERRNO(openat(base, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
			if (fd == -ENOENT)
				continue;
			if (fd < 0)
				return -ENOTDIR;
			*branch = b;
			return fd;
		}
		for (uint16_t i = 0; i < f->dir_layers->n && base < 0; i++)
			if (f->dir_layers->v[i].branch == b)
				base = f->dir_layers->v[i].fd;
		if (base < 0)
			continue;
		snprintf(aufs, sizeof(aufs), WHITEOUT_AUFS_PREFIX "%s", name);
		if (faccessat(base, aufs, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return -ENOTDIR;
		if (fstatat(base, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		*branch = b;
		return open_object(base, name, &st);
	}
	return -ENOENT;
}

/* 1 when a directory on the way to path (path itself aside) is opaque in that branch. */
static int opaque_on_path(int root_fd, const char *path)
{
	char prefix[PATH_MAX];
	const char *slash = path;
	int r = 0;

	while (r == 0 && (slash = strchr(slash, '/'))) {
		_cleanup_close_ int fd = -EBADF;
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(slash - path), path);
		slash++;
		fd = path_open_beneath(root_fd, prefix, O_RDONLY | O_DIRECTORY, 0, false);
		if (fd < 0)
			return 0;
		r = whiteout_dir_is_opaque(fd);
	}
	return r;
}

/*
 * Collects the lower directories merged under a directory whose top-most
 * object is set->v[0], layer by layer: an opaque one ends the merge, a
 * redirect on any of them says where the next ones are.
 */
static int open_lower_dirs(struct unionfs *fs, const struct found *f, const char *name,
			   struct layer_set *set)
{
	char redirect[PATH_MAX];
	const char *path = NULL;
	uint16_t branch;
	int fd, r;

	while (set->v[set->n - 1].branch + 1u < fs->branches.count) {
		const struct node_layer *last = &set->v[set->n - 1];
		r = whiteout_dir_is_opaque(last->fd);
		if (r != 0)
			return r < 0 ? r : 0;
		r = namei_redirect(fs, last->fd, redirect, sizeof(redirect));
		if (r < 0)
			return r;
		if (r > 0 && redirect[0] == '/')
			path = redirect + 1;
		else if (r > 0)
			name = redirect; /* relative: another name in the same parent */
		fd = open_next_dir(fs, f, name, path, last->branch, &branch);
		if (fd == -ENOENT || fd == -ENOTDIR)
			return 0;
		if (fd < 0)
			return fd;
		set->v[set->n++] = (struct node_layer){.fd = fd, .branch = branch};
		/* Found by path: an opaque directory on the way hides what lies below it. */
		if (path && (r = opaque_on_path(fs->branches.v[branch].fd, path)) != 0)
			return r < 0 ? r : 0;
	}
	return 0;
}

/*
 * An upper regular file that holds only metadata (overlayfs's metacopy: a
 * sparse file with the metacopy xattr) takes its data from the first lower
 * file of that name below it; as the copy was made in place, no redirect.
 */
static int find_metacopy_data(struct unionfs *fs, const struct found *f, const char *name,
			      struct layer_set *set)
{
	char path[PATH_MAX];
	struct stat st;

	/* A file whose blocks cover its size has data of its own (xattrs may take a block). */
	if (!S_ISREG(f->st.st_mode) || f->st.st_blocks * 512 >= f->st.st_size)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", f->parent->fd, name);
	if (lgetxattr(path, fs->privileged ? "trusted.overlay.metacopy" : "user.overlay.metacopy",
		      NULL, 0) < 0)
		return 0;
	for (uint16_t i = 0; i < f->dir_layers->n; i++) {
		const struct node_layer *dir = &f->dir_layers->v[i];
		if (dir->branch == 0)
			continue;
		if (fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISREG(st.st_mode))
			return 0;
		set->metacopy = true;
		set->data_branch = dir->branch;
		set->parent_fd = dir->fd;
		set->size = st.st_size;
		set->name = strdup(name);
		return set->name ? 0 : -ENOMEM;
	}
	return 0;
}

/* A lower file one of whose hard links was copied up: the index holds that copy. */
static int open_index_entry(struct unionfs *fs, uint64_t ino)
{
	char name[32];

	copyup_index_name(ino, name, sizeof(name));
	return RET_NERRNO(openat(fs->index_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
}

static int make_node(struct unionfs *fs, struct node *dir, const char *name, struct found *f,
		     uint64_t ino, struct node **out)
{
	bool is_dir = S_ISDIR(f->st.st_mode);
	uint16_t max = is_dir ? (uint16_t)fs->branches.count : 1;
	struct layer_set *set = layer_set_new(max);
	struct node *node;
	int r;
	uint16_t branch = f->parent->branch;

	if (!set)
		return -ENOMEM;
	if (!is_dir && branch != 0 && !fs->read_only && f->st.st_nlink > 1 &&
	    (r = open_index_entry(fs, ino)) >= 0) {
		set->unnamed = true;
		branch = 0;
	} else if (!is_dir && (branch != 0 || fs->read_only)) {
		/* Reached through its directory when needed: see struct layer_set. */
		set->parent_fd = f->parent->fd;
		set->size = f->st.st_size;
		set->name = strdup(name);
		r = set->name ? -EBADF : -ENOMEM;
	} else {
		r = open_object(f->parent->fd, name, &f->st);
		if (r >= 0 && branch == 0 && !fs->read_only) {
			int fd = r;
			r = find_metacopy_data(fs, f, name, set);
			r = r < 0 ? (close(fd), r) : fd;
		}
	}
	if (r < 0 && r != -EBADF)
		goto fail;
	if (!is_dir && branch == 0 && !fs->read_only) {
		r = handle_keep(set, r);
	} else {
		set->v[set->n++] = (struct node_layer){.fd = r, .branch = branch};
		r = is_dir ? open_lower_dirs(fs, f, name, set) : 0;
	}
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

/* The node for what f found (made if the table has none), and its attributes. */
static int found_node(struct unionfs *fs, struct node *dir, const char *name, struct found *f,
		      uint64_t ino, struct node **out, struct stat *st)
{
	struct node *node = node_table_get(&fs->nodes, ino);
	int r;

	if (!node) {
		r = make_node(fs, dir, name, f, ino, &node);
		if (r < 0)
			return r;
		node = node_table_insert(&fs->nodes, node);
	}
	*st = f->st;
	/* A hard link found below whose group was copied up shows the copy. */
	if (node_layers(node)->v[0].branch != f->parent->branch && (r = node_stat(node, st)) < 0) {
		node_forget(&fs->nodes, node, 1);
		return r;
	}
	report_attr(fs, node_layers(node), st);
	st->st_ino = node->ino;
	*out = node;
	return 0;
}

int namei_lookup_where(struct unionfs *fs, struct node *dir, const char *name, struct node **out,
		       struct stat *st, uint16_t *branch)
{
	struct found f = {0};
	int r;

	if (whiteout_is_meta_name(name))
		return -ENOENT;
	r = find_top(fs, dir, name, &f);
	if (r == 0)
		r = found_node(fs, dir, name, &f, object_ino(fs, &f, name), out, st);
	if (r == 0 && branch)
		*branch = f.parent->branch;
	dir_listing_unref(f.listing);
	return r;
}

int namei_lookup(struct unionfs *fs, struct node *dir, const char *name, struct node **out,
		 struct stat *st)
{
	return namei_lookup_where(fs, dir, name, out, st, NULL);
}

int namei_lookup_made(struct unionfs *fs, struct node *dir, const char *name,
		      const struct stat *made, struct node **out, struct stat *st)
{
	const struct layer_set *layers = node_layers(dir);
	struct found f = {.dir_layers = layers, .parent = &layers->v[0], .st = *made};

	if (layers->v[0].branch != 0)
		return namei_lookup(fs, dir, name, out, st);
	/* New, so no origin: its st_ino is its own. */
	return found_node(fs, dir, name, &f, branch_pack_ino(0, f.st.st_ino), out, st);
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
