/*
 * Reading requests from /dev/fuse. After a request the session's thread
 * polls the device for a while before it sleeps: in a burst (a process
 * opening and closing file after file) the next request is then taken at
 * once, instead of after the wake-up of a sleeping thread, which on a
 * virtual machine's idle CPU costs more than the request itself.
 */
#pragma once

#include <sys/types.h>

/* How long to poll before sleeping, in microseconds. */
#define DEVREAD_POLL_US 50

/* Puts the device in non-blocking mode, for devread(). */
int devread_setup(int fd);

/* read(2) of one request: polls, then sleeps in poll(2) until one comes. */
ssize_t devread(int fd, void *buf, size_t len);
