/*
 * The node table. Locking: node_table.lock protects the hash chains, every
 * node's nlookup, refs and hash_next, and the parent links while a node is
 * freed. node.lock protects the node's directory listing and layer set swaps.
 */
#include "unionfs/inode.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/handle.h"
#include "unionfs/readdir.h"

#define INITIAL_BUCKETS 4096

int node_table_init(struct node_table *t)
{
	*t = (struct node_table){.nbuckets = INITIAL_BUCKETS};
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	return -pthread_mutex_init(&t->lock, NULL);
}

static void free_chain(struct node *n)
{
	struct node *next;

	for (; n; n = next) {
		next = n->hash_next;
		node_free(n);
	}
}

void node_table_destroy(struct node_table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++)
		free_chain(t->buckets[i]);
	free_chain(t->unhashed);
	free(t->buckets);
	pthread_mutex_destroy(&t->lock);
}

static size_t bucket_of(const struct node_table *t, uint64_t ino)
{
	/* Fibonacci hashing spreads the packed branch bits and sequential inodes. */
	return (size_t)((ino * 0x9E3779B97F4A7C15ULL) >> 20) & (t->nbuckets - 1);
}

static struct node *find_locked(struct node_table *t, uint64_t ino)
{
	struct node *n = t->buckets[bucket_of(t, ino)];

	while (n && n->ino != ino)
		n = n->hash_next;
	return n;
}

static void grow_locked(struct node_table *t)
{
	size_t nbuckets = t->nbuckets * 2;
	struct node **buckets = calloc(nbuckets, sizeof(*buckets));
	struct node_table grown = {.nbuckets = nbuckets, .buckets = buckets};

	if (!buckets)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct node *n = t->buckets[i], *next;
		for (; n; n = next) {
			size_t b = bucket_of(&grown, n->ino);
			next = n->hash_next;
			n->hash_next = buckets[b];
			buckets[b] = n;
		}
	}
	free(t->buckets);
	t->buckets = buckets;
	t->nbuckets = nbuckets;
}

struct node *node_table_get(struct node_table *t, uint64_t ino)
{
	struct node *n;

	pthread_mutex_lock(&t->lock);
	n = find_locked(t, ino);
	if (n)
		n->nlookup++;
	pthread_mutex_unlock(&t->lock);
	return n;
}

struct node *node_table_insert(struct node_table *t, struct node *node)
{
	struct node *existing;
	size_t b;

	pthread_mutex_lock(&t->lock);
	existing = find_locked(t, node->ino);
	if (existing) {
		existing->nlookup++;
		pthread_mutex_unlock(&t->lock);
		node_free(node);
		return existing;
	}
	if (t->count >= t->nbuckets)
		grow_locked(t);
	b = bucket_of(t, node->ino);
	node->nlookup = 1;
	node->hash_next = t->buckets[b];
	t->buckets[b] = node;
	t->count++;
	if (node->parent)
		node->parent->refs++;
	pthread_mutex_unlock(&t->lock);
	return node;
}

static void unlink_locked(struct node_table *t, struct node *node)
{
	struct node **p = node->unhashed ? &t->unhashed : &t->buckets[bucket_of(t, node->ino)];

	while (*p && *p != node)
		p = &(*p)->hash_next;
	if (*p)
		*p = node->hash_next;
	if (!node->unhashed)
		t->count--;
}

void node_table_unhash(struct node_table *t, struct node *node)
{
	pthread_mutex_lock(&t->lock);
	if (!node->unhashed) {
		unlink_locked(t, node);
		node->unhashed = true;
		node->hash_next = t->unhashed;
		t->unhashed = node;
	}
	pthread_mutex_unlock(&t->lock);
}

/* Frees the node and then each parent that only stayed for its children. */
static void release_locked(struct node_table *t, struct node *node)
{
	struct node *parent;

	while (node && node->nlookup == 0 && node->refs == 0 && node->parent) {
		unlink_locked(t, node);
		parent = node->parent;
		parent->refs--;
		node_free(node);
		node = parent;
	}
}

void node_forget(struct node_table *t, struct node *node, uint64_t n)
{
	pthread_mutex_lock(&t->lock);
	node->nlookup -= MIN(n, node->nlookup);
	release_locked(t, node);
	pthread_mutex_unlock(&t->lock);
}

int node_move(struct node_table *t, struct node *node, struct node *parent, const char *name)
{
	char *copy = strdup(name), *old_name;
	struct node *old_parent;

	if (!copy)
		return -ENOMEM;
	/* copyup_lock: a copy-up reads parent and name while holding it. */
	pthread_mutex_lock(&node->copyup_lock);
	pthread_mutex_lock(&t->lock);
	old_parent = node->parent;
	old_name = node->name;
	parent->refs++;
	node->parent = parent;
	node->name = copy;
	old_parent->refs--;
	release_locked(t, old_parent);
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_unlock(&node->copyup_lock);
	free(old_name);
	return 0;
}

struct node *node_new(uint64_t ino, mode_t type, struct node *parent, const char *name,
		      struct layer_set *layers)
{
	struct node *node = calloc(1, sizeof(*node));

	if (!node)
		return NULL;
	node->name = strdup(name);
	if (!node->name) {
		free(node);
		return NULL;
	}
	node->ino = ino;
	node->type = type;
	node->parent = parent;
	node->layers = layers;
	node->io_backing = -1;
	pthread_mutex_init(&node->lock, NULL);
	pthread_mutex_init(&node->copyup_lock, NULL);
	return node;
}

struct layer_set *layer_set_new(uint16_t capacity)
{
	struct layer_set *set = calloc(1, sizeof(*set) + capacity * sizeof(struct node_layer));

	if (set)
		set->parent_fd = -EBADF;
	return set;
}

void layer_set_free(struct layer_set *set)
{
	if (!set)
		return;
	for (uint16_t i = 0; i < set->n; i++)
		closep(&set->v[i].fd);
	handle_release(set);
	free(set->name);
	free(set);
}

void node_replace_layers(struct node *node, struct layer_set *layers)
{
	struct layer_set *old = node->layers;

	old->retired_next = node->retired;
	node->retired = old;
	__atomic_store_n(&node->layers, layers, __ATOMIC_RELEASE);
}

void node_free(struct node *node)
{
	if (!node)
		return;
	layer_set_free(node->layers);
	while (node->retired) {
		struct layer_set *next = node->retired->retired_next;
		layer_set_free(node->retired);
		node->retired = next;
	}
	dir_listing_unref(node->listing);
	pthread_mutex_destroy(&node->lock);
	pthread_mutex_destroy(&node->copyup_lock);
	free(node->name);
	free(node);
}

int node_stat(const struct node *node, struct stat *st)
{
	const struct layer_set *set = node_layers(node);

	_cleanup_close_ int own = -EBADF;
	int fd;

	if (layer_set_by_name(set))
		return RET_NERRNO(fstatat(set->parent_fd, set->name, st, AT_SYMLINK_NOFOLLOW));
	fd = layer_set_use_fd(set, &own);
	return fd < 0 ? fd : RET_NERRNO(fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
}

int layer_set_use_fd(const struct layer_set *set, int *own)
{
	if (set->v[0].fd >= 0 || !set->handle)
		return set->v[0].fd;
	*own = handle_open(set, O_PATH);
	return *own;
}

int node_use_fd(const struct node *node, int *own)
{
	return layer_set_use_fd(node_layers(node), own);
}

int node_open(const struct node *node, int flags)
{
	return node_open_branch(node, flags, NULL);
}

int node_open_branch(const struct node *node, int flags, uint16_t *branch)
{
	const struct layer_set *set = node_layers(node);
	char proc[PATH_FD_PROC_SIZE];

	if (branch)
		*branch = set->metacopy && !(flags & O_PATH) ? set->data_branch : set->v[0].branch;
	if (set->metacopy && !(flags & O_PATH))
		return RET_NERRNO(
		    openat(set->parent_fd, set->name, flags | O_NOFOLLOW | O_CLOEXEC));
	if (set->handle)
		return handle_open(set, flags | O_NOFOLLOW);
	if (set->v[0].fd < 0)
		return RET_NERRNO(
		    openat(set->parent_fd, set->name, flags | O_NOFOLLOW | O_CLOEXEC));
	if (flags & O_PATH)
		return RET_NERRNO(fcntl(set->v[0].fd, F_DUPFD_CLOEXEC, 3));
	return RET_NERRNO(open(path_fd_proc(set->v[0].fd, proc, sizeof(proc)), flags | O_CLOEXEC));
}
