/*
 * Commit. The upper dir is packed as it is: overlayfs whiteouts (0/0 char
 * devices), opaque dirs and redirects are trusted.overlay.* data that the
 * image keeps and unionfs reads. The layer is appended to the stack before
 * the upper is emptied, so a crash in between repeats changes on top of
 * themselves rather than losing them. unionfs's own xattrs (trusted.unionfs.*,
 * user.unionfs.*: copy-up origins) describe the upper's relation to the
 * layers below it at the time; they are removed from the upper before it is
 * packed, so that no layer carries them.
 */
#include "layerctl/commit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layerctl/mount.h"
#include "layerctl/stack.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/xattr.h"

static const char *const internal_xattr_prefixes[] = {"trusted.unionfs.", "user.unionfs."};

static bool is_internal_xattr(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(internal_xattr_prefixes); i++)
		if (!strncmp(name, internal_xattr_prefixes[i], strlen(internal_xattr_prefixes[i])))
			return true;
	return false;
}

static int strip_one(int fd, const char *name, void *arg)
{
	int r = is_internal_xattr(name) ? xattr_remove_fd(fd, name) : 0;

	return r == -ENODATA ? 0 : r;
}

static int strip_fd(int fd)
{
	return xattr_for_each(fd, strip_one, NULL);
}

/* Removes unionfs's internal xattrs from dir_fd and everything below it. */
static int strip_tree(int dir_fd)
{
	int fd = dup(dir_fd), r = strip_fd(dir_fd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);

	if (!d) {
		if (fd >= 0)
			close(fd);
		return r < 0 ? r : -errno;
	}
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		_cleanup_close_ int child = -EBADF;
		struct stat st;
		bool is_dir = e->d_type == DT_DIR;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_type == DT_UNKNOWN &&
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			is_dir = S_ISDIR(st.st_mode);
		child = openat(dirfd(d), e->d_name,
			       (is_dir ? O_RDONLY | O_DIRECTORY : O_PATH) | O_NOFOLLOW | O_CLOEXEC);
		if (child < 0)
			r = -errno;
		else if (is_dir)
			r = strip_tree(child);
		else
			r = strip_fd(child);
	}
	closedir(d);
	return r;
}

static int strip_internal_xattrs(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? -errno : strip_tree(fd);
}

static int dir_is_empty(struct store *s, const char *rel)
{
	int fd = openat(s->dir_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	int empty = 1;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return errno == ENOENT ? 1 : -errno;
	}
	while (empty && (e = readdir(d)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

static int top_layer(struct store *s, const char *name, char *id)
{
	const char *ids[STACK_MAX_LAYERS];
	struct json_object *stack;
	size_t n;
	int r = stack_load(s, name, &stack);

	if (r < 0)
		return r;
	n = stack_layers(stack, ids, STACK_MAX_LAYERS);
	snprintf(id, LAYER_ID_SIZE, "%s", n ? ids[n - 1] : "");
	json_object_put(stack);
	return 0;
}

static int empty_upper(struct store *s, const char *name)
{
	char rel[128];
	int r;

	snprintf(rel, sizeof(rel), "stacks/%s/upper", name);
	r = path_remove_tree(s->dir_fd, rel);
	snprintf(rel, sizeof(rel), "stacks/%s/work", name);
	if (r == 0)
		r = path_remove_tree(s->dir_fd, rel);
	return r < 0 ? r : stack_prepare_upper(s, name);
}

int commit_stack(struct store *s, const char *name, const char *layer_name, char *id)
{
	char parent[LAYER_ID_SIZE], rel[128], source[160];
	_cleanup_free_ char *upper = NULL;
	struct layer_meta meta = {.name = layer_name, .source = source};
	int r = top_layer(s, name, parent);

	if (r < 0)
		return log_errno(r, "commit: stack %s", name);
	meta.parent = parent[0] ? parent : NULL;
	r = mount_is_mounted(s, name, NULL);
	if (r > 0 && (r = mount_unmount(s, name)) < 0)
		return log_errno(r, "commit: %s: unmounting", name);
	snprintf(rel, sizeof(rel), "stacks/%s/upper", name);
	r = dir_is_empty(s, rel);
	if (r > 0)
		log_error("commit: %s: nothing to commit (the upper dir is empty)", name);
	if (r != 0)
		return r < 0 ? log_errno(r, "commit: %s", rel) : -ENODATA;
	upper = store_path(s, "%s", rel);
	if (!upper)
		return -ENOMEM;
	snprintf(source, sizeof(source), "commit of stack %s", name);
	r = strip_internal_xattrs(upper);
	if (r < 0)
		return log_errno(r, "commit: %s: removing unionfs's xattrs", upper);
	r = layerimg_pack_dir(s, upper, &meta, id);
	if (r == 0)
		r = stack_append(s, name, id);
	if (r == 0)
		r = empty_upper(s, name);
	return r < 0 ? log_errno(r, "commit: %s", name) : 0;
}
