/* layout.cu — kernels that move floats without arithmetic: the strided copy
 * behind permutations, broadcasts and slices, and gathering rows by index
 * (embeddings, batches picked by index). */
#include "common.h"
#include "strided.h"

/* One dim left after merging: x read with one stride (1 contiguous, 0 one
 * value repeated, else every s-th float). */
static __global__ void copy_flat_kernel(float *o, const float *x, int64_t s, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        o[i] = x[i * s];
}

static __global__ void copy_walk_kernel(float *o, const float *x, int64_t n, nb_gpu_walk w) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ix, unused;
        nb__gpu_walk_at(&w, i, &ix, &unused);
        o[i] = x[ix];
    }
}

void nb__gpu_strided_copy(float *o, const float *x, int nd, const int64_t *d, const int64_t *s) {
    if (nd < 0 || nd > NB_GPU_MAXD) nb_fatal("cuda", "strided_copy: %d dims (at most %d)", nd, NB_GPU_MAXD);
    nb_gpu_walk w;
    int64_t n = nb__gpu_walk_make(&w, nd, d, 1, &s);
    if (n <= 0) return;
    if (w.nd == 1 && (w.s[0][0] == 1 || n == 1)) {
        /* A contiguous run (a slice of whole rows, or a no-op permutation):
         * the runtime's copy runs at full bandwidth. */
        nb__gpu_copy(o, x, sizeof(float) * (size_t)n);
    } else if (w.nd == 1) {
        NB_LAUNCH(copy_flat_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, x, w.s[0][0], n);
        NB_GPU_CHECK_LAUNCH("strided_copy");
    } else {
        NB_LAUNCH(copy_walk_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, o, x, n, w);
        NB_GPU_CHECK_LAUNCH("strided_copy (strided)");
    }
}

/* o[r, c] = x[idx[r], c]: consecutive threads take consecutive columns of a
 * row, so both the reads and the writes are coalesced. */
static __global__ void gather_rows_kernel(float *o, const float *x, const int32_t *idx, int64_t rows, int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i - r * cols;
        o[i] = x[(int64_t)idx[r] * cols + c];
    }
}

/* o[r, c] (row stride os) = x[r, c] (row stride xs), coalesced as above. */
static __global__ void copy_rows_kernel(float *o, int64_t os, const float *x, int64_t xs, int64_t rows, int64_t cols) {
    int64_t n = rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i - r * cols;
        o[r * os + c] = x[r * xs + c];
    }
}

void nb__gpu_copy_rows(float *o, int64_t o_stride, const float *x, int64_t x_stride, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    if (rows == 1 || (o_stride == cols && x_stride == cols)) { /* one contiguous block */
        nb__gpu_copy(o, x, sizeof(float) * (size_t)(rows * cols));
        return;
    }
    NB_LAUNCH(copy_rows_kernel, nb__gpu_blocks(rows * cols), NB_GPU_THREADS, 0, o, o_stride, x, x_stride, rows, cols);
    NB_GPU_CHECK_LAUNCH("copy_rows");
}

void nb__gpu_gather_rows(float *o, const float *x, const int32_t *idx, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    NB_LAUNCH(gather_rows_kernel, nb__gpu_blocks(rows * cols), NB_GPU_THREADS, 0, o, x, idx, rows, cols);
    NB_GPU_CHECK_LAUNCH("gather_rows");
}
