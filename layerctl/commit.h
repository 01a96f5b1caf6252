/* layerctl commit: a stack's upper dir becomes a new layer on top of it. The caller holds the lock.
 */
#pragma once

#include "layerctl/layerimg.h"

/* Unmounts the stack if mounted, packs its upper dir, appends the layer, empties the upper. */
int commit_stack(struct store *s, const char *name, const char *layer_name, char *id);
