/*
 * FUSE passthrough (Linux 6.9+): reads, writes and mmap of an open file go
 * from the kernel straight to the real file in its branch, with no request
 * to the daemon and no second copy of the data in the page cache.
 *
 * libfuse 3.14 knows neither the INIT flag nor the open reply's backing id,
 * so the two replies are amended on their way to /dev/fuse through libfuse's
 * custom I/O hooks.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;
struct unionfs;
struct node;

struct passthrough {
	bool wanted;	     /* -o passthrough=on (default) and CAP_SYS_ADMIN */
	bool kernel_offers;  /* the INIT request offered it */
	bool active;	     /* our INIT reply asked for it */
	uint64_t init_unique; /* the INIT request, to find its reply */
	int dev_fd;	     /* /dev/fuse of the session, for the backing ioctls */
};

/* Whether this process may register backing files (CAP_SYS_ADMIN). */
bool passthrough_capable(void);

/*
 * Routes the session's device I/O through our hooks (also without
 * passthrough: requests are read with devread()); call after mounting.
 */
int passthrough_install(struct unionfs *fs, struct fuse_session *se);

/* Whether the kernel must not be offered the writeback cache (op_init). */
static inline bool passthrough_excludes_writeback(const struct passthrough *pt)
{
	return pt->wanted && pt->kernel_offers;
}

/*
 * Gives an open of node through fd, a file of branch, its backing id: the
 * one the node's other open files share, or a new one when none is open and
 * want is set. 0 and *id = -1 when this open goes through the daemon instead. -ESTALE when the kernel's inode
 * is bound to another real file (opened before a copy-up): the node is then
 * taken out of the table, so the kernel's retry of the open looks the name
 * up again and gets a fresh inode, as overlayfs gives the old open the old
 * file and new opens the new one.
 */
int passthrough_open(struct unionfs *fs, struct node *node, int fd, uint16_t branch, bool want,
		     int *id);

/* Read-only opens of smaller lower files prefer the page cache (want = false). */
#define PASSTHROUGH_MIN_SIZE (1 << 20)

/* An open that passthrough_open() counted has been released. */
void passthrough_release(struct unionfs *fs, struct node *node);

/* The next open or create reply this thread sends carries backing id (-1: none). */
void passthrough_reply_with(int id);
