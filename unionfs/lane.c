/* The slow lane: see lane.h. */
#include "unionfs/lane.h"

#include <stdlib.h>
#include <time.h>

#include "lib/log.h"

/* An idle worker waits this long for work before it exits. */
#define IDLE_SECONDS 10

void lane_init(struct lane *l, unsigned max_workers, bool enabled)
{
	*l = (struct lane){.max_workers = max_workers ? max_workers : 1, .enabled = enabled};
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->wake, NULL);
}

static struct job *take_locked(struct lane *l)
{
	struct job *job = l->head;

	if (job) {
		l->head = job->next;
		if (!l->head)
			l->tail = NULL;
		l->pending--;
	}
	return job;
}

static void *worker(void *arg)
{
	struct lane *l = arg;
	struct timespec deadline;
	struct job *job;
	int r;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		job = take_locked(l);
		if (job) {
			pthread_mutex_unlock(&l->lock);
			job->run(job);
			pthread_mutex_lock(&l->lock);
			continue;
		}
		if (l->stopping)
			break;
		l->idle++;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += IDLE_SECONDS;
		r = pthread_cond_timedwait(&l->wake, &l->lock, &deadline);
		l->idle--;
		if (r != 0 && !l->head)
			break;
	}
	l->workers--;
	pthread_cond_broadcast(&l->wake);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static bool start_worker_locked(struct lane *l)
{
	pthread_attr_t attr;
	pthread_t t;
	bool ok;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ok = pthread_create(&t, &attr, worker, l) == 0;
	pthread_attr_destroy(&attr);
	if (ok)
		l->workers++;
	else
		log_debug("slow lane: no new worker thread");
	return ok;
}

/* A worker for one more job: an idle one not yet spoken for, or a new one while allowed. */
static bool worker_for_job_locked(struct lane *l)
{
	if (l->pending < l->idle)
		return true;
	if (l->workers < l->max_workers && start_worker_locked(l))
		return true;
	return l->workers > 0; /* it waits for a busy one */
}

void lane_submit(struct lane *l, struct job *job)
{
	bool queued = false;

	job->next = NULL;
	if (l->enabled) {
		pthread_mutex_lock(&l->lock);
		if (!l->stopping && worker_for_job_locked(l)) {
			if (l->tail)
				l->tail->next = job;
			else
				l->head = job;
			l->tail = job;
			l->pending++;
			queued = true;
			pthread_cond_signal(&l->wake);
		}
		pthread_mutex_unlock(&l->lock);
	}
	if (!queued)
		job->run(job);
}

void lane_stop(struct lane *l)
{
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_broadcast(&l->wake);
	while (l->workers > 0)
		pthread_cond_wait(&l->wake, &l->lock);
	pthread_mutex_unlock(&l->lock);
}
