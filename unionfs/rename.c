/*
 * rename(2) through the union. Both names end up in the writable branch; a
 * lower name moved away leaves a whiteout (RENAME_WHITEOUT, atomically, where
 * the kernel lets us); a directory with lower parts carries a redirect to
 * where those parts are, as overlayfs's redirect_dir=on does, so no rename
 * fails with EXDEV; a directory without lower parts that lands on a name with
 * lower parts becomes opaque. Renames run one at a time (fs->rename_lock):
 * they read and change the paths that copy-up and redirects rely on.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/copyup.h"
#include "unionfs/dir.h"
#include "unionfs/inode.h"
#include "unionfs/namei.h"
#include "unionfs/readdir.h"
#include "unionfs/unionfs.h"

/* Where a directory's lower parts are, as an absolute path from the branch roots. */
static int lower_path(struct unionfs *fs, struct node *node, char *buf, size_t size)
{
	char redirect[PATH_MAX];
	int r;

	if (!node->parent) {
		buf[0] = '\0';
		return 0;
	}
	r = copyup_done(fs, node) ? namei_redirect(fs, node_fd(node), redirect, sizeof(redirect))
				  : 0;
	if (r < 0)
		return r;
	if (r > 0 && redirect[0] == '/')
		return snprintf(buf, size, "%s", redirect) >= (int)size ? -ENAMETOOLONG : 0;
	r = lower_path(fs, node->parent, buf, size);
	if (r < 0)
		return r;
	if (strlen(buf) + strlen(r > 0 ? redirect : node->name) + 2 > size)
		return -ENAMETOOLONG;
	strcat(buf, "/");
	strcat(buf, r > 0 ? redirect : node->name);
	return 0;
}

static bool has_lower_parts(struct unionfs *fs, struct node *node)
{
	const struct layer_set *set = node_layers(node);

	return set->n > 1 || set->v[0].branch != 0;
}

/* What a directory needs before it moves to a name: a redirect, or opacity. */
struct dir_fixup {
	bool redirect;
	bool opaque;
	char path[PATH_MAX];
};

static int plan_fixup(struct unionfs *fs, struct node *node, bool target_has_lower,
		      struct dir_fixup *fix)
{
	fix->redirect = fix->opaque = false;
	if (!S_ISDIR(node->type))
		return 0;
	if (has_lower_parts(fs, node)) {
		fix->redirect = true;
		return lower_path(fs, node, fix->path, sizeof(fix->path));
	}
	fix->opaque = target_has_lower;
	return 0;
}

static int apply_fixup(struct unionfs *fs, struct node *node, const struct dir_fixup *fix)
{
	if (fix->redirect)
		return namei_set_redirect(fs, node_fd(node), fix->path);
	if (fix->opaque)
		return whiteout_set_opaque(fs, node_fd(node));
	return 0;
}

/* An upper dir that looks empty may still hold whiteouts: remove them so rename(2) can replace it.
 */
static int clear_upper_dir(struct node *dir)
{
	const struct layer_set *set = node_layers(dir);

	return set->v[0].branch == 0 ? path_empty_dir(set->v[0].fd) : 0;
}

struct rename_op {
	struct node *dir, *newdir, *src, *dst;
	const char *name, *newname;
	unsigned flags;
	int up, newup;
	bool src_lower, dst_lower;
};

static int check_types(struct rename_op *op)
{
	if (op->dst && (op->flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (!op->dst && (op->flags & RENAME_EXCHANGE))
		return -ENOENT;
	if (!op->dst || (op->flags & RENAME_EXCHANGE))
		return 0;
	if (S_ISDIR(op->src->type) && !S_ISDIR(op->dst->type))
		return -ENOTDIR;
	if (!S_ISDIR(op->src->type) && S_ISDIR(op->dst->type))
		return -EISDIR;
	return S_ISDIR(op->dst->type) ? dir_is_empty(op->dst) : 0;
}

static int move_replacing(struct unionfs *fs, struct rename_op *op)
{
	struct stat st;
	bool over_whiteout = fstatat(op->newup, op->newname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			     whiteout_is_overlay(&st);
	int r;

	if (op->dst && S_ISDIR(op->dst->type) && (r = clear_upper_dir(op->dst)) < 0)
		return r;
	if (S_ISDIR(op->src->type) && over_whiteout) {
		/* A directory cannot replace a device node: swap, and the whiteout lands at the old
		 * name. */
		r = RET_NERRNO(
		    renameat2(op->up, op->name, op->newup, op->newname, RENAME_EXCHANGE));
		if (r == 0 && !op->src_lower)
			r = RET_NERRNO(unlinkat(op->up, op->name, 0));
		return r;
	}
	if (op->src_lower && fs->privileged && fs->whiteout_format == WHITEOUT_OVERLAY) {
		r = RET_NERRNO(
		    renameat2(op->up, op->name, op->newup, op->newname, RENAME_WHITEOUT));
		if (r != -EINVAL && r != -EPERM)
			return r;
	}
	r = RET_NERRNO(renameat(op->up, op->name, op->newup, op->newname));
	if (r == 0)
		r = whiteout_clear(op->newup, op->newname);
	if (r == 0 && op->src_lower)
		r = whiteout_put(fs, op->up, op->name, false);
	return r;
}

static int do_rename(struct unionfs *fs, struct rename_op *op)
{
	struct dir_fixup src_fix, dst_fix = {0};
	int r;

	op->src_lower = dir_name_in_lower(op->dir, op->name);
	op->dst_lower = dir_name_in_lower(op->newdir, op->newname);
	r = plan_fixup(fs, op->src, op->dst_lower, &src_fix);
	if (r == 0 && (op->flags & RENAME_EXCHANGE))
		r = plan_fixup(fs, op->dst, op->src_lower, &dst_fix);
	if (r == 0)
		r = copyup(fs, op->src, true);
	if (r == 0 && (op->flags & RENAME_EXCHANGE))
		r = copyup(fs, op->dst, true);
	if (r < 0)
		return r;
	op->up = dir_upper_fd(fs, op->dir);
	op->newup = dir_upper_fd(fs, op->newdir);
	if (op->up < 0 || op->newup < 0)
		return op->up < 0 ? op->up : op->newup;
	r = dir_name_upper_link(fs, op->src, op->up, op->name);
	if (r == 0 && (op->flags & RENAME_EXCHANGE))
		r = dir_name_upper_link(fs, op->dst, op->newup, op->newname);
	else if (r == 0 && op->dst && !S_ISDIR(op->dst->type))
		r = dir_prepare_group_name(fs, op->dst, op->newup, op->newname);
	if (r == 0)
		r = apply_fixup(fs, op->src, &src_fix);
	if (r == 0 && (op->flags & RENAME_EXCHANGE))
		r = apply_fixup(fs, op->dst, &dst_fix);
	if (r < 0)
		return r;
	if (op->flags & RENAME_EXCHANGE)
		r = RET_NERRNO(
		    renameat2(op->up, op->name, op->newup, op->newname, RENAME_EXCHANGE));
	else
		r = move_replacing(fs, op);
	if (r < 0)
		return r;
	r = node_move(&fs->nodes, op->src, op->newdir, op->newname);
	if (r == 0 && (op->flags & RENAME_EXCHANGE))
		r = node_move(&fs->nodes, op->dst, op->dir, op->name);
	return r;
}

int dir_rename(struct unionfs *fs, struct node *dir, const char *name, struct node *newdir,
	       const char *newname, unsigned flags)
{
	struct rename_op op = {
	    .dir = dir, .newdir = newdir, .name = name, .newname = newname, .flags = flags};
	struct stat st;
	int r;

	if (fs->read_only)
		return -EROFS;
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (whiteout_is_meta_name(newname))
		return -EINVAL;
	pthread_mutex_lock(&fs->rename_lock);
	r = namei_lookup(fs, dir, name, &op.src, &st);
	if (r < 0)
		goto out;
	r = namei_lookup(fs, newdir, newname, &op.dst, &st);
	if (r == -ENOENT) {
		op.dst = NULL;
		r = 0;
	}
	if (r == 0)
		r = check_types(&op);
	/* Two names of one inode: POSIX says do nothing. */
	if (r == 0 && op.src != op.dst)
		r = do_rename(fs, &op);
	dir_listing_invalidate(dir);
	dir_listing_invalidate(newdir);
out:
	if (op.src)
		node_forget(&fs->nodes, op.src, 1);
	if (op.dst)
		node_forget(&fs->nodes, op.dst, 1);
	pthread_mutex_unlock(&fs->rename_lock);
	return r;
}
