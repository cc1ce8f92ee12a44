/* test_cuda_conv.c — conv2d (and conv1d through it) on the GPU against the
 * CPU: the output and the gradients of x, w and b on odd shapes with every
 * option (stride, per-side padding, dilation, the pointwise shortcut), the
 * gradient ops' own backward rules (a gradient's gradient), the
 * finite-difference and Hessian-vector checks on GPU tensors, a convolution
 * large enough to be cut into groups of images, and the same bits from two
 * runs. `make cuda-emu` runs them against the emulator, where any host
 * access to the GPU's memory faults. */
#include "test.h"
#include <stdlib.h>

/* One convolution: input [N, C, H, W], kernel [OC, C, KH, KW], options. */
typedef struct {
    int64_t N, C, H, W, OC, KH, KW;
    nb_conv2d_opts o;
} conv_case;

/* 0: "same" 3x3; 1: 5x2 with stride 2 and asymmetric padding; 2: dilation
 * 2 with a stride on one axis only; 3: both dilated and strided, padding on
 * one side; 4: padding beyond the kernel's reach (outputs that see only
 * padding, input rows no tap reads); 5: the kernel as large as the padded
 * input (one output); 6: 1x1 read as the image is (the pointwise shortcut);
 * 7: 1x1 strided and padded (not the shortcut); 8: OC = 16, where the CPU's
 * backward takes its direct kernels and the GPU must not. */
static const conv_case cases[] = {
    {3, 5, 11, 9, 7, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}},
    {3, 5, 11, 9, 7, 5, 2, {.stride_h = 2, .stride_w = 2, .pad_top = 2, .pad_left = 1, .pad_right = 3}},
    {3, 5, 11, 9, 7, 3, 3, {.stride_w = 2, .pad_top = 2, .pad_bottom = 1, .pad_right = 2, .dil_h = 2, .dil_w = 2}},
    {2, 3, 13, 10, 4, 5, 2, {.stride_h = 2, .stride_w = 3, .pad_left = 2, .dil_h = 2}},
    {2, 3, 5, 6, 3, 2, 3, {.pad_top = 3, .pad_bottom = 2, .pad_left = 3, .pad_right = 5, .dil_w = 2}},
    {2, 2, 4, 3, 3, 5, 4, {.pad_top = 1, .pad_left = 1}},
    {3, 5, 7, 9, 6, 1, 1, {0}},
    {3, 5, 7, 9, 6, 1, 1, {.stride_h = 2, .pad_top = 1, .pad_right = 1}},
    {2, 3, 9, 8, 16, 3, 3, {.pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1}},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static nb_tensor *f_conv(nb_tensor **in, void *ctx) {
    const conv_case *c = ctx;
    return nb_conv2d(in[0], in[1], in[2], &c->o);
}
static nb_tensor *f_conv_nobias(nb_tensor **in, void *ctx) {
    const conv_case *c = ctx;
    return nb_conv2d(in[0], in[1], NULL, &c->o);
}

static void case_inputs(const conv_case *c, nb_tensor **in) {
    in[0] = nb_test_param(4, (int64_t[]){c->N, c->C, c->H, c->W}, 1.f);
    in[1] = nb_test_param(4, (int64_t[]){c->OC, c->C, c->KH, c->KW}, 0.5f);
    in[2] = nb_test_param(1, (int64_t[]){c->OC}, 0.5f);
}

TEST(test_cuda_conv_parity) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    for (int t = 0; t < NCASES; t++) {
        nb_tensor *in[3];
        case_inputs(&cases[t], in);
        char what[48];
        snprintf(what, sizeof what, "conv2d case %d", t);
        double e = nb_test_gpu_parity(what, f_conv, in, 3, (void *)&cases[t], 1e-4);
        snprintf(what, sizeof what, "conv2d case %d without bias", t);
        double e2 = nb_test_gpu_parity(what, f_conv_nobias, in, 2, (void *)&cases[t], 1e-4);
        worst = fmax(worst, fmax(e, e2));
        nb_test_free_all(in, 3);
    }
    printf("     worst relative difference %.3g\n", worst);
}

/* The gradient as a function of (x, w), built with create_graph: d/dx or
 * d/dw of sum R y^2, y = conv2d(x, w). Its output is conv2d_grad_input's or
 * conv2d_grad_weight's, and its gradients come from those ops' backward
 * rules (convolutions again), all on the GPU. R lives on the host and is
 * moved to the inputs' device. */
typedef struct {
    const conv_case *c;
    nb_tensor *R;
    int which;
} gg_ctx;

static nb_tensor *f_conv_grad(nb_tensor **in, void *ctx) {
    gg_ctx *g = ctx;
    bool old = nb_set_grad_enabled(true);
    nb_tensor *y = nb_conv2d(in[0], in[1], NULL, &g->c->o);
    nb_tensor *L = nb_sum_all(nb_mul(nb_mul(y, y), nb_detach(nb_to(g->R, in[0]->device))));
    nb_tensor *d[2];
    nb_grad(L, in, 2, d, true);
    nb_set_grad_enabled(old);
    return d[g->which];
}

static int64_t out_len(int64_t in, int p0, int p1, int64_t k, int dil, int stride) {
    dil = dil ? dil : 1;
    stride = stride ? stride : 1;
    return (in + p0 + p1 - (dil * (k - 1) + 1)) / stride + 1;
}

TEST(test_cuda_conv_grad_of_grad_parity) {
    if (!nb_test_gpu()) return;
    double worst = 0;
    for (int t = 0; t < NCASES; t++) {
        const conv_case *c = &cases[t];
        nb_tensor *in[3];
        case_inputs(c, in);
        int64_t OH = out_len(c->H, c->o.pad_top, c->o.pad_bottom, c->KH, c->o.dil_h, c->o.stride_h);
        int64_t OW = out_len(c->W, c->o.pad_left, c->o.pad_right, c->KW, c->o.dil_w, c->o.stride_w);
        gg_ctx g = {c, nb_tensor_new(4, (int64_t[]){c->N, c->OC, OH, OW}), 0};
        nb_init_uniform(g.R, -1.f, 1.f, nb_test_rng());
        for (g.which = 0; g.which < 2; g.which++) {
            char what[64];
            snprintf(what, sizeof what, "grad of conv2d case %d wrt %s", t, g.which ? "w" : "x");
            worst = fmax(worst, nb_test_gpu_parity(what, f_conv_grad, in, 2, &g, 1e-4));
        }
        nb_tensor_free(g.R);
        nb_test_free_all(in, 3);
    }
    printf("     worst relative difference %.3g\n", worst);
}


/* A non-zero Hessian: L = sum R conv(x, w, b)^2. */
static nb_tensor *f_conv_sq(nb_tensor **in, void *ctx) { return nb_square(f_conv(in, ctx)); }

TEST(test_cuda_conv_gradcheck_and_hvp_on_gpu) {
    if (!nb_test_gpu()) return;
    nb_tensor *in[3];
    case_inputs(&cases[1], in); /* 5x2, stride 2, asymmetric padding */
    double eg = nb_gradcheck("GPU conv2d case 1", f_conv, nb_test_moved(in, 3, NB_CUDA), 3, (void *)&cases[1], 1e-2f, 3e-3f);
    nb_test_free_all(in, 3);
    /* double backward: conv2d's backward rule is conv2d_grad_input,
     * conv2d_grad_weight and two sums, each with a GPU path */
    static const conv_case small = {2, 2, 6, 5, 3, 3, 2, {.stride_w = 2, .pad_top = 1, .pad_right = 1, .dil_h = 2}};
    case_inputs(&small, in);
    double eh = nb_hvpcheck("GPU conv2d small (Hv)", f_conv_sq, nb_test_moved(in, 3, NB_CUDA), 3, (void *)&small, 3e-3f, 1e-2f);
    printf("     worst relative error: gradient %.3g, Hessian-vector product %.3g\n", eg, eh);
    nb_test_free_all(in, 3);
}

/* A convolution whose column matrices (K P = 243 x 25000 floats an image)
 * pass the GPU path's scratch limit for three images (2^24 floats), so the
 * batch is cut into groups of 2 and 1 images: the offsets of each group, a
 * short last group, and the weight gradient added across groups. */
TEST(test_cuda_conv_in_groups_of_images) {
    if (!nb_test_gpu()) return;
    static const conv_case big = {3, 3, 100, 250, 2, 9, 9,
                                  {.pad_top = 4, .pad_bottom = 4, .pad_left = 4, .pad_right = 4}};
    nb_tensor *in[3];
    case_inputs(&big, in);
    double e = nb_test_gpu_parity("conv2d in groups of images", f_conv, in, 3, (void *)&big, 1e-4);
    printf("     worst relative difference %.3g\n", e);
    nb_test_free_all(in, 3);
}

/* The same inputs twice on the GPU: the same bits (no atomics anywhere in
 * the forward or the backward). */
TEST(test_cuda_conv_deterministic) {
    if (!nb_test_gpu()) return;
    const conv_case *c = &cases[2];
    nb_tensor *in[3];
    case_inputs(c, in);
    nb_test_moved(in, 3, NB_CUDA);
    nb_tensor *out[2][4];
    for (int r = 0; r < 2; r++) {
        nb_arena_reset();
        nb_tensor *y = f_conv(in, (void *)c), *g[3];
        nb_grad(nb_sum_all(nb_square(y)), in, 3, g, false);
        out[r][0] = nb_test_to_host(y);
        for (int k = 0; k < 3; k++) out[r][k + 1] = nb_test_to_host(g[k]);
    }
    nb_test_same_runs("conv", out[0], out[1], 4);
    nb_arena_reset();
    nb_test_free_all(in, 3);
}

/* conv1d is conv2d on images of height 1, reshapes around it. */
typedef struct { int stride, pad, dil; bool causal; } c1_ctx;

static nb_tensor *f_conv1d(nb_tensor **in, void *ctx) {
    const c1_ctx *c = ctx;
    return nb_conv1d(in[0], in[1], in[2], c->stride, c->pad, c->dil, c->causal);
}

TEST(test_cuda_conv1d_parity) {
    if (!nb_test_gpu()) return;
    static const c1_ctx cs[] = {{1, 0, 2, true}, {2, 3, 1, false}};
    for (int t = 0; t < 2; t++) {
        nb_tensor *in[3] = {nb_test_param(3, (int64_t[]){3, 5, 17}, 1.f), nb_test_param(3, (int64_t[]){7, 5, 4}, 0.5f),
                            nb_test_param(1, (int64_t[]){7}, 0.5f)};
        char what[32];
        snprintf(what, sizeof what, "conv1d case %d", t);
        nb_test_gpu_parity(what, f_conv1d, in, 3, (void *)&cs[t], 1e-4);
        nb_test_free_all(in, 3);
    }
}
