/* layerctl import: a directory or a tarball into a new layer. The caller holds the store lock. */
#pragma once

#include "layerctl/layerimg.h"

/* Imports src (a directory, or a tarball extracted into a private temp dir first). */
int import_source(struct store *s, const char *src, const char *name, char *id);
