/*
 * Loop devices through a context object, the way util-linux's loopcxt_* does:
 * init, set the backing file and flags, set up (LOOP_CTL_GET_FREE +
 * LOOP_CONFIGURE, retried when another attacher wins the race), deinit.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loopdev {
	int ctl_fd;	/* /dev/loop-control */
	int backing_fd; /* the image, opened ro or rw per flags */
	int dev_fd;	/* the configured device, kept open until deinit */
	uint32_t flags; /* LO_FLAGS_* */
	char *backing;
	char device[300]; /* "/dev/loopN" after setup */
};

struct loopdev_info {
	char device[300];
	char backing[PATH_MAX];
	uint64_t offset;
	bool ro, autoclear, direct_io;
};

int loopdev_init(struct loopdev *lc);
int loopdev_set_backing_file(struct loopdev *lc, const char *path);
void loopdev_set_flags(struct loopdev *lc, uint32_t flags);
/* Attaches the backing file to a free device; lc->device names it. */
int loopdev_setup(struct loopdev *lc);
void loopdev_deinit(struct loopdev *lc);

/* 0 when path is a loop block device, -ENOTBLK or -ENXIO (not a loop) otherwise. */
int loopdev_check(const char *path);
/* Detaches one device (lazily, when it is still open or mounted). */
int loopdev_detach(const char *device);
/* Detaches every device whose backing file is img (same dev/ino); *count says how many. */
int loopdev_detach_backing(const char *img, unsigned *count);
/* Lists the devices that have a backing file, sorted by number. */
int loopdev_list(struct loopdev_info **out, size_t *n);
/* Reads one device's state; -ENXIO when it has no backing file. */
int loopdev_get_info(const char *device, struct loopdev_info *info);
