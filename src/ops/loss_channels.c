/* loss_channels.c — cross-entropy with the classes on axis 1: logits
 * [N, C, L] (WaveNet's head, eq. 30), one label per (n, t). The same loss as
 * nb_cross_entropy of the logits permuted to [N * L, C], read in place: the
 * log-sum-exp of each position runs down a column of C values L apart, so
 * the loops go over the classes outside and a block of positions inside
 * (contiguous, vectorized), with the block's maxima and sums in registers or
 * L1. Forward and backward side by side as in loss.c; the backward's own
 * backward is written with nb_* ops (softmax along axis 1), so second
 * derivatives are exact. */
#include "../core/internal.h"
#include "../core/vmath.h"
#include <math.h>

#define CB 256 /* positions per block */

typedef struct {
    int32_t *y;
    float *m, *l; /* per position: the max over the classes, log of the shifted sum */
} cc_saved;

static nb_tensor *onehot(const nb_tensor *o, const int32_t *y) {
    int64_t N = o->shape[0], C = o->shape[1], L = o->shape[2];
    nb_tensor *t = nb_zeros(3, o->shape);
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < L; p++) t->data[(n * C + y[n * L + p]) * L + p] = 1.f;
    return t;
}

/* d = (softmax(o) - onehot(y)) g / (N L) along axis 1; its backward with
 * U = dL/dd, s = softmax(o):
 *   do = softmax_grad(s, U) g / (N L),   dg = sum((s - onehot) U) / (N L). */
static void ccg_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *o = n->in[0], *g = n->in[1];
    const cc_saved *sv = n->aux;
    float inv = 1.f / (float)(o->shape[0] * o->shape[2]);
    nb_tensor *s = nb_softmax(o, 1);
    if (o->requires_grad) nb__accum(o, nb_mul(nb__softmax_grad(s, u, 1), nb_mul_scalar(g, inv)));
    if (g->requires_grad) nb__accum(g, nb_mul_scalar(nb_sum_all(nb_mul(nb_sub(s, onehot(o, sv->y)), u)), inv));
}
static const nb_op op_ccg = {"cross_entropy_channels_grad", ccg_bw};

static nb_tensor *cc_grad(nb_tensor *o, nb_tensor *g, const cc_saved *sv) {
    const int64_t N = o->shape[0], C = o->shape[1], L = o->shape[2], nb = (L + CB - 1) / CB;
    nb_tensor *d = nb_empty_like(o);
    const float *po = o->data;
    float *pd = d->data;
    const float scale = g->data[0] / (float)(N * L);
    NB_PARALLEL_FOR(o->size, for (int64_t b = 0; b < N * nb; b++) {
        const int64_t n = b / nb, t0 = (b % nb) * CB, nt = L - t0 < CB ? L - t0 : CB;
        const float *m = sv->m + n * L + t0, *l = sv->l + n * L + t0;
        const int32_t *y = sv->y + n * L + t0;
        for (int64_t c = 0; c < C; c++) {
            const float *restrict r = po + (n * C + c) * L + t0;
            float *restrict dr = pd + (n * C + c) * L + t0;
            for (int64_t t = 0; t < nt; t++) dr[t] = nb__vexpf((r[t] - m[t]) - l[t]) * scale;
        }
        for (int64_t t = 0; t < nt; t++) pd[(n * C + y[t]) * L + t0 + t] -= scale;
    });
    nb_node *nd = nb__record(&op_ccg, d, (nb_tensor *[]){o, g}, 2);
    if (nd) nd->aux = (void *)sv;
    return d;
}

static void cc_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], cc_grad(n->in[0], g, n->aux)); }
static const nb_op op_cc = {"cross_entropy_channels", cc_bw};

nb_tensor *nb__cross_entropy_channels(nb_tensor *logits, const int32_t *labels) {
    if (logits->ndim != 3 || logits->size == 0)
        nb__shape_fatal("cross_entropy_channels", logits, NULL, "logits must be [N, C, L] with N, C, L > 0");
    if (nb__on_gpu(logits)) /* the definition itself: rows n * L + t of the logits permuted to [N * L, C] */
        return nb_cross_entropy(nb_reshape(nb_permute(logits, (int[]){0, 2, 1}), 2,
                                           (int64_t[]){logits->shape[0] * logits->shape[2], logits->shape[1]}),
                                labels);
    const int64_t N = logits->shape[0], C = logits->shape[1], L = logits->shape[2], nb = (L + CB - 1) / CB;
    for (int64_t i = 0; i < N * L; i++)
        if (labels[i] < 0 || labels[i] >= C)
            nb_fatal("cross_entropy_channels", "label %d at position %lld is outside [0, %lld)", (int)labels[i],
                     (long long)i, (long long)C);
    const float *po = logits->data;
    /* per-position losses summed afterwards in order: the same total for any
     * thread count */
    double *loss = nb_arena_alloc(sizeof(double) * (size_t)(N * L));
    cc_saved *sv = nb_arena_alloc(sizeof *sv);
    sv->y = nb_arena_alloc(sizeof(int32_t) * (size_t)(N * L));
    sv->m = nb_arena_alloc(sizeof(float) * (size_t)(N * L));
    sv->l = nb_arena_alloc(sizeof(float) * (size_t)(N * L));
    memcpy(sv->y, labels, sizeof(int32_t) * (size_t)(N * L));
    NB_PARALLEL_FOR(logits->size, for (int64_t b = 0; b < N * nb; b++) {
        const int64_t n = b / nb, t0 = (b % nb) * CB, nt = L - t0 < CB ? L - t0 : CB;
        const float *on = po + n * C * L + t0;
        float m[CB];
        double s[CB];
        for (int64_t t = 0; t < nt; t++) m[t] = on[t], s[t] = 0;
        /* the max skips NaNs (they make the sum NaN anyway) */
        for (int64_t c = 1; c < C; c++) {
            const float *restrict r = on + c * L;
            for (int64_t t = 0; t < nt; t++) m[t] = r[t] > m[t] ? r[t] : m[t];
        }
        for (int64_t c = 0; c < C; c++) {
            const float *restrict r = on + c * L;
            for (int64_t t = 0; t < nt; t++) s[t] += nb__vexpf(r[t] - m[t]); /* each term <= 1 */
        }
        for (int64_t t = 0; t < nt; t++) {
            const int64_t i = n * L + t0 + t;
            const double ls = log(s[t]);
            loss[i] = (double)m[t] + ls - on[labels[i] * L + t]; /* eq. 30's -log p at one position */
            sv->m[i] = m[t], sv->l[i] = (float)ls;
        }
    });
    double total = 0;
    for (int64_t i = 0; i < N * L; i++) total += loss[i];
    nb_tensor *out = nb__new(0, NULL);
    out->data[0] = (float)(total / (double)(N * L));
    nb_node *nd = nb__record(&op_cc, out, &logits, 1);
    if (nd) nd->aux = sv;
    return out;
}
