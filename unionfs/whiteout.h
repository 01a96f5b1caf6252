/* Whiteouts and opaque directories, in both the overlayfs and the aufs format. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>

#define WHITEOUT_AUFS_PREFIX ".wh."
#define WHITEOUT_AUFS_PREFIX_LEN 4
#define WHITEOUT_AUFS_OPAQUE ".wh..wh..opq"

enum whiteout_format { WHITEOUT_OVERLAY, WHITEOUT_AUFS };

struct unionfs;

/* An overlayfs whiteout: a character device with device number 0/0. */
static inline bool whiteout_is_overlay(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == 0;
}

/* Names that carry aufs metadata (".wh.*"): never shown in the union. */
bool whiteout_is_meta_name(const char *name);

/* For an aufs whiteout ".wh.NAME", the hidden NAME; NULL for other names. */
const char *whiteout_aufs_target(const char *name);

/*
 * 1 when the directory (an fd opened O_RDONLY|O_DIRECTORY) is opaque:
 * trusted.overlay.opaque or user.overlay.opaque is "y", or it holds the aufs
 * marker ".wh..wh..opq". 0 when not, -errno on failure.
 */
int whiteout_dir_is_opaque(int dirfd);

/* 1 when the writable branch's dir holds a whiteout for name (either format), else 0. */
int whiteout_present(int upper_dirfd, const char *name);
/* True when it holds an aufs whiteout (.wh.name) for name. */
bool whiteout_aufs_present(int upper_dirfd, const char *name);

/*
 * Puts a whiteout for name into the writable branch's dir, atomically: a
 * link of one shared whiteout in the work dir, as overlayfs makes them. With replace, the upper object
 * there is swapped out (RENAME_EXCHANGE) and removed; otherwise nothing may
 * be there. Overlay format unless -o whiteout=aufs or mknod is not allowed.
 */
int whiteout_put(struct unionfs *fs, int upper_dirfd, const char *name, bool replace);

/* Removes the work dir's shared whiteout (all whiteouts are links of it), at unmount. */
void whiteout_drop_shared(struct unionfs *fs);

/* Removes a whiteout for name (either format) if one is there. */
int whiteout_clear(int upper_dirfd, const char *name);

/* Marks a directory of the writable branch opaque. */
int whiteout_set_opaque(struct unionfs *fs, int dirfd);
