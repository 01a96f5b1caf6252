/* The fuse_lowlevel_ops table of the union. */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops unionfs_ops;
