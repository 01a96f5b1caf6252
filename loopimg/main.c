/*
 * loopimg: ext4 images of directory trees, and the loop devices that carry
 * them. A commands[] table dispatches to one function per subcommand; each
 * parses its own options with getopt_long, calls the modules, prints, exits.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/digest.h"
#include "lib/log.h"
#include "lib/progress.h"
#include "lib/macro.h"
#include "loopimg/imgmount.h"
#include "loopimg/info.h"
#include "loopimg/loopdev.h"
#include "loopimg/pack.h"
#include "loopimg/unpack.h"

#define VERSION "0.1"
#define EXIT_USAGE 2

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *help;
};

static const struct command *current;
static char **current_argv; /* for naming a bad option */

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "loopimg: %s%s%s\nTry 'loopimg %s%s--help' for more information.\n",
		current ? current->name : "", current ? ": " : "", msg,
		current ? current->name : "", current ? " " : "");
	return EXIT_USAGE;
}

static int print_help(const struct command *c)
{
	printf("Usage: loopimg %s\n\n%s", c->usage, c->help);
	return 0;
}

/* Parses common -h/-V; returns -1 to go on, or an exit code. */
static int common_option(int opt)
{
	switch (opt) {
	case 'h':
		return print_help(current);
	case 'V':
		printf("loopimg %s\n", VERSION);
		return 0;
	case '?':
		if (optopt)
			return usage_error("invalid option -- '%c'", optopt);
		return usage_error("unrecognized option '%s'", current_argv[optind - 1]);
	}
	return -1;
}

static int need_args(int argc, char **argv, int n)
{
	if (argc - optind < n)
		return usage_error("missing operand");
	if (argc - optind > n)
		return usage_error("extra operand '%s'", argv[optind + n]);
	return 0;
}

/* A command's option without an argument: --name or -c sets bit. */
struct flag_option {
	const char *name;
	char c;
	uint32_t bit;
};

#define MAX_FLAGS 4

/*
 * For a command whose options are all flags (and -h, -V): ORs each given
 * flag's bit into *set, then checks for n operands (one or more when n is
 * negative). Returns -1 to go on, or an exit code.
 */
static int parse_flags(int argc, char **argv, const struct flag_option *flags, size_t nflags, int n,
		       uint32_t *set)
{
	struct option longopts[MAX_FLAGS + 3] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	};
	char shortopts[MAX_FLAGS + 3] = "hV";
	int opt;

	for (size_t i = 0; i < nflags && i < MAX_FLAGS; i++) {
		longopts[i + 2] = (struct option){flags[i].name, no_argument, NULL, flags[i].c};
		shortopts[i + 2] = flags[i].c;
	}
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		size_t i = 0;

		while (i < nflags && flags[i].c != opt)
			i++;
		if (i == nflags)
			return common_option(opt);
		*set |= flags[i].bit;
	}
	if (n < 0)
		return optind < argc ? -1 : usage_error("missing operand");
	return need_args(argc, argv, n) ?: -1;
}

/* For a command whose only options are -h and -V. */
static int parse_plain(int argc, char **argv, int n)
{
	return parse_flags(argc, argv, NULL, 0, n, &(uint32_t){0});
}

static const struct flag_option json_flag[] = {{"json", 'j', 1}};

/* ---- pack ---- */

static int parse_uuid(const char *s, uint8_t out[16])
{
	int n = 0;

	for (const char *p = s; *p; p++) {
		unsigned v;

		if (*p == '-')
			continue;
		if (n == 16 || sscanf(p, "%2x", &v) != 1 || !p[1] || p[1] == '-')
			return -EINVAL;
		out[n++] = v;
		p++;
	}
	return n == 16 ? 0 : -EINVAL;
}

static int source_date_epoch(struct pack_options *o)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	char *end;
	long long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 0)
		return usage_error("SOURCE_DATE_EPOCH '%s': not a number of seconds", s);
	o->tree.clamp = true;
	o->tree.clamp_time = v;
	o->image.fs_time = v ? v : 1;
	return 0;
}

enum { OPT_EXTRA = 0x100, OPT_REPRODUCIBLE, OPT_OWNER_MAP, OPT_ROOT_OWNED, OPT_NO_LOST_FOUND };

static int pack_option(struct pack_options *o, int opt, const char *arg)
{
	int r = 0;

	switch (opt) {
	case 's':
		if (strcmp(arg, "auto"))
			r = pack_parse_size(arg, &o->image.size);
		break;
	case OPT_EXTRA:
		r = pack_parse_percent(arg, &o->image.extra_percent);
		break;
	case 'b':
		r = pack_parse_size(arg, &(uint64_t){0});
		o->image.block_size = r < 0 ? 0 : (unsigned)strtoul(arg, NULL, 10);
		break;
	case 'N':
		r = pack_parse_size(arg, &o->image.inodes);
		break;
	case 'L':
		o->image.label = arg;
		break;
	case 'U':
		r = parse_uuid(arg, o->image.uuid);
		o->image.set_uuid = true;
		break;
	case OPT_REPRODUCIBLE:
		o->image.reproducible = o->tree.reproducible = true;
		break;
	case OPT_OWNER_MAP: {
		struct tree_owner_map *map;

		r = pack_parse_owner_map(arg, &map, &o->tree.nowner_map);
		if (r == 0)
			o->tree.owner_map = map;
		break;
	}
	case OPT_ROOT_OWNED:
		o->tree.root_owned = true;
		break;
	case OPT_NO_LOST_FOUND:
		o->image.no_lost_found = true;
		break;
	case 'f':
		o->force = true;
		break;
	default:
		return common_option(opt);
	}
	return r < 0 ? usage_error("invalid argument '%s'", arg) : -1;
}

static void remove_temp_on_signal(int sig)
{
	const char *tmp = pack_temp_path();

	if (tmp)
		unlink(tmp);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int cmd_pack(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"size", required_argument, NULL, 's'},
	    {"extra", required_argument, NULL, OPT_EXTRA},
	    {"block-size", required_argument, NULL, 'b'},
	    {"inodes", required_argument, NULL, 'N'},
	    {"label", required_argument, NULL, 'L'},
	    {"uuid", required_argument, NULL, 'U'},
	    {"reproducible", no_argument, NULL, OPT_REPRODUCIBLE},
	    {"owner-map", required_argument, NULL, OPT_OWNER_MAP},
	    {"root-owned", no_argument, NULL, OPT_ROOT_OWNED},
	    {"no-lost-found", no_argument, NULL, OPT_NO_LOST_FOUND},
	    {"force", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	struct pack_options o = {.progress = isatty(STDERR_FILENO)};
	int opt, r;

	while ((opt = getopt_long(argc, argv, "s:b:N:L:U:fhV", longopts, NULL)) != -1) {
		r = pack_option(&o, opt, optarg);
		if (r >= 0)
			return r;
	}
	r = need_args(argc, argv, 2);
	if (r)
		return r;
	if (o.image.reproducible && (r = source_date_epoch(&o)))
		return r;
	signal(SIGINT, remove_temp_on_signal);
	signal(SIGTERM, remove_temp_on_signal);
	signal(SIGHUP, remove_temp_on_signal);
	r = pack_run(argv[optind], argv[optind + 1], &o);
	free((void *)o.tree.owner_map);
	return r < 0 ? EXIT_FAILURE : 0;
}

static int cmd_unpack(int argc, char **argv)
{
	int r = parse_plain(argc, argv, 2);

	if (r >= 0)
		return r;
	r = unpack_run(argv[optind], argv[optind + 1], isatty(STDERR_FILENO));
	return r < 0 ? EXIT_FAILURE : 0;
}

/* ---- info ---- */

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_info_json(const char *path, const struct imginfo *i)
{
	printf("{\"path\":");
	json_string(path);
	printf(",\"type\":");
	json_string(i->type);
	printf(",\"label\":");
	json_string(i->label);
	printf(",\"uuid\":");
	json_string(i->uuid);
	printf(",\"size\":%llu", (unsigned long long)i->size);
	if (i->is_ext)
		printf(
		    ",\"block_size\":%u,\"blocks\":%llu,\"free_blocks\":%llu,\"used_bytes\":%llu,"
		    "\"inodes\":%llu,\"free_inodes\":%llu",
		    i->ext.block_size, (unsigned long long)i->ext.blocks,
		    (unsigned long long)i->ext.free_blocks,
		    (unsigned long long)(i->ext.blocks - i->ext.free_blocks) * i->ext.block_size,
		    (unsigned long long)i->ext.inodes, (unsigned long long)i->ext.free_inodes);
	printf("}\n");
}

static void print_info_text(const char *path, const struct imginfo *i)
{
	printf("path:   %s\ntype:   %s\nlabel:  %s\nuuid:   %s\nsize:   %llu\n", path,
	       i->type[0] ? i->type : "unknown", i->label, i->uuid, (unsigned long long)i->size);
	if (!i->is_ext)
		return;
	printf("block size: %u\nblocks: %llu (%llu free)\nused:   %llu\ninodes: %llu (%llu free)\n",
	       i->ext.block_size, (unsigned long long)i->ext.blocks,
	       (unsigned long long)i->ext.free_blocks,
	       (unsigned long long)(i->ext.blocks - i->ext.free_blocks) * i->ext.block_size,
	       (unsigned long long)i->ext.inodes, (unsigned long long)i->ext.free_inodes);
}

static int cmd_info(int argc, char **argv)
{
	struct imginfo info;
	uint32_t json = 0;
	int r = parse_flags(argc, argv, json_flag, ARRAY_SIZE(json_flag), 1, &json);

	if (r >= 0)
		return r;
	r = imginfo_probe(argv[optind], &info);
	if (r < 0) {
		log_errno(r, "info: %s", argv[optind]);
		return EXIT_FAILURE;
	}
	if (json)
		print_info_json(argv[optind], &info);
	else
		print_info_text(argv[optind], &info);
	if (info.truncated) {
		log_error("info: %s: truncated: %llu bytes, its file system needs %llu",
			  argv[optind], (unsigned long long)info.size,
			  (unsigned long long)info.ext.blocks * info.ext.block_size);
		return EXIT_FAILURE;
	}
	return 0;
}

/* ---- loop devices ---- */

static int cmd_attach(int argc, char **argv)
{
	static const struct flag_option options[] = {
	    {"read-only", 'r', LO_FLAGS_READ_ONLY},
	    {"direct-io", 'D', LO_FLAGS_DIRECT_IO},
	    {"autoclear", 'a', LO_FLAGS_AUTOCLEAR},
	};
	uint32_t flags = 0;
	struct loopdev lc;
	int r = parse_flags(argc, argv, options, ARRAY_SIZE(options), 1, &flags);

	if (r >= 0)
		return r;
	loopdev_init(&lc);
	loopdev_set_flags(&lc, flags);
	r = loopdev_set_backing_file(&lc, argv[optind]);
	if (r >= 0)
		r = loopdev_setup(&lc);
	if (r < 0) {
		log_errno(r, "attach: %s", argv[optind]);
		loopdev_deinit(&lc);
		return EXIT_FAILURE;
	}
	printf("%s\n", lc.device);
	fflush(stdout);
	loopdev_deinit(&lc);
	return 0;
}

static int detach_one(const char *arg)
{
	struct stat st;
	unsigned count;
	int r;

	if (stat(arg, &st) < 0)
		return log_errno(-errno, "detach: %s", arg);
	if (S_ISREG(st.st_mode)) {
		r = loopdev_detach_backing(arg, &count);
		if (r < 0)
			return log_errno(r, "detach: %s", arg);
		if (!count) {
			log_error("detach: %s: not attached to any loop device", arg);
			return -ENXIO;
		}
		return 0;
	}
	if (loopdev_check(arg) < 0) {
		log_error("detach: %s: not a loop device", arg);
		return -ENODEV;
	}
	r = loopdev_detach(arg);
	if (r == -ENXIO) {
		log_error("detach: %s: not attached", arg);
		return r;
	}
	return r < 0 ? log_errno(r, "detach: %s", arg) : 0;
}

static int cmd_detach(int argc, char **argv)
{
	int r = parse_plain(argc, argv, -1);

	if (r >= 0)
		return r;
	r = 0;
	for (int i = optind; i < argc; i++)
		if (detach_one(argv[i]) < 0)
			r = EXIT_FAILURE;
	return r;
}

static int cmd_list(int argc, char **argv)
{
	_cleanup_free_ struct loopdev_info *list = NULL;
	uint32_t json = 0;
	size_t n;
	int r = parse_flags(argc, argv, json_flag, ARRAY_SIZE(json_flag), 0, &json);

	if (r >= 0)
		return r;
	r = loopdev_list(&list, &n);
	if (r < 0) {
		log_errno(r, "list");
		return EXIT_FAILURE;
	}
	if (json)
		printf("[");
	else
		printf("%-12s %-8s %-3s %-9s %s\n", "DEVICE", "OFFSET", "RO", "AUTOCLEAR",
		       "BACK-FILE");
	for (size_t i = 0; i < n; i++) {
		const struct loopdev_info *d = &list[i];

		if (!json) {
			printf("%-12s %-8llu %-3d %-9d %s\n", d->device,
			       (unsigned long long)d->offset, d->ro, d->autoclear, d->backing);
			continue;
		}
		printf("%s{\"device\":", i ? "," : "");
		json_string(d->device);
		printf(",\"backing_file\":");
		json_string(d->backing);
		printf(",\"offset\":%llu,\"ro\":%s,\"autoclear\":%s,\"direct_io\":%s}",
		       (unsigned long long)d->offset, d->ro ? "true" : "false",
		       d->autoclear ? "true" : "false", d->direct_io ? "true" : "false");
	}
	if (json)
		printf("]\n");
	return 0;
}

static int cmd_mount(int argc, char **argv)
{
	static const struct flag_option options[] = {{"read-only", 'r', 1}};
	char device[32];
	uint32_t ro = 0;
	int r = parse_flags(argc, argv, options, ARRAY_SIZE(options), 2, &ro);

	if (r >= 0)
		return r;
	r = imgmount_mount(argv[optind], argv[optind + 1], ro, device, sizeof(device));
	if (r < 0)
		return EXIT_FAILURE;
	printf("%s\n", device);
	return 0;
}

static int cmd_umount(int argc, char **argv)
{
	int r = parse_plain(argc, argv, 1);

	if (r >= 0)
		return r;
	return imgmount_umount(argv[optind]) < 0 ? EXIT_FAILURE : 0;
}

/* ---- digest / verify ---- */

static void digest_progress(uint64_t done, uint64_t total, void *opaque)
{
	struct progress *p = opaque;

	p->total = total;
	progress_update(p, done);
}

static int digest_image(const char *path, char *hex)
{
	struct progress p;
	int r;

	progress_init(&p, current->name, 0, true, false);
	r = digest_file(path, hex, digest_progress, &p);
	progress_finish(&p);
	if (r < 0)
		log_errno(r, "%s: %s", current->name, path);
	return r;
}

static int cmd_digest(int argc, char **argv)
{
	char hex[DIGEST_HEX_LEN + 1];
	int r = parse_plain(argc, argv, 1);

	if (r >= 0)
		return r;
	if (digest_image(argv[optind], hex) < 0)
		return EXIT_FAILURE;
	printf("xxh3-128:%s  %s\n", hex, argv[optind]);
	return 0;
}

/* Exit 0 on a match, 1 on a mismatch, 2 when the digest cannot be computed or parsed. */
static int cmd_verify(int argc, char **argv)
{
	char want[DIGEST_HEX_LEN + 1], got[DIGEST_HEX_LEN + 1];
	int r = parse_plain(argc, argv, 2);

	if (r >= 0)
		return r;
	if (!digest_parse(argv[optind + 1], want))
		return usage_error("'%s': not an xxh3-128 digest (32 hex digits)",
				   argv[optind + 1]);
	if (digest_image(argv[optind], got) < 0)
		return EXIT_USAGE;
	if (strcmp(want, got)) {
		log_error("verify: %s: digest mismatch: expected xxh3-128:%s, got xxh3-128:%s",
			  argv[optind], want, got);
		return EXIT_FAILURE;
	}
	printf("%s: OK\n", argv[optind]);
	return 0;
}

static const struct command commands[] = {
    {"pack", cmd_pack, "pack [options] SRC IMG",
     "Write an ext4 image of the directory SRC to IMG (no mount, no loop device).\n\n"
     "  -s, --size SIZE|auto  image size (default auto: computed from SRC)\n"
     "      --extra PCT       free room on top of the computed size, e.g. 20%\n"
     "  -b, --block-size N    1024, 2048 or 4096 (default)\n"
     "  -N, --inodes N        inode count (default: computed)\n"
     "  -L, --label LABEL     file system label\n"
     "  -U, --uuid UUID       file system UUID\n"
     "      --reproducible    same tree, same bytes (honours SOURCE_DATE_EPOCH)\n"
     "      --owner-map MAP   u:FROM:TO,g:FROM:TO,... ids to rewrite\n"
     "      --root-owned      every file owned by 0:0\n"
     "      --no-lost-found   no lost+found in the image root (one in SRC is kept)\n"
     "  -f, --force           replace an existing IMG\n"},
    {"unpack", cmd_unpack, "unpack IMG DIR",
     "Write the tree in IMG into DIR (new or empty), read with libext2fs, no mount.\n"},
    {"info", cmd_info, "info [--json] IMG|DEV",
     "Show the file system type, label, UUID, size and usage of an image or device.\n"},
    {"attach", cmd_attach, "attach [-r] [--direct-io] [--autoclear] IMG",
     "Attach IMG to a free loop device and print the device.\n\n"
     "  -r, --read-only   read-only device\n"
     "  -D, --direct-io   direct I/O to the backing file\n"
     "  -a, --autoclear   free the device when its last user closes it\n"},
    {"detach", cmd_detach, "detach DEV|IMG...",
     "Detach a loop device, or every loop device backed by IMG.\n"},
    {"list", cmd_list, "list [--json]", "List attached loop devices.\n"},
    {"mount", cmd_mount, "mount [-r] IMG DIR",
     "Attach IMG and mount it on DIR; the device is freed again on umount.\n"},
    {"umount", cmd_umount, "umount DIR", "Unmount DIR and release its loop device.\n"},
    {"digest", cmd_digest, "digest IMG", "Print the xxh3-128 digest of IMG.\n"},
    {"verify", cmd_verify, "verify IMG DIGEST",
     "Check IMG against an xxh3-128 digest: exit 0 on a match, 1 on a mismatch.\n"},
};

static int main_usage(FILE *out)
{
	fprintf(out, "Usage: loopimg COMMAND [options] ...\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(out, "  %s\n", commands[i].usage);
	fprintf(out, "\nRun 'loopimg COMMAND --help' for a command's options.\n");
	return out == stdout ? 0 : EXIT_USAGE;
}

int main(int argc, char **argv)
{
	log_init("loopimg");
	if (getenv("LOOPIMG_DEBUG"))
		log_set_level(LOG_LEVEL_DEBUG);
	if (argc < 2)
		return main_usage(stderr);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return main_usage(stdout);
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("loopimg %s\n", VERSION);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		current = &commands[i];
		current_argv = argv + 1;
		opterr = 0; /* one line of our own instead of getopt's */
		return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "loopimg: unknown command '%s'\nTry 'loopimg --help'.\n", argv[1]);
	return EXIT_USAGE;
}
