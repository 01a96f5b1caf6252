/*
 * Merged directory listings. A listing is immutable once built and shared by
 * reference: open directory handles keep the one they started with, so
 * offsets stay valid for seekdir/telldir while the node may get a new one.
 * Locking: the node's lock protects node->listing; refs are atomic.
 */
#include "unionfs/readdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <xxhash.h>

#include "lib/macro.h"
#include "unionfs/branch.h"
#include "unionfs/inode.h"
#include "unionfs/whiteout.h"

struct builder {
	struct dir_listing *l;
	size_t cap;
};

static uint64_t name_hash(const char *name)
{
	return XXH3_64bits(name, strlen(name));
}

static struct dir_entry *find_entry(const struct dir_listing *l, const char *name, uint64_t hash)
{
	size_t mask = l->nslots - 1;

	if (!l->nslots)
		return NULL;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		uint32_t slot = l->slots[i];
		if (!slot)
			return NULL;
		struct dir_entry *e = &l->entries[slot - 1];
		if (e->hash == hash && strcmp(e->name, name) == 0)
			return e;
	}
}

const struct dir_entry *dir_listing_find(const struct dir_listing *l, const char *name)
{
	return find_entry(l, name, name_hash(name));
}

static void slots_insert(uint32_t *slots, size_t nslots, uint64_t hash, uint32_t index)
{
	size_t mask = nslots - 1, i = hash & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = index + 1;
}

static int grow(struct builder *b)
{
	struct dir_listing *l = b->l;
	size_t cap = b->cap ? b->cap * 2 : 64;
	struct dir_entry *entries = realloc(l->entries, cap * sizeof(*entries));
	uint32_t *slots;

	if (!entries)
		return -ENOMEM;
	l->entries = entries;
	b->cap = cap;
	/* Keep the hash table at most half full. */
	slots = calloc(cap * 2, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < l->count; i++)
		slots_insert(slots, cap * 2, entries[i].hash, i);
	free(l->slots);
	l->slots = slots;
	l->nslots = cap * 2;
	return 0;
}

static int add_entry(struct builder *b, const char *name, uint64_t hash, uint64_t ino, uint16_t pos,
		     uint8_t d_type, bool whiteout)
{
	struct dir_listing *l = b->l;
	struct dir_entry *e;
	int r;

	if (l->count == b->cap && (r = grow(b)) < 0)
		return r;
	e = &l->entries[l->count];
	*e = (struct dir_entry){
	    .hash = hash, .ino = ino, .pos = pos, .d_type = d_type, .whiteout = whiteout};
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	slots_insert(l->slots, l->nslots, hash, l->count);
	l->count++;
	return 0;
}

/* A name found in a lower layer than an existing entry: merge or stop merging. */
static void merge_below(struct dir_entry *e, uint8_t d_type, bool whiteout)
{
	if (e->whiteout || e->sealed)
		return;
	if (!whiteout && e->d_type == DT_DIR && d_type == DT_DIR)
		e->nlower++;
	else
		e->sealed = true;
}

static int add_name(struct builder *b, int dirfd, const char *name, uint8_t d_type, uint64_t ino,
		    uint16_t pos, uint16_t branch)
{
	const char *target = whiteout_aufs_target(name);
	bool whiteout = false;
	struct dir_entry *e;
	struct stat st;
	uint64_t hash;

	if (target) {
		name = target;
		whiteout = true;
	} else if (whiteout_is_meta_name(name)) {
		return 0;
	} else if (d_type == DT_CHR || d_type == DT_UNKNOWN) {
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return errno == ENOENT ? 0 : -errno;
		whiteout = whiteout_is_overlay(&st);
		d_type = IFTODT(st.st_mode);
	}
	hash = name_hash(name);
	e = find_entry(b->l, name, hash);
	if (e) {
		merge_below(e, d_type, whiteout);
		return 0;
	}
	return add_entry(b, name, hash, branch_pack_ino(branch, ino), pos, d_type, whiteout);
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static int read_layer(struct builder *b, const struct node_layer *layer, uint16_t pos)
{
	_cleanup_close_ int fd = openat(layer->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[65536] __attribute__((aligned(8)));
	ssize_t n;
	int r;

	if (fd < 0)
		return -errno;
	while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			off += d->d_reclen;
			if (is_dot_or_dotdot(d->d_name))
				continue;
			r = add_name(b, fd, d->d_name, d->d_type, d->d_ino, pos, layer->branch);
			if (r < 0)
				return r;
		}
	}
	return n < 0 ? -errno : 0;
}

static int collect_visible(struct dir_listing *l)
{
	l->visible = malloc((l->count ? l->count : 1) * sizeof(*l->visible));
	if (!l->visible)
		return -ENOMEM;
	for (size_t i = 0; i < l->count; i++)
		if (!l->entries[i].whiteout)
			l->visible[l->nvisible++] = i;
	return 0;
}

int dir_listing_build(const struct node *dir, struct dir_listing **out)
{
	struct builder b = {0};
	int r = -ENOMEM;

	b.l = calloc(1, sizeof(*b.l));
	if (!b.l)
		return -ENOMEM;
	b.l->refs = 1;
	if (grow(&b) < 0)
		goto fail;
	b.l->layers = node_layers(dir);
	for (uint16_t pos = 0; pos < b.l->layers->n; pos++) {
		r = read_layer(&b, &b.l->layers->v[pos], pos);
		if (r < 0)
			goto fail;
	}
	r = collect_visible(b.l);
	if (r < 0)
		goto fail;
	*out = b.l;
	return 0;
fail:
	dir_listing_unref(b.l);
	return r;
}

struct dir_listing *dir_listing_ref(struct dir_listing *l)
{
	__atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
	return l;
}

void dir_listing_unref(struct dir_listing *l)
{
	if (!l || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].name);
	free(l->entries);
	free(l->slots);
	free(l->visible);
	free(l);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int get_listing(struct node *dir, uint64_t max_age_ns, bool for_lookup,
		       struct dir_listing **out)
{
	struct dir_listing *l;
	uint64_t now = 0;
	int r = 0;

	pthread_mutex_lock(&dir->lock);
	if (for_lookup && dir->listing_changed && !dir->listing) {
		*out = NULL;
		pthread_mutex_unlock(&dir->lock);
		return 0;
	}
	if (dir->listing && max_age_ns) {
		now = now_ns();
		if (now - dir->listing_built_ns > max_age_ns) {
			dir_listing_unref(dir->listing);
			dir->listing = NULL;
		}
	}
	if (!dir->listing) {
		/* Built under the node lock: concurrent lookups wait for one build, not start many.
		 */
		r = dir_listing_build(dir, &l);
		if (r == 0) {
			dir->listing = l;
			dir->listing_built_ns = now ? now : now_ns();
			dir->listing_changed = false;
		}
	}
	if (r == 0)
		*out = dir_listing_ref(dir->listing);
	pthread_mutex_unlock(&dir->lock);
	return r;
}

int dir_listing_get(struct node *dir, uint64_t max_age_ns, struct dir_listing **out)
{
	return get_listing(dir, max_age_ns, false, out);
}

int dir_listing_get_for_lookup(struct node *dir, uint64_t max_age_ns, struct dir_listing **out)
{
	return get_listing(dir, max_age_ns, true, out);
}

void dir_listing_invalidate(struct node *dir)
{
	struct dir_listing *old;

	pthread_mutex_lock(&dir->lock);
	old = dir->listing;
	dir->listing = NULL;
	dir->listing_changed = true;
	pthread_mutex_unlock(&dir->lock);
	dir_listing_unref(old);
}
