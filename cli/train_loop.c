/* train_loop.c — the step loop that the step-driven training commands
 * (charrnn train, wavenet train) share, so that each of them is only its
 * data, its step and its validation:
 *   - the budget: --steps N, or --minutes M of this run;
 *   - every --eval-every steps and at the end: the validation figure, one
 *     line on stderr, one row of the CSV log, then the log and the
 *     checkpoint, each written atomically (a resumed run's log equals an
 *     uninterrupted run's);
 *   - SIGINT/SIGTERM: the step in progress finishes, the checkpoint is
 *     written, and the command that resumes is printed (exit 130/143);
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

/* loss_sum over the ranks (their shares of each step's loss), kept on rank 0
 * alone: that is what a checkpoint holds, and what a resumed run restores
 * on every rank and sums again. */
static double gather_loss(nb_cli_loop *L) {
    double sum = L->loss_sum;
    nb_dist_sum(&sum, 1);
    L->loss_sum = nb_dist_rank() ? 0 : sum;
    return sum;
}

/* Validation, its line and log row, then the checkpoint and the log. */
static int evaluate(nb_cli_loop *L) {
    if (nb_cli_check_weights(L->params, L->nparams, L->names, L->step)) return nb_cli_fail(L->cmd, "%s", nb_errmsg());
    double te = nb_cli_now();
    L->val = L->validate(L->ctx);
    double sum = gather_loss(L);
    if (L->loss_n) L->train_figure = sum / (double)L->loss_n * L->loss_scale;
    double secs = L->seconds + L->train_secs;
    clear_bar();
    if (!L->quiet || nb_cli_tty())
        fprintf(stderr, "step %" PRId64 ": train %.4f %s, validation %.4f %s (%.0f s; eval %.1f s)\n", L->step,
                L->train_figure, L->unit, L->val, L->unit, secs, nb_cli_now() - te);
    if (L->csv) {
        char line[160];
        snprintf(line, sizeof line, "%" PRId64 ",%.6f,%.6f,%.3f", L->step, L->train_figure, L->val, secs);
        nb_cli_log_put(L->csv, line);
    }
    /* A row on the cadence starts the next average. A row at a stop off it
     * (--steps, --minutes) is one a resumed run drops (nb_cli_loop_logged):
     * there the sum goes on into the checkpoint, and the resumed run's next
     * row averages the steps since the cadence's last, as an uninterrupted
     * run's does. */
    if (L->step % L->eval_every == 0) L->loss_sum = 0, L->loss_n = 0;
    /* The log first: a run killed between the two writes leaves it ahead of
     * the checkpoint, which a resumed run trims (nb_cli_log_open); the other
     * way round the row would be lost. */
    if (nb_dist_any((L->csv && nb_cli_log_write(L->csv)) || L->save(L->ctx, secs)))
        return *nb_errmsg() ? nb_cli_fail(L->cmd, "%s", nb_errmsg()) : 1; /* the other ranks have no message */
    return 0;
}

int nb_cli_loop_run(nb_cli_loop *L) {
    double t0 = nb_cli_now(), deadline = L->minutes > 0 ? t0 + L->minutes * 60 : 0, last_draw = 0;
    int64_t evaluated = -1;
    if (nb_dist_rank()) L->loss_sum = 0; /* a checkpoint's sum counts once, on rank 0 */
    L->first = L->step, L->train_secs = 0, L->warm_secs = 0, L->val = NAN, L->train_figure = NAN, L->t0 = t0;
    for (;;) {
        bool done = nb_dist_any((L->max_steps >= 0 && L->step >= L->max_steps) || (deadline && nb_cli_now() >= deadline));
        /* A step due for validation is validated (and logged) before an
         * interrupt is honoured: a resumed run starts after it and would
         * never log that row. */
        if ((done || (L->step > L->first && L->step % L->eval_every == 0)) && evaluated != L->step) {
            evaluated = L->step;
            int rc = evaluate(L);
            if (rc) return rc;
        }
        if (done) return 0;
        if (nb_dist_interrupted()) { /* keep every finished step */
            clear_bar();
            gather_loss(L);
            if (nb_cli_check_weights(L->params, L->nparams, L->names, L->step))
                return nb_cli_fail(L->cmd, "%s", nb_errmsg());
            return L->save(L->ctx, L->seconds + L->train_secs) ? nb_cli_fail(L->cmd, "%s", nb_errmsg())
                                                               : nb_cli_interrupt_exit(L->cmd, L->out, L->again, deadline);
        }
        double ts = nb_cli_now(), loss;
        if (L->take_step(L->ctx, &loss)) return *nb_errmsg() ? nb_cli_fail(L->cmd, "%s", nb_errmsg()) : 1;
        L->step++;
        L->loss_sum += loss * L->loss_share;
        L->loss_n++;
        double now = nb_cli_now();
        L->train_secs += now - ts;
        if (L->step - L->first == 2) L->warm_secs = L->train_secs;
        if (nb_cli_tty() && now - last_draw > 0.2) {
            char extra[96];
            snprintf(extra, sizeof extra, "loss %.3f %s  %.2f steps/s", loss * L->loss_scale, L->unit,
                     (double)(L->step - L->first) / L->train_secs);
            if (deadline) nb_cli_progress(L->label, (int64_t)(now - t0), (int64_t)(L->minutes * 60), now - t0, extra, false);
            else nb_cli_progress(L->label, L->step, L->max_steps, now - t0, extra, false);
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
