/*
 * FUSE passthrough. The kernel binds a FUSE inode to one backing file while
 * any passthrough open of it lives, and fails an open (EIO) that asks for
 * another backing file or none: so every open of a node shares one backing
 * id, registered from the first open's fd and closed after the last release.
 *
 * Safety: the kernel reopens the backing file's path with each open's own
 * flags. A backing id registered from a read-only branch is therefore only
 * ever handed to opens of that same branch's file, which are read-only
 * because writing opens copy up first (they name the writable branch).
 */
#include "unionfs/passthrough.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"
#include "unionfs/devread.h"
#include "unionfs/fuse_proto.h"
#include "unionfs/ops.h"
#include "unionfs/inode.h"
#include "unionfs/unionfs.h"
#include "unionfs/uring.h"

/* Protocol 7.40 pieces that libfuse 3.14's headers (7.38) lack. */
#define PT_FUSE_INIT 26
#define PT_FUSE_INIT_EXT (1U << 30)
#define PT_FUSE_PASSTHROUGH_FLAGS2 (1U << (37 - 32))
#define PT_FUSE_WRITEBACK_CACHE (1U << 16)
#define PT_FOPEN_PASSTHROUGH (1U << 7)
#define PT_FOPEN_CACHE_FLAGS ((1U << 1) | (1U << 3)) /* KEEP_CACHE, CACHE_DIR */

struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define PT_FUSE_DEV_IOC_BACKING_OPEN _IOW(229, 1, struct pt_backing_map)
#define PT_FUSE_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

struct pt_init_in {
	uint32_t major, minor, max_readahead, flags, flags2;
};
struct pt_init_out {
	uint32_t major, minor, max_readahead, flags;
	uint16_t max_background, congestion_threshold;
	uint32_t max_write, time_gran;
	uint16_t max_pages, map_alignment;
	uint32_t flags2, max_stack_depth;
	uint32_t unused[6];
};
struct pt_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

/*
 * Branches must be plain file systems (depth 0), so that overlayfs may still
 * stack on our mount (its depth then 2, the kernel's limit).
 */
#define PT_STACK_DEPTH 1

static __thread int reply_backing_id = -1;

bool passthrough_capable(void)
{
	unsigned long long eff = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return eff & (1ULL << 21); /* CAP_SYS_ADMIN */
}

void passthrough_reply_with(int id)
{
	reply_backing_id = id;
}

static void note_init_request(struct unionfs *fs, const void *buf, ssize_t n)
{
	const struct fuse_proto_in_header *in = buf;
	const struct pt_init_in *init = (const void *)(in + 1);
	bool ext;

	if (n < (ssize_t)(sizeof(*in) + sizeof(*init)) || in->opcode != PT_FUSE_INIT)
		return;
	fs->pt.init_unique = in->unique;
	ext = init->flags & PT_FUSE_INIT_EXT;
	fs->pt.kernel_offers = fs->pt.wanted && ext && (init->flags2 & PT_FUSE_PASSTHROUGH_FLAGS2);
	fs->uring.kernel_offers = fs->uring.wanted && ext && (init->flags2 & URING_INIT_FLAGS2);
}

static ssize_t hook_read(int fd, void *buf, size_t len, void *userdata)
{
	struct unionfs *fs = userdata;
	ssize_t n = devread(fd, buf, len);

	if (n > 0 && !fs->pt.init_unique)
		note_init_request(fs, buf, n);
	return n;
}

static void amend_init_reply(struct unionfs *fs, struct iovec *iov, int count)
{
	struct pt_init_out *out;

	if (count < 2 || iov[1].iov_len < sizeof(*out))
		return;
	out = iov[1].iov_base;
	/* The kernel refuses passthrough with the writeback cache. */
	if (fs->pt.kernel_offers && !(out->flags & PT_FUSE_WRITEBACK_CACHE)) {
		out->flags |= PT_FUSE_INIT_EXT;
		out->flags2 |= PT_FUSE_PASSTHROUGH_FLAGS2;
		out->max_stack_depth = PT_STACK_DEPTH;
		fs->pt.active = true;
		log_debug("passthrough on");
	}
	if (fs->uring.kernel_offers) {
		size_t pages = (size_t)out->max_pages * 4096;
		out->flags |= PT_FUSE_INIT_EXT;
		out->flags2 |= URING_INIT_FLAGS2;
		/* The kernel's own bound on a request or reply (FUSE_MIN_READ_BUFFER at least). */
		fs->uring.payload_size = out->max_write > pages ? out->max_write : pages;
		if (fs->uring.payload_size < 8192)
			fs->uring.payload_size = 8192;
		fs->uring.active = true;
	}
}

static size_t iov_total(const struct iovec *iov, int count)
{
	size_t n = 0;

	for (int i = 0; i < count; i++)
		n += iov[i].iov_len;
	return n;
}

/* The open reply is the last struct of the reply (open, or create after its entry). */
static void amend_open_reply(struct iovec *iov, int count, int id)
{
	struct pt_open_out *out;

	if (count < 2 || iov[count - 1].iov_len < sizeof(*out))
		return;
	out = (void *)((char *)iov[count - 1].iov_base + iov[count - 1].iov_len - sizeof(*out));
	out->open_flags &= ~PT_FOPEN_CACHE_FLAGS;
	out->open_flags |= PT_FOPEN_PASSTHROUGH;
	out->backing_id = id;
}

static ssize_t hook_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct unionfs *fs = userdata;
	const struct fuse_proto_out_header *out = iov[0].iov_base;

	bool init = out->unique == fs->pt.init_unique && !fs->uring.active && !fs->pt.active;
	ssize_t n;

	if (out->error == 0 && reply_backing_id >= 0)
		amend_open_reply(iov, count, reply_backing_id);
	else if (out->error == 0 && init)
		amend_init_reply(fs, iov, count);
	if (uring_reply(&fs->uring, iov, count))
		return (ssize_t)iov_total(iov, count);
	n = writev(fd, iov, count);
	/* The queues can register only once the kernel has taken the INIT reply. */
	if (init && n >= 0 && fs->uring.active &&
	    uring_start(&fs->uring, fs->se, fd, fs->uring.payload_size) < 0)
		fs->uring.active = false;
	return n;
}

static ssize_t hook_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int passthrough_install(struct unionfs *fs, struct fuse_session *se)
{
	/*
	 * No splice_receive: the INIT request must come through hook_read. Only
	 * files without a backing file are read and written by the daemon.
	 */
	static const struct fuse_custom_io io = {
	    .writev = hook_writev,
	    .read = hook_read,
	    .splice_send = hook_splice_send,
	};

	fs->pt.dev_fd = fuse_session_fd(se);
	if (devread_setup(fs->pt.dev_fd) < 0 || fuse_session_custom_io(se, &io, fs->pt.dev_fd) != 0)
		return -EIO;
	return 0;
}

static int backing_open(struct passthrough *pt, int fd)
{
	struct pt_backing_map map = {.fd = fd};
	int id = ioctl(pt->dev_fd, PT_FUSE_DEV_IOC_BACKING_OPEN, &map);

	if (id < 0)
		log_debug("passthrough: no backing file: %s", strerror(errno));
	return id;
}

static void backing_close(struct passthrough *pt, int id)
{
	uint32_t u = (uint32_t)id;

	if (ioctl(pt->dev_fd, PT_FUSE_DEV_IOC_BACKING_CLOSE, &u) < 0)
		log_debug("passthrough: closing backing id %d: %s", id, strerror(errno));
}

int passthrough_open(struct unionfs *fs, struct node *node, int fd, uint16_t branch, bool want,
		     int *id)
{
	int r = 0;

	*id = -1;
	if (!fs->pt.active)
		return 0;
	pthread_mutex_lock(&node->lock);
	if (node->io_opens == 0) {
		node->io_backing = want ? backing_open(&fs->pt, fd) : -1;
		node->io_branch = branch;
	} else if (node->io_backing >= 0 && node->io_branch != branch) {
		r = -ESTALE;
	}
	if (r == 0) {
		node->io_opens++;
		*id = node->io_backing;
	}
	pthread_mutex_unlock(&node->lock);
	if (r == -ESTALE)
		node_table_unhash(&fs->nodes, node);
	return r;
}

void passthrough_release(struct unionfs *fs, struct node *node)
{
	int id = -1;

	pthread_mutex_lock(&node->lock);
	if (--node->io_opens == 0) {
		id = node->io_backing;
		node->io_backing = -1;
	}
	pthread_mutex_unlock(&node->lock);
	if (id >= 0)
		backing_close(&fs->pt, id);
}
