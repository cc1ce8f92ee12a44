/* reduce.cu — sums: over the middle axis of [outer, mid, inner]
 * (nb__gpu_sum_mid: sums over axes, the gradients of broadcasts) and the
 * sum of squares of a whole tensor (nb__gpu_sumsq, for gradient clipping).
 *
 * No atomics: every sum is split into parts whose number and bounds depend
 * only on the sizes, each part is added in a fixed order, and the parts are
 * then added in part order. So the same inputs give the same bits on every
 * run. As on the CPU, the adding is in double and the result rounded once to
 * float. */
#include "common.h"
#include "blockreduce.h"

/* How a sum is split. When the outputs alone give too little parallelism
 * (few outputs, long sums), each sum is cut into S chunks of mid, the chunk
 * sums go to a scratch array of doubles, and a second kernel adds each
 * output's S chunk sums in order. PAR_THREADS and PAR_BLOCKS are about what
 * fills an H100 (132 SMs x 2048 threads, x 8 blocks); they bound the
 * scratch to 2 * PAR_THREADS doubles. */
#define PAR_THREADS (1 << 17)
#define PAR_BLOCKS 1024
#define COL_CHUNK 64    /* the least a thread adds alone before splitting pays */
#define ROW_CHUNK 4096  /* the least a block adds before splitting pays */
#define ROW_MIN_MID 128 /* shorter rows take a thread each, not a block */
#define SCRATCH_DOUBLES (2 * PAR_THREADS)

/* The scratch for chunk sums: allocated at the first split sum and kept for
 * the program's life. Kernels on the one stream run in order, so one
 * scratch serves every launch. */
static double *scratch;
static double *parts(void) {
    if (!scratch) {
        void *p = nb__gpu_alloc(sizeof(double) * SCRATCH_DOUBLES);
        if (!p) nb_fatal("cuda", "out of device memory for a reduction's %d-double scratch", SCRATCH_DOUBLES);
        scratch = (double *)p;
    }
    return scratch;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows (inner = 1, mid long): one block per (row p, chunk s) pair, its
 * threads striding over the chunk, then a tree across the block. Writes the
 * row's float sum, or (S > 1) the chunk's double sum to parts[s * outer + p].
 * sq: sum squares instead. The loop over pairs is the same for every thread
 * of a block, so all of them reach each barrier. */
static __global__ void sum_rows_kernel(float *o, double *part, const float *x, int64_t outer, int64_t mid,
                                       int64_t chunk, int64_t S, bool sq) {
    __shared__ double sh[NB_GPU_THREADS];
    for (int64_t b = blockIdx.x; b < outer * S; b += gridDim.x) {
        int64_t p = b / S, s = b - p * S;
        int64_t lo = s * chunk, hi = lo + chunk < mid ? lo + chunk : mid;
        const float *row = x + p * mid;
        double acc = 0;
        for (int64_t m = lo + threadIdx.x; m < hi; m += blockDim.x) {
            double v = row[m];
            acc += sq ? v * v : v;
        }
        acc = nb__gpu_block_sum(acc, sh);
        if (threadIdx.x == 0) {
            if (S == 1) o[p] = (float)acc;
            else part[s * outer + p] = acc;
        }
    }
}

/* Columns (inner > 1, or short rows): a thread per (chunk s, column p*inner
 * + q) pair, adding x[p, m, q] for m in the chunk in order. Consecutive
 * threads take consecutive q, so the reads of a step are coalesced. Writes
 * the float sum, or (S > 1) the chunk's double sum to parts[s * C + col]. */
static __global__ void sum_cols_kernel(float *o, double *part, const float *x, int64_t outer, int64_t mid,
                                       int64_t inner, int64_t chunk, int64_t S) {
    int64_t C = outer * inner;
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < S * C; j += (int64_t)gridDim.x * blockDim.x) {
        int64_t s = j / C, col = j - s * C, p = col / inner, q = col - p * inner;
        int64_t lo = s * chunk, hi = lo + chunk < mid ? lo + chunk : mid;
        const float *px = x + p * mid * inner + q;
        double acc = 0;
        for (int64_t m = lo; m < hi; m++) acc += px[m * inner];
        if (S == 1) o[col] = (float)acc;
        else part[j] = acc;
    }
}

/* The second pass: o[col] = sum over s < S of part[s * C + col], in order. */
static __global__ void sum_parts_kernel(float *o, const double *part, int64_t C, int64_t S) {
    for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < C; col += (int64_t)gridDim.x * blockDim.x) {
        double acc = 0;
        for (int64_t s = 0; s < S; s++) acc += part[s * C + col];
        o[col] = (float)acc;
    }
}

/* o[col] for C = outer row sums of x[outer, mid] (sq: of squares). */
static void sum_rows(float *o, const float *x, int64_t outer, int64_t mid, bool sq) {
    int64_t S = 1;
    if (outer < PAR_BLOCKS && mid >= 2 * ROW_CHUNK) {
        S = ceil_div(PAR_BLOCKS, outer);
        if (S > mid / ROW_CHUNK) S = mid / ROW_CHUNK;
    }
    int64_t chunk = ceil_div(mid, S);
    S = ceil_div(mid, chunk); /* no empty chunk at the end */
    double *part = S > 1 ? parts() : NULL;
    int64_t blocks = outer * S < 65535 ? outer * S : 65535;
    NB_LAUNCH(sum_rows_kernel, (unsigned)blocks, NB_GPU_THREADS, 0, o, part, x, outer, mid, chunk, S, sq);
    NB_GPU_CHECK_LAUNCH(sq ? "sumsq" : "sum_mid (rows)");
    if (S > 1) {
        NB_LAUNCH(sum_parts_kernel, nb__gpu_blocks(outer), NB_GPU_THREADS, 0, o, part, outer, S);
        NB_GPU_CHECK_LAUNCH(sq ? "sumsq (parts)" : "sum_mid (row parts)");
    }
}

void nb__gpu_sum_mid(float *o, const float *x, int64_t outer, int64_t mid, int64_t inner) {
    int64_t C = outer * inner;
    if (C <= 0) return;
    if (mid <= 0) {
        nb__gpu_fill(o, C, 0.f);
        return;
    }
    if (inner == 1 && mid >= ROW_MIN_MID) {
        sum_rows(o, x, outer, mid, false);
        return;
    }
    int64_t S = 1;
    if (C < PAR_THREADS && mid >= 2 * COL_CHUNK) {
        S = ceil_div(PAR_THREADS, C);
        if (S > mid / COL_CHUNK) S = mid / COL_CHUNK;
    }
    int64_t chunk = ceil_div(mid, S);
    S = ceil_div(mid, chunk);
    double *part = S > 1 ? parts() : NULL; /* S * C < PAR_THREADS + C < SCRATCH_DOUBLES */
    NB_LAUNCH(sum_cols_kernel, nb__gpu_blocks(S * C), NB_GPU_THREADS, 0, o, part, x, outer, mid, inner, chunk, S);
    NB_GPU_CHECK_LAUNCH("sum_mid (columns)");
    if (S > 1) {
        NB_LAUNCH(sum_parts_kernel, nb__gpu_blocks(C), NB_GPU_THREADS, 0, o, part, C, S);
        NB_GPU_CHECK_LAUNCH("sum_mid (column parts)");
    }
}

void nb__gpu_sumsq(float *out, const float *x, int64_t n) {
    if (n <= 0) {
        nb__gpu_fill(out, 1, 0.f);
        return;
    }
    sum_rows(out, x, 1, n, true);
}
