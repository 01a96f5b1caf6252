/*
 * xxh3-128 digests of files and byte streams (libxxhash). The hex form is
 * XXH128's canonical big-endian encoding, the same as `xxh128sum` prints.
 * Files are read with 1 MiB preads: on a warm page cache the copy out of it
 * costs about as much as hashing with AVX2, larger buffers gain nothing and
 * smaller ones pay syscalls.
 */
#include "lib/digest.h"
#include "lib/macro.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <xxhash.h>

#define DIGEST_READ_SIZE (1u << 20)

/*
 * libxxhash's plain XXH3_* entry points are built for the x86-64 baseline
 * (SSE2); Debian's also exports the *_dispatch ones of xxh_x86dispatch.c,
 * which pick AVX2/AVX-512 at run time, as xxh128sum does. SSE2 hashing takes
 * 3x the CPU time, about 65% of xxh128sum's speed on a warm file. Weak, so a
 * libxxhash built without them still links, and the plain ones serve.
 */
extern XXH_errorcode XXH3_128bits_update_dispatch(XXH3_state_t *state, const void *input,
						  size_t len) __attribute__((weak));
extern XXH128_hash_t XXH3_128bits_dispatch(const void *input, size_t len) __attribute__((weak));

static void hash_update(XXH3_state_t *state, const void *data, size_t len)
{
	if (XXH3_128bits_update_dispatch)
		XXH3_128bits_update_dispatch(state, data, len);
	else
		XXH3_128bits_update(state, data, len);
}

static XXH128_hash_t hash_oneshot(const void *data, size_t len)
{
	if (XXH3_128bits_dispatch)
		return XXH3_128bits_dispatch(data, len);
	return XXH3_128bits(data, len);
}

struct digest_ctx {
	XXH3_state_t *state;
};

struct digest_ctx *digest_new(void)
{
	struct digest_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->state = XXH3_createState();
	if (!ctx->state) {
		free(ctx);
		return NULL;
	}
	XXH3_128bits_reset(ctx->state);
	return ctx;
}

void digest_free(struct digest_ctx *ctx)
{
	if (!ctx)
		return;
	XXH3_freeState(ctx->state);
	free(ctx);
}

void digest_update(struct digest_ctx *ctx, const void *data, size_t len)
{
	hash_update(ctx->state, data, len);
}

static void hash_to_hex(XXH128_hash_t hash, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	XXH128_canonical_t canon;

	XXH128_canonicalFromHash(&canon, hash);
	for (size_t i = 0; i < sizeof(canon.digest); i++) {
		hex[2 * i] = digits[canon.digest[i] >> 4];
		hex[2 * i + 1] = digits[canon.digest[i] & 0xf];
	}
	hex[DIGEST_HEX_LEN] = '\0';
}

void digest_final_hex(struct digest_ctx *ctx, char *hex)
{
	hash_to_hex(XXH3_128bits_digest(ctx->state), hex);
}

void digest_buffer(const void *data, size_t len, char *hex)
{
	hash_to_hex(hash_oneshot(data, len), hex);
}

static void digest_ctx_freep(struct digest_ctx **ctx)
{
	digest_free(*ctx);
}

/* pread keeps the fd's offset alone; pipes and ttys cannot pread, so they read. */
static ssize_t read_at(int fd, void *buf, size_t size, uint64_t off, bool *seekable)
{
	ssize_t n;

	if (*seekable) {
		n = RET_NERRNO(pread(fd, buf, size, (off_t)off));
		if (n != -ESPIPE)
			return n;
		*seekable = false;
	}
	return RET_NERRNO(read(fd, buf, size));
}

struct digest_stream {
	int fd;
	uint64_t total; /* 0 when unknown */
	digest_progress_fn progress;
	void *opaque;
};

/* Reads s->fd to EOF into ctx through buf (DIGEST_READ_SIZE bytes). */
static int digest_stream(const struct digest_stream *s, struct digest_ctx *ctx, void *buf)
{
	bool seekable = true;
	uint64_t done = 0;
	ssize_t n;

	while ((n = read_at(s->fd, buf, DIGEST_READ_SIZE, done, &seekable)) != 0) {
		if (n == -EINTR)
			continue;
		if (n < 0)
			return (int)n;
		digest_update(ctx, buf, (size_t)n);
		done += (uint64_t)n;
		if (s->progress)
			s->progress(done, s->total ? MAX(s->total, done) : 0, s->opaque);
	}
	return 0;
}

int digest_fd(int fd, char *hex, digest_progress_fn progress, void *opaque)
{
	struct digest_stream s = {.fd = fd, .progress = progress, .opaque = opaque};
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) {
		s.total = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
		/* Only advice: a failure costs read-ahead, not correctness. */
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}

	_cleanup_(digest_ctx_freep) struct digest_ctx *ctx = digest_new();
	_cleanup_free_ void *buf = aligned_alloc(4096, DIGEST_READ_SIZE);

	if (!ctx || !buf)
		return -ENOMEM;
	r = digest_stream(&s, ctx, buf);
	if (r == 0)
		digest_final_hex(ctx, hex);
	return r;
}

int digest_file(const char *path, char *hex, digest_progress_fn progress, void *opaque)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	return digest_fd(fd, hex, progress, opaque);
}

int digest_parse(const char *s, char *hex)
{
	static const char *const prefixes[] = {"xxh3-128:", "xxh128:"};

	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		size_t len = strlen(prefixes[i]);

		if (strncasecmp(s, prefixes[i], len) == 0) {
			s += len;
			break;
		}
	}
	if (strlen(s) != DIGEST_HEX_LEN || strspn(s, "0123456789abcdefABCDEF") != DIGEST_HEX_LEN)
		return false;
	if (hex) {
		for (size_t i = 0; i <= DIGEST_HEX_LEN; i++)
			hex[i] = (char)tolower((unsigned char)s[i]);
	}
	return true;
}
