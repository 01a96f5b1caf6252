/* Whiteouts and opaque directories: reading both formats. */
#include "unionfs/whiteout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/xattr.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/unionfs.h"
#include "unionfs/workdir.h"

bool whiteout_is_meta_name(const char *name)
{
	return strncmp(name, WHITEOUT_AUFS_PREFIX, WHITEOUT_AUFS_PREFIX_LEN) == 0;
}

const char *whiteout_aufs_target(const char *name)
{
	const char *target;

	if (!whiteout_is_meta_name(name))
		return NULL;
	target = name + WHITEOUT_AUFS_PREFIX_LEN;
	/* ".wh..wh.*" are aufs's own entries (opaque marker, work dirs), not whiteouts. */
	if (*target == '\0' || whiteout_is_meta_name(target))
		return NULL;
	return target;
}

static int xattr_is_y(int fd, const char *name)
{
	char value[2];
	ssize_t n = fgetxattr(fd, name, value, sizeof(value));

	if (n < 0)
		return errno == ENODATA || errno == ENOTSUP || errno == ERANGE ? 0 : -errno;
	return n == 1 && value[0] == 'y';
}

int whiteout_dir_is_opaque(int dirfd)
{
	static const char *const names[] = {"trusted.overlay.opaque", "user.overlay.opaque"};
	int r;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		r = xattr_is_y(dirfd, names[i]);
		if (r != 0)
			return r;
	}
	if (faccessat(dirfd, WHITEOUT_AUFS_OPAQUE, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

static int aufs_name(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, WHITEOUT_AUFS_PREFIX "%s", name);

	return n >= (int)size ? -ENAMETOOLONG : 0;
}

bool whiteout_aufs_present(int upper_dirfd, const char *name)
{
	char aufs[NAME_MAX + 1];

	return aufs_name(aufs, sizeof(aufs), name) == 0 &&
	       faccessat(upper_dirfd, aufs, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int whiteout_present(int upper_dirfd, const char *name)
{
	struct stat st;

	if (fstatat(upper_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return whiteout_is_overlay(&st);
	return whiteout_aufs_present(upper_dirfd, name);
}

/* Moves the upper object at name into the work dir and removes it there. */
static int discard_upper(struct unionfs *fs, int upper_dirfd, const char *name)
{
	char tmp[64];

	workdir_temp_name(fs, tmp, sizeof(tmp));
	if (renameat(upper_dirfd, name, fs->work_fd, tmp) < 0)
		return -errno;
	return path_remove_tree(fs->work_fd, tmp);
}

static int put_aufs(struct unionfs *fs, int upper_dirfd, const char *name, bool replace)
{
	char aufs[NAME_MAX + 1];
	int fd, r = aufs_name(aufs, sizeof(aufs), name);

	if (r < 0)
		return r;
	/* The marker first: a crash in between leaves the name hidden, as intended. */
	fd = openat(upper_dirfd, aufs, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		return -errno;
	close(fd);
	return replace ? discard_upper(fs, upper_dirfd, name) : 0;
}

#define SHARED_WHITEOUT "whiteout"

/* A new shared whiteout in the work dir, replacing a full one (EMLINK) or a missing one. */
static int make_shared_whiteout(struct unionfs *fs)
{
	char tmp[64];

	workdir_temp_name(fs, tmp, sizeof(tmp));
	if (mknodat(fs->work_fd, tmp, S_IFCHR, makedev(0, 0)) < 0)
		return -errno;
	if (renameat(fs->work_fd, tmp, fs->work_fd, SHARED_WHITEOUT) < 0) {
		int r = -errno;
		unlinkat(fs->work_fd, tmp, 0);
		return r;
	}
	return 0;
}

/*
 * Links the shared whiteout at name in dirfd, as overlayfs does: a link is
 * much cheaper than a new device node for each name of an rm -rf.
 */
static int link_whiteout(struct unionfs *fs, int dirfd, const char *name)
{
	int r;

	for (int tries = 0; tries < 3; tries++) {
		if (linkat(fs->work_fd, SHARED_WHITEOUT, dirfd, name, 0) == 0)
			return 0;
		if (errno != ENOENT && errno != EMLINK)
			return -errno;
		r = make_shared_whiteout(fs);
		if (r < 0)
			return r;
	}
	return -EMLINK;
}

static int put_overlay(struct unionfs *fs, int upper_dirfd, const char *name, bool replace)
{
	char tmp[64];
	int r;

	if (!replace)
		return link_whiteout(fs, upper_dirfd, name);
	workdir_temp_name(fs, tmp, sizeof(tmp));
	r = link_whiteout(fs, fs->work_fd, tmp);
	if (r < 0)
		return r;
	if (renameat2(fs->work_fd, tmp, upper_dirfd, name, RENAME_EXCHANGE) < 0) {
		r = -errno;
		unlinkat(fs->work_fd, tmp, 0);
		return r;
	}
	/* After the exchange the old upper object sits at tmp. */
	return path_remove_tree(fs->work_fd, tmp);
}

void whiteout_drop_shared(struct unionfs *fs)
{
	if (fs->work_fd >= 0)
		unlinkat(fs->work_fd, SHARED_WHITEOUT, 0);
}

int whiteout_put(struct unionfs *fs, int upper_dirfd, const char *name, bool replace)
{
	int r;

	if (fs->whiteout_format == WHITEOUT_AUFS)
		return put_aufs(fs, upper_dirfd, name, replace);
	r = put_overlay(fs, upper_dirfd, name, replace);
	/* Without CAP_MKNOD (or on a file system refusing device nodes), aufs's form still works.
	 */
	if (r == -EPERM || r == -EOPNOTSUPP)
		r = put_aufs(fs, upper_dirfd, name, replace);
	return r;
}

int whiteout_clear(int upper_dirfd, const char *name)
{
	char aufs[NAME_MAX + 1];
	struct stat st;

	if (fstatat(upper_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && whiteout_is_overlay(&st) &&
	    unlinkat(upper_dirfd, name, 0) < 0)
		return -errno;
	if (aufs_name(aufs, sizeof(aufs), name) == 0 && unlinkat(upper_dirfd, aufs, 0) < 0 &&
	    errno != ENOENT)
		return -errno;
	return 0;
}

int whiteout_set_opaque(struct unionfs *fs, int dirfd)
{
	const char *name = fs->privileged ? "trusted.overlay.opaque" : "user.overlay.opaque";
	int fd;

	if (fs->whiteout_format == WHITEOUT_OVERLAY && fsetxattr(dirfd, name, "y", 1, 0) == 0)
		return 0;
	fd = openat(dirfd, WHITEOUT_AUFS_OPAQUE, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0444);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}
