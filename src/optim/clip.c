/* clip.c — gradient clipping by global L2 norm (PyTorch's clip_grad_norm_). */
#include "../core/internal.h"
#include <math.h>

/* Sum of squares in double. The array is cut into at most MAX_CHUNKS chunks
 * whose size depends only on n, and the partial sums are added in order, so
 * the result is the same for every thread count (an OpenMP reduction would
 * add the threads' sums in whatever order they finish). */
#define MAX_CHUNKS 256
static double sum_squares(const float *x, int64_t n) {
    int64_t chunk = (n + MAX_CHUNKS - 1) / MAX_CHUNKS;
    if (chunk < 4096) chunk = 4096;
    int64_t nch = (n + chunk - 1) / chunk;
    double part[MAX_CHUNKS];
    NB_OMP_FOR(n)
    for (int64_t c = 0; c < nch; c++) {
        int64_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        double s = 0;
        NB_PRAGMA(omp simd reduction(+ : s))
        for (int64_t i = lo; i < hi; i++)
            s += (double)x[i] * x[i];
        part[c] = s;
    }
    double s = 0;
    for (int64_t c = 0; c < nch; c++)
        s += part[c];
    return s;
}

float nb_clip_grad_norm(nb_param *params, int n, float max_norm) {
    if (!(max_norm >= 0.f)) nb_fatal("clip_grad_norm", "max_norm must be >= 0, got %g", (double)max_norm);
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (params[i].t->grad) ss += sum_squares(params[i].t->grad->data, params[i].t->grad->size);
    double norm = sqrt(ss);
    /* PyTorch: coef = max_norm / (norm + 1e-6), clamped at 1. The 1e-6 keeps
     * a zero gradient from dividing by zero. A NaN norm leaves the gradients
     * as they are; the returned NaN tells the caller. */
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        float c = (float)coef;
        for (int i = 0; i < n; i++) {
            nb_tensor *g = params[i].t->grad;
            if (!g) continue;
            float *d = g->data;
            int64_t m = g->size;
            NB_OMP_FOR(m)
            for (int64_t k = 0; k < m; k++)
                d[k] *= c;
        }
    }
    return (float)norm;
}
