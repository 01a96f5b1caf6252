/*
 * Writable-branch files the daemon holds by file handle instead of by fd.
 *
 * A node of a file in the writable branch keeps an O_PATH fd on it, so that
 * renames in the branch never make it reach another file. The kernel keeps
 * every inode it has seen until memory runs short, so a walk over a large
 * upper dir would hold one fd per file and end in EMFILE. Past a budget of
 * such fds (half of RLIMIT_NOFILE), a new node keeps the file's handle
 * (name_to_handle_at(2)) and opens it by handle for each use, which is as
 * immune to renames. It needs CAP_DAC_READ_SEARCH and a file system that
 * exports handles: without them every node keeps its fd, as before.
 *
 * Threads: the count of kept fds is atomic; the rest is set once at mount.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct layer_set;

/*
 * Probes whether objects of the writable branch, whose root is branch_fd, can
 * be opened by handle, and sets the budget of kept fds. Returns whether they
 * can. Without a call, every node keeps its fd.
 */
bool handle_setup(int branch_fd, size_t fd_budget);
/* Closes what handle_setup() opened. */
void handle_teardown(void);

/*
 * Puts fd, an O_PATH fd on a non-directory of the writable branch, into
 * set->v[0] (set->n becomes 1): the fd itself while the budget lasts, else its
 * handle, and fd is closed. Takes fd in every case. 0 or -errno.
 */
int handle_keep(struct layer_set *set, int fd);

/* Gives back what handle_keep() took from the budget; for layer_set_free(). */
void handle_release(struct layer_set *set);

/* Opens the object of a set kept by handle, with open(2) flags (O_PATH too). */
int handle_open(const struct layer_set *set, int flags);
