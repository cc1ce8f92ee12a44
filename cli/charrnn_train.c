/* charrnn_train.c — `nabla charrnn train`: a character-level language model
 * (plain RNN, LSTM or GRU; notes §2.4) trained with truncated BPTT and Adam,
 * the carried state of every stream kept across batches (and in checkpoints),
 * a cosine or constant learning rate, validation in bits per character, atomic
 * checkpoints and --resume, on one process or under mpirun (dist.h); the step
 * loop is cli/train_loop.c's. */
#include "charrnn.h"
#include "dist.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* About 11 minutes on 2 cores at 24 steps/s (hidden 256, seq 64, batch 32). */
#define DEFAULT_STEPS 15000

static const char *TRAIN_ABOUT =
    "TEXT: UTF-8 files or folders (their files in name order). Without TEXT, the English fortune\n"
    "files of Debian's fortunes package (" NB_CR_FORTUNES ", files without .dat/.u8 suffix).\n"
    "The last 5% of every file is held out for validation (bits per character). --out is rewritten\n"
    "atomically at every validation; --resume continues it where it stopped (the checkpoint's settings\n"
    "are the defaults, flags given now override them; --batch, --seq and --seed cannot change).";

typedef struct {
    nb_cli_loop loop;        /* the step, the budget, validation and checkpoint cadence */
    const char *cmd;
    nb_charrnn *m;
    nb_optim *opt;
    nb_tensor *h, *c;        /* the state carried between batches [L, B, H] */
    int64_t T, B;
    double lr, clip;
    bool cosine;             /* anneal lr to 0 over the steps (or the minutes) of the run */
    uint64_t seed;
    const char *out, *log;
    bool json;
    char again[2048];        /* the command that resumes this run (after SIGINT/SIGTERM) */
    nb_cli_log csv;          /* the CSV log's rows */
    /* a run's data and buffers: the encoded text, a batch [T, B], and under
     * mpirun this rank's streams lo .. lo + Br, their inputs and state */
    const int32_t *train, *val;
    int64_t ntrain, nval, lo, Br;
    int32_t *x, *y, *xr, *yr;
    nb_tensor *hr, *cr;
} trainer;

static const char *LOG_HEADER = "step,train_loss_bpc,val_loss_bpc,seconds";

/* Everything a resumed run needs: weights, Adam's moments and step count,
 * the carried state, the step (which fixes the next batch) and settings. */
static int save(const trainer *t, double seconds) {
    if (!t->out) return 0;
    char v[15][40];
    const char *keys[15], *vals[15];
    int n = 0;
#define PUT(k, ...) (keys[n] = (k), snprintf(v[n], sizeof v[n], __VA_ARGS__), vals[n] = v[n], n++)
    PUT("nabla.step", "%" PRId64, t->loop.step);
    PUT("nabla.optim_steps", "%" PRId64, nb_optim_steps(t->opt));
    PUT("nabla.seconds", "%.3f", seconds);
    PUT("nabla.seq", "%" PRId64, t->T);
    PUT("nabla.batch", "%" PRId64, t->B);
    PUT("nabla.lr", "%.9g", t->lr);
    PUT("nabla.clip", "%.9g", t->clip); /* --grad-clip, under the key older checkpoints have */
    PUT("nabla.seed", "%" PRIu64, t->seed);
    PUT("nabla.schedule", "%s", t->cosine ? "cosine" : "constant");
    if (t->loop.max_steps >= 0) PUT("nabla.total_steps", "%" PRId64, t->loop.max_steps);
    PUT("nabla.eval_every", "%" PRId64, t->loop.eval_every);
    PUT("nabla.loss_sum", "%.17g", t->loop.loss_sum);
    PUT("nabla.loss_n", "%" PRId64, t->loop.loss_n);
#undef PUT
    nb_cli_extras x;
    nb_cli_extras_init(&x, t->opt, 2);
    nb_cli_extras_add(&x, "state.h", t->h);
    if (t->c) nb_cli_extras_add(&x, "state.c", t->c);
    int rc = nb_charrnn_save(t->m, t->out, keys, vals, n, x.names, x.ts, x.n);
    nb_cli_extras_free(&x);
    return rc;
}

static int meta_num(const nb_safetensors *st, const char *path, const char *key, double *out) {
    const char *v = nb_st_meta(st, key);
    char *end;
    if (!v) return nb_error("%s: not a training checkpoint ('%s' missing from __metadata__)", path, key);
    double x = strtod(v, &end);
    /* At most 2^53: counts are cast to integers, where a larger double
     * (1e300) is undefined behaviour, and no run counts so far. */
    if (!*v || *end || !(x >= 0) || !(x <= 9007199254740992.0))
        return nb_error("%s: __metadata__ '%s': expected a number in [0, 2^53], got '%.40s'", path, key, v);
    *out = x;
    return 0;
}

/* Restores the optimizer and the carried state from a checkpoint. */
static int restore(trainer *t, const nb_safetensors *st, const char *path) {
    if (nb_cli_optim_restore(t->opt, st, path, NULL)) return -1;
    double steps = 0;
    if (meta_num(st, path, "nabla.optim_steps", &steps)) return -1;
    nb_optim_set_steps(t->opt, (int64_t)steps);
    nb_tensor *h = nb_st_get(st, "state.h"), *c = nb_st_get(st, "state.c");
    if (!h || h->size != t->h->size || (t->c && (!c || c->size != t->c->size)))
        return nb_error("%s: the carried state ('state.h'%s) is missing or of the wrong size", path,
                        t->c ? ", 'state.c'" : "");
    nb_copy_into(t->h, h);
    if (t->c) nb_copy_into(t->c, c);
    return 0;
}

/* The Adam rate of the next step under --schedule cosine: annealed from
 * --lr to 0 (nb_lr_cosine, SGDR without restarts) over the run's steps, or
 * with --minutes over its milliseconds (a resumed --minutes run anneals over
 * its own minutes). A short run gains most of its last tenths of a bit in
 * the low-rate tail. */
static float cosine_lr(const trainer *t) {
    const nb_cli_loop *L = &t->loop;
    if (L->max_steps > 0) return nb_lr_cosine((float)t->lr, L->step, L->max_steps, 0.f);
    return nb_lr_cosine((float)t->lr, (int64_t)((nb_cli_now() - L->t0) * 1e3), (int64_t)(L->minutes * 6e4), 0.f);
}

/* Under mpirun: a rank runs streams lo .. lo + n of the B (columns of x, y
 * [T, B] and rows of the state [L, B, H]), on its own part of the state. */
static void take_streams(const int32_t *x, const int32_t *y, int64_t T, int64_t B, int64_t lo, int64_t n, int32_t *xr,
                         int32_t *yr) {
    for (int64_t i = 0; i < T; i++) {
        memcpy(xr + i * n, x + i * B + lo, sizeof(int32_t) * (size_t)n);
        memcpy(yr + i * n, y + i * B + lo, sizeof(int32_t) * (size_t)n);
    }
}
/* Copies rows lo .. lo + part's of dimension 1 from full into part, or back. */
static void state_rows(nb_tensor *full, nb_tensor *part, int64_t lo, bool into_part) {
    if (!full) return;
    int64_t L = full->shape[0], B = full->shape[1], n = part->shape[1], H = full->shape[2];
    for (int64_t l = 0; l < L; l++) {
        float *f = full->data + (l * B + lo) * H, *q = part->data + l * n * H;
        memcpy(into_part ? q : f, into_part ? f : q, sizeof(float) * (size_t)(n * H));
    }
}
/* Every rank's rows of the state (part) into every rank's full copy (before
 * a save): the rest zeroed, then summed over the ranks. */
static void state_gather(nb_tensor *full, nb_tensor *part, int64_t lo) {
    if (!full || part == full) return;
    state_rows(full, part, lo, false);
    int64_t L = full->shape[0], B = full->shape[1], H = full->shape[2], n = part->shape[1];
    for (int64_t l = 0; l < L; l++)
        for (int64_t b = 0; b < B; b++)
            if (b < lo || b >= lo + n) memset(full->data + (l * B + b) * H, 0, sizeof(float) * (size_t)H);
    nb_dist_sum_floats(full->data, full->size);
}

/* The loop's callbacks: one step of truncated back-propagation through
 * time on the next batch of every stream, the validation in bits per
 * character, every rank's part of the state gathered for the checkpoint,
 * and the checkpoint. */
static int take_step(void *ctx, double *loss) {
    trainer *t = ctx;
    int64_t T = t->T, B = t->B;
    nb_tensor *h = t->hr, *c = t->cr;
    if (nb_charrnn_batch(t->train, t->ntrain, T, B, t->loop.step, t->x, t->y) == 1) {
        /* A new pass over the streams starts from a zero state. */
        nb_fill(h, 0.f);
        if (c) nb_fill(c, 0.f);
    }
    if (t->Br < B) take_streams(t->x, t->y, T, B, t->lo, t->Br, t->xr, t->yr);
    if (t->cosine) nb_optim_set_lr(t->opt, cosine_lr(t));
    nb_rnn_state init = {nb_detach(h), c ? nb_detach(c) : NULL}, fin;
    nb_tensor *l = nb_cross_entropy(nb_charrnn_forward(t->m, t->xr, T, t->Br, &init, &fin), t->yr);
    *loss = nb_item(l);
    if (isfinite(*loss)) nb_backward(l);
    /* Under mpirun: the mean gradient over all B streams on every rank. */
    if (nb_dist_allreduce_grads(t->m->params, t->m->np, NULL, 0, t->Br, B, !isfinite(*loss)) < 0) {
        nb_arena_reset();
        return nb_error("the loss became %g at step %" PRId64 " (try a smaller --lr or --grad-clip)", *loss,
                        t->loop.step);
    }
    if (t->clip > 0) nb_clip_grad_norm(t->m->params, t->m->np, (float)t->clip);
    nb_optim_step_zero(t->opt, NULL, 0); /* step, then zero the gradients, in one pass */
    /* Truncated BPTT: the next batch continues each stream from here, with
     * the gradient cut at the boundary. */
    nb_copy_into(h, fin.h);
    if (c) nb_copy_into(c, fin.c);
    nb_arena_reset();
    return 0;
}
static double validate(void *ctx) {
    trainer *t = ctx;
    return nb_charrnn_bits_per_char(t->m, t->val, t->nval, t->T, t->B, NULL);
}
static void gather(void *ctx) {
    trainer *t = ctx;
    state_gather(t->h, t->hr, t->lo);
    state_gather(t->c, t->cr, t->lo);
}
static int save_cb(void *ctx, double seconds, bool final) { return save(ctx, seconds); }

static int run_train(trainer *t, const int32_t *train, int64_t ntrain, const int32_t *val, int64_t nval) {
    const char *cmd = t->cmd;
    int64_t T = t->T, B = t->B, N = T * B;
    t->train = train, t->ntrain = ntrain, t->val = val, t->nval = nval;
    t->x = malloc(sizeof(int32_t) * (size_t)N), t->y = malloc(sizeof(int32_t) * (size_t)N);
    if (!t->x || !t->y) nb_oom("the training data", 0);
    /* Under mpirun, this rank's streams, their inputs and state. */
    nb_dist_shard(B, &t->lo, &t->Br);
    t->xr = t->x, t->yr = t->y, t->hr = t->h, t->cr = t->c;
    if (t->Br < B) {
        int64_t shape[3] = {t->h->shape[0], t->Br, t->h->shape[2]};
        t->xr = malloc(sizeof(int32_t) * (size_t)(T * t->Br));
        t->yr = malloc(sizeof(int32_t) * (size_t)(T * t->Br));
        t->hr = nb_tensor_new(3, shape);
        t->cr = t->c ? nb_tensor_new(3, shape) : NULL;
        if (!t->xr || !t->yr) nb_oom("the training data", 0);
        state_rows(t->h, t->hr, t->lo, true);
        state_rows(t->c, t->cr, t->lo, true);
    }
    nb_cli_loop *L = &t->loop;
    L->cmd = cmd, L->label = "charrnn", L->unit = "bits/char", L->loss_scale = 1 / log(2.0);
    L->loss_share = (double)t->Br / (double)B; /* the ranks' shares sum to the batch's mean */
    L->out = t->out, L->again = t->again, L->quiet = t->json, L->csv = &t->csv, L->ctx = t;
    L->take_step = take_step, L->validate = validate, L->save = save_cb, L->gather = gather;
    L->params = t->m->params, L->names = t->m->names, L->nparams = t->m->np;
    int rc = nb_cli_loop_run(L);
    if (t->Br < B) {
        free(t->xr);
        free(t->yr);
        nb_tensor_free(t->hr);
        nb_tensor_free(t->cr);
    }
    free(t->x);
    free(t->y);
    if (rc) return rc;
    double total = nb_cli_now() - L->t0, sps = nb_cli_loop_rate(L);
    int64_t steps = L->step - L->first;
    fprintf(stderr,
            "validation %.4f bits/char after %" PRId64 " steps (%" PRId64 " this run, %.1f steps/s, %.0f chars/s; "
            "%.1f s in all)%s%s\n", L->val, L->step, steps, sps, sps * (double)(T * B), total,
            t->out ? "; model: " : "", t->out ? t->out : "");
    if (t->json) {
        printf("{\"val_bpc\": %.6f, \"train_bpc\": ", L->val);
        nb_cli_json_number(stdout, "%.6f", L->train_figure); /* null before the first step */
        printf(", \"steps\": %" PRId64 ", \"run_steps\": %" PRId64
               ", \"seconds\": %.3f, \"train_seconds\": %.3f, \"steps_per_second\": %.4f, \"chars_per_second\": %.1f, "
               "\"vocab\": %d, \"cell\": \"%s\", \"hidden\": %" PRId64 ", \"layers\": %d}\n",
               L->step, steps, total, L->train_secs, sps,
               sps * (double)(T * B), t->m->nvocab, nb_cell_name(nb_rnn_cell(t->m->rnn)), nb_rnn_hidden_size(t->m->rnn),
               nb_rnn_num_layers(t->m->rnn));
    }
    return 0;
}

int nb_cr_train(int argc, char **argv) {
    const char *cmd = "charrnn train", *cell_s = "lstm", *out = NULL, *log = NULL, *resume = NULL,
               *schedule = "cosine", *device = "cpu";
    long hidden = 256, layers = 1, seq = 64, batch = 32, steps = DEFAULT_STEPS, seed = 1, threads = 0,
         eval_every = 1000, check_every = NB_DIST_CHECK_DEFAULT;
    double lr = 5e-3, minutes = 0, clip = 5;
    bool json = false;
    nb_flag flags[] = {
        {"--cell", NB_FLAG_CHOICE, &cell_s, "recurrent cell: rnn (eq. 10.8), lstm or gru", .range = "rnn|lstm|gru"},
        {"--hidden", NB_FLAG_INT, &hidden, "hidden units per layer", .range = "[1, 65536]"},
        {"--layers", NB_FLAG_INT, &layers, "stacked recurrent layers", .range = "[1, 64]"},
        {"--seq", NB_FLAG_INT, &seq, "steps of back-propagation through time per batch", .range = "[1, 100000]"},
        {"--batch", NB_FLAG_INT, &batch, "parallel streams of text", .range = "[1, 65536]"},
        {"--lr", NB_FLAG_FLOAT, &lr, "Adam learning rate", .range = "(0, inf)"},
        {"--steps", NB_FLAG_INT, &steps, "optimizer steps in all (0 writes the initial model)", .range = "[0, inf)"},
        {"--minutes", NB_FLAG_FLOAT, &minutes, "train for this long instead of --steps", .range = "(0, inf)",
         .def = "none: --steps decides"},
        NB_FLAG_SEED(&seed, "the initialization"),
        {"--grad-clip", NB_FLAG_FLOAT, &clip, "clip gradients to this global L2 norm; 0: none", .range = "[0, inf)"},
        {"--schedule", NB_FLAG_CHOICE, &schedule, "learning rate over the run: cosine (annealed to 0) or constant",
         .range = "cosine|constant"},
        {"--eval-every", NB_FLAG_INT, &eval_every, "validate, log and checkpoint every N steps", .range = "[1, inf)"},
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_DEVICE(&device, "where to train", "; the model file is the same either way"),
        NB_FLAG_MODEL_OUT(&out, "model file, rewritten atomically at every validation"),
        NB_FLAG_LOG(&log, "CSV log, one row per validation (see nabla plot)"),
        NB_FLAG_RESUME(&resume, ""),
        NB_FLAG_DIST_CHECK(&check_every),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "[TEXT...] ", .about = TRAIN_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .max_pos = argc};
    const char **pos = malloc(sizeof(char *) * (size_t)(argc > 1 ? argc : 1));
    if (!pos) return nb_cli_fail(cmd, "out of memory");
    nb_cr_corpus cp = {0};
    trainer t = {0};
    nb_safetensors *ck = NULL;
    int32_t *train_ids = NULL, *val_ids = NULL;
    int64_t ntrain = 0, nval = 0;
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) goto done;
    rc = 1;
#define GIVEN(name) (nb_cli_flag(&c, name)->given)
    if (GIVEN("--steps") && GIVEN("--minutes")) {
        rc = nb_cli_usage_error(&c, "--steps %ld and --minutes %g exclude each other: give one", steps, minutes);
        goto done;
    }
    nb_cell cell;
    if (nb_cell_from_name(cell_s, &cell)) goto fail_msg; /* the choice already checked the name */
    /* A resumed model is written back to its own file: check that it can be,
     * before the corpus is read. */
    if (!out && resume && nb_cli_check_output(cmd, "--resume", resume, NULL)) {
        nb_cli_usage_line(&c);
        rc = 2; /* as the machinery's own check of --out */
        goto done;
    }
    nb_device dev = NB_CPU;
    if ((rc = nb_cli_device(&c, device, &dev)) != NB_CLI_OK) goto done;
    rc = 1;
    if (nb_dist_init(cmd, check_every)) goto done; /* joins the job when run by mpirun */
    if (dev == NB_CUDA && nb_dist_size() > 1) {
        rc = nb_cli_fail(cmd, "--device cuda trains in one process; running it under mpirun is not supported yet");
        goto done;
    }
    if (batch < nb_dist_size()) {
        rc = nb_cli_fail(cmd, "--batch %ld is fewer streams than the %d processes of mpirun", batch, nb_dist_size());
        goto done;
    }
    nb_cli_threads(cmd, threads, 0);
    if (nb_cr_corpus_load(&cp, pos, npos)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    char cname[512];
    nb_cr_corpus_name(&cp, cname, sizeof cname);
    t.cmd = cmd;
    t.json = json;
    t.log = log;
    t.out = out ? out : resume;
    if (nb_dist_rank()) t.out = NULL, t.log = NULL; /* rank 0 alone writes */
    t.loop.eval_every = eval_every;
    if (resume) {
        t.m = nb_charrnn_load(resume, &ck);
        if (!t.m) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        nb_cell have = nb_rnn_cell(t.m->rnn);
        if (GIVEN("--cell") && have != cell) {
            rc = nb_cli_usage_error(&c, "%s holds a model with %s cells; --cell %s asks for another cell type", resume,
                                    nb_cell_name(have), cell_s);
            goto done;
        }
        if ((GIVEN("--hidden") && hidden != nb_rnn_hidden_size(t.m->rnn)) ||
            (GIVEN("--layers") && layers != nb_rnn_num_layers(t.m->rnn))) {
            rc = nb_cli_usage_error(&c, "%s has %d layer(s) of %lld hidden units; --hidden and --layers cannot change "
                                        "on --resume", resume, nb_rnn_num_layers(t.m->rnn),
                                    (long long)nb_rnn_hidden_size(t.m->rnn));
            goto done;
        }
        double v = 0;
        if (meta_num(ck, resume, "nabla.step", &v)) goto fail_msg;
        t.loop.step = (int64_t)v;
        if (meta_num(ck, resume, "nabla.seconds", &t.loop.seconds)) goto fail_msg;
        /* Settings of the checkpoint are the defaults the flags override.
         * Each may be missing (older files) but not damaged: a bad one is
         * refused, not replaced by the default unsaid. */
        const char *opt_keys[] = {"nabla.seq",  "nabla.batch", "nabla.lr",         "nabla.clip",
                                  "nabla.seed", "nabla.eval_every", "nabla.total_steps"};
        for (size_t i = 0; i < sizeof opt_keys / sizeof opt_keys[0]; i++)
            if (nb_st_meta(ck, opt_keys[i]) && meta_num(ck, resume, opt_keys[i], &v)) goto fail_msg;
        if (!meta_num(ck, resume, "nabla.seq", &v)) {
            /* Step k reads window k of --seq characters in each stream: another
             * length would jump every stream elsewhere under its carried state. */
            if (GIVEN("--seq") && (double)seq != v) {
                rc = nb_cli_usage_error(&c, "%s was trained on windows of %.0f characters (--seq %.0f), and its "
                                            "carried state is at the end of one; --seq cannot change on --resume",
                                        resume, v, v);
                goto done;
            }
            seq = (long)v;
        }
        if (!meta_num(ck, resume, "nabla.batch", &v)) {
            /* The checkpoint carries the state of each of its streams. */
            if (GIVEN("--batch") && (double)batch != v) {
                rc = nb_cli_usage_error(&c, "%s carries the state of %.0f streams (--batch %.0f); --batch cannot "
                                            "change on --resume", resume, v, v);
                goto done;
            }
            batch = (long)v;
        }
        if (!GIVEN("--lr") && !meta_num(ck, resume, "nabla.lr", &v)) lr = v;
        if (!GIVEN("--grad-clip") && !meta_num(ck, resume, "nabla.clip", &v)) clip = v;
        /* The cadence of validation, log rows and checkpoints goes on (the
         * command printed on a signal does not repeat the flag). */
        if (!GIVEN("--eval-every") && !meta_num(ck, resume, "nabla.eval_every", &v) && v >= 1) t.loop.eval_every = (int64_t)v;
        if (!meta_num(ck, resume, "nabla.seed", &v) && nb_cli_resume_seed(&c, resume, (uint64_t)v, &seed)) goto fail_msg;
        /* The schedule continues over the run's original length. */
        if (!GIVEN("--steps") && !GIVEN("--minutes") &&
            !meta_num(ck, resume, "nabla.total_steps", &v))
            steps = (long)v;
        const char *sch = nb_st_meta(ck, "nabla.schedule");
        if (!GIVEN("--schedule") && sch && (!strcmp(sch, "cosine") || !strcmp(sch, "constant")))
            schedule = sch;
        /* The checkpoint's settings meet the flags' ranges, as given ones do
         * (a damaged --lr 0 trained nothing; --seq 1e300 became negative). */
        const char *kept[] = {"--seq", "--batch", "--lr", "--grad-clip", "--steps"};
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
            if (nb_cli_check_stored(&c, kept[i], resume)) goto fail_msg;
        nb_clear_error();
    } else {
        int nv;
        int32_t *vocab = nb_vocab_build(cp.text, cp.len, &nv);
        nb_rng r;
        nb_rng_seed(&r, (uint64_t)seed, 0);
        t.m = vocab ? nb_charrnn_new(cell, vocab, nv, hidden, (int)layers, &r) : NULL;
        free(vocab);
        if (!t.m) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
    }
    if (nb_cr_corpus_encode(&cp, t.m)) goto fail_msg;
    t.T = seq;
    t.B = batch;
    t.lr = lr;
    t.clip = clip;
    t.seed = (uint64_t)seed;
    t.loop.minutes = minutes;
    t.cosine = !strcmp(schedule, "cosine");
    t.loop.max_steps = minutes > 0 ? -1 : steps;
    /* The last 5% of every file is validation text; the rest is cut into
     * the batch streams. */
    if (nb_cr_corpus_split(&cp, &train_ids, &ntrain, &val_ids, &nval)) goto fail_msg;
    if (nval < 2 || nb_charrnn_windows(ntrain, seq, batch) < 1) {
        rc = nb_cli_fail(cmd, "%s: %lld characters are too few for --batch %ld --seq %ld (%s at least %lld, of which "
                              "%d%% are held out%s)", cname, (long long)cp.len, batch, seq,
                         cp.n > 1 ? "one file would need" : "need", (long long)nb_cr_min_chars(batch, seq),
                         NB_CR_VAL_PERCENT, cp.n > 1 ? " from every file" : "");
        goto done;
    }
    t.opt = nb_optim_new(&(nb_optim_opts){.kind = NB_ADAM, .lr = (float)lr}, t.m->params, t.m->np);
    if (!t.opt) goto fail_msg;
    int64_t sshape[3] = {nb_rnn_num_layers(t.m->rnn), batch, nb_rnn_hidden_size(t.m->rnn)};
    t.h = nb_tensor_new(3, sshape);
    t.c = nb_rnn_cell(t.m->rnn) == NB_CELL_LSTM ? nb_tensor_new(3, sshape) : NULL;
    if (resume && (restore(&t, ck, resume) || nb_cli_loop_restore(&t.loop, ck, resume))) goto fail_msg;
    if (dev == NB_CUDA) { /* the model and the carried state; Adam's moments follow on the first step */
        nb_charrnn_to(t.m, NB_CUDA);
        nb_tensor_move(t.h, NB_CUDA);
        if (t.c) nb_tensor_move(t.c, NB_CUDA);
    }
    if (!json)
        fprintf(stderr, "training a %s, %d layer(s) of %lld on %s: %lld characters (%lld for validation), vocabulary "
                        "%d, batch %ld x %ld steps, Adam lr %g (%s)%s\n", nb_cell_name(nb_rnn_cell(t.m->rnn)),
                nb_rnn_num_layers(t.m->rnn), (long long)nb_rnn_hidden_size(t.m->rnn), cname, (long long)cp.len,
                (long long)nval, t.m->nvocab, batch, seq, lr, schedule, resume ? " (resumed)" : "");
    if (nb_cli_log_open(&t.csv, t.log, LOG_HEADER, resume != NULL, 0, nb_cli_loop_logged(&t.loop))) goto fail_msg;
    nb_cli_resume_command(t.again, sizeof t.again, "charrnn train", pos, npos, t.out, "--log", t.log, NULL);
    nb_cli_catch_interrupts();
    rc = run_train(&t, train_ids, ntrain, val_ids, nval);
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    free(train_ids);
    free(val_ids);
    nb_cli_log_free(&t.csv);
    nb_tensor_free(t.h);
    nb_tensor_free(t.c);
    nb_optim_free(t.opt);
    nb_charrnn_free(t.m);
    nb_st_free(ck);
    nb_cr_corpus_free(&cp);
    free(pos);
    return rc;
#undef GIVEN
}
