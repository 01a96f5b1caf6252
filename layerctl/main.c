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

/*
 * The commands below take at most one flag and one option with a value besides -h/-V;
 * run_command parses them from the commands[] entry, checks the argument count and opens
 * and locks the store, so each cmd_ function starts with everything in c.
 */
struct cmdline {
	struct store s;
	bool flag;	   /* the command's flag was given */
	const char *value; /* the command's option's value, or NULL */
	char **args;	   /* the arguments after the options */
	int nargs;
};

/* ---- layers ---- */

static int cmd_import(struct cmdline *c)
{
	char **ids = NULL;
	int r = import_source(&c->s, c->args[0], c->value, &ids);

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

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int cmd_layers(struct cmdline *c)
{
	struct json_object *all = json_object_new_array();
	char **ids = NULL;
	int r = all ? layer_list(&c->s, &ids) : -ENOMEM;

	if (r == 0 && !c->flag)
		printf("%-32s  %-16s  %10s  %-16s  %s\n", "ID", "NAME", "SIZE", "CREATED",
		       "SOURCE");
	for (char **p = ids; r == 0 && *p; p++) {
		struct json_object *rec;

		if (layer_load(&c->s, *p, &rec) < 0)
			continue;
		if (!c->flag)
			print_layer_line(rec);
		json_object_array_add(all, rec);
	}
	if (r == 0 && c->flag)
		print_json(all);
	if (r < 0)
		log_errno(r, "layers");
	json_object_put(all);
	store_free_list(ids);
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

static int cmd_inspect(struct cmdline *c)
{
	char id[LAYER_ID_SIZE];
	struct json_object *rec;
	int r = resolve_or_complain(&c->s, c->args[0], id);

	if (r == 0)
		r = layer_load(&c->s, id, &rec);
	if (r == 0) {
		print_json(rec);
		json_object_put(rec);
	}
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

static int cmd_rm(struct cmdline *c)
{
	char id[LAYER_ID_SIZE], user[128];
	int r = resolve_or_complain(&c->s, c->args[0], id);

	if (r == 0)
		r = refuse_layer_in_use(&c->s, id);
	if (r == 0 && !c->flag && stack_using_layer(&c->s, id, user, sizeof(user)) == 0) {
		log_error("rm: layer %s is used by stack %s (--force removes it anyway)", id, user);
		r = -EBUSY;
	} else if (r == 0 && (r = layer_remove(&c->s, id)) < 0) {
		log_errno(r, "rm: %s", id);
	}
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

static int cmd_gc(struct cmdline *c)
{
	unsigned count = 0;
	int r = collect_garbage(&c->s, &count);

	if (r < 0)
		log_errno(r, "gc");
	else
		fprintf(stderr, "removed %u item%s\n", count, count == 1 ? "" : "s");
	return fail(r);
}

static int cmd_fsck(struct cmdline *c)
{
	char **ids = NULL;
	unsigned bad = 0;
	int r = layer_list(&c->s, &ids);

	for (char **p = ids; r == 0 && *p; p++) {
		int k = layer_verify(&c->s, *p);

		printf("%s  %s\n", *p,
		       k == 0	       ? "ok"
		       : k == -EBADMSG ? "DIGEST MISMATCH"
				       : strerror(-k));
		bad += k != 0;
	}
	store_free_list(ids);
	if (r < 0)
		log_errno(r, "fsck");
	return r < 0 || bad ? 1 : 0;
}

/* ---- stacks ---- */

static int cmd_create(struct cmdline *c)
{
	char ids[STACK_MAX_LAYERS][LAYER_ID_SIZE];
	char *ptrs[STACK_MAX_LAYERS];
	int r = 0, n = c->nargs - 1;

	if (!stack_name_valid(c->args[0]))
		return usage_error("create: '%s': not a valid stack name", c->args[0]);
	for (int i = 0; r == 0 && i < n; i++) {
		r = resolve_or_complain(&c->s, c->args[1 + i], ids[i]);
		ptrs[i] = ids[i];
	}
	if (r == 0 && (r = stack_create(&c->s, c->args[0], ptrs, (size_t)n)) < 0)
		log_errno(r, "create: %s", c->args[0]);
	return fail(r);
}

static int cmd_stacks(struct cmdline *c)
{
	struct json_object *all = json_object_new_array();
	char **names = NULL;
	int r = all ? stack_list(&c->s, &names) : -ENOMEM;

	if (r == 0 && !c->flag)
		printf("%-20s  %6s  %s\n", "NAME", "LAYERS", "MOUNTED");
	for (char **p = names; r == 0 && *p; p++) {
		const char *ids[STACK_MAX_LAYERS];
		struct json_object *st;
		char *root = NULL;

		if (stack_load(&c->s, *p, &st) < 0)
			continue;
		if (mount_is_mounted(&c->s, *p, &root) > 0)
			json_object_object_add(st, "mounted", json_object_new_string(root));
		if (!c->flag)
			printf("%-20s  %6zu  %s\n", *p, stack_layers(st, ids, STACK_MAX_LAYERS),
			       root ?: "-");
		free(root);
		json_object_array_add(all, st);
	}
	if (r == 0 && c->flag)
		print_json(all);
	json_object_put(all);
	store_free_list(names);
	return fail(r);
}

static int cmd_rm_stack(struct cmdline *c)
{
	const char *name = c->args[0];
	int r = inuse_refuse(&c->s, "rm-stack", name, INUSE_ANY);

	if (r == 0)
		r = mount_is_mounted(&c->s, name, NULL);
	if (r > 0) {
		log_error("rm-stack: %s: mounted (layerctl umount %s first)", name, name);
		r = -EBUSY;
	} else if (r == 0 && (r = stack_remove(&c->s, name)) < 0) {
		log_errno(r, "rm-stack: %s", name);
	} else if (r == 0) {
		inuse_forget(&c->s, name);
	}
	return fail(r);
}

static int cmd_mount(struct cmdline *c)
{
	char *root = NULL;

	if (mount_stack(&c->s, c->args[0], c->nargs > 1 ? c->args[1] : NULL, c->flag, &root) < 0)
		return EXIT_OWN;
	printf("%s\n", root);
	free(root);
	return 0;
}

static int cmd_umount(struct cmdline *c)
{
	int r = inuse_refuse(&c->s, "umount", c->args[0], INUSE_MOUNT);

	if (r < 0)
		return EXIT_OWN;
	r = mount_unmount(&c->s, c->args[0]);
	if (r == -ENOENT)
		log_error("umount: %s: not mounted", c->args[0]);
	else if (r < 0)
		log_errno(r, "umount: %s", c->args[0]);
	return fail(r);
}

static int cmd_commit(struct cmdline *c)
{
	char id[LAYER_ID_SIZE];
	int r = inuse_refuse(&c->s, "commit", c->args[0], INUSE_MOUNT);

	if (r == 0)
		r = commit_stack(&c->s, c->args[0], c->value, id);
	if (r < 0)
		return EXIT_OWN;
	printf("%s\n", id);
	return 0;
}

static int cmd_bundle(struct cmdline *c)
{
	char *root = NULL, *const *cmd = NULL;
	const char *name = c->args[0];
	int r;

	if (c->nargs > 2)
		cmd = c->args + 2 + !strcmp(c->args[2], "--");
	r = mount_is_mounted(&c->s, name, &root);
	if (r == 0)
		r = mount_stack(&c->s, name, NULL, c->flag, &root);
	if (r < 0)
		return EXIT_OWN;
	store_unlock(&c->s);
	r = bundle_write(c->args[1], root, name, cmd);
	if (r < 0)
		log_errno(r, "bundle: %s", c->args[1]);
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
	int (*fn)(struct cmdline *c); /* parsed by run_command, store open and locked */
	const char *flag;	      /* a flag's long name (short: its first letter), or NULL */
	const char *option;	/* an option with a value (short: its first letter), or NULL */
	int min_args, max_args; /* max -1: any number */
	bool stop_at_args;	/* options end at the first argument ("+") */
	bool private_mounts;	/* a mount namespace of its own (scratch.h) */
	int (*own_parse)(int argc, char **argv); /* a command that parses its own options */
} commands[] = {
    {"import", cmd_import, .option = "name", .min_args = 1, .max_args = 1, .private_mounts = true},
    {"layers", cmd_layers, .flag = "json", .max_args = 0},
    {"inspect", cmd_inspect, .min_args = 1, .max_args = 1},
    {"rm", cmd_rm, .flag = "force", .min_args = 1, .max_args = 1},
    {"gc", cmd_gc, .max_args = 0},
    {"fsck", cmd_fsck, .max_args = 0},
    {"create", cmd_create, .min_args = 2, .max_args = STACK_MAX_LAYERS + 1, .stop_at_args = true},
    {"stacks", cmd_stacks, .flag = "json", .max_args = 0},
    {"rm-stack", cmd_rm_stack, .min_args = 1, .max_args = 1},
    {"mount", cmd_mount, .flag = "tmp", .min_args = 1, .max_args = 2},
    {"umount", cmd_umount, .min_args = 1, .max_args = 1},
    {"commit", cmd_commit, .option = "name", .min_args = 1, .max_args = 1},
    {"run", .own_parse = cmd_run},
    {"bundle", cmd_bundle, .flag = "tmp", .min_args = 2, .max_args = -1, .stop_at_args = true},
    {"export", .own_parse = cmd_export},
};

/* Options, argument count, store: then the command's own function. */
static int run_command(const struct command *cmd, int argc, char **argv)
{
	struct option longopts[] = {COMMON_LONGOPTS, {0}, {0}, {0}};
	char shortopts[8] = "+hV", *p = shortopts + 3;
	struct cmdline c = {0};
	size_t n = 2;
	int opt, r;

	if (cmd->flag) {
		longopts[n++] = (struct option){cmd->flag, no_argument, NULL, cmd->flag[0]};
		*p++ = cmd->flag[0];
	}
	if (cmd->option) {
		longopts[n++] =
		    (struct option){cmd->option, required_argument, NULL, cmd->option[0]};
		*p++ = cmd->option[0];
		*p++ = ':';
	}
	while ((opt = getopt_long(argc, argv, shortopts + !cmd->stop_at_args, longopts, NULL)) !=
	       -1) {
		if (cmd->flag && opt == cmd->flag[0])
			c.flag = true;
		else if (cmd->option && opt == cmd->option[0])
			c.value = optarg;
		else
			return common_option(opt);
	}
	if ((r = need_args(argc, argv, cmd->min_args, cmd->max_args)) >= 0)
		return r;
	c.args = argv + optind;
	c.nargs = argc - optind;
	if (cmd->private_mounts && (r = scratch_enter()) < 0)
		log_debug("%s: no private mount namespace (%s): extracting to disk", cmd->name,
			  strerror(-r));
	if (open_store(&c.s) < 0)
		return EXIT_OWN;
	r = cmd->fn(&c);
	store_close(&c.s);
	return r;
}

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
		if (commands[i].own_parse)
			return commands[i].own_parse(argc, argv);
		return run_command(&commands[i], argc, argv);
	}
	return usage_error("unknown command '%s'", argv[optind]);
}
