/* A progress bar on stderr when it is a TTY; silent otherwise. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *label;
	uint64_t total;
	uint64_t done;
	bool enabled;
	bool bytes; /* show as sizes rather than counts */
	uint64_t last_draw_ns;
	uint64_t start_ns;
};

/* Enabled only when stderr is a TTY (or force is true, for tests). */
void progress_init(struct progress *p, const char *label, uint64_t total, bool bytes, bool force);
/* Records done and redraws ("label [####      ]  45%  1.2 GiB/2.6 GiB", '\r' first)
 * at most every 100 ms; total 0 means unknown (no bar). */
void progress_update(struct progress *p, uint64_t done);
/* Draws the final state and a newline (when enabled), then disables p. */
void progress_finish(struct progress *p);
