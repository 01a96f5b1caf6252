/* Reading requests from /dev/fuse: see devread.h. */
#include "unionfs/devread.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "lib/macro.h"

int devread_setup(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags < 0 ? -errno : RET_NERRNO(fcntl(fd, F_SETFL, flags | O_NONBLOCK));
}

/* The signal mask while sleeping: the thread's own, with the session's signals open. */
static sigset_t sleep_mask;
static bool sleep_mask_set;

int devread_block_signals(void)
{
	static const int stop[] = {SIGHUP, SIGINT, SIGTERM};
	sigset_t block;
	int r;

	sigemptyset(&block);
	for (size_t i = 0; i < ARRAY_SIZE(stop); i++)
		sigaddset(&block, stop[i]);
	r = pthread_sigmask(SIG_BLOCK, &block, &sleep_mask);
	if (r != 0)
		return -r;
	for (size_t i = 0; i < ARRAY_SIZE(stop); i++)
		sigdelset(&sleep_mask, stop[i]);
	sleep_mask_set = true;
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

ssize_t devread(int fd, void *buf, size_t len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int64_t until = now_ns() + (int64_t)DEVREAD_POLL_US * 1000;
	ssize_t n;

	for (;;) {
		n = read(fd, buf, len);
		if (n >= 0 || errno != EAGAIN)
			return n;
		if (now_ns() > until)
			break;
		/*
		 * Not a pause: the caller our reply woke may have been put on this CPU,
		 * and would wait for the poll to end before it sends the next request.
		 */
		sched_yield();
	}
	for (;;) {
		/* EINTR goes back to libfuse, which looks whether a signal ended the session. */
		if (ppoll(&p, 1, NULL, sleep_mask_set ? &sleep_mask : NULL) < 0)
			return -1;
		n = read(fd, buf, len);
		if (n >= 0 || errno != EAGAIN)
			return n;
	}
}
