/*
 * Command-line and mount options in the three styles users type: aufs
 * (-o br=DIR=rw:DIR=ro), unionfs-fuse (DIR=RW:DIR=RO MNT) and overlayfs
 * (-o lowerdir=,upperdir=,workdir=), plus libfuse's own, which pass through.
 */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>

#define UNIONFS_VERSION "0.1.0"

struct branch_spec {
	char *path;
	bool writable;
};

struct unionfs_options {
	/* Branch sources, one style at a time. */
	char *br;
	char *lowerdir;
	char *upperdir;
	char *workdir;
	/* Values checked after parsing. */
	char *udba;
	char *whiteout;
	char *metacopy;
	char *passthrough;
	char *uring;
	char *redirect_dir;
	char *index;
	char *xino;
	char *max_files_str;
	unsigned max_files;
	char *file_fds_str;
	bool file_fds_set;
	unsigned file_fds; /* writable-branch files that keep an fd (handle.h) */
	int volatile_mode;
	int cow, hide_meta_files, statfs_omit_ro; /* unionfs-fuse: accepted, always on/no-op */
	int show_help, show_version, debug, read_only, nodev, nosuid;
	char *positional[3];
	int npositional;
	char error[256];	    /* the first problem found, empty when none */
	struct fuse_args fuse_args; /* what libfuse gets */
};

/* Parses argv; problems are reported in o->error, -EINVAL returned. */
int options_parse(int argc, char **argv, struct unionfs_options *o);
void options_free(struct unionfs_options *o);

/*
 * The branch list, top first, from whichever style was used. Returns the
 * count (>= 1) or -EINVAL with o->error set.
 */
int options_branches(struct unionfs_options *o, struct branch_spec **out);
void branch_specs_free(struct branch_spec *v, int n);

/* The mount point and the fsname (the SOURCE mount(8) passes, or "unionfs"). */
const char *options_mountpoint(const struct unionfs_options *o);
const char *options_fsname(const struct unionfs_options *o);
