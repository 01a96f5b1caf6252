/*
 * libarchive and libcrypto, loaded on first use. Linked normally they cost
 * every layerctl process about 4 ms before main() (libarchive pulls in
 * libxml2, ICU and libstdc++), which doubled `layerctl run`'s start-up; only
 * import and export need them. Each function layerctl calls is defined here
 * with the library's own prototype (the compiler checks it against the
 * headers) and forwards to the real one, found with dlsym() on first call.
 * With no reference left, the linker (--as-needed) drops both libraries from
 * the binary. To call another function of either library, add it to the lists.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* The sonames this build was made against (libarchive's has been 13 since 3.0). */
#define ARCHIVE_SONAME "libarchive.so.13"
#define CRYPTO_SONAME "libcrypto.so." STRINGIFY(OPENSSL_VERSION_MAJOR)

/*
 * A missing library stops the program as the dynamic loader would have at start-up: the
 * one exit outside main, since no caller could do anything else.
 */
static void *resolve(void **handle, const char *soname, const char *name)
{
	void *fn;

	if (!*handle)
		*handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
	fn = *handle ? dlsym(*handle, name) : NULL;
	if (!fn) {
		fprintf(stderr, "layerctl: %s: %s\n", soname, dlerror());
		exit(125);
	}
	return fn;
}

/* X(return type, name, (typed params), (args)) */
#define ARCHIVE_FUNCTIONS(X)                                                                       \
	X(void, archive_entry_copy_stat, (struct archive_entry * e, const struct stat *st),        \
	  (e, st))                                                                                 \
	X(__LA_MODE_T, archive_entry_filetype, (struct archive_entry * e), (e))                    \
	X(void, archive_entry_free, (struct archive_entry * e), (e))                               \
	X(la_int64_t, archive_entry_gid, (struct archive_entry * e), (e))                          \
	X(const char *, archive_entry_hardlink, (struct archive_entry * e), (e))                   \
	X(time_t, archive_entry_mtime, (struct archive_entry * e), (e))                            \
	X(long, archive_entry_mtime_nsec, (struct archive_entry * e), (e))                         \
	X(struct archive_entry *, archive_entry_new, (void), ())                                   \
	X(const char *, archive_entry_pathname, (struct archive_entry * e), (e))                   \
	X(__LA_MODE_T, archive_entry_perm, (struct archive_entry * e), (e))                        \
	X(dev_t, archive_entry_rdev, (struct archive_entry * e), (e))                              \
	X(void, archive_entry_set_filetype, (struct archive_entry * e, unsigned int t), (e, t))    \
	X(void, archive_entry_set_hardlink, (struct archive_entry * e, const char *s), (e, s))     \
	X(void, archive_entry_set_mtime, (struct archive_entry * e, time_t t, long ns),            \
	  (e, t, ns))                                                                              \
	X(void, archive_entry_set_pathname, (struct archive_entry * e, const char *s), (e, s))     \
	X(void, archive_entry_set_perm, (struct archive_entry * e, __LA_MODE_T m), (e, m))         \
	X(void, archive_entry_set_size, (struct archive_entry * e, la_int64_t n), (e, n))          \
	X(void, archive_entry_set_symlink, (struct archive_entry * e, const char *s), (e, s))      \
	X(la_int64_t, archive_entry_size, (struct archive_entry * e), (e))                         \
	X(const char *, archive_entry_symlink, (struct archive_entry * e), (e))                    \
	X(la_int64_t, archive_entry_uid, (struct archive_entry * e), (e))                          \
	X(void, archive_entry_xattr_add_entry,                                                     \
	  (struct archive_entry * e, const char *name, const void *value, size_t size),            \
	  (e, name, value, size))                                                                  \
	X(int, archive_entry_xattr_next,                                                           \
	  (struct archive_entry * e, const char **name, const void **value, size_t *size),         \
	  (e, name, value, size))                                                                  \
	X(int, archive_entry_xattr_reset, (struct archive_entry * e), (e))                         \
	X(const char *, archive_error_string, (struct archive * a), (a))                           \
	X(int, archive_read_data_block,                                                            \
	  (struct archive * a, const void **buf, size_t *size, la_int64_t *offset),                \
	  (a, buf, size, offset))                                                                  \
	X(int, archive_read_free, (struct archive * a), (a))                                       \
	X(struct archive *, archive_read_new, (void), ())                                          \
	X(int, archive_read_next_header, (struct archive * a, struct archive_entry * *e), (a, e))  \
	X(int, archive_read_open_fd, (struct archive * a, int fd, size_t block_size),              \
	  (a, fd, block_size))                                                                     \
	X(int, archive_read_support_filter_all, (struct archive * a), (a))                         \
	X(int, archive_read_support_format_gnutar, (struct archive * a), (a))                      \
	X(int, archive_read_support_format_tar, (struct archive * a), (a))                         \
	X(int, archive_write_close, (struct archive * a), (a))                                     \
	X(la_ssize_t, archive_write_data, (struct archive * a, const void *buf, size_t size),      \
	  (a, buf, size))                                                                          \
	X(struct archive *, archive_write_disk_new, (void), ())                                    \
	X(int, archive_write_disk_set_options, (struct archive * a, int flags), (a, flags))        \
	X(int, archive_write_free, (struct archive * a), (a))                                      \
	X(int, archive_write_header, (struct archive * a, struct archive_entry * e), (a, e))       \
	X(struct archive *, archive_write_new, (void), ())                                         \
	X(int, archive_write_open_filename, (struct archive * a, const char *file), (a, file))     \
	X(int, archive_write_set_format_pax_restricted, (struct archive * a), (a))

#define CRYPTO_FUNCTIONS(X)                                                                        \
	X(int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char *md, unsigned int *size),      \
	  (ctx, md, size))                                                                         \
	X(int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD *type, ENGINE *impl),            \
	  (ctx, type, impl))                                                                       \
	X(int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void *data, size_t len),                 \
	  (ctx, data, len))                                                                        \
	X(void, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))                                        \
	X(EVP_MD_CTX *, EVP_MD_CTX_new, (void), ())                                                \
	X(const EVP_MD *, EVP_sha256, (void), ())

static void *archive_handle, *crypto_handle;

/* Each forwarder keeps its own pointer, so a call costs one branch after the first. */
#define FORWARD(handle, soname, ret, name, params, args)                                           \
	ret name params                                                                            \
	{                                                                                          \
		static ret(*real) params;                                                          \
                                                                                                   \
		if (!real)                                                                         \
			real = (ret(*) params)resolve(&handle, soname, #name);                     \
		return real args;                                                                  \
	}
#define FORWARD_ARCHIVE(ret, name, params, args)                                                   \
	FORWARD(archive_handle, ARCHIVE_SONAME, ret, name, params, args)
#define FORWARD_CRYPTO(ret, name, params, args)                                                    \
	FORWARD(crypto_handle, CRYPTO_SONAME, ret, name, params, args)

ARCHIVE_FUNCTIONS(FORWARD_ARCHIVE)
CRYPTO_FUNCTIONS(FORWARD_CRYPTO)
