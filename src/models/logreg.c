/* logreg.c — logistic regression (notes §5.7, eq. 5.81): binary (sigmoid) and
 * multinomial (softmax) with an L2 penalty, scikit-learn's objective, fitted
 * by L-BFGS (nb_lbfgs) or gradient descent on nabla's autodiff. */
#include "classic.h"
#include <math.h>
#include <stdlib.h>

typedef struct {
    nb_tensor *X;         /* [n, d], read only */
    const int32_t *yi;    /* class indices (multinomial) */
    nb_tensor *ybin;      /* [n, 1] 0/1 targets (binary) */
    nb_tensor *W, *b;     /* parameters [k, d], [k] */
    float reg;            /* 1 / (C n) */
} lr_ctx;

/* scikit-learn minimizes C sum_i -log p(y_i|x_i) + ||W||^2 / 2. Divided by
 * C n (the same minimizer) it is the mean cross-entropy plus
 * ||W||^2 / (2 C n), which keeps float32 losses of order one. */
static nb_tensor *objective(lr_ctx *c, nb_tensor **ce) {
    nb_tensor *z = nb_linear(c->X, c->W, c->b);
    nb_tensor *loss = c->ybin ? nb_bce_logits(z, c->ybin) : nb_cross_entropy(z, c->yi);
    if (ce) *ce = loss;
    return nb_add(loss, nb_mul_scalar(nb_sum_all(nb_square(c->W)), 0.5f * c->reg));
}

static float lr_closure(void *ctx) {
    nb_tensor *l = objective(ctx, NULL);
    nb_backward(l);
    return nb_item(l);
}

static double max_grad(const lr_ctx *c) {
    double m = 0;
    for (int64_t i = 0; i < c->W->size; i++) m = fmax(m, fabs(c->W->grad->data[i]));
    for (int64_t i = 0; i < c->b->size; i++) m = fmax(m, fabs(c->b->grad->data[i]));
    return m;
}

nb_logreg *nb_logreg_fit(const nb_tensor *X, const float *y, const nb_logreg_opts *o) {
    int64_t n, d;
    nb_logreg_opts opt = o ? *o : (nb_logreg_opts){0};
    if (nb__ml_check_X("logreg_fit", X, &n, &d) || nb__ml_check_y("logreg_fit", y, n)) return NULL;
    /* NaN passed "< 0" and silently meant the default. C may be +inf (no
     * penalty); tol and lr must be finite. */
    if (!(opt.C >= 0) || opt.max_iter < 0 || !(opt.tol >= 0 && isfinite(opt.tol)) ||
        !(opt.lr >= 0 && isfinite(opt.lr)) || opt.solver > NB_SOLVER_GD) {
        nb_error("logreg_fit: C, max_iter, tol and lr must be >= 0 (tol and lr finite) and the solver lbfgs or gd");
        return NULL;
    }
    double C = opt.C > 0 ? opt.C : 1.0, tol = opt.tol > 0 ? opt.tol : 1e-4;
    int max_iter = opt.max_iter > 0 ? opt.max_iter : opt.solver == NB_SOLVER_GD ? 1000 : 100;
    int32_t *yi = nb__xmalloc("a logistic regression", (size_t)n, sizeof(int32_t));
    nb_logreg *m = nb__xcalloc("a logistic regression", 1, sizeof *m);
    m->d = d;
    m->nclass = nb__ml_classes(y, n, &m->classes, yi);
    if (m->nclass < 2) {
        nb_error("the labels hold one class only (%g): a classifier needs at least 2", m->classes[0]);
        free(yi);
        nb_logreg_free(m);
        return NULL;
    }
    m->k = m->nclass == 2 ? 1 : m->nclass;
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    lr_ctx c = {.X = (nb_tensor *)X, .yi = yi, .reg = (float)(1.0 / (C * (double)n))};
    /* X is only read: the ops take it as an input without a gradient. */
    nb_tensor *ybin = NULL;
    if (m->k == 1) {
        ybin = nb_tensor_new(2, (int64_t[]){n, 1});
        for (int64_t i = 0; i < n; i++) ybin->data[i] = (float)yi[i];
        c.ybin = ybin;
    }
    c.W = nb_tensor_new(2, (int64_t[]){m->k, d});
    c.b = nb_tensor_new(1, (int64_t[]){m->k});
    nb_requires_grad(c.W, true);
    nb_requires_grad(c.b, true);
    nb_param ps[2] = {{c.W, true}, {c.b, false}};
    if (opt.solver == NB_SOLVER_LBFGS) {
        nb_lbfgs_opts lo = {.max_iter = max_iter, .tol_grad = (float)tol};
        nb_lbfgs(ps, 2, lr_closure, &c, &lo, &m->iters);
    } else {
        /* Plain gradient descent with a fixed step on the same objective. */
        double lr = opt.lr > 0 ? opt.lr : 0.5;
        for (m->iters = 0; m->iters < max_iter; m->iters++) {
            nb_zero_grad(c.W);
            nb_zero_grad(c.b);
            lr_closure(&c);
            nb_arena_reset();
            if (max_grad(&c) <= tol) break;
            for (int64_t i = 0; i < c.W->size; i++) c.W->data[i] -= (float)lr * c.W->grad->data[i];
            for (int64_t i = 0; i < c.b->size; i++) c.b->data[i] -= (float)lr * c.b->grad->data[i];
        }
    }
    bool g = nb_set_grad_enabled(false);
    nb_tensor *ce;
    objective(&c, &ce);
    m->loss = nb_item(ce);
    nb_set_grad_enabled(g);
    nb_arena_reset();
    nb_arena_use(old);
    nb_arena_free(arena);
    m->W = nb__xmalloc("a logistic regression", (size_t)(m->k * d), sizeof(double));
    m->b = nb__xmalloc("a logistic regression", (size_t)m->k, sizeof(double));
    for (int64_t i = 0; i < m->k * d; i++) m->W[i] = c.W->data[i];
    for (int i = 0; i < m->k; i++) m->b[i] = c.b->data[i];
    nb_tensor_free(c.W);
    nb_tensor_free(c.b);
    nb_tensor_free(ybin);
    free(yi);
    return m;
}

void nb_logreg_free(nb_logreg *m) {
    if (!m) return;
    free(m->classes);
    free(m->W);
    free(m->b);
    free(m);
}

void nb_logreg_predict(const nb_logreg *m, const nb_tensor *X, double *p, float *labels) {
    int64_t n = X->shape[0], d = m->d, K = m->nclass;
    nb__ml_predict_X("logreg_predict", X, d);
    NB_PARALLEL_FOR(n * d * m->k, for (int64_t i = 0; i < n; i++) {
        const float *x = X->data + i * d;
        double z[256], *zz = K <= 256 ? z : nb__xmalloc("a logistic regression", (size_t)K, sizeof(double));
        for (int r = 0; r < m->k; r++) {
            double s = m->b[r];
            for (int64_t j = 0; j < d; j++) s += m->W[r * d + j] * x[j];
            zz[r] = s;
        }
        if (m->k == 1) { /* eq. 5.81: p(y = 1 | x) = sigma(w^T x + b) */
            double p1 = 1 / (1 + exp(-zz[0]));
            zz[0] = 1 - p1;
            zz[1] = p1;
        } else { /* softmax, shifted by the max for stability */
            double mx = zz[0], s = 0;
            for (int r = 1; r < K; r++) mx = fmax(mx, zz[r]);
            for (int r = 0; r < K; r++) s += (zz[r] = exp(zz[r] - mx));
            for (int r = 0; r < K; r++) zz[r] /= s;
        }
        int best = 0;
        for (int r = 1; r < K; r++)
            if (zz[r] > zz[best]) best = r;
        if (p) memcpy(p + i * K, zz, sizeof(double) * (size_t)K);
        if (labels) labels[i] = (float)m->classes[best];
        if (zz != z) free(zz);
    });
}

int nb__logreg_save(const nb_logreg *m, nb__stb *b) {
    nb__stb_doubles(b, "weight", m->W, 2, (int64_t[]){m->k, m->d});
    nb__stb_doubles(b, "bias", m->b, 1, (int64_t[]){m->k});
    nb__stb_doubles(b, "classes", m->classes, 1, (int64_t[]){m->nclass});
    return 0;
}

nb_logreg *nb__logreg_load(const nb_safetensors *st, const char *path) {
    nb_tensor *w = nb_st_get(st, "weight"), *c = nb_st_get(st, "classes");
    if (!w || w->ndim != 2 || !c || c->ndim != 1 || c->shape[0] < 2 ||
        w->shape[0] != (c->shape[0] == 2 ? 1 : c->shape[0]) || w->shape[1] < 1) {
        nb_error("%s: the logistic regression needs 'weight' [k, d] and 'classes' [K] with k = 1 for K = 2, else K",
                 path);
        return NULL;
    }
    nb_logreg *m = nb__xcalloc("a logistic regression", 1, sizeof *m);
    m->k = (int)w->shape[0];
    m->d = w->shape[1];
    m->nclass = (int)c->shape[0];
    if (!(m->W = nb__st_doubles(st, path, "weight", 2, (int64_t[]){m->k, m->d})) ||
        !(m->b = nb__st_doubles(st, path, "bias", 1, (int64_t[]){m->k})) ||
        !(m->classes = nb__st_doubles(st, path, "classes", 1, (int64_t[]){m->nclass}))) {
        nb_logreg_free(m);
        return NULL;
    }
    return m;
}
