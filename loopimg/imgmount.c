/*
 * loopimg mount/umount. The device is attached with autoclear from the
 * start: once the mount holds it we close our fd, and the kernel frees the
 * device at the last umount (or right away, should the mount fail).
 */
#include "loopimg/imgmount.h"

#include <errno.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

#include "lib/log.h"
#include "lib/macro.h"
#include "loopimg/info.h"
#include "loopimg/loopdev.h"

/* The type to mount img as; refuses what the kernel would choke on later. */
static int fs_type_of(const char *img, char *buf, size_t size)
{
	struct imginfo info;
	int r = imginfo_probe(img, &info);

	if (r < 0)
		return log_errno(r, "mount: %s", img);
	if (!info.type[0]) {
		log_error("mount: %s: no file system found", img);
		return -EINVAL;
	}
	if (info.truncated) {
		log_error("mount: %s: truncated image", img);
		return -EINVAL;
	}
	snprintf(buf, size, "%s", info.type);
	return 0;
}

int imgmount_mount(const char *img, const char *dir, bool read_only, char *device, size_t size)
{
	struct loopdev lc;
	char type[32];
	int r;

	r = fs_type_of(img, type, sizeof(type));
	if (r < 0)
		return r;
	loopdev_init(&lc);
	r = loopdev_set_backing_file(&lc, img);
	if (r < 0)
		return log_errno(r, "mount: %s", img);
	loopdev_set_flags(&lc, LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0));
	r = loopdev_setup(&lc);
	if (r < 0) {
		loopdev_deinit(&lc);
		return log_errno(r, "mount: %s: attaching", img);
	}
	snprintf(device, size, "%s", lc.device);
	if (mount(lc.device, dir, type, read_only ? MS_RDONLY : 0, NULL) < 0)
		r = log_errno(-errno, "mount: %s on %s (%s)", img, dir, type);
	/* The mount (if any) now holds the device; with autoclear ours was the last other user. */
	loopdev_deinit(&lc);
	return r;
}

/* The source of the mount at dir, from mountinfo ("" when it is not a mount point). */
static int mount_source(const char *dir, char *source, size_t size)
{
	_cleanup_free_ char *real = realpath(dir, NULL);
	_cleanup_fclose_ FILE *f = NULL;
	char line[8192];

	source[0] = '\0';
	if (!real)
		return -errno;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char mnt[4096], src[4096];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if (strcmp(mnt, real) || sscanf(sep + 3, "%*s %4095s", src) != 1)
			continue;
		snprintf(source, size, "%s", src); /* the last one wins: it is on top */
	}
	return 0;
}

static void wait_released(const char *device)
{
	struct loopdev_info info;

	for (int i = 0; i < 200; i++) {
		if (loopdev_get_info(device, &info) < 0 || !info.autoclear)
			return;
		nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
	}
}

int imgmount_umount(const char *dir)
{
	char source[4096];
	struct loopdev_info info;
	bool loop_autoclear;
	int r = mount_source(dir, source, sizeof(source));

	if (r < 0)
		return log_errno(r, "umount: %s", dir);
	if (!source[0])
		return log_errno(-EINVAL, "umount: %s: not a mount point", dir);
	loop_autoclear =
	    loopdev_check(source) == 0 && loopdev_get_info(source, &info) == 0 && info.autoclear;
	if (umount2(dir, 0) < 0)
		return log_errno(-errno, "umount: %s", dir);
	if (loop_autoclear)
		wait_released(source);
	return 0;
}
