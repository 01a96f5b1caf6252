/* loopimg unpack: an ext2/3/4 image back into a directory, never writing outside it. */
#pragma once

#include <stdbool.h>

/*
 * DIR must not exist or be empty. progress: a progress bar (by bytes of the
 * image) when stderr is a TTY. Returns 0 or -errno (the cause is logged).
 */
int unpack_run(const char *img, const char *dir, bool progress);
