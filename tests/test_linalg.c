/* test_linalg.c — notes §1.1 and eq. 4.2, one test per equation: each computes
 * the equation as the notes write it and checks it against another route
 * (LAPACK, a hand-computed case, an identity between factorizations). */
#include "test.h"
#include <float.h>
#include <stdlib.h>

/* --- helpers --------------------------------------------------------------- */

static nb_tensor *randn(int64_t m, int64_t n) {
    nb_tensor *t = nb_tensor_new(NB_SHAPE(m, n));
    nb_init_normal(t, 0.f, 1.f, nb_test_rng());
    return t;
}

static nb_tensor *rand_sym(int64_t n) {
    nb_tensor *b = randn(n, n), *a = nb_tensor_new(NB_SHAPE(n, n));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) a->data[i * n + j] = b->data[i * n + j] + b->data[j * n + i];
    nb_tensor_free(b);
    return a;
}

static double at(const nb_tensor *t, int64_t i, int64_t j) { return t->data[i * t->shape[1] + j]; }

/* C = op(A) op(B) in double, op = transpose when t is set. */
static double *mm(const nb_tensor *A, bool ta, const nb_tensor *B, bool tb, int64_t *rows, int64_t *cols) {
    int64_t m = ta ? A->shape[1] : A->shape[0], k = ta ? A->shape[0] : A->shape[1];
    int64_t n = tb ? B->shape[0] : B->shape[1];
    double *c = calloc((size_t)(m * n), sizeof(double));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (ta ? at(A, p, i) : at(A, i, p)) * (tb ? at(B, j, p) : at(B, p, j));
            c[i * n + j] = s;
        }
    *rows = m;
    *cols = n;
    return c;
}

/* A persistent tensor from a double array. */
static nb_tensor *from_d(int64_t m, int64_t n, const double *d) {
    nb_tensor *t = nb_tensor_new(NB_SHAPE(m, n));
    for (int64_t i = 0; i < m * n; i++) t->data[i] = (float)d[i];
    return t;
}

/* Q diag(lam) Q^T with Q a random orthogonal matrix (from an eigh). */
static nb_tensor *with_spectrum(int n, const double *lam) {
    nb_tensor *s = rand_sym(n), *w, *Q;
    CHECK(nb_linalg_eigh(s, &w, &Q) == 0);
    double *a = calloc((size_t)n * n, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            for (int l = 0; l < n; l++) a[i * n + j] += at(Q, i, l) * lam[l] * at(Q, j, l);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) a[i * n + j] = a[j * n + i]; /* exactly symmetric */
    nb_tensor *A = from_d(n, n, a);
    free(a);
    nb_tensor_free(s);
    nb_tensor_free(w);
    nb_tensor_free(Q);
    return A;
}

/* --- eq. 2.27: Ax = sum_i x_i A_{:,i} ------------------------------------ */

TEST(test_eq_2_27_ax_is_a_sum_of_columns) {
    int64_t n = 6;
    nb_tensor *A = randn(n, n), *x = randn(n, 1);
    double b[6] = {0};
    for (int64_t i = 0; i < n; i++) /* eq. 2.27, column by column */
        for (int64_t r = 0; r < n; r++) b[r] += x->data[i] * at(A, r, i);
    nb_tensor *Ax = nb_matmul(A, x); /* the row-by-row product */
    for (int64_t r = 0; r < n; r++) CHECK_NEAR(Ax->data[r], b[r], 1e-5);
    /* And back: the combination of columns that gives b is x (solve). */
    nb_tensor *bt = from_d(n, 1, b), *xs = nb_linalg_solve(A, bt);
    CHECK(xs != NULL);
    if (xs) CHECK(nb_test_maxrel(xs->data, x->data, n) < 1e-3);
    nb_tensor_free(A);
    nb_tensor_free(x);
    nb_tensor_free(bt);
    nb_tensor_free(xs);
}

/* --- norms: the three axioms and the definitions ------------------------- */

TEST(test_eq_norm_props_axioms_and_definitions) {
    const nb_norm_kind kinds[] = {NB_NORM_L1, NB_NORM_L2, NB_NORM_INF, NB_NORM_FRO};
    for (int shape = 0; shape < 2; shape++) { /* vectors, then matrices */
        int64_t m = shape ? 4 : 7, n = shape ? 3 : 1;
        for (int k = 0; k < 4; k++) {
            for (int trial = 0; trial < 20; trial++) {
                nb_tensor *x = randn(m, n), *y = randn(m, n), *s = nb_tensor_new(NB_SHAPE(m, n));
                if (!shape) x->ndim = y->ndim = s->ndim = 1; /* view as [7] */
                double alpha = nb_rng_normal(nb_test_rng()) * 3, fx = 0, fy = 0, fs = 0, fa = 0;
                for (int64_t i = 0; i < x->size; i++) s->data[i] = x->data[i] + y->data[i];
                CHECK(nb_linalg_norm(x, kinds[k], &fx) == 0 && nb_linalg_norm(y, kinds[k], &fy) == 0);
                CHECK(nb_linalg_norm(s, kinds[k], &fs) == 0);
                CHECK(fx > 0);                      /* (1): only 0 has norm 0 */
                CHECK(fs <= fx + fy + 1e-6);        /* (2): triangle inequality */
                for (int64_t i = 0; i < x->size; i++) s->data[i] = (float)(alpha * x->data[i]);
                CHECK(nb_linalg_norm(s, kinds[k], &fa) == 0);
                CHECK_NEAR(fa, fabs(alpha) * fx, 1e-5); /* (3): homogeneity */
                nb_tensor_free(x);
                nb_tensor_free(y);
                nb_tensor_free(s);
            }
            nb_tensor *z = nb_tensor_new(NB_SHAPE(m, n));
            double fz = -1;
            CHECK(nb_linalg_norm(z, kinds[k], &fz) == 0 && fz == 0); /* (1): f(0) = 0 */
            nb_tensor_free(z);
        }
    }
    /* Definitions on a hand case: x = (3, -4, 1). */
    nb_tensor *v = nb_tensor_from(NB_SHAPE(3), (float[]){3, -4, 1});
    double r;
    nb_linalg_norm(v, NB_NORM_L1, &r);
    CHECK_NEAR(r, 8, 1e-12);
    nb_linalg_norm(v, NB_NORM_L2, &r);
    CHECK_NEAR(r, sqrt(26.0), 1e-12);
    nb_linalg_norm(v, NB_NORM_INF, &r);
    CHECK_NEAR(r, 4, 1e-12); /* ||x||_inf = max |x_i| */
    nb_tensor_free(v);
    /* Matrix: [[1, -2], [3, 4]]: column sums 4, 6; row sums 3, 7. */
    nb_tensor *M = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, -2, 3, 4});
    nb_linalg_norm(M, NB_NORM_L1, &r);
    CHECK_NEAR(r, 6, 1e-12);
    nb_linalg_norm(M, NB_NORM_INF, &r);
    CHECK_NEAR(r, 7, 1e-12);
    nb_linalg_norm(M, NB_NORM_FRO, &r);
    CHECK_NEAR(r, sqrt(30.0), 1e-12);
    nb_tensor *s;
    nb_linalg_svd(M, false, NULL, &s, NULL);
    nb_linalg_norm(M, NB_NORM_L2, &r);
    CHECK_NEAR(r, s->data[0], 1e-6);
    /* The spectral norm is induced: ||M x|| <= ||M|| ||x|| for any x. */
    for (int t = 0; t < 50; t++) {
        double x0 = nb_rng_normal(nb_test_rng()), x1 = nb_rng_normal(nb_test_rng());
        double y0 = x0 - 2 * x1, y1 = 3 * x0 + 4 * x1;
        CHECK(sqrt(y0 * y0 + y1 * y1) <= r * sqrt(x0 * x0 + x1 * x1) * (1 + 1e-9));
    }
    nb_tensor_free(s);
    nb_tensor_free(M);
    nb_tensor *cube = nb_tensor_new(NB_SHAPE(2, 2, 2));
    CHECK(nb_linalg_norm(cube, NB_NORM_L2, &r) == -1 && strstr(nb_errmsg(), "vector or a matrix"));
    nb_tensor_free(cube);
}

/* --- eq. 2.37 and 2.38: orthogonal matrices ------------------------------- */

TEST(test_eq_2_37_orthogonal_matrix) {
    nb_tensor *S = rand_sym(7), *w, *Q;
    CHECK(nb_linalg_eigh(S, &w, &Q) == 0);
    double err;
    CHECK(nb_linalg_is_orthogonal(Q, 0, &err) == 1); /* eigenvectors of a symmetric matrix */
    CHECK(err < 1e-6);
    /* A^T A = A A^T = I by hand, with the double products. */
    int64_t r, c;
    for (int t = 0; t < 2; t++) {
        double *p = mm(Q, t == 0, Q, t == 1, &r, &c);
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++) CHECK_NEAR(p[i * c + j], i == j, 1e-6);
        free(p);
    }
    float cs = cosf(0.7f), sn = sinf(0.7f);
    nb_tensor *R = nb_tensor_from(NB_SHAPE(2, 2), (float[]){cs, -sn, sn, cs});
    CHECK(nb_linalg_is_orthogonal(R, 0, NULL) == 1);
    R->data[0] *= 1.01f; /* no longer orthonormal columns */
    CHECK(nb_linalg_is_orthogonal(R, 0, &err) == 0);
    CHECK(err > 1e-3);
    nb_tensor *rect = randn(3, 2);
    CHECK(nb_linalg_is_orthogonal(rect, 0, NULL) == -1 && strstr(nb_errmsg(), "square"));
    nb_tensor_free(S);
    nb_tensor_free(w);
    nb_tensor_free(Q);
    nb_tensor_free(R);
    nb_tensor_free(rect);
}

TEST(test_eq_2_38_inverse_of_orthogonal_is_transpose) {
    nb_tensor *S = rand_sym(6), *w, *Q;
    nb_linalg_eigh(S, &w, &Q);
    nb_tensor *Qi = nb_linalg_inv(Q);
    CHECK(Qi != NULL);
    for (int i = 0; Qi && i < 6; i++)
        for (int j = 0; j < 6; j++) CHECK_NEAR(at(Qi, i, j), at(Q, j, i), 1e-5); /* eq. 2.38 */
    /* The inverse in general: A A^-1 = I. */
    nb_tensor *A = randn(5, 5), *Ai = nb_linalg_inv(A);
    int64_t r, c;
    double *p = mm(A, false, Ai, false, &r, &c);
    for (int64_t i = 0; i < 5; i++)
        for (int64_t j = 0; j < 5; j++) CHECK_NEAR(p[i * 5 + j], i == j, 1e-4);
    free(p);
    nb_tensor *sing = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, 2, 2, 4});
    CHECK(nb_linalg_inv(sing) == NULL && strstr(nb_errmsg(), "singular"));
    nb_tensor_free(S);
    nb_tensor_free(w);
    nb_tensor_free(Q);
    nb_tensor_free(Qi);
    nb_tensor_free(A);
    nb_tensor_free(Ai);
    nb_tensor_free(sing);
}

/* --- eq. 2.40: A = Q diag(lambda) Q^T ------------------------------------- */

TEST(test_eq_2_40_eigendecomposition) {
    for (int n = 1; n <= 24; n += 23) {
        nb_tensor *A = rand_sym(n), *w, *Q;
        CHECK(nb_linalg_eigh(A, &w, &Q) == 0);
        for (int i = 1; i < n; i++) CHECK(w->data[i - 1] >= w->data[i]); /* descending */
        double num = 0, den = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int l = 0; l < n; l++) s += at(Q, i, l) * w->data[l] * at(Q, j, l);
                num += (s - at(A, i, j)) * (s - at(A, i, j));
                den += at(A, i, j) * at(A, i, j);
            }
        CHECK_MSG(sqrt(num / den) < 1e-5, "n=%d: ||A - Q L Q^T|| / ||A|| = %g", n, sqrt(num / den));
        /* Each column is an eigenvector: A q_l = lambda_l q_l. */
        for (int l = 0; l < n; l++)
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int j = 0; j < n; j++) s += at(A, i, j) * at(Q, j, l);
                CHECK_NEAR(s, w->data[l] * at(Q, i, l), 1e-4);
            }
        nb_tensor_free(A);
        nb_tensor_free(w);
        nb_tensor_free(Q);
    }
    /* A known spectrum: [[2, 1], [1, 2]] has 3 and 1. */
    nb_tensor *B = nb_tensor_from(NB_SHAPE(2, 2), (float[]){2, 1, 1, 2}), *w;
    CHECK(nb_linalg_eigh(B, &w, NULL) == 0);
    CHECK_NEAR(w->data[0], 3, 1e-6);
    CHECK_NEAR(w->data[1], 1, 1e-6);
    nb_tensor_free(w);
    B->data[1] = 5; /* not symmetric */
    CHECK(nb_linalg_eigh(B, &w, NULL) == -1 && strstr(nb_errmsg(), "symmetric") && w == NULL);
    nb_tensor_free(B);
}

/* --- eq. 10: SVD, and its relation to the eigendecompositions ------------ */

TEST(test_eq_svd_and_eigenvectors_of_aat) {
    int64_t m = 7, n = 4, k = 4;
    nb_tensor *A = randn(m, n), *U, *s, *Vt;
    CHECK(nb_linalg_svd(A, false, &U, &s, &Vt) == 0);
    CHECK(U->shape[0] == m && U->shape[1] == k && Vt->shape[0] == k && Vt->shape[1] == n && s->size == k);
    for (int64_t i = 0; i < m; i++) /* eq. 10: A = U D V^T */
        for (int64_t j = 0; j < n; j++) {
            double r = 0;
            for (int64_t l = 0; l < k; l++) r += at(U, i, l) * s->data[l] * at(Vt, l, j);
            CHECK_NEAR(r, at(A, i, j), 1e-5);
        }
    /* Eigenvectors of A A^T are the left-singular vectors, those of A^T A the
     * right-singular ones, and both have eigenvalues sigma^2. */
    int64_t r, c;
    double *aat = mm(A, false, A, true, &r, &c), *ata = mm(A, true, A, false, &r, &c);
    nb_tensor *P = from_d(m, m, aat), *R = from_d(n, n, ata), *wp, *Qp, *wr, *Qr;
    CHECK(nb_linalg_eigh(P, &wp, &Qp) == 0 && nb_linalg_eigh(R, &wr, &Qr) == 0);
    for (int64_t l = 0; l < k; l++) {
        double s2 = (double)s->data[l] * s->data[l];
        CHECK_NEAR(wp->data[l], s2, 1e-5);
        CHECK_NEAR(wr->data[l], s2, 1e-5);
        double du = 0, dv = 0; /* same direction up to sign: |<u, q>| = 1 */
        for (int64_t i = 0; i < m; i++) du += at(U, i, l) * at(Qp, i, l);
        for (int64_t i = 0; i < n; i++) dv += at(Vt, l, i) * at(Qr, i, l);
        CHECK_NEAR(fabs(du), 1, 1e-4);
        CHECK_NEAR(fabs(dv), 1, 1e-4);
    }
    for (int64_t l = k; l < m; l++) CHECK_NEAR(wp->data[l], 0, 1e-5); /* rank k */
    /* The full form: square orthogonal U [m, m], V^T [n, n]. */
    nb_tensor *Uf, *sf, *Vf;
    CHECK(nb_linalg_svd(A, true, &Uf, &sf, &Vf) == 0);
    CHECK(Uf->shape[0] == m && Uf->shape[1] == m && Vf->shape[0] == n);
    CHECK(nb_linalg_is_orthogonal(Uf, 0, NULL) == 1 && nb_linalg_is_orthogonal(Vf, 0, NULL) == 1);
    CHECK(nb_test_maxrel(sf->data, s->data, k) < 1e-6);
    free(aat);
    free(ata);
    nb_tensor *all[] = {A, U, s, Vt, P, R, wp, Qp, wr, Qr, Uf, sf, Vf};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* The full SVD of a wide A [3, 6]: V^T [6, 6] holds 3 rows beyond the
 * singular values, a basis of A's null space, each normalized alone (its
 * largest-magnitude entry positive); that branch never ran (only tall
 * matrices were decomposed in full). */
TEST(test_svd_full_of_a_wide_matrix) {
    int64_t m = 3, n = 6;
    for (int trial = 0; trial < 8; trial++) { /* 24 null rows: LAPACK's signs alone would pass 1 in 2^24 */
        nb_tensor *A = randn(m, n), *U, *s, *Vt;
        CHECK(nb_linalg_svd(A, true, &U, &s, &Vt) == 0);
        CHECK(U->shape[0] == m && U->shape[1] == m && s->size == m && Vt->shape[0] == n && Vt->shape[1] == n);
        CHECK(nb_linalg_is_orthogonal(U, 0, NULL) == 1 && nb_linalg_is_orthogonal(Vt, 0, NULL) == 1);
        for (int64_t i = 0; i < m; i++) /* A = U D V^T with the first m rows of V^T */
            for (int64_t j = 0; j < n; j++) {
                double r = 0;
                for (int64_t l = 0; l < m; l++) r += at(U, i, l) * s->data[l] * at(Vt, l, j);
                CHECK_NEAR(r, at(A, i, j), 1e-5);
            }
        for (int64_t l = m; l < n; l++) {
            int64_t big = 0;
            for (int64_t j = 0; j < n; j++)
                if (fabs(at(Vt, l, j)) > fabs(at(Vt, l, big))) big = j;
            CHECK_MSG(at(Vt, l, big) > 0, "row %lld: largest entry %g", (long long)l, at(Vt, l, big));
            for (int64_t i = 0; i < m; i++) { /* A v = 0 */
                double r = 0;
                for (int64_t j = 0; j < n; j++) r += at(A, i, j) * at(Vt, l, j);
                CHECK_NEAR(r, 0, 1e-5);
            }
        }
        nb_tensor *all[] = {A, U, s, Vt};
        for (size_t i = 0; i < 4; i++) nb_tensor_free(all[i]);
    }
}

/* --- eq. 11: the four Penrose conditions ---------------------------------- */

static void check_penrose(nb_tensor *A, double tol) {
    nb_tensor *P = nb_linalg_pinv(A, 0);
    CHECK(P != NULL);
    if (!P) return;
    int64_t m = A->shape[0], n = A->shape[1], r, c;
    CHECK(P->shape[0] == n && P->shape[1] == m);
    double *AP = mm(A, false, P, false, &r, &c), *PA = mm(P, false, A, false, &r, &c);
    nb_tensor *APt = from_d(m, m, AP), *PAt = from_d(n, n, PA);
    double *APA = mm(APt, false, A, false, &r, &c), *PAP = mm(PAt, false, P, false, &r, &c);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) CHECK_NEAR(APA[i * n + j], at(A, i, j), tol); /* A A+ A = A */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) CHECK_NEAR(PAP[i * m + j], at(P, i, j), tol); /* A+ A A+ = A+ */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < m; j++) CHECK_NEAR(AP[i * m + j], AP[j * m + i], tol); /* (A A+)^T = A A+ */
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) CHECK_NEAR(PA[i * n + j], PA[j * n + i], tol); /* (A+ A)^T = A+ A */
    free(AP);
    free(PA);
    free(APA);
    free(PAP);
    nb_tensor_free(APt);
    nb_tensor_free(PAt);
    nb_tensor_free(P);
}

TEST(test_eq_pinv_penrose_conditions) {
    nb_tensor *tall = randn(6, 3), *wide = randn(3, 5);
    check_penrose(tall, 1e-4);
    check_penrose(wide, 1e-4);
    /* Rank 2 of 5 x 4: the cutoff must drop the rounding-level singular values. */
    nb_tensor *B = randn(5, 2), *C = randn(2, 4);
    int64_t r, c;
    double *bc = mm(B, false, C, false, &r, &c);
    nb_tensor *low = from_d(5, 4, bc);
    check_penrose(low, 1e-4);
    /* Least squares agrees: x = A+ b, and the rank is found. */
    nb_tensor *b = randn(5, 1), *P = nb_linalg_pinv(low, 0);
    b->ndim = 1;
    int rank = -1;
    nb_tensor *x = nb_linalg_lstsq(low, b, 0, &rank);
    CHECK(x && rank == 2 && x->ndim == 1 && x->size == 4);
    for (int64_t i = 0; x && i < 4; i++) {
        double s = 0;
        for (int64_t j = 0; j < 5; j++) s += at(P, i, j) * b->data[j];
        CHECK_NEAR(x->data[i], s, 1e-4);
    }
    /* The zero matrix has the zero pseudoinverse. */
    nb_tensor *z = nb_tensor_new(NB_SHAPE(2, 3)), *zp = nb_linalg_pinv(z, 0);
    for (int i = 0; zp && i < 6; i++) CHECK(zp->data[i] == 0);
    free(bc);
    nb_tensor *all[] = {tall, wide, B, C, low, b, P, x, z, zp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- det = prod lambda ----------------------------------------------------- */

TEST(test_eq_det_is_product_of_eigenvalues) {
    nb_tensor *S = rand_sym(6), *w;
    double det, prod = 1;
    CHECK(nb_linalg_det(S, &det) == 0 && nb_linalg_eigh(S, &w, NULL) == 0);
    for (int i = 0; i < 6; i++) prod *= w->data[i];
    CHECK_NEAR(det, prod, 1e-4 * fmax(1, fabs(prod)));
    /* A general matrix: the product of its complex eigenvalues is real. */
    nb_tensor *A = randn(7, 7), *ev;
    CHECK(nb_linalg_det(A, &det) == 0 && nb_linalg_eig(A, &ev) == 0);
    double pr = 1, pi = 0;
    for (int i = 0; i < 7; i++) {
        double a = ev->data[2 * i], b = ev->data[2 * i + 1], t = pr * a - pi * b;
        pi = pr * b + pi * a;
        pr = t;
    }
    CHECK_NEAR(pr, det, 1e-4 * fmax(1, fabs(det)));
    CHECK_NEAR(pi, 0, 1e-4 * fmax(1, fabs(det)));
    nb_tensor *H = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, 2, 3, 4});
    CHECK(nb_linalg_det(H, &det) == 0);
    CHECK_NEAR(det, -2, 1e-12);
    /* Singular gives 0; beyond double range gives inf but slogdet is fine. */
    nb_tensor *sing = nb_tensor_from(NB_SHAPE(3, 3), (float[]){1, 2, 3, 2, 4, 6, 0, 1, 1});
    CHECK(nb_linalg_det(sing, &det) == 0 && fabs(det) < 1e-12);
    nb_tensor *big = nb_tensor_new(NB_SHAPE(40, 40));
    for (int i = 0; i < 40; i++) big->data[i * 40 + i] = i == 3 ? -1e10f : 1e10f;
    double sg, la;
    CHECK(nb_linalg_det(big, &det) == 0 && isinf(det) && det < 0);
    CHECK(nb_linalg_slogdet(big, &sg, &la) == 0 && sg == -1);
    CHECK_NEAR(la, 40 * log(1e10), 1e-9);
    nb_tensor *all[] = {S, w, A, ev, H, sing, big};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- positive definiteness: x^T A x > 0 <=> lambda > 0 --------------------- */

static double quad(const nb_tensor *A, const double *x) {
    int64_t n = A->shape[0];
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) s += x[i] * at(A, i, j) * x[j];
    return s;
}

TEST(test_eq_pd_quadratic_form_and_eigenvalues) {
    const double spectra[][4] = {{3, 2, 1, 0.5}, {3, 2, 1, 0}, {-1, -2, -3, -4}, {0, 0, -1, -2}, {2, 1, -1, 3}};
    const nb_definiteness want[] = {NB_POSITIVE_DEFINITE, NB_POSITIVE_SEMIDEFINITE, NB_NEGATIVE_DEFINITE,
                                    NB_NEGATIVE_SEMIDEFINITE, NB_INDEFINITE};
    for (int c = 0; c < 5; c++) {
        nb_tensor *A = with_spectrum(4, spectra[c]), *w, *Q;
        nb_definiteness d;
        CHECK(nb_linalg_definiteness(A, 1e-5, &d) == 0);
        CHECK_MSG(d == want[c], "spectrum %d: got %s, want %s", c, nb_definiteness_name(d),
                  nb_definiteness_name(want[c]));
        /* Sampled quadratic forms have the sign the eigenvalues promise
         * (notes' footnote: x^T A x = sum_i lambda_i (Q^T x)_i^2). */
        double lo = INFINITY, hi = -INFINITY, x[4];
        for (int t = 0; t < 200; t++) {
            for (int i = 0; i < 4; i++) x[i] = nb_rng_normal(nb_test_rng());
            double q = quad(A, x);
            lo = fmin(lo, q);
            hi = fmax(hi, q);
        }
        if (want[c] == NB_POSITIVE_DEFINITE) CHECK(lo > 0);
        if (want[c] == NB_NEGATIVE_DEFINITE) CHECK(hi < 0);
        /* Along the eigenvector of lambda_i, x^T A x = lambda_i. */
        nb_linalg_eigh(A, &w, &Q);
        for (int l = 0; l < 4; l++) {
            for (int i = 0; i < 4; i++) x[i] = at(Q, i, l);
            CHECK_NEAR(quad(A, x), w->data[l], 1e-5);
        }
        nb_tensor_free(A);
        nb_tensor_free(w);
        nb_tensor_free(Q);
    }
    nb_tensor *Z = nb_tensor_new(NB_SHAPE(3, 3));
    nb_definiteness d;
    CHECK(nb_linalg_definiteness(Z, 0, &d) == 0 && d == NB_ZERO_MATRIX);
    nb_tensor_free(Z);
}

/* --- the characteristic polynomial: det(lambda I - A) = 0 ------------------ */

TEST(test_eq_charpoly_eigenvalues_are_roots) {
    int n = 5;
    nb_tensor *A = rand_sym(n), *w, *M = nb_tensor_new(NB_SHAPE(n, n));
    nb_linalg_eigh(A, &w, NULL);
    for (int l = 0; l < n; l++) {
        double lam = w->data[l], det, scale = 1;
        for (int j = 0; j < n; j++)
            if (j != l) scale *= fabs(lam - w->data[j]);
        for (int i = 0; i < n * n; i++) M->data[i] = (float)((i % (n + 1) == 0 ? lam : 0) - A->data[i]);
        CHECK(nb_linalg_det(M, &det) == 0);
        /* |det| = |lambda - lambda~| prod |lambda - lambda_j|: only the float
         * rounding of lambda I - A is left of the root. */
        CHECK_MSG(fabs(det) <= 1e-5 * fmax(1, fabs(lam)) * scale, "l=%d: det = %g, scale %g", l, det, scale);
    }
    /* A rotation has no real eigenvalues: cos t +- i sin t. */
    float t = 0.9f;
    nb_tensor *R = nb_tensor_from(NB_SHAPE(2, 2), (float[]){cosf(t), -sinf(t), sinf(t), cosf(t)}), *ev;
    CHECK(nb_linalg_eig(R, &ev) == 0 && ev->shape[0] == 2 && ev->shape[1] == 2);
    CHECK_NEAR(ev->data[0], cos(t), 1e-6);
    CHECK_NEAR(ev->data[1], sin(t), 1e-6); /* + first */
    CHECK_NEAR(ev->data[2], cos(t), 1e-6);
    CHECK_NEAR(ev->data[3], -sin(t), 1e-6);
    /* The sum of the roots is the trace (the second coefficient). */
    nb_tensor *G = randn(6, 6), *gv;
    nb_linalg_eig(G, &gv);
    double tr = 0, sre = 0, sim = 0;
    for (int i = 0; i < 6; i++) {
        tr += at(G, i, i);
        sre += gv->data[2 * i];
        sim += gv->data[2 * i + 1];
    }
    CHECK_NEAR(sre, tr, 1e-5);
    CHECK_NEAR(sim, 0, 1e-5);
    nb_tensor *all[] = {A, w, M, R, ev, G, gv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- eq. 4.2: the condition number ---------------------------------------- */

TEST(test_eq_4_2_condition_number) {
    const double lam[4] = {10, 2, -0.5, 1};
    nb_tensor *A = with_spectrum(4, lam);
    double c, want = 0;
    for (int i = 0; i < 4; i++) /* eq. 4.2 literally: max over all pairs */
        for (int j = 0; j < 4; j++) want = fmax(want, fabs(lam[i] / lam[j]));
    CHECK(nb_linalg_cond(A, &c) == 0);
    CHECK_NEAR(c, want, 1e-4 * want);
    /* What it means: solving A x = b amplifies a relative error in b by at
     * most cond(A), reached with b along the eigenvector of the largest
     * |lambda| (x shrinks by 10) and the error along that of the smallest
     * (it grows by 1/0.5). Eigenvalues come sorted: 10, 2, 1, -0.5. */
    nb_tensor *w, *Q;
    nb_linalg_eigh(A, &w, &Q);
    nb_tensor *b = nb_tensor_new(NB_SHAPE(4)), *bp = nb_tensor_new(NB_SHAPE(4));
    double db = 1e-3;
    for (int i = 0; i < 4; i++) {
        b->data[i] = (float)at(Q, i, 0);
        bp->data[i] = (float)(at(Q, i, 0) + db * at(Q, i, 3));
    }
    nb_tensor *x = nb_linalg_solve(A, b), *xp = nb_linalg_solve(A, bp);
    double nx = 0, ndx = 0;
    for (int i = 0; i < 4; i++) {
        nx += x->data[i] * x->data[i];
        ndx += pow(xp->data[i] - x->data[i], 2);
    }
    double amplification = (sqrt(ndx) / sqrt(nx)) / db;
    CHECK(amplification <= c * 1.01);
    CHECK(amplification >= c * 0.9);
    /* General matrices: sigma_max / sigma_min = ||A||_2 ||A^-1||_2. */
    nb_tensor *G = randn(5, 5), *Gi = nb_linalg_inv(G);
    double cg, n1, n2;
    CHECK(nb_linalg_cond(G, &cg) == 0);
    nb_linalg_norm(G, NB_NORM_L2, &n1);
    nb_linalg_norm(Gi, NB_NORM_L2, &n2);
    CHECK_NEAR(cg, n1 * n2, 1e-4 * cg);
    nb_tensor *sing = nb_tensor_from(NB_SHAPE(2, 3), (float[]){1, 2, 3, 2, 4, 6});
    CHECK(nb_linalg_cond(sing, &c) == 0 && isinf(c));
    nb_tensor *all[] = {A, w, Q, b, bp, x, xp, G, Gi, sing};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- solve and least squares ----------------------------------------------- */

TEST(test_linalg_solve_and_lstsq) {
    nb_tensor *A = randn(6, 6), *B = randn(6, 3);
    for (int i = 0; i < 6; i++) A->data[i * 7] += 6; /* well conditioned: float X reproduces B */
    nb_tensor *X = nb_linalg_solve(A, B);
    CHECK(X && X->shape[0] == 6 && X->shape[1] == 3);
    int64_t r, c;
    double *AX = mm(A, false, X, false, &r, &c);
    for (int i = 0; i < 18; i++) CHECK_NEAR(AX[i], B->data[i], 1e-4);
    free(AX);
    /* Overdetermined: the residual is orthogonal to the columns (normal
     * equations A^T (A x - b) = 0). */
    nb_tensor *T = randn(20, 3), *b = randn(20, 1);
    int rank;
    nb_tensor *x = nb_linalg_lstsq(T, b, 0, &rank);
    CHECK(x && rank == 3 && x->shape[0] == 3 && x->shape[1] == 1);
    double res[20];
    for (int i = 0; i < 20; i++) {
        res[i] = -b->data[i];
        for (int j = 0; j < 3; j++) res[i] += at(T, i, j) * x->data[j];
    }
    for (int j = 0; j < 3; j++) {
        double s = 0;
        for (int i = 0; i < 20; i++) s += at(T, i, j) * res[i];
        CHECK_NEAR(s, 0, 1e-4);
    }
    /* Underdetermined: of all solutions, the least-norm one (in A's row space). */
    nb_tensor *W = randn(2, 5), *bw = nb_tensor_from(NB_SHAPE(2), (float[]){1, -2});
    nb_tensor *xw = nb_linalg_lstsq(W, bw, 0, &rank), *P = nb_linalg_pinv(W, 0);
    CHECK(xw && rank == 2 && xw->ndim == 1 && xw->size == 5);
    for (int i = 0; xw && i < 5; i++) CHECK_NEAR(xw->data[i], at(P, i, 0) * 1 + at(P, i, 1) * -2, 1e-4);
    nb_tensor *all[] = {A, B, X, T, b, x, W, bw, xw, P};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}

/* --- bad input: errors, never crashes ------------------------------------- */

TEST(test_linalg_errors_are_reported) {
    nb_tensor *w = NULL, *Q = NULL, *U, *s, *Vt;
    double d;
    nb_tensor *nan = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, NAN, NAN, 1});
    CHECK(nb_linalg_eigh(nan, &w, &Q) == -1 && strstr(nb_errmsg(), "non-finite") && !w && !Q);
    CHECK(nb_linalg_svd(nan, false, &U, &s, &Vt) == -1);
    CHECK(nb_linalg_pinv(nan, 0) == NULL);
    /* What the matrix holds is said in its terms (a command prefixes the
     * file); a call no data can cause (a NULL below) names the function. */
    CHECK_MSG(nb_linalg_det(nan, &d) == -1 && strstr(nb_errmsg(), "A holds a non-finite value (nan) at flat index 1") &&
                  !strstr(nb_errmsg(), "linalg_det"), "%s", nb_errmsg());
    CHECK(nb_linalg_cond(nan, &d) == -1);
    CHECK(nb_linalg_norm(nan, NB_NORM_FRO, &d) == -1);
    nb_tensor *rect = randn(2, 3);
    CHECK(nb_linalg_det(rect, &d) == -1 && strstr(nb_errmsg(), "square"));
    CHECK(nb_linalg_eig(rect, &w) == -1 && strstr(nb_errmsg(), "square"));
    CHECK(nb_linalg_inv(rect) == NULL);
    nb_tensor *empty = nb_tensor_new(NB_SHAPE(0, 3));
    CHECK(nb_linalg_svd(empty, false, NULL, &s, NULL) == -1 && strstr(nb_errmsg(), "empty"));
    CHECK(nb_linalg_eigh(NULL, &w, NULL) == -1 && strstr(nb_errmsg(), "linalg_eigh: A is NULL"));
    nb_tensor *vec = nb_tensor_new(NB_SHAPE(3));
    CHECK(nb_linalg_det(vec, &d) == -1 && strstr(nb_errmsg(), "2-D"));
    nb_tensor *sq = randn(3, 3), *bad_b = randn(4, 1);
    CHECK(nb_linalg_solve(sq, bad_b) == NULL && strstr(nb_errmsg(), "B must be"));
    CHECK(nb_linalg_lstsq(sq, bad_b, 0, NULL) == NULL);
    nb_tensor *s3 = nb_tensor_from(NB_SHAPE(3, 3), (float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}), *b3 = randn(3, 1);
    CHECK(nb_linalg_solve(s3, b3) == NULL && strstr(nb_errmsg(), "singular"));
    nb_definiteness def;
    CHECK(nb_linalg_definiteness(rect, 0, &def) == -1);
    CHECK(nb_linalg_svd(sq, false, &U, &s, NULL) == -1); /* U without Vt */
    nb_tensor *all[] = {nan, rect, empty, vec, sq, bad_b, s3, b3};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nb_tensor_free(all[i]);
}
