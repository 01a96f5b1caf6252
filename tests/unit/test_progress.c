/* Unit tests of lib/progress: what is drawn on stderr, how often, and when not at all. */
#include "lib/macro.h"
#include "lib/progress.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GiB (1024ull * 1024 * 1024)

static int saved_stderr = -EBADF;
static int capture_fd = -EBADF;
static off_t capture_seen; /* how much of the capture output() has returned */

/* Sends stderr to an unlinked temp file (so it is no TTY) that output() reads back. */
static void setup(void)
{
	char name[] = "/tmp/test_progress.XXXXXX";

	capture_fd = mkostemp(name, O_CLOEXEC);
	ck_assert_int_ge(capture_fd, 0);
	ck_assert_int_eq(unlink(name), 0);
	capture_seen = 0;
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_eq(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

static void teardown(void)
{
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(capture_fd);
}

/* Everything written to stderr since the last call, as a string in buf. */
static const char *output(char *buf, size_t size)
{
	ssize_t n;

	fflush(stderr);
	n = pread(capture_fd, buf, size - 1, capture_seen);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	capture_seen += n;
	return buf;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0)
		;
}

START_TEST(test_bytes_bar)
{
	struct progress p;
	char buf[512];
	uint64_t total = 2 * GiB + 6 * GiB / 10; /* 2.6 GiB */

	progress_init(&p, "verify", total, true, true);
	ck_assert(p.enabled);
	progress_update(&p, (total * 45 + 99) / 100);
	ck_assert_str_eq(output(buf, sizeof(buf)),
			 "\rverify [#########           ]  45%  1.2 GiB/2.6 GiB        ");
	/* Within 100 ms of the last draw: recorded, not drawn. */
	progress_update(&p, total / 2);
	ck_assert_uint_eq(p.done, total / 2);
	ck_assert_str_eq(output(buf, sizeof(buf)), "");
	sleep_ms(120);
	progress_update(&p, total / 2);
	ck_assert_str_eq(output(buf, sizeof(buf)),
			 "\rverify [##########          ]  50%  1.3 GiB/2.6 GiB        ");
	/* Finish draws the final state at once and ends the line. */
	progress_update(&p, total);
	progress_finish(&p);
	ck_assert_str_eq(output(buf, sizeof(buf)),
			 "\rverify [####################] 100%  2.6 GiB/2.6 GiB        \n");
	/* Nothing after the line is finished. */
	progress_finish(&p);
	progress_update(&p, total);
	ck_assert_str_eq(output(buf, sizeof(buf)), "");
}
END_TEST

START_TEST(test_counts_and_units)
{
	struct progress p;
	char buf[512];

	progress_init(&p, "import", 8, false, true);
	progress_update(&p, 3);
	ck_assert_str_eq(output(buf, sizeof(buf)),
			 "\rimport [#######             ]  37%  3/8                    ");
	progress_finish(&p);
	ck_assert(strstr(output(buf, sizeof(buf)), "  37%  3/8 ") != NULL);

	progress_init(&p, "pack", 2048, true, true);
	progress_update(&p, 1000);
	ck_assert(strstr(output(buf, sizeof(buf)), "  48%  1000 B/2.0 KiB ") != NULL);
	/* More than the total (a growing file) is shown as full, not past it. */
	sleep_ms(120);
	progress_update(&p, 4096);
	ck_assert(strstr(output(buf, sizeof(buf)),
			 "[####################] 100%  4.0 KiB/2.0 KiB") != NULL);
}
END_TEST

START_TEST(test_unknown_total)
{
	struct progress p;
	char buf[512];

	progress_init(&p, "read", 0, true, true);
	progress_update(&p, 5 * 1024 * 1024 + 1024 * 1024 / 2);
	ck_assert_str_eq(output(buf, sizeof(buf)), "\rread  5.5 MiB                ");
}
END_TEST

/* stderr is a file here, so without force nothing is ever written. */
START_TEST(test_disabled)
{
	struct progress p;
	char buf[512];

	progress_init(&p, "quiet", 100, false, false);
	ck_assert(!p.enabled);
	progress_update(&p, 50);
	ck_assert_uint_eq(p.done, 50);
	progress_finish(&p);
	ck_assert_str_eq(output(buf, sizeof(buf)), "");
}
END_TEST

static Suite *progress_suite(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("progress");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_bytes_bar);
	tcase_add_test(tc, test_counts_and_units);
	tcase_add_test(tc, test_unknown_total);
	tcase_add_test(tc, test_disabled);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(progress_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
