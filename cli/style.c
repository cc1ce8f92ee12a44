/* style.c — `nabla style`: neural style transfer and texture synthesis
 * (notes §4.6): the pixels of x are optimized (L-BFGS or Adam) to minimize
 * eq. 7, alpha times the content loss (eq. 1) against CONTENT plus beta
 * times the style loss (eq. 5) against STYLE, in the feature maps of a
 * fixed network. Without CONTENT: a texture, the style loss alone. */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXL 64

/* VGG-19's layer names in order, for resolving names before the file is
 * read (so a file holding only the first convolutions is enough). */
static const char *vgg_names[16] = {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2",
                                    "conv3_3", "conv3_4", "conv4_1", "conv4_2", "conv4_3", "conv4_4",
                                    "conv5_1", "conv5_2", "conv5_3", "conv5_4"};

static int find_name(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static void list_names(char *buf, size_t cap, const char *const *names, int n) {
    size_t off = 0;
    buf[0] = 0;
    for (int i = 0; i < n && off < cap; i++) off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", names[i]);
}

/* Splits "a,b,c" into layer indices; prints the error and returns -1 on an
 * unknown name. */
static int parse_layers(const char *cmd, const char *opt, const char *list, const char *const *names, int n, int *out) {
    int k = 0;
    char *copy = nb__xstrdup("a layer list", list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = find_name(names, n, t);
        if (i < 0 || k >= MAXL) {
            char valid[2048];
            list_names(valid, sizeof valid, names, n);
            if (i < 0)
                nb_cli_fail(cmd, "%s: unknown layer '%s'; the feature network's layers are: %s", opt, t, valid);
            else
                nb_cli_fail(cmd, "%s: more than %d layers", opt, MAXL);
            free(copy);
            return -1;
        }
        out[k++] = i;
    }
    free(copy);
    if (k == 0) {
        nb_cli_fail(cmd, "%s: no layer named", opt);
        return -1;
    }
    return k;
}

typedef struct run {
    nb_style *prob;
    nb_tensor *x;             /* [1, 3, H, W], the pixels being optimized */
    float *host;              /* x on the GPU: a host copy for clamp01 (else NULL) */
    nb_style_losses last;
    int64_t evals, done, total;
    double t0;
    bool json;
} run;

static void progress(run *r, bool final) {
    if (r->json && !nb_cli_tty()) return;
    char extra[160];
    snprintf(extra, sizeof extra, "content %.4g  style %.4g  total %.4g", r->last.content, r->last.style, r->last.total);
    nb_cli_progress("style", r->done, r->total, nb_cli_now() - r->t0, extra, final);
}

/* nb_lbfgs_opts.stop: a SIGINT or SIGTERM came. */
static int interrupted(void *ctx) { return nb_cli_interrupted(); }

static float closure(void *ctx) {
    run *r = ctx;
    nb_tensor *l = nb_style_objective(r->prob, r->x, &r->last);
    nb_backward(l);
    r->evals++;
    if (nb_cli_tty()) progress(r, false);
    return (float)r->last.objective;
}

static int save_x(const char *cmd, const nb_tensor *x, const char *out) {
    nb_tensor *img = nb_reshape(nb_detach((nb_tensor *)x), 3, (int64_t[]){3, x->shape[2], x->shape[3]});
    int rc = nb_image_write(out, img);
    if (rc) nb_cli_fail(cmd, "%s", nb_errmsg());
    return rc;
}

/* Pixels back into [0, 1] after a step. On the GPU they are clamped in
 * r->host: 12 bytes a pixel each way, next to a network's forward and
 * backward passes per step. */
static void clamp01(run *r) {
    float *v = r->host ? r->host : r->x->data;
    if (r->host) nb_tensor_read(r->x, v);
    for (int64_t i = 0; i < r->x->size; i++) v[i] = fminf(fmaxf(v[i], 0.f), 1.f);
    if (r->host) nb_tensor_write(r->x, v);
}

/* Reads an image and resizes it to h x w (persistent). */
static nb_tensor *read_sized(const char *cmd, const char *path, int64_t h, int64_t w) {
    int64_t ih, iw;
    nb_tensor *img = nb_image_read(path, &ih, &iw);
    if (!img) {
        nb_cli_fail(cmd, "%s", nb_errmsg());
        return NULL;
    }
    if (ih == h && iw == w) return img;
    nb_tensor *r = nb_image_resize(img, h, w);
    nb_tensor_free(img);
    if (!r) nb_cli_fail(cmd, "%s: %s", path, nb_errmsg());
    return r;
}

static int cmd_style(int argc, char **argv) {
    const char *cmd = "style", *out = NULL, *content_layer = NULL, *style_layers = NULL, *style_weights = NULL;
    const char *init = "noise", *optim = "lbfgs", *features = "random", *pool = "max", *device = "cpu";
    long size = 256, iters = -1, every = 0, seed = 1, threads = 0;
    double alpha = 1, beta = -1, tv = 0, lr = 0.02;
    bool json = false;
    nb_flag flags[] = {
        {"--out", NB_FLAG_OUTPUT, &out, "the image to write (also every K iterations with --every)",
         .range = "png|jpg|jpeg", .meta = "OUT.png", .def = "required"},
        {"--size", NB_FLAG_INT, &size, "the longer side of the result in pixels (CONTENT's, or STYLE's for a texture)",
         .range = "[8, 4096]", .meta = "PX"},
        {"--iters", NB_FLAG_INT, &iters, "iterations; 0 reports the losses of the initial image",
         .range = "[0, 1000000]", .def = "200 (lbfgs), 500 (adam)"},
        {"--alpha", NB_FLAG_FLOAT, &alpha, "weight of the content loss (eq. 7)", .range = "[0, inf)", .meta = "A"},
        {"--beta", NB_FLAG_FLOAT, &beta, "weight of the style loss (eq. 7)", .range = "[0, inf)", .meta = "B",
         .def = "1e8 (random), 1e3 (vgg19, model)"},
        {"--content-layer", NB_FLAG_STR, &content_layer, "layer of the content loss", .meta = "L",
         .def = "scale3 (random), conv4_2 (vgg19), the last conv (model)"},
        {"--style-layers", NB_FLAG_STR, &style_layers, "layers of the style loss, comma-separated",
         .meta = "L1,L2,...", .def = "every scale (random), conv1_1,conv2_1,conv3_1,conv4_1,conv5_1 (vgg19), every conv (model)"},
        {"--style-weights", NB_FLAG_STR, &style_weights, "w_l of eq. 5, one per style layer, comma-separated",
         .meta = "W1,W2,...", .def = "1/L each"},
        {"--init", NB_FLAG_STR, &init, "the initial x: noise (uniform), content, or an image file", .meta = "noise|content|IMAGE"},
        {"--optim", NB_FLAG_CHOICE, &optim, "optimizer of the pixels", .range = "lbfgs|adam"},
        {"--lr", NB_FLAG_FLOAT, &lr, "Adam's step size (pixels in [0, 1])", .range = "(0, inf)"},
        {"--tv", NB_FLAG_FLOAT, &tv, "weight of the total variation of x (smoothness), added to eq. 7", .range = "[0, inf)",
         .meta = "W"},
        {"--features", NB_FLAG_STR, &features, "feature network: random filters, VGG-19 weights (see the README), or a "
                                               "nabla CNN model file", .meta = "random|vgg19:FILE|MODEL"},
        {"--pool", NB_FLAG_CHOICE, &pool, "VGG-19's pooling", .range = "max|avg"},
        {"--every", NB_FLAG_INT, &every, "also save the image every K iterations (0: at the end only)",
         .range = "[0, inf)", .meta = "K"},
        NB_FLAG_SEED(&seed, "the noise and the random filters"),
        NB_FLAG_DEVICE(&device, "where the network runs and the pixels are optimized", ""),
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_JSON(&json),
    };
    nb_cli cli = {
        .cmd = cmd, .args = "[CONTENT] STYLE ",
        .about = "Neural style transfer (notes §4.6): optimizes the pixels of x so that its feature maps match CONTENT's at\n"
                 "one layer (eq. 1) and the Gram matrices of STYLE's at several (eq. 3-5), minimizing eq. 7,\n"
                 "alpha L_content + beta L_style. With STYLE alone it synthesizes a texture (the style loss only).\n"
                 "Images are PNG or JPEG; STYLE is resized to the size of x. The default feature network is one\n"
                 "layer of seeded random filters at five scales (Ustyuzhaninov et al. 2017), which needs no download.\n"
                 "--json prints content_loss and style_loss (eq. 1 and eq. 5, unweighted), total_loss (eq. 7) at the\n"
                 "saved image, and iterations_per_second.",
        .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 2};
    const char *pos[2];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    const char *content_path = npos == 2 ? pos[0] : NULL, *style_path = pos[npos - 1];
    if (!out) return nb_cli_usage_error(&cli, "--out OUT.png is required");
    nb_device dev;
    if ((prc = nb_cli_device(&cli, device, &dev)) != NB_CLI_OK) return prc;
    bool adam = !strcmp(optim, "adam");
    if (iters < 0) iters = adam ? 500 : 200;
    nb_cli_threads(cmd, threads, 0);

    int rc = 1;
    nb_style_net *net = NULL;
    nb_style *prob = NULL;
    nb_tensor *content = NULL, *style = NULL, *x = NULL;
    float *host = NULL;
    nb_optim *opt = NULL;

    /* The feature network, and its layer names. */
    enum { F_RANDOM, F_VGG, F_MODEL } fk = !strcmp(features, "random")          ? F_RANDOM
                                           : !strncmp(features, "vgg19:", 6) ? F_VGG
                                                                              : F_MODEL;
    if (!strcmp(features, "vgg19")) return nb_cli_usage_error(&cli, "--features vgg19 needs the weights: vgg19:FILE");
    const char *const *names;
    int nnames;
    if (fk == F_RANDOM) {
        net = nb_style_net_random(5, 64, 7, (uint64_t)seed);
        nnames = nb_style_net_layers(net, &names);
    } else if (fk == F_VGG) {
        names = vgg_names;
        nnames = 16;
    } else {
        if (!(net = nb_style_net_model(features))) return nb_cli_fail(cmd, "--features: %s", nb_errmsg());
        nnames = nb_style_net_layers(net, &names);
    }
    int cl = -1, sl[MAXL], nsl;
    const char *def_style = fk == F_VGG ? "conv1_1,conv2_1,conv3_1,conv4_1,conv5_1" : NULL;
    char all[2048];
    if (!def_style) {
        list_names(all, sizeof all, names, nnames);
        for (char *p = all; (p = strstr(p, ", "));) memmove(p + 1, p + 2, strlen(p + 2) + 1), *p = ',';
        def_style = all;
    }
    /* Layers, weights and --init that this run cannot take: usage errors (2), as the parser's. */
    if ((nsl = parse_layers(cmd, "--style-layers", style_layers ? style_layers : def_style, names, nnames, sl)) < 0) {
        rc = 2;
        nb_cli_usage_line(&cli);
        goto done;
    }
    if (content_path) {
        const char *dc = fk == F_VGG ? "conv4_2" : fk == F_RANDOM ? "scale3" : names[nnames - 1];
        if (parse_layers(cmd, "--content-layer", content_layer ? content_layer : dc, names, nnames, &cl) != 1) {
            if (cl >= 0) nb_cli_fail(cmd, "--content-layer: one layer expected");
            rc = 2;
            nb_cli_usage_line(&cli);
            goto done;
        }
    } else if (content_layer) {
        nb_cli_warn(cmd, "--content-layer is ignored without a CONTENT image (texture synthesis)");
    }
    float w[MAXL];
    if (style_weights) {
        int k = 0;
        char *copy = nb__xstrdup("--style-weights", style_weights), *save = NULL, *end;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), k++) {
            double v = strtod(t, &end);
            if (*end || end == t || !isfinite(v) || v < 0 || k >= MAXL) {
                nb_cli_fail(cmd, "--style-weights: '%s' is not a weight >= 0", t);
                free(copy);
                rc = 2;
                nb_cli_usage_line(&cli);
                goto done;
            }
            w[k] = (float)v;
        }
        free(copy);
        if (k != nsl) {
            nb_cli_fail(cmd, "--style-weights: %d weights for %d style layers", k, nsl);
            rc = 2;
            nb_cli_usage_line(&cli);
            goto done;
        }
    } else {
        for (int i = 0; i < nsl; i++) w[i] = 1.f / (float)nsl;
    }
    if (fk == F_VGG) {
        int deepest = cl;
        for (int i = 0; i < nsl; i++) deepest = sl[i] > deepest ? sl[i] : deepest;
        if (!(net = nb_style_net_vgg19(features + 6, deepest + 1, !strcmp(pool, "avg")))) {
            nb_cli_fail(cmd, "--features: %s", nb_errmsg());
            goto done;
        }
    } else if (!strcmp(pool, "avg")) {
        nb_cli_warn(cmd, "--pool applies to vgg19 only");
    }
    /* alpha/beta: the notes' 1e-3 for VGG-19; the random filters' maps are
     * larger and fewer, and 1e-8 balances the two losses there (measured on
     * skimage's images at 128-256 pixels: content kept, style loss 1000x
     * lower). */
    if (beta < 0) beta = fk == F_RANDOM ? 1e8 : 1e3;

    /* The images, at the size of x. */
    int64_t h, wd;
    {
        const char *ref = content_path ? content_path : style_path;
        int64_t ih, iw;
        nb_tensor *img = nb_image_read(ref, &ih, &iw);
        if (!img) {
            nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        nb_tensor_free(img);
        if (!nb_style_net_input_size(net, &h, &wd)) {
            double s = (double)size / (double)(ih > iw ? ih : iw);
            h = (int64_t)fmax(1, floor(ih * s + 0.5));
            wd = (int64_t)fmax(1, floor(iw * s + 0.5));
        }
    }
    if (h < 16 || wd < 16) {
        nb_cli_fail(cmd, "the image would be %lldx%lld: at least 16 pixels a side needed (--size)", (long long)wd,
                    (long long)h);
        goto done;
    }
    if (content_path && !(content = read_sized(cmd, content_path, h, wd))) goto done;
    if (!(style = read_sized(cmd, style_path, h, wd))) goto done;

    x = nb_tensor_new(4, (int64_t[]){1, 3, h, wd});
    nb_rng rng;
    nb_rng_seed(&rng, (uint64_t)seed, 3);
    if (!strcmp(init, "noise")) {
        nb_init_uniform(x, 0.f, 1.f, &rng);
    } else if (!strcmp(init, "content")) {
        if (!content) {
            nb_cli_fail(cmd, "--init content needs a CONTENT image");
            rc = 2;
            nb_cli_usage_line(&cli);
            goto done;
        }
        memcpy(x->data, content->data, sizeof(float) * (size_t)x->size);
    } else {
        nb_tensor *img = read_sized(cmd, init, h, wd);
        if (!img) goto done;
        memcpy(x->data, img->data, sizeof(float) * (size_t)x->size);
        nb_tensor_free(img);
    }
    nb_requires_grad(x, true);
    nb_tensor_move(x, dev);
    nb_style_net_to(net, dev);

    nb_style_spec sp = {.content_layer = cl, .style_layers = sl, .style_weights = w, .nstyle = nsl,
                        .alpha = (float)alpha, .beta = (float)beta, .tv = (float)tv};
    prob = nb_style_new(net, content, style, &sp);
    if (dev != NB_CPU && !(host = malloc(sizeof(float) * (size_t)x->size))) {
        nb_cli_fail(cmd, "out of memory");
        goto done;
    }
    run r = {.prob = prob, .x = x, .host = host, .total = iters, .json = json};
    nb_style_losses first;
    {
        bool g = nb_set_grad_enabled(false);
        nb_style_objective(prob, x, &first);
        nb_set_grad_enabled(g);
        nb_arena_reset();
    }
    r.last = first;
    nb_cli_catch_interrupts();
    nb_param ps[1] = {{x, false}};
    r.t0 = nb_cli_now();
    int sig = 0;
    if (adam) {
        nb_optim_opts oo = {.kind = NB_ADAM, .lr = (float)lr};
        opt = nb_optim_new(&oo, ps, 1);
        if (!opt) { /* a setting it refuses (nb_errmsg() names it) */
            nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        for (; r.done < iters; r.done++) {
            if ((sig = nb_cli_interrupted())) break;
            nb_zero_grad(x);
            closure(&r);
            nb_arena_reset();
            nb_optim_step(opt);
            clamp01(&r);
            if (every && (r.done + 1) % every == 0 && r.done + 1 < iters && save_x(cmd, x, out)) goto done;
        }
    } else {
        /* L-BFGS runs in chunks of K iterations when the image is saved
         * every K (its history restarts at each chunk). */
        while (r.done < iters) {
            if ((sig = nb_cli_interrupted())) break;
            int chunk = (int)(every && every < iters - r.done ? every : iters - r.done), did = 0;
            nb_lbfgs_opts lo = {.max_iter = chunk, .tol_grad = 1e-30f, .tol_change = 1e-30f, .stop = interrupted};
            nb_lbfgs(ps, 1, closure, &r, &lo, &did);
            r.done += did;
            if ((sig = nb_cli_interrupted())) break; /* L-BFGS stopped at the signal */
            if (did < chunk) break; /* converged: nothing left to gain */
            if (every && r.done < iters && save_x(cmd, x, out)) goto done;
        }
        clamp01(&r);
    }
    double secs = nb_cli_now() - r.t0;
    int64_t done_iters = r.done < iters ? r.done : iters;
    /* The losses of the image as saved (clamped to [0, 1]). */
    {
        bool g = nb_set_grad_enabled(false);
        nb_style_objective(prob, x, &r.last);
        nb_set_grad_enabled(g);
        nb_arena_reset();
    }
    if (save_x(cmd, x, out)) goto done;
    if (sig) {
        fprintf(stderr, "nabla %s: stopped by a signal after %lld iterations; the image so far is in %s\n", cmd,
                (long long)done_iters, out);
        rc = 128 + sig;
        goto done;
    }
    r.done = done_iters;
    progress(&r, true);
    double ips = secs > 0 && done_iters > 0 ? (double)done_iters / secs : 0;
    FILE *f = json ? stderr : stdout;
    fprintf(f, "%s: %lldx%lld, %lld iterations (%lld evaluations) in %.2f s, %.2f it/s\n", out, (long long)wd,
            (long long)h, (long long)done_iters, (long long)r.evals, secs, ips);
    fprintf(f, "  content loss %.6g, style loss %.6g (initial %.6g, %.1fx lower), total %.6g\n", r.last.content,
            r.last.style, first.style, r.last.style > 0 ? first.style / r.last.style : INFINITY, r.last.total);
    if (json)
        printf("{\"content_loss\": %.9g, \"style_loss\": %.9g, \"total_loss\": %.9g, \"initial_style_loss\": %.9g, "
               "\"initial_content_loss\": %.9g, \"iterations\": %lld, \"evaluations\": %lld, \"seconds\": %.3f, "
               "\"iterations_per_second\": %.4f, \"width\": %lld, \"height\": %lld}\n",
               r.last.content, r.last.style, r.last.total, first.style, first.content, (long long)done_iters,
               (long long)r.evals, secs, ips, (long long)wd, (long long)h);
    rc = 0;
done:
    free(host);
    nb_optim_free(opt);
    nb_style_free(prob);
    nb_tensor_free(x);
    nb_tensor_free(content);
    nb_tensor_free(style);
    nb_style_net_free(net);
    return rc;
}

NB_COMMAND("style", cmd_style, "neural style transfer and texture synthesis (notes §4.6)")
