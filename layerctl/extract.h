/*
 * Safe tarball extraction for import: every name is resolved beneath the
 * target dir with openat2(RESOLVE_BENEATH) and no symlinks, so neither "../",
 * an absolute name, nor a symlink planted by an earlier entry can make us
 * write outside it. OCI/aufs whiteouts become overlayfs ones.
 */
#pragma once

#include <stddef.h>

/*
 * Extracts tarball (plain, gzip, xz, zstd, bzip2: whatever libarchive reads) into dir, an
 * empty private directory. Leading '/' is stripped; names with ".." are refused (-EXDEV);
 * ".wh.NAME" becomes a 0/0 char device NAME, ".wh..wh..opq" the opaque xattr on its dir.
 * Returns 0 or -errno; logs the failing entry.
 */
int extract_tar(const char *tarball, const char *dir);
/* The same from an open fd (read from where it is); label names it in messages. */
int extract_tar_fd(int fd, const char *label, const char *dir);

/* Cleans one archive name into out (size bytes): "" is the root. -EXDEV for "..". */
int extract_clean_name(const char *name, char *out, size_t size);
