/* test_threads.c — the library driven from several user threads (pthreads),
 * as nabla.h's "Threads" contract promises: threads that each train a
 * network of their own from the same seed get the serial run's numbers bit
 * for bit; threads that share one loaded network for inference get serial
 * inference's outputs; nb_set_threads reaches every thread's kernels, and a
 * classical fit's serial sections hold only its own thread to one; a
 * thread's step arena is its own and is given back when the thread ends;
 * log-mel spectrograms (FFTW) and model-file errors (cJSON) at once. Run
 * them under ThreadSanitizer with `make tsan`. */
#include "test.h"
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { NT = 4 };
static bool start_armed;

/* The threads of a test start their work together, so that it overlaps. */
static pthread_barrier_t start;
static void go(void) {
    if (start_armed) pthread_barrier_wait(&start);
}
static void arm_start(void) {
    pthread_barrier_init(&start, NULL, NT);
    start_armed = true;
}
static void disarm_start(void) {
    start_armed = false;
    pthread_barrier_destroy(&start);
}

static const char *NET = "[net]\ninput = 2x8x8\n"
                         "[conv2d]\nout = 4\nkernel = 3\npadding = 1\nactivation = relu\n"
                         "[maxpool]\nsize = 2\n"
                         "[flatten]\n"
                         "[dropout]\np = 0.25\n"
                         "[dense]\nout = 16\nactivation = tanh\n"
                         "[dense]\nout = 3\n";

/* A fixed batch: inputs from stream 1 of seed 99, labels from stream 2. */
static void batch(float *x, int32_t *y, int64_t n) {
    nb_rng r;
    nb_rng_seed(&r, 99, 1);
    for (int64_t i = 0; i < n * 128; i++) x[i] = (float)nb_rng_normal(&r);
    nb_rng_seed(&r, 99, 2);
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)nb_rng_below(&r, 3);
}

/* --- (a) each thread trains its own network -------------------------------- */

enum { TRAIN_N = 32, TRAIN_STEPS = 30, TRAIN_MAXP = 4096 };
typedef struct {
    float params[TRAIN_MAXP]; /* every parameter after training, in order */
    int nvalues;
    float loss;
} train_out;

/* Builds the network from seed 5, trains it with Adam for a few steps in the
 * thread's default arena, the dropout masks drawn from the global generator
 * (nb_manual_seed), and copies out the final weights and loss. */
static void *train_one(void *arg) {
    train_out *o = arg;
    go();
    nb_manual_seed(11);
    nb_rng r;
    nb_rng_seed(&r, 5, 0);
    nb_net *net = nb_net_parse(NET, "threads.cfg");
    if (!net || nb_net_build(net, 0, NULL, &r) != 0) {
        o->nvalues = -1;
        return NULL;
    }
    nb_param *p;
    int np = nb_net_params(net, &p);
    nb_optim *opt = nb_optim_new(&(nb_optim_opts){.kind = NB_ADAM, .lr = 0.01f}, p, np);
    float x[TRAIN_N * 128];
    int32_t y[TRAIN_N];
    batch(x, y, TRAIN_N);
    for (int s = 0; s < TRAIN_STEPS; s++) {
        nb_tensor *xb = nb_from_data(NB_SHAPE(TRAIN_N, 2, 8, 8), x);
        nb_tensor *loss = nb_cross_entropy(nb_net_forward(net, xb, true, NULL), y);
        o->loss = nb_item(loss);
        nb_backward(loss);
        nb_optim_step(opt);
        nb_optim_zero_grad(opt);
        nb_arena_reset();
    }
    o->nvalues = 0;
    for (int k = 0; k < np; k++)
        for (int64_t i = 0; i < p[k].t->size && o->nvalues < TRAIN_MAXP; i++) o->params[o->nvalues++] = p[k].t->data[i];
    nb_optim_free(opt);
    nb_net_free(net);
    return NULL;
}

TEST(test_threads_train_own_networks_bit_identical) {
    static train_out serial, out[NT];
    train_one(&serial);
    CHECK(serial.nvalues > 0 && isfinite(serial.loss));
    /* The main thread's generator was reseeded by the serial run: the
     * threads must not see it (each draws from a generator of its own). */
    nb_manual_seed(12345);
    pthread_t t[NT];
    arm_start();
    for (int k = 0; k < NT; k++) CHECK(pthread_create(&t[k], NULL, train_one, &out[k]) == 0);
    for (int k = 0; k < NT; k++) pthread_join(t[k], NULL);
    disarm_start();
    for (int k = 0; k < NT; k++) {
        CHECK_MSG(out[k].nvalues == serial.nvalues, "thread %d: %d values, serial %d", k, out[k].nvalues,
                  serial.nvalues);
        CHECK_MSG(out[k].loss == serial.loss, "thread %d: loss %.9g, serial %.9g", k, out[k].loss, serial.loss);
        CHECK_MSG(!memcmp(out[k].params, serial.params, sizeof(float) * (size_t)serial.nvalues),
                  "thread %d: trained weights differ from the serial run's", k);
    }
}

/* --- (b) threads share one loaded network for inference --------------------- */

enum { INFER_N = 8, INFER_BATCHES = 6, INFER_ROUNDS = 200 };
typedef struct {
    nb_net *net;
    const float *x;                            /* INFER_BATCHES batches of INFER_N */
    float out[INFER_BATCHES][INFER_N * 3];
    bool grad; /* leave gradient recording on (a tape in the thread's arena) */
} infer_job;

static void infer_all(infer_job *j) {
    bool old = nb_set_grad_enabled(j->grad);
    for (int round = 0; round < INFER_ROUNDS; round++)
        for (int b = 0; b < INFER_BATCHES; b++) {
            nb_tensor *xb = nb_from_data(NB_SHAPE(INFER_N, 2, 8, 8), j->x + (int64_t)b * INFER_N * 128);
            nb_tensor *logits = nb_net_forward(j->net, xb, false, NULL);
            memcpy(j->out[b], logits->data, sizeof j->out[b]);
            nb_arena_reset();
        }
    nb_set_grad_enabled(old);
}

static void *infer_thread(void *arg) {
    go();
    infer_all(arg);
    return NULL;
}

static char tdir[256];
static const char *tmpd(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tdir, sizeof tdir, "%s/nabla-threads-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tdir);
}

TEST(test_threads_share_one_loaded_network_for_inference) {
    const char *d = tmpd();
    CHECK(d != NULL);
    if (!d) return;
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", d);
    nb_net *built = nb_net_parse(NET, "threads.cfg");
    CHECK(built && nb_net_build(built, 0, NULL, nb_test_rng()) == 0);
    CHECK(nb_net_save(built, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    nb_net_free(built);
    nb_net *net = nb_net_load(path, NULL);
    CHECK(net != NULL);
    if (net) {
        static float x[INFER_BATCHES * INFER_N * 128];
        nb_rng r;
        nb_rng_seed(&r, 3, 0);
        for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (float)nb_rng_normal(&r);
        static infer_job serial, jobs[NT];
        serial = (infer_job){net, x, {{0}}, false};
        infer_all(&serial);
        pthread_t t[NT];
        arm_start();
        for (int k = 0; k < NT; k++) {
            jobs[k] = (infer_job){net, x, {{0}}, k % 2 == 1};
            CHECK(pthread_create(&t[k], NULL, infer_thread, &jobs[k]) == 0);
        }
        for (int k = 0; k < NT; k++) pthread_join(t[k], NULL);
        disarm_start();
        for (int k = 0; k < NT; k++)
            CHECK_MSG(!memcmp(jobs[k].out, serial.out, sizeof serial.out),
                      "thread %d: outputs differ from serial inference", k);
        nb_net_free(net);
    }
    unlink(path);
    rmdir(d);
}

/* --- the thread count reaches every thread ---------------------------------- */

typedef struct { int want, seen_lib, seen_omp; } count_job;

static void *count_thread(void *arg) {
    count_job *j = arg;
    /* Any op: its kernel would fork a team of omp_get_max_threads() had it
     * the work (too little here, so that `make tsan` sees no OpenMP). */
    nb_tensor *a = nb_full(NB_SHAPE(16), 1.f);
    (void)nb_add(a, a);
    j->seen_lib = nb_get_threads();
#ifdef _OPENMP
    j->seen_omp = omp_get_max_threads();
#else
    j->seen_omp = 1;
#endif
    nb_arena_reset();
    return NULL;
}

TEST(test_threads_set_threads_reaches_every_thread) {
    int old = nb_get_threads();
#ifdef _OPENMP
    int counts[] = {1, 3};
#else
    int counts[] = {1};
#endif
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        CHECK(nb_set_threads(counts[c]) == counts[c]);
        count_job j = {counts[c], 0, 0};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, count_thread, &j) == 0);
        pthread_join(t, NULL);
        CHECK_MSG(j.seen_lib == counts[c], "nb_get_threads() in a thread: %d after nb_set_threads(%d)", j.seen_lib,
                  counts[c]);
        CHECK_MSG(j.seen_omp == counts[c], "a thread's kernels fork %d threads after nb_set_threads(%d)", j.seen_omp,
                  counts[c]);
    }
    nb_set_threads(old);
}

/* --- each thread has a step arena of its own ----------------------------------- */

enum { BIG = 8 << 20 }; /* floats: 32 MiB, far above malloc's mmap threshold */

static void *arena_thread(void *arg) {
    nb_arena **seen = arg;
    *seen = nb_arena_current();
    nb_tensor *t = nb_full(NB_SHAPE(BIG), 2.f);
    (void)t;
    return NULL; /* no reset: the thread's end gives the arena back */
}

TEST(test_threads_default_arena_is_per_thread_and_freed_at_exit) {
    nb_arena_reset();
    size_t before = mallinfo2().hblkhd;
    nb_arena *seen[NT];
    pthread_t t[NT];
    for (int k = 0; k < NT; k++) CHECK(pthread_create(&t[k], NULL, arena_thread, &seen[k]) == 0);
    for (int k = 0; k < NT; k++) pthread_join(t[k], NULL);
    for (int k = 0; k < NT; k++) {
        CHECK_MSG(seen[k] != nb_arena_current(), "thread %d allocates in the main thread's arena", k);
        for (int m = 0; m < k; m++) CHECK_MSG(seen[k] != seen[m], "threads %d and %d share an arena", m, k);
    }
    size_t after = mallinfo2().hblkhd;
    CHECK_MSG(after < before + (size_t)BIG * sizeof(float),
              "%zu MiB of mapped memory more after the threads ended: their arenas were not given back",
              (after - before) >> 20);
}

/* --- log-mel spectrograms at once (FFTW's planner is not thread-safe) -------- */

enum { MEL_SAMPLES = 16000, MEL_REPS = 400 };
static float mel_wave[MEL_SAMPLES];

static void *mel_thread(void *arg) {
    nb_tensor *ref = arg;
    long bad = 0;
    go();
    for (int i = 0; i < MEL_REPS; i++) {
        nb_tensor *m = nb_logmel(mel_wave, MEL_SAMPLES, 16000, 40);
        if (!m || m->size != ref->size || memcmp(m->data, ref->data, sizeof(float) * (size_t)ref->size)) bad++;
        nb_tensor_free(m);
    }
    return (void *)bad;
}

TEST(test_threads_logmel_at_once) {
    for (int i = 0; i < MEL_SAMPLES; i++) mel_wave[i] = sinf(0.05f * (float)i) + 0.3f * sinf(0.31f * (float)i);
    nb_tensor *ref = nb_logmel(mel_wave, MEL_SAMPLES, 16000, 40);
    CHECK(ref != NULL);
    if (!ref) return;
    pthread_t t[NT];
    arm_start();
    for (int k = 0; k < NT; k++) CHECK(pthread_create(&t[k], NULL, mel_thread, ref) == 0);
    for (int k = 0; k < NT; k++) {
        void *bad;
        pthread_join(t[k], &bad);
        CHECK_MSG(bad == NULL, "thread %d: %ld of %d spectrograms differ from the serial one", k, (long)bad, MEL_REPS);
    }
    disarm_start();
    nb_tensor_free(ref);
}

/* --- malformed model files read at once: each error names its own place ---- */

enum { HDR_REPS = 100000 };
typedef struct {
    uint8_t buf[64];
    size_t len;
    char want[256]; /* the message of the serial read */
    long wrong;
} header_job;

/* A safetensors file whose JSON header breaks after `pad` spaces. */
static void bad_header(header_job *j, int pad) {
    char json[48];
    int n = snprintf(json, sizeof json, "{\"a\":%*s@}", pad, "");
    for (int b = 0; b < 8; b++) j->buf[b] = (uint8_t)((uint64_t)n >> (8 * b));
    memcpy(j->buf + 8, json, (size_t)n);
    j->len = 8 + (size_t)n;
}

static void *header_thread(void *arg) {
    header_job *j = arg;
    go();
    for (int i = 0; i < HDR_REPS; i++) {
        nb_safetensors *st = nb_st_parse(j->buf, j->len, "m.safetensors");
        if (st || strcmp(nb_errmsg(), j->want)) j->wrong++;
        nb_st_free(st);
    }
    return NULL;
}

TEST(test_threads_bad_model_headers_at_once) {
    static header_job jobs[NT];
    for (int k = 0; k < NT; k++) {
        bad_header(&jobs[k], 1 + 7 * k);
        CHECK(nb_st_parse(jobs[k].buf, jobs[k].len, "m.safetensors") == NULL);
        snprintf(jobs[k].want, sizeof jobs[k].want, "%s", nb_errmsg());
        CHECK_MSG(strstr(jobs[k].want, "not valid JSON") != NULL, "%s", jobs[k].want);
        jobs[k].wrong = 0;
    }
    pthread_t t[NT];
    arm_start();
    for (int k = 0; k < NT; k++) CHECK(pthread_create(&t[k], NULL, header_thread, &jobs[k]) == 0);
    for (int k = 0; k < NT; k++) pthread_join(t[k], NULL);
    disarm_start();
    for (int k = 0; k < NT; k++)
        CHECK_MSG(jobs[k].wrong == 0, "thread %d: %ld of %d reads did not say \"%s\"", k, jobs[k].wrong, HDR_REPS,
                  jobs[k].want);
}

/* --- a classical fit goes serial on its own thread only -------------------- */

static atomic_bool fits_done;

static void *fit_thread(void *arg) {
    const nb_tensor *X = arg;
    for (int i = 0; i < 300; i++) nb_factor_free(nb_factor_fit(X, &(nb_factor_opts){NB_FACTOR_PCA, 2, 0, 0}));
    atomic_store(&fits_done, true);
    return NULL;
}

TEST(test_threads_classical_fit_serial_on_its_own_thread) {
    int old = nb_get_threads();
    nb_set_threads(2);
    nb_tensor *X = nb_test_param(NB_SHAPE(60, 12), 1.f); /* d <= 256: the fit's sections run serial */
    atomic_store(&fits_done, false);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fit_thread, X) == 0);
    long looks = 0, other = 0;
    while (!atomic_load(&fits_done)) {
        looks++;
        if (nb_get_threads() != 2) other++;
    }
    pthread_join(t, NULL);
    CHECK_MSG(other == 0, "another thread's fit changed this thread's count in %ld of %ld looks", other, looks);
    nb_tensor_free(X);
    nb_set_threads(old);
}
