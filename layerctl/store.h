/*
 * The layer store: one directory holding layer images, their JSON records,
 * stacks, their upper dirs and the state of mounted stacks. Every change is
 * written under tmp/ and renamed into place; one flock serialises processes.
 *
 *   lock                  flock(LOCK_EX) held by a layerctl process changing things
 *   layers/ID.img, ID.json  ext4 image named by its xxh3-128 digest, and its record
 *   stacks/NAME.json      a stack: its layers, base first
 *   stacks/NAME/upper, work  the persistent upper and work dir of a stack
 *   run/NAME.json, run/NAME/  a mounted stack: its mounts, for umount from any process
 *   run/NAME@PID.json, ...    the private mount of a run --tmp by layerctl PID
 *   run/NAME.lock         read-locked by each layerctl run of NAME (inuse.h)
 *   tmp/                  temp files and dirs; whatever is left here is garbage (gc)
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct json_object;

#define STORE_DEFAULT "/var/lib/layerctl"

struct store {
	char *root;  /* absolute path */
	int dir_fd;  /* root, O_DIRECTORY */
	int lock_fd; /* root/lock */
};

/* Opens (creating it and its subdirs when missing) the store at root. */
int store_open(struct store *s, const char *root);
void store_close(struct store *s);
/* Takes the store's exclusive lock (blocks until other layerctl processes let go). */
int store_lock(struct store *s);
void store_unlock(struct store *s);

/* "ROOT/fmt..." as a new string, NULL when out of memory. */
char *store_path(const struct store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes obj to relpath atomically (tmp file, fsync, rename, fsync of the dir). */
int store_write_json(struct store *s, const char *relpath, struct json_object *obj);
/* Reads relpath into *out; -ENOENT when missing, -EBADMSG when it is not valid JSON. */
int store_read_json(struct store *s, const char *relpath, struct json_object **out);
/* Removes relpath durably; a missing file is success. */
int store_unlink(struct store *s, const char *relpath);
/* Makes a fresh private dir under tmp/ (mode 0700); *out is its absolute path. */
int store_temp_dir(struct store *s, const char *prefix, char **out);
/* Lists the names in subdir ending in suffix (without it; hidden names too), sorted; *out is
 * NULL-terminated. */
int store_list(struct store *s, const char *subdir, const char *suffix, char ***out);
void store_free_list(char **list);

/* Small JSON getters that tolerate a missing key. */
const char *store_json_str(struct json_object *obj, const char *key);
int64_t store_json_int(struct json_object *obj, const char *key);
