/*
 * Stacks: a name, its layers (base first) and a persistent upper and work dir
 * under stacks/NAME/. The caller holds the store lock.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "layerctl/store.h"

struct json_object;

#define STACK_MAX_LAYERS 128

/* True when name can be a stack name (a file name: letters, digits, ".-_", not leading '.'). */
bool stack_name_valid(const char *name);
/* Records a new stack of the given layer ids (base first); -EEXIST when it exists. */
int stack_create(struct store *s, const char *name, char *const *ids, size_t n);
int stack_load(struct store *s, const char *name, struct json_object **out);
/* The stack's layer ids, base first: borrowed from obj. */
size_t stack_layers(struct json_object *stack, const char **ids, size_t max);
/* Appends a layer on top. */
int stack_append(struct store *s, const char *name, const char *id);
/* Removes the record, then the upper and work dirs. */
int stack_remove(struct store *s, const char *name);
int stack_list(struct store *s, char ***names);
/* The first stack using layer id, into name (size bytes); 0 when one does, -ENOENT when none. */
int stack_using_layer(struct store *s, const char *id, char *name, size_t size);
/* Every stack using layer id (NULL-terminated, store_free_list). */
int stack_users_of_layer(struct store *s, const char *id, char ***names);
/* Makes sure stacks/NAME/upper and work exist. */
int stack_prepare_upper(struct store *s, const char *name);
