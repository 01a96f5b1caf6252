/* layerctl bundle: an OCI runtime bundle (config.json) whose root is a mounted stack. */
#pragma once

#include "layerctl/store.h"

/*
 * Writes dir/config.json (dir is created when missing) for runc/crun: root.path is root
 * (the mounted stack), process.args argv (NULL: /bin/sh), hostname the stack's name, the
 * usual namespaces and mounts. Returns 0 or -errno.
 */
int bundle_write(const char *dir, const char *root, const char *hostname, char *const *argv);
