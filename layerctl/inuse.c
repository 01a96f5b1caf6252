/*
 * In-use marks of stacks: POSIX byte-range read locks on run/NAME.lock (see
 * inuse.h). The fd is O_CLOEXEC, so CMD never holds it; the child of clone()
 * has its own file table, so its exit does not drop the parent's lock.
 */
#include "layerctl/inuse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "layerctl/stack.h"
#include "lib/log.h"
#include "lib/macro.h"

static int lock_path(const char *name, char *rel, size_t size)
{
	if (!stack_name_valid(name))
		return -EINVAL;
	snprintf(rel, size, "run/%s.lock", name);
	return 0;
}

static struct flock range_of(enum inuse_kind kind, short type)
{
	return (struct flock){
	    .l_type = type,
	    .l_whence = SEEK_SET,
	    .l_start = kind == INUSE_TMP ? 1 : 0,
	    .l_len = kind == INUSE_ANY ? 2 : 1,
	};
}

int inuse_hold(struct store *s, const char *name, enum inuse_kind kind)
{
	struct flock fl = range_of(kind, F_RDLCK);
	char rel[128];
	int fd, r = lock_path(name, rel, sizeof(rel));

	if (r < 0)
		return r;
	fd = RET_NERRNO(openat(s->dir_fd, rel, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
	if (fd < 0)
		return fd;
	/* Only a look (F_GETLK) ever asks for a write lock, so this never waits for long. */
	while ((r = fcntl(fd, F_SETLKW, &fl)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int inuse_holder(struct store *s, const char *name, enum inuse_kind kind, pid_t *pid)
{
	struct flock fl = range_of(kind, F_WRLCK);
	_cleanup_close_ int fd = -EBADF;
	char rel[128];
	int r = lock_path(name, rel, sizeof(rel));

	if (r < 0)
		return r;
	fd = openat(s->dir_fd, rel, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fcntl(fd, F_GETLK, &fl) < 0)
		return -errno;
	if (fl.l_type == F_UNLCK)
		return 0;
	*pid = fl.l_pid;
	return 1;
}

int inuse_refuse(struct store *s, const char *command, const char *name, enum inuse_kind kind)
{
	pid_t pid = 0;
	int r = inuse_holder(s, name, kind, &pid);

	if (r < 0)
		return log_errno(r, "%s: %s: in-use mark", command, name);
	if (r == 0)
		return 0;
	log_error("%s: stack %s is in use by pid %d (layerctl run)", command, name, (int)pid);
	return -EBUSY;
}

int inuse_forget(struct store *s, const char *name)
{
	char rel[128];
	int r = lock_path(name, rel, sizeof(rel));

	return r < 0 ? r : store_unlink(s, rel);
}
