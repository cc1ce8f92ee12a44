/* libsvm.c — the LIBSVM text data format ("label index:value ...", sparse,
 * 1-based ascending indices; SVMlight's "qid:N" and "# comments" skipped) read into dense float32 matrices and written
 * back, with errors that name the line and column of a defect. */
#include "io.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

/* Whitespace that separates tokens within a line. */
static bool is_sp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Parses one line [p, end): the label and the features; with x non-NULL the
 * features are stored into x[0..d). Returns 0, 1 for a blank line, or -1 with
 * an error naming what:line:column. *maxidx receives the largest index. */
static int parse_line(const char *p, const char *end, const char *what, int64_t line, float *label, float *x,
                      int64_t d, int64_t *maxidx) {
    const char *start = p;
    char buf[64];
#define COL(q) ((long long)((q) - start + 1))
    /* SVMlight's "# info" runs to the end of the line: a comment. */
    const char *hash = memchr(p, '#', (size_t)(end - p));
    if (hash) end = hash;
    while (p < end && is_sp(*p)) p++;
    if (p == end) return 1;
    /* The label: a number up to the first whitespace. */
    const char *tok = p;
    while (p < end && !is_sp(*p)) p++;
    size_t tl = (size_t)(p - tok);
    /* A number is read whole or not at all: cut to the buffer, a long
     * "0.000...1e62" would silently read as another number. */
    if (tl >= sizeof buf)
        return nb_error("%s:%lld:%lld: label '%.20s...' is longer than %zu characters", what, (long long)line,
                        COL(tok), tok, sizeof buf - 1);
    memcpy(buf, tok, tl);
    buf[tl] = 0;
    char *e;
    errno = 0;
    double lab = strtod(buf, &e);
    if (e == buf || *e) {
        if (strchr(buf, ':')) return nb_error("%s:%lld:%lld: expected a label before '%s'", what, (long long)line, COL(tok), buf);
        return nb_error("%s:%lld:%lld: bad label '%s' (expected a number)", what, (long long)line, COL(tok), buf);
    }
    /* The label is stored as float32: 1e39 is finite as a double, inf as a float. */
    if (!isfinite(lab) || errno == ERANGE || !isfinite((float)lab))
        return nb_error("%s:%lld:%lld: label '%s' is not a finite number in float32", what, (long long)line, COL(tok),
                        buf);
    *label = (float)lab;
    int64_t prev = 0;
    for (bool first = true;; first = false) {
        while (p < end && is_sp(*p)) p++;
        if (p == end) break;
        tok = p;
        while (p < end && !is_sp(*p)) p++;
        tl = (size_t)(p - tok);
        /* SVMlight's query id (ranking data) right after the label: it
         * groups examples, it is not a feature. */
        if (first && tl > 4 && !memcmp(tok, "qid:", 4)) {
            const char *q = tok + 4;
            while (q < p && *q >= '0' && *q <= '9') q++;
            if (q != p)
                return nb_error("%s:%lld:%lld: bad query id '%.*s' (expected qid:N, N a non-negative integer)", what,
                                (long long)line, COL(tok), (int)(tl < 40 ? tl : 40), tok);
            continue;
        }
        size_t cl = tl >= sizeof buf ? sizeof buf - 1 : tl;
        memcpy(buf, tok, cl);
        buf[cl] = 0;
        const char *colon = memchr(tok, ':', tl);
        if (!colon)
            return nb_error("%s:%lld:%lld: expected index:value, got '%s' (missing ':')", what, (long long)line,
                            COL(tok), buf);
        /* The index: decimal digits only, > 0. */
        int64_t idx = 0;
        const char *q = tok;
        if (q == colon) return nb_error("%s:%lld:%lld: missing index before ':'", what, (long long)line, COL(tok));
        for (; q < colon; q++) {
            if (*q < '0' || *q > '9' || idx > (INT64_C(1) << 40))
                return nb_error("%s:%lld:%lld: bad index '%.*s' (expected a positive integer)", what, (long long)line,
                                COL(tok), (int)(colon - tok), tok);
            idx = idx * 10 + (*q - '0');
        }
        if (idx < 1)
            return nb_error("%s:%lld:%lld: index %lld: indices start at 1", what, (long long)line, COL(tok), (long long)idx);
        if (idx <= prev)
            return nb_error("%s:%lld:%lld: index %lld after %lld: indices must be strictly ascending", what,
                            (long long)line, COL(tok), (long long)idx, (long long)prev);
        prev = idx;
        /* The value. */
        const char *v = colon + 1;
        size_t vl = (size_t)(p - v);
        if (vl == 0) return nb_error("%s:%lld:%lld: missing value after '%lld:'", what, (long long)line, COL(v), (long long)idx);
        if (vl >= sizeof buf)
            return nb_error("%s:%lld:%lld: value '%.20s...' is longer than %zu characters", what, (long long)line,
                            COL(v), v, sizeof buf - 1);
        memcpy(buf, v, vl);
        buf[vl] = 0;
        errno = 0;
        double val = strtod(buf, &e);
        if (e == buf || *e)
            return nb_error("%s:%lld:%lld: bad value '%s' (expected a number)", what, (long long)line, COL(v), buf);
        if (!isfinite(val) || !isfinite((float)val))
            return nb_error("%s:%lld:%lld: value '%s' is %s", what, (long long)line, COL(v), buf,
                            isnan(val) ? "NaN" : "not finite in float32");
        if (x && idx <= d) x[idx - 1] = (float)val;
    }
    *maxidx = prev;
    return 0;
#undef COL
}

int nb_libsvm_parse(const char *text, size_t len, const char *what, int64_t min_features, nb_tensor **X, float **y) {
    *X = NULL;
    *y = NULL;
    if (memchr(text, 0, len)) return nb_error("%s: not a text file (contains NUL bytes)", what);
    size_t bom = nb_utf8_bom(text, len);
    text += bom, len -= bom;
    /* Pass 1: check every line, count examples and features. */
    int64_t n = 0, d = min_features > 0 ? min_features : 0, line = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *next, *le = nb__line_end(p, end, &next);
        line++;
        float lab;
        int64_t mi = 0;
        int rc = parse_line(p, le, what, line, &lab, NULL, 0, &mi);
        if (rc < 0) return -1;
        if (rc == 0) {
            n++;
            if (mi > d) d = mi;
        }
        p = next;
    }
    if (n == 0) return nb_error("%s: no examples (empty file)", what);
    if (d == 0) d = 1; /* examples with no features at all: one zero column */
    if (nb_shape_numel(2, (int64_t[]){n, d}) < 0 || n * d > (INT64_C(1) << 34))
        return nb_error("%s: %lld examples x %lld features is too large for a dense matrix", what, (long long)n,
                        (long long)d);
    nb_tensor *x = nb__tensor_try_new(2, (int64_t[]){n, d});
    float *yy = x ? nb__malloc(sizeof(float) * (size_t)n) : NULL;
    if (!yy) {
        nb_tensor_free(x);
        return nb_error("%s: out of memory for %lld examples x %lld features", what, (long long)n, (long long)d);
    }
    /* Pass 2: fill (the text is known to be good). */
    int64_t i = 0;
    line = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *next, *le = nb__line_end(p, end, &next);
        int64_t mi;
        if (parse_line(p, le, what, ++line, &yy[i], x->data + i * d, d, &mi) == 0) i++;
        p = next;
    }
    *X = x;
    *y = yy;
    return 0;
}

int nb_libsvm_read(const char *path, int64_t min_features, nb_tensor **X, float **y) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) {
        *X = NULL;
        *y = NULL;
        return -1;
    }
    int rc = nb_libsvm_parse((const char *)buf, len, path, min_features, X, y);
    free(buf);
    return rc;
}

/* A growing text buffer; s is NULL once an allocation has failed, and
 * further printing is ignored (the writer checks once at the end). */
typedef struct { char *s; size_t len, cap; } sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) {
    while (b->s) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < b->cap - b->len) {
            b->len += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)(k > 0 ? k : 64) + 64;
        char *grown = nb__realloc(b->s, b->cap);
        if (!grown) free(b->s);
        b->s = grown;
    }
}

int nb_libsvm_write(const char *path, const nb_tensor *X, const float *y) {
    if (!X || X->ndim != 2 || !y) return nb_error("%s: libsvm_write needs X [n, d] and n labels", path);
    int64_t n = X->shape[0], d = X->shape[1];
    float *copy;
    const float *x = nb__host_values(X, &copy); /* a GPU tensor is read back */
    if (!x) return nb_error("%s: out of memory for a copy of X", path);
    sbuf b = {nb__malloc(1 << 16), 0, 1 << 16};
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            free(b.s);
            free(copy);
            return nb_error("%s: label %lld is not finite", path, (long long)i);
        }
        sb_printf(&b, "%.9g", (double)y[i]);
        for (int64_t j = 0; j < d; j++) {
            float v = x[i * d + j];
            /* Zeros are left out, except the last feature of the first row:
             * reading takes the largest index as the feature count, so the
             * file keeps all d features even where the last is always 0
             * (a corner pixel). LIBSVM reads explicit zeros as zeros. */
            if (v == 0 && (i > 0 || j + 1 < d)) continue;
            if (!isfinite(v)) {
                free(b.s);
                free(copy);
                return nb_error("%s: X[%lld, %lld] is not finite", path, (long long)i, (long long)j);
            }
            sb_printf(&b, " %lld:%.9g", (long long)(j + 1), (double)v);
        }
        sb_printf(&b, "\n");
    }
    free(copy);
    if (!b.s) return nb_error("%s: out of memory for the LIBSVM text", path);
    int rc = nb_write_file_atomic(path, b.s, b.len);
    free(b.s);
    return rc;
}
