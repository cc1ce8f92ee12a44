/* style.c — neural style transfer and texture synthesis (notes §4.6, Gatys,
 * Ecker & Bethge): the content loss (eq. 1) and its gradient (eq. 2), Gram
 * matrices (eq. 3), the style loss per layer (eq. 4) and over layers
 * (eq. 5) with its gradient (eq. 6), the total loss (eq. 7); the feature
 * networks they are measured in (random multi-scale filters, VGG-19 from a
 * safetensors file, a nabla CNN model file); the targets and objective
 * that `nabla style` optimizes the pixels of x with.
 *
 * Every loss is made of differentiable ops (conv2d, relu, pools, matmul,
 * reductions), so autodiff gives the pixel gradient; the hand-derived
 * gradients of eq. 2 and eq. 6 exist to be checked against it. */
#include "../core/internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- the losses ---------------------------------------------------------- */

/* A feature map [1, N, H, W], [N, H, W] or [N, M] as the matrix F [N, M] of
 * the notes: row i is filter i's response at every position. */
static nb_tensor *as_matrix(nb_tensor *F) {
    if (F->ndim == 2) return F;
    if (F->ndim == 4 && F->shape[0] != 1)
        nb_fatal("style", "a feature map [1, N, H, W] is expected, got batch %lld", (long long)F->shape[0]);
    if (F->ndim != 3 && F->ndim != 4) nb_fatal("style", "a feature map has 2, 3 or 4 dims, not %d", F->ndim);
    int64_t n = F->shape[F->ndim - 3], m = F->shape[F->ndim - 2] * F->shape[F->ndim - 1];
    return nb_reshape(F, 2, (int64_t[]){n, m});
}

/* eq. 1: L_content = 1/2 sum_ij (F_ij - P_ij)^2 */
nb_tensor *nb_style_content_loss(nb_tensor *F, nb_tensor *P) {
    if (F->size != P->size) nb_fatal("style_content_loss", "F has %lld values, P %lld", (long long)F->size, (long long)P->size);
    nb_tensor *f = as_matrix(F), *p = as_matrix(P);
    /* Same size, other layout ([3, 4] and [4, 3]): refused here, not by the
     * subtraction in its own name. */
    if (!nb_same_shape(f, p)) nb__shape_fatal("style_content_loss", F, P, "F and P are different feature maps");
    nb_tensor *d = nb_sub(f, p);
    return nb_mul_scalar(nb_sum_all(nb_square(d)), 0.5f);
}

/* eq. 2: dL_content/dF_ij = (F - P)_ij where F_ij > 0, else 0 (the ReLU's
 * mask: F is the map after a ReLU, and the gradient reaching its input is
 * zero where it was cut). */
nb_tensor *nb_style_content_grad(const nb_tensor *F, const nb_tensor *P) {
    NB_CPU_ONLY("style_content_grad", (nb_tensor *)F, (nb_tensor *)P);
    if (F->size != P->size) nb_fatal("style_content_grad", "F has %lld values, P %lld", (long long)F->size, (long long)P->size);
    nb_tensor *g = nb_empty(F->ndim, F->shape);
    for (int64_t i = 0; i < F->size; i++) g->data[i] = F->data[i] > 0 ? F->data[i] - P->data[i] : 0.f;
    return g;
}

/* eq. 3: G_ij = <F_i, F_j> = sum_k F_ik F_jk */
nb_tensor *nb_gram(nb_tensor *F) {
    nb_tensor *m = as_matrix(F);
    return nb_matmul_t(m, m, false, true);
}

static void layer_sizes(const nb_tensor *F, int64_t *N, int64_t *M) {
    if (F->ndim == 2) {
        *N = F->shape[0];
        *M = F->shape[1];
    } else {
        *N = F->shape[F->ndim - 3];
        *M = F->shape[F->ndim - 2] * F->shape[F->ndim - 1];
    }
}

/* eq. 4: E_l = 1/(4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2, A the style image's
 * Gram matrix [N, N]. */
nb_tensor *nb_style_layer_loss(nb_tensor *F, nb_tensor *A) {
    int64_t N, M;
    layer_sizes(F, &N, &M);
    if (A->size != N * N) nb_fatal("style_layer_loss", "A has %lld values for %lld filters", (long long)A->size, (long long)N);
    nb_tensor *d = nb_sub(nb_gram(F), nb_reshape(A, 2, (int64_t[]){N, N}));
    double scale = 1.0 / (4.0 * (double)N * (double)N * (double)M * (double)M);
    return nb_mul_scalar(nb_sum_all(nb_square(d)), (float)scale);
}

/* eq. 6: dE_l/dF_ij = 1/(N^2 M^2) ((F^l)^T (G^l - A^l))_ji where F_ij > 0,
 * else 0. (F^T (G - A))_ji = ((G - A) F)_ij since G - A is symmetric;
 * computed in double, without the tape. */
nb_tensor *nb_style_layer_grad(const nb_tensor *F, const nb_tensor *A) {
    NB_CPU_ONLY("style_layer_grad", (nb_tensor *)F, (nb_tensor *)A);
    int64_t N, M;
    layer_sizes(F, &N, &M);
    if (A->size != N * N) nb_fatal("style_layer_grad", "A has %lld values for %lld filters", (long long)A->size, (long long)N);
    double *G = calloc((size_t)(N * N), sizeof(double));
    if (!G) nb_oom("a style gradient", 0);
    const float *f = F->data;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j <= i; j++) {
            double s = 0;
            for (int64_t k = 0; k < M; k++) s += (double)f[i * M + k] * f[j * M + k];
            G[i * N + j] = G[j * N + i] = s; /* eq. 3 */
        }
    for (int64_t i = 0; i < N * N; i++) G[i] -= A->data[i];
    nb_tensor *g = nb_empty(F->ndim, F->shape);
    double scale = 1.0 / ((double)N * (double)N * (double)M * (double)M);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < M; j++) {
            if (!(f[i * M + j] > 0)) {
                g->data[i * M + j] = 0.f;
                continue;
            }
            double s = 0;
            for (int64_t k = 0; k < N; k++) s += G[i * N + k] * f[k * M + j];
            g->data[i * M + j] = (float)(scale * s);
        }
    free(G);
    return g;
}

/* eq. 5: L_style = sum_l w_l E_l */
nb_tensor *nb_style_loss(nb_tensor *const *F, nb_tensor *const *A, const float *w, int L) {
    nb_tensor *sum = NULL;
    for (int l = 0; l < L; l++) {
        nb_tensor *e = nb_mul_scalar(nb_style_layer_loss(F[l], A[l]), w ? w[l] : 1.f / (float)L);
        sum = sum ? nb_add(sum, e) : e;
    }
    return sum ? sum : nb_scalar(0.f);
}

/* eq. 7: L_total = alpha L_content + beta L_style */
nb_tensor *nb_style_total_loss(nb_tensor *content, nb_tensor *style, float alpha, float beta) {
    nb_tensor *s = nb_mul_scalar(style, beta);
    return content ? nb_add(nb_mul_scalar(content, alpha), s) : s;
}

/* Total variation, a smoothness prior on the pixels (not in the notes):
 * the sum of squared differences between vertical and horizontal
 * neighbours of x [..., H, W]. */
nb_tensor *nb_tv_loss(nb_tensor *x) {
    /* A 1-D x had no H (shape[-1] was read), and H or W = 0 was caught by
     * a slice, named so. */
    if (x->ndim < 2 || x->shape[x->ndim - 2] < 1 || x->shape[x->ndim - 1] < 1) {
        char s[96];
        nb_fatal("tv_loss", "x must be [..., H, W] with H, W >= 1, got shape %s", nb_shape_str(x, s, sizeof s));
    }
    int h = x->ndim - 2, w = x->ndim - 1;
    nb_tensor *dv = nb_sub(nb_slice(x, h, 1, x->shape[h]), nb_slice(x, h, 0, x->shape[h] - 1));
    nb_tensor *dh = nb_sub(nb_slice(x, w, 1, x->shape[w]), nb_slice(x, w, 0, x->shape[w] - 1));
    return nb_add(nb_sum_all(nb_square(dv)), nb_sum_all(nb_square(dh)));
}

/* --- feature networks ---------------------------------------------------- */

typedef enum { SN_RANDOM, SN_VGG19, SN_MODEL } sn_kind;

#define SN_MAXLAYERS 64
struct nb_style_net {
    sn_kind kind;
    bool avg;                      /* average instead of max pooling (VGG-19) */
    int n;                         /* named layers */
    char *names[SN_MAXLAYERS];
    const char *cnames[SN_MAXLAYERS];
    int nconv;                     /* random, VGG: the convolutions loaded */
    nb_tensor *w[SN_MAXLAYERS], *b[SN_MAXLAYERS];
    int kernel;                    /* random: the filters' side */
    nb_tensor *mean, *istd;        /* [1, 3, 1, 1] ImageNet normalization */
    nb_net *net;                   /* model */
    int layer_of[SN_MAXLAYERS];    /* model: the net layer whose output is named layer i */
    int64_t in_shape[4];           /* model: C, H, W */
    nb_device device;              /* where the weights are */
};

static nb_style_net *sn_new(sn_kind k) {
    nb_style_net *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->kind = k;
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    float istd[3] = {1.f / std[0], 1.f / std[1], 1.f / std[2]};
    s->mean = nb_tensor_from(4, (int64_t[]){1, 3, 1, 1}, mean);
    s->istd = nb_tensor_from(4, (int64_t[]){1, 3, 1, 1}, istd);
    return s;
}

static void sn_name(nb_style_net *s, const char *name) {
    s->names[s->n] = nb__xstrdup("a style transfer", name);
    s->cnames[s->n] = s->names[s->n];
    s->n++;
}

void nb_style_net_free(nb_style_net *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->names[i]);
    for (int i = 0; i < s->nconv; i++) {
        nb_tensor_free(s->w[i]);
        nb_tensor_free(s->b[i]);
    }
    nb_tensor_free(s->mean);
    nb_tensor_free(s->istd);
    nb_net_free(s->net);
    free(s);
}

void nb_style_net_to(nb_style_net *s, nb_device d) {
    for (int i = 0; i < s->nconv; i++) {
        nb_tensor_move(s->w[i], d);
        nb_tensor_move(s->b[i], d);
    }
    nb_tensor_move(s->mean, d);
    nb_tensor_move(s->istd, d);
    if (s->net) nb_net_to(s->net, d);
    s->device = d;
}

nb_device nb_style_net_device(const nb_style_net *s) { return s->device; }

int nb_style_net_layers(const nb_style_net *s, const char *const **names) {
    if (names) *names = s->cnames;
    return s->n;
}

int nb_style_net_find(const nb_style_net *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return i;
    return -1;
}

bool nb_style_net_input_size(const nb_style_net *s, int64_t *h, int64_t *w) {
    if (s->kind != SN_MODEL) return false;
    *h = s->in_shape[1];
    *w = s->in_shape[2];
    return true;
}

/* Random multi-scale filters. The construction follows Ustyuzhaninov,
 * Brendel, Gatys & Bethge (2017), "What does it take to generate natural
 * textures?", whose finding is that one layer of random filters, followed
 * by a ReLU, at several spatial scales, already gives Gram-matrix textures
 * close to VGG's: no training, so nothing to download. Their multi-scale
 * net uses filters of sides 3 to 55 at full resolution; a 55 x 55 filter
 * costs 300 times a 3 x 3 one, so we reach the larger scales as a Gaussian
 * pyramid does: scale s (1-based) filters the image average-pooled by
 * 2^(s-1) with `kernel` x `kernel` filters, a receptive field of
 * kernel * 2^(s-1) pixels (7, 14, 28, 56, 112 for the defaults), at
 * 4^(s-1) times less cost. Filters are zero-mean Gaussian with He's
 * variance 2 / fan_in (so every scale's responses have a similar size),
 * biases zero; the input is normalized as for VGG. Layer "scaleS" is the
 * map after the ReLU at scale S. */
nb_style_net *nb_style_net_random(int scales, int channels, int kernel, uint64_t seed) {
    if (scales < 1 || scales > 8 || channels < 1 || channels > 4096 || kernel < 1 || kernel > 31) {
        nb_error("style_net_random: scales 1..8, channels 1..4096 and kernel 1..31 expected (got %d, %d, %d)", scales,
                 channels, kernel);
        return NULL;
    }
    nb_style_net *s = sn_new(SN_RANDOM);
    if (!s) return NULL;
    s->kernel = kernel;
    nb_rng r;
    nb_rng_seed(&r, seed, 17);
    for (int i = 0; i < scales; i++) {
        char name[32];
        snprintf(name, sizeof name, "scale%d", i + 1);
        sn_name(s, name);
        s->w[i] = nb_tensor_new(4, (int64_t[]){channels, 3, kernel, kernel});
        s->b[i] = nb_tensor_new(1, (int64_t[]){channels});
        nb_init_normal(s->w[i], 0.f, sqrtf(2.f / (float)(3 * kernel * kernel)), &r);
        s->nconv++;
    }
    return s;
}

/* VGG-19's convolutions in torchvision's `features`: indices and shapes.
 * Blocks of 2, 2, 4, 4, 4 convs (3x3, padding 1) with a ReLU after each and
 * a 2x2 pool after each block. */
static const int vgg_block[5] = {2, 2, 4, 4, 4};
static const int vgg_width[5] = {64, 128, 256, 512, 512};

nb_style_net *nb_style_net_vgg19(const char *path, int nlayers, bool avg_pool) {
    if (nlayers < 1 || nlayers > 16) nlayers = 16;
    nb_safetensors *st = nb_st_read(path);
    if (!st) return NULL;
    nb_style_net *s = sn_new(SN_VGG19);
    s->avg = avg_pool;
    int idx = 0, conv = 0, in = 3;
    for (int blk = 0; blk < 5 && conv < nlayers; blk++) {
        for (int j = 0; j < vgg_block[blk] && conv < nlayers; j++) {
            char wn[64], bn[64], name[32];
            snprintf(wn, sizeof wn, "features.%d.weight", idx);
            snprintf(bn, sizeof bn, "features.%d.bias", idx);
            snprintf(name, sizeof name, "conv%d_%d", blk + 1, j + 1);
            nb_tensor *w = nb_st_get(st, wn), *b = nb_st_get(st, bn);
            int oc = vgg_width[blk];
            if (!w || !b) {
                nb_error("%s: no tensor '%s' (VGG-19's %s): expected torchvision's vgg19 state_dict names, see the "
                         "README",
                         path, w ? bn : wn, name);
                goto fail;
            }
            if (w->ndim != 4 || w->shape[0] != oc || w->shape[1] != in || w->shape[2] != 3 || w->shape[3] != 3) {
                char sh[64];
                nb_error("%s: tensor '%s' (VGG-19's %s) has shape %s, expected [%d, %d, 3, 3]", path, wn, name,
                         nb_shape_str(w, sh, sizeof sh), oc, in);
                goto fail;
            }
            if (b->ndim != 1 || b->shape[0] != oc) {
                char sh[64];
                nb_error("%s: tensor '%s' (VGG-19's %s) has shape %s, expected [%d]", path, bn, name,
                         nb_shape_str(b, sh, sizeof sh), oc);
                goto fail;
            }
            s->w[conv] = nb_tensor_clone(w);
            s->b[conv] = nb_tensor_clone(b);
            s->nconv = ++conv;
            sn_name(s, name);
            in = oc;
            idx += 2; /* conv, relu */
        }
        idx++; /* the pool */
    }
    nb_st_free(st);
    return s;
fail:
    nb_st_free(st);
    nb_style_net_free(s);
    return NULL;
}

nb_style_net *nb_style_net_model(const char *path) {
    nb_net *net = nb_net_load(path, NULL);
    if (!net) return NULL;
    nb_style_net *s = sn_new(SN_MODEL);
    s->net = net;
    int nd = nb_net_input_shape(net, s->in_shape);
    if (nd != 3 || (s->in_shape[0] != 1 && s->in_shape[0] != 3)) {
        nb_error("%s: the network's input is not an image (C x H x W with 1 or 3 channels)", path);
        nb_style_net_free(s);
        return NULL;
    }
    nb_param *ps;
    int np = nb_net_params(net, &ps);
    for (int i = 0; i < np; i++) nb_requires_grad(ps[i].t, false); /* fixed: only x learns */
    /* The layers' names are known once a forward pass has run. */
    bool g = nb_set_grad_enabled(false);
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena); /* the caller's arena is left alone */
    nb_tensor *x = nb_zeros(4, (int64_t[]){1, s->in_shape[0], s->in_shape[1], s->in_shape[2]});
    nb_net_forward(net, x, false, NULL);
    nb_set_grad_enabled(g);
    int L = nb_net_layers(net);
    for (int i = 0; i < L && s->n < SN_MAXLAYERS; i++) {
        const char *nm = nb_net_layer_name(net, i);
        nb_tensor *o = nb_net_layer_output(net, i);
        if (strncmp(nm, "conv", 4) != 0 || !o || o->ndim != 4) continue;
        /* The map after the conv's activation when one follows it. */
        s->layer_of[s->n] = i + 1 < L && nb_net_layer_is_activation(net, i + 1) ? i + 1 : i;
        sn_name(s, nm);
    }
    nb_arena_use(old);
    nb_arena_free(arena);
    if (s->n == 0) {
        nb_error("%s: the network has no convolution layer to take features from", path);
        nb_style_net_free(s);
        return NULL;
    }
    return s;
}

int nb_style_net_forward(nb_style_net *s, nb_tensor *x, const int *want, int nwant, nb_tensor **out) {
    if (x->ndim != 4 || x->shape[0] != 1 || x->shape[1] != 3)
        nb_fatal("style_net_forward", "x must be [1, 3, H, W], got %d dims", x->ndim);
    int deepest = -1;
    for (int i = 0; i < nwant; i++) {
        if (want[i] < 0 || want[i] >= s->n) nb_fatal("style_net_forward", "layer %d of %d", want[i], s->n);
        if (want[i] > deepest) deepest = want[i];
        out[i] = NULL;
    }
    nb_tensor *feat[SN_MAXLAYERS] = {0};
    if (s->kind == SN_MODEL) {
        int64_t c = s->in_shape[0];
        if (x->shape[2] != s->in_shape[1] || x->shape[3] != s->in_shape[2])
            nb_fatal("style_net_forward", "the model takes %lldx%lld images", (long long)s->in_shape[1],
                     (long long)s->in_shape[2]);
        nb_tensor *in = c == 1 ? nb_mean(x, (int[]){1}, 1, true) : x; /* gray models: the mean of R, G, B */
        nb_net_forward(s->net, in, false, NULL);
        for (int i = 0; i <= deepest; i++) feat[i] = nb_net_layer_output(s->net, s->layer_of[i]);
    } else {
        nb_tensor *h = nb_mul(nb_sub(x, s->mean), s->istd);
        if (s->kind == SN_RANDOM) {
            int p = s->kernel / 2;
            nb_conv2d_opts o = {.pad_top = p, .pad_bottom = s->kernel - 1 - p, .pad_left = p,
                                .pad_right = s->kernel - 1 - p};
            for (int i = 0; i <= deepest; i++) {
                if (i > 0) {
                    if (h->shape[2] < 2 || h->shape[3] < 2)
                        nb_fatal("style_net_forward", "the image is too small for scale %d", i + 1);
                    h = nb_avgpool2d(h, 2, 2, 0);
                }
                feat[i] = nb_relu(nb_conv2d(h, s->w[i], s->b[i], &o));
            }
        } else {
            nb_conv2d_opts o = {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1};
            int i = 0;
            for (int blk = 0; blk < 5 && i <= deepest; blk++) {
                if (blk > 0) {
                    if (h->shape[2] < 2 || h->shape[3] < 2)
                        nb_fatal("style_net_forward", "the image is too small for block %d", blk + 1);
                    h = s->avg ? nb_avgpool2d(h, 2, 2, 0) : nb_maxpool2d(h, 2, 2, 0);
                }
                for (int j = 0; j < vgg_block[blk] && i <= deepest; j++, i++)
                    feat[i] = h = nb_relu(nb_conv2d(h, s->w[i], s->b[i], &o));
            }
        }
    }
    for (int i = 0; i < nwant; i++) out[i] = feat[want[i]];
    return 0;
}

/* --- the problem --------------------------------------------------------- */

struct nb_style {
    nb_style_net *net;
    int content_layer;             /* -1: texture synthesis */
    nb_tensor *P;                  /* content features (persistent) */
    int nstyle;
    int *style_layers;
    float *weights;
    nb_tensor **A;                 /* style Gram matrices (persistent) */
    float alpha, beta, tv;
};

static nb_tensor *as_batch(const nb_tensor *img, nb_device d) {
    /* [3, h, w] -> [1, 3, h, w] on d, a graph-free arena view (or copy) */
    nb_tensor *t = nb_to(nb_detach((nb_tensor *)img), d);
    return nb_reshape(t, 4, (int64_t[]){1, img->shape[0], img->shape[1], img->shape[2]});
}

nb_style *nb_style_new(nb_style_net *net, const nb_tensor *content, const nb_tensor *style, const nb_style_spec *sp) {
    if (!style || style->ndim != 3 || style->shape[0] != 3 || (content && (content->ndim != 3 || content->shape[0] != 3)))
        nb_fatal("style_new", "images must be [3, h, w]");
    if (sp->nstyle < 0 || sp->nstyle > SN_MAXLAYERS || (content && sp->content_layer < 0))
        nb_fatal("style_new", "bad layer spec");
    nb_style *s = nb__xcalloc("a style transfer", 1, sizeof *s);
    s->net = net;
    s->content_layer = content ? sp->content_layer : -1;
    s->nstyle = sp->nstyle;
    s->style_layers = nb__xmalloc("a style transfer", (size_t)(sp->nstyle + 1), sizeof(int));
    s->weights = nb__xmalloc("a style transfer", (size_t)(sp->nstyle + 1), sizeof(float));
    s->A = nb__xcalloc("a style transfer", (size_t)sp->nstyle + 1, sizeof(nb_tensor *));
    for (int i = 0; i < sp->nstyle; i++) {
        s->style_layers[i] = sp->style_layers[i];
        s->weights[i] = sp->style_weights ? sp->style_weights[i] : 1.f / (float)sp->nstyle;
    }
    s->alpha = sp->alpha;
    s->beta = sp->beta;
    s->tv = sp->tv;
    /* The targets are computed in an arena of their own: the caller's
     * arena tensors stay valid. */
    bool g = nb_set_grad_enabled(false);
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    nb_tensor *F[SN_MAXLAYERS];
    nb_style_net_forward(net, as_batch(style, net->device), s->style_layers, s->nstyle, F);
    for (int i = 0; i < s->nstyle; i++) s->A[i] = nb_tensor_clone(nb_gram(F[i])); /* eq. 3 for a */
    if (content) {
        nb_style_net_forward(net, as_batch(content, net->device), &s->content_layer, 1, F);
        s->P = nb_tensor_clone(F[0]);
    }
    nb_arena_use(old);
    nb_arena_free(arena);
    nb_set_grad_enabled(g);
    return s;
}

void nb_style_free(nb_style *s) {
    if (!s) return;
    for (int i = 0; i < s->nstyle; i++) nb_tensor_free(s->A[i]);
    nb_tensor_free(s->P);
    free(s->A);
    free(s->style_layers);
    free(s->weights);
    free(s);
}

nb_tensor *nb_style_objective(nb_style *s, nb_tensor *x, nb_style_losses *out) {
    int want[SN_MAXLAYERS + 1], n = 0;
    for (int i = 0; i < s->nstyle; i++) want[n++] = s->style_layers[i];
    if (s->content_layer >= 0) want[n++] = s->content_layer;
    nb_tensor *F[SN_MAXLAYERS + 1];
    nb_style_net_forward(s->net, x, want, n, F);
    nb_tensor *ls = nb_style_loss(F, s->A, s->weights, s->nstyle);            /* eq. 5 */
    nb_tensor *lc = s->content_layer >= 0 ? nb_style_content_loss(F[n - 1], s->P) : NULL; /* eq. 1 */
    nb_tensor *total = nb_style_total_loss(lc, ls, s->alpha, s->beta);        /* eq. 7 */
    nb_tensor *obj = s->tv > 0 ? nb_add(total, nb_mul_scalar(nb_tv_loss(x), s->tv)) : total;
    if (out) {
        out->content = lc ? nb_item(lc) : 0;
        out->style = nb_item(ls);
        out->total = nb_item(total);
        out->objective = nb_item(obj);
    }
    return obj;
}
