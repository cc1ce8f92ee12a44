/* fit.c — `nabla fit linreg|logreg|svm|pca|ppca|fa|gmm DATA`: the classical
 * models of notes §5, §13 and appendix B from the command line, with
 * LIBSVM's option letters for the SVM; and `nabla predict` for the model
 * files it writes. */
#include "cli.h"
#include "fit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- data ------------------------------------------------------------------- */

/* Splits X [n, c] into features [n, c - 1] and the last column. */
static int split_label(const char *what, nb_tensor **X, float **y) {
    nb_tensor *t = *X;
    int64_t n = t->shape[0], c = t->shape[1];
    if (c < 2) return nb_error("%s: one column only: no room for features and a label (--unlabeled?)", what);
    nb_tensor *f = nb_tensor_new(2, (int64_t[]){n, c - 1});
    float *yy = nb__xmalloc("the labels", (size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        memcpy(f->data + i * (c - 1), t->data + i * c, sizeof(float) * (size_t)(c - 1));
        yy[i] = t->data[i * c + c - 1];
    }
    nb_tensor_free(t);
    *X = f;
    *y = yy;
    return 0;
}

/* Whether spec names a data set with a training and a test split of its
 * own (fashion-mnist, a folder of IDX files) rather than a file. */
static bool has_splits(const char *spec) {
    return !strcmp(spec, "fashion-mnist") || nb_sniff_file(spec) == NB_FILE_FOLDER;
}

int nb_fit_load_data(const char *spec, bool train, bool labeled, int64_t min_features, nb_tensor **X, float **y) {
    *X = NULL;
    *y = NULL;
    /* The format comes from the content (the library's nb_data_kind, which
     * nb_dataset_load uses too), so whatever `nabla convert` writes reads
     * here under any name, and a file of another kind is named as such. */
    nb_file_kind kind = !strcmp(spec, "fashion-mnist") ? NB_FILE_FOLDER : nb_data_kind(spec);
    switch (kind) {
    case NB_FILE_FOLDER: { /* images: pixels / 255, labels with them */
        nb_dataset d;
        if (nb_dataset_load(spec, train, &d)) return -1;
        int64_t per = nb_shape_numel(d.nd, d.shape);
        nb_tensor *t = nb_tensor_new(2, (int64_t[]){d.n, per});
        for (int64_t i = 0; i < d.n * per; i++) t->data[i] = d.u8 ? d.u8[i] * (1.f / 255.f) : d.f32[i];
        float *yy = nb__xmalloc("the labels", (size_t)d.n, sizeof(float));
        for (int64_t i = 0; i < d.n; i++) yy[i] = (float)d.y[i];
        nb_dataset_free(&d);
        *X = t;
        *y = yy;
        return 0;
    }
    case NB_FILE_LIBSVM: return nb_libsvm_read(spec, min_features, X, y); /* the labels come with the format */
    case NB_FILE_NPY: {
        nb_tensor *t = nb_npy_read(spec);
        if (!t) return -1;
        if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
            nb_error("%s: expected a 2-D array [examples, features%s], got %d dimensions", spec,
                     labeled ? " + label" : "", t->ndim);
            nb_tensor_free(t);
            return -1;
        }
        *X = t;
        break;
    }
    case NB_FILE_CSV:
    case NB_FILE_LOG: {
        nb_csv *c = nb_csv_read_ex(spec, NB_CSV_HEADER_OPTIONAL | NB_CSV_FINITE);
        if (!c) return -1;
        if (c->nrows == 0) {
            nb_csv_free(c);
            return nb_error("%s: a header row but no rows of numbers", spec);
        }
        nb_tensor *t = nb_tensor_new(2, (int64_t[]){c->nrows, c->ncols});
        for (int64_t i = 0; i < t->size; i++) t->data[i] = (float)c->data[i];
        nb_csv_free(c);
        *X = t;
        break;
    }
    default: return -1; /* nb_data_kind said why */
    }
    if (labeled && split_label(spec, X, y)) {
        nb_tensor_free(*X);
        *X = NULL;
        return -1;
    }
    return 0;
}

/* --- output ------------------------------------------------------------------- */

static double accuracy(const float *p, const float *y, int64_t n) {
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++) ok += p[i] == y[i];
    return n ? (double)ok / (double)n : 0;
}

/* Classifies X with a fitted classifier; labels[n]. */
static void classify(const nb_classic *m, const nb_tensor *X, float *labels) {
    if (m->svm) nb_svm_predict(m->svm, X, labels);
    else if (m->logreg) nb_logreg_predict(m->logreg, X, NULL, labels);
}

/* The model's main figure on a data set: accuracy (classifiers), mean
 * squared error (linreg) or mean log-likelihood (factor models, gmm). */
static double score(const nb_classic *m, const nb_tensor *X, const float *y, const char **name) {
    int64_t n = X->shape[0];
    if (m->svm || m->logreg) {
        *name = "accuracy";
        if (!y) return NAN;
        float *p = nb__xmalloc("the predictions", (size_t)n, sizeof(float));
        classify(m, X, p);
        double a = accuracy(p, y, n);
        free(p);
        return a;
    }
    if (m->linreg) {
        *name = "mse";
        if (!y) return NAN;
        double *mu = nb__xmalloc("the predictions", (size_t)n, sizeof(double)), s = 0;
        nb_linreg_predict(m->linreg, X, mu, NULL);
        for (int64_t i = 0; i < n; i++) s += (mu[i] - y[i]) * (mu[i] - y[i]);
        free(mu);
        return s / (double)n;
    }
    *name = "loglik";
    return m->factor ? nb_factor_loglik(m->factor, X, NULL) : nb_gmm_score(m->gmm, X, NULL);
}

static void print_json_num(const char *key, double v) {
    printf(", \"%s\": ", key);
    nb_cli_json_number(stdout, "%.10g", v);
}

/* --- nabla fit ------------------------------------------------------------------ */

typedef struct {
    const char *out, *test, *method, *solver, *kernel, *covariance;
    double C, gamma, coef0, eps, cache, l2, lr, alpha, noise_var, tol, reg_covar;
    long degree, folds, epochs, max_iter, k, n_init, seed, threads;
    bool json, unlabeled, shrinking;
} fit_args;

static const char *FIT_ABOUT =
    "Models: linreg (least squares, gradient descent or Bayesian), logreg (L-BFGS or gradient descent),\n"
    "svm (C-SVC by SMO, one-vs-one), pca, ppca, fa (factor analysis), gmm (Gaussian mixture by EM).\n"
    "DATA: fashion-mnist or a folder of IDX files (the training split; its test split is scored too),\n"
    "or a LIBSVM, CSV or .npy file, told apart by content (CSV: numbers, an optional header; CSV and\n"
    ".npy [n, d + 1] hold the label in the last column unless --unlabeled).\n"
    "The SVM takes LIBSVM's svm-train letters: -c C, -g gamma, -t kernel, -d degree, -r coef0,\n"
    "-v folds, -e eps, -m cache; LIBSVM's -h 0|1 (shrinking) is --no-shrinking/--shrinking here, -h\n"
    "being help. With -v only the cross-validation accuracy is reported, as svm-train does.\n"
    "Options that name no model apply where they mean something and are ignored elsewhere.";

static const char *KINDS[] = {"linreg", "logreg", "svm", "pca", "ppca", "fa", "gmm"};

static int cmd_fit(int argc, char **argv) {
    const char *cmd = "fit";
    fit_args a = {.method = "lstsq", .solver = "lbfgs", .kernel = "rbf", .covariance = "full", .C = 1, .degree = 3,
                  .eps = 1e-3, .cache = 100, .shrinking = true, .epochs = 1000, .alpha = 0.01, .reg_covar = 1e-6,
                  .n_init = 1, .seed = 1};
    nb_flag flags[] = {
        NB_FLAG_MODEL_OUT(&a.out, "write the fitted model here"),
        {"--test", NB_FLAG_STR, &a.test, "also score the model on this data",
         .def = "the test split of fashion-mnist or an IDX folder; none for a file", .meta = "DATA"},
        {"--unlabeled", NB_FLAG_BOOL, &a.unlabeled, "CSV/.npy: every column is a feature (pca, ppca, fa, gmm)"},
        NB_FLAG_THREADS(&a.threads, "all cores"),
        NB_FLAG_JSON(&a.json),
        {"--method", NB_FLAG_CHOICE, &a.method, "linreg: least squares, gradient descent or Bayesian",
         .range = "lstsq|gd|bayes"},
        {"--l2", NB_FLAG_FLOAT, &a.l2, "linreg lstsq/gd: ridge penalty l2 ||w||^2", .range = "[0, inf)"},
        {"--lr", NB_FLAG_FLOAT, &a.lr, "linreg gd, logreg gd: step size", .range = "(0, inf)",
         .def = "linreg 0.1, logreg 0.5"},
        {"--epochs", NB_FLAG_INT, &a.epochs, "linreg gd: steps", .range = "[1, 1000000000]"},
        {"--alpha", NB_FLAG_FLOAT, &a.alpha, "linreg bayes: prior precision", .range = "(0, inf)"},
        {"--noise-var", NB_FLAG_FLOAT, &a.noise_var, "linreg bayes: noise variance", .range = "(0, inf)",
         .def = "the least-squares estimate"},
        {"--solver", NB_FLAG_CHOICE, &a.solver, "logreg: L-BFGS or gradient descent", .range = "lbfgs|gd"},
        {"--C", NB_FLAG_FLOAT, &a.C, "logreg: inverse penalty; svm: cost", .range = "(0, inf)", .letter = "-c"},
        {"--max-iter", NB_FLAG_INT, &a.max_iter, "logreg, fa, gmm: iteration limit", .range = "[1, 1000000000]",
         .def = "logreg 100 (gd 1000), fa 1000, gmm 100"},
        {"--tol", NB_FLAG_FLOAT, &a.tol, "logreg, fa, gmm: stopping tolerance", .range = "(0, inf)",
         .def = "logreg 1e-4, fa 1e-2, gmm 1e-3"},
        {"--kernel", NB_FLAG_CHOICE, &a.kernel, "svm: linear, polynomial, rbf or sigmoid, or LIBSVM's 0-3 for them",
         .range = "linear|polynomial|rbf|sigmoid|0|1|2|3", .meta = "KERNEL", .letter = "-t"},
        {"--gamma", NB_FLAG_FLOAT, &a.gamma, "svm: kernel gamma", .range = "[0, inf)", .def = "1/features",
         .letter = "-g"},
        {"--degree", NB_FLAG_INT, &a.degree, "svm: polynomial degree", .range = "[1, 1000]", .letter = "-d"},
        {"--coef0", NB_FLAG_FLOAT, &a.coef0, "svm: coef0 of the polynomial and sigmoid kernels", .letter = "-r"},
        {"--folds", NB_FLAG_INT, &a.folds, "svm: k-fold cross-validation only (no model)", .range = "[2, 1000000000]",
         .def = "none", .letter = "-v"},
        {"--eps", NB_FLAG_FLOAT, &a.eps, "svm: stopping tolerance on the KKT violation", .range = "(0, inf)",
         .letter = "-e"},
        {"--cache", NB_FLAG_FLOAT, &a.cache, "svm: kernel cache per pair of classes, in MB", .range = "(0, inf)",
         .letter = "-m"},
        {"--shrinking", NB_FLAG_BOOL, &a.shrinking, "svm: shrinking heuristics (LIBSVM's -h 1; -h 0 is --no-shrinking)"},
        {"--k", NB_FLAG_INT, &a.k, "pca, ppca, fa: latent dimensions; gmm: components", .range = "[1, 1000000]",
         .def = "pca/ppca/fa min(features, 2), gmm 1"},
        {"--covariance", NB_FLAG_CHOICE, &a.covariance, "gmm: full or diagonal covariances", .range = "full|diag"},
        {"--reg-covar", NB_FLAG_FLOAT, &a.reg_covar, "gmm: added to covariance diagonals", .range = "(0, inf)"},
        {"--n-init", NB_FLAG_INT, &a.n_init, "gmm: EM starts, the best kept", .range = "[1, 100000]"},
        NB_FLAG_SEED(&a.seed, "gmm's starts and svm -v's folds"),
    };
    nb_cli cli = {.cmd = cmd, .args = "linreg|logreg|svm|pca|ppca|fa|gmm DATA ", .about = FIT_ABOUT, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 2, .max_pos = 2};
    const char *pos[2];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    const char *kind = pos[0], *data = pos[1];
    int ki = -1;
    for (int i = 0; i < 7; i++)
        if (!strcmp(kind, KINDS[i])) ki = i;
    if (ki < 0) return nb_cli_usage_error(&cli, "unknown model '%s' (expected linreg, logreg, svm, pca, ppca, fa or gmm)", kind);
    bool supervised = ki <= 2;
    if (a.folds && ki != 2) return nb_cli_usage_error(&cli, "--folds (-v) %ld: cross-validation is for svm, not %s", a.folds, kind);
    nb_cli_threads(cmd, a.threads, 0);

    nb_tensor *X, *Xt = NULL;
    float *y, *yt = NULL;
    bool labeled = !a.unlabeled;
    if (nb_fit_load_data(data, true, labeled, 0, &X, &y)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    if (supervised && !y) {
        nb_tensor_free(X);
        return nb_cli_fail(cmd, "%s: %s needs labels (drop --unlabeled)", data, kind);
    }
    /* A data set with splits is scored on its own test split unless --test
     * names other data; a file is scored on --test only. */
    bool splits = has_splits(data);
    const char *test = a.test ? a.test : splits ? data : NULL;
    if (test && nb_fit_load_data(test, !(test == data || has_splits(test)), labeled, X->shape[1], &Xt, &yt)) {
        nb_tensor_free(X);
        free(y);
        return nb_cli_fail(cmd, "%s%s", a.test ? "--test: " : "", nb_errmsg());
    }
    int rc = 0;
    if (Xt && Xt->shape[1] != X->shape[1]) {
        rc = nb_cli_fail(cmd, "--test %s has %lld features, %s has %lld", test, (long long)Xt->shape[1], data,
                         (long long)X->shape[1]);
        goto done;
    }
    int64_t n = X->shape[0], d = X->shape[1];
    nb_classic m = {.kind = KINDS[ki]};
    double t0 = nb_cli_now(), cv = NAN;
    const char *bad = NULL;
    if (ki == 0) {
        nb_linreg_opts o = {.l2 = a.l2, .lr = a.lr, .epochs = (int)a.epochs, .prior_precision = a.alpha,
                            .noise_var = a.noise_var};
        o.method = !strcmp(a.method, "gd") ? NB_LINREG_GD : !strcmp(a.method, "bayes") ? NB_LINREG_BAYES : NB_LINREG_LSTSQ;
        m.linreg = nb_linreg_fit(X, y, &o);
    } else if (ki == 1) {
        nb_logreg_opts o = {.C = a.C, .max_iter = (int)a.max_iter, .tol = a.tol, .lr = a.lr};
        o.solver = !strcmp(a.solver, "gd") ? NB_SOLVER_GD : NB_SOLVER_LBFGS;
        m.logreg = nb_logreg_fit(X, y, &o);
    } else if (ki == 2) {
        nb_svm_opts o;
        nb_svm_default_opts(&o);
        nb_kernel_from_name(a.kernel, &o.kernel); /* one of the choices above */
        o.C = a.C;
        o.gamma = a.gamma;
        o.coef0 = a.coef0;
        o.degree = (int)a.degree;
        o.eps = a.eps;
        o.cache_mb = a.cache;
        o.shrinking = a.shrinking;
        if (a.folds) {
            cv = nb_svm_cross_validate(X, y, &o, (int)a.folds, (uint64_t)a.seed, NULL);
            if (cv < 0) bad = nb_errmsg();
        } else {
            m.svm = nb_svm_fit(X, y, &o);
        }
    } else if (ki <= 5) {
        nb_factor_opts o = {.kind = ki == 3 ? NB_FACTOR_PCA : ki == 4 ? NB_FACTOR_PPCA : NB_FACTOR_FA,
                            .k = (int)a.k, .max_iter = (int)a.max_iter, .tol = a.tol};
        if (a.k > d) {
            rc = nb_cli_usage_error(&cli, "--k %ld: expected at most the %lld features of %s", a.k, (long long)d, data);
            goto done;
        }
        m.factor = nb_factor_fit(X, &o);
    } else {
        nb_gmm_opts o = {.k = (int)a.k, .max_iter = (int)a.max_iter, .tol = a.tol, .reg_covar = a.reg_covar,
                         .n_init = (int)a.n_init, .seed = (uint64_t)a.seed, .diagonal = !strcmp(a.covariance, "diag")};
        if (a.k > n) {
            rc = nb_cli_usage_error(&cli, "--k %ld: expected at most the %lld examples of %s", a.k, (long long)n, data);
            goto done;
        }
        m.gmm = nb_gmm_fit(X, &o);
    }
    double secs = nb_cli_now() - t0;
    if (bad) {
        rc = nb_cli_fail(cmd, "%s: %s", data, bad); /* the data, as a failed fit is named below */
        goto done;
    }
    FILE *txt = a.json ? stderr : stdout;
    if (ki == 2 && a.folds) {
        fprintf(txt, "Cross Validation Accuracy = %.4f%% (%ld folds, %lld examples, %.2f s)\n", 100 * cv, a.folds,
                (long long)n, secs);
        if (a.json) {
            printf("{\"model\": \"svm\", \"examples\": %lld, \"features\": %lld, \"folds\": %ld", (long long)n,
                   (long long)d, a.folds);
            print_json_num("cv_accuracy", cv);
            print_json_num("seconds", secs);
            printf("}\n");
        }
        if (a.out) fprintf(stderr, "nabla fit: cross-validation only: no model written to %s\n", a.out);
        goto done;
    }
    if (!m.linreg && !m.logreg && !m.svm && !m.factor && !m.gmm) {
        rc = nb_cli_fail(cmd, "%s: %s", data, nb_errmsg());
        goto done;
    }
    const char *sname;
    double train = score(&m, X, y, &sname), tscore = Xt ? score(&m, Xt, yt, &sname) : NAN;
    fprintf(txt, "%s on %s: %lld examples, %lld features", kind, data, (long long)n, (long long)d);
    if (m.linreg) fprintf(txt, "; sigma^2 %.6g, log-likelihood %.6g", m.linreg->sigma2, nb_linreg_loglik(m.linreg, X, y));
    if (m.logreg) fprintf(txt, "; %d classes, %d iterations, cross-entropy %.5f", m.logreg->nclass, m.logreg->iters, m.logreg->loss);
    if (m.svm) {
        fprintf(txt, "; %d classes, %lld support vectors (", m.svm->nclass, (long long)m.svm->nsv);
        for (int c = 0; c < m.svm->nclass; c++) fprintf(txt, "%s%lld", c ? " " : "", (long long)m.svm->class_nsv[c]);
        fprintf(txt, "), %lld SMO iterations, gamma %g", (long long)m.svm->iters, m.svm->opts.gamma);
    }
    double evr = NAN;
    if (m.factor) {
        double s = 0;
        for (int r = 0; r < m.factor->k; r++) s += m.factor->variance[r];
        evr = s / m.factor->total_variance;
        fprintf(txt, "; k %d, explained variance %.4f", m.factor->k, evr);
        if (m.factor->kind == NB_FACTOR_FA) fprintf(txt, ", %d iterations", m.factor->iters);
    }
    double bic = NAN;
    if (m.gmm) {
        bic = nb_gmm_bic(m.gmm, X);
        fprintf(txt, "; k %d %s, %d iterations%s, BIC %.6g", m.gmm->k, m.gmm->diagonal ? "diag" : "full", m.gmm->iters,
                m.gmm->converged ? "" : " (not converged)", bic);
    }
    fprintf(txt, "; train %s %.6g", sname, train);
    if (Xt) fprintf(txt, ", test %s %.6g", sname, tscore);
    fprintf(txt, " (%.2f s)\n", secs);
    if (a.json) {
        printf("{\"model\": \"%s\", \"examples\": %lld, \"features\": %lld", kind, (long long)n, (long long)d);
        char key[64];
        snprintf(key, sizeof key, "train_%s", sname);
        print_json_num(key, train);
        if (Xt) {
            snprintf(key, sizeof key, "test_%s", sname);
            print_json_num(key, tscore);
        }
        if (m.linreg) print_json_num("sigma2", m.linreg->sigma2);
        if (m.logreg) printf(", \"classes\": %d, \"iterations\": %d", m.logreg->nclass, m.logreg->iters);
        if (m.svm) printf(", \"classes\": %d, \"support_vectors\": %lld, \"iterations\": %lld", m.svm->nclass,
                          (long long)m.svm->nsv, (long long)m.svm->iters);
        if (m.factor) {
            print_json_num("explained_variance_ratio", evr);
            printf(", \"iterations\": %d", m.factor->iters);
        }
        if (m.gmm) {
            print_json_num("bic", bic);
            printf(", \"iterations\": %d, \"converged\": %s", m.gmm->iters, m.gmm->converged ? "true" : "false");
        }
        print_json_num("seconds", secs);
        printf("}\n");
    }
    if (a.out) {
        char nf[32];
        snprintf(nf, sizeof nf, "%lld", (long long)n);
        if (nb_classic_save(&m, a.out, (const char *[]){"nabla.fit.data", "nabla.fit.examples"},
                            (const char *[]){data, nf}, 2))
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    nb_classic_free(&m);
done:
    nb_tensor_free(X);
    nb_tensor_free(Xt);
    free(y);
    free(yt);
    return rc;
}

NB_COMMAND("fit", cmd_fit, "fit a classical model: linreg, logreg, svm, pca, ppca, fa, gmm")

/* --- nabla predict for fitted models ---------------------------------------------- */

int nb_fit_predict(int argc, char **argv) {
    const char *cmd = "predict", *out = NULL;
    bool json = false;
    /* The model is the first argument that is not an option or --out's value. */
    const char *model = NULL;
    for (int i = 1; i < argc && !model; i++)
        if (!strcmp(argv[i], "--")) model = i + 1 < argc ? argv[i + 1] : NULL;
        else if (argv[i][0] != '-') model = argv[i];
        else if (!strcmp(argv[i], "--out")) i++;
    if (!model || nb_sniff_file(model) != NB_FILE_FIT_MODEL) return -1; /* a network: cli/eval.c predicts */
    nb_flag flags[] = {
        {"--out", NB_FLAG_OUTPUT, &out, "write the predictions here, one line per example", .def = "stdout"},
        NB_FLAG_JSON(&json),
    };
    nb_cli cli = {.cmd = cmd, .args = "MODEL DATA ",
                .about = "MODEL from `nabla fit`; DATA as for `nabla fit` (fashion-mnist or a folder of IDX files:\n"
                         "their test split; a LIBSVM, CSV or .npy file, a CSV/.npy label column being the one\n"
                         "beyond the model's features). One line per example: the class (logreg, svm), the value\n"
                         "(linreg), the most likely component (gmm) or the latent vector (pca, ppca, fa); with\n"
                         "labels, the accuracy, mean squared error or mean log-likelihood on stderr.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 2, .max_pos = 2};
    const char *pos[2];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    const char *data = pos[1];
    nb_classic m;
    if (nb_classic_load(model, &m)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int64_t d = nb_classic_features(&m);
    nb_tensor *X = NULL;
    float *y = NULL;
    int rc = 0;
    /* CSV/.npy: a label column is there when there is one column more than
     * the model's features. */
    if (nb_fit_load_data(data, !has_splits(data), false, d, &X, &y)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (!y && X->shape[1] == d + 1 && split_label(data, &X, &y)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (X->shape[1] != d) {
        rc = nb_cli_fail(cmd, "%s has %lld features, the model %s takes %lld", data, (long long)X->shape[1], model,
                         (long long)d);
        goto done;
    }
    int64_t n = X->shape[0];
    double t0 = nb_cli_now();
    /* One output per example: a label (classifiers), a value (linreg), the
     * most responsible component (gmm) or the latent vector (factor models). */
    int per = m.factor ? m.factor->k : 1;
    double *pv = nb__xmalloc("the predictions", (size_t)n * (size_t)per, sizeof(double));
    if (m.svm || m.logreg) {
        float *p = nb__xmalloc("the predictions", (size_t)n, sizeof(float));
        classify(&m, X, p);
        for (int64_t i = 0; i < n; i++) pv[i] = p[i];
        free(p);
    } else if (m.linreg) {
        nb_linreg_predict(m.linreg, X, pv, NULL);
    } else if (m.gmm) {
        double *resp = nb__xmalloc("the responsibilities", (size_t)n * (size_t)m.gmm->k, sizeof(double));
        nb_gmm_score(m.gmm, X, resp);
        for (int64_t i = 0; i < n; i++) {
            int b = 0;
            for (int c = 1; c < m.gmm->k; c++)
                if (resp[i * m.gmm->k + c] > resp[i * m.gmm->k + b]) b = c;
            pv[i] = b;
        }
        free(resp);
    } else {
        nb_factor_transform(m.factor, X, pv, NULL);
    }
    const char *sname;
    double sc = score(&m, X, y, &sname), secs = nb_cli_now() - t0;
    if (out || !json) {
        /* Built in memory and written atomically: a failed run leaves an
         * earlier file of predictions whole. */
        size_t cap = (size_t)(n * per) * 18 + 1, len = 0;
        char *text = malloc(cap);
        if (!text) {
            rc = nb_cli_fail(cmd, "out of memory for %lld predictions", (long long)(n * per));
            free(pv);
            goto done;
        }
        for (int64_t i = 0; i < n; i++)
            for (int r = 0; r < per; r++)
                len += (size_t)snprintf(text + len, cap - len, r + 1 < per ? "%.9g," : "%.9g\n", pv[i * per + r]);
        if (out && nb_write_file_atomic(out, text, len)) rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        else if (!out && fwrite(text, 1, len, stdout) != len) rc = nb_cli_fail(cmd, "writing the predictions failed");
        free(text);
    }
    if (isfinite(sc)) {
        if (!strcmp(sname, "accuracy"))
            fprintf(stderr, "Accuracy = %.4f%% (%lld/%lld)\n", 100 * sc, (long long)llround(sc * (double)n), (long long)n);
        else
            fprintf(stderr, "%s = %.8g (%lld examples)\n", !strcmp(sname, "mse") ? "Mean squared error" : "Mean log-likelihood",
                    sc, (long long)n);
    }
    if (json) {
        printf("{\"model\": \"%s\", \"examples\": %lld", m.kind, (long long)n);
        print_json_num(sname, sc);
        print_json_num("seconds", secs);
        printf(", \"predictions\": [");
        for (int64_t i = 0; i < n; i++) {
            if (per == 1) printf(i ? ", %.9g" : "%.9g", pv[i]);
            else {
                printf(i ? ", [" : "[");
                for (int r = 0; r < per; r++) printf(r ? ", %.9g" : "%.9g", pv[i * per + r]);
                printf("]");
            }
        }
        printf("]}\n");
    }
    free(pv);
done:
    nb_tensor_free(X);
    free(y);
    nb_classic_free(&m);
    return rc;
}
