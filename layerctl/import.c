/*
 * Import: a directory is packed as it is; a tarball is first extracted into a
 * private dir under the store's tmp/ (see extract.c for why that is safe),
 * packed, and the dir removed again. Whiteouts end up in overlayfs form.
 */
#include "layerctl/import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layerctl/extract.h"
#include "layerctl/oci.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"

static int import_tar(struct store *s, const char *src, const struct layer_meta *meta, char *id)
{
	_cleanup_free_ char *dir = NULL;
	const char *rel;
	int r = store_temp_dir(s, "import", &dir);

	if (r < 0)
		return log_errno(r, "import: temp dir in %s", s->root);
	r = extract_tar(src, dir);
	if (r == 0)
		r = layerimg_pack_dir(s, dir, meta, id);
	rel = dir + strlen(s->root) + 1;
	path_remove_tree(s->dir_fd, rel);
	return r;
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
