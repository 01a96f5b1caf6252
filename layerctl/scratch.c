/*
 * The scratch tmpfs (see scratch.h). scratch_enter moves this process into a
 * mount namespace of its own with private propagation, so nothing it mounts
 * is seen by, or left to, the rest of the system.
 */
#include "layerctl/scratch.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>

#include "lib/macro.h"

static bool in_private_ns;

static long long available_kib(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	long long kib;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1)
			return kib;
	return -1;
}

int scratch_enter(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		return -errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	in_private_ns = true;
	return 0;
}

int scratch_mount(const char *dir)
{
	long long kib = available_kib();
	char opts[64];

	if (!in_private_ns)
		return -EPERM;
	if (kib < 0)
		return -ENOMEM;
	snprintf(opts, sizeof(opts), "mode=0700,size=%lldk", kib / 2);
	return RET_NERRNO(mount("layerctl-scratch", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts));
}

int scratch_umount(const char *dir)
{
	return RET_NERRNO(umount2(dir, MNT_DETACH));
}
