/* stats.c — `nabla stats`: the moments of a data matrix (notes §1.2): per
 * column mean and variance, the covariance matrix (eq. 12 and the unbiased
 * one) and the correlation, from a .npy array or a CSV with a header row. */
#include "cli.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* JSON has no NaN: a zero-variance column's correlation is null */
#define js_num(f, x) nb_cli_json_number(f, "%.10g", x)

static void js_vec(FILE *f, const char *key, const nb_tensor *t) {
    fprintf(f, ", \"%s\": ", key);
    if (!t) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (int64_t i = 0; i < t->size; i++) {
        if (i) fputs(", ", f);
        js_num(f, t->data[i]);
    }
    fputc(']', f);
}

static void js_mat(FILE *f, const char *key, const nb_tensor *t, int64_t n) {
    fprintf(f, ", \"%s\": ", key);
    if (!t) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        fputs(i ? ", [" : "[", f);
        for (int64_t j = 0; j < n; j++) {
            if (j) fputs(", ", f);
            js_num(f, t->data[i * n + j]);
        }
        fputc(']', f);
    }
    fputc(']', f);
}

static void print_matrix(FILE *f, const char *title, const nb_tensor *t, char **names, int64_t n) {
    fprintf(f, "\n%s\n%-12s", title, "");
    for (int64_t j = 0; j < n; j++) fprintf(f, " %12.12s", names[j]);
    fputc('\n', f);
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "%-12.12s", names[i]);
        for (int64_t j = 0; j < n; j++) fprintf(f, " %12.6g", (double)t->data[i * n + j]);
        fputc('\n', f);
    }
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

/* X [m, n] from a CSV: the header row names the variables; every cell must
 * be a number finite in float32 (an empty, NaN or 1e39 cell would make every
 * moment of its column NaN or inf), which the reader checks, naming the line
 * and column. */
static nb_tensor *load_csv(const char *path, char ***names, int64_t *n) {
    nb_csv *c = nb_csv_read_ex(path, NB_CSV_FINITE);
    if (!c) return nb_cli_fail("stats", "%s", nb_errmsg()), NULL;
    nb_tensor *X = NULL;
    if (c->nrows == 0) {
        nb_cli_fail("stats", "%s: a header row but no data", path);
        goto done;
    }
    X = nb_tensor_new(2, (int64_t[]){c->nrows, c->ncols});
    for (int64_t i = 0; i < X->size; i++) X->data[i] = (float)c->data[i];
    *n = c->ncols;
    *names = nb__xcalloc("the column names", (size_t)c->ncols, sizeof(char *));
    for (int j = 0; j < c->ncols; j++) (*names)[j] = nb__xstrdup("the column names", c->names[j]);
done:
    nb_csv_free(c);
    return X;
}

static nb_tensor *load_npy(const char *path, char ***names, int64_t *n) {
    nb_tensor *X = nb_npy_read(path);
    if (!X) return nb_cli_fail("stats", "%s", nb_errmsg()), NULL;
    char s[96];
    const char *err = NULL;
    if (X->ndim != 1 && X->ndim != 2) err = "expected [m] or [m, n] (samples in rows)";
    else if (X->size == 0) err = "no data";
    if (err) {
        nb_cli_fail("stats", "%s: shape %s: %s", path, nb_shape_str(X, s, sizeof s), err);
        nb_tensor_free(X);
        return NULL;
    }
    *n = X->ndim == 2 ? X->shape[1] : 1;
    for (int64_t i = 0; i < X->size; i++)
        if (!isfinite(X->data[i])) {
            nb_cli_fail("stats", "%s: entry [%lld, %lld] is %s; finite numbers are needed", path,
                        (long long)(i / *n), (long long)(i % *n), isnan(X->data[i]) ? "NaN" : "infinite");
            nb_tensor_free(X);
            return NULL;
        }
    /* No names in a .npy: columns are numbered from 0, as NumPy indexes them. */
    *names = calloc((size_t)*n, sizeof(char *));
    for (int64_t j = 0; j < *n; j++) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)j);
        (*names)[j] = nb__xstrdup("the column names", b);
    }
    return X;
}

static int write_npy(const char *prefix, const char *name, const nb_tensor *t) {
    if (!t) return 0;
    char path[4096];
    if (snprintf(path, sizeof path, "%s.%s.npy", prefix, name) >= (int)sizeof path)
        return nb_cli_fail("stats", "--out %s: the path is too long", prefix);
    if (nb_npy_write(path, t)) return nb_cli_fail("stats", "%s", nb_errmsg());
    return 0;
}

static int cmd_stats(int argc, char **argv) {
    const char *cmd = "stats", *prefix = NULL;
    bool json = false;
    nb_flag flags[] = {
        {"--out", NB_FLAG_STR, &prefix, "also write PREFIX.{mean,var,var_unbiased,cov,cov_unbiased,corr}.npy",
         .meta = "PREFIX", .def = ""},
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "X.npy|X.csv ",
                .about = "X holds m samples (rows) of n variables (columns): a .npy [m, n] or [m], or a CSV with a\n"
                         "header row of names. Prints per column the mean and the variance with 1/m and with\n"
                         "1/(m-1), the covariance matrix (eq. 12, 1/m), the unbiased sample covariance (1/(m-1),\n"
                         "numpy.cov's default) and the correlation (NaN, null in JSON, for a constant column).",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    /* The files are PREFIX.NAME.npy: PREFIX's folder must take them, checked
     * before the data is read. */
    if (prefix && nb_cli_check_output(cmd, "--out", prefix, NULL)) {
        nb_cli_usage_line(&c);
        return 2;
    }
    /* Nor may one of them be X itself (X.mean.npy with --out X). */
    static const char *const written[] = {"mean", "var", "var_unbiased", "cov", "cov_unbiased", "corr"};
    for (size_t k = 0; prefix && k < sizeof written / sizeof written[0]; k++) {
        char out[4096];
        if (snprintf(out, sizeof out, "%s.%s.npy", prefix, written[k]) < (int)sizeof out &&
            nb_cli_not_input(&c, "--out", out, pos[0]))
            return 2;
    }
    const char *path = pos[0];
    char **names = NULL;
    int64_t n = 0;
    /* .csv and .npy by name; any other name by content, as the data loaders
     * choose (a table saved as X.txt was read as a .npy: "bad magic"). */
    bool csv = has_suffix(path, ".csv");
    if (!csv && !has_suffix(path, ".npy")) {
        nb_file_kind k = nb_sniff_file(path);
        csv = k == NB_FILE_CSV || k == NB_FILE_LOG || k == NB_FILE_TEXT || k == NB_FILE_UTF16;
    }
    nb_tensor *X = csv ? load_csv(path, &names, &n) : load_npy(path, &names, &n);
    if (!X) return 1;
    int64_t m = X->shape[0];
    /* With one sample the 1/(m-1) estimates do not exist: reported as
     * absent rather than refused, since the rest is still meaningful. */
    nb_tensor *mean = nb_stats_mean(X), *var = nb_stats_var(X, 0), *cov = nb_stats_cov(X, 0), *corr = nb_stats_corr(X);
    nb_tensor *var1 = m > 1 ? nb_stats_var(X, 1) : NULL, *cov1 = m > 1 ? nb_stats_cov(X, 1) : NULL;
    int rc = 0;
    if (!mean || !var || !cov || !corr || (m > 1 && (!var1 || !cov1))) {
        rc = nb_cli_fail(cmd, "%s: %s", path, nb_errmsg());
        goto done;
    }
    FILE *o = json ? stderr : stdout;
    fprintf(o, "%s: %lld sample%s (rows) of %lld variable%s (columns)\n", path, (long long)m, m == 1 ? "" : "s",
            (long long)n, n == 1 ? "" : "s");
    fprintf(o, "%-12s %14s %14s %14s\n", "column", "mean", "var (1/m)", "var (1/(m-1))");
    for (int64_t j = 0; j < n; j++) {
        fprintf(o, "%-12.12s %14.7g %14.7g ", names[j], (double)mean->data[j], (double)var->data[j]);
        if (var1) fprintf(o, "%14.7g\n", (double)var1->data[j]);
        else fprintf(o, "%14s\n", "-");
    }
    if (n > 1 && n <= 12) {
        print_matrix(o, "covariance matrix, eq. 12 (1/m):", cov, names, n);
        if (cov1) print_matrix(o, "unbiased sample covariance (1/(m-1)):", cov1, names, n);
        print_matrix(o, "correlation cov_ij / sqrt(cov_ii cov_jj):", corr, names, n);
    } else if (n > 12) {
        fprintf(o, "\n(%lld x %lld covariance and correlation matrices: see --json, or --out PREFIX for .npy files)\n",
                (long long)n, (long long)n);
    }
    if (m == 1) fprintf(o, "(one sample: the 1/(m-1) estimates are undefined)\n");
    if (prefix) {
        rc = write_npy(prefix, "mean", mean) || write_npy(prefix, "var", var) ||
             write_npy(prefix, "var_unbiased", var1) || write_npy(prefix, "cov", cov) ||
             write_npy(prefix, "cov_unbiased", cov1) || write_npy(prefix, "corr", corr);
        if (!rc) fprintf(o, "wrote %s.{mean,var,%scov,%scorr}.npy\n", prefix, var1 ? "var_unbiased," : "",
                         cov1 ? "cov_unbiased," : "");
    }
    if (json && !rc) {
        printf("{\"samples\": %lld, \"variables\": %lld, \"names\": [", (long long)m, (long long)n);
        for (int64_t j = 0; j < n; j++) {
            if (j) fputs(", ", stdout);
            nb_cli_json_string(stdout, names[j]);
        }
        putchar(']');
        js_vec(stdout, "mean", mean);
        js_vec(stdout, "var", var);
        js_vec(stdout, "var_unbiased", var1);
        js_mat(stdout, "cov", cov, n);
        js_mat(stdout, "cov_unbiased", cov1, n);
        js_mat(stdout, "corr", corr, n);
        printf("}\n");
    }
done:
    nb_tensor_free(mean);
    nb_tensor_free(var);
    nb_tensor_free(var1);
    nb_tensor_free(cov);
    nb_tensor_free(cov1);
    nb_tensor_free(corr);
    nb_tensor_free(X);
    for (int64_t j = 0; j < n; j++) free(names[j]);
    free(names);
    return rc;
}

NB_COMMAND("stats", cmd_stats, "mean, variance, covariance (eq. 12) and correlation of a .npy or CSV table")
