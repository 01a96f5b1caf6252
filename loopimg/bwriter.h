/*
 * File data into the image: reads from source files into a staging buffer
 * and writes whole runs of consecutive blocks with O_DIRECT, on a writer
 * thread, while the next run is being read.
 */
#pragma once

#include <stdint.h>

struct bwriter;

/* Opens path for block writes (O_DIRECT when its file system allows). */
int bwriter_open(const char *path, unsigned block_size, struct bwriter **out);
/* Copies bytes of src_fd from src_off to the image at block dst_block; the last block's tail is
 * zeroed. -ENODATA when the source ends early. */
int bwriter_copy(struct bwriter *b, int src_fd, uint64_t src_off, uint64_t dst_block,
		 uint64_t bytes);
/* Writes what is staged, stops the thread, closes; returns the first error. Frees b. */
int bwriter_close(struct bwriter *b);
