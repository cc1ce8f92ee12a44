/* idx.c — the IDX format of MNIST and Fashion-MNIST (gzip-compressed or
 * plain): a big-endian magic 0x000008NN (unsigned bytes, NN dimensions), NN
 * big-endian u32 sizes, then the bytes. Checked field by field. */
#include "io.h"
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

/* Decompressed files above this are refused: MNIST's largest is 47 MB, and a
 * small gzip file can expand a thousandfold. */
#define IDX_MAX ((uint64_t)8 << 30)

/* Checks the magic and sizes of an IDX header in buf (len bytes available, at
 * least the magic). Fills dims and the header and data sizes. */
static int idx_header(const uint8_t *buf, size_t len, const char *what, int ndim, int64_t *dims, size_t *hdr,
                      uint64_t *data_bytes) {
    uint32_t want = 0x800u | (uint32_t)ndim;
    if (len < 4) return nb_error("%s: %zu bytes, too short for the 4-byte IDX magic", what, len);
    uint32_t magic = nb__be32(buf);
    if (magic != want) {
        if ((magic & 0xffff0000u) != 0 || (magic & 0xff00u) < 0x0800u || (magic & 0xff00u) > 0x0e00u)
            return nb_error("%s: bad magic 0x%08x at offset 0, expected 0x%08x (not an IDX file)", what, magic, want);
        if ((magic & 0xff00u) != 0x0800u)
            return nb_error("%s: IDX element type 0x%02x at offset 2 is not supported, expected 0x08 (unsigned bytes)",
                            what, (magic >> 8) & 0xffu);
        return nb_error("%s: IDX file has %u dimensions (offset 3), expected %d (magic 0x%08x)", what, magic & 0xffu,
                        ndim, want);
    }
    *hdr = 4 + 4 * (size_t)ndim;
    if (len < *hdr)
        return nb_error("%s: truncated: %zu bytes, the IDX header needs %zu", what, len, *hdr);
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        dims[d] = nb__be32(buf + 4 + 4 * d);
        /* Each size is below 2^32, so the product overflows only through
         * several dimensions: check before multiplying. */
        if (dims[d] && n > IDX_MAX / (uint64_t)dims[d])
            return nb_error("%s: IDX sizes (offset %d on) describe more than %llu bytes", what, 4,
                            (unsigned long long)IDX_MAX);
        n *= (uint64_t)dims[d];
    }
    *data_bytes = n;
    return 0;
}

const uint8_t *nb_idx_parse(const uint8_t *buf, size_t len, const char *what, int ndim, int64_t *dims) {
    if (!what) what = "idx";
    if (ndim < 1 || ndim > 3) {
        nb_error("%s: nb_idx_parse: ndim %d, expected 1 to 3", what, ndim);
        return NULL;
    }
    size_t hdr = 0;
    uint64_t bytes = 0;
    if (idx_header(buf, len, what, ndim, dims, &hdr, &bytes) != 0) return NULL;
    if (len - hdr != bytes) {
        nb_error("%s: %zu bytes of data at offset %zu, expected %llu%s", what, len - hdr, hdr,
                 (unsigned long long)bytes, len - hdr < bytes ? ": truncated file" : ": trailing bytes");
        return NULL;
    }
    return buf + hdr;
}

/* Reads at most n bytes through zlib (plain files pass through unchanged);
 * returns the count, or -1 with an error naming the file. */
static int64_t gz_read_upto(gzFile f, uint8_t *dst, uint64_t n, const char *path) {
    uint64_t got = 0;
    while (got < n) {
        uint64_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, dst + got, (unsigned)want);
        if (r < 0) {
            int code;
            const char *msg = gzerror(f, &code);
            return nb_error("%s: read error after %llu bytes: %s", path, (unsigned long long)got,
                            code == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0) {
            /* End of input. Z_BUF_ERROR means it came inside a gzip stream
             * (a cut file, even one short of the CRC trailer only). */
            int code;
            gzerror(f, &code);
            if (code == Z_BUF_ERROR)
                return nb_error("%s: truncated gzip stream (unexpected end of file after %llu bytes)", path,
                                (unsigned long long)got);
            break;
        }
        got += (uint64_t)r;
    }
    return (int64_t)got;
}

/* Reads a whole IDX file with `ndim` dimensions into memory. Memory grows with
 * the bytes actually present, never with what the header claims. */
static uint8_t *idx_slurp(const char *path, int ndim, size_t *len) {
    if (!path) {
        nb_error("IDX: the path is NULL");
        return NULL;
    }
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        nb_error("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    uint8_t head[16];
    int64_t dims[3];
    size_t hdr = 4 + 4 * (size_t)ndim;
    uint64_t bytes = 0;
    uint8_t *buf = NULL;
    int64_t got = gz_read_upto(f, head, hdr, path);
    if (got < 0 || idx_header(head, (size_t)got, path, ndim, dims, &hdr, &bytes) != 0) goto fail;
    /* One byte more than expected, to notice trailing data. */
    uint64_t total = hdr + bytes + 1, cap = total < (1u << 20) ? total : (1u << 20), n = hdr;
    if (!(buf = nb__malloc(cap))) goto oom;
    memcpy(buf, head, hdr);
    for (;;) {
        int64_t r = gz_read_upto(f, buf + n, cap - n, path);
        if (r < 0) goto fail;
        n += (uint64_t)r;
        if (n < cap || cap == total) break;
        cap = cap * 2 < total ? cap * 2 : total;
        uint8_t *nb = nb__realloc(buf, cap);
        if (!nb) goto oom;
        buf = nb;
    }
    gzclose(f);
    *len = n;
    return buf;
oom:
    nb_error("%s: out of memory", path);
fail:
    free(buf);
    gzclose(f);
    return NULL;
}

/* The data bytes of an IDX file with ndim dimensions, moved to the start of
 * their own malloc'd block (freed by the caller); NULL with an error. */
static uint8_t *idx_load(const char *path, int ndim, int64_t *dims) {
    size_t len;
    uint8_t *buf = idx_slurp(path, ndim, &len);
    if (!buf) return NULL;
    const uint8_t *data = nb_idx_parse(buf, len, path, ndim, dims);
    if (!data) {
        free(buf);
        return NULL;
    }
    size_t bytes = len - (size_t)(data - buf);
    memmove(buf, data, bytes);
    uint8_t *shrunk = nb__realloc(buf, bytes ? bytes : 1);
    return shrunk ? shrunk : buf;
}

nb_tensor *nb_idx_read_images(const char *path, int64_t *n, int64_t *h, int64_t *w) {
    int64_t dims[3];
    uint8_t *px = idx_load(path, 3, dims);
    if (!px) return NULL;
    nb_tensor *t = nb__tensor_try_new(3, dims);
    if (!t) {
        nb_error("%s: out of memory for %lld images", path, (long long)dims[0]);
        free(px);
        return NULL;
    }
    /* As torchvision's ToTensor: float(byte) / 255 in float32. */
    for (int64_t i = 0; i < t->size; i++) t->data[i] = (float)px[i] / 255.f;
    free(px);
    if (n) *n = dims[0];
    if (h) *h = dims[1];
    if (w) *w = dims[2];
    return t;
}

int32_t *nb_idx_read_labels(const char *path, int64_t *n) {
    int64_t dims[1];
    uint8_t *lb = idx_load(path, 1, dims);
    if (!lb) return NULL;
    int32_t *y = nb__malloc((size_t)dims[0] * sizeof *y + 1);
    if (!y) nb_error("%s: out of memory for %lld labels", path, (long long)dims[0]);
    else {
        for (int64_t i = 0; i < dims[0]; i++) y[i] = lb[i];
        if (n) *n = dims[0];
    }
    free(lb);
    return y;
}

/* dir/name, or dir/name.gz when only that exists (the form MNIST ships in),
 * or either with a '.' for the last '-' ("train-images.idx3-ubyte": the
 * copies on Kaggle and in some archives). */
static char *find_file(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 8;
    char *p = nb__malloc(n), dotted[64];
    if (!p) {
        nb_error("%s: out of memory", dir);
        return NULL;
    }
    snprintf(dotted, sizeof dotted, "%s", name);
    char *dash = strstr(dotted, "-idx");
    if (dash) *dash = '.';
    const char *forms[4][2] = {{name, ""}, {name, ".gz"}, {dotted, ""}, {dotted, ".gz"}};
    for (int k = 0; k < 4; k++) {
        snprintf(p, n, "%s/%s%s", dir, forms[k][0], forms[k][1]);
        if (access(p, R_OK) == 0) return p;
    }
    nb_error("%s: none of %s, %s.gz, %s or %s.gz found (or not readable)", dir, name, name, dotted, dotted);
    free(p);
    return NULL;
}

int nb_mnist_load(const char *dir, bool train, nb_dataset *out) {
    memset(out, 0, sizeof *out);
    if (!dir) return nb_error("mnist: the folder is NULL");
    const char *split = train ? "train" : "t10k";
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    char *ipath = find_file(dir, name);
    if (!ipath) return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    char *lpath = find_file(dir, name);
    if (!lpath) {
        free(ipath);
        return -1;
    }
    int64_t dx[3], dy[1];
    int rc = -1;
    /* Pixels stay bytes (a quarter of the memory of floats); batches scale
     * them by 1/255 on the way into the network. */
    uint8_t *x = idx_load(ipath, 3, dx), *y = x ? idx_load(lpath, 1, dy) : NULL;
    int32_t *labels = NULL;
    if (!y) goto done;
    /* Any image size and any byte label: MNIST-format sets other than
     * MNIST (EMNIST's 47 or 62 classes, KMNIST-49, 32x32 sets) load too; the
     * commands check the network's inputs and outputs against shape and
     * nclass. */
    if (dx[1] == 0 || dx[2] == 0) {
        nb_error("%s: images are %lldx%lld (offset 8); expected at least 1x1", ipath, (long long)dx[1],
                 (long long)dx[2]);
        goto done;
    }
    if (dx[0] != dy[0]) {
        nb_error("%s: %lld images, but %s has %lld labels", ipath, (long long)dx[0], lpath, (long long)dy[0]);
        goto done;
    }
    if (dx[0] == 0) {
        nb_error("%s: no images", ipath);
        goto done;
    }
    int maxy = 0;
    for (int64_t i = 0; i < dy[0]; i++)
        if (y[i] > maxy) maxy = y[i];
    if (!(labels = nb__malloc((size_t)dy[0] * sizeof *labels))) {
        nb_error("%s: out of memory for %lld labels", lpath, (long long)dy[0]);
        goto done;
    }
    for (int64_t i = 0; i < dy[0]; i++) labels[i] = y[i];
    out->n = dx[0];
    out->nd = 3;
    out->shape[0] = 1;
    out->shape[1] = dx[1];
    out->shape[2] = dx[2];
    out->u8 = x;
    out->f32 = NULL;
    out->y = labels;
    out->nclass = maxy + 1;
    x = NULL;
    rc = 0;
done:
    free(x);
    free(y);
    free(ipath);
    free(lpath);
    return rc;
}
