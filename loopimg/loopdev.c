/*
 * Loop devices. Attaching takes a free device number from /dev/loop-control
 * and binds it with one LOOP_CONFIGURE (file, flags and read-only state in a
 * single ioctl, no window where the device is half set up). Another process
 * may grab the same free number between the two calls: LOOP_CONFIGURE then
 * fails with EBUSY and we ask for another. State is read from sysfs, so
 * listing never opens (and so never holds) a device.
 */
#include "loopimg/loopdev.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/major.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/macro.h"

#define SETUP_ATTEMPTS 64
#define IOCTL_RETRIES 50

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* An ioctl retried while the kernel reports a transient EAGAIN/EBUSY. */
static int ioctl_retry(int fd, unsigned long req, unsigned long arg, bool retry_busy)
{
	for (int i = 0;; i++) {
		int r = ioctl(fd, req, arg);

		if (r >= 0)
			return r;
		if (i >= IOCTL_RETRIES || !(errno == EAGAIN || (retry_busy && errno == EBUSY)))
			return -errno;
		sleep_ms(i < 10 ? 1 : 10);
	}
}

int loopdev_init(struct loopdev *lc)
{
	*lc = (struct loopdev){.ctl_fd = -EBADF, .backing_fd = -EBADF, .dev_fd = -EBADF};
	return 0;
}

int loopdev_set_backing_file(struct loopdev *lc, const char *path)
{
	char *copy = realpath(path, NULL);

	if (!copy)
		return -errno;
	free(lc->backing);
	lc->backing = copy;
	return 0;
}

void loopdev_set_flags(struct loopdev *lc, uint32_t flags)
{
	lc->flags = flags;
}

void loopdev_deinit(struct loopdev *lc)
{
	closep(&lc->dev_fd);
	closep(&lc->backing_fd);
	closep(&lc->ctl_fd);
	free(lc->backing);
	lc->backing = NULL;
	lc->dev_fd = lc->backing_fd = lc->ctl_fd = -EBADF;
}

static int open_backing(struct loopdev *lc)
{
	bool ro = lc->flags & LO_FLAGS_READ_ONLY;
	struct stat st;

	lc->backing_fd = open(lc->backing, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (lc->backing_fd < 0)
		return -errno;
	if (fstat(lc->backing_fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	return 0;
}

/* Opens /dev/loopN, waiting briefly for devtmpfs to create a node the kernel just added. */
static int open_device(const char *device)
{
	for (int i = 0; i < 100; i++) {
		int fd = open(device, O_RDWR | O_CLOEXEC);

		if (fd < 0 && (errno == EROFS || errno == EACCES))
			fd = open(device, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT)
			return -errno;
		sleep_ms(2);
	}
	return -ENOENT;
}

/* One attempt: a free number, then LOOP_CONFIGURE; -EBUSY when someone else took it first. */
static int try_configure(struct loopdev *lc)
{
	struct loop_config cfg = {.fd = lc->backing_fd};
	int nr = ioctl_retry(lc->ctl_fd, LOOP_CTL_GET_FREE, 0, false);
	int fd, r;

	if (nr < 0)
		return nr;
	snprintf(lc->device, sizeof(lc->device), "/dev/loop%d", nr);
	fd = open_device(lc->device);
	if (fd < 0)
		return fd;
	cfg.info.lo_flags = lc->flags;
	strncpy((char *)cfg.info.lo_file_name, lc->backing, LO_NAME_SIZE - 1);
	r = ioctl_retry(fd, LOOP_CONFIGURE, (unsigned long)&cfg, false);
	if (r < 0) {
		close(fd);
		return r;
	}
	lc->dev_fd = fd;
	return 0;
}

int loopdev_setup(struct loopdev *lc)
{
	int r;

	if (!lc->backing)
		return -EINVAL;
	r = open_backing(lc);
	if (r < 0)
		return r;
	if (lc->ctl_fd < 0) {
		lc->ctl_fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
		if (lc->ctl_fd < 0)
			return -errno;
	}
	for (int i = 0; i < SETUP_ATTEMPTS; i++) {
		r = try_configure(lc);
		if (r != -EBUSY)
			break;
	}
	if (r < 0)
		lc->device[0] = '\0';
	return r;
}

static int sysfs_dir_of(const char *device, char *dir, size_t size)
{
	struct stat st;
	int n;

	if (stat(device, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	n = snprintf(dir, size, "/sys/dev/block/%u:%u", major(st.st_rdev), minor(st.st_rdev));
	return n < (int)size ? 0 : -ENAMETOOLONG;
}

int loopdev_check(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISBLK(st.st_mode))
		return -ENOTBLK;
	return major(st.st_rdev) == LOOP_MAJOR ? 0 : -ENXIO;
}

static int read_sysfs(const char *dir, const char *name, char *buf, size_t size)
{
	char path[256];
	_cleanup_close_ int fd = -EBADF;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		return -errno;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n] = '\0';
	return 0;
}

static bool read_flag(const char *dir, const char *name)
{
	char buf[16];

	return read_sysfs(dir, name, buf, sizeof(buf)) == 0 && buf[0] == '1';
}

static int info_from_sysfs(const char *sysdir, const char *device, struct loopdev_info *info)
{
	char buf[32], loopdir[256];
	int r;

	snprintf(loopdir, sizeof(loopdir), "%s/loop", sysdir);
	memset(info, 0, sizeof(*info));
	r = read_sysfs(loopdir, "backing_file", info->backing, sizeof(info->backing));
	if (r < 0)
		return r == -ENOENT ? -ENXIO : r;
	snprintf(info->device, sizeof(info->device), "%s", device);
	if (read_sysfs(loopdir, "offset", buf, sizeof(buf)) == 0)
		info->offset = strtoull(buf, NULL, 10);
	info->autoclear = read_flag(loopdir, "autoclear");
	info->direct_io = read_flag(loopdir, "dio");
	info->ro = read_flag(sysdir, "ro");
	return 0;
}

int loopdev_get_info(const char *device, struct loopdev_info *info)
{
	char dir[96];
	int r = sysfs_dir_of(device, dir, sizeof(dir));

	if (r < 0)
		return r;
	return info_from_sysfs(dir, device, info);
}

int loopdev_detach(const char *device)
{
	_cleanup_close_ int fd = -EBADF;
	int r = loopdev_check(device);

	if (r < 0)
		return r;
	fd = open(device, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return ioctl_retry(fd, LOOP_CLR_FD, 0, true);
}

static int device_number(const char *name)
{
	char *end;
	long n;

	if (strncmp(name, "loop", 4) != 0)
		return -1;
	n = strtol(name + 4, &end, 10);
	return (end == name + 4 || *end || n < 0 || n > INT32_MAX) ? -1 : (int)n;
}

static int info_cmp(const void *a, const void *b)
{
	const struct loopdev_info *x = a, *y = b;

	return device_number(x->device + 5) - device_number(y->device + 5);
}

static int list_add(struct loopdev_info **out, size_t *n, const struct loopdev_info *info)
{
	struct loopdev_info *v = realloc(*out, (*n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	v[(*n)++] = *info;
	*out = v;
	return 0;
}

int loopdev_list(struct loopdev_info **out, size_t *n)
{
	DIR *d = opendir("/sys/block");
	struct dirent *de;
	int r = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return -errno;
	while (r >= 0 && (de = readdir(d))) {
		char sysdir[300], device[300];
		struct loopdev_info info;

		if (device_number(de->d_name) < 0)
			continue;
		snprintf(sysdir, sizeof(sysdir), "/sys/block/%s", de->d_name);
		snprintf(device, sizeof(device), "/dev/%s", de->d_name);
		if (info_from_sysfs(sysdir, device, &info) == 0)
			r = list_add(out, n, &info);
	}
	closedir(d);
	if (r < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
		return r;
	}
	if (*n)
		qsort(*out, *n, sizeof(**out), info_cmp);
	return 0;
}

int loopdev_detach_backing(const char *img, unsigned *count)
{
	_cleanup_free_ struct loopdev_info *list = NULL;
	struct stat want;
	size_t n;
	int r;

	*count = 0;
	if (stat(img, &want) < 0)
		return -errno;
	r = loopdev_list(&list, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (stat(list[i].backing, &st) < 0 || st.st_dev != want.st_dev ||
		    st.st_ino != want.st_ino)
			continue;
		r = loopdev_detach(list[i].device);
		if (r < 0 && r != -ENXIO)
			return log_errno(r, "detach: %s", list[i].device);
		(*count)++;
	}
	return 0;
}
