/* conv_causal_kernel.h — the direct kernel behind conv_causal.c's forward F
 * and input gradient G (internal to src/ops/conv_causal*.c).
 *
 * For each m < M and t < T:
 *   y[m*ldy + t] = (r ? r[m*ldy + t] : 0) + (bias ? bias[m] : 0)
 *                  + sum_{k<K} sum_{j<J} a[(k*M + m)*J + j] * x[j*ldx + t + off[k]]
 * where reads of x at t + off[k] outside [0, T) count as zeros. One pass over
 * y: the bias, the initial rows r and all K taps are summed in registers, so y
 * is written once. WaveNet's products are thin (M and J of 32 to 256, T of
 * 16000): vectorized over t with the weights broadcast from a, there is no
 * packing of x, which a GEMM library does per call. r may equal y (in place).
 * Runs on the OpenMP threads (blocks of t) when the work is large enough. */
#ifndef NB_CONV_CAUSAL_KERNEL_H
#define NB_CONV_CAUSAL_KERNEL_H
#include <stdint.h>

void nb__causal_rows(float *y, const float *r, const float *bias, const float *a, const int64_t *off, int K,
                     int64_t M, int64_t J, const float *x, int64_t ldx, int64_t T, int64_t ldy);

/* The weight gradient's products, for N signals [O, T] (g) and [C, T] (x):
 *   out[(k*O + o)*C + c] = sum_{n, t >= s[k]} g[n, o, t] * x[n, c, t - s[k]].
 * Returns 0 (out untouched) where there is no direct version (builds
 * without AVX-512), and the caller uses OpenBLAS. Summed over fixed
 * chunks of t in a fixed order: the same result for any thread count. */
int nb__causal_wgrad(float *out, const float *g, int64_t O, const float *x, int64_t C, const int64_t *s, int K,
                     int64_t N, int64_t T);

#endif
