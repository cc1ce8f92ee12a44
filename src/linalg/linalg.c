/* linalg.c — notes §1.1 on nabla tensors through LAPACK: eigendecompositions
 * (eq. 2.40), SVD (eq. 10), pseudoinverse (eq. 11), determinant, inverse,
 * condition number (eq. 4.2), norms, definiteness, orthogonality (eq. 2.37),
 * linear solves and least squares. Inputs are float32; the work is done in
 * double so that results are accurate to float32 precision and beyond. */
#include "dense.h"
#include <cblas.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

/* --- shared helpers (declared in dense.h) -------------------------------- */

int nb__la_finite(const char *fn, const char *what, const nb_tensor *t) {
    if (!t) return nb_error("%s: %s is NULL", fn, what);
    if (nb__host_only(fn, what, t)) return -1; /* every reader of matrices and parameters passes here */
    for (int64_t i = 0; i < t->size; i++)
        if (!isfinite(t->data[i]))
            return nb_error("%s holds a non-finite value (%g) at flat index %lld: expected finite numbers", what,
                            (double)t->data[i], (long long)i);
    return 0;
}

double *nb__la_matrix(const char *fn, const char *what, const nb_tensor *A, int *m, int *n) {
    if (!A) return nb_error("%s: %s is NULL", fn, what), NULL;
    char s[96];
    if (A->ndim != 2)
        return nb_error("%s: %s must be a 2-D matrix, got shape %s", fn, what, nb_shape_str(A, s, sizeof s)), NULL;
    if (A->shape[0] == 0 || A->shape[1] == 0)
        return nb_error("%s is empty (shape %s): expected at least one row and one column", what,
                        nb_shape_str(A, s, sizeof s)), NULL;
    if (A->shape[0] > INT_MAX || A->shape[1] > INT_MAX)
        return nb_error("%s of shape %s is too large for LAPACK: expected at most %d rows and columns", what,
                        nb_shape_str(A, s, sizeof s), INT_MAX), NULL;
    if (nb__la_finite(fn, what, A)) return NULL;
    double *a = malloc(sizeof(double) * (size_t)A->size);
    if (!a) return nb_error("%s: out of memory for a %s copy of %s", fn, nb_shape_str(A, s, sizeof s), what), NULL;
    for (int64_t i = 0; i < A->size; i++) a[i] = A->data[i];
    *m = (int)A->shape[0];
    *n = (int)A->shape[1];
    return a;
}

double *nb__la_square(const char *fn, const char *what, const nb_tensor *A, int *n) {
    int m;
    double *a = nb__la_matrix(fn, what, A, &m, n);
    if (a && m != *n) {
        free(a);
        return nb_error("%s: %s must be square, got %d x %d", fn, what, m, *n), NULL;
    }
    return a;
}

static double sym_tol(const double *a, int n) {
    double big = 0;
    for (int64_t i = 0; i < (int64_t)n * n; i++) big = fmax(big, fabs(a[i]));
    return 1e-5 * big;
}

bool nb__la_is_sym(const double *a, int n) {
    double tol = sym_tol(a, n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (fabs(a[(int64_t)i * n + j] - a[(int64_t)j * n + i]) > tol) return false;
    return true;
}

int nb__la_symmetrize(const char *fn, const char *what, double *a, int n) {
    double tol = sym_tol(a, n);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double x = a[(int64_t)i * n + j], y = a[(int64_t)j * n + i];
            if (fabs(x - y) > tol)
                return nb_error("%s must be symmetric, but %s[%d][%d] = %g and %s[%d][%d] = %g", what, what, i, j, x,
                                what, j, i, y);
            a[(int64_t)i * n + j] = a[(int64_t)j * n + i] = 0.5 * (x + y);
        }
    return 0;
}

nb_tensor *nb__la_tensor(int ndim, const int64_t *shape, const double *src) {
    nb_tensor *t = nb_tensor_new(ndim, shape);
    for (int64_t i = 0; i < t->size; i++) t->data[i] = (float)src[i];
    return t;
}

int nb__la_info(const char *fn, const char *routine, lapack_int info) {
    if (info < 0) return nb_error("%s: LAPACK %s rejected argument %d (a bug in nabla)", fn, routine, (int)-info);
    return nb_error("LAPACK %s failed to converge (info = %d)", routine, (int)info);
}

int nb__la_chol_logdet(const char *fn, const char *what, double *a, int n, double *logdet) {
    lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', n, a, n);
    if (info > 0)
        return nb_error("%s is not positive definite (Cholesky fails at column %d)", what, (int)info);
    if (info < 0) return nb__la_info(fn, "dpotrf", info);
    /* det S = det(L)^2 = prod L_ii^2 */
    double s = 0;
    for (int i = 0; i < n; i++) s += 2.0 * log(a[(int64_t)i * n + i]);
    *logdet = s;
    return 0;
}

/* --- eigendecompositions ------------------------------------------------ */

/* Makes the largest-magnitude entry of column j of q [rows, cols] positive;
 * flips row j of the partner matrix p [.., pcols] (SVD's V^T) with it. */
static void fix_sign(double *q, int rows, int cols, int j, double *p, int pcols) {
    int best = 0;
    for (int i = 1; i < rows; i++)
        if (fabs(q[(int64_t)i * cols + j]) > fabs(q[(int64_t)best * cols + j])) best = i;
    if (q[(int64_t)best * cols + j] >= 0) return;
    for (int i = 0; i < rows; i++) q[(int64_t)i * cols + j] = -q[(int64_t)i * cols + j];
    if (p)
        for (int c = 0; c < pcols; c++) p[(int64_t)j * pcols + c] = -p[(int64_t)j * pcols + c];
}

/* Symmetric eigenproblem in place: a [n, n] (exactly symmetric) becomes Q
 * when vecs, w gets the eigenvalues descending (eq. 2.40's convention). */
static int eigh_d(const char *fn, double *a, int n, double *w, bool vecs) {
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, vecs ? 'V' : 'N', 'L', n, a, n, w);
    if (info) return nb__la_info(fn, "dsyevd", info);
    /* LAPACK sorts ascending: reverse values and columns. */
    for (int i = 0, j = n - 1; i < j; i++, j--) {
        double t = w[i]; w[i] = w[j]; w[j] = t;
        if (vecs)
            for (int r = 0; r < n; r++) {
                double *row = a + (int64_t)r * n;
                t = row[i]; row[i] = row[j]; row[j] = t;
            }
    }
    if (vecs)
        for (int j = 0; j < n; j++) fix_sign(a, n, n, j, NULL, 0);
    return 0;
}

int nb_linalg_eigh(const nb_tensor *A, nb_tensor **w, nb_tensor **Q) {
    const char *fn = "linalg_eigh";
    if (!w) return nb_error("%s: the eigenvalue output w is NULL", fn);
    *w = NULL;
    if (Q) *Q = NULL;
    int n;
    double *a = nb__la_square(fn, "A", A, &n);
    if (!a) return -1;
    double *ev = malloc(sizeof(double) * (size_t)n);
    int rc = ev ? nb__la_symmetrize(fn, "A", a, n) : nb_error("%s: out of memory", fn);
    if (!rc) rc = eigh_d(fn, a, n, ev, Q != NULL);
    if (!rc) {
        *w = nb__la_tensor(NB_SHAPE(n), ev);
        if (Q) *Q = nb__la_tensor(NB_SHAPE(n, n), a);
    }
    free(a);
    free(ev);
    return rc;
}

static int cmp_complex_desc(const void *x, const void *y) {
    const double *a = x, *b = y;
    if (a[0] != b[0]) return a[0] < b[0] ? 1 : -1;
    if (a[1] != b[1]) return a[1] < b[1] ? 1 : -1;
    return 0;
}

int nb_linalg_eig(const nb_tensor *A, nb_tensor **w) {
    const char *fn = "linalg_eig";
    if (!w) return nb_error("%s: the eigenvalue output w is NULL", fn);
    *w = NULL;
    int n;
    double *a = nb__la_square(fn, "A", A, &n);
    if (!a) return -1;
    double *wr = malloc(sizeof(double) * (size_t)n * 4), *wi = wr + n, *pairs = wr + 2 * n;
    if (!wr) {
        free(a);
        return nb_error("%s: out of memory", fn);
    }
    lapack_int info = LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', 'N', n, a, n, wr, wi, NULL, 1, NULL, 1);
    int rc = info ? nb__la_info(fn, "dgeev", info) : 0;
    if (!rc) {
        for (int i = 0; i < n; i++) {
            pairs[2 * i] = wr[i];
            pairs[2 * i + 1] = wi[i];
        }
        qsort(pairs, (size_t)n, 2 * sizeof(double), cmp_complex_desc);
        *w = nb__la_tensor(NB_SHAPE(n, 2), pairs);
    }
    free(a);
    free(wr);
    return rc;
}

/* --- SVD and what is built on it ---------------------------------------- */

/* a [m, n] is destroyed. jobz 'A' (full), 'S' (thin) or 'N' (values only);
 * u [m, m or k], vt [n or k, n] as row-major, sign-normalized in pairs. */
static int svd_d(const char *fn, double *a, int m, int n, char jobz, double *s, double *u, double *vt) {
    int k = m < n ? m : n;
    int ucols = jobz == 'A' ? m : k;
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, jobz, m, n, a, n, s, jobz == 'N' ? NULL : u, ucols,
                                     jobz == 'N' ? NULL : vt, n);
    if (info) return nb__la_info(fn, "dgesdd", info);
    if (jobz != 'N') {
        int vrows = jobz == 'A' ? n : k;
        for (int j = 0; j < k; j++) fix_sign(u, m, ucols, j, vt, n);
        /* Null-space vectors without a partner: normalize them alone. */
        for (int j = k; j < ucols; j++) fix_sign(u, m, ucols, j, NULL, 0);
        for (int r = k; r < vrows; r++) {
            int best = 0;
            double *row = vt + (int64_t)r * n;
            for (int c = 1; c < n; c++)
                if (fabs(row[c]) > fabs(row[best])) best = c;
            if (row[best] < 0)
                for (int c = 0; c < n; c++) row[c] = -row[c];
        }
    }
    return 0;
}

int nb_linalg_svd(const nb_tensor *A, bool full, nb_tensor **U, nb_tensor **s, nb_tensor **Vt) {
    const char *fn = "linalg_svd";
    if (!s) return nb_error("%s: the singular value output s is NULL", fn);
    if (!U != !Vt) return nb_error("%s: U and Vt must both be given or both be NULL", fn);
    *s = NULL;
    if (U) *U = *Vt = NULL;
    int m, n;
    double *a = nb__la_matrix(fn, "A", A, &m, &n);
    if (!a) return -1;
    int k = m < n ? m : n;
    char jobz = !U ? 'N' : full ? 'A' : 'S';
    int ucols = jobz == 'A' ? m : k, vrows = jobz == 'A' ? n : k;
    double *sv = malloc(sizeof(double) * (size_t)k);
    double *u = U ? malloc(sizeof(double) * (size_t)m * (size_t)ucols) : NULL;
    double *vt = U ? malloc(sizeof(double) * (size_t)vrows * (size_t)n) : NULL;
    int rc = !sv || (U && (!u || !vt)) ? nb_error("%s: out of memory", fn) : svd_d(fn, a, m, n, jobz, sv, u, vt);
    if (!rc) {
        *s = nb__la_tensor(NB_SHAPE(k), sv);
        if (U) {
            *U = nb__la_tensor(NB_SHAPE(m, ucols), u);
            *Vt = nb__la_tensor(NB_SHAPE(vrows, n), vt);
        }
    }
    free(a);
    free(sv);
    free(u);
    free(vt);
    return rc;
}

nb_tensor *nb_linalg_pinv(const nb_tensor *A, double rcond) {
    const char *fn = "linalg_pinv";
    int m, n;
    double *a = nb__la_matrix(fn, "A", A, &m, &n);
    if (!a) return NULL;
    int k = m < n ? m : n;
    double *s = malloc(sizeof(double) * ((size_t)k + (size_t)m * k + (size_t)k * n + (size_t)n * m));
    if (!s) {
        free(a);
        return nb_error("%s: out of memory", fn), NULL;
    }
    double *u = s + k, *vt = u + (size_t)m * k, *out = vt + (size_t)k * n;
    nb_tensor *res = NULL;
    if (!svd_d(fn, a, m, n, 'S', s, u, vt)) {
        if (rcond <= 0) rcond = (m > n ? m : n) * (double)FLT_EPSILON;
        /* eq. 11: A+ = V D+ U^T, where D+ inverts the singular values above
         * the cutoff and zeroes the rest (they are rounding noise of a rank
         * deficiency; inverting them would blow up). Scale row l of V^T by
         * 1/s_l, then out [n, m] = (D+ V^T)^T U^T. */
        double cut = rcond * s[0];
        for (int l = 0; l < k; l++) {
            double inv = s[l] > cut ? 1.0 / s[l] : 0.0;
            for (int c = 0; c < n; c++) vt[(int64_t)l * n + c] *= inv;
        }
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, n, m, k, 1.0, vt, n, u, k, 0.0, out, m);
        res = nb__la_tensor(NB_SHAPE(n, m), out);
    }
    free(a);
    free(s);
    return res;
}

/* --- LU: determinant, solve, inverse ------------------------------------ */

int nb_linalg_slogdet(const nb_tensor *A, double *sign, double *logabsdet) {
    const char *fn = "linalg_det";
    if (!sign || !logabsdet) return nb_error("%s: an output pointer is NULL", fn);
    int n;
    double *a = nb__la_square(fn, "A", A, &n);
    if (!a) return -1;
    lapack_int *ipiv = malloc(sizeof(lapack_int) * (size_t)n);
    if (!ipiv) {
        free(a);
        return nb_error("%s: out of memory", fn);
    }
    lapack_int info = LAPACKE_dgetrf(LAPACK_ROW_MAJOR, n, n, a, n, ipiv);
    int rc = 0;
    if (info < 0) {
        rc = nb__la_info(fn, "dgetrf", info);
    } else if (info > 0) { /* an exact zero pivot: singular, det = 0 */
        *sign = 0;
        *logabsdet = -INFINITY;
    } else {
        /* P A = L U with unit-diagonal L: det A = det(P) prod U_ii, and each
         * row interchange flips the sign. */
        double sg = 1, la = 0;
        for (int i = 0; i < n; i++) {
            double d = a[(int64_t)i * n + i];
            if (d < 0) sg = -sg;
            if (ipiv[i] != i + 1) sg = -sg;
            la += log(fabs(d));
        }
        *sign = sg;
        *logabsdet = la;
    }
    free(a);
    free(ipiv);
    return rc;
}

int nb_linalg_det(const nb_tensor *A, double *det) {
    if (!det) return nb_error("linalg_det: the output det is NULL");
    double sg, la;
    if (nb_linalg_slogdet(A, &sg, &la)) return -1;
    *det = sg == 0 ? 0.0 : sg * exp(la);
    return 0;
}

/* Right-hand side B [n] or [n, k] as a row-major double copy. */
static double *rhs_copy(const char *fn, const nb_tensor *B, int64_t rows, int64_t min_rows, int *nrhs) {
    char s[96];
    if (!B) return nb_error("%s: B is NULL", fn), NULL;
    if ((B->ndim != 1 && B->ndim != 2) || B->shape[0] != rows || (B->ndim == 2 && B->shape[1] == 0))
        return nb_error("%s: B must be [%lld] or [%lld, k] with k >= 1, got shape %s", fn, (long long)rows,
                        (long long)rows, nb_shape_str(B, s, sizeof s)),
               NULL;
    if (B->ndim == 2 && B->shape[1] > INT_MAX) return nb_error("%s: B has too many columns", fn), NULL;
    if (nb__la_finite(fn, "B", B)) return NULL;
    *nrhs = B->ndim == 2 ? (int)B->shape[1] : 1;
    int64_t r = rows > min_rows ? rows : min_rows;
    double *b = calloc((size_t)r * (size_t)*nrhs, sizeof(double));
    if (!b) return nb_error("%s: out of memory", fn), NULL;
    for (int64_t i = 0; i < B->size; i++) b[i] = B->data[i];
    return b;
}

/* Solves a X = b in place (b [n, nrhs]); a is overwritten by its LU. */
static int lu_solve(const char *fn, double *a, int n, double *b, int nrhs) {
    lapack_int *ipiv = malloc(sizeof(lapack_int) * (size_t)n);
    if (!ipiv) return nb_error("%s: out of memory", fn);
    double anorm = LAPACKE_dlange(LAPACK_ROW_MAJOR, '1', n, n, a, n), rcond = 0;
    lapack_int info = LAPACKE_dgetrf(LAPACK_ROW_MAJOR, n, n, a, n, ipiv);
    int rc = 0;
    if (info > 0) {
        rc = nb_error("A is singular (zero pivot in column %d of its LU factorization)", (int)info);
    } else if (info < 0) {
        rc = nb__la_info(fn, "dgetrf", info);
    } else if ((info = LAPACKE_dgecon(LAPACK_ROW_MAJOR, '1', n, a, n, anorm, &rcond))) {
        rc = nb__la_info(fn, "dgecon", info);
    } else if (!(rcond >= DBL_EPSILON)) {
        /* Below double's resolution the "solution" is rounding noise. */
        rc = nb_error("A is numerically singular (reciprocal condition number %.3g < %.3g); "
                      "use least squares or the pseudoinverse", rcond, DBL_EPSILON);
    } else if ((info = LAPACKE_dgetrs(LAPACK_ROW_MAJOR, 'N', n, nrhs, a, n, ipiv, b, nrhs))) {
        rc = nb__la_info(fn, "dgetrs", info);
    }
    free(ipiv);
    return rc;
}

nb_tensor *nb_linalg_solve(const nb_tensor *A, const nb_tensor *B) {
    const char *fn = "linalg_solve";
    int n, nrhs;
    double *a = nb__la_square(fn, "A", A, &n);
    if (!a) return NULL;
    double *b = rhs_copy(fn, B, n, n, &nrhs);
    nb_tensor *x = NULL;
    if (b && !lu_solve(fn, a, n, b, nrhs)) x = nb__la_tensor(B->ndim, B->shape, b);
    free(a);
    free(b);
    return x;
}

nb_tensor *nb_linalg_inv(const nb_tensor *A) {
    const char *fn = "linalg_inv";
    int n;
    double *a = nb__la_square(fn, "A", A, &n);
    if (!a) return NULL;
    double *b = calloc((size_t)n * (size_t)n, sizeof(double));
    nb_tensor *x = NULL;
    if (!b) {
        nb_error("%s: out of memory", fn);
    } else {
        for (int i = 0; i < n; i++) b[(int64_t)i * n + i] = 1.0;
        if (!lu_solve(fn, a, n, b, n)) x = nb__la_tensor(NB_SHAPE(n, n), b);
    }
    free(a);
    free(b);
    return x;
}

nb_tensor *nb_linalg_lstsq(const nb_tensor *A, const nb_tensor *B, double rcond, int *rank) {
    const char *fn = "linalg_lstsq";
    int m, n, nrhs;
    double *a = nb__la_matrix(fn, "A", A, &m, &n);
    if (!a) return NULL;
    /* dgelsd writes the solution over B, which needs max(m, n) rows. */
    double *b = rhs_copy(fn, B, m, n, &nrhs);
    double *s = malloc(sizeof(double) * (size_t)(m < n ? m : n));
    nb_tensor *x = NULL;
    if (b && !s) nb_error("%s: out of memory", fn);
    if (b && s) {
        if (rcond <= 0) rcond = (m > n ? m : n) * (double)FLT_EPSILON;
        lapack_int rk = 0;
        lapack_int info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, m, n, nrhs, a, n, b, nrhs, s, rcond, &rk);
        if (info) {
            nb__la_info(fn, "dgelsd", info);
        } else {
            if (rank) *rank = (int)rk;
            x = B->ndim == 1 ? nb__la_tensor(NB_SHAPE(n), b) : nb__la_tensor(NB_SHAPE(n, nrhs), b);
        }
    }
    free(a);
    free(b);
    free(s);
    return x;
}

/* --- condition, norms, definiteness, orthogonality ---------------------- */

int nb_linalg_cond(const nb_tensor *A, double *cond) {
    const char *fn = "linalg_cond";
    if (!cond) return nb_error("%s: the output cond is NULL", fn);
    int m, n;
    double *a = nb__la_matrix(fn, "A", A, &m, &n);
    if (!a) return -1;
    int k = m < n ? m : n;
    double *v = malloc(sizeof(double) * (size_t)k);
    int rc;
    double hi = 0, lo = INFINITY;
    if (!v) {
        rc = nb_error("%s: out of memory", fn);
    } else if (m == n && nb__la_is_sym(a, n)) {
        /* eq. 4.2: max_ij |lambda_i / lambda_j| = max|lambda| / min|lambda|. */
        nb__la_symmetrize(fn, "A", a, n);
        rc = eigh_d(fn, a, n, v, false);
        for (int i = 0; !rc && i < n; i++) {
            hi = fmax(hi, fabs(v[i]));
            lo = fmin(lo, fabs(v[i]));
        }
    } else {
        rc = svd_d(fn, a, m, n, 'N', v, NULL, NULL);
        if (!rc) {
            hi = v[0];
            lo = v[k - 1];
        }
    }
    /* A smallest value within double rounding of zero is a zero: the matrix
     * is singular, and 1/(rounding noise) would be a meaningless number. */
    if (!rc) *cond = lo > hi * (m > n ? m : n) * DBL_EPSILON ? hi / lo : INFINITY;
    free(a);
    free(v);
    return rc;
}

int nb_linalg_norm(const nb_tensor *A, nb_norm_kind kind, double *out) {
    const char *fn = "linalg_norm";
    char s[96];
    if (!out) return nb_error("%s: the output is NULL", fn);
    if (kind < NB_NORM_L1 || kind > NB_NORM_FRO) return nb_error("%s: unknown norm kind %d", fn, (int)kind);
    if (nb__la_finite(fn, "the tensor", A)) return -1;
    if (A->ndim > 2) return nb_error("%s: needs a vector or a matrix, got shape %s", fn, nb_shape_str(A, s, sizeof s));
    double r = 0;
    const float *x = A->data;
    if (A->ndim < 2 || kind == NB_NORM_FRO) {
        if (kind == NB_NORM_L1) {
            for (int64_t i = 0; i < A->size; i++) r += fabs((double)x[i]);
        } else if (kind == NB_NORM_INF) {
            for (int64_t i = 0; i < A->size; i++) r = fmax(r, fabs((double)x[i]));
        } else {
            /* Scaled sum of squares: no overflow for large float entries. */
            double big = 0, ss = 0;
            for (int64_t i = 0; i < A->size; i++) big = fmax(big, fabs((double)x[i]));
            for (int64_t i = 0; big > 0 && i < A->size; i++) ss += (x[i] / big) * (x[i] / big);
            r = big * sqrt(ss);
        }
        *out = r;
        return 0;
    }
    int64_t m = A->shape[0], n = A->shape[1];
    if (m == 0 || n == 0) {
        *out = 0;
        return 0;
    }
    if (kind == NB_NORM_L1) { /* induced 1-norm: largest column sum */
        for (int64_t j = 0; j < n; j++) {
            double c = 0;
            for (int64_t i = 0; i < m; i++) c += fabs((double)x[i * n + j]);
            r = fmax(r, c);
        }
    } else if (kind == NB_NORM_INF) { /* induced inf-norm: largest row sum */
        for (int64_t i = 0; i < m; i++) {
            double c = 0;
            for (int64_t j = 0; j < n; j++) c += fabs((double)x[i * n + j]);
            r = fmax(r, c);
        }
    } else { /* spectral norm: the largest singular value */
        int mi, ni;
        double *a = nb__la_matrix(fn, "the matrix", A, &mi, &ni);
        double *sv = a ? malloc(sizeof(double) * (size_t)(mi < ni ? mi : ni)) : NULL;
        int rc = !a ? -1 : !sv ? nb_error("%s: out of memory", fn) : svd_d(fn, a, mi, ni, 'N', sv, NULL, NULL);
        if (!rc) r = sv[0];
        free(a);
        free(sv);
        if (rc) return -1;
    }
    *out = r;
    return 0;
}

nb_definiteness nb__la_classify(const double *w, int n, double tol) {
    double scale = 0;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(w[i]));
    double z = tol * scale;
    int pos = 0, neg = 0;
    for (int i = 0; i < n; i++) {
        pos += w[i] > z;
        neg += w[i] < -z;
    }
    bool zero = pos + neg < n;
    if (pos && neg) return NB_INDEFINITE;
    if (pos) return zero ? NB_POSITIVE_SEMIDEFINITE : NB_POSITIVE_DEFINITE;
    if (neg) return zero ? NB_NEGATIVE_SEMIDEFINITE : NB_NEGATIVE_DEFINITE;
    return NB_ZERO_MATRIX;
}

int nb_linalg_definiteness(const nb_tensor *A, double tol, nb_definiteness *out) {
    const char *fn = "linalg_definiteness";
    if (!out) return nb_error("%s: the output is NULL", fn);
    int n;
    double *a = nb__la_square(fn, "A", A, &n);
    if (!a) return -1;
    double *w = malloc(sizeof(double) * (size_t)n);
    int rc = !w ? nb_error("%s: out of memory", fn) : nb__la_symmetrize(fn, "A", a, n);
    if (!rc) rc = eigh_d(fn, a, n, w, false);
    if (!rc) *out = nb__la_classify(w, n, tol > 0 ? tol : n * (double)FLT_EPSILON);
    free(a);
    free(w);
    return rc;
}

const char *nb_definiteness_name(nb_definiteness d) {
    switch (d) {
    case NB_INDEFINITE: return "indefinite";
    case NB_POSITIVE_DEFINITE: return "positive definite";
    case NB_POSITIVE_SEMIDEFINITE: return "positive semidefinite";
    case NB_NEGATIVE_DEFINITE: return "negative definite";
    case NB_NEGATIVE_SEMIDEFINITE: return "negative semidefinite";
    case NB_ZERO_MATRIX: return "zero";
    }
    return "unknown";
}

int nb_linalg_is_orthogonal(const nb_tensor *A, double tol, double *err) {
    const char *fn = "linalg_is_orthogonal";
    int n;
    double *a = nb__la_square(fn, "A", A, &n);
    if (!a) return -1;
    double *p = malloc(sizeof(double) * (size_t)n * (size_t)n);
    if (!p) {
        free(a);
        return nb_error("%s: out of memory", fn);
    }
    /* eq. 2.37: both A^T A and A A^T must be I (for square A either implies
     * the other in exact arithmetic; checking both bounds rounding on each). */
    double worst = 0;
    for (int t = 0; t < 2; t++) {
        cblas_dgemm(CblasRowMajor, t ? CblasNoTrans : CblasTrans, t ? CblasTrans : CblasNoTrans, n, n, n, 1.0, a, n,
                    a, n, 0.0, p, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) worst = fmax(worst, fabs(p[(int64_t)i * n + j] - (i == j)));
    }
    free(a);
    free(p);
    if (err) *err = worst;
    return worst <= (tol > 0 ? tol : 1e-5);
}
