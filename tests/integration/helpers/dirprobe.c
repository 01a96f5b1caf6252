/* Directory probes for the unionfs integration tests.
 *   dirprobe types DIR   prints "<d_type letter> <name>" per entry, in readdir order
 *   dirprobe small DIR   prints every name, read with getdents64 and a 320-byte
 *                        buffer (a few entries per call: offsets resumed often)
 *   dirprobe seek DIR    reads DIR once recording telldir() before each entry, then
 *                        checks that seekdir() to each recorded position (forward,
 *                        backward, random) yields the same entry, that the end
 *                        position yields no entry, that rewinddir() repeats the
 *                        same sequence and that no name appears twice.
 * Exits 0 when every check holds; prints what differs otherwise. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	long pos;
	char *name;
};

static char type_letter(unsigned char t)
{
	switch (t) {
	case DT_REG: return 'f';
	case DT_DIR: return 'd';
	case DT_LNK: return 'l';
	case DT_CHR: return 'c';
	case DT_BLK: return 'b';
	case DT_FIFO: return 'p';
	case DT_SOCK: return 's';
	default: return 'U';
	}
}

static void print_name(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\\')
			fputs("\\\\", stdout);
		else
			putchar(*s);
	}
	putchar('\n');
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int types(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d) {
		perror(path);
		return 2;
	}
	errno = 0;
	while ((e = readdir(d))) {
		printf("%c ", type_letter(e->d_type));
		print_name(e->d_name);
	}
	if (errno) {
		perror("readdir");
		return 2;
	}
	closedir(d);
	return 0;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static int small(const char *path)
{
	char buf[320] __attribute__((aligned(8)));
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n, off;

	if (fd < 0) {
		perror(path);
		return 2;
	}
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (off = 0; off < n;) {
			struct linux_dirent64 *e = (struct linux_dirent64 *)(buf + off);
			print_name(e->d_name);
			off += e->d_reclen;
		}
	}
	if (n < 0) {
		perror("getdents64");
		return 2;
	}
	close(fd);
	return 0;
}

static int read_all(DIR *d, struct entry **out, size_t *n_out, long *end_pos)
{
	size_t n = 0, cap = 1024;
	struct entry *v = malloc(cap * sizeof(*v));
	struct dirent *e;

	for (;;) {
		long pos = telldir(d);
		errno = 0;
		e = readdir(d);
		if (!e) {
			if (errno) {
				perror("readdir");
				return -1;
			}
			*end_pos = pos;
			break;
		}
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof(*v));
		v[n].pos = pos;
		v[n].name = strdup(e->d_name);
		n++;
	}
	*out = v;
	*n_out = n;
	return 0;
}

static int probe_at(DIR *d, const struct entry *v, size_t i)
{
	struct dirent *e;

	seekdir(d, v[i].pos);
	errno = 0;
	e = readdir(d);
	if (!e) {
		printf("seekdir to entry %zu (%s): readdir gave nothing (%s)\n", i, v[i].name,
		       errno ? strerror(errno) : "end");
		return 1;
	}
	if (strcmp(e->d_name, v[i].name) != 0) {
		printf("seekdir to entry %zu: expected '%s', got '%s'\n", i, v[i].name, e->d_name);
		return 1;
	}
	return 0;
}

static int seek(const char *path)
{
	DIR *d = opendir(path);
	struct entry *v, *w;
	size_t n, n2, i, step, bad = 0, dups = 0;
	long end_pos, end2;
	char **names;

	if (!d) {
		perror(path);
		return 2;
	}
	if (read_all(d, &v, &n, &end_pos))
		return 2;
	names = malloc((n + 1) * sizeof(*names));
	for (i = 0; i < n; i++)
		names[i] = v[i].name;
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 1; i < n; i++)
		if (strcmp(names[i - 1], names[i]) == 0) {
			if (dups++ < 5)
				printf("duplicate entry '%s'\n", names[i]);
		}
	step = n > 3000 ? n / 1500 : 1;
	for (i = 0; i < n && bad < 10; i += step) /* forward */
		bad += probe_at(d, v, i);
	for (i = n; i-- > 0 && bad < 10;) /* backward */
		if (i % step == 0 || i == n - 1)
			bad += probe_at(d, v, i);
	srand(42);
	for (i = 0; n && i < 1000 && bad < 10; i++) /* random */
		bad += probe_at(d, v, (size_t)rand() % n);
	seekdir(d, end_pos);
	errno = 0;
	if (readdir(d)) {
		printf("seekdir to the end position still gives an entry\n");
		bad++;
	}
	rewinddir(d);
	if (read_all(d, &w, &n2, &end2))
		return 2;
	if (n2 != n) {
		printf("after rewinddir: %zu entries instead of %zu\n", n2, n);
		bad++;
	} else {
		for (i = 0; i < n; i++)
			if (strcmp(v[i].name, w[i].name) != 0) {
				printf("after rewinddir: entry %zu is '%s', was '%s'\n", i, w[i].name,
				       v[i].name);
				bad++;
				break;
			}
	}
	closedir(d);
	printf("entries %zu duplicates %zu seek_errors %zu\n", n, dups, bad);
	return (bad || dups) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "types") == 0)
		return types(argv[2]);
	if (argc == 3 && strcmp(argv[1], "small") == 0)
		return small(argv[2]);
	if (argc == 3 && strcmp(argv[1], "seek") == 0)
		return seek(argv[2]);
	fprintf(stderr, "usage: dirprobe types|small|seek DIR\n");
	return 2;
}
