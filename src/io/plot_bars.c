/* plot_bars.c — bar charts: bars from zero, standing or lying (when a name
 * is too long for its bar), each value written at its bar's end. */
#include "plot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A bar's value as written at its end, with the decimals every bar shares:
 * three significant digits of the largest (0.873, 0.050; 12.5; 1204). */
static int value_decimals(const double *v, int n) {
    double big = 0;
    bool whole = true;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) big = fmax(big, fabs(v[i])), whole &= v[i] == floor(v[i]);
    if (whole || big == 0) return 0;
    int dec = 2 - (int)floor(log10(big));
    return dec < 0 ? 0 : dec > 8 ? 8 : dec;
}

static void value_text(double v, int dec, char *buf, size_t n) {
    snprintf(buf, n, "%s%.*f", v < 0 ? "\xE2\x88\x92" : "", dec, fabs(v));
}

int nb__plot_draw_bars(cairo_t *cr, box b, const nb_bars *c, bool dry) {
    /* Bars stand up when every name fits under its bar, and lie down (names
     * down the left side, read like a list) when one does not. */
    bool lie = false;
    if (c->names) {
        nb__plot_set_font(cr, FS_TICK, false);
        double per = (b.w - 2 * PAD - 60) / c->n;
        for (int i = 0; i < c->n && !lie; i++) lie = c->names[i] && nb__plot_text_w(cr, c->names[i]) > per - 6;
    }
    double lo = 0, hi = 0; /* bars grow from zero, which is always in view */
    for (int i = 0; i < c->n; i++)
        if (isfinite(c->values[i])) lo = fmin(lo, nb__plot_clamp300(c->values[i])), hi = fmax(hi, nb__plot_clamp300(c->values[i]));
    axes_spec s = {.title = c->title, .have = true};
    if (lie) {
        s.xlabel = c->vlabel, s.ylabel = c->clabel;
        s.xmin = lo, s.xmax = hi, s.xpad = 0.04;
        s.ycat = c->names, s.nycat = c->n, s.ycat_on = true;
    } else {
        s.ylabel = c->vlabel, s.xlabel = c->clabel;
        s.ymin = lo, s.ymax = hi, s.ypad = 0.06;
        s.xcat = c->names, s.nxcat = c->n, s.xcat_on = true;
    }
    frame fr;
    cairo_save(cr);
    int rc = nb__plot_frame_layout(cr, b, &s, &fr);
    if (rc || dry) {
        cairo_restore(cr);
        return rc;
    }
    if (lie) { /* the first name at the top, as a list reads */
        double t = fr.ay.lo;
        fr.ay.lo = fr.ay.hi, fr.ay.hi = t;
    }
    nb__plot_set_font(cr, FS_TICK, false);
    double ch = nb__plot_cap_h(cr);
    double slot = lie ? fabs(nb__plot_fy(&fr, 1) - nb__plot_fy(&fr, 0)) : nb__plot_fx(&fr, 1) - nb__plot_fx(&fr, 0);
    bool values = slot >= (lie ? ch + 4 : 0) && c->n <= 64;
    /* The value axis starts at the bars' base (zero) and ends a little past
     * the longest bar; when each bar's value is written past its end, inside
     * the frame, far enough for the longest text to fit. */
    double length = lie ? fr.right - fr.left : fr.bottom - fr.top, room = 0.06 * length;
    int dec = value_decimals(c->values, c->n);
    for (int i = 0; values && i < c->n; i++) {
        char buf[48];
        value_text(c->values[i], dec, buf, sizeof buf);
        room = fmax(room, (lie ? nb__plot_text_w(cr, buf) : ch) + 8);
    }
    if (room > 0.4 * length) values = false, room = 0.06 * length;
    double r = room / length;
    if (hi == lo) hi = 1; /* all zero */
    double nlo = lo < 0 ? (lo - r * hi) / (1 - r) : lo, nhi = hi > 0 ? (hi - r * lo) / (1 - r) : hi;
    if (lie) nb__plot_make_axis(cr, &fr.ax, nlo, nhi, true, 0, length, 8 * FS_TICK, true, false);
    else nb__plot_make_axis(cr, &fr.ay, nlo, nhi, true, 0, length, 3.5 * FS_TICK, false, false);
    nb__plot_frame_draw(cr, b, &s, &fr);
    for (int i = 0; i < c->n; i++) {
        double v = nb__plot_clamp300(c->values[i]);
        if (!isfinite(c->values[i])) continue;
        uint32_t col = c->colors && c->colors[i] ? c->colors[i] : c->color ? c->color : nb_plot_color(0);
        nb__plot_set_color(cr, col, 1);
        double half = 0.4 * slot;
        char buf[48];
        value_text(v, dec, buf, sizeof buf);
        if (lie) {
            double y = nb__plot_fy(&fr, i), x0 = nb__plot_fx(&fr, 0), x1 = nb__plot_fx(&fr, v);
            cairo_rectangle(cr, fmin(x0, x1), y - half, fabs(x1 - x0), 2 * half);
            cairo_fill(cr);
            if (values) {
                double tx = v >= 0 ? x1 + 4 : x1 - 4;
                nb__plot_text_at(cr, tx, y + ch / 2, buf, v >= 0 ? 0 : 1, C_TEXT);
            }
        } else {
            double x = nb__plot_fx(&fr, i), y0 = nb__plot_fy(&fr, 0), y1 = nb__plot_fy(&fr, v);
            cairo_rectangle(cr, x - half, fmin(y0, y1), 2 * half, fabs(y1 - y0));
            cairo_fill(cr);
            if (values && nb__plot_text_w(cr, buf) <= slot) nb__plot_text_at(cr, x, v >= 0 ? y1 - 4 : y1 + 4 + ch, buf, 0.5, C_TEXT);
        }
    }
    /* The zero line. */
    nb__plot_set_color(cr, C_AXIS, 1);
    cairo_set_line_width(cr, 1);
    if (lie) {
        double x = floor(nb__plot_fx(&fr, 0)) + 0.5;
        cairo_move_to(cr, x, fr.top);
        cairo_line_to(cr, x, fr.bottom);
    } else {
        double y = floor(nb__plot_fy(&fr, 0)) + 0.5;
        cairo_move_to(cr, fr.left, y);
        cairo_line_to(cr, fr.right, y);
    }
    cairo_stroke(cr);
    nb__plot_frame_border(cr, &fr);
    cairo_restore(cr);
    return nb__plot_cairo_check(cr, "bar chart");
}

int nb_figure_bars(nb_figure *f, int cell, const nb_bars *c) {
    if (nb__plot_check_cell(f, cell, "nb_figure_bars")) return -1;
    if (!c || c->n < 1 || c->n > 100000 || !c->values)
        return nb_error("nb_figure_bars: expected 1..100000 bars with values, got %d", c ? c->n : 0);
    if (nb__plot_draw_bars(f->measure, nb__plot_cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    size_t n = (size_t)c->n;
    nb_bars copy = *c;
    copy.title = nb__plot_keep_str(f, c->title, &ok);
    copy.clabel = nb__plot_keep_str(f, c->clabel, &ok);
    copy.vlabel = nb__plot_keep_str(f, c->vlabel, &ok);
    copy.values = nb__plot_keep(f, c->values, sizeof(double) * n, &ok);
    copy.colors = nb__plot_keep(f, c->colors, sizeof(uint32_t) * n, &ok);
    const char **names = nb__plot_keep(f, c->names, sizeof(char *) * n, &ok);
    for (size_t i = 0; ok && names && i < n; i++) names[i] = nb__plot_keep_str(f, names[i], &ok);
    copy.names = names;
    if (!ok) return nb_error("nb_figure_bars: out of memory for a copy of the chart");
    f->cells[cell].bars = copy;
    f->cells[cell].kind = CELL_BARS;
    return 0;
}
