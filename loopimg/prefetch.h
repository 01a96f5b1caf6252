/*
 * Read-ahead of the source files pack is about to copy: a thread opens them
 * in copy order, a bounded window ahead, and asks the kernel to read them in
 * (POSIX_FADV_WILLNEED), so many reads are in flight instead of one.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "loopimg/tree.h"

struct prefetch;

/* files[0..n) in copy order; the array must outlive the prefetcher. */
int prefetch_start(struct tree *tree, struct tree_node **files, size_t n, uint64_t window,
		   struct prefetch **out);
/* The copier has finished files[0..index). */
void prefetch_advance(struct prefetch *p, size_t index);
void prefetch_stop(struct prefetch *p);
