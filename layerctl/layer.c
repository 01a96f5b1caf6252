/*
 * Layer images and records. A layer is packed into tmp/, digested, then
 * renamed to layers/ID.img; its record is written after the image, so a
 * record never names a missing image (an image without a record is garbage
 * for gc).
 */
#include "layerctl/layer.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/macro.h"
#include "loopimg/pack.h"

char *layer_image_path(struct store *s, const char *id)
{
	return store_path(s, "layers/%s.img", id);
}

static int pack_to_temp(struct store *s, const char *dir, char **out)
{
	/* Reproducible: the same tree gives the same bytes, hence the same id. */
	struct pack_options o = {
	    .image = {.reproducible = true, .extra_percent = 10},
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

int layer_pack_dir(struct store *s, const char *dir, const struct layer_meta *meta, char *id)
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

int layer_list(struct store *s, char ***ids)
{
	return store_list(s, "layers", ".json", ids);
}

int layer_load(struct store *s, const char *id, struct json_object **out)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "layers/%s.json", id);
	return store_read_json(s, rel, out);
}

static int match_name(struct store *s, const char *id, const char *ref)
{
	struct json_object *rec;
	const char *name;
	int match;

	if (layer_load(s, id, &rec) < 0)
		return 0;
	name = store_json_str(rec, "name");
	match = name && !strcmp(name, ref);
	json_object_put(rec);
	return match;
}

int layer_resolve(struct store *s, const char *ref, char *id)
{
	char **ids = NULL;
	size_t len = strlen(ref);
	int found = 0, r;

	r = layer_list(s, &ids);
	if (r < 0)
		return r;
	for (char **p = ids; *p; p++) {
		bool prefix = len >= 4 && len <= DIGEST_HEX_LEN && !strncmp(*p, ref, len);

		if (!prefix && !match_name(s, *p, ref))
			continue;
		if (found++ == 0)
			snprintf(id, LAYER_ID_SIZE, "%s", *p);
		else if (strcmp(id, *p))
			r = -ENOTUNIQ;
	}
	store_free_list(ids);
	if (r < 0)
		return r;
	return found ? 0 : -ENOENT;
}

int layer_remove(struct store *s, const char *id)
{
	char rel[128];
	int r;

	snprintf(rel, sizeof(rel), "layers/%s.img", id);
	r = store_unlink(s, rel);
	if (r < 0)
		return r;
	snprintf(rel, sizeof(rel), "layers/%s.json", id);
	return store_unlink(s, rel);
}

int layer_verify(struct store *s, const char *id)
{
	_cleanup_free_ char *img = layer_image_path(s, id);
	char hex[LAYER_ID_SIZE];
	int r;

	if (!img)
		return -ENOMEM;
	r = digest_file(img, hex, NULL, NULL);
	if (r < 0)
		return r;
	return strcmp(hex, id) ? -EBADMSG : 0;
}
