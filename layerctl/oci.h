/* Import of an OCI image layout directory: one layer per OCI layer, digests checked. */
#pragma once

#include <stdbool.h>

#include "layerctl/store.h"

#define OCI_SHA256_HEX_LEN 64

/* sha256 of a whole file (pread from 0) as lower-case hex into hex (65 bytes). */
int oci_sha256_fd(int fd, char *hex);

/* True when dir holds an OCI image layout (an "oci-layout" file and index.json). */
bool oci_is_layout(const char *dir);
/*
 * Imports every layer of the layout's (first) image, base first, each one's parent the one
 * below; name goes to the top layer. *ids receives the ids (NULL-terminated, store_free_list).
 * The caller holds the store lock.
 */
int oci_import(struct store *s, const char *dir, const char *name, char ***ids);
