/* curvature.c — notes §1.3 (eq. 4.6-4.10) on top of reverse mode: Jacobians,
 * Hessians, the optimal gradient step, the second-derivative test, and, for
 * models too large to form H, top eigenvalues by Lanczos and the trace by
 * Hutchinson's estimator, both from exact Hessian-vector products. */
#include "dense.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

/* --- the engine: f, its gradient graph, and Hessian-vector products ------ */

/* One evaluation context. f runs in a private arena, so resetting it (to
 * bound memory over many products) never touches the caller's tensors. */
typedef struct {
    const char *fn;
    nb_loss_fn f;
    void *ctx;
    nb_tensor **params;
    int n;
    int64_t N;            /* total number of parameters */
    bool *old_rg;         /* each param's requires_grad flag before the call */
    bool old_grad_on;
    nb_arena *arena, *old_arena;
    nb_tensor *out;       /* f's output in the current arena */
    nb_tensor **g;        /* its gradient, recorded (create_graph) for HVPs */
    bool built;
    size_t base_bytes;    /* arena use right after building the gradient */
} engine;

static int engine_open(engine *e, const char *fn, nb_loss_fn f, void *ctx, nb_tensor **params, int n) {
    memset(e, 0, sizeof *e);
    e->fn = fn;
    if (!f) return nb_error("%s: the function f is NULL", fn);
    if (!params || n < 1) return nb_error("%s: needs at least one parameter tensor (n = %d)", fn, n);
    for (int k = 0; k < n; k++) {
        if (!params[k]) return nb_error("%s: params[%d] is NULL", fn, k);
        if (params[k]->size == 0) return nb_error("%s: params[%d] is empty", fn, k);
        if (nb__la_finite(fn, "a parameter", params[k])) return -1;
        e->N += params[k]->size;
    }
    e->old_rg = malloc(sizeof(bool) * (size_t)n);
    e->g = malloc(sizeof(nb_tensor *) * (size_t)n);
    if (!e->old_rg || !e->g) {
        free(e->old_rg);
        free(e->g);
        return nb_error("%s: out of memory", fn);
    }
    e->f = f;
    e->ctx = ctx;
    e->params = params;
    e->n = n;
    /* Set the flag directly (not nb_requires_grad): nothing is accumulated
     * into .grad here, so none is allocated. */
    for (int k = 0; k < n; k++) {
        e->old_rg[k] = params[k]->requires_grad;
        params[k]->requires_grad = true;
    }
    e->old_grad_on = nb_set_grad_enabled(true);
    e->arena = nb_arena_new();
    e->old_arena = nb_arena_use(e->arena);
    return 0;
}

static void engine_close(engine *e) {
    if (!e->arena) return;
    for (int k = 0; k < e->n; k++) e->params[k]->requires_grad = e->old_rg[k];
    nb_set_grad_enabled(e->old_grad_on);
    nb_arena_use(e->old_arena);
    nb_arena_free(e->arena);
    free(e->old_rg);
    free(e->g);
    e->arena = NULL;
}

/* Runs f on a fresh arena. scalar: the output must have one element. */
static nb_tensor *engine_eval(engine *e, bool scalar, bool record) {
    nb_arena_reset();
    e->built = false;
    bool old = nb_set_grad_enabled(record);
    nb_tensor *out = e->f(e->params, e->n, e->ctx);
    nb_set_grad_enabled(old);
    if (!out) return nb_error("%s: the function returned NULL", e->fn), NULL;
    char s[96];
    if (scalar && out->size != 1)
        return nb_error("%s: the function must return one element (a loss), got shape %s", e->fn,
                        nb_shape_str(out, s, sizeof s)), NULL;
    if (out->size == 0) return nb_error("%s: the function returned an empty tensor", e->fn), NULL;
    if (nb__la_finite(e->fn, "the function's output", out)) return NULL;
    return e->out = out;
}

/* Loss and gradient with its graph kept, ready for Hessian-vector products. */
static int engine_build(engine *e) {
    if (!engine_eval(e, true, true)) return -1;
    nb_grad(e->out, e->params, e->n, e->g, true);
    for (int k = 0; k < e->n; k++)
        if (nb__la_finite(e->fn, "the gradient", e->g[k])) return -1;
    e->built = true;
    e->base_bytes = nb_arena_bytes_used();
    return 0;
}

static void flat_get(engine *e, nb_tensor **t, double *dst) {
    int64_t off = 0;
    for (int k = 0; k < e->n; k++)
        for (int64_t i = 0; i < t[k]->size; i++) dst[off++] = t[k]->data[i];
}

/* hv = H v for flat vectors of N entries. Reuses the gradient graph: each
 * product is one more reverse pass over grad(f) . v (double backward), until
 * the arena has grown well past the graph, when the graph is rebuilt. */
static int engine_hvp(engine *e, const double *v, double *hv) {
    if (!e->built || nb_arena_bytes_used() > 3 * e->base_bytes + ((size_t)64 << 20))
        if (engine_build(e)) return -1;
    nb_tensor *dot = NULL;
    int64_t off = 0;
    for (int k = 0; k < e->n; k++) {
        nb_tensor *gk = e->g[k], *vk = nb_empty(gk->ndim, gk->shape);
        for (int64_t i = 0; i < vk->size; i++) vk->data[i] = (float)v[off++];
        nb_tensor *term = nb_sum_all(nb_mul(gk, vk));
        dot = dot ? nb_add(dot, term) : term;
    }
    if (!dot->requires_grad) { /* the gradient does not depend on x: H = 0 */
        for (int64_t i = 0; i < e->N; i++) hv[i] = 0;
        return 0;
    }
    nb_tensor **h = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)e->n);
    nb_grad(dot, e->params, e->n, h, false);
    flat_get(e, h, hv);
    for (int64_t i = 0; i < e->N; i++)
        if (!isfinite(hv[i]))
            return nb_error("a Hessian-vector product is not finite (entry %lld): the loss or the weights overflow there",
                            (long long)i);
    return 0;
}

static double ddot(int64_t n, const double *a, const double *b) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* --- Jacobian and Hessian ------------------------------------------------ */

nb_tensor *nb_jacobian(nb_loss_fn f, void *ctx, nb_tensor **params, int n) {
    engine e;
    if (engine_open(&e, "jacobian", f, ctx, params, n)) return NULL;
    nb_tensor *J = NULL;
    nb_tensor *out = engine_eval(&e, false, true);
    if (!out) goto done;
    int64_t M = out->size;
    if (M > ((int64_t)1 << 28) / e.N) {
        nb_error("jacobian: a %lld x %lld Jacobian is too large to form", (long long)M, (long long)e.N);
        goto done;
    }
    J = nb_tensor_new(NB_SHAPE(M, e.N));
    if (!out->requires_grad) goto done; /* f does not depend on x: J = 0 */
    size_t base = nb_arena_bytes_used();
    nb_tensor **gr = malloc(sizeof(nb_tensor *) * (size_t)n);
    if (!gr) {
        nb_tensor_free(J);
        J = NULL;
        nb_error("jacobian: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < M; i++) {
        if (nb_arena_bytes_used() > 3 * base + ((size_t)64 << 20)) { /* bound memory: redo the forward */
            if (!(out = engine_eval(&e, false, true))) break;
            if (out->size != M) {
                nb_error("jacobian: the function's output changed size between calls (%lld, then %lld)",
                         (long long)M, (long long)out->size);
                out = NULL;
                break;
            }
        }
        /* Row i = the gradient of f_i = sum(f * e_i): one reverse pass. */
        nb_tensor *sel = nb_zeros(out->ndim, out->shape);
        sel->data[i] = 1;
        nb_grad(nb_sum_all(nb_mul(out, sel)), params, n, gr, false);
        float *row = J->data + i * e.N;
        for (int k = 0; k < n; k++) {
            memcpy(row, gr[k]->data, sizeof(float) * (size_t)gr[k]->size);
            row += gr[k]->size;
        }
    }
    free(gr);
    if (!out) {
        nb_tensor_free(J);
        J = NULL;
    }
done:
    engine_close(&e);
    return J;
}

/* eq. 4.6 column by column: H e_j is column j. */
static nb_tensor *hessian_e(engine *e, double *grad_norm) {
    if (e->N > 16384) {
        nb_error("%s: %lld parameters give a Hessian too large to form; use nb_hessian_eigs or nb_hessian_trace",
                 e->fn, (long long)e->N);
        return NULL;
    }
    int64_t N = e->N;
    double *v = calloc((size_t)N * 2, sizeof(double)), *hv = v + N;
    if (!v) return nb_error("%s: out of memory", e->fn), NULL;
    nb_tensor *H = NULL;
    if (engine_build(e)) goto done;
    if (grad_norm) {
        flat_get(e, e->g, hv);
        *grad_norm = sqrt(ddot(N, hv, hv));
    }
    H = nb_tensor_new(NB_SHAPE(N, N));
    for (int64_t j = 0; j < N; j++) {
        v[j] = 1;
        if (engine_hvp(e, v, hv)) {
            nb_tensor_free(H);
            H = NULL;
            goto done;
        }
        v[j] = 0;
        for (int64_t i = 0; i < N; i++) H->data[i * N + j] = (float)hv[i];
    }
    /* Exact arithmetic gives a symmetric H (Schwarz); float32 rounding of the
     * two passes does not quite, so average the halves. */
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = i + 1; j < N; j++) {
            float a = 0.5f * (H->data[i * N + j] + H->data[j * N + i]);
            H->data[i * N + j] = H->data[j * N + i] = a;
        }
done:
    free(v);
    return H;
}

nb_tensor *nb_hessian(nb_loss_fn f, void *ctx, nb_tensor **params, int n) {
    engine e;
    if (engine_open(&e, "hessian", f, ctx, params, n)) return NULL;
    nb_tensor *H = hessian_e(&e, NULL);
    engine_close(&e);
    return H;
}

int nb_directional_curvature(nb_loss_fn f, void *ctx, nb_tensor **params, int n, const nb_tensor *d, double *out) {
    const char *fn = "directional_curvature";
    if (!out) return nb_error("%s: the output is NULL", fn);
    engine e;
    if (engine_open(&e, fn, f, ctx, params, n)) return -1;
    int rc = -1;
    double *v = NULL;
    if (nb__la_finite(fn, "the direction d", d)) goto done;
    if (d->size != e.N) {
        nb_error("%s: d has %lld entries but the parameters have %lld", fn, (long long)d->size, (long long)e.N);
        goto done;
    }
    v = malloc(sizeof(double) * (size_t)e.N * 2);
    if (!v) {
        nb_error("%s: out of memory", fn);
        goto done;
    }
    for (int64_t i = 0; i < e.N; i++) v[i] = d->data[i];
    if (engine_hvp(&e, v, v + e.N)) goto done;
    *out = ddot(e.N, v, v + e.N); /* d^T (H d) */
    rc = 0;
done:
    free(v);
    engine_close(&e);
    return rc;
}

/* --- the second-order step and the second-derivative test --------------- */

int nb_optimal_step(nb_loss_fn f, void *ctx, nb_tensor **params, int n, nb_step_report *r) {
    const char *fn = "optimal_step";
    if (!r) return nb_error("%s: the report is NULL", fn);
    engine e;
    if (engine_open(&e, fn, f, ctx, params, n)) return -1;
    int rc = -1;
    int64_t N = e.N;
    double *g = malloc(sizeof(double) * (size_t)N * 2), *hg = g ? g + N : NULL;
    float **saved = calloc((size_t)n, sizeof(float *));
    if (!g || !saved) {
        nb_error("%s: out of memory", fn);
        goto done;
    }
    if (engine_build(&e)) goto done;
    r->loss = e.out->data[0];
    flat_get(&e, e.g, g);
    if (engine_hvp(&e, g, hg)) goto done;
    double gg = ddot(N, g, g), gHg = ddot(N, g, hg);
    r->grad_norm = sqrt(gg);
    r->gHg = gHg;
    if (gg == 0) {
        r->epsilon = 0; /* a critical point: no step */
    } else if (gHg <= 0) {
        r->epsilon = INFINITY; /* eq. 4.9 decreases without bound along -g */
    } else {
        r->epsilon = gg / gHg; /* eq. 4.10 */
    }
    if (isinf(r->epsilon)) {
        r->predicted = -INFINITY;
        r->actual = NAN;
        rc = 0;
        goto done;
    }
    double eps = r->epsilon;
    r->predicted = r->loss - eps * gg + 0.5 * eps * eps * gHg; /* eq. 4.9 */
    /* The actual loss at x0 - eps* g, then x0 restored bit for bit. */
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        nb_tensor *p = params[k];
        if (!(saved[k] = malloc(sizeof(float) * (size_t)p->size))) {
            nb_error("%s: out of memory", fn);
            break;
        }
        memcpy(saved[k], p->data, sizeof(float) * (size_t)p->size);
        for (int64_t i = 0; i < p->size; i++) p->data[i] = (float)(p->data[i] - eps * g[off++]);
    }
    if (off == N) {
        nb_tensor *out = engine_eval(&e, true, false);
        if (out) {
            r->actual = out->data[0];
            rc = 0;
        }
    }
    for (int k = 0; k < n; k++)
        if (saved[k]) memcpy(params[k]->data, saved[k], sizeof(float) * (size_t)params[k]->size);
done:
    if (saved)
        for (int k = 0; k < n; k++) free(saved[k]);
    free(saved);
    free(g);
    engine_close(&e);
    return rc;
}

int nb_second_derivative_test(nb_loss_fn f, void *ctx, nb_tensor **params, int n, double tol, nb_critical *out,
                              nb_tensor **eigenvalues, double *grad_norm) {
    const char *fn = "second_derivative_test";
    if (!out) return nb_error("%s: the output is NULL", fn);
    if (eigenvalues) *eigenvalues = NULL;
    engine e;
    if (engine_open(&e, fn, f, ctx, params, n)) return -1;
    double gn;
    nb_tensor *H = hessian_e(&e, &gn), *w = NULL;
    engine_close(&e);
    if (!H) return -1;
    int rc = nb_linalg_eigh(H, &w, NULL);
    nb_tensor_free(H);
    if (rc) return -1;
    double *wd = malloc(sizeof(double) * (size_t)w->size);
    if (!wd) {
        nb_tensor_free(w);
        return nb_error("%s: out of memory", fn);
    }
    for (int64_t i = 0; i < w->size; i++) wd[i] = w->data[i];
    /* Along each eigenvector of H the curvature is its eigenvalue: all up
     * is a minimum, all down a maximum, mixed a saddle; a zero eigenvalue
     * leaves that direction to higher-order terms. */
    switch (nb__la_classify(wd, (int)w->size, tol > 0 ? tol : 1e-4)) {
    case NB_POSITIVE_DEFINITE: *out = NB_CRIT_MINIMUM; break;
    case NB_NEGATIVE_DEFINITE: *out = NB_CRIT_MAXIMUM; break;
    case NB_INDEFINITE: *out = NB_CRIT_SADDLE; break;
    default: *out = NB_CRIT_INCONCLUSIVE; break;
    }
    free(wd);
    if (grad_norm) *grad_norm = gn;
    if (eigenvalues) *eigenvalues = w;
    else nb_tensor_free(w);
    return 0;
}

const char *nb_critical_name(nb_critical c) {
    switch (c) {
    case NB_CRIT_MINIMUM: return "minimum";
    case NB_CRIT_MAXIMUM: return "maximum";
    case NB_CRIT_SADDLE: return "saddle point";
    case NB_CRIT_INCONCLUSIVE: return "inconclusive";
    }
    return "unknown";
}

/* --- Lanczos and Hutchinson: H never formed ------------------------------ */

/* Eigen-decomposition of the Lanczos tridiagonal T (diag a, off-diag b) of
 * size m: theta ascending, z [m, m] row-major with the eigenvectors as columns. */
static int tridiag_eig(const char *fn, const double *a, const double *b, int m, double *theta, double *z,
                       double *work) {
    memcpy(theta, a, sizeof(double) * (size_t)m);
    if (m > 1) memcpy(work, b, sizeof(double) * (size_t)(m - 1));
    lapack_int info = LAPACKE_dstev(LAPACK_ROW_MAJOR, 'V', m, theta, work, z, m);
    return info ? nb__la_info(fn, "dstev", info) : 0;
}

/* w -= V^T (V w) twice over the rows V[0..rows) (classical Gram-Schmidt,
 * repeated: "twice is enough" for orthogonality to working precision). */
static void reorth(const double *V, int rows, int64_t N, double *w, double *c) {
    for (int pass = 0; pass < 2; pass++) {
        cblas_dgemv(CblasRowMajor, CblasNoTrans, rows, (int)N, 1.0, V, (int)N, w, 1, 0.0, c, 1);
        cblas_dgemv(CblasRowMajor, CblasTrans, rows, (int)N, -1.0, V, (int)N, c, 1, 1.0, w, 1);
    }
}

int nb_hessian_eigs(nb_loss_fn f, void *ctx, nb_tensor **params, int n, int k, const nb_eigs_opts *o,
                    nb_tensor **eigvals, nb_tensor **eigvecs) {
    const char *fn = "hessian_eigs";
    if (!eigvals) return nb_error("%s: the output eigvals is NULL", fn);
    *eigvals = NULL;
    if (eigvecs) *eigvecs = NULL;
    nb_eigs_opts def = {0};
    if (!o) o = &def;
    engine e;
    if (engine_open(&e, fn, f, ctx, params, n)) return -1;
    int64_t N = e.N;
    int rc = -1;
    double *V = NULL, *w = NULL, *a = NULL, *b, *theta, *z, *work, *c;
    if (k < 1 || k > N) {
        nb_error("%s: k = %d must be between 1 and the number of parameters (%lld)", fn, k, (long long)N);
        goto done;
    }
    if (N > INT32_MAX) {
        nb_error("%s: %lld parameters are too many for BLAS", fn, (long long)N);
        goto done;
    }
    int64_t m = o->max_steps > 0 ? o->max_steps : 2 * (int64_t)k + 60;
    if (m > N) m = N;
    if (m < k) {
        nb_error("%s: max_steps = %d is below k = %d", fn, o->max_steps, k);
        goto done;
    }
    double tol = o->tol > 0 ? o->tol : 1e-5;
    nb_rng *rng = o->rng ? o->rng : nb_global_rng();
    V = malloc(sizeof(double) * (size_t)(m * N));
    w = malloc(sizeof(double) * (size_t)N);
    a = malloc(sizeof(double) * (size_t)(5 * m + m * m + k));
    if (!V || !w || !a) {
        nb_error("out of memory for %lld Lanczos vectors of %lld entries (fewer steps need less)", (long long)m,
                 (long long)N);
        goto done;
    }
    b = a + m;
    theta = b + m;
    work = theta + m;
    c = work + m;
    z = c + m;

    /* q_0: a random unit vector (it has a component along every eigenvector
     * with probability 1). */
    for (int64_t i = 0; i < N; i++) V[i] = nb_rng_normal(rng);
    double nrm = sqrt(ddot(N, V, V));
    for (int64_t i = 0; i < N; i++) V[i] /= nrm;

    int size = 0;
    double scale = 0; /* running estimate of ||H|| for the breakdown test */
    for (int j = 0; j < m; j++) {
        double *q = V + (int64_t)j * N;
        if (engine_hvp(&e, q, w)) goto done;
        /* Three-term recurrence: w = H q_j - alpha_j q_j - beta_{j-1} q_{j-1},
         * then full reorthogonalization against every earlier q: without it
         * rounding makes converged Ritz values reappear as ghost copies. */
        a[j] = ddot(N, q, w);
        for (int64_t i = 0; i < N; i++) w[i] -= a[j] * q[i] + (j ? b[j - 1] * q[i - N] : 0.0);
        reorth(V, j + 1, N, w, c);
        b[j] = sqrt(ddot(N, w, w));
        size = j + 1;
        scale = fmax(scale, fabs(a[j]) + b[j] + (j ? b[j - 1] : 0));
        if (size == N) break; /* the Krylov space is everything: T is exact */
        if (size >= k) {
            /* Ritz pair residual ||H y - theta y|| = beta_j |last entry of the
             * eigenvector of T|. Stop when the wanted k are all converged. */
            if (tridiag_eig(fn, a, b, size, theta, z, work)) goto done;
            double big = fmax(fabs(theta[0]), fabs(theta[size - 1]));
            bool conv = true;
            for (int t = 0; t < k && conv; t++) {
                int col = o->smallest ? t : size - 1 - t;
                conv = b[j] * fabs(z[(int64_t)(size - 1) * size + col]) <= tol * big;
            }
            if (conv) break;
        }
        if (size == m) break;
        double *next = V + (int64_t)size * N;
        if (b[j] > 1e-10 * scale) {
            for (int64_t i = 0; i < N; i++) next[i] = w[i] / b[j];
        } else {
            /* An invariant subspace: T is exact for it, and eigenvalues with
             * components outside it (or repeated ones) need a new start,
             * orthogonal to the basis; beta_j = 0 decouples the blocks. */
            b[j] = 0;
            for (int64_t i = 0; i < N; i++) next[i] = nb_rng_normal(rng);
            reorth(V, size, N, next, c);
            double nn = sqrt(ddot(N, next, next));
            if (!(nn > 1e-8)) break;
            for (int64_t i = 0; i < N; i++) next[i] /= nn;
        }
    }
    if (size < k) { /* not expected: the loop only ends early with size >= k */
        nb_error("%s: Lanczos stopped after %d steps, fewer than k = %d", fn, size, k);
        goto done;
    }
    if (tridiag_eig(fn, a, b, size, theta, z, work)) goto done;
    double *vals = z + m * m;
    for (int t = 0; t < k; t++) vals[t] = theta[o->smallest ? t : size - 1 - t];
    if (eigvecs) {
        /* Ritz vectors y_t = V^T s_t, s_t the eigenvector of T. */
        nb_tensor *Y = nb_tensor_new(NB_SHAPE(k, N));
        for (int t = 0; t < k; t++) {
            int col = o->smallest ? t : size - 1 - t;
            for (int l = 0; l < size; l++) c[l] = z[(int64_t)l * size + col];
            cblas_dgemv(CblasRowMajor, CblasTrans, size, (int)N, 1.0, V, (int)N, c, 1, 0.0, w, 1);
            double ny = sqrt(ddot(N, w, w)), big = 0;
            for (int64_t i = 0; i < N; i++)
                if (fabs(w[i]) > fabs(big)) big = w[i];
            double sg = big < 0 ? -1.0 : 1.0;
            for (int64_t i = 0; i < N; i++) Y->data[t * N + i] = (float)(sg * w[i] / ny);
        }
        *eigvecs = Y;
    }
    *eigvals = nb__la_tensor(NB_SHAPE(k), vals);
    rc = size;
done:
    free(V);
    free(w);
    free(a);
    engine_close(&e);
    return rc;
}

int nb_hessian_trace(nb_loss_fn f, void *ctx, nb_tensor **params, int n, int samples, nb_rng *rng, double *trace,
                     double *std_err) {
    const char *fn = "hessian_trace";
    if (!trace) return nb_error("%s: the output trace is NULL", fn);
    if (samples < 1) return nb_error("%s: samples must be >= 1, got %d", fn, samples);
    if (!rng) rng = nb_global_rng();
    engine e;
    if (engine_open(&e, fn, f, ctx, params, n)) return -1;
    int rc = -1;
    int64_t N = e.N;
    double *z = malloc(sizeof(double) * (size_t)N * 2), *hz = z ? z + N : NULL;
    if (!z) {
        nb_error("%s: out of memory", fn);
        goto done;
    }
    /* Hutchinson (1989): E[z^T H z] = tr(H E[z z^T]) = tr(H) for z with
     * independent +-1 entries; Welford's running mean and variance. */
    double mean = 0, m2 = 0;
    for (int s = 0; s < samples; s++) {
        for (int64_t i = 0; i < N; i++) z[i] = (nb_rng_u32(rng) & 1) ? 1.0 : -1.0;
        if (engine_hvp(&e, z, hz)) goto done;
        double x = ddot(N, z, hz), d = x - mean;
        mean += d / (s + 1);
        m2 += d * (x - mean);
    }
    *trace = mean;
    if (std_err) *std_err = samples > 1 ? sqrt(m2 / (samples - 1) / samples) : NAN;
    rc = 0;
done:
    free(z);
    engine_close(&e);
    return rc;
}
