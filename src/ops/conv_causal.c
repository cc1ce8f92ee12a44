/* conv_causal.c — dilated causal 1-D convolution for long signals (WaveNet's
 * layers, notes §4.5): out[n, o, t] = b[o] + sum_{c,k} w[o, c, k]
 * x[n, c, t - (K-1-k) d], zero before the start. nb_conv1d computes the same
 * through a padded copy of the signal and image kernels built for 2-D
 * pictures; here each tap is one GEMM straight on the unpadded [C, L] rows
 * (a shifted column window, ldb = L), so a 16000-sample segment costs K
 * GEMMs per layer and direction and no copies. The three products are ops
 * of their own, each the adjoint of the others (all bilinear):
 *   y  = F(x, w)                gx = G(gy, w)            gw = H(gy, x)
 *   G's backward: dgy = F(U, w),  dw = H(gy, U)
 *   H's backward: dgy = F(x, V),  dx = G(gy, V)
 * so gradients of any order stay on the tape. */
#include "../core/internal.h"
#include <cblas.h>

/* Taps of w [O, C, K] as K contiguous [O, C] matrices (arena). */
static float *taps(const nb_tensor *w) {
    int64_t O = w->shape[0], C = w->shape[1], K = w->shape[2];
    float *t = nb_arena_alloc(sizeof(float) * (size_t)(O * C * K));
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < K; k++) t[(k * O + o) * C + c] = w->data[(o * C + c) * K + k];
    return t;
}

static nb_tensor *causal_gx(nb_tensor *gy, nb_tensor *w, int d, int64_t C);
static nb_tensor *causal_gw(nb_tensor *gy, nb_tensor *x, int d, int64_t K);
static nb_tensor *causal_f(nb_tensor *x, nb_tensor *w, nb_tensor *b, int d);

static void causal_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    int d = (int)n->i[0];
    if (x->requires_grad) nb__accum(x, causal_gx(g, w, d, x->shape[1]));
    if (w->requires_grad) nb__accum(w, causal_gw(g, x, d, w->shape[2]));
    if (b && b->requires_grad) nb__accum(b, nb_sum(g, (int[]){0, 2}, 2, false));
}
static const nb_op op_causal = {"conv1d_causal", causal_bw};

static nb_tensor *causal_f(nb_tensor *x, nb_tensor *w, nb_tensor *b, int d) {
    int64_t N = x->shape[0], C = x->shape[1], L = x->shape[2], O = w->shape[0], K = w->shape[2];
    if (w->shape[1] != C) nb__shape_fatal("conv1d_causal", x, w, "input channels differ");
    if (b && (b->ndim != 1 || b->shape[0] != O)) nb__shape_fatal("conv1d_causal", b, w, "bias must be [O]");
    nb_tensor *y = nb__new(3, (int64_t[]){N, O, L});
    float *wt = taps(w);
    for (int64_t n = 0; n < N; n++) {
        float *yn = y->data + n * O * L;
        const float *xn = x->data + n * C * L;
        for (int64_t o = 0; o < O; o++) {
            float v = b ? b->data[o] : 0.f;
            for (int64_t t = 0; t < L; t++) yn[o * L + t] = v;
        }
        for (int64_t k = 0; k < K; k++) {
            int64_t s = (K - 1 - k) * d;
            if (s >= L) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)(L - s), (int)C, 1.f, wt + k * O * C,
                        (int)C, xn, (int)L, 1.f, yn + s, (int)L);
        }
    }
    nb_node *nd = nb__record(&op_causal, y, b ? (nb_tensor *[]){x, w, b} : (nb_tensor *[]){x, w}, b ? 3 : 2);
    if (nd) nd->i[0] = d;
    return y;
}

/* G(gy, w)[n, c, t] = sum_{o,k} w[o, c, k] gy[n, o, t + (K-1-k) d] */
static void gx_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *gy = n->in[0], *w = n->in[1];
    int d = (int)n->i[0];
    if (gy->requires_grad) nb__accum(gy, causal_f(u, w, NULL, d));
    if (w->requires_grad) nb__accum(w, causal_gw(gy, u, d, w->shape[2]));
}
static const nb_op op_gx = {"conv1d_causal_grad_input", gx_bw};

static nb_tensor *causal_gx(nb_tensor *gy, nb_tensor *w, int d, int64_t C) {
    int64_t N = gy->shape[0], O = gy->shape[1], L = gy->shape[2], K = w->shape[2];
    nb_tensor *gx = nb__new(3, (int64_t[]){N, C, L});
    float *wt = taps(w);
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < K; j++) {
            /* the unshifted tap (k = K - 1) first: it covers every column, so
             * it overwrites (beta 0) and the others add */
            int64_t k = K - 1 - j, s = j * (int64_t)d;
            if (s >= L) continue;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)C, (int)(L - s), (int)O, 1.f, wt + k * O * C,
                        (int)C, gy->data + n * O * L + s, (int)L, j ? 1.f : 0.f, gx->data + n * C * L, (int)L);
        }
    nb_node *nd = nb__record(&op_gx, gx, (nb_tensor *[]){gy, w}, 2);
    if (nd) nd->i[0] = d;
    return gx;
}

/* H(gy, x)[o, c, k] = sum_{n,t} gy[n, o, t] x[n, c, t - (K-1-k) d] */
static void gw_bw(nb_node *n, nb_tensor *v) {
    nb_tensor *gy = n->in[0], *x = n->in[1];
    int d = (int)n->i[0];
    if (gy->requires_grad) nb__accum(gy, causal_f(x, v, NULL, d));
    if (x->requires_grad) nb__accum(x, causal_gx(gy, v, d, x->shape[1]));
}
static const nb_op op_gw = {"conv1d_causal_grad_weight", gw_bw};

static nb_tensor *causal_gw(nb_tensor *gy, nb_tensor *x, int d, int64_t K) {
    int64_t N = gy->shape[0], O = gy->shape[1], L = gy->shape[2], C = x->shape[1];
    float *acc = nb_arena_alloc(sizeof(float) * (size_t)(K * O * C));
    memset(acc, 0, sizeof(float) * (size_t)(K * O * C));
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++) {
            int64_t s = (K - 1 - k) * d;
            if (s >= L) continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)O, (int)C, (int)(L - s), 1.f,
                        gy->data + n * O * L + s, (int)L, x->data + n * C * L, (int)L, 1.f, acc + k * O * C, (int)C);
        }
    nb_tensor *gw = nb__new(3, (int64_t[]){O, C, K});
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < K; k++) gw->data[(o * C + c) * K + k] = acc[(k * O + o) * C + c];
    nb_node *nd = nb__record(&op_gw, gw, (nb_tensor *[]){gy, x}, 2);
    if (nd) nd->i[0] = d;
    return gw;
}

nb_tensor *nb_conv1d_causal(nb_tensor *x, nb_tensor *w, nb_tensor *b, int dilation) {
    if (x->ndim != 3 || w->ndim != 3) nb__shape_fatal("conv1d_causal", x, w, "input must be [N, C, L] and weight [O, C, K]");
    if (dilation < 1) nb_fatal("conv1d_causal", "dilation %d must be >= 1", dilation);
    return causal_f(x, w, b, dilation);
}
