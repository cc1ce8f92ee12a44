/* conv_causal.c — dilated causal 1-D convolution for long signals (WaveNet's
 * layers, notes §4.5): out[n, o, t] = b[o] + sum_{c,k} w[o, c, k]
 * x[n, c, t - (K-1-k) d], zero before the start. nb_conv1d computes the same
 * through a padded copy of the signal and image kernels built for 2-D
 * pictures; here the products run straight on the unpadded [C, L] rows. The
 * forward and the input gradient are thin (O and C of 32-256 against 16000
 * samples), and a GEMM library packs the long operand for each: the direct
 * kernel of conv_causal_kernel.c computes them with the bias, all taps and an
 * added tensor (the residual and skip sums, nb__conv1d_causal_add, or a
 * gradient already gathered) in one pass over the output. The weight
 * gradient, a long reduction over t, has an AVX-512 kernel there too, and
 * otherwise runs on OpenBLAS (one GEMM per tap on a shifted column window,
 * ldb = L). The three products are ops of their own, each the adjoint of the
 * others (all bilinear):
 *   y  = F(x, w)                gx = G(gy, w)            gw = H(gy, x)
 *   G's backward: dgy = F(U, w),  dw = H(gy, U)
 *   H's backward: dgy = F(x, V),  dx = G(gy, V)
 * so gradients of any order stay on the tape. */
#include "../core/internal.h"
#include "conv_causal_kernel.h"
#include <cblas.h>

/* Taps of w [O, C, K] as K contiguous [O, C] matrices (arena), or with
 * trans as K [C, O] matrices (the input gradient's). */
static float *taps(const nb_tensor *w, bool trans) {
    int64_t O = w->shape[0], C = w->shape[1], K = w->shape[2];
    float *t = nb_arena_alloc(sizeof(float) * (size_t)(O * C * K));
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < K; k++)
                t[trans ? (k * C + c) * O + o : (k * O + o) * C + c] = w->data[(o * C + c) * K + k];
    return t;
}

/* Where tap k reads, relative to the output position: -(K-1-k) d for the
 * forward (the past), +(K-1-k) d for the input gradient (the future). */
static int64_t *tap_offsets(int64_t K, int d, int sign) {
    int64_t *off = nb_arena_alloc(sizeof(int64_t) * (size_t)K);
    for (int64_t k = 0; k < K; k++) off[k] = sign * (K - 1 - k) * (int64_t)d;
    return off;
}

static nb_tensor *causal_gx(nb_tensor *gy, nb_tensor *w, int d, int64_t C, nb_tensor *acc);
static nb_tensor *causal_gw(nb_tensor *gy, nb_tensor *x, int d, int64_t K);
static nb_tensor *causal_f(nb_tensor *x, nb_tensor *w, nb_tensor *b, int d, nb_tensor *r);

/* x's gradient += G(g, w), or F(g, w) with fwd: where x already has a
 * gradient of its shape, the kernel adds the product to it in the same pass
 * (one op, r + G or r + F, instead of a product and a sum). */
static void accum_product(nb_tensor *x, nb_tensor *g, nb_tensor *w, int d, bool fwd) {
    if (!x->requires_grad) return;
    nb_tensor *prev = x->tgrad && nb_same_shape(x->tgrad, x) ? x->tgrad : NULL;
    nb_tensor *p = fwd ? causal_f(g, w, NULL, d, prev) : causal_gx(g, w, d, x->shape[1], prev);
    if (prev) x->tgrad = p;
    else nb__accum(x, p);
}

/* Inputs x, w, [b], [r]; i[0] the dilation, i[1] whether r (the fused
 * residual sum) is there. */
static void causal_bw(nb_node *n, nb_tensor *g) {
    int nin = n->nin - (int)n->i[1];
    nb_tensor *x = n->in[0], *w = n->in[1], *b = nin > 2 ? n->in[2] : NULL, *r = n->i[1] ? n->in[nin] : NULL;
    int d = (int)n->i[0];
    if (r) nb__accum(r, g);
    accum_product(x, g, w, d, false);
    if (w->requires_grad) nb__accum(w, causal_gw(g, x, d, w->shape[2]));
    if (b && b->requires_grad) nb__accum(b, nb_sum(g, (int[]){0, 2}, 2, false));
}
static const nb_op op_causal = {"conv1d_causal", causal_bw};
static const nb_op op_causal_add = {"conv1d_causal_add", causal_bw};

/* F(x, w) + b, plus r when given ([N, O, L]). */
static nb_tensor *causal_f(nb_tensor *x, nb_tensor *w, nb_tensor *b, int d, nb_tensor *r) {
    int64_t N = x->shape[0], C = x->shape[1], L = x->shape[2], O = w->shape[0], K = w->shape[2];
    if (w->shape[1] != C) nb__shape_fatal("conv1d_causal", x, w, "input channels differ");
    if (b && (b->ndim != 1 || b->shape[0] != O)) nb__shape_fatal("conv1d_causal", b, w, "bias must be [O]");
    if (r && (r->ndim != 3 || r->shape[0] != N || r->shape[1] != O || r->shape[2] != L))
        nb__shape_fatal("conv1d_causal_add", r, x, "the added tensor must be [N, O, L]");
    nb_tensor *y = nb__new(3, (int64_t[]){N, O, L});
    const float *wt = taps(w, false);
    const int64_t *off = tap_offsets(K, d, -1);
    for (int64_t n = 0; n < N; n++)
        nb__causal_rows(y->data + n * O * L, r ? r->data + n * O * L : NULL, b ? b->data : NULL, wt, off, (int)K, O,
                        C, x->data + n * C * L, L, L, L);
    nb_tensor *in[4] = {x, w};
    int nin = 2;
    if (b) in[nin++] = b;
    if (r) in[nin++] = r;
    nb_node *nd = nb__record(r ? &op_causal_add : &op_causal, y, in, nin);
    if (nd) nd->i[0] = d, nd->i[1] = r != NULL;
    return y;
}

/* G(gy, w)[n, c, t] = sum_{o,k} w[o, c, k] gy[n, o, t + (K-1-k) d], plus acc
 * when given. Inputs gy, w, [acc]. */
static void gx_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *gy = n->in[0], *w = n->in[1], *acc = n->nin > 2 ? n->in[2] : NULL;
    int d = (int)n->i[0];
    if (acc) nb__accum(acc, u);
    accum_product(gy, u, w, d, true);
    if (w->requires_grad) nb__accum(w, causal_gw(gy, u, d, w->shape[2]));
}
static const nb_op op_gx = {"conv1d_causal_grad_input", gx_bw};
static const nb_op op_gx_add = {"conv1d_causal_grad_input_add", gx_bw};

static nb_tensor *causal_gx(nb_tensor *gy, nb_tensor *w, int d, int64_t C, nb_tensor *acc) {
    int64_t N = gy->shape[0], O = gy->shape[1], L = gy->shape[2], K = w->shape[2];
    nb_tensor *gx = nb__new(3, (int64_t[]){N, C, L});
    const float *wt = taps(w, true);
    const int64_t *off = tap_offsets(K, d, 1);
    for (int64_t n = 0; n < N; n++)
        nb__causal_rows(gx->data + n * C * L, acc ? acc->data + n * C * L : NULL, NULL, wt, off, (int)K, C, O,
                        gy->data + n * O * L, L, L, L);
    nb_node *nd = nb__record(acc ? &op_gx_add : &op_gx, gx, (nb_tensor *[]){gy, w, acc}, acc ? 3 : 2);
    if (nd) nd->i[0] = d;
    return gx;
}

/* H(gy, x)[o, c, k] = sum_{n,t} gy[n, o, t] x[n, c, t - (K-1-k) d] */
static void gw_bw(nb_node *n, nb_tensor *v) {
    nb_tensor *gy = n->in[0], *x = n->in[1];
    int d = (int)n->i[0];
    accum_product(gy, x, v, d, true);
    accum_product(x, gy, v, d, false);
}
static const nb_op op_gw = {"conv1d_causal_grad_weight", gw_bw};

static nb_tensor *causal_gw(nb_tensor *gy, nb_tensor *x, int d, int64_t K) {
    int64_t N = gy->shape[0], O = gy->shape[1], L = gy->shape[2], C = x->shape[1];
    float *acc = nb_arena_alloc(sizeof(float) * (size_t)(K * O * C));
    if (!nb__causal_wgrad(acc, gy->data, O, x->data, C, tap_offsets(K, d, 1), (int)K, N, L)) {
        memset(acc, 0, sizeof(float) * (size_t)(K * O * C));
        for (int64_t n = 0; n < N; n++)
            for (int64_t k = 0; k < K; k++) {
                int64_t s = (K - 1 - k) * d;
                if (s >= L) continue;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)O, (int)C, (int)(L - s), 1.f,
                            gy->data + n * O * L + s, (int)L, x->data + n * C * L, (int)L, 1.f, acc + k * O * C,
                            (int)C);
            }
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
    /* On the GPU: the general convolution it specializes (nabla.h), whose
     * im2col and cuBLAS path is there. */
    if (NB_DEVICE("conv1d_causal", x, w, b) == NB_CUDA) return nb_conv1d(x, w, b, 1, 0, dilation, true);
    if (x->ndim != 3 || w->ndim != 3) nb__shape_fatal("conv1d_causal", x, w, "input must be [N, C, L] and weight [O, C, K]");
    if (dilation < 1) nb_fatal("conv1d_causal", "dilation %d must be >= 1", dilation);
    return causal_f(x, w, b, dilation, NULL);
}

nb_tensor *nb__conv1d_causal_add(nb_tensor *r, nb_tensor *x, nb_tensor *w, nb_tensor *b, int dilation) {
    if (NB_DEVICE("conv1d_causal_add", r, x, w, b) == NB_CUDA) return nb_add(r, nb_conv1d(x, w, b, 1, 0, dilation, true));
    if (x->ndim != 3 || w->ndim != 3) nb__shape_fatal("conv1d_causal_add", x, w, "input must be [N, C, L] and weight [O, C, K]");
    if (dilation < 1) nb_fatal("conv1d_causal_add", "dilation %d must be >= 1", dilation);
    return causal_f(x, w, b, dilation, r);
}
