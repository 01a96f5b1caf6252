/*
 * Stack mounts. Every step is undone in reverse on failure (goto labels would
 * not fit a loop over layers, so a small undo routine walks what was done).
 * The unionfs daemon keeps fds on the lower file systems until it has seen
 * the unmount, so lower umounts are retried briefly on EBUSY.
 */
#include "layerctl/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "layerctl/layer.h"
#include "layerctl/stack.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "loopimg/imgmount.h"
#include "loopimg/loopdev.h"

struct stack_mount {
	const char *name; /* the stack */
	const char
	    *key;    /* its mount: run/KEY.json, run/KEY/ (the name, or NAME@PID for a run --tmp) */
	bool by_run; /* made by layerctl run, for the last run out to undo */
	char *run_dir; /* ROOT/run/NAME */
	char *root;
	size_t nlowers;
	char lowers[STACK_MAX_LAYERS][PATH_MAX];
	char devices[STACK_MAX_LAYERS][64];
	bool tmpfs;
	bool union_mounted;
};

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}, NULL);
}

static int is_mount_point(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) < 0)
		return -errno;
	return !!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Unmounts path, waiting up to 10 s for a busy mount (a daemon still closing its fds). */
static int umount_retry(const char *path)
{
	for (int i = 0; i < 1000; i++) {
		if (umount2(path, UMOUNT_NOFOLLOW) == 0)
			return 0;
		if (errno == EINVAL || errno == ENOENT)
			return 0; /* not mounted (any more) */
		if (errno != EBUSY)
			return -errno;
		sleep_ms(10);
	}
	return -EBUSY;
}

/* Autoclear frees the device at the last umount, but asynchronously: wait for it. */
static void wait_loop_released(const char *device)
{
	struct loopdev_info info;

	for (int i = 0; device[0] && i < 500; i++) {
		if (loopdev_get_info(device, &info) < 0)
			return;
		sleep_ms(10);
	}
}

static int union_path(char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	/* Next to our own binary, never through PATH: the pair is built and shipped together. */
	if ((size_t)snprintf(buf, size, "%s/unionfs", dirname(exe)) >= size)
		return -ENAMETOOLONG;
	return 0;
}

/* The unionfs options; upper and work NULL for a read-only union of the lowers. */
static int build_options(struct stack_mount *m, const char *upper, const char *work, char **out)
{
	size_t size = (upper ? strlen(upper) + strlen(work) : 0) + 64;
	char *opts, *p;

	for (size_t i = 0; i < m->nlowers; i++)
		size += strlen(m->lowers[i]) + 1;
	opts = p = malloc(size);
	if (!opts)
		return -ENOMEM;
	p += sprintf(p, "lowerdir=");
	for (size_t i = m->nlowers; i-- > 0;)
		p += sprintf(p, "%s%s", m->lowers[i], i ? ":" : "");
	if (upper)
		sprintf(p, ",upperdir=%s,workdir=%s", upper, work);
	*out = opts;
	return 0;
}

static int run_unionfs(const char *opts, const char *mnt)
{
	char exe[PATH_MAX];
	int status, r = union_path(exe, sizeof(exe));
	pid_t pid;

	if (r < 0)
		return r;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* Our stdout carries only the rootfs path. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl(exe, "unionfs", "-o", opts, mnt, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return -EIO;
	for (int i = 0; i < 500; i++) {
		if (is_mount_point(mnt) > 0)
			return 0;
		sleep_ms(10);
	}
	return -ETIMEDOUT;
}

static int mount_lowers(struct store *s, struct stack_mount *m, const char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *img = layer_image_path(s, ids[i]);
		char *dir = m->lowers[i];
		int r;

		if (!img)
			return -ENOMEM;
		snprintf(dir, PATH_MAX, "%s/l%zu", m->run_dir, i);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return log_errno(-errno, "mount: %s", dir);
		r = imgmount_mount(img, dir, true, m->devices[i], sizeof(m->devices[i]));
		if (r < 0) {
			rmdir(dir);
			return r;
		}
		m->nlowers = i + 1;
	}
	return 0;
}

static int mount_tmpfs_upper(struct stack_mount *m, char *upper, char *work)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/tmp", m->run_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		return log_errno(-errno, "mount: tmpfs on %s", dir);
	m->tmpfs = true;
	if (snprintf(upper, PATH_MAX, "%s/upper", dir) >= PATH_MAX ||
	    snprintf(work, PATH_MAX, "%s/work", dir) >= PATH_MAX)
		return -ENAMETOOLONG;
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0)
		return -errno;
	return 0;
}

/* Undoes whatever m says was done, newest first; returns the first error. */
static int undo(struct stack_mount *m)
{
	char dir[PATH_MAX];
	int r = 0, k;

	if (m->union_mounted && (k = umount_retry(m->root)) < 0)
		r = log_errno(k, "umount: %s", m->root);
	for (size_t i = m->nlowers; i-- > 0;) {
		k = umount_retry(m->lowers[i]);
		if (k < 0) {
			r = r ?: log_errno(k, "umount: %s", m->lowers[i]);
			continue;
		}
		wait_loop_released(m->devices[i]);
		rmdir(m->lowers[i]);
	}
	snprintf(dir, sizeof(dir), "%s/tmp", m->run_dir);
	if (m->tmpfs && (k = umount_retry(dir)) < 0)
		r = r ?: log_errno(k, "umount: %s", dir);
	rmdir(dir);
	return r;
}

static int write_state(struct store *s, struct stack_mount *m)
{
	struct json_object *o = json_object_new_object(), *lowers = json_object_new_array();
	char rel[128];
	int r;

	if (!o || !lowers) {
		json_object_put(o);
		json_object_put(lowers);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->nlowers; i++) {
		struct json_object *l = json_object_new_object();

		json_object_object_add(l, "dir", json_object_new_string(m->lowers[i]));
		json_object_object_add(l, "device", json_object_new_string(m->devices[i]));
		json_object_array_add(lowers, l);
	}
	json_object_object_add(o, "root", json_object_new_string(m->root));
	json_object_object_add(o, "tmp", json_object_new_boolean(m->tmpfs));
	json_object_object_add(o, "lowers", lowers);
	if (m->by_run)
		json_object_object_add(o, "by_run", json_object_new_boolean(true));
	snprintf(rel, sizeof(rel), "run/%s.json", m->key);
	r = store_write_json(s, rel, o);
	json_object_put(o);
	return r;
}

static int prepare(struct store *s, struct stack_mount *m, const char *mnt)
{
	int r;

	m->run_dir = store_path(s, "run/%s", m->key);
	if (!m->run_dir)
		return -ENOMEM;
	if (strpbrk(m->run_dir, ":,"))
		return log_errno(-EINVAL, "mount: %s: ':' or ',' in the store path", s->root);
	if (mkdir(m->run_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	m->root = mnt ? realpath(mnt, NULL) : store_path(s, "run/%s/root", m->key);
	if (!m->root)
		return mnt ? log_errno(-errno, "mount: %s", mnt) : -ENOMEM;
	if (!mnt && mkdir(m->root, 0755) < 0 && errno != EEXIST)
		return -errno;
	r = is_mount_point(m->root);
	if (r > 0)
		return log_errno(-EBUSY, "mount: %s", m->root);
	return r < 0 ? log_errno(r, "mount: %s", m->root) : 0;
}

static int mount_all(struct store *s, struct stack_mount *m, bool tmp)
{
	const char *ids[STACK_MAX_LAYERS];
	_cleanup_free_ char *opts = NULL;
	char upper[PATH_MAX], work[PATH_MAX];
	struct json_object *stack;
	size_t n;
	int r = stack_load(s, m->name, &stack);

	if (r < 0)
		return log_errno(r, "mount: stack %s", m->name);
	n = stack_layers(stack, ids, STACK_MAX_LAYERS);
	r = mount_lowers(s, m, ids, n);
	json_object_put(stack);
	if (r < 0)
		return r;
	if (tmp) {
		r = mount_tmpfs_upper(m, upper, work);
	} else {
		snprintf(upper, sizeof(upper), "%s/stacks/%s/upper", s->root, m->name);
		snprintf(work, sizeof(work), "%s/stacks/%s/work", s->root, m->name);
		r = stack_prepare_upper(s, m->name);
	}
	if (r == 0)
		r = build_options(m, upper, work, &opts);
	if (r == 0)
		r = run_unionfs(opts, m->root);
	if (r < 0)
		return log_errno(r, "mount: unionfs on %s", m->root);
	m->union_mounted = true;
	return write_state(s, m);
}

/* "NAME" or "NAME@PID" */
static bool key_valid(const char *key)
{
	char name[72];
	const char *at = strchr(key, '@');

	if (!at)
		return stack_name_valid(key);
	if ((size_t)(at - key) >= sizeof(name) || !at[1] ||
	    strspn(at + 1, "0123456789") != strlen(at + 1))
		return false;
	snprintf(name, sizeof(name), "%.*s", (int)(at - key), key);
	return stack_name_valid(name);
}

static int mount_stack_as(struct store *s, const char *name, const char *key, const char *mnt,
			  bool tmp, bool by_run, char **root)
{
	_cleanup_free_ struct stack_mount *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	if (!stack_name_valid(name))
		return log_errno(-EINVAL, "mount: '%s'", name);
	m->name = name;
	m->key = key;
	m->by_run = by_run;
	r = mount_is_mounted(s, key, NULL);
	if (r != 0)
		return r < 0 ? r : log_errno(-EBUSY, "mount: stack %s: already mounted", name);
	/* A mount killed half way left no state file, maybe mounts: clear them first. */
	r = mount_unmount(s, key);
	if (r < 0 && r != -ENOENT)
		return log_errno(r, "mount: %s: clearing what a killed mount left", name);
	r = prepare(s, m, mnt);
	if (r == 0)
		r = mount_all(s, m, tmp);
	if (r < 0) {
		undo(m);
		/* Only the dirs prepare made, and only when empty. */
		if (!mnt && m->root)
			rmdir(m->root);
		if (m->run_dir)
			rmdir(m->run_dir);
	} else {
		*root = TAKE_PTR(m->root);
	}
	free(m->root);
	free(m->run_dir);
	return r;
}

int mount_stack(struct store *s, const char *name, const char *mnt, bool tmp, char **root)
{
	return mount_stack_as(s, name, name, mnt, tmp, false, root);
}

int mount_stack_for_run(struct store *s, const char *name, bool private_tmp, char *key, size_t size,
			char **root)
{
	if ((size_t)snprintf(key, size, private_tmp ? "%s@%d" : "%s", name, (int)getpid()) >= size)
		return -ENAMETOOLONG;
	return mount_stack_as(s, name, key, NULL, private_tmp, true, root);
}

static int load_state(struct store *s, const char *key, struct json_object **out)
{
	char rel[128];

	if (!key_valid(key))
		return -EINVAL;
	snprintf(rel, sizeof(rel), "run/%s.json", key);
	return store_read_json(s, rel, out);
}

int mount_by_run(struct store *s, const char *key)
{
	struct json_object *o, *v;
	int r = load_state(s, key, &o);

	if (r < 0)
		return r == -ENOENT ? 0 : r;
	r = json_object_object_get_ex(o, "by_run", &v) && json_object_get_boolean(v);
	json_object_put(o);
	return r;
}

int mount_clear_stale(struct store *s, unsigned *count)
{
	char **keys = NULL;
	int r = store_list(s, "run", ".json", &keys);

	for (char **p = keys; r == 0 && *p; p++) {
		char *at = strchr(*p, '@');

		/* A run --tmp's private mount whose layerctl is gone (killed: it undoes its own).
		 */
		if (!at || !key_valid(*p) || kill((pid_t)atoi(at + 1), 0) == 0 || errno != ESRCH)
			continue;
		r = mount_unmount(s, *p);
		++*count;
	}
	store_free_list(keys);
	return r;
}

int mount_is_mounted(struct store *s, const char *name, char **root)
{
	struct json_object *o;
	int r = load_state(s, name, &o);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (root) {
		*root = strdup(store_json_str(o, "root") ?: "");
		if (!*root)
			r = -ENOMEM;
	}
	json_object_put(o);
	return r < 0 ? r : 1;
}

/*
 * No state file: a mount was killed before it wrote one. What it left can only be under
 * run/NAME (a MNT given on the command line is not known); find it by looking.
 */
static int scan_leftovers(struct stack_mount *m)
{
	char dir[PATH_MAX];
	struct stat st;

	if (stat(m->run_dir, &st) < 0)
		return -errno;
	m->root = malloc(PATH_MAX);
	if (!m->root)
		return -ENOMEM;
	snprintf(m->root, PATH_MAX, "%s/root", m->run_dir);
	m->union_mounted = is_mount_point(m->root) > 0;
	for (size_t i = 0; i < STACK_MAX_LAYERS; i++) {
		snprintf(m->lowers[i], PATH_MAX, "%s/l%zu", m->run_dir, i);
		if (stat(m->lowers[i], &st) < 0)
			break;
		m->nlowers = i + 1;
	}
	snprintf(dir, sizeof(dir), "%s/tmp", m->run_dir);
	m->tmpfs = is_mount_point(dir) > 0;
	return 0;
}

static void state_to_mount(struct json_object *o, struct stack_mount *m)
{
	struct json_object *lowers;

	m->union_mounted = !!store_json_str(o, "root");
	m->root = strdup(store_json_str(o, "root") ?: "");
	m->tmpfs = json_object_object_get_ex(o, "tmp", &lowers) && json_object_get_boolean(lowers);
	if (!json_object_object_get_ex(o, "lowers", &lowers))
		return;
	for (size_t i = 0; i < json_object_array_length(lowers) && i < STACK_MAX_LAYERS; i++) {
		struct json_object *l = json_object_array_get_idx(lowers, i);

		snprintf(m->lowers[i], PATH_MAX, "%s", store_json_str(l, "dir") ?: "");
		snprintf(m->devices[i], 64, "%s", store_json_str(l, "device") ?: "");
		m->nlowers = i + 1;
	}
}

int mount_unmount(struct store *s, const char *name)
{
	_cleanup_free_ struct stack_mount *m = calloc(1, sizeof(*m));
	struct json_object *o;
	char rel[128];
	int r;

	if (!m)
		return -ENOMEM;
	if (!key_valid(name))
		return -EINVAL;
	m->name = m->key = name;
	m->run_dir = store_path(s, "run/%s", name);
	if (!m->run_dir)
		return -ENOMEM;
	r = load_state(s, name, &o);
	if (r == 0) {
		state_to_mount(o, m);
		json_object_put(o);
	} else if (r == -ENOENT) {
		r = scan_leftovers(m);
	}
	if (r == 0)
		r = m->root ? undo(m) : -ENOMEM;
	if (r == 0) {
		snprintf(rel, sizeof(rel), "run/%s.json", name);
		r = store_unlink(s, rel);
		snprintf(rel, sizeof(rel), "run/%s", name);
		path_remove_tree(s->dir_fd,
				 rel); /* only empty dirs are left: mounts refuse (EBUSY) */
	}
	free(m->root);
	free(m->run_dir);
	return r;
}

/* ---- read-only unions of layers, for export ---- */

int mount_layers_ro(struct store *s, const char *const *ids, size_t n, const char *dir,
		    struct stack_mount **out)
{
	struct stack_mount *m = calloc(1, sizeof(*m));
	_cleanup_free_ char *opts = NULL;
	int r = 0;

	if (!m)
		return -ENOMEM;
	m->name = m->key = "";
	m->run_dir = strdup(dir);
	m->root = path_join(dir, "root");
	if (!m->run_dir || !m->root)
		r = -ENOMEM;
	else if (mkdir(m->root, 0755) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0)
		r = mount_lowers(s, m, (const char **)ids, n);
	if (r == 0)
		r = build_options(m, NULL, NULL, &opts);
	if (r == 0)
		r = run_unionfs(opts, m->root);
	m->union_mounted = r == 0;
	if (r < 0) {
		mount_layers_release(m);
		return log_errno(r, "mount: a union of %zu layers at %s", n, dir);
	}
	*out = m;
	return 0;
}

const char *mount_layers_root(const struct stack_mount *m)
{
	return m->root;
}

int mount_layers_release(struct stack_mount *m)
{
	int r;

	if (!m)
		return 0;
	r = undo(m);
	if (m->root)
		rmdir(m->root);
	free(m->root);
	free(m->run_dir);
	free(m);
	return r;
}
