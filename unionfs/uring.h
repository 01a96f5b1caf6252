/*
 * FUSE over io_uring (Linux 6.14+, when the admin allows it with
 * /sys/module/fuse/parameters/enable_uring). The kernel then hands each
 * request to a queue of the CPU its caller runs on; one thread per CPU,
 * pinned there, answers that queue. Caller and daemon meet on one CPU, so
 * a round trip costs no cross-CPU wakeup (on a VM, an IPI to a halted vCPU)
 * and one system call instead of a read and a write.
 *
 * Requests that come before the queues are ready, FORGETs and INTERRUPTs
 * still come through /dev/fuse and the session loop; replies find their way
 * back by the request's unique id (uring_reply()).
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct fuse_session;
struct uring_queue;

struct uring {
	bool wanted;	    /* -o uring=on (default off) */
	bool kernel_offers; /* the INIT request offered it */
	bool active;	    /* our INIT reply asked for it: the queues must start */
	struct fuse_session *se;
	int dev_fd;
	size_t payload_size; /* what the kernel may put in one request or reply */
	unsigned nqueues;    /* one per possible CPU, as the kernel counts them */
	struct uring_queue *queues;
	bool stopping;
};

/* The FUSE_OVER_IO_URING bit of the INIT flags2 word. */
#define URING_INIT_FLAGS2 (1U << (41 - 32))

/*
 * After the INIT reply went out (asking for io_uring): sets up a ring and a
 * pinned thread per CPU and registers the queues. On failure the session
 * goes on through /dev/fuse alone.
 */
int uring_start(struct uring *u, struct fuse_session *se, int dev_fd, size_t payload_size);

/*
 * A reply from libfuse (out header first): true when it answers a request
 * that came through a queue, and then went back through it.
 */
bool uring_reply(struct uring *u, const struct iovec *iov, int count);

/* At the end of the session: stops the threads (they exit within a second). */
void uring_stop(struct uring *u);
/* Then, when no other thread can reply any more: frees the queues. */
void uring_free(struct uring *u);
