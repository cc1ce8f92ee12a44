/* plots.c — one figure of each kind the library draws, from real data: a
 * grid of Fashion-MNIST test images with their labels, a network's class
 * probabilities for one image as bars beside it, and the spectrogram of a
 * synthetic chirp under its waveform (a line chart over a heat map).
 * Build: make examples; run: build/examples/plots DIR [MODEL] [png|svg|pdf]
 * writes DIR/grid.png, DIR/bars.png and DIR/spectrogram.png. With MODEL (a
 * classifier from `nabla train`), captions are its predictions, red where
 * wrong; without, the true labels, and the bars show each class's mean
 * brightness instead of probabilities. (The training curves come from the
 * command: nabla plot LOG.csv.) */
#include <math.h>
#include <nabla.h>
#include <stdlib.h>
#include <string.h>

static const char *CLASSES[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Class probabilities of test images idx[0..n) under net: n x 10 into p. */
static void predict(nb_net *net, const nb_dataset *test, const int64_t *idx, int n, float *p) {
    int32_t y[64];
    bool old = nb_set_grad_enabled(false);
    nb_tensor *probs = nb_softmax(nb_net_forward(net, nb_dataset_batch(test, idx, n, y), false, NULL), 1);
    memcpy(p, probs->data, sizeof(float) * 10 * (size_t)n);
    nb_set_grad_enabled(old);
    nb_arena_reset();
}

static int argmax10(const float *p) {
    int best = 0;
    for (int k = 1; k < 10; k++)
        if (p[k] > p[best]) best = k;
    return best;
}

/* The first 32 test images in a 4 x 8 grid, each captioned. */
static int grid(const char *path, const nb_dataset *test, nb_net *net) {
    enum { N = 32 };
    static float pix[N][28 * 28];
    static float probs[N][10];
    int64_t idx[N];
    nb_image im[N];
    for (int i = 0; i < N; i++) idx[i] = i;
    if (net) predict(net, test, idx, N, probs[0]);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 28 * 28; k++) pix[i][k] = test->u8[(size_t)i * 784 + (size_t)k] / 255.f;
        int label = test->y[i], shown = net ? argmax10(probs[i]) : label;
        wrong += shown != label;
        im[i] = (nb_image){pix[i], 1, 28, 28, CLASSES[shown], shown != label ? 0xD62728 : 0};
    }
    char title[128];
    if (net) snprintf(title, sizeof title, "Fashion-MNIST test images: predicted classes (%d of %d wrong, in red)", wrong, N);
    else snprintf(title, sizeof title, "Fashion-MNIST test images and their classes");
    nb_figure *f = nb_figure_new(1000, 600, 1, 1, title);
    int rc = !f || nb_figure_images(f, 0, &(nb_images){NULL, im, N, 8}) || nb_figure_save(f, path);
    nb_figure_free(f);
    return rc;
}

/* One test image beside the bars of its class probabilities (the first one
 * the model is unsure of, which makes the more telling chart), or beside
 * each class's mean brightness without a model. */
static int bars(const char *path, const nb_dataset *test, nb_net *net) {
    int64_t pick = 0;
    double values[10] = {0};
    float p[10];
    if (net) {
        for (int64_t i = 0; i < 200; i++) {
            predict(net, test, &i, 1, p);
            if (p[argmax10(p)] < 0.7f) {
                pick = i;
                break;
            }
        }
        predict(net, test, &pick, 1, p);
        for (int k = 0; k < 10; k++) values[k] = p[k];
    } else {
        int64_t count[10] = {0};
        for (int64_t i = 0; i < test->n; i++) {
            double s = 0;
            for (int k = 0; k < 784; k++) s += test->u8[(size_t)i * 784 + (size_t)k];
            values[test->y[i]] += s / (784 * 255.0);
            count[test->y[i]]++;
        }
        for (int k = 0; k < 10; k++) values[k] /= count[k] ? (double)count[k] : 1;
    }
    static float pix[28 * 28];
    for (int k = 0; k < 784; k++) pix[k] = test->u8[(size_t)pick * 784 + (size_t)k] / 255.f;
    uint32_t colors[10] = {0};
    if (net) colors[test->y[pick]] = 0x2CA02C; /* the true class in green */
    char caption[64], title[96];
    snprintf(caption, sizeof caption, "test image %lld: %s", (long long)pick, CLASSES[test->y[pick]]);
    snprintf(title, sizeof title, net ? "What the network sees (true class in green)" : "Mean brightness per class");
    nb_image im = {pix, 1, 28, 28, caption, 0};
    nb_figure *f = nb_figure_new(1000, 420, 1, 2, title);
    int rc = !f || nb_figure_images(f, 0, &(nb_images){NULL, &im, 1, 1}) ||
             nb_figure_bars(f, 1, &(nb_bars){.title = net ? "class probabilities" : "mean pixel value",
                                             .vlabel = net ? "probability" : "pixel / 255", .names = CLASSES,
                                             .values = values, .n = 10, .colors = colors}) ||
             nb_figure_save(f, path);
    nb_figure_free(f);
    return rc;
}

/* A chirp sweeping 100 Hz -> 1.9 kHz over 2 s (8 kHz sampling) plus its
 * second harmonic at a quarter of the amplitude, and the dB power of its
 * short-time Fourier transform (Hann window of 256, hop 64). */
static int spectrogram(const char *path) {
    enum { RATE = 8000, N = 2 * RATE, WIN = 256, HOP = 64, BINS = WIN / 2 + 1, FRAMES = (N - WIN) / HOP + 1 };
    static double t[N], x[N];
    static float db[BINS * FRAMES];
    const double f0 = 100, f1 = 1900, T = 2.0, k = (f1 - f0) / T;
    for (int i = 0; i < N; i++) {
        t[i] = (double)i / RATE;
        double phase = 2 * M_PI * (f0 * t[i] + 0.5 * k * t[i] * t[i]);
        x[i] = sin(phase) + 0.25 * sin(2 * phase);
    }
    for (int fr = 0; fr < FRAMES; fr++)
        for (int b = 0; b < BINS; b++) {
            double re = 0, im = 0;
            for (int j = 0; j < WIN; j++) {
                double w = 0.5 - 0.5 * cos(2 * M_PI * j / WIN), v = w * x[fr * HOP + j];
                re += v * cos(2 * M_PI * b * j / WIN);
                im -= v * sin(2 * M_PI * b * j / WIN);
            }
            /* Row b is frequency b * RATE / WIN: row 0 (0 Hz) at the bottom. */
            db[b * FRAMES + fr] = (float)(10 * log10(re * re + im * im + 1e-10));
        }
    float top = -INFINITY;
    for (int i = 0; i < BINS * FRAMES; i++) top = fmaxf(top, db[i]);
    nb_series wave = {NULL, t, x, 400, 0}; /* the first 0.05 s */
    nb_figure *f = nb_figure_new(900, 760, 2, 1, "A chirp from 100 Hz to 1.9 kHz with its second harmonic");
    int rc = !f || nb_figure_lines(f, 0, &(nb_lines){"waveform, first 0.05 s", "time (s)", "amplitude", &wave, 1}) ||
             nb_figure_heatmap(f, 1, &(nb_heatmap){.title = "spectrogram (Hann 256, hop 64)", .xlabel = "time (s)",
                                                   .ylabel = "frequency (Hz)", .clabel = "power (dB)", .z = db,
                                                   .rows = BINS, .cols = FRAMES, .x0 = 0,
                                                   .x1 = (double)((FRAMES - 1) * HOP + WIN) / RATE, .y0 = 0,
                                                   .y1 = RATE / 2.0, .zmin = top - 80, .zmax = top,
                                                   .cmap = NB_CMAP_MAGMA}) ||
             nb_figure_save(f, path);
    nb_figure_free(f);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: plots DIR [MODEL] [png|svg|pdf]\n");
        return 2;
    }
    const char *dir = argv[1], *ext = argc > 3 ? argv[3] : "png";
    nb_net *net = NULL;
    nb_dataset test;
    if (nb_dataset_load("fashion-mnist", false, &test) || (argc > 2 && !(net = nb_net_load(argv[2], NULL)))) {
        fprintf(stderr, "plots: %s\n", nb_errmsg());
        return 1;
    }
    char path[3][4096];
    const char *names[3] = {"grid", "bars", "spectrogram"};
    for (int i = 0; i < 3; i++) snprintf(path[i], sizeof path[i], "%s/%s.%s", dir, names[i], ext);
    int rc = grid(path[0], &test, net) || bars(path[1], &test, net) || spectrogram(path[2]);
    if (rc) fprintf(stderr, "plots: %s\n", nb_errmsg());
    else
        for (int i = 0; i < 3; i++) printf("%s\n", path[i]);
    nb_net_free(net);
    nb_dataset_free(&test);
    return rc;
}
