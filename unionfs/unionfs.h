/* The state of one union mount, shared by every module of the daemon. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "unionfs/branch.h"
#include "unionfs/inode.h"
#include "unionfs/lane.h"
#include "unionfs/passthrough.h"
#include "unionfs/uring.h"
#include "unionfs/whiteout.h"

struct unionfs {
	struct branch_table branches;
	struct node_table nodes;
	struct node *root;
	/* Kernel cache lifetimes in seconds: long unless branches may change (udba=reval). */
	double entry_timeout;
	double attr_timeout;
	double negative_timeout;
	bool udba_reval;
	bool read_only; /* no writable branch, or -o ro */
	enum whiteout_format whiteout_format;
	bool volatile_mode; /* skip fsyncs, as overlayfs's volatile */
	bool metacopy;
	bool debug;
	bool privileged; /* root: trusted.* xattrs, mknod whiteouts, chown */
	int index_fd;	 /* hard-link index: one name per copied-up multiply-linked file */
	int work_fd;	 /* our work dir, -EBADF on read-only mounts */
	pthread_mutex_t rename_lock; /* renames one at a time: they read and change paths */
	unsigned long work_counter;
	bool no_tmpfile; /* the work dir's file system refused O_TMPFILE once */
	struct passthrough pt;
	struct uring uring;
	struct fuse_session *se;
	struct lane lane; /* requests that may take long */
};
