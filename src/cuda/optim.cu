/* optim.cu — the optimizers' elementwise updates on the device, SGD (with
 * momentum and Nesterov) and Adam/AdamW: kernels over the element rules of
 * src/optim/update.h, which the CPU's loops in optim.c use too, so that the
 * two agree to float rounding (nvcc may fuse a multiply and an add into an
 * FMA, as the CPU build's -ffp-contract=fast may, so the last bit can
 * differ). The step's scalars are formed on the host by optim.c. */
#include "common.h"
#include "../optim/update.h"

static __global__ void sgd_kernel(float *w, const float *g, float *v, int64_t n, float lr, float wd, float mu,
                                  bool nesterov) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        if (!v) {
            w[i] = nb__sgd_step(w[i], g[i], lr, wd);
            continue;
        }
        nb__sgd_state s = nb__sgd_momentum_step(w[i], g[i], v[i], lr, wd, mu, nesterov);
        v[i] = s.v;
        w[i] = s.w;
    }
}

void nb__gpu_sgd(float *w, const float *g, float *v, int64_t n, float lr, float wd, float mu, bool nesterov) {
    if (n <= 0) return;
    NB_LAUNCH(sgd_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, w, g, v, n, lr, wd, mu, nesterov);
    NB_GPU_CHECK_LAUNCH("sgd");
}

static __global__ void adam_kernel(float *w, const float *g, float *m, float *v, int64_t n, float b1, float b2,
                                   float c1, float c2, float step_size, float sqrt_bc2, float eps, float l2,
                                   float shrink) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        nb__adam_state s = nb__adam_step(w[i], g[i], m[i], v[i], b1, b2, c1, c2, step_size, sqrt_bc2, eps, l2, shrink);
        m[i] = s.m;
        v[i] = s.v;
        w[i] = s.w;
    }
}

void nb__gpu_adam(float *w, const float *g, float *m, float *v, int64_t n, float b1, float b2, float c1, float c2,
                  float step_size, float sqrt_bc2, float eps, float l2, float shrink) {
    if (n <= 0) return;
    NB_LAUNCH(adam_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, w, g, m, v, n, b1, b2, c1, c2, step_size, sqrt_bc2,
              eps, l2, shrink);
    NB_GPU_CHECK_LAUNCH("adam");
}
