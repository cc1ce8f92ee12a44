/* backend.h — the CUDA backend as the core sees it: plain C functions over
 * device pointers. src/core/device.c and the ops call these only for tensors
 * whose device is NB_CUDA. They are implemented in the .cu files of src/cuda, compiled by
 * nvcc (make CUDA=1) or, so that the kernels' logic is tested on any machine,
 * by the host C++ compiler against the emulator src/cuda/emu.h (make CUDA=emu).
 *
 * Conventions: n counts floats; every pointer argument is device memory
 * unless its name ends in _host; row-major throughout. A failed launch or
 * copy is a bug or a lost device, never bad user data: it ends the program
 * through nb_fatal naming the kernel (the shapes were checked by the op).
 * Reductions add in an order fixed by their sizes alone (no atomics), so the
 * same inputs give the same bits on every run on the same GPU. */
#ifndef NB_CUDA_BACKEND_H
#define NB_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- device and memory --------------------------------------------------- */

/* 0 when the first CUDA device is ready (a second call is free); else -1
 * with why (no device, driver too old, ...) written into why[0..n). */
int nb__gpu_init(char *why, size_t n);
/* The device's name ("NVIDIA H100 80GB HBM3"); "" before nb__gpu_init. */
const char *nb__gpu_name(void);
/* Device memory, 256-byte aligned; NULL when the device is out of memory. */
void *nb__gpu_alloc(size_t bytes);
void nb__gpu_free(void *p); /* NULL is fine */
void nb__gpu_to_device(void *dst, const void *src_host, size_t bytes);
void nb__gpu_to_host(void *dst_host, const void *src, size_t bytes);
void nb__gpu_copy(void *dst, const void *src, size_t bytes); /* device to device */

/* --- elementwise ---------------------------------------------------------- */

void nb__gpu_fill(float *x, int64_t n, float v);

typedef enum { NB_GPU_ADD, NB_GPU_SUB, NB_GPU_MUL, NB_GPU_DIV } nb_gpu_binop;
/* o[i] = a[ia] op b[ib] for i walking the nd dims d[0..nd) row-major
 * (nd <= 8, prod d elements), ia = sum_k idx_k sa[k], ib = sum_k idx_k sb[k]
 * (stride 0 along a broadcast dim). */
void nb__gpu_binary(nb_gpu_binop op, float *o, const float *a, const float *b, int nd, const int64_t *d,
                    const int64_t *sa, const int64_t *sb);

typedef enum {
    NB_GPU_NEG,     /* -v */
    NB_GPU_EXP,     /* e^v */
    NB_GPU_LOG,     /* ln v */
    NB_GPU_SQRT,    /* sqrt v */
    NB_GPU_ABS,     /* |v| */
    NB_GPU_SIGMOID, /* 1 / (1 + e^-v), stable for large |v| */
    NB_GPU_TANH,    /* tanh v */
    NB_GPU_RECT,    /* eq. 20: v < 0 ? p v : v (ReLU p = 0, leaky ReLU p > 0; NaN passes through) */
    NB_GPU_SCALE,   /* p v */
    NB_GPU_SHIFT,   /* v + p */
    NB_GPU_SQUARE,  /* v v */
    NB_GPU_SIGN,    /* 1, 0 or -1 as v > 0, v = 0 or v < 0 (0 for NaN, as nb_sign) */
    NB_GPU_POW,     /* v^p (powf) */
    NB_GPU_LOG1P,   /* ln(1 + p v) (log1pf), μ-law's numerator with p = μ (eq. 31) */
} nb_gpu_unop;
void nb__gpu_unary(nb_gpu_unop op, float *o, const float *x, int64_t n, float p);

/* The gradients below take g whole: the graph never hands an op on the GPU
 * a uniform stand-in (src/core/graph.c). */
/* o = g (x > 0 ? 1 : a), the gradient of eq. 20 with a fixed slope. */
void nb__gpu_rect_grad(float *o, const float *g, const float *x, int64_t n, float a);
/* o = g y (1 - y) (sigmoid') or g (1 - y y) (tanh', tanh true). */
void nb__gpu_sq_grad(float *o, const float *g, const float *y, int64_t n, bool tanh);
/* y[i] += x[i]. */
void nb__gpu_accum(float *y, const float *x, int64_t n);
/* WaveNet's gated unit (eq. 32) on x [N, 2, M] (a = x[:, 0], b = x[:, 1]):
 * o [N, M] = tanh(a) sigmoid(b); its gradient o [N, 2, M] = [g (1 - t^2) s,
 * g t s (1 - s)] for g [N, M] (t = tanh a, s = sigmoid b). */
void nb__gpu_gated(float *o, const float *x, int64_t N, int64_t M);
void nb__gpu_gated_grad(float *o, const float *x, const float *g, int64_t N, int64_t M);

/* --- layout ---------------------------------------------------------------- */

/* o[i] = x[ix], i walking the nd dims d row-major (nd <= 8), ix = sum_k
 * idx_k s[k]: permutations, broadcasts (s = 0) and slices (x offset). */
void nb__gpu_strided_copy(float *o, const float *x, int nd, const int64_t *d, const int64_t *s);
/* o[r, :] = x[idx[r], :] for r < rows, each row cols floats; idx on the device. */
void nb__gpu_gather_rows(float *o, const float *x, const int32_t *idx, int64_t rows, int64_t cols);
/* o[r * o_stride + c] = x[r * x_stride + c] for r < rows, c < cols: a block
 * of rows into or out of a wider matrix (concat's pieces, slice's adjoint)
 * in one launch. */
void nb__gpu_copy_rows(float *o, int64_t o_stride, const float *x, int64_t x_stride, int64_t rows, int64_t cols);

/* --- reductions ------------------------------------------------------------ */

/* x viewed as [outer, mid, inner]: o[p, q] = sum_m x[p, m, q] (o has outer *
 * inner floats). Adds in double in an order fixed by the sizes, rounded once,
 * as the CPU's sums. */
void nb__gpu_sum_mid(float *o, const float *x, int64_t outer, int64_t mid, int64_t inner);
/* out[0] = sum of x[i]^2 (gradient clipping's norm), fixed order. */
void nb__gpu_sumsq(float *out, const float *x, int64_t n);

/* --- matrix products (cuBLAS) -------------------------------------------- */

/* For b < batch: C_b = alpha op(A_b) op(B_b) + beta C_b, row-major; op(A) is
 * m x k (A is k x m when ta), op(B) is k x n (B is n x k when tb); lda, ldb,
 * ldc are row strides in floats, at least a row's length; A_b = a + b *
 * stride_a (stride 0: one A shared by the batch), likewise B_b; stride_c must
 * not be 0 when batch > 1 (the products would race for one C). beta = 0
 * ignores C's contents (NaN included). */
void nb__gpu_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                  int64_t stride_c, int64_t batch);

/* --- softmax and cross-entropy (rows of [rows, cols]) --------------------- */

/* o = softmax(x) along the C axis of x viewed as [outer, C, inner] (rows of
 * [outer, C] when inner is 1), or log-softmax when log. */
void nb__gpu_softmax(float *o, const float *x, int64_t outer, int64_t C, int64_t inner, bool log);
/* The vector-Jacobian products: softmax (y = softmax x): o = y (g - sum(g y));
 * log-softmax (y = log_softmax x): o = g - e^y sum(g). Sums per row. */
void nb__gpu_softmax_grad(float *o, const float *y, const float *g, int64_t rows, int64_t cols, bool log);
/* eq. 10.12: per row m[r] = max, l[r] = ln sum_c e^(x[r,c] - m[r]); loss[0] =
 * (1/rows) sum_r (m[r] + l[r] - x[r, y[r]]). Labels y on the device, already
 * checked to lie in [0, cols). */
void nb__gpu_cross_entropy(float *loss, float *m, float *l, const float *x, const int32_t *y, int64_t rows,
                           int64_t cols);
/* eq. 10.18: d[r, c] = (e^((x[r,c] - m[r]) - l[r]) - [c == y[r]]) g[0] / rows. */
void nb__gpu_cross_entropy_grad(float *d, const float *x, const float *m, const float *l, const int32_t *y,
                                const float *g, int64_t rows, int64_t cols);

/* --- optimizers (in place; the same rules as src/optim/optim.c) ----------- */

/* SGD, PyTorch's rule with dampening 0: d = g + wd w; v <- mu v + d (when v
 * is not NULL); w <- w - lr (v ? (nesterov ? d + mu v : v) : d). */
void nb__gpu_sgd(float *w, const float *g, float *v, int64_t n, float lr, float wd, float mu, bool nesterov);
/* Adam / AdamW: gi = g + l2 w; m <- b1 m + c1 gi; v <- b2 v + c2 gi^2;
 * w <- shrink w - step_size m / (sqrt(v) / sqrt_bc2 + eps). */
void nb__gpu_adam(float *w, const float *g, float *m, float *v, int64_t n, float b1, float b2, float c1, float c2,
                  float step_size, float sqrt_bc2, float eps, float l2, float shrink);

/* --- convolution (src/ops/conv.c drives these and the GEMMs) -------------- */

/* One 2-D convolution's geometry, as conv.c's: images [C, H, W], a kernel of
 * KH x KW taps, output [OH, OW]; strides sh, sw, dilations dh, dw, and the
 * padding at the top (pt) and left (pl); the bottom and right padding show
 * only in OH and OW. An image's column matrix is [K, P], K = C KH KW and
 * P = OH OW. */
typedef struct {
    int64_t C, H, W, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw;
} nb_gpu_conv;
/* im2col of n images x [n, C, H, W] into col [n, K, P]:
 * col[i, (c KH + kh) KW + kw, oh OW + ow] = x[i, c, oh sh - pt + kh dh, ow sw - pl + kw dw],
 * 0 where that lies in the padding. */
void nb__gpu_im2col(float *col, const float *x, int64_t n, const nb_gpu_conv *g);
/* Its adjoint as a gather: x [n, C, H, W] = for each element, the sum of the
 * entries of col [n, K, P] that im2col took from it, added in tap order
 * (kh, then kw); every element is written (0 where no tap reads it). */
void nb__gpu_col2im(float *x, const float *col, int64_t n, const nb_gpu_conv *g);

/* --- pooling and indexing ------------------------------------------------- */

/* The geometry of pooling over k x k windows: planes (N C) images of H x W
 * pooled alike into planes x OH x OW, stride s, padding p (p <= k / 2, so
 * every window holds an element of the image). Window (oh, ow) covers rows
 * oh s - p .. oh s - p + k - 1 and the same columns, clipped to the image. */
typedef struct {
    int64_t planes, H, W, OH, OW, k, s, p;
} nb_gpu_pool;
/* y[o] = the max of window o: the first maximum in row-major order, or the
 * first NaN if the window holds one; padding is never chosen (-inf). When idx
 * is not NULL, idx[o] = the flat index in x of that element. */
void nb__gpu_maxpool(float *y, int64_t *idx, const float *x, const nb_gpu_pool *g);
/* dx [planes, H, W]: dx[i] = the sum of g[o] over the windows o with idx[o]
 * == i, added in row-major order of o (0 where none); every element is
 * written. The adjoint of nb__gpu_gather_at(., ., idx) as a gather, so
 * overlapping windows need no atomics. */
void nb__gpu_maxpool_scatter(float *dx, const float *g, const int64_t *idx, const nb_gpu_pool *q);
/* y[o] = (the sum of window o) / k^2: padding counts as 0 in the sum and in
 * the divisor (count_include_pad). */
void nb__gpu_avgpool(float *y, const float *x, const nb_gpu_pool *g);
/* Its adjoint: dx[i] = the sum of g[o] / k^2 over the windows o that cover
 * i, in row-major order of o; every element is written. */
void nb__gpu_avgpool_adjoint(float *dx, const float *g, const nb_gpu_pool *q);
/* x viewed as [outer, mid, inner]: o[p, q] = the max over m of x[p, m, q],
 * the first NaN if any, else the first maximum; when pos is not NULL,
 * pos[p, q] = its flat index in x. */
void nb__gpu_max_mid(float *o, int64_t *pos, const float *x, int64_t outer, int64_t mid, int64_t inner);
/* o[i] = x[pos[i]] for i < n. */
void nb__gpu_gather_at(float *o, const float *x, const int64_t *pos, int64_t n);
/* o[pos[i]] = g[i] for i < n; the positions must be distinct; the rest of o
 * is left as it was. */
void nb__gpu_put_at(float *o, const float *g, const int64_t *pos, int64_t n);
/* o [rows, cols]: o[r, :] = the sum of x[from[j], :] for j in [start[r],
 * start[r + 1]), added in that order from 0; every row is written. (The
 * adjoint of gather_rows: the op lists each row's sources, ascending.) */
void nb__gpu_scatter_rows(float *o, const float *x, const int64_t *start, const int64_t *from, int64_t rows,
                          int64_t cols);
/* o = x > 0 ? hi : lo (lo for NaN). */
void nb__gpu_step(float *o, const float *x, int64_t n, float lo, float hi);
/* o = x < 0 ? a[(i / inner) % C] x : x, a learned slope per channel (C = 1:
 * one shared); NaN passes through. */
void nb__gpu_prelu(float *o, const float *x, const float *a, int64_t n, int64_t C, int64_t inner);

/* --- recurrent cells (src/ops/recurrent.c drives these and the GEMMs) ----- */

/* The fused recurrent layer's kernels, one launch per time step, each the
 * CPU's step of the same name element for element. Sizes: batch B, hidden H,
 * G gates (1 rnn, 4 lstm, 3 gru); [B, H] arrays are one step's states, [B, G
 * H] ones its gates. bx[j] = b_ih[j] (+ b_hh[j] when sum), bh[j] = b_hh[j],
 * a NULL bias counting as zeros (the RNN and LSTM use only the sum). */
void nb__gpu_rnn_bias(float *bx, float *bh, const float *b_ih, const float *b_hh, int64_t n, bool sum);
/* Forward, after g = h_{t-1} W_hh^T [B, G H]; xw [B, G H] the step's input
 * projection. eq. 10.8: h = tanh(g + xw + bs). */
void nb__gpu_rnn_fwd(int64_t B, int64_t H, const float *xw, const float *bs, const float *g, float *h);
/* LSTM (gates i f g o): z holds g on entry and the activations on return;
 * c = f cprev + i g, tc = tanh(c), h = o tc. */
void nb__gpu_lstm_fwd(int64_t B, int64_t H, const float *xw, const float *bs, float *z, const float *cprev, float *h,
                      float *c, float *tc);
/* GRU (gates r z n): zg holds g on entry and r z n on return; hn = g_n +
 * bh_n; h = n + z (hprev - n). */
void nb__gpu_gru_fwd(int64_t B, int64_t H, const float *xw, const float *bx, const float *bh, float *zg,
                     const float *hprev, float *hn, float *h);
/* Backward (eq. 10.18-10.23), with dL/dh_t = go + dnext (dnext: from step
 * t + 1). RNN: da = dL/dh_t (1 - h^2) [B, H]. */
void nb__gpu_rnn_bwd(int64_t B, int64_t H, const float *go, const float *dnext, const float *h, float *da);
/* LSTM: dz [B, 4H] from the saved activations act and tc = tanh(c_t); goc
 * and dcn the outer and carried dL/dc_t; dcn becomes dL/dc_{t-1}. */
void nb__gpu_lstm_bwd(int64_t B, int64_t H, const float *goh, const float *goc, const float *dhn, float *dcn,
                      const float *act, const float *tc, const float *cprev, float *dz);
/* GRU: dzx (input side) and dzh (hidden side) [B, 3H], which differ in the n
 * gate; dnext becomes dL/dh_{t-1}'s direct part dh z (dzh W_hh is added by a
 * GEMM). */
void nb__gpu_gru_bwd(int64_t B, int64_t H, const float *go, float *dnext, const float *act, const float *hn,
                     const float *hprev, float *dzx, float *dzh);

#ifdef __cplusplus
}
#endif
#endif
