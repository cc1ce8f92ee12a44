/* update.h — one element of each optimizer's update, written once for the
 * CPU's loops (src/optim/optim.c) and the GPU's kernels (src/cuda/optim.cu),
 * so that the two devices run the same expressions in the same order. The
 * rules take values and return the new ones (no pointers), so the CPU's
 * loops over restrict arrays vectorize as written. The step's scalars (bias
 * corrections in double, lr / bc1, ...) are formed on the host by optim.c. */
#ifndef NB_OPTIM_UPDATE_H
#define NB_OPTIM_UPDATE_H

#include <math.h>
#include <stdbool.h>

#if defined(__CUDACC__) || (defined(NB_CUDA_EMU) && defined(__cplusplus)) /* nvcc, or the emulator's C++ */
#define NB_HD __host__ __device__
#else
#define NB_HD
#endif

/* SGD without momentum: w - lr (g + wd w); wd is 0 for parameters that are
 * not decayed (biases, eq. 7.1). */
NB_HD static inline float nb__sgd_step(float w, float g, float lr, float wd) { return w - lr * (g + wd * w); }

/* SGD with momentum, PyTorch's rule with dampening 0:
 *   d = g + wd w;  v <- mu v + d;  w <- w - lr (nesterov ? d + mu v : v). */
typedef struct { float w, v; } nb__sgd_state;
NB_HD static inline nb__sgd_state nb__sgd_momentum_step(float w, float g, float v, float lr, float wd, float mu,
                                                         bool nesterov) {
    float d = g + wd * w;
    float vi = mu * v + d;
    nb__sgd_state s = {w - lr * (nesterov ? d + mu * vi : vi), vi};
    return s;
}

/* Adam (Kingma & Ba 2015) as PyTorch computes it, eps added after sqrt(v_hat):
 *   g' = g + l2 w;  m <- b1 m + c1 g';  v <- b2 v + c2 g'^2;
 *   w <- shrink w - step_size m / (sqrt(v) / sqrt_bc2 + eps),
 * with c1 = 1 - b1, c2 = 1 - b2, step_size = lr / bc1. Adam uses l2 = wd,
 * shrink = 1; AdamW l2 = 0, shrink = 1 - lr wd (decoupled decay, on the old
 * weights). */
typedef struct { float w, m, v; } nb__adam_state;
NB_HD static inline nb__adam_state nb__adam_step(float w, float g, float m, float v, float b1, float b2, float c1,
                                                 float c2, float step_size, float sqrt_bc2, float eps, float l2,
                                                 float shrink) {
    float gi = g + l2 * w;
    float mi = b1 * m + c1 * gi;
    float vi = b2 * v + c2 * gi * gi;
    nb__adam_state s = {shrink * w - step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps), mi, vi};
    return s;
}

#endif
