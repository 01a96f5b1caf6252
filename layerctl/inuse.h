/*
 * A stack in use by `layerctl run`: a POSIX read lock on one byte of
 * run/NAME.lock, held by the run's layerctl process while CMD runs. Byte 0
 * says a run uses the stack's own mount (its upper), byte 1 a --tmp run on a
 * private mount. Read locks never wait for one another, so runs do not
 * serialise; commands that would pull the stack from under a run look for a
 * lock with F_GETLK and refuse, naming the holder. Runs take their lock while
 * holding the store lock, and so do the commands that look, so there is no
 * window between the look and the change. POSIX locks (not OFD or flock)
 * because F_GETLK reports the holder's pid.
 */
#pragma once

#include <sys/types.h>

#include "layerctl/store.h"

enum inuse_kind {
	INUSE_MOUNT, /* a run on the stack's own mount */
	INUSE_TMP,   /* a --tmp run on a private mount */
	INUSE_ANY,   /* either (for inuse_holder) */
};

/* Marks stack name in use as kind; returns the fd that holds the mark (close it to let go). */
int inuse_hold(struct store *s, const char *name, enum inuse_kind kind);
/* 1 and *pid when another process holds name in use as kind, 0 when none does, or -errno. */
int inuse_holder(struct store *s, const char *name, enum inuse_kind kind, pid_t *pid);
/* The one-line refusal for a command, logged; returns -EBUSY when in use, 0 when not. */
int inuse_refuse(struct store *s, const char *command, const char *name, enum inuse_kind kind);
/* Removes the lock file of a stack nobody uses (rm-stack). */
int inuse_forget(struct store *s, const char *name);
