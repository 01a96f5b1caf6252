/*
 * Reading requests from /dev/fuse. After a request the session's thread
 * polls the device for a while before it sleeps: in a burst (a process
 * opening and closing file after file) the next request is then taken at
 * once, instead of after the wake-up of a sleeping thread, which on a
 * virtual machine's idle CPU costs more than the request itself. It polls
 * with sched_yield(), so a caller woken onto its CPU runs at once.
 */
#pragma once

#include <sys/types.h>

/* How long to poll before sleeping, in microseconds. */
#define DEVREAD_POLL_US 50

/* Puts the device in non-blocking mode, for devread(). */
int devread_setup(int fd);

/*
 * Blocks the signals that end the session (SIGHUP, SIGINT, SIGTERM) in the calling thread, and
 * so in the threads it starts later, but while devread() sleeps. Such a signal then always ends
 * that sleep (EINTR, and libfuse sees its exit flag): it can no longer land between libfuse's
 * look at the flag and the sleep, nor in a worker thread, and leave the daemon asleep. Call it
 * in the session's thread, before its loop and before any worker starts.
 */
int devread_block_signals(void);

/* read(2) of one request: polls, then sleeps in ppoll(2) until one comes or a signal does. */
ssize_t devread(int fd, void *buf, size_t len);
