/*
 * OCI runtime bundles. The config is runc's own default spec (`runc spec`),
 * with the root pointed at the mounted stack (writable: changes go to the
 * stack's upper dir), no terminal, and the command and hostname filled in.
 * Written to a temp file beside config.json and renamed.
 */
#include "layerctl/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/macro.h"

static const char default_spec[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0},"
    "\"args\":[\"/bin/sh\"],\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/"
    "bin:/sbin:/bin\",\"HOME=/root\",\"container=layerctl\"],\"cwd\":\"/\",\"capabilities\":{"
    "\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],\"effective\":["
    "\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],\"permitted\":[\"CAP_AUDIT_"
    "WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],\"ambient\":[\"CAP_AUDIT_WRITE\",\"CAP_"
    "KILL\",\"CAP_NET_BIND_SERVICE\"]},\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,"
    "\"soft\":1024}],\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\",\"readonly\":"
    "false},\"hostname\":\"layerctl\",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\","
    "\"source\":\"proc\"},{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
    "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},{\"destination\":"
    "\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\","
    "\"newinstance\",\"ptmxmode=0666\",\"mode=0620\"]},{\"destination\":\"/dev/shm\","
    "\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\",\"nodev\","
    "\"mode=1777\",\"size=65536k\"]},{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\","
    "\"source\":\"mqueue\",\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},{\"destination\":"
    "\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\",\"options\":[\"nosuid\",\"noexec\","
    "\"nodev\",\"ro\"]}],\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":"
    "\"rwm\"}]},\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},"
    "{\"type\":\"uts\"},{\"type\":\"mount\"}],\"maskedPaths\":[\"/proc/acpi\",\"/proc/"
    "asound\",\"/proc/kcore\",\"/proc/keys\",\"/proc/latency_stats\",\"/proc/timer_list\","
    "\"/proc/timer_stats\",\"/proc/sched_debug\",\"/sys/firmware\",\"/proc/scsi\"],"
    "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\",\"/proc/"
    "sysrq-trigger\"]}}";

static int fill_spec(struct json_object *spec, const char *root, const char *hostname,
		     char *const *argv)
{
	struct json_object *process, *rootobj, *args = json_object_new_array();

	if (!args)
		return -ENOMEM;
	if (!json_object_object_get_ex(spec, "process", &process) ||
	    !json_object_object_get_ex(spec, "root", &rootobj)) {
		json_object_put(args);
		return -EINVAL;
	}
	for (char *const *a = argv; a && *a; a++)
		json_object_array_add(args, json_object_new_string(*a));
	if (!argv || !*argv)
		json_object_array_add(args, json_object_new_string("/bin/sh"));
	json_object_object_add(process, "args", args);
	json_object_object_add(rootobj, "path", json_object_new_string(root));
	json_object_object_add(spec, "hostname", json_object_new_string(hostname));
	return 0;
}

static int write_file_atomic(int dir_fd, const char *name, const char *text)
{
	char tmp[64];
	_cleanup_close_ int fd = -EBADF;
	size_t len = strlen(text);
	ssize_t n;

	snprintf(tmp, sizeof(tmp), ".%s.%d", name, getpid());
	fd = RET_NERRNO(openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (fd < 0)
		return fd;
	n = write(fd, text, len);
	if (n != (ssize_t)len || fsync(fd) < 0 || renameat(dir_fd, tmp, dir_fd, name) < 0) {
		int r = n < 0 || n == (ssize_t)len ? -errno : -EIO;

		unlinkat(dir_fd, tmp, 0);
		return r;
	}
	return 0;
}

int bundle_write(const char *dir, const char *root, const char *hostname, char *const *argv)
{
	struct json_object *spec = json_tokener_parse(default_spec);
	_cleanup_close_ int dir_fd = -EBADF;
	int r;

	if (!spec)
		return -ENOMEM;
	r = fill_spec(spec, root, hostname, argv);
	if (r == 0 && mkdir(dir, 0755) < 0 && errno != EEXIST)
		r = -errno;
	if (r == 0)
		dir_fd = RET_NERRNO(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (r == 0 && dir_fd < 0)
		r = dir_fd;
	if (r == 0)
		r = write_file_atomic(
		    dir_fd, "config.json",
		    json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(spec);
	return r;
}
