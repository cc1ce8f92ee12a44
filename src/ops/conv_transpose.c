/* conv_transpose.c — 1-D transposed convolution (PyTorch's ConvTranspose1d),
 * the learned upsampler of WaveNet's local conditioning (notes §4.5):
 *   y[n, o, t s + k - p] += x[n, c, t] w[c, o, k]   (+ b[o]),
 * length (T - 1) s + K - 2p. Written with differentiable ops, so gradients
 * and Hessian-vector products of any order come from theirs:
 *   - K = s, p = 0 (non-overlapping frames, the upsampler's usual shape):
 *     one matrix product [N, T, C] x [C, O K] and a permutation;
 *   - otherwise: insert s - 1 zeros between the input samples and run
 *     nb_conv1d with the kernel flipped and padded by K - 1 - p. */
#include "../core/internal.h"

/* w [C, O, K] -> [O, C, K] with the taps reversed. */
static nb_tensor *flip_kernel(nb_tensor *w) {
    int64_t K = w->shape[2];
    nb_tensor *kfirst = nb_permute(w, (int[]){2, 1, 0}); /* [K, O, C] */
    int32_t *rev = nb_arena_alloc(sizeof(int32_t) * (size_t)K);
    for (int64_t k = 0; k < K; k++) rev[k] = (int32_t)(K - 1 - k);
    nb_tensor *flipped = nb_gather_rows(kfirst, rev, K);
    return nb_permute(flipped, (int[]){1, 2, 0}); /* [O, C, K] */
}

nb_tensor *nb_conv_transpose1d(nb_tensor *x, nb_tensor *w, nb_tensor *b, int stride, int pad) {
    nb_device dev = NB_DEVICE("conv_transpose1d", x, w, b); /* ops of both devices: it runs where x is */
    if (x->ndim != 3 || w->ndim != 3 || x->shape[1] != w->shape[0])
        nb__shape_fatal("conv_transpose1d", x, w, "input must be [N, C, T] and weight [C, O, K]");
    int64_t N = x->shape[0], C = x->shape[1], T = x->shape[2], O = w->shape[1], K = w->shape[2];
    /* 0 means 1, as conv2d's stride; a negative one was taken as 1 silently. */
    if (stride < 0) nb_fatal("conv_transpose1d", "stride %d must be >= 1 (0 means 1)", stride);
    int s = stride > 0 ? stride : 1;
    if (pad < 0 || pad > K - 1) nb_fatal("conv_transpose1d", "padding %d must be in [0, K - 1 = %lld]", pad, (long long)(K - 1));
    if (b && (b->ndim != 1 || b->shape[0] != O)) nb__shape_fatal("conv_transpose1d", b, w, "bias must be [O]");
    if (T < 1) nb_fatal("conv_transpose1d", "empty input");
    if (K == s && pad == 0) {
        nb_tensor *xt = nb_permute(x, (int[]){0, 2, 1});                             /* [N, T, C] */
        nb_tensor *m = nb_matmul(xt, nb_reshape(w, 2, (int64_t[]){C, O * K}));       /* [N, T, O K] */
        nb_tensor *p = nb_permute(nb_reshape(m, 4, (int64_t[]){N, T, O, K}), (int[]){0, 2, 1, 3});
        nb_tensor *y = nb_reshape(p, 3, (int64_t[]){N, O, T * K});
        return b ? nb_add(y, nb_reshape(b, 2, (int64_t[]){O, 1})) : y;
    }
    nb_tensor *xz = x;
    if (s > 1) {
        nb_tensor *x4 = nb_reshape(x, 4, (int64_t[]){N, C, T, 1});
        nb_tensor *z = nb__new_on(dev, 4, (int64_t[]){N, C, T, s - 1});
        nb_fill(z, 0.f);
        nb_tensor *cat = nb_concat((nb_tensor *[]){x4, z}, 2, 3);
        xz = nb_slice(nb_reshape(cat, 3, (int64_t[]){N, C, T * s}), 2, 0, (T - 1) * s + 1);
    }
    return nb_conv1d(xz, flip_kernel(w), b, 1, (int)(K - 1 - pad), 1, false);
}
