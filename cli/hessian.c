/* hessian.c — `nabla hessian`: the loss landscape of a trained model at its
 * weights (notes §1.3, in the spirit of PyHessian): the gradient, the top
 * Hessian eigenvalues (Lanczos), the trace (Hutchinson), a condition
 * estimate and the optimal step of eq. 4.9-4.10, all from exact
 * Hessian-vector products on a fixed batch, without forming H. */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nb_net *net;
    nb_tensor *x;     /* the batch, persistent: valid in the library's private arenas */
    int32_t *y;
} hess_batch;

/* The loss `nabla train` minimizes (mean cross-entropy), on the whole batch
 * in every call so nothing but the parameters lives across calls. Dropout
 * is off: the curvature tools need the same f for the same weights. */
static nb_tensor *batch_loss(nb_tensor **params, int n, void *ctx) {
    (void)params; /* they are the network's own tensors: the forward reads them */
    (void)n;
    hess_batch *b = ctx;
    return nb_cross_entropy(nb_net_forward(b->net, nb_detach(b->x), false, NULL), b->y);
}

/* A progress bar over the stages, weighted by their expected number of
 * Hessian-vector products (the cost unit); shown on a terminal only. */
typedef struct {
    int64_t done, total;
    double t0;
    bool on;
} progress;

static void advance(progress *p, int64_t units, const char *next) {
    p->done += units;
    if (p->on) nb_cli_progress("hessian", p->done, p->total, nb_cli_now() - p->t0, next, false);
}

/* JSON has no inf: eps* when g^T H g <= 0 is null */
#define js_num(x) nb_cli_json_number(stdout, "%.10g", x)

static const char *ABOUT =
    "At the model's weights, on the first N training examples (so any tool can reproduce the\n"
    "batch) and the loss of `nabla train` (mean cross-entropy, dropout off): the loss, ||g||,\n"
    "the top K eigenvalues of the Hessian w.r.t. all parameters (Lanczos on exact Hessian-vector\n"
    "products), the smallest one, a condition estimate (eq. 4.2 when H is definite; infinite when\n"
    "lambda_min is 0 within float32 rounding, 1e-4 |lambda|max; lambda_max/|lambda_min| when H is\n"
    "indefinite), tr(H) with its standard error (--trace), and eps* = g^T g / g^T H g (eq. 4.10)\n"
    "with the decrease of the loss after a step of eps* along -g as eq. 4.9 predicts it and as it is.\n"
    "JSON fields: loss, grad_norm, top_eigenvalues (descending), lambda_min, condition_estimate,\n"
    "curvature, trace, trace_std_err, epsilon_star, predicted_decrease, actual_decrease, ...\n"
    "(null where a value does not exist or is infinite: trace without --trace, eps* when\n"
    "g^T H g <= 0, the condition number of a singular H).";

static int cmd_hessian(int argc, char **argv) {
    const char *cmd = "hessian", *data = NULL;
    long batch = 1000, top = 5, samples = 100, seed = 1, max_iter = 0, threads = 0;
    bool json = false, trace = false;
    nb_flag flags[] = {
        {"--data", NB_FLAG_STR, &data, "fashion-mnist, an IDX folder, or a data file (its training split)",
         .meta = "DATA", .def = "required"},
        {"--batch", NB_FLAG_INT, &batch, "use the first N training examples, in file order (all of them if fewer)",
         .range = "[1, inf)"},
        {"--top", NB_FLAG_INT, &top, "number of largest Hessian eigenvalues", .range = "[1, 1000]"},
        {"--trace", NB_FLAG_BOOL, &trace, "also estimate tr(H) by Hutchinson's method"},
        {"--samples", NB_FLAG_INT, &samples, "Rademacher vectors for --trace", .range = "[1, 1000000]"},
        {"--max-iter", NB_FLAG_INT, &max_iter, "Lanczos steps at most, at least --top; memory: N x parameters doubles",
         .range = "[1, 100000]", .def = "2 --top + 60 for the top eigenvalues, 62 for the smallest"},
        NB_FLAG_SEED(&seed, "the Lanczos start vectors and Hutchinson's vectors"),
        NB_FLAG_THREADS(&threads, "all cores"),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL --data DATA ", .about = ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if (!data) return nb_cli_usage_error(&c, "--data is required (e.g. --data fashion-mnist)");
    if (max_iter && max_iter < top)
        return nb_cli_usage_error(&c, "--max-iter: expected at least --top (%ld), got %ld", top, max_iter);
    bool explicit_batch = nb_cli_flag(&c, "--batch")->given;
    nb_cli_threads(cmd, threads, 0);
    const char *model = pos[0];

    nb_net *net = nb_cli_load_classifier(model, NULL);
    if (!net) return nb_cli_fail(cmd, "%s", nb_errmsg());
    nb_dataset d;
    if (nb_dataset_load(data, true, &d)) {
        nb_net_free(net);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    int rc = 0;
    hess_batch hb = {net, NULL, NULL};
    nb_tensor **params = NULL, *top_vals = NULL, *min_val = NULL;
    if (nb_net_check_data(net, &d, model, data)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (batch > d.n) {
        if (explicit_batch)
            fprintf(stderr, "nabla hessian: --batch %ld: %s has %lld training examples; using all of them\n", batch,
                    data, (long long)d.n);
        batch = (long)d.n;
    }
    /* The batch is copied out as a persistent tensor and the data set
     * released: only the batch and the Lanczos vectors stay in memory. */
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)batch);
    hb.y = malloc(sizeof(int32_t) * (size_t)batch);
    if (!idx || !hb.y) {
        free(idx);
        rc = nb_cli_fail(cmd, "out of memory for a batch of %ld", batch);
        goto done;
    }
    for (long i = 0; i < batch; i++) idx[i] = i;
    hb.x = nb_tensor_clone(nb_dataset_batch(&d, idx, batch, hb.y));
    free(idx);
    nb_arena_reset();
    nb_dataset_free(&d);
    memset(&d, 0, sizeof d);

    nb_param *np;
    int n = nb_net_params(net, &np);
    int64_t N = 0;
    params = nb__xmalloc("the parameter list", (size_t)n, sizeof(nb_tensor *));
    for (int k = 0; k < n; k++) N += (params[k] = np[k].t)->size;
    if (n < 1) {
        rc = nb_cli_fail(cmd, "%s: the network has no parameters", model);
        goto done;
    }
    if (top > N) {
        rc = nb_cli_fail(cmd, "--top: expected at most the network's %lld parameters, got %ld", (long long)N, top);
        goto done;
    }
    int64_t m_top = max_iter ? max_iter : 2 * top + 60, m_min = max_iter ? max_iter : 62;
    if (m_top > N) m_top = N;
    if (m_min > N) m_min = N;

    double t0 = nb_cli_now();
    progress pr = {0, 3 + m_top + m_min + (trace ? samples : 0), t0, nb_cli_tty()};
    advance(&pr, 0, "gradient and eps*");

    /* eq. 4.9-4.10 along -g: loss, ||g||, g^T H g, eps*, predicted and actual loss. */
    nb_step_report st;
    if (nb_optimal_step(batch_loss, &hb, params, n, &st)) {
        rc = nb_cli_fail(cmd, "%s: %s", model, nb_errmsg());
        goto done;
    }
    advance(&pr, 3, "top eigenvalues (Lanczos)");

    nb_rng rng_top, rng_min, rng_tr;
    nb_rng_seed(&rng_top, (uint64_t)seed, 1);
    nb_rng_seed(&rng_min, (uint64_t)seed, 2);
    nb_rng_seed(&rng_tr, (uint64_t)seed, 3);
    nb_eigs_opts eo = {.max_steps = (int)m_top, .rng = &rng_top};
    int used_top = nb_hessian_eigs(batch_loss, &hb, params, n, (int)top, &eo, &top_vals, NULL);
    if (used_top < 0) {
        rc = nb_cli_fail(cmd, "%s: %s", model, nb_errmsg());
        goto done;
    }
    advance(&pr, m_top, "smallest eigenvalue (Lanczos)");
    nb_eigs_opts mo = {.max_steps = (int)m_min, .smallest = true, .rng = &rng_min};
    int used_min = nb_hessian_eigs(batch_loss, &hb, params, n, 1, &mo, &min_val, NULL);
    if (used_min < 0) {
        rc = nb_cli_fail(cmd, "%s: %s", model, nb_errmsg());
        goto done;
    }
    advance(&pr, m_min, trace ? "trace (Hutchinson)" : "done");

    /* Hutchinson in chunks, for the progress bar: the chunks draw the same
     * Rademacher vectors from one generator as a single call would, and
     * their means and variances are merged exactly (Chan et al.). */
    double tr = NAN, tr_se = NAN;
    if (trace) {
        const long chunk = 10;
        double mean = 0, m2 = 0;
        long done_s = 0;
        while (done_s < samples) {
            long s = samples - done_s < chunk ? samples - done_s : chunk;
            double cm, cse;
            if (nb_hessian_trace(batch_loss, &hb, params, n, (int)s, &rng_tr, &cm, &cse)) {
                rc = nb_cli_fail(cmd, "%s: %s", model, nb_errmsg());
                goto done;
            }
            double cm2 = s > 1 ? cse * cse * (double)s * (double)(s - 1) : 0, delta = cm - mean;
            long tot = done_s + s;
            mean += delta * (double)s / (double)tot;
            m2 += cm2 + delta * delta * (double)done_s * (double)s / (double)tot;
            done_s = tot;
            advance(&pr, s, "trace (Hutchinson)");
        }
        tr = mean;
        tr_se = samples > 1 ? sqrt(m2 / (double)(samples - 1) / (double)samples) : NAN;
    }
    double secs = nb_cli_now() - t0;
    if (pr.on) nb_cli_progress("hessian", pr.total, pr.total, secs, "done", true);

    double lmax = top_vals->data[0], lmin = min_val->data[0];
    /* Float32 Hessian-vector products carry rounding noise near 1e-6 of
     * |lambda|max: as in the second-derivative test's default, an extreme
     * eigenvalue within 1e-4 of it is zero, and a ratio with it is noise. */
    double big = fmax(fabs(lmax), fabs(lmin)), ztol = 1e-4 * big, cond;
    const char *curv;
    bool definite = false;
    if (lmin > ztol || lmax < -ztol) {
        curv = lmin > 0 ? "positive definite" : "negative definite";
        cond = big / fmin(fabs(lmax), fabs(lmin)); /* eq. 4.2: max |lambda_i / lambda_j| */
        definite = true;
    } else if (lmin < -ztol && lmax > ztol) {
        curv = "indefinite";
        cond = lmax / -lmin;
    } else {
        curv = lmax > ztol ? "positive semidefinite, singular" : lmin < -ztol ? "negative semidefinite, singular"
                                                                              : "zero";
        cond = INFINITY;
    }
    double pred_dec = st.loss - st.predicted, act_dec = st.loss - st.actual;
    FILE *o = json ? stderr : stdout;
    fprintf(o, "%s on the first %ld training examples of %s: %lld parameters\n", model, batch, data, (long long)N);
    fprintf(o, "loss (mean cross-entropy) %.7g, ||g|| %.7g\n", st.loss, st.grad_norm);
    fprintf(o, "top %ld Hessian eigenvalues:", top);
    for (long i = 0; i < top; i++) fprintf(o, " %.7g", (double)top_vals->data[i]);
    fprintf(o, "  (Lanczos, %d Hessian-vector products%s)\n", used_top,
            used_top >= m_top && m_top < N ? "; the step limit was reached, the smaller ones may be rough" : "");
    fprintf(o, "smallest eigenvalue %.7g (Lanczos, %d products%s)\n", lmin, used_min,
            used_min >= m_min && m_min < N ? "; the step limit was reached: the true one is at most this" : "");
    if (definite)
        fprintf(o, "H is %s: condition number (eq. 4.2, max |lambda_i / lambda_j|) %.7g\n", curv, cond);
    else if (isinf(cond))
        fprintf(o, "H is %s (|lambda_min| <= 1e-4 |lambda|max, zero within float32 rounding): eq. 4.2's condition "
                   "number is infinite\n", curv);
    else
        fprintf(o, "H is indefinite (negative curvature along some directions): condition estimate "
                   "lambda_max / |lambda_min| = %.7g, the ratio of the extreme curvatures (eq. 4.2's max |lambda_i / "
                   "lambda_j| is larger, set by the eigenvalues nearest 0)\n", cond);
    if (trace)
        fprintf(o, "trace %.7g +- %.3g (Hutchinson, %ld Rademacher vectors; std. error)\n", tr, tr_se, samples);
    if (isfinite(st.epsilon)) {
        fprintf(o, "eps* = g^T g / g^T H g = %.7g (eq. 4.10; g^T H g = %.7g)\n", st.epsilon, st.gHg);
        fprintf(o, "step of eps* along -g: predicted loss %.7g (eq. 4.9, decrease %.7g), actual loss %.7g (decrease %.7g)\n",
                st.predicted, pred_dec, st.actual, act_dec);
    } else {
        fprintf(o, "g^T H g = %.7g <= 0: eq. 4.9 has no minimum along -g, so there is no eps* (eq. 4.10)\n", st.gHg);
    }
    fprintf(o, "(%.2f s)\n", secs);
    if (json) {
        printf("{\"examples\": %ld, \"parameters\": %lld, \"loss\": ", batch, (long long)N);
        js_num(st.loss);
        printf(", \"grad_norm\": ");
        js_num(st.grad_norm);
        printf(", \"top_eigenvalues\": [");
        for (long i = 0; i < top; i++) {
            if (i) printf(", ");
            js_num(top_vals->data[i]);
        }
        printf("], \"lambda_min\": ");
        js_num(lmin);
        printf(", \"condition_estimate\": ");
        js_num(cond);
        printf(", \"curvature\": \"%s\"", curv);
        printf(", \"trace\": ");
        js_num(tr);
        printf(", \"trace_std_err\": ");
        js_num(tr_se);
        printf(", \"trace_samples\": %ld, \"gHg\": ", trace ? samples : 0);
        js_num(st.gHg);
        printf(", \"epsilon_star\": ");
        js_num(st.epsilon);
        printf(", \"predicted_loss\": ");
        js_num(st.predicted);
        printf(", \"actual_loss\": ");
        js_num(st.actual);
        printf(", \"predicted_decrease\": ");
        js_num(pred_dec);
        printf(", \"actual_decrease\": ");
        js_num(act_dec);
        printf(", \"hvp_top\": %d, \"hvp_min\": %d, \"seconds\": %.3f}\n", used_top, used_min, secs);
    }
done:
    nb_tensor_free(top_vals);
    nb_tensor_free(min_val);
    nb_tensor_free(hb.x);
    free(hb.y);
    free(params);
    nb_dataset_free(&d);
    nb_net_free(net);
    return rc;
}

NB_COMMAND("hessian", cmd_hessian, "loss landscape of a model: top Hessian eigenvalues, trace, eps* (eq. 4.10)")
