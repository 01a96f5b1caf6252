/* FUSE over io_uring: see uring.h. The ring is driven with raw system calls. */
#include "unionfs/uring.h"

#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "unionfs/fuse_proto.h"

/* Protocol 7.42 pieces that neither libfuse 3.14 nor Debian 12's kernel headers have. */
#define UR_HEADER_SZ 128
#define UR_OP_IN_SZ 128
#define UR_CMD_REGISTER 1
#define UR_CMD_COMMIT_AND_FETCH 2

struct ur_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct ur_req_header {
	char in_out[UR_HEADER_SZ]; /* fuse_in_header, then fuse_out_header */
	char op_in[UR_OP_IN_SZ];   /* the request's first argument, its fixed part */
	struct ur_ent_in_out ent;
};

struct ur_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* Requests a queue may hold at once: a slow-lane job keeps one until it answers. */
#define QUEUE_DEPTH 16
#define SQE_SIZE 128 /* IORING_SETUP_SQE128 */

struct uring_ent {
	struct uring_queue *q;
	struct ur_req_header hdr; /* iov[0]: the kernel writes the request here */
	char *payload;		  /* iov[1] */
	struct iovec iov[2];
	char *req;	 /* the request in one piece, as libfuse takes it */
	uint64_t unique; /* of the request being answered; 0 when none */
	uint64_t commit_id;
	struct uring_ent *next; /* in the queue's posted list */
};

struct uring_queue {
	struct uring *u;
	uint16_t qid;
	int ring_fd;
	/* Replies from other threads: posted here, and the queue's thread woken through wake_fd. */
	pthread_mutex_t post_lock;
	struct uring_ent *posted;
	int wake_fd;
	uint64_t wake_buf;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, sq_entries;
	char *sqes;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_cqe *cqes;
	void *ring_map, *sqes_map;
	size_t ring_size, sqes_size;
	unsigned unsubmitted; /* SQEs queued for the next io_uring_enter (only this thread's) */
	struct uring_ent ents[QUEUE_DEPTH];
	pthread_t thread;
	bool started;
};

/* The queue whose thread this is, and the entry it is answering. */
static __thread struct uring_queue *this_queue;
static __thread struct uring_ent *this_ent;

static int ring_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int ring_enter(int fd, unsigned submit, unsigned wait, unsigned flags, void *arg,
		      size_t argsz)
{
	return (int)syscall(__NR_io_uring_enter, fd, submit, wait, flags, arg, argsz);
}

/* The number of CPUs the kernel makes queues for: all possible ones (/sys/.../possible). */
static unsigned possible_cpus(void)
{
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	unsigned a = 0, b = 0, last = 0;
	char sep;

	if (!f)
		return 0;
	/* A list like "0-3" or "0-1,4-7": the last number counts. */
	while (fscanf(f, "%u", &a) == 1) {
		last = a;
		if (fscanf(f, "%c", &sep) != 1)
			break;
		if (sep == '-' && fscanf(f, "%u", &b) == 1) {
			last = b;
			if (fscanf(f, "%c", &sep) != 1)
				break;
		}
		if (sep != ',')
			break;
	}
	fclose(f);
	return last + 1;
}

static int queue_map(struct uring_queue *q)
{
	struct io_uring_params p = {.flags = IORING_SETUP_SQE128};
	char *ring;

	q->ring_fd = ring_setup(2 * QUEUE_DEPTH, &p);
	if (q->ring_fd < 0)
		return -errno;
	if (!(p.features & IORING_FEAT_SINGLE_MMAP))
		return -EOPNOTSUPP;
	q->ring_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	if (p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe) > q->ring_size)
		q->ring_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	q->ring_map = mmap(NULL, q->ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			   q->ring_fd, IORING_OFF_SQ_RING);
	if (q->ring_map == MAP_FAILED)
		return -errno;
	q->sqes_size = (size_t)p.sq_entries * SQE_SIZE;
	q->sqes_map = mmap(NULL, q->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			   q->ring_fd, IORING_OFF_SQES);
	if (q->sqes_map == MAP_FAILED)
		return -errno;
	ring = q->ring_map;
	q->sq_head = (unsigned *)(ring + p.sq_off.head);
	q->sq_tail = (unsigned *)(ring + p.sq_off.tail);
	q->sq_mask = (unsigned *)(ring + p.sq_off.ring_mask);
	q->sq_array = (unsigned *)(ring + p.sq_off.array);
	q->sq_entries = p.sq_entries;
	q->sqes = q->sqes_map;
	q->cq_head = (unsigned *)(ring + p.cq_off.head);
	q->cq_tail = (unsigned *)(ring + p.cq_off.tail);
	q->cq_mask = (unsigned *)(ring + p.cq_off.ring_mask);
	q->cqes = (struct io_uring_cqe *)(ring + p.cq_off.cqes);
	return 0;
}

/* What queue_free() can take apart however far queue_init() got. */
static void queue_preinit(struct uring *u, struct uring_queue *q, uint16_t qid)
{
	q->u = u;
	q->qid = qid;
	q->ring_fd = q->wake_fd = -1;
	q->ring_map = q->sqes_map = MAP_FAILED;
	for (unsigned i = 0; i < QUEUE_DEPTH; i++)
		q->ents[i].payload = q->ents[i].req = MAP_FAILED;
	pthread_mutex_init(&q->post_lock, NULL);
}

static int queue_init(struct uring *u, struct uring_queue *q)
{
	q->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (q->wake_fd < 0)
		return -errno;
	for (unsigned i = 0; i < QUEUE_DEPTH; i++) {
		struct uring_ent *e = &q->ents[i];
		e->q = q;
		/* Untouched pages cost nothing: most requests are small. */
		e->payload = mmap(NULL, u->payload_size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		e->req = mmap(NULL, u->payload_size + sizeof(e->hdr), PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (e->payload == MAP_FAILED || e->req == MAP_FAILED)
			return -ENOMEM;
		e->iov[0] = (struct iovec){&e->hdr, sizeof(e->hdr)};
		e->iov[1] = (struct iovec){e->payload, u->payload_size};
	}
	return queue_map(q);
}

static void queue_free(struct uring *u, struct uring_queue *q)
{
	for (unsigned i = 0; i < QUEUE_DEPTH; i++) {
		if (q->ents[i].payload != MAP_FAILED)
			munmap(q->ents[i].payload, u->payload_size);
		if (q->ents[i].req != MAP_FAILED)
			munmap(q->ents[i].req, u->payload_size + sizeof(q->ents[i].hdr));
	}
	if (q->sqes_map != MAP_FAILED)
		munmap(q->sqes_map, q->sqes_size);
	if (q->ring_map != MAP_FAILED)
		munmap(q->ring_map, q->ring_size);
	if (q->ring_fd >= 0)
		close(q->ring_fd);
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	pthread_mutex_destroy(&q->post_lock);
}

/* The next free SQE: only the queue's thread fills and submits them, so no lock. */
static struct io_uring_sqe *queue_sqe(struct uring_queue *q)
{
	unsigned tail = *q->sq_tail, idx = tail & *q->sq_mask;
	struct io_uring_sqe *sqe = (void *)(q->sqes + (size_t)idx * SQE_SIZE);

	memset(sqe, 0, SQE_SIZE);
	q->sq_array[idx] = idx;
	__atomic_store_n(q->sq_tail, tail + 1, __ATOMIC_RELEASE);
	q->unsubmitted++;
	return sqe;
}

/* Queues one FUSE command for entry e. */
static void queue_cmd(struct uring_queue *q, struct uring_ent *e, uint32_t cmd_op)
{
	struct io_uring_sqe *sqe = queue_sqe(q);
	struct ur_cmd_req *req = (void *)sqe->cmd;

	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->u->dev_fd;
	sqe->cmd_op = cmd_op;
	sqe->user_data = (uintptr_t)e;
	if (cmd_op == UR_CMD_REGISTER) {
		sqe->addr = (uintptr_t)e->iov;
		sqe->len = 2;
	}
	req->commit_id = e->commit_id;
	req->qid = q->qid;
}

/* A read of wake_fd, which completes when another thread posts a reply (user_data 0). */
static void queue_wake_read(struct uring_queue *q)
{
	struct io_uring_sqe *sqe = queue_sqe(q);

	sqe->opcode = IORING_OP_READ;
	sqe->fd = q->wake_fd;
	sqe->addr = (uintptr_t)&q->wake_buf;
	sqe->len = sizeof(q->wake_buf);
	sqe->user_data = 0;
}

/* Replies other threads posted: their commits, and a new read of wake_fd. */
static void queue_take_posted(struct uring_queue *q)
{
	struct uring_ent *e;

	pthread_mutex_lock(&q->post_lock);
	e = q->posted;
	q->posted = NULL;
	pthread_mutex_unlock(&q->post_lock);
	for (; e; e = e->next)
		queue_cmd(q, e, UR_CMD_COMMIT_AND_FETCH);
	queue_wake_read(q);
}

/* Hands the request in e to libfuse, in one piece: header, fixed part, payload. */
static void dispatch(struct uring *u, struct uring_ent *e)
{
	const struct fuse_proto_in_header *in = (const void *)e->hdr.in_out;
	uint32_t payload = e->hdr.ent.payload_sz;
	size_t fixed;

	e->commit_id = e->hdr.ent.commit_id;
	if (in->len < sizeof(*in) + payload || in->len - sizeof(*in) - payload > UR_OP_IN_SZ ||
	    payload > u->payload_size) {
		struct fuse_proto_out_header out = {
		    .len = sizeof(out), .error = -EIO, .unique = in->unique};
		log_error("io_uring: request %llu of %u bytes does not add up",
			  (unsigned long long)in->unique, in->len);
		memcpy(e->hdr.in_out, &out, sizeof(out));
		e->hdr.ent.payload_sz = 0;
		queue_cmd(e->q, e, UR_CMD_COMMIT_AND_FETCH);
		return;
	}
	fixed = in->len - sizeof(*in) - payload;
	memcpy(e->req, in, sizeof(*in));
	memcpy(e->req + sizeof(*in), e->hdr.op_in, fixed);
	memcpy(e->req + sizeof(*in) + fixed, e->payload, payload);
	__atomic_store_n(&e->unique, in->unique, __ATOMIC_RELEASE);
	this_ent = e;
	fuse_session_process_buf(u->se, &(struct fuse_buf){.mem = e->req, .size = in->len});
	this_ent = NULL;
}

/* Waits for requests (a second at most, to see uring_stop()), answers them. */
static void *queue_thread(void *arg)
{
	struct uring_queue *q = arg;
	struct uring *u = q->u;
	cpu_set_t cpus;

	this_queue = q;
	CPU_ZERO(&cpus);
	CPU_SET(q->qid, &cpus);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	for (unsigned i = 0; i < QUEUE_DEPTH; i++)
		queue_cmd(q, &q->ents[i], UR_CMD_REGISTER);
	queue_wake_read(q);
	while (!__atomic_load_n(&u->stopping, __ATOMIC_ACQUIRE)) {
		struct __kernel_timespec ts = {.tv_sec = 1};
		struct io_uring_getevents_arg ga = {.ts = (uintptr_t)&ts};
		unsigned head, tail, submit = q->unsubmitted;
		int r;

		q->unsubmitted = 0;
		r = ring_enter(q->ring_fd, submit, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
			       &ga, sizeof(ga));
		if (r < 0 && errno != ETIME && errno != EINTR) {
			log_error("io_uring: queue %u: %s", q->qid, strerror(errno));
			break;
		}
		head = *q->cq_head;
		tail = __atomic_load_n(q->cq_tail, __ATOMIC_ACQUIRE);
		for (; head != tail; head++) {
			const struct io_uring_cqe *cqe = &q->cqes[head & *q->cq_mask];
			struct uring_ent *e = (void *)(uintptr_t)cqe->user_data;
			int res = cqe->res;
			__atomic_store_n(q->cq_head, head + 1, __ATOMIC_RELEASE);
			if (!e) {
				queue_take_posted(q);
			} else if (res < 0) {
				/* The connection is going away (or never took the queue). */
				if (res != -ENOTCONN && res != -ECANCELED)
					log_error("io_uring: queue %u: %s", q->qid, strerror(-res));
				goto out;
			} else {
				dispatch(u, e);
			}
		}
	}
out:
	this_queue = NULL;
	return NULL;
}

int uring_start(struct uring *u, struct fuse_session *se, int dev_fd, size_t payload_size)
{
	unsigned n = possible_cpus();
	int r = 0;

	if (n == 0 || n > 1024)
		return -EOPNOTSUPP;
	u->se = se;
	u->dev_fd = dev_fd;
	u->payload_size = (payload_size + 4095) & ~(size_t)4095;
	u->queues = calloc(n, sizeof(*u->queues));
	if (!u->queues)
		return -ENOMEM;
	u->nqueues = n;
	for (unsigned i = 0; i < n; i++)
		queue_preinit(u, &u->queues[i], (uint16_t)i);
	for (unsigned i = 0; i < n && r == 0; i++)
		r = queue_init(u, &u->queues[i]);
	for (unsigned i = 0; i < n && r == 0; i++) {
		r = -pthread_create(&u->queues[i].thread, NULL, queue_thread, &u->queues[i]);
		u->queues[i].started = r == 0;
	}
	if (r < 0) {
		log_error("io_uring: cannot start the queues: %s", strerror(-r));
		uring_free(u);
		return r;
	}
	log_debug("io_uring: %u queues of %u requests", n, QUEUE_DEPTH);
	return 0;
}

/* The entry that waits for the reply to unique: most often the one this thread answers. */
static struct uring_ent *find_entry(struct uring *u, uint64_t unique)
{
	if (this_ent && __atomic_load_n(&this_ent->unique, __ATOMIC_ACQUIRE) == unique)
		return this_ent;
	for (unsigned i = 0; i < u->nqueues; i++)
		for (unsigned j = 0; j < QUEUE_DEPTH; j++) {
			struct uring_ent *e = &u->queues[i].ents[j];
			if (__atomic_load_n(&e->unique, __ATOMIC_ACQUIRE) == unique)
				return e;
		}
	return NULL;
}

bool uring_reply(struct uring *u, const struct iovec *iov, int count)
{
	const struct fuse_proto_out_header *out = iov[0].iov_base;
	struct uring_ent *e;
	size_t len = 0;

	if (!u->queues || out->unique == 0 || count < 1)
		return false;
	e = find_entry(u, out->unique);
	if (!e)
		return false;
	for (int i = 1; i < count; i++) {
		if (len + iov[i].iov_len > u->payload_size) {
			log_error("io_uring: reply to %llu too big",
				  (unsigned long long)out->unique);
			return false;
		}
		memcpy(e->payload + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	memcpy(e->hdr.in_out, out, sizeof(*out));
	e->hdr.ent.payload_sz = (uint32_t)len;
	__atomic_store_n(&e->unique, 0, __ATOMIC_RELEASE);
	if (this_queue == e->q) {
		queue_cmd(e->q, e, UR_CMD_COMMIT_AND_FETCH);
	} else {
		pthread_mutex_lock(&e->q->post_lock);
		e->next = e->q->posted;
		e->q->posted = e;
		pthread_mutex_unlock(&e->q->post_lock);
		if (eventfd_write(e->q->wake_fd, 1) < 0)
			log_error("io_uring: queue %u: cannot wake: %s", e->q->qid,
				  strerror(errno));
	}
	return true;
}

void uring_stop(struct uring *u)
{
	__atomic_store_n(&u->stopping, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < u->nqueues; i++)
		if (u->queues[i].started) {
			pthread_join(u->queues[i].thread, NULL);
			u->queues[i].started = false;
		}
}

void uring_free(struct uring *u)
{
	if (!u->queues)
		return;
	uring_stop(u);
	for (unsigned i = 0; i < u->nqueues; i++)
		queue_free(u, &u->queues[i]);
	free(u->queues);
	u->queues = NULL;
	u->nqueues = 0;
}
