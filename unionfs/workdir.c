/* The work dir: set-up, crash leftovers, temporary names. */
#include "unionfs/workdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/unionfs.h"

static int open_own_dir(int base_fd, const char *name)
{
	if (mkdirat(base_fd, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	return RET_NERRNO(openat(base_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

int workdir_setup(struct unionfs *fs, const char *workdir)
{
	_cleanup_close_ int base = -EBADF;
	int fd, r;

	if (workdir) {
		base = RET_NERRNO(open(workdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (base < 0)
			return base;
		fd = open_own_dir(base, WORKDIR_OWN_NAME);
		fs->index_fd = open_own_dir(base, WORKDIR_INDEX_NAME);
	} else {
		fd = open_own_dir(fs->branches.v[0].fd, WORKDIR_HIDDEN_NAME);
		fs->index_fd = open_own_dir(fs->branches.v[0].fd, WORKDIR_HIDDEN_INDEX_NAME);
	}
	if (fd < 0 || fs->index_fd < 0) {
		r = fd < 0 ? fd : fs->index_fd;
		closep(&fd);
		return r;
	}
	r = path_empty_dir(fd); /* what a crashed daemon left */
	if (r < 0) {
		close(fd);
		return r;
	}
	fs->work_fd = fd;
	return 0;
}

void workdir_temp_name(struct unionfs *fs, char *buf, size_t size)
{
	unsigned long n = __atomic_add_fetch(&fs->work_counter, 1, __ATOMIC_RELAXED);

	snprintf(buf, size, "#%lx.%x", n, (unsigned)getpid());
}

/*
 * An unnamed file leaves nothing behind after a crash, and its fsync does not write the work
 * dir too (ext4 syncs a new file's directory with it); its only directory entry is the final one.
 */
int workdir_temp_file(struct unionfs *fs, char *buf, size_t size)
{
	int fd;

	if (!__atomic_load_n(&fs->no_tmpfile, __ATOMIC_RELAXED)) {
		fd = openat(fs->work_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0) {
			buf[0] = '\0';
			return fd;
		}
		/* EISDIR: a kernel without O_TMPFILE takes it for O_DIRECTORY. */
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -errno;
		__atomic_store_n(&fs->no_tmpfile, true, __ATOMIC_RELAXED);
	}
	workdir_temp_name(fs, buf, size);
	return RET_NERRNO(openat(fs->work_fd, buf, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
}
