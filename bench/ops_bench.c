/* ops_bench.c — times each nabla op's forward + backward at realistic sizes,
 * plus OpenBLAS's own cblas_sgemm at the GEMM sizes (the reference for the
 * "GEMM within 10% of sgemm" target). bench/ops_torch.py runs the same cases
 * in PyTorch under the same names; bench/ops.sh joins the two.
 *
 * Every input is a persistent tensor that requires a gradient. One iteration
 * is: op forward, sum to a scalar (unless the op gives one), nb_backward,
 * nb_arena_reset. Gradients accumulate into .grad, as in a training step.
 * After warm-up, each repetition times enough iterations to last >= 2 ms and
 * the median over repetitions is reported, per iteration.
 *
 * Usage: ops_bench [--reps N] [--warmup N] [--threads T] [--cpu] [--list] [NAME...]
 * (NAMEs select cases whose name contains them; threads default to
 * $NABLA_THREADS, else all cores; --cpu times with the process's CPU time
 * instead of the wall clock: robust to other load, meaningful with 1 thread
 * only). Output, one line per case:
 *   name  ms  gflop  gflops      ('-' where FLOPs are not meaningful)
 * lines starting with '#' are comments. */
#include "nabla.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXIN 3

typedef struct bc {
    nb_tensor *in[MAXIN];
    int32_t *labels; /* cross-entropy labels or embedding indices */
    int64_t nlabels;
} bc;

typedef struct bcase {
    const char *name;
    nb_tensor *(*fn)(bc *); /* forward; NULL for the raw-sgemm cases */
    const char *shapes[MAXIN]; /* "128x784", ... ; NULL ends */
    double flop;             /* per iteration (forward + backward); 0: not meaningful */
    int positive;            /* inputs in [0.5, 1.5) (log), else [-1, 1) */
    int ints;                /* labels: values in [0, ints), count nlabels */
    int64_t nlabels;
    int nograd;              /* forward only, gradient recording off */
} bcase;

/* ---- forwards ---------------------------------------------------------- */
static nb_tensor *f_matmul(bc *b) { return nb_matmul(b->in[0], b->in[1]); }
static nb_tensor *f_linear(bc *b) { return nb_linear(b->in[0], b->in[1], b->in[2]); }
static nb_tensor *f_conv2d(bc *b) {
    nb_conv2d_opts o = {.pad_top = 2, .pad_bottom = 2, .pad_left = 2, .pad_right = 2};
    return nb_conv2d(b->in[0], b->in[1], b->in[2], &o);
}
static nb_tensor *f_conv1d(bc *b) { return nb_conv1d(b->in[0], b->in[1], b->in[2], 1, 0, 4, true); }
static nb_tensor *f_maxpool(bc *b) { return nb_maxpool2d(b->in[0], 2, 0, 0); }
static nb_tensor *f_avgpool(bc *b) { return nb_avgpool2d(b->in[0], 2, 0, 0); }
static nb_tensor *f_relu(bc *b) { return nb_relu(b->in[0]); }
static nb_tensor *f_sigmoid(bc *b) { return nb_sigmoid(b->in[0]); }
static nb_tensor *f_tanh(bc *b) { return nb_tanh(b->in[0]); }
static nb_tensor *f_softmax(bc *b) { return nb_softmax(b->in[0], -1); }
static nb_tensor *f_log_softmax(bc *b) { return nb_log_softmax(b->in[0], -1); }
static nb_tensor *f_xent(bc *b) { return nb_cross_entropy(b->in[0], b->labels); }
static nb_tensor *f_add(bc *b) { return nb_add(b->in[0], b->in[1]); }
static nb_tensor *f_mul(bc *b) { return nb_mul(b->in[0], b->in[1]); }
static nb_tensor *f_sum(bc *b) { return nb_sum_all(b->in[0]); }
static nb_tensor *f_mean1(bc *b) { return nb_mean(b->in[0], (int[]){1}, 1, false); }
static nb_tensor *f_exp(bc *b) { return nb_exp(b->in[0]); }
static nb_tensor *f_log(bc *b) { return nb_log(b->in[0]); }
static nb_tensor *f_embedding(bc *b) { return nb_embedding(b->in[0], b->labels, b->nlabels); }
static nb_tensor *f_dropout(bc *b) { return nb_dropout(b->in[0], 0.5f, true, NULL); }

#define MM(m, k, n) (2.0 * (m) * (k) * (n))
/* conv FLOPs: 2 * N * OC * OH * OW * C * KH * KW, forward */
#define CONV(n, oc, oh, ow, c, kh, kw) (2.0 * (n) * (oc) * (oh) * (ow) * (c) * (kh) * (kw))

static const bcase cases[] = {
    /* GEMM: nabla vs OpenBLAS. Forward+backward is three GEMMs of the same size. */
    {"matmul_128x784x256", f_matmul, {"128x784", "784x256"}, 3 * MM(128, 784, 256)},
    {"matmul_fwd_128x784x256", f_matmul, {"128x784", "784x256"}, MM(128, 784, 256), .nograd = 1},
    {"sgemm_128x784x256", NULL, {"128x784", "784x256"}, MM(128, 784, 256)},
    {"sgemm3_128x784x256", NULL, {"128x784", "784x256"}, 3 * MM(128, 784, 256)},
    {"bmm_32x128x64x128", f_matmul, {"32x128x64", "32x64x128"}, 3 * 32 * MM(128, 64, 128)},
    {"linear_128x784x256", f_linear, {"128x784", "256x784", "256"}, 3 * MM(128, 784, 256)},
    {"linear_128x256x128", f_linear, {"128x256", "128x256", "128"}, 3 * MM(128, 256, 128)},
    /* the CNN's two convolutions, batch 128 */
    {"conv2d_1to16_5x5_28", f_conv2d, {"128x1x28x28", "16x1x5x5", "16"}, 3 * CONV(128, 16, 28, 28, 1, 5, 5)},
    {"conv2d_16to32_5x5_14", f_conv2d, {"128x16x14x14", "32x16x5x5", "32"}, 3 * CONV(128, 32, 14, 14, 16, 5, 5)},
    /* WaveNet-style dilated causal conv1d */
    {"conv1d_32to32_k2_d4_causal", f_conv1d, {"16x32x1000", "32x32x2", "32"}, 3 * CONV(16, 32, 1, 1000, 32, 1, 2)},
    {"maxpool2_128x16x28x28", f_maxpool, {"128x16x28x28"}, 0},
    {"avgpool2_128x16x28x28", f_avgpool, {"128x16x28x28"}, 0},
    {"relu_128x10", f_relu, {"128x10"}, 0},
    {"relu_128x256", f_relu, {"128x256"}, 0},
    {"relu_128x16x28x28", f_relu, {"128x16x28x28"}, 0},
    {"sigmoid_128x10", f_sigmoid, {"128x10"}, 0},
    {"sigmoid_128x256", f_sigmoid, {"128x256"}, 0},
    {"sigmoid_128x16x28x28", f_sigmoid, {"128x16x28x28"}, 0},
    {"tanh_128x10", f_tanh, {"128x10"}, 0},
    {"tanh_128x256", f_tanh, {"128x256"}, 0},
    {"tanh_128x16x28x28", f_tanh, {"128x16x28x28"}, 0},
    {"softmax_128x10", f_softmax, {"128x10"}, 0},
    {"softmax_128x1000", f_softmax, {"128x1000"}, 0},
    {"softmax_128x256x256", f_softmax, {"128x256x256"}, 0},
    {"log_softmax_128x10", f_log_softmax, {"128x10"}, 0},
    {"log_softmax_128x1000", f_log_softmax, {"128x1000"}, 0},
    {"cross_entropy_128x10", f_xent, {"128x10"}, 0, .ints = 10, .nlabels = 128},
    {"cross_entropy_128x1000", f_xent, {"128x1000"}, 0, .ints = 1000, .nlabels = 128},
    {"add_bias_128x256+256", f_add, {"128x256", "256"}, 0},
    {"add_bias_128x16x28x28+16x1x1", f_add, {"128x16x28x28", "16x1x1"}, 0},
    {"add_128x16x28x28", f_add, {"128x16x28x28", "128x16x28x28"}, 0},
    {"mul_128x16x28x28", f_mul, {"128x16x28x28", "128x16x28x28"}, 0},
    {"sum_128x16x28x28", f_sum, {"128x16x28x28"}, 0},
    {"mean_axis1_128x256x64", f_mean1, {"128x256x64"}, 0},
    {"exp_128x16x28x28", f_exp, {"128x16x28x28"}, 0},
    {"log_128x16x28x28", f_log, {"128x16x28x28"}, 0, .positive = 1},
    {"embedding_10000x128_n4096", f_embedding, {"10000x128"}, 0, .ints = 10000, .nlabels = 4096},
    {"dropout_128x256", f_dropout, {"128x256"}, 0},
    {"dropout_128x16x28x28", f_dropout, {"128x16x28x28"}, 0},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_shape(const char *s, int64_t *shape) {
    int nd = 0;
    for (char *end; *s && nd < NB_MAXDIM; s = *end ? end + 1 : end) shape[nd++] = strtoll(s, &end, 10);
    return nd;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One iteration of case c. */
static void step(const bcase *c, bc *b) {
    if (!c->fn) { /* raw OpenBLAS: C = A B, and for sgemm3 also A^T C and C B^T, as backward does */
        nb_tensor *A = b->in[0], *B = b->in[1];
        int M = (int)A->shape[0], K = (int)A->shape[1], N = (int)B->shape[1];
        float *C = nb_arena_alloc(sizeof(float) * (size_t)M * N);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A->data, K, B->data, N, 0, C, N);
        if (c->flop > MM(M, K, N)) {
            float *dA = nb_arena_alloc(sizeof(float) * (size_t)M * K);
            float *dB = nb_arena_alloc(sizeof(float) * (size_t)K * N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, N, 1, C, N, B->data, N, 0, dA, K);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, M, 1, A->data, K, C, N, 0, dB, N);
        }
    } else if (c->nograd) {
        bool old = nb_set_grad_enabled(false);
        c->fn(b);
        nb_set_grad_enabled(old);
    } else {
        nb_tensor *y = c->fn(b);
        nb_backward(y->size == 1 ? y : nb_sum_all(y));
    }
    nb_arena_reset();
}

static void run_case(const bcase *c, int reps, int warmup, nb_rng *rng) {
    bc b = {0};
    for (int k = 0; k < MAXIN && c->shapes[k]; k++) {
        int64_t shape[NB_MAXDIM];
        int nd = parse_shape(c->shapes[k], shape);
        b.in[k] = nb_tensor_new(nd, shape);
        if (c->positive) nb_init_uniform(b.in[k], 0.5f, 1.5f, rng);
        else nb_init_uniform(b.in[k], -1.f, 1.f, rng);
        if (c->fn && !c->nograd) nb_requires_grad(b.in[k], true);
    }
    if (c->ints) {
        b.nlabels = c->nlabels;
        b.labels = malloc(sizeof(int32_t) * (size_t)b.nlabels);
        for (int64_t i = 0; i < b.nlabels; i++) b.labels[i] = (int32_t)nb_rng_below(rng, (uint32_t)c->ints);
    }
    /* warm-up (also sizes the arena), then calibrate iterations per repetition */
    double t0 = now();
    int w = 0;
    do step(c, &b), w++;
    while (w < warmup || now() - t0 < 0.05);
    double one = (now() - t0) / w;
    int inner = one >= 2e-3 ? 1 : (int)(2e-3 / one) + 1;
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (int r = 0; r < reps; r++) {
        double s = now();
        for (int i = 0; i < inner; i++) step(c, &b);
        t[r] = (now() - s) / inner;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    if (c->flop > 0)
        printf("%-32s %10.4f %8.4f %8.2f\n", c->name, 1e3 * med, 1e-9 * c->flop, 1e-9 * c->flop / med);
    else
        printf("%-32s %10.4f %8s %8s\n", c->name, 1e3 * med, "-", "-");
    fflush(stdout);
    free(t);
    free(b.labels);
    for (int k = 0; k < MAXIN; k++) nb_tensor_free(b.in[k]);
}

int main(int argc, char **argv) {
    int reps = 21, warmup = 3, threads = 0, list = 0, nsel = 0;
    const char *sel[64];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--cpu")) clock_id = CLOCK_PROCESS_CPUTIME_ID;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: %s [--reps N] [--warmup N] [--threads T] [--cpu] [--list] [NAME...]\n", argv[0]);
            return 2;
        } else if (nsel < 64) sel[nsel++] = argv[i];
    }
    if (reps < 1) reps = 1;
    threads = nb_set_threads(threads);
    nb_manual_seed(1);
    nb_rng rng;
    nb_rng_seed(&rng, 42, 1);
    if (!list) printf("# nabla ops_bench: threads %d, median of %d reps, forward+backward, %s time\n"
                      "# %-30s %10s %8s %8s\n", threads, reps, clock_id == CLOCK_MONOTONIC ? "wall" : "CPU",
                      "name", "ms", "gflop", "gflops");
    for (int i = 0; i < NCASES; i++) {
        int want = nsel == 0;
        for (int k = 0; k < nsel; k++) want |= strstr(cases[i].name, sel[k]) != NULL;
        if (!want) continue;
        if (list) puts(cases[i].name);
        else run_case(&cases[i], reps, warmup, &rng);
    }
    return 0;
}
