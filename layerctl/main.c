/*
 * layerctl: a store of ext4 layer images, stacks of them mounted with
 * unionfs, and a minimal launcher. This file parses arguments, takes the
 * store lock, calls the modules and prints; the modules do the work.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "layerctl/bundle.h"
#include "layerctl/commit.h"
#include "layerctl/export.h"
#include "layerctl/import.h"
#include "layerctl/inuse.h"
#include "layerctl/layer.h"
#include "layerctl/layerimg.h"
#include "layerctl/mount.h"
#include "layerctl/run.h"
#include "layerctl/scratch.h"
#include "layerctl/stack.h"
#include "layerctl/store.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"

#define LAYERCTL_VERSION "0.1"
/* Exit status for layerctl's own failures, as docker and podman use it. */
#define EXIT_OWN 125

static const char *store_root;
/* The argv being parsed and its command (NULL for the global options), for option errors. */
static char **parsed_argv;
static const char *parsed_command;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "layerctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'layerctl --help' for more information.\n");
	return EXIT_OWN;
}

static void usage(void)
{
	printf(
	    "Usage: layerctl [--store DIR] COMMAND [OPTIONS] [ARGS]\n"
	    "\n"
	    "Layers (ext4 images named by their xxh3-128 digest):\n"
	    "  import [--name N] SRC        import a directory, a tarball or an OCI image layout;\n"
	    "                               prints the new layer ids, base first\n"
	    "  layers [--json]              list layers\n"
	    "  inspect ID                   print a layer's record\n"
	    "  rm [--force] ID              remove a layer (refused while a stack uses it)\n"
	    "  gc                           remove temp files, unrecorded images and the\n"
	    "                               mounts of killed runs --tmp\n"
	    "  fsck                         verify every layer against its digest\n"
	    "Stacks:\n"
	    "  create NAME LAYER...         a stack of layers, base first\n"
	    "  stacks [--json]              list stacks\n"
	    "  rm-stack NAME                remove a stack and its upper dir (refused while\n"
	    "                               mounted or in use by a run)\n"
	    "  mount [--tmp] NAME [MNT]     mount a stack; prints the rootfs path\n"
	    "  umount NAME                  unmount it\n"
	    "  commit [--name N] NAME       turn the upper dir into a new layer on top\n"
	    "  run [OPTIONS] NAME -- CMD... run CMD in new namespaces on the stack\n"
	    "      --tmp --hostname H --net --init --bind SRC:DST[:ro] --env K=V --workdir D\n"
	    "  export (LAYER|NAME) --tar FILE | --oci DIR | --dir DIR\n"
	    "                               a layer as an OCI layer tar; a stack as an OCI image\n"
	    "                               layout, or its merged tree as a tar or a directory\n"
	    "  bundle [--tmp] NAME DIR [-- CMD...]\n"
	    "                               mount NAME, write DIR/config.json for runc/crun\n"
	    "\n"
	    "Options:\n"
	    "  -s, --store DIR   the store (default $LAYERCTL_STORE or " STORE_DEFAULT ")\n"
	    "  -v, --verbose     more messages\n"
	    "  -h, --help        this help\n"
	    "  -V, --version     the version\n");
}

/* -h/-V for every subcommand; returns -1 when opt is something else. */
static int common_option(int opt)
{
	switch (opt) {
	case 'h':
		usage();
		return 0;
	case 'V':
		printf("layerctl " LAYERCTL_VERSION "\n");
		return 0;
	default:
		/* opterr is 0: getopt printed nothing, so this is the one line. */
		return usage_error("%s%sinvalid option or missing value: '%s'",
				   parsed_command ?: "", parsed_command ? ": " : "",
				   parsed_argv[optind - 1]);
	}
}

#define COMMON_LONGOPTS                                                                            \
	{"help", no_argument, NULL, 'h'},                                                          \
	{                                                                                          \
		"version", no_argument, NULL, 'V'                                                  \
	}

/* Parses options that take none of their own beyond flags in longopts; -1 to go on. */
static int need_args(int argc, char **argv, int min, int max)
{
	int n = argc - optind;

	if (n < min)
		return usage_error("%s: missing argument", argv[0]);
	if (max >= 0 && n > max)
		return usage_error("%s: unexpected argument '%s'", argv[0], argv[optind + max]);
	return -1;
}

static int open_store(struct store *s)
{
	int r = store_open(s, store_root);

	if (r == 0)
		r = store_lock(s);
	if (r < 0) {
		log_errno(r, "store %s", store_root);
		store_close(s);
	}
	return r;
}

static int fail(int r)
{
	return r < 0 ? EXIT_OWN : 0;
}

/* ---- layers ---- */

static int cmd_import(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'}, COMMON_LONGOPTS, {0}};
	const char *name = NULL;
	struct store s;
	char **ids = NULL;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "n:hV", longopts, NULL)) != -1) {
		if (opt == 'n')
			name = optarg;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, 1, 1)) >= 0)
		return r;
	/* A private mount namespace for the scratch tmpfs tarballs are extracted into. */
	if ((r = scratch_enter()) < 0)
		log_debug("import: no private mount namespace (%s): extracting to disk",
			  strerror(-r));
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = import_source(&s, argv[optind], name, &ids);
	store_close(&s);
	for (char **p = ids; r == 0 && *p; p++)
		printf("%s\n", *p);
	store_free_list(ids);
	return fail(r);
}

static void print_layer_line(struct json_object *rec)
{
	char when[32];
	time_t t = (time_t)store_json_int(rec, "created");

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime(&t));
	printf("%-32s  %-16s  %10lld  %s  %s\n", store_json_str(rec, "id") ?: "?",
	       store_json_str(rec, "name") ?: "-", (long long)store_json_int(rec, "size"), when,
	       store_json_str(rec, "source") ?: "");
}

static int cmd_layers(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'}, COMMON_LONGOPTS, {0}};
	struct json_object *all;
	bool json = false;
	char **ids = NULL;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "jhV", longopts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, 0, 0)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	all = json_object_new_array();
	r = all ? layer_list(&s, &ids) : -ENOMEM;
	if (r == 0 && !json)
		printf("%-32s  %-16s  %10s  %-16s  %s\n", "ID", "NAME", "SIZE", "CREATED",
		       "SOURCE");
	for (char **p = ids; r == 0 && *p; p++) {
		struct json_object *rec;

		if (layer_load(&s, *p, &rec) < 0)
			continue;
		if (!json)
			print_layer_line(rec);
		json_object_array_add(all, rec);
	}
	if (r == 0 && json)
		printf("%s\n", json_object_to_json_string_ext(
				   all, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	if (r < 0)
		log_errno(r, "layers");
	json_object_put(all);
	store_free_list(ids);
	store_close(&s);
	return fail(r);
}

static int resolve_or_complain(struct store *s, const char *ref, char *id)
{
	int r = layer_resolve(s, ref, id);

	if (r == -ENOENT)
		log_error("%s: no such layer", ref);
	else if (r == -ENOTUNIQ)
		log_error("%s: more than one layer matches", ref);
	else if (r < 0)
		log_errno(r, "%s", ref);
	return r;
}

static int cmd_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {0}};
	char id[LAYER_ID_SIZE];
	struct json_object *rec;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1)
		return common_option(opt);
	if ((r = need_args(argc, argv, 1, 1)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = resolve_or_complain(&s, argv[optind], id);
	if (r == 0)
		r = layer_load(&s, id, &rec);
	if (r == 0) {
		printf("%s\n", json_object_to_json_string_ext(
				   rec, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(rec);
	}
	store_close(&s);
	return fail(r);
}

/* Even --force does not pull a layer from under a running command. */
static int refuse_layer_in_use(struct store *s, const char *id)
{
	char **users = NULL;
	int r = stack_users_of_layer(s, id, &users);

	if (r < 0)
		return log_errno(r, "rm: %s", id);
	for (char **p = users; r == 0 && *p; p++)
		r = inuse_refuse(s, "rm", *p, INUSE_ANY);
	store_free_list(users);
	return r;
}

static int cmd_rm(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"force", no_argument, NULL, 'f'}, COMMON_LONGOPTS, {0}};
	char id[LAYER_ID_SIZE], user[128];
	bool force = false;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "fhV", longopts, NULL)) != -1) {
		if (opt == 'f')
			force = true;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, 1, 1)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = resolve_or_complain(&s, argv[optind], id);
	if (r == 0)
		r = refuse_layer_in_use(&s, id);
	if (r == 0 && !force && stack_using_layer(&s, id, user, sizeof(user)) == 0) {
		log_error("rm: layer %s is used by stack %s (--force removes it anyway)", id, user);
		r = -EBUSY;
	} else if (r == 0 && (r = layer_remove(&s, id)) < 0) {
		log_errno(r, "rm: %s", id);
	}
	store_close(&s);
	return fail(r);
}

/* Undoes killed runs' private mounts; removes tmp/'s contents and images that have no record
 * (a crashed import). */
static int collect_garbage(struct store *s, unsigned *count)
{
	char **imgs = NULL, **tmps = NULL, rel[PATH_MAX];
	int r = mount_clear_stale(s, count);

	if (r == 0)
		r = store_list(s, "layers", ".img", &imgs);

	if (r == 0)
		r = store_list(s, "tmp", "", &tmps);
	for (char **p = imgs; r == 0 && *p; p++) {
		snprintf(rel, sizeof(rel), "layers/%s.json", *p);
		if (faccessat(s->dir_fd, rel, F_OK, 0) == 0)
			continue;
		snprintf(rel, sizeof(rel), "layers/%s.img", *p);
		r = store_unlink(s, rel);
		++*count;
	}
	for (char **p = tmps; r == 0 && *p; p++) {
		snprintf(rel, sizeof(rel), "tmp/%s", *p);
		r = path_remove_tree(s->dir_fd, rel);
		++*count;
	}
	store_free_list(imgs);
	store_free_list(tmps);
	return r;
}

static int cmd_gc(int argc, char **argv)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {0}};
	unsigned count = 0;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1)
		return common_option(opt);
	if ((r = need_args(argc, argv, 0, 0)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = collect_garbage(&s, &count);
	if (r < 0)
		log_errno(r, "gc");
	else
		fprintf(stderr, "removed %u item%s\n", count, count == 1 ? "" : "s");
	store_close(&s);
	return fail(r);
}

static int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {0}};
	char **ids = NULL;
	unsigned bad = 0;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1)
		return common_option(opt);
	if ((r = need_args(argc, argv, 0, 0)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = layer_list(&s, &ids);
	for (char **p = ids; r == 0 && *p; p++) {
		int k = layer_verify(&s, *p);

		printf("%s  %s\n", *p,
		       k == 0	       ? "ok"
		       : k == -EBADMSG ? "DIGEST MISMATCH"
				       : strerror(-k));
		bad += k != 0;
	}
	store_free_list(ids);
	store_close(&s);
	if (r < 0)
		log_errno(r, "fsck");
	return r < 0 || bad ? 1 : 0;
}

/* ---- stacks ---- */

static int cmd_create(int argc, char **argv)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {0}};
	char ids[STACK_MAX_LAYERS][LAYER_ID_SIZE];
	char *ptrs[STACK_MAX_LAYERS];
	struct store s;
	int opt, r, n;

	while ((opt = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1)
		return common_option(opt);
	if ((r = need_args(argc, argv, 2, STACK_MAX_LAYERS + 1)) >= 0)
		return r;
	if (!stack_name_valid(argv[optind]))
		return usage_error("create: '%s': not a valid stack name", argv[optind]);
	if (open_store(&s) < 0)
		return EXIT_OWN;
	n = argc - optind - 1;
	r = 0;
	for (int i = 0; r == 0 && i < n; i++) {
		r = resolve_or_complain(&s, argv[optind + 1 + i], ids[i]);
		ptrs[i] = ids[i];
	}
	if (r == 0 && (r = stack_create(&s, argv[optind], ptrs, (size_t)n)) < 0)
		log_errno(r, "create: %s", argv[optind]);
	store_close(&s);
	return fail(r);
}

static int cmd_stacks(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'}, COMMON_LONGOPTS, {0}};
	struct json_object *all;
	char **names = NULL;
	bool json = false;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "jhV", longopts, NULL)) != -1) {
		if (opt == 'j')
			json = true;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, 0, 0)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	all = json_object_new_array();
	r = all ? stack_list(&s, &names) : -ENOMEM;
	if (r == 0 && !json)
		printf("%-20s  %6s  %s\n", "NAME", "LAYERS", "MOUNTED");
	for (char **p = names; r == 0 && *p; p++) {
		const char *ids[STACK_MAX_LAYERS];
		struct json_object *st;
		char *root = NULL;

		if (stack_load(&s, *p, &st) < 0)
			continue;
		if (mount_is_mounted(&s, *p, &root) > 0)
			json_object_object_add(st, "mounted", json_object_new_string(root));
		if (!json)
			printf("%-20s  %6zu  %s\n", *p, stack_layers(st, ids, STACK_MAX_LAYERS),
			       root ?: "-");
		free(root);
		json_object_array_add(all, st);
	}
	if (r == 0 && json)
		printf("%s\n", json_object_to_json_string_ext(
				   all, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(all);
	store_free_list(names);
	store_close(&s);
	return fail(r);
}

static int cmd_rm_stack(int argc, char **argv)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {0}};
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1)
		return common_option(opt);
	if ((r = need_args(argc, argv, 1, 1)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = inuse_refuse(&s, "rm-stack", argv[optind], INUSE_ANY);
	if (r == 0)
		r = mount_is_mounted(&s, argv[optind], NULL);
	if (r > 0) {
		log_error("rm-stack: %s: mounted (layerctl umount %s first)", argv[optind],
			  argv[optind]);
		r = -EBUSY;
	} else if (r == 0 && (r = stack_remove(&s, argv[optind])) < 0) {
		log_errno(r, "rm-stack: %s", argv[optind]);
	} else if (r == 0) {
		inuse_forget(&s, argv[optind]);
	}
	store_close(&s);
	return fail(r);
}

static int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"tmp", no_argument, NULL, 't'}, COMMON_LONGOPTS, {0}};
	char *root = NULL;
	bool tmp = false;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "thV", longopts, NULL)) != -1) {
		if (opt == 't')
			tmp = true;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, 1, 2)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = mount_stack(&s, argv[optind], argv[optind + 1], tmp, &root);
	store_close(&s);
	if (r < 0)
		return EXIT_OWN;
	printf("%s\n", root);
	free(root);
	return 0;
}

static int cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {COMMON_LONGOPTS, {0}};
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1)
		return common_option(opt);
	if ((r = need_args(argc, argv, 1, 1)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = inuse_refuse(&s, "umount", argv[optind], INUSE_MOUNT);
	if (r == 0)
		r = mount_unmount(&s, argv[optind]);
	if (r == -ENOENT)
		log_error("umount: %s: not mounted", argv[optind]);
	else if (r < 0)
		log_errno(r, "umount: %s", argv[optind]);
	store_close(&s);
	return fail(r);
}

static int cmd_commit(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"name", required_argument, NULL, 'n'}, COMMON_LONGOPTS, {0}};
	const char *name = NULL;
	char id[LAYER_ID_SIZE];
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "n:hV", longopts, NULL)) != -1) {
		if (opt == 'n')
			name = optarg;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, 1, 1)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = inuse_refuse(&s, "commit", argv[optind], INUSE_MOUNT);
	if (r == 0)
		r = commit_stack(&s, argv[optind], name, id);
	store_close(&s);
	if (r < 0)
		return EXIT_OWN;
	printf("%s\n", id);
	return 0;
}

static int cmd_bundle(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"tmp", no_argument, NULL, 't'}, COMMON_LONGOPTS, {0}};
	char *root = NULL, *const *cmd = NULL;
	const char *name;
	bool tmp = false;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "+thV", longopts, NULL)) != -1) {
		if (opt == 't')
			tmp = true;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, 2, -1)) >= 0)
		return r;
	name = argv[optind];
	if (optind + 2 < argc)
		cmd = argv + optind + 2 + !strcmp(argv[optind + 2], "--");
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = mount_is_mounted(&s, name, &root);
	if (r == 0)
		r = mount_stack(&s, name, NULL, tmp, &root);
	store_close(&s);
	if (r < 0)
		return EXIT_OWN;
	r = bundle_write(argv[optind + 1], root, name, cmd);
	if (r < 0)
		log_errno(r, "bundle: %s", argv[optind + 1]);
	else
		printf("%s\n", root);
	free(root);
	return fail(r);
}

enum export_kind { EXPORT_NONE, EXPORT_TAR, EXPORT_OCI, EXPORT_DIR };

/* A stack's name wins over a layer's: a stack exports its merged tree or its image. */
static int export_one(struct store *s, const char *ref, enum export_kind kind, const char *dest)
{
	char id[LAYER_ID_SIZE];
	struct json_object *stack;
	bool is_stack = stack_name_valid(ref) && stack_load(s, ref, &stack) == 0;
	int r;

	if (is_stack) {
		json_object_put(stack);
		if (kind == EXPORT_OCI)
			return export_stack_oci(s, ref, dest);
		r = export_stack_tree(s, ref, kind == EXPORT_TAR ? dest : NULL,
				      kind == EXPORT_DIR ? dest : NULL);
		return r < 0 ? log_errno(r, "export: %s", ref) : 0;
	}
	r = resolve_or_complain(s, ref, id);
	if (r < 0)
		return r;
	if (kind != EXPORT_TAR) {
		log_error("export: %s: a layer exports with --tar; --oci and --dir need a stack",
			  ref);
		return -EINVAL;
	}
	r = export_layer_tar(s, id, dest);
	return r < 0 ? log_errno(r, "export: %s", ref) : 0;
}

static int cmd_export(int argc, char **argv)
{
	static const struct option longopts[] = {{"tar", required_argument, NULL, 't'},
						 {"oci", required_argument, NULL, 'o'},
						 {"dir", required_argument, NULL, 'd'},
						 COMMON_LONGOPTS,
						 {0}};
	enum export_kind kind = EXPORT_NONE;
	const char *dest = NULL;
	struct store s;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "t:o:d:hV", longopts, NULL)) != -1) {
		if (opt != 't' && opt != 'o' && opt != 'd')
			return common_option(opt);
		if (kind != EXPORT_NONE)
			return usage_error("export: one of --tar, --oci, --dir");
		kind = opt == 't' ? EXPORT_TAR : opt == 'o' ? EXPORT_OCI : EXPORT_DIR;
		dest = optarg;
	}
	if (kind == EXPORT_NONE)
		return usage_error("export: --tar FILE, --oci DIR or --dir DIR");
	if ((r = need_args(argc, argv, 1, 1)) >= 0)
		return r;
	if (open_store(&s) < 0)
		return EXIT_OWN;
	r = export_one(&s, argv[optind], kind, dest);
	store_close(&s);
	return fail(r);
}

/* ---- run ---- */

enum { OPT_HOSTNAME = 0x100, OPT_NET, OPT_BIND, OPT_ENV, OPT_WORKDIR, OPT_TMP, OPT_INIT };

static int run_option(struct run_options *o, int opt, const char *arg)
{
	switch (opt) {
	case OPT_TMP:
		o->tmp = true;
		return -1;
	case OPT_HOSTNAME:
		o->hostname = arg;
		return -1;
	case OPT_NET:
		o->host_net = true;
		return -1;
	case OPT_INIT:
		o->init = true;
		return -1;
	case OPT_WORKDIR:
		o->workdir = arg;
		return -1;
	case OPT_ENV:
		if (!strchr(arg, '=') || arg[0] == '=')
			return usage_error("run: --env '%s': not K=V", arg);
		return runopt_add_env(o, arg) < 0 ? EXIT_OWN : -1;
	case OPT_BIND:
		return runopt_add_bind(o, arg) < 0
			   ? usage_error("run: --bind '%s': not SRC:DST[:ro]", arg)
			   : -1;
	default:
		return common_option(opt);
	}
}

static int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"tmp", no_argument, NULL, OPT_TMP},
	    {"hostname", required_argument, NULL, OPT_HOSTNAME},
	    {"net", no_argument, NULL, OPT_NET},
	    {"init", no_argument, NULL, OPT_INIT},
	    {"bind", required_argument, NULL, OPT_BIND},
	    {"env", required_argument, NULL, OPT_ENV},
	    {"workdir", required_argument, NULL, OPT_WORKDIR},
	    COMMON_LONGOPTS,
	    {0}};
	struct run_options o = {0};
	struct store s;
	int opt, r;

	/* '+': stop at the stack name, so CMD's own options are left alone. */
	while ((opt = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1)
		if ((r = run_option(&o, opt, optarg)) >= 0)
			return runopt_free(&o), r;
	if ((r = need_args(argc, argv, 2, -1)) >= 0)
		return runopt_free(&o), r;
	o.stack = argv[optind++];
	if (!strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc)
		return runopt_free(&o), usage_error("run: missing command");
	o.argv = argv + optind;
	r = store_open(&s, store_root);
	if (r < 0) {
		runopt_free(&o);
		return log_errno(r, "store %s", store_root), EXIT_OWN;
	}
	r = run_stack(&s, &o);
	store_close(&s);
	runopt_free(&o);
	return r;
}

/* ---- dispatch ---- */

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
    {"import", cmd_import}, {"layers", cmd_layers}, {"inspect", cmd_inspect},
    {"rm", cmd_rm},	    {"gc", cmd_gc},	    {"fsck", cmd_fsck},
    {"create", cmd_create}, {"stacks", cmd_stacks}, {"rm-stack", cmd_rm_stack},
    {"mount", cmd_mount},   {"umount", cmd_umount}, {"commit", cmd_commit},
    {"run", cmd_run},	    {"bundle", cmd_bundle}, {"export", cmd_export},
};

static int global_options(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"store", required_argument, NULL, 's'},
	    {"verbose", no_argument, NULL, 'v'},
	    COMMON_LONGOPTS,
	    {0},
	};
	int opt;

	/* '+': global options end at the command name. */
	while ((opt = getopt_long(argc, argv, "+s:vhV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			store_root = optarg;
			break;
		case 'v':
			log_set_level(log_get_level() + 1);
			break;
		default:
			return common_option(opt);
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	int r;

	log_init("layerctl");
	opterr = 0;
	parsed_argv = argv;
	store_root = getenv("LAYERCTL_STORE");
	if (!store_root || !*store_root)
		store_root = STORE_DEFAULT;
	r = global_options(argc, argv);
	if (r >= 0)
		return r;
	if (optind >= argc)
		return usage_error("missing command");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[optind], commands[i].name))
			continue;
		argc -= optind;
		argv += optind;
		parsed_argv = argv;
		parsed_command = argv[0];
		/* 0, not 1: GNU getopt then also forgets the "+" mode of the global options. */
		optind = 0;
		return commands[i].fn(argc, argv);
	}
	return usage_error("unknown command '%s'", argv[optind]);
}
