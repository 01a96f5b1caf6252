/*
 * Merged directory listings: built once per directory from one pass over each
 * of its branches, with whiteouts and opaque markers applied. A listing is
 * both what readdir returns and the index lookups consult, so a lookup costs
 * one step whatever the number of branches.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct node;
struct layer_set;

struct dir_entry {
	char *name;
	uint64_t hash;
	uint64_t ino;	 /* st_ino the union reports for it (readdir's d_ino) */
	uint16_t pos;	 /* position in the directory's layers of the top-most object */
	uint8_t d_type;	 /* DT_* of that object */
	bool whiteout;	 /* hidden by a whiteout: listed nowhere, found by nobody */
	bool sealed;	 /* something below stops further merging (a non-dir or whiteout) */
	uint16_t nlower; /* for directories: further layers holding a directory of this name */
};

struct dir_listing {
	int refs;
	const struct layer_set *layers; /* the layers it was built from: entries' pos index these */
	size_t count;			/* entries, including whiteouts */
	struct dir_entry *entries;
	size_t nvisible;
	uint32_t *visible; /* indexes of shown entries, in readdir order */
	size_t nslots;
	uint32_t *slots; /* open-addressing hash: entry index + 1, 0 = empty */
};

/* Builds the listing of a directory node from all its layers. */
int dir_listing_build(const struct node *dir, struct dir_listing **out);

/* The entry for name (possibly a whiteout), or NULL. */
const struct dir_entry *dir_listing_find(const struct dir_listing *l, const char *name);

struct dir_listing *dir_listing_ref(struct dir_listing *l);
void dir_listing_unref(struct dir_listing *l);

/*
 * The node's current listing with a reference taken, built when missing
 * (or, with max_age_ns > 0, older than that).
 */
int dir_listing_get(struct node *dir, uint64_t max_age_ns, struct dir_listing **out);
/*
 * The same for a lookup, except in a directory changed since its last
 * listing: then 0 and *out NULL, and the caller looks the name up layer by
 * layer, as rebuilding the listing after every change of a directory being
 * emptied (rm -rf) costs time quadratic in its size.
 */
int dir_listing_get_for_lookup(struct node *dir, uint64_t max_age_ns, struct dir_listing **out);

/* Drops the node's cached listing (after a change in the directory). */
void dir_listing_invalidate(struct node *dir);
