/*
 * The layer store's directory, lock and atomic JSON files. Records are small,
 * so each is rewritten whole: a temp file under tmp/, fsync, rename, fsync of
 * the directory. A kill -9 at any point leaves the old or the new file, and
 * at worst a temp file that gc removes.
 */
#include "layerctl/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/macro.h"
#include "lib/path.h"

static const char *const store_subdirs[] = {"layers", "stacks", "run", "tmp"};

static int make_dirs(const char *root)
{
	_cleanup_free_ char *copy = strdup(root);

	if (!copy)
		return -ENOMEM;
	/* mkdir -p: each prefix of an absolute path, an existing one being fine. */
	for (char *p = copy + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = saved;
		if (!saved)
			return 0;
	}
}

int store_open(struct store *s, const char *root)
{
	int r;

	_cleanup_free_ char *abs = NULL, *cwd = NULL;

	*s = (struct store){.dir_fd = -EBADF, .lock_fd = -EBADF};
	s->root = realpath(root, NULL);
	if (!s->root) {
		if (errno != ENOENT)
			return -errno;
		if (root[0] != '/' && !(cwd = getcwd(NULL, 0)))
			return -errno;
		abs = cwd ? path_join(cwd, root) : strdup(root);
		if (!abs)
			return -ENOMEM;
		r = make_dirs(abs);
		if (r < 0)
			return r;
		s->root = realpath(root, NULL);
		if (!s->root)
			return -errno;
	}
	s->dir_fd = RET_NERRNO(open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (s->dir_fd < 0)
		return s->dir_fd;
	for (size_t i = 0; i < ARRAY_SIZE(store_subdirs); i++)
		if (mkdirat(s->dir_fd, store_subdirs[i], 0700) < 0 && errno != EEXIST)
			return -errno;
	s->lock_fd = RET_NERRNO(openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
	return s->lock_fd < 0 ? s->lock_fd : 0;
}

void store_close(struct store *s)
{
	closep(&s->lock_fd);
	closep(&s->dir_fd);
	free(s->root);
	*s = (struct store){.dir_fd = -EBADF, .lock_fd = -EBADF};
}

int store_lock(struct store *s)
{
	int r;

	do
		r = flock(s->lock_fd, LOCK_EX);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

void store_unlock(struct store *s)
{
	flock(s->lock_fd, LOCK_UN);
}

char *store_path(const struct store *s, const char *fmt, ...)
{
	_cleanup_free_ char *rel = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&rel, fmt, ap);
	va_end(ap);
	if (n < 0) {
		rel = NULL;
		return NULL;
	}
	return path_join(s->root, rel);
}

static int fsync_dir_of(int dir_fd, const char *relpath)
{
	_cleanup_free_ char *dir = strdup(relpath);
	_cleanup_close_ int fd = -EBADF;
	char *slash;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	fd = RET_NERRNO(openat(dir_fd, slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0)
		return fd;
	return RET_NERRNO(fsync(fd));
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int store_write_json(struct store *s, const char *relpath, struct json_object *obj)
{
	const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_free_ char *tmp = store_path(s, "tmp/.json.XXXXXX");
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (!tmp)
		return -ENOMEM;
	fd = RET_NERRNO(mkostemp(tmp, O_CLOEXEC));
	if (fd < 0)
		return fd;
	r = write_all(fd, text, strlen(text));
	if (r == 0)
		r = write_all(fd, "\n", 1);
	if (r == 0)
		r = RET_NERRNO(fchmod(fd, 0644));
	if (r == 0)
		r = RET_NERRNO(fsync(fd));
	if (r == 0)
		r = RET_NERRNO(renameat(AT_FDCWD, tmp, s->dir_fd, relpath));
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	return fsync_dir_of(s->dir_fd, relpath);
}

int store_read_json(struct store *s, const char *relpath, struct json_object **out)
{
	_cleanup_close_ int fd = -EBADF;
	struct json_object *obj;

	fd = RET_NERRNO(openat(s->dir_fd, relpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
	if (fd < 0)
		return fd;
	obj = json_object_from_fd(fd);
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return -EBADMSG;
	}
	*out = obj;
	return 0;
}

int store_unlink(struct store *s, const char *relpath)
{
	if (unlinkat(s->dir_fd, relpath, 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	return fsync_dir_of(s->dir_fd, relpath);
}

int store_temp_dir(struct store *s, const char *prefix, char **out)
{
	char *path = store_path(s, "tmp/%s.XXXXXX", prefix);

	if (!path)
		return -ENOMEM;
	if (!mkdtemp(path)) {
		free(path);
		return -errno;
	}
	*out = path;
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_add(char ***list, size_t *n, const char *name, size_t len)
{
	char **grown = realloc(*list, (*n + 2) * sizeof(**list));

	if (!grown)
		return -ENOMEM;
	*list = grown;
	grown[*n] = strndup(name, len);
	if (!grown[*n])
		return -ENOMEM;
	grown[++*n] = NULL;
	return 0;
}

int store_list(struct store *s, const char *subdir, const char *suffix, char ***out)
{
	size_t slen = strlen(suffix), n = 0;
	char **list = calloc(1, sizeof(*list));
	int fd, r = 0;
	DIR *d;

	if (!list)
		return -ENOMEM;
	fd = openat(s->dir_fd, subdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		store_free_list(list);
		return r;
	}
	for (struct dirent *e; r == 0 && (e = readdir(d));) {
		size_t len = strlen(e->d_name);

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || len <= slen ||
		    strcmp(e->d_name + len - slen, suffix))
			continue;
		r = list_add(&list, &n, e->d_name, len - slen);
	}
	closedir(d);
	if (r < 0) {
		store_free_list(list);
		return r;
	}
	qsort(list, n, sizeof(*list), compare_names);
	*out = list;
	return 0;
}

void store_free_list(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

const char *store_json_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t store_json_int(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	return json_object_get_int64(v);
}
