/* plot.c — `nabla plot`: training curves from a CSV log (nabla train --log)
 * drawn as a PNG, SVG or PDF: losses on the left, accuracies on the right. */
#include "cli.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Case-insensitive "needle occurs in hay". */
static bool contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t k = 0;
        while (k < n && hay[k] && tolower((unsigned char)hay[k]) == needle[k]) k++;
        if (k == n) return true;
    }
    return false;
}

/* Whether column k holds a value worth a curve: logs write 0 for metrics
 * they did not measure (e.g. adversarial accuracy without --adversarial), and
 * NaN or empty cells for the same reason. */
static bool has_signal(const nb_csv *c, int k) {
    for (int64_t i = 0; i < c->nrows; i++) {
        double v = c->data[i * c->ncols + k];
        if (isfinite(v) && v != 0) return true;
    }
    return false;
}

/* "runs/mnist.csv" -> "runs/mnist.png"; caller frees. */
static char *default_out(const char *log) {
    size_t n = strlen(log);
    const char *slash = strrchr(log, '/'), *dot = strrchr(log, '.');
    if (dot && (!slash || dot > slash) && dot != log && dot[-1] != '/') n = (size_t)(dot - log);
    char *out = malloc(n + 5);
    if (out) {
        memcpy(out, log, n);
        memcpy(out + n, ".png", 5);
    }
    return out;
}

/* The colour of a column follows its role, the name without "loss" or
 * "acc..." ("train_", "test_"), so train_loss and train_accuracy share a
 * colour across the two charts. roles[] collects the roles seen so far. */
static uint32_t role_color(const char *name, char roles[][64], int *nroles) {
    char key[64];
    snprintf(key, sizeof key, "%s", name);
    for (char *q = key; *q; q++) *q = (char)tolower((unsigned char)*q);
    const char *words[] = {"accuracy", "acc", "loss"};
    for (int k = 0; k < 3; k++) {
        char *hit = strstr(key, words[k]);
        if (hit) {
            memmove(hit, hit + strlen(words[k]), strlen(hit + strlen(words[k])) + 1);
            break;
        }
    }
    for (int k = 0; k < *nroles; k++)
        if (!strcmp(roles[k], key)) return nb_plot_color(k);
    if (*nroles < 64) snprintf(roles[(*nroles)++], 64, "%s", key);
    return nb_plot_color(*nroles - 1);
}

#define MAX_PANELS 16
#define MAX_SERIES 64

static int cmd_plot(int argc, char **argv) {
    const char *cmd = "plot", *out = NULL, *title = NULL;
    long width = 0, height = 0; /* unless given, from the number of charts */
    nb_flag flags[] = {
        {"--out", NB_FLAG_OUTPUT, &out, "the picture to write; .png, .svg or .pdf picks the format",
         .range = "png|svg|pdf", .meta = "FILE", .def = "LOG with .png in place of .csv"},
        {"--title", NB_FLAG_STR, &title, "title above the charts", .meta = "TEXT", .def = "the log's file name"},
        {"--width", NB_FLAG_INT, &width, "width in pixels (px in an SVG, points in a PDF)", .range = "[200, 16384]",
         .def = "720 for one chart, 1280 for more"},
        {"--height", NB_FLAG_INT, &height, "height in pixels", .range = "[150, 16384]",
         .def = "60 + 440 per row of two charts"},
    };
    nb_cli cli = {.cmd = cmd, .args = "LOG.csv ",
                  .about = "Draws the curves of a CSV log (the --log of nabla train, charrnn, wavenet, chat or dqn train). The first\n"
                           "column is the x axis. Columns whose name contains 'loss' share the left chart, those\n"
                           "containing 'acc' or 'recall' the right one; without either, every other column gets a chart of its\n"
                           "own. Columns that are all zero or empty (metrics not measured) are left out.",
                  .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&cli, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    const char *log = pos[0];
    nb_csv *c = nb_csv_read_ex(log, NB_CSV_LOG); /* a training log: other kinds and data CSVs are named */
    if (!c) return nb_cli_fail(cmd, "%s", nb_errmsg());
    char *out_owned = NULL;
    if (!out) {
        /* The default output is checked like a given one, before drawing. */
        if (!(out = out_owned = default_out(log))) {
            nb_csv_free(c);
            return nb_cli_fail(cmd, "out of memory");
        }
        bool bad = nb_cli_check_output(cmd, "--out (by default)", out, "png|svg|pdf");
        if (bad) nb_cli_usage_line(&cli);
        if (bad || nb_cli_not_input(&cli, "--out (by default)", out, log)) {
            free(out_owned);
            nb_csv_free(c);
            return 2;
        }
    }
    int rc = 1;
    nb_figure *fig = NULL;
    double *colbuf = NULL; /* the table by columns */
    if (c->ncols < 2) {
        nb_cli_fail(cmd, "%s: only one column ('%s'); expected the x axis then the values to plot", log, c->names[0]);
        goto done;
    }
    if (c->nrows == 0) {
        nb_cli_fail(cmd, "%s: no data rows after the header", log);
        goto done;
    }
    /* Columns are strided in the table; series want contiguous arrays. */
    colbuf = malloc(sizeof(double) * (size_t)c->nrows * (size_t)c->ncols);
    if (!colbuf) {
        nb_cli_fail(cmd, "out of memory for %lld rows", (long long)c->nrows);
        goto done;
    }
    for (int k = 0; k < c->ncols; k++)
        for (int64_t i = 0; i < c->nrows; i++) colbuf[(size_t)k * (size_t)c->nrows + (size_t)i] = c->data[i * c->ncols + k];
#define COLUMN(k) (colbuf + (size_t)(k) * (size_t)c->nrows)

    /* Group the columns: losses | accuracies, or one chart per other column. */
    nb_series loss[MAX_SERIES], acc[MAX_SERIES], other[MAX_PANELS];
    const char *other_title[MAX_PANELS];
    int nloss = 0, nacc = 0, nother = 0, nnamed = 0;
    /* Rates in [0, 1] share the right chart: accuracies, and the recall@k
     * of chat train's log (they were left out of its picture). */
#define IS_RATE(name) (contains(name, "acc") || contains(name, "recall"))
    for (int k = 1; k < c->ncols; k++) nnamed += contains(c->names[k], "loss") || IS_RATE(c->names[k]);
    char roles[64][64];
    int nroles = 0;
    for (int pass = 0; pass < 2 && nloss + nacc + nother == 0; pass++) {
        /* The second pass keeps all-zero columns: a chart of zeros says more
         * than no chart at all. */
        for (int k = 1; k < c->ncols; k++) {
            if (pass == 0 && !has_signal(c, k)) continue;
            nb_series s = {c->names[k], COLUMN(0), COLUMN(k), c->nrows, role_color(c->names[k], roles, &nroles)};
            if (contains(c->names[k], "loss")) {
                if (nloss < MAX_SERIES) loss[nloss++] = s;
            } else if (IS_RATE(c->names[k])) {
                if (nacc < MAX_SERIES) acc[nacc++] = s;
            } else if (nnamed == 0 && nother < MAX_PANELS) {
                other_title[nother] = c->names[k];
                s.label = NULL; /* the chart's title already names it */
                other[nother++] = s;
            }
        }
    }
    /* A curve that cannot be drawn says so: a diverged run logs inf or NaN
     * (missing values, as for metrics measured only at some steps, are NaN
     * too, so only a column with no finite value at all is worth a word). */
    for (int k = 1; k < c->ncols; k++) {
        int64_t finite = 0, inf = 0, first_inf = -1;
        for (int64_t i = 0; i < c->nrows; i++) {
            double v = c->data[i * c->ncols + k];
            finite += isfinite(v);
            if (isinf(v) && inf++ == 0) first_inf = i;
        }
        if (inf)
            nb_cli_warn(cmd, "%s: column '%s' holds %lld infinite value%s (first at %s = %g; a diverged run?), left "
                             "out of its curve", log, c->names[k], (long long)inf, inf == 1 ? "" : "s", c->names[0],
                        c->data[first_inf * c->ncols]);
        else if (finite == 0)
            nb_cli_warn(cmd, "%s: column '%s' holds no finite value: its curve is empty", log, c->names[k]);
    }
    nb_lines charts[MAX_PANELS];
    int np = 0;
    if (nloss) charts[np++] = (nb_lines){"loss", c->names[0], NULL, loss, nloss};
    if (nacc) {
        int nrecall = 0;
        for (int k = 0; k < nacc; k++) nrecall += contains(acc[k].label, "recall");
        const char *t = nrecall == 0 ? "accuracy" : nrecall == nacc ? "recall" : "accuracy and recall";
        charts[np++] = (nb_lines){t, c->names[0], NULL, acc, nacc};
    }
    for (int k = 0; k < nother && np < MAX_PANELS; k++) charts[np++] = (nb_lines){other_title[k], c->names[0], NULL, &other[k], 1};
    if (np == 0) {
        nb_cli_fail(cmd, "%s: no column to plot besides '%s'", log, c->names[0]);
        goto done;
    }
    /* Charts side by side, two to a row (loss | accuracy), more wrap. */
    int cols = np == 1 ? 1 : 2, rows = (np + cols - 1) / cols;
    int w = nb_cli_flag(&cli, "--width")->given ? (int)width : (np == 1 ? 720 : 1280);
    int h = nb_cli_flag(&cli, "--height")->given ? (int)height : 60 + 440 * rows;
    if (!title) {
        const char *slash = strrchr(log, '/');
        title = slash ? slash + 1 : log;
    }
    fig = nb_figure_new(w, h, rows, cols, title);
    if (!fig) {
        nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    for (int p = 0; p < np; p++)
        if (nb_figure_lines(fig, p, &charts[p])) {
            nb_cli_fail(cmd, "%s (%d x %d for %d chart%s; try a larger --width or --height)", nb_errmsg(), w, h, np,
                        np == 1 ? "" : "s");
            goto done;
        }
    if (nb_figure_save(fig, out)) {
        nb_cli_fail(cmd, "%s", nb_errmsg());
        goto done;
    }
    printf("%s: %d chart%s of the %lld row%s of %s\n", out, np, np == 1 ? "" : "s", (long long)c->nrows,
           c->nrows == 1 ? "" : "s", log);
    rc = 0;
done:
    nb_figure_free(fig);
    free(colbuf);
    free(out_owned);
    nb_csv_free(c);
    return rc;
}

NB_COMMAND("plot", cmd_plot, "draw training curves from a CSV log as a PNG, SVG or PDF")
