/* dataset.c — labelled data sets for classification: Fashion-MNIST from its
 * Debian package, any MNIST-format IDX folder, or a CSV file; and batches of
 * them as tensors. */
#include "io.h"
#include <errno.h>
#include <math.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/stat.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* --- CSV: numeric features, the label in the last column ------------------ */

static int csv_dataset(const char *path, bool train, nb_dataset *d) {
    nb_csv *c = nb_csv_read_ex(path, NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE);
    if (!c) return -1;
    int rc = 0;
    if (c->ncols < 2)
        rc = nb_error("%s: expected features and a label separated by commas, got one column", path);
    else if (c->nrows < 2)
        rc = nb_error("%s: %lld data rows; need at least 2 (training and test)", path, (long long)c->nrows);
    int64_t cols = c->ncols - 1;
    int32_t maxy = 0;
    for (int64_t r = 0; !rc && r < c->nrows; r++) {
        double v = c->data[r * c->ncols + cols];
        if (v != (double)(int32_t)v || v < 0 || v > 100000)
            rc = nb_error("%s:%lld: column %lld (the label): expected an integer class in [0, 100000], got %g", path,
                          (long long)c->lines[r], (long long)cols + 1, v);
        else if ((int32_t)v > maxy)
            maxy = (int32_t)v;
    }
    if (rc) {
        nb_csv_free(c);
        return -1;
    }
    /* The last 10% of the rows (at least one) are the test split. */
    int64_t ntest = c->nrows / 10 > 0 ? c->nrows / 10 : 1, ntrain = c->nrows - ntest;
    int64_t first = train ? 0 : ntrain, n = train ? ntrain : ntest;
    d->n = n;
    d->nd = 1;
    d->shape[0] = cols;
    d->f32 = malloc(sizeof(float) * (size_t)(n * cols));
    d->y = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const double *row = c->data + (first + i) * c->ncols;
        for (int64_t j = 0; j < cols; j++) d->f32[i * cols + j] = (float)row[j];
        d->y[i] = (int32_t)row[cols];
    }
    d->nclass = maxy + 1; /* both splits agree: the largest label anywhere */
    nb_csv_free(c);
    return 0;
}

int nb_dataset_load(const char *spec, bool train, nb_dataset *d) {
    memset(d, 0, sizeof *d);
    if (!strcmp(spec, "fashion-mnist")) {
        const char *dir = getenv("NABLA_FASHION_MNIST");
        if (!dir) dir = FASHION_DIR;
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return nb_error("Fashion-MNIST not found in %s: install Debian's dataset-fashion-mnist package "
                            "(sudo apt-get install dataset-fashion-mnist) or pass --data DIR", dir);
        return nb_mnist_load(dir, train, d);
    }
    struct stat st;
    if (stat(spec, &st) != 0)
        return nb_error("%s: no such file or folder (expected fashion-mnist, an IDX folder or a .csv file)", spec);
    if (S_ISDIR(st.st_mode)) return nb_mnist_load(spec, train, d);
    if (ends_with(spec, ".csv")) return csv_dataset(spec, train, d);
    return nb_error("%s: unknown data format (expected fashion-mnist, an IDX folder or a .csv file)", spec);
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
