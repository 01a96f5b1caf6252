/* loopimg info: libblkid names the file system; ext2/3/4 images add counts from libext2fs. */
#include "loopimg/info.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/macro.h"

static void copy_value(blkid_probe pr, const char *name, char *out, size_t size)
{
	const char *data;
	size_t len;

	out[0] = '\0';
	if (blkid_probe_lookup_value(pr, name, &data, &len) == 0)
		snprintf(out, size, "%s", data);
}

static int probe_blkid(const char *path, struct imginfo *out)
{
	blkid_probe pr;
	int rc;

	pr = blkid_new_probe_from_filename(path);
	if (!pr)
		return errno ? -errno : -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL |
						  BLKID_SUBLKS_UUID);
	rc = blkid_do_safeprobe(pr);
	out->size = blkid_probe_get_size(pr);
	if (rc == 0) {
		copy_value(pr, "TYPE", out->type, sizeof(out->type));
		copy_value(pr, "LABEL", out->label, sizeof(out->label));
		copy_value(pr, "UUID", out->uuid, sizeof(out->uuid));
	}
	blkid_free_probe(pr);
	if (rc == -2)
		return -EINVAL; /* two signatures disagree: not something to mount */
	return rc < 0 ? -EIO : 0;
}

int imginfo_probe(const char *path, struct imginfo *out)
{
	struct stat st;
	int r;

	memset(out, 0, sizeof(*out));
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	r = probe_blkid(path, out);
	if (r < 0)
		return r;
	if (!strcmp(out->type, "ext2") || !strcmp(out->type, "ext3") ||
	    !strcmp(out->type, "ext4")) {
		r = ext4_read_summary(path, &out->ext);
		if (r < 0)
			return r;
		out->is_ext = true;
		/* A cut-off copy still has a valid superblock: only the size gives it away. */
		if (out->size < out->ext.blocks * out->ext.block_size)
			out->truncated = true;
	}
	return 0;
}
