/* benchtool: the helpers the benchmark scripts need, in one small program
 * compiled on the fly by bench/lib.sh (no process per file anywhere).
 *
 *   benchtool gen OUT NFILES BIGMB BIGCOUNT [SEED]
 *       Build the read-side data set under OUT: three branches OUT/b0 (top),
 *       OUT/b1, OUT/b2 (lowest). NFILES small files in total over the three
 *       branches, in nested dirs under tree/, sizes 0-16 KiB skewed small,
 *       names overlapping between branches so directories merge, some
 *       upper files shadowing lower ones, a few overlay whiteouts (0/0 char
 *       devices) and opaque dirs, a few symlinks. BIGCOUNT files of BIGMB
 *       MiB of incompressible data under big/ (big0 in the lowest branch).
 *       Deterministic for a given SEED.
 *   benchtool readall DIR      read every regular file under DIR (one process)
 *   benchtool seqread FILE     read FILE sequentially with 1 MiB reads
 *   benchtool dropcache FILE   posix_fadvise(DONTNEED) on FILE
 *
 * readall and seqread print "files bytes" / "bytes" on stdout.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

static void die(const char *what, const char *obj)
{
	fprintf(stderr, "benchtool: %s: %s: %s\n", what, obj, strerror(errno));
	exit(1);
}

/* ---------- deterministic PRNG (xorshift64*) ---------- */
static uint64_t rng_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}
static double rndf(void) { return (rnd() >> 11) * (1.0 / 9007199254740992.0); }
static unsigned rndn(unsigned n) { return (unsigned)(rnd() % n); }

/* ---------- gen ---------- */
#define NBR 3
static char outdir[4096];
static char payload[1 << 17];     /* random bytes files are cut from */
static long nfiles_made[NBR], nwhiteouts, nopaque, nsymlinks, ndirs_made[NBR];

static void mkdirs_p(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0755) && errno != EEXIST)
			die("mkdir", tmp);
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		die("mkdir", tmp);
}

static void branch_dir(int br, const char *rel, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/b%d/%s", outdir, br, rel);
}

static void ensure_dir(int br, const char *rel)
{
	char p[4096];
	struct stat st;
	branch_dir(br, rel, p, sizeof p);
	if (stat(p, &st) == 0)
		return;
	mkdirs_p(p);
	ndirs_made[br]++;
}

static void write_small(int br, const char *reldir, const char *name, size_t size)
{
	char p[4096];
	branch_dir(br, reldir, p, sizeof p);
	size_t l = strlen(p);
	snprintf(p + l, sizeof p - l, "/%s", name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create", p);
	size_t off = rndn(sizeof payload - 16384);
	if (size && write(fd, payload + off, size) != (ssize_t)size)
		die("write", p);
	close(fd);
	nfiles_made[br]++;
}

static void whiteout(int br, const char *reldir, const char *name)
{
	char p[4096];
	branch_dir(br, reldir, p, sizeof p);
	size_t l = strlen(p);
	snprintf(p + l, sizeof p - l, "/%s", name);
	if (mknod(p, S_IFCHR | 0000, makedev(0, 0)) && errno != EEXIST)
		die("mknod whiteout", p);
	nwhiteouts++;
}

static void write_big(int br, const char *rel, long mb)
{
	char p[4096];
	branch_dir(br, rel, p, sizeof p);
	char *slash = strrchr(p, '/');
	*slash = 0;
	mkdirs_p(p);
	*slash = '/';
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create", p);
	static uint64_t buf[(1 << 20) / 8];
	for (long i = 0; i < mb; i++) {
		for (size_t j = 0; j < sizeof buf / 8; j++)
			buf[j] = rnd();
		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
			die("write", p);
	}
	if (fsync(fd))
		die("fsync", p);
	close(fd);
}

/* Skewed sizes: most files are small, a few reach 16 KiB, some are empty. */
static size_t pick_size(void)
{
	double r = rndf();
	if (r < 0.05)
		return 0;
	double x = rndf();
	return (size_t)(x * x * x * 16384.0) + 1;
}

static int cmd_gen(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: benchtool gen OUT NFILES BIGMB BIGCOUNT [SEED]\n");
		return 2;
	}
	snprintf(outdir, sizeof outdir, "%s", argv[2]);
	long total = atol(argv[3]), bigmb = atol(argv[4]), bigcount = atol(argv[5]);
	if (argc > 6)
		rng_state ^= strtoull(argv[6], NULL, 0) * 0x9E3779B97F4A7C15ULL;
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (char)rnd();
	for (int b = 0; b < NBR; b++) {
		char p[4096];
		branch_dir(b, "tree", p, sizeof p);
		mkdirs_p(p);
	}

	/* Directory tree: ~32 files per dir, three levels (a few deep ones).
	 * Every dir exists in the lowest branch; the upper branches hold a
	 * subset, so most dirs merge two or three branches. */
	long ndirs = total / 32 + 1;
	long made = 0, dirno = 0;
	char rel[1024];
	while (made < total) {
		long d = dirno++ % ndirs;
		long l1 = d % 16, l2 = (d / 16) % 8, l3 = d / 128;
		if (d < 16)
			snprintf(rel, sizeof rel, "tree/d%02ld", l1);
		else if (d < 128)
			snprintf(rel, sizeof rel, "tree/d%02ld/s%ld", l1, l2);
		else
			snprintf(rel, sizeof rel, "tree/d%02ld/s%ld/t%03ld", l1, l2, l3);
		if (d % 97 == 96) {
			/* a few deep paths */
			size_t l = strlen(rel);
			snprintf(rel + l, sizeof rel - l, "/deep/er/still/leaf");
		}
		int in_b0 = rndf() < 0.5, in_b1 = rndf() < 0.7;
		int opaque = d >= 128 && d % 47 == 34;
		if (opaque)
			in_b0 = 1;
		ensure_dir(2, rel);
		if (in_b0)
			ensure_dir(0, rel);
		if (in_b1)
			ensure_dir(1, rel);
		/* an opaque upper dir now and then: hides the lower contents */
		if (opaque) {
			char p[4096];
			branch_dir(0, rel, p, sizeof p);
			if (setxattr(p, "trusted.overlay.opaque", "y", 1, 0) == 0)
				nopaque++;
		}
		int nf = 10 + rndn(31);
		for (int i = 0; i < nf && made < total; i++) {
			char name[64];
			/* unique within the dir: each visit has its own dirno */
			snprintf(name, sizeof name, "f%05ld_%02d.%s", dirno, i,
				 (const char *[]){"c", "h", "txt", "so", "py", "conf"}[rndn(6)]);
			/* which branches hold this name: lowest most often, with
			 * overlaps so upper files shadow lower ones */
			double r = rndf();
			int mask = r < 0.45 ? 4 : r < 0.62 ? 2 : r < 0.75 ? 1 : r < 0.87 ? 6 : r < 0.94 ? 5 : 7;
			if (!in_b0)
				mask &= ~1;
			if (!in_b1)
				mask &= ~2;
			if (!mask)
				mask = 4;
			for (int b = 0; b < NBR && made < total; b++)
				if (mask & (1 << b)) {
					write_small(b, rel, name, pick_size());
					made++;
				}
			/* a few whiteouts in an upper branch over a lower-only name */
			/* never inside an opaque dir: there the kernel lists the
			 * whiteout in readdir yet fails its lookup */
			if (mask == 4 && !opaque && rndf() < 0.01) {
				if (in_b0)
					whiteout(0, rel, name);
				else if (in_b1)
					whiteout(1, rel, name);
			}
			if (rndf() < 0.01) {
				char p[4096], ln[80];
				branch_dir(2, rel, p, sizeof p);
				size_t l = strlen(p);
				snprintf(ln, sizeof ln, "link%05ld_%02d", dirno, i);
				snprintf(p + l, sizeof p - l, "/%s", ln);
				if (symlink(name, p) == 0)
					nsymlinks++;
			}
		}
	}
	for (long i = 0; i < bigcount; i++) {
		char r2[64];
		snprintf(r2, sizeof r2, "big/big%ld.bin", i);
		write_big(i == 0 ? NBR - 1 : (int)(i % NBR), r2, bigmb);
	}
	printf("files b0=%ld b1=%ld b2=%ld dirs b0=%ld b1=%ld b2=%ld whiteouts=%ld opaque=%ld symlinks=%ld big=%ldx%ldMiB\n",
	       nfiles_made[0], nfiles_made[1], nfiles_made[2], ndirs_made[0], ndirs_made[1],
	       ndirs_made[2], nwhiteouts, nopaque, nsymlinks, bigcount, bigmb);
	return 0;
}

/* ---------- readers ---------- */
static char rbuf[1 << 20];
static long r_files;
static long long r_bytes;

static void read_fd(int fd, const char *name)
{
	for (;;) {
		ssize_t n = read(fd, rbuf, sizeof rbuf);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read", name);
		}
		if (n == 0)
			break;
		r_bytes += n;
	}
}

static void readall_dir(int dfd, const char *path)
{
	DIR *d = fdopendir(dfd);
	if (!d)
		die("fdopendir", path);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		unsigned char t = e->d_type;
		if (t == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
				die("stat", e->d_name);
			t = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		if (t == DT_DIR) {
			int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				die("open dir", e->d_name);
			readall_dir(fd, e->d_name);
		} else if (t == DT_REG) {
			int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				die("open", e->d_name);
			read_fd(fd, e->d_name);
			close(fd);
			r_files++;
		}
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "gen"))
		return cmd_gen(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "readall")) {
		int fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			die("open", argv[2]);
		readall_dir(fd, argv[2]);
		printf("%ld %lld\n", r_files, r_bytes);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "seqread")) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", argv[2]);
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		read_fd(fd, argv[2]);
		printf("%lld\n", r_bytes);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "dropcache")) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", argv[2]);
		errno = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		if (errno)
			die("fadvise", argv[2]);
		return 0;
	}
	fprintf(stderr, "usage: benchtool gen|readall|seqread|dropcache ...\n");
	return 2;
}
