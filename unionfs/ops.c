/*
 * The FUSE operations: thin handlers that call the modules and reply exactly
 * once per request. This is the only file that knows fuse_reply_*.
 */
#include "unionfs/ops.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/macro.h"
#include "unionfs/attr.h"
#include "unionfs/copyup.h"
#include "unionfs/dir.h"
#include "unionfs/file.h"
#include "unionfs/inode.h"
#include "unionfs/namei.h"
#include "unionfs/readdir.h"
#include "unionfs/unionfs.h"
#include "unionfs/xattr.h"

#define MAX_IO (1U << 20)

static struct unionfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? fs_of(req)->root : (struct node *)(uintptr_t)ino;
}

/*
 * A request that may take long (a copy-up of file data, fsync) is replayed
 * on the slow lane (lane.h) with its arguments copied here, and replies from
 * there. With -s it runs at once.
 */
struct deferred {
	struct job job;
	void (*replay)(struct deferred *d);
	fuse_req_t req;
	fuse_ino_t ino, ino2;
	struct fuse_file_info fi, fi2;
	bool has_fi;
	struct stat attr;
	int a; /* flags, mode, datasync: what the request has */
	off_t off, off2;
	size_t size;
	char *name, *name2, *value; /* owned copies */
};

static void deferred_free(struct deferred *d)
{
	free(d->name);
	free(d->name2);
	free(d->value);
	free(d);
}

static void run_deferred(struct job *job)
{
	struct deferred *d = (struct deferred *)job;

	d->replay(d);
	deferred_free(d);
}

/* A job for req; NULL (the caller then answers at once) when memory is short. */
static struct deferred *deferred_new(fuse_req_t req, fuse_ino_t ino,
				     void (*replay)(struct deferred *d))
{
	struct deferred *d = calloc(1, sizeof(*d));

	if (d)
		*d = (struct deferred){
		    .job.run = run_deferred, .replay = replay, .req = req, .ino = ino};
	return d;
}

/* Hands d to the slow lane, unless copying its strings failed: then false, d freed. */
static bool defer(fuse_req_t req, struct deferred *d, bool copies_ok)
{
	if (!copies_ok) {
		deferred_free(d);
		return false;
	}
	lane_submit(&fs_of(req)->lane, &d->job);
	return true;
}

/*
 * Whether a change to node may first copy a regular file's data up, waiting
 * for the disk (fsync) or copying much. Without fsync (volatile) a small
 * copy costs less than handing the request to a worker, which on an idle
 * CPU must first be woken.
 */
#define SLOW_COPY_SIZE (1 << 20)
static bool may_copy_data(struct unionfs *fs, struct node *node)
{
	const struct layer_set *set = node_layers(node);

	if (!S_ISREG(node->type) || fs->read_only || (copyup_done(fs, node) && !set->metacopy))
		return false;
	return !fs->volatile_mode || !set->name || set->size >= SLOW_COPY_SIZE;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct unionfs *fs = userdata;
	const unsigned want = FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_READDIRPLUS |
			      FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ASYNC_READ |
			      FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_AUTO_INVAL_DATA;

	conn->want |= conn->capable & want;
	/* Replies through io_uring are copied into its buffers: no splicing to /dev/fuse. */
	if (fs->uring.kernel_offers)
		conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	/* find -ls wants attributes for every entry: always READDIRPLUS, never the guess. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (!fs->udba_reval)
		conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	if (!fs->read_only)
		conn->want |= conn->capable & FUSE_CAP_SPLICE_READ;
	/* Passthrough writes beat the writeback cache, and the kernel takes only one. */
	if (!fs->read_only && !passthrough_excludes_writeback(&fs->pt))
		conn->want |= conn->capable & FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = MAX_IO;
	conn->max_readahead = MAX_IO;
	conn->time_gran = 1;
}

static void fill_entry(struct unionfs *fs, struct fuse_entry_param *e, struct node *node,
		       const struct stat *st)
{
	struct stat attr = *st; /* st may point into e */

	memset(e, 0, sizeof(*e));
	e->ino = (uintptr_t)node;
	e->attr = attr;
	e->attr_timeout = fs->attr_timeout;
	e->entry_timeout = fs->entry_timeout;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct unionfs *fs = fs_of(req);
	struct fuse_entry_param e;
	struct node *node;
	struct stat st;
	int r = namei_lookup(fs, node_of(req, parent), name, &node, &st);

	if (r == -ENOENT && fs->negative_timeout > 0) {
		/* A zero nodeid with a timeout lets the kernel cache the absence. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs->negative_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fill_entry(fs, &e, node, &st);
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	if (ino != FUSE_ROOT_ID)
		node_forget(&fs_of(req)->nodes, node_of(req, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		if (forgets[i].ino != FUSE_ROOT_ID)
			node_forget(&fs_of(req)->nodes, node_of(req, forgets[i].ino),
				    forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = namei_getattr(fs_of(req), node_of(req, ino), &st);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs_of(req)->attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t r = attr_readlink(node_of(req, ino), buf, sizeof(buf));

	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_readlink(req, buf);
}

struct dir_handle {
	struct dir_listing *listing;
};

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct unionfs *fs = fs_of(req);
	struct node *node = node_of(req, ino);
	uint64_t max_age = fs->udba_reval ? (uint64_t)(fs->attr_timeout * 1e9) : 0;
	struct dir_handle *dh = malloc(sizeof(*dh));
	int r;

	if (!dh) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = dir_listing_get(node, max_age, &dh->listing);
	if (r < 0) {
		free(dh);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)dh;
	/* Branches do not change under a udba=none mount: the kernel may keep the listing. */
	fi->cache_readdir = !fs->udba_reval;
	fi->keep_cache = !fs->udba_reval;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		dir_listing_unref(dh->listing);
		free(dh);
	}
}

/* Offsets: 0 ".", 1 "..", then 2 + index in the listing's visible entries. */
static int dot_entry(struct unionfs *fs, struct node *dir, off_t i, const char **name,
		     struct stat *st)
{
	struct node *target = i == 0 || !dir->parent ? dir : dir->parent;

	*name = i == 0 ? "." : "..";
	memset(st, 0, sizeof(*st));
	st->st_ino = target->ino;
	st->st_mode = S_IFDIR;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct unionfs *fs = fs_of(req);
	struct node *dir = node_of(req, ino);
	struct dir_listing *l = ((struct dir_handle *)(uintptr_t)fi->fh)->listing;
	_cleanup_free_ char *buf = malloc(size);
	size_t used = 0;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (off_t i = off; i < (off_t)l->nvisible + 2; i++) {
		struct fuse_entry_param e = {0};
		struct node *child = NULL;
		const char *name;
		size_t n;

		if (i < 2) {
			dot_entry(fs, dir, i, &name, &e.attr);
		} else {
			const struct dir_entry *d = &l->entries[l->visible[i - 2]];
			name = d->name;
			e.attr.st_ino = d->ino;
			e.attr.st_mode = DTTOIF(d->d_type);
			if (plus) {
				err = namei_lookup(fs, dir, name, &child, &e.attr);
				if (err == -ENOENT)
					continue;
				if (err < 0)
					break;
				fill_entry(fs, &e, child, &e.attr);
			}
		}
		if (plus)
			n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
		else
			n = fuse_add_direntry(req, buf + used, size - used, name, &e.attr, i + 1);
		if (n > size - used) {
			/* Not sent: the kernel will not count this lookup, so neither do we. */
			if (child)
				node_forget(&fs->nodes, child, 1);
			break;
		}
		used += n;
	}
	if (err < 0 && used == 0)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, used);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *dh = (struct dir_handle *)(uintptr_t)fi->fh;

	dir_listing_unref(dh->listing);
	free(dh);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct unionfs *fs = fs_of(req);
	struct open_file *fh;
	int r = file_open(fs, node_of(req, ino), fi->flags, &fh);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)fh;
	/* Without the writeback cache, the kernel's pages of a writable file may be stale. */
	fi->keep_cache = !fs->udba_reval && (fh->lower || !fs->pt.active);
	fi->noflush = 1;
	passthrough_reply_with(fh->backing);
	r = fuse_reply_open(req, fi);
	passthrough_reply_with(-1);
	if (r == -ENOENT)
		file_release(fs, fh);
}

static void replay_open(struct deferred *d)
{
	do_open(d->req, d->ino, &d->fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct unionfs *fs = fs_of(req);
	struct deferred *d;

	if (file_open_writes(fi->flags) && may_copy_data(fs, node_of(req, ino)) &&
	    (d = deferred_new(req, ino, replay_open))) {
		d->fi = *fi;
		defer(req, d, true);
		return;
	}
	do_open(req, ino, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct open_file *fh = (struct open_file *)(uintptr_t)fi->fh;
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	int fd = file_fd(fh);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	file_release(fs_of(req), (struct open_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void do_fsync(fuse_req_t req, int datasync, struct fuse_file_info *fi)
{
	fuse_reply_err(req,
		       -file_fsync(fs_of(req), (struct open_file *)(uintptr_t)fi->fh, datasync));
}

static void replay_fsync(struct deferred *d)
{
	do_fsync(d->req, d->a, &d->fi);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct deferred *d;

	if (!fs_of(req)->volatile_mode && (d = deferred_new(req, ino, replay_fsync))) {
		d->fi = *fi;
		d->a = datasync;
		defer(req, d, true);
		return;
	}
	do_fsync(req, datasync, fi);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	off_t r = file_lseek((struct open_file *)(uintptr_t)fi->fh, off, whence);

	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int r = attr_statfs(fs_of(req), &st);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_statfs(req, &st);
}

static void reply_xattr_result(fuse_req_t req, ssize_t r, const void *value, size_t size)
{
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)r);
	else
		fuse_reply_buf(req, value, (size_t)r);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	_cleanup_free_ char *value = size ? malloc(size) : NULL;
	ssize_t r;

	if (size && !value) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = unionfs_xattr_get(fs_of(req), node_of(req, ino), name, value, size);
	reply_xattr_result(req, r, value, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	_cleanup_free_ char *list = size ? malloc(size) : NULL;
	ssize_t r;

	if (size && !list) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	r = unionfs_xattr_list(node_of(req, ino), list, size);
	reply_xattr_result(req, r, list, size);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	gid_t groups[64];
	int n = fuse_req_getgroups(req, ARRAY_SIZE(groups), groups);
	int r = attr_access(fs_of(req), node_of(req, ino), mask, ctx->uid, ctx->gid, groups,
			    n < 0 ? 0 : MIN(n, (int)ARRAY_SIZE(groups)));

	fuse_reply_err(req, -r);
}

static void get_creds(fuse_req_t req, struct creds *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	c->uid = ctx->uid;
	c->gid = ctx->gid;
}

static void reply_new_entry(fuse_req_t req, int r, struct node *node, const struct stat *st)
{
	struct fuse_entry_param e;

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fill_entry(fs_of(req), &e, node, st);
	fuse_reply_entry(req, &e);
}

static void make_object(fuse_req_t req, fuse_ino_t parent, const char *name,
			const struct new_object *obj)
{
	struct creds c;
	struct node *node = NULL;
	struct stat st;
	int fd = -EBADF, r;

	get_creds(req, &c);
	r = dir_make(fs_of(req), node_of(req, parent), name, obj, &c, &node, &st, &fd);
	closep(&fd);
	reply_new_entry(req, r, node, &st);
}

static unsigned attr_flags(int to_set)
{
	static const struct {
		int fuse;
		unsigned ours;
	} map[] = {
	    {FUSE_SET_ATTR_MODE, ATTR_SET_MODE},
	    {FUSE_SET_ATTR_UID, ATTR_SET_UID},
	    {FUSE_SET_ATTR_GID, ATTR_SET_GID},
	    {FUSE_SET_ATTR_SIZE, ATTR_SET_SIZE},
	    {FUSE_SET_ATTR_ATIME, ATTR_SET_ATIME},
	    {FUSE_SET_ATTR_MTIME, ATTR_SET_MTIME},
	    {FUSE_SET_ATTR_ATIME_NOW, ATTR_SET_ATIME_NOW},
	    {FUSE_SET_ATTR_MTIME_NOW, ATTR_SET_MTIME_NOW},
	};
	unsigned ours = 0;

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (to_set & map[i].fuse)
			ours |= map[i].ours;
	return ours;
}

static void do_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct open_file *of = fi ? (struct open_file *)(uintptr_t)fi->fh : NULL;
	int write_fd = of && (of->fd >= 0) ? of->fd : -EBADF;
	struct stat st;
	int r =
	    attr_setattr(fs_of(req), node_of(req, ino), attr, attr_flags(to_set), write_fd, &st);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, fs_of(req)->attr_timeout);
}

static void replay_setattr(struct deferred *d)
{
	do_setattr(d->req, d->ino, &d->attr, d->a, d->has_fi ? &d->fi : NULL);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct deferred *d;

	if (may_copy_data(fs_of(req), node_of(req, ino)) &&
	    (d = deferred_new(req, ino, replay_setattr))) {
		d->attr = *attr;
		d->a = to_set;
		d->has_fi = fi != NULL;
		if (fi)
			d->fi = *fi;
		defer(req, d, true);
		return;
	}
	do_setattr(req, ino, attr, to_set, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct new_object obj = {.mode = mode, .rdev = rdev};

	if (S_ISREG(mode))
		obj.open_flags = O_WRONLY;
	make_object(req, parent, name, &obj);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct new_object obj = {.mode = S_IFDIR | (mode & 07777)};

	make_object(req, parent, name, &obj);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct new_object obj = {.mode = S_IFLNK | 0777, .target = link};

	make_object(req, parent, name, &obj);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct unionfs *fs = fs_of(req);
	struct new_object obj = {.mode = S_IFREG | (mode & 07777)};
	struct fuse_entry_param e;
	struct open_file *of;
	struct node *node;
	struct creds c;
	struct stat st;
	int fd = -EBADF, r;

	/* The kernel's writeback cache may read through a write-only file. */
	obj.open_flags = fi->flags & ~O_APPEND;
	if ((obj.open_flags & O_ACCMODE) == O_WRONLY)
		obj.open_flags = (obj.open_flags & ~O_ACCMODE) | O_RDWR;
	get_creds(req, &c);
	r = dir_make(fs, node_of(req, parent), name, &obj, &c, &node, &st, &fd);
	if (r == 0) {
		unionfs_xattr_made(node);
		r = file_attach(fs, node, TAKE_FD(fd), node_layers(node)->v[0].branch,
				obj.open_flags, &of);
		if (r < 0)
			node_forget(&fs->nodes, node, 1);
	}
	if (r < 0) {
		closep(&fd);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)of;
	fi->noflush = 1;
	fill_entry(fs, &e, node, &st);
	passthrough_reply_with(of->backing);
	r = fuse_reply_create(req, &e, fi);
	passthrough_reply_with(-1);
	if (r == -ENOENT)
		file_release(fs, of);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -dir_unlink(fs_of(req), node_of(req, parent), name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -dir_rmdir(fs_of(req), node_of(req, parent), name));
}

static void do_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_reply_err(req, -dir_rename(fs_of(req), node_of(req, parent), name,
					node_of(req, newparent), newname, flags));
}

static void replay_rename(struct deferred *d)
{
	do_rename(d->req, d->ino, d->name, d->ino2, d->name2, (unsigned)d->a);
}

/* A rename may copy up a file of either name: always on the slow lane. */
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct deferred *d = deferred_new(req, parent, replay_rename);

	if (d) {
		d->ino2 = newparent;
		d->a = (int)flags;
		d->name = strdup(name);
		d->name2 = strdup(newname);
		if (defer(req, d, d->name && d->name2))
			return;
	}
	do_rename(req, parent, name, newparent, newname, flags);
}

static void do_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct node *node = NULL;
	struct stat st;
	int r =
	    dir_link(fs_of(req), node_of(req, ino), node_of(req, newparent), newname, &node, &st);

	reply_new_entry(req, r, node, &st);
}

static void replay_link(struct deferred *d)
{
	do_link(d->req, d->ino, d->ino2, d->name);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct deferred *d;

	if (may_copy_data(fs_of(req), node_of(req, ino)) &&
	    (d = deferred_new(req, ino, replay_link))) {
		d->ino2 = newparent;
		d->name = strdup(newname);
		if (defer(req, d, d->name))
			return;
	}
	do_link(req, ino, newparent, newname);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			 struct fuse_file_info *fi)
{
	struct open_file *of = (struct open_file *)(uintptr_t)fi->fh;
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t r;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = of->fd;
	out.buf[0].pos = off;
	r = fuse_buf_copy(&out, in, 0);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

static void do_fallocate(fuse_req_t req, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	fuse_reply_err(req, -file_fallocate((struct open_file *)(uintptr_t)fi->fh, mode, off, len));
}

static void replay_fallocate(struct deferred *d)
{
	do_fallocate(d->req, d->a, d->off, d->off2, &d->fi);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct deferred *d = deferred_new(req, ino, replay_fallocate);

	if (d) {
		d->a = mode;
		d->off = off;
		d->off2 = len;
		d->fi = *fi;
		defer(req, d, true);
		return;
	}
	do_fallocate(req, mode, off, len, fi);
}

static void do_copy_file_range(fuse_req_t req, off_t off_in, struct fuse_file_info *fi_in,
			       off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags)
{
	ssize_t r = file_copy_range((struct open_file *)(uintptr_t)fi_in->fh, off_in,
				    (struct open_file *)(uintptr_t)fi_out->fh, off_out, len,
				    (unsigned)flags);

	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_write(req, (size_t)r);
}

static void replay_copy_file_range(struct deferred *d)
{
	do_copy_file_range(d->req, d->off, &d->fi, d->off2, &d->fi2, d->size, d->a);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct deferred *d = deferred_new(req, ino_in, replay_copy_file_range);

	if (d) {
		d->off = off_in;
		d->fi = *fi_in;
		d->off2 = off_out;
		d->fi2 = *fi_out;
		d->size = len;
		d->a = flags;
		defer(req, d, true);
		return;
	}
	do_copy_file_range(req, off_in, fi_in, off_out, fi_out, len, flags);
}

static void do_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	fuse_reply_err(req,
		       -unionfs_xattr_set(fs_of(req), node_of(req, ino), name, value, size, flags));
}

static void replay_setxattr(struct deferred *d)
{
	do_setxattr(d->req, d->ino, d->name, d->value, d->size, d->a);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct deferred *d;

	if (may_copy_data(fs_of(req), node_of(req, ino)) &&
	    (d = deferred_new(req, ino, replay_setxattr))) {
		d->name = strdup(name);
		d->value = malloc(size ? size : 1);
		if (d->value)
			memcpy(d->value, value, size);
		d->size = size;
		d->a = flags;
		if (defer(req, d, d->name && d->value))
			return;
	}
	do_setxattr(req, ino, name, value, size, flags);
}

static void do_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -unionfs_xattr_remove(fs_of(req), node_of(req, ino), name));
}

static void replay_removexattr(struct deferred *d)
{
	do_removexattr(d->req, d->ino, d->name);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct deferred *d;

	if (may_copy_data(fs_of(req), node_of(req, ino)) &&
	    (d = deferred_new(req, ino, replay_removexattr))) {
		d->name = strdup(name);
		if (defer(req, d, d->name))
			return;
	}
	do_removexattr(req, ino, name);
}

const struct fuse_lowlevel_ops unionfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .create = op_create,
    .open = op_open,
    .read = op_read,
    .write_buf = op_write_buf,
    .fallocate = op_fallocate,
    .copy_file_range = op_copy_file_range,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .access = op_access,
    .lseek = op_lseek,
};
