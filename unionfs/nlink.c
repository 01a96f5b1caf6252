/* The union's link count of lower hard-link groups: see nlink.h. */
#include "unionfs/nlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/macro.h"
#include "lib/xattr.h"
#include "unionfs/inode.h"
#include "unionfs/unionfs.h"

static const char *nlink_xattr(const struct unionfs *fs)
{
	return fs->privileged ? "trusted.unionfs.nlink" : "user.unionfs.nlink";
}

/* The stored difference in *d; -ENODATA when there is none. */
static int read_delta(const struct unionfs *fs, int fd, long *d)
{
	char buf[24], *end;
	ssize_t n = xattr_get_fd(fd, nlink_xattr(fs), buf, sizeof(buf) - 1);

	*d = 0;
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	*d = strtol(buf, &end, 10);
	if (n == 0 || *end || *d < -(1L << 30) || *d > (1L << 30))
		*d = 0;
	return 0;
}

/* read_delta() of a set's top-most object, which may be kept by handle. */
static int read_layers_delta(const struct unionfs *fs, const struct layer_set *layers, long *d)
{
	_cleanup_close_ int own = -EBADF;
	int fd = layer_set_use_fd(layers, &own);

	*d = 0;
	return fd < 0 ? fd : read_delta(fs, fd, d);
}

static int write_delta(const struct unionfs *fs, int fd, long delta)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%ld", delta);

	return xattr_set_fd(fd, nlink_xattr(fs), buf, (size_t)n, 0);
}

int nlink_init_index(struct unionfs *fs, int fd, nlink_t lower_nlink)
{
	return write_delta(fs, fd, (long)lower_nlink - 2);
}

int nlink_upper_link_added_locked(struct unionfs *fs, struct node *node)
{
	_cleanup_close_ int own = -EBADF;
	int fd = node_use_fd(node, &own);
	long d;

	if (fd < 0)
		return fd;
	if (read_delta(fs, fd, &d) == -ENODATA)
		return 0; /* not a group from below: the union counts as the file system does */
	return write_delta(fs, fd, d - 1);
}

int nlink_upper_link_added(struct unionfs *fs, struct node *node)
{
	int r;

	pthread_mutex_lock(&node->copyup_lock);
	r = nlink_upper_link_added_locked(fs, node);
	pthread_mutex_unlock(&node->copyup_lock);
	return r;
}

static bool may_have_delta(const struct unionfs *fs, const struct layer_set *layers,
			   const struct stat *st)
{
	return !fs->read_only && S_ISREG(st->st_mode) && layers->v[0].branch == 0 &&
	       !layer_set_by_name(layers) &&
	       (layers->unnamed || layers->indexed || st->st_nlink >= 2);
}

void nlink_report(const struct unionfs *fs, const struct layer_set *layers, struct stat *st)
{
	long d, n;

	if (!may_have_delta(fs, layers, st) || read_layers_delta(fs, layers, &d) < 0)
		return;
	n = (long)st->st_nlink + d;
	st->st_nlink = n > 0 ? (nlink_t)n : 0;
}

bool nlink_tracked(const struct unionfs *fs, const struct node *node)
{
	const struct layer_set *layers = node_layers(node);
	struct stat st;
	long d;

	if (!S_ISREG(node->type) || fs->read_only || node_stat(node, &st) < 0)
		return false;
	if (layers->v[0].branch != 0 || layers->unnamed)
		return st.st_nlink > 1 || layers->unnamed;
	/* An index copy whose upper names are all gone has one link: the index's. */
	return (st.st_nlink >= 2 || layers->indexed) && read_layers_delta(fs, layers, &d) == 0;
}
