/*
 * The node table: what the kernel knows as a nodeid, with its real objects in
 * the branches and a stable st_ino. A node is found by its st_ino, so every
 * name of a hard-link group and every lookup of a name gives the same node.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct dir_listing;
struct file_handle;

/* One real object behind a node: a directory has one per merged branch, top first. */
struct node_layer {
	int fd;		 /* O_PATH for non-directories, O_RDONLY|O_DIRECTORY for directories */
	uint16_t branch; /* index in the branch table */
};

/*
 * The objects behind a node. Immutable once published: copy-up publishes a
 * new set and retires the old one until the node is freed, so readers need
 * no lock, only node_layers().
 */
struct layer_set {
	struct layer_set *retired_next;
	/*
	 * A non-directory in a read-only branch holds no fd (v[0].fd < 0): it is
	 * reached as name in parent_fd, its directory there, which never
	 * changes. So a walk over a million lower files needs no million fds.
	 */
	int parent_fd; /* borrowed from the parent's layers */
	char *name;
	off_t size; /* the size of such a file, which never changes */
	/*
	 * v[0] is a hard-link index entry: a sibling name was copied up, this
	 * name is still only below. Copy-up then just links it into place.
	 */
	bool unnamed;
	/* v[0] is (a link of) a hard-link index entry: its link count is not the union's. */
	bool indexed;
	/*
	 * v[0] holds only the metadata (-o metacopy=on): the data is still the
	 * lower file name in parent_fd, of branch data_branch, size bytes long.
	 */
	bool metacopy;
	uint16_t data_branch;
	/*
	 * v[0], a writable-branch non-directory past the fd budget, is kept by
	 * file handle (handle.h): v[0].fd < 0, and each use opens it.
	 */
	struct file_handle *handle;
	bool fd_counted; /* v[0].fd counts against handle.c's budget */
	uint16_t n;
	struct node_layer v[];
};

struct node {
	uint64_t ino; /* the st_ino we report; key of the table */
	mode_t type;  /* S_IFMT bits */
	struct node *parent;
	char *name;
	struct layer_set *layers; /* read with node_layers() */
	struct layer_set *retired;
	/* Protected by the table lock. */
	uint64_t nlookup;
	unsigned refs; /* children pointing here */
	struct node *hash_next;
	/* Protected by lock: the listing, and publishing new layer sets. */
	pthread_mutex_t lock;
	/* Serialises copy-up of this node (held across the copy, so not the lock above). */
	pthread_mutex_t copyup_lock;
	struct dir_listing *listing;
	uint64_t listing_built_ns;
	bool listing_changed; /* invalidated since the last listing was built */
	/* Open files, and the backing file they share (passthrough.c); under lock. */
	unsigned io_opens;
	int io_backing;	    /* backing id, -1: the opens go through the daemon */
	uint16_t io_branch; /* the branch of the real file they opened */
	/* Taken out of the table (under the table lock): lookups make a new node. */
	bool unhashed;
	/*
	 * What is known absent from the object's xattrs, so that the kernel's
	 * questions are answered without a system call: bit 0 security.capability,
	 * bit 1 every name; the rest counts the changes that could add one (xattr.c).
	 */
	uint32_t xattr_state;
};

struct node_table {
	pthread_mutex_t lock;
	struct node **buckets;
	size_t nbuckets;
	size_t count;
	struct node *unhashed; /* still known to the kernel, chained by hash_next */
};

int node_table_init(struct node_table *t);
void node_table_destroy(struct node_table *t);

/* The node with this st_ino, its lookup count raised by one; NULL when absent. */
struct node *node_table_get(struct node_table *t, uint64_t ino);

/*
 * Inserts a new node (lookup count 1), or, if another thread inserted the same
 * st_ino first, frees it and returns that one with its count raised.
 */
struct node *node_table_insert(struct node_table *t, struct node *node);

/* Takes node out of the table: it lives on until forgotten, and lookups make a new one. */
void node_table_unhash(struct node_table *t, struct node *node);

/* Gives node a new parent and name (after a rename). */
int node_move(struct node_table *t, struct node *node, struct node *parent, const char *name);

/* Drops n lookups; frees the node (and parents no longer needed) at zero. */
void node_forget(struct node_table *t, struct node *node, uint64_t n);

/* A new node owning layers (taken over, freed with the node); NULL on ENOMEM. */
struct node *node_new(uint64_t ino, mode_t type, struct node *parent, const char *name,
		      struct layer_set *layers);
void node_free(struct node *node);

/* An empty set with room for n layers (n = 0 until filled); NULL on ENOMEM. */
struct layer_set *layer_set_new(uint16_t capacity);
/* Closes every fd and frees the set. */
void layer_set_free(struct layer_set *set);

static inline struct layer_set *node_layers(const struct node *node)
{
	return __atomic_load_n(&node->layers, __ATOMIC_ACQUIRE);
}

/* The top-most real object's fd: directories only (a file may be kept by handle). */
static inline int node_fd(const struct node *node)
{
	return node_layers(node)->v[0].fd;
}

/* Whether the top-most object is reached as name in parent_fd: a lower non-directory. */
static inline bool layer_set_by_name(const struct layer_set *set)
{
	return set->v[0].fd < 0 && !set->handle;
}

/*
 * An fd on the top-most object of a directory or a writable-branch object,
 * for one use: the one the set keeps, or one opened by handle into *own,
 * which the caller closes (start it at -EBADF).
 */
int layer_set_use_fd(const struct layer_set *set, int *own);
int node_use_fd(const struct node *node, int *own);

/* fstatat of the top-most object, without following a symlink. */
int node_stat(const struct node *node, struct stat *st);
/*
 * A new fd on the top-most object: open flags (O_NOFOLLOW semantics), or
 * O_PATH. Of a metadata-only copy, other flags than O_PATH open the data.
 */
int node_open(const struct node *node, int flags);
/* node_open(), and the branch of the object opened: a copy-up cannot come between. */
int node_open_branch(const struct node *node, int flags, uint16_t *branch);

/* Publishes a new layer set; the old one stays valid until the node is freed. Caller holds
 * node->lock. */
void node_replace_layers(struct node *node, struct layer_set *layers);

static inline bool node_is_dir(const struct node *node)
{
	return S_ISDIR(node->type);
}
