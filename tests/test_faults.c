/* test_faults.c — injected faults (src/core/fault.h): every writer of the
 * library, with open, write, fsync, close or rename failing at each of its
 * calls in turn, must report the file and the cause, return an error, leave
 * the previous file byte for byte and no temporary file; every reader, with
 * each of its allocations failing in turn, must say "out of memory" and
 * leak nothing (LeakSanitizer checks that under `make asan`). */
#include "test.h"
#include "../src/core/fault.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- scratch files ------------------------------------------------------- */

static char *tmp_dir(void) {
    const char *base = getenv("TMPDIR");
    char *d = malloc(512);
    snprintf(d, 512, "%s/nabla-fault-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(d)) {
        nb_test_fail(__FILE__, __LINE__, "mkdtemp failed");
        free(d);
        return NULL;
    }
    return d;
}

/* Removes the files of a flat scratch folder, then the folder. */
static void rm_dir(char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
    free(dir);
}

/* Entries of dir other than `keep`: what a failed write left behind. */
static int strays(const char *dir, const char *keep, char *first, size_t n) {
    DIR *d = opendir(dir);
    int k = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, keep)) continue;
        if (!k++) snprintf(first, n, "%s", e->d_name);
    }
    if (d) closedir(d);
    return k;
}

static void put_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(buf, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

/* The whole file with plain stdio (not through the seam), or NULL. */
static uint8_t *get_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += r) == cap) b = realloc(b, cap *= 2);
    fclose(f);
    *len = n;
    return b;
}

static bool same(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) {
    return a && b && na == nb && !memcmp(a, b, na);
}

/* --- the writer matrix ---------------------------------------------------- */

typedef int (*writer_fn)(const char *path, void *ctx);

static const nb__fault_op io_ops[] = {NB_FAULT_OPEN, NB_FAULT_WRITE, NB_FAULT_FSYNC, NB_FAULT_CLOSE, NB_FAULT_RENAME,
                                      NB_FAULT_ALLOC};
static const char *const op_name[NB_FAULT_NOPS] = {"open", "write", "fsync", "close", "rename", "read", "alloc"};

/* Runs write(path) once with every fault the seam can inject into it: each
 * call of each kind failing in turn (ENOSPC and EIO alternately, ENOMEM for
 * allocations), each write cut short, and a disk that stays full. After every
 * failure: -1, a message naming the file and the cause, the previous bytes
 * (or, when only the final fsync of the directory failed, the complete new
 * ones) and nothing else in the folder. Returns the faults injected. */
static long writer_matrix(const char *what, const char *file, writer_fn write, void *ctx) {
    char *dir = tmp_dir();
    if (!dir) return 0;
    char path[600], stray[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    static const char old[] = "the previous version of the file, which must survive any failure\n";
    put_file(path, old, sizeof old - 1);

    /* A clean run, counting the calls. */
    long count[NB_FAULT_NOPS], total = 0;
    CHECK(nb__fault_set("") == 0);
    int rc = write(path, ctx);
    for (int i = 0; i < NB_FAULT_NOPS; i++) count[i] = nb__fault_count((nb__fault_op)i);
    nb__fault_set(NULL);
    CHECK_MSG(rc == 0, "%s: clean write failed: %s", what, nb_errmsg());
    size_t nnew;
    uint8_t *fresh = get_file(path, &nnew);
    CHECK_MSG(fresh && !same(fresh, nnew, (const uint8_t *)old, sizeof old - 1), "%s: file not replaced", what);
    CHECK_MSG(count[NB_FAULT_OPEN] >= 1 && count[NB_FAULT_WRITE] >= 1 && count[NB_FAULT_FSYNC] >= 1 &&
                  count[NB_FAULT_CLOSE] >= 1 && count[NB_FAULT_RENAME] == 1,
              "%s: the writer bypasses the file layer (open %ld write %ld fsync %ld close %ld rename %ld)", what,
              count[NB_FAULT_OPEN], count[NB_FAULT_WRITE], count[NB_FAULT_FSYNC], count[NB_FAULT_CLOSE],
              count[NB_FAULT_RENAME]);

    for (size_t o = 0; o < sizeof io_ops / sizeof *io_ops; o++) {
        nb__fault_op op = io_ops[o];
        for (long k = 1; k <= count[op]; k++) {
            int err = op == NB_FAULT_ALLOC ? ENOMEM : k % 2 ? ENOSPC : EIO;
            char spec[64];
            snprintf(spec, sizeof spec, "%s:%ld:%s", op_name[op], k, err == ENOMEM ? "ENOMEM" : err == EIO ? "EIO" : "ENOSPC");
            put_file(path, old, sizeof old - 1);
            CHECK(nb__fault_set(spec) == 0);
            nb_clear_error();
            rc = write(path, ctx);
            long inj = nb__fault_injected();
            nb__fault_set(NULL);
            total += inj;
            CHECK_MSG(inj == 1, "%s %s: %ld faults injected, expected 1", what, spec, inj);
            size_t n;
            uint8_t *now = get_file(path, &n);
            const char *msg = nb_errmsg();
            if (rc == 0) {
                /* Only a failure of the directory's own open or close (after
                 * the rename) may go unreported: the data is in place. */
                CHECK_MSG(same(now, n, fresh, nnew), "%s %s: succeeded but the file is not the new one", what, spec);
                CHECK_MSG(op == NB_FAULT_OPEN || op == NB_FAULT_CLOSE, "%s %s: fault ignored", what, spec);
            } else {
                CHECK_MSG(rc == -1, "%s %s: returned %d", what, spec, rc);
                CHECK_MSG(strstr(msg, path), "%s %s: message does not name %s: '%s'", what, spec, path, msg);
                const char *cause = err == ENOMEM ? "out of memory" : strerror(err);
                CHECK_MSG(strstr(msg, cause), "%s %s: message lacks '%s': '%s'", what, spec, cause, msg);
                bool kept = same(now, n, (const uint8_t *)old, sizeof old - 1);
                bool late = strstr(msg, "written, but") && same(now, n, fresh, nnew);
                CHECK_MSG(kept || late, "%s %s: the previous file was damaged (%zu bytes now)", what, spec, n);
            }
            CHECK_MSG(strays(dir, file, stray, sizeof stray) == 0, "%s %s: left %s behind", what, spec, stray);
            free(now);
        }
    }

    /* Short writes are retried, whichever call is cut short; EINTR too. */
    for (long k = 1; k <= count[NB_FAULT_WRITE] + 1; k++) {
        char spec[64];
        snprintf(spec, sizeof spec, k <= count[NB_FAULT_WRITE] ? "write:%ld:short" : "write:%ld+:short", k);
        put_file(path, old, sizeof old - 1);
        CHECK(nb__fault_set(spec) == 0);
        rc = write(path, ctx);
        total += nb__fault_injected();
        nb__fault_set(NULL);
        size_t n;
        uint8_t *now = get_file(path, &n);
        CHECK_MSG(rc == 0 && same(now, n, fresh, nnew), "%s %s: a short write was not completed: %s", what, spec,
                  rc ? nb_errmsg() : "wrong bytes");
        free(now);
    }
    put_file(path, old, sizeof old - 1);
    CHECK(nb__fault_set("write:1:EINTR") == 0);
    rc = write(path, ctx);
    nb__fault_set(NULL);
    CHECK_MSG(rc == 0, "%s: an interrupted write was not retried: %s", what, nb_errmsg());

    /* A disk that stays full. */
    put_file(path, old, sizeof old - 1);
    CHECK(nb__fault_set("write:1+:ENOSPC") == 0);
    rc = write(path, ctx);
    nb__fault_set(NULL);
    size_t n;
    uint8_t *now = get_file(path, &n);
    CHECK_MSG(rc == -1 && strstr(nb_errmsg(), strerror(ENOSPC)), "%s: full disk: rc %d, '%s'", what, rc, nb_errmsg());
    CHECK_MSG(same(now, n, (const uint8_t *)old, sizeof old - 1), "%s: full disk damaged the previous file", what);
    CHECK_MSG(strays(dir, file, stray, sizeof stray) == 0, "%s: full disk left %s behind", what, stray);
    free(now);
    free(fresh);
    rm_dir(dir);
    return total;
}

/* --- the writers ---------------------------------------------------------- */

static nb_tensor *small_matrix(void) {
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)(i % 4 == 1 ? 0 : i - 5.5);
    return nb_tensor_from(2, (int64_t[]){3, 4}, v);
}

static int w_atomic_csv(const char *path, void *ctx) {
    static const char log[] = "epoch,step,loss,accuracy\n1,100,0.6931,0.51\n2,200,0.4123,0.83\n";
    return nb_write_file_atomic(path, log, sizeof log - 1);
}
static int w_st(const char *path, void *ctx) {
    nb_tensor *t = ctx;
    const char *names[] = {"a.weight", "b.bias"}, *keys[] = {"k"}, *vals[] = {"v"};
    return nb_st_write(path, names, (nb_tensor *const[]){t, t}, 2, keys, vals, 1);
}
static int w_npy(const char *path, void *ctx) { return nb_npy_write(path, ctx); }
static int w_libsvm(const char *path, void *ctx) {
    static const float y[3] = {1, -1, 2};
    return nb_libsvm_write(path, ctx, y);
}
static int w_png_rgb(const char *path, void *ctx) {
    uint8_t rgb[5 * 4 * 3];
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(i * 37);
    return nb_png_write_rgb(path, rgb, 5, 4);
}
static int w_png_gray(const char *path, void *ctx) {
    float img[6 * 3];
    for (int i = 0; i < 18; i++) img[i] = (float)i / 17.f;
    return nb_png_write_gray(path, img, 6, 3);
}
static int w_net(const char *path, void *ctx) {
    const char *keys[] = {"nabla.step"}, *vals[] = {"5"};
    return nb_net_save(ctx, path, keys, vals, 1, NULL, NULL, 0);
}
static int w_charrnn(const char *path, void *ctx) { return nb_charrnn_save(ctx, path, NULL, NULL, 0, NULL, NULL, 0); }
static int w_classic(const char *path, void *ctx) { return nb_classic_save(ctx, path, NULL, NULL, 0); }
static int w_wav(const char *path, void *ctx) {
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = 0.5f * (float)sin(0.3 * i);
    return nb_audio_write(path, x, 64, 16000);
}
static int w_jpeg(const char *path, void *ctx) {
    nb_tensor *img = nb_tensor_new(3, (int64_t[]){3, 6, 5});
    for (int64_t i = 0; i < img->size; i++) img->data[i] = (float)((i * 37) % 101) / 100.f;
    int rc = nb_image_write(path, img);
    nb_tensor_free(img);
    return rc;
}
static int w_wavenet(const char *path, void *ctx) { return nb_wavenet_save(ctx, path, NULL, NULL, 0, NULL, NULL, 0); }
/* A figure (cairo), saved in the format its name asks for: it is drawn at
 * save time, so one figure serves every call. */
static int w_figure(const char *path, void *ctx) { return nb_figure_save(ctx, path); }

TEST(test_faults_seam_parses_specs_and_counts) {
    CHECK(nb__fault_set("write:3:ENOSPC,rename:1,alloc:2+") == 0);
    CHECK(nb__fault_set("write:2:short") == 0);
    const char *bad[] = {"write", "write:0", "write:x", "wirte:1", "write:1:ENOPE", "fsync:1:short", "write:1,,", NULL};
    for (int i = 0; bad[i]; i++) {
        nb_clear_error();
        CHECK_MSG(nb__fault_set(bad[i]) == -1 && strstr(nb_errmsg(), "NABLA_FAULT"), "'%s' accepted", bad[i]);
    }
    /* Disarmed, nothing is counted; armed, every call is. */
    nb__fault_set(NULL);
    void *p = nb__malloc(8);
    free(p);
    CHECK(nb__fault_count(NB_FAULT_ALLOC) == 0);
    CHECK(nb__fault_set("alloc:2") == 0);
    void *a = nb__malloc(8), *b = nb__malloc(8), *c = nb__calloc(2, 8);
    CHECK(a && !b && c && errno == ENOMEM);
    CHECK(nb__fault_count(NB_FAULT_ALLOC) == 3 && nb__fault_injected() == 1);
    nb__fault_set(NULL);
    free(a);
    free(c);
}

TEST(test_faults_every_writer_survives_every_io_fault) {
    nb_tensor *m = small_matrix();
    long n = 0;
    n += writer_matrix("nb_write_file_atomic (CSV log)", "log.csv", w_atomic_csv, NULL);
    n += writer_matrix("nb_st_write", "t.safetensors", w_st, m);
    n += writer_matrix("nb_npy_write", "m.npy", w_npy, m);
    n += writer_matrix("nb_libsvm_write", "d.libsvm", w_libsvm, m);
    n += writer_matrix("nb_png_write_rgb", "c.png", w_png_rgb, NULL);
    n += writer_matrix("nb_png_write_gray", "g.png", w_png_gray, NULL);
    n += writer_matrix("nb_audio_write (WAV)", "a.wav", w_wav, NULL);
    n += writer_matrix("nb_image_write (JPEG)", "i.jpg", w_jpeg, NULL);
    static const double v[3] = {0.25, 0.5, 0.125};
    nb_figure *f = nb_figure_new(300, 200, 1, 1, "faults");
    CHECK(f && nb_figure_bars(f, 0, &(nb_bars){.title = "bars", .values = v, .n = 3}) == 0);
    if (f) {
        /* PNG: cairo's SVG and PDF output differ from one save to the next
         * (ids counted per process), which this byte-for-byte matrix cannot
         * compare; they leave through the same nb_write_file_atomic. */
        n += writer_matrix("nb_figure_save (PNG)", "f.png", w_figure, f);
    }
    nb_figure_free(f);
    CHECK(n > 40);
    printf("  %ld faults injected into 9 writers, each survived\n", n);
    nb_tensor_free(m);
}

TEST(test_faults_model_files_survive_every_io_fault) {
    nb_rng rng;
    nb_rng_seed(&rng, 7, 1);
    nb_net *net = nb_net_parse("[net]\ninput = 6\n[dense]\nout = 4\nactivation = relu\n[dense]\nout = 3\n", "f.cfg");
    CHECK(net && nb_net_build(net, 0, NULL, &rng) == 0);
    long n = 0;
    if (net) n += writer_matrix("nb_net_save", "net.safetensors", w_net, net);
    nb_net_free(net);

    const int32_t vocab[] = {'\n', 'a', 'b', 'c'};
    nb_charrnn *rnn = nb_charrnn_new(NB_CELL_LSTM, vocab, 4, 5, 1, &rng);
    CHECK_MSG(rnn != NULL, "charrnn: %s", nb_errmsg());
    if (rnn) n += writer_matrix("nb_charrnn_save", "rnn.safetensors", w_charrnn, rnn);
    nb_charrnn_free(rnn);

    nb_tensor *X = small_matrix();
    const float y[3] = {1, 2, 4};
    nb_linreg_opts o = {0};
    nb_classic cm = {.kind = "linreg", .linreg = nb_linreg_fit(X, y, &o)};
    CHECK_MSG(cm.linreg != NULL, "linreg fit: %s", nb_errmsg());
    if (cm.linreg) n += writer_matrix("nb_classic_save", "lin.safetensors", w_classic, &cm);

    nb_wavenet_config wc = {.layers = 2, .stacks = 1, .residual = 4, .skip = 4, .nspeakers = 2, .cond_dim = 3,
                            .cond_hop = 4, .cond_channels = 2};
    nb_wavenet *wn = nb_wavenet_new(&wc, &rng);
    CHECK_MSG(wn != NULL, "wavenet: %s", nb_errmsg());
    if (wn) n += writer_matrix("nb_wavenet_save", "wn.safetensors", w_wavenet, wn);
    nb_wavenet_free(wn);
    printf("  %ld faults injected into 4 model writers, each survived\n", n);
    nb_classic_free(&cm);
    nb_tensor_free(X);
}

/* --- the reader matrix ---------------------------------------------------- */

typedef int (*reader_fn)(const char *path, void *ctx);

/* Reads path once counting allocations, then once for every allocation
 * failing in turn: each read either fails with "out of memory" in the
 * message or (an allocation the reader can do without, as a shrinking
 * realloc) succeeds with the right result, which the reader function checks. */
static long oom_matrix(const char *what, reader_fn read, const char *path, void *ctx) {
    CHECK(nb__fault_set("") == 0);
    int rc = read(path, ctx);
    long n = nb__fault_count(NB_FAULT_ALLOC), failed = 0;
    nb__fault_set(NULL);
    CHECK_MSG(rc == 0, "%s: clean read failed: %s", what, nb_errmsg());
    CHECK_MSG(n >= 1, "%s: no allocation goes through the seam", what);
    for (long k = 1; k <= n; k++) {
        char spec[32];
        snprintf(spec, sizeof spec, "alloc:%ld", k);
        CHECK(nb__fault_set(spec) == 0);
        nb_clear_error();
        rc = read(path, ctx);
        long inj = nb__fault_injected();
        nb__fault_set(NULL);
        CHECK_MSG(inj == 1, "%s %s: %ld faults injected", what, spec, inj);
        if (rc != 0) {
            failed++;
            CHECK_MSG(strstr(nb_errmsg(), "out of memory"), "%s %s: '%s'", what, spec, nb_errmsg());
        }
    }
    CHECK_MSG(failed >= 1, "%s: no allocation failure was reported", what);
    /* All allocations from the first on failing: a machine out of memory. */
    CHECK(nb__fault_set("alloc:1+") == 0);
    nb_clear_error();
    rc = read(path, ctx);
    nb__fault_set(NULL);
    CHECK_MSG(rc != 0 && strstr(nb_errmsg(), "out of memory"), "%s alloc:1+: '%s'", what, nb_errmsg());
    return n;
}

static int r_file(const char *path, void *ctx) {
    size_t len;
    uint8_t *b = nb_read_file(path, &len);
    free(b);
    return b ? 0 : -1;
}
/* The tensor readers: the result must equal the tensor ctx. */
static int check_tensor(nb_tensor *t, const nb_tensor *want) {
    if (!t) return -1;
    CHECK(t->size == want->size && !memcmp(t->data, want->data, sizeof(float) * (size_t)t->size));
    nb_tensor_free(t);
    return 0;
}
static int r_npy(const char *path, void *ctx) { return check_tensor(nb_npy_read(path), ctx); }
static int r_st(const char *path, void *ctx) {
    nb_safetensors *st = nb_st_read(path);
    if (!st) return -1;
    CHECK(st->n == 2 && nb_st_meta(st, "k") && !strcmp(nb_st_meta(st, "k"), "v"));
    nb_st_free(st);
    return 0;
}
static int r_png(const char *path, void *ctx) {
    int64_t h, w;
    nb_tensor *t = nb_png_read_gray(path, &h, &w);
    if (!t) return -1;
    CHECK(h == 3 && w == 6);
    nb_tensor_free(t);
    return 0;
}
static int r_jpeg(const char *path, void *ctx) {
    int64_t h, w;
    nb_tensor *t = nb_image_read(path, &h, &w);
    if (!t) return -1;
    CHECK(h == 6 && w == 5 && t->shape[0] == 3);
    nb_tensor_free(t);
    return 0;
}
/* ctx: the rate to read at (0: the file's); 70,000 samples make the decoder
 * grow its buffer past the first block. */
static int r_wav(const char *path, void *ctx) {
    int rate = (int)(uintptr_t)ctx;
    nb_audio a;
    if (nb_audio_read(path, rate, &a)) return -1;
    CHECK(rate ? llabs(a.n - 35000) <= 2 : a.n == 70000);
    nb_audio_free(&a);
    return 0;
}
static int r_libsvm(const char *path, void *ctx) {
    nb_tensor *X;
    float *y;
    if (nb_libsvm_read(path, 0, &X, &y)) return -1;
    CHECK(y[1] == -1);
    free(y);
    return check_tensor(X, ctx);
}
static int r_csv(const char *path, void *ctx) {
    nb_csv *c = nb_csv_read_ex(path, (unsigned)(uintptr_t)ctx);
    if (!c) return -1;
    CHECK(c->nrows >= 2 && c->ncols >= 3);
    nb_csv_free(c);
    return 0;
}
static int r_csv_dataset(const char *path, void *ctx) {
    nb_dataset d;
    if (nb_dataset_load(path, true, &d)) return -1;
    CHECK(d.n == 9 && d.shape[0] == 2);
    nb_dataset_free(&d);
    return 0;
}
static int r_idx_images(const char *path, void *ctx) {
    int64_t n, h, w;
    nb_tensor *t = nb_idx_read_images(path, &n, &h, &w);
    if (!t) return -1;
    CHECK(n == 2 && h == 28 && w == 28);
    nb_tensor_free(t);
    return 0;
}
static int r_idx_labels(const char *path, void *ctx) {
    int64_t n;
    int32_t *y = nb_idx_read_labels(path, &n);
    if (!y) return -1;
    CHECK(n == 2 && y[1] == 7);
    free(y);
    return 0;
}
static int r_mnist(const char *dir, void *ctx) {
    nb_dataset d;
    if (nb_mnist_load(dir, false, &d)) return -1;
    CHECK(d.n == 2 && d.y[1] == 7);
    nb_dataset_free(&d);
    return 0;
}

TEST(test_faults_every_reader_reports_out_of_memory) {
    char *dir = tmp_dir();
    if (!dir) return;
    char p[600];
    nb_tensor *m = small_matrix();
    long n = 0;
#define AT(name) (snprintf(p, sizeof p, "%s/%s", dir, name), p)
    CHECK(nb_npy_write(AT("m.npy"), m) == 0);
    n += oom_matrix("nb_npy_read", r_npy, p, m);
    n += oom_matrix("nb_read_file", r_file, p, NULL);
    CHECK(w_st(AT("t.safetensors"), m) == 0);
    n += oom_matrix("nb_st_read", r_st, p, NULL);
    CHECK(w_png_gray(AT("g.png"), NULL) == 0);
    n += oom_matrix("nb_png_read_gray", r_png, p, NULL);
    CHECK(w_libsvm(AT("d.libsvm"), m) == 0);
    n += oom_matrix("nb_libsvm_read", r_libsvm, p, m);
    CHECK(w_atomic_csv(AT("log.csv"), NULL) == 0);
    n += oom_matrix("nb_csv_read", r_csv, p, (void *)(uintptr_t)0);
    put_file(AT("plain.csv"), "1,2,0\n3,4,1\n5,6,0\n", 18);
    n += oom_matrix("nb_csv_read_ex", r_csv, p, (void *)(uintptr_t)(NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE));
    char rows[200] = "a,b,label\n";
    for (int i = 0; i < 10; i++) snprintf(rows + strlen(rows), sizeof rows - strlen(rows), "%d,%d,%d\n", i, -i, i % 3);
    put_file(AT("set.csv"), rows, strlen(rows));
    n += oom_matrix("nb_dataset_load (CSV)", r_csv_dataset, p, NULL);

    /* Two 28x28 images and their labels, as MNIST stores them. */
    uint8_t img[16 + 2 * 784] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    for (int i = 0; i < 2 * 784; i++) img[16 + i] = (uint8_t)(i * 13);
    const uint8_t lab[10] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};
    put_file(AT("t10k-images-idx3-ubyte"), img, sizeof img);
    n += oom_matrix("nb_idx_read_images", r_idx_images, p, NULL);
    put_file(AT("t10k-labels-idx1-ubyte"), lab, sizeof lab);
    n += oom_matrix("nb_idx_read_labels", r_idx_labels, p, NULL);
    n += oom_matrix("nb_mnist_load", r_mnist, dir, NULL);
    CHECK(w_jpeg(AT("i.jpg"), NULL) == 0);
    n += oom_matrix("nb_image_read (JPEG)", r_jpeg, p, NULL);
    float *x = malloc(70000 * sizeof *x);
    for (int i = 0; i < 70000; i++) x[i] = 0.5f * (float)sin(0.01 * i);
    CHECK(nb_audio_write(AT("long.wav"), x, 70000, 16000) == 0);
    free(x);
    n += oom_matrix("nb_audio_read", r_wav, p, (void *)(uintptr_t)0);
    n += oom_matrix("nb_audio_read (resampled)", r_wav, p, (void *)(uintptr_t)8000);
    printf("  %ld allocation failures injected into 14 readers, each reported or survived\n", n);
#undef AT
    nb_tensor_free(m);
    rm_dir(dir);
}

/* --- model files that ask for more memory than they hold ------------------- */

/* Found by fuzz_model: the loaders built the network or the recurrent model
 * that a file's metadata describes before checking its tensors, so a
 * 200-byte file could make them allocate gigabytes (and stop the program
 * when that failed). Now they refuse, naming the file, before allocating. */
TEST(test_faults_model_file_cannot_ask_for_more_than_it_holds) {
    char *dir = tmp_dir();
    if (!dir) return;
    char p[600];
    snprintf(p, sizeof p, "%s/big.safetensors", dir);
    const char *k1[] = {"nabla.net"}, *v1[] = {"[net]\ninput = 1x28x28\n[flatten]\n[dense]\nout = 1000000\n"};
    CHECK(nb_st_write(p, NULL, NULL, 0, k1, v1, 1) == 0);
    nb_clear_error();
    CHECK(nb_net_load(p, NULL) == NULL);
    CHECK_MSG(strstr(nb_errmsg(), p) && strstr(nb_errmsg(), "values the file holds"), "net: '%s'", nb_errmsg());

    /* Two layers that each fit the 100 values the file holds, but not together. */
    nb_tensor *hundred = nb_tensor_new(1, (int64_t[]){100});
    const char *two[] = {"[net]\ninput = 8\n[dense]\nout = 8\n[dense]\nout = 8\n"};
    CHECK(nb_st_write(p, (const char *[]){"x"}, &hundred, 1, k1, two, 1) == 0);
    nb_tensor_free(hundred);
    nb_clear_error();
    CHECK(nb_net_load(p, NULL) == NULL);
    CHECK_MSG(strstr(nb_errmsg(), ":5: the network needs more parameters (136 so far) than the 100 values the file holds"),
              "two layers: '%s'", nb_errmsg());

    const char *k2[] = {"nabla.model", "nabla.charrnn.cell", "nabla.charrnn.hidden", "nabla.charrnn.layers",
                        "nabla.charrnn.vocab"},
               *v2[] = {"charrnn", "lstm", "65536", "64", "97 98"};
    CHECK(nb_st_write(p, NULL, NULL, 0, k2, v2, 5) == 0);
    nb_clear_error();
    CHECK(nb_charrnn_load(p, NULL) == NULL);
    CHECK_MSG(strstr(nb_errmsg(), p) && strstr(nb_errmsg(), "values the file holds"), "charrnn: '%s'", nb_errmsg());

    /* A description whose sizes overflow is refused too, not fatal. */
    nb_net *net = nb_net_parse("[net]\ninput = 1x65536x65536\n[flatten]\n[dense]\nout = 1000000\n", "huge.cfg");
    CHECK_MSG(net != NULL, "huge.cfg: %s", nb_errmsg());
    if (net) {
        nb_clear_error();
        CHECK(nb_net_build(net, 0, NULL, NULL) == -1);
        CHECK_MSG(strstr(nb_errmsg(), "huge.cfg:4: the network would have more than"), "'%s'", nb_errmsg());
        nb_net_free(net);
    }
    rm_dir(dir);
}

/* Telling a model of `nabla fit` from a network parses the JSON header;
 * with each of that parse's allocations failing in turn the file is still a
 * fit model (it was taken for a network, which `nabla eval` and `predict`
 * then refused as the wrong kind of file). */
TEST(test_faults_sniff_names_a_fit_model_out_of_memory) {
    static const char hdr[] = "{\"__metadata__\":{\"nabla.model\":\"gmm\",\"nabla.gmm.k\":\"2\"}}";
    size_t hlen = sizeof hdr - 1, len = 8 + hlen;
    uint8_t *b = malloc(len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    CHECK(nb__fault_set("") == 0);
    CHECK(nb_sniff(b, len) == NB_FILE_FIT_MODEL);
    long n = nb__fault_count(NB_FAULT_ALLOC);
    nb__fault_set(NULL);
    CHECK_MSG(n >= 1, "the sniffer's parse made no allocation the seam counts");
    for (long k = 1; k <= n; k++) {
        char spec[32];
        snprintf(spec, sizeof spec, "alloc:%ld", k);
        CHECK(nb__fault_set(spec) == 0);
        nb_file_kind kind = nb_sniff(b, len);
        long inj = nb__fault_injected();
        nb__fault_set(NULL);
        CHECK_MSG(inj == 1 && kind == NB_FILE_FIT_MODEL, "%s: kind %d, %ld injected", spec, (int)kind, inj);
    }
    free(b);
}

/* The library's small allocations (a vocabulary, a network's layer list, an
 * optimizer's state list) ended in nb_fatal's abort when they failed; they
 * now go to nb_oom, whose default handler says what ran out and exits 1. */
static void oom_unknown_size(void *c) { nb_oom("the vocabulary", 0); }
static void oom_known_size(void *c) { nb_oom("a tensor", (size_t)3 << 30); }
static void oom_mib(void *c) { nb_oom("a tensor", (size_t)3 << 20); }
static void oom_small(void *c) { nb_oom("a prompt", 120); }
static void oom_hinted(void *c) {
    nb_set_oom_hint("try a smaller --size");
    nb_oom("a tensor", (size_t)3 << 30);
}

TEST(test_faults_nb_oom_exits_1_saying_what_ran_out) {
    nb_test_expect_exit("unknown size", oom_unknown_size, NULL, 1,
                        (const char *[]){"nabla: out of memory for the vocabulary", NULL});
    nb_test_expect_exit("known size", oom_known_size, NULL, 1,
                        (const char *[]){"nabla: out of memory: a tensor needs 3.0 GiB", NULL});
    nb_test_expect_exit("MiB", oom_mib, NULL, 1, (const char *[]){"nabla: out of memory: a tensor needs 3.0 MiB", NULL});
    /* Below a MiB in bytes: "0.0 MiB" read as if nothing had been asked for. */
    nb_test_expect_exit("bytes", oom_small, NULL, 1, (const char *[]){"nabla: out of memory: a prompt needs 120 bytes\n", NULL});
    /* The hint is the program's: a library has no --batch to name (the
     * default once said "try a smaller --batch or model" for every caller). */
    nb_test_expect_exit("hint", oom_hinted, NULL, 1,
                        (const char *[]){"nabla: out of memory: a tensor needs 3.0 GiB; try a smaller --size\n", NULL});
}
