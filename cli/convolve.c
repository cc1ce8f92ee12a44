/* convolve.c — `nabla convolve`: the distribution of X + Y for independent
 * discrete X and Y given as value,probability tables (notes §4.2, eq. 25-27),
 * printed the same way and drawn as a bar chart on request. */
#include "cli.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PMF_TOL 1e-6
#define MAX_BARS 100000

typedef struct pmf {
    double *v, *p;
    int *line; /* where each row was, for messages */
    int64_t n;
} pmf;

static void pmf_free(pmf *d) {
    free(d->v);
    free(d->p);
    free(d->line);
}

static int by_value(const void *a, const void *b) {
    double x = **(const double *const *)a, y = **(const double *const *)b;
    return (x > y) - (x < y);
}

/* Reads "value,probability" rows (a header row of words is allowed first,
 * '#' lines and blank lines are skipped) and checks them: finite values, each
 * once; probabilities in [0, 1] summing to 1 within PMF_TOL. Prints the
 * error (file:line:column) and returns -1. */
static int read_pmf(const char *cmd, const char *path, pmf *d) {
    memset(d, 0, sizeof *d);
    size_t len;
    char *text = (char *)nb_read_file(path, &len);
    if (!text) return nb_cli_fail(cmd, "%s", nb_errmsg()), -1;
    int64_t cap = 0;
    double total = 0;
    int rc = 0;
    bool seen_row = false;
    const char *p = text, *stop = text + len;
    p += nb_utf8_bom(p, len);
    for (int line = 1; p < stop && !rc; line++) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        if (!eol) eol = stop;
        const char *e = eol;
        if (e > p && e[-1] == '\r') e--;
        const char *t = p;
        while (t < e && isspace((unsigned char)*t)) t++;
        const char *next = eol + 1;
        if (t == e || *t == '#') {
            p = next;
            continue;
        }
        /* Numbers are read as C strings: the bytes after a NUL would be
         * dropped unsaid ("1\0junk" read as 1). */
        if (memchr(p, 0, (size_t)(e - p))) {
            rc = nb_cli_fail(cmd, "%s:%d: a NUL byte: not a value,probability table", path, line);
            break;
        }
        const char *comma = memchr(p, ',', (size_t)(e - p));
        double v, pr;
        if (!comma || memchr(comma + 1, ',', (size_t)(e - comma - 1))) {
            rc = nb_cli_fail(cmd, "%s:%d: expected two cells, value,probability; found %s", path, line,
                             comma ? "more than two" : "one");
            break;
        }
        bool vok = nb_cli_parse_number(p, comma, &v), pok = nb_cli_parse_number(comma + 1, e, &pr);
        if (!seen_row && !vok && !pok) { /* a header of words, e.g. "value,probability" */
            seen_row = true;
            p = next;
            continue;
        }
        seen_row = true;
        if (!vok || !isfinite(v)) {
            int w = (int)(comma - p);
            rc = nb_cli_fail(cmd, "%s:%d:1: value '%.*s' is not a finite number", path, line, w > 40 ? 40 : w, p);
            break;
        }
        if (!pok || !(pr >= 0 && pr <= 1)) {
            int w = (int)(e - comma - 1);
            rc = nb_cli_fail(cmd, "%s:%d:%d: probability '%.*s' is not a number in [0, 1]", path, line,
                             (int)(comma - p) + 2, w > 40 ? 40 : w, comma + 1);
            break;
        }
        if (d->n == cap) {
            cap = cap ? 2 * cap : 64;
            double *nv = realloc(d->v, sizeof(double) * (size_t)cap), *np = nv ? realloc(d->p, sizeof(double) * (size_t)cap) : NULL;
            if (nv) d->v = nv;
            if (np) d->p = np;
            int *nl = np ? realloc(d->line, sizeof(int) * (size_t)cap) : NULL;
            if (nl) d->line = nl;
            if (!nv || !np || !nl) {
                rc = nb_cli_fail(cmd, "%s: out of memory after %lld rows", path, (long long)d->n);
                break;
            }
        }
        d->v[d->n] = v, d->p[d->n] = pr, d->line[d->n] = line;
        d->n++;
        total += pr;
        p = next;
    }
    free(text);
    if (!rc && d->n == 0) rc = nb_cli_fail(cmd, "%s: no value,probability rows", path);
    if (!rc && fabs(total - 1) > PMF_TOL)
        rc = nb_cli_fail(cmd, "%s: the probabilities sum to %.10g, not 1 (within %g)", path, total, PMF_TOL);
    if (!rc) {
        /* Each value once: a repeated value is refused (naming both lines)
         * rather than merged, since it is more likely a typo than meant. */
        const double **order = malloc(sizeof *order * (size_t)d->n);
        if (!order) rc = nb_cli_fail(cmd, "out of memory");
        for (int64_t i = 0; order && i < d->n; i++) order[i] = &d->v[i];
        if (order) qsort(order, (size_t)d->n, sizeof *order, by_value);
        for (int64_t i = 1; order && i < d->n && !rc; i++)
            if (*order[i] == *order[i - 1]) {
                int64_t a = order[i - 1] - d->v, b = order[i] - d->v;
                if (d->line[a] > d->line[b]) {
                    int64_t t = a;
                    a = b, b = t;
                }
                rc = nb_cli_fail(cmd, "%s:%d: value %.17g again (first on line %d); give each value once", path,
                                 d->line[b], d->v[b], d->line[a]);
            }
        free(order);
    }
    if (rc) pmf_free(d);
    return rc ? -1 : 0;
}

static int cmd_convolve(int argc, char **argv) {
    const char *cmd = "convolve", *out = NULL;
    bool json = false;
    nb_flag flags[] = {
        {"--out", NB_FLAG_OUTPUT, &out, "a bar chart of the distribution of X + Y; .png, .svg or .pdf",
         .range = "png|svg|pdf", .meta = "BARS", .def = ""},
        NB_FLAG_JSON(&json),
    };
    nb_cli cli = {
        .cmd = cmd,
        .args = "P.csv Q.csv ",
        .about =
            "The distribution of X + Y for independent discrete X ~ P and Y ~ Q (notes §4.2):\n"
            "  Pr(X + Y = c) = sum over a + b = c of P(a) Q(b)      (eq. 25)\n"
            "               = (P * Q)(c) = sum_a P(a) Q(c - a)       (eq. 26-27),\n"
            "the convolution of the two probability mass functions. Each file holds value,probability rows;\n"
            "a header row of words, blank lines and lines starting with # are skipped, and a probability may\n"
            "be a fraction (1/6). Values must be finite and each given once (a repeated value is refused,\n"
            "naming both lines); probabilities in [0, 1], summing to 1 within 1e-6.\n"
            "\n"
            "The result is printed the same way: a value,probability header, then one row per possible sum\n"
            "in increasing order, equal sums merged (0.1 + 0.2 and 0.3 are one value), sums of probability 0\n"
            "left out. With --json the rows go to stderr and stdout gets the values, probabilities, mean and\n"
            "variance as one JSON object.",
        .flags = flags,
        .nflags = (int)(sizeof flags / sizeof flags[0]),
        .min_pos = 2,
        .max_pos = 2,
    };
    const char *pos[2];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    pmf P, Q;
    if (read_pmf(cmd, pos[0], &P)) return 1;
    if (read_pmf(cmd, pos[1], &Q)) {
        pmf_free(&P);
        return 1;
    }
    double *sv = NULL, *sp = NULL;
    int64_t n = 0;
    int rc = 0;
    nb_figure *fig = NULL;
    char **names = NULL;
    if (nb_convolve_pmf(P.v, P.p, P.n, Q.v, Q.p, Q.n, &sv, &sp, &n)) {
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    double mean = 0, var = 0;
    for (int64_t k = 0; k < n; k++) mean += sp[k] * sv[k];
    for (int64_t k = 0; k < n; k++) var += sp[k] * (sv[k] - mean) * (sv[k] - mean);
    FILE *o = json ? stderr : stdout;
    fprintf(o, "value,probability\n");
    for (int64_t k = 0; k < n; k++) fprintf(o, "%.12g,%.12g\n", sv[k], sp[k]);
    if (out) {
        if (n < 1 || n > MAX_BARS) {
            rc = nb_cli_fail(cmd, "--out: %lld sums are too many bars (at most %d)", (long long)n, MAX_BARS);
            goto done;
        }
        names = calloc((size_t)n, sizeof *names);
        for (int64_t k = 0; names && k < n; k++) {
            names[k] = malloc(32);
            if (!names[k]) break;
            snprintf(names[k], 32, "%.6g", sv[k]);
        }
        if (!names || !names[n - 1]) {
            rc = nb_cli_fail(cmd, "out of memory");
            goto done;
        }
        const char *slash_p = strrchr(pos[0], '/'), *slash_q = strrchr(pos[1], '/');
        char title[256];
        snprintf(title, sizeof title, "X + Y for X ~ %s, Y ~ %s", slash_p ? slash_p + 1 : pos[0],
                 slash_q ? slash_q + 1 : pos[1]);
        /* About 28 px a bar, within 640..16384. */
        int64_t wpx = 160 + 28 * n;
        int width = wpx < 640 ? 640 : wpx > 16384 ? 16384 : (int)wpx;
        fig = nb_figure_new(width, 480, 1, 1, title);
        nb_bars bars = {.title = NULL, .clabel = "X + Y", .vlabel = "probability", .names = (const char *const *)names,
                        .values = sp, .n = (int)n};
        if (!fig || nb_figure_bars(fig, 0, &bars) || nb_figure_save(fig, out)) {
            rc = nb_cli_fail(cmd, "%s", nb_errmsg());
            goto done;
        }
        fprintf(json ? stderr : stdout, "%s: %lld bars\n", out, (long long)n);
    }
    if (json) {
        printf("{\"p\": ");
        nb_cli_json_string(stdout, pos[0]);
        printf(", \"q\": ");
        nb_cli_json_string(stdout, pos[1]);
        printf(", \"n\": %lld, \"mean\": %.17g, \"variance\": %.17g, \"values\": [", (long long)n, mean, var);
        for (int64_t k = 0; k < n; k++) printf("%s%.17g", k ? ", " : "", sv[k]);
        printf("], \"probabilities\": [");
        for (int64_t k = 0; k < n; k++) printf("%s%.17g", k ? ", " : "", sp[k]);
        printf("]}\n");
    }
done:
    if (names)
        for (int64_t k = 0; k < n; k++) free(names[k]);
    free(names);
    nb_figure_free(fig);
    free(sv);
    free(sp);
    pmf_free(&P);
    pmf_free(&Q);
    return rc;
}

NB_COMMAND("convolve", cmd_convolve, "the distribution of X + Y from those of X and Y (a convolution, eq. 25-27)")
