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

/* Removes everything a crashed daemon left in our work dir. */
static int clean_leftovers(int work_fd)
{
	_cleanup_close_ int fd = openat(work_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[8192] __attribute__((aligned(8)));
	bool removed;
	ssize_t n;
	int r;

	if (fd < 0)
		return -errno;
	do {
		/* Entries removed while reading may be skipped: read again until a pass removes
		 * none. */
		removed = false;
		if (lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
		while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
			for (ssize_t off = 0; off < n;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				off += d->d_reclen;
				if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
					continue;
				r = path_remove_tree(work_fd, d->d_name);
				if (r < 0)
					return r;
				removed = true;
			}
		}
		if (n < 0)
			return -errno;
	} while (removed);
	return 0;
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
	r = clean_leftovers(fd);
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
