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
