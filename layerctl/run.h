/*
 * layerctl run: a minimal launcher. Mounts the stack if needed, clones a
 * child into new mount, PID, UTS, IPC (and network) namespaces, builds
 * /proc, /dev and /sys on top of the union mount inside that namespace only,
 * pivots into it and execs the command; the parent forwards signals, reaps
 * and returns the command's status.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "layerctl/store.h"

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

int run_add_env(struct run_options *o, const char *kv);
/* "SRC:DST[:ro]"; -EINVAL when malformed. */
int run_add_bind(struct run_options *o, const char *spec);
void run_options_free(struct run_options *o);

/* Runs o->argv in stack o->stack; returns the exit status for layerctl (CMD's, 125-127). */
int run_stack(struct store *s, struct run_options *o);
