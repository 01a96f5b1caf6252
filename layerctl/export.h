/*
 * layerctl export: a layer as an OCI layer tarball (overlayfs whiteouts turned
 * into .wh. files), a stack as an OCI image layout, or a stack's merged tree
 * as a tarball or a plain directory. The caller holds the store lock.
 */
#pragma once

#include "layerctl/store.h"

/* The layer's diff as a tar (OCI whiteout form) at file. */
int export_layer_tar(struct store *s, const char *id, const char *file);
/* The stack as an OCI image layout at dir: one uncompressed tar layer per stack layer. */
int export_stack_oci(struct store *s, const char *name, const char *dir);
/* The stack's merged tree (its upper included) as a tar at file, or copied into dir. */
int export_stack_tree(struct store *s, const char *name, const char *file, const char *dir);
