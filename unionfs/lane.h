/*
 * The slow lane: worker threads for requests that may take long (a copy-up
 * of a big file, fsync). The session's one thread answers every other
 * request itself: a FUSE round trip then wakes no second thread, which on
 * a busy machine costs more than the work of most requests. A job replies
 * to its request from the worker.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>

struct job {
	struct job *next;
	void (*run)(struct job *job); /* does the work, replies, frees the job */
};

struct lane {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head, *tail;
	unsigned pending; /* jobs queued, not yet taken */
	unsigned workers, idle, max_workers;
	bool stopping;
	bool enabled; /* false: jobs run at once, in the caller's thread (-s) */
};

void lane_init(struct lane *l, unsigned max_workers, bool enabled);
/* Runs job on a worker (started when none is idle), or at once when that cannot be. */
void lane_submit(struct lane *l, struct job *job);
/* Waits for queued jobs to finish and the workers to exit. */
void lane_stop(struct lane *l);
