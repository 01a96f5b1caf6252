/*
 * Import: a directory is packed as it is; a tarball is first extracted into a
 * private dir under the store's tmp/ (see extract.c for why that is safe),
 * packed, and the dir removed again. Whiteouts end up in overlayfs form. The
 * dir is a scratch tmpfs when memory allows (scratch.h): extracting to the
 * disk cost more than the pack (bench/RESULTS-layerctl.md).
 */
#include "layerctl/import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layerctl/extract.h"
#include "layerctl/oci.h"
#include "layerctl/scratch.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"

/* Extracts the tarball at fd into dir: a scratch tmpfs when one can be had, else the disk. */
static int extract_scratch(int fd, const char *label, const char *dir, bool *on_tmpfs)
{
	off_t start = lseek(fd, 0, SEEK_CUR);
	int r;

	*on_tmpfs = start >= 0 && scratch_mount(dir) == 0;
	r = extract_tar_fd(fd, label, dir);
	if (*on_tmpfs && (r == -ENOSPC || r == -EOPNOTSUPP)) {
		/* Too big for half the free memory, or xattrs tmpfs cannot hold: the disk. */
		log_warn("import: %s: does not fit the tmpfs scratch, extracting to disk", label);
		*on_tmpfs = false;
		r = scratch_umount(dir);
		if (r == 0 && lseek(fd, start, SEEK_SET) < 0)
			r = -errno;
		if (r == 0)
			r = extract_tar_fd(fd, label, dir);
	}
	return r;
}

int import_tar_fd(struct store *s, int fd, const char *label, const struct layer_meta *meta,
		  char *id)
{
	_cleanup_free_ char *dir = NULL;
	bool on_tmpfs = false;
	int r = store_temp_dir(s, "import", &dir);

	if (r < 0)
		return log_errno(r, "import: temp dir in %s", s->root);
	r = extract_scratch(fd, label, dir, &on_tmpfs);
	if (r == 0)
		r = layerimg_pack_dir(s, dir, meta, id);
	if (on_tmpfs)
		scratch_umount(dir);
	path_remove_tree(s->dir_fd, dir + strlen(s->root) + 1);
	return r;
}

static int import_tar(struct store *s, const char *src, const struct layer_meta *meta, char *id)
{
	_cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return log_errno(-errno, "import: %s", src);
	return import_tar_fd(s, fd, src, meta, id);
}

static int one_id(const char *id, char ***ids)
{
	*ids = calloc(2, sizeof(**ids));
	if (!*ids)
		return -ENOMEM;
	(*ids)[0] = strdup(id);
	return (*ids)[0] ? 0 : -ENOMEM;
}

int import_source(struct store *s, const char *src, const char *name, char ***ids)
{
	_cleanup_free_ char *abs = realpath(src, NULL);
	struct layer_meta meta = {.name = name, .source = abs};
	char id[LAYER_ID_SIZE];
	struct stat st;
	int r;

	*ids = NULL;
	if (!abs || stat(abs, &st) < 0)
		return log_errno(-errno, "import: %s", src);
	if (S_ISDIR(st.st_mode) && oci_is_layout(abs))
		return oci_import(s, abs, name, ids);
	if (S_ISDIR(st.st_mode))
		r = layerimg_pack_dir(s, abs, &meta, id);
	else if (S_ISREG(st.st_mode))
		r = import_tar(s, abs, &meta, id);
	else
		r = log_errno(-EINVAL, "import: %s: not a directory or a tarball", src);
	return r < 0 ? r : one_id(id, ids);
}
