/* softmax.cu — softmax and log-softmax along the rows of [rows, cols],
 * their vector-Jacobian products, and the cross-entropy loss of eq. 10.12
 * with its gradient (eq. 10.18).
 *
 * A row is one block's (blocks loop over rows when there are more than a
 * grid's worth): the block finds the row's max, then its sum of exponentials,
 * each by a tree in shared memory (blockreduce.h), then writes the row. The
 * sums are in double as on the CPU, and their order depends only on cols, so
 * a row's result is the same bits on every run. Writing comes after the
 * block's last barrier on that row, so o may be x (or g): every read of the
 * row is done before any write. */
#include "common.h"
#include "blockreduce.h"
#include <math.h>

/* Rows per launch: blocks loop over the rest. */
static unsigned row_blocks(int64_t rows) { return (unsigned)(rows < 65535 ? rows : 65535); }

/* m = max of the row, returned to every thread of the block. */
static __device__ inline float row_max(const float *xr, int64_t cols, double *sh) {
    float m = -INFINITY;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = xr[c] > m ? xr[c] : m;
    return nb__gpu_block_max(m, sh);
}

/* s = sum e^(x - m) over the row; each term <= 1 (the max's is 1), so s is in
 * [1, cols] and nothing overflows even for logits of 1e4. */
static __device__ inline double row_sumexp(const float *xr, int64_t cols, float m, double *sh) {
    double s = 0;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(xr[c] - m);
    return nb__gpu_block_sum(s, sh);
}

/* softmax = e^(x - m) / s, log_softmax = (x - m) - log s (not x - (m + log s),
 * which would round at the scale of m and lose the small results). The log of
 * the double sum is taken in double, as the CPU does, once per row. */
static __global__ void softmax_kernel(float *o, const float *x, int64_t rows, int64_t cols, bool want_log) {
    __shared__ double sh[NB_GPU_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * cols;
        float *yr = o + r * cols;
        float m = row_max(xr, cols, sh);
        double s = row_sumexp(xr, cols, m, sh);
        if (want_log) {
            float ls = (float)log(s);
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = (xr[c] - m) - ls;
        } else {
            float inv = (float)(1.0 / s);
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = expf(xr[c] - m) * inv;
        }
    }
}

/* A middle axis (channels of NCHW): x viewed as [outer, C, inner] has
 * outer * inner lines strided by inner, one thread each. Neighbouring threads
 * hold neighbouring positions j, so every read of c coalesces. Max, sum and
 * writes go in the CPU's order (c ascending, the sum in double). */
static __global__ void softmax_lines_kernel(float *o, const float *x, int64_t outer, int64_t C, int64_t inner,
                                            bool want_log) {
    int64_t n = outer * inner;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t off = i / inner * C * inner + i % inner;
        const float *xl = x + off;
        float *yl = o + off;
        float m = xl[0];
        for (int64_t c = 1; c < C; c++) m = xl[c * inner] > m ? xl[c * inner] : m;
        double s = 0;
        for (int64_t c = 0; c < C; c++) s += expf(xl[c * inner] - m);
        if (want_log) {
            float ls = (float)log(s);
            for (int64_t c = 0; c < C; c++) yl[c * inner] = (xl[c * inner] - m) - ls;
        } else {
            float inv = (float)(1.0 / s);
            for (int64_t c = 0; c < C; c++) yl[c * inner] = expf(xl[c * inner] - m) * inv;
        }
    }
}

void nb__gpu_softmax(float *o, const float *x, int64_t outer, int64_t C, int64_t inner, bool log) {
    if (outer <= 0 || C <= 0 || inner <= 0) return;
    if (inner == 1) NB_LAUNCH(softmax_kernel, row_blocks(outer), nb__gpu_row_threads(C), 0, o, x, outer, C, log);
    else NB_LAUNCH(softmax_lines_kernel, nb__gpu_blocks(outer * inner), NB_GPU_THREADS, 0, o, x, outer, C, inner, log);
    NB_GPU_CHECK_LAUNCH(log ? "log_softmax" : "softmax");
}

/* softmax: o = y (g - sum(g y)); log-softmax: o = g - e^y sum(g). The
 * products g y are rounded to float before the double sum, as on the CPU. */
static __global__ void softmax_grad_kernel(float *o, const float *y, const float *g, int64_t rows, int64_t cols,
                                           bool is_log) {
    __shared__ double sh[NB_GPU_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        float *orow = o + r * cols;
        double s = 0;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += is_log ? (double)gr[c] : (double)(gr[c] * yr[c]);
        const float sf = (float)nb__gpu_block_sum(s, sh);
        if (is_log)
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = gr[c] - expf(yr[c]) * sf;
        else
            for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = yr[c] * (gr[c] - sf);
    }
}

void nb__gpu_softmax_grad(float *o, const float *y, const float *g, int64_t rows, int64_t cols, bool log) {
    if (rows <= 0 || cols <= 0) return;
    NB_LAUNCH(softmax_grad_kernel, row_blocks(rows), nb__gpu_row_threads(cols), 0, o, y, g, rows, cols, log);
    NB_GPU_CHECK_LAUNCH(log ? "log_softmax_grad" : "softmax_grad");
}

/* --- cross-entropy ------------------------------------------------------------ */

/* eq. 10.12, per row: m[r] = max, l[r] = ln sum e^(x - m). m and l are kept
 * apart (not folded into one float m + l, which would lose digits at the
 * scale of m) for the gradient. */
static __global__ void ce_rows_kernel(float *m, float *l, const float *x, int64_t rows, int64_t cols) {
    __shared__ double sh[NB_GPU_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * cols;
        float mr = row_max(xr, cols, sh);
        double s = row_sumexp(xr, cols, mr, sh);
        if (threadIdx.x == 0) {
            m[r] = mr;
            l[r] = (float)log(s);
        }
    }
}

/* loss[0] = (1/rows) sum_r (m[r] + l[r] - x[r, y[r]]): one block, thread t
 * adding rows t, t + blockDim, ... in double, then the tree; the order
 * depends only on rows. (The CPU adds the row losses in row order; the two
 * agree to float rounding of the mean.) */
static __global__ void ce_loss_kernel(float *loss, const float *m, const float *l, const float *x, const int32_t *y,
                                      int64_t rows, int64_t cols) {
    __shared__ double sh[NB_GPU_THREADS];
    double s = 0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
        s += ((double)m[r] + (double)l[r]) - (double)x[r * cols + y[r]];
    s = nb__gpu_block_sum(s, sh);
    if (threadIdx.x == 0) loss[0] = (float)(s / (double)rows);
}

void nb__gpu_cross_entropy(float *loss, float *m, float *l, const float *x, const int32_t *y, int64_t rows,
                           int64_t cols) {
    if (rows <= 0 || cols <= 0) nb_fatal("cuda", "cross_entropy of [%lld, %lld] logits", (long long)rows, (long long)cols);
    NB_LAUNCH(ce_rows_kernel, row_blocks(rows), nb__gpu_row_threads(cols), 0, m, l, x, rows, cols);
    NB_GPU_CHECK_LAUNCH("cross_entropy");
    NB_LAUNCH(ce_loss_kernel, 1, NB_GPU_THREADS, 0, loss, m, l, x, y, rows, cols);
    NB_GPU_CHECK_LAUNCH("cross_entropy (mean)");
}

/* eq. 10.18: d = (softmax(x) - onehot(y)) g / rows, with softmax(x) =
 * e^((x - m) - l) from the forward's m and l, and the same order of
 * operations as the CPU: e scale, then scale taken off at the label. */
static __global__ void ce_grad_kernel(float *d, const float *x, const float *m, const float *l, const int32_t *y,
                                      const float *g, int64_t rows, int64_t cols) {
    const float scale = g[0] / (float)rows;
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i - r * cols;
        float v = expf((x[i] - m[r]) - l[r]) * scale;
        d[i] = c == y[r] ? v - scale : v;
    }
}

void nb__gpu_cross_entropy_grad(float *d, const float *x, const float *m, const float *l, const int32_t *y,
                                const float *g, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    NB_LAUNCH(ce_grad_kernel, nb__gpu_blocks(rows * cols), NB_GPU_THREADS, 0, d, x, m, l, y, g, rows, cols);
    NB_GPU_CHECK_LAUNCH("cross_entropy_grad");
}
