/*
 * Export. One walker reads a tree (a layer image mounted read-only, or a
 * mounted stack) through dir fds, never following symlinks, names sorted so
 * the same tree gives the same tar, and hands entries to a libarchive writer:
 * a pax tar, or the disk writer for --dir. For OCI layer tars it turns
 * overlayfs whiteouts (0/0 char devices, trusted.overlay.opaque) into the
 * .wh. files of the OCI image spec and drops trusted.overlay.* xattrs.
 * OCI has no redirects: in a stack's OCI export, a directory that carries
 * trusted.overlay.redirect (a renamed dir) is written opaque, with what the
 * union of the layers up to its own holds there (the moved dir's lower
 * contents merged with its own), read from a read-only unionfs mount of
 * those layers, made when the first such dir is met.
 */
#include "layerctl/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "layerctl/layer.h"
#include "layerctl/mount.h"
#include "layerctl/oci.h"
#include "layerctl/stack.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/xattr.h"
#include "loopimg/imgmount.h"

#define OVERLAY_XATTR_PREFIX "trusted.overlay."
/* unionfs's own bookkeeping (copy-up origins), meaningless outside its mount. */
#define UNIONFS_XATTR_PREFIX "trusted.unionfs."

struct hardlink {
	dev_t dev;
	ino_t ino;
	char *path;
};

/* The layers a stack's layer sits on (itself included): where redirected dirs are merged. */
struct below {
	struct store *s;
	const char *const *ids; /* base first, the exported layer last */
	size_t n;
	char *dir; /* tmp/ dir of the union mount, once made */
	struct stack_mount *union_mount;
	int root_fd;
};

struct walker {
	struct archive *out;
	bool oci;	    /* OCI whiteouts, no trusted.overlay.* */
	const char *prefix; /* prepended to every name (the target dir of --dir) */
	struct hardlink *links;
	size_t nlinks;
	struct below *below; /* non-NULL: materialise redirected dirs */
};

static int archive_err(struct walker *w, const char *what)
{
	log_error("export: %s: %s", what, archive_error_string(w->out) ?: "archive error");
	return -EIO;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in a dir, sorted; *out is NULL-terminated (store_free_list). */
static int read_names(int dir_fd, char ***out)
{
	int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	char **names = calloc(1, sizeof(*names));
	size_t n = 0;
	int r = 0;

	if (!d || !names) {
		r = d ? -ENOMEM : -errno;
		if (d)
			closedir(d);
		else if (fd >= 0)
			close(fd);
		free(names);
		return r;
	}
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		char **grown;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		grown = realloc(names, (n + 2) * sizeof(*names));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		names = grown;
		names[n] = strdup(e->d_name);
		names[n + 1] = NULL;
		r = names[n++] ? 0 : -ENOMEM;
	}
	closedir(d);
	if (r < 0) {
		store_free_list(names);
		return r;
	}
	qsort(names, n, sizeof(*names), compare_names);
	*out = names;
	return 0;
}

static int add_xattrs(struct walker *w, int dir_fd, const char *name, struct archive_entry *e)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	_cleanup_free_ char *list = NULL;
	ssize_t len;

	if (fd < 0)
		return -errno;
	len = xattr_list_alloc(fd, &list);
	if (len == -EOPNOTSUPP || len == -ENOTSUP)
		return 0;
	if (len < 0)
		return (int)len;
	for (char *x = list; x < list + len; x += strlen(x) + 1) {
		_cleanup_free_ char *value = NULL;
		ssize_t vlen;

		if (w->oci && (!strncmp(x, OVERLAY_XATTR_PREFIX, strlen(OVERLAY_XATTR_PREFIX)) ||
			       !strncmp(x, UNIONFS_XATTR_PREFIX, strlen(UNIONFS_XATTR_PREFIX))))
			continue;
		vlen = xattr_get_alloc(fd, x, &value);
		if (vlen < 0)
			return (int)vlen;
		archive_entry_xattr_add_entry(e, x, value, (size_t)vlen);
	}
	return 0;
}

/* A plain empty file entry: the OCI form of a whiteout or an opaque marker. */
static int write_marker(struct walker *w, const char *path, const struct stat *like)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 0);
	archive_entry_set_mtime(e, like->st_mtim.tv_sec, like->st_mtim.tv_nsec);
	if (archive_write_header(w->out, e) != ARCHIVE_OK)
		r = archive_err(w, path);
	archive_entry_free(e);
	return r;
}

static int copy_file_data(struct walker *w, int dir_fd, const char *name, const char *path)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char buf[1 << 16];
	ssize_t n;

	if (fd < 0)
		return log_errno(-errno, "export: %s", path);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (archive_write_data(w->out, buf, (size_t)n) != n)
			return archive_err(w, path);
	return n < 0 ? log_errno(-errno, "export: %s", path) : 0;
}

/* Sets e's hard link target when an earlier entry is the same inode; records it otherwise. */
static int link_or_record(struct walker *w, const struct stat *st, const char *path,
			  struct archive_entry *e)
{
	struct hardlink *grown;

	if (S_ISDIR(st->st_mode) || st->st_nlink < 2)
		return 0;
	for (size_t i = 0; i < w->nlinks; i++)
		if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino) {
			archive_entry_set_hardlink(e, w->links[i].path);
			archive_entry_set_size(e, 0);
			return 1;
		}
	grown = realloc(w->links, (w->nlinks + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	w->links = grown;
	grown[w->nlinks] = (struct hardlink){st->st_dev, st->st_ino, strdup(path)};
	return grown[w->nlinks++].path ? 0 : -ENOMEM;
}

static int walk_dir(struct walker *w, int dir_fd, const char *dir_path);

static int fill_entry(struct walker *w, int dir_fd, const char *name, const char *path,
		      const struct stat *st, struct archive_entry *e)
{
	archive_entry_set_pathname(e, path);
	archive_entry_copy_stat(e, st);
	if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dir_fd, name, target, sizeof(target) - 1);

		if (n < 0)
			return -errno;
		target[n] = '\0';
		archive_entry_set_symlink(e, target);
	}
	return add_xattrs(w, dir_fd, name, e);
}

static bool is_opaque(int dir_fd, const char *name)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	char v[4];

	return fd >= 0 && xattr_get_fd(fd, OVERLAY_XATTR_PREFIX "opaque", v, sizeof(v)) == 1 &&
	       v[0] == 'y';
}

static bool is_redirected(int dir_fd, const char *name)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	return fd >= 0 && xattr_get_fd(fd, OVERLAY_XATTR_PREFIX "redirect", NULL, 0) > 0;
}

/* Opens path in the union of the layers below (and including) the exported one. */
static int open_below(struct below *b, const char *path)
{
	int r;

	if (!b->union_mount) {
		r = store_temp_dir(b->s, "export-union", &b->dir);
		if (r < 0)
			return r;
		r = mount_layers_ro(b->s, b->ids, b->n, b->dir, &b->union_mount);
		if (r < 0)
			return r;
		b->root_fd =
		    open(mount_layers_root(b->union_mount), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (b->root_fd < 0)
			return -errno;
	}
	return path_open_beneath(b->root_fd, path, O_RDONLY | O_DIRECTORY, 0, false);
}

static int below_release(struct below *b)
{
	int r;

	closep(&b->root_fd);
	r = mount_layers_release(b->union_mount);
	b->union_mount = NULL;
	if (b->dir)
		rmdir(b->dir);
	free(b->dir);
	b->dir = NULL;
	return r;
}

/* Writes the entry's header; 1 when it is a hard link to an earlier entry, 0, or -errno. */
static int walk_entry_header(struct walker *w, int dir_fd, const char *name, const char *path,
			     const struct stat *st)
{
	struct archive_entry *e = archive_entry_new();
	int linked, r;

	if (!e)
		return -ENOMEM;
	r = fill_entry(w, dir_fd, name, path, st, e);
	linked = r < 0 ? r : link_or_record(w, st, path, e);
	if (linked < 0)
		r = linked;
	else if (archive_write_header(w->out, e) != ARCHIVE_OK)
		r = archive_err(w, path);
	archive_entry_free(e);
	return r < 0 ? log_errno(r, "export: %s", path) : linked;
}

static int walk_entry(struct walker *w, int dir_fd, const char *name, const char *path,
		      const struct stat *st)
{
	int linked = walk_entry_header(w, dir_fd, name, path, st), r;
	_cleanup_close_ int child = -EBADF;
	bool redirected;

	if (linked < 0)
		return linked;
	if (S_ISREG(st->st_mode) && !linked && st->st_size > 0)
		return copy_file_data(w, dir_fd, name, path);
	if (!S_ISDIR(st->st_mode))
		return 0;
	redirected = w->below && is_redirected(dir_fd, name);
	if (redirected || (w->oci && is_opaque(dir_fd, name))) {
		char marker[PATH_MAX];

		if (snprintf(marker, sizeof(marker), "%s/.wh..wh..opq", path) >=
		    (int)sizeof(marker))
			return -ENAMETOOLONG;
		r = write_marker(w, marker, st);
		if (r < 0)
			return r;
	}
	/* A redirected dir: the merged view is all of it, nothing below shows through. */
	child =
	    redirected
		? open_below(w->below, path)
		: RET_NERRNO(openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (child < 0)
		return log_errno(child, "export: %s%s", path, redirected ? " (redirected)" : "");
	return walk_dir(w, child, path);
}

static int walk_name(struct walker *w, int dir_fd, const char *dir_path, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return log_errno(-errno, "export: %s/%s", dir_path, name);
	/* ext4's own lost+found is not part of any layer. */
	if (!strcmp(dir_path, w->prefix) && !strcmp(name, "lost+found") && S_ISDIR(st.st_mode))
		return 0;
	if (w->oci && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
		if (snprintf(path, sizeof(path), "%s%s.wh.%s", dir_path, *dir_path ? "/" : "",
			     name) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		return write_marker(w, path, &st);
	}
	if (snprintf(path, sizeof(path), "%s%s%s", dir_path, *dir_path ? "/" : "", name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	return walk_entry(w, dir_fd, name, path, &st);
}

static int walk_dir(struct walker *w, int dir_fd, const char *dir_path)
{
	char **names = NULL;
	int r = read_names(dir_fd, &names);

	for (char **p = names; r == 0 && *p; p++)
		r = walk_name(w, dir_fd, dir_path, *p);
	if (names)
		store_free_list(names);
	return r;
}

/* Walks root into the writer w->out, then frees what the walk recorded. */
static int walk_tree(struct walker *w, const char *root)
{
	_cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return log_errno(-errno, "export: %s", root);
	r = walk_dir(w, fd, w->prefix);
	for (size_t i = 0; i < w->nlinks; i++)
		free(w->links[i].path);
	free(w->links);
	w->links = NULL;
	w->nlinks = 0;
	return r;
}

/* "./" with the root's mode, owner, time and xattrs: an import of the tar gets them back. */
static int write_root_entry(struct walker *w, const char *root)
{
	_cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return log_errno(-errno, "export: %s", root);
	return walk_entry_header(w, fd, ".", "./", &st);
}

static int tar_tree(const char *root, const char *file, bool oci, struct below *below)
{
	struct walker w = {.oci = oci, .prefix = "", .below = below};
	int r;

	w.out = archive_write_new();
	if (!w.out)
		return -ENOMEM;
	archive_write_set_format_pax_restricted(w.out);
	if (archive_write_open_filename(w.out, file) != ARCHIVE_OK) {
		r = archive_err(&w, file);
	} else {
		r = write_root_entry(&w, root);
		if (r == 0)
			r = walk_tree(&w, root);
		if (archive_write_close(w.out) != ARCHIVE_OK && r == 0)
			r = archive_err(&w, file);
	}
	archive_write_free(w.out);
	return r;
}

static int copy_tree(const char *root, const char *dir)
{
	struct walker w = {.prefix = dir};
	int r;

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return log_errno(-errno, "export: %s", dir);
	w.out = archive_write_disk_new();
	if (!w.out)
		return -ENOMEM;
	/* Our own names, but still: never through a symlink written before, never "..". */
	archive_write_disk_set_options(w.out, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
						  ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_XATTR |
						  ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						  ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	r = walk_tree(&w, root);
	if (archive_write_close(w.out) != ARCHIVE_OK && r == 0)
		r = archive_err(&w, dir);
	archive_write_free(w.out);
	return r;
}

/* ---- layers ---- */

/* Layer id as an OCI layer tar; below (or NULL) the layers it sits on, for redirects. */
static int layer_tar(struct store *s, const char *id, const char *file, struct below *below)
{
	_cleanup_free_ char *img = layer_image_path(s, id), *mnt = NULL;
	char device[64];
	int r, k;

	if (!img)
		return -ENOMEM;
	r = store_temp_dir(s, "export", &mnt);
	if (r < 0)
		return r;
	r = imgmount_mount(img, mnt, true, device, sizeof(device));
	if (r == 0) {
		r = tar_tree(mnt, file, true, below);
		if (below && (k = below_release(below)) < 0)
			r = r ?: k;
		k = imgmount_umount(mnt);
		r = r ?: k;
	}
	rmdir(mnt);
	return r;
}

int export_layer_tar(struct store *s, const char *id, const char *file)
{
	return layer_tar(s, id, file, NULL);
}

/* ---- merged trees ---- */

int export_stack_tree(struct store *s, const char *name, const char *file, const char *dir)
{
	_cleanup_free_ char *root = NULL;
	bool mounted_here = false;
	int r = mount_is_mounted(s, name, &root);

	if (r == 0) {
		r = mount_stack(s, name, NULL, false, &root);
		mounted_here = r == 0;
	}
	if (r < 0)
		return r;
	r = file ? tar_tree(root, file, false, NULL) : copy_tree(root, dir);
	if (mounted_here) {
		int k = mount_unmount(s, name);

		r = r ?: k;
	}
	return r;
}

/* ---- OCI image layouts ---- */

/* Moves tmp (a file in blobs/sha256) to its digest's name; *desc describes it. */
static int add_blob(int blobs_fd, const char *tmp, const char *media, struct json_object **desc)
{
	_cleanup_close_ int fd = openat(blobs_fd, tmp, O_RDONLY | O_CLOEXEC);
	char hex[OCI_SHA256_HEX_LEN + 1], digest[80];
	struct stat st;
	int r;

	if (fd < 0 || fstat(fd, &st) < 0 || fsync(fd) < 0)
		return -errno;
	r = oci_sha256_fd(fd, hex);
	if (r < 0)
		return r;
	if (renameat(blobs_fd, tmp, blobs_fd, hex) < 0)
		return -errno;
	snprintf(digest, sizeof(digest), "sha256:%s", hex);
	*desc = json_object_new_object();
	if (!*desc)
		return -ENOMEM;
	json_object_object_add(*desc, "mediaType", json_object_new_string(media));
	json_object_object_add(*desc, "digest", json_object_new_string(digest));
	json_object_object_add(*desc, "size", json_object_new_int64(st.st_size));
	return 0;
}

static int add_json_blob(int blobs_fd, struct json_object *obj, const char *media,
			 struct json_object **desc)
{
	const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_close_ int fd = -EBADF;
	size_t len = strlen(text);

	fd = openat(blobs_fd, ".json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		return -EIO;
	return add_blob(blobs_fd, ".json.tmp", media, desc);
}

static const char *oci_arch(void)
{
	static struct utsname u;

	if (uname(&u) < 0)
		return "amd64";
	if (!strcmp(u.machine, "x86_64"))
		return "amd64";
	if (!strcmp(u.machine, "aarch64"))
		return "arm64";
	return u.machine;
}

static struct json_object *image_config(struct json_object *diff_ids)
{
	struct json_object *c = json_object_new_object(), *rootfs = json_object_new_object();
	struct json_object *cfg = json_object_new_object(), *env = json_object_new_array();
	struct json_object *cmd = json_object_new_array();

	json_object_array_add(env, json_object_new_string("PATH=/usr/local/sbin:/usr/local/bin:"
							  "/usr/sbin:/usr/bin:/sbin:/bin"));
	json_object_array_add(cmd, json_object_new_string("/bin/sh"));
	json_object_object_add(cfg, "Env", env);
	json_object_object_add(cfg, "Cmd", cmd);
	json_object_object_add(rootfs, "type", json_object_new_string("layers"));
	json_object_object_add(rootfs, "diff_ids", diff_ids);
	json_object_object_add(c, "architecture", json_object_new_string(oci_arch()));
	json_object_object_add(c, "os", json_object_new_string("linux"));
	json_object_object_add(c, "config", cfg);
	json_object_object_add(c, "rootfs", rootfs);
	return c;
}

/* Exports each layer of the stack as an uncompressed tar blob: its digest is its diff_id. */
static int export_layers(struct store *s, const char *dir, int blobs_fd, const char **ids, size_t n,
			 struct json_object *layers, struct json_object *diff_ids)
{
	char tmp[PATH_MAX];
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		struct below below = {.s = s, .ids = ids, .n = i + 1, .root_fd = -EBADF};
		struct json_object *desc = NULL;

		snprintf(tmp, sizeof(tmp), "%s/blobs/sha256/.layer.tmp", dir);
		r = layer_tar(s, ids[i], tmp, &below);
		if (r == 0)
			r = add_blob(blobs_fd, ".layer.tmp",
				     "application/vnd.oci.image.layer.v1.tar", &desc);
		if (r < 0)
			break;
		json_object_array_add(diff_ids,
				      json_object_get(json_object_object_get(desc, "digest")));
		json_object_array_add(layers, desc);
	}
	return r;
}

static int write_small_file(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *path = path_join(dir, name);
	_cleanup_fclose_ FILE *f = NULL;

	if (!path)
		return -ENOMEM;
	f = fopen(path, "we");
	if (!f || fputs(text, f) < 0 || fflush(f) != 0)
		return -errno;
	return 0;
}

static int write_index(const char *dir, int blobs_fd, const char *name, struct json_object *layers,
		       struct json_object *diff_ids)
{
	struct json_object *manifest = json_object_new_object(), *config = image_config(diff_ids);
	struct json_object *index = json_object_new_object(), *list = json_object_new_array();
	struct json_object *desc = NULL, *annotations = json_object_new_object();
	int r = add_json_blob(blobs_fd, config, "application/vnd.oci.image.config.v1+json", &desc);

	json_object_object_add(manifest, "schemaVersion", json_object_new_int(2));
	json_object_object_add(
	    manifest, "mediaType",
	    json_object_new_string("application/vnd.oci.image.manifest.v1+json"));
	json_object_object_add(manifest, "config", desc);
	json_object_object_add(manifest, "layers", json_object_get(layers));
	desc = NULL;
	if (r == 0)
		r = add_json_blob(blobs_fd, manifest, "application/vnd.oci.image.manifest.v1+json",
				  &desc);
	if (r == 0) {
		json_object_object_add(annotations, "org.opencontainers.image.ref.name",
				       json_object_new_string(name));
		json_object_object_add(desc, "annotations", json_object_get(annotations));
		json_object_array_add(list, desc);
		json_object_object_add(index, "schemaVersion", json_object_new_int(2));
		json_object_object_add(index, "manifests", json_object_get(list));
		r = write_small_file(
		    dir, "index.json",
		    json_object_to_json_string_ext(index, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	if (r == 0)
		r = write_small_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	json_object_put(annotations);
	json_object_put(list);
	json_object_put(index);
	json_object_put(manifest);
	json_object_put(config);
	return r;
}

int export_stack_oci(struct store *s, const char *name, const char *dir)
{
	const char *ids[STACK_MAX_LAYERS];
	struct json_object *stack, *layers = json_object_new_array();
	struct json_object *diff_ids = json_object_new_array();
	_cleanup_close_ int dir_fd = -EBADF, blobs_fd = -EBADF;
	size_t n;
	int r = stack_load(s, name, &stack);

	if (r < 0) {
		json_object_put(layers);
		json_object_put(diff_ids);
		return log_errno(r, "export: stack %s", name);
	}
	n = stack_layers(stack, ids, STACK_MAX_LAYERS);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0) {
		dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = dir_fd < 0 ? -errno : path_mkdir_beneath(dir_fd, "blobs/sha256", 0755);
	}
	if (r == 0) {
		blobs_fd =
		    path_open_beneath(dir_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY, 0, false);
		r = blobs_fd < 0 ? blobs_fd : 0;
	}
	if (r == 0)
		r = export_layers(s, dir, blobs_fd, ids, n, layers, diff_ids);
	if (r == 0)
		r = write_index(dir, blobs_fd, name, layers, json_object_get(diff_ids));
	json_object_put(stack);
	json_object_put(layers);
	json_object_put(diff_ids);
	return r < 0 ? log_errno(r, "export: %s", dir) : 0;
}
