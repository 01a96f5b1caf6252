/* Packing a directory into a new layer of the store. The caller holds the store lock. */
#pragma once

#include "layerctl/layer.h"

struct layer_meta {
	const char *name;   /* may be NULL */
	const char *source; /* what it was made from, for people */
	const char *parent; /* id of the layer it was committed on top of, or NULL */
};

/* Packs dir into a new layer; id receives its digest. An identical image is reused. */
int layerimg_pack_dir(struct store *s, const char *dir, const struct layer_meta *meta, char *id);
