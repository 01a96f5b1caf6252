/* layerctl run's options, kept apart from the launcher so they can be tested alone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct run_bind {
	char *src;
	char *dst;
	bool ro;
};

struct run_options {
	const char *stack;
	bool tmp;
	const char *hostname; /* default: the stack's name */
	bool host_net;
	bool init; /* a tiny init as PID 1, CMD its child */
	const char *workdir;
	char **env; /* K=V, given order; later ones win */
	size_t nenv;
	struct run_bind *binds;
	size_t nbinds;
	char **argv;
};

#define RUN_EXIT_OWN 125
#define RUN_EXIT_NOEXEC 126
#define RUN_EXIT_NOTFOUND 127

int runopt_add_env(struct run_options *o, const char *kv);
/* "SRC:DST[:ro]"; -EINVAL when malformed. */
int runopt_add_bind(struct run_options *o, const char *spec);
void runopt_free(struct run_options *o);
