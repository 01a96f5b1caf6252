/* Writable-branch files held by file handle past the fd budget: see handle.h. */
#include "unionfs/handle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/macro.h"
#include "unionfs/inode.h"

static int handle_mount_fd = -EBADF;
static int handle_mount_id;
static size_t budget = SIZE_MAX;
static size_t kept;

/* The handle of the object fd is open on, and its mount; NULL with errno set when it has none. */
static struct file_handle *handle_of(int fd, int *mount_id)
{
	struct file_handle *h = malloc(sizeof(*h) + MAX_HANDLE_SZ);

	if (!h)
		return NULL;
	h->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", h, mount_id, AT_EMPTY_PATH) < 0) {
		int e = errno;
		free(h);
		errno = e;
		return NULL;
	}
	return h;
}

bool handle_setup(int branch_fd, size_t fd_budget)
{
	/* open_by_handle_at(2) takes no O_PATH fd for the file system. */
	_cleanup_close_ int mount_fd = openat(branch_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ struct file_handle *h =
	    mount_fd < 0 ? NULL : handle_of(mount_fd, &handle_mount_id);
	_cleanup_close_ int fd = -EBADF;

	/* It needs CAP_DAC_READ_SEARCH too: try it rather than guess. */
	if (!h || (fd = open_by_handle_at(mount_fd, h, O_PATH | O_CLOEXEC)) < 0)
		return false;
	handle_mount_fd = TAKE_FD(mount_fd);
	budget = fd_budget;
	return true;
}

void handle_teardown(void)
{
	closep(&handle_mount_fd);
	budget = SIZE_MAX;
}

int handle_keep(struct layer_set *set, int fd)
{
	struct file_handle *h;
	int mount_id;

	set->n = 1;
	set->v[0].branch = 0;
	if (handle_mount_fd < 0 || __atomic_fetch_add(&kept, 1, __ATOMIC_RELAXED) < budget)
		goto keep_fd;
	__atomic_fetch_sub(&kept, 1, __ATOMIC_RELAXED);
	h = handle_of(fd, &mount_id);
	if (!h && errno != EOPNOTSUPP && errno != EOVERFLOW) {
		int e = errno;
		close(fd);
		set->v[0].fd = -EBADF;
		return -e;
	}
	/*
	 * Another file system mounted inside the branch: its handles mean nothing
	 * to ours (the same bytes may name another file there), so keep the fd.
	 */
	if (!h || mount_id != handle_mount_id) {
		free(h);
		__atomic_fetch_add(&kept, 1, __ATOMIC_RELAXED);
		goto keep_fd;
	}
	close(fd);
	set->v[0].fd = -EBADF;
	set->handle = h;
	return 0;
keep_fd:
	set->v[0].fd = fd;
	set->fd_counted = handle_mount_fd >= 0;
	return 0;
}

void handle_release(struct layer_set *set)
{
	if (set->fd_counted)
		__atomic_fetch_sub(&kept, 1, __ATOMIC_RELAXED);
	set->fd_counted = false;
	free(set->handle);
	set->handle = NULL;
}

int handle_open(const struct layer_set *set, int flags)
{
	return RET_NERRNO(open_by_handle_at(handle_mount_fd, set->handle, flags | O_CLOEXEC));
}
