/* wavenet.c — WaveNet (notes §4.5): a stack of dilated causal convolutions
 * over μ-law samples (eq. 31) with gated units (eq. 32), residual and skip
 * connections and a 256-way softmax over the next sample (eq. 30);
 * optionally conditioned on a speaker (eq. 34) and on a second time series
 * upsampled by a learned transposed convolution (eq. 33). Training runs the
 * whole segment through nb_* ops; generation runs one sample at a time with
 * a queue of past activations per layer (O(layers) per sample), or naively
 * over the receptive field with the same arithmetic, for checking. */
#include "../core/internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define Q NB_WAVENET_CLASSES

typedef struct {
    nb_tensor *dil_w, *dil_b;   /* [2R, R, 2], [2R] */
    nb_tensor *spk_w;           /* [2R, nspeakers] or NULL */
    nb_tensor *cond_w;          /* [2R, D, 1] or NULL */
    nb_tensor *res_w, *res_b;   /* [R, R, 1], [R]; NULL in the last layer */
    nb_tensor *skip_w, *skip_b; /* [S, R, 1], [S] */
    int dilation;
} wn_layer;

struct nb_wavenet {
    nb_wavenet_config cfg;
    int nl;
    wn_layer *layer;
    nb_tensor *embed;                  /* [256, R] */
    nb_tensor *out1_w, *out1_b;        /* [S, S, 1], [S] */
    nb_tensor *out2_w, *out2_b;        /* [256, S, 1], [256] */
    nb_tensor *up_w, *up_b;            /* [D, D, hop], [D] or NULL */
    nb_tensor *feat_mean, *feat_scale; /* [D]: features enter as (f - mean) * scale; or NULL */
    nb_param *params;
    char **names;
    int np;
};

int64_t nb_wavenet_receptive_field(const nb_wavenet_config *c) {
    /* kernel 2: each layer of dilation d looks d samples further back */
    return (int64_t)c->stacks * (((int64_t)1 << c->layers) - 1) + 1;
}

int nb_wavenet_check_config(const nb_wavenet_config *c) {
    if (c->layers < 1 || c->layers > 16) return nb_error("wavenet: layers per stack must be in [1, 16], got %d", c->layers);
    if (c->stacks < 1 || c->stacks > 16) return nb_error("wavenet: stacks must be in [1, 16], got %d", c->stacks);
    if (c->residual < 1 || c->residual > 1024) return nb_error("wavenet: residual channels must be in [1, 1024], got %d", c->residual);
    if (c->skip < 1 || c->skip > 1024) return nb_error("wavenet: skip channels must be in [1, 1024], got %d", c->skip);
    if (c->nspeakers < 0 || c->nspeakers > 4096) return nb_error("wavenet: speakers must be in [0, 4096], got %d", c->nspeakers);
    if (c->cond_dim < 0 || c->cond_dim > 4096) return nb_error("wavenet: feature size must be in [0, 4096], got %d", c->cond_dim);
    if (c->cond_dim && (c->cond_hop < 1 || c->cond_hop > 65536))
        return nb_error("wavenet: samples per feature frame must be in [1, 65536], got %d", c->cond_hop);
    if (c->cond_channels < 0 || c->cond_channels > 4096)
        return nb_error("wavenet: conditioning channels must be in [0, 4096], got %d", c->cond_channels);
    return 0;
}

static nb_tensor *add_param(nb_wavenet *m, const char *name, int ndim, const int64_t *shape, bool decay) {
    nb_tensor *t = nb_tensor_new(ndim, shape);
    nb_requires_grad(t, true);
    m->params[m->np].t = t;
    m->params[m->np].decay = decay;
    m->names[m->np] = nb__xstrdup("a WaveNet parameter name", name);
    t->name = m->names[m->np];
    m->np++;
    return t;
}

/* PyTorch's default for Conv1d/Linear: U(+-1/sqrt(fan_in)) for weight and bias. */
static void init_pair(nb_tensor *w, nb_tensor *b, int64_t fan_in, nb_rng *r) {
    float a = (float)(1.0 / sqrt((double)fan_in));
    nb_init_uniform(w, -a, a, r);
    if (b) nb_init_uniform(b, -a, a, r);
}

/* The floats of every parameter nb_wavenet_new makes for c (checked), so a
 * loader can refuse a config its file cannot hold before allocating it: the
 * upsampling alone may ask for 4096 x 4096 x 65536. */
static int64_t param_count(const nb_wavenet_config *c) {
    int64_t R = c->residual, S = c->skip, D = c->cond_dim, C = D ? (c->cond_channels ? c->cond_channels : D) : 0;
    int64_t nl = (int64_t)c->layers * c->stacks;
    int64_t per = 4 * R * R + 2 * R + S * R + S + 2 * R * c->nspeakers + (D ? 2 * R * C : 0);
    int64_t n = Q * R + nl * per + (nl - 1) * (R * R + R) + S * S + S + Q * S + Q;
    return D ? n + D * C * c->cond_hop + C : n;
}

nb_wavenet *nb_wavenet_new(const nb_wavenet_config *c, nb_rng *r) {
    if (nb_wavenet_check_config(c)) return NULL;
    if (!r) r = nb_global_rng();
    nb_wavenet *m = nb__xcalloc("a WaveNet", 1, sizeof *m);
    m->cfg = *c;
    if (!m->cfg.cond_dim) m->cfg.cond_hop = 0, m->cfg.cond_channels = 0;
    else if (!m->cfg.cond_channels) m->cfg.cond_channels = m->cfg.cond_dim;
    m->nl = c->layers * c->stacks;
    m->layer = nb__xcalloc("a WaveNet", (size_t)m->nl, sizeof(wn_layer));
    int cap = 8 * m->nl + 8;
    m->params = nb__xcalloc("a WaveNet", (size_t)cap, sizeof(nb_param));
    m->names = nb__xcalloc("a WaveNet", (size_t)cap, sizeof(char *));
    int64_t R = c->residual, S = c->skip, D = c->cond_dim, C = m->cfg.cond_channels;
    char nm[64];
    m->embed = add_param(m, "embed.weight", NB_SHAPE(Q, R), false);
    nb_init_normal(m->embed, 0.f, 1.f, r);
    for (int k = 0; k < m->nl; k++) {
        wn_layer *L = &m->layer[k];
        L->dilation = 1 << (k % c->layers);
        snprintf(nm, sizeof nm, "layers.%d.dilated.weight", k);
        L->dil_w = add_param(m, nm, NB_SHAPE(2 * R, R, 2), true);
        snprintf(nm, sizeof nm, "layers.%d.dilated.bias", k);
        L->dil_b = add_param(m, nm, NB_SHAPE(2 * R), false);
        init_pair(L->dil_w, L->dil_b, 2 * R, r);
        if (c->nspeakers) {
            snprintf(nm, sizeof nm, "layers.%d.speaker.weight", k);
            L->spk_w = add_param(m, nm, NB_SHAPE(2 * R, c->nspeakers), true);
            init_pair(L->spk_w, NULL, c->nspeakers, r);
        }
        if (D) {
            snprintf(nm, sizeof nm, "layers.%d.cond.weight", k);
            L->cond_w = add_param(m, nm, NB_SHAPE(2 * R, C, 1), true);
            init_pair(L->cond_w, NULL, C, r);
        }
        if (k < m->nl - 1) {
            snprintf(nm, sizeof nm, "layers.%d.res.weight", k);
            L->res_w = add_param(m, nm, NB_SHAPE(R, R, 1), true);
            snprintf(nm, sizeof nm, "layers.%d.res.bias", k);
            L->res_b = add_param(m, nm, NB_SHAPE(R), false);
            init_pair(L->res_w, L->res_b, R, r);
        }
        snprintf(nm, sizeof nm, "layers.%d.skip.weight", k);
        L->skip_w = add_param(m, nm, NB_SHAPE(S, R, 1), true);
        snprintf(nm, sizeof nm, "layers.%d.skip.bias", k);
        L->skip_b = add_param(m, nm, NB_SHAPE(S), false);
        init_pair(L->skip_w, L->skip_b, R, r);
    }
    m->out1_w = add_param(m, "out1.weight", NB_SHAPE(S, S, 1), true);
    m->out1_b = add_param(m, "out1.bias", NB_SHAPE(S), false);
    init_pair(m->out1_w, m->out1_b, S, r);
    m->out2_w = add_param(m, "out2.weight", NB_SHAPE(Q, S, 1), true);
    m->out2_b = add_param(m, "out2.bias", NB_SHAPE(Q), false);
    init_pair(m->out2_w, m->out2_b, S, r);
    if (D) {
        /* stride = kernel: each output sample sees one frame, D inputs */
        m->up_w = add_param(m, "upsample.weight", NB_SHAPE(D, C, c->cond_hop), true);
        m->up_b = add_param(m, "upsample.bias", NB_SHAPE(C), false);
        init_pair(m->up_w, m->up_b, D, r);
        m->feat_mean = nb_tensor_new(NB_SHAPE(D)); /* zeros */
        m->feat_scale = nb_tensor_new(NB_SHAPE(D));
        for (int64_t j = 0; j < D; j++) m->feat_scale->data[j] = 1.f;
    }
    return m;
}

void nb_wavenet_free(nb_wavenet *m) {
    if (!m) return;
    for (int i = 0; i < m->np; i++) {
        nb_tensor_free(m->params[i].t);
        free(m->names[i]);
    }
    free(m->params);
    free(m->names);
    free(m->layer);
    nb_tensor_free(m->feat_mean);
    nb_tensor_free(m->feat_scale);
    free(m);
}

int nb_wavenet_fit_features(nb_wavenet *m, const nb_tensor *const *feats, int n) {
    int64_t D = m->cfg.cond_dim, frames = 0;
    if (!D) return nb_error("wavenet: the model has no local conditioning");
    double *sum = calloc((size_t)D, sizeof(double)), *sq = calloc((size_t)D, sizeof(double));
    if (!sum || !sq) nb_oom("feature statistics", sizeof(double) * (size_t)D);
    for (int i = 0; i < n; i++) {
        if (nb__host_only("wavenet", "a feature matrix", feats[i])) {
            free(sum), free(sq);
            return -1;
        }
        if (feats[i]->ndim != 2 || feats[i]->shape[1] != D) {
            free(sum), free(sq);
            return nb_error("wavenet: features %d are not [frames, %lld]", i, (long long)D);
        }
        for (int64_t f = 0; f < feats[i]->shape[0]; f++, frames++)
            for (int64_t j = 0; j < D; j++) {
                double v = feats[i]->data[f * D + j];
                sum[j] += v, sq[j] += v * v;
            }
    }
    if (!frames) {
        free(sum), free(sq);
        return nb_error("wavenet: no feature frames to take statistics of");
    }
    /* Standardized features keep the gates out of saturation at the start:
     * a log-mel band spans about -11.5 (the floor) to +5, and one-hot phones
     * are mostly 0. A constant band (sd ~ 0) is only centred. */
    for (int64_t j = 0; j < D; j++) {
        double mu = sum[j] / (double)frames, var = sq[j] / (double)frames - mu * mu;
        double sd = var > 1e-8 ? sqrt(var) : 0.0;
        m->feat_mean->data[j] = (float)mu;
        m->feat_scale->data[j] = sd > 1e-4 ? (float)(1.0 / sd) : 1.f;
    }
    free(sum), free(sq);
    return 0;
}

const nb_wavenet_config *nb_wavenet_get_config(const nb_wavenet *m) { return &m->cfg; }

int nb_wavenet_params(nb_wavenet *m, nb_param **params, const char *const **names) {
    if (params) *params = m->params;
    if (names) *names = (const char *const *)m->names;
    return m->np;
}

/* --- the graph (training, evaluation) ------------------------------------- */

nb_tensor *nb_wavenet_upsample(nb_wavenet *m, nb_tensor *feats) {
    if (!m->cfg.cond_dim) nb_fatal("wavenet_upsample", "the model has no local conditioning");
    if (feats->ndim != 3 || feats->shape[2] != m->cfg.cond_dim) {
        char s[96];
        nb_fatal("wavenet_upsample", "features must be [N, frames, %d], got %s", m->cfg.cond_dim,
                 nb_shape_str(feats, s, sizeof s));
    }
    /* eq. 33's y = f(h): [N, D, frames] -> [N, C, frames * hop] */
    return nb_conv_transpose1d(nb_permute(feats, (int[]){0, 2, 1}), m->up_w, m->up_b, m->cfg.cond_hop, 0);
}

nb_tensor *nb_wavenet_cond(nb_wavenet *m, const nb_tensor *feats, int64_t first, int64_t n) {
    NB_CPU_ONLY("wavenet_cond", (nb_tensor *)feats); /* features live on the host; the result may move */
    int64_t hop = m->cfg.cond_hop, frames = feats->shape[0];
    if (feats->ndim != 2 || feats->shape[1] != m->cfg.cond_dim || n < 1 || first < 0)
        nb_fatal("wavenet_cond", "features must be [frames, %d] and the span non-empty", m->cfg.cond_dim);
    int64_t f0 = first / hop, f1 = (first + n - 1) / hop; /* frames that cover the span */
    int64_t nf = f1 - f0 + 1, D = m->cfg.cond_dim;
    nb_tensor *h = nb_empty(NB_SHAPE(1, nf, D));
    const float *mu = m->feat_mean->data, *sc = m->feat_scale->data;
    for (int64_t f = 0; f < nf; f++) {
        int64_t src = f0 + f < frames ? f0 + f : frames - 1; /* past the end: the last frame */
        for (int64_t j = 0; j < D; j++) h->data[f * D + j] = (feats->data[src * D + j] - mu[j]) * sc[j];
    }
    /* standardized on the host, upsampled where the model is */
    nb_tensor *u = nb_wavenet_upsample(m, nb_to(h, m->up_w->device));
    int64_t off = first - f0 * hop;
    return nb_slice(u, 2, off, off + n);
}

nb_tensor *nb_wavenet_forward(nb_wavenet *m, const int32_t *x, int64_t N, int64_t L, const int32_t *speaker,
                              nb_tensor *cond) {
    const nb_wavenet_config *c = &m->cfg;
    int64_t R = c->residual;
    if (N < 1 || L < 1) nb_fatal("wavenet_forward", "empty batch");
    if (c->nspeakers && !speaker) nb_fatal("wavenet_forward", "the model needs a speaker per stream");
    if (c->cond_dim && (!cond || cond->ndim != 3 || cond->shape[0] != N || cond->shape[1] != c->cond_channels ||
                        cond->shape[2] != L))
        nb_fatal("wavenet_forward", "the model needs conditioning [%lld, %d, %lld]", (long long)N, c->cond_channels,
                 (long long)L);
    /* A model without features has no weights for them (cond_w NULL, which
     * the conditioning sum below dereferenced). */
    if (!c->cond_dim && cond) nb_fatal("wavenet_forward", "the model has no local conditioning, but cond was given");
    nb_tensor *e = nb_embedding(m->embed, x, N * L);
    nb_tensor *h = nb_permute(nb_reshape(e, 3, (int64_t[]){N, L, R}), (int[]){0, 2, 1}); /* [N, R, L] */
    nb_tensor *onehot = NULL;
    if (c->nspeakers) {
        for (int64_t i = 0; i < N; i++)
            if (speaker[i] < 0 || speaker[i] >= c->nspeakers)
                nb_fatal("wavenet_forward", "speaker %d out of range [0, %d)", speaker[i], c->nspeakers);
        onehot = nb_to(nb_one_hot(speaker, N, c->nspeakers), m->embed->device);
    }
    nb_tensor *skip = NULL;
    for (int k = 0; k < m->nl; k++) {
        wn_layer *Ly = &m->layer[k];
        nb_tensor *a = nb_conv1d_causal(h, Ly->dil_w, Ly->dil_b, Ly->dilation);
        if (onehot) /* eq. 34: V^T h inside both halves of the gate */
            a = nb_add(a, nb_reshape(nb_linear(onehot, Ly->spk_w, NULL), 3, (int64_t[]){N, 2 * R, 1}));
        if (cond) /* eq. 33: V * y, y the upsampled features */
            a = nb__conv1d_causal_add(a, cond, Ly->cond_w, NULL, 1);
        nb_tensor *z = nb_gated(a); /* eq. 32 */
        /* the skip and residual sums fused into their 1x1 convolutions */
        skip = skip ? nb__conv1d_causal_add(skip, z, Ly->skip_w, Ly->skip_b, 1)
                    : nb_conv1d_causal(z, Ly->skip_w, Ly->skip_b, 1);
        if (Ly->res_w) h = nb__conv1d_causal_add(h, z, Ly->res_w, Ly->res_b, 1);
    }
    nb_tensor *o = nb_conv1d_causal(nb_relu(skip), m->out1_w, m->out1_b, 1);
    return nb_conv1d_causal(nb_relu(o), m->out2_w, m->out2_b, 1); /* [N, 256, L] */
}

nb_tensor *nb_wavenet_loss(nb_wavenet *m, const int32_t *q, int64_t N, int64_t L, const int32_t *speaker,
                           nb_tensor *cond) {
    int32_t *x = nb_arena_alloc(sizeof(int32_t) * (size_t)(N * L)), *y = nb_arena_alloc(sizeof(int32_t) * (size_t)(N * L));
    for (int64_t n = 0; n < N; n++)
        for (int64_t t = 0; t < L; t++) {
            x[n * L + t] = q[n * (L + 1) + t];
            y[n * L + t] = q[n * (L + 1) + t + 1];
            if (x[n * L + t] < 0 || x[n * L + t] >= Q || y[n * L + t] < 0 || y[n * L + t] >= Q)
                nb_fatal("wavenet_loss", "sample values must be in [0, 256)");
        }
    nb_tensor *logits = nb_wavenet_forward(m, x, N, L, speaker, cond);
    /* eq. 30: -(1/NL) sum_t log p(x_t | x_<t), the classes on axis 1 */
    return nb__cross_entropy_channels(logits, y);
}

/* --- generation ------------------------------------------------------------
 * The weights repacked so that every product is a sequence of axpys over
 * output channels (vectorized, no reassociation): wt[j * out + o] = W[o, j].
 * The cached and the naive generator call the same per-position functions,
 * so they give bitwise the same numbers. */

typedef struct {
    float *dil;    /* [2R in (past R, then current R)][2R out] */
    float *spk;    /* [nspeakers][2R] or NULL */
    float *cond;   /* [C][2R] or NULL */
    float *res;    /* [R][R] or NULL */
    float *skip;   /* [R][S] */
    const float *dil_b, *res_b, *skip_b;
    int dilation;
} pk_layer;

typedef struct {
    int nl;
    int64_t R, S, D; /* D: the upsampled width (the config's cond_channels) */
    pk_layer *L;
    float *out1, *out2; /* [S][S], [S][256] */
    const float *out1_b, *out2_b, *embed;
    float *store;
} packed;

static void transpose_into(float *dst, const float *w, int64_t out, int64_t in, int64_t stride, int64_t off) {
    /* w[o * in * stride + j * stride + off] -> dst[j * out + o] */
    for (int64_t o = 0; o < out; o++)
        for (int64_t j = 0; j < in; j++) dst[j * out + o] = w[(o * in + j) * stride + off];
}

static void unpack(packed *p);

/* The packed weights of m, or NULL (out of memory: nb_errmsg says so). */
static packed *pack(const nb_wavenet *m) {
    const nb_wavenet_config *c = &m->cfg;
    packed *p = nb__calloc(1, sizeof *p);
    if (!p) return nb_error("out of memory for the packed WaveNet weights"), NULL;
    p->nl = m->nl, p->R = c->residual, p->S = c->skip, p->D = c->cond_channels;
    int64_t R = p->R, S = p->S, D = p->D, per = 4 * R * R + (int64_t)c->nspeakers * 2 * R + D * 2 * R + R * R + R * S;
    p->store = nb__malloc(sizeof(float) * (size_t)(per * m->nl + S * S + S * Q));
    p->L = nb__calloc((size_t)m->nl, sizeof(pk_layer));
    if (!p->store || !p->L) {
        unpack(p);
        return nb_error("out of memory for the packed WaveNet weights"), NULL;
    }
    float *w = p->store;
    for (int k = 0; k < m->nl; k++) {
        const wn_layer *Ly = &m->layer[k];
        pk_layer *P = &p->L[k];
        P->dilation = Ly->dilation;
        P->dil = w, w += 4 * R * R;
        transpose_into(P->dil, Ly->dil_w->data, 2 * R, R, 2, 0);             /* tap 0: x[t - d] */
        transpose_into(P->dil + R * 2 * R, Ly->dil_w->data, 2 * R, R, 2, 1); /* tap 1: x[t] */
        P->dil_b = Ly->dil_b->data;
        if (Ly->spk_w) {
            P->spk = w, w += (int64_t)c->nspeakers * 2 * R;
            transpose_into(P->spk, Ly->spk_w->data, 2 * R, c->nspeakers, 1, 0);
        }
        if (Ly->cond_w) {
            P->cond = w, w += D * 2 * R;
            transpose_into(P->cond, Ly->cond_w->data, 2 * R, D, 1, 0);
        }
        if (Ly->res_w) {
            P->res = w, w += R * R;
            transpose_into(P->res, Ly->res_w->data, R, R, 1, 0);
            P->res_b = Ly->res_b->data;
        }
        P->skip = w, w += R * S;
        transpose_into(P->skip, Ly->skip_w->data, S, R, 1, 0);
        P->skip_b = Ly->skip_b->data;
    }
    p->out1 = w, w += S * S;
    transpose_into(p->out1, m->out1_w->data, S, S, 1, 0);
    p->out2 = w;
    transpose_into(p->out2, m->out2_w->data, Q, S, 1, 0);
    p->out1_b = m->out1_b->data, p->out2_b = m->out2_b->data, p->embed = m->embed->data;
    return p;
}

static void unpack(packed *p) {
    if (!p) return;
    free(p->store);
    free(p->L);
    free(p);
}

/* y[0..out) = b + sum_j v[j] wt[j, :] (b NULL: zeros; add: y += instead). */
static inline void axpys(float *restrict y, const float *restrict wt, const float *restrict v, int64_t in, int64_t out,
                         const float *restrict b) {
    if (b) memcpy(y, b, sizeof(float) * (size_t)out);
    else memset(y, 0, sizeof(float) * (size_t)out);
    for (int64_t j = 0; j < in; j++) {
        const float vj = v[j];
        const float *restrict row = wt + j * out;
        for (int64_t o = 0; o < out; o++) y[o] += vj * row[o];
    }
}

/* One layer at one position: past = h[t - d], cur = h[t] (R each), extra
 * (2R, may be NULL) the speaker and feature terms. Writes h[t] of the next
 * layer into next (unless the last layer) and adds the skip output into
 * skip (S). scratch: 3R + S floats. */
static void layer_step(const packed *p, int k, const float *past, const float *cur, const float *extra, float *next,
                       float *skip, float *scratch) {
    const pk_layer *P = &p->L[k];
    const int64_t R = p->R, S = p->S;
    float *a = scratch, *z = scratch + 2 * R, *s = z + R;
    float pc[2048];
    memcpy(pc, past, sizeof(float) * (size_t)R);
    memcpy(pc + R, cur, sizeof(float) * (size_t)R);
    axpys(a, P->dil, pc, 2 * R, 2 * R, P->dil_b);
    if (extra)
        for (int64_t o = 0; o < 2 * R; o++) a[o] += extra[o];
    for (int64_t o = 0; o < R; o++) z[o] = tanhf(a[o]) * (1.f / (1.f + expf(-a[R + o]))); /* eq. 32 */
    axpys(s, P->skip, z, R, S, P->skip_b);
    for (int64_t o = 0; o < S; o++) skip[o] += s[o];
    if (P->res) {
        axpys(next, P->res, z, R, R, P->res_b);
        for (int64_t o = 0; o < R; o++) next[o] += cur[o];
    }
}

/* The head: logits (256) from the summed skip outputs (S). scratch: S. */
static void head(const packed *p, const float *skip, float *logits, float *scratch) {
    const int64_t S = p->S;
    float r[1024];
    for (int64_t o = 0; o < S; o++) r[o] = skip[o] > 0 ? skip[o] : 0;
    axpys(scratch, p->out1, r, S, S, p->out1_b);
    for (int64_t o = 0; o < S; o++) r[o] = scratch[o] > 0 ? scratch[o] : 0;
    axpys(logits, p->out2, r, S, Q, p->out2_b);
}

/* The per-layer extra term (speaker column plus V_k u_t), 2R floats, or NULL. */
static const float *layer_extra(const packed *p, int k, int speaker, const float *u, float *buf) {
    const pk_layer *P = &p->L[k];
    if (!P->spk && !P->cond) return NULL;
    const int64_t R2 = 2 * p->R;
    if (P->spk) memcpy(buf, P->spk + (int64_t)speaker * R2, sizeof(float) * (size_t)R2);
    else memset(buf, 0, sizeof(float) * (size_t)R2);
    if (P->cond)
        for (int64_t j = 0; j < p->D; j++) {
            const float uj = u[j];
            const float *row = P->cond + j * R2;
            for (int64_t o = 0; o < R2; o++) buf[o] += uj * row[o];
        }
    return buf;
}

/* Draws a class from softmax(logits / temperature) (0: the argmax) and
 * returns it; *logp gets log softmax(logits)[the class] at temperature 1 for
 * the class `forced` when forced >= 0 (then it is returned instead). */
static int draw(const float *logits, float temperature, nb_rng *r, int forced, double *logp) {
    double mx = logits[0];
    int best = 0;
    for (int i = 1; i < Q; i++)
        if (logits[i] > mx) mx = logits[i], best = i;
    int pick = best;
    if (forced < 0 && temperature > 0) {
        double p[Q], tot = 0;
        for (int i = 0; i < Q; i++) tot += p[i] = exp((logits[i] - mx) / temperature);
        double u = nb_rng_uniform(r) * tot, acc = 0;
        pick = Q - 1;
        for (int i = 0; i < Q; i++) {
            acc += p[i];
            if (u < acc) {
                pick = i;
                break;
            }
        }
    } else if (forced >= 0) {
        pick = forced;
    }
    if (logp) {
        double tot = 0;
        for (int i = 0; i < Q; i++) tot += exp(logits[i] - mx);
        *logp += logits[pick] - mx - log(tot);
    }
    return pick;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nb_wavenet_generate(const nb_wavenet *m, const nb_wavenet_gen_opts *o, int32_t *out, double *logprob) {
    const nb_wavenet_config *c = &m->cfg;
    int streams = o->streams > 0 ? o->streams : 1;
    int64_t n = o->samples;
    if (n < 1) return nb_error("wavenet generate: the number of samples must be positive");
    if (o->temperature < 0 || !isfinite(o->temperature)) return nb_error("wavenet generate: the temperature must be >= 0");
    if (c->nspeakers) {
        if (!o->speakers) return nb_error("wavenet generate: the model needs a speaker (0..%d)", c->nspeakers - 1);
        for (int s = 0; s < streams; s++)
            if (o->speakers[s] < 0 || o->speakers[s] >= c->nspeakers)
                return nb_error("wavenet generate: speaker %d out of range: the model knows %d (0..%d)", o->speakers[s],
                                c->nspeakers, c->nspeakers - 1);
    }
    if (c->cond_dim && (!o->cond || o->cond->ndim != 2 || o->cond->shape[0] != c->cond_channels || o->cond->shape[1] < n))
        return nb_error("wavenet generate: the model needs upsampled features [%d, >= %lld]", c->cond_channels,
                        (long long)n);
    packed *p = pack(m);
    if (!p) return -1;
    const int64_t R = p->R, S = p->S, D = p->D, RF = nb_wavenet_receptive_field(c);
    nb_rng *rng = nb__malloc(sizeof(nb_rng) * (size_t)streams);
    float *scratch = nb__malloc(sizeof(float) * (size_t)(3 * R + S + 2 * R + D + S + Q));
    int32_t *prev = nb__malloc(sizeof(int32_t) * (size_t)streams);
    float *ring = NULL, *h = NULL, *win = NULL;
    int64_t *roff = NULL, rtot = 0;
    /* naive_from: samples before it come from the cached path (the same
     * samples), so that the naive steps can be timed at full windows */
    int64_t naive_from = o->naive ? (o->naive_from > 0 ? o->naive_from : 0) : n;
    double naive_t0 = 0;
    int rc = 0;
    if (!rng || !scratch || !prev) {
        rc = nb_error("out of memory for the state of %d stream(s)", streams);
        goto done;
    }
    for (int s = 0; s < streams; s++) nb_rng_seed(&rng[s], o->seed, (uint64_t)s);
    float *extra = scratch + 3 * R + S, *u = extra + 2 * R, *hs = u + D, *logits = hs + S;
    for (int s = 0; s < streams; s++) prev[s] = 128; /* μ-law silence */
    if (logprob)
        for (int s = 0; s < streams; s++) logprob[s] = 0;
    if (naive_from > 0) {
        /* per stream, per layer: the last d inputs of the layer, at slot t mod d */
        if (!(roff = nb__malloc(sizeof(int64_t) * (size_t)(p->nl + 1)))) {
            rc = nb_error("out of memory for the cached layers' offsets");
            goto done;
        }
        for (int k = 0; k < p->nl; k++) roff[k] = rtot, rtot += p->L[k].dilation * R;
        ring = nb__calloc((size_t)rtot * (size_t)streams, sizeof(float));
        h = nb__malloc(sizeof(float) * (size_t)(2 * R));
        if (!ring || !h) {
            rc = nb_error("out of memory for the cached layers of %d stream(s): %.1f MiB", streams,
                          (double)rtot * (double)streams * sizeof(float) / 1048576.0);
            goto done;
        }
    }
    if (o->naive) {
        /* one window of RF positions per layer input (layers + 1 rows) */
        if (!(win = nb__malloc(sizeof(float) * (size_t)((p->nl + 1) * RF * R)))) {
            rc = nb_error("out of memory for --naive's windows: %.1f MiB",
                          (double)(p->nl + 1) * (double)RF * (double)R * sizeof(float) / 1048576.0);
            goto done;
        }
    }
    for (int64_t t = 0; t < n; t++) {
        if (t == naive_from) naive_t0 = now_seconds();
        if (D)
            for (int64_t j = 0; j < D; j++) u[j] = o->cond->data[j * o->cond->shape[1] + t];
        for (int s = 0; s < streams; s++) {
            int spk = c->nspeakers ? o->speakers[s] : 0;
            memset(hs, 0, sizeof(float) * (size_t)S);
            if (t < naive_from) {
                float *cur = h, *nxt = h + R, *rs = ring + rtot * s;
                memcpy(cur, p->embed + (int64_t)prev[s] * R, sizeof(float) * (size_t)R);
                for (int k = 0; k < p->nl; k++) {
                    int64_t d = p->L[k].dilation;
                    float *slot = rs + roff[k] + (t % d) * R; /* holds h[t - d] */
                    layer_step(p, k, slot, cur, layer_extra(p, k, spk, u, extra), nxt, hs, scratch);
                    memcpy(slot, cur, sizeof(float) * (size_t)R);
                    float *tmp = cur;
                    cur = nxt, nxt = tmp;
                }
            } else {
                /* recompute every layer over the window t - RF + 1 .. t */
                int64_t t0 = t - RF + 1;
                for (int64_t i = 0; i < RF; i++) {
                    int64_t tau = t0 + i;
                    float *row = win + i * R;
                    if (tau < 0) memset(row, 0, sizeof(float) * (size_t)R);
                    else {
                        int32_t qp = tau == 0 ? 128 : tau == t ? prev[s] : out[(int64_t)s * n + tau - 1];
                        memcpy(row, p->embed + (int64_t)qp * R, sizeof(float) * (size_t)R);
                    }
                }
                float zero[1024] = {0}, dummy[1024];
                for (int k = 0; k < p->nl; k++) {
                    int64_t d = p->L[k].dilation;
                    float *in = win + (int64_t)k * RF * R, *nx = in + RF * R;
                    for (int64_t i = 0; i < RF; i++) {
                        int64_t tau = t0 + i;
                        if (tau < 0) {
                            memset(nx + i * R, 0, sizeof(float) * (size_t)R);
                            continue;
                        }
                        const float *past = i >= d && tau - d >= 0 ? in + (i - d) * R : zero;
                        float *ui = u;
                        float ubuf[4096];
                        if (D && tau != t) {
                            for (int64_t j = 0; j < D; j++) ubuf[j] = o->cond->data[j * o->cond->shape[1] + tau];
                            ui = ubuf;
                        }
                        bool last = i == RF - 1;
                        if (!last) memset(dummy, 0, sizeof(float) * (size_t)S);
                        layer_step(p, k, past, in + i * R, layer_extra(p, k, spk, ui, extra), nx + i * R,
                                   last ? hs : dummy, scratch);
                    }
                }
            }
            head(p, hs, logits, scratch);
            int forced = o->force ? o->force[(int64_t)s * n + t] : -1;
            int pick = draw(logits, o->temperature, &rng[s], forced, logprob ? &logprob[s] : NULL);
            out[(int64_t)s * n + t] = pick;
            prev[s] = pick;
        }
    }
    if (o->naive_seconds) *o->naive_seconds = naive_from < n ? now_seconds() - naive_t0 : 0;
done:
    free(rng);
    free(scratch);
    free(prev);
    free(ring);
    free(roff);
    free(h);
    free(win);
    unpack(p);
    return rc;
}

/* --- model files ------------------------------------------------------------ */

int nb_wavenet_save(const nb_wavenet *m, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                    const char *const *extra_names, nb_tensor *const *extra, int nextra) {
    const nb_wavenet_config *c = &m->cfg;
    char v[8][24];
    int iv[8] = {c->layers, c->stacks, c->residual, c->skip, c->nspeakers, c->cond_dim, c->cond_hop, c->cond_channels};
    const char *kn[8] = {"nabla.wavenet.layers", "nabla.wavenet.stacks", "nabla.wavenet.residual",
                         "nabla.wavenet.skip", "nabla.wavenet.speakers", "nabla.wavenet.cond_dim",
                         "nabla.wavenet.cond_hop", "nabla.wavenet.cond_channels"};
    const char *own_keys[9] = {"nabla.model"}, *own_vals[9] = {"wavenet"};
    for (int i = 0; i < 8; i++) {
        snprintf(v[i], sizeof v[i], "%d", iv[i]);
        own_keys[1 + i] = kn[i], own_vals[1 + i] = v[i];
    }
    /* the feature statistics (not trained: no optimizer state) go with the
     * caller's extra tensors */
    int ne = nextra + (m->feat_mean ? 2 : 0);
    const char **en = malloc(sizeof(char *) * (size_t)(ne + 1));
    nb_tensor **et = malloc(sizeof(nb_tensor *) * (size_t)(ne + 1));
    if (!en || !et) {
        free(en), free(et);
        return nb_error("%s: out of memory", path);
    }
    ne = 0;
    if (m->feat_mean) {
        en[ne] = "cond_norm.mean", et[ne++] = m->feat_mean;
        en[ne] = "cond_norm.scale", et[ne++] = m->feat_scale;
    }
    for (int i = 0; i < nextra; i++) en[ne] = extra_names[i], et[ne++] = extra[i];
    int rc = nb__st_write_model(path, own_keys, own_vals, 9, keys, vals, nmeta, m->params,
                                (const char *const *)m->names, m->np, en, et, ne);
    free(en);
    free(et);
    return rc;
}

static int meta_int(const nb_safetensors *st, const char *path, const char *key, long lo, long hi, int *out) {
    long x;
    if (nb__st_meta_long(st, path, "wavenet", key, lo, hi, &x)) return -1;
    *out = (int)x;
    return 0;
}

int nb_wavenet_copy_params(nb_wavenet *m, const nb_safetensors *st, const char *path) {
    return nb__st_copy_params(st, path, m->params, (const char *const *)m->names, m->np, "the model", NULL);
}

nb_wavenet *nb_wavenet_load(const char *path, nb_safetensors **out_st) {
    if (out_st) *out_st = NULL;
    nb_safetensors *st = nb_st_read(path);
    if (!st) return NULL;
    const char *model = nb_st_meta(st, "nabla.model");
    nb_wavenet *m = NULL;
    if (!model || strcmp(model, "wavenet")) {
        nb__st_not_a(st, path, "a wavenet model");
        goto fail;
    }
    nb_wavenet_config c = {0};
    if (meta_int(st, path, "nabla.wavenet.layers", 1, 16, &c.layers) ||
        meta_int(st, path, "nabla.wavenet.stacks", 1, 16, &c.stacks) ||
        meta_int(st, path, "nabla.wavenet.residual", 1, 1024, &c.residual) ||
        meta_int(st, path, "nabla.wavenet.skip", 1, 1024, &c.skip) ||
        meta_int(st, path, "nabla.wavenet.speakers", 0, 4096, &c.nspeakers) ||
        meta_int(st, path, "nabla.wavenet.cond_dim", 0, 4096, &c.cond_dim) ||
        meta_int(st, path, "nabla.wavenet.cond_hop", 0, 65536, &c.cond_hop))
        goto fail;
    /* files written before the width could differ from D hold no key: C = D */
    if (nb_st_meta(st, "nabla.wavenet.cond_channels") &&
        meta_int(st, path, "nabla.wavenet.cond_channels", 0, 4096, &c.cond_channels))
        goto fail;
    /* refuse sizes the file cannot hold before allocating them */
    int64_t need = param_count(&c), have = 0;
    for (int i = 0; i < st->n; i++) have += st->entries[i].t->size;
    if (need > have) {
        nb_error("%s: the settings in __metadata__ need more parameters than the file holds", path);
        goto fail;
    }
    nb_rng r;
    nb_rng_seed(&r, 0, 0);
    m = nb_wavenet_new(&c, &r);
    if (!m) {
        nb_error("%s: %s", path, nb_errmsg());
        goto fail;
    }
    if (nb_wavenet_copy_params(m, st, path)) goto fail;
    if (m->feat_mean) { /* absent in files written before they were kept: identity */
        nb_tensor *mean = nb_st_get(st, "cond_norm.mean"), *scale = nb_st_get(st, "cond_norm.scale");
        if (!mean != !scale || (mean && (!nb_same_shape(mean, m->feat_mean) || !nb_same_shape(scale, m->feat_scale)))) {
            nb_error("%s: 'cond_norm.mean' and 'cond_norm.scale' must both be there, of shape [%d]", path, c.cond_dim);
            goto fail;
        }
        for (int64_t j = 0; mean && j < mean->size; j++)
            if (!isfinite(mean->data[j]) || !isfinite(scale->data[j]) || !(scale->data[j] > 0.f)) {
                nb_error("%s: cond_norm: feature %lld has mean %g and scale %g (finite, scale > 0 expected)", path,
                         (long long)j, mean->data[j], scale->data[j]);
                goto fail;
            }
        if (mean) nb_copy_into(m->feat_mean, mean), nb_copy_into(m->feat_scale, scale);
    }
    if (out_st) *out_st = st;
    else nb_st_free(st);
    return m;
fail:
    nb_wavenet_free(m);
    nb_st_free(st);
    return NULL;
}
