/* Unit tests of layerctl's modules that need no mounts: name cleaning, names, options, store files.
 */
#include "layerctl/extract.h"
#include "layerctl/layer.h"
#include "layerctl/runopt.h"
#include "layerctl/stack.h"
#include "layerctl/store.h"
#include "lib/macro.h"

#include <check.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[64];
static struct store store;

static void setup(void)
{
	char root[96];

	snprintf(tmp, sizeof(tmp), "/tmp/test_layerctl.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(root, sizeof(root), "%s/a/store", tmp);
	ck_assert_int_eq(store_open(&store, root), 0);
	ck_assert_int_eq(store_lock(&store), 0);
}

static void teardown(void)
{
	char cmd[128];

	store_close(&store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *clean(const char *name)
{
	static char out[256];
	int r = extract_clean_name(name, out, sizeof(out));

	return r == -EXDEV ? "EXDEV" : r < 0 ? "ERR" : out;
}

START_TEST(test_clean_name)
{
	ck_assert_str_eq(clean("a/b"), "a/b");
	ck_assert_str_eq(clean("./a//b/"), "a/b");
	ck_assert_str_eq(clean("/etc/passwd"), "etc/passwd");
	ck_assert_str_eq(clean("./"), "");
	ck_assert_str_eq(clean("."), "");
	ck_assert_str_eq(clean("a/./b"), "a/b");
	ck_assert_str_eq(clean("../x"), "EXDEV");
	ck_assert_str_eq(clean("a/../../x"), "EXDEV");
	ck_assert_str_eq(clean("a/.."), "EXDEV");
	ck_assert_str_eq(clean("..a/b.."), "..a/b..");
	ck_assert_str_eq(clean(".wh..wh..opq"), ".wh..wh..opq");
}
END_TEST

START_TEST(test_clean_name_too_long)
{
	char name[300], out[16];

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_int_eq(extract_clean_name(name, out, sizeof(out)), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_stack_names)
{
	ck_assert(stack_name_valid("demo"));
	ck_assert(stack_name_valid("a.b-c_1"));
	ck_assert(!stack_name_valid(""));
	ck_assert(!stack_name_valid(".hidden"));
	ck_assert(!stack_name_valid("-opt"));
	ck_assert(!stack_name_valid("../x"));
	ck_assert(!stack_name_valid("a/b"));
	ck_assert(!stack_name_valid("a:b"));
	ck_assert(!stack_name_valid("a,b"));
}
END_TEST

START_TEST(test_bind_specs)
{
	struct run_options o = {0};

	ck_assert_int_eq(runopt_add_bind(&o, "/src:/dst"), 0);
	ck_assert_int_eq(runopt_add_bind(&o, "/s:/d:ro"), 0);
	ck_assert_int_eq(runopt_add_bind(&o, "/s:/d:rw"), 0);
	ck_assert_int_eq(runopt_add_bind(&o, "/s:d"), -EINVAL);
	ck_assert_int_eq(runopt_add_bind(&o, ":/d"), -EINVAL);
	ck_assert_int_eq(runopt_add_bind(&o, "/s"), -EINVAL);
	ck_assert_int_eq(runopt_add_bind(&o, "/s:/d:xx"), -EINVAL);
	ck_assert_uint_eq(o.nbinds, 3);
	ck_assert_str_eq(o.binds[0].src, "/src");
	ck_assert_str_eq(o.binds[0].dst, "/dst");
	ck_assert(!o.binds[0].ro);
	ck_assert(o.binds[1].ro);
	ck_assert(!o.binds[2].ro);
	runopt_free(&o);
}
END_TEST

START_TEST(test_store_layout)
{
	struct stat st;
	char path[160];
	const char *subdirs[] = {"layers", "stacks", "run", "tmp", "lock"};

	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		snprintf(path, sizeof(path), "%s/%s", store.root, subdirs[i]);
		ck_assert_int_eq(stat(path, &st), 0);
	}
}
END_TEST

START_TEST(test_json_round_trip)
{
	struct json_object *o = json_object_new_object(), *back;
	char **names;

	json_object_object_add(o, "name", json_object_new_string("x/y"));
	json_object_object_add(o, "n", json_object_new_int64(42));
	ck_assert_int_eq(store_write_json(&store, "stacks/x.json", o), 0);
	json_object_put(o);
	ck_assert_int_eq(store_read_json(&store, "stacks/x.json", &back), 0);
	ck_assert_str_eq(store_json_str(back, "name"), "x/y");
	ck_assert_int_eq(store_json_int(back, "n"), 42);
	ck_assert_ptr_null(store_json_str(back, "missing"));
	json_object_put(back);
	ck_assert_int_eq(store_list(&store, "stacks", ".json", &names), 0);
	ck_assert_str_eq(names[0], "x");
	ck_assert_ptr_null(names[1]);
	store_free_list(names);
	/* Nothing is left in tmp/ after an atomic write. */
	ck_assert_int_eq(store_list(&store, "tmp", "", &names), 0);
	ck_assert_ptr_null(names[0]);
	store_free_list(names);
	ck_assert_int_eq(store_unlink(&store, "stacks/x.json"), 0);
	ck_assert_int_eq(store_unlink(&store, "stacks/x.json"), 0);
	ck_assert_int_eq(store_read_json(&store, "stacks/x.json", &back), -ENOENT);
}
END_TEST

START_TEST(test_bad_json)
{
	struct json_object *o;
	char path[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/stacks/bad.json", store.root);
	f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs("{ not json", f);
	fclose(f);
	ck_assert_int_eq(store_read_json(&store, "stacks/bad.json", &o), -EBADMSG);
}
END_TEST

static void fake_layer(const char *id, const char *name)
{
	struct json_object *o = json_object_new_object();
	char rel[96];

	json_object_object_add(o, "id", json_object_new_string(id));
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	snprintf(rel, sizeof(rel), "layers/%s.json", id);
	ck_assert_int_eq(store_write_json(&store, rel, o), 0);
	json_object_put(o);
}

START_TEST(test_layer_resolve)
{
	char id[LAYER_ID_SIZE];

	fake_layer("0123456789abcdef0123456789abcdef", "base");
	fake_layer("0123ffffffffffffffffffffffffffff", NULL);
	ck_assert_int_eq(layer_resolve(&store, "base", id), 0);
	ck_assert_str_eq(id, "0123456789abcdef0123456789abcdef");
	ck_assert_int_eq(layer_resolve(&store, "01234", id), 0);
	ck_assert_str_eq(id, "0123456789abcdef0123456789abcdef");
	ck_assert_int_eq(layer_resolve(&store, "0123f", id), 0);
	ck_assert_str_eq(id, "0123ffffffffffffffffffffffffffff");
	ck_assert_int_eq(layer_resolve(&store, "0123", id), -ENOTUNIQ);
	ck_assert_int_eq(layer_resolve(&store, "012", id), -ENOENT);
	ck_assert_int_eq(layer_resolve(&store, "nosuch", id), -ENOENT);
}
END_TEST

START_TEST(test_stacks)
{
	char *ids[] = {"0123456789abcdef0123456789abcdef"};
	const char *got[4];
	struct json_object *o;
	char user[64];

	ck_assert_int_eq(stack_create(&store, "s1", ids, 1), 0);
	ck_assert_int_eq(stack_create(&store, "s1", ids, 1), -EEXIST);
	ck_assert_int_eq(stack_create(&store, "../s", ids, 1), -EINVAL);
	ck_assert_int_eq(stack_append(&store, "s1", "ffffffffffffffffffffffffffffffff"), 0);
	ck_assert_int_eq(stack_load(&store, "s1", &o), 0);
	ck_assert_uint_eq(stack_layers(o, got, 4), 2);
	ck_assert_str_eq(got[1], "ffffffffffffffffffffffffffffffff");
	json_object_put(o);
	ck_assert_int_eq(stack_using_layer(&store, ids[0], user, sizeof(user)), 0);
	ck_assert_str_eq(user, "s1");
	ck_assert_int_eq(stack_using_layer(&store, "eeee", user, sizeof(user)), -ENOENT);
	ck_assert_int_eq(stack_remove(&store, "s1"), 0);
	ck_assert_int_eq(stack_remove(&store, "s1"), -ENOENT);
}
END_TEST

static Suite *layerctl_suite(void)
{
	Suite *s = suite_create("layerctl");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_clean_name);
	tcase_add_test(tc, test_clean_name_too_long);
	tcase_add_test(tc, test_stack_names);
	tcase_add_test(tc, test_bind_specs);
	tcase_add_test(tc, test_store_layout);
	tcase_add_test(tc, test_json_round_trip);
	tcase_add_test(tc, test_bad_json);
	tcase_add_test(tc, test_layer_resolve);
	tcase_add_test(tc, test_stacks);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(layerctl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
