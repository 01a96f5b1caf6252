/* Logging: one line per message on stderr, prefixed with the program name. */
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

static const char *program = "unknown";
static enum log_level current_level = LOG_LEVEL_WARN;

void log_init(const char *program_name)
{
	program = program_name;
}

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

const char *log_program_name(void)
{
	return program;
}

static void log_vline(const char *fmt, va_list ap, const char *suffix)
{
	char line[4096];
	int n = snprintf(line, sizeof(line), "%s: ", program);

	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	/* One write per line so threads' messages do not interleave. */
	fprintf(stderr, "%s%s%s\n", line, suffix ? ": " : "", suffix ? suffix : "");
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > current_level)
		return;
	va_start(ap, fmt);
	log_vline(fmt, ap, NULL);
	va_end(ap);
}

int log_errno(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(fmt, ap, strerror(err < 0 ? -err : err));
	va_end(ap);
	return err;
}
