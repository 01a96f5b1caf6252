/*
 * loopimg pack: scan SRC, lay the image out, copy file data in tree order,
 * and only then rename the finished, closed image onto IMG. A failed or
 * killed pack leaves at most a hidden ".IMG.XXXXXX" temp file, never a
 * half-written IMG. With --reproducible the UUID is a digest of the image.
 */
#include "loopimg/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/log.h"
#include "lib/macro.h"
#include "lib/progress.h"
#include "loopimg/prefetch.h"

static char temp_path[PATH_MAX];

const char *pack_temp_path(void)
{
	return temp_path[0] ? temp_path : NULL;
}

int pack_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTP";
	char *end;
	double v;
	const char *u;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	if (*end) {
		u = strchr(units, *end & ~0x20);
		if (!u || !*end)
			return -EINVAL;
		for (int i = 0; i <= u - units; i++)
			v *= 1024;
		end++;
		if (*end == 'i')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v >= 18446744073709551615.0)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

int pack_parse_percent(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (end == s || errno || (*end && strcmp(end, "%")) || v > 10000)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_owner_entry(const char *s, struct tree_owner_map *m)
{
	char kind;
	unsigned long from, to;
	int len = 0;

	if (sscanf(s, "%c:%lu:%lu%n", &kind, &from, &to, &len) != 3 || s[len] ||
	    (kind != 'u' && kind != 'g') || from > UINT32_MAX || to > UINT32_MAX)
		return -EINVAL;
	*m = (struct tree_owner_map){.is_gid = kind == 'g', .from = from, .to = to};
	return 0;
}

int pack_parse_owner_map(const char *s, struct tree_owner_map **map, size_t *n)
{
	_cleanup_free_ char *copy = strdup(s);
	_cleanup_free_ struct tree_owner_map *m = NULL;
	size_t count = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	m = calloc(strlen(s) / 2 + 1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int r = parse_owner_entry(tok, &m[count]);

		if (r < 0)
			return r;
		count++;
	}
	if (!count)
		return -EINVAL;
	*map = TAKE_PTR(m);
	*n = count;
	return 0;
}

/* ---- data copy, in the order the writer laid the tree out ---- */

#define PREFETCH_WINDOW (256u << 20)

struct copy_state;
static int copy_tree(struct copy_state *c, const char *src);

struct copy_state {
	struct ext4_writer *w;
	struct tree *tree;
	struct progress progress;
	uint64_t done;
	struct prefetch *prefetch;
	size_t copied; /* regular files copied so far, in copy order */
};

static int open_source_file(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);

	/* O_NOATIME is only for the owner (or root); fall back rather than fail. */
	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int log_node(struct copy_state *c, const struct tree_node *n, int err, const char *what)
{
	_cleanup_free_ char *p = tree_node_path(c->tree, n);

	if (what)
		return log_errno(err, "pack: %s: %s", p ? p : n->name, what);
	return log_errno(err, "pack: %s", p ? p : n->name);
}

static int copy_file(struct copy_state *c, int dirfd, struct tree_node *n)
{
	_cleanup_close_ int fd = open_source_file(dirfd, n->name);
	struct stat st;
	int r;

	if (fd < 0)
		return log_node(c, n, fd, NULL);
	if (fstat(fd, &st) < 0)
		return log_node(c, n, -errno, NULL);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != n->size)
		return log_node(c, n, -EAGAIN, "changed while packing");
	r = ext4_write_file(c->w, n, fd);
	if (r < 0)
		return r;
	c->done += n->size;
	progress_update(&c->progress, c->done);
	if (c->prefetch)
		prefetch_advance(c->prefetch, ++c->copied);
	return 0;
}

static int copy_dir(struct copy_state *c, int dirfd, struct tree_node *dir)
{
	for (size_t i = 0; i < dir->nchildren; i++) {
		struct tree_node *n = dir->children[i];
		int r = 0;

		if (S_ISREG(n->mode) && !n->link_first && n->size) {
			r = copy_file(c, dirfd, n);
		} else if (S_ISDIR(n->mode) && n->nchildren) {
			_cleanup_close_ int fd =
			    openat(dirfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd < 0)
				return log_node(c, n, -errno, NULL);
			r = copy_dir(c, fd, n);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

struct file_list {
	struct tree_node **v;
	size_t n, cap;
};

/* The regular files copy_dir() will copy, in the same order. */
static int list_files(struct tree_node *dir, struct file_list *l)
{
	for (size_t i = 0; i < dir->nchildren; i++) {
		struct tree_node *n = dir->children[i];
		int r = 0;

		if (S_ISREG(n->mode) && !n->link_first && n->size) {
			if (l->n == l->cap) {
				size_t cap = l->cap ? l->cap * 2 : 1024;
				struct tree_node **v = realloc(l->v, cap * sizeof(*v));

				if (!v)
					return -ENOMEM;
				l->v = v;
				l->cap = cap;
			}
			l->v[l->n++] = n;
		} else if (S_ISDIR(n->mode)) {
			r = list_files(n, l);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int copy_data(struct copy_state *c, const char *src)
{
	struct file_list files = {0};
	int r = list_files(c->tree->root, &files);

	/* Prefetching is only advice: without it (no memory, no thread) the copy still works. */
	if (r == 0 && prefetch_start(c->tree, files.v, files.n, PREFETCH_WINDOW, &c->prefetch) < 0)
		c->prefetch = NULL;
	r = copy_tree(c, src);
	prefetch_stop(c->prefetch);
	c->prefetch = NULL;
	free(files.v);
	return r;
}

static int copy_tree(struct copy_state *c, const char *src)
{
	_cleanup_close_ int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return log_errno(-errno, "pack: %s", src);
	return copy_dir(c, fd, c->tree->root);
}

/* ---- the image file ---- */

static int check_target(const char *img, bool force)
{
	struct stat st;

	if (lstat(img, &st) < 0)
		return errno == ENOENT ? 0 : log_errno(-errno, "pack: %s", img);
	if (!force) {
		log_error("pack: %s: exists (use --force to replace it)", img);
		return -EEXIST;
	}
	if (!S_ISREG(st.st_mode))
		return log_errno(-EINVAL, "pack: %s: not a regular file", img);
	return 0;
}

static int make_temp(const char *img)
{
	_cleanup_free_ char *copy1 = strdup(img), *copy2 = strdup(img);
	mode_t mask;
	int fd;

	if (!copy1 || !copy2)
		return -ENOMEM;
	if (snprintf(temp_path, sizeof(temp_path), "%s/.%s.XXXXXX", dirname(copy1),
		     basename(copy2)) >= (int)sizeof(temp_path))
		return log_errno(-ENAMETOOLONG, "pack: %s", img);
	fd = mkostemp(temp_path, O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;

		temp_path[0] = '\0';
		return log_errno(r, "pack: %s", img);
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0644 & ~mask) < 0 || close(fd) < 0) {
		int r = -errno;

		unlink(temp_path);
		temp_path[0] = '\0';
		return log_errno(r, "pack: %s", img);
	}
	return 0;
}

static int digest_image(const char *path, uint8_t uuid[16])
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	const size_t chunk = 4 << 20;
	_cleanup_free_ uint8_t *buf = malloc(chunk);
	XXH3_state_t *st = XXH3_createState();
	XXH128_canonical_t canon;
	ssize_t n;

	if (fd < 0 || !buf || !st) {
		int r = fd < 0 ? -errno : -ENOMEM;

		XXH3_freeState(st);
		return r;
	}
	XXH3_128bits_reset(st);
	while ((n = read(fd, buf, chunk)) > 0)
		XXH3_128bits_update(st, buf, n);
	XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(st));
	XXH3_freeState(st);
	if (n < 0)
		return -errno;
	memcpy(uuid, canon.digest, 16);
	uuid[6] = (uuid[6] & 0x0f) | 0x40;
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	return 0;
}

static int write_image(const char *src, struct tree *tree, struct pack_options *o)
{
	struct copy_state c = {.tree = tree};
	int r = ext4_write_begin(temp_path, tree, &o->image, &c.w);

	if (r < 0)
		return r;
	if (o->progress)
		progress_init(&c.progress, "pack", ext4_write_data_total(c.w), true, false);
	r = copy_data(&c, src);
	progress_finish(&c.progress);
	if (r < 0) {
		ext4_write_abort(c.w);
		return r;
	}
	r = ext4_write_finish(c.w);
	if (r < 0 || !o->image.reproducible || o->image.set_uuid)
		return r;
	{
		uint8_t uuid[16];

		r = digest_image(temp_path, uuid);
		if (r < 0)
			return log_errno(r, "pack: %s", temp_path);
		return ext4_write_set_uuid(temp_path, uuid, o->image.fs_time);
	}
}

static int fsync_parent(const char *img)
{
	_cleanup_free_ char *copy = strdup(img);
	_cleanup_close_ int fd = -EBADF;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

int pack_run(const char *src, const char *img, struct pack_options *o)
{
	struct tree *tree = NULL;
	int r = check_target(img, o->force);

	if (r < 0)
		return r;
	r = tree_scan(src, &o->tree, &tree);
	if (r < 0)
		return r;
	if (o->image.reproducible && !o->image.fs_time)
		o->image.fs_time = o->tree.clamp ? o->tree.clamp_time : MAX(tree->max_mtime, 1);
	o->image.name = img;
	r = make_temp(img);
	if (r >= 0) {
		r = write_image(src, tree, o);
		if (r >= 0 && rename(temp_path, img) < 0)
			r = log_errno(-errno, "pack: %s", img);
		if (r < 0)
			unlink(temp_path);
		else if (fsync_parent(img) < 0)
			log_warn("pack: %s: could not sync its directory", img);
		temp_path[0] = '\0';
	}
	tree_free(tree);
	return r;
}
