/*
 * A one-line progress bar on stderr, redrawn in place with '\r' at most every
 * 100 ms, and only when enabled (stderr a TTY, or forced). Not thread-safe:
 * one struct progress belongs to one thread.
 */
#include "lib/progress.h"
#include "lib/macro.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_INTERVAL_NS 100000000ull
#define PROGRESS_BAR_WIDTH 20
/* The counts are padded to this width so a shorter line overwrites a longer one fully. */
#define PROGRESS_COUNTS_WIDTH 23

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "512 B", "1.2 GiB": binary units with one decimal. */
static void format_size(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	size_t u = 0;

	if (n < 1024) {
		snprintf(buf, size, "%" PRIu64 " B", n);
		return;
	}
	for (v /= 1024; v >= 1024 && u + 1 < ARRAY_SIZE(units); u++)
		v /= 1024;
	snprintf(buf, size, "%.1f %s", v, units[u]);
}

static void format_counts(const struct progress *p, char *buf, size_t size)
{
	char done[32], total[32];

	if (!p->bytes) {
		if (p->total)
			snprintf(buf, size, "%" PRIu64 "/%" PRIu64, p->done, p->total);
		else
			snprintf(buf, size, "%" PRIu64, p->done);
		return;
	}
	format_size(p->done, done, sizeof(done));
	format_size(p->total, total, sizeof(total));
	if (p->total)
		snprintf(buf, size, "%s/%s", done, total);
	else
		snprintf(buf, size, "%s", done);
}

static void draw(const struct progress *p)
{
	char counts[64], bar[PROGRESS_BAR_WIDTH + 1], line[512];
	const char *label = p->label ? p->label : "";

	format_counts(p, counts, sizeof(counts));
	if (p->total) {
		uint64_t done = MIN(p->done, p->total);
		unsigned percent = (unsigned)((double)done * 100 / (double)p->total);
		size_t filled = (size_t)((double)done * PROGRESS_BAR_WIDTH / (double)p->total);

		memset(bar, '#', filled);
		memset(bar + filled, ' ', PROGRESS_BAR_WIDTH - filled);
		bar[PROGRESS_BAR_WIDTH] = '\0';
		snprintf(line, sizeof(line), "\r%s [%s] %3u%%  %-*s", label, bar, percent,
			 PROGRESS_COUNTS_WIDTH, counts);
	} else {
		/* Unknown total: no bar, just how far we are. */
		snprintf(line, sizeof(line), "\r%s  %-*s", label, PROGRESS_COUNTS_WIDTH, counts);
	}
	/* A progress line that cannot be written is not worth failing the work for. */
	(void)fputs(line, stderr);
}

void progress_init(struct progress *p, const char *label, uint64_t total, bool bytes, bool force)
{
	*p = (struct progress){
	    .label = label,
	    .total = total,
	    .bytes = bytes,
	    .enabled = force || isatty(STDERR_FILENO),
	    .start_ns = now_ns(),
	};
}

void progress_update(struct progress *p, uint64_t done)
{
	uint64_t now;

	p->done = done;
	if (!p->enabled)
		return;
	now = now_ns();
	if (p->last_draw_ns && now - p->last_draw_ns < PROGRESS_INTERVAL_NS)
		return;
	p->last_draw_ns = now;
	draw(p);
}

void progress_finish(struct progress *p)
{
	if (!p->enabled)
		return;
	draw(p);
	(void)fputc('\n', stderr);
	/* The line is done: later updates or a second finish must not draw over what follows. */
	p->enabled = false;
}
