/* loss.c — cross-entropy from logits, mean squared error and binary
 * cross-entropy from logits, each a fused stable forward next to a backward
 * written with nb_* ops (so second derivatives are exact). */
#include "../core/internal.h"
#include "../core/vmath.h"
#include <math.h>

/* --- cross-entropy (eq. 10.12 / 10.18) ----------------------------------- */

/* logits o: [N, C], labels y: N ints (copied into the arena as node aux).
 * L = (1/N) sum_i -log softmax(o_i)[y_i] = (1/N) sum_i (lse(o_i) - o_i[y_i]).
 * eq. 10.18: dL/do = (softmax(o) - onehot(y)) g / N, computed by ce_grad in
 * one pass over the logits. */

static nb_tensor *onehot(const nb_tensor *o, const int32_t *y) {
    nb_tensor *t = nb_zeros(o->ndim, o->shape);
    for (int64_t i = 0; i < o->shape[0]; i++) t->data[i * o->shape[1] + y[i]] = 1.f;
    return nb_to(t, o->device); /* built on the host: only double backward needs it */
}

/* d = ce_grad(o, g) = (softmax(o) - onehot(y)) g / N, fused; an op of its
 * own whose backward, with U = dL/dd and s = softmax(o) from the softmax op
 * (so the rule stays differentiable):
 *   do = softmax_grad(s, U) g / N,   dg = sum((s - onehot) U) / N. */
static void ce_grad_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *o = n->in[0], *g = n->in[1];
    float invn = 1.f / (float)o->shape[0];
    nb_tensor *s = nb_softmax(o, 1);
    if (o->requires_grad) nb__accum(o, nb_mul(nb__softmax_grad(s, u, 1), nb_mul_scalar(g, invn)));
    if (g->requires_grad) nb__accum(g, nb_mul_scalar(nb_sum_all(nb_mul(nb_sub(s, onehot(o, n->aux)), u)), invn));
}
static const nb_op op_ce_grad = {"cross_entropy_grad", ce_grad_bw};

/* What the forward leaves for the backward: the labels, and each row's max m
 * and log of the shifted sum l, so that softmax(o_i) = e^{(o_i - m) - l} is
 * one exp per element. (o_i - m is exact; folding m + l into one float would
 * lose digits at the scale of m, 1e-3 for logits of 1e4.) */
typedef struct {
    int32_t *y;
    float *m, *l; /* on the logits' device */
    int32_t *yd;  /* the labels on the GPU, for GPU logits */
} ce_saved;

static nb_tensor *ce_grad(nb_tensor *o, nb_tensor *g, const ce_saved *sv) {
    int64_t N = o->shape[0], C = o->shape[1];
    nb_tensor *d = nb_empty_like(o);
    if (NB_DEVICE("cross_entropy_grad", o, g) == NB_CUDA) {
        nb__gpu_cross_entropy_grad(d->data, o->data, sv->m, sv->l, sv->yd, g->data, N, C);
    } else {
        const float *po = o->data;
        float *pd = d->data, scale = g->data[0] / (float)N;
        NB_PARALLEL_FOR(o->size, for (int64_t i = 0; i < N; i++) {
            const float *r = po + i * C;
            float *dr = pd + i * C, m = sv->m[i], l = sv->l[i];
            for (int64_t c = 0; c < C; c++) dr[c] = nb__vexpf((r[c] - m) - l) * scale;
            dr[sv->y[i]] -= scale;
        });
    }
    nb_tensor *in[2] = {o, g};
    nb_node *n = nb__record(&op_ce_grad, d, in, 2);
    if (n) n->aux = sv->y;
    return d;
}

static void cross_entropy_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], ce_grad(n->in[0], g, n->aux)); }
static const nb_op op_cross_entropy = {"cross_entropy", cross_entropy_bw};

/* The GPU's forward: the labels go to the device once per batch, and the
 * row statistics the backward needs stay there. */
static nb_tensor *gpu_cross_entropy(nb_tensor *logits, const int32_t *labels) {
    int64_t N = logits->shape[0], C = logits->shape[1];
    ce_saved *sv = nb_arena_alloc(sizeof *sv);
    /* the host labels only for a backward (double backward's one-hot) */
    sv->y = nb_grad_enabled() && logits->requires_grad ? nb_arena_alloc(sizeof(int32_t) * (size_t)N) : NULL;
    if (sv->y) memcpy(sv->y, labels, sizeof(int32_t) * (size_t)N);
    sv->yd = nb__to_gpu_arena(labels, sizeof(int32_t) * (size_t)N);
    sv->m = nb__arena_alloc_gpu(sizeof(float) * (size_t)N);
    sv->l = nb__arena_alloc_gpu(sizeof(float) * (size_t)N);
    nb_tensor *out = nb__new_on(NB_CUDA, 0, NULL);
    nb__gpu_cross_entropy(out->data, sv->m, sv->l, logits->data, sv->yd, N, C);
    nb_node *n = nb__record(&op_cross_entropy, out, &logits, 1);
    if (n) n->aux = sv;
    return out;
}

nb_tensor *nb_cross_entropy(nb_tensor *logits, const int32_t *labels) {
    if (logits->ndim != 2 || logits->shape[0] == 0 || logits->shape[1] == 0)
        nb__shape_fatal("cross_entropy", logits, NULL, "logits must be [N, C] with N, C > 0");
    int64_t N = logits->shape[0], C = logits->shape[1];
    /* Checked up front, before any thread runs: a bad label is a bug in the
     * caller's data pipeline and must name the row, not corrupt memory. */
    for (int64_t i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= C)
            nb_fatal("cross_entropy", "label %d of row %lld is outside [0, %lld)", (int)labels[i], (long long)i,
                     (long long)C);
    if (nb__on_gpu(logits)) return gpu_cross_entropy(logits, labels);
    const float *po = logits->data;
    /* Per-row losses summed afterwards in row order: the same total for any
     * thread count (an OpenMP reduction may combine in any order). */
    double *row_loss = nb_arena_alloc(sizeof(double) * (size_t)N);
    /* Kept for the backward only when it can run. */
    ce_saved *sv = nb_grad_enabled() && logits->requires_grad ? nb_arena_alloc(sizeof *sv) : NULL;
    if (sv) {
        sv->y = nb_arena_alloc(sizeof(int32_t) * (size_t)N);
        sv->m = nb_arena_alloc(sizeof(float) * (size_t)N);
        sv->l = nb_arena_alloc(sizeof(float) * (size_t)N);
        memcpy(sv->y, labels, sizeof(int32_t) * (size_t)N);
    }
    NB_PARALLEL_FOR(logits->size, for (int64_t i = 0; i < N; i++) {
        /* Max-subtracted log-sum-exp: finite for any finite logits. */
        const float *r = po + i * C;
        float m = r[0];
        /* A NaN makes the sum NaN anyway, so the max may skip it (and vectorize). */
        NB_PRAGMA(omp simd reduction(max : m))
        for (int64_t c = 1; c < C; c++) m = r[c] > m ? r[c] : m;
        double s = 0; /* a double reduction the compiler may vectorize, as the softmax's */
        NB_PRAGMA(omp simd reduction(+ : s))
        for (int64_t c = 0; c < C; c++) s += nb__vexpf(r[c] - m); /* each term <= 1, the max's = 1 */
        row_loss[i] = (double)m + log(s) - r[labels[i]];
        if (sv) sv->m[i] = m, sv->l[i] = (float)log(s);
    });
    double total = 0;
    for (int64_t i = 0; i < N; i++) total += row_loss[i];
    nb_tensor *out = nb__new(0, NULL);
    out->data[0] = (float)(total / (double)N);
    nb_node *n = nb__record(&op_cross_entropy, out, &logits, 1);
    if (n) n->aux = sv;
    return out;
}

/* --- mean squared error -------------------------------------------------- */

/* pred, target: same shape, M elements.  L = (1/M) sum (p - t)^2;
 * dp = 2 (p - t) g / M,  dt = -dp. */
static void mse_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *p = n->in[0], *t = n->in[1];
    nb_tensor *dp = nb_mul(nb_sub(p, t), nb_mul_scalar(g, 2.f / (float)p->size));
    nb__accum(p, dp);
    if (t->requires_grad) nb__accum(t, nb_neg(dp));
}
static const nb_op op_mse = {"mse", mse_bw};

nb_tensor *nb_mse(nb_tensor *pred, nb_tensor *target) {
    if (!nb_same_shape(pred, target)) nb__shape_fatal("mse", pred, target, "prediction and target differ");
    if (pred->size == 0) nb__shape_fatal("mse", pred, target, "the mean of no elements is undefined");
    if (NB_DEVICE("mse", pred, target) == NB_CUDA) {
        /* (p - t)^2 into scratch, summed in the backend's fixed order, scaled */
        int64_t M = pred->size, one = 1, unit = 1;
        float *d = nb__arena_alloc_gpu(sizeof(float) * (size_t)M);
        nb__gpu_binary(NB_GPU_SUB, d, pred->data, target->data, 1, &M, &unit, &unit);
        nb__gpu_unary(NB_GPU_SQUARE, d, d, M, 0.f);
        nb_tensor *out = nb__new_on(NB_CUDA, 0, NULL);
        nb__gpu_sum_mid(out->data, d, 1, M, one);
        nb__gpu_unary(NB_GPU_SCALE, out->data, out->data, 1, (float)(1.0 / (double)M));
        nb__record(&op_mse, out, (nb_tensor *[]){pred, target}, 2);
        return out;
    }
    const float *p = pred->data, *t = target->data;
    int64_t M = pred->size;
    double s = 0;
    NB_PARALLEL(M >= NB_PAR_MIN, for simd reduction(+ : s), for (int64_t i = 0; i < M; i++) {
        double d = (double)p[i] - t[i];
        s += d * d;
    });
    nb_tensor *out = nb__new(0, NULL);
    out->data[0] = (float)(s / (double)M);
    nb__record(&op_mse, out, (nb_tensor *[]){pred, target}, 2);
    return out;
}

/* --- binary cross-entropy from logits (eq. 29) --------------------------- */

/* z (logits), y (targets in [0, 1]): same shape, M elements. eq. 29 with
 * y' = sigmoid(z):  -[y log y' + (1 - y) log(1 - y')]
 *   = max(z, 0) - z y + log(1 + e^{-|z|}),
 * which never takes the log of 0 nor overflows. L is its mean.
 * dz = (sigmoid(z) - y) g / M,  dy = -z g / M. */
static void bce_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *z = n->in[0], *y = n->in[1];
    nb_tensor *gm = nb_mul_scalar(g, 1.f / (float)z->size);
    if (z->requires_grad) nb__accum(z, nb_mul(nb_sub(nb_sigmoid(z), y), gm));
    if (y->requires_grad) nb__accum(y, nb_mul(nb_neg(z), gm));
}
static const nb_op op_bce = {"bce_logits", bce_bw};

nb_tensor *nb_bce_logits(nb_tensor *logits, nb_tensor *target) {
    if (!nb_same_shape(logits, target)) nb__shape_fatal("bce_logits", logits, target, "logits and target differ");
    if (logits->size == 0) nb__shape_fatal("bce_logits", logits, target, "the mean of no elements is undefined");
    if (NB_DEVICE("bce_logits", logits, target) == NB_CUDA) {
        /* eq. 29 in the stable form above from GPU ops, its mean summed in
         * double as on the CPU; this op's backward */
        bool old = nb_set_grad_enabled(false);
        nb_tensor *e = nb_exp(nb_neg(nb_abs(logits))), *l = nb_empty_like(e);
        nb__gpu_unary(NB_GPU_LOG1P, l->data, e->data, e->size, 1.f);
        nb_tensor *m = nb_mean(nb_add(nb_sub(nb_relu(logits), nb_mul(logits, target)), l), NULL, 0, false);
        nb_set_grad_enabled(old);
        nb__record(&op_bce, m, (nb_tensor *[]){logits, target}, 2); /* m, made untracked, is this op's output */
        return m;
    }
    const float *z = logits->data, *y = target->data;
    int64_t M = logits->size;
    double s = 0;
    NB_PARALLEL(M >= NB_PAR_MIN, for reduction(+ : s), for (int64_t i = 0; i < M; i++) {
        double zi = z[i];
        s += (zi > 0 ? zi : 0) - zi * y[i] + log1p(exp(-fabs(zi)));
    });
    nb_tensor *out = nb__new(0, NULL);
    out->data[0] = (float)(s / (double)M);
    nb__record(&op_bce, out, (nb_tensor *[]){logits, target}, 2);
    return out;
}
