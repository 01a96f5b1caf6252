/*
 * File data into the image. The writer lays files out one after another, so
 * consecutive files land in consecutive blocks: staging them in a buffer
 * turns tens of thousands of small files into a few large writes. Writes
 * go out with O_DIRECT: the image's blocks never pass through the page cache
 * (filling fresh page-cache pages was most of pack's CPU time), and a
 * writer thread writes one buffer while the caller fills the other.
 *
 * Locking: b->lock protects pending, pending_block, pending_blocks, error
 * and stop; the caller owns b->fill and its fields alone.
 */
#include "loopimg/bwriter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/macro.h"

#define STAGE_BYTES (8u << 20)

struct bwriter {
	int fd;
	unsigned bs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;

	uint8_t *fill; /* the caller's buffer */
	uint64_t fill_block, fill_blocks;

	uint8_t *pending; /* handed to the thread; NULL when it is idle */
	uint64_t pending_block, pending_blocks;
	uint8_t *spare; /* the buffer the thread gives back */
	int error;
	bool stop;
};

static int write_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

static void *writer_thread(void *opaque)
{
	struct bwriter *b = opaque;

	pthread_mutex_lock(&b->lock);
	for (;;) {
		uint8_t *buf;
		uint64_t block, blocks;
		int r;

		while (!b->pending && !b->stop)
			pthread_cond_wait(&b->cond, &b->lock);
		if (!b->pending)
			break;
		buf = b->pending;
		block = b->pending_block;
		blocks = b->pending_blocks;
		pthread_mutex_unlock(&b->lock);
		r = write_all(b->fd, buf, blocks * b->bs, block * b->bs);
		pthread_mutex_lock(&b->lock);
		if (r < 0 && !b->error)
			b->error = r;
		b->spare = buf;
		b->pending = NULL;
		pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* Hands the filled buffer to the thread once it is idle, and takes the spare one back. */
static int flush_fill(struct bwriter *b)
{
	int r;

	if (!b->fill_blocks)
		return 0;
	pthread_mutex_lock(&b->lock);
	while (b->pending)
		pthread_cond_wait(&b->cond, &b->lock);
	b->pending = b->fill;
	b->pending_block = b->fill_block;
	b->pending_blocks = b->fill_blocks;
	b->fill = b->spare;
	b->spare = NULL;
	r = b->error;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	b->fill_blocks = 0;
	return r;
}

static int read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

int bwriter_copy(struct bwriter *b, int src_fd, uint64_t src_off, uint64_t dst_block,
		 uint64_t bytes)
{
	while (bytes) {
		uint64_t room, chunk, blocks;
		uint8_t *dst;
		int r;

		if (b->fill_blocks && (dst_block != b->fill_block + b->fill_blocks ||
				       b->fill_blocks * b->bs == STAGE_BYTES)) {
			r = flush_fill(b);
			if (r < 0)
				return r;
		}
		if (!b->fill_blocks)
			b->fill_block = dst_block;
		room = STAGE_BYTES - b->fill_blocks * b->bs;
		chunk = MIN(bytes, room);
		blocks = (chunk + b->bs - 1) / b->bs;
		dst = b->fill + b->fill_blocks * b->bs;
		r = read_full(src_fd, dst, chunk, src_off);
		if (r < 0)
			return r;
		memset(dst + chunk, 0, blocks * b->bs - chunk);
		b->fill_blocks += blocks;
		dst_block += blocks;
		src_off += chunk;
		bytes -= chunk;
	}
	return 0;
}

static int open_image(const char *path)
{
	int fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);

	/* Some file systems (older tmpfs, FUSE) refuse O_DIRECT: buffered writes still work. */
	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int bwriter_open(const char *path, unsigned block_size, struct bwriter **out)
{
	struct bwriter *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;
	b->bs = block_size;
	b->fd = open_image(path);
	if (b->fd < 0) {
		r = b->fd;
		free(b);
		return r;
	}
	if (posix_memalign((void **)&b->fill, 4096, STAGE_BYTES) ||
	    posix_memalign((void **)&b->spare, 4096, STAGE_BYTES)) {
		free(b->fill);
		close(b->fd);
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	r = -pthread_create(&b->thread, NULL, writer_thread, b);
	if (r < 0) {
		free(b->fill);
		free(b->spare);
		close(b->fd);
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

int bwriter_close(struct bwriter *b)
{
	int r = flush_fill(b);

	pthread_mutex_lock(&b->lock);
	b->stop = true;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	if (r >= 0)
		r = b->error;
	if (close(b->fd) < 0 && r >= 0)
		r = -errno;
	free(b->fill);
	free(b->spare);
	free(b->pending);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
	return r;
}
