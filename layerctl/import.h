/* layerctl import: a directory or a tarball into a new layer. The caller holds the store lock. */
#pragma once

#include "layerctl/layerimg.h"

/*
 * Imports src: a directory, a tarball (extracted into a private temp dir first) or an OCI
 * image layout (one layer per OCI layer). *ids receives the new ids, base first
 * (NULL-terminated, store_free_list); name goes to the top one.
 */
int import_source(struct store *s, const char *src, const char *name, char ***ids);
/* Imports the tarball read from fd (label names it in messages) as one layer; id receives it. */
int import_tar_fd(struct store *s, int fd, const char *label, const struct layer_meta *meta,
		  char *id);
