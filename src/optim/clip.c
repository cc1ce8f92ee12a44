/* clip.c — gradient clipping by global L2 norm (PyTorch's clip_grad_norm_). */
#include "../core/internal.h"
#include <math.h>

/* Sum of squares in double, the same for every thread count. */
static double squares_part(const void *x, int64_t lo, int64_t hi) {
    const float *p = x;
    double s = 0;
    NB_PRAGMA(omp simd reduction(+ : s))
    for (int64_t i = lo; i < hi; i++) s += (double)p[i] * p[i];
    return s;
}

double nb_grad_norm(const nb_param *params, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (!params[i].t->grad) continue;
        else if (nb__on_gpu(params[i].t->grad)) {
            nb_tensor *g = params[i].t->grad;
            float *s = nb__arena_alloc_gpu(sizeof(float)), v;
            nb__gpu_sumsq(s, g->data, g->size);
            nb__gpu_to_host(&v, s, sizeof v);
            ss += v;
        } else {
            ss += nb__ordered_sum(params[i].t->grad->size, squares_part, params[i].t->grad->data);
        }
    return sqrt(ss);
}

float nb_clip_grad_norm(nb_param *params, int n, float max_norm) {
    if (!(max_norm >= 0.f)) nb_fatal("clip_grad_norm", "max_norm must be >= 0, got %g", (double)max_norm);
    double norm = nb_grad_norm(params, n);
    /* A NaN or infinite norm leaves the gradients as they are: scaled by
     * max_norm / inf = 0 (as PyTorch's clip_grad_norm_ does) every finite one
     * would become 0 and each inf a NaN, hiding which parameter overflowed;
     * the returned norm tells the caller not to step (PyTorch's
     * error_if_nonfinite=True raises there instead). */
    if (!isfinite(norm)) return (float)norm;
    /* PyTorch: coef = max_norm / (norm + 1e-6), clamped at 1. The 1e-6 keeps
     * a zero gradient from dividing by zero. */
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        float c = (float)coef;
        for (int i = 0; i < n; i++) {
            nb_tensor *g = params[i].t->grad;
            if (!g) continue;
            float *d = g->data;
            int64_t m = g->size;
            if (nb__on_gpu(g)) {
                nb__gpu_unary(NB_GPU_SCALE, d, d, m, c);
                continue;
            }
            NB_PARALLEL_FOR(m, for (int64_t k = 0; k < m; k++) {
                d[k] *= c;
            });
        }
    }
    return (float)norm;
}
