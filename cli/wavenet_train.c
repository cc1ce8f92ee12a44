/* wavenet_train.c — `nabla wavenet train`: WaveNet (notes §4.5) trained on
 * random segments of a speech folder's clips with Adam, validation in bits
 * per sample on held-out clips, atomic checkpoints and --resume (the step
 * loop is cli/train_loop.c's). */
#include "wavenet.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Training's validation figure: --val-samples spread over up to VAL_CLIPS
 * held-out clips evenly apart in the list (so over the speakers, which the
 * list groups), a window at the middle of each, rather than the first clips'
 * samples, which are all one speaker's. Each window also reads a receptive
 * field of context: 8 windows of 8000 cost about 25% more than one run. */
#define VAL_CLIPS 8
static double validation_bits(nb_wavenet *m, const nb_wn_clip *val, int nval, int64_t samples) {
    nb_wn_clip sel[VAL_CLIPS];
    int n = nval < VAL_CLIPS ? nval : VAL_CLIPS;
    for (int i = 0; i < n; i++) sel[i] = val[(int64_t)i * nval / n];
    return nb_wn_bits_per_sample(m, sel, n, 16000, samples, true, NULL, NULL);
}

/* --- train ----------------------------------------------------------------------- */

typedef struct {
    nb_cli_loop loop; /* the step, the budget, validation and checkpoint cadence */
    const char *cmd, *out, *log, *cond, *data_path;
    nb_wavenet *m;
    nb_optim *opt;
    nb_wn_corpus *data;
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
        const nb_wn_clip *k = &t->data->train[usable[nb_rng_below(&t->rng, (uint32_t)nusable)]];
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
                L->val, L->step, steps, sps, sps * (double)(S * B), rf, 1e3 * (double)rf / NB_WN_RATE, t->out);
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

int nb_wn_train(int argc, char **argv) {
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
    if (!out && nb_cli_check_output(cmd, "--resume", resume, NULL)) {
        nb_cli_usage_line(&c);
        return 2;
    }
    nb_cli_threads(cmd, threads, 0);
    nb_wn_corpus data = {0}; /* freed on every way out, some before it is loaded */
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
    if (nb_wn_corpus_load(&data, pos[0], condk, NB_WN_KEEP_ALL)) {
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
            const nb_wn_clip *k = i < data.ntrain ? &data.train[i] : &data.val[i - data.ntrain];
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
                cf->stacks, cf->layers, cf->residual, cf->skip, rf, 1e3 * (double)rf / NB_WN_RATE, cf->nspeakers,
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
    nb_wn_corpus_free(&data);
    return rc;
#undef GIVEN
}
