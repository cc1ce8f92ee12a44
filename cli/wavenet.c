/* wavenet.c — `nabla wavenet train|generate|eval|spectrogram|synth|distance|
 * features`: WaveNet (notes §4.5) on 16 kHz speech: training on random
 * segments with Adam, validation in bits per sample, atomic checkpoints and
 * --resume; cached generation (or the naive loop) to a WAV file; log-mel
 * pictures; a small synthetic data folder for trying it all out; and the
 * measures of what a model makes: the log-mel distance between two
 * recordings and per-clip speaker features for a classifier. */
#include "cli.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RATE 16000
#define NMELS 80

/* --- data -------------------------------------------------------------------- */

typedef struct {
    int32_t *q;       /* μ-law levels */
    int64_t n;
    int speaker;
    int split;        /* 0 train, 1 valid, 2 test */
    nb_tensor *feats; /* [frames, D] or NULL */
} clip;

typedef struct {
    clip *train, *val;
    int ntrain, nval;
    int nspeakers;
    char **speakers;
    bool val_is_train; /* no held-out clip: validation reuses the training clips */
} corpus;

static void corpus_free(corpus *c) {
    for (int i = 0; i < c->ntrain; i++) free(c->train[i].q), nb_tensor_free(c->train[i].feats);
    for (int i = 0; i < c->nval && !c->val_is_train; i++) free(c->val[i].q), nb_tensor_free(c->val[i].feats);
    free(c->train);
    if (!c->val_is_train) free(c->val);
    for (int i = 0; i < c->nspeakers; i++) free(c->speakers[i]);
    free(c->speakers);
    memset(c, 0, sizeof *c);
}

/* 0, or -1 with an error naming the file and the [frame, feature] of the
 * first NaN or infinity of features read from a .npy: the network would
 * take it without complaint and train on, or generate, garbage. */
static int features_finite(const char *path, const nb_tensor *t) {
    int64_t dim = t->ndim == 2 ? t->shape[1] : 1;
    for (int64_t i = 0; i < t->size; i++)
        if (!isfinite(t->data[i]))
            return nb_error("%s: feature [%lld, %lld] is %s; expected finite numbers", path, (long long)(i / dim),
                            (long long)(i % dim), isnan(t->data[i]) ? "NaN" : "infinite");
    return 0;
}

/* Features of a clip: "mel" (log-mel of the audio), "phones" (the clip's
 * .npy from the manifest) or none. */
static nb_tensor *clip_features(const char *kind, const nb_audio *a, const nb_speech_clip *sc) {
    if (!kind) return NULL;
    if (!strcmp(kind, "mel")) return nb_logmel(a->x, a->n, RATE, NMELS);
    if (!sc->phones) {
        nb_error("%s: no phone features for this clip in the manifest (--cond phones)", sc->path);
        return NULL;
    }
    nb_tensor *t = nb_npy_read(sc->phones);
    if (!t) return NULL;
    int64_t frames = (a->n + NB_FEATURE_HOP - 1) / NB_FEATURE_HOP;
    if (t->ndim != 2 || t->shape[0] < 1 || labs((long)(t->shape[0] - frames)) > 2) {
        char s[96];
        nb_error("%s: phone features of shape %s, expected [%lld, n_phones] (one row per %d samples of %s)",
                 sc->phones, nb_shape_str(t, s, sizeof s), (long long)frames, NB_FEATURE_HOP, sc->path);
        nb_tensor_free(t);
        return NULL;
    }
    if (features_finite(sc->phones, t)) {
        nb_tensor_free(t);
        return NULL;
    }
    return t;
}

/* Split bits for corpus_load's `keep`. */
#define KEEP_TRAIN 1u
#define KEEP_VALID 2u
#define KEEP_TEST 4u
#define KEEP_ALL 7u

/* The clips a --split choice names (eval and features). */
static unsigned split_mask(const char *split) {
    return !strcmp(split, "held-out") ? KEEP_VALID | KEEP_TEST
           : !strcmp(split, "valid")  ? KEEP_VALID
           : !strcmp(split, "test")   ? KEEP_TEST
           : !strcmp(split, "train")  ? KEEP_TRAIN
                                      : KEEP_ALL;
}

/* Reads the clips of DATA whose split is in `keep` at 16 kHz as μ-law levels
 * (training clips in c->train, held-out ones, split != 0, in c->val). With
 * KEEP_TRAIN, having no training clip is an error, and having no held-out
 * clip makes c->val the training clips. */
static int corpus_load(corpus *c, const char *dir, const char *cond, unsigned keep) {
    memset(c, 0, sizeof *c);
    nb_speech_set s;
    if (nb_speech_open(dir, &s)) return -1;
    c->train = calloc((size_t)s.n, sizeof(clip));
    c->val = calloc((size_t)s.n, sizeof(clip));
    c->nspeakers = s.nspeakers;
    c->speakers = calloc((size_t)s.nspeakers + 1, sizeof(char *));
    for (int i = 0; i < s.nspeakers; i++) c->speakers[i] = strdup(s.speakers[i]);
    int rc = 0;
    for (int i = 0; i < s.n && !rc; i++) {
        if (!(keep & (1u << s.clips[i].split))) continue;
        nb_audio a;
        if (nb_audio_read(s.clips[i].path, RATE, &a)) {
            rc = -1;
            break;
        }
        clip k = {malloc(sizeof(int32_t) * (size_t)a.n), a.n, s.clips[i].speaker, s.clips[i].split, NULL};
        nb_mulaw_encode_array(a.x, a.n, k.q);
        if (cond && !(k.feats = clip_features(cond, &a, &s.clips[i]))) rc = -1;
        nb_audio_free(&a);
        if (s.clips[i].split == 0) c->train[c->ntrain++] = k;
        else c->val[c->nval++] = k;
        if (rc) break;
    }
    nb_speech_free(&s);
    if (!rc && (keep & KEEP_TRAIN) && c->ntrain == 0) rc = nb_error("%s: every clip is held out; no training clip", dir);
    if (!rc && (keep & KEEP_TRAIN) && c->nval == 0) {
        free(c->val);
        c->val = c->train, c->nval = c->ntrain, c->val_is_train = true;
    }
    if (rc) corpus_free(c);
    return rc;
}

/* Bits per sample of the model on clips (at most max_samples predictions
 * in all): each clip in chunks of `chunk` predictions, each chunk preceded
 * by the receptive field's worth of context. Without `spread` the first
 * max_samples predictions are scored (clip after clip); with it, when the
 * clips hold more, every clip gives the same fraction of its samples, a
 * window at its middle, so that all clips (and speakers) are represented.
 * hist (may be NULL) gets the counts of the μ-law levels scored. */
static double bits_per_sample(nb_wavenet *m, const clip *clips, int n, int64_t chunk, int64_t max_samples,
                              bool spread, int64_t *count, int64_t hist[NB_WAVENET_CLASSES]) {
    bool was = nb_set_grad_enabled(false);
    const nb_wavenet_config *cf = nb_wavenet_get_config(m);
    int64_t ctx = nb_wavenet_receptive_field(cf) - 1, done = 0, total = 0;
    double nats = 0;
    for (int i = 0; i < n; i++) total += clips[i].n > 1 ? clips[i].n - 1 : 0;
    double frac = spread && total > max_samples ? (double)max_samples / (double)total : 1;
    if (hist) memset(hist, 0, sizeof(int64_t) * NB_WAVENET_CLASSES);
    for (int i = 0; i < n && done < max_samples; i++) {
        const clip *k = &clips[i];
        int64_t from = 1, to = k->n; /* the predictions scored: samples from..to-1 */
        if (frac < 1) {
            int64_t want = (int64_t)floor(frac * (double)(k->n - 1));
            from = 1 + (k->n - 1 - want) / 2, to = from + want;
        }
        for (int64_t a = from; a < to && done < max_samples; a += chunk) {
            int64_t b = a + chunk < to ? a + chunk : to; /* predict samples a..b-1 */
            if (b - a > max_samples - done) b = a + (max_samples - done);
            int64_t a0 = a - 1 - ctx < 0 ? 0 : a - 1 - ctx, L = b - 1 - a0; /* inputs a0..b-2 */
            int32_t spk = k->speaker;
            nb_tensor *cond = cf->cond_dim ? nb_wavenet_cond(m, k->feats, a0 + 1, L) : NULL;
            nb_tensor *lg = nb_wavenet_forward(m, k->q + a0, 1, L, &spk, cond);
            const float *o = lg->data;
            if (lg->device != NB_CPU) { /* a model on the GPU: its logits come back to be scored */
                float *h = nb_arena_alloc(sizeof(float) * (size_t)lg->size);
                nb_tensor_read(lg, h);
                o = h;
            }
            for (int64_t t = a - 1 - a0; t < L; t++) {
                double mx = -INFINITY, tot = 0;
                for (int c = 0; c < NB_WAVENET_CLASSES; c++) mx = fmax(mx, o[c * L + t]);
                for (int c = 0; c < NB_WAVENET_CLASSES; c++) tot += exp(o[c * L + t] - mx);
                nats += log(tot) + mx - o[k->q[a0 + t + 1] * L + t];
                if (hist) hist[k->q[a0 + t + 1]]++;
            }
            done += b - a;
            nb_arena_reset();
        }
    }
    nb_set_grad_enabled(was);
    if (count) *count = done;
    return done ? nats / (double)done / log(2.0) : NAN;
}

/* Training's validation figure: --val-samples spread over up to VAL_CLIPS
 * held-out clips evenly apart in the list (so over the speakers, which the
 * list groups), a window at the middle of each, rather than the first clips'
 * samples, which are all one speaker's. Each window also reads a receptive
 * field of context: 8 windows of 8000 cost about 25% more than one run. */
#define VAL_CLIPS 8
static double validation_bits(nb_wavenet *m, const clip *val, int nval, int64_t samples) {
    clip sel[VAL_CLIPS];
    int n = nval < VAL_CLIPS ? nval : VAL_CLIPS;
    for (int i = 0; i < n; i++) sel[i] = val[(int64_t)i * nval / n];
    return bits_per_sample(m, sel, n, 16000, samples, true, NULL, NULL);
}

/* --- train ----------------------------------------------------------------------- */

typedef struct {
    nb_cli_loop loop; /* the step, the budget, validation and checkpoint cadence */
    const char *cmd, *out, *log, *cond, *data_path;
    nb_wavenet *m;
    nb_optim *opt;
    corpus *data;
    int64_t segment, batch, val_samples;
    double lr;
    uint64_t seed;
    nb_rng rng; /* draws the segments; saved in checkpoints */
    bool json;
    nb_cli_log csv; /* the CSV log's rows */
    char again[1024]; /* the command that resumes */
    /* a step's buffers: the training clips longer than a segment, a batch's
     * levels, speakers and conditioning */
    int *usable, nusable;
    int32_t *q, *spk;
    nb_tensor **condv;
} trainer;

static int save(const trainer *t, double seconds) {
    char v[17][64], names_buf[4096];
    const char *keys[17], *vals[17];
    int n = 0;
#define PUT(k, ...) (keys[n] = (k), snprintf(v[n], sizeof v[n], __VA_ARGS__), vals[n] = v[n], n++)
    PUT("nabla.step", "%" PRId64, t->loop.step);
    PUT("nabla.optim_steps", "%" PRId64, nb_optim_steps(t->opt));
    PUT("nabla.seconds", "%.3f", seconds);
    PUT("nabla.segment", "%" PRId64, t->segment);
    PUT("nabla.batch", "%" PRId64, t->batch);
    PUT("nabla.lr", "%.9g", t->lr);
    PUT("nabla.seed", "%" PRIu64, t->seed);
    PUT("nabla.rng_state", "%" PRIu64, t->rng.state);
    PUT("nabla.rng_inc", "%" PRIu64, t->rng.inc);
    PUT("nabla.total_steps", "%" PRId64, t->loop.max_steps);
    PUT("nabla.eval_every", "%" PRId64, t->loop.eval_every);
    PUT("nabla.val_samples", "%" PRId64, t->val_samples);
    PUT("nabla.wavenet.cond", "%s", t->cond ? t->cond : "none");
    PUT("nabla.loss_sum", "%.17g", t->loop.loss_sum);
    PUT("nabla.loss_n", "%" PRId64, t->loop.loss_n);
#undef PUT
    names_buf[0] = 0;
    for (int i = 0; i < t->data->nspeakers; i++) {
        size_t l = strlen(names_buf);
        snprintf(names_buf + l, sizeof names_buf - l, "%s%s", i ? "," : "", t->data->speakers[i]);
    }
    keys[n] = "nabla.wavenet.speaker_names", vals[n++] = names_buf;
    nb_cli_extras x;
    nb_cli_extras_init(&x, t->opt, 0);
    int rc = nb_wavenet_save(t->m, t->out, keys, vals, n, x.names, x.ts, x.n);
    nb_cli_extras_free(&x);
    return rc;
}

static int meta_u64(const nb_safetensors *st, const char *path, const char *key, uint64_t *out) {
    const char *v = nb_st_meta(st, key);
    char *end;
    if (!v) return nb_error("%s: not a wavenet training checkpoint ('%s' missing from __metadata__)", path, key);
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-') return nb_error("%s: __metadata__ '%s': expected an integer >= 0, got '%s'", path, key, v);
    *out = x;
    return 0;
}

/* One training segment per batch row: a clip (uniform among those long
 * enough) and a start (uniform), drawn from t->rng. */
static void draw_batch(trainer *t, const int *usable, int nusable, int32_t *q, int32_t *spk, nb_tensor **cond) {
    int64_t S = t->segment;
    for (int64_t b = 0; b < t->batch; b++) {
        const clip *k = &t->data->train[usable[nb_rng_below(&t->rng, (uint32_t)nusable)]];
        int64_t start = (int64_t)nb_rng_below(&t->rng, (uint32_t)(k->n - S)); /* S + 1 samples */
        memcpy(q + b * (S + 1), k->q + start, sizeof(int32_t) * (size_t)(S + 1));
        spk[b] = k->speaker;
        if (cond) cond[b] = nb_wavenet_cond(t->m, k->feats, start + 1, S);
    }
}

/* The loop's callbacks: one step (a batch of random segments, eq. 30's
 * loss, Adam), the validation in bits per sample, the checkpoint. */
static int take_step(void *ctx, double *loss) {
    trainer *t = ctx;
    const nb_wavenet_config *cf = nb_wavenet_get_config(t->m);
    int64_t S = t->segment, B = t->batch;
    draw_batch(t, t->usable, t->nusable, t->q, t->spk, cf->cond_dim ? t->condv : NULL);
    nb_tensor *cond = cf->cond_dim ? (B == 1 ? t->condv[0] : nb_concat(t->condv, (int)B, 0)) : NULL;
    nb_tensor *l = nb_wavenet_loss(t->m, t->q, B, S, cf->nspeakers ? t->spk : NULL, cond);
    *loss = nb_item(l);
    if (!isfinite(*loss)) {
        nb_arena_reset();
        return nb_error("the loss became %g at step %" PRId64 " (try a smaller --lr)", *loss, t->loop.step);
    }
    nb_backward(l);
    nb_param *params;
    int np = nb_wavenet_params(t->m, &params, NULL);
    nb_clip_grad_norm(params, np, 10.f);
    nb_optim_step_zero(t->opt, NULL, 0);
    nb_arena_reset();
    return 0;
}
static double validate(void *ctx) {
    trainer *t = ctx;
    return validation_bits(t->m, t->data->val, t->data->nval, t->val_samples);
}
static int save_cb(void *ctx, double seconds, bool final) { return save(ctx, seconds); }

static int run_train(trainer *t) {
    const char *cmd = t->cmd;
    int64_t S = t->segment, B = t->batch;
    t->usable = malloc(sizeof(int) * (size_t)t->data->ntrain), t->nusable = 0;
    for (int i = 0; i < t->data->ntrain; i++)
        if (t->data->train[i].n > S + 1) t->usable[t->nusable++] = i;
    t->q = malloc(sizeof(int32_t) * (size_t)(B * (S + 1))), t->spk = malloc(sizeof(int32_t) * (size_t)B);
    t->condv = malloc(sizeof(nb_tensor *) * (size_t)B);
    if (!t->usable || !t->q || !t->spk || !t->condv) nb_oom("the training data", 0);
    int rc;
    if (!t->nusable) {
        rc = nb_cli_fail(cmd, "no training clip is longer than --segment %" PRId64 " + 1 samples: use a shorter "
                              "segment", S);
        goto out;
    }
    nb_cli_loop *L = &t->loop;
    nb_cli_resume_command(t->again, sizeof t->again, "wavenet train", &t->data_path, 1, t->out, "--log", t->log, NULL);
    L->cmd = cmd, L->label = "wavenet", L->unit = "bits/sample", L->loss_scale = 1 / log(2.0), L->loss_share = 1;
    L->out = t->out, L->again = t->again, L->quiet = t->json, L->csv = &t->csv, L->ctx = t;
    L->take_step = take_step, L->validate = validate, L->save = save_cb;
    {
        nb_param *params;
        const char *const *names;
        L->nparams = nb_wavenet_params(t->m, &params, &names);
        L->params = params, L->names = names;
    }
    rc = nb_cli_loop_run(L);
    if (rc) goto out;
    {
        const nb_wavenet_config *cf = nb_wavenet_get_config(t->m);
        int64_t steps = L->step - L->first, rf = nb_wavenet_receptive_field(cf);
        double sps = nb_cli_loop_rate(L);
        fprintf(stderr, "validation %.4f bits/sample after %" PRId64 " steps (%" PRId64 " this run, %.2f steps/s, "
                        "%.0f samples/s; receptive field %" PRId64 " samples = %.1f ms); model: %s\n",
                L->val, L->step, steps, sps, sps * (double)(S * B), rf, 1e3 * (double)rf / RATE, t->out);
        if (t->json) {
            printf("{\"bits_per_sample\": %.6f, \"train_bits_per_sample\": ", L->val);
            nb_cli_json_number(stdout, "%.6f", L->train_figure); /* null before the first step */
            printf(", \"steps\": %" PRId64 ", \"run_steps\": %" PRId64 ", \"seconds\": %.3f, \"train_seconds\": %.3f, "
                   "\"steps_per_second\": %.4f, \"samples_per_second\": %.1f, \"receptive_field\": %" PRId64
                   ", \"parameters\": %d}\n",
                   L->step, steps, nb_cli_now() - L->t0, L->train_secs, sps, sps * (double)(S * B), rf,
                   nb_wavenet_params(t->m, NULL, NULL));
        }
    }
out:
    free(t->usable);
    free(t->q);
    free(t->spk);
    free(t->condv);
    return rc;
}

static const char *TRAIN_ABOUT =
    "DATA: a speech folder (manifest.csv as the corpus builder writes it, or one sub-folder of audio files\n"
    "per speaker). Clips are read at 16 kHz and quantized to 256 mu-law levels (eq. 31); training draws\n"
    "random segments (Adam); validation is in bits per sample on the held-out clips (or on the training\n"
    "clips when none is held out). --out is rewritten atomically at every validation; --resume continues\n"
    "it exactly where it stopped (same segments, same optimizer state).";

static int cmd_train(int argc, char **argv) {
    const char *cmd = "wavenet train", *out = NULL, *log = NULL, *resume = NULL, *cond = "none", *device = "cpu";
    long layers = 10, stacks = 2, residual = 32, skip = 32, segment = 16000, batch = 1, steps = 2000, seed = 1,
         threads = 0, eval_every = 200, val_samples = 64000, cond_channels = 0;
    double lr = 1e-3, minutes = 0;
    bool speakers = false, json = false;
    nb_flag flags[] = {
        {"--speakers", NB_FLAG_BOOL, &speakers, "condition on the speaker (eq. 34)"},
        {"--cond", NB_FLAG_CHOICE, &cond, "local conditioning (eq. 33): log-mel of the clip, its phone features, or none",
         .range = "none|mel|phones"},
        {"--cond-channels", NB_FLAG_INT, &cond_channels,
         "width of the upsampled features entering every gate (each gate's V * y costs 2 x residual x this per sample)",
         .range = "[1, 4096]", .def = "16, or the feature size if smaller"},
        {"--layers", NB_FLAG_INT, &layers, "blocks per stack (dilations 1 .. 2^(layers-1))", .range = "[1, 16]"},
        {"--stacks", NB_FLAG_INT, &stacks, "stacks of dilated blocks", .range = "[1, 16]"},
        {"--residual", NB_FLAG_INT, &residual, "residual channels", .range = "[1, 1024]"},
        {"--skip", NB_FLAG_INT, &skip, "skip channels", .range = "[1, 1024]"},
        {"--segment", NB_FLAG_INT, &segment, "samples predicted per training segment", .range = "[1, 1000000]"},
        {"--batch", NB_FLAG_INT, &batch, "segments per step", .range = "[1, 1024]"},
        {"--lr", NB_FLAG_FLOAT, &lr, "Adam learning rate", .range = "(0, inf)"},
        {"--steps", NB_FLAG_INT, &steps, "optimizer steps in all (0 writes the initial model)", .range = "[0, inf)"},
        {"--minutes", NB_FLAG_FLOAT, &minutes, "train for this long instead of --steps", .range = "(0, inf)",
         .def = "none: --steps decides"},
        {"--eval-every", NB_FLAG_INT, &eval_every, "validate, log and checkpoint every N steps", .range = "[1, inf)"},
        {"--val-samples", NB_FLAG_INT, &val_samples, "held-out samples scored per validation (windows at the middle of up to 8 clips spread over the list)", .range = "[1, inf)"},
        NB_FLAG_SEED(&seed, "the initialization and the segments"),
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_DEVICE(&device, "where to train", "; the model file is the same either way"),
        NB_FLAG_MODEL_OUT(&out, "model file, rewritten atomically at every validation"),
        NB_FLAG_LOG(&log, "CSV log, one row per validation (see nabla plot)"),
        NB_FLAG_RESUME(&resume, ""),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "DATA ", .about = TRAIN_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
#define GIVEN(name) (nb_cli_flag(&c, name)->given)
    if (GIVEN("--steps") && GIVEN("--minutes")) {
        return nb_cli_usage_error(&c, "--steps %ld and --minutes %g exclude each other: give one", steps, minutes);
    }
    if (!out && !resume) return nb_cli_usage_error(&c, "--out MODEL is required (or --resume MODEL)");
    nb_device dev = NB_CPU;
    if ((rc = nb_cli_device(&c, device, &dev)) != NB_CLI_OK) return rc;
    if (GIVEN("--cond-channels") && !resume && !strcmp(cond, "none"))
        return nb_cli_usage_error(&c, "--cond-channels needs local conditioning (--cond mel or phones)");
    if (!out && nb_cli_check_output(cmd, "--resume", resume, NULL)) return 2;
    if (nb_cli_check_not_input(cmd, "--log", log, pos[0])) return 2;
    nb_cli_threads(cmd, threads, 0);
    corpus data = {0}; /* freed on every way out, some before it is loaded */
    trainer t = {.cmd = cmd, .out = out ? out : resume, .log = log, .data_path = pos[0], .json = json,
                 .loop.eval_every = eval_every, .val_samples = val_samples};
    nb_safetensors *ck = NULL;
    nb_param *params;
    int np;
    rc = 1;
    if (resume) {
        t.m = nb_wavenet_load(resume, &ck);
        if (!t.m) return nb_cli_fail(cmd, "%s", nb_errmsg());
        const char *ck_cond = nb_st_meta(ck, "nabla.wavenet.cond");
        if (ck_cond && !GIVEN("--cond")) cond = ck_cond;
        const nb_wavenet_config *cf = nb_wavenet_get_config(t.m);
        /* The network's shape is the checkpoint's: a shape flag given now
         * that differs was dropped in silence (charrnn and chat refuse theirs). */
        int stored_cc = cf->cond_dim ? (cf->cond_channels ? cf->cond_channels : cf->cond_dim) : 0;
        const struct {
            const char *flag;
            long now, stored;
        } shape[] = {{"--layers", layers, cf->layers},       {"--stacks", stacks, cf->stacks},
                     {"--residual", residual, cf->residual}, {"--skip", skip, cf->skip},
                     {"--cond-channels", cond_channels, stored_cc}};
        for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++)
            if (GIVEN(shape[i].flag) && shape[i].now != shape[i].stored) {
                if (shape[i].stored)
                    rc = nb_cli_usage_error(&c, "%s was trained with %s %ld: %s %ld cannot change on --resume", resume,
                                            shape[i].flag, shape[i].stored, shape[i].flag, shape[i].now);
                else
                    rc = nb_cli_usage_error(&c, "%s was trained without local conditioning: %s %ld cannot change on "
                                                "--resume", resume, shape[i].flag, shape[i].now);
                goto done;
            }
        if (GIVEN("--speakers") && speakers != (cf->nspeakers > 0)) {
            rc = nb_cli_usage_error(&c, "%s was trained with %s: %s cannot change on --resume", resume,
                                    cf->nspeakers ? "--speakers" : "--no-speakers", speakers ? "--speakers" : "--no-speakers");
            goto done;
        }
        speakers = cf->nspeakers > 0;
        uint64_t v;
        if (meta_u64(ck, resume, "nabla.step", &v)) goto fail_msg;
        t.loop.step = (int64_t)v;
        if (!GIVEN("--segment") && !meta_u64(ck, resume, "nabla.segment", &v)) segment = (long)v;
        if (!GIVEN("--batch") && !meta_u64(ck, resume, "nabla.batch", &v)) batch = (long)v;
        if (!GIVEN("--steps") && !GIVEN("--minutes") && !meta_u64(ck, resume, "nabla.total_steps", &v)) steps = (long)v;
        if (!meta_u64(ck, resume, "nabla.seed", &v) && nb_cli_resume_seed(&c, resume, v, &seed)) goto fail_msg;
        if (!GIVEN("--eval-every") && !meta_u64(ck, resume, "nabla.eval_every", &v) && v > 0) t.loop.eval_every = (int64_t)v;
        /* The validation figure goes on over the same samples (absent from
         * older checkpoints: the flag's value). */
        if (!GIVEN("--val-samples") && nb_st_meta(ck, "nabla.val_samples") && !meta_u64(ck, resume, "nabla.val_samples", &v) &&
            v > 0)
            t.val_samples = (int64_t)v;
        if (nb_cli_meta_number(ck, resume, "nabla.seconds", &t.loop.seconds) ||
            (!GIVEN("--lr") && nb_cli_meta_number(ck, resume, "nabla.lr", &lr)))
            goto fail_msg;
        /* The checkpoint's settings meet the flags' ranges, as given ones do
         * (a damaged --batch or --segment sized the buffers of every step). */
        const char *kept[] = {"--cond", "--segment", "--batch", "--steps", "--lr"};
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
            if (nb_cli_check_stored(&c, kept[i], resume)) goto fail_msg;
        nb_clear_error();
    }
    const char *condk = strcmp(cond, "none") ? cond : NULL;
    if (corpus_load(&data, pos[0], condk, KEEP_ALL)) {
        nb_wavenet_free(t.m);
        nb_st_free(ck);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    t.data = &data;
    t.cond = condk;
    if (!resume) {
        nb_wavenet_config cf = {.layers = (int)layers, .stacks = (int)stacks, .residual = (int)residual,
                                .skip = (int)skip, .nspeakers = speakers ? data.nspeakers : 0};
        if (condk) cf.cond_dim = (int)data.train[0].feats->shape[1], cf.cond_hop = NB_FEATURE_HOP;
        /* 16 channels: a conditioned step costs 1.12-1.17x an unconditioned one,
         * where all 80 log-mel bands in every gate cost 1.7x for little more
         * per step (bench/wavenet_quality.sh, README) */
        if (condk) cf.cond_channels = cond_channels ? (int)cond_channels : cf.cond_dim < 16 ? cf.cond_dim : 16;
        nb_rng r;
        nb_rng_seed(&r, (uint64_t)seed, 0);
        t.m = nb_wavenet_new(&cf, &r);
        if (!t.m) goto fail_msg;
        if (condk) { /* standardized on the training clips' frames, kept in the model */
            const nb_tensor **f = malloc(sizeof(nb_tensor *) * (size_t)data.ntrain);
            if (!f) nb_oom("the training data", 0);
            for (int i = 0; i < data.ntrain; i++) f[i] = data.train[i].feats;
            int bad = nb_wavenet_fit_features(t.m, f, data.ntrain);
            free(f);
            if (bad) goto fail_msg;
        }
    } else {
        const nb_wavenet_config *cf = nb_wavenet_get_config(t.m);
        if (cf->nspeakers && cf->nspeakers != data.nspeakers) {
            nb_error("%s was trained on %d speakers; %s has %d", resume, cf->nspeakers, pos[0], data.nspeakers);
            goto fail_msg;
        }
        if (condk && cf->cond_dim != data.train[0].feats->shape[1]) {
            nb_error("%s takes %d features per frame; --cond %s gives %lld", resume, cf->cond_dim, cond,
                     (long long)data.train[0].feats->shape[1]);
            goto fail_msg;
        }
    }
    if (condk)
        for (int i = 0; i < data.ntrain + (data.val_is_train ? 0 : data.nval); i++) {
            const clip *k = i < data.ntrain ? &data.train[i] : &data.val[i - data.ntrain];
            if (k->feats->shape[1] != data.train[0].feats->shape[1]) {
                nb_error("%s: clips have features of different sizes", pos[0]);
                goto fail_msg;
            }
        }
    np = nb_wavenet_params(t.m, &params, NULL);
    t.opt = nb_optim_new(&(nb_optim_opts){.kind = NB_ADAM, .lr = (float)lr}, params, np);
    if (!t.opt) goto fail_msg; /* a setting it refuses, named in nb_errmsg() */
    t.segment = segment, t.batch = batch, t.lr = lr, t.seed = (uint64_t)seed, t.loop.minutes = minutes;
    t.loop.max_steps = minutes > 0 ? -1 : steps;
    nb_rng_seed(&t.rng, (uint64_t)seed, 1);
    if (resume) {
        if (nb_cli_optim_restore(t.opt, ck, resume, NULL)) goto fail_msg;
        uint64_t v;
        if (meta_u64(ck, resume, "nabla.optim_steps", &v)) goto fail_msg;
        nb_optim_set_steps(t.opt, (int64_t)v);
        if (meta_u64(ck, resume, "nabla.rng_state", &t.rng.state) || meta_u64(ck, resume, "nabla.rng_inc", &t.rng.inc) ||
            nb_cli_loop_restore(&t.loop, ck, resume))
            goto fail_msg;
    }
    if (dev == NB_CUDA) /* the weights; Adam's moments follow on the first step */
        nb_params_to(params, np, NB_CUDA);
    {
        const nb_wavenet_config *cf = nb_wavenet_get_config(t.m);
        int64_t rf = nb_wavenet_receptive_field(cf);
        if (data.val_is_train) nb_cli_warn(cmd, "%s holds no held-out clip: validating on the training clips", pos[0]);
        fprintf(stderr, "wavenet: %d x %d blocks, %d residual / %d skip channels, receptive field %" PRId64
                        " samples (%.1f ms), %d speakers%s, conditioning %s",
                cf->stacks, cf->layers, cf->residual, cf->skip, rf, 1e3 * (double)rf / RATE, cf->nspeakers,
                cf->nspeakers ? "" : " (unconditioned)", cond);
        if (cf->cond_dim) fprintf(stderr, " (%d features upsampled to %d channels)", cf->cond_dim, cf->cond_channels);
        fprintf(stderr, "; %d training clips, %d validation\n", data.ntrain, data.nval);
    }
    if (nb_cli_log_open(&t.csv, t.log, "step,train_bits_per_sample,val_bits_per_sample,seconds", resume != NULL, 0,
                        nb_cli_loop_logged(&t.loop)))
        goto fail_msg;
    nb_cli_catch_interrupts();
    rc = run_train(&t);
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    nb_cli_log_free(&t.csv);
    nb_optim_free(t.opt);
    nb_wavenet_free(t.m);
    nb_st_free(ck);
    corpus_free(&data);
    return rc;
#undef GIVEN
}

/* --seconds as a count of samples at 16 kHz, at least one: a shorter one
 * (--seconds 1e-5) wrote empty clips that every other verb refuses. NB_CLI_OK,
 * or 2 after the usage error. */
static int seconds_to_samples(const nb_cli *c, double seconds, int64_t *n) {
    *n = (int64_t)llround(seconds * RATE);
    if (*n >= 1) return NB_CLI_OK;
    return nb_cli_usage_error(c, "--seconds %g is less than one sample at %d kHz (at least %g)", seconds, RATE / 1000,
                              0.5 / RATE);
}

/* --- generate ------------------------------------------------------------------ */

/* OUT.wav for stream 0, OUT-<k>.wav for stream k. */
static void stream_path(const char *out, int k, char *buf, size_t n) {
    if (k == 0) {
        snprintf(buf, n, "%s", out);
        return;
    }
    const char *dot = strrchr(out, '.');
    int stem = dot ? (int)(dot - out) : (int)strlen(out);
    snprintf(buf, n, "%.*s-%d%s", stem, out, k, dot ? dot : "");
}

static int cmd_generate(int argc, char **argv) {
    const char *cmd = "wavenet generate", *out = NULL, *condf = NULL, *like = NULL, *spk_s = NULL;
    double seconds = 1, temperature = 1;
    long streams = 1, seed = 1, threads = 0;
    bool naive = false, json = false;
    nb_flag flags[] = {
        {"--seconds", NB_FLAG_FLOAT, &seconds, "length at 16 kHz (with --cond/--like: at most this, default theirs)",
         .range = "(0, 3600]"},
        {"--speaker", NB_FLAG_STR, &spk_s, "speaker: its number or name (models trained with --speakers)", .meta = "K",
         .def = "0"},
        {"--cond", NB_FLAG_STR, &condf, "features [frames, D] (.npy) to condition on", .meta = "FILE.npy", .def = ""},
        {"--like", NB_FLAG_STR, &like, "condition on the log-mel of this recording (resynthesis)", .meta = "WAV",
         .def = ""},
        {"--temperature", NB_FLAG_FLOAT, &temperature, "sample softmax(logits / T); 0: the most likely level",
         .range = "[0, 100]"},
        {"--streams", NB_FLAG_INT, &streams, "clips generated at once (OUT-1.wav, ... for the others)",
         .range = "[1, 256]"},
        {"--naive", NB_FLAG_BOOL, &naive, "recompute the receptive field for every sample (slow; for checking): "
                                          "after the first receptive field, which the cached path gives (the same "
                                          "samples), so that the rate is that of full windows"},
        NB_FLAG_SEED(&seed, "the sampling"),
        NB_FLAG_THREADS(&threads, "1"),
        {"--out", NB_FLAG_OUTPUT, &out, "the generated audio", .range = "wav", .meta = "OUT.wav", .def = ""},
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL ", .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]),
                .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    if (!out) return nb_cli_usage_error(&c, "--out OUT.wav is required");
    if (condf && like) return nb_cli_usage_error(&c, "--cond and --like exclude each other");
    if (nb_cli_check_not_input(cmd, "--out", out, like)) return 2; /* the reference recording */
    int64_t n;
    if ((rc = seconds_to_samples(&c, seconds, &n)) != NB_CLI_OK) return rc;
    nb_cli_threads(cmd, threads, 1);
    nb_safetensors *st = NULL;
    nb_wavenet *m = nb_wavenet_load(pos[0], &st);
    if (!m) return nb_cli_fail(cmd, "%s", nb_errmsg());
    const nb_wavenet_config *cf = nb_wavenet_get_config(m);
    int32_t *spk = calloc((size_t)streams, sizeof(int32_t)), *lv = NULL;
    nb_tensor *feats = NULL, *u = NULL;
    float *x = NULL;
    rc = 1;
    if (spk_s) {
        if (!cf->nspeakers) {
            nb_error("%s was trained without speakers: --speaker does not apply", pos[0]);
            goto fail_msg;
        }
        char *end;
        long k = strtol(spk_s, &end, 10);
        if (*end || !*spk_s) { /* a name */
            k = -1;
            const char *names = nb_st_meta(st, "nabla.wavenet.speaker_names");
            int i = 0;
            for (const char *p = names; p && *p; i++) {
                const char *e = strchr(p, ',');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                if (l == strlen(spk_s) && !strncmp(p, spk_s, l)) k = i;
                p = e ? e + 1 : p + l;
            }
            if (k < 0) {
                nb_error("%s: no speaker named '%s' (known: %s)", pos[0], spk_s, names ? names : "none");
                goto fail_msg;
            }
        }
        if (k < 0 || k >= cf->nspeakers) {
            nb_error("--speaker %s: %s knows %d speakers (0..%d)", spk_s, pos[0], cf->nspeakers, cf->nspeakers - 1);
            goto fail_msg;
        }
        for (long s = 0; s < streams; s++) spk[s] = (int32_t)k;
    }
    if (cf->cond_dim) {
        if (condf) feats = nb_npy_read(condf);
        else if (like) {
            nb_audio a;
            if (nb_audio_read(like, RATE, &a)) goto fail_msg;
            feats = nb_logmel(a.x, a.n, RATE, NMELS);
            nb_audio_free(&a);
        } else {
            nb_error("%s is conditioned on features: give --cond FILE.npy or --like WAV", pos[0]);
            goto fail_msg;
        }
        if (!feats) goto fail_msg;
        if (feats->ndim != 2 || feats->shape[1] != cf->cond_dim || feats->shape[0] < 1) {
            char s[96];
            nb_error("%s: features of shape %s, expected [frames, %d]", condf ? condf : like,
                     nb_shape_str(feats, s, sizeof s), cf->cond_dim);
            goto fail_msg;
        }
        if (condf && features_finite(condf, feats)) goto fail_msg;
        int64_t avail = feats->shape[0] * cf->cond_hop;
        if (!nb_cli_flag(&c, "--seconds")->given || n > avail) n = avail;
        bool was = nb_set_grad_enabled(false);
        nb_tensor *y = nb_wavenet_cond(m, feats, 0, n);
        u = nb_tensor_clone(nb_reshape(y, 2, (int64_t[]){cf->cond_channels, n}));
        nb_set_grad_enabled(was);
        nb_arena_reset();
    } else if (condf || like) {
        nb_error("%s has no local conditioning: --cond/--like do not apply", pos[0]);
        goto fail_msg;
    }
    lv = malloc(sizeof(int32_t) * (size_t)(n * streams));
    x = malloc(sizeof(float) * (size_t)n);
    nb_wavenet_gen_opts o = {.streams = (int)streams, .samples = n, .speakers = cf->nspeakers ? spk : NULL, .cond = u,
                             .temperature = (float)temperature, .seed = (uint64_t)seed, .naive = naive};
    /* --naive: the first receptive field comes from the cached path (the
     * same samples); the rate counts the naive samples after it, each a
     * pass over a full window */
    int64_t rf0 = nb_wavenet_receptive_field(cf), timed = n;
    double naive_secs = 0;
    if (naive && n > rf0) o.naive_from = rf0 - 1, timed = n - (rf0 - 1);
    o.naive_seconds = &naive_secs;
    double t0 = nb_cli_now();
    if (nb_wavenet_generate(m, &o, lv, NULL)) goto fail_msg;
    double secs = naive ? naive_secs : nb_cli_now() - t0, sps = (double)(timed * streams) / secs;
    for (long s = 0; s < streams; s++) {
        char path[4096];
        stream_path(out, (int)s, path, sizeof path);
        nb_mulaw_decode_array(lv + s * n, n, x);
        if (nb_audio_write(path, x, n, RATE)) goto fail_msg;
    }
    int64_t rf = nb_wavenet_receptive_field(cf);
    fprintf(stderr, "%" PRId64 " samples x %ld stream(s) in %.2f s: %.0f samples/s (%.2fx real time, %s, %d thread%s); "
                    "receptive field %" PRId64 "; wrote %s\n", timed, streams, secs, sps, sps / RATE,
            naive ? "naive" : "cached", nb_get_threads(), nb_get_threads() == 1 ? "" : "s", rf, out);
    if (json)
        printf("{\"samples_per_second\": %.1f, \"samples\": %" PRId64 ", \"streams\": %ld, \"seconds\": %.4f, "
               "\"naive\": %s, \"receptive_field\": %" PRId64 "}\n", sps, timed, streams, secs, naive ? "true" : "false", rf);
    rc = 0;
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    free(spk);
    free(lv);
    free(x);
    nb_tensor_free(feats);
    nb_tensor_free(u);
    nb_wavenet_free(m);
    nb_st_free(st);
    return rc;
}

/* --- eval ------------------------------------------------------------------------- */

/* The entropy in bits of a histogram of counts: what a model that ignores
 * the past (one fixed distribution over the levels) can at best reach on
 * the samples counted. */
static double histogram_entropy(const int64_t *hist, int n) {
    int64_t tot = 0;
    for (int i = 0; i < n; i++) tot += hist[i];
    double h = 0;
    for (int i = 0; i < n; i++)
        if (hist[i]) {
            double p = (double)hist[i] / (double)tot;
            h -= p * log2(p);
        }
    return tot ? h : NAN;
}

static const char *EVAL_ABOUT =
    "Bits per sample of MODEL on DATA's clips (--split; by default the held-out ones, valid and test, or\n"
    "every clip when none is held out). Next to it: the entropy of the histogram of the mu-law levels\n"
    "scored, the best a model that ignores the past can do (a uniform guess: 8 bits). When the clips hold\n"
    "more than --max-samples predictions, each clip gives the same fraction of its samples (a window at\n"
    "its middle), so that every clip and speaker is represented.";

static int cmd_eval(int argc, char **argv) {
    const char *cmd = "wavenet eval", *split = "held-out";
    long max_samples = 1000000, threads = 0;
    bool json = false;
    nb_flag flags[] = {
        {"--split", NB_FLAG_CHOICE, &split, "the clips scored: held-out (valid and test), valid, test, train or all",
         .range = "held-out|valid|test|train|all"},
        {"--max-samples", NB_FLAG_INT, &max_samples, "score at most this many samples", .range = "[1, inf)"},
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL DATA ", .about = EVAL_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 2, .max_pos = 2};
    const char *pos[2];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    nb_cli_threads(cmd, threads, 0);
    unsigned keep = split_mask(split);
    nb_safetensors *st = NULL;
    nb_wavenet *m = nb_wavenet_load(pos[0], &st);
    if (!m) return nb_cli_fail(cmd, "%s", nb_errmsg());
    const nb_wavenet_config *cf = nb_wavenet_get_config(m);
    const char *cond = nb_st_meta(st, "nabla.wavenet.cond");
    if (cond && !strcmp(cond, "none")) cond = NULL;
    if (cf->cond_dim && !cond) cond = "mel";
    corpus data;
    clip *v = NULL;
    bool fallback = false; /* held-out asked, none held out: the training clips */
    if (corpus_load(&data, pos[1], cf->cond_dim ? cond : NULL, keep)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (data.ntrain + data.nval == 0 && keep == (KEEP_VALID | KEEP_TEST)) {
        corpus_free(&data);
        fallback = true;
        if (corpus_load(&data, pos[1], cf->cond_dim ? cond : NULL, KEEP_TRAIN)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
    }
    int n = data.ntrain + (data.val_is_train ? 0 : data.nval);
    if (n == 0) {
        rc = nb_cli_fail(cmd, "%s holds no clip of the %s split", pos[1], split);
        corpus_free(&data);
        goto done;
    }
    v = malloc(sizeof(clip) * (size_t)n); /* the clips scored, in DATA's order within each part */
    memcpy(v, data.train, sizeof(clip) * (size_t)data.ntrain);
    if (!data.val_is_train) memcpy(v + data.ntrain, data.val, sizeof(clip) * (size_t)data.nval);
    if (cf->nspeakers && data.nspeakers != cf->nspeakers) {
        rc = nb_cli_fail(cmd, "%s was trained on %d speakers; %s has %d", pos[0], cf->nspeakers, pos[1], data.nspeakers);
        corpus_free(&data);
        goto done;
    }
    if (cf->cond_dim && v[0].feats->shape[1] != cf->cond_dim) {
        rc = nb_cli_fail(cmd, "%s takes %d features per frame; %s gives %lld", pos[0], cf->cond_dim, pos[1],
                         (long long)v[0].feats->shape[1]);
        corpus_free(&data);
        goto done;
    }
    int64_t count, hist[NB_WAVENET_CLASSES];
    double t0 = nb_cli_now();
    double bits = bits_per_sample(m, v, n, 16000, max_samples, true, &count, hist);
    double secs = nb_cli_now() - t0, ent = histogram_entropy(hist, NB_WAVENET_CLASSES);
    int64_t rf = nb_wavenet_receptive_field(cf);
    const char *which = fallback ? "train: none is held out" : split;
    printf("%.4f bits per sample over %" PRId64 " samples of %d clip(s) (split %s; receptive field %" PRId64 "); "
           "histogram entropy %.4f bits, uniform 8 bits\n", bits, count, n, which, rf, ent);
    if (json) {
        printf("{\"bits_per_sample\": %.6f, \"histogram_entropy_bits\": %.6f, \"samples\": %" PRId64
               ", \"clips\": %d, \"split\": ", bits, ent, count, n);
        nb_cli_json_string(stdout, fallback ? "train" : split);
        printf(", \"receptive_field\": %" PRId64 ", \"samples_per_second\": %.1f}\n", rf, (double)count / secs);
    }
    corpus_free(&data);
    rc = 0;
done:
    free(v);
    nb_wavenet_free(m);
    nb_st_free(st);
    return rc;
}

/* --- spectrogram ---------------------------------------------------------------------- */

static int cmd_spectrogram(int argc, char **argv) {
    const char *cmd = "wavenet spectrogram", *out = NULL;
    long mels = NMELS;
    nb_flag flags[] = {
        {"--mels", NB_FLAG_INT, &mels, "mel bands", .range = "[1, 512]"},
        {"--out", NB_FLAG_OUTPUT, &out, "the picture, or the features as an array [frames, mels]",
         .range = "png|svg|pdf|npy", .meta = "FILE", .def = ""},
    };
    nb_cli c = {.cmd = cmd, .args = "WAV ",
                .about = "A log-mel spectrogram of a recording (read at 16 kHz): a picture (.png, .svg, .pdf), or the\n"
                         "features that `--cond mel` conditions on (.npy, [frames, mels], one frame per 256 samples),\n"
                         "for `nabla wavenet generate MODEL --cond FILE.npy`.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    if (!out) return nb_cli_usage_error(&c, "--out FILE is required");
    nb_audio a;
    if (nb_audio_read(pos[0], RATE, &a)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    nb_tensor *lm = nb_logmel(a.x, a.n, RATE, (int)mels);
    double dur = (double)a.n / RATE;
    nb_audio_free(&a);
    if (!lm) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int frames = (int)lm->shape[0], nm = (int)lm->shape[1];
    if (nb_cli_has_ext(out, "npy")) {
        rc = nb_npy_write(out, lm) ? nb_cli_fail(cmd, "%s", nb_errmsg()) : 0;
        if (!rc) fprintf(stderr, "%d frames x %d mel bands (%.2f s); wrote %s\n", frames, nm, dur, out);
        nb_tensor_free(lm);
        return rc;
    }
    float *z = malloc(sizeof(float) * (size_t)frames * (size_t)nm); /* [mels, frames]: band 0 at the bottom */
    for (int f = 0; f < frames; f++)
        for (int b = 0; b < nm; b++) z[(size_t)b * (size_t)frames + (size_t)f] = lm->data[(size_t)f * (size_t)nm + (size_t)b];
    const char *base = strrchr(pos[0], '/');
    nb_figure *fig = nb_figure_new(900, 420, 1, 1, base ? base + 1 : pos[0]);
    nb_heatmap h = {.title = "log-mel spectrogram", .xlabel = "seconds", .ylabel = "mel band", .clabel = "ln magnitude",
                    .z = z, .rows = nm, .cols = frames, .x0 = 0, .x1 = dur, .cmap = NB_CMAP_MAGMA};
    rc = !fig || nb_figure_heatmap(fig, 0, &h) || nb_figure_save(fig, out) ? nb_cli_fail(cmd, "%s", nb_errmsg()) : 0;
    if (!rc) fprintf(stderr, "%d frames x %d mel bands (%.2f s); wrote %s\n", frames, nm, dur, out);
    nb_figure_free(fig);
    free(z);
    nb_tensor_free(lm);
    return rc;
}

/* --- synth: a small synthetic speech folder --------------------------------------------- */

static int cmd_synth(int argc, char **argv) {
    const char *cmd = "wavenet synth";
    long speakers = 2, clips = 3, seed = 1;
    double seconds = 1;
    nb_flag flags[] = {
        {"--speakers", NB_FLAG_INT, &speakers, "speakers (sub-folders)", .range = "[1, 64]"},
        {"--clips", NB_FLAG_INT, &clips, "clips per speaker", .range = "[1, 1000]"},
        {"--seconds", NB_FLAG_FLOAT, &seconds, "length of each clip", .range = "(0, 60]"},
        NB_FLAG_SEED(&seed, "the signals"),
    };
    nb_cli c = {.cmd = cmd, .args = "DIR ",
                .about = "Writes DIR/spk<k>/clip<i>.wav: 16 kHz sums of harmonics whose pitch glides and whose\n"
                         "loudness follows syllable-like envelopes; speaker k has its own pitch range and timbre.\n"
                         "A small data set for trying the other verbs.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    int64_t n;
    if ((rc = seconds_to_samples(&c, seconds, &n)) != NB_CLI_OK) return rc;
    if (mkdir(pos[0], 0777) && errno != EEXIST) return nb_cli_fail(cmd, "%s: %s", pos[0], strerror(errno));
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed, 3);
    float *x = malloc(sizeof(float) * (size_t)n);
    for (long k = 0; k < speakers; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/spk%ld", pos[0], k);
        if (mkdir(dir, 0777) && errno != EEXIST) {
            free(x);
            return nb_cli_fail(cmd, "%s: %s", dir, strerror(errno));
        }
        double f0 = 110.0 * pow(1.6, (double)k), bright = 0.35 + 0.3 * (double)(k % 3);
        for (long i = 0; i < clips; i++) {
            double glide = 0.5 + nb_rng_uniform(&r), phase = 0, syl = 3 + 3 * nb_rng_uniform(&r);
            for (int64_t t = 0; t < n; t++) {
                double s = (double)t / RATE;
                double f = f0 * (1 + 0.15 * sin(2 * M_PI * glide * s));
                phase += 2 * M_PI * f / RATE;
                double v = 0;
                for (int h = 1; h <= 6; h++) v += pow(bright, h - 1) * sin(h * phase);
                double env = 0.5 * (1 - cos(2 * M_PI * syl * s));
                x[t] = (float)(0.3 * env * v + 0.003 * nb_rng_normal(&r));
            }
            char path[4200];
            snprintf(path, sizeof path, "%s/clip%ld.wav", dir, i);
            if (nb_audio_write(path, x, n, RATE)) {
                free(x);
                return nb_cli_fail(cmd, "%s", nb_errmsg());
            }
        }
    }
    free(x);
    fprintf(stderr, "wrote %ld speakers x %ld clips of %.2f s to %s\n", speakers, clips, seconds, pos[0]);
    return 0;
}

/* --- distance: the log-mel distance between two recordings ------------------------------ */

/* The log-mel (80 bands, natural log) of a recording read at 16 kHz. */
static nb_tensor *file_logmel(const char *path) {
    nb_audio a;
    if (nb_audio_read(path, RATE, &a)) return NULL;
    nb_tensor *lm = nb_logmel(a.x, a.n, RATE, NMELS);
    nb_audio_free(&a);
    return lm;
}

#define DB_PER_NEPER 8.685889638065036 /* 20 / ln 10: a ratio of magnitudes e^d is 20 log10(e^d) dB */

static int cmd_distance(int argc, char **argv) {
    const char *cmd = "wavenet distance";
    bool json = false;
    nb_flag flags[] = {NB_FLAG_JSON(&json)};
    nb_cli c = {.cmd = cmd, .args = "REF.wav OTHER.wav ",
                .about = "The log-mel distance between two recordings (read at 16 kHz, mixed to mono): the mean\n"
                         "absolute difference of their 80-band log-mel spectrograms (nb_logmel: window 1024, hop 256,\n"
                         "ln of the band magnitudes floored at 1e-5) over the frames both have (the longer is cut),\n"
                         "in natural-log units and in dB (x 20/ln 10). 0 for identical audio; a resynthesis is close\n"
                         "when its spectral envelope, pitch and timing follow the reference frame by frame.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 2, .max_pos = 2};
    const char *pos[2];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    nb_tensor *a = file_logmel(pos[0]), *b = a ? file_logmel(pos[1]) : NULL;
    if (!a || !b) {
        nb_tensor_free(a);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    int64_t fa = a->shape[0], fb = b->shape[0], f = fa < fb ? fa : fb;
    double sum = 0;
    for (int64_t i = 0; i < f * NMELS; i++) sum += fabs((double)a->data[i] - (double)b->data[i]);
    double d = sum / (double)(f * NMELS);
    printf("log-mel distance %.4f (natural log; %.2f dB) over %" PRId64 " frames of %d bands (%s: %" PRId64
           " frames, %s: %" PRId64 ")\n", d, d * DB_PER_NEPER, f, NMELS, pos[0], fa, pos[1], fb);
    if (json)
        printf("{\"logmel_distance\": %.6f, \"logmel_distance_db\": %.6f, \"frames\": %" PRId64 ", \"ref_frames\": %" PRId64
               ", \"other_frames\": %" PRId64 "}\n", d, d * DB_PER_NEPER, f, fa, fb);
    nb_tensor_free(a);
    nb_tensor_free(b);
    return 0;
}

/* --- features: per-clip speaker features for nabla train / nabla eval ------------------------ */

static const char *FEATURES_ABOUT =
    "Writes one CSV row per clip of DATA (a speech folder: manifest.csv or one sub-folder of audio files per\n"
    "speaker): the mean and the standard deviation over the clip's frames of each of the 80 bands of its\n"
    "log-mel (160 columns mean0..mean79, sd0..sd79), then the label: the speaker's index. This is the layout\n"
    "`nabla train --data` and `nabla eval --data` read (label last, a header row). The rows are in a random\n"
    "order (--seed), so that the last 10% that nabla train holds out have every speaker.\n"
    "--speakers-of TRAINDATA numbers the speakers as that folder does (the classifier's labels), matching\n"
    "DATA's speaker names (the sub-folder names, e.g. of generated clips) to it; a name it lacks is an error.\n"
    "--noise 30,20,10 adds, for every clip, one more row per signal-to-noise ratio (dB): the clip with white\n"
    "Gaussian noise of its own power / 10^(dB/10) added (--seed draws it). A classifier trained on such rows\n"
    "(noise augmentation, as speaker recognizers are trained) judges generated audio by its voice rather than\n"
    "by its noise floor, which a classifier trained on clean rows only takes for a voice.";

#define NOISE_MAX 16 /* --noise levels */

/* "30,20,10" -> db[]; the number of levels, or -1 with the error set. */
static int parse_noise(const char *s, double *db) {
    int n = 0;
    for (const char *p = s;;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || v < -30 || v > 120 || (*end && *end != ',')) {
            nb_error("--noise %s: expected signal-to-noise ratios in dB, from -30 to 120, separated by commas", s);
            return -1;
        }
        if (n == NOISE_MAX) {
            nb_error("--noise %s: at most %d levels", s, NOISE_MAX);
            return -1;
        }
        db[n++] = v;
        if (!*end) return n;
        p = end + 1;
    }
}

/* The 160 speaker features of samples x[0..n): each band's mean and standard
 * deviation over the frames of the log-mel (the frames are the samples of
 * nb_stats_mean / nb_stats_var). */
static int speaker_features(const float *x, int64_t n, float *r) {
    nb_tensor *lm = nb_logmel(x, n, RATE, NMELS);
    nb_tensor *mean = lm ? nb_stats_mean(lm) : NULL, *var = mean ? nb_stats_var(lm, 0) : NULL;
    if (var)
        for (int b = 0; b < NMELS; b++) r[b] = mean->data[b], r[NMELS + b] = sqrtf(var->data[b]);
    nb_tensor_free(lm);
    nb_tensor_free(mean);
    nb_tensor_free(var);
    return var ? 0 : -1;
}

static int cmd_features(int argc, char **argv) {
    const char *cmd = "wavenet features", *out = NULL, *split = "all", *of = NULL, *noise = NULL;
    long seed = 1;
    bool json = false;
    nb_flag flags[] = {
        {"--split", NB_FLAG_CHOICE, &split, "the clips: all, train, valid, test or held-out (valid and test)",
         .range = "all|train|valid|test|held-out"},
        {"--speakers-of", NB_FLAG_STR, &of, "number the speakers as this speech folder does", .meta = "TRAINDATA",
         .def = "DATA's own order"},
        {"--noise", NB_FLAG_STR, &noise, "also a row per clip with white noise at each of these signal-to-noise ratios",
         .meta = "DB[,DB...]", .def = "clean rows only"},
        NB_FLAG_SEED(&seed, "the order of the rows and the noise"),
        {"--out", NB_FLAG_OUTPUT, &out, "the CSV file (required)", .range = "csv", .meta = "X.csv", .def = ""},
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "DATA ", .about = FEATURES_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    if (!out) return nb_cli_usage_error(&c, "--out X.csv is required");
    double db[NOISE_MAX];
    int nnoise = noise ? parse_noise(noise, db) : 0;
    if (nnoise < 0) return nb_cli_usage_error(&c, "%s", nb_errmsg());
    int per_clip = 1 + nnoise;
    unsigned keep = split_mask(split);
    nb_speech_set s, ref;
    memset(&ref, 0, sizeof ref);
    if (nb_speech_open(pos[0], &s)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int *label = malloc(sizeof(int) * (size_t)(s.nspeakers + 1));
    for (int k = 0; k < s.nspeakers; k++) label[k] = k;
    int nlabels = s.nspeakers, n = 0;
    float *rows = NULL;
    int64_t *order = NULL;
    int *rowlab = NULL;
    char *text = NULL;
    rc = 1;
    if (of) {
        if (nb_speech_open(of, &ref)) goto fail_msg;
        for (int k = 0; k < s.nspeakers; k++) {
            label[k] = -1;
            for (int j = 0; j < ref.nspeakers; j++)
                if (!strcmp(s.speakers[k], ref.speakers[j])) label[k] = j;
            if (label[k] < 0) {
                nb_error("%s: speaker '%s' is not one of the %d speakers of %s", pos[0], s.speakers[k], ref.nspeakers, of);
                goto fail_msg;
            }
        }
        nlabels = ref.nspeakers;
    }
    size_t nrows = (size_t)(s.n + 1) * (size_t)per_clip;
    rows = malloc(sizeof(float) * 2 * NMELS * nrows);
    rowlab = malloc(sizeof(int) * nrows);
    if (!rows || !rowlab) {
        nb_error("out of memory for %zu rows of features", nrows);
        goto fail_msg;
    }
    for (int i = 0; i < s.n; i++) {
        if (!(keep & (1u << s.clips[i].split))) continue;
        nb_audio a;
        if (nb_audio_read(s.clips[i].path, RATE, &a)) goto fail_msg;
        int bad = speaker_features(a.x, a.n, rows + (size_t)n * 2 * NMELS);
        rowlab[n++] = label[s.clips[i].speaker];
        if (!bad && nnoise) {
            double power = 0;
            for (int64_t t = 0; t < a.n; t++) power += (double)a.x[t] * a.x[t];
            power /= (double)a.n;
            float *y = malloc(sizeof(float) * (size_t)a.n);
            if (!y) bad = -1, nb_error("%s: out of memory for %lld noisy samples", s.clips[i].path, (long long)a.n);
            nb_rng r;
            nb_rng_seed(&r, (uint64_t)seed, 6 + (uint64_t)i); /* each clip its own noise, whatever the split */
            for (int k = 0; k < nnoise && !bad; k++) {
                double sd = sqrt(power / pow(10, db[k] / 10));
                for (int64_t t = 0; t < a.n; t++) y[t] = a.x[t] + (float)(sd * nb_rng_normal(&r));
                bad = speaker_features(y, a.n, rows + (size_t)n * 2 * NMELS);
                rowlab[n++] = label[s.clips[i].speaker];
            }
            free(y);
        }
        nb_audio_free(&a);
        if (bad) goto fail_msg;
    }
    if (n == 0) {
        nb_error("%s holds no clip of the %s split", pos[0], split);
        goto fail_msg;
    }
    /* a random order, so that the last rows nabla train holds out hold every speaker */
    order = malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) order[i] = i;
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed, 5);
    nb_rng_shuffle(&r, order, n);
    size_t cap = (size_t)(n + 1) * (2 * NMELS * 16 + 16) + 4096, len = 0;
    text = malloc(cap);
    for (int b = 0; b < 2 * NMELS; b++)
        len += (size_t)snprintf(text + len, cap - len, "%s%d,", b < NMELS ? "mean" : "sd", b % NMELS);
    len += (size_t)snprintf(text + len, cap - len, "speaker\n");
    for (int i = 0; i < n; i++) {
        const float *row = rows + (size_t)order[i] * 2 * NMELS;
        for (int b = 0; b < 2 * NMELS; b++) len += (size_t)snprintf(text + len, cap - len, "%.6g,", row[b]);
        len += (size_t)snprintf(text + len, cap - len, "%d\n", rowlab[order[i]]);
    }
    if (nb_write_file_atomic(out, text, len)) goto fail_msg;
    int *per = calloc((size_t)nlabels, sizeof(int));
    for (int i = 0; i < n; i++) per[rowlab[i]]++;
    fprintf(stderr, "%d clips (%s split) of %d speaker(s) -> %d rows of %d features + label; wrote %s\n", n / per_clip,
            split, s.nspeakers, n, 2 * NMELS, out);
    if (json) {
        printf("{\"clips\": %d, \"rows\": %d, \"features\": %d, \"labels\": %d, \"clips_per_label\": [",
               n / per_clip, n, 2 * NMELS, nlabels);
        for (int k = 0; k < nlabels; k++) printf(k ? ", %d" : "%d", per[k] / per_clip);
        printf("]}\n");
    }
    free(per);
    rc = 0;
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    free(text);
    free(order);
    free(rows);
    free(rowlab);
    free(label);
    nb_speech_free(&s);
    nb_speech_free(&ref);
    return rc;
}

static int cmd_wavenet(int argc, char **argv) {
    static const nb_verb verbs[] = {
        {"train", cmd_train, "train a WaveNet on a speech folder"},
        {"generate", cmd_generate, "generate audio (cached, or --naive), optionally for a speaker or from features"},
        {"eval", cmd_eval, "bits per sample of a model on held-out clips"},
        {"spectrogram", cmd_spectrogram, "a log-mel spectrogram of a recording as a picture, or as features (.npy)"},
        {"synth", cmd_synth, "write a small synthetic speech folder (harmonic tones, one folder per speaker)"},
        {"distance", cmd_distance, "the log-mel distance between two recordings"},
        {"features", cmd_features, "per-clip speaker features (log-mel statistics) as CSV for nabla train/eval"},
    };
    return nb_cli_verbs("wavenet", verbs, (int)(sizeof verbs / sizeof verbs[0]), argc, argv);
}

NB_COMMAND("wavenet", cmd_wavenet, "WaveNet on raw audio: train, generate, eval, spectrogram, synth, distance, features")
