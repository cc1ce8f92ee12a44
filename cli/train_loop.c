/* train_loop.c — the one training driver of the training commands
 * (charrnn train, wavenet train, train, chat train, dqn train), so that each of them
 * is only its data, its step, its evaluation and its checkpoint:
 *   - the budget: --steps N, --minutes M of this run, and for the
 *     epoch-driven commands --epochs (an epoch is a fixed number of steps);
 *   - the report (the validation, one line on stderr, one row of the CSV
 *     log) every --eval-every steps, or at each epoch's end, and at the end
 *     of the run; after it the log and the checkpoint, each written
 *     atomically (a resumed run's log equals an uninterrupted run's);
 *   - SIGINT/SIGTERM: the step in progress finishes, the log and the
 *     checkpoint are written, and the command that resumes is printed
 *     (exit 130/143);
 *   - the progress bar, and the rate, which leaves out the first two steps
 *     (the step arena grows during them) when there are more.
 * Under mpirun (cli/dist.c) every rank takes each decision together: the
 * stop, the interrupt, a failed save; with one process these calls are the
 * plain checks. */
#include "cli.h"
#include "dist.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void clear_bar(void) {
    if (nb_cli_tty()) fprintf(stderr, "\r\033[K");
}

/* A failure: its message (set by the callback or the check) on a line of
 * its own. A callback that printed its own leaves nb_errmsg() empty, and so
 * do ranks that only learned of another rank's failure. */
static int fail(const nb_cli_loop *L) {
    clear_bar();
    return *nb_errmsg() ? nb_cli_fail(L->cmd, "%s", nb_errmsg()) : 1;
}

static bool by_epochs(const nb_cli_loop *L) { return L->epoch_steps > 0; }

/* loss_sum over the ranks (their shares of each step's loss), kept on rank 0
 * alone: that is what a checkpoint holds, and what a resumed run restores
 * on every rank and sums again. */
static double gather_loss(nb_cli_loop *L) {
    double sum = L->loss_sum;
    nb_dist_sum(&sum, 1);
    L->loss_sum = nb_dist_rank() ? 0 : sum;
    return sum;
}

/* The report of the step-driven commands: the validation figure, the line
 * "step N: train X, validation Y" and the row "step,train,validation,seconds". */
static int step_report(nb_cli_loop *L, double secs) {
    double te = nb_cli_now();
    L->val = L->validate(L->ctx);
    if (!L->quiet || nb_cli_tty())
        fprintf(stderr, "step %" PRId64 ": train %.4f %s, validation %.4f %s (%.0f s; eval %.1f s)\n", L->step,
                L->train_figure, L->unit, L->val, L->unit, secs, nb_cli_now() - te);
    if (L->csv) {
        char line[160];
        snprintf(line, sizeof line, "%" PRId64 ",%.6f,%.6f,%.3f", L->step, L->train_figure, L->val, secs);
        nb_cli_log_put(L->csv, line);
    }
    return 0;
}

/* The report, then the log and the checkpoint. cadence: at an epoch's end,
 * or a step on the --eval-every cadence (else a stop in between); final:
 * the budget is spent, this is the run's last save. */
static int evaluate(nb_cli_loop *L, bool cadence, bool final) {
    if (L->params && nb_cli_check_weights(L->params, L->nparams, L->names, L->step)) return fail(L);
    double sum = gather_loss(L);
    if (L->gather) L->gather(L->ctx);
    if (L->loss_n) L->train_figure = sum / (double)L->loss_n * L->loss_scale;
    double secs = L->seconds + L->train_secs;
    clear_bar();
    if (L->report ? L->report(L->ctx, cadence) : step_report(L, secs)) return fail(L);
    /* A row on the cadence starts the next average. A row at a stop off it
     * (--steps, --minutes) is one a resumed run drops (nb_cli_loop_logged):
     * there the sum goes on into the checkpoint, and the resumed run's next
     * row averages the steps since the cadence's last, as an uninterrupted
     * run's does. */
    if (cadence) L->loss_sum = 0, L->loss_n = 0;
    nb_clear_error(); /* a rank told of another's failure has none of its own */
    /* The log first: a run killed between the two writes leaves it ahead of
     * the checkpoint, which a resumed run trims (nb_cli_log_open); the other
     * way round the row would be lost. */
    if (nb_dist_any((L->csv && nb_cli_log_write(L->csv)) || L->save(L->ctx, secs, final))) return fail(L);
    return 0;
}

/* The progress bar after a step: of the minutes, else of the steps, else
 * of the epoch in progress, whichever ends the run. */
static void draw(const nb_cli_loop *L, double loss, double now, double deadline) {
    char extra[160], label[48];
    if (L->progress) L->progress(L->ctx, loss, extra, sizeof extra);
    else snprintf(extra, sizeof extra, "loss %.3f %s  %.2f steps/s", loss * L->loss_scale, L->unit,
                  (double)(L->step - L->first) / L->train_secs);
    if (deadline) nb_cli_progress(L->label, (int64_t)(now - L->t0), (int64_t)(L->minutes * 60), now - L->t0, extra, false);
    else if (L->max_steps >= 0 || !by_epochs(L)) nb_cli_progress(L->label, L->step, L->max_steps, now - L->t0, extra, false);
    else {
        snprintf(label, sizeof label, "epoch %" PRId64 "/%" PRId64, L->epoch + 1, L->epochs);
        nb_cli_progress(label, L->epoch_pos, L->epoch_steps, now - L->epoch_t0, extra, false);
    }
}

int nb_cli_loop_run(nb_cli_loop *L) {
    double t0 = nb_cli_now(), deadline = L->minutes > 0 ? t0 + L->minutes * 60 : 0, last_draw = 0;
    int64_t evaluated = -1, begun = -1;
    if (nb_dist_rank()) L->loss_sum = 0; /* a checkpoint's sum counts once, on rank 0 */
    L->first = L->step, L->train_secs = 0, L->warm_secs = 0, L->val = NAN, L->train_figure = NAN, L->t0 = t0;
    L->epoch_t0 = t0;
    for (;;) {
        bool epoch_end = by_epochs(L) && L->epoch_pos >= L->epoch_steps;
        if (epoch_end) L->epoch++, L->epoch_pos = 0;
        /* The steps and epochs are the same on every rank; the clock is not. */
        bool done = (by_epochs(L) && L->epoch >= L->epochs) || (L->max_steps >= 0 && L->step >= L->max_steps) ||
                    (deadline && nb_dist_any(nb_cli_now() >= deadline));
        bool cadence = by_epochs(L) ? epoch_end : L->step % L->eval_every == 0;
        /* A step due for a report is reported (and logged) before an
         * interrupt is honoured: a resumed run starts after it and would
         * never log that row. */
        if ((done || (cadence && (epoch_end || L->step > L->first))) && evaluated != L->step) {
            evaluated = L->step;
            int rc = evaluate(L, cadence, done);
            if (rc) return rc;
        }
        if (done) return 0;
        if (nb_dist_interrupted()) { /* keep every finished step */
            clear_bar();
            gather_loss(L);
            if (L->gather) L->gather(L->ctx);
            if (L->params && nb_cli_check_weights(L->params, L->nparams, L->names, L->step)) return fail(L);
            if ((L->csv && nb_cli_log_write(L->csv)) || L->save(L->ctx, L->seconds + L->train_secs, false)) return fail(L);
            if (L->interrupted) L->interrupted(L->ctx);
            return nb_cli_interrupt_exit(L->cmd, L->out, L->again, deadline);
        }
        double ts = nb_cli_now(), loss;
        if (by_epochs(L) && begun != L->epoch) {
            begun = L->epoch, L->epoch_t0 = ts;
            if (L->begin_epoch) L->begin_epoch(L->ctx);
        }
        if (L->take_step(L->ctx, &loss)) return fail(L);
        L->step++;
        if (by_epochs(L)) L->epoch_pos++;
        L->loss_sum += loss * L->loss_share;
        L->loss_n++;
        double now = nb_cli_now();
        L->train_secs += now - ts;
        if (L->step - L->first == 2) L->warm_secs = L->train_secs;
        if (nb_cli_tty() && (now - last_draw > 0.2 || (by_epochs(L) && L->epoch_pos == L->epoch_steps))) {
            draw(L, loss, now, deadline);
            last_draw = now;
        }
    }
}

double nb_cli_loop_rate(const nb_cli_loop *L) {
    int64_t steps = L->step - L->first;
    if (steps > 2 && L->train_secs > L->warm_secs) return (double)(steps - 2) / (L->train_secs - L->warm_secs);
    return L->train_secs > 0 ? (double)steps / L->train_secs : 0;
}

int nb_cli_loop_restore(nb_cli_loop *L, const nb_safetensors *st, const char *path) {
    L->loss_sum = 0, L->loss_n = 0;
    /* An older checkpoint has neither: the next row averages the resumed
     * steps. One without the other is damaged, not older. */
    static const char *const keys[] = {"nabla.loss_sum", "nabla.loss_n"};
    int both = nb_cli_meta_together(st, path, keys, 2);
    if (both <= 0) return both;
    return nb_cli_meta_number(st, path, "nabla.loss_sum", &L->loss_sum) ||
                   nb_cli_meta_count(st, path, "nabla.loss_n", &L->loss_n)
               ? -1
               : 0;
}

int64_t nb_cli_loop_logged(const nb_cli_loop *L) { return L->step % L->eval_every ? L->step - 1 : L->step; }
