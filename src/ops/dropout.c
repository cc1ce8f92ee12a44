/* dropout.c — inverted dropout: a random keep-mask scaled by 1/(1-p), kept in
 * the step arena so that backward multiplies by exactly the same mask. */
#include "../core/internal.h"

/* out = x * mask, mask_i = keep_i / (1 - p) (a constant);  dx = g * mask.
 * The mask tensor is node aux; it needs no gradient, so the rule is linear
 * in g and its own derivative (double backward) is exact. */
static void dropout_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], nb_mul(g, (nb_tensor *)n->aux)); }
static const nb_op op_dropout = {"dropout", dropout_bw};

nb_tensor *nb_dropout(nb_tensor *x, float p, bool training, nb_rng *r) {
    if (!(p >= 0.f && p < 1.f)) nb_fatal("dropout", "p = %g must be in [0, 1)", (double)p);
    /* In evaluation the expected activation is already x (that is why the
     * kept units are scaled up while training), so x itself is the result. */
    if (!training || p == 0.f) return x;
    if (!r) r = nb_global_rng();
    nb_tensor *mask = nb__new(x->ndim, x->shape), *out = nb_empty_like(x);
    /* One 32-bit draw per element, compared with p 2^32: exact to 2^-32 and
     * half the cost of a 53-bit uniform. The draws are sequential so the same
     * seed gives the same mask whatever the thread count. */
    uint64_t thresh = (uint64_t)((double)p * 4294967296.0);
    float scale = 1.f / (1.f - p);
    float *pm = mask->data;
    for (int64_t i = 0; i < x->size; i++) pm[i] = (uint64_t)nb_rng_u32(r) >= thresh ? scale : 0.f;
    if (nb__on_gpu(x)) {
        /* The mask is drawn on the host from the same stream and copied
         * over, so a run on the GPU drops the same units as on the CPU. */
        mask = nb_to(mask, NB_CUDA);
        int64_t n = x->size, unit = 1;
        if (n) nb__gpu_binary(NB_GPU_MUL, out->data, x->data, mask->data, 1, &n, &unit, &unit);
        nb_node *node = nb__record(&op_dropout, out, &x, 1);
        if (node) node->aux = mask;
        return out;
    }
    const float *restrict px = x->data;
    float *restrict po = out->data;
    int64_t n = x->size;
    NB_PARALLEL_FOR(n, for (int64_t i = 0; i < n; i++) { po[i] = px[i] * pm[i]; });
    nb_node *node = nb__record(&op_dropout, out, &x, 1);
    if (node) node->aux = mask;
    return out;
}
