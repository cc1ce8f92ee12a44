/* train.c — `nabla train`: classifiers from a NET.cfg on Fashion-MNIST (or
 * any IDX folder or CSV), with the regularizers of the notes: weight decay
 * (eq. 7.1), sparse activations (eq. 7.48) and adversarial training (eq. 21).
 * Checkpoints are written atomically after every epoch and hold everything
 * needed to resume with the same result as an uninterrupted run. */
#include "cli.h"
#include "train_state.h"
#include "dist.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static const char *ABOUT =
    "Trains the network of NET.cfg (or the one in --resume's model) on --data, evaluating it on the\n"
    "test split after every epoch. --out is rewritten atomically after every epoch; --resume continues\n"
    "it where it stopped, with the result of a run that was never interrupted.\n"
    "Under mpirun -np N (a build with MPI) the N processes share every --batch (the global batch) and\n"
    "average their gradients; rank 0 alone prints and writes.";

/* Test-set batches: small enough that evaluation needs no more memory than
 * a training step (activations scale with the batch). */
#define EVAL_BATCH 250

/* Data parallelism: with T threads a batch is cut into T shards, each run
 * forward and backward by one thread on its own replica of the network and
 * in its own arena; the optimizer step then sums the replicas' gradients
 * as it reads them (nb_optim_step_zero). Every op then
 * runs single-threaded on its shard, with no fork and join per op, and every
 * GEMM is a single-threaded OpenBLAS call, which on this class of machine is
 * faster than sharing one GEMM of a small batch between cores. Shards get at
 * least MIN_SHARD examples. */
#define MAX_SHARDS 64
#define MIN_SHARD 16

typedef struct {
    nb_net *net;
    nb_optim *opt;
    nb_param *params;
    int np;
    nb_dataset train, test;
    nb_train_state s;
    nb_device device;                  /* where the parameters and each batch live */
    int shards;                        /* 1: no data parallelism */
    int used;                          /* shards the last batch was cut into */
    nb_net *reps[MAX_SHARDS];          /* reps[0] is net itself */
    nb_arena *arenas[MAX_SHARDS];      /* arenas[0] is the caller's */
    nb_tensor **rep_grads[MAX_SHARDS]; /* [k][i]: replica k's .grad of parameter i (k >= 1) */
    nb_cli_loop loop;                  /* the budget, the epochs, interrupts, the bar (train_loop.c) */
    int64_t *perm;                     /* the epoch's order of the training examples */
    int32_t *y;                        /* a batch's labels */
    /* This rank's part of the epoch in progress since the last fold_epoch:
     * the data loss summed over its examples, the examples, the correct
     * predictions; and the examples of the epoch this run trained (every
     * rank's), for the epoch's rate. */
    double loss_sum;
    int64_t seen, correct, run_seen;
    nb_eval_result ev;                 /* the last test evaluation */
    char again[4200];                  /* the command that resumes the run */
} trainer;

/* The loss of one batch, with the penalties the flags ask for. */
static nb_tensor *batch_loss(const trainer *T, nb_net *net, nb_rng *rng, nb_tensor *x, const int32_t *y,
                             double *data_loss, int64_t *correct) {
    const nb_train_state *s = &T->s;
    nb_tensor *logits = nb_net_forward(net, x, true, rng);
    nb_tensor *loss = nb_cross_entropy(logits, y);
    int64_t n = logits->shape[0];
    int32_t pred[4096]; /* --batch is at most 4096 */
    nb_argmax_rows(logits, pred);
    for (int64_t i = 0; i < n; i++) *correct += pred[i] == y[i];
    *data_loss = nb_item(loss);
    if (s->l1_activation > 0) {
        /* eq. 7.48 with Omega(h) = sum |h| over the hidden activations, averaged
         * over the batch like the data loss. */
        for (int l = 0; l < nb_net_layers(net); l++) {
            if (!nb_net_layer_is_activation(net, l)) continue;
            nb_tensor *h = nb_net_layer_output(net, l);
            nb_tensor *pen = nb_mul_scalar(nb_sum_all(nb_abs(h)), (float)(s->l1_activation / (double)n));
            loss = nb_add(loss, pen);
        }
    }
    if (s->adversarial > 0) {
        /* Adversarial training (eq. 21): the mean of the loss on the clean
         * batch and on its FGSM perturbation (Goodfellow et al.'s alpha = 0.5). */
        nb_tensor *xa = nb_fgsm(net, x, y, (float)s->adversarial);
        nb_tensor *la = nb_cross_entropy(nb_net_forward(net, xa, true, rng), y);
        loss = nb_mul_scalar(nb_add(loss, la), 0.5f);
    }
    return loss;
}

/* Names the first layer whose output holds NaN or Inf after a forward pass
 * (nb_errmsg(); returns -1). */
static int report_nonfinite(const nb_net *net, int64_t step, double loss) {
    for (int l = 0; l < nb_net_layers(net); l++) {
        const nb_tensor *h = nb_net_layer_output(net, l);
        if (!h) continue;
        float *v = malloc(sizeof(float) * (size_t)(h->size ? h->size : 1)); /* a GPU output is read back */
        if (!v) break;
        nb_tensor_read(h, v);
        int64_t i = 0;
        while (i < h->size && isfinite(v[i])) i++;
        free(v);
        if (i < h->size)
            return nb_error("the loss became %g at step %lld: the first non-finite value appeared in the output of "
                            "layer '%s' (try a smaller --lr)", loss, (long long)step, nb_net_layer_name(net, l));
    }
    return nb_error("the loss became %g at step %lld: every layer output is finite, so it overflowed in the loss "
                    "(try a smaller --lr)", loss, (long long)step);
}

/* A finite loss can still give a NaN or inf gradient (an overflow in the
 * backward pass), and the optimizer step writes it into the weights: the
 * next step's loss is then NaN, or, after the last step before a checkpoint,
 * the model file would get the weights. The weights are checked there and
 * when a loss is not finite (nb_cli_nonfinite_param), not every step: a pass
 * over the gradients each step cost examples/mlp.cfg about 30% more CPU time. */

/* Names (nb_errmsg()) the parameter whose weights an update made NaN or inf
 * (a gradient that was not finite, or too large for the learning rate): at
 * a non-finite loss (loss_step >= 0, the step whose loss it was) or before
 * a checkpoint (after step `step`). Returns whether there was one. */
static bool report_nonfinite_weights(const trainer *T, int64_t step, int64_t loss_step, double loss) {
    int i = nb_cli_nonfinite_param(T->params, T->np);
    if (i < 0) return false;
    const char **names;
    nb_net_param_names(T->net, &names);
    char at[64] = "", when[48] = "the previous update";
    if (loss_step >= 0) snprintf(at, sizeof at, "the loss became %g at step %lld: ", loss, (long long)loss_step);
    else snprintf(when, sizeof when, "the update of step %lld", (long long)step);
    nb_error("%sthe weights of '%s' became NaN or infinite in %s (a gradient that was not finite, or too large for "
             "the learning rate); the model file keeps its last checkpoint (try a smaller --lr)", at, names[i], when);
    return true;
}

/* --grad-clip computes the gradient's norm anyway: a NaN or inf one stops the
 * run before the step, naming the first parameter whose gradient holds it
 * (nb_errmsg(); returns -1). */
static int report_nonfinite_gradient(const trainer *T, int64_t step, double loss, double norm) {
    const char **names;
    nb_net_param_names(T->net, &names);
    int i = 0;
    while (i + 1 < T->np && isfinite(nb_grad_norm(T->params + i, 1))) i++;
    return nb_error("the gradient became %s at step %lld while the loss was %g: first in '%s' (an overflow in the "
                    "backward pass); no step was taken and the model file keeps its last checkpoint (try a smaller "
                    "--lr)", isnan(norm) ? "NaN" : "infinite", (long long)step, loss, names[i]);
}

/* The shards a batch of B examples is cut into with the threads at hand. */
static int shard_count(int64_t B) {
    int64_t t = nb_get_threads();
    if (t > B / MIN_SHARD) t = B / MIN_SHARD;
    if (t > MAX_SHARDS) t = MAX_SHARDS;
    return t < 1 ? 1 : (int)t;
}

static void shards_free(trainer *T) {
    for (int k = 1; k < T->shards; k++) {
        nb_net_free(T->reps[k]);
        nb_arena_free(T->arenas[k]);
        free(T->rep_grads[k]);
    }
    T->shards = 1;
}

static void shards_init(trainer *T) {
    T->shards = shard_count(T->s.batch);
    T->reps[0] = T->net;
    for (int k = 1; k < T->shards; k++) {
        T->reps[k] = nb_net_replica(T->net);
        T->arenas[k] = nb_arena_new();
        nb_param *rp;
        int n = nb_net_params(T->reps[k], &rp);
        if (!(T->rep_grads[k] = malloc(sizeof(nb_tensor *) * (size_t)(n ? n : 1)))) nb_oom("the data-parallel replicas", 0);
        for (int i = 0; i < n; i++) T->rep_grads[k][i] = rp[i].t->grad;
    }
}

/* Forward and backward of one batch (rows of the training set): the loss
 * (the batch mean), its data part and the correct predictions; gradients are
 * left in the .grad of the parameters of T->used replicas, for the optimizer
 * step to sum (nb_optim_step_zero). Shards weigh their mean loss by their share
 * of the batch, so the summed gradient is the full batch's. Each shard draws
 * dropout masks from a stream of its own, seeded from the run's dropout
 * stream: the same seed and thread count give the same run. *bad is the
 * network whose forward produced a non-finite loss. */
static double train_batch(trainer *T, const int64_t *rows, int64_t m, int32_t *y, double *data_loss,
                          int64_t *correct, nb_net **bad) {
    int S = m >= (int64_t)T->shards * MIN_SHARD ? T->shards : 1;
    T->used = S;
    if (S == 1 && nb_dist_size() == 1) {
        nb_tensor *x = nb_to(nb_dataset_batch(&T->train, rows, m, y), T->device); /* the batch's one move */
        nb_tensor *loss = batch_loss(T, T->net, &T->s.rng_dropout, x, y, data_loss, correct);
        double l = nb_item(loss);
        *bad = isfinite(l) ? NULL : T->net;
        if (!*bad) nb_backward(loss);
        return l;
    }
    uint64_t seed = (uint64_t)nb_rng_u32(&T->s.rng_dropout) << 32 | nb_rng_u32(&T->s.rng_dropout);
    double loss[MAX_SHARDS], dl[MAX_SHARDS];
    int64_t right[MAX_SHARDS] = {0};
#pragma omp parallel for num_threads(S) schedule(static, 1)
    for (int k = 0; k < S; k++) {
        nb_arena *mine = k ? nb_arena_use(T->arenas[k]) : NULL;
        int64_t lo = m * k / S, hi = m * (k + 1) / S;
        nb_rng rng;
        nb_rng_seed(&rng, seed, (uint64_t)nb_dist_rank() * MAX_SHARDS + (uint64_t)k); /* a stream per rank and shard */
        nb_tensor *x = nb_dataset_batch(&T->train, rows + lo, hi - lo, y + lo);
        nb_tensor *l = batch_loss(T, T->reps[k], &rng, x, y + lo, &dl[k], &right[k]);
        loss[k] = nb_item(l);
        if (isfinite(loss[k])) nb_backward(nb_mul_scalar(l, (float)(hi - lo) / (float)m));
        if (k) nb_arena_use(mine);
    }
    double total = 0;
    *data_loss = 0;
    *bad = NULL;
    for (int k = 0; k < S; k++) {
        double w = (double)(m * (k + 1) / S - m * k / S) / (double)m;
        total += w * loss[k];
        *data_loss += w * dl[k];
        *correct += right[k];
        if (!isfinite(loss[k]) && !*bad) *bad = T->reps[k];
    }
    return total;
}

/* Frees the step's tensors in every shard's arena. */
static void reset_arenas(trainer *T) {
    for (int k = 1; k < T->shards; k++) {
        nb_arena *old = nb_arena_use(T->arenas[k]);
        nb_arena_reset();
        nb_arena_use(old);
    }
    nb_arena_reset();
}

/* This run's totals of the epoch in progress, summed over the ranks, into
 * the epoch's (s->epoch_*, which a checkpoint in the middle of it keeps, so
 * that a resumed epoch's line and row are those of an uninterrupted one).
 * The driver's gather: every rank, before a report and a checkpoint. */
static void fold_epoch(void *ctx) {
    trainer *T = ctx;
    nb_train_state *s = &T->s;
    double sums[3] = {T->loss_sum, (double)T->seen, (double)T->correct};
    nb_dist_sum(sums, 3);
    s->epoch_loss = sums[0] + s->epoch_loss;
    s->epoch_seen = (int64_t)sums[1] + s->epoch_seen;
    s->epoch_correct = (int64_t)sums[2] + s->epoch_correct;
    T->run_seen += (int64_t)sums[1];
    T->loss_sum = 0, T->seen = 0, T->correct = 0;
}

/* --- the driver's callbacks ------------------------------------------------ */

/* The order of an epoch comes from the shuffle stream as it was when the
 * epoch began, so a resumed epoch replays the same batches. */
static void begin_epoch(void *ctx) {
    trainer *T = ctx;
    nb_train_state *s = &T->s;
    s->rng_epoch = s->rng_shuffle;
    for (int64_t i = 0; i < T->train.n; i++) T->perm[i] = i;
    if (s->shuffle) nb_rng_shuffle(&s->rng_shuffle, T->perm, T->train.n);
    T->loss_sum = 0, T->seen = 0, T->correct = 0, T->run_seen = 0;
}

/* One optimizer step on the batch at the epoch's position. */
static int take_step(void *ctx, double *loss) {
    trainer *T = ctx;
    nb_train_state *s = &T->s;
    const nb_cli_loop *L = &T->loop;
    int64_t n = T->train.n, B = s->batch, start = L->epoch_pos * B, m = n - start < B ? n - start : B, lo, mr;
    nb_dist_shard(m, &lo, &mr); /* under mpirun, this rank's rows of the global batch */
    double dl = 0;
    nb_net *bad = NULL;
    nb_optim_set_lr(T->opt, (float)nb_train_lr(s, L->step, L->epoch_steps));
    *loss = mr ? train_batch(T, T->perm + start + lo, mr, T->y, &dl, &T->correct, &bad) : 0;
    /* Under mpirun: the mean gradient of the global batch on every rank. */
    int nrep = nb_dist_allreduce_grads(T->params, T->np, T->rep_grads + 1, mr ? T->used - 1 : 0, mr, m, bad != NULL);
    if (nrep < 0) {
        if (!bad) nb_error("the loss became non-finite at step %lld on rank %d (try a smaller --lr)", (long long)L->step,
                           nb_dist_bad_rank());
        else if (!report_nonfinite_weights(T, L->step, L->step, *loss)) report_nonfinite(bad, L->step, *loss);
        reset_arenas(T);
        return -1;
    }
    if (s->grad_clip > 0) {
        /* The norm is the summed gradient's: the replicas' are added
         * in first (the pass the optimizer would make). */
        nb_net_replica_reduce(T->net, T->reps + 1, nrep);
        nrep = 0;
        float norm = nb_clip_grad_norm(T->params, T->np, (float)s->grad_clip);
        /* A norm beyond float32 is inf as a float, but the clip
         * (in double) has scaled such gradients down: ask again. */
        if (!isfinite(norm) && !isfinite(nb_grad_norm(T->params, T->np))) {
            report_nonfinite_gradient(T, L->step, *loss, norm);
            reset_arenas(T);
            return -1;
        }
    }
    /* Sums the replicas' gradients, steps and zeroes them, in one pass. */
    nb_optim_step_zero(T->opt, T->rep_grads + 1, nrep);
    reset_arenas(T);
    s->images += m;
    T->loss_sum += dl * (double)mr;
    T->seen += mr;
    return 0;
}

/* The epoch's line and log row, after the test set's evaluation: at its
 * end, or "(partial)" where --steps stopped the run inside it. */
static int report(void *ctx, bool finished) {
    trainer *T = ctx;
    nb_train_state *s = &T->s;
    const nb_cli_loop *L = &T->loop;
    int64_t epoch = finished ? L->epoch : L->epoch + 1; /* the driver counts a finished one */
    double secs = nb_cli_now() - L->epoch_t0;
    nb_net_evaluate(T->net, &T->test, EVAL_BATCH, (float)s->adversarial, &T->ev);
    const nb_eval_result *ev = &T->ev;
    double train_loss = s->epoch_loss / (double)s->epoch_seen, train_acc = (double)s->epoch_correct / (double)s->epoch_seen;
    fprintf(stderr, "epoch %lld/%lld%s: train loss %.4f acc %.4f | test loss %.4f acc %.4f", (long long)epoch,
            (long long)s->epochs, finished ? "" : " (partial)", train_loss, train_acc, ev->loss, ev->accuracy);
    if (s->adversarial > 0) fprintf(stderr, " adv acc %.4f", ev->adv_accuracy);
    if (s->l1_activation > 0) fprintf(stderr, " zeros %.1f%%", 100 * ev->zero_fraction);
    fprintf(stderr, " | %.0f img/s | %.1f s\n", (double)T->run_seen / (secs > 0 ? secs : 1), secs);
    nb_train_log_row(s, epoch, train_loss, train_acc, ev, nb_cli_now() - L->t0);
    if (finished) {
        /* The checkpoint records finished epochs and where the next starts;
         * a run stopped mid-epoch by --steps keeps the epoch's start and
         * position instead, so a resume replays the same order. */
        s->epoch_loss = 0, s->epoch_seen = s->epoch_correct = 0;
        s->rng_epoch = s->rng_shuffle;
    }
    return 0;
}

static int save(void *ctx, double seconds, bool final) {
    trainer *T = ctx;
    nb_train_state *s = &T->s;
    const nb_cli_loop *L = &T->loop;
    if (!s->out) return 0;
    if (report_nonfinite_weights(T, L->step, -1, 0)) return -1;
    s->step = L->step, s->epoch = L->epoch, s->epoch_pos = L->epoch_pos;
    return nb_train_state_save(s, T->net, T->opt, s->out);
}

static void progress(void *ctx, double loss, char *extra, size_t n) {
    trainer *T = ctx;
    snprintf(extra, n, "loss %.4f  %.0f img/s", T->loss_sum / (double)T->seen,
             (double)T->seen / (nb_cli_now() - T->loop.epoch_t0));
}

static int run(trainer *T, const char *cmd) {
    nb_train_state *s = &T->s;
    int64_t n = T->train.n, B = s->batch;
    T->perm = malloc(sizeof(int64_t) * (size_t)n);
    T->y = malloc(sizeof(int32_t) * (size_t)B);
    if (!T->perm || !T->y) nb_oom("the order of the training examples", 0);
    /* --steps, which a checkpoint drops (it limits one invocation), so that
     * the command printed after a signal ends where this run would have. */
    char steps[24];
    snprintf(steps, sizeof steps, "%lld", (long long)s->max_steps);
    nb_cli_resume_command(T->again, sizeof T->again, "train", NULL, 0, s->out, "--log", s->log, "--steps",
                          s->max_steps > 0 ? steps : NULL, NULL);
    nb_cli_loop *L = &T->loop;
    *L = (nb_cli_loop){.cmd = cmd, .label = "train", .unit = "nats", .loss_scale = 1, .out = s->out, .again = T->again,
                       .step = s->step, .max_steps = s->max_steps > 0 ? s->max_steps : -1, .loss_share = 1,
                       .csv = &s->csv, .epochs = s->epochs, .epoch = s->epoch, .epoch_pos = s->epoch_pos,
                       .epoch_steps = (n + B - 1) / B, .ctx = T, .take_step = take_step, .save = save,
                       .begin_epoch = begin_epoch, .gather = fold_epoch, .report = report,
                       .progress = progress};
    double t_start = nb_cli_now();
    int64_t images0 = s->images; /* of the runs this one resumes */
    int rc = 0;
    /* A run left nothing to train (its --steps or --epochs reached) writes
     * nothing: it reports the model's test figures. */
    if (s->epoch < s->epochs && !(s->max_steps > 0 && s->step >= s->max_steps)) rc = nb_cli_loop_run(L);
    if (!rc) {
        nb_eval_result *ev = &T->ev;
        if (!ev->n) nb_net_evaluate(T->net, &T->test, EVAL_BATCH, (float)s->adversarial, ev);
        double total = nb_cli_now() - t_start, train_seconds = L->train_secs;
        fprintf(stderr, "test accuracy %.4f, test loss %.4f (%lld steps, %.1f s training, %.1f s in all)%s%s\n",
                ev->accuracy, ev->loss, (long long)L->step, train_seconds, total, s->out ? "; model: " : "",
                s->out ? s->out : "");
        if (s->json) {
            printf("{\"test_accuracy\": %.6f, \"test_loss\": %.6f, \"epochs\": %lld, \"steps\": %lld, \"seconds\": %.3f, "
                   "\"train_seconds\": %.3f, \"train_images_per_second\": %.1f, \"zero_activation_fraction\": %.6f",
                   ev->accuracy, ev->loss, (long long)L->epoch, (long long)L->step, total, train_seconds,
                   train_seconds > 0 ? (double)(s->images - images0) / train_seconds : 0, ev->zero_fraction);
            if (s->adversarial > 0) printf(", \"adversarial_accuracy\": %.6f", ev->adv_accuracy);
            if (nb_dist_size() > 1) {
                double ar_s, ar_wait;
                int64_t ar_calls, ar_bytes;
                nb_dist_stats(&ar_s, &ar_wait, &ar_calls, &ar_bytes);
                printf(", \"ranks\": %d, \"allreduce_bytes_per_step\": %lld, \"allreduce_seconds\": %.3f, "
                       "\"allreduce_wait_seconds\": %.3f", nb_dist_size(), (long long)ar_bytes, ar_s, ar_wait);
            }
            printf("}\n");
        }
    }
    free(T->perm);
    free(T->y);
    return rc;
}

static int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    trainer T;
    memset(&T, 0, sizeof T);
    nb_train_state *s = &T.s;
    nb_train_state_defaults(s);
    long epochs = s->epochs, batch = s->batch, seed = (long)s->seed, threads = 0, steps = s->max_steps;
    long check_every = NB_DIST_CHECK_DEFAULT;
    double lr = s->lr, momentum = s->momentum, wd = s->weight_decay, l1 = s->l1_activation, adv = s->adversarial;
    double clip = s->grad_clip;
    const char *optim = s->optim, *data = s->data, *out = s->out, *log = s->log, *schedule = s->schedule;
    const char *resume = NULL, *init = NULL, *device = "cpu";
    bool shuffle = s->shuffle, nesterov = s->nesterov, json = false;
    nb_flag flags[] = {
        {"--data", NB_FLAG_STR, &data, "fashion-mnist, a folder of IDX files, or a data file (CSV, LIBSVM, .npy) with "
                                       "the label last", .meta = "DATA", .def = "required"},
        {"--epochs", NB_FLAG_INT, &epochs, "passes over the training set", .range = "[1, 1000000]"},
        {"--batch", NB_FLAG_INT, &batch, "examples per step", .range = "[1, 4096]"},
        {"--lr", NB_FLAG_FLOAT, &lr, "learning rate", .range = "(0, inf)", .def = "sgd 0.05, adam and adamw 0.001"},
        {"--optim", NB_FLAG_CHOICE, &optim, "optimizer", .range = "sgd|adam|adamw"},
        {"--schedule", NB_FLAG_CHOICE, &schedule, "learning rate over the run: cosine to 0, step (x0.1 at 50% and "
                                                  "75% of the epochs) or constant", .range = "cosine|step|constant"},
        {"--momentum", NB_FLAG_FLOAT, &momentum, "SGD momentum: v = mu v + g", .range = "[0, 1)"},
        {"--nesterov", NB_FLAG_BOOL, &nesterov, "Nesterov momentum"},
        {"--weight-decay", NB_FLAG_FLOAT, &wd, "L2 penalty on weights, not biases (eq. 7.1)", .range = "[0, inf)"},
        {"--l1-activation", NB_FLAG_FLOAT, &l1, "L1 penalty on hidden activations (eq. 7.48)", .range = "[0, inf)"},
        {"--adversarial", NB_FLAG_FLOAT, &adv, "train on clean + FGSM examples with this eps (eq. 21)", .range = "[0, 1]"},
        {"--grad-clip", NB_FLAG_FLOAT, &clip, "clip gradients to this global L2 norm; 0: none", .range = "[0, inf)"},
        NB_FLAG_SEED(&seed, "initialization, shuffling and dropout"),
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_DEVICE(&device, "where to train", "; the model file is the same either way"),
        {"--init", NB_FLAG_STR, &init, "start from the weights of this model", .meta = "MODEL"},
        {"--steps", NB_FLAG_INT, &steps, "stop after this many optimizer steps", .range = "[1, inf)",
         .def = "none: --epochs decides"},
        {"--shuffle", NB_FLAG_BOOL, &shuffle, "a new random order of the examples every epoch (--no-shuffle: file order)"},
        NB_FLAG_MODEL_OUT(&out, "model file, rewritten atomically after every epoch"),
        NB_FLAG_LOG(&log, "CSV log, one row per epoch (see nabla plot)"),
        NB_FLAG_RESUME(&resume, ""),
        NB_FLAG_DIST_CHECK(&check_every),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "NET.cfg --data DATA ", .about = ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    if (!resume && npos != 1) return nb_cli_usage_error(&c, "expected a NET.cfg that describes the network, or --resume MODEL");
    if (resume && npos) return nb_cli_usage_error(&c, "--resume takes the network from the model file; drop '%s'", pos[0]);
    if (resume && init) return nb_cli_usage_error(&c, "--resume and --init exclude each other");
    if ((rc = nb_cli_device(&c, device, &T.device)) != NB_CLI_OK) return rc;
    if (nb_dist_init(cmd, check_every)) return 1; /* joins the job when run by mpirun */
    if (T.device == NB_CUDA && nb_dist_size() > 1)
        return nb_cli_fail(cmd, "--device cuda trains in one process; running it under mpirun is not supported yet");
    nb_safetensors *ckpt = NULL;
    rc = 1;
    if (resume) {
        /* The checkpoint's settings are the defaults; flags given now override
         * them, but for those its state cannot follow (checked below). */
        T.net = nb_net_load(resume, &ckpt);
        if (!T.net) return nb_cli_fail(cmd, "%s", nb_errmsg());
        if (nb_cli_not_dqn(ckpt, resume, "a checkpoint of nabla train", ": a DQN run resumes with nabla dqn train --resume") ||
            nb_train_state_read(s, ckpt, resume)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto out;
        }
        if (nb_cli_resume_seed(&c, resume, s->seed, &seed)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto out;
        }
        /* The checkpoint's settings meet the flags' ranges, as given ones do. */
#define KEEP(flag, var, val)                                     \
    if (!nb_cli_flag(&c, flag)->given) var = val;                \
    if (nb_cli_check_stored(&c, flag, resume)) {                 \
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());                \
        goto out;                                                \
    }
        KEEP("--epochs", epochs, s->epochs);
        KEEP("--batch", batch, s->batch);
        KEEP("--lr", lr, s->lr);
        KEEP("--optim", optim, s->optim);
        KEEP("--schedule", schedule, s->schedule);
        KEEP("--momentum", momentum, s->momentum);
        KEEP("--nesterov", nesterov, s->nesterov);
        KEEP("--weight-decay", wd, s->weight_decay);
        KEEP("--l1-activation", l1, s->l1_activation);
        KEEP("--adversarial", adv, s->adversarial);
        KEEP("--grad-clip", clip, s->grad_clip);
        /* --steps: none (0), which nb_train_state_read leaves: it limits one invocation. */
        KEEP("--shuffle", shuffle, s->shuffle);
        KEEP("--data", data, s->data);
        KEEP("--log", log, s->log);
#undef KEEP
        /* The optimizer's state must be one the new settings can go on
         * with: Adam's moments are no SGD velocity, and SGD without momentum
         * kept none (Adam and AdamW share theirs). */
        bool was_sgd = !strcmp(s->optim, "sgd"), is_sgd = !strcmp(optim, "sgd");
        if (was_sgd != is_sgd) {
            rc = nb_cli_usage_error(&c, "%s was trained with --optim %s: --optim %s cannot take over its state (drop "
                                        "--optim, or start a new run from its weights with --init %s)", resume, s->optim,
                                    optim, resume);
            goto out;
        }
        if (is_sgd && s->momentum == 0 && momentum > 0) {
            rc = nb_cli_usage_error(&c, "%s was trained with --momentum 0 and holds no velocity for --momentum %g (drop "
                                        "--momentum, or start a new run from its weights with --init %s)", resume,
                                    momentum, resume);
            goto out;
        }
        /* The checkpoint's place in the epoch counts batches of its own size:
         * another size would start elsewhere in the epoch's order (or past
         * its end, and the run would stop with nothing trained). */
        if (s->epoch_pos > 0 && batch != s->batch) {
            rc = nb_cli_usage_error(&c, "%s stopped in the middle of epoch %lld, after %lld batches of %lld: --batch "
                                        "can change only at an epoch's end (resume with --batch %lld, or none)",
                                    resume, (long long)s->epoch + 1, (long long)s->epoch_pos, (long long)s->batch,
                                    (long long)s->batch);
            goto out;
        }
    }
    if (!data) {
        rc = nb_cli_usage_error(&c, "--data is required (e.g. --data fashion-mnist)");
        goto out;
    }
    if (!nb_cli_flag(&c, "--lr")->given && !resume && strcmp(optim, "sgd")) lr = 1e-3;
    s->epochs = epochs;
    s->batch = batch;
    s->lr = lr;
    s->momentum = momentum;
    s->nesterov = nesterov;
    s->weight_decay = wd;
    s->l1_activation = l1;
    s->adversarial = adv;
    s->grad_clip = clip;
    s->seed = (uint64_t)seed;
    s->max_steps = steps;
    s->shuffle = shuffle;
    s->optim = optim;
    s->schedule = schedule;
    s->data = data;
    s->out = out ? out : resume;
    s->log = log;
    if (nb_dist_rank()) s->out = NULL, s->log = NULL; /* rank 0 alone writes */
    s->json = json;
    if (!out && resume && nb_cli_check_output(cmd, "--resume", resume, NULL)) {
        nb_cli_usage_line(&c);
        rc = 2; /* as the parser's own check of --out */
        goto out;
    }
    nb_cli_threads(cmd, threads, 0);
    nb_cli_catch_interrupts(); /* from here on, SIGINT and SIGTERM stop between steps */

    if (nb_dataset_load(data, true, &T.train) || nb_dataset_load(data, false, &T.test)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto out;
    }
    if (!resume) {
        T.net = nb_net_load_cfg(pos[0]);
        if (!T.net) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto out;
        }
        nb_train_state_seed(s);
        nb_rng init_rng;
        nb_rng_seed(&init_rng, s->seed, 0);
        if (nb_net_build(T.net, T.train.nd, T.train.shape, &init_rng)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto out;
        }
        if (init && nb_train_load_weights(T.net, init)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto out;
        }
    }
    /* Both splits: an IDX folder's test labels are counted on their own. */
    const char *model = resume ? resume : pos[0];
    if (nb_net_check_data(T.net, &T.train, model, data) || nb_net_check_data(T.net, &T.test, model, data)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto out;
    }
    /* Another --data mid-epoch may end before the checkpoint's place in it:
     * the run would stop there with the rest of the epochs untrained. */
    if (s->epoch_pos > 0 && s->epoch_pos >= (T.train.n + s->batch - 1) / s->batch) {
        rc = nb_cli_fail(cmd, "%s stopped after %lld batches of epoch %lld, and %s has only %lld training examples "
                              "(%lld batches of %lld): resume it on the data it was trained on (%s)", resume,
                         (long long)s->epoch_pos, (long long)s->epoch + 1, data, (long long)T.train.n,
                         (long long)((T.train.n + s->batch - 1) / s->batch), (long long)s->batch,
                         nb_st_meta(ckpt, "nabla.data"));
        goto out;
    }
    if (!(s->input_mean_sd > 0)) nb_train_input_stats(s, &T.train);
    T.np = nb_net_params(T.net, &T.params);
    if (T.np == 0) { /* every step would leave the network as it is */
        rc = nb_cli_fail(cmd, "%s has no trainable layer (dense, conv2d or prelu): nothing to train", model);
        goto out;
    }
    T.opt = nb_train_make_optim(s, T.params, T.np);
    if (!T.opt) { /* a setting it refuses (nb_errmsg() names it) */
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto out;
    }
    if (resume && nb_train_state_restore_optim(s, T.opt, ckpt, resume)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto out;
    }
    if (s->epoch >= s->epochs) {
        fprintf(stderr, "%s: already trained for %lld epochs (raise --epochs to continue)\n", resume ? resume : "model",
                (long long)s->epoch);
    }
    if (!json)
        fprintf(stderr, "training %s on %s: %lld examples, %lld test, %d parameter tensors, %s, batch %lld%s%s\n",
                resume ? resume : pos[0], data, (long long)T.train.n, (long long)T.test.n, T.np, s->optim,
                (long long)s->batch, T.device == NB_CUDA ? ", on " : "", nb_device_name(T.device));
    if (nb_train_log_open(s, resume != NULL)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto out;
    }
    if (T.device == NB_CUDA) {
        /* One GPU takes the whole batch: no replicas. The optimizer's state
         * follows the parameters there on its first step. */
        nb_net_to(T.net, NB_CUDA);
        T.shards = 1;
        T.reps[0] = T.net;
    } else {
        shards_init(&T);
    }
    rc = run(&T, cmd);
    shards_free(&T);
out:
    nb_train_state_free(s);
    nb_optim_free(T.opt);
    nb_net_free(T.net);
    nb_dataset_free(&T.train);
    nb_dataset_free(&T.test);
    nb_st_free(ckpt);
    return rc;
}

NB_COMMAND("train", cmd_train, "train a network described by NET.cfg (Fashion-MNIST, IDX, CSV, LIBSVM, .npy)")
