/*
 * Scratch space for an extracted tarball on its way into an image: a tmpfs in
 * a private mount namespace of this process. The tree is read once by pack
 * and removed; it never needs the disk, and creating thousands of inodes on
 * the store's file system costs more than the pack itself. The mount lives
 * only in our namespace, so it vanishes with the process, even on kill -9.
 */
#pragma once

#include <stdbool.h>

/*
 * Moves this process into a private mount namespace. Call it before opening anything the
 * process will rename between (the store): a dir fd opened before belongs to the old
 * namespace's mount, and rename(2) between the two mounts fails with EXDEV.
 */
int scratch_enter(void);
/* Mounts a tmpfs (half the available memory at most) on dir, an empty dir; -EPERM before
 * scratch_enter. */
int scratch_mount(const char *dir);
/* Unmounts it again (its contents go with it). */
int scratch_umount(const char *dir);
