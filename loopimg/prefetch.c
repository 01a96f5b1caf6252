/*
 * Read-ahead for pack. Cold, the copy is bound by one synchronous read at a
 * time; a helper thread that opens the next files and hands them to the
 * kernel's read-ahead keeps the disk queue full. It only advises: a file it
 * cannot open is simply not prefetched, and the copier checks everything.
 *
 * Locking: p->lock protects done_index, done_bytes and stop; the rest is
 * written before the thread starts and only read afterwards.
 */
#include "loopimg/prefetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/macro.h"

struct prefetch {
	struct tree *tree;
	struct tree_node **files;
	size_t n;
	uint64_t window;
	uint64_t *offsets; /* offsets[i]: bytes of files before i */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t done_index;
	bool stop;
};

static void advise(struct prefetch *p, const struct tree_node *n)
{
	_cleanup_free_ char *path = tree_node_path(p->tree, n);
	int fd;

	if (!path)
		return;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return;
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	close(fd);
}

/* Waits until file i is within the window ahead of the copier; false when stopped. */
static bool wait_window(struct prefetch *p, size_t i)
{
	bool go;

	pthread_mutex_lock(&p->lock);
	while (!p->stop && p->offsets[i] > p->offsets[p->done_index] + p->window)
		pthread_cond_wait(&p->cond, &p->lock);
	go = !p->stop;
	pthread_mutex_unlock(&p->lock);
	return go;
}

static void *prefetch_thread(void *opaque)
{
	struct prefetch *p = opaque;

	for (size_t i = 0; i < p->n; i++) {
		if (!wait_window(p, i))
			break;
		advise(p, p->files[i]);
	}
	return NULL;
}

int prefetch_start(struct tree *tree, struct tree_node **files, size_t n, uint64_t window,
		   struct prefetch **out)
{
	struct prefetch *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->offsets = calloc(n + 1, sizeof(*p->offsets));
	if (!p->offsets) {
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		p->offsets[i + 1] = p->offsets[i] + files[i]->size;
	*p = (struct prefetch){
	    .tree = tree, .files = files, .n = n, .window = window, .offsets = p->offsets};
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	r = -pthread_create(&p->thread, NULL, prefetch_thread, p);
	if (r < 0) {
		free(p->offsets);
		free(p);
		return r;
	}
	*out = p;
	return 0;
}

void prefetch_advance(struct prefetch *p, size_t index)
{
	pthread_mutex_lock(&p->lock);
	p->done_index = MIN(index, p->n);
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void prefetch_stop(struct prefetch *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->offsets);
	free(p);
}
