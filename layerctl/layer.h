/*
 * Layers: ext4 images packed reproducibly by loopimg's pack code, named by the
 * xxh3-128 digest of the image, each with a JSON record (id, name, source,
 * created, size, digest, parent). The caller holds the store lock.
 */
#pragma once

#include "layerctl/store.h"
#include "lib/digest.h"

#define LAYER_ID_SIZE (DIGEST_HEX_LEN + 1)

/* Resolves a full id, a unique id prefix (4+ chars) or a layer name to an id. */
int layer_resolve(struct store *s, const char *ref, char *id);
/* The record of one layer (*out to json_object_put). */
int layer_load(struct store *s, const char *id, struct json_object **out);
/* Every layer id, sorted (store_free_list). */
int layer_list(struct store *s, char ***ids);
/* Removes a layer's image and record (the record last, so a crash leaves a gc-able image). */
int layer_remove(struct store *s, const char *id);
/* Recomputes the image's digest: 0 when it matches its id, -EBADMSG when not. */
int layer_verify(struct store *s, const char *id);
/* "ROOT/layers/ID.img" */
char *layer_image_path(struct store *s, const char *id);
