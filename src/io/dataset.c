/* dataset.c — labelled data sets for classification: Fashion-MNIST from its
 * Debian package, any MNIST-format IDX folder, or a CSV, LIBSVM or .npy file
 * (told apart by content: nb_data_kind); and batches of them as tensors. */
#include "io.h"
#include <errno.h>
#include <math.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/stat.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* --- single files: features, the label in the last column or LIBSVM's -- */

/* Where row r is, for a message: ":LINE" of the file, or ": example N". */
static const char *row_where(const int64_t *lines, int64_t r, char where[48]) {
    if (lines) snprintf(where, 48, ":%lld", (long long)lines[r]);
    else snprintf(where, 48, ": example %lld", (long long)r + 1);
    return where;
}

/* The examples of one split of a table: features [rows, cols] (row-major,
 * stride `stride` floats a row, the label at column `label` of the same
 * stride, or labels from y when y is given), labels checked to be classes.
 * lines[r] is the file line of row r for messages (NULL: rows counted). */
static int table_dataset(const char *path, const float *x, int64_t rows, int64_t cols, int64_t stride, const float *y,
                         const int64_t *lines, bool train, nb_dataset *d) {
    if (rows < 2)
        return nb_error("%s: %lld examples; need at least 2 (training and test)", path, (long long)rows);
    int32_t maxy = 0;
    char where[48];
    for (int64_t r = 0; r < rows; r++) {
        /* A value past float32's range (1e39 in a CSV, 1e300 in a float64
         * .npy) arrives as inf, and a .npy may hold NaN: refused here with
         * its place, not left to stop training at step 0 as a layer's NaN. */
        for (int64_t k = 0; k < cols; k++)
            if (!isfinite(x[r * stride + k]))
                return nb_error("%s%s: column %lld: the feature is %g in float32; expected a finite number "
                                "within +-3.4e38", path,
                                row_where(lines, r, where), (long long)k + 1, (double)x[r * stride + k]);
        double v = y ? y[r] : x[r * stride + cols];
        /* The range first: converting NaN or a value outside int32 to
         * int32_t is undefined behaviour. */
        if (!(v >= 0 && v <= 100000) || v != (double)(int32_t)v) {
            row_where(lines, r, where);
            if (y) return nb_error("%s%s: label %g: expected an integer class in [0, 100000]", path, where, v);
            return nb_error("%s%s: column %lld (the label): expected an integer class in [0, 100000], got %g", path,
                            where, (long long)cols + 1, v);
        }
        if ((int32_t)v > maxy) maxy = (int32_t)v;
    }
    /* The last 10% of the rows (at least one) are the test split. */
    int64_t ntest = rows / 10 > 0 ? rows / 10 : 1, ntrain = rows - ntest;
    int64_t first = train ? 0 : ntrain, n = train ? ntrain : ntest;
    d->n = n;
    d->nd = 1;
    d->shape[0] = cols;
    d->f32 = nb__malloc(sizeof(float) * (size_t)(n * cols));
    d->y = nb__malloc(sizeof(int32_t) * (size_t)n);
    if (!d->f32 || !d->y) {
        nb_error("%s: out of memory for %lld rows of %lld features", path, (long long)n, (long long)cols);
        nb_dataset_free(d);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + (first + i) * stride;
        memcpy(d->f32 + i * cols, row, sizeof(float) * (size_t)cols);
        d->y[i] = (int32_t)(y ? y[first + i] : row[cols]);
    }
    d->nclass = maxy + 1; /* both splits agree: the largest label anywhere */
    return 0;
}

/* CSV: numeric features, the label in the last column, an optional header. */
static int csv_dataset(const char *path, bool train, nb_dataset *d) {
    nb_csv *c = nb_csv_read_ex(path, NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE);
    if (!c) return -1;
    if (c->ncols < 2) {
        nb_csv_free(c);
        return nb_error("%s: expected features and a label separated by commas, got one column", path);
    }
    float *x = nb__malloc(sizeof(float) * (size_t)(c->nrows * c->ncols) + 1);
    int rc;
    if (!x) rc = nb_error("%s: out of memory for %lld rows", path, (long long)c->nrows);
    else {
        for (int64_t i = 0; i < c->nrows * c->ncols; i++) x[i] = (float)c->data[i];
        rc = table_dataset(path, x, c->nrows, c->ncols - 1, c->ncols, NULL, c->lines, train, d);
    }
    free(x);
    nb_csv_free(c);
    return rc;
}

/* .npy: a 2-D array [examples, features + 1], the label last (nabla convert). */
static int npy_dataset(const char *path, bool train, nb_dataset *d) {
    nb_tensor *t = nb_npy_read(path);
    if (!t) return -1;
    int rc;
    if (t->ndim != 2 || t->shape[1] < 2)
        rc = nb_error("%s: expected a 2-D array [examples, features + label], got %d dimensions%s", path, t->ndim,
                      t->ndim == 2 ? " with one column" : "");
    else
        rc = table_dataset(path, t->data, t->shape[0], t->shape[1] - 1, t->shape[1], NULL, NULL, train, d);
    nb_tensor_free(t);
    return rc;
}

static int libsvm_dataset(const char *path, bool train, nb_dataset *d) {
    nb_tensor *X;
    float *y;
    if (nb_libsvm_read(path, 0, &X, &y)) return -1;
    int rc = table_dataset(path, X->data, X->shape[0], X->shape[1], X->shape[1], y, NULL, train, d);
    nb_tensor_free(X);
    free(y);
    return rc;
}

int nb_dataset_load(const char *spec, bool train, nb_dataset *d) {
    memset(d, 0, sizeof *d);
    if (!spec) return nb_error("dataset: the path is NULL");
    if (!strcmp(spec, "fashion-mnist")) {
        const char *dir = getenv("NABLA_FASHION_MNIST");
        if (!dir) dir = FASHION_DIR;
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return nb_error("Fashion-MNIST not found in %s: install Debian's dataset-fashion-mnist package "
                            "(sudo apt-get install dataset-fashion-mnist) or pass --data DIR", dir);
        return nb_mnist_load(dir, train, d);
    }
    /* The format comes from the content, whatever the file is called. */
    switch (nb_data_kind(spec)) {
    case NB_FILE_FOLDER: return nb_mnist_load(spec, train, d);
    case NB_FILE_CSV:
    case NB_FILE_LOG: return csv_dataset(spec, train, d);
    case NB_FILE_NPY: return npy_dataset(spec, train, d);
    case NB_FILE_LIBSVM: return libsvm_dataset(spec, train, d);
    default: return -1; /* nb_data_kind said what the file is */
    }
}

nb_tensor *nb_dataset_batch(const nb_dataset *d, const int64_t *idx, int64_t n, int32_t *y) {
    int64_t per = nb_shape_numel(d->nd, d->shape);
    int64_t shape[4] = {n};
    nb__shape_copy(shape + 1, d->shape, d->nd);
    nb_tensor *x = nb_empty(d->nd + 1, shape);
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= d->n) nb_fatal("dataset_batch", "index %lld out of range [0, %lld)", (long long)idx[i], (long long)d->n);
        float *dst = x->data + i * per;
        if (d->u8) {
            const uint8_t *src = d->u8 + idx[i] * per;
            /* Rows are drawn at random from tens of megabytes: fetch the next
             * one while this one converts, or every line is a cache miss. */
            if (i + 1 < n && idx[i + 1] >= 0 && idx[i + 1] < d->n)
                for (int64_t j = 0; j < per; j += 64) __builtin_prefetch(d->u8 + idx[i + 1] * per + j);
            for (int64_t j = 0; j < per; j++) dst[j] = (float)src[j] * (1.f / 255.f);
        } else {
            memcpy(dst, d->f32 + idx[i] * per, sizeof(float) * (size_t)per);
        }
        if (y) y[i] = d->y[idx[i]];
    }
    return x;
}

void nb_dataset_free(nb_dataset *d) {
    if (!d) return;
    free(d->u8);
    free(d->f32);
    free(d->y);
    memset(d, 0, sizeof *d);
}
