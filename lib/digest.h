/* xxh3-128 digests of files and byte streams (libxxhash). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DIGEST_HEX_LEN 32 /* 128 bits as lower-case hex, no prefix */

struct digest_ctx;

struct digest_ctx *digest_new(void);
void digest_free(struct digest_ctx *ctx);
void digest_update(struct digest_ctx *ctx, const void *data, size_t len);
/* Writes DIGEST_HEX_LEN hex chars plus NUL into hex (at least 33 bytes). */
void digest_final_hex(struct digest_ctx *ctx, char *hex);

/* Progress callback: done/total bytes (total 0 when unknown, e.g. a pipe); may be NULL. */
typedef void (*digest_progress_fn)(uint64_t done, uint64_t total, void *opaque);

/*
 * Streams an open fd from offset 0 to EOF (1 MiB preads, posix_fadvise sequential; the fd's
 * own offset is left alone). Pipes are read from where they are. Returns 0 or -errno.
 */
int digest_fd(int fd, char *hex, digest_progress_fn progress, void *opaque);
int digest_file(const char *path, char *hex, digest_progress_fn progress, void *opaque);

/* Digest of a memory buffer. */
void digest_buffer(const void *data, size_t len, char *hex);

/* True when s is DIGEST_HEX_LEN lower/upper-case hex chars (an optional "xxh3-128:" or
 * "xxh128:" prefix is accepted). Writes the normalised lower-case form to hex (33 bytes;
 * may be NULL to only check). Returns 1 (true) or 0 (false), not -errno. */
int digest_parse(const char *s, char *hex);
