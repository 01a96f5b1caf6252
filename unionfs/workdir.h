/*
 * The work dir: where copy-ups and replacements are built before one rename
 * puts them in place. Ours is a subdirectory of overlayfs's workdir= (the
 * kernel's work/ and index/ there are never touched) or, with the aufs and
 * unionfs-fuse syntaxes, a hidden ".wh..wh.unionfs" directory in the
 * writable branch. Leftovers of a crash are removed at mount.
 */
#pragma once

#include <stddef.h>

#define WORKDIR_OWN_NAME "unionfs"
#define WORKDIR_HIDDEN_NAME ".wh..wh.unionfs"
/* The hard-link index beside it (kept across mounts, unlike the work dir's contents). */
#define WORKDIR_INDEX_NAME "unionfs-index"
#define WORKDIR_HIDDEN_INDEX_NAME ".wh..wh.unionfs-index"

struct unionfs;

/* Creates (or cleans) our work dir and opens the index: fs->work_fd, fs->index_fd. */
int workdir_setup(struct unionfs *fs, const char *workdir);

/* A fresh temporary name inside the work dir. */
void workdir_temp_name(struct unionfs *fs, char *buf, size_t size);

/*
 * A new, empty regular file (mode 0600) in the work dir, open read-write:
 * unnamed (O_TMPFILE, and buf gets "") where the file system allows it, else
 * under a fresh temporary name, put in buf. Returns the fd or -errno.
 */
int workdir_temp_file(struct unionfs *fs, char *buf, size_t size);
