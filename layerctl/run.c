/*
 * The launcher. Single-threaded; everything the child needs (root path,
 * environment, argv, bind list) is built before clone(), and the child
 * allocates nothing before execve(). All mounts below are made after the
 * child made its mount tree private, on top of the union mount, so they
 * vanish with the namespace and never reach the upper dir. A mount point is
 * used only when the image has it as a directory; none is created in the
 * union (the /dev nodes live on our own tmpfs). The child reports a failed
 * step over a CLOEXEC pipe: EOF there means execve() succeeded.
 */
#include "layerctl/run.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layerctl/inuse.h"
#include "layerctl/mount.h"
#include "lib/log.h"
#include "lib/macro.h"

#define CHILD_STACK_SIZE (256 * 1024)

enum run_step {
	STEP_PRIVATE,
	STEP_LOOPBACK,
	STEP_ROOT,
	STEP_PROC,
	STEP_DEV,
	STEP_DEVPTS,
	STEP_SYS,
	STEP_BIND,
	STEP_PIVOT,
	STEP_HOSTNAME,
	STEP_WORKDIR,
	STEP_NO_NEW_PRIVS,
	STEP_EXEC,
};

static const char *const step_names[] = {
    [STEP_PRIVATE] = "making mounts private",
    [STEP_LOOPBACK] = "bringing up lo",
    [STEP_ROOT] = "entering the root",
    [STEP_PROC] = "mounting /proc",
    [STEP_DEV] = "populating /dev",
    [STEP_DEVPTS] = "mounting /dev/pts",
    [STEP_SYS] = "mounting /sys",
    [STEP_BIND] = "bind mount",
    [STEP_PIVOT] = "pivot_root",
    [STEP_HOSTNAME] = "setting the hostname",
    [STEP_WORKDIR] = "changing to the working dir",
    [STEP_NO_NEW_PRIVS] = "no_new_privs",
    [STEP_EXEC] = "exec",
};

struct report {
	int step;
	int err;
	int index; /* the bind mount, for STEP_BIND */
};

struct child {
	const struct run_options *o;
	const char *root;
	const char *hostname;
	char **envp;
	int report_fd;
};

static volatile pid_t child_pid;

/* ---- the child ---- */

static _Noreturn void child_fail(struct child *c, enum run_step step, int err, int index)
{
	struct report rep = {.step = step, .err = err, .index = index};
	int code = RUN_EXIT_OWN;

	if (step == STEP_EXEC)
		code = err == ENOENT || err == ENOTDIR ? RUN_EXIT_NOTFOUND : RUN_EXIT_NOEXEC;
	if (write(c->report_fd, &rep, sizeof(rep)) < 0)
		code = RUN_EXIT_OWN;
	_exit(code);
}

#define CHILD_TRY(c, step, expr)                                                                   \
	do {                                                                                       \
		if ((expr) < 0)                                                                    \
			child_fail(c, step, errno, 0);                                             \
	} while (0)

/* True when path (relative to the root, our cwd) is a real directory in the image. */
static bool image_has_dir(const char *path)
{
	struct stat st;

	return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static void setup_dev_nodes(struct child *c)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *const links[][2] = {
	    {"/proc/self/fd", "dev/fd"},       {"/proc/self/fd/0", "dev/stdin"},
	    {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
	    {"pts/ptmx", "dev/ptmx"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		char src[32], dst[32];
		int fd;

		snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
		snprintf(dst, sizeof(dst), "dev/%s", nodes[i]);
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
		if (fd < 0)
			child_fail(c, STEP_DEV, errno, 0);
		close(fd);
		CHILD_TRY(c, STEP_DEV, mount(src, dst, NULL, MS_BIND, NULL));
	}
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		CHILD_TRY(c, STEP_DEV, symlink(links[i][0], links[i][1]));
}

static void setup_dev(struct child *c)
{
	if (!image_has_dir("dev"))
		return;
	CHILD_TRY(c, STEP_DEV,
		  mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k"));
	setup_dev_nodes(c);
	CHILD_TRY(c, STEP_DEVPTS, mkdir("dev/pts", 0755));
	CHILD_TRY(c, STEP_DEVPTS,
		  mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
			"newinstance,ptmxmode=0666,mode=0620"));
	CHILD_TRY(c, STEP_DEV, mkdir("dev/shm", 01777));
	CHILD_TRY(c, STEP_DEV,
		  mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k"));
}

static void setup_sys(struct child *c)
{
	unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

	if (!image_has_dir("sys"))
		return;
	if (mount("sysfs", "sys", "sysfs", flags, NULL) == 0)
		return;
	/* Sharing the host's network namespace: sysfs may refuse a new instance; bind it ro. */
	CHILD_TRY(c, STEP_SYS, mount("/sys", "sys", NULL, MS_BIND | MS_REC, NULL));
	CHILD_TRY(c, STEP_SYS, mount(NULL, "sys", NULL, MS_REMOUNT | MS_BIND | flags, NULL));
}

static void setup_binds(struct child *c)
{
	for (size_t i = 0; i < c->o->nbinds; i++) {
		const struct run_bind *b = &c->o->binds[i];
		const char *dst = b->dst + strspn(b->dst, "/");

		if (mount(b->src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
			child_fail(c, STEP_BIND, errno, (int)i);
		if (b->ro && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
			child_fail(c, STEP_BIND, errno, (int)i);
	}
}

/* A new network namespace starts with lo down: 127.0.0.1 would not answer. */
static void loopback_up(struct child *c)
{
	struct ifreq ifr = {.ifr_name = "lo"};
	int fd, r;

	if (c->o->host_net)
		return;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		child_fail(c, STEP_LOOPBACK, errno, 0);
	r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	if (r < 0)
		child_fail(c, STEP_LOOPBACK, errno, 0);
	close(fd);
}

/* --init: PID 1 of the namespace, forwarding signals to CMD and reaping every orphan. */
static volatile pid_t init_child;

static void init_forward(int sig)
{
	if (init_child > 0)
		kill(init_child, sig);
}

static _Noreturn void init_loop(pid_t cmd)
{
	int status = 0;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &status, 0);
		if (pid == cmd)
			break;
		if (pid < 0 && errno != EINTR)
			_exit(RUN_EXIT_OWN);
	}
	/* Exiting kills whatever CMD left behind: PID 1 takes its namespace with it. */
	_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

static void run_init(struct child *c)
{
	static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	struct sigaction sa = {.sa_handler = init_forward};
	pid_t pid;

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaction(forwarded[i], &sa, NULL);
	pid = fork();
	if (pid < 0)
		child_fail(c, STEP_EXEC, errno, 0);
	if (pid == 0) {
		/* CMD gets the default dispositions back at exec; none is ignored here. */
		return;
	}
	init_child = pid;
	/* Only CMD keeps the report pipe: its exec closes it, and the parent sees EOF. */
	close(c->report_fd);
	init_loop(pid);
}

static int child_main(void *arg)
{
	struct child *c = arg;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Private first: nothing below may propagate back to the host. */
	CHILD_TRY(c, STEP_PRIVATE, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	loopback_up(c);
	CHILD_TRY(c, STEP_ROOT, chdir(c->root));
	if (image_has_dir("proc"))
		CHILD_TRY(c, STEP_PROC,
			  mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	setup_dev(c);
	setup_sys(c);
	setup_binds(c);
	/* pivot_root(".", "."): the old root lands on top of the new one; detach it. */
	CHILD_TRY(c, STEP_PIVOT, syscall(SYS_pivot_root, ".", "."));
	CHILD_TRY(c, STEP_PIVOT, umount2(".", MNT_DETACH));
	CHILD_TRY(c, STEP_PIVOT, chdir("/"));
	CHILD_TRY(c, STEP_HOSTNAME, sethostname(c->hostname, strlen(c->hostname)));
	CHILD_TRY(c, STEP_WORKDIR, chdir(c->o->workdir ?: "/"));
	CHILD_TRY(c, STEP_NO_NEW_PRIVS, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	environ = c->envp;
	if (c->o->init)
		run_init(c);
	execvp(c->o->argv[0], c->o->argv);
	child_fail(c, STEP_EXEC, errno, 0);
}

/* ---- the parent ---- */

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static void install_forwarding(void)
{
	struct sigaction sa = {.sa_handler = forward_signal};

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static bool env_overridden(const struct run_options *o, const char *kv)
{
	size_t klen = strcspn(kv, "=") + 1;

	for (size_t i = 0; i < o->nenv; i++)
		if (!strncmp(o->env[i], kv, klen))
			return true;
	return false;
}

/* The default environment, then --env ones (the last of a key wins). */
static char **build_env(const struct run_options *o, char *term, size_t term_size)
{
	static char *defaults[] = {
	    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	    "HOME=/root",
	    "container=layerctl",
	};
	char **envp = calloc(ARRAY_SIZE(defaults) + o->nenv + 2, sizeof(*envp));
	size_t n = 0;

	if (!envp)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
		if (!env_overridden(o, defaults[i]))
			envp[n++] = defaults[i];
	if (getenv("TERM")) {
		snprintf(term, term_size, "TERM=%s", getenv("TERM"));
		if (!env_overridden(o, term))
			envp[n++] = term;
	}
	for (size_t i = 0; i < o->nenv; i++) {
		bool later = false;
		size_t klen = strcspn(o->env[i], "=") + 1;

		for (size_t j = i + 1; j < o->nenv && !later; j++)
			later = !strncmp(o->env[j], o->env[i], klen);
		if (!later)
			envp[n++] = o->env[i];
	}
	return envp;
}

static void report_failure(const struct run_options *o, const struct report *rep)
{
	if (rep->step == STEP_EXEC)
		log_error("run: %s: %s", o->argv[0], strerror(rep->err));
	else if (rep->step == STEP_BIND)
		log_error("run: bind mount %s on %s: %s", o->binds[rep->index].src,
			  o->binds[rep->index].dst, strerror(rep->err));
	else
		log_error("run: %s: %s",
			  rep->step >= 0 && rep->step <= STEP_EXEC ? step_names[rep->step]
								   : "setup",
			  strerror(rep->err));
}

/* Waits for the child's report (EOF: it exec'd) and its exit; returns layerctl's status. */
static int wait_child(const struct run_options *o, pid_t pid, int report_fd)
{
	struct report rep;
	ssize_t n;
	int status;

	do
		n = read(report_fd, &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return log_errno(-errno, "run: waiting for the command"), RUN_EXIT_OWN;
	if (n == (ssize_t)sizeof(rep))
		report_failure(o, &rep);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static int spawn(const struct run_options *o, const char *root)
{
	int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
	_cleanup_free_ char **envp = NULL;
	_cleanup_close_ int rd = -EBADF, wr = -EBADF;
	int fds[2], status;
	char term[256];
	void *stack;
	struct child c = {.o = o, .root = root, .hostname = o->hostname ?: o->stack};

	envp = build_env(o, term, sizeof(term));
	if (!envp || pipe2(fds, O_CLOEXEC) < 0)
		return log_errno(envp ? -errno : -ENOMEM, "run"), RUN_EXIT_OWN;
	rd = fds[0];
	wr = fds[1];
	c.envp = envp;
	c.report_fd = wr;
	if (!o->host_net)
		flags |= CLONE_NEWNET;
	stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return log_errno(-errno, "run: child stack"), RUN_EXIT_OWN;
	install_forwarding();
	child_pid = clone(child_main, (char *)stack + CHILD_STACK_SIZE, flags, &c);
	if (child_pid < 0) {
		log_errno(-errno, "run: clone");
		munmap(stack, CHILD_STACK_SIZE);
		return RUN_EXIT_OWN;
	}
	closep(&wr);
	status = wait_child(o, child_pid, rd);
	child_pid = 0;
	munmap(stack, CHILD_STACK_SIZE);
	return status;
}

/* What a run holds while CMD runs: its mount (when it made one) and its in-use mark. */
struct run_hold {
	char key[96]; /* the mount's key; empty when the run did not mount */
	int inuse_fd;
};

/* Mounts the stack unless it is (a run --tmp always mounts its own) and marks it in use. */
static int hold_stack(struct store *s, const struct run_options *o, char **root, struct run_hold *h)
{
	int r = store_lock(s);

	if (r < 0)
		return log_errno(r, "store %s", s->root);
	r = o->tmp ? 0 : mount_is_mounted(s, o->stack, root);
	if (r == 0) {
		r = mount_stack_for_run(s, o->stack, o->tmp, h->key, sizeof(h->key), root);
		if (r < 0)
			h->key[0] = '\0';
	}
	if (r >= 0) {
		h->inuse_fd = inuse_hold(s, o->stack, o->tmp ? INUSE_TMP : INUSE_MOUNT);
		r = h->inuse_fd < 0 ? log_errno(h->inuse_fd, "run: %s: in-use mark", o->stack) : 0;
	}
	if (r < 0 && h->key[0]) {
		mount_unmount(s, h->key);
		h->key[0] = '\0';
	}
	store_unlock(s);
	return r;
}

/*
 * Undoes hold_stack. The stack's own mount, when a run made it, is undone by the last run
 * out, whichever that is: a mount made by hand (layerctl mount) stays.
 */
static int release_stack(struct store *s, const struct run_options *o, struct run_hold *h)
{
	pid_t other;
	int r = store_lock(s);

	if (r < 0)
		return log_errno(r, "store %s", s->root);
	if (o->tmp) {
		r = mount_unmount(s, h->key);
	} else if (mount_by_run(s, o->stack) > 0 &&
		   inuse_holder(s, o->stack, INUSE_MOUNT, &other) == 0) {
		/* (inuse_holder's close drops our own mark too: we are done with it.) */
		r = mount_unmount(s, o->stack);
	}
	closep(&h->inuse_fd);
	store_unlock(s);
	return r < 0 ? log_errno(r, "run: unmounting stack %s", o->stack) : 0;
}

int run_stack(struct store *s, struct run_options *o)
{
	struct run_hold h = {.inuse_fd = -EBADF};
	_cleanup_free_ char *root = NULL;
	int status;

	if (hold_stack(s, o, &root, &h) < 0)
		return RUN_EXIT_OWN;
	status = spawn(o, root);
	if (release_stack(s, o, &h) < 0)
		return status ?: RUN_EXIT_OWN;
	return status;
}
