/* safetensors.c — reads and writes safetensors model files: an 8-byte
 * little-endian header length N, N bytes of JSON, then the data buffer. Every
 * field is checked; a defect gives an error naming the file, the field or
 * offset and what was expected. */
#include "io.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* The reference implementation's limit: a header this large is an attack or
 * corruption, never a real model. */
#define ST_HEADER_MAX 100000000ull
/* JSON numbers are doubles: integers above 2^53 are not exact. */
#define ST_INT_MAX 9007199254740992.0

static const struct { const char *name; nb__dtype t; } st_dtypes[] = {
    {"F32", NB_DT_F32}, {"F16", NB_DT_F16}, {"BF16", NB_DT_BF16}, {"F64", NB_DT_F64}, {"I64", NB_DT_I64},
    {"I32", NB_DT_I32}, {"I16", NB_DT_I16}, {"I8", NB_DT_I8},    {"U8", NB_DT_U8},   {"BOOL", NB_DT_BOOL},
    {"U64", NB_DT_U64}, {"U32", NB_DT_U32}, {"U16", NB_DT_U16},
};
#define ST_DTYPE_LIST "F32 F16 BF16 F64 I64 I32 I16 I8 U64 U32 U16 U8 BOOL"

/* One tensor's header entry, validated, before its data is converted. */
typedef struct {
    const char *name; /* points into the cJSON tree */
    nb__dtype dt;
    int ndim;
    int64_t shape[NB_MAXDIM];
    int64_t numel;
    uint64_t begin, end; /* relative to the data buffer */
} st_info;

void nb_st_free(nb_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) {
        free(st->entries[i].name);
        nb_tensor_free(st->entries[i].t);
    }
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->entries);
    free(st->meta_keys);
    free(st->meta_vals);
    free(st);
}

nb_tensor *nb_st_get(const nb_safetensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->entries[i].name, name) == 0) return st->entries[i].t;
    return NULL;
}

const char *nb_st_meta(const nb_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

/* --- reading ------------------------------------------------------------ */

/* A JSON number that is an exact non-negative integer; -1 otherwise. */
static int64_t json_uint(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_INT_MAX) || d != floor(d)) return -1;
    return (int64_t)d;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One of two equal strings in names (which it sorts), or NULL. Sorting keeps
 * this O(n log n) for headers with millions of names. */
static const char *find_duplicate(const char **names, int n) {
    qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static int cmp_begin(const void *a, const void *b) {
    const st_info *x = *(const st_info *const *)a, *y = *(const st_info *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = nb__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Checks one tensor entry {"dtype": .., "shape": [..], "data_offsets": [b, e]}. */
static int parse_info(const cJSON *e, const char *what, uint64_t buf_len, st_info *info) {
    const char *name = e->string;
    info->name = name;
    if (!cJSON_IsObject(e)) return nb_error("%s: header: tensor '%.80s' must be a JSON object", what, name);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    /* Walk the fields ourselves: cJSON's lookup is case-insensitive and takes
     * the first of duplicated keys, and a duplicate here is ambiguous. */
    for (const cJSON *f = e->child; f; f = f->next) {
        const cJSON **slot = strcmp(f->string, "dtype") == 0           ? &dtype
                             : strcmp(f->string, "shape") == 0         ? &shape
                             : strcmp(f->string, "data_offsets") == 0 ? &offs
                                                                       : NULL;
        if (!slot) continue; /* unknown fields are allowed, as in the reference */
        if (*slot) return nb_error("%s: header: tensor '%.80s' has field '%s' twice", what, name, f->string);
        *slot = f;
    }
    if (!cJSON_IsString(dtype))
        return nb_error("%s: header: tensor '%.80s': expected a string field 'dtype'", what, name);
    size_t k = 0, nd = sizeof st_dtypes / sizeof st_dtypes[0];
    while (k < nd && strcmp(st_dtypes[k].name, dtype->valuestring) != 0) k++;
    if (k == nd)
        return nb_error("%s: header: tensor '%.80s': dtype '%.40s' is not supported (expected one of " ST_DTYPE_LIST ")",
                        what, name, dtype->valuestring);
    info->dt = st_dtypes[k].t;

    if (!cJSON_IsArray(shape))
        return nb_error("%s: header: tensor '%.80s': expected an array field 'shape'", what, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > NB_MAXDIM)
        return nb_error("%s: header: tensor '%.80s': shape has %d dimensions, at most %d supported", what, name, ndim,
                        NB_MAXDIM);
    info->ndim = ndim;
    int d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++) {
        int64_t v = json_uint(s);
        if (v < 0)
            return nb_error("%s: header: tensor '%.80s': shape[%d] must be an integer in [0, 2^53]", what, name, d);
        info->shape[d] = v;
    }
    info->numel = nb_shape_numel(ndim, info->shape);
    int64_t esize = nb__dtype_size(info->dt);
    if (info->numel < 0 || info->numel > INT64_MAX / esize)
        return nb_error("%s: header: tensor '%.80s': shape is too large (element count overflows)", what, name);

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return nb_error("%s: header: tensor '%.80s': expected 'data_offsets' as [begin, end]", what, name);
    int64_t b = json_uint(offs->child), en = json_uint(offs->child->next);
    if (b < 0 || en < 0)
        return nb_error("%s: header: tensor '%.80s': data_offsets must be integers in [0, 2^53]", what, name);
    if (b > en)
        return nb_error("%s: header: tensor '%.80s': data_offsets [%lld, %lld] has begin after end", what, name,
                        (long long)b, (long long)en);
    if ((uint64_t)en > buf_len)
        return nb_error("%s: header: tensor '%.80s': data_offsets [%lld, %lld] extend past the %llu-byte data buffer",
                        what, name, (long long)b, (long long)en, (unsigned long long)buf_len);
    if (en - b != info->numel * esize)
        return nb_error("%s: header: tensor '%.80s': data_offsets [%lld, %lld] span %lld bytes, expected %lld "
                        "(%lld elements of %s)",
                        what, name, (long long)b, (long long)en, (long long)(en - b), (long long)(info->numel * esize),
                        (long long)info->numel, st_dtypes[k].name);
    info->begin = (uint64_t)b;
    info->end = (uint64_t)en;
    return 0;
}

/* Fills st's metadata from the "__metadata__" object. */
static int parse_meta(const cJSON *m, const char *what, nb_safetensors *st) {
    if (!cJSON_IsObject(m)) return nb_error("%s: header: '__metadata__' must be a JSON object of strings", what);
    int n = cJSON_GetArraySize(m);
    st->meta_keys = nb__calloc((size_t)n + 1, sizeof(char *));
    st->meta_vals = nb__calloc((size_t)n + 1, sizeof(char *));
    const char **keys = nb__malloc(((size_t)n + 1) * sizeof(char *));
    if (!st->meta_keys || !st->meta_vals || !keys) {
        free(keys);
        return nb_error("%s: out of memory for %d metadata entries", what, n);
    }
    int i = 0;
    for (const cJSON *v = m->child; v; v = v->next, i++) {
        if (!cJSON_IsString(v)) {
            free(keys);
            return nb_error("%s: header: __metadata__ value of '%.80s' must be a string", what, v->string);
        }
        keys[i] = v->string;
    }
    const char *dup = find_duplicate(keys, n);
    free(keys);
    if (dup) return nb_error("%s: header: __metadata__ has key '%.80s' twice", what, dup);
    for (const cJSON *v = m->child; v; v = v->next) {
        char *k = dup_str(v->string), *s = dup_str(v->valuestring);
        if (!k || !s) {
            free(k);
            free(s);
            return nb_error("%s: out of memory for metadata", what);
        }
        st->meta_keys[st->n_meta] = k;
        st->meta_vals[st->n_meta++] = s;
    }
    return 0;
}

/* cJSON would cut a string at an escaped NUL (\u0000) and so silently rename a
 * tensor; refuse those. Backslashes come in pairs outside escapes, so a
 * left-to-right scan that skips each escaped character sees every escape. */
static int64_t find_escaped_nul(const char *h, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (h[i] != '\\') continue;
        if (h[i + 1] == 'u' && i + 5 < n && memcmp(h + i + 2, "0000", 4) == 0) return (int64_t)i;
        i++;
    }
    return -1;
}

nb_safetensors *nb_st_parse(const uint8_t *buf, size_t len, const char *what) {
    if (!what) what = "safetensors";
    /* A file recognizably of another kind is named as such; unrecognized
     * bytes go on to the checks below, which say what is wrong where. */
    nb_file_kind kind = nb_sniff(buf, len);
    if (kind != NB_FILE_SAFETENSORS && kind != NB_FILE_FIT_MODEL && kind != NB_FILE_BINARY) {
        nb__wrong_kind(what, "a nabla model file", kind);
        return NULL;
    }
    if (len < 8) {
        nb_error("%s: %zu bytes, too short for the 8-byte header length", what, len);
        return NULL;
    }
    uint64_t hlen = nb__le64(buf);
    if (hlen > ST_HEADER_MAX) {
        nb_error("%s: header length %llu (offset 0) is larger than the %llu-byte limit", what,
                 (unsigned long long)hlen, ST_HEADER_MAX);
        return NULL;
    }
    if (hlen > len - 8) {
        nb_error("%s: header length %llu (offset 0) is larger than the %zu bytes that follow it (truncated file?)",
                 what, (unsigned long long)hlen, len - 8);
        return NULL;
    }
    const char *h = (const char *)buf + 8;
    if (hlen < 2 || h[0] != '{') {
        nb_error("%s: header at offset 8 must be a JSON object starting with '{'", what);
        return NULL;
    }
    const char *nul = memchr(h, 0, hlen);
    if (nul) {
        nb_error("%s: header has a NUL byte at offset %lld", what, (long long)(nul - h + 8));
        return NULL;
    }
    int64_t esc = find_escaped_nul(h, hlen);
    if (esc >= 0) {
        nb_error("%s: header has an escaped NUL (\\u0000) at offset %lld", what, (long long)(esc + 8));
        return NULL;
    }
    uint64_t data_len = len - 8 - hlen;
    const uint8_t *data = buf + 8 + hlen;

    /* A NUL-terminated copy, so that cJSON can never read past the header. */
    char *text = nb__malloc(hlen + 1);
    nb_safetensors *st = nb__calloc(1, sizeof *st);
    st_info *info = NULL;
    st_info **order = NULL;
    const char **names = NULL;
    cJSON *root = NULL;
    if (!text || !st) {
        nb_error("%s: out of memory for a %llu-byte header", what, (unsigned long long)hlen);
        goto fail;
    }
    memcpy(text, h, hlen);
    text[hlen] = 0;
    const char *end = NULL;
    nb__cjson_out_of_memory();
    root = cJSON_ParseWithLengthOpts(text, hlen, &end, 0);
    if (!root && nb__cjson_out_of_memory()) {
        nb_error("%s: out of memory parsing the %llu-byte header", what, (unsigned long long)hlen);
        goto fail;
    }
    if (!root) {
        /* cJSON leaves where it stopped in `end`, this call's own; its
         * cJSON_GetErrorPtr is one static for the process, which another
         * thread's parse may have overwritten by now. */
        const char *at = end;
        long long off = at && at >= text && at <= text + hlen ? (long long)(at - text) + 8 : 8;
        nb_error("%s: header is not valid JSON (error near offset %lld)", what, off);
        goto fail;
    }
    /* The reference pads the header with spaces; anything else after the
     * object is garbage. */
    for (const char *p = end; p < text + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            nb_error("%s: unexpected data after the JSON header at offset %lld", what, (long long)(p - text) + 8);
            goto fail;
        }
    if (!cJSON_IsObject(root)) {
        nb_error("%s: header at offset 8 must be a JSON object", what);
        goto fail;
    }

    int nitems = cJSON_GetArraySize(root), nt = 0;
    info = nb__calloc((size_t)nitems + 1, sizeof *info);
    order = nb__calloc((size_t)nitems + 1, sizeof *order);
    names = nb__calloc((size_t)nitems + 1, sizeof *names);
    if (!info || !order || !names) {
        nb_error("%s: out of memory for %d header entries", what, nitems);
        goto fail;
    }
    const cJSON *meta = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta) {
                nb_error("%s: header has '__metadata__' twice", what);
                goto fail;
            }
            meta = e;
            continue;
        }
        if (parse_info(e, what, data_len, &info[nt]) != 0) goto fail;
        names[nt] = info[nt].name;
        order[nt] = &info[nt];
        nt++;
    }
    if (meta && parse_meta(meta, what, st) != 0) goto fail;
    const char *dup = find_duplicate(names, nt);
    if (dup) {
        nb_error("%s: header: tensor name '%.80s' appears twice", what, dup);
        goto fail;
    }
    /* After sorting by start, tensors are disjoint iff each non-empty one
     * starts at or after the furthest end seen so far. */
    qsort(order, (size_t)nt, sizeof *order, cmp_begin);
    const st_info *reach = NULL;
    for (int i = 0; i < nt; i++) {
        if (order[i]->begin == order[i]->end) continue;
        if (reach && order[i]->begin < reach->end) {
            nb_error("%s: header: tensors '%.80s' [%llu, %llu) and '%.80s' [%llu, %llu) overlap", what, reach->name,
                     (unsigned long long)reach->begin, (unsigned long long)reach->end, order[i]->name,
                     (unsigned long long)order[i]->begin, (unsigned long long)order[i]->end);
            goto fail;
        }
        if (!reach || order[i]->end > reach->end) reach = order[i];
    }

    st->entries = nb__calloc((size_t)nt + 1, sizeof *st->entries);
    if (!st->entries) {
        nb_error("%s: out of memory for %d tensors", what, nt);
        goto fail;
    }
    for (int i = 0; i < nt; i++) {
        nb_st_entry *en = &st->entries[i];
        if (!(en->name = dup_str(info[i].name))) {
            nb_error("%s: out of memory", what);
            goto fail;
        }
        if (!(en->t = nb__tensor_try_new(info[i].ndim, info[i].shape))) {
            free(en->name); /* st->n does not count this entry yet */
            en->name = NULL;
            nb_error("%s: out of memory for tensor '%s'", what, info[i].name);
            goto fail;
        }
        en->t->name = en->name;
        st->n++;
        if (nb__convert_to_f32(info[i].dt, data + info[i].begin, info[i].numel, en->t->data, what,
                               8 + hlen + info[i].begin) != 0)
            goto fail;
    }
    cJSON_Delete(root);
    free(text);
    free(info);
    free(order);
    free(names);
    return st;
fail:
    cJSON_Delete(root);
    free(text);
    free(info);
    free(order);
    free(names);
    nb_st_free(st);
    return NULL;
}

nb_safetensors *nb_st_read(const char *path) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return NULL;
    nb_safetensors *st = nb_st_parse(buf, len, path);
    free(buf);
    return st;
}

/* --- writing ------------------------------------------------------------ */

/* Integers go in as raw text: cJSON prints numbers via doubles, which would
 * turn large offsets into exponent notation. */
static cJSON *json_int(int64_t v) {
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)v);
    return cJSON_CreateRaw(s);
}

int nb_st_write(const char *path, const char *const *names, nb_tensor *const *tensors, int n,
                const char *const *meta_keys, const char *const *meta_vals, int n_meta) {
    if (n < 0 || n_meta < 0) return nb_error("%s: negative tensor or metadata count", path);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !tensors[i]) return nb_error("%s: tensor %d has no name or no tensor", path, i);
        if (strcmp(names[i], "__metadata__") == 0)
            return nb_error("%s: '__metadata__' is reserved and cannot name a tensor", path);
    }
    for (int i = 0; i < n_meta; i++)
        if (!meta_keys[i] || !meta_vals[i]) return nb_error("%s: metadata entry %d has a NULL key or value", path, i);
    const char **sorted = nb__malloc(((size_t)n + (size_t)n_meta + 1) * sizeof(char *));
    if (!sorted) return nb_error("%s: out of memory", path);
    if (n) memcpy(sorted, names, (size_t)n * sizeof(char *));
    const char *dup = find_duplicate(sorted, n);
    if (dup) {
        nb_error("%s: tensor name '%.80s' given twice", path, dup);
        free(sorted);
        return -1;
    }
    if (n_meta) memcpy(sorted, meta_keys, (size_t)n_meta * sizeof(char *));
    dup = find_duplicate(sorted, n_meta);
    if (dup) {
        nb_error("%s: metadata key '%.80s' given twice", path, dup);
        free(sorted);
        return -1;
    }
    free(sorted);

    int rc = -1;
    char *json = NULL;
    uint8_t *file = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root) goto oom;
    if (n_meta) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) goto oom;
        for (int i = 0; i < n_meta; i++)
            if (!cJSON_AddStringToObject(m, meta_keys[i], meta_vals[i])) goto oom;
    }
    /* Tensors are laid out in the order given, back to back. */
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = tensors[i];
        cJSON *e = cJSON_AddObjectToObject(root, names[i]), *shape, *offs, *v;
        if (!e || !cJSON_AddStringToObject(e, "dtype", "F32")) goto oom;
        if (!(shape = cJSON_AddArrayToObject(e, "shape"))) goto oom;
        for (int d = 0; d < t->ndim; d++) {
            if (!(v = json_int(t->shape[d]))) goto oom;
            cJSON_AddItemToArray(shape, v);
        }
        if (!(offs = cJSON_AddArrayToObject(e, "data_offsets"))) goto oom;
        uint64_t bytes = (uint64_t)t->size * sizeof(float);
        if (!(v = json_int((int64_t)off))) goto oom;
        cJSON_AddItemToArray(offs, v);
        if (!(v = json_int((int64_t)(off + bytes)))) goto oom;
        cJSON_AddItemToArray(offs, v);
        off += bytes;
    }
    if (!(json = cJSON_PrintUnformatted(root))) goto oom;
    /* Pad with spaces to a multiple of 8 so the data starts aligned, as the
     * reference implementation does. */
    size_t jlen = strlen(json), hlen = (jlen + 7) / 8 * 8, total = 8 + hlen + (size_t)off;
    if (!(file = nb__malloc(total))) goto oom;
    nb__put_le64(file, hlen);
    memcpy(file + 8, json, jlen);
    memset(file + 8 + jlen, ' ', hlen - jlen);
    uint8_t *p = file + 8 + hlen;
    for (int i = 0; i < n; i++) {
        const float *d = tensors[i]->data;
        float *host = NULL; /* a GPU tensor's values, read back for the file */
        if (nb__on_gpu(tensors[i])) {
            if (!(host = nb__malloc(sizeof(float) * (size_t)(tensors[i]->size ? tensors[i]->size : 1)))) goto oom;
            nb_tensor_read(tensors[i], host);
            d = host;
        }
        for (int64_t j = 0; j < tensors[i]->size; j++, p += 4) {
            uint32_t b;
            memcpy(&b, &d[j], 4);
            nb__put_le32(p, b);
        }
        free(host);
    }
    rc = nb_write_file_atomic(path, file, total);
    goto done;
oom:
    nb_error("%s: out of memory while building the file", path);
done:
    cJSON_Delete(root);
    free(json);
    free(file);
    return rc;
}

int nb__st_write_model(const char *path, const char *const *own_keys, const char *const *own_vals, int nown,
                       const char *const *keys, const char *const *vals, int nmeta, const nb_param *params,
                       const char *const *names, int np, const char *const *extra_names, nb_tensor *const *extra,
                       int nextra) {
    int nk = nown + nmeta, nt = np + nextra;
    const char **mk = malloc(sizeof(char *) * (size_t)(nk + 1)), **mv = malloc(sizeof(char *) * (size_t)(nk + 1));
    const char **tn = malloc(sizeof(char *) * (size_t)(nt + 1));
    nb_tensor **ts = malloc(sizeof(nb_tensor *) * (size_t)(nt + 1));
    int rc = -1;
    if (!mk || !mv || !tn || !ts) {
        nb_error("%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < nown; i++) mk[i] = own_keys[i], mv[i] = own_vals[i];
    for (int i = 0; i < nmeta; i++) mk[nown + i] = keys[i], mv[nown + i] = vals[i];
    for (int i = 0; i < np; i++) tn[i] = names[i], ts[i] = params[i].t;
    for (int i = 0; i < nextra; i++) tn[np + i] = extra_names[i], ts[np + i] = extra[i];
    rc = nb_st_write(path, tn, ts, nt, mk, mv, nk);
done:
    free(mk);
    free(mv);
    free(tn);
    free(ts);
    return rc;
}

int nb__st_copy_params(const nb_safetensors *st, const char *path, const nb_param *params, const char *const *names,
                       int np, const char *model, const char *hint) {
    for (int i = 0; i < np; i++) {
        nb_tensor *t = nb_st_get(st, names[i]), *p = params[i].t;
        char a[96], b[96];
        if (!t)
            return nb_error("%s: tensor '%s' is missing (%s needs it with shape %s)", path, names[i], model,
                            nb_shape_str(p, a, sizeof a));
        if (!nb_same_shape(t, p))
            return nb_error("%s: tensor '%s' has shape %s, but %s needs %s%s", path, names[i],
                            nb_shape_str(t, a, sizeof a), model, nb_shape_str(p, b, sizeof b), hint ? hint : "");
        for (int64_t j = 0; j < t->size; j++)
            if (!isfinite(t->data[j]))
                return nb_error("%s: tensor '%s' holds a non-finite value at index %lld", path, names[i], (long long)j);
        nb_copy_into(p, t);
    }
    return 0;
}

int nb__st_not_a(const nb_safetensors *st, const char *path, const char *expected) {
    const char *model = nb_st_meta(st, "nabla.model");
    const char *holds = "no model nabla knows ('nabla.net' and 'nabla.model' missing from __metadata__)";
    char buf[96];
    /* A DQN's file is a network's file with the learner's keys added. */
    if (nb_st_meta(st, "nabla.dqn.env")) holds = "a DQN model (nabla dqn train)";
    else if (model && !strcmp(model, "charrnn")) holds = "a character-level language model (nabla charrnn train)";
    else if (model && !strcmp(model, "wavenet")) holds = "a WaveNet model (nabla wavenet train)";
    else if (model && !strcmp(model, "dualenc")) holds = "a dual-encoder chat model (nabla chat train)";
    else if (model && nb__classic_kind(model)) holds = (snprintf(buf, sizeof buf, "a %s model (nabla fit)", model), buf);
    else if (nb_st_meta(st, "nabla.net")) holds = "a network (nabla train or nabla init)";
    else if (model) holds = (snprintf(buf, sizeof buf, "a model of unknown kind (nabla.model = '%.40s')", model), buf);
    return nb_error("%s: not %s: it holds %s", path, expected, holds);
}

int nb__st_meta_long(const nb_safetensors *st, const char *path, const char *kind, const char *key, long lo, long hi,
                     long *out) {
    const char *v = nb_st_meta(st, key);
    if (!v) return nb_error("%s: not a %s model ('%s' missing from __metadata__)", path, kind, key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return nb_error("%s: __metadata__ '%s': expected an integer in [%ld, %ld], got '%.40s'", path, key, lo, hi, v);
    *out = x;
    return 0;
}
