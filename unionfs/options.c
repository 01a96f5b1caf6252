/* Option parsing in the aufs, unionfs-fuse and overlayfs styles. */
#include "unionfs/options.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/macro.h"

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_DEBUG,
	KEY_KEEP,
	KEY_IGNORE,
	KEY_RO,
	KEY_NODEV,
	KEY_NOSUID,
};

#define OPT(t, m, v)                                                                               \
	{                                                                                          \
		t, offsetof(struct unionfs_options, m), v                                          \
	}

static const struct fuse_opt option_table[] = {
    OPT("br=%s", br, 0),
    OPT("dirs=%s", br, 0), /* aufs's older spelling */
    OPT("lowerdir=%s", lowerdir, 0),
    OPT("upperdir=%s", upperdir, 0),
    OPT("workdir=%s", workdir, 0),
    OPT("udba=%s", udba, 0),
    OPT("whiteout=%s", whiteout, 0),
    OPT("metacopy=%s", metacopy, 0),
    OPT("passthrough=%s", passthrough, 0),
    OPT("uring=%s", uring, 0),
    OPT("redirect_dir=%s", redirect_dir, 0),
    OPT("index=%s", index, 0),
    OPT("xino=%s", xino, 0),
    OPT("max_files=%s", max_files_str, 0),
    OPT("file_fds=%s", file_fds_str, 0),
    OPT("volatile", volatile_mode, 1),
    OPT("cow", cow, 1),
    OPT("hide_meta_files", hide_meta_files, 1),
    OPT("statfs_omit_ro", statfs_omit_ro, 1),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_KEY("-f", KEY_KEEP),
    FUSE_OPT_KEY("-s", KEY_KEEP),
    FUSE_OPT_KEY("ro", KEY_RO),
    FUSE_OPT_KEY("nodev", KEY_NODEV),
    FUSE_OPT_KEY("nosuid", KEY_NOSUID),
    /* What mount(8) and fstab add that means nothing to a FUSE mount. */
    FUSE_OPT_KEY("defaults", KEY_IGNORE),
    FUSE_OPT_KEY("auto", KEY_IGNORE),
    FUSE_OPT_KEY("noauto", KEY_IGNORE),
    FUSE_OPT_KEY("nofail", KEY_IGNORE),
    FUSE_OPT_KEY("_netdev", KEY_IGNORE),
    FUSE_OPT_KEY("user", KEY_IGNORE),
    FUSE_OPT_KEY("users", KEY_IGNORE),
    FUSE_OPT_KEY("nouser", KEY_IGNORE),
    FUSE_OPT_KEY("userxattr", KEY_IGNORE),
    FUSE_OPT_END,
};

/* Options libfuse itself understands (mount, session and command line), passed on unchanged. */
static const char *const libfuse_options[] = {
    "allow_other", "allow_root",    "auto_unmount", "blkdev",	"default_permissions",
    "rw",	   "suid",	    "dev",	    "exec",	"noexec",
    "async",	   "sync",	    "atime",	    "noatime",	"diratime",
    "nodiratime",  "lazytime",	    "nolazytime",   "relatime", "norelatime",
    "strictatime", "nostrictatime", "dirsync",	    "clone_fd",
};
static const char *const libfuse_prefixes[] = {
    "fsname=",	  "subtype=",	 "max_read=",	 "blksize=",	      "context=",
    "fscontext=", "defcontext=", "rootcontext=", "max_idle_threads=", "max_threads=",
};

static void set_error(struct unionfs_options *o, const char *fmt, ...)
{
	va_list ap;

	if (o->error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(o->error, sizeof(o->error), fmt, ap);
	va_end(ap);
}

static bool is_libfuse_option(const char *arg)
{
	for (size_t i = 0; i < ARRAY_SIZE(libfuse_options); i++)
		if (strcmp(arg, libfuse_options[i]) == 0)
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(libfuse_prefixes); i++)
		if (strncmp(arg, libfuse_prefixes[i], strlen(libfuse_prefixes[i])) == 0)
			return true;
	return false;
}

static int process_arg(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct unionfs_options *o = data;

	switch (key) {
	case KEY_HELP:
		o->show_help = 1;
		return 0;
	case KEY_VERSION:
		o->show_version = 1;
		return 0;
	case KEY_DEBUG:
		o->debug = 1;
		return 1;
	case KEY_KEEP:
		return 1;
	case KEY_IGNORE:
		return 0;
	case KEY_RO:
		o->read_only = 1;
		return 1;
	case KEY_NODEV:
		o->nodev = 1;
		return 1;
	case KEY_NOSUID:
		o->nosuid = 1;
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		if (o->npositional >= (int)ARRAY_SIZE(o->positional)) {
			set_error(o, "too many arguments: '%s'", arg);
			return 0;
		}
		o->positional[o->npositional++] = strdup(arg);
		return 0;
	case FUSE_OPT_KEY_OPT:
		if (strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0)
			return 0; /* fstab's userspace annotations */
		if (is_libfuse_option(arg))
			return 1;
		if (arg[0] == '-')
			set_error(o, "unknown option '%s'", arg);
		else
			set_error(o, "unknown mount option '%s'", arg);
		return 0;
	}
	return 1;
}

static bool value_in(const char *value, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (strcmp(value, *allowed) == 0)
			return true;
	return false;
}

static void check_value(struct unionfs_options *o, const char *name, const char *value,
			const char *const *allowed)
{
	if (value && !value_in(value, allowed))
		set_error(o, "invalid value '%s' for option '%s'", value, name);
}

/* A decimal count option: whether it was given (and valid). */
static bool check_count(struct unionfs_options *o, const char *name, const char *value,
			unsigned *out)
{
	char *end;
	unsigned long n;

	if (!value)
		return false;
	n = strtoul(value, &end, 10);
	if (!*value || *end || n > UINT_MAX || value[0] == '-') {
		set_error(o, "invalid value '%s' for option '%s'", value, name);
		return false;
	}
	*out = (unsigned)n;
	return true;
}

static void check_values(struct unionfs_options *o)
{
	static const char *const on_off[] = {"on", "off", NULL};
	static const char *const udba[] = {"none", "reval", NULL};
	static const char *const whiteout[] = {"overlay", "aufs", NULL};
	static const char *const redirect[] = {"on", "off", "follow", "nofollow", NULL};
	static const char *const xino[] = {"on", "off", "auto", NULL};

	check_value(o, "udba", o->udba, udba);
	check_value(o, "whiteout", o->whiteout, whiteout);
	check_value(o, "metacopy", o->metacopy, on_off);
	check_value(o, "passthrough", o->passthrough, on_off);
	check_value(o, "uring", o->uring, on_off);
	check_value(o, "redirect_dir", o->redirect_dir, redirect);
	check_value(o, "index", o->index, on_off);
	check_value(o, "xino", o->xino, xino);
	check_count(o, "max_files", o->max_files_str, &o->max_files);
	o->file_fds_set = check_count(o, "file_fds", o->file_fds_str, &o->file_fds);
}

int options_parse(int argc, char **argv, struct unionfs_options *o)
{
	*o = (struct unionfs_options){0};
	o->fuse_args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&o->fuse_args, o, option_table, process_arg) < 0) {
		set_error(o, "invalid arguments");
		return -EINVAL;
	}
	check_values(o);
	return o->error[0] ? -EINVAL : 0;
}

void options_free(struct unionfs_options *o)
{
	char **strings[] = {&o->br,    &o->lowerdir,	&o->upperdir,	   &o->workdir,
			    &o->udba,  &o->whiteout,	&o->metacopy,	   &o->redirect_dir,
			    &o->index, &o->xino,	&o->max_files_str, &o->passthrough,
			    &o->uring, &o->file_fds_str};

	for (size_t i = 0; i < ARRAY_SIZE(strings); i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
	for (int i = 0; i < o->npositional; i++)
		free(o->positional[i]);
	o->npositional = 0;
	fuse_opt_free_args(&o->fuse_args);
}

void branch_specs_free(struct branch_spec *v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

/* Splits at ':' honouring overlayfs's "\:" escape; returns the next element (modified in place). */
static char *next_element(char **cursor)
{
	char *start = *cursor, *in = start, *out = start;

	if (!start)
		return NULL;
	for (; *in && *in != ':'; in++) {
		if (*in == '\\' && in[1])
			in++;
		*out++ = *in;
	}
	*cursor = *in ? in + 1 : NULL;
	*out = '\0';
	return start;
}

/* "PATH=MODE": aufs modes rw/ro/rr (with +wh-style suffixes), case-insensitive. */
static int split_mode(char *element, int *writable)
{
	char *eq = strrchr(element, '=');
	char *plus;

	*writable = -1;
	if (!eq)
		return 0;
	*eq = '\0';
	plus = strchr(eq + 1, '+');
	if (plus)
		*plus = '\0';
	if (strcasecmp(eq + 1, "rw") == 0)
		*writable = 1;
	else if (strcasecmp(eq + 1, "ro") == 0 || strcasecmp(eq + 1, "rr") == 0)
		*writable = 0;
	else
		return -EINVAL;
	return 0;
}

static int append_spec(struct branch_spec **v, int *n, const char *path, bool writable)
{
	struct branch_spec *grown = realloc(*v, (*n + 1) * sizeof(**v));

	if (!grown)
		return -ENOMEM;
	*v = grown;
	grown[*n].path = strdup(path);
	if (!grown[*n].path)
		return -ENOMEM;
	grown[*n].writable = writable;
	(*n)++;
	return 0;
}

/* aufs and unionfs-fuse: "DIR[=MODE]:DIR[=MODE]..."; default_first_rw picks aufs's default. */
static int parse_branch_list(struct unionfs_options *o, const char *list, bool default_first_rw,
			     struct branch_spec **out)
{
	_cleanup_free_ char *copy = strdup(list);
	struct branch_spec *v = NULL;
	char *cursor = copy, *element;
	int n = 0, writable, r = -ENOMEM;

	if (!copy)
		return -ENOMEM;
	while ((element = next_element(&cursor))) {
		if (!*element)
			continue;
		if (split_mode(element, &writable) < 0) {
			set_error(o, "%s: unknown branch mode (use rw or ro)", element);
			r = -EINVAL;
			goto fail;
		}
		if (writable < 0)
			writable = default_first_rw && n == 0;
		if (!*element)
			continue;
		r = append_spec(&v, &n, element, writable);
		if (r < 0)
			goto fail;
	}
	*out = v;
	return n;
fail:
	branch_specs_free(v, n);
	return r;
}

/* overlayfs: upperdir first (writable), then lowerdir's entries, top-most first. */
static int parse_overlay(struct unionfs_options *o, struct branch_spec **out)
{
	_cleanup_free_ char *copy = strdup(o->lowerdir);
	struct branch_spec *v = NULL;
	char *cursor = copy, *element;
	int n = 0, r = -ENOMEM;

	if (!copy)
		return -ENOMEM;
	if (o->upperdir && (r = append_spec(&v, &n, o->upperdir, true)) < 0)
		goto fail;
	while ((element = next_element(&cursor))) {
		if (!*element) {
			set_error(
			    o,
			    "lowerdir: empty directory name (data-only layers are not supported)");
			r = -EINVAL;
			goto fail;
		}
		r = append_spec(&v, &n, element, false);
		if (r < 0)
			goto fail;
	}
	*out = v;
	return n;
fail:
	branch_specs_free(v, n);
	return r;
}

static int check_style(struct unionfs_options *o)
{
	int styles = !!o->br + !!o->lowerdir;

	if (styles > 1) {
		set_error(o, "give branches either with br= or with lowerdir=, not both");
		return -EINVAL;
	}
	if (o->upperdir && !o->lowerdir) {
		set_error(o, "upperdir= needs lowerdir=");
		return -EINVAL;
	}
	if (o->upperdir && !o->workdir) {
		set_error(o, "upperdir= needs workdir= (as with overlayfs)");
		return -EINVAL;
	}
	if (styles == 0 && o->npositional < 2) {
		set_error(o, o->npositional == 0 ? "no branches and no mount point given"
						 : "no branches given");
		return -EINVAL;
	}
	if (o->npositional == 0) {
		set_error(o, "no mount point given");
		return -EINVAL;
	}
	if (o->npositional > 2) {
		set_error(o, "too many arguments: '%s'", o->positional[2]);
		return -EINVAL;
	}
	return 0;
}

int options_branches(struct unionfs_options *o, struct branch_spec **out)
{
	int n, r = check_style(o);

	if (r < 0)
		return r;
	if (o->br)
		n = parse_branch_list(o, o->br, true, out);
	else if (o->lowerdir)
		n = parse_overlay(o, out);
	else
		n = parse_branch_list(o, o->positional[0], false, out);
	if (n == 0) {
		free(*out);
		set_error(o, "empty branch list");
		return -EINVAL;
	}
	if (n == -ENOMEM)
		set_error(o, "out of memory");
	return n;
}

const char *options_mountpoint(const struct unionfs_options *o)
{
	return o->npositional ? o->positional[o->npositional - 1] : NULL;
}

const char *options_fsname(const struct unionfs_options *o)
{
	/* With -o br=/lowerdir=, a first argument is the SOURCE mount(8) passes: just a name. */
	if (o->npositional == 2 && (o->br || o->lowerdir))
		return o->positional[0];
	return "unionfs";
}
