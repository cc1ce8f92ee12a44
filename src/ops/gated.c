/* gated.c — WaveNet's pointwise pieces (notes §4.5): the gated activation
 * unit of eq. 32 as one fused op, and μ-law companding (eq. 31) both as a
 * differentiable op and as the 8-bit quantizer/expander of audio samples. */
#include "../core/internal.h"
#include "../core/vmath.h"
#include <math.h>

/* --- eq. 32: z = tanh(a) ⊙ σ(b) ------------------------------------------
 * x: [N, 2C, ...] holds the filter pre-activation a = x[:, :C] and the gate
 * pre-activation b = x[:, C:] (PyTorch's x.chunk(2, dim=1)); out: [N, C, ...].
 * One pass reads x once and writes z (one kernel on the GPU); the backward is
 * one fused op too,
 *   da = g (1 - t^2) s,   db = g t s (1 - s)   (t = tanh a, s = σ(b)),
 * whose own backward is written with nb_* ops (second derivatives exact). */

typedef struct {
    int64_t N, M; /* x viewed as [N, 2, M], out as [N, M] */
    int64_t C;
} gate_geom;

static gate_geom gate_split(const char *op, const nb_tensor *x) {
    if (x->ndim < 2 || x->shape[1] % 2 != 0) {
        char s[96];
        nb_fatal(op, "input must be [N, 2C, ...] with an even channel count, got %s", nb_shape_str(x, s, sizeof s));
    }
    gate_geom g = {x->shape[0], 1, x->shape[1] / 2};
    for (int k = 1; k < x->ndim; k++) g.M *= x->shape[k];
    g.M /= 2;
    return g;
}

static nb_tensor *gate_grad(nb_tensor *x, nb_tensor *g);

static void gate_bw(nb_node *n, nb_tensor *g) { nb__accum(n->in[0], gate_grad(n->in[0], g)); }
static const nb_op op_gate = {"gated", gate_bw};

nb_tensor *nb_gated(nb_tensor *x) {
    gate_geom q = gate_split("gated", x);
    int64_t s[NB_MAXDIM];
    nb__shape_copy(s, x->shape, x->ndim);
    s[1] = q.C;
    nb_tensor *out = nb__new_on(x->device, x->ndim, s);
    const int64_t N = q.N, M = q.M;
    if (nb__on_gpu(x)) {
        nb__gpu_gated(out->data, x->data, N, M);
    } else {
        for (int64_t nn = 0; nn < N; nn++) {
            const float *restrict xa = x->data + nn * 2 * M, *restrict xb = xa + M;
            float *restrict po = out->data + nn * M;
            NB_PARALLEL_FOR(M, for (int64_t m = 0; m < M; m++) po[m] = nb__vtanhf(xa[m]) * nb__vsigmoidf(xb[m]);); /* eq. 32 */
        }
    }
    nb__record(&op_gate, out, &x, 1);
    return out;
}

/* The gate's gradient as its own op: gx = [g (1 - t^2) s, g t s (1 - s)].
 * Its backward, with U = [ua, ub] the gradient of gx:
 *   dg = ua (1 - t^2) s + ub t s'                       (s' = s (1 - s))
 *   da = g [ua (-2 t (1 - t^2)) s + ub (1 - t^2) s']
 *   db = g [ua (1 - t^2) s' + ub t s' (1 - 2 s)]. */
static void gate_grad_bw(nb_node *n, nb_tensor *u) {
    nb_tensor *x = n->in[0], *g = n->in[1];
    int64_t C = x->shape[1] / 2;
    nb_tensor *a = nb_slice(x, 1, 0, C), *b = nb_slice(x, 1, C, 2 * C);
    nb_tensor *ua = nb_slice(u, 1, 0, C), *ub = nb_slice(u, 1, C, 2 * C);
    nb_tensor *t = nb_tanh(a), *s = nb_sigmoid(b);
    nb_tensor *dt = nb_add_scalar(nb_neg(nb_square(t)), 1.f);  /* 1 - t^2 */
    nb_tensor *ds = nb_mul(s, nb_add_scalar(nb_neg(s), 1.f)); /* s (1 - s) */
    if (g->requires_grad) nb__accum(g, nb_add(nb_mul(ua, nb_mul(dt, s)), nb_mul(ub, nb_mul(t, ds))));
    if (x->requires_grad) {
        nb_tensor *ga = nb_mul(g, nb_add(nb_mul(ua, nb_mul(nb_mul_scalar(nb_mul(t, dt), -2.f), s)),
                                         nb_mul(ub, nb_mul(dt, ds))));
        nb_tensor *gb = nb_mul(g, nb_add(nb_mul(ua, nb_mul(dt, ds)),
                                         nb_mul(ub, nb_mul(nb_mul(t, ds), nb_add_scalar(nb_mul_scalar(s, -2.f), 1.f)))));
        nb__accum(x, nb_concat((nb_tensor *[]){ga, gb}, 2, 1));
    }
}
static const nb_op op_gate_grad = {"gated_grad", gate_grad_bw};

static nb_tensor *gate_grad(nb_tensor *x, nb_tensor *g) {
    gate_geom q = gate_split("gated_grad", x);
    if (g->size != q.N * q.M) nb__shape_fatal("gated_grad", g, x, "gradient does not fit the gate's output");
    nb_tensor *out = nb_empty_like(x);
    const int64_t N = q.N, M = q.M;
    if (NB_DEVICE("gated_grad", x, g) == NB_CUDA) {
        nb__gpu_gated_grad(out->data, x->data, g->data, N, M);
    } else {
        for (int64_t nn = 0; nn < N; nn++) {
            const float *restrict xa = x->data + nn * 2 * M, *restrict xb = xa + M, *restrict pg = g->data + nn * M;
            float *restrict oa = out->data + nn * 2 * M, *restrict ob = oa + M;
            NB_PARALLEL_FOR(M, for (int64_t m = 0; m < M; m++) {
                float t = nb__vtanhf(xa[m]), s = nb__vsigmoidf(xb[m]), gi = pg[m];
                oa[m] = gi * (1.f - t * t) * s;
                ob[m] = gi * t * s * (1.f - s);
            });
        }
    }
    nb__record(&op_gate_grad, out, (nb_tensor *[]){x, g}, 2);
    return out;
}

/* --- eq. 31: μ-law companding --------------------------------------------- */

#define MU 255.0
float nb_mulaw_compress(float x) { /* eq. 31 */
    double a = fabs((double)x);
    if (a > 1) a = 1;
    double f = log1p(MU * a) / log1p(MU);
    return (float)(x < 0 ? -f : f);
}

float nb_mulaw_expand(float y) { /* the inverse of eq. 31 */
    double a = fabs((double)y);
    if (a > 1) a = 1;
    double x = (pow(1 + MU, a) - 1) / MU;
    return (float)(y < 0 ? -x : x);
}

int nb_mulaw_encode(float x) {
    if (isnan(x)) x = 0;
    double q = floor(((double)nb_mulaw_compress(x) + 1) / 2 * 255 + 0.5);
    return q < 0 ? 0 : q > 255 ? 255 : (int)q;
}

float nb_mulaw_decode(int q) {
    if (q < 0) q = 0;
    if (q > 255) q = 255;
    return nb_mulaw_expand((float)(2.0 * q / 255.0 - 1.0));
}

void nb_mulaw_encode_array(const float *x, int64_t n, int32_t *q) {
    for (int64_t i = 0; i < n; i++) q[i] = nb_mulaw_encode(x[i]);
}

void nb_mulaw_decode_array(const int32_t *q, int64_t n, float *x) {
    for (int64_t i = 0; i < n; i++) x[i] = nb_mulaw_decode(q[i]);
}

/* out = sign(x) ln(1 + μ|x|) / ln(1 + μ) elementwise (no clipping: the op
 * is smooth away from 0, with slope μ / ((1 + μ|x|) ln(1 + μ)));
 * dx = g μ / ((1 + μ|x|) ln(1 + μ)), written with ops.
 * At x = 0 eq. 31 is differentiable too (both one-sided slopes are
 * μ / ln(1 + μ), about 46), and that is the gradient given there. This
 * differs on purpose from PyTorch's autograd of the same expression,
 * torch.sign(x) * torch.log1p(μ * x.abs()) / log1p(μ), which gives 0 at an
 * exact 0 (sign'(0) = 0 and sign(0) = 0 zero both terms). */
static void mulaw_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0];
    nb_tensor *den = nb_add_scalar(nb_mul_scalar(nb_abs(x), (float)MU), 1.f);
    nb__accum(x, nb_mul(g, nb_mul_scalar(nb_pow(den, -1.f), (float)(MU / log1p(MU)))));
}
static const nb_op op_mulaw = {"mulaw", mulaw_bw};

nb_tensor *nb_mulaw(nb_tensor *x) {
    const float inv = (float)(1.0 / log1p(MU));
    if (nb__on_gpu(x)) { /* sign(x) log1p(μ|x|) / ln(1 + μ), the CPU's expression; this op's backward */
        bool old = nb_set_grad_enabled(false);
        nb_tensor *f = nb_empty_like(x);
        nb__gpu_unary(NB_GPU_ABS, f->data, x->data, x->size, 0.f);
        nb__gpu_unary(NB_GPU_LOG1P, f->data, f->data, x->size, (float)MU);
        nb_tensor *y = nb_mul(nb_sign(x), nb_mul_scalar(f, inv)); /* eq. 31 */
        nb_set_grad_enabled(old);
        nb__record(&op_mulaw, y, &x, 1); /* y was made untracked: it becomes this op's output */
        return y;
    }
    nb_tensor *out = nb_empty_like(x);
    for (int64_t i = 0; i < x->size; i++) {
        float v = x->data[i];
        float f = log1pf((float)MU * fabsf(v)) * inv;
        out->data[i] = v < 0 ? -f : f; /* eq. 31 */
    }
    nb__record(&op_mulaw, out, &x, 1);
    return out;
}
