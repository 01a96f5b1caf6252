/* loopimg mount/umount: an image attached and mounted in one step, the device freed on umount. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Attaches img (autoclear), mounts it on dir; device receives "/dev/loopN". */
int imgmount_mount(const char *img, const char *dir, bool read_only, char *device, size_t size);
/* Unmounts dir and waits until the loop device under it (if any) is released. */
int imgmount_umount(const char *dir);
