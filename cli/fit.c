/* fit.c — `nabla fit linreg|logreg|svm|pca|ppca|fa|gmm DATA`: the classical
 * models of notes §5, §13 and appendix B from the command line, with
 * LIBSVM's option letters for the SVM; and `nabla predict` for the model
 * files it writes. */
#include "cli.h"
#include "fit.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- data ------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* Splits X [n, c] into features [n, c - 1] and the last column. */
static int split_label(const char *what, nb_tensor **X, float **y) {
    nb_tensor *t = *X;
    int64_t n = t->shape[0], c = t->shape[1];
    if (c < 2) return nb_error("%s: one column only: no room for features and a label (--unlabeled?)", what);
    nb_tensor *f = nb_tensor_new(2, (int64_t[]){n, c - 1});
    float *yy = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        memcpy(f->data + i * (c - 1), t->data + i * c, sizeof(float) * (size_t)(c - 1));
        yy[i] = t->data[i * c + c - 1];
    }
    nb_tensor_free(t);
    *X = f;
    *y = yy;
    return 0;
}

/* CSV: numbers separated by commas, the same count on every line; a first
 * line that is not all numbers is a header. Errors name line and column. */
static nb_tensor *csv_parse(const char *text, size_t len, const char *what) {
    int64_t cols = -1, rows = 0, cap = 0, line = 0;
    float *v = NULL;
    size_t nv = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        line++;
        const char *q = p;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == le) { /* blank line */
            p = nl ? nl + 1 : end;
            continue;
        }
        int64_t c = 0;
        bool header = false;
        size_t mark = nv;
        for (const char *cell = p;;) {
            const char *comma = memchr(cell, ',', (size_t)(le - cell)), *ce = comma ? comma : le;
            char buf[128];
            size_t cl = (size_t)(ce - cell) < sizeof buf - 1 ? (size_t)(ce - cell) : sizeof buf - 1;
            memcpy(buf, cell, cl);
            buf[cl] = 0;
            char *s = buf, *e;
            while (*s == ' ' || *s == '\t') s++;
            errno = 0;
            double x = strtod(s, &e);
            while (*e == ' ' || *e == '\t' || *e == '\r') e++;
            if (e == s || *e || !isfinite(x)) {
                if (rows == 0 && cols < 0) {
                    header = true; /* a header row: names, not numbers */
                } else {
                    free(v);
                    nb_error("%s:%lld:%lld: %s '%s' (expected a number)", what, (long long)line,
                             (long long)(cell - p + 1), e == s ? "not a number:" : "bad number", s);
                    return NULL;
                }
            }
            if (!header) {
                if (nv == (size_t)cap) v = realloc(v, sizeof(float) * (size_t)(cap = cap * 2 + 1024));
                v[nv++] = (float)x;
            }
            c++;
            if (!comma) break;
            cell = comma + 1;
        }
        if (cols >= 0 && c != cols) {
            free(v);
            nb_error("%s:%lld: %lld cells, expected %lld as on the lines before", what, (long long)line, (long long)c,
                     (long long)cols);
            return NULL;
        }
        cols = c;
        if (header) nv = mark;
        else rows++;
        p = nl ? nl + 1 : end;
    }
    if (rows == 0) {
        free(v);
        nb_error("%s: no rows of numbers", what);
        return NULL;
    }
    nb_tensor *t = nb_tensor_from(2, (int64_t[]){rows, cols}, v);
    free(v);
    return t;
}

int nb_fit_load_data(const char *spec, bool train, bool labeled, int64_t min_features, nb_tensor **X, float **y) {
    *X = NULL;
    *y = NULL;
    if (!strcmp(spec, "fashion-mnist")) {
        nb_dataset d;
        if (nb_dataset_load(spec, train, &d)) return -1;
        int64_t per = nb_shape_numel(d.nd, d.shape);
        nb_tensor *t = nb_tensor_new(2, (int64_t[]){d.n, per});
        for (int64_t i = 0; i < d.n * per; i++) t->data[i] = d.u8[i] * (1.f / 255.f);
        float *yy = malloc(sizeof(float) * (size_t)d.n);
        for (int64_t i = 0; i < d.n; i++) yy[i] = (float)d.y[i];
        nb_dataset_free(&d);
        *X = t;
        *y = yy;
        return 0;
    }
    size_t len;
    uint8_t *buf = nb_read_file(spec, &len);
    if (!buf) return -1;
    int rc = 0;
    if (len >= 6 && !memcmp(buf, "\x93NUMPY", 6)) {
        nb_tensor *t = nb_npy_parse(buf, len, spec);
        if (!t) rc = -1;
        else if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1) {
            rc = nb_error("%s: expected a 2-D array [examples, features%s], got %d dimensions", spec,
                          labeled ? " + label" : "", t->ndim);
            nb_tensor_free(t);
        } else {
            *X = t;
        }
    } else {
        /* LIBSVM lines have "index:value" pairs; anything else is CSV. */
        const char *nl = memchr(buf, '\n', len);
        size_t first = nl ? (size_t)((const uint8_t *)nl - buf) : len;
        bool colon = memchr(buf, ':', first) != NULL, comma = memchr(buf, ',', first) != NULL;
        if (ends_with(spec, ".csv") || (comma && !colon)) {
            *X = csv_parse((const char *)buf, len, spec);
            rc = *X ? 0 : -1;
        } else {
            rc = nb_libsvm_parse((const char *)buf, len, spec, min_features, X, y);
            labeled = false; /* the labels came with the format */
        }
    }
    free(buf);
    if (rc == 0 && labeled && split_label(spec, X, y)) {
        nb_tensor_free(*X);
        *X = NULL;
        rc = -1;
    }
    return rc;
}

/* --- options ------------------------------------------------------------------ */

typedef struct {
    const char *out, *test, *method, *solver, *kernel, *covariance;
    double C, gamma, coef0, eps, cache, l2, lr, alpha, noise_var, tol, reg_covar;
    long degree, folds, shrinking, epochs, max_iter, k, n_init, seed, threads;
    bool json, help, unlabeled;
} fit_args;

/* LIBSVM's option letters become long flags: svm-train users type -c 10. */
static const char *LETTERS[][2] = {{"-c", "--C"}, {"-g", "--gamma"}, {"-t", "--kernel"}, {"-d", "--degree"},
                                   {"-r", "--coef0"}, {"-v", "--folds"}, {"-e", "--eps"}, {"-m", "--cache"},
                                   {"-h", "--shrinking"}};

static char **translate_letters(int argc, char **argv, const nb_flag *flags, int nflags) {
    char **a = malloc(sizeof(char *) * (size_t)(argc + 1));
    bool value_next = false;
    for (int i = 0; i < argc; i++) {
        a[i] = argv[i];
        if (value_next) {
            value_next = false;
            continue;
        }
        for (size_t k = 0; k < sizeof LETTERS / sizeof LETTERS[0]; k++)
            if (!strcmp(argv[i], LETTERS[k][0])) a[i] = (char *)LETTERS[k][1];
        if (a[i][0] == '-' && a[i][1] == '-' && !strchr(a[i], '='))
            for (int f = 0; f < nflags; f++)
                if (!strcmp(a[i], flags[f].name)) value_next = flags[f].kind != NB_FLAG_BOOL;
    }
    a[argc] = NULL;
    return a;
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
        float *p = malloc(sizeof(float) * (size_t)n);
        classify(m, X, p);
        double a = accuracy(p, y, n);
        free(p);
        return a;
    }
    if (m->linreg) {
        *name = "mse";
        if (!y) return NAN;
        double *mu = malloc(sizeof(double) * (size_t)n), s = 0;
        nb_linreg_predict(m->linreg, X, mu, NULL);
        for (int64_t i = 0; i < n; i++) s += (mu[i] - y[i]) * (mu[i] - y[i]);
        free(mu);
        return s / (double)n;
    }
    *name = "loglik";
    return m->factor ? nb_factor_loglik(m->factor, X, NULL) : nb_gmm_score(m->gmm, X, NULL);
}

static void print_json_num(const char *key, double v) {
    if (isfinite(v)) printf(", \"%s\": %.10g", key, v);
    else printf(", \"%s\": null", key);
}

/* --- nabla fit ------------------------------------------------------------------ */

static int fit_usage(const nb_flag *flags, int nflags) {
    nb_cli_usage("fit", "linreg|logreg|svm|pca|ppca|fa|gmm DATA [options] [--out MODEL] [--json]\n\n"
                 "DATA: fashion-mnist (train split; its test split is scored too), a LIBSVM text file, a CSV\n"
                 "file (numbers, optional header, the label in the last column) or a .npy array [n, d + 1]\n"
                 "(the label last). --unlabeled: every CSV/.npy column is a feature (pca, ppca, fa, gmm).\n"
                 "LIBSVM's letters work for the SVM: -c C -g gamma -t kernel -d degree -r coef0 -v folds\n"
                 "-e eps -m cache_mb -h shrinking. With -v only the cross-validation accuracy is reported,\n"
                 "as svm-train does.",
                 flags, nflags);
    return 0;
}

static int cmd_fit(int argc, char **argv) {
    const char *cmd = "fit";
    fit_args a = {.method = "lstsq", .solver = "lbfgs", .kernel = "rbf", .covariance = "full", .C = 1, .degree = 3,
                  .eps = 1e-3, .cache = 100, .shrinking = 1, .seed = 1};
    nb_flag flags[] = {
        {"--out", NB_FLAG_STR, &a.out, "write the fitted model here (safetensors)"},
        {"--test", NB_FLAG_STR, &a.test, "also score the model on this data"},
        {"--json", NB_FLAG_BOOL, &a.json, "print the results as one JSON line on stdout"},
        {"--unlabeled", NB_FLAG_BOOL, &a.unlabeled, "CSV/.npy: no label column"},
        {"--threads", NB_FLAG_INT, &a.threads, "threads (NABLA_THREADS, else all cores)"},
        {"--method", NB_FLAG_STR, &a.method, "linreg: lstsq (default), gd or bayes"},
        {"--l2", NB_FLAG_FLOAT, &a.l2, "linreg: ridge penalty l2 ||w||^2 (0)"},
        {"--lr", NB_FLAG_FLOAT, &a.lr, "linreg/logreg gd: step size"},
        {"--epochs", NB_FLAG_INT, &a.epochs, "linreg gd: steps (1000)"},
        {"--alpha", NB_FLAG_FLOAT, &a.alpha, "linreg bayes: prior precision (0.01)"},
        {"--noise-var", NB_FLAG_FLOAT, &a.noise_var, "linreg bayes: noise variance (least squares' estimate)"},
        {"--solver", NB_FLAG_STR, &a.solver, "logreg: lbfgs (default) or gd"},
        {"--C", NB_FLAG_FLOAT, &a.C, "logreg, svm (-c): inverse penalty / cost (1)"},
        {"--max-iter", NB_FLAG_INT, &a.max_iter, "logreg, fa, gmm: iteration limit"},
        {"--tol", NB_FLAG_FLOAT, &a.tol, "logreg, fa, gmm: stopping tolerance"},
        {"--kernel", NB_FLAG_STR, &a.kernel, "svm (-t): linear|polynomial|rbf|sigmoid or 0-3 (rbf)"},
        {"--gamma", NB_FLAG_FLOAT, &a.gamma, "svm (-g): kernel gamma (1/features)"},
        {"--degree", NB_FLAG_INT, &a.degree, "svm (-d): polynomial degree (3)"},
        {"--coef0", NB_FLAG_FLOAT, &a.coef0, "svm (-r): coef0 (0)"},
        {"--folds", NB_FLAG_INT, &a.folds, "svm (-v): k-fold cross-validation only"},
        {"--eps", NB_FLAG_FLOAT, &a.eps, "svm (-e): stopping tolerance (0.001)"},
        {"--cache", NB_FLAG_FLOAT, &a.cache, "svm (-m): kernel cache per pair in MB (100)"},
        {"--shrinking", NB_FLAG_INT, &a.shrinking, "svm (-h): 1 shrink (default), 0 not"},
        {"--k", NB_FLAG_INT, &a.k, "pca/ppca/fa: latent dimensions; gmm: components"},
        {"--covariance", NB_FLAG_STR, &a.covariance, "gmm: full (default) or diag"},
        {"--reg-covar", NB_FLAG_FLOAT, &a.reg_covar, "gmm: added to covariance diagonals (1e-6)"},
        {"--n-init", NB_FLAG_INT, &a.n_init, "gmm: EM starts, the best kept (1)"},
        {"--seed", NB_FLAG_INT, &a.seed, "gmm, svm -v: random seed (1)"},
        {"--help", NB_FLAG_BOOL, &a.help, "this help"},
    };
    int nflags = sizeof flags / sizeof flags[0], npos;
    const char *pos[2];
    char **av = translate_letters(argc, argv, flags, nflags);
    int prc = nb_cli_parse(cmd, argc, av, flags, nflags, pos, 2, &npos);
    free(av);
    if (prc) return 1;
    if (a.help) return fit_usage(flags, nflags);
    if (npos != 2) {
        fit_usage(flags, nflags);
        return 1;
    }
    const char *kind = pos[0], *data = pos[1];
    static const char *KINDS[] = {"linreg", "logreg", "svm", "pca", "ppca", "fa", "gmm"};
    int ki = -1;
    for (int i = 0; i < 7; i++)
        if (!strcmp(kind, KINDS[i])) ki = i;
    if (ki < 0) return nb_cli_fail(cmd, "unknown model '%s' (expected linreg, logreg, svm, pca, ppca, fa or gmm)", kind);
    bool supervised = ki <= 2;
    if (a.threads < 0) return nb_cli_fail(cmd, "--threads: expected a number >= 0");
    nb_set_threads((int)a.threads);

    nb_tensor *X, *Xt = NULL;
    float *y, *yt = NULL;
    bool labeled = !a.unlabeled;
    if (nb_fit_load_data(data, true, labeled, 0, &X, &y)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    if (supervised && !y) {
        nb_tensor_free(X);
        return nb_cli_fail(cmd, "%s: %s needs labels (drop --unlabeled)", data, kind);
    }
    const char *test = a.test ? a.test : !strcmp(data, "fashion-mnist") ? "fashion-mnist" : NULL;
    if (test && nb_fit_load_data(test, !strcmp(test, "fashion-mnist") ? false : true, labeled, X->shape[1], &Xt, &yt)) {
        nb_tensor_free(X);
        free(y);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    int rc = 0;
    if (Xt && Xt->shape[1] != X->shape[1]) {
        rc = nb_cli_fail(cmd, "%s has %lld features, %s has %lld", test, (long long)Xt->shape[1], data, (long long)X->shape[1]);
        goto done;
    }
    int64_t n = X->shape[0], d = X->shape[1];
    nb_classic m = {.kind = KINDS[ki]};
    double t0 = nb_cli_now(), cv = NAN;
    const char *bad = NULL;
    if (ki == 0) {
        nb_linreg_opts o = {.l2 = a.l2, .lr = a.lr, .epochs = (int)a.epochs, .prior_precision = a.alpha, .noise_var = a.noise_var};
        if (!strcmp(a.method, "lstsq")) o.method = NB_LINREG_LSTSQ;
        else if (!strcmp(a.method, "gd")) o.method = NB_LINREG_GD;
        else if (!strcmp(a.method, "bayes")) o.method = NB_LINREG_BAYES;
        else bad = "--method: expected lstsq, gd or bayes";
        if (!bad) m.linreg = nb_linreg_fit(X, y, &o);
    } else if (ki == 1) {
        nb_logreg_opts o = {.C = a.C, .max_iter = (int)a.max_iter, .tol = a.tol, .lr = a.lr};
        if (!strcmp(a.solver, "lbfgs")) o.solver = NB_SOLVER_LBFGS;
        else if (!strcmp(a.solver, "gd")) o.solver = NB_SOLVER_GD;
        else bad = "--solver: expected lbfgs or gd";
        if (!bad) m.logreg = nb_logreg_fit(X, y, &o);
    } else if (ki == 2) {
        nb_svm_opts o;
        nb_svm_default_opts(&o);
        if (nb_kernel_from_name(a.kernel, &o.kernel)) bad = nb_errmsg();
        o.C = a.C;
        o.gamma = a.gamma;
        o.coef0 = a.coef0;
        o.degree = (int)a.degree;
        o.eps = a.eps;
        o.cache_mb = a.cache;
        o.shrinking = a.shrinking != 0;
        if (a.shrinking != 0 && a.shrinking != 1) bad = "--shrinking (-h): expected 0 or 1";
        if (!bad && a.folds) {
            cv = nb_svm_cross_validate(X, y, &o, (int)a.folds, (uint64_t)a.seed, NULL);
            if (cv < 0) bad = nb_errmsg();
        } else if (!bad) {
            m.svm = nb_svm_fit(X, y, &o);
        }
    } else if (ki <= 5) {
        nb_factor_opts o = {.kind = ki == 3 ? NB_FACTOR_PCA : ki == 4 ? NB_FACTOR_PPCA : NB_FACTOR_FA,
                            .k = (int)a.k, .max_iter = (int)a.max_iter, .tol = a.tol};
        m.factor = nb_factor_fit(X, &o);
    } else {
        nb_gmm_opts o = {.k = (int)a.k, .max_iter = (int)a.max_iter, .tol = a.tol, .reg_covar = a.reg_covar,
                         .n_init = (int)a.n_init, .seed = (uint64_t)a.seed};
        if (!strcmp(a.covariance, "diag")) o.diagonal = true;
        else if (strcmp(a.covariance, "full")) bad = "--covariance: expected full or diag";
        if (!bad) m.gmm = nb_gmm_fit(X, &o);
    }
    double secs = nb_cli_now() - t0;
    if (bad) {
        rc = nb_cli_fail(cmd, "%s", bad);
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
    bool json = false, help = false;
    /* The model is the first argument that is not a flag. */
    const char *model = NULL;
    for (int i = 1; i < argc && !model; i++)
        if (argv[i][0] != '-') model = argv[i];
        else if (!strcmp(argv[i], "--out")) i++;
    if (!model) return -1;
    nb_safetensors *st = nb_st_read(model);
    bool mine = st && nb_classic_is_model(st);
    nb_st_free(st);
    nb_clear_error();
    if (!mine) return -1;
    nb_flag flags[] = {
        {"--json", NB_FLAG_BOOL, &json, "print one JSON line with the score and every prediction"},
        {"--out", NB_FLAG_STR, &out, "write the predictions here, one per line (default: stdout)"},
        {"--help", NB_FLAG_BOOL, &help, "this help"},
    };
    int nflags = sizeof flags / sizeof flags[0], npos;
    const char *pos[2];
    if (nb_cli_parse(cmd, argc, argv, flags, nflags, pos, 2, &npos)) return 1;
    if (help || npos != 2) {
        nb_cli_usage(cmd, "MODEL DATA [--json] [--out FILE]   (MODEL from `nabla fit`; DATA as for `nabla fit`: "
                          "fashion-mnist's test split, LIBSVM, CSV or .npy)", flags, nflags);
        return help ? 0 : 1;
    }
    nb_classic m;
    if (nb_classic_load(model, &m)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    int64_t d = nb_classic_features(&m);
    nb_tensor *X = NULL;
    float *y = NULL;
    int rc = 0;
    /* CSV/.npy: a label column is present when there is one column more
     * than the model's features. */
    bool labeled = true;
    if (strcmp(pos[1], "fashion-mnist")) {
        if (nb_fit_load_data(pos[1], true, false, d, &X, &y)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        if (!y && X->shape[1] == d + 1) {
            nb_tensor_free(X);
            nb_fit_load_data(pos[1], true, labeled, d, &X, &y);
        }
    } else if (nb_fit_load_data(pos[1], false, labeled, d, &X, &y)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    if (X->shape[1] != d) {
        rc = nb_cli_fail(cmd, "%s has %lld features, the model %s takes %lld", pos[1], (long long)X->shape[1], model,
                         (long long)d);
        goto done;
    }
    int64_t n = X->shape[0];
    double t0 = nb_cli_now();
    /* One output per example: a label (classifiers), a value (linreg), the
     * most responsible component (gmm) or the latent vector (factor models). */
    int per = m.factor ? m.factor->k : 1;
    double *pv = malloc(sizeof(double) * (size_t)(n * per));
    if (m.svm || m.logreg) {
        float *p = malloc(sizeof(float) * (size_t)n);
        classify(&m, X, p);
        for (int64_t i = 0; i < n; i++) pv[i] = p[i];
        free(p);
    } else if (m.linreg) {
        nb_linreg_predict(m.linreg, X, pv, NULL);
    } else if (m.gmm) {
        double *resp = malloc(sizeof(double) * (size_t)(n * m.gmm->k));
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
    FILE *f = out ? fopen(out, "w") : json ? NULL : stdout;
    if (out && !f) {
        rc = nb_cli_fail(cmd, "%s: %s", out, strerror(errno));
    } else if (f) {
        for (int64_t i = 0; i < n; i++)
            for (int r = 0; r < per; r++) fprintf(f, r + 1 < per ? "%.9g," : "%.9g\n", pv[i * per + r]);
        if (f != stdout && fclose(f)) rc = nb_cli_fail(cmd, "%s: write failed", out);
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
