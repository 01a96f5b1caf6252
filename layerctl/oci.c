/*
 * OCI image layout import. index.json points at a manifest, the manifest at
 * layer blobs; every blob is opened once beneath the layout dir, its sha256
 * checked (libcrypto), and the same fd is then read again for its content,
 * so nothing can swap a blob between the check and the use. Layers are
 * extracted by extract.c, whiteouts and all.
 */
#include "layerctl/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layerctl/import.h"
#include "layerctl/layerimg.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"

#define SHA256_HEX_LEN 64
#define MEDIA_INDEX "application/vnd.oci.image.index.v1+json"

bool oci_is_layout(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd >= 0 && faccessat(fd, "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	       faccessat(fd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int oci_sha256_fd(int fd, char *hex)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[1 << 16], md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	off_t offset = 0;
	ssize_t n;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		return -ENOMEM;
	}
	while ((n = pread(fd, buf, sizeof(buf), offset)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		offset += n;
	}
	if (n == 0)
		EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	if (n < 0)
		return -errno;
	for (unsigned i = 0; i < len; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	return 0;
}

/* "sha256:<64 lower-case hex>" -> the hex part; anything else (a path, another algorithm) is
 * refused. */
static const char *digest_hex(const char *digest)
{
	const char *hex;

	if (!digest || strncmp(digest, "sha256:", 7))
		return NULL;
	hex = digest + 7;
	if (strlen(hex) != SHA256_HEX_LEN || strspn(hex, "0123456789abcdef") != SHA256_HEX_LEN)
		return NULL;
	return hex;
}

/* Opens a blob beneath the layout and checks its digest; the fd is at offset 0. */
static int open_blob(int layout_fd, const char *digest, int *out)
{
	const char *hex = digest_hex(digest);
	char path[128], actual[SHA256_HEX_LEN + 1];
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (!hex)
		return log_errno(-EINVAL, "import: digest '%s'", digest ?: "(none)");
	snprintf(path, sizeof(path), "blobs/sha256/%s", hex);
	fd = path_open_beneath(layout_fd, path, O_RDONLY, 0, false);
	if (fd < 0)
		return log_errno(fd, "import: blob %s", digest);
	r = oci_sha256_fd(fd, actual);
	if (r < 0)
		return log_errno(r, "import: blob %s", digest);
	if (strcmp(actual, hex)) {
		log_error("import: blob %s: its content's sha256 is %s", digest, actual);
		return -EBADMSG;
	}
	*out = TAKE_FD(fd);
	return 0;
}

static int read_json_fd(int fd, struct json_object **out)
{
	*out = json_object_from_fd(fd);
	return *out && json_object_is_type(*out, json_type_object) ? 0 : -EBADMSG;
}

static const char *json_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static struct json_object *first_of(struct json_object *o, const char *key)
{
	struct json_object *a;

	if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array) ||
	    json_object_array_length(a) == 0)
		return NULL;
	return json_object_array_get_idx(a, 0);
}

/* index.json -> the first manifest (through one nested index, as skopeo may write). */
static int load_manifest(int layout_fd, struct json_object **out)
{
	_cleanup_close_ int fd = path_open_beneath(layout_fd, "index.json", O_RDONLY, 0, false);
	struct json_object *index, *desc;
	int r;

	if (fd < 0)
		return fd;
	r = read_json_fd(fd, &index);
	for (int depth = 0; r == 0 && depth < 2; depth++) {
		const char *media;
		bool nested;

		desc = first_of(index, "manifests");
		media = desc ? json_str(desc, "mediaType") : NULL;
		/* Decided now: desc and its strings go with index below. */
		nested = media && !strcmp(media, MEDIA_INDEX);
		close(TAKE_FD(fd));
		r = desc ? open_blob(layout_fd, json_str(desc, "digest"), &fd) : -ENOENT;
		json_object_put(index);
		index = NULL;
		if (r == 0)
			r = read_json_fd(fd, &index);
		if (r == 0 && !nested) {
			*out = index;
			return 0;
		}
	}
	json_object_put(index);
	return r < 0 ? r : -ELOOP;
}

static int import_layer(struct store *s, int layout_fd, struct json_object *desc,
			const struct layer_meta *meta, char *id)
{
	const char *digest = json_str(desc, "digest");
	_cleanup_close_ int fd = -EBADF;
	int r = open_blob(layout_fd, digest, &fd);

	if (r < 0)
		return r;
	return import_tar_fd(s, fd, digest, meta, id);
}

static int list_append(char ***ids, size_t *n, const char *id)
{
	char **grown = realloc(*ids, (*n + 2) * sizeof(**ids));

	if (!grown)
		return -ENOMEM;
	*ids = grown;
	grown[*n] = strdup(id);
	grown[*n + 1] = NULL;
	return grown[(*n)++] ? 0 : -ENOMEM;
}

static int import_layers(struct store *s, int layout_fd, const char *dir,
			 struct json_object *layers, const char *name, char ***ids)
{
	size_t count = json_object_array_length(layers), n = 0;
	char id[LAYER_ID_SIZE] = "", parent[LAYER_ID_SIZE], source[4200];
	int r = 0;

	for (size_t i = 0; r == 0 && i < count; i++) {
		struct json_object *desc = json_object_array_get_idx(layers, i);
		struct layer_meta meta = {.name = i + 1 == count ? name : NULL, .source = source};

		snprintf(parent, sizeof(parent), "%s", id);
		meta.parent = parent[0] ? parent : NULL;
		snprintf(source, sizeof(source), "oci:%s@%s", dir, json_str(desc, "digest") ?: "");
		r = import_layer(s, layout_fd, desc, &meta, id);
		if (r == 0)
			r = list_append(ids, &n, id);
	}
	return r;
}

int oci_import(struct store *s, const char *dir, const char *name, char ***ids)
{
	_cleanup_close_ int layout_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct json_object *manifest = NULL, *layers;
	int r;

	*ids = calloc(1, sizeof(**ids));
	if (!*ids)
		return -ENOMEM;
	if (layout_fd < 0)
		return log_errno(-errno, "import: %s", dir);
	r = load_manifest(layout_fd, &manifest);
	if (r < 0)
		return log_errno(r, "import: %s: reading the manifest", dir);
	if (!json_object_object_get_ex(manifest, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array))
		r = log_errno(-EBADMSG, "import: %s: a manifest without layers", dir);
	else
		r = import_layers(s, layout_fd, dir, layers, name, ids);
	json_object_put(manifest);
	return r;
}
