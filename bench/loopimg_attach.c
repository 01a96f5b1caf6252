/*
 * bench/loopimg_attach.c: attach+detach cycles through loopimg's loop device
 * API in one process (the path layerctl takes), so the figure is the
 * ioctls' cost and not a process start. Usage: loopimg_attach IMG CYCLES
 * Prints the mean microseconds per cycle.
 */
#include <errno.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "loopimg/loopdev.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	int cycles = argc > 2 ? atoi(argv[2]) : 200;
	double start;

	if (argc < 2 || cycles <= 0) {
		fprintf(stderr, "usage: loopimg_attach IMG CYCLES\n");
		return 2;
	}
	start = now_us();
	for (int i = 0; i < cycles; i++) {
		struct loopdev lc;
		int r;

		loopdev_init(&lc);
		loopdev_set_flags(&lc, LO_FLAGS_READ_ONLY);
		r = loopdev_set_backing_file(&lc, argv[1]);
		if (r >= 0)
			r = loopdev_setup(&lc);
		if (r >= 0)
			r = loopdev_detach(lc.device);
		loopdev_deinit(&lc);
		if (r < 0) {
			fprintf(stderr, "loopimg_attach: cycle %d: %d\n", i, r);
			return 1;
		}
	}
	printf("%.0f\n", (now_us() - start) / cycles);
	return 0;
}
