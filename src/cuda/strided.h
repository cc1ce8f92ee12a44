/* strided.h — the index walk shared by nb__gpu_binary and
 * nb__gpu_strided_copy: an output walked row-major over up to 8 dims, each
 * input read at sum_k idx_k s[k]. The host first simplifies the dims (drops
 * those of size 1, merges neighbours that every input walks alike), so the
 * common cases reach the kernels as one or two dims and the fast paths can
 * recognise them. Included by .cu files after common.h. */
#ifndef NB_CUDA_STRIDED_H
#define NB_CUDA_STRIDED_H

#define NB_GPU_MAXD 8

/* Dims innermost first (d[0] is the fastest-varying), with one stride per
 * input; passed to kernels by value (a few hundred bytes of parameters). */
typedef struct {
    int nd;
    int64_t d[NB_GPU_MAXD];
    int64_t s[2][NB_GPU_MAXD];
} nb_gpu_walk;

/* Fills w from nd dims d[0..nd) (outermost first, as the ops give them) and
 * the strides of ns inputs (1 or 2); returns the number of elements. A dim
 * of size 1 contributes nothing to any offset and is dropped; dim k merges
 * into the one inside it when every input's stride along k is the inner
 * one's stride times its size (both contiguous across the pair, or both
 * broadcast). At least one dim remains (size 1 for a scalar) unless n = 0. */
static inline int64_t nb__gpu_walk_make(nb_gpu_walk *w, int nd, const int64_t *d, int ns, const int64_t *const *s) {
    int64_t n = 1;
    w->nd = 0;
    for (int k = nd - 1; k >= 0; k--) {
        n *= d[k];
        if (d[k] == 1) continue;
        int m = w->nd;
        bool merge = m > 0;
        for (int j = 0; j < ns && merge; j++)
            merge = s[j][k] == w->s[j][m - 1] * w->d[m - 1];
        if (merge) {
            w->d[m - 1] *= d[k];
        } else {
            w->d[m] = d[k];
            for (int j = 0; j < ns; j++) w->s[j][m] = s[j][k];
            w->nd++;
        }
    }
    if (w->nd == 0) {
        w->nd = 1;
        w->d[0] = 1;
        w->s[0][0] = w->s[1][0] = 0;
    }
    for (int j = ns; j < 2; j++)
        for (int m = 0; m < w->nd; m++) w->s[j][m] = 0;
    return n;
}

/* The offsets of element i into the inputs. The loop runs to the constant
 * NB_GPU_MAXD, not to w->nd, so that nvcc can unroll it and index w's
 * arrays by constants: w stays in the kernel's parameter space, never
 * copied to local memory (ptxas reports no stack frame). */
static __device__ inline void nb__gpu_walk_at(const nb_gpu_walk *w, int64_t i, int64_t *o0, int64_t *o1) {
    int64_t a = 0, b = 0, rem = i;
    for (int k = 0; k < NB_GPU_MAXD; k++) {
        if (k < w->nd) {
            int64_t idx = rem % w->d[k];
            rem /= w->d[k];
            a += idx * w->s[0][k];
            b += idx * w->s[1][k];
        }
    }
    *o0 = a;
    *o1 = b;
}

#endif
