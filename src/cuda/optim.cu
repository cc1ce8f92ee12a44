/* optim.cu — the optimizers' elementwise updates on the device, SGD (with
 * momentum and Nesterov) and Adam/AdamW. Each is sgd_update or adam_update
 * of src/optim/optim.c written as a kernel, expression for expression in the
 * same order, so that the two agree to float rounding (nvcc may fuse a
 * multiply and an add into an FMA, as the CPU build's -ffp-contract=fast
 * may, so the last bit can differ). The step's scalars (bias corrections in
 * double, lr / bc1, ...) are formed on the host by optim.c and passed in. */
#include "common.h"

/* PyTorch's SGD with dampening 0: d = g + wd w; v <- mu v + d;
 * w <- w - lr (nesterov ? d + mu v : v), or w <- w - lr d without v. */
static __global__ void sgd_kernel(float *w, const float *g, float *v, int64_t n, float lr, float wd, float mu,
                                  bool nesterov) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        if (!v) {
            w[i] -= lr * (g[i] + wd * w[i]);
            continue;
        }
        float d = g[i] + wd * w[i];
        float vi = mu * v[i] + d;
        v[i] = vi;
        w[i] -= lr * (nesterov ? d + mu * vi : vi);
    }
}

void nb__gpu_sgd(float *w, const float *g, float *v, int64_t n, float lr, float wd, float mu, bool nesterov) {
    if (n <= 0) return;
    NB_LAUNCH(sgd_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, w, g, v, n, lr, wd, mu, nesterov);
    NB_GPU_CHECK_LAUNCH("sgd");
}

/* Adam as PyTorch computes it (eps added after sqrt(v_hat)):
 *   g' = g + l2 w;  m <- b1 m + c1 g';  v <- b2 v + c2 g'^2;
 *   w <- shrink w - step_size m / (sqrt(v) / sqrt_bc2 + eps).
 * c2 gi gi is (c2 gi) gi and step_size mi / (...) is (step_size mi) / (...),
 * as C parses the CPU's expressions. */
static __global__ void adam_kernel(float *w, const float *g, float *m, float *v, int64_t n, float b1, float b2,
                                   float c1, float c2, float step_size, float sqrt_bc2, float eps, float l2,
                                   float shrink) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float gi = g[i] + l2 * w[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        w[i] = shrink * w[i] - step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}

void nb__gpu_adam(float *w, const float *g, float *m, float *v, int64_t n, float b1, float b2, float c1, float c2,
                  float step_size, float sqrt_bc2, float eps, float l2, float shrink) {
    if (n <= 0) return;
    NB_LAUNCH(adam_kernel, nb__gpu_blocks(n), NB_GPU_THREADS, 0, w, g, m, v, n, b1, b2, c1, c2, step_size, sqrt_bc2,
              eps, l2, shrink);
    NB_GPU_CHECK_LAUNCH("adam");
}
