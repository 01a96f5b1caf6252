/*
 * The source tree of a pack. One walk of SRC through dir fds and *at() calls
 * collects every name with its metadata, xattrs, link target and (for sparse
 * files) data segments, so the image can be sized and laid out before a single
 * byte of it is written. Hard links are found by (st_dev, st_ino).
 */
#include "loopimg/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/log.h"
#include "lib/macro.h"

struct link_slot {
	dev_t dev;
	ino_t ino;
	struct tree_node *node;
};

struct scan {
	struct tree *tree;
	const struct tree_options *opts;
	struct link_slot *links;
	size_t nlinks, links_cap;
	XXH3_state_t *hash;
};

static void node_free(struct tree_node *n)
{
	for (size_t i = 0; i < n->nchildren; i++)
		node_free(n->children[i]);
	for (size_t i = 0; i < n->nxattrs; i++) {
		free(n->xattrs[i].name);
		free(n->xattrs[i].value);
	}
	free(n->xattrs);
	free(n->children);
	free(n->segments);
	free(n->link_target);
	free(n->name);
	free(n);
}

void tree_free(struct tree *t)
{
	if (!t)
		return;
	if (t->root)
		node_free(t->root);
	free(t->src);
	free(t);
}

char *tree_node_path(const struct tree *t, const struct tree_node *n)
{
	size_t len = strlen(t->src) + 1;
	char *path, *end;

	for (const struct tree_node *p = n; p->parent; p = p->parent)
		len += strlen(p->name) + 1;
	path = malloc(len);
	if (!path)
		return NULL;
	end = path + len - 1;
	*end = '\0';
	for (const struct tree_node *p = n; p->parent; p = p->parent) {
		size_t l = strlen(p->name);

		end -= l;
		memcpy(end, p->name, l);
		*--end = '/';
	}
	memcpy(path, t->src, end - path);
	return path;
}

static int log_node(struct scan *s, const struct tree_node *n, int err, const char *what)
{
	_cleanup_free_ char *path = tree_node_path(s->tree, n);

	if (what)
		return log_errno(err, "pack: %s: %s", path ? path : n->name, what);
	return log_errno(err, "pack: %s", path ? path : n->name);
}

static uint64_t link_hash(dev_t dev, ino_t ino)
{
	return (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev;
}

static int links_grow(struct scan *s)
{
	size_t cap = s->links_cap ? s->links_cap * 2 : 1024;
	struct link_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < s->links_cap; i++) {
		struct link_slot *old = &s->links[i];
		size_t j;

		if (!old->node)
			continue;
		for (j = link_hash(old->dev, old->ino) & (cap - 1); slots[j].node;
		     j = (j + 1) & (cap - 1))
			;
		slots[j] = *old;
	}
	free(s->links);
	s->links = slots;
	s->links_cap = cap;
	return 0;
}

/* Returns the first node seen with this (dev, ino), registering n when it is the first. */
static int links_find_or_add(struct scan *s, const struct stat *st, struct tree_node *n,
			     struct tree_node **first)
{
	size_t j;

	if ((s->nlinks + 1) * 2 > s->links_cap) {
		int r = links_grow(s);

		if (r < 0)
			return r;
	}
	for (j = link_hash(st->st_dev, st->st_ino) & (s->links_cap - 1); s->links[j].node;
	     j = (j + 1) & (s->links_cap - 1)) {
		if (s->links[j].dev == st->st_dev && s->links[j].ino == st->st_ino) {
			*first = s->links[j].node;
			return 0;
		}
	}
	s->links[j] = (struct link_slot){.dev = st->st_dev, .ino = st->st_ino, .node = n};
	s->nlinks++;
	*first = n;
	return 0;
}

static uint32_t map_owner(const struct tree_options *o, uint32_t id, bool is_gid)
{
	if (o->root_owned)
		return 0;
	for (size_t i = 0; i < o->nowner_map; i++)
		if (o->owner_map[i].is_gid == is_gid && o->owner_map[i].from == id)
			return o->owner_map[i].to;
	return id;
}

static void clamp_time(const struct tree_options *o, struct timespec *ts)
{
	if (o->clamp && ts->tv_sec >= o->clamp_time) {
		ts->tv_sec = o->clamp_time;
		ts->tv_nsec = 0;
	}
}

static void node_set_stat(struct scan *s, struct tree_node *n, const struct stat *st)
{
	const struct tree_options *o = s->opts;

	n->mode = st->st_mode;
	n->uid = map_owner(o, st->st_uid, false);
	n->gid = map_owner(o, st->st_gid, true);
	n->rdev = st->st_rdev;
	n->size = S_ISREG(st->st_mode) || S_ISLNK(st->st_mode) ? (uint64_t)st->st_size : 0;
	n->atime = st->st_atim;
	n->mtime = st->st_mtim;
	n->ctime = st->st_ctim;
	clamp_time(o, &n->mtime);
	if (o->reproducible) {
		/* Reading a file may move its atime, and no copy keeps ctime: derive both. */
		n->atime = n->mtime;
		n->ctime = n->mtime;
	}
	clamp_time(o, &n->atime);
	clamp_time(o, &n->ctime);
	n->nlink = 1;
	if (n->mtime.tv_sec > s->tree->max_mtime)
		s->tree->max_mtime = n->mtime.tv_sec;
}

static int read_link(struct scan *s, int dirfd, struct tree_node *n)
{
	char buf[PATH_MAX + 1];
	ssize_t len = readlinkat(dirfd, n->name, buf, sizeof(buf));

	if (len < 0)
		return log_node(s, n, -errno, NULL);
	if ((size_t)len >= sizeof(buf))
		return log_node(s, n, -ENAMETOOLONG, "link target");
	n->link_target = strndup(buf, len);
	if (!n->link_target)
		return -ENOMEM;
	n->size = len;
	return 0;
}

static int xattr_add(struct tree_node *n, const char *path, const char *name)
{
	ssize_t len = lgetxattr(path, name, NULL, 0);
	struct tree_xattr *x;
	void *value;

	if (len < 0)
		return errno == ENODATA ? 0 : -errno;
	value = malloc(len ? len : 1);
	if (!value)
		return -ENOMEM;
	len = lgetxattr(path, name, value, len);
	if (len < 0) {
		free(value);
		return errno == ENODATA ? 0 : -errno;
	}
	x = realloc(n->xattrs, (n->nxattrs + 1) * sizeof(*x));
	if (!x) {
		free(value);
		return -ENOMEM;
	}
	n->xattrs = x;
	x = &n->xattrs[n->nxattrs];
	x->name = strdup(name);
	if (!x->name) {
		free(value);
		return -ENOMEM;
	}
	x->value = value;
	x->len = len;
	n->nxattrs++;
	return 0;
}

/* l*xattr through /proc/self/fd/DIRFD/NAME: addresses the entry itself, whatever its type. */
static int read_xattrs(struct scan *s, int dirfd, struct tree_node *n)
{
	char path[64 + NAME_MAX], list[65536];
	ssize_t len;

	if (n->parent)
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd, n->name);
	else
		snprintf(path, sizeof(path), "/proc/self/fd/%d/.", dirfd);
	len = llistxattr(path, list, sizeof(list));
	if (len < 0) {
		if (errno == ENOTSUP || errno == EOPNOTSUPP)
			return 0;
		return log_node(s, n, -errno, "listing xattrs");
	}
	for (char *name = list; name < list + len; name += strlen(name) + 1) {
		int r = xattr_add(n, path, name);

		if (r < 0)
			return log_node(s, n, r, name);
	}
	if (n->nxattrs)
		s->tree->nxattr_nodes++;
	return 0;
}

static int segment_add(struct tree_node *n, uint64_t offset, uint64_t len)
{
	struct tree_segment *seg = realloc(n->segments, (n->nsegments + 1) * sizeof(*seg));

	if (!seg)
		return -ENOMEM;
	n->segments = seg;
	seg[n->nsegments++] = (struct tree_segment){.offset = offset, .len = len};
	return 0;
}

/* Finds the data ranges of a file whose block count says it has holes. */
static int read_segments(struct scan *s, int dirfd, struct tree_node *n)
{
	_cleanup_close_ int fd = openat(dirfd, n->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	off_t data = 0, hole;

	if (fd < 0)
		return log_node(s, n, -errno, NULL);
	for (;;) {
		int r;

		data = lseek(fd, data, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0)
			return log_node(s, n, -errno, "finding data");
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return log_node(s, n, -errno, "finding holes");
		if ((uint64_t)hole > n->size)
			hole = n->size;
		if (hole <= data)
			break;
		r = segment_add(n, data, hole - data);
		if (r < 0)
			return r;
		data = hole;
	}
	/* An empty list means all holes; mark it so the writer does not treat it as full. */
	if (!n->segments)
		return segment_add(n, n->size, 0);
	return 0;
}

static uint64_t node_data_bytes(const struct tree_node *n)
{
	uint64_t sum = 0;

	if (!n->segments)
		return n->size;
	for (size_t i = 0; i < n->nsegments; i++)
		sum += n->segments[i].len;
	return sum;
}

static void hash_node(struct scan *s, const struct tree_node *n)
{
	uint64_t meta[7] = {n->mode,
			    n->uid,
			    n->gid,
			    n->rdev,
			    n->size,
			    (uint64_t)n->mtime.tv_sec,
			    (uint64_t)n->mtime.tv_nsec};

	XXH3_128bits_update(s->hash, n->name, strlen(n->name) + 1);
	XXH3_128bits_update(s->hash, meta, sizeof(meta));
}

/* Fills a node from an lstat of its name in dirfd; hard links point at their first node. */
static int node_fill(struct scan *s, int dirfd, struct tree_node *n)
{
	struct stat st;
	int r;

	if (fstatat(dirfd, n->parent ? n->name : ".", &st, AT_SYMLINK_NOFOLLOW) < 0)
		return log_node(s, n, -errno, NULL);
	node_set_stat(s, n, &st);
	s->tree->nnodes++;
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		struct tree_node *first;

		r = links_find_or_add(s, &st, n, &first);
		if (r < 0)
			return r;
		if (first != n) {
			n->link_first = first;
			first->nlink++;
			hash_node(s, n);
			return 0;
		}
	}
	if (S_ISLNK(st.st_mode)) {
		r = read_link(s, dirfd, n);
		if (r < 0)
			return r;
		s->tree->nsymlinks++;
	} else if (S_ISREG(st.st_mode)) {
		s->tree->nregular++;
		if ((uint64_t)st.st_blocks * 512 < n->size) {
			r = read_segments(s, dirfd, n);
			if (r < 0)
				return r;
		}
		s->tree->data_bytes += node_data_bytes(n);
	} else if (S_ISDIR(st.st_mode)) {
		s->tree->ndirs++;
	}
	hash_node(s, n);
	return read_xattrs(s, dirfd, n);
}

static int child_cmp(const void *a, const void *b)
{
	const struct tree_node *x = *(struct tree_node *const *)a,
			       *y = *(struct tree_node *const *)b;

	return strcmp(x->name, y->name);
}

static int child_add(struct tree_node *dir, const char *name, size_t *cap)
{
	struct tree_node *n;

	if (dir->nchildren == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct tree_node **c = realloc(dir->children, ncap * sizeof(*c));

		if (!c)
			return -ENOMEM;
		dir->children = c;
		*cap = ncap;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->name = strdup(name);
	if (!n->name) {
		free(n);
		return -ENOMEM;
	}
	n->parent = dir;
	dir->children[dir->nchildren++] = n;
	return 0;
}

/* Reads the names of one directory, sorted bytewise so the image does not depend on readdir order.
 */
static int read_names(struct scan *s, int dirfd, struct tree_node *dir)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	size_t cap = 0;
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (fd < 0)
		return log_node(s, dir, -errno, NULL);
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return log_node(s, dir, r, NULL);
	}
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = child_add(dir, de->d_name, &cap);
		if (r < 0)
			break;
	}
	if (!r && errno)
		r = log_node(s, dir, -errno, "reading directory");
	closedir(d);
	if (r == 0 && dir->nchildren)
		qsort(dir->children, dir->nchildren, sizeof(*dir->children), child_cmp);
	return r;
}

static int scan_dir(struct scan *s, int dirfd, struct tree_node *dir)
{
	int r = read_names(s, dirfd, dir);

	if (r < 0)
		return r;
	for (size_t i = 0; i < dir->nchildren; i++) {
		struct tree_node *c = dir->children[i];

		r = node_fill(s, dirfd, c);
		if (r < 0)
			return r;
		if (S_ISDIR(c->mode))
			dir->subdirs++;
	}
	for (size_t i = 0; i < dir->nchildren; i++) {
		struct tree_node *c = dir->children[i];
		_cleanup_close_ int fd = -EBADF;

		if (!S_ISDIR(c->mode))
			continue;
		fd = openat(dirfd, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return log_node(s, c, -errno, NULL);
		r = scan_dir(s, fd, c);
		if (r < 0)
			return r;
	}
	return 0;
}

static int scan_root(struct scan *s, const char *src)
{
	_cleanup_close_ int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct tree *t = s->tree;
	int r;

	if (fd < 0)
		return log_errno(-errno, "pack: %s", src);
	t->root = calloc(1, sizeof(*t->root));
	if (!t->root)
		return -ENOMEM;
	t->root->name = strdup("");
	if (!t->root->name)
		return -ENOMEM;
	r = node_fill(s, fd, t->root);
	if (r < 0)
		return r;
	return scan_dir(s, fd, t->root);
}

int tree_scan(const char *src, const struct tree_options *opts, struct tree **out)
{
	struct scan s = {.opts = opts};
	XXH128_hash_t h;
	int r;

	s.tree = calloc(1, sizeof(*s.tree));
	s.hash = XXH3_createState();
	if (!s.tree || !s.hash) {
		free(s.tree);
		XXH3_freeState(s.hash);
		return -ENOMEM;
	}
	XXH3_128bits_reset(s.hash);
	s.tree->src = strdup(src);
	r = s.tree->src ? scan_root(&s, src) : -ENOMEM;
	h = XXH3_128bits_digest(s.hash);
	s.tree->digest[0] = h.low64;
	s.tree->digest[1] = h.high64;
	XXH3_freeState(s.hash);
	free(s.links);
	if (r < 0) {
		tree_free(s.tree);
		return r;
	}
	*out = s.tree;
	return 0;
}

static int walk_node(struct tree_node *n, int (*fn)(struct tree_node *, void *), void *opaque)
{
	int r = fn(n, opaque);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n->nchildren; i++) {
		r = walk_node(n->children[i], fn, opaque);
		if (r < 0)
			return r;
	}
	return 0;
}

int tree_walk(struct tree *t, int (*fn)(struct tree_node *n, void *opaque), void *opaque)
{
	return walk_node(t->root, fn, opaque);
}
