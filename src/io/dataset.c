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

typedef struct {
    float *x;
    int32_t *y;
    int64_t rows, cols, cap; /* cols counts features only */
} csv_table;

/* Splits one line into cells in place; returns the count. */
static int64_t split_cells(char *line, char **cells, int64_t max) {
    int64_t n = 0;
    for (char *p = line;;) {
        if (n == max) return max + 1;
        cells[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

static bool parse_number(const char *s, double *v) {
    while (*s == ' ' || *s == '\t') s++;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s) return false;
    while (*end == ' ' || *end == '\t' || *end == '\r') end++;
    return *end == 0 && errno != ERANGE && isfinite(*v);
}

static int csv_load(const char *path, csv_table *t) {
    memset(t, 0, sizeof *t);
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return -1;
    if (memchr(buf, 0, len)) {
        free(buf);
        return nb_error("%s: not a text file (contains NUL bytes)", path);
    }
    char *text = malloc(len + 1);
    memcpy(text, buf, len);
    text[len] = 0;
    free(buf);
    enum { MAXC = 1 << 20 };
    char **cells = malloc(sizeof(char *) * (MAXC + 1));
    int rc = 0;
    int64_t lineno = 0, ncols = -1;
    char *rest = text, *line;
    while (!rc && (line = strsep(&rest, "\n")) != NULL) {
        lineno++;
        size_t l = strlen(line);
        if (l && line[l - 1] == '\r') line[--l] = 0;
        if (!l) continue;
        int64_t n = split_cells(line, cells, MAXC);
        if (n > MAXC) {
            rc = nb_error("%s:%lld: more than %d columns", path, (long long)lineno, MAXC);
            break;
        }
        double v;
        /* A first line that is not numeric is a header. */
        if (ncols < 0 && t->rows == 0 && !parse_number(cells[0], &v)) {
            ncols = n;
            continue;
        }
        if (n < 2) {
            rc = nb_error("%s:%lld: expected features and a label separated by commas, got one column", path, (long long)lineno);
            break;
        }
        if (ncols >= 0 && n != ncols) {
            rc = nb_error("%s:%lld: %lld columns, expected %lld like the %s", path, (long long)lineno, (long long)n,
                          (long long)ncols, t->rows ? "rows before" : "header");
            break;
        }
        ncols = n;
        t->cols = n - 1;
        if (t->rows == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 256;
            float *nx = realloc(t->x, sizeof(float) * (size_t)(t->cap * t->cols));
            int32_t *ny = realloc(t->y, sizeof(int32_t) * (size_t)t->cap);
            if (!nx || !ny) {
                free(nx ? nx : t->x);
                free(ny ? ny : t->y);
                t->x = NULL;
                t->y = NULL;
                rc = nb_error("%s: out of memory at line %lld", path, (long long)lineno);
                break;
            }
            t->x = nx;
            t->y = ny;
        }
        for (int64_t c = 0; c < n; c++) {
            if (!parse_number(cells[c], &v)) {
                rc = nb_error("%s:%lld: column %lld: expected a number, got '%.40s'", path, (long long)lineno,
                              (long long)c + 1, cells[c]);
                break;
            }
            if (c < n - 1) {
                t->x[t->rows * t->cols + c] = (float)v;
            } else if (v != (double)(int32_t)v || v < 0 || v > 100000) {
                rc = nb_error("%s:%lld: column %lld (the label): expected an integer class in [0, 100000], got '%.40s'",
                              path, (long long)lineno, (long long)c + 1, cells[c]);
            } else {
                t->y[t->rows] = (int32_t)v;
            }
        }
        if (!rc) t->rows++;
    }
    if (!rc && t->rows < 2) rc = nb_error("%s: %lld data rows; need at least 2 (training and test)", path, (long long)t->rows);
    free(cells);
    free(text);
    if (rc) {
        free(t->x);
        free(t->y);
        memset(t, 0, sizeof *t);
    }
    return rc;
}

static int csv_dataset(const char *path, bool train, nb_dataset *d) {
    csv_table t;
    if (csv_load(path, &t)) return -1;
    /* The last 10% of the rows (at least one) are the test split. */
    int64_t ntest = t.rows / 10 > 0 ? t.rows / 10 : 1, ntrain = t.rows - ntest;
    int64_t first = train ? 0 : ntrain, n = train ? ntrain : ntest;
    d->n = n;
    d->nd = 1;
    d->shape[0] = t.cols;
    d->f32 = malloc(sizeof(float) * (size_t)(n * t.cols));
    d->y = malloc(sizeof(int32_t) * (size_t)n);
    memcpy(d->f32, t.x + first * t.cols, sizeof(float) * (size_t)(n * t.cols));
    memcpy(d->y, t.y + first, sizeof(int32_t) * (size_t)n);
    /* Both splits agree on the class count: the largest label anywhere. */
    int32_t maxy = 0;
    for (int64_t i = 0; i < t.rows; i++) maxy = t.y[i] > maxy ? t.y[i] : maxy;
    d->nclass = maxy + 1;
    free(t.x);
    free(t.y);
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
