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

#include "layerctl/runopt.h"
#include "layerctl/store.h"

/* Runs o->argv in stack o->stack; returns the exit status for layerctl (CMD's, 125-127). */
int run_stack(struct store *s, struct run_options *o);
