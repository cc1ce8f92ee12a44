/* plot_axes.c — the axes every chart of a figure lays out: "nice" ticks
 * and their labels, category axes of bar charts, the plot area placed in
 * its cell around the title and labels, and its grid, ticks and border. */
#include "plot.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The "nice" step (1, 2, 2.5 or 5 times a power of ten) nearest to raw. */
static double nice_step(double raw, int *mant25, int *exp10) {
    int e = (int)floor(log10(raw));
    double f = raw / pow(10.0, e), m;
    if (f < 1.5) m = 1;
    else if (f < 2.25) m = 2;
    else if (f < 3.5) m = 2.5;
    else if (f < 7.5) m = 5;
    else {
        m = 1;
        e++;
    }
    *mant25 = m == 2.5;
    *exp10 = e;
    return m * pow(10.0, e);
}

/* Writes the tick labels with one shared format: plain decimals with as many
 * places as the step needs; k, M, G for large round values (300000 is
 * "300k"); %g's exponents for the very large and the very small; a true
 * minus sign (U+2212), as typeset numbers have. */
static void label_ticks(axis *a, double step, int mant25, int e) {
    double big = fmax(fabs(a->lo), fabs(a->hi)), d = 1;
    const char *suffix = "";
    bool sci = big >= 1e13 || (big < 1e-3 && big > 0);
    if (!sci) {
        static const struct { double at, div; const char *sfx; } units[] = {{1e10, 1e9, "G"}, {1e7, 1e6, "M"}, {1e4, 1e3, "k"}};
        for (int k = 0; k < 3; k++)
            if (big >= units[k].at && step >= units[k].div / 100) {
                d = units[k].div;
                suffix = units[k].sfx;
                break;
            }
    }
    int dec = (mant25 ? 1 : 0) - e + (int)lround(log10(d));
    if (dec < 0) dec = 0;
    if (dec > 12) dec = 12;
    for (int k = 0; k < a->nticks; k++) {
        char num[28];
        double t = a->tick[k];
        if (sci) snprintf(num, sizeof num, "%.3g", fabs(t));
        else snprintf(num, sizeof num, "%.*f%s", dec, fabs(t) / d, t == 0 ? "" : suffix);
        snprintf(a->label[k], sizeof a->label[k], "%s%s", t < 0 ? "\xE2\x88\x92" : "", num);
    }
}

/* Chooses the visible range from the finite data range [dmin, dmax] (pad is
 * the fraction added on each side), then ticks about every `spacing` units
 * of the `length`-long axis, fewer when the labels (in cr's current font)
 * would not fit between them: horizontal axes need a label's width,
 * vertical ones its height. */
void nb__plot_make_axis(cairo_t *cr, axis *a, double dmin, double dmax, bool have, double pad, double length,
                      double spacing, bool horizontal, bool integers) {
    memset(a, 0, sizeof *a);
    if (!have) {
        dmin = 0;
        dmax = 1;
    }
    dmin = fmax(-1e300, fmin(1e300, dmin)); /* beyond, the span would overflow */
    dmax = fmax(-1e300, fmin(1e300, dmax));
    double span = dmax - dmin, mag = fmax(fabs(dmin), fabs(dmax));
    if (!(span > 1e-12 * mag) || span < 1e-280) {
        /* One value (a single point, a constant series): centre it in a
         * range of +-10% of its size, or +-1 around zero. Spans near the
         * smallest doubles count as one value too, so that units per value
         * stay finite. */
        double d = mag > 1e-280 ? 0.1 * mag : 1.0;
        if (integers && d < 1) d = 1;
        dmin -= d;
        dmax += d;
        span = dmax - dmin;
        pad = 0;
    }
    a->lo = dmin - pad * span;
    a->hi = dmax + pad * span;
    int target = (int)(length / spacing);
    if (target > 20) target = 20;
    for (;; target--) {
        if (target < 1) target = 1;
        int mant25, e;
        double step = nice_step((a->hi - a->lo) / target, &mant25, &e);
        if (integers && (step < 1 || mant25)) {
            /* Whole-number data (epochs, steps) gets whole-number ticks. */
            step = step < 1 ? 1 : step * 0.8; /* 2.5 x 10^e -> 2 x 10^e */
            mant25 = 0;
            if (e < 0) e = 0;
        }
        double start = ceil(a->lo / step - 1e-9) * step;
        a->nticks = 0;
        for (int k = 0; k < MAX_TICKS; k++) {
            double t = start + k * step;
            if (t > a->hi + 1e-9 * step) break;
            if (fabs(t) < 1e-9 * step) t = 0; /* no "-0.0" */
            a->tick[a->nticks++] = t;
        }
        label_ticks(a, step, mant25, e);
        double need = 0;
        for (int k = 0; k < a->nticks; k++) {
            double n = horizontal ? nb__plot_text_w(cr, a->label[k]) + 2.5 * FS_TICK : 2.2 * FS_TICK;
            need = fmax(need, n);
        }
        if (target == 1 || step * length / (a->hi - a->lo) >= need) break;
    }
}

/* A category axis: n bars centred on 0..n-1, labelled by names (NULL: the
 * index), every one if they fit, else every 2nd, 5th, 10th, ... */
static void category_axis(cairo_t *cr, axis *a, const char *const *names, int n, double length, bool horizontal) {
    memset(a, 0, sizeof *a);
    a->lo = -0.5;
    a->hi = n - 0.5;
    a->categories = true;
    double need = 1.4 * FS_TICK, per = length / n;
    if (horizontal) {
        char wide[32];
        snprintf(wide, sizeof wide, "%d", n - 1);
        need = nb__plot_text_w(cr, wide) + (names ? 6 : 2 * FS_TICK);
        for (int i = 0; names && i < n; i++)
            if (names[i]) need = fmax(need, fmin(nb__plot_text_w(cr, names[i]), 8 * FS_TICK) + 6);
    }
    int every = 1;
    static const int strides[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};
    for (size_t k = 0; k < sizeof strides / sizeof *strides && (every * per < need || n / every >= MAX_TICKS); k++)
        every = strides[k];
    for (int i = 0; i < n && a->nticks < MAX_TICKS; i += every) {
        a->tick[a->nticks] = i;
        if (names) snprintf(a->label[a->nticks], sizeof a->label[0], "%s", names[i] ? names[i] : "");
        else snprintf(a->label[a->nticks], sizeof a->label[0], "%d", i);
        a->nticks++;
    }
}


/* Places the plot area inside the cell, leaving room for the title, the
 * tick labels and the axis labels, and makes the axes. -1 if the cell is too
 * small for them. */
int nb__plot_frame_layout(cairo_t *cr, box b, const axes_spec *s, frame *fr) {
    nb__plot_set_font(cr, FS_TITLE, true);
    double title_h = s->title ? nb__plot_cap_h(cr) + 12 : 0;
    nb__plot_set_font(cr, FS_LABEL, false);
    double label_h = nb__plot_cap_h(cr) * 1.35;
    nb__plot_set_font(cr, FS_TICK, false);
    double tick_h = nb__plot_cap_h(cr);
    fr->top = b.y + PAD + title_h + 6;
    fr->bottom = b.y + b.h - PAD - TICK - GAP - tick_h - (s->xlabel ? label_h + 8 : 0);
    double ph = fr->bottom - fr->top;
    if (s->ycat_on) category_axis(cr, &fr->ay, s->ycat, s->nycat, ph > 1 ? ph : 1, false);
    else nb__plot_make_axis(cr, &fr->ay, s->ymin, s->ymax, s->have, s->ypad, ph > 1 ? ph : 1, 3.5 * FS_TICK, false, false);
    double ylw = 0;
    for (int k = 0; k < fr->ay.nticks; k++) ylw = fmax(ylw, nb__plot_text_w(cr, fr->ay.label[k]));
    fr->left = b.x + PAD + (s->ylabel ? label_h + 8 : 0) + ylw + GAP + TICK;
    /* The last x label may reach past the plot's right edge by half its width. */
    fr->right = b.x + b.w - PAD - 14 - s->right_extra;
    double pw = fr->right - fr->left;
    if (pw < 40 || ph < 40)
        return nb_error("a chart of %.0f x %.0f is too small for its axes and labels; make the figure larger", b.w, b.h);
    if (s->xcat_on) category_axis(cr, &fr->ax, s->xcat, s->nxcat, pw, true);
    else nb__plot_make_axis(cr, &fr->ax, s->xmin, s->xmax, s->have, s->xpad, pw, 8 * FS_TICK, true, s->xint);
    return 0;
}

/* Title, grid, ticks, tick labels and axis labels of a frame (the frame's
 * border itself is drawn last, over the data, by nb__plot_frame_border). */
void nb__plot_frame_draw(cairo_t *cr, box b, const axes_spec *s, const frame *fr) {
    char buf[256];
    double pw = fr->right - fr->left, ph = fr->bottom - fr->top;
    if (s->title) {
        nb__plot_set_font(cr, FS_TITLE, true);
        const char *t = nb__plot_fit_text(cr, s->title, b.w - 2 * PAD, buf, sizeof buf);
        double x = fr->left + pw / 2, half = nb__plot_text_w(cr, t) / 2;
        x = fmax(b.x + PAD + half, fmin(b.x + b.w - PAD - half, x)); /* centred over the plot, inside the cell */
        nb__plot_text_at(cr, x, b.y + PAD + nb__plot_cap_h(cr), t, 0.5, C_TEXT);
    }
    cairo_set_line_width(cr, 1);
    nb__plot_set_font(cr, FS_TICK, false);
    double tick_h = nb__plot_cap_h(cr);
    /* Grid lines sit on pixel centres, so they are one crisp pixel in a PNG. */
    for (int k = 0; k < fr->ax.nticks; k++) {
        double x = floor(nb__plot_fx(fr, fr->ax.tick[k])) + 0.5;
        if (!fr->ax.categories && !s->nogrid) {
            nb__plot_set_color(cr, C_GRID, 1);
            cairo_move_to(cr, x, fr->top);
            cairo_line_to(cr, x, fr->bottom);
            cairo_stroke(cr);
        }
        nb__plot_set_color(cr, C_AXIS, 1);
        cairo_move_to(cr, x, fr->bottom);
        cairo_line_to(cr, x, fr->bottom + TICK);
        cairo_stroke(cr);
        const char *t = fr->ax.label[k];
        if (fr->ax.categories) t = nb__plot_fit_text(cr, t, pw / fr->ax.nticks - 4, buf, sizeof buf);
        double half = nb__plot_text_w(cr, t) / 2, lx = fmin(x, b.x + b.w - 2 - half); /* the last label stays in its cell */
        nb__plot_text_at(cr, lx, fr->bottom + TICK + GAP + tick_h, t, 0.5, C_TEXT);
    }
    for (int k = 0; k < fr->ay.nticks; k++) {
        double y = floor(nb__plot_fy(fr, fr->ay.tick[k])) + 0.5;
        if (!fr->ay.categories && !s->nogrid) {
            nb__plot_set_color(cr, C_GRID, 1);
            cairo_move_to(cr, fr->left, y);
            cairo_line_to(cr, fr->right, y);
            cairo_stroke(cr);
        }
        nb__plot_set_color(cr, C_AXIS, 1);
        cairo_move_to(cr, fr->left - TICK, y);
        cairo_line_to(cr, fr->left, y);
        cairo_stroke(cr);
        nb__plot_text_at(cr, fr->left - TICK - GAP, y + tick_h / 2, fr->ay.label[k], 1, C_TEXT);
    }
    nb__plot_set_font(cr, FS_LABEL, false);
    double label_h = nb__plot_cap_h(cr);
    if (s->xlabel) {
        const char *t = nb__plot_fit_text(cr, s->xlabel, pw, buf, sizeof buf);
        nb__plot_text_at(cr, fr->left + pw / 2, b.y + b.h - PAD - 0.35 * label_h, t, 0.5, C_TEXT);
    }
    if (s->ylabel) {
        const char *t = nb__plot_fit_text(cr, s->ylabel, ph, buf, sizeof buf);
        nb__plot_text_up(cr, b.x + PAD + label_h, fr->top + ph / 2, t, C_TEXT);
    }
}

void nb__plot_frame_border(cairo_t *cr, const frame *fr) {
    double l = floor(fr->left) + 0.5, t = floor(fr->top) + 0.5, r = floor(fr->right) + 0.5, btm = floor(fr->bottom) + 0.5;
    nb__plot_set_color(cr, C_AXIS, 1);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, l, t, r - l, btm - t);
    cairo_stroke(cr);
}

void nb__plot_clip_to(cairo_t *cr, const frame *fr) {
    cairo_rectangle(cr, fr->left, fr->top, fr->right - fr->left, fr->bottom - fr->top);
    cairo_clip(cr);
}

/* Turns cr's error state (out of memory, mostly) into ours. */
int nb__plot_cairo_check(cairo_t *cr, const char *what) {
    cairo_status_t st = cairo_status(cr);
    return st == CAIRO_STATUS_SUCCESS ? 0 : nb_error("%s: cairo: %s", what, cairo_status_to_string(st));
}
