/* unionfs: option handling, branch set-up, the FUSE session and its signals. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/macro.h"
#include "unionfs/devread.h"
#include "unionfs/handle.h"
#include "unionfs/namei.h"
#include "unionfs/ops.h"
#include "unionfs/options.h"
#include "unionfs/unionfs.h"
#include "unionfs/workdir.h"

#define LONG_TIMEOUT 86400.0
/* Copy-ups and fsyncs that may run at once, each on its own thread. */
#define SLOW_LANE_WORKERS 16
#define REVAL_TIMEOUT 1.0

static void usage(void)
{
	printf("Usage: unionfs -o br=DIR=rw:DIR=ro[:...] [options] MOUNTPOINT\n"
	       "       unionfs [options] DIR=RW:DIR=RO[:...] MOUNTPOINT\n"
	       "       unionfs -o lowerdir=DIR[:DIR...][,upperdir=DIR,workdir=DIR] [options] "
	       "MOUNTPOINT\n"
	       "\n"
	       "Mounts a union of directories: the first branch holding a name wins,\n"
	       "whiteouts and opaque directories hide lower names, directories merge.\n"
	       "\n"
	       "Branches:\n"
	       "  -o br=DIR[=rw|ro]:...   aufs style, top first; without a mode the first is rw\n"
	       "  DIR[=RW|RO]:...         unionfs-fuse style, top first; without a mode RO\n"
	       "  -o lowerdir=L1:L2,upperdir=U,workdir=W\n"
	       "                          overlayfs style, lowerdir top-most first\n"
	       "Options:\n"
	       "  -o udba=none|reval      branches never change under the mount (default), or may\n"
	       "  -o whiteout=overlay|aufs  the format of whiteouts written\n"
	       "  -o volatile             skip fsync (throwaway systems)\n"
	       "  -o passthrough=on|off   the kernel reads and writes open files in their\n"
	       "                          branch directly (default on; needs Linux 6.9+ and root)\n"
	       "  -o uring=on|off         requests through io_uring, one queue per CPU, when the\n"
	       "                          kernel offers it (Linux 6.14+, fuse.enable_uring=1);\n"
	       "                          default off\n"
	       "  -o file_fds=N           files of the writable branch that keep an fd; past N\n"
	       "                          they are reopened by file handle (default: half the\n"
	       "                          fd limit)\n"
	       "  -o nodev,nosuid         as root, dev and suid are on by default\n"
	       "  -o ro                   read-only mount (also when no branch is writable)\n"
	       "  -o allow_other          let other users in (permissions are always checked)\n"
	       "  accepted for compatibility: cow, hide_meta_files, max_files=N, statfs_omit_ro,\n"
	       "  redirect_dir=, index=, xino=, metacopy=\n"
	       "  -f                      stay in the foreground\n"
	       "  -d                      debug output (implies -f)\n"
	       "  -s                      single-threaded\n"
	       "  -h, --help              this help\n"
	       "  -V, --version           version\n"
	       "See unionfs(8).\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "unionfs: %s\nTry 'unionfs --help' for more information.\n", line);
	return 1;
}

static const char *branch_error(int r)
{
	switch (r) {
	case -EEXIST:
		return "given twice as a branch";
	case -EINVAL:
		return "only the first branch may be writable";
	case -E2BIG:
		return "too many branches (at most 255)";
	default:
		return strerror(-r);
	}
}

static int open_branches(struct unionfs *fs, struct unionfs_options *o)
{
	struct branch_spec *specs = NULL;
	int n = options_branches(o, &specs), r = 0;

	if (n < 0)
		return fail("%s", o->error);
	for (int i = 0; i < n && r == 0; i++) {
		int e = branch_table_add(&fs->branches, specs[i].path, specs[i].writable);
		if (e < 0)
			r = fail("%s: %s", specs[i].path, branch_error(e));
	}
	branch_specs_free(specs, n);
	return r;
}

static int check_mountpoint(struct unionfs *fs, const char *mnt)
{
	struct stat st;
	int inside;

	if (stat(mnt, &st) < 0)
		return fail("%s: %s", mnt, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("%s: %s", mnt, strerror(ENOTDIR));
	inside = branch_table_find_containing(&fs->branches, mnt);
	if (inside >= 0)
		return fail("%s: mount point is inside branch %s", mnt,
			    fs->branches.v[inside].path);
	return 0;
}

static int check_workdir(struct unionfs *fs, const char *workdir)
{
	struct stat st;

	if (!workdir)
		return 0;
	if (stat(workdir, &st) < 0)
		return fail("%s: %s", workdir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("%s: %s", workdir, strerror(ENOTDIR));
	if (branch_table_has_upper(&fs->branches) && st.st_dev != fs->branches.v[0].dev)
		return fail("%s: workdir must be on the same file system as upperdir", workdir);
	return 0;
}

static void configure(struct unionfs *fs, const struct unionfs_options *o)
{
	bool reval = o->udba && strcmp(o->udba, "reval") == 0;

	fs->udba_reval = reval;
	fs->entry_timeout = fs->attr_timeout = fs->negative_timeout =
	    reval ? REVAL_TIMEOUT : LONG_TIMEOUT;
	fs->read_only = o->read_only || !branch_table_has_upper(&fs->branches);
	fs->whiteout_format =
	    o->whiteout && strcmp(o->whiteout, "aufs") == 0 ? WHITEOUT_AUFS : WHITEOUT_OVERLAY;
	fs->volatile_mode = o->volatile_mode;
	fs->metacopy = o->metacopy && strcmp(o->metacopy, "on") == 0;
	fs->debug = o->debug;
	fs->privileged = geteuid() == 0;
	fs->uring.wanted = o->uring && strcmp(o->uring, "on") == 0;
	fs->pt.wanted =
	    !(o->passthrough && strcmp(o->passthrough, "off") == 0) && passthrough_capable();
}

/*
 * libfuse's arguments: our defaults first, so the user's own options override
 * them, and ro last when nothing is writable, so mount.fuse3's "rw" cannot.
 */
static int build_fuse_args(struct unionfs *fs, struct unionfs_options *o, struct fuse_args *args)
{
	const char *fsname = options_fsname(o);
	char opts[512];
	int r = 0;

	/* A comma in fsname would split the option string. */
	snprintf(opts, sizeof(opts), "%s%s,subtype=unionfs,default_permissions%s",
		 strchr(fsname, ',') ? "" : "fsname=", strchr(fsname, ',') ? "" : fsname,
		 geteuid() == 0 ? ",dev,suid" : "");
	r |= fuse_opt_add_arg(args, o->fuse_args.argv[0]);
	r |= fuse_opt_add_arg(args, "-o");
	r |= fuse_opt_add_arg(args, opts[0] == ',' ? opts + 1 : opts);
	for (int i = 1; i < o->fuse_args.argc; i++)
		r |= fuse_opt_add_arg(args, o->fuse_args.argv[i]);
	if (fs->read_only)
		r |= fuse_opt_add_arg(args, "-oro");
	r |= fuse_opt_add_arg(args, options_mountpoint(o));
	return r ? -ENOMEM : 0;
}

/* The most fds a process may have: fs.nr_open, which root may raise its hard limit to. */
static rlim_t max_open_files(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/fs/nr_open", "re");
	unsigned long n = 0;

	if (!f || fscanf(f, "%lu", &n) != 1)
		return 0;
	return (rlim_t)n;
}

static void raise_fd_limit(void)
{
	rlim_t most = geteuid() == 0 ? max_open_files() : 0;
	struct rlimit rl, raised;

	/* Directories and writable objects hold an fd each: allow as many as we may. */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	raised =
	    (struct rlimit){.rlim_cur = MAX(most, rl.rlim_max), .rlim_max = MAX(most, rl.rlim_max)};
	/* Without CAP_SYS_RESOURCE (containers) the hard limit stays: use all of it. */
	if (setrlimit(RLIMIT_NOFILE, &raised) < 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Writable-branch files past -o file_fds, by default half the fd limit, are
 * kept by handle (handle.h): the rest is left to directories and open files.
 */
static void keep_files_by_handle(struct unionfs *fs, const struct unionfs_options *o)
{
	struct rlimit rl;

	if (fs->read_only || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (!handle_setup(fs->branches.v[0].fd, o->file_fds_set ? o->file_fds : rl.rlim_cur / 2))
		log_debug("files of the writable branch keep an fd each: no file handles there");
}

/*
 * The daemon writes for its callers: without CAP_SYS_RESOURCE their writes
 * count against their quotas and stay out of the root reserve, as they
 * would without the union (EDQUOT and ENOSPC reach them). Dropped after the
 * fd limit is raised, which needs it.
 */
static void drop_quota_override(void)
{
	struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	unsigned i = CAP_TO_INDEX(CAP_SYS_RESOURCE);

	if (syscall(SYS_capget, &head, data) < 0)
		return;
	data[i].effective &= ~CAP_TO_MASK(CAP_SYS_RESOURCE);
	data[i].permitted &= ~CAP_TO_MASK(CAP_SYS_RESOURCE);
	data[i].inheritable &= ~CAP_TO_MASK(CAP_SYS_RESOURCE);
	if (syscall(SYS_capset, &head, data) < 0)
		log_debug("cannot drop CAP_SYS_RESOURCE: %s", strerror(errno));
}

static int run_session(struct unionfs *fs, struct fuse_args *args)
{
	struct fuse_cmdline_opts cmd = {0};
	struct fuse_session *se;
	int r = 1;

	if (fuse_parse_cmdline(args, &cmd) != 0)
		return fail("invalid arguments");
	se = fuse_session_new(args, &unionfs_ops, sizeof(unionfs_ops), fs);
	if (!se) {
		r = fail("cannot start the FUSE session");
		goto out_cmd;
	}
	fs->se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cmd.mountpoint) != 0) {
		r = fail("%s: cannot mount", cmd.mountpoint);
		goto out_signals;
	}
	if (passthrough_install(fs, se) < 0) {
		r = fail("%s: cannot set up passthrough", cmd.mountpoint);
		goto out_unmount;
	}
	/* Only now, with the mount live, does the caller get its exit status. */
	fuse_daemonize(cmd.foreground);
	/*
	 * One thread answers the requests; those that may take long go to the
	 * slow lane (lane.h), unless -s asks for a single thread.
	 */
	lane_init(&fs->lane, SLOW_LANE_WORKERS, !cmd.singlethread);
	if (devread_block_signals() < 0) {
		r = fail("cannot block signals");
		goto out_unmount;
	}
	r = fuse_session_loop(se);
	/* No new requests from the queues, then no replies from the lane, then free the queues. */
	uring_stop(&fs->uring);
	lane_stop(&fs->lane);
	uring_free(&fs->uring);
	r = r < 0 ? 1 : 0;
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_cmd:
	free(cmd.mountpoint);
	return r;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct unionfs_options o;
	struct unionfs fs = {
	    .work_fd = -EBADF, .index_fd = -EBADF, .rename_lock = PTHREAD_MUTEX_INITIALIZER};
	int r;

	log_init("unionfs");
	r = options_parse(argc, argv, &o);
	if (o.show_help) {
		usage();
		r = 0;
		goto out;
	}
	if (o.show_version) {
		printf("unionfs (union-tools) %s, libfuse %s\n", UNIONFS_VERSION,
		       fuse_pkgversion());
		r = 0;
		goto out;
	}
	if (r < 0) {
		r = fail("%s", o.error);
		goto out;
	}
	if (o.debug)
		log_set_level(LOG_LEVEL_DEBUG);
	r = open_branches(&fs, &o);
	if (r == 0)
		r = check_mountpoint(&fs, options_mountpoint(&o));
	if (r == 0)
		r = check_workdir(&fs, o.workdir);
	if (r != 0)
		goto out;
	configure(&fs, &o);
	/* Modes come with the caller's umask applied by the kernel: ours must add nothing. */
	umask(0);
	if (!fs.read_only && (r = workdir_setup(&fs, o.workdir)) < 0) {
		r = fail("%s: cannot set up the work dir: %s",
			 o.workdir ? o.workdir : fs.branches.v[0].path, strerror(-r));
		goto out;
	}
	raise_fd_limit();
	keep_files_by_handle(&fs, &o);
	drop_quota_override();
	if (node_table_init(&fs.nodes) < 0 || namei_make_root(&fs) < 0 ||
	    build_fuse_args(&fs, &o, &args) < 0) {
		r = fail("%s", strerror(ENOMEM));
		goto out;
	}
	r = run_session(&fs, &args);
	whiteout_drop_shared(&fs);
	node_free(fs.root);
	node_table_destroy(&fs.nodes);
	handle_teardown();
out:
	fuse_opt_free_args(&args);
	branch_table_free(&fs.branches);
	closep(&fs.work_fd);
	closep(&fs.index_fd);
	options_free(&o);
	return r;
}
