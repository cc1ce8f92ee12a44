/* blockreduce.h — sum and max across the threads of one block, through
 * shared memory and __syncthreads (no warp shuffles, no reliance on warps
 * running in lockstep, so the emulator runs them as written). The pairs are
 * added in a tree fixed by blockDim.x alone: t takes t + h for h = blockDim/2,
 * blockDim/4, ..., 1. So a reduction's result depends only on the sizes that
 * chose the block, never on timing. Every thread of the block must call
 * them (they contain barriers); blockDim.x must be a power of two no larger
 * than NB_GPU_THREADS, and sh a __shared__ array of NB_GPU_THREADS doubles.
 * Included by .cu files after common.h. */
#ifndef NB_CUDA_BLOCKREDUCE_H
#define NB_CUDA_BLOCKREDUCE_H

/* The sum of every thread's v, returned to all of them. Doubles: the sums
 * of backend.h are kept in double, as the CPU's, so that thousands of terms
 * lose nothing at float precision (FP64 adds are cheap next to the loads on
 * the GPUs this targets). */
static __device__ inline double nb__gpu_block_sum(double v, double *sh) {
    unsigned t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {
        if (t < h) sh[t] += sh[t + h];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads(); /* all have read sh[0] before anyone writes sh again */
    return r;
}

/* The largest of every thread's v (a float, held exactly in a double). A
 * NaN may or may not win; the callers' sums turn NaN anyway. */
static __device__ inline float nb__gpu_block_max(float v, double *sh) {
    unsigned t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (unsigned h = blockDim.x / 2; h > 0; h /= 2) {
        if (t < h && sh[t + h] > sh[t]) sh[t] = sh[t + h];
        __syncthreads();
    }
    float r = (float)sh[0];
    __syncthreads();
    return r;
}

/* Threads for a block that reduces rows of cols floats: the smallest power
 * of two >= cols, between 32 (a warp) and NB_GPU_THREADS. */
static inline unsigned nb__gpu_row_threads(int64_t cols) {
    unsigned t = 32;
    while (t < NB_GPU_THREADS && (int64_t)t < cols) t *= 2;
    return t;
}

#endif
