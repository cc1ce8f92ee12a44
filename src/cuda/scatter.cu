/* scatter.cu — kernels that pick and place by index: the max along one axis
 * with where it lies, reading and writing at such positions (max's backward
 * and its adjoint; max pooling's gather too), and scatter_rows, the adjoint
 * of gather_rows, which adds rows that share an index. Also the two selects
 * of prelu: its forward with one slope per channel, and step, the mask its
 * backward is built from.
 *
 * No atomics: where several sources add into one destination (scatter_rows
 * with repeated indices), the destination gathers them in a fixed order, so
 * the result is the same bits on every run. */
#include "common.h"
#include <math.h>

/* --- max along an axis --------------------------------------------------------- */

/* Whether value v at index i beats the best so far (bv at bi): a NaN beats
 * any number, and between two NaNs or two equal numbers (-0 and +0 are
 * equal) the earlier index wins. So the winner is the first NaN if there is
 * one, else the first maximum: the CPU's rule, whatever order the candidates
 * are compared in. */
static __device__ inline bool beats(float v, int64_t i, float bv, int64_t bi) {
    bool vn = v != v, bn = bv != bv;
    if (vn != bn) return vn;
    if (vn || v == bv) return i < bi;
    return v > bv;
}

/* x as [outer, mid, inner]: one thread per output (p, q), walking m in
 * order; consecutive threads take consecutive q, so the loads coalesce. */
static __global__ void max_mid_kernel(float *o, int64_t *pos, const float *x, int64_t outer, int64_t mid,
                                      int64_t inner) {
    int64_t n = outer * inner;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t p = i / inner, q = i - p * inner;
        int64_t at = p * mid * inner + q, best_at = at;
        float best = x[at];
        for (int64_t m = 1; m < mid; m++) {
            at += inner;
            float v = x[at];
            if (beats(v, at, best, best_at)) best = v, best_at = at;
        }
        o[i] = best;
        if (pos) pos[i] = best_at;
    }
}

/* inner = 1 and long rows: a block per row. Each thread takes every
 * blockDim-th element, then the block's candidates meet in a tree; beats()
 * makes the winner independent of how the row was split. */
static __global__ void max_rows_kernel(float *o, int64_t *pos, const float *x, int64_t rows, int64_t cols) {
    __shared__ float shv[NB_GPU_THREADS];
    __shared__ int64_t shi[NB_GPU_THREADS];
    unsigned t = threadIdx.x;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * cols;
        float best = NAN; /* stands for "none yet": loses to any element below */
        int64_t best_at = -1;
        for (int64_t c = t; c < cols; c += blockDim.x)
            if (best_at < 0 || beats(xr[c], c, best, best_at)) best = xr[c], best_at = c;
        shv[t] = best;
        shi[t] = best_at;
        __syncthreads();
        for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {
            if (t < h && shi[t + h] >= 0 && (shi[t] < 0 || beats(shv[t + h], shi[t + h], shv[t], shi[t]))) {
                shv[t] = shv[t + h];
                shi[t] = shi[t + h];
            }
            __syncthreads();
        }
        if (t == 0) {
            o[r] = shv[0];
            if (pos) pos[r] = r * cols + shi[0];
        }
        __syncthreads(); /* all is read before the next row writes shv */
    }
}

void nb__gpu_max_mid(float *o, int64_t *pos, const float *x, int64_t outer, int64_t mid, int64_t inner) {
    if (outer <= 0 || mid <= 0 || inner <= 0) return;
    /* A row per thread is fine for short rows or many columns; a long row
     * would be one thread's serial scan. */
    if (inner == 1 && mid > 64) {
        unsigned blocks = (unsigned)(outer < 65535 ? outer : 65535);
        NB_LAUNCH(max_rows_kernel, blocks, NB_GPU_THREADS, 0, o, pos, x, outer, mid);
        NB_GPU_CHECK_LAUNCH("max (rows)");
    } else {
        NB_LAUNCH(max_mid_kernel, nb__gpu_blocks(outer * inner), NB_GPU_THREADS, 0, o, pos, x, outer, mid, inner);
        NB_GPU_CHECK_LAUNCH("max");
    }
}

/* --- reading and writing at positions ------------------------------------------- */

static __global__ void gather_at_kernel(float *o, const float *x, const int64_t *pos, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        o[i] = x[pos[i]];
}

void nb__gpu_gather_at(float *o, const float *x, const int64_t *pos, int64_t n) {
    if (n <= 0) return;
    NB_LAUNCH(gather_at_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, x, pos, n);
    NB_GPU_CHECK_LAUNCH("gather_at");
}

/* The positions are distinct (the caller's promise), so every thread writes
 * its own element: no two threads race. */
static __global__ void put_at_kernel(float *o, const float *g, const int64_t *pos, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        o[pos[i]] = g[i];
}

void nb__gpu_put_at(float *o, const float *g, const int64_t *pos, int64_t n) {
    if (n <= 0) return;
    NB_LAUNCH(put_at_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, g, pos, n);
    NB_GPU_CHECK_LAUNCH("put_at");
}

/* --- scatter_rows ------------------------------------------------------------------ */

/* o[r, c] = sum over j in [start[r], start[r+1]) of x[from[j], c], from 0:
 * each output element sums its sources in the order the host listed them
 * (ascending source row, the CPU's order), and writes once, so rows no index
 * names come out 0 without a fill. Consecutive threads take consecutive
 * columns of a row: the reads of each source row coalesce. */
static __global__ void scatter_rows_kernel(float *o, const float *x, const int64_t *start, const int64_t *from,
                                           int64_t rows, int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i - r * cols;
        float acc = 0.f;
        for (int64_t j = start[r]; j < start[r + 1]; j++) acc += x[from[j] * cols + c];
        o[i] = acc;
    }
}

void nb__gpu_scatter_rows(float *o, const float *x, const int64_t *start, const int64_t *from, int64_t rows,
                          int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    NB_LAUNCH(scatter_rows_kernel, nb__gpu_blocks(rows * cols), NB_GPU_THREADS, 0, o, x, start, from, rows, cols);
    NB_GPU_CHECK_LAUNCH("scatter_rows");
}

/* --- selects: step and prelu ------------------------------------------------------- */

/* o = x > 0 ? hi : lo; a NaN fails the test and gives lo, as on the CPU. */
static __global__ void step_kernel(float *o, const float *x, int64_t n, float lo, float hi) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        o[i] = x[i] > 0.f ? hi : lo;
}

void nb__gpu_step(float *o, const float *x, int64_t n, float lo, float hi) {
    if (n <= 0) return;
    NB_LAUNCH(step_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, x, n, lo, hi);
    NB_GPU_CHECK_LAUNCH("step");
}

/* o = x < 0 ? a_c x : x (eq. 20 with a learned slope), c = (i / inner) % C;
 * a NaN fails x < 0 and passes through. */
static __global__ void prelu_kernel(float *o, const float *x, const float *a, int64_t n, int64_t C, int64_t inner) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i];
        o[i] = v < 0.f ? a[i / inner % C] * v : v;
    }
}

void nb__gpu_prelu(float *o, const float *x, const float *a, int64_t n, int64_t C, int64_t inner) {
    if (n <= 0) return;
    NB_LAUNCH(prelu_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, x, a, n, C, inner);
    NB_GPU_CHECK_LAUNCH("prelu");
}
