/* convert.c — `nabla convert`: a data set to LIBSVM text, CSV or .npy, with
 * optional PCA features (fitted on the training rows only), so the same
 * data can be fed to nabla, LIBSVM and scikit-learn. */
#include "cli.h"
#include "fit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows [0, n) of X with the label appended, as CSV or .npy. */
static int write_table(const char *path, const char *fmt, const nb_tensor *X, const float *y) {
    int64_t n = X->shape[0], d = X->shape[1];
    if (!strcmp(fmt, "npy")) {
        nb_tensor *t = nb_tensor_new(2, (int64_t[]){n, d + 1});
        for (int64_t i = 0; i < n; i++) {
            memcpy(t->data + i * (d + 1), X->data + i * d, sizeof(float) * (size_t)d);
            t->data[i * (d + 1) + d] = y[i];
        }
        int rc = nb_npy_write(path, t);
        nb_tensor_free(t);
        return rc;
    }
    size_t cap = (size_t)(n * (d + 1)) * 16 + 64 * (size_t)(d + 1) + 64, len = 0;
    char *buf = malloc(cap);
    if (!buf) nb_oom("the CSV text", cap);
    for (int64_t j = 0; j < d; j++) len += (size_t)snprintf(buf + len, cap - len, "f%lld,", (long long)(j + 1));
    len += (size_t)snprintf(buf + len, cap - len, "label\n");
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < d; j++) len += (size_t)snprintf(buf + len, cap - len, "%.9g,", (double)X->data[i * d + j]);
        len += (size_t)snprintf(buf + len, cap - len, "%.9g\n", (double)y[i]);
    }
    int rc = nb_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

static int write_any(const char *path, const char *fmt, const nb_tensor *X, const float *y) {
    return !strcmp(fmt, "libsvm") ? nb_libsvm_write(path, X, y) : write_table(path, fmt, X, y);
}

/* The first n rows of X (and y) in place. */
static void take(nb_tensor **X, float *y, int64_t n) {
    if (n <= 0 || n >= (*X)->shape[0]) return;
    int64_t d = (*X)->shape[1];
    nb_tensor *t = nb_tensor_from(2, (int64_t[]){n, d}, (*X)->data);
    nb_tensor_free(*X);
    *X = t;
    (void)y; /* the first n labels are already in place */
}

/* X replaced by its k principal components (the projection W (x - mu)). */
static void project(nb_tensor **X, const nb_factor *pca) {
    int64_t n = (*X)->shape[0];
    int k = pca->k;
    double *H = malloc(sizeof(double) * (size_t)(n * k));
    if (!H) nb_oom("the principal components", sizeof(double) * (size_t)(n * k));
    nb_factor_transform(pca, *X, H, NULL);
    nb_tensor *t = nb_tensor_new(2, (int64_t[]){n, k});
    for (int64_t i = 0; i < n * k; i++) t->data[i] = (float)H[i];
    free(H);
    nb_tensor_free(*X);
    *X = t;
}

static int cmd_convert(int argc, char **argv) {
    const char *cmd = "convert", *to = NULL, *out = NULL;
    long pca_k = 0, ntrain = 0, ntest = 0, threads = 0;
    nb_flag flags[] = {
        {"--to", NB_FLAG_CHOICE, &to, "the format to write", .def = "required", .range = "libsvm|csv|npy"},
        {"--out", NB_FLAG_OUTPUT, &out, "the file to write (fashion-mnist's test split goes to FILE.t)",
         .def = "required"},
        {"--pca", NB_FLAG_INT, &pca_k, "replace the features by their first K principal components, fitted on the "
                                       "training rows; 0: keep the features", .range = "[0, inf)", .meta = "K"},
        {"--train", NB_FLAG_INT, &ntrain, "keep the first N training examples; 0: all", .range = "[0, inf)"},
        {"--test", NB_FLAG_INT, &ntest, "keep the first N test examples; 0: all", .range = "[0, inf)"},
        NB_FLAG_THREADS(&threads, "all cores"),
    };
    nb_cli c = {.cmd = cmd, .args = "fashion-mnist|DATA --to libsvm|csv|npy --out FILE ",
                .about = "fashion-mnist: pixels / 255, the training split to FILE and the test split to FILE.t\n"
                         "(LIBSVM's naming: svm-train FILE; svm-predict FILE.t). CSV and .npy put the label in\n"
                         "the last column. Another DATA (LIBSVM, CSV or .npy with the label last) is converted\n"
                         "as one file.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if (!to || !out) return nb_cli_usage_error(&c, "%s is required (e.g. --to libsvm --out fm)", !to ? "--to" : "--out");
    /* A name whose extension is another format's: `--to npy --out d.csv`
     * wrote .npy bytes under a CSV name, which nabla reads (by content)
     * but a spreadsheet or pandas.read_csv does not. */
    static const char *const named[][2] = {{"csv", "csv"}, {"npy", "npy"}, {"libsvm", "libsvm"}, {"svm", "libsvm"}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (nb_cli_has_ext(out, named[i][0]) && strcmp(named[i][1], to))
            return nb_cli_usage_error(&c, "--out '%s': a .%s name for --to %s: expected another extension, or --to %s",
                                      out, named[i][0], to, named[i][1]);
    bool fashion = !strcmp(pos[0], "fashion-mnist");
    /* fashion-mnist's test split goes to FILE.t: check it can be written
     * before minutes of loading and PCA, as --out itself was. */
    char *tpath = malloc(strlen(out) + 3);
    if (!tpath) return nb_cli_fail(cmd, "out of memory");
    sprintf(tpath, "%s.t", out);
    if (fashion && nb_cli_check_output(cmd, "--out (its test split)", tpath, NULL)) {
        free(tpath);
        nb_cli_usage_line(&c);
        return 2;
    }
    nb_cli_threads(cmd, threads, 0);
    nb_tensor *X = NULL, *Xt = NULL;
    float *y = NULL, *yt = NULL;
    int rc = 0;
    if (nb_fit_load_data(pos[0], true, true, 0, &X, &y) ||
        (fashion && nb_fit_load_data(pos[0], false, true, 0, &Xt, &yt))) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    take(&X, y, ntrain);
    if (Xt) take(&Xt, yt, ntest);
    if (pca_k > 0) {
        if (pca_k > X->shape[1]) {
            rc = nb_cli_fail(cmd, "--pca: expected at most the %lld features of %s, got %ld", (long long)X->shape[1],
                             pos[0], pca_k);
            goto done;
        }
        double t0 = nb_cli_now();
        nb_factor *p = nb_factor_fit(X, &(nb_factor_opts){.kind = NB_FACTOR_PCA, .k = (int)pca_k});
        if (!p) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        double s = 0;
        for (int r = 0; r < p->k; r++) s += p->variance[r];
        fprintf(stderr, "PCA: %ld components keep %.1f%% of the variance (fitted on %lld rows, %.2f s)\n", pca_k,
                100 * s / p->total_variance, (long long)X->shape[0], nb_cli_now() - t0);
        project(&X, p);
        if (Xt) project(&Xt, p);
        nb_factor_free(p);
    }
    if (write_any(out, to, X, y)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    fprintf(stderr, "wrote %s: %lld examples, %lld features\n", out, (long long)X->shape[0], (long long)X->shape[1]);
    if (Xt) {
        if (write_any(tpath, to, Xt, yt)) rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        else fprintf(stderr, "wrote %s: %lld examples (test split)\n", tpath, (long long)Xt->shape[0]);
    }
done:
    free(tpath);
    nb_tensor_free(X);
    nb_tensor_free(Xt);
    free(y);
    free(yt);
    return rc;
}

NB_COMMAND("convert", cmd_convert, "convert a data set to LIBSVM, CSV or .npy (optionally PCA features)")
