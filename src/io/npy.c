/* npy.c — reads and writes NumPy .npy files (format versions 1.0, 2.0, 3.0):
 * magic, version, header length, a Python dict literal describing dtype, order
 * and shape, then the raw array. Every field is checked. Either byte order
 * and either memory order (C or Fortran) is read; what is written is
 * little-endian float32 in C order. */
#include "io.h"
#include <stdlib.h>

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
#define NPY_DESCRS "<f4 <f8 <f2 <i8 <i4 <i2 |i1 <u8 <u4 <u2 |u1 |b1"

/* A cursor over the header dict; off0 is the file offset of `beg`, so errors
 * can name the byte where parsing stopped. */
typedef struct {
    const char *beg, *p, *end;
    size_t off0;
    const char *what;
} npy_cur;

static long long cur_off(const npy_cur *c) { return (long long)(c->off0 + (size_t)(c->p - c->beg)); }

static void skip_ws(npy_cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int expect_char(npy_cur *c, char ch, const char *context) {
    skip_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return nb_error("%s: header: expected '%c' %s at offset %lld", c->what, ch, context, cur_off(c));
    c->p++;
    return 0;
}

/* A quoted Python string without escapes (all that npy headers hold). */
static int parse_str(npy_cur *c, char *out, size_t cap, const char *context) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return nb_error("%s: header: expected a quoted string for %s at offset %lld", c->what, context, cur_off(c));
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return nb_error("%s: header: unexpected string for %s at offset %lld", c->what, context, cur_off(c));
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return nb_error("%s: header: unterminated string for %s", c->what, context);
    c->p++;
    out[n] = 0;
    return 0;
}

/* 'shape': (d0, d1, ...) as Python writes tuples: () or (n,) or (a, b[,]). */
static int parse_shape(npy_cur *c, int *ndim, int64_t *shape) {
    if (expect_char(c, '(', "to open the 'shape' tuple") != 0) return -1;
    int n = 0;
    bool comma = false;
    for (;;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            break;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return nb_error("%s: header: expected a non-negative integer in 'shape' at offset %lld", c->what,
                            cur_off(c));
        if (n == NB_MAXDIM)
            return nb_error("%s: header: 'shape' has more than %d dimensions (offset %lld)", c->what, NB_MAXDIM,
                            cur_off(c));
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            int dgt = *c->p - '0';
            if (v > (INT64_MAX - dgt) / 10)
                return nb_error("%s: header: 'shape' entry too large at offset %lld", c->what, cur_off(c));
            v = v * 10 + dgt;
            c->p++;
        }
        if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++; /* Python 2 long */
        shape[n++] = v;
        skip_ws(c);
        comma = false;
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            comma = true;
        } else if (c->p >= c->end || *c->p != ')')
            return nb_error("%s: header: expected ',' or ')' in 'shape' at offset %lld", c->what, cur_off(c));
    }
    if (n == 1 && !comma)
        return nb_error("%s: header: 'shape' (n) is not a tuple; a 1-D shape is written (n,)", c->what);
    *ndim = n;
    return 0;
}

/* Maps a descr such as '<f4' to an element type. */
static int parse_descr(const char *d, const char *what, nb__dtype *t, bool *big) {
    static const struct { const char *code; nb__dtype t; } codes[] = {
        {"f4", NB_DT_F32}, {"f8", NB_DT_F64}, {"f2", NB_DT_F16}, {"i8", NB_DT_I64}, {"i4", NB_DT_I32},
        {"i2", NB_DT_I16}, {"i1", NB_DT_I8},  {"u1", NB_DT_U8},  {"b1", NB_DT_BOOL}, {"u8", NB_DT_U64},
        {"u4", NB_DT_U32}, {"u2", NB_DT_U16},
    };
    char order = d[0];
    size_t k = 0, nc = sizeof codes / sizeof codes[0];
    if (order) while (k < nc && strcmp(codes[k].code, d + 1) != 0) k++;
    if (!order || k == nc || !strchr("<>|=", order))
        return nb_error("%s: header: dtype '%.20s' is not supported (expected one of " NPY_DESCRS
                        ", or the multi-byte ones with '>')", what, d);
    int size = nb__dtype_size(codes[k].t);
    /* Byte order only matters for multi-byte types; single bytes may say
     * anything, as NumPy itself accepts. Big-endian ('>', what NumPy writes
     * on such machines or for arr.astype('>f4')) is swapped on reading. */
    if (size > 1 && order != '<' && order != '>')
        return nb_error("%s: header: dtype '%s' lacks a byte-order marker, expected '<%s' or '>%s'", what, d, d + 1,
                        d + 1);
    *t = codes[k].t;
    *big = size > 1 && order == '>';
    return 0;
}

/* Reverses the bytes of each of n elements of `size` bytes. */
static void swap_bytes(uint8_t *p, int64_t n, int size) {
    for (int64_t i = 0; i < n; i++, p += size)
        for (int a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* A Fortran-order array (np.save of a transposed array writes one: the
 * first index varies fastest in the file) put into C order: element (i0, ..,
 * in-1) of src sits at i0 + s0 * (i1 + s1 * (...)). */
static void fortran_to_c(const float *src, float *dst, int ndim, const int64_t *shape, int64_t numel) {
    int64_t idx[NB_MAXDIM] = {0}, stride[NB_MAXDIM];
    for (int d = 0; d < ndim; d++) stride[d] = d ? stride[d - 1] * shape[d - 1] : 1;
    int64_t off = 0;
    for (int64_t i = 0; i < numel; i++) {
        dst[i] = src[off];
        /* The next C-order index: the last dimension fastest. */
        for (int d = ndim - 1; d >= 0; d--) {
            off += stride[d];
            if (++idx[d] < shape[d]) break;
            off -= stride[d] * shape[d];
            idx[d] = 0;
        }
    }
}

nb_tensor *nb_npy_parse(const uint8_t *buf, size_t len, const char *what) {
    if (!what) what = "npy";
    if (len < 10) {
        nb_error("%s: %zu bytes, too short for an npy preamble (10 bytes)", what, len);
        return NULL;
    }
    if (memcmp(buf, npy_magic, 6) != 0) {
        nb_error("%s: bad magic at offset 0, expected \\x93NUMPY (not an .npy file)", what);
        return NULL;
    }
    int major = buf[6], minor = buf[7];
    if (minor != 0 || major < 1 || major > 3) {
        nb_error("%s: unsupported format version %d.%d at offset 6, expected 1.0, 2.0 or 3.0", what, major, minor);
        return NULL;
    }
    /* Version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one. */
    size_t hstart = major == 1 ? 10 : 12;
    if (len < hstart) {
        nb_error("%s: %zu bytes, too short for a version %d.0 preamble (%zu bytes)", what, len, major, hstart);
        return NULL;
    }
    size_t hlen = major == 1 ? nb__le16(buf + 8) : nb__le32(buf + 8);
    if (hlen > len - hstart) {
        nb_error("%s: header length %zu at offset 8 is larger than the %zu bytes that follow (truncated file?)", what,
                 hlen, len - hstart);
        return NULL;
    }
    npy_cur c = {(const char *)buf + hstart, (const char *)buf + hstart, (const char *)buf + hstart + hlen, hstart,
                 what};
    char descr[24] = "", key[24];
    bool have_descr = false, have_order = false, have_shape = false, fortran = false, big = false;
    int ndim = 0;
    int64_t shape[NB_MAXDIM];
    if (expect_char(&c, '{', "to open the header dict") != 0) return NULL;
    for (;;) {
        skip_ws(&c);
        if (c.p < c.end && *c.p == '}') {
            c.p++;
            break;
        }
        long long koff = cur_off(&c);
        if (parse_str(&c, key, sizeof key, "a header key") != 0) return NULL;
        if (expect_char(&c, ':', "after a header key") != 0) return NULL;
        bool *seen = strcmp(key, "descr") == 0           ? &have_descr
                     : strcmp(key, "fortran_order") == 0 ? &have_order
                     : strcmp(key, "shape") == 0         ? &have_shape
                                                         : NULL;
        if (!seen) {
            nb_error("%s: header: unexpected key '%s' at offset %lld (expected descr, fortran_order, shape)", what, key,
                     koff);
            return NULL;
        }
        if (*seen) {
            nb_error("%s: header: key '%s' appears twice (offset %lld)", what, key, koff);
            return NULL;
        }
        *seen = true;
        if (seen == &have_descr) {
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[') {
                nb_error("%s: header: structured dtypes (a list 'descr' at offset %lld) are not supported", what,
                         cur_off(&c));
                return NULL;
            }
            if (parse_str(&c, descr, sizeof descr, "'descr'") != 0) return NULL;
        } else if (seen == &have_order) {
            skip_ws(&c);
            if ((size_t)(c.end - c.p) >= 4 && memcmp(c.p, "True", 4) == 0) {
                fortran = true;
                c.p += 4;
            } else if ((size_t)(c.end - c.p) >= 5 && memcmp(c.p, "False", 5) == 0) {
                c.p += 5;
            } else {
                nb_error("%s: header: expected True or False for 'fortran_order' at offset %lld", what, cur_off(&c));
                return NULL;
            }
        } else if (parse_shape(&c, &ndim, shape) != 0)
            return NULL;
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') c.p++;
        else if (c.p >= c.end || *c.p != '}') {
            nb_error("%s: header: expected ',' or '}' at offset %lld", what, cur_off(&c));
            return NULL;
        }
    }
    skip_ws(&c);
    if (c.p != c.end) {
        nb_error("%s: header: unexpected data after the dict at offset %lld", what, cur_off(&c));
        return NULL;
    }
    if (!have_descr || !have_order || !have_shape) {
        nb_error("%s: header lacks '%s'", what, !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
        return NULL;
    }
    nb__dtype dt = NB_DT_F32;
    if (parse_descr(descr, what, &dt, &big) != 0) return NULL;
    int64_t numel = nb_shape_numel(ndim, shape), esize = nb__dtype_size(dt);
    if (numel < 0 || numel > INT64_MAX / esize) {
        nb_error("%s: header: shape is too large (element count overflows)", what);
        return NULL;
    }
    size_t doff = hstart + hlen, have = len - doff;
    if ((uint64_t)numel * (uint64_t)esize != have) {
        nb_error("%s: %zu bytes of data at offset %zu, expected %lld (%lld elements of '%s')%s", what, have, doff,
                 (long long)(numel * esize), (long long)numel, descr,
                 have < (uint64_t)numel * (uint64_t)esize ? ": truncated file" : ": trailing bytes");
        return NULL;
    }
    nb_tensor *t = nb__tensor_try_new(ndim, shape);
    if (!t) {
        nb_error("%s: out of memory for %lld elements", what, (long long)numel);
        return NULL;
    }
    /* A big-endian array is swapped in a copy; a Fortran-order one is
     * converted into a scratch buffer and then put in C order. */
    uint8_t *swapped = big ? nb__malloc((size_t)(numel * esize) + 1) : NULL;
    float *scratch = fortran && ndim > 1 ? nb__malloc(sizeof(float) * (size_t)numel + 1) : NULL;
    if ((big && !swapped) || (fortran && ndim > 1 && !scratch)) {
        free(swapped);
        free(scratch);
        nb_tensor_free(t);
        nb_error("%s: out of memory for %lld elements", what, (long long)numel);
        return NULL;
    }
    const uint8_t *src = buf + doff;
    if (swapped) {
        memcpy(swapped, src, (size_t)(numel * esize));
        swap_bytes(swapped, numel, (int)esize);
        src = swapped;
    }
    int rc = nb__convert_to_f32(dt, src, numel, scratch ? scratch : t->data, what, doff);
    if (rc == 0 && scratch) fortran_to_c(scratch, t->data, ndim, shape, numel);
    free(swapped);
    free(scratch);
    if (rc != 0) {
        nb_tensor_free(t);
        return NULL;
    }
    return t;
}

nb_tensor *nb_npy_read(const char *path) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return NULL;
    nb_tensor *t = nb_npy_parse(buf, len, path);
    free(buf);
    return t;
}

int nb_npy_write(const char *path, const nb_tensor *t) {
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < t->ndim; d++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, t->ndim == 1 ? ",), }" : "), }");
    /* As NumPy does: pad with spaces and end with a newline so that the data
     * starts at a multiple of 64 bytes. */
    size_t hlen = ((size_t)n + 1 + 10 + 63) / 64 * 64 - 10, bytes = (size_t)t->size * sizeof(float);
    float *copy;
    const float *v = nb__host_values(t, &copy); /* a GPU tensor is read back */
    uint8_t *file = v ? nb__malloc(10 + hlen + bytes) : NULL;
    if (!file) {
        free(copy);
        return nb_error("%s: out of memory", path);
    }
    memcpy(file, npy_magic, 6);
    file[6] = 1;
    file[7] = 0;
    nb__put_le16(file + 8, (uint16_t)hlen);
    memcpy(file + 10, dict, (size_t)n);
    memset(file + 10 + n, ' ', hlen - (size_t)n - 1);
    file[10 + hlen - 1] = '\n';
    uint8_t *p = file + 10 + hlen;
    for (int64_t i = 0; i < t->size; i++, p += 4) {
        uint32_t b;
        memcpy(&b, &v[i], 4);
        nb__put_le32(p, b);
    }
    free(copy);
    int rc = nb_write_file_atomic(path, file, 10 + hlen + bytes);
    free(file);
    return rc;
}
