/* The branch table: opening, validating and describing the union's branches. */
#include "unionfs/branch.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/macro.h"

int branch_table_add(struct branch_table *t, const char *path, bool writable)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *real = NULL;
	struct branch *grown;
	struct stat st;

	if (t->count >= BRANCH_MAX)
		return -E2BIG;
	if (writable && t->count > 0)
		return -EINVAL;
	fd = RET_NERRNO(open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0) {
		struct stat lst;
		/* open(O_DIRECTORY) says ENOTDIR for files: keep that, it is the clearer cause. */
		if (fd == -ENOTDIR || stat(path, &lst) < 0 || S_ISDIR(lst.st_mode))
			return fd;
		return -ENOTDIR;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	for (size_t i = 0; i < t->count; i++)
		if (t->v[i].dev == st.st_dev && t->v[i].ino == st.st_ino)
			return -EEXIST;
	real = realpath(path, NULL);
	if (!real)
		return -errno;
	grown = realloc(t->v, (t->count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	t->v = grown;
	t->v[t->count++] = (struct branch){
	    .path = TAKE_PTR(real),
	    .fd = TAKE_FD(fd),
	    .writable = writable,
	    .dev = st.st_dev,
	    .ino = st.st_ino,
	};
	return 0;
}

void branch_table_free(struct branch_table *t)
{
	for (size_t i = 0; i < t->count; i++) {
		free(t->v[i].path);
		closep(&t->v[i].fd);
	}
	free(t->v);
	t->v = NULL;
	t->count = 0;
}

bool branch_table_has_upper(const struct branch_table *t)
{
	return t->count > 0 && t->v[0].writable;
}

static bool path_is_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (strcmp(outer, "/") == 0)
		return true;
	return strncmp(inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

int branch_table_find_containing(const struct branch_table *t, const char *mountpoint)
{
	_cleanup_free_ char *real = realpath(mountpoint, NULL);

	if (!real)
		return -1;
	for (size_t i = 0; i < t->count; i++)
		if (path_is_within(real, t->v[i].path))
			return (int)i;
	return -1;
}
