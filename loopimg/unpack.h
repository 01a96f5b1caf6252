/* loopimg unpack: an ext2/3/4 image back into a directory, never writing outside it. */
#pragma once

/* DIR must not exist or be empty. Returns 0 or -errno (the cause is logged). */
int unpack_run(const char *img, const char *dir);
