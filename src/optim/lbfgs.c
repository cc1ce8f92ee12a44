/* lbfgs.c — L-BFGS (Nocedal & Wright, Alg. 7.4 and 7.5) with a strong-Wolfe
 * line search (Alg. 3.5/3.6, cubic interpolation), following PyTorch's
 * torch.optim.LBFGS(line_search_fn="strong_wolfe") step for step. */
#include "../core/internal.h"
#include <math.h>
#include <stdlib.h>

#define WOLFE_C1 1e-4 /* sufficient decrease */
#define WOLFE_C2 0.9  /* curvature */
#define MAX_LS 25     /* function evaluations per line search */

/* The parameters seen as one flat vector in double, and the objective. */
typedef struct lbfgs {
    nb_param *p;
    int n;
    int64_t N;
    nb_closure f;
    void *ctx;
    nb_arena *scratch; /* each evaluation's tensors and tape */
    double *x0;        /* the point the current line search starts from */
    float *stage;      /* host floats of the largest GPU parameter (NULL: none) */
} lbfgs;

/* Dot product in double, the same for every thread count. */
typedef struct { const double *a, *b; } dot_args;

static double dot_part(const void *ctx, int64_t lo, int64_t hi) {
    const dot_args *d = ctx;
    double s = 0;
    NB_PRAGMA(omp simd reduction(+ : s))
    for (int64_t i = lo; i < hi; i++) s += d->a[i] * d->b[i];
    return s;
}

static double dot(const double *a, const double *b, int64_t N) { return nb__ordered_sum(N, dot_part, &(dot_args){a, b}); }

/* y += a x */
static void axpy(double *restrict y, double a, const double *restrict x, int64_t N) {
    NB_PARALLEL_FOR(N, for (int64_t i = 0; i < N; i++) {
        y[i] += a * x[i];
    });
}

static double max_abs(const double *x, int64_t N) {
    double m = 0;
    for (int64_t i = 0; i < N; i++)
        m = fmax(m, fabs(x[i]));
    return m;
}

/* The L-BFGS vectors are host doubles whatever the parameters' device: a
 * GPU parameter (style transfer's pixels) is written, and its gradient read
 * back, at each evaluation through L->stage, 8 bytes per value next to the
 * network's forward and backward passes. */

/* x <- t's values as doubles. */
static void get_values(const lbfgs *L, const nb_tensor *t, double *x) {
    const float *v = t->data;
    if (nb__on_gpu(t)) {
        nb_tensor_read(t, L->stage);
        v = L->stage;
    }
    for (int64_t i = 0; i < t->size; i++) x[i] = v[i];
}

/* t <- x0 + s d (x0 alone when d is NULL), rounded to float once. */
static void set_values(const lbfgs *L, nb_tensor *t, const double *x0, double s, const double *d) {
    float *w = nb__on_gpu(t) ? L->stage : t->data;
    int64_t m = t->size;
    NB_PARALLEL_FOR(m, for (int64_t i = 0; i < m; i++) {
        w[i] = (float)(d ? x0[i] + s * d[i] : x0[i]);
    });
    if (w != t->data) nb_tensor_write(t, w);
}

static void read_params(const lbfgs *L, double *x) {
    for (int k = 0; k < L->n; k++) {
        get_values(L, L->p[k].t, x);
        x += L->p[k].t->size;
    }
}

/* params <- x0 + t d. */
static void write_params(const lbfgs *L, double t, const double *d) {
    const double *x0 = L->x0;
    for (int k = 0; k < L->n; k++) {
        set_values(L, L->p[k].t, x0, t, d);
        x0 += L->p[k].t->size;
        d += L->p[k].t->size;
    }
}

/* f at the current parameter values; the gradient goes to g. The closure runs
 * in a scratch arena that is reset right after, so hundreds of evaluations
 * use the memory of one, and tensors the caller made before nb_lbfgs (data,
 * targets) stay valid. */
static double evaluate(lbfgs *L, double *g) {
    for (int k = 0; k < L->n; k++)
        nb_zero_grad(L->p[k].t);
    nb_arena *old = nb_arena_use(L->scratch);
    double f = (double)L->f(L->ctx);
    nb_arena_reset();
    nb_arena_use(old);
    for (int k = 0; k < L->n; k++) {
        const nb_tensor *t = L->p[k].t;
        /* A parameter without a gradient buffer counts as having gradient 0
         * (PyTorch does the same for grad None): it never moves. */
        if (t->grad) get_values(L, t->grad, g);
        else
            memset(g, 0, sizeof(double) * (size_t)t->size);
        g += t->size;
    }
    return f;
}

static double eval_at(lbfgs *L, double t, const double *d, double *g) {
    write_params(L, t, d);
    return evaluate(L, g);
}

/* Minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to
 * [lo, hi]; the midpoint when the cubic has no minimum (N&W eq. 3.59). */
static double cubic_min(double x1, double f1, double g1, double x2, double f2, double g2, double lo, double hi) {
    double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    double d2sq = d1 * d1 - g1 * g2;
    if (d2sq >= 0) {
        double d2 = sqrt(d2sq), m;
        if (x1 <= x2)
            m = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2));
        else
            m = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
        if (!isnan(m)) return fmin(fmax(m, lo), hi);
    }
    return (lo + hi) / 2;
}

/* A point on the line: step t, loss f, directional derivative gtd, gradient g. */
typedef struct pt {
    double t, f, gtd;
    double *g;
} pt;

/* Whether a is at least as good as b; a NaN loss is never better. */
static bool no_worse(double a, double b) { return a <= b || isnan(b); }

/* Strong-Wolfe line search from x0 along d (PyTorch's _strong_wolfe):
 * bracketing, then zoom. f0, g0, gtd0: the start. *t: the first trial step
 * in, the accepted step out; g_out gets the gradient there; returns the loss
 * there. buf: three scratch vectors, rotated so no gradient is copied. A
 * non-finite loss counts as a failed sufficient-decrease test, so a step
 * into overflow is shortened instead of accepted. */
static double strong_wolfe(lbfgs *L, const double *d, double f0, const double *g0, double gtd0, double *t,
                           double tol_change, double *buf[3], double *g_out) {
    int64_t N = L->N;
    double dnorm = max_abs(d, N);
    pt prev = {0, f0, gtd0, buf[0]}, cur = {*t, 0, 0, buf[1]};
    double *spare = buf[2];
    memcpy(prev.g, g0, sizeof(double) * (size_t)N);
    cur.f = eval_at(L, cur.t, d, cur.g);
    cur.gtd = dot(cur.g, d, N);

    pt br[2];
    int nbr = 0, ls = 0;
    bool done = false;
    while (ls < MAX_LS) {
        if (!(cur.f <= f0 + WOLFE_C1 * cur.t * gtd0) || (ls > 1 && cur.f >= prev.f)) {
            br[0] = prev, br[1] = cur, nbr = 2;
            break;
        }
        if (fabs(cur.gtd) <= -WOLFE_C2 * gtd0) {
            br[0] = cur, nbr = 1, done = true;
            break;
        }
        if (cur.gtd >= 0) {
            br[0] = prev, br[1] = cur, nbr = 2;
            break;
        }
        /* Still descending with sufficient decrease: extrapolate, at least
         * 1% past t and at most 10 t. */
        double tn =
            cubic_min(prev.t, prev.f, prev.gtd, cur.t, cur.f, cur.gtd, cur.t + 0.01 * (cur.t - prev.t), cur.t * 10);
        double *free_g = prev.g;
        prev = cur;
        cur.t = tn;
        cur.g = free_g;
        cur.f = eval_at(L, tn, d, cur.g);
        cur.gtd = dot(cur.g, d, N);
        ls++;
    }
    if (ls == MAX_LS) { /* no bracket found: fall back to [0, t] */
        memcpy(prev.g, g0, sizeof(double) * (size_t)N);
        br[0] = (pt){0, f0, gtd0, prev.g};
        br[1] = cur;
        nbr = 2;
    }

    /* Zoom: shrink the bracket [br[lo], br[hi]] until a point satisfies both
     * Wolfe conditions. br[lo] always has the lowest loss seen so far. */
    int lo = nbr == 2 && !no_worse(br[0].f, br[1].f) ? 1 : 0;
    bool insufficient = false;
    while (!done && ls < MAX_LS) {
        if (fabs(br[1].t - br[0].t) * dnorm < tol_change) break;
        double bmin = fmin(br[0].t, br[1].t), bmax = fmax(br[0].t, br[1].t);
        double tn = cubic_min(br[0].t, br[0].f, br[0].gtd, br[1].t, br[1].f, br[1].gtd, bmin, bmax);
        /* Keep trial points 10% of the bracket away from its ends when the
         * last try made too little progress or interpolation hit an end. */
        double eps = 0.1 * (bmax - bmin);
        if (fmin(bmax - tn, tn - bmin) < eps) {
            if (insufficient || tn >= bmax || tn <= bmin) {
                tn = fabs(tn - bmax) < fabs(tn - bmin) ? bmax - eps : bmin + eps;
                insufficient = false;
            } else {
                insufficient = true;
            }
        } else {
            insufficient = false;
        }
        pt nw = {tn, 0, 0, spare};
        nw.f = eval_at(L, tn, d, nw.g);
        nw.gtd = dot(nw.g, d, N);
        ls++;
        int hi = 1 - lo;
        if (!(nw.f <= f0 + WOLFE_C1 * tn * gtd0) || nw.f >= br[lo].f) {
            spare = br[hi].g; /* the new point replaces the high end */
            br[hi] = nw;
            lo = no_worse(br[0].f, br[1].f) ? 0 : 1;
        } else {
            double *freed = br[lo].g;
            if (fabs(nw.gtd) <= -WOLFE_C2 * gtd0) {
                done = true;
            } else if (nw.gtd * (br[hi].t - br[lo].t) >= 0) {
                freed = br[hi].g; /* the old low becomes the high end */
                br[hi] = br[lo];
            }
            br[lo] = nw;
            spare = freed;
        }
    }
    *t = br[lo].t;
    memcpy(g_out, br[lo].g, sizeof(double) * (size_t)N);
    return br[lo].f;
}

static double *alloc_vec(int64_t N) {
    double *v = malloc(sizeof(double) * (size_t)(N ? N : 1));
    /* Sized by the parameters (a style image's pixels): running out is the
     * program's out-of-memory exit, not an abort (nb_fatal is for misuse). */
    if (!v) nb_oom("an L-BFGS vector", sizeof(double) * (size_t)(N ? N : 1));
    return v;
}

float nb_lbfgs(nb_param *params, int n, nb_closure f, void *ctx, const nb_lbfgs_opts *o, int *iters) {
    nb_lbfgs_opts opt = o ? *o : (nb_lbfgs_opts){0};
    if (!f) nb_fatal("lbfgs", "the closure is NULL");
    if (n < 0 || (n > 0 && !params)) nb_fatal("lbfgs", "%d parameters with a %s array", n, params ? "valid" : "NULL");
    if (opt.max_iter < 0 || opt.history < 0 || !(opt.tol_grad >= 0) || !(opt.tol_change >= 0) || !(opt.lr >= 0))
        nb_fatal("lbfgs", "options must be >= 0 (max_iter %d, history %d, tol_grad %g, tol_change %g, lr %g)",
                 opt.max_iter, opt.history, (double)opt.tol_grad, (double)opt.tol_change, (double)opt.lr);
    int max_iter = opt.max_iter ? opt.max_iter : 100, h = opt.history ? opt.history : 10;
    double tol_grad = opt.tol_grad ? opt.tol_grad : 1e-5, tol_change = opt.tol_change ? opt.tol_change : 1e-9;
    double lr = opt.lr ? opt.lr : 1.0;

    lbfgs L = {params, n, 0, f, ctx, nb_arena_new(), NULL, NULL};
    int64_t on_gpu = 0; /* the largest GPU parameter's size */
    for (int k = 0; k < n; k++) {
        L.N += params[k].t->size;
        if (nb__on_gpu(params[k].t) && params[k].t->size > on_gpu) on_gpu = params[k].t->size;
    }
    if (on_gpu && !(L.stage = malloc(sizeof(float) * (size_t)on_gpu)))
        nb_oom("L-BFGS's host copy of a parameter", sizeof(float) * (size_t)on_gpu);
    int64_t N = L.N;
    L.x0 = alloc_vec(N);
    double *g = alloc_vec(N), *g_prev = alloc_vec(N), *d = alloc_vec(N),
           *buf[3] = {alloc_vec(N), alloc_vec(N), alloc_vec(N)};
    /* The last h curvature pairs (s, y) in a ring: oldest at `first`. */
    double *S = malloc(sizeof(double) * (size_t)h * (size_t)(N ? N : 1)),
           *Y = malloc(sizeof(double) * (size_t)h * (size_t)(N ? N : 1));
    double *rho = malloc(sizeof(double) * (size_t)h), *alpha = malloc(sizeof(double) * (size_t)h);
    if (!S || !Y || !rho || !alpha) {
        char what[96];
        snprintf(what, sizeof what, "L-BFGS's history (2 x %d vectors of %lld doubles)", h, (long long)N);
        nb_oom(what, 2 * sizeof(double) * (size_t)h * (size_t)(N ? N : 1));
    }
    int count = 0, first = 0;
    double h_diag = 1, t = 0;

    double loss = evaluate(&L, g);
    int it = 0;
    if (isfinite(loss) && max_abs(g, N) > tol_grad) {
        while (it < max_iter) {
            if (opt.stop && opt.stop(ctx)) break;
            if (it == 0) {
                for (int64_t i = 0; i < N; i++)
                    d[i] = -g[i];
            } else {
                /* New pair: y = g - g_prev, s = t d (the step just taken). It
                 * is kept only if y's > 1e-10, which keeps the implicit
                 * inverse Hessian positive definite. */
                double *y = buf[0], *s = buf[1];
                for (int64_t i = 0; i < N; i++)
                    y[i] = g[i] - g_prev[i], s[i] = t * d[i];
                double ys = dot(y, s, N);
                if (ys > 1e-10) {
                    int slot = (first + count) % h;
                    if (count == h)
                        first = (first + 1) % h; /* overwrite the oldest */
                    else
                        count++;
                    memcpy(S + (size_t)slot * N, s, sizeof(double) * (size_t)N);
                    memcpy(Y + (size_t)slot * N, y, sizeof(double) * (size_t)N);
                    rho[slot] = 1.0 / ys;
                    h_diag = ys / dot(y, y, N); /* H0 = (s'y / y'y) I, N&W eq. 7.20 */
                }
                /* Two-loop recursion (N&W Alg. 7.4): d = -H g. */
                for (int64_t i = 0; i < N; i++)
                    d[i] = -g[i];
                for (int j = count - 1; j >= 0; j--) {
                    int k = (first + j) % h;
                    alpha[j] = dot(S + (size_t)k * N, d, N) * rho[k];
                    axpy(d, -alpha[j], Y + (size_t)k * N, N);
                }
                for (int64_t i = 0; i < N; i++)
                    d[i] *= h_diag;
                for (int j = 0; j < count; j++) {
                    int k = (first + j) % h;
                    double beta = dot(Y + (size_t)k * N, d, N) * rho[k];
                    axpy(d, alpha[j] - beta, S + (size_t)k * N, N);
                }
            }
            memcpy(g_prev, g, sizeof(double) * (size_t)N);
            double prev_loss = loss;
            /* First step: at most 1/|g|_1 long, so the first trial cannot fly
             * off on an unscaled gradient; afterwards the quasi-Newton step. */
            if (it == 0) {
                double gsum = 0;
                for (int64_t i = 0; i < N; i++)
                    gsum += fabs(g[i]);
                t = fmin(1.0, 1.0 / gsum) * lr;
            } else {
                t = lr;
            }
            double gtd = dot(g, d, N);
            if (gtd > -tol_change) break; /* not a descent direction any more */
            it++;
            read_params(&L, L.x0);
            loss = strong_wolfe(&L, d, loss, g_prev, gtd, &t, tol_change, buf, g);
            write_params(&L, t, d);
            if (it == max_iter || !isfinite(loss)) break;
            if (max_abs(g, N) <= tol_grad) break;
            if (t * max_abs(d, N) <= tol_change) break;
            if (fabs(loss - prev_loss) < tol_change) break;
        }
    }
    /* Leave .grad holding the gradient at the returned point. */
    const double *gp = g;
    for (int k = 0; k < n; k++) {
        nb_tensor *p = params[k].t;
        if (p->grad) set_values(&L, p->grad, gp, 0, NULL);
        gp += p->size;
    }
    if (iters) *iters = it;
    nb_arena_free(L.scratch);
    free(L.stage);
    free(L.x0), free(g), free(g_prev), free(d), free(buf[0]), free(buf[1]), free(buf[2]);
    free(S), free(Y), free(rho), free(alpha);
    return (float)loss;
}
