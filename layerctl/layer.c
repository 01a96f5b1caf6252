/*
 * Layer records: listing, resolving a name or id prefix, removal and
 * verification. Packing a new layer is layerimg.c's.
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

char *layer_image_path(struct store *s, const char *id)
{
	return store_path(s, "layers/%s.img", id);
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
