/*
 * Packing a directory into a new layer. The image is packed into tmp/,
 * digested, then renamed to layers/ID.img; its record is written after the
 * image, so a record never names a missing image (an image without a record
 * is garbage for gc).
 */
#include "layerctl/layerimg.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/macro.h"
#include "loopimg/pack.h"

static int pack_to_temp(struct store *s, const char *dir, char **out)
{
	/*
	 * Reproducible: the same tree gives the same bytes, hence the same id.
	 * No lost+found: it would show in the root of every stack the layer is in.
	 */
	struct pack_options o = {
	    .image = {.reproducible = true, .extra_percent = 10, .no_lost_found = true},
	    .tree = {.reproducible = true},
	    .progress = isatty(STDERR_FILENO),
	};
	_cleanup_free_ char *img = NULL;
	char name[64];
	int r;

	snprintf(name, sizeof(name), "tmp/pack-%d-%ld.img", getpid(), (long)time(NULL));
	img = store_path(s, "%s", name);
	if (!img)
		return -ENOMEM;
	unlink(img);
	r = pack_run(dir, img, &o);
	if (r < 0)
		return r;
	*out = TAKE_PTR(img);
	return 0;
}

static struct json_object *layer_record(const char *id, uint64_t size,
					const struct layer_meta *meta)
{
	struct json_object *o = json_object_new_object();
	char digest[64];

	if (!o)
		return NULL;
	snprintf(digest, sizeof(digest), "xxh3-128:%s", id);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "digest", json_object_new_string(digest));
	if (meta->name)
		json_object_object_add(o, "name", json_object_new_string(meta->name));
	json_object_object_add(o, "source", json_object_new_string(meta->source ?: ""));
	json_object_object_add(o, "created", json_object_new_int64(time(NULL)));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
	json_object_object_add(o, "parent",
			       meta->parent ? json_object_new_string(meta->parent) : NULL);
	return o;
}

static int install_image(struct store *s, const char *tmp, const char *id, uint64_t *size)
{
	_cleanup_free_ char *dst = layer_image_path(s, id);
	struct stat st;

	if (!dst)
		return -ENOMEM;
	if (stat(tmp, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	/* Images are never written once named: ro keeps an accidental rw attach away. */
	if (chmod(tmp, 0444) < 0 || rename(tmp, dst) < 0)
		return -errno;
	return 0;
}

int layerimg_pack_dir(struct store *s, const char *dir, const struct layer_meta *meta, char *id)
{
	_cleanup_free_ char *tmp = NULL;
	struct json_object *record;
	char rec[128];
	uint64_t size = 0;
	int r;

	r = pack_to_temp(s, dir, &tmp);
	if (r < 0)
		return r;
	r = digest_file(tmp, id, NULL, NULL);
	if (r == 0)
		r = install_image(s, tmp, id, &size);
	if (r < 0) {
		unlink(tmp);
		return r;
	}
	snprintf(rec, sizeof(rec), "layers/%s.json", id);
	if (faccessat(s->dir_fd, rec, F_OK, 0) == 0)
		return 0; /* the same content is already a layer: keep its record */
	record = layer_record(id, size, meta);
	if (!record)
		return -ENOMEM;
	r = store_write_json(s, rec, record);
	json_object_put(record);
	return r;
}
