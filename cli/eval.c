/* eval.c — `nabla eval`, `nabla predict` and `nabla init`: use a model
 * written by `nabla train`, or make a fresh one from a NET.cfg. */
#include "cli.h"
#include "fit.h"
#include "train_state.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fashion-MNIST's classes, in label order. */
static const char *FASHION[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

int nb_cli_not_dqn(const nb_safetensors *st, const char *path, const char *expected, const char *more) {
    if (!nb_st_meta(st, "nabla.dqn.env")) return 0;
    return nb_error("%s: not %s: it holds a DQN model (nabla dqn train)%s", path, expected, more);
}

nb_net *nb_cli_load_classifier(const char *path, nb_safetensors **st) {
    nb_safetensors *own = NULL;
    nb_net *net = nb_net_load(path, &own);
    if (net && nb_cli_not_dqn(own, path, "a classifier",
                              ", whose outputs are the values of a game's actions: nabla dqn eval plays it")) {
        nb_net_free(net);
        net = NULL;
    }
    if (st && net) *st = own;
    else nb_st_free(own);
    return net;
}

static int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval", *data = NULL;
    double adv = 0;
    long batch = 1000, threads = 0;
    bool json = false, all = false;
    nb_flag flags[] = {
        {"--data", NB_FLAG_STR, &data, "fashion-mnist, a folder of IDX files, or a data file (its test split)",
         .meta = "DATA", .def = "required"},
        {"--all", NB_FLAG_BOOL, &all, "score every example of DATA, not only its test split (a data file's last "
                                      "10%): for a file of held-out examples only"},
        {"--adversarial", NB_FLAG_FLOAT, &adv, "also measure accuracy on FGSM examples with this eps (eq. 21)",
         .range = "[0, 1]"},
        {"--batch", NB_FLAG_INT, &batch, "examples per forward pass", .range = "[1, 1000000]"},
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL --data DATA ",
                .about = "Scores a classifier (a model file of nabla train or init) on DATA's test split: its loss, accuracy\n"
                         "and the fraction of hidden activations that are zero; with --adversarial also its accuracy on\n"
                         "FGSM examples (eq. 21) made from the test examples.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if (!data) return nb_cli_usage_error(&c, "--data is required (e.g. --data fashion-mnist)");
    nb_cli_threads(cmd, threads, 0);
    nb_net *net = nb_cli_load_classifier(pos[0], NULL);
    if (!net) return nb_cli_fail(cmd, "%s", nb_errmsg());
    nb_dataset test, rest; /* rest: the training split too, with --all */
    memset(&rest, 0, sizeof rest);
    if (nb_dataset_load(data, false, &test) || (all && nb_dataset_load(data, true, &rest))) {
        nb_dataset_free(&test);
        nb_net_free(net);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    int rc = 0;
    if (nb_net_check_data(net, &test, pos[0], data) || (all && nb_net_check_data(net, &rest, pos[0], data))) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
    } else {
        double t0 = nb_cli_now();
        nb_eval_result ev;
        nb_net_evaluate(net, &test, batch, (float)adv, &ev);
        if (all && rest.n > 0) { /* both splits: the means weighted by their examples */
            nb_eval_result er;
            nb_net_evaluate(net, &rest, batch, (float)adv, &er);
            double n1 = (double)ev.n, n2 = (double)er.n, w = n1 + n2;
            ev.loss = (ev.loss * n1 + er.loss * n2) / w;
            ev.accuracy = (ev.accuracy * n1 + er.accuracy * n2) / w;
            ev.zero_fraction = (ev.zero_fraction * n1 + er.zero_fraction * n2) / w;
            ev.adv_accuracy = (ev.adv_accuracy * n1 + er.adv_accuracy * n2) / w;
            ev.n += er.n;
        }
        double secs = nb_cli_now() - t0;
        fprintf(json ? stderr : stdout, "%s on %s (%lld examples): accuracy %.4f, loss %.4f, zero activations %.1f%%",
                pos[0], data, (long long)ev.n, ev.accuracy, ev.loss, 100 * ev.zero_fraction);
        if (adv > 0) fprintf(json ? stderr : stdout, ", FGSM eps %g accuracy %.4f", adv, ev.adv_accuracy);
        fprintf(json ? stderr : stdout, " (%.2f s)\n", secs);
        if (json) {
            printf("{\"test_accuracy\": %.6f, \"test_loss\": %.6f, \"examples\": %lld, \"zero_activation_fraction\": %.6f, "
                   "\"seconds\": %.3f",
                   ev.accuracy, ev.loss, (long long)ev.n, ev.zero_fraction, secs);
            if (adv > 0) printf(", \"adversarial_accuracy\": %.6f", ev.adv_accuracy);
            printf("}\n");
        }
    }
    nb_dataset_free(&test);
    nb_dataset_free(&rest);
    nb_net_free(net);
    return rc;
}

NB_COMMAND("eval", cmd_eval, "test accuracy and loss of a model (optionally under FGSM attack)")

/* A network answers for any input, however unlike its training data, with
 * no hint that it is guessing: an inverted (dark on light) picture of a shirt
 * is "classified" with p = 0.98. So an image whose brightness, overall or
 * along its edges, lies far outside the training images' is reported with
 * the way it differs. The thresholds leave every Fashion-MNIST training image
 * unflagged (the brightest edge ring is 8.5 deviations above the mean; an
 * inverted image's is 17). */
typedef struct {
    double mean, mean_sd, edge, edge_sd;
} brightness;

static void warn_brightness(const char *cmd, const char *file, const nb_tensor *img, const brightness *b) {
    double m, e;
    nb_input_brightness(3, (int64_t[]){1, img->shape[0], img->shape[1]}, NULL, img->data, &m, &e);
    double zm = b->mean_sd > 0 ? (m - b->mean) / b->mean_sd : 0;
    double ze = b->edge_sd > 0 && e >= 0 ? (e - b->edge) / b->edge_sd : 0;
    bool edge = fabs(ze) >= 10;
    if (!edge && fabs(zm) < 4) return;
    double v = edge ? e : m, mu = edge ? b->edge : b->mean, sd = edge ? b->edge_sd : b->mean_sd, z = edge ? ze : zm;
    nb_cli_warn(cmd, "%s: the %s brightness %.2f is %.0f standard deviations %s the training images' (%.2f +- %.2f)%s; "
                     "the prediction is unreliable", file, edge ? "edges'" : "mean", v, fabs(z), z > 0 ? "above" : "below",
                mu, sd, z > 0 && mu < 0.5 ? ": is it inverted? The network was trained on light objects on a dark "
                                            "background" : "");
}

/* An image as the network sees it, [h, w] gray levels in [0, 1]: a PNG as
 * nb_png_read_gray reads it (alpha over black, the background of
 * Fashion-MNIST), or a JPEG through the same BT.601 luma. */
static nb_tensor *read_gray(const char *path, int64_t *h, int64_t *w) {
    if (nb_sniff_file(path) == NB_FILE_PNG) return nb_png_read_gray(path, h, w);
    /* a JPEG, or the error that names what the file is instead */
    nb_tensor *rgb = nb_image_read(path, h, w);
    if (!rgb) return NULL;
    int64_t n = *h * *w;
    nb_tensor *g = nb_tensor_new(2, (int64_t[]){*h, *w});
    const float *r = rgb->data, *gr = r + n, *b = gr + n;
    for (int64_t i = 0; i < n; i++) g->data[i] = fminf(0.299f * r[i] + 0.587f * gr[i] + 0.114f * b[i], 1.f);
    nb_tensor_free(rgb);
    return g;
}

static int cmd_predict(int argc, char **argv) {
    int fitted = nb_fit_predict(argc, argv); /* a model of `nabla fit`: cli/fit.c predicts */
    if (fitted >= 0) return fitted;
    const char *cmd = "predict";
    bool json = false;
    nb_flag flags[] = {
        {"--json", NB_FLAG_BOOL, &json, "print a JSON list, one object per image, as the last line of stdout"},
    };
    nb_cli cli = {.cmd = cmd, .args = "MODEL IMAGE... ",
                .about = "Classifies PNG or JPEG images (read by content, as gray levels) of the network's input size,\n"
                         "light on dark as in Fashion-MNIST.\n"
                         "A model of `nabla fit` (linreg, logreg, svm, ...) takes a data file instead:\n"
                         "  nabla predict MODEL DATA [--out FILE] [--json]   (LIBSVM, CSV or .npy; see nabla fit --help)",
                .flags = flags, .nflags = 1, .min_pos = 2, .max_pos = argc};
    const char **pos = malloc(sizeof(char *) * (size_t)(argc > 1 ? argc : 1));
    if (!pos) return nb_cli_fail(cmd, "out of memory");
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) {
        free(pos);
        return prc;
    }
    nb_safetensors *st = NULL;
    nb_net *net = nb_cli_load_classifier(pos[0], &st);
    if (!net) {
        free(pos);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    /* The training images' brightness, recorded by `nabla train`. */
    brightness train = {0};
    const char *keys[4] = {"nabla.input_mean", "nabla.input_mean_sd", "nabla.input_edge", "nabla.input_edge_sd"};
    double *vals[4] = {&train.mean, &train.mean_sd, &train.edge, &train.edge_sd};
    /* each optional (models of older versions lack them), but a damaged one
     * is refused: strtod read it as 0 or a prefix, and the warning was lost */
    int bad = 0;
    for (int k = 0; k < 4 && !bad; k++) bad = nb_cli_meta_number(st, pos[0], keys[k], vals[k]);
    nb_st_free(st);
    if (bad) {
        nb_net_free(net);
        free(pos);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    int64_t shape[4];
    int nd = nb_net_input_shape(net, shape);
    int64_t H = nd == 3 ? shape[1] : 0, W = nd == 3 ? shape[2] : 0, C = nb_net_outputs(net);
    int rc = 0;
    if (nd != 3 || shape[0] != 1) {
        rc = nb_cli_fail(cmd, "%s: the network does not take one-channel images", pos[0]);
        goto done;
    }
    /* The JSON goes out whole or not at all: a failure at the third image
     * left "[" and two predictions as stdout's last line. */
    char *jbuf = NULL;
    size_t jlen = 0;
    FILE *jf = json ? open_memstream(&jbuf, &jlen) : NULL;
    if (json && !jf) {
        rc = nb_cli_fail(cmd, "out of memory");
        goto done;
    }
    if (json) fprintf(jf, "[");
    for (int i = 1; i < npos && !rc; i++) {
        int64_t h, w;
        nb_tensor *img = read_gray(pos[i], &h, &w);
        if (!img) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            break;
        }
        if (h != H || w != W) {
            rc = nb_cli_fail(cmd, "%s: the image is %lldx%lld, the network expects %lldx%lld", pos[i], (long long)w,
                             (long long)h, (long long)W, (long long)H);
            nb_tensor_free(img);
            break;
        }
        warn_brightness(cmd, pos[i], img, &train);
        bool old = nb_set_grad_enabled(false);
        nb_tensor *x = nb_reshape(nb_detach(img), 4, (int64_t[]){1, 1, H, W});
        nb_tensor *p = nb_softmax(nb_net_forward(net, x, false, NULL), 1);
        nb_set_grad_enabled(old);
        int32_t best;
        nb_argmax_rows(p, &best);
        const char *name = C == 10 ? FASHION[best] : NULL;
        if (json) {
            fprintf(jf, "%s{\"file\": ", i > 1 ? ", " : "");
            nb_cli_json_string(jf, pos[i]);
            fprintf(jf, ", \"class\": %d, ", best);
            if (name) fprintf(jf, "\"name\": \"%s\", ", name);
            fprintf(jf, "\"probabilities\": [");
            for (int64_t c = 0; c < C; c++) fprintf(jf, c ? ", %.6f" : "%.6f", p->data[c]);
            fprintf(jf, "]}");
        } else {
            printf("%s: %d%s%s%s (p = %.3f)\n", pos[i], best, name ? " (" : "", name ? name : "", name ? ")" : "",
                   p->data[best]);
        }
        nb_tensor_free(img);
        nb_arena_reset();
    }
    if (jf) {
        fclose(jf);
        if (!rc) printf("%s]\n", jbuf);
        free(jbuf);
    }
done:
    nb_net_free(net);
    free(pos);
    return rc;
}

NB_COMMAND("predict", cmd_predict, "classify PNG or JPEG images with a model")

static int cmd_init(int argc, char **argv) {
    const char *cmd = "init", *out = NULL;
    long seed = 1;
    nb_flag flags[] = {
        NB_FLAG_MODEL_OUT(&out, "the model file to write (required)"),
        NB_FLAG_SEED(&seed, "the initialization (as nabla train --seed)"),
    };
    nb_cli c = {.cmd = cmd, .args = "NET.cfg --out MODEL ",
                .about = "Writes the network of NET.cfg with freshly initialized weights (as nabla train would start it)\n"
                         "and prints its layers and parameter counts: a model to inspect, or to start from with\n"
                         "nabla train --init.",
                .flags = flags, .nflags = 2, .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if (!out) return nb_cli_usage_error(&c, "--out is required: the model file to write");
    nb_net *net = nb_net_load_cfg(pos[0]);
    if (!net) return nb_cli_fail(cmd, "%s", nb_errmsg());
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)seed, 0); /* stream 0: the same numbers as `nabla train --seed` */
    int rc = 0;
    if (nb_net_build(net, 0, NULL, &rng) || nb_net_save(net, out, NULL, NULL, 0, NULL, NULL, 0))
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
    else
        nb_net_summary(net, stdout);
    nb_net_free(net);
    return rc;
}

NB_COMMAND("init", cmd_init, "write a freshly initialized model for a NET.cfg")
