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
/* Waits for all queued work (kernels run asynchronously on one stream). */
void nb__gpu_sync(void);

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
} nb_gpu_unop;
void nb__gpu_unary(nb_gpu_unop op, float *o, const float *x, int64_t n, float p);

/* o = (add ? o : 0) + g (x > 0 ? 1 : a), the gradient of eq. 20 with a fixed
 * slope; gu: g holds one value that stands for every element. */
void nb__gpu_rect_grad(float *o, const float *g, bool gu, const float *x, int64_t n, float a, bool add);
/* o = (add ? o : 0) + g y (1 - y) (sigmoid') or g (1 - y y) (tanh', tanh true). */
void nb__gpu_sq_grad(float *o, const float *g, const float *y, int64_t n, bool tanh, bool add);
/* y[i] += x[i], or y[i] += x[0] for every i when xu. */
void nb__gpu_accum(float *y, const float *x, bool xu, int64_t n);

/* --- layout ---------------------------------------------------------------- */

/* o[i] = x[ix], i walking the nd dims d row-major (nd <= 8), ix = sum_k
 * idx_k s[k]: permutations, broadcasts (s = 0) and slices (x offset). */
void nb__gpu_strided_copy(float *o, const float *x, int nd, const int64_t *d, const int64_t *s);
/* o[r, :] = x[idx[r], :] for r < rows, each row cols floats; idx on the device. */
void nb__gpu_gather_rows(float *o, const float *x, const int32_t *idx, int64_t rows, int64_t cols);

/* --- reductions ------------------------------------------------------------ */

/* x viewed as [outer, mid, inner]: o[p, q] = sum_m x[p, m, q] (o has outer *
 * inner floats). Accumulates in float with a fixed tree order. */
void nb__gpu_sum_mid(float *o, const float *x, int64_t outer, int64_t mid, int64_t inner);
/* out[0] = sum of x[i]^2 (gradient clipping's norm), fixed order. */
void nb__gpu_sumsq(float *out, const float *x, int64_t n);

/* --- matrix products (cuBLAS) -------------------------------------------- */

/* For b < batch: C_b = alpha op(A_b) op(B_b) + beta C_b, row-major; op(A) is
 * m x k (A is k x m when ta), op(B) is k x n (B is n x k when tb); lda, ldb,
 * ldc are row strides in floats; A_b = a + b * stride_a (stride 0: one A
 * shared by the batch), likewise B_b and C_b. beta = 0 ignores C's contents
 * (NaN included). */
void nb__gpu_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                  int64_t stride_c, int64_t batch);

/* --- softmax and cross-entropy (rows of [rows, cols]) --------------------- */

/* o = softmax(x) along each row, or log-softmax when log. */
void nb__gpu_softmax(float *o, const float *x, int64_t rows, int64_t cols, bool log);
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

#ifdef __cplusplus
}
#endif
#endif
