/*
 * Stack records (stacks/NAME.json) and their upper and work dirs. The record
 * is the truth: it is written first on create and removed first on rm, so a
 * crash leaves at worst an orphan upper dir, never a record without one that
 * mount cannot recreate.
 */
#include "layerctl/stack.h"

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
#include "lib/path.h"

bool stack_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (!len || len > 64 || name[0] == '.' || name[0] == '-')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       len;
}

static void record_path(const char *name, char *rel, size_t size)
{
	snprintf(rel, size, "stacks/%s.json", name);
}

int stack_load(struct store *s, const char *name, struct json_object **out)
{
	char rel[128];

	if (!stack_name_valid(name))
		return -EINVAL;
	record_path(name, rel, sizeof(rel));
	return store_read_json(s, rel, out);
}

int stack_create(struct store *s, const char *name, char *const *ids, size_t n)
{
	struct json_object *o, *layers;
	char rel[128];
	int r;

	if (!stack_name_valid(name))
		return -EINVAL;
	record_path(name, rel, sizeof(rel));
	if (faccessat(s->dir_fd, rel, F_OK, 0) == 0)
		return -EEXIST;
	o = json_object_new_object();
	layers = json_object_new_array();
	if (!o || !layers) {
		json_object_put(o);
		json_object_put(layers);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(layers, json_object_new_string(ids[i]));
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "created", json_object_new_int64(time(NULL)));
	json_object_object_add(o, "layers", layers);
	r = store_write_json(s, rel, o);
	json_object_put(o);
	return r < 0 ? r : stack_prepare_upper(s, name);
}

size_t stack_layers(struct json_object *stack, const char **ids, size_t max)
{
	struct json_object *layers;
	size_t n, count = 0;

	if (!json_object_object_get_ex(stack, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array))
		return 0;
	n = json_object_array_length(layers);
	for (size_t i = 0; i < n && count < max; i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(layers, i));

		if (id)
			ids[count++] = id;
	}
	return count;
}

int stack_append(struct store *s, const char *name, const char *id)
{
	struct json_object *o, *layers;
	char rel[128];
	int r = stack_load(s, name, &o);

	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "layers", &layers) ||
	    json_object_array_length(layers) >= STACK_MAX_LAYERS) {
		json_object_put(o);
		return -E2BIG;
	}
	json_object_array_add(layers, json_object_new_string(id));
	record_path(name, rel, sizeof(rel));
	r = store_write_json(s, rel, o);
	json_object_put(o);
	return r;
}

int stack_prepare_upper(struct store *s, const char *name)
{
	char rel[128];
	int r;

	snprintf(rel, sizeof(rel), "stacks/%s/upper", name);
	r = path_mkdir_beneath(s->dir_fd, rel, 0755);
	if (r < 0)
		return r;
	snprintf(rel, sizeof(rel), "stacks/%s/work", name);
	return path_mkdir_beneath(s->dir_fd, rel, 0700);
}

int stack_remove(struct store *s, const char *name)
{
	char rel[128];
	int r;

	if (!stack_name_valid(name))
		return -EINVAL;
	record_path(name, rel, sizeof(rel));
	if (faccessat(s->dir_fd, rel, F_OK, 0) < 0)
		return -errno;
	r = store_unlink(s, rel);
	if (r < 0)
		return r;
	snprintf(rel, sizeof(rel), "stacks/%s", name);
	return path_remove_tree(s->dir_fd, rel);
}

int stack_list(struct store *s, char ***names)
{
	return store_list(s, "stacks", ".json", names);
}

static bool uses_layer(struct store *s, const char *name, const char *id)
{
	const char *ids[STACK_MAX_LAYERS];
	struct json_object *o;
	size_t n;
	bool found = false;

	if (stack_load(s, name, &o) < 0)
		return false;
	n = stack_layers(o, ids, STACK_MAX_LAYERS);
	for (size_t i = 0; i < n && !found; i++)
		found = !strcmp(ids[i], id);
	json_object_put(o);
	return found;
}

int stack_using_layer(struct store *s, const char *id, char *name, size_t size)
{
	char **names;
	int r = stack_list(s, &names);

	if (r < 0)
		return r;
	r = -ENOENT;
	for (char **p = names; *p && r == -ENOENT; p++)
		if (uses_layer(s, *p, id)) {
			snprintf(name, size, "%s", *p);
			r = 0;
		}
	store_free_list(names);
	return r;
}

int stack_users_of_layer(struct store *s, const char *id, char ***names)
{
	char **all, **users = calloc(1, sizeof(*users));
	size_t n = 0;
	int r = users ? stack_list(s, &all) : -ENOMEM;

	if (r < 0) {
		free(users);
		return r;
	}
	for (char **p = all; r == 0 && *p; p++) {
		char **grown;

		if (!uses_layer(s, *p, id))
			continue;
		grown = realloc(users, (n + 2) * sizeof(*users));
		if (!grown) {
			r = -ENOMEM;
			break;
		}
		users = grown;
		users[n] = strdup(*p);
		users[n + 1] = NULL;
		r = users[n++] ? 0 : -ENOMEM;
	}
	store_free_list(all);
	if (r < 0) {
		store_free_list(users);
		return r;
	}
	*names = users;
	return 0;
}
