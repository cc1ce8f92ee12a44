/* plot_lines.c — line charts: series of points joined by lines (non-finite
 * points left out, dots on series of at most 40 points), the axes fitted to
 * the finite data, and a legend in the corner that hides the fewest points. */
#include "plot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool finite_pt(const nb_series *s, int64_t i) {
    double x = s->x ? s->x[i] : (double)i;
    return isfinite(x) && isfinite(s->y[i]);
}

static uint32_t series_color(const nb_series *s, int i) { return s->color ? s->color & 0xFFFFFFu : nb_plot_color(i); }


/* Point i of a series in figure coordinates. */
static void point_at(const frame *fr, const nb_series *sr, int64_t i, double *X, double *Y) {
    *X = nb__plot_fx(fr, nb__plot_clamp300(sr->x ? sr->x[i] : (double)i));
    *Y = nb__plot_fy(fr, nb__plot_clamp300(sr->y[i]));
}

/* How much of the series lies in the rectangle: points sampled along the
 * drawn lines, about every 3 units, that fall inside it. */
static long ink_in(const nb_lines *c, const frame *fr, double x0, double y0, double x1, double y1) {
    long n = 0;
    for (int k = 0; k < c->nseries; k++) {
        const nb_series *sr = &c->series[k];
        bool prev = false;
        double px = 0, py = 0;
        for (int64_t i = 0; i < sr->n; i++) {
            if (!finite_pt(sr, i)) continue;
            double X, Y;
            point_at(fr, sr, i, &X, &Y);
            int steps = prev ? (int)fmin(64, fmax(1, hypot(X - px, Y - py) / 3)) : 1;
            for (int j = 1; j <= steps; j++) {
                double t = (double)j / steps, sx = prev ? px + t * (X - px) : X, sy = prev ? py + t * (Y - py) : Y;
                n += sx >= x0 && sx <= x1 && sy >= y0 && sy <= y1;
            }
            px = X, py = Y, prev = true;
        }
    }
    return n;
}

/* Draws a line chart into b; with dry, only lays it out (-1 if it does not fit). */
int nb__plot_draw_lines(cairo_t *cr, box b, const nb_lines *c, bool dry) {
    axes_spec s = {.title = c->title, .xlabel = c->xlabel, .ylabel = c->ylabel, .xmin = INFINITY, .xmax = -INFINITY,
                   .ymin = INFINITY, .ymax = -INFINITY, .xpad = 0.02, .ypad = 0.06, .xint = true};
    int64_t total = 0;
    for (int k = 0; k < c->nseries; k++) {
        const nb_series *sr = &c->series[k];
        for (int64_t i = 0; i < sr->n; i++) {
            if (!finite_pt(sr, i)) continue;
            double x = sr->x ? sr->x[i] : (double)i, y = sr->y[i];
            s.xmin = fmin(s.xmin, x), s.xmax = fmax(s.xmax, x);
            s.ymin = fmin(s.ymin, y), s.ymax = fmax(s.ymax, y);
            s.xint &= x == floor(x);
            total++;
        }
    }
    s.have = total > 0;
    frame fr;
    cairo_save(cr);
    int rc = nb__plot_frame_layout(cr, b, &s, &fr);
    if (rc || dry) {
        cairo_restore(cr);
        return rc;
    }
    nb__plot_frame_draw(cr, b, &s, &fr);

    /* The series, clipped to the plot area. Missing values are skipped and
     * the line joins their finite neighbours: logs leave cells empty between
     * evaluations. Few points (or one) also get a dot at each. */
    cairo_save(cr);
    nb__plot_clip_to(cr, &fr);
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (int k = 0; k < c->nseries; k++) {
        const nb_series *sr = &c->series[k];
        int64_t nfin = 0;
        for (int64_t i = 0; i < sr->n; i++) nfin += finite_pt(sr, i);
        nb__plot_set_color(cr, series_color(sr, k), 1);
        cairo_new_path(cr);
        bool started = false;
        for (int64_t i = 0; i < sr->n; i++) {
            if (!finite_pt(sr, i)) continue;
            double X, Y;
            point_at(&fr, sr, i, &X, &Y);
            if (started) cairo_line_to(cr, X, Y);
            else cairo_move_to(cr, X, Y);
            started = true;
        }
        cairo_stroke(cr);
        if (nfin <= 40)
            for (int64_t i = 0; i < sr->n; i++) {
                if (!finite_pt(sr, i)) continue;
                double X, Y;
                point_at(&fr, sr, i, &X, &Y);
                cairo_new_sub_path(cr);
                cairo_arc(cr, X, Y, 3.2, 0, 2 * M_PI);
                cairo_fill(cr);
            }
    }
    cairo_restore(cr);
    nb__plot_frame_border(cr, &fr);
    double pw = fr.right - fr.left, ph = fr.bottom - fr.top;
    if (total == 0) {
        nb__plot_set_font(cr, FS_LABEL, false);
        nb__plot_text_at(cr, fr.left + pw / 2, fr.top + ph / 2, "no data", 0.5, C_AXIS);
    }

    /* The legend, in the corner where it hides the fewest drawn points. */
    nb__plot_set_font(cr, FS_LABEL, false);
    int nl = 0;
    double lw = 0;
    for (int k = 0; k < c->nseries; k++) {
        if (!c->series[k].label || !c->series[k].label[0]) continue;
        char buf[256];
        lw = fmax(lw, nb__plot_text_w(cr, nb__plot_fit_text(cr, c->series[k].label, pw / 2, buf, sizeof buf)));
        nl++;
    }
    const double sample = 24, lpad = 8, row = 1.55 * FS_LABEL, inset = 8;
    double bw = lpad + sample + 6 + lw + lpad, bh = 2 * lpad + nl * row - (row - nb__plot_cap_h(cr)) + 2;
    if (nl > 0 && bw + 2 * inset <= pw && bh + 2 * inset <= ph) {
        int best = 0;
        long best_cost = -1;
        for (int corner = 0; corner < 4; corner++) {
            /* Top right first: ties go to where readers look for it. */
            double lx = corner & 1 ? fr.left + inset : fr.right - inset - bw;
            double ly = corner & 2 ? fr.bottom - inset - bh : fr.top + inset;
            long cost = ink_in(c, &fr, lx, ly, lx + bw, ly + bh);
            if (best_cost < 0 || cost < best_cost) best_cost = cost, best = corner;
        }
        double lx = floor(best & 1 ? fr.left + inset : fr.right - inset - bw) + 0.5;
        double ly = floor(best & 2 ? fr.bottom - inset - bh : fr.top + inset) + 0.5;
        cairo_rectangle(cr, lx, ly, floor(bw), floor(bh));
        nb__plot_set_color(cr, 0xFFFFFF, 0.9);
        cairo_fill_preserve(cr);
        nb__plot_set_color(cr, C_EDGE, 1);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        double ch = nb__plot_cap_h(cr);
        int i = 0;
        for (int k = 0; k < c->nseries; k++) {
            if (!c->series[k].label || !c->series[k].label[0]) continue;
            char buf[256];
            double base = ly + lpad + ch + 1 + i * row;
            nb__plot_set_color(cr, series_color(&c->series[k], k), 1);
            cairo_set_line_width(cr, 2.5);
            cairo_move_to(cr, lx + lpad, base - ch / 2);
            cairo_line_to(cr, lx + lpad + sample, base - ch / 2);
            cairo_stroke(cr);
            nb__plot_text_at(cr, lx + lpad + sample + 6, base, nb__plot_fit_text(cr, c->series[k].label, pw / 2, buf, sizeof buf), 0, C_TEXT);
            i++;
        }
    }
    cairo_restore(cr);
    return nb__plot_cairo_check(cr, "line chart");
}

int nb_figure_lines(nb_figure *f, int cell, const nb_lines *c) {
    if (nb__plot_check_cell(f, cell, "nb_figure_lines")) return -1;
    if (!c || c->nseries < 0 || (c->nseries > 0 && !c->series))
        return nb_error("nb_figure_lines: expected a chart with 0 or more series, got %d", c ? c->nseries : -1);
    for (int k = 0; k < c->nseries; k++) {
        const nb_series *sr = &c->series[k];
        if (sr->n < 0 || (sr->n > 0 && !sr->y))
            return nb_error("nb_figure_lines: series %d ('%s'): expected n >= 0 points with y values, got n = %lld",
                            k + 1, sr->label ? sr->label : "", (long long)sr->n);
    }
    if (nb__plot_draw_lines(f->measure, nb__plot_cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    nb_lines copy = {nb__plot_keep_str(f, c->title, &ok), nb__plot_keep_str(f, c->xlabel, &ok), nb__plot_keep_str(f, c->ylabel, &ok), NULL,
                     c->nseries};
    nb_series *sr = nb__plot_keep(f, c->series, sizeof(nb_series) * (size_t)c->nseries, &ok);
    for (int k = 0; ok && k < c->nseries; k++) {
        sr[k].label = nb__plot_keep_str(f, sr[k].label, &ok);
        sr[k].x = nb__plot_keep(f, sr[k].x, sizeof(double) * (size_t)sr[k].n, &ok);
        sr[k].y = nb__plot_keep(f, sr[k].y, sizeof(double) * (size_t)sr[k].n, &ok);
    }
    copy.series = sr;
    if (!ok) return nb_error("nb_figure_lines: out of memory for a copy of the chart");
    f->cells[cell].lines = copy;
    f->cells[cell].kind = CELL_LINES;
    return 0;
}
