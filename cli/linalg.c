/* linalg.c — `nabla linalg`: the factorizations and tests of notes §1.1 on
 * .npy matrices, with the results written as .npy files and a summary that
 * shows how well each one holds (reconstruction and Penrose residuals). */
#include "cli.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The command's name in messages, "linalg eig" once the verb is known. */
static const char *CMD = "linalg";

typedef struct {
    const char *verb, *apath, *bpath, *prefix;
    nb_tensor *A, *B;
    int64_t m, n;        /* A's shape (n = 1 for a vector, m = n = 1 for a scalar) */
    double rcond, tol;
    FILE *out;           /* the readable summary: stdout, or stderr under --json */
    FILE *js;            /* the JSON object's fields, comma-separated */
    char *jsbuf;
    size_t jslen;
    char written[1024];  /* names of the files written, for the summary */
    int nwritten;
} la_ctx;

/* --- output helpers ------------------------------------------------------ */

/* JSON has no inf or NaN: such values (a singular matrix's condition number)
 * are written as null, and the summary shows them as inf/nan. */
#define js_num(f, x) nb_cli_json_number(f, "%.10g", x)

static void js_key(la_ctx *c, const char *key) { fprintf(c->js, ", \"%s\": ", key); }

static void js_field(la_ctx *c, const char *key, double x) {
    js_key(c, key);
    js_num(c->js, x);
}

static void js_array(la_ctx *c, const char *key, const double *v, int64_t n) {
    js_key(c, key);
    fputc('[', c->js);
    for (int64_t i = 0; i < n; i++) {
        if (i) fputs(", ", c->js);
        js_num(c->js, v[i]);
    }
    fputc(']', c->js);
}

/* Prints up to 12 values; longer lists are cut with a count (all of them
 * are in the .npy file). */
static void print_values(la_ctx *c, const char *label, const double *v, int64_t n) {
    fprintf(c->out, "%s:", label);
    int64_t shown = n > 12 ? 10 : n;
    for (int64_t i = 0; i < shown; i++) fprintf(c->out, " %.7g", v[i]);
    if (shown < n) fprintf(c->out, " ... (%lld in all)", (long long)n);
    fputc('\n', c->out);
}

/* Writes PREFIX.NAME.npy (atomically, by nb_npy_write). */
static int write_result(la_ctx *c, const char *name, const nb_tensor *t) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s.%s.npy", c->prefix, name) >= (int)sizeof path)
        return nb_cli_fail(CMD, "--out %s: the path is too long", c->prefix);
    if (nb_npy_write(path, t)) return nb_cli_fail(CMD, "%s", nb_errmsg());
    size_t used = strlen(c->written);
    snprintf(c->written + used, sizeof c->written - used, "%s%s", c->nwritten++ ? ", " : "", path);
    return 0;
}

/* --- input checks and double-precision helpers --------------------------- */

/* A clear message naming the file for input the library would refuse:
 * wrong rank, empty, or a NaN/infinite entry (with its row and column). */
static int check_input(const char *path, const nb_tensor *t, int min_nd, int max_nd, bool allow_empty) {
    char s[96];
    if (t->ndim < min_nd || t->ndim > max_nd) {
        const char *want = max_nd == 2 && min_nd == 2 ? "a 2-D matrix" : min_nd == 1 ? "a vector or a matrix"
                                                                                     : "a scalar, vector or matrix";
        return nb_cli_fail(CMD, "%s: expected %s, got shape %s (%d-D)", path, want, nb_shape_str(t, s, sizeof s),
                           t->ndim);
    }
    if (t->size == 0 && !allow_empty) return nb_cli_fail(CMD, "%s: the matrix is empty (shape %s)", path,
                                                         nb_shape_str(t, s, sizeof s));
    int64_t cols = t->ndim == 2 ? t->shape[1] : 1;
    for (int64_t i = 0; i < t->size; i++)
        if (!isfinite(t->data[i])) {
            const char *what = isnan(t->data[i]) ? "NaN" : t->data[i] > 0 ? "inf" : "-inf";
            if (t->ndim == 2)
                return nb_cli_fail(CMD, "%s: entry [%lld, %lld] is %s; finite numbers are needed", path,
                                   (long long)(i / cols), (long long)(i % cols), what);
            return nb_cli_fail(CMD, "%s: entry [%lld] is %s; finite numbers are needed", path, (long long)i, what);
        }
    return 0;
}

static int need_square(la_ctx *c) {
    if (c->m != c->n)
        return nb_cli_fail(CMD, "%s: %s needs a square matrix, got %lld x %lld", c->apath, c->verb,
                           (long long)c->m, (long long)c->n);
    return 0;
}

/* The library's rule (nabla.h): |A_ij - A_ji| <= 1e-5 max|A|. */
static bool is_symmetric(const nb_tensor *A) {
    int64_t n = A->shape[0];
    if (A->ndim != 2 || A->shape[1] != n) return false;
    double big = 0;
    for (int64_t i = 0; i < A->size; i++) big = fmax(big, fabs(A->data[i]));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            if (fabs((double)A->data[i * n + j] - A->data[j * n + i]) > 1e-5 * big) return false;
    return true;
}

static double *to_double(const nb_tensor *t) {
    double *d = malloc(sizeof(double) * (size_t)(t->size ? t->size : 1));
    if (d)
        for (int64_t i = 0; i < t->size; i++) d[i] = t->data[i];
    return d;
}

static double fro(const double *a, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * a[i];
    return sqrt(s);
}

/* ||X - Y||_F over n entries. */
static double fro_diff(const double *x, const double *y, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (x[i] - y[i]) * (x[i] - y[i]);
    return sqrt(s);
}

/* C [m, n] = op(A) op(B), row-major, leading dimensions given. */
static void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda, const double *b,
                 int64_t ldb, double *cm) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                1.0, a, (int)lda, b, (int)ldb, 0.0, cm, (int)n);
}

static double rel(double err, double scale) { return scale > 0 ? err / scale : err; }

/* --- the verbs ----------------------------------------------------------- */

/* The library's names, with the all-zero case spelled out. */
static const char *def_name(nb_definiteness d) {
    return d == NB_ZERO_MATRIX ? "zero (x^T A x = 0 for every x: both positive and negative semidefinite)"
                               : nb_definiteness_name(d);
}

/* Definiteness is a property of the quadratic form x^T A x, which only sees
 * the symmetric part (A + A^T)/2; for a symmetric A that is A itself. */
static nb_tensor *sym_part(const nb_tensor *A) {
    int64_t n = A->shape[0];
    nb_tensor *S = nb_tensor_new(2, (int64_t[]){n, n});
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) S->data[i * n + j] = 0.5f * (A->data[i * n + j] + A->data[j * n + i]);
    return S;
}

static int definiteness_of(la_ctx *c, bool sym, nb_definiteness *d) {
    if (sym) return nb_linalg_definiteness(c->A, c->tol, d);
    nb_tensor *S = sym_part(c->A);
    int rc = nb_linalg_definiteness(S, c->tol, d);
    nb_tensor_free(S);
    return rc;
}

static int do_eig(la_ctx *c) {
    if (need_square(c)) return 1;
    int64_t n = c->n;
    bool sym = is_symmetric(c->A);
    nb_definiteness def;
    double cond;
    if (definiteness_of(c, sym, &def) || nb_linalg_cond(c->A, &cond))
        return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    fprintf(c->out, "%s: %lld x %lld %s matrix\n", c->apath, (long long)n, (long long)n,
            sym ? "symmetric" : "non-symmetric");
    fprintf(c->js, "\"verb\": \"eig\", \"rows\": %lld, \"cols\": %lld, \"symmetric\": %s", (long long)n, (long long)n,
            sym ? "true" : "false");
    int rc = 0;
    if (sym) {
        nb_tensor *w = NULL, *Q = NULL;
        if (nb_linalg_eigh(c->A, &w, &Q)) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
        double *wd = to_double(w), *q = to_double(Q), *a = to_double(c->A), *qw = malloc(sizeof(double) * (size_t)(n * n)),
               *r = malloc(sizeof(double) * (size_t)(n * n));
        if (!wd || !q || !a || !qw || !r) {
            rc = nb_cli_fail(CMD, "out of memory for a %lld x %lld matrix", (long long)n, (long long)n);
        } else {
            /* eq. 2.40 checked: A - Q diag(lambda) Q^T, with Q's columns scaled. */
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < n; j++) qw[i * n + j] = q[i * n + j] * wd[j];
            gemm(false, true, n, n, n, qw, n, q, n, r);
            double err = fro_diff(a, r, n * n);
            print_values(c, "eigenvalues (eq. 2.40, A = Q diag(lambda) Q^T, descending)", wd, n);
            fprintf(c->out, "definiteness: %s\n", def_name(def));
            fprintf(c->out, "condition number (eq. 4.2, max |lambda_i / lambda_j|): %.7g\n", cond);
            fprintf(c->out, "reconstruction error ||A - Q diag(lambda) Q^T||_F = %.3g (relative %.3g)\n", err,
                    rel(err, fro(a, n * n)));
            js_array(c, "eigenvalues", wd, n);
            fprintf(c->js, ", \"definiteness\": \"%s\"", nb_definiteness_name(def));
            js_field(c, "cond", cond);
            js_field(c, "reconstruction_error", err);
            js_field(c, "relative_reconstruction_error", rel(err, fro(a, n * n)));
            rc = write_result(c, "eigenvalues", w) || write_result(c, "Q", Q);
        }
        free(wd);
        free(q);
        free(a);
        free(qw);
        free(r);
        nb_tensor_free(w);
        nb_tensor_free(Q);
        return rc;
    }
    /* A general matrix has no orthonormal eigenbasis (no eq. 2.40) and may
     * have complex eigenvalues, which come in conjugate pairs. */
    nb_tensor *w = NULL;
    if (nb_linalg_eig(c->A, &w)) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    double *re = malloc(sizeof(double) * (size_t)n * 2), *im = re ? re + n : NULL;
    if (!re) {
        nb_tensor_free(w);
        return nb_cli_fail(CMD, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) {
        re[i] = w->data[2 * i];
        im[i] = w->data[2 * i + 1];
    }
    fprintf(c->out, "eigenvalues (general, LAPACK dgeev; by descending real part):");
    int64_t shown = n > 12 ? 10 : n;
    for (int64_t i = 0; i < shown; i++) {
        if (im[i] == 0) fprintf(c->out, " %.7g", re[i]);
        else fprintf(c->out, " %.7g%c%.7gi", re[i], im[i] < 0 ? '-' : '+', fabs(im[i]));
    }
    if (shown < n) fprintf(c->out, " ... (%lld in all)", (long long)n);
    fputc('\n', c->out);
    fprintf(c->out, "definiteness of x^T A x (from the symmetric part (A + A^T)/2): %s\n", def_name(def));
    fprintf(c->out, "condition number (s_max / s_min): %.7g\n", cond);
    fprintf(c->out, "(not symmetric: no orthonormal Q, so no Q diag(lambda) Q^T reconstruction; %s.eigenvalues.npy "
                    "holds (real, imaginary) pairs)\n", c->prefix);
    js_array(c, "eigenvalues_re", re, n);
    js_array(c, "eigenvalues_im", im, n);
    fprintf(c->js, ", \"definiteness\": \"%s\"", nb_definiteness_name(def));
    js_field(c, "cond", cond);
    rc = write_result(c, "eigenvalues", w);
    free(re);
    nb_tensor_free(w);
    return rc;
}

/* Singular values <= this count as zero: the cutoff nb_linalg_pinv uses. */
static double rank_cutoff(la_ctx *c, double smax) {
    double rc = c->rcond > 0 ? c->rcond : (double)(c->m > c->n ? c->m : c->n) * FLT_EPSILON;
    return rc * smax;
}

static int do_svd(la_ctx *c, bool full) {
    int64_t m = c->m, n = c->n, k = m < n ? m : n;
    nb_tensor *U = NULL, *s = NULL, *Vt = NULL;
    if (nb_linalg_svd(c->A, full, &U, &s, &Vt)) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    double *u = to_double(U), *sd = to_double(s), *vt = to_double(Vt), *a = to_double(c->A),
           *us = malloc(sizeof(double) * (size_t)(m * k)), *r = malloc(sizeof(double) * (size_t)(m * n));
    int rc = 0;
    if (!u || !sd || !vt || !a || !us || !r) {
        rc = nb_cli_fail(CMD, "out of memory");
        goto done;
    }
    /* eq. 10 checked with the first k columns of U and rows of V^T (all of
     * them in the thin form; the rest of a full U, V^T multiply zeros). */
    int64_t ucols = U->shape[1];
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < k; j++) us[i * k + j] = u[i * ucols + j] * sd[j];
    gemm(false, false, m, n, k, us, k, vt, n, r);
    double err = fro_diff(a, r, m * n), cut = rank_cutoff(c, sd[0]);
    int64_t rank = 0;
    while (rank < k && sd[rank] > cut) rank++;
    double cond = sd[k - 1] > sd[0] * (double)(m > n ? m : n) * DBL_EPSILON ? sd[0] / sd[k - 1] : INFINITY;
    fprintf(c->out, "%s: %lld x %lld matrix\n", c->apath, (long long)m, (long long)n);
    print_values(c, "singular values (eq. 10, A = U D V^T, descending)", sd, k);
    fprintf(c->out, "rank %lld (singular values above %.3g)\n", (long long)rank, cut);
    fprintf(c->out, "condition number s_max / s_min: %.7g\n", cond);
    fprintf(c->out, "reconstruction error ||A - U D V^T||_F = %.3g (relative %.3g)\n", err, rel(err, fro(a, m * n)));
    fprintf(c->js, "\"verb\": \"svd\", \"rows\": %lld, \"cols\": %lld", (long long)m, (long long)n);
    js_array(c, "singular_values", sd, k);
    fprintf(c->js, ", \"rank\": %lld", (long long)rank);
    js_field(c, "cond", cond);
    js_field(c, "reconstruction_error", err);
    js_field(c, "relative_reconstruction_error", rel(err, fro(a, m * n)));
    rc = write_result(c, "U", U) || write_result(c, "S", s) || write_result(c, "Vt", Vt);
done:
    free(u);
    free(sd);
    free(vt);
    free(a);
    free(us);
    free(r);
    nb_tensor_free(U);
    nb_tensor_free(s);
    nb_tensor_free(Vt);
    return rc;
}

static int do_pinv(la_ctx *c) {
    int64_t m = c->m, n = c->n, big = m > n ? m : n;
    nb_tensor *P = nb_linalg_pinv(c->A, c->rcond), *s = NULL;
    if (!P || nb_linalg_svd(c->A, false, NULL, &s, NULL)) {
        nb_tensor_free(P);
        return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    }
    double *a = to_double(c->A), *p = to_double(P), *ap = malloc(sizeof(double) * (size_t)(m * m)),
           *pa = malloc(sizeof(double) * (size_t)(n * n)), *t = malloc(sizeof(double) * (size_t)(big * big)),
           *t2 = malloc(sizeof(double) * (size_t)(big * big));
    int rc = 0;
    if (!a || !p || !ap || !pa || !t || !t2) {
        rc = nb_cli_fail(CMD, "out of memory");
        goto done;
    }
    /* The four Penrose conditions that define A+ uniquely (eq. 11 computes
     * it): A A+ A = A, A+ A A+ = A+, and A A+, A+ A symmetric. */
    gemm(false, false, m, m, n, a, n, p, m, ap); /* A A+ [m, m] */
    gemm(false, false, n, n, m, p, m, a, n, pa); /* A+ A [n, n] */
    double res[4], relres[4];
    gemm(false, false, m, n, m, ap, m, a, n, t);
    res[0] = fro_diff(t, a, m * n);
    relres[0] = rel(res[0], fro(a, m * n));
    gemm(false, false, n, m, n, pa, n, p, m, t);
    res[1] = fro_diff(t, p, n * m);
    relres[1] = rel(res[1], fro(p, n * m));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) t2[i * m + j] = ap[j * m + i];
    res[2] = fro_diff(t2, ap, m * m);
    relres[2] = rel(res[2], fro(ap, m * m));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) t2[i * n + j] = pa[j * n + i];
    res[3] = fro_diff(t2, pa, n * n);
    relres[3] = rel(res[3], fro(pa, n * n));
    int64_t k = m < n ? m : n, rank = 0;
    double cut = rank_cutoff(c, s->data[0]);
    while (rank < k && s->data[rank] > cut) rank++;
    fprintf(c->out, "%s: %lld x %lld matrix of rank %lld; A+ is %lld x %lld (eq. 11, A+ = V D+ U^T)\n", c->apath,
            (long long)m, (long long)n, (long long)rank, (long long)n, (long long)m);
    fprintf(c->out, "Penrose conditions, residual ||.||_F (relative):\n");
    static const char *conds[4] = {"A A+ A - A", "A+ A A+ - A+", "(A A+)^T - A A+", "(A+ A)^T - A+ A"};
    for (int i = 0; i < 4; i++) fprintf(c->out, "  %-16s %.3g (%.3g)\n", conds[i], res[i], relres[i]);
    fprintf(c->js, "\"verb\": \"pinv\", \"rows\": %lld, \"cols\": %lld, \"rank\": %lld", (long long)m, (long long)n,
            (long long)rank);
    js_array(c, "penrose_residuals", res, 4);
    js_array(c, "penrose_relative_residuals", relres, 4);
    rc = write_result(c, "pinv", P);
done:
    free(a);
    free(p);
    free(ap);
    free(pa);
    free(t);
    free(t2);
    nb_tensor_free(P);
    nb_tensor_free(s);
    return rc;
}

static int do_det(la_ctx *c) {
    if (need_square(c)) return 1;
    double det, sign, logabs;
    if (nb_linalg_det(c->A, &det) || nb_linalg_slogdet(c->A, &sign, &logabs))
        return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    fprintf(c->out, "%s: %lld x %lld matrix\ndet = %.10g (sign %+g, log|det| = %.10g; LU with partial pivoting)\n",
            c->apath, (long long)c->n, (long long)c->n, det, sign, logabs);
    fprintf(c->js, "\"verb\": \"det\", \"rows\": %lld, \"cols\": %lld", (long long)c->n, (long long)c->n);
    js_field(c, "det", det);
    js_field(c, "sign", sign);
    js_field(c, "logabsdet", logabs);
    return 0;
}

static int do_cond(la_ctx *c) {
    double cond;
    if (nb_linalg_cond(c->A, &cond)) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    bool sym = is_symmetric(c->A);
    fprintf(c->out, "%s: %lld x %lld matrix\ncondition number %s: %.10g%s\n", c->apath, (long long)c->m,
            (long long)c->n, sym ? "(eq. 4.2, max |lambda_i / lambda_j|)" : "(s_max / s_min)", cond,
            isinf(cond) ? " (singular)" : "");
    fprintf(c->js, "\"verb\": \"cond\", \"rows\": %lld, \"cols\": %lld, \"symmetric\": %s", (long long)c->m,
            (long long)c->n, sym ? "true" : "false");
    js_field(c, "cond", cond);
    fprintf(c->js, ", \"singular\": %s", isinf(cond) ? "true" : "false");
    return 0;
}

static int do_norms(la_ctx *c) {
    static const char *keys[4] = {"l1", "l2", "inf", "fro"};
    double v[4];
    for (int k = 0; k < 4; k++)
        if (nb_linalg_norm(c->A, (nb_norm_kind)k, &v[k])) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    bool mat = c->A->ndim == 2;
    char s[96];
    fprintf(c->out, "%s: shape %s\n", c->apath, nb_shape_str(c->A, s, sizeof s));
    if (mat)
        fprintf(c->out, "L1 (largest column sum) %.10g\nL2 (spectral, s_max) %.10g\nL-inf (largest row sum) %.10g\n"
                        "Frobenius %.10g\n", v[0], v[1], v[2], v[3]);
    else
        fprintf(c->out, "L1 %.10g\nL2 %.10g\nL-inf (max |x_i|) %.10g\n", v[0], v[1], v[2]);
    fprintf(c->js, "\"verb\": \"norms\", \"shape\": \"%s\"", s);
    for (int k = 0; k < 4; k++) js_field(c, keys[k], v[k]);
    return 0;
}

static int do_definite(la_ctx *c) {
    if (need_square(c)) return 1;
    bool sym = is_symmetric(c->A);
    nb_definiteness d;
    if (definiteness_of(c, sym, &d)) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    /* The extreme eigenvalues of the symmetric part are what decided it. */
    int64_t n = c->n;
    nb_tensor *S = sym_part(c->A), *w = NULL;
    int rc = nb_linalg_eigh(S, &w, NULL);
    nb_tensor_free(S);
    if (rc) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    double hi = w->data[0], lo = w->data[n - 1];
    nb_tensor_free(w);
    fprintf(c->out, "%s: %lld x %lld %s matrix\n%s%s (eigenvalues from %.7g down to %.7g)\n", c->apath, (long long)n,
            (long long)n, sym ? "symmetric" : "non-symmetric", sym ? "" : "x^T A x, from the symmetric part (A + A^T)/2: ",
            def_name(d), hi, lo);
    fprintf(c->js, "\"verb\": \"definite\", \"rows\": %lld, \"cols\": %lld, \"symmetric\": %s, \"definiteness\": \"%s\"",
            (long long)n, (long long)n, sym ? "true" : "false", nb_definiteness_name(d));
    js_field(c, "lambda_max", hi);
    js_field(c, "lambda_min", lo);
    return 0;
}

/* solve: LU for a square A; a non-square A, or the lstsq verb, gives the
 * least-squares solution of least norm (x = A+ b, dgelsd). */
static int do_solve(la_ctx *c, bool lstsq) {
    int64_t m = c->m, n = c->n;
    if (!c->B) return nb_cli_fail(CMD, "%s needs B.npy: nabla linalg %s A.npy B.npy", c->verb, c->verb);
    if (c->B->shape[0] != m)
        return nb_cli_fail(CMD, "%s has %lld rows but %s has %lld: A x = B needs the same number", c->bpath,
                           (long long)c->B->shape[0], c->apath, (long long)m);
    bool ls = lstsq || m != n;
    int rank = -1;
    nb_tensor *X = ls ? nb_linalg_lstsq(c->A, c->B, c->rcond, &rank) : nb_linalg_solve(c->A, c->B);
    if (!X)
        return nb_cli_fail(CMD, "%s: %s%s", c->apath, nb_errmsg(),
                           ls ? "" : " (`nabla linalg lstsq` gives the least-squares solution)");
    int64_t k = c->B->ndim == 2 ? c->B->shape[1] : 1;
    double *a = to_double(c->A), *x = to_double(X), *b = to_double(c->B), *r = malloc(sizeof(double) * (size_t)(m * k));
    int rc = 0;
    if (!a || !x || !b || !r) {
        rc = nb_cli_fail(CMD, "out of memory");
        goto done;
    }
    gemm(false, false, m, k, n, a, n, x, k, r);
    double res = fro_diff(r, b, m * k), bn = fro(b, m * k);
    fprintf(c->out, "%s: %lld x %lld matrix, %s: %lld right-hand side%s\n", c->apath, (long long)m, (long long)n,
            c->bpath, (long long)k, k == 1 ? "" : "s");
    if (ls)
        fprintf(c->out, "least squares (%s): x = A+ b minimizes ||A x - b||, least norm among minimizers; rank %d\n",
                lstsq ? "lstsq" : "A is not square", rank);
    else
        fprintf(c->out, "solved by LU with partial pivoting\n");
    if (k == 1) print_values(c, "x", x, n);
    fprintf(c->out, "residual ||A x - b||%s = %.3g (relative to ||b||: %.3g)\n", k == 1 ? "_2" : "_F", res, rel(res, bn));
    fprintf(c->js, "\"verb\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"method\": \"%s\"", c->verb, (long long)m,
            (long long)n, ls ? "lstsq" : "lu");
    if (ls) fprintf(c->js, ", \"rank\": %d", rank);
    if (k == 1 && n <= 1000) js_array(c, "x", x, n);
    js_field(c, "residual", res);
    js_field(c, "relative_residual", rel(res, bn));
    rc = write_result(c, "x", X);
done:
    free(a);
    free(x);
    free(b);
    free(r);
    nb_tensor_free(X);
    return rc;
}

/* rank: the numerical rank as NumPy's matrix_rank computes it, the number
 * of singular values above tol = rcond * s_max, with the cutoff pinv and
 * lstsq use (rcond = max(m, n) * FLT_EPSILON unless --rcond says). */
static int do_rank(la_ctx *c) {
    int64_t m = c->m, n = c->n, k = m < n ? m : n;
    nb_tensor *s = NULL;
    if (nb_linalg_svd(c->A, false, NULL, &s, NULL)) return nb_cli_fail(CMD, "%s: %s", c->apath, nb_errmsg());
    double *sd = to_double(s);
    nb_tensor_free(s);
    if (!sd) return nb_cli_fail(CMD, "out of memory");
    double rcond = c->rcond > 0 ? c->rcond : (double)(m > n ? m : n) * FLT_EPSILON, cut = rank_cutoff(c, sd[0]);
    int64_t rank = 0;
    while (rank < k && sd[rank] > cut) rank++;
    fprintf(c->out, "%s: %lld x %lld matrix of rank %lld\n", c->apath, (long long)m, (long long)n, (long long)rank);
    print_values(c, "singular values (descending)", sd, k);
    fprintf(c->out, "the rank counts the singular values above tol = rcond * s_max = %.3g * %.7g = %.3g%s\n", rcond,
            sd[0], cut, c->rcond > 0 ? "" : " (rcond = max(m, n) * FLT_EPSILON, as NumPy's matrix_rank for float32)");
    fprintf(c->js, "\"verb\": \"rank\", \"rows\": %lld, \"cols\": %lld, \"rank\": %lld", (long long)m, (long long)n,
            (long long)rank);
    js_field(c, "rcond", rcond);
    js_field(c, "tol", cut);
    js_array(c, "singular_values", sd, k);
    free(sd);
    return 0;
}

/* --- the command --------------------------------------------------------- */

/* What each verb takes: one matrix or two, which flags, whether it writes
 * PREFIX.NAME.npy files. */
enum { TAKES_OUT = 1, TAKES_FULL = 2, TAKES_RCOND = 4, TAKES_TOL = 8 };
typedef struct {
    const char *name, *args, *summary, *about;
    int nmat; /* 1: A.npy, 2: A.npy B.npy */
    int takes;
    const char *writes; /* TAKES_OUT: the NAMEs of PREFIX.NAME.npy, "U|S|Vt" */
} la_verb;

#define RCOND_DOC "max(m, n) * FLT_EPSILON for A [m, n], in pinv, lstsq, rank and svd alike (NumPy's for float32)"
static const la_verb VERBS[] = {
    {"eig", "A.npy ", "eigenvalues; for a symmetric A with Q (eq. 2.40), definiteness and cond",
     "Symmetric A: eq. 2.40 A = Q diag(lambda) Q^T (eigenvalues descending); writes PREFIX.eigenvalues.npy\n"
     "and PREFIX.Q.npy and prints the definiteness, the condition number (eq. 4.2) and ||A - Q diag(lambda) Q^T||.\n"
     "General A: complex eigenvalues as a+bi, PREFIX.eigenvalues.npy as [n, 2] (real, imaginary) pairs.",
     1, TAKES_OUT | TAKES_TOL, "eigenvalues|Q"},
    {"svd", "A.npy ", "eq. 10 A = U D V^T: U, S, Vt, rank, s_max/s_min",
     "eq. 10 A = U D V^T: writes PREFIX.U.npy, PREFIX.S.npy and PREFIX.Vt.npy (--full: square U and V^T) and\n"
     "prints the rank (as nabla linalg rank), s_max/s_min and the reconstruction error.",
     1, TAKES_OUT | TAKES_FULL | TAKES_RCOND, "U|S|Vt"},
    {"pinv", "A.npy ", "eq. 11 A+ = V D+ U^T and the four Penrose residuals",
     "eq. 11 A+ = V D+ U^T, taking the reciprocal of the singular values above rcond * s_max only:\n"
     "writes PREFIX.pinv.npy and prints the four Penrose residuals.",
     1, TAKES_OUT | TAKES_RCOND, "pinv"},
    {"rank", "A.npy ", "numerical rank: singular values above rcond * s_max (numpy.linalg.matrix_rank)",
     "The numerical rank of A: the number of singular values above tol = rcond * s_max, as\n"
     "numpy.linalg.matrix_rank computes it (its default tol is s_max * max(m, n) * eps, with eps\n"
     "FLT_EPSILON for float32 data), and the cutoff nabla linalg pinv and lstsq use.",
     1, TAKES_RCOND},
    {"det", "A.npy ", "determinant, sign and log|det| of a square A (LU)", NULL, 1, 0},
    {"cond", "A.npy ", "condition number: eq. 4.2 for a symmetric A, s_max/s_min otherwise",
     "Condition number: eq. 4.2 for a symmetric A, s_max/s_min otherwise (inf if singular).", 1, 0},
    {"norms", "A.npy ", "L1, L2, L-inf and Frobenius norms, as numpy.linalg.norm",
     "L1, L2, L-inf and Frobenius norms of a vector or a matrix (induced norms for a matrix), as\n"
     "numpy.linalg.norm computes them.", 1, 0},
    {"definite", "A.npy ", "positive/negative (semi)definite or indefinite",
     "Positive or negative (semi)definite or indefinite, from the eigenvalues; for a non-symmetric A,\n"
     "of x^T A x, i.e. of its symmetric part (A + A^T)/2.", 1, TAKES_TOL},
    {"solve", "A.npy B.npy ", "A x = B: LU for a square A, least squares otherwise",
     "A x = B for B.npy [m] or [m, k]: LU for a square A (a singular A is an error); a non-square A falls\n"
     "back to least squares. Writes PREFIX.x.npy and prints the residual.", 2, TAKES_OUT | TAKES_RCOND, "x"},
    {"lstsq", "A.npy B.npy ", "least squares x = A+ B, least norm for a rank-deficient A",
     "Least squares x = A+ B for any A: the x minimizing ||A x - B||, of least norm among them when A is\n"
     "rank-deficient (LAPACK dgelsd). Writes PREFIX.x.npy and prints the residual.", 2, TAKES_OUT | TAKES_RCOND, "x"},
};
#define NVERBS ((int)(sizeof VERBS / sizeof VERBS[0]))

static int run_verb(int v, int argc, char **argv) {
    const la_verb *lv = &VERBS[v];
    char cmdname[32], about[2048];
    snprintf(cmdname, sizeof cmdname, "linalg %s", lv->name);
    CMD = cmdname;
    const char *prefix = NULL;
    bool json = false, full = false;
    double rcond = 0, tol = 0;
    nb_flag all[] = {
        {"--out", NB_FLAG_STR, &prefix, "write the results to PREFIX.NAME.npy", .meta = "PREFIX",
         .def = "A's path without .npy"},
        {"--full", NB_FLAG_BOOL, &full, "full U [m, m] and V^T [n, n] instead of the thin form"},
        {"--rcond", NB_FLAG_FLOAT, &rcond, "singular values <= rcond * s_max count as zero", .range = "(0, 1]",
         .def = RCOND_DOC},
        {"--tol", NB_FLAG_FLOAT, &tol, "eigenvalues with |lambda| <= tol * max|lambda| count as zero", .range = "(0, 1]",
         .def = "n * FLT_EPSILON"},
        NB_FLAG_JSON(&json),
    };
    nb_flag flags[5];
    int nflags = 0;
    for (int k = 0; k < 5; k++)
        if (k == 4 || (lv->takes & (1 << k))) flags[nflags++] = all[k];
    int len = snprintf(about, sizeof about, "%s", lv->about ? lv->about : "");
    snprintf(about + len, sizeof about - (size_t)len,
             "%sWith --json the readable summary goes to stderr and one JSON object to stdout;\n"
             "non-finite numbers (a singular matrix's cond) are null there.", len ? "\n\n" : "");
    nb_cli cli = {.cmd = cmdname, .args = lv->args, .about = about, .flags = flags, .nflags = nflags,
                  .min_pos = lv->nmat, .max_pos = lv->nmat};
    const char *pos[2];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;

    la_ctx c = {.verb = lv->name, .apath = pos[0], .bpath = lv->nmat == 2 ? pos[1] : NULL, .rcond = rcond,
                .tol = tol};
    c.out = json ? stderr : stdout;
    char defprefix[4096];
    bool given = prefix != NULL;
    if (!prefix) {
        /* Next to the input: A.npy -> A.Q.npy. */
        size_t plen = strlen(c.apath);
        if (plen >= 4 && !strcmp(c.apath + plen - 4, ".npy")) plen -= 4;
        if (plen >= sizeof defprefix) return nb_cli_fail(CMD, "%s: the path is too long", c.apath);
        memcpy(defprefix, c.apath, plen);
        defprefix[plen] = 0;
        prefix = defprefix;
    }
    c.prefix = prefix;
    /* A folder given as A is the input's mistake, not that of the --out
     * derived from its path: the reader names it. */
    if (!given && nb_sniff_file(c.apath) == NB_FILE_FOLDER && !nb_npy_read(c.apath))
        return nb_cli_fail(CMD, "%s", nb_errmsg());
    /* The result files are PREFIX.NAME.npy: PREFIX's folder must take them,
     * checked before any work (by default that is A's folder). */
    if ((lv->takes & TAKES_OUT) &&
        nb_cli_check_output(CMD, given ? "--out" : "--out (by default A's path without .npy)", prefix, NULL)) {
        nb_cli_usage_line(&cli);
        return 2;
    }
    /* Nor may a result be an input (solve A.npy A.x.npy, or --out naming
     * A.npy's stem): the atomic writer would replace it. */
    for (const char *w = lv->writes; w && *w;) {
        size_t wlen = strcspn(w, "|");
        char path[4096];
        if (snprintf(path, sizeof path, "%s.%.*s.npy", prefix, (int)wlen, w) < (int)sizeof path)
            for (int i = 0; i < npos; i++)
                if (nb_cli_not_input(&cli, given ? "--out" : "--out (by default A's path without .npy)", path, pos[i]))
                    return 2;
        w += wlen + (w[wlen] == '|');
    }
    if (!(c.A = nb_npy_read(c.apath))) return nb_cli_fail(CMD, "%s", nb_errmsg());
    int rc = 1;
    bool norms = !strcmp(lv->name, "norms");
    /* norms takes vectors (and empty input, whose norm is 0); solve takes a
     * vector or matrix B; everything else needs a non-empty matrix A. */
    if (check_input(c.apath, c.A, norms ? 0 : 2, 2, norms)) goto done;
    c.m = c.A->ndim == 2 ? c.A->shape[0] : c.A->ndim == 1 ? c.A->shape[0] : 1;
    c.n = c.A->ndim == 2 ? c.A->shape[1] : 1;
    if (c.bpath) {
        if (!(c.B = nb_npy_read(c.bpath))) {
            nb_cli_fail(CMD, "%s", nb_errmsg());
            goto done;
        }
        if (check_input(c.bpath, c.B, 1, 2, false)) goto done;
    }
    c.js = open_memstream(&c.jsbuf, &c.jslen);
    if (!c.js) {
        nb_cli_fail(CMD, "out of memory");
        goto done;
    }
    switch (v) {
    case 0: rc = do_eig(&c); break;
    case 1: rc = do_svd(&c, full); break;
    case 2: rc = do_pinv(&c); break;
    case 3: rc = do_rank(&c); break;
    case 4: rc = do_det(&c); break;
    case 5: rc = do_cond(&c); break;
    case 6: rc = do_norms(&c); break;
    case 7: rc = do_definite(&c); break;
    default: rc = do_solve(&c, v == 9); break;
    }
    fclose(c.js);
    if (!rc) {
        if (c.nwritten) fprintf(c.out, "wrote %s\n", c.written);
        if (json) printf("{%s}\n", c.jsbuf);
    }
    free(c.jsbuf);
done:
    nb_tensor_free(c.A);
    nb_tensor_free(c.B);
    return rc;
}

/* nb_cli_verbs calls a function per verb; each is run_verb with its index. */
#define VERB_FN(i, name) \
    static int verb_##name(int argc, char **argv) { return run_verb(i, argc, argv); }
VERB_FN(0, eig)
VERB_FN(1, svd)
VERB_FN(2, pinv)
VERB_FN(3, rank)
VERB_FN(4, det)
VERB_FN(5, cond)
VERB_FN(6, norms)
VERB_FN(7, definite)
VERB_FN(8, solve)
VERB_FN(9, lstsq)

static int cmd_linalg(int argc, char **argv) {
    static const nb_cmd_fn fns[NVERBS] = {verb_eig,   verb_svd,  verb_pinv,     verb_rank,  verb_det,
                                          verb_cond,  verb_norms, verb_definite, verb_solve, verb_lstsq};
    nb_verb verbs[NVERBS];
    for (int i = 0; i < NVERBS; i++) verbs[i] = (nb_verb){VERBS[i].name, fns[i], VERBS[i].summary};
    return nb_cli_verbs("linalg", verbs, NVERBS, argc, argv);
}

NB_COMMAND("linalg", cmd_linalg, "eigenvalues, SVD, pseudoinverse, rank, det, cond, norms, solve on .npy matrices")
