/*
 * Mounting a stack: each layer image on a read-only loop device (autoclear)
 * mounted read-only under run/NAME/lN, a tmpfs under run/NAME/tmp for --tmp,
 * and unionfs over them. run/NAME.json records it all, so umount works from
 * any process. The caller holds the store lock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "layerctl/store.h"

/* Mounts stack name at mnt (NULL: run/NAME/root); *root receives the rootfs path. */
int mount_stack(struct store *s, const char *name, const char *mnt, bool tmp, char **root);
/*
 * For layerctl run: the stack's own mount (key: NAME), or with private_tmp a mount of its
 * own with a tmpfs upper (key: NAME@PID, so runs --tmp of one stack do not collide). The
 * state records that a run made it (mount_by_run). key receives the key (size bytes).
 */
int mount_stack_for_run(struct store *s, const char *name, bool private_tmp, char *key, size_t size,
			char **root);
/* 1 when the mount of key was made by layerctl run, 0 when not (or not mounted). */
int mount_by_run(struct store *s, const char *key);
/* Undoes mount_stack in reverse order; also cleans up after a mount that was killed.
 * name is a stack name or a run --tmp's key. */
int mount_unmount(struct store *s, const char *name);
/* 1 when name is mounted (*root, when root is non-NULL, receives where), 0 when not. */
int mount_is_mounted(struct store *s, const char *name, char **root);
/* Undoes the private mounts of runs --tmp whose layerctl was killed; counts them. */
int mount_clear_stale(struct store *s, unsigned *count);

struct stack_mount;
/*
 * A read-only union of layers ids[0..n) (base first) at DIR/root, each layer mounted at
 * DIR/lN: no upper, no state file, for the caller to release. Export uses it to see what a
 * redirected directory holds.
 */
int mount_layers_ro(struct store *s, const char *const *ids, size_t n, const char *dir,
		    struct stack_mount **out);
const char *mount_layers_root(const struct stack_mount *m);
/* Unmounts and frees m (NULL is fine). */
int mount_layers_release(struct stack_mount *m);
