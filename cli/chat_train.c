/* chat_train.c — `nabla chat train`: the dual-encoder LSTM of notes §4.4
 * trained on a dialogue CSV, on the training driver (train_loop.c): the
 * pairs of each step, the epoch's report (validation loss and recall@k),
 * the checkpoint, and the final model's response bank. */
#include "chat.h"
#include "cli.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- sequences ------------------------------------------------------------ */

/* Token ids of many texts, each cut to max (contexts keep their end). */
typedef struct {
    int32_t *ids;
    int64_t *off; /* n + 1 */
    int64_t n;
} seqs_t;

static void seqs_free(seqs_t *s) {
    free(s->ids);
    free(s->off);
}

static int seqs_encode(seqs_t *s, const nb_chat_vocab *v, char *const *texts, int64_t n, int64_t stride, int64_t max,
                       bool last) {
    s->n = n;
    s->off = malloc(sizeof(int64_t) * (size_t)(n + 1));
    int32_t *tmp = malloc(sizeof(int32_t) * (size_t)max);
    int64_t cap = n * 8 + 16;
    s->ids = malloc(sizeof(int32_t) * (size_t)cap);
    if (!s->off || !tmp || !s->ids) return nb_error("out of memory");
    s->off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = nb_chat_encode(v, texts[i * stride], max, last, tmp);
        if (s->off[i] + k > cap) {
            while (s->off[i] + k > cap) cap *= 2;
            int32_t *g = realloc(s->ids, sizeof(int32_t) * (size_t)cap);
            if (!g) return nb_error("out of memory");
            s->ids = g;
        }
        memcpy(s->ids + s->off[i], tmp, sizeof(int32_t) * (size_t)k);
        s->off[i + 1] = s->off[i] + k;
    }
    free(tmp);
    return 0;
}

/* Appends sequence i of s to (ids, off) at position *k. */
static void put_seq(const seqs_t *s, int64_t i, int32_t *ids, int64_t *off, int64_t *k) {
    int64_t n = s->off[i + 1] - s->off[i];
    memcpy(ids + off[*k], s->ids + s->off[i], sizeof(int32_t) * (size_t)n);
    off[*k + 1] = off[*k] + n;
    (*k)++;
}

/* --- training ------------------------------------------------------------- */

typedef struct {
    /* The driver (train_loop.c): the budget, the epochs (of ceil(pairs /
     * batch) steps; a checkpoint's "nabla.chat.pos" counts their rows), the
     * step, the training loss of the epoch, the seconds, interrupts. */
    nb_cli_loop loop;
    const char *cmd, *out, *log, *train_path;
    nb_dualenc *m;
    nb_optim *opt;
    int64_t batch, max_context, max_response, vocab_min;
    int64_t epochs, max_steps;  /* the budget as a checkpoint stores it (max_steps -1: --steps 0) */
    int64_t negatives;          /* negatives per positive pair (1: the corpus's own) */
    int64_t max_bank;           /* --bank: the final model's responses at most */
    const nb_dialogue *train;   /* for the document frequencies stored by the final save */
    double lr, clip;
    uint64_t seed;
    bool json;
    nb_cli_log csv; /* the CSV log's rows */
    char again[2048];
    /* a run's data and buffers: the pairs as token ids, the validation
     * set, the final model's bank; the epoch's order, a step's pairs */
    const seqs_t *ctx, *rsp;
    const nb_dialogue *valid;
    const char *bank;
    int64_t nbank;
    int64_t *order, *off, *pc, *pr;
    int32_t *ids;
    float *y;
    double pairs;                 /* pairs trained this run */
    double vloss, r1, r2, r5;     /* the last validation (NAN: none) */
} trainer;

static const char *LOG_HEADER = "epoch,step,train_loss,valid_loss,valid_recall_1,valid_recall_2,valid_recall_5,seconds";

/* The response bank of the interactive mode: the distinct responses of the
 * training file in file order (at most max_bank), newlines turned into
 * spaces, joined by newlines. */
typedef struct {
    const char *s;
    int64_t i;
} text_at;
static int by_text(const void *a, const void *b) {
    const text_at *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->i < y->i ? -1 : x->i > y->i);
}

static char *make_bank(const nb_dialogue *d, int64_t max_bank, int64_t *count) {
    size_t cap = 1;
    for (int64_t i = 0; i < d->n; i++) cap += strlen(d->cand[i * d->ncand]) + 1;
    char *bank = malloc(cap), *dup = calloc((size_t)d->n, 1);
    text_at *t = malloc(sizeof(text_at) * (size_t)d->n);
    if (!bank || !dup || !t) {
        free(bank), free(dup), free(t);
        return NULL;
    }
    for (int64_t i = 0; i < d->n; i++) t[i] = (text_at){d->cand[i * d->ncand], i};
    qsort(t, (size_t)d->n, sizeof *t, by_text);
    for (int64_t i = 1; i < d->n; i++)
        if (!strcmp(t[i].s, t[i - 1].s)) dup[t[i].i] = 1; /* a later copy of the same text */
    size_t len = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < d->n && n < max_bank; i++) {
        if (dup[i]) continue;
        if (n) bank[len++] = '\n';
        for (const char *p = d->cand[i * d->ncand]; *p; p++) bank[len++] = *p == '\n' || *p == '\r' ? ' ' : *p;
        n++;
    }
    bank[len] = 0;
    free(dup), free(t);
    *count = n;
    return bank;
}

/* Writes the model, the optimizer state and the progress; the final save
 * also stores the response bank and its embeddings. */
static int save(trainer *t, double seconds, const char *bank, int64_t nbank) {
    const nb_cli_loop *L = &t->loop;
    if (nb_cli_check_weights(t->m->params, t->m->np, t->m->names, L->step)) return -1;
    if (!t->out) return 0;
    char v[20][48];
    const char *keys[22], *vals[22];
    int n = 0;
#define PUT(k, ...) (keys[n] = (k), snprintf(v[n], sizeof v[n], __VA_ARGS__), vals[n] = v[n], n++)
    PUT("nabla.chat.epoch", "%" PRId64, L->epoch);
    PUT("nabla.chat.pos", "%" PRId64, L->epoch_pos * t->batch);
    PUT("nabla.chat.step", "%" PRId64, L->step);
    PUT("nabla.chat.optim_steps", "%" PRId64, nb_optim_steps(t->opt));
    PUT("nabla.chat.seconds", "%.3f", seconds);
    PUT("nabla.chat.batch", "%" PRId64, t->batch);
    PUT("nabla.chat.lr", "%.9g", t->lr);
    PUT("nabla.chat.clip", "%.9g", t->clip);
    PUT("nabla.chat.seed", "%" PRIu64, t->seed);
    PUT("nabla.chat.max_context", "%" PRId64, t->max_context);
    PUT("nabla.chat.max_response", "%" PRId64, t->max_response);
    PUT("nabla.chat.vocab_min", "%" PRId64, t->vocab_min);
    PUT("nabla.chat.loss_sum", "%.17g", L->loss_sum);
    PUT("nabla.chat.loss_n", "%" PRId64, L->loss_n);
    PUT("nabla.chat.negatives", "%" PRId64, t->negatives);
    PUT("nabla.chat.epochs", "%" PRId64, t->epochs); /* the run's budget, which --resume keeps */
    PUT("nabla.chat.max_steps", "%" PRId64, t->max_steps);
    PUT("nabla.chat.max_bank", "%" PRId64, t->max_bank);
#undef PUT
    if (bank) keys[n] = "nabla.chat.bank", vals[n++] = bank;
    nb_cli_extras x;
    nb_cli_extras_init(&x, t->opt, 2);
    float *r = NULL;
    nb_tensor *rt = NULL;
    char *copy = NULL;
    if (bank && nbank > 0) {
        copy = strdup(bank);
        int64_t nl;
        char **lines = copy ? nb_chat_split_lines(copy, &nl) : NULL;
        r = lines ? nb_chat_embed_texts(t->m, lines, nl, t->max_response) : NULL;
        free(lines);
        if (!r) {
            nb_cli_extras_free(&x);
            free(copy);
            return nb_error("%s: out of memory", t->out);
        }
        rt = nb_tensor_from(2, (int64_t[]){nl, t->m->hidden}, r);
        nb_cli_extras_add(&x, "bank.r", rt);
    }
    /* The final model stores the document frequencies of the training file's
     * contexts and responses over its vocabulary: the idf of the combined
     * score of `nabla chat MODEL --tfidf-weight W` and of `chat eval`. */
    nb_tensor *dft = NULL;
    char ndoc_s[24];
    if (bank && t->train) {
        int nv = nb_chat_vocab_size(t->m->vocab);
        int64_t ndoc = 0;
        dft = nb_tensor_new(1, (int64_t[]){nv});
        nb_chat_doc_freq(t->m->vocab, t->train, dft->data, &ndoc);
        nb_cli_extras_add(&x, "tfidf.df", dft);
        snprintf(ndoc_s, sizeof ndoc_s, "%" PRId64, ndoc);
        keys[n] = "nabla.chat.tfidf_docs", vals[n++] = ndoc_s;
    }
    int rc = nb_dualenc_save(t->m, t->out, keys, vals, n, x.names, x.ts, x.n);
    nb_cli_extras_free(&x);
    free(r), free(copy);
    nb_tensor_free(rt);
    nb_tensor_free(dft);
    return rc;
}

/* Validation: scores of every candidate, the mean eq. 29 loss over all of
 * them (label 1 for the true one) and recall@1, 2, 5. */
static void validate(trainer *t, const nb_dialogue *valid, double *loss, double *r1, double *r2, double *r5) {
    float *sc = malloc(sizeof(float) * (size_t)(valid->n * valid->ncand));
    if (!sc) nb_oom("response scores", 0);
    nb_dualenc_rank(t->m, valid, t->max_context, t->max_response, t->batch, sc);
    double l = 0;
    for (int64_t i = 0; i < valid->n * valid->ncand; i++) {
        double z = sc[i], y = i % valid->ncand == 0;
        l += fmax(z, 0) - z * y + log1p(exp(-fabs(z))); /* eq. 29 from the logit */
    }
    *loss = l / (double)(valid->n * valid->ncand);
    *r1 = nb_recall_at_k(sc, valid->n, valid->ncand, 1);
    *r2 = nb_recall_at_k(sc, valid->n, valid->ncand, 2);
    *r5 = nb_recall_at_k(sc, valid->n, valid->ncand, 5);
    free(sc);
}

/* --- the driver's callbacks ---------------------------------------------- */

/* The epoch's order depends only on the seed and the epoch: a resumed run
 * draws the same batches. */
static void begin_epoch(void *ctx) {
    trainer *t = ctx;
    int64_t n = t->train->n;
    nb_rng r;
    nb_rng_seed(&r, t->seed, 1000 + (uint64_t)t->loop.epoch);
    for (int64_t i = 0; i < n; i++) t->order[i] = i;
    nb_rng_shuffle(&r, t->order, n);
}

static int take_step(void *ctx, double *loss) {
    trainer *t = ctx;
    const nb_cli_loop *L = &t->loop;
    const nb_dialogue *d = t->train;
    int64_t n = d->n, B = t->batch, pos = L->epoch_pos * B, b = n - pos < B ? n - pos : B, k = 0;
    /* The step's pairs: the corpus's rows, then with --negatives K > 1,
     * K - 1 more label-0 pairs for each label-1 row. The negatives are drawn
     * from a stream that depends only on the seed and the step, so that a
     * resumed run draws the same ones. */
    nb_rng nr;
    nb_rng_seed(&nr, t->seed, 5000000 + (uint64_t)L->step);
    int64_t np = nb_dualenc_step_pairs(d, t->order + pos, b, t->negatives, &nr, t->pc, t->pr, t->y);
    if (np < 0) return -1;
    t->off[0] = 0;
    for (int64_t i = 0; i < np; i++) put_seq(t->ctx, t->pc[i], t->ids, t->off, &k);
    for (int64_t i = 0; i < np; i++) put_seq(t->rsp, t->pr[i], t->ids, t->off, &k);
    nb_tensor *logits = nb_dualenc_logits(t->m, t->ids, t->off, np);
    nb_tensor *l = nb_bce_logits(logits, nb_to(nb_from_data(1, (int64_t[]){np}, t->y), logits->device));
    float v = nb_item(l); /* eq. 29 */
    if (!isfinite(v)) return nb_error("the loss became %g at step %" PRId64 " (try a smaller --lr)", v, L->step);
    nb_backward(l);
    if (t->clip > 0) nb_clip_grad_norm(t->m->params, t->m->np, (float)t->clip);
    nb_optim_step_zero(t->opt, NULL, 0);
    nb_arena_reset();
    t->pairs += (double)b;
    *loss = v;
    return 0;
}

/* At an epoch's end its line and log row, with the validation; at a stop
 * inside one (--steps, --minutes) only the validation the final line and
 * JSON report. Without --valid there is nothing to report: no "nan"
 * figures, and the log's validation cells stay empty (what a log does not
 * measure). */
static int report(void *ctx, bool epoch_end) {
    trainer *t = ctx;
    const nb_cli_loop *L = &t->loop;
    const nb_dialogue *valid = t->valid;
    if (valid) validate(t, valid, &t->vloss, &t->r1, &t->r2, &t->r5);
    if (!epoch_end) return 0;
    double secs = L->seconds + L->train_secs, tl = L->loss_n ? L->train_figure : NAN;
    if (!t->json || nb_cli_tty()) {
        if (valid)
            fprintf(stderr, "epoch %" PRId64 ": train loss %.4f, validation loss %.4f, recall@1 %.4f (%.0f s)\n",
                    L->epoch, tl, t->vloss, t->r1, secs);
        else fprintf(stderr, "epoch %" PRId64 ": train loss %.4f (%.0f s)\n", L->epoch, tl, secs);
    }
    if (t->log) {
        char line[256];
        if (valid)
            snprintf(line, sizeof line, "%" PRId64 ",%" PRId64 ",%.6f,%.6f,%.6f,%.6f,%.6f,%.3f", L->epoch, L->step, tl,
                     t->vloss, t->r1, t->r2, t->r5, secs);
        else snprintf(line, sizeof line, "%" PRId64 ",%" PRId64 ",%.6f,,,,,%.3f", L->epoch, L->step, tl, secs);
        nb_cli_log_add(&t->csv, line);
    }
    return 0;
}

/* A checkpoint; the final save also stores the bank of `nabla chat MODEL`. */
static int save_cb(void *ctx, double seconds, bool final) {
    trainer *t = ctx;
    return save(t, seconds, final ? t->bank : NULL, final ? t->nbank : 0);
}

static void progress(void *ctx, double loss, char *extra, size_t n) {
    trainer *t = ctx;
    snprintf(extra, n, "epoch %" PRId64 "  loss %.4f  %.0f pairs/s", t->loop.epoch + 1, loss,
             t->pairs / t->loop.train_secs);
}

static int run_train(trainer *t) {
    const char *cmd = t->cmd;
    int64_t n = t->train->n, B = t->batch, P = B * t->negatives; /* at most P pairs a step */
    t->order = malloc(sizeof(int64_t) * (size_t)n), t->off = malloc(sizeof(int64_t) * (size_t)(2 * P + 1));
    t->pc = malloc(sizeof(int64_t) * (size_t)P), t->pr = malloc(sizeof(int64_t) * (size_t)P);
    t->ids = malloc(sizeof(int32_t) * (size_t)(P * (t->max_context + t->max_response)));
    t->y = malloc(sizeof(float) * (size_t)P);
    t->vloss = t->r1 = t->r2 = t->r5 = NAN;
    int rc = 0;
    if (!t->order || !t->off || !t->ids || !t->y || !t->pc || !t->pr) {
        rc = nb_cli_fail(cmd, "out of memory for a step's tokens: %lld pairs (--batch x --negatives) of up to %lld + "
                              "%lld tokens (--max-context, --max-response) need %.1f MiB",
                         (long long)P, (long long)t->max_context, (long long)t->max_response,
                         (double)P * (double)(t->max_context + t->max_response) * sizeof(int32_t) / 1048576.0);
        goto out;
    }
    nb_cli_loop *L = &t->loop;
    L->cmd = cmd, L->label = "chat", L->unit = "nats", L->loss_scale = 1, L->loss_share = 1;
    L->out = t->out, L->again = t->again, L->csv = &t->csv, L->ctx = t;
    L->max_steps = t->max_steps > 0 ? t->max_steps : -1, L->epochs = t->epochs, L->epoch_steps = (n + B - 1) / B;
    L->take_step = take_step, L->save = save_cb, L->begin_epoch = begin_epoch, L->report = report;
    L->progress = progress;
    L->params = t->m->params, L->names = t->m->names, L->nparams = t->m->np;
    if ((rc = nb_cli_loop_run(L))) goto out;
    double pps = L->train_secs > 0 ? t->pairs / L->train_secs : 0;
    char vtext[64] = "";
    if (t->valid) snprintf(vtext, sizeof vtext, "; validation recall@1 %.4f", t->r1);
    fprintf(stderr, "trained %" PRId64 " steps (%" PRId64 " this run, %.0f pairs/s)%s%s%s\n", L->step,
            L->step - L->first, pps, vtext, t->out ? "; model: " : "", t->out ? t->out : "");
    if (t->json) { /* the validation figures: null without --valid */
        printf("{\"steps\": %" PRId64 ", \"run_steps\": %" PRId64 ", \"epochs\": %" PRId64
               ", \"pairs_per_second\": %.1f, \"train_seconds\": %.3f, \"valid_loss\": ",
               L->step, L->step - L->first, L->epoch, pps, L->train_secs);
        nb_cli_json_number(stdout, "%.9g", t->vloss);
        printf(", \"valid_recall_1\": ");
        nb_cli_json_number(stdout, "%.6f", t->r1);
        printf(", \"valid_recall_2\": ");
        nb_cli_json_number(stdout, "%.6f", t->r2);
        printf(", \"valid_recall_5\": ");
        nb_cli_json_number(stdout, "%.6f", t->r5);
        printf(", \"vocab\": %d, \"bank\": %" PRId64 "}\n", nb_chat_vocab_size(t->m->vocab), t->nbank);
    }
out:
    free(t->order), free(t->off), free(t->ids), free(t->y), free(t->pc), free(t->pr);
    return rc;
}

static const char *TRAIN_ABOUT =
    "Trains the dual-encoder LSTM of notes §4.4 on a dialogue CSV in the Ubuntu Dialogue Corpus layout "
    "(Context,Utterance,Label): words embedded, read by ONE LSTM shared by context and response (its last state: "
    "c and r), score sigma(c^T M r), binary cross-entropy (eq. 29), Adam, gradients clipped to --grad-clip. "
    "Contexts keep their last --max-context tokens, responses their first --max-response. With --valid "
    "(Context,Ground Truth Utterance,Distractor_0..8) each epoch logs the validation loss and recall@1/2/5. The "
    "model is checkpointed atomically after every epoch and on Ctrl-C; --resume continues with the same result "
    "as a run never interrupted. The final model also stores the training responses, embedded, as the bank of "
    "`nabla chat MODEL`, and the document frequencies of the training contexts and responses over the "
    "vocabulary (tensor tfidf.df; the idf of --tfidf-weight in `chat eval` and `nabla chat MODEL`).";

int nb_chat_train_main(int argc, char **argv) {
    const char *cmd = "chat train", *out = NULL, *log = NULL, *resume = NULL, *valid_path = NULL, *device = "cpu";
    long embed = 100, hidden = 256, max_context = 160, max_response = 80, vocab_min = 5, batch = 128, epochs = 1,
         steps = 0, seed = 1, threads = 0, max_bank = 50000, negatives = 1;
    double lr = 1e-3, minutes = 0, clip = 10;
    bool json = false;
    nb_flag flags[] = {
        {"--valid", NB_FLAG_STR, &valid_path, "validation CSV (test layout): loss and recall@k each epoch",
         .meta = "VALID.csv", .def = "none"},
        {"--embed", NB_FLAG_INT, &embed, "word embedding size", .range = "[1, 4096]"},
        {"--hidden", NB_FLAG_INT, &hidden, "LSTM hidden size", .range = "[1, 4096]"},
        {"--max-context", NB_FLAG_INT, &max_context, "context tokens kept (the last ones)", .range = "[1, 100000]"},
        {"--max-response", NB_FLAG_INT, &max_response, "response tokens kept (the first ones)", .range = "[1, 100000]"},
        {"--vocab-min", NB_FLAG_INT, &vocab_min, "minimum count of a word in the vocabulary", .range = "[1, inf)"},
        {"--batch", NB_FLAG_INT, &batch, "pairs per step", .range = "[1, 65536]"},
        {"--lr", NB_FLAG_FLOAT, &lr, "Adam learning rate", .range = "(0, inf)"},
        {"--grad-clip", NB_FLAG_FLOAT, &clip, "clip gradients to this global L2 norm; 0: none", .range = "[0, inf)"},
        {"--epochs", NB_FLAG_INT, &epochs, "passes over the training pairs", .range = "[1, 100000]"},
        {"--minutes", NB_FLAG_FLOAT, &minutes, "stop after this long (a partial epoch is kept)", .range = "(0, inf)",
         .def = "none"},
        {"--steps", NB_FLAG_INT, &steps, "stop after this many optimizer steps in all (0 writes the initial model)", .range = "[0, inf)",
         .def = "none"},
        {"--bank", NB_FLAG_INT, &max_bank, "most training responses kept as the chat bank", .range = "[0, inf)"},
        {"--negatives", NB_FLAG_INT, &negatives, "negatives per positive pair: 1 uses the corpus's label-0 rows "
                                                 "only; K > 1 adds, for each label-1 row of a step, K - 1 label-0 "
                                                 "pairs of its context and a random training response that differs "
                                                 "from the true one (eq. 29 over all)", .range = "[1, 100]"},
        NB_FLAG_SEED(&seed, "the initialization and the order of the pairs"),
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_DEVICE(&device, "where to train", "; the model file is the same either way"),
        NB_FLAG_MODEL_OUT(&out, "model file, rewritten atomically after every epoch"),
        NB_FLAG_LOG(&log, "CSV log, one row per epoch (see nabla plot)"),
        NB_FLAG_RESUME(&resume, ""),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "TRAIN.csv", .about = TRAIN_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
#define GIVEN(name) (nb_cli_flag(&c, name)->given)
    bool steps_given = GIVEN("--steps");
    if (!out && !resume) return nb_cli_usage_error(&c, "--out MODEL is required (or --resume MODEL)");
    if (!out && resume && nb_cli_check_output(cmd, "--resume", resume, NULL)) {
        nb_cli_usage_line(&c);
        return 2; /* as the parser's own check of --out */
    }
    nb_device dev = NB_CPU;
    if ((rc = nb_cli_device(&c, device, &dev)) != NB_CLI_OK) return rc;
    nb_cli_threads(cmd, threads, 0);
    trainer t = {.cmd = cmd, .out = out ? out : resume, .log = log, .json = json};
    nb_dialogue *d = NULL, *valid = NULL;
    nb_safetensors *ck = NULL;
    seqs_t ctx = {0}, rsp = {0};
    char *bank = NULL;
    int64_t nbank = 0;
    rc = 1;
    d = nb_dialogue_load(pos[0]);
    if (!d) goto fail_msg;
    if (d->ncand != 1) {
        nb_cli_fail(cmd, "%s is in the test layout (Context,Ground Truth Utterance,Distractor_...); training needs "
                         "Context,Utterance,Label", pos[0]);
        goto done;
    }
    if (valid_path) {
        if (!(valid = nb_dialogue_load(valid_path))) goto fail_msg;
        if (valid->ncand < 2) {
            nb_cli_fail(cmd, "%s: --valid needs the test layout (Context,Ground Truth Utterance,Distractor_0,...)",
                        valid_path);
            goto done;
        }
    }
    if (resume) {
        t.m = nb_dualenc_load(resume, &ck);
        if (!t.m) goto fail_msg;
        int64_t e = 0, p = 0, s = 0, b = 0, mc = 0, mr = 0, vm = 0, sd = 0;
        if (nb_cli_meta_count(ck, resume, "nabla.chat.epoch", &e) || nb_cli_meta_count(ck, resume, "nabla.chat.pos", &p) ||
            nb_cli_meta_count(ck, resume, "nabla.chat.step", &s) || nb_cli_meta_count(ck, resume, "nabla.chat.batch", &b) ||
            nb_cli_meta_count(ck, resume, "nabla.chat.max_context", &mc) || nb_cli_meta_count(ck, resume, "nabla.chat.max_response", &mr) ||
            nb_cli_meta_count(ck, resume, "nabla.chat.vocab_min", &vm) || nb_cli_meta_count(ck, resume, "nabla.chat.seed", &sd))
            goto fail_msg;
        t.loop.epoch = e, t.loop.step = s;
        /* absent in models from before --negatives: 1 */
        int64_t kneg = 1;
        if (nb_st_meta(ck, "nabla.chat.negatives") && nb_cli_meta_count(ck, resume, "nabla.chat.negatives", &kneg))
            goto fail_msg; /* "5abc" was read as 5 */
        if (kneg < 1 || kneg > 100) {
            nb_cli_fail(cmd, "%s: __metadata__ 'nabla.chat.negatives': expected an integer in [1, 100]", resume);
            goto done;
        }
        if (GIVEN("--negatives") && negatives != kneg) {
            rc = nb_cli_usage_error(&c, "%s was trained with --negatives %lld; a resumed run cannot change it", resume,
                                    (long long)kneg);
            goto done;
        }
        negatives = (long)kneg;
        /* The checkpoint's settings win over defaults; given flags must agree. */
        if ((GIVEN("--batch") && batch != b) || (GIVEN("--max-context") && max_context != mc) ||
            (GIVEN("--max-response") && max_response != mr) || (GIVEN("--vocab-min") && vocab_min != vm) ||
            (GIVEN("--embed") && embed != t.m->embed) || (GIVEN("--hidden") && hidden != t.m->hidden) ||
            (GIVEN("--seed") && (uint64_t)seed != (uint64_t)sd)) {
            rc = nb_cli_usage_error(&c, "%s was trained with --batch %lld --max-context %lld --max-response %lld "
                                        "--vocab-min %lld --embed %lld --hidden %lld --seed %lld; a resumed run cannot "
                                        "change them", resume, (long long)b, (long long)mc, (long long)mr, (long long)vm,
                                    (long long)t.m->embed, (long long)t.m->hidden, (long long)sd);
            goto done;
        }
        batch = (long)b, max_context = (long)mc, max_response = (long)mr, vocab_min = (long)vm, seed = (long)sd;
        /* The place in the epoch counts the rows of whole steps of the
         * checkpoint's batch; another count would start the rest of the
         * epoch on other batches than an uninterrupted run's. */
        if (p % b) {
            nb_cli_fail(cmd, "%s: __metadata__ 'nabla.chat.pos' %lld: expected a multiple of its batch %lld (the rows "
                             "of the epoch's finished steps)", resume, (long long)p, (long long)b);
            goto done;
        }
        t.loop.epoch_pos = p / b;
        if ((!GIVEN("--lr") && nb_cli_meta_number(ck, resume, "nabla.chat.lr", &lr)) ||
            (!GIVEN("--grad-clip") && nb_cli_meta_number(ck, resume, "nabla.chat.clip", &clip)) ||
            nb_cli_meta_number(ck, resume, "nabla.chat.seconds", &t.loop.seconds))
            goto fail_msg;
        /* The bank the final model stores, as the whole run would (the
         * command printed after a signal does not repeat --bank). */
        int64_t mb;
        if (nb_st_meta(ck, "nabla.chat.max_bank") && !GIVEN("--bank")) {
            if (nb_cli_meta_count(ck, resume, "nabla.chat.max_bank", &mb)) goto fail_msg;
            max_bank = (long)mb;
        }
        /* The epoch's running loss so far (its log row); a damaged value
         * is refused, not read as 0 into that row. */
        static const char *const loss_keys[] = {"nabla.chat.loss_sum", "nabla.chat.loss_n"};
        int has_loss = nb_cli_meta_together(ck, resume, loss_keys, 2);
        if (has_loss < 0 || (has_loss && (nb_cli_meta_number(ck, resume, "nabla.chat.loss_sum", &t.loop.loss_sum) ||
                                          nb_cli_meta_count(ck, resume, "nabla.chat.loss_n", &t.loop.loss_n))))
            goto fail_msg;
        /* The run's budget, unless this command sets one: the resume command
         * printed after a signal then ends where the whole run would have.
         * (Absent in models from before it was kept: the defaults.) */
        static const char *const budget_keys[] = {"nabla.chat.epochs", "nabla.chat.max_steps"};
        const char *ev = nb_st_meta(ck, "nabla.chat.epochs"), *mv = nb_st_meta(ck, "nabla.chat.max_steps");
        if (nb_cli_meta_together(ck, resume, budget_keys, 2) < 0) goto fail_msg;
        if (ev && mv && !GIVEN("--epochs") && !GIVEN("--steps") && !GIVEN("--minutes")) {
            /* whole numbers: "5abc" was read as 5 */
            char *e1, *e2;
            errno = 0;
            long long te = strtoll(ev, &e1, 10), ts = strtoll(mv, &e2, 10);
            if (!*ev || *e1 || !*mv || *e2 || errno || te < 1 || ts < -1) {
                nb_cli_fail(cmd, "%s: __metadata__ 'nabla.chat.epochs' '%.40s' and 'nabla.chat.max_steps' '%.40s': expected "
                                 "an integer >= 1 and one >= -1", resume, ev, mv);
                goto done;
            }
            epochs = (long)te;
            if (ts) steps_given = true, steps = ts < 0 ? 0 : (long)ts;
        }
        /* The checkpoint's settings meet the flags' ranges, as given ones do
         * (a damaged --max-response 2^62 wrapped the size of the token buffer). */
        const char *kept[] = {"--batch", "--max-context", "--max-response", "--vocab-min", "--lr", "--grad-clip",
                              "--epochs", "--bank"};
        for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
            if (nb_cli_check_stored(&c, kept[i], resume)) goto fail_msg;
        /* The vocabulary of the training file must be the model's. */
        nb_chat_vocab *v = nb_chat_vocab_build(d, vocab_min);
        int nv = v ? nb_chat_vocab_size(v) : 0, differ = !v || nv != nb_chat_vocab_size(t.m->vocab);
        for (int i = 0; !differ && i < nv; i++)
            differ = strcmp(nb_chat_vocab_word(v, i), nb_chat_vocab_word(t.m->vocab, i)) != 0;
        nb_chat_vocab_free(v);
        if (differ) {
            nb_cli_fail(cmd, "%s: the model's vocabulary (%d words) is not the one of %s with --vocab-min %ld (%d "
                             "words): another training file?", resume, nb_chat_vocab_size(t.m->vocab), pos[0],
                        vocab_min, nv);
            goto done;
        }
    } else {
        nb_chat_vocab *v = nb_chat_vocab_build(d, vocab_min);
        if (!v) goto fail_msg;
        nb_rng r;
        nb_rng_seed(&r, (uint64_t)seed, 0);
        t.m = nb_dualenc_new(v, embed, hidden, &r);
        if (!t.m) goto fail_msg;
    }
    /* A negative is a training response other than the pair's own; with one
     * distinct response there is none, and every draw was dropped: the run
     * trained on the corpus's rows alone while saying --negatives K. Fewer
     * distinct responses than K are fine: the draws are with replacement. */
    int64_t other = 1;
    while (other < d->n && !strcmp(d->cand[other], d->cand[0])) other++;
    if (negatives > 1 && other == d->n) {
        nb_cli_fail(cmd, "%s: every one of its %" PRId64 " responses is the same ('%.40s'), so --negatives %ld has no "
                         "other response to draw; give --negatives 1 or a corpus of varied responses",
                    pos[0], d->n, d->n ? d->cand[0] : "", negatives);
        goto done;
    }
    t.batch = batch, t.epochs = epochs, t.max_steps = steps_given ? steps : 0, t.loop.minutes = minutes;
    t.max_context = max_context, t.max_response = max_response, t.vocab_min = vocab_min;
    t.lr = lr, t.clip = clip, t.seed = (uint64_t)seed, t.negatives = negatives, t.train = d, t.max_bank = max_bank;
    if (steps_given && steps == 0) t.max_steps = -1;
    if (t.max_steps < 0) t.epochs = t.loop.epoch; /* --steps 0: write the initial model */
    if (t.max_steps > 0 && !GIVEN("--epochs")) t.epochs = 1000000;
    nb_optim_opts oo = {.kind = NB_ADAM, .lr = (float)lr};
    nb_dualenc_to(t.m, dev); /* Adam's moments follow on the first step */
    t.opt = nb_optim_new(&oo, t.m->params, t.m->np);
    if (!t.opt) goto fail_msg;
    if (resume) {
        if (nb_cli_optim_restore(t.opt, ck, resume, NULL)) goto fail_msg;
        int64_t os = 0;
        if (nb_cli_meta_count(ck, resume, "nabla.chat.optim_steps", &os)) goto fail_msg;
        nb_optim_set_steps(t.opt, os);
    }
    if (seqs_encode(&ctx, t.m->vocab, d->context, d->n, 1, max_context, true) ||
        seqs_encode(&rsp, t.m->vocab, d->cand, d->n, 1, max_response, false))
        goto fail_msg;
    bank = make_bank(d, max_bank, &nbank);
    if (!bank) {
        nb_cli_fail(cmd, "out of memory");
        goto done;
    }
    nb_cli_resume_command(t.again, sizeof t.again, "chat train", pos, 1, t.out, "--valid", valid_path, "--log", log,
                          NULL);
    if (nb_cli_log_open(&t.csv, t.log, LOG_HEADER, resume != NULL, 1, t.loop.epoch)) goto fail_msg;
    if (!json || nb_cli_tty())
        fprintf(stderr, "%s: %" PRId64 " pairs, vocabulary %d words (min count %ld), embedding %lld, LSTM %lld\n", pos[0],
                d->n, nb_chat_vocab_size(t.m->vocab), vocab_min, (long long)t.m->embed, (long long)t.m->hidden);
    nb_cli_catch_interrupts();
    t.ctx = &ctx, t.rsp = &rsp, t.valid = valid, t.bank = bank, t.nbank = nbank;
    rc = run_train(&t);
    goto done;
fail_msg:
    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
done:
    nb_cli_log_free(&t.csv);
    free(bank);
    seqs_free(&ctx), seqs_free(&rsp);
    nb_optim_free(t.opt);
    nb_dualenc_free(t.m);
    nb_st_free(ck);
    nb_dialogue_free(d);
    nb_dialogue_free(valid);
    return rc;
}

