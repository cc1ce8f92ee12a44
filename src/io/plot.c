/* plot.c — figures drawn with cairo (line charts, bar charts, heat maps and
 * image grids, in a grid of cells under a title), written as PNG, SVG or PDF
 * by the file's extension. The logs the curves come from are read by csv.c. */
#include "io.h"
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* --- style ------------------------------------------------------------------ */

/* DejaVu Sans (Debian's fonts-dejavu-core) through fontconfig; another sans
 * face stands in if it is missing. Sizes are in pixels (PNG) or the same
 * number of SVG px / PDF points, so a figure looks alike in every format. */
#define FONT "DejaVu Sans"
#define FS_TICK 12.0   /* tick labels, captions, bar values */
#define FS_LABEL 13.0  /* axis labels, legend */
#define FS_TITLE 15.0  /* a chart's title */
#define FS_FIGURE 19.0 /* the figure's title */
#define C_TEXT 0x222222u
#define C_AXIS 0x555555u
#define C_GRID 0xE6E6E6u
#define C_EDGE 0xC8C8C8u
#define C_MISSING 0xF0F0F0u /* a heat map's NaN cells */
#define PAD 10.0            /* between a cell's edge and what it holds */
#define TICK 5.0            /* tick mark length */
#define GAP 5.0             /* between a tick mark and its label */

/* A figure keeps a copy of each chart (its data included) and draws them
 * all when saved, straight onto the surface of the file's format. (Drawing
 * once onto a cairo recording surface and replaying that into each format
 * would be simpler, but cairo 1.16's SVG surface leaks every recording
 * surface painted onto it.) */
typedef enum { CELL_EMPTY, CELL_LINES, CELL_BARS, CELL_HEATMAP, CELL_IMAGES } cell_kind;
typedef struct fig_cell {
    cell_kind kind;
    union {
        nb_lines lines;
        nb_bars bars;
        nb_heatmap heatmap;
        nb_images images;
    };
} fig_cell;

struct nb_figure {
    int w, h, rows, cols;
    char *title;
    fig_cell *cells;      /* rows * cols */
    void **blocks;        /* the copies the cells point into */
    int nblocks, cap;
    cairo_surface_t *probe; /* a 1 x 1 surface whose context lays out each */
    cairo_t *measure;       /* chart when it is given, to report a cell too small at once */
};

static void set_color(cairo_t *cr, uint32_t c, double alpha) {
    cairo_set_source_rgba(cr, (c >> 16 & 255) / 255.0, (c >> 8 & 255) / 255.0, (c & 255) / 255.0, alpha);
}

static void set_font(cairo_t *cr, double size, bool bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Copies s into buf as valid UTF-8: each byte that does not belong to a
 * well-formed sequence becomes '?'. Labels come from outside (a CSV header in
 * Latin-1, a name cut short), and cairo stops drawing for good, with an
 * error, at the first invalid string it is given. */
static const char *clean_utf8(const char *s, char *buf, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t k = 0;
    while (*p && k + 1 < n) {
        int len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        uint32_t cp = len == 1 ? *p : len == 2 ? *p & 0x1Fu : len == 3 ? *p & 0x0Fu : *p & 0x07u;
        for (int j = 1; j < len; j++) {
            if ((p[j] & 0xC0) != 0x80) {
                len = 0;
                break;
            }
            cp = cp << 6 | (p[j] & 0x3Fu);
        }
        /* No overlong forms, surrogates or code points past U+10FFFF. */
        static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (len == 0 || cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            buf[k++] = '?';
            p++;
            continue;
        }
        if (k + (size_t)len >= n) break; /* whole characters only */
        memcpy(buf + k, p, (size_t)len);
        k += (size_t)len;
        p += len;
    }
    buf[k] = 0;
    return buf;
}

/* The advance width of s in the current font. */
static double text_w(cairo_t *cr, const char *s) {
    char clean[512];
    cairo_text_extents_t e;
    cairo_text_extents(cr, clean_utf8(s, clean, sizeof clean), &e);
    return e.x_advance;
}

/* The height of capitals and digits, which is what the eye centres on. */
static double cap_h(cairo_t *cr) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, "0", &e);
    return -e.y_bearing;
}

/* Draws s with its baseline at y, anchored at x by align (0 left, 0.5
 * centre, 1 right). */
static void text_at(cairo_t *cr, double x, double y, const char *s, double align, uint32_t color) {
    char clean[512];
    set_color(cr, color, 1);
    cairo_move_to(cr, x - align * text_w(cr, s), y);
    cairo_show_text(cr, clean_utf8(s, clean, sizeof clean));
}

/* Copies s into buf, shortened with an ellipsis so that it is at most maxw
 * wide in the current font; whole UTF-8 characters only. */
static const char *fit_text(cairo_t *cr, const char *s, double maxw, char *buf, size_t n) {
    clean_utf8(s ? s : "", buf, n);
    if (text_w(cr, buf) <= maxw) return buf;
    size_t len = strlen(buf);
    while (len > 0) {
        len--;
        while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80) len--;
        if (len + 4 > n) continue;
        memcpy(buf + len, "\xE2\x80\xA6", 4); /* U+2026 */
        if (text_w(cr, buf) <= maxw) return buf;
    }
    buf[0] = 0;
    return buf;
}

/* Text turned a quarter left (a y axis label), centred on (x, y), its
 * baseline at x. */
static void text_up(cairo_t *cr, double x, double y, const char *s, uint32_t color) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, s, 0.5, color);
    cairo_restore(cr);
}

uint32_t nb_plot_color(int i) {
    /* Tableau 10 (matplotlib's default cycle): distinct hues that stay
     * distinguishable for the common forms of colour blindness. */
    static const uint32_t palette[10] = {0x1F77B4, 0xFF7F0E, 0x2CA02C, 0xD62728, 0x9467BD,
                                         0x8C564B, 0xE377C2, 0x7F7F7F, 0xBCBD22, 0x17BECF};
    return palette[(i % 10 + 10) % 10];
}

/* --- axes ------------------------------------------------------------------- */

#define MAX_TICKS 64
typedef struct axis {
    double lo, hi; /* the visible range */
    double tick[MAX_TICKS];
    char label[MAX_TICKS][64];
    int nticks;
    bool categories; /* ticks at bar centres, no grid lines */
} axis;

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
static void make_axis(cairo_t *cr, axis *a, double dmin, double dmax, bool have, double pad, double length,
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
            double n = horizontal ? text_w(cr, a->label[k]) + 2.5 * FS_TICK : 2.2 * FS_TICK;
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
        need = text_w(cr, wide) + (names ? 6 : 2 * FS_TICK);
        for (int i = 0; names && i < n; i++)
            if (names[i]) need = fmax(need, fmin(text_w(cr, names[i]), 8 * FS_TICK) + 6);
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

/* A chart's plot area in figure coordinates, with its axes. */
typedef struct frame {
    double left, top, right, bottom;
    axis ax, ay;
} frame;

static double fx(const frame *f, double x) { return f->left + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * (f->right - f->left); }
static double fy(const frame *f, double y) { return f->bottom - (y - f->ay.lo) / (f->ay.hi - f->ay.lo) * (f->bottom - f->top); }

/* The cell's rectangle. */
typedef struct box {
    double x, y, w, h;
} box;

/* What a chart tells frame_layout about its axes. */
typedef struct axes_spec {
    const char *title, *xlabel, *ylabel;
    double xmin, xmax, ymin, ymax; /* finite data ranges */
    bool have;                     /* any finite data */
    double xpad, ypad;             /* fraction added on each side */
    bool xint;                     /* whole-number x ticks */
    const char *const *xcat, *const *ycat; /* category axes (bars) */
    int nxcat, nycat;
    bool xcat_on, ycat_on;
    bool nogrid;                   /* a picture (heat map) fills the plot area */
    double right_extra;            /* room to leave right of the plot (a colour bar) */
} axes_spec;

/* Places the plot area inside the cell, leaving room for the title, the
 * tick labels and the axis labels, and makes the axes. -1 if the cell is too
 * small for them. */
static int frame_layout(cairo_t *cr, box b, const axes_spec *s, frame *fr) {
    set_font(cr, FS_TITLE, true);
    double title_h = s->title ? cap_h(cr) + 12 : 0;
    set_font(cr, FS_LABEL, false);
    double label_h = cap_h(cr) * 1.35;
    set_font(cr, FS_TICK, false);
    double tick_h = cap_h(cr);
    fr->top = b.y + PAD + title_h + 6;
    fr->bottom = b.y + b.h - PAD - TICK - GAP - tick_h - (s->xlabel ? label_h + 8 : 0);
    double ph = fr->bottom - fr->top;
    if (s->ycat_on) category_axis(cr, &fr->ay, s->ycat, s->nycat, ph > 1 ? ph : 1, false);
    else make_axis(cr, &fr->ay, s->ymin, s->ymax, s->have, s->ypad, ph > 1 ? ph : 1, 3.5 * FS_TICK, false, false);
    double ylw = 0;
    for (int k = 0; k < fr->ay.nticks; k++) ylw = fmax(ylw, text_w(cr, fr->ay.label[k]));
    fr->left = b.x + PAD + (s->ylabel ? label_h + 8 : 0) + ylw + GAP + TICK;
    /* The last x label may reach past the plot's right edge by half its width. */
    fr->right = b.x + b.w - PAD - 14 - s->right_extra;
    double pw = fr->right - fr->left;
    if (pw < 40 || ph < 40)
        return nb_error("a chart of %.0f x %.0f is too small for its axes and labels; make the figure larger", b.w, b.h);
    if (s->xcat_on) category_axis(cr, &fr->ax, s->xcat, s->nxcat, pw, true);
    else make_axis(cr, &fr->ax, s->xmin, s->xmax, s->have, s->xpad, pw, 8 * FS_TICK, true, s->xint);
    return 0;
}

/* Title, grid, ticks, tick labels and axis labels of a frame (the frame's
 * border itself is drawn last, over the data, by frame_border). */
static void frame_draw(cairo_t *cr, box b, const axes_spec *s, const frame *fr) {
    char buf[256];
    double pw = fr->right - fr->left, ph = fr->bottom - fr->top;
    if (s->title) {
        set_font(cr, FS_TITLE, true);
        const char *t = fit_text(cr, s->title, b.w - 2 * PAD, buf, sizeof buf);
        double x = fr->left + pw / 2, half = text_w(cr, t) / 2;
        x = fmax(b.x + PAD + half, fmin(b.x + b.w - PAD - half, x)); /* centred over the plot, inside the cell */
        text_at(cr, x, b.y + PAD + cap_h(cr), t, 0.5, C_TEXT);
    }
    cairo_set_line_width(cr, 1);
    set_font(cr, FS_TICK, false);
    double tick_h = cap_h(cr);
    /* Grid lines sit on pixel centres, so they are one crisp pixel in a PNG. */
    for (int k = 0; k < fr->ax.nticks; k++) {
        double x = floor(fx(fr, fr->ax.tick[k])) + 0.5;
        if (!fr->ax.categories && !s->nogrid) {
            set_color(cr, C_GRID, 1);
            cairo_move_to(cr, x, fr->top);
            cairo_line_to(cr, x, fr->bottom);
            cairo_stroke(cr);
        }
        set_color(cr, C_AXIS, 1);
        cairo_move_to(cr, x, fr->bottom);
        cairo_line_to(cr, x, fr->bottom + TICK);
        cairo_stroke(cr);
        const char *t = fr->ax.label[k];
        if (fr->ax.categories) t = fit_text(cr, t, pw / fr->ax.nticks - 4, buf, sizeof buf);
        double half = text_w(cr, t) / 2, lx = fmin(x, b.x + b.w - 2 - half); /* the last label stays in its cell */
        text_at(cr, lx, fr->bottom + TICK + GAP + tick_h, t, 0.5, C_TEXT);
    }
    for (int k = 0; k < fr->ay.nticks; k++) {
        double y = floor(fy(fr, fr->ay.tick[k])) + 0.5;
        if (!fr->ay.categories && !s->nogrid) {
            set_color(cr, C_GRID, 1);
            cairo_move_to(cr, fr->left, y);
            cairo_line_to(cr, fr->right, y);
            cairo_stroke(cr);
        }
        set_color(cr, C_AXIS, 1);
        cairo_move_to(cr, fr->left - TICK, y);
        cairo_line_to(cr, fr->left, y);
        cairo_stroke(cr);
        text_at(cr, fr->left - TICK - GAP, y + tick_h / 2, fr->ay.label[k], 1, C_TEXT);
    }
    set_font(cr, FS_LABEL, false);
    double label_h = cap_h(cr);
    if (s->xlabel) {
        const char *t = fit_text(cr, s->xlabel, pw, buf, sizeof buf);
        text_at(cr, fr->left + pw / 2, b.y + b.h - PAD - 0.35 * label_h, t, 0.5, C_TEXT);
    }
    if (s->ylabel) {
        const char *t = fit_text(cr, s->ylabel, ph, buf, sizeof buf);
        text_up(cr, b.x + PAD + label_h, fr->top + ph / 2, t, C_TEXT);
    }
}

static void frame_border(cairo_t *cr, const frame *fr) {
    double l = floor(fr->left) + 0.5, t = floor(fr->top) + 0.5, r = floor(fr->right) + 0.5, btm = floor(fr->bottom) + 0.5;
    set_color(cr, C_AXIS, 1);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, l, t, r - l, btm - t);
    cairo_stroke(cr);
}

static void clip_to(cairo_t *cr, const frame *fr) {
    cairo_rectangle(cr, fr->left, fr->top, fr->right - fr->left, fr->bottom - fr->top);
    cairo_clip(cr);
}

/* Turns cr's error state (out of memory, mostly) into ours. */
static int cairo_check(cairo_t *cr, const char *what) {
    cairo_status_t st = cairo_status(cr);
    return st == CAIRO_STATUS_SUCCESS ? 0 : nb_error("%s: cairo: %s", what, cairo_status_to_string(st));
}

/* --- figures -------------------------------------------------------------- */

/* The height of the band the figure's title takes, 0 without one. */
static double title_band(cairo_t *cr, const char *title) {
    if (!title || !title[0]) return 0;
    set_font(cr, FS_FIGURE, true);
    return PAD + 4 + cap_h(cr) + 8;
}

static box cell_box(cairo_t *cr, const nb_figure *f, int cell) {
    double top = title_band(cr, f->title), cw = (double)f->w / f->cols, ch = (f->h - top) / f->rows;
    return (box){(cell % f->cols) * cw, top + (cell / f->cols) * ch, cw, ch};
}

nb_figure *nb_figure_new(int width, int height, int rows, int cols, const char *title) {
    if (width < 16 || height < 16 || width > NB_PNG_MAX_SIDE || height > NB_PNG_MAX_SIDE) {
        nb_error("nb_figure_new: expected a size of 16..%d x 16..%d, got %d x %d", NB_PNG_MAX_SIDE, NB_PNG_MAX_SIDE,
                 width, height);
        return NULL;
    }
    if (rows < 1 || cols < 1 || rows > 64 || cols > 64) {
        nb_error("nb_figure_new: expected 1..64 rows and columns of cells, got %d x %d", rows, cols);
        return NULL;
    }
    nb_figure *f = nb__calloc(1, sizeof *f);
    fig_cell *cells = nb__calloc((size_t)rows * (size_t)cols, sizeof *cells);
    char *t = title ? nb__malloc(strlen(title) + 1) : NULL;
    if (!f || !cells || (title && !t)) {
        free(f);
        free(cells);
        free(t);
        nb_error("nb_figure_new: out of memory");
        return NULL;
    }
    if (t) memcpy(t, title, strlen(title) + 1);
    *f = (nb_figure){.w = width, .h = height, .rows = rows, .cols = cols, .title = t, .cells = cells};
    f->probe = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1, 1);
    f->measure = cairo_create(f->probe);
    if (cairo_check(f->measure, "nb_figure_new")) {
        nb_figure_free(f);
        return NULL;
    }
    return f;
}

void nb_figure_free(nb_figure *f) {
    if (!f) return;
    if (f->measure) cairo_destroy(f->measure);
    if (f->probe) cairo_surface_destroy(f->probe);
    for (int i = 0; i < f->nblocks; i++) free(f->blocks[i]);
    free(f->blocks);
    free(f->cells);
    free(f->title);
    free(f);
}

/* Checks the cell argument of a chart call. */
static int check_cell(const nb_figure *f, int cell, const char *fn) {
    if (!f) return nb_error("%s: no figure", fn);
    if (cell < 0 || cell >= f->rows * f->cols)
        return nb_error("%s: cell %d is outside the %d x %d cells of the figure (0..%d)", fn, cell, f->rows, f->cols,
                        f->rows * f->cols - 1);
    if (f->cells[cell].kind != CELL_EMPTY) return nb_error("%s: cell %d already holds a chart", fn, cell);
    return 0;
}

/* A copy of n bytes at src owned by the figure (NULL stays NULL); clears
 * *ok when out of memory. */
static void *keep(nb_figure *f, const void *src, size_t n, bool *ok) {
    if (!src || !*ok) return NULL;
    if (f->nblocks == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        void **grown = nb__realloc(f->blocks, sizeof(void *) * (size_t)cap);
        if (!grown) return *ok = false, NULL;
        f->blocks = grown;
        f->cap = cap;
    }
    void *p = nb__malloc(n ? n : 1);
    if (!p) return *ok = false, NULL;
    memcpy(p, src, n);
    return f->blocks[f->nblocks++] = p;
}

static const char *keep_str(nb_figure *f, const char *s, bool *ok) { return s ? keep(f, s, strlen(s) + 1, ok) : NULL; }

/* --- line charts -------------------------------------------------------------- */

static bool finite_pt(const nb_series *s, int64_t i) {
    double x = s->x ? s->x[i] : (double)i;
    return isfinite(x) && isfinite(s->y[i]);
}

static uint32_t series_color(const nb_series *s, int i) { return s->color ? s->color & 0xFFFFFFu : nb_plot_color(i); }

/* Values beyond +-1e300 are drawn at +-1e300, the ends of the widest axis,
 * so that every point lands inside the plot area: cairo's coordinates are
 * fixed-point and would overflow far outside it. */
static double clamp300(double v) { return fmax(-1e300, fmin(1e300, v)); }

/* Point i of a series in figure coordinates. */
static void point_at(const frame *fr, const nb_series *sr, int64_t i, double *X, double *Y) {
    *X = fx(fr, clamp300(sr->x ? sr->x[i] : (double)i));
    *Y = fy(fr, clamp300(sr->y[i]));
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
static int draw_lines(cairo_t *cr, box b, const nb_lines *c, bool dry) {
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
    int rc = frame_layout(cr, b, &s, &fr);
    if (rc || dry) {
        cairo_restore(cr);
        return rc;
    }
    frame_draw(cr, b, &s, &fr);

    /* The series, clipped to the plot area. Missing values are skipped and
     * the line joins their finite neighbours: logs leave cells empty between
     * evaluations. Few points (or one) also get a dot at each. */
    cairo_save(cr);
    clip_to(cr, &fr);
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (int k = 0; k < c->nseries; k++) {
        const nb_series *sr = &c->series[k];
        int64_t nfin = 0;
        for (int64_t i = 0; i < sr->n; i++) nfin += finite_pt(sr, i);
        set_color(cr, series_color(sr, k), 1);
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
    frame_border(cr, &fr);
    double pw = fr.right - fr.left, ph = fr.bottom - fr.top;
    if (total == 0) {
        set_font(cr, FS_LABEL, false);
        text_at(cr, fr.left + pw / 2, fr.top + ph / 2, "no data", 0.5, C_AXIS);
    }

    /* The legend, in the corner where it hides the fewest drawn points. */
    set_font(cr, FS_LABEL, false);
    int nl = 0;
    double lw = 0;
    for (int k = 0; k < c->nseries; k++) {
        if (!c->series[k].label || !c->series[k].label[0]) continue;
        char buf[256];
        lw = fmax(lw, text_w(cr, fit_text(cr, c->series[k].label, pw / 2, buf, sizeof buf)));
        nl++;
    }
    const double sample = 24, lpad = 8, row = 1.55 * FS_LABEL, inset = 8;
    double bw = lpad + sample + 6 + lw + lpad, bh = 2 * lpad + nl * row - (row - cap_h(cr)) + 2;
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
        set_color(cr, 0xFFFFFF, 0.9);
        cairo_fill_preserve(cr);
        set_color(cr, C_EDGE, 1);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
        double ch = cap_h(cr);
        int i = 0;
        for (int k = 0; k < c->nseries; k++) {
            if (!c->series[k].label || !c->series[k].label[0]) continue;
            char buf[256];
            double base = ly + lpad + ch + 1 + i * row;
            set_color(cr, series_color(&c->series[k], k), 1);
            cairo_set_line_width(cr, 2.5);
            cairo_move_to(cr, lx + lpad, base - ch / 2);
            cairo_line_to(cr, lx + lpad + sample, base - ch / 2);
            cairo_stroke(cr);
            text_at(cr, lx + lpad + sample + 6, base, fit_text(cr, c->series[k].label, pw / 2, buf, sizeof buf), 0, C_TEXT);
            i++;
        }
    }
    cairo_restore(cr);
    return cairo_check(cr, "line chart");
}

int nb_figure_lines(nb_figure *f, int cell, const nb_lines *c) {
    if (check_cell(f, cell, "nb_figure_lines")) return -1;
    if (!c || c->nseries < 0 || (c->nseries > 0 && !c->series))
        return nb_error("nb_figure_lines: expected a chart with 0 or more series, got %d", c ? c->nseries : -1);
    for (int k = 0; k < c->nseries; k++) {
        const nb_series *sr = &c->series[k];
        if (sr->n < 0 || (sr->n > 0 && !sr->y))
            return nb_error("nb_figure_lines: series %d ('%s'): expected n >= 0 points with y values, got n = %lld",
                            k + 1, sr->label ? sr->label : "", (long long)sr->n);
    }
    if (draw_lines(f->measure, cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    nb_lines copy = {keep_str(f, c->title, &ok), keep_str(f, c->xlabel, &ok), keep_str(f, c->ylabel, &ok), NULL,
                     c->nseries};
    nb_series *sr = keep(f, c->series, sizeof(nb_series) * (size_t)c->nseries, &ok);
    for (int k = 0; ok && k < c->nseries; k++) {
        sr[k].label = keep_str(f, sr[k].label, &ok);
        sr[k].x = keep(f, sr[k].x, sizeof(double) * (size_t)sr[k].n, &ok);
        sr[k].y = keep(f, sr[k].y, sizeof(double) * (size_t)sr[k].n, &ok);
    }
    copy.series = sr;
    if (!ok) return nb_error("nb_figure_lines: out of memory for a copy of the chart");
    f->cells[cell].lines = copy;
    f->cells[cell].kind = CELL_LINES;
    return 0;
}

/* --- bar charts --------------------------------------------------------------- */

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

static int draw_bars(cairo_t *cr, box b, const nb_bars *c, bool dry) {
    /* Bars stand up when every name fits under its bar, and lie down (names
     * down the left side, read like a list) when one does not. */
    bool lie = false;
    if (c->names) {
        set_font(cr, FS_TICK, false);
        double per = (b.w - 2 * PAD - 60) / c->n;
        for (int i = 0; i < c->n && !lie; i++) lie = c->names[i] && text_w(cr, c->names[i]) > per - 6;
    }
    double lo = 0, hi = 0; /* bars grow from zero, which is always in view */
    for (int i = 0; i < c->n; i++)
        if (isfinite(c->values[i])) lo = fmin(lo, clamp300(c->values[i])), hi = fmax(hi, clamp300(c->values[i]));
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
    int rc = frame_layout(cr, b, &s, &fr);
    if (rc || dry) {
        cairo_restore(cr);
        return rc;
    }
    if (lie) { /* the first name at the top, as a list reads */
        double t = fr.ay.lo;
        fr.ay.lo = fr.ay.hi, fr.ay.hi = t;
    }
    set_font(cr, FS_TICK, false);
    double ch = cap_h(cr);
    double slot = lie ? fabs(fy(&fr, 1) - fy(&fr, 0)) : fx(&fr, 1) - fx(&fr, 0);
    bool values = slot >= (lie ? ch + 4 : 0) && c->n <= 64;
    /* The value axis starts at the bars' base (zero) and ends a little past
     * the longest bar; when each bar's value is written past its end, inside
     * the frame, far enough for the longest text to fit. */
    double length = lie ? fr.right - fr.left : fr.bottom - fr.top, room = 0.06 * length;
    int dec = value_decimals(c->values, c->n);
    for (int i = 0; values && i < c->n; i++) {
        char buf[48];
        value_text(c->values[i], dec, buf, sizeof buf);
        room = fmax(room, (lie ? text_w(cr, buf) : ch) + 8);
    }
    if (room > 0.4 * length) values = false, room = 0.06 * length;
    double r = room / length;
    if (hi == lo) hi = 1; /* all zero */
    double nlo = lo < 0 ? (lo - r * hi) / (1 - r) : lo, nhi = hi > 0 ? (hi - r * lo) / (1 - r) : hi;
    if (lie) make_axis(cr, &fr.ax, nlo, nhi, true, 0, length, 8 * FS_TICK, true, false);
    else make_axis(cr, &fr.ay, nlo, nhi, true, 0, length, 3.5 * FS_TICK, false, false);
    frame_draw(cr, b, &s, &fr);
    for (int i = 0; i < c->n; i++) {
        double v = clamp300(c->values[i]);
        if (!isfinite(c->values[i])) continue;
        uint32_t col = c->colors && c->colors[i] ? c->colors[i] : c->color ? c->color : nb_plot_color(0);
        set_color(cr, col, 1);
        double half = 0.4 * slot;
        char buf[48];
        value_text(v, dec, buf, sizeof buf);
        if (lie) {
            double y = fy(&fr, i), x0 = fx(&fr, 0), x1 = fx(&fr, v);
            cairo_rectangle(cr, fmin(x0, x1), y - half, fabs(x1 - x0), 2 * half);
            cairo_fill(cr);
            if (values) {
                double tx = v >= 0 ? x1 + 4 : x1 - 4;
                text_at(cr, tx, y + ch / 2, buf, v >= 0 ? 0 : 1, C_TEXT);
            }
        } else {
            double x = fx(&fr, i), y0 = fy(&fr, 0), y1 = fy(&fr, v);
            cairo_rectangle(cr, x - half, fmin(y0, y1), 2 * half, fabs(y1 - y0));
            cairo_fill(cr);
            if (values && text_w(cr, buf) <= slot) text_at(cr, x, v >= 0 ? y1 - 4 : y1 + 4 + ch, buf, 0.5, C_TEXT);
        }
    }
    /* The zero line. */
    set_color(cr, C_AXIS, 1);
    cairo_set_line_width(cr, 1);
    if (lie) {
        double x = floor(fx(&fr, 0)) + 0.5;
        cairo_move_to(cr, x, fr.top);
        cairo_line_to(cr, x, fr.bottom);
    } else {
        double y = floor(fy(&fr, 0)) + 0.5;
        cairo_move_to(cr, fr.left, y);
        cairo_line_to(cr, fr.right, y);
    }
    cairo_stroke(cr);
    frame_border(cr, &fr);
    cairo_restore(cr);
    return cairo_check(cr, "bar chart");
}

int nb_figure_bars(nb_figure *f, int cell, const nb_bars *c) {
    if (check_cell(f, cell, "nb_figure_bars")) return -1;
    if (!c || c->n < 1 || c->n > 100000 || !c->values)
        return nb_error("nb_figure_bars: expected 1..100000 bars with values, got %d", c ? c->n : 0);
    if (draw_bars(f->measure, cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    size_t n = (size_t)c->n;
    nb_bars copy = *c;
    copy.title = keep_str(f, c->title, &ok);
    copy.clabel = keep_str(f, c->clabel, &ok);
    copy.vlabel = keep_str(f, c->vlabel, &ok);
    copy.values = keep(f, c->values, sizeof(double) * n, &ok);
    copy.colors = keep(f, c->colors, sizeof(uint32_t) * n, &ok);
    const char **names = keep(f, c->names, sizeof(char *) * n, &ok);
    for (size_t i = 0; ok && names && i < n; i++) names[i] = keep_str(f, names[i], &ok);
    copy.names = names;
    if (!ok) return nb_error("nb_figure_bars: out of memory for a copy of the chart");
    f->cells[cell].bars = copy;
    f->cells[cell].kind = CELL_BARS;
    return 0;
}

/* --- heat maps -------------------------------------------------------------------- */

/* Colour maps as 9 evenly spaced samples of matplotlib's, interpolated
 * linearly in RGB: viridis and magma are perceptually uniform and read in
 * gray print; magma suits spectrograms. */
static uint32_t colormap(nb_colormap m, double t) {
    static const uint32_t viridis[9] = {0x440154, 0x472C7A, 0x3B518B, 0x2C718E, 0x21908D,
                                        0x27AD81, 0x5CC863, 0xAADC32, 0xFDE725};
    static const uint32_t magma[9] = {0x000004, 0x1C1044, 0x4F127B, 0x812581, 0xB5367A,
                                      0xE55964, 0xFB8761, 0xFEC287, 0xFCFDBF};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    if (m == NB_CMAP_GRAY) {
        uint32_t g = (uint32_t)lround(t * 255);
        return g << 16 | g << 8 | g;
    }
    const uint32_t *p = m == NB_CMAP_MAGMA ? magma : viridis;
    double u = t * 8;
    int i = u >= 8 ? 7 : (int)u;
    double w = u - i;
    uint32_t out = 0;
    for (int sh = 16; sh >= 0; sh -= 8) {
        double a = p[i] >> sh & 255, z = p[i + 1] >> sh & 255;
        out |= (uint32_t)lround(a + (z - a) * w) << sh;
    }
    return out;
}

/* How many times to repeat each pixel of a picture: a picture is embedded
 * at about the size it is shown, so that SVG and PDF viewers, which smooth
 * small images as they enlarge them, show sharp cells. Each side stays
 * within cairo's 32767 and the whole within 4 M pixels. */
typedef struct scale2 {
    int x, y;
} scale2;

static scale2 upscale(int w, int h, double dw, double dh) {
    scale2 k = {(int)fmax(1, fmin(ceil(dw / w), 8192.0 / w)), (int)fmax(1, fmin(ceil(dh / h), 8192.0 / h))};
    while ((k.x > 1 || k.y > 1) && (double)w * k.x * h * k.y > 4e6) {
        if (k.x > 1) k.x = (k.x + 1) / 2;
        if (k.y > 1) k.y = (k.y + 1) / 2;
    }
    return k;
}

/* An RGB24 image of w x h pixels, each repeated k.x x k.y times; pix(ctx,
 * x, y) gives the colour of source pixel (x, y), y = 0 the top row. */
static cairo_surface_t *pixel_surface(int w, int h, scale2 k, uint32_t (*pix)(const void *, int, int), const void *ctx) {
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w * k.x, h * k.y);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) return img;
    unsigned char *d = cairo_image_surface_get_data(img);
    int stride = cairo_image_surface_get_stride(img);
    for (int y = 0; y < h; y++) {
        uint32_t *row = (uint32_t *)(d + (size_t)y * (size_t)k.y * (size_t)stride);
        for (int x = 0; x < w; x++) {
            uint32_t c = pix(ctx, x, y);
            for (int j = 0; j < k.x; j++) row[x * k.x + j] = c;
        }
        for (int j = 1; j < k.y; j++) memcpy(d + ((size_t)y * k.y + j) * (size_t)stride, row, (size_t)w * k.x * 4);
    }
    cairo_surface_mark_dirty(img);
    return img;
}

/* Paints img (w x h source pixels, repeated k times) over the rectangle. */
static void paint_pixels(cairo_t *cr, cairo_surface_t *img, int w, int h, scale2 k, double x, double y, double dw, double dh) {
    cairo_save(cr);
    cairo_rectangle(cr, x, y, dw, dh);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, dw / (w * k.x), dh / (h * k.y));
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD); /* no faint seam at the edges */
    cairo_paint(cr);
    cairo_restore(cr);
}

typedef struct heat_ctx {
    const nb_heatmap *c;
    double lo, hi;
} heat_ctx;

static uint32_t heat_pix(const void *p, int x, int y) {
    const heat_ctx *h = p;
    int r = h->c->top_down ? y : h->c->rows - 1 - y;
    float v = h->c->z[(size_t)r * (size_t)h->c->cols + (size_t)x];
    if (!isfinite(v)) return C_MISSING;
    return colormap(h->c->cmap, h->hi > h->lo ? (v - h->lo) / (h->hi - h->lo) : 0.5);
}

static uint32_t bar_pix(const void *p, int x, int y) {
    const heat_ctx *h = p;
    return colormap(h->c->cmap, 1 - (y + 0.5) / 256.0);
}

static int draw_heatmap(cairo_t *cr, box b, const nb_heatmap *c, bool dry) {
    heat_ctx h = {c, c->zmin, c->zmax};
    if (c->zmin == c->zmax) { /* the colours span the data */
        h.lo = INFINITY, h.hi = -INFINITY;
        for (size_t i = 0; i < (size_t)c->rows * (size_t)c->cols; i++)
            if (isfinite(c->z[i])) h.lo = fmin(h.lo, c->z[i]), h.hi = fmax(h.hi, c->z[i]);
        if (!(h.lo <= h.hi)) h.lo = 0, h.hi = 1; /* nothing finite */
    }
    /* The colour bar's ticks, measured before the plot is placed beside it. */
    axis az;
    set_font(cr, FS_TICK, false);
    double cbar_h = b.h - 2 * PAD - 60;
    make_axis(cr, &az, h.lo, h.hi, true, 0, cbar_h > 40 ? cbar_h : 40, 3.5 * FS_TICK, false, false);
    double zlw = 0;
    for (int k = 0; k < az.nticks; k++) zlw = fmax(zlw, text_w(cr, az.label[k]));
    const double cb_gap = 14, cb_w = 14;
    set_font(cr, FS_LABEL, false);
    double label_h = cap_h(cr) * 1.35;
    bool same_x = c->x0 == c->x1, same_y = c->y0 == c->y1;
    /* Without extents the axes count cells, each index at its cell's centre,
     * row 0 where it is drawn. */
    double X0 = same_x ? -0.5 : c->x0, X1 = same_x ? c->cols - 0.5 : c->x1;
    double Y0 = same_y ? (c->top_down ? c->rows - 0.5 : -0.5) : c->y0;
    double Y1 = same_y ? (c->top_down ? -0.5 : c->rows - 0.5) : c->y1;
    axes_spec s = {.title = c->title, .xlabel = c->xlabel, .ylabel = c->ylabel, .have = true,
                   .xmin = fmin(X0, X1), .xmax = fmax(X0, X1), .ymin = fmin(Y0, Y1), .ymax = fmax(Y0, Y1),
                   .nogrid = true, .right_extra = cb_gap + cb_w + TICK + GAP + zlw + (c->clabel ? label_h + 6 : 0)};
    frame fr;
    cairo_save(cr);
    int rc = frame_layout(cr, b, &s, &fr);
    if (rc || dry) {
        cairo_restore(cr);
        return rc;
    }
    /* The axes span the extents exactly; x0 > x1 (or y0 > y1) runs the axis the other way. */
    make_axis(cr, &fr.ax, fmin(X0, X1), fmax(X0, X1), true, 0, fr.right - fr.left, 8 * FS_TICK, true, same_x);
    make_axis(cr, &fr.ay, fmin(Y0, Y1), fmax(Y0, Y1), true, 0, fr.bottom - fr.top, 3.5 * FS_TICK, false, same_y);
    if (X0 > X1) fr.ax.lo = X0, fr.ax.hi = X1;
    if (Y0 > Y1) fr.ay.lo = Y0, fr.ay.hi = Y1;
    double pw = fr.right - fr.left, ph = fr.bottom - fr.top;
    scale2 k = upscale(c->cols, c->rows, pw, ph);
    cairo_surface_t *img = pixel_surface(c->cols, c->rows, k, heat_pix, &h);
    if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(img);
        cairo_restore(cr);
        return nb_error("nb_figure_heatmap: cairo: out of memory for a %d x %d map", c->cols, c->rows);
    }
    frame_draw(cr, b, &s, &fr);
    paint_pixels(cr, img, c->cols, c->rows, k, fr.left, fr.top, pw, ph);
    cairo_surface_destroy(img);
    frame_border(cr, &fr);

    /* The colour bar: the map's 256 steps, top = hi, with its own ticks. */
    double bx = fr.right + cb_gap, btop = fr.top, bbot = fr.bottom;
    img = pixel_surface(1, 256, (scale2){1, 1}, bar_pix, &h);
    if (cairo_surface_status(img) == CAIRO_STATUS_SUCCESS)
        paint_pixels(cr, img, 1, 256, (scale2){1, 1}, bx, btop, cb_w, bbot - btop);
    cairo_surface_destroy(img);
    set_color(cr, C_AXIS, 1);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, floor(bx) + 0.5, floor(btop) + 0.5, floor(cb_w), floor(bbot) - floor(btop));
    cairo_stroke(cr);
    set_font(cr, FS_TICK, false);
    double ch = cap_h(cr), span = h.hi > h.lo ? h.hi - h.lo : 1;
    for (int i = 0; i < az.nticks; i++) {
        if (az.tick[i] < h.lo - 1e-9 * span || az.tick[i] > h.hi + 1e-9 * span) continue;
        double y = floor(bbot - (az.tick[i] - h.lo) / span * (bbot - btop)) + 0.5;
        set_color(cr, C_AXIS, 1);
        cairo_move_to(cr, bx + cb_w, y);
        cairo_line_to(cr, bx + cb_w + TICK, y);
        cairo_stroke(cr);
        text_at(cr, bx + cb_w + TICK + GAP, y + ch / 2, az.label[i], 0, C_TEXT);
    }
    if (c->clabel) {
        char buf[256];
        set_font(cr, FS_LABEL, false);
        const char *t = fit_text(cr, c->clabel, bbot - btop, buf, sizeof buf);
        text_up(cr, bx + cb_w + TICK + GAP + zlw + 6 + cap_h(cr), (btop + bbot) / 2, t, C_TEXT);
    }
    cairo_restore(cr);
    return cairo_check(cr, "heat map");
}

int nb_figure_heatmap(nb_figure *f, int cell, const nb_heatmap *c) {
    if (check_cell(f, cell, "nb_figure_heatmap")) return -1;
    if (!c || !c->z || c->rows < 1 || c->cols < 1 || c->rows > NB_PNG_MAX_SIDE || c->cols > NB_PNG_MAX_SIDE)
        return nb_error("nb_figure_heatmap: expected 1..%d rows and columns of values, got %d x %d", NB_PNG_MAX_SIDE,
                        c ? c->rows : 0, c ? c->cols : 0);
    if (c->cmap < NB_CMAP_VIRIDIS || c->cmap > NB_CMAP_GRAY)
        return nb_error("nb_figure_heatmap: unknown colour map %d", (int)c->cmap);
    if (!isfinite(c->x0) || !isfinite(c->x1) || !isfinite(c->y0) || !isfinite(c->y1) || !isfinite(c->zmin) ||
        !isfinite(c->zmax) || c->zmin > c->zmax)
        return nb_error("nb_figure_heatmap: expected finite extents and zmin <= zmax, got x %g..%g, y %g..%g, z %g..%g",
                        c->x0, c->x1, c->y0, c->y1, c->zmin, c->zmax);
    if (draw_heatmap(f->measure, cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    nb_heatmap copy = *c;
    copy.title = keep_str(f, c->title, &ok);
    copy.xlabel = keep_str(f, c->xlabel, &ok);
    copy.ylabel = keep_str(f, c->ylabel, &ok);
    copy.clabel = keep_str(f, c->clabel, &ok);
    copy.z = keep(f, c->z, sizeof(float) * (size_t)c->rows * (size_t)c->cols, &ok);
    if (!ok) return nb_error("nb_figure_heatmap: out of memory for a copy of the %d x %d map", c->rows, c->cols);
    f->cells[cell].heatmap = copy;
    f->cells[cell].kind = CELL_HEATMAP;
    return 0;
}

/* --- image grids ----------------------------------------------------------------- */

static uint32_t image_pix(const void *p, int x, int y) {
    const nb_image *im = p;
    size_t plane = (size_t)im->h * (size_t)im->w, at = (size_t)y * (size_t)im->w + (size_t)x;
    uint32_t out = 0;
    for (int ch = 0; ch < 3; ch++) {
        float v = im->data[(im->channels == 3 ? (size_t)ch * plane : 0) + at];
        v = v > 0.f ? (v < 1.f ? v : 1.f) : 0.f; /* NaN is black, as in nb_png_write_gray */
        out = out << 8 | (uint32_t)lroundf(v * 255.f);
    }
    return out;
}

static int draw_images(cairo_t *cr, box b, const nb_images *c, bool dry) {
    int cols = c->cols > 0 ? c->cols : (int)ceil(sqrt((double)c->n));
    if (cols > c->n) cols = c->n;
    int rows = (c->n + cols - 1) / cols;
    bool captions = false;
    for (int i = 0; i < c->n; i++) captions |= c->images[i].caption && c->images[i].caption[0];
    cairo_save(cr);
    char buf[256];
    double y0 = b.y + PAD;
    if (c->title) {
        set_font(cr, FS_TITLE, true);
        double ch = cap_h(cr);
        text_at(cr, b.x + b.w / 2, y0 + ch, fit_text(cr, c->title, b.w - 2 * PAD, buf, sizeof buf), 0.5, C_TEXT);
        y0 += ch + 12;
    }
    set_font(cr, FS_TICK, false);
    double ch = cap_h(cr), cap = captions ? ch + 10 : 0, gap = 8;
    double tw = (b.w - 2 * PAD - (cols - 1) * gap) / cols, th = (b.y + b.h - PAD - y0 - (rows - 1) * gap) / rows;
    if (tw < 8 || th - cap < 8) {
        cairo_restore(cr);
        return nb_error("nb_figure_images: a cell of %.0f x %.0f is too small for %d x %d images; make the figure larger",
                        b.w, b.h, rows, cols);
    }
    if (dry) {
        cairo_restore(cr);
        return 0;
    }
    for (int i = 0; i < c->n; i++) {
        const nb_image *im = &c->images[i];
        double tx = b.x + PAD + (i % cols) * (tw + gap), ty = y0 + (i / cols) * (th + gap);
        /* The largest size with the image's proportions, centred in its tile. */
        double s = fmin(tw / im->w, (th - cap) / im->h), dw = s * im->w, dh = s * im->h;
        double x = tx + (tw - dw) / 2, y = ty + (th - cap - dh) / 2;
        if (s >= 1) { /* whole pixels keep the picture crisp in a PNG */
            dw = floor(dw), dh = floor(dh), x = floor(x), y = floor(y);
        }
        scale2 k = upscale(im->w, im->h, dw, dh);
        cairo_surface_t *img = pixel_surface(im->w, im->h, k, image_pix, im);
        if (cairo_surface_status(img) != CAIRO_STATUS_SUCCESS) {
            cairo_surface_destroy(img);
            cairo_restore(cr);
            return nb_error("nb_figure_images: image %d: cairo: out of memory", i);
        }
        paint_pixels(cr, img, im->w, im->h, k, x, y, dw, dh);
        cairo_surface_destroy(img);
        set_color(cr, C_EDGE, 1);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, x - 0.5, y - 0.5, dw + 1, dh + 1);
        cairo_stroke(cr);
        if (im->caption && im->caption[0]) {
            const char *t = fit_text(cr, im->caption, tw, buf, sizeof buf);
            text_at(cr, tx + tw / 2, y + dh + 6 + ch, t, 0.5, im->caption_color ? im->caption_color & 0xFFFFFFu : C_TEXT);
        }
    }
    cairo_restore(cr);
    return cairo_check(cr, "image grid");
}

int nb_figure_images(nb_figure *f, int cell, const nb_images *c) {
    if (check_cell(f, cell, "nb_figure_images")) return -1;
    if (!c || c->n < 1 || c->n > 10000 || !c->images)
        return nb_error("nb_figure_images: expected 1..10000 images, got %d", c ? c->n : 0);
    for (int i = 0; i < c->n; i++) {
        const nb_image *im = &c->images[i];
        if (!im->data || (im->channels != 1 && im->channels != 3) || im->h < 1 || im->w < 1 ||
            im->h > NB_PNG_MAX_SIDE || im->w > NB_PNG_MAX_SIDE)
            return nb_error("nb_figure_images: image %d: expected 1 or 3 channels of 1..%d x 1..%d values, got %d "
                            "channels of %d x %d%s",
                            i, NB_PNG_MAX_SIDE, NB_PNG_MAX_SIDE, im->channels, im->h, im->w, im->data ? "" : " (no data)");
    }
    if (draw_images(f->measure, cell_box(f->measure, f, cell), c, true)) return -1;
    bool ok = true;
    nb_images copy = *c;
    copy.title = keep_str(f, c->title, &ok);
    nb_image *im = keep(f, c->images, sizeof(nb_image) * (size_t)c->n, &ok);
    for (int i = 0; ok && i < c->n; i++) {
        im[i].data = keep(f, im[i].data, sizeof(float) * (size_t)im[i].channels * (size_t)im[i].h * (size_t)im[i].w, &ok);
        im[i].caption = keep_str(f, im[i].caption, &ok);
    }
    copy.images = im;
    if (!ok) return nb_error("nb_figure_images: out of memory for a copy of the %d images", c->n);
    f->cells[cell].images = copy;
    f->cells[cell].kind = CELL_IMAGES;
    return 0;
}

/* --- output ------------------------------------------------------------------------ */

/* The encoded file grows in memory, then replaces the old one atomically. */
typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *src, unsigned int n) {
    membuf *m = closure;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n) {
            if (cap > SIZE_MAX / 2) return m->oom = true, CAIRO_STATUS_WRITE_ERROR;
            cap *= 2;
        }
        uint8_t *grown = nb__realloc(m->data, cap);
        if (!grown) return m->oom = true, CAIRO_STATUS_WRITE_ERROR;
        m->data = grown;
        m->cap = cap;
    }
    memcpy(m->data + m->len, src, n);
    m->len += n;
    return CAIRO_STATUS_SUCCESS;
}

/* Draws the whole figure onto cr. */
static int draw_figure(cairo_t *cr, const nb_figure *f) {
    set_color(cr, 0xFFFFFF, 1);
    cairo_paint(cr);
    if (f->title && f->title[0]) {
        char buf[512];
        set_font(cr, FS_FIGURE, true);
        const char *t = fit_text(cr, f->title, f->w - 2 * PAD, buf, sizeof buf);
        text_at(cr, f->w / 2.0, PAD + 4 + cap_h(cr), t, 0.5, C_TEXT);
    }
    for (int i = 0; i < f->rows * f->cols; i++) {
        const fig_cell *c = &f->cells[i];
        box b = cell_box(cr, f, i);
        int rc = c->kind == CELL_LINES     ? draw_lines(cr, b, &c->lines, false)
                 : c->kind == CELL_BARS    ? draw_bars(cr, b, &c->bars, false)
                 : c->kind == CELL_HEATMAP ? draw_heatmap(cr, b, &c->heatmap, false)
                 : c->kind == CELL_IMAGES  ? draw_images(cr, b, &c->images, false)
                                           : 0;
        if (rc) return -1;
    }
    return cairo_check(cr, "figure");
}

int nb_figure_save(nb_figure *f, const char *path) {
    if (!f || !path || !*path) return nb_error("nb_figure_save: expected a figure and a file name");
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    const char *ext = dot && (!slash || dot > slash) ? dot + 1 : NULL;
    enum { PNG, SVG, PDF } fmt;
    if (ext && !strcmp(ext, "png")) fmt = PNG;
    else if (ext && !strcmp(ext, "svg")) fmt = SVG;
    else if (ext && !strcmp(ext, "pdf")) fmt = PDF;
    else if (ext)
        return nb_error("%s: unknown picture format '.%s': expected a file name ending in .png, .svg or .pdf", path, ext);
    else return nb_error("%s: no extension to choose the format by: expected .png, .svg or .pdf", path);
    membuf m = {0};
    cairo_surface_t *s = NULL;
    switch (fmt) {
    case PNG: s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, f->w, f->h); break;
    case SVG:
        s = cairo_svg_surface_create_for_stream(mem_write, &m, f->w, f->h);
        cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX); /* the sizes are pixels, as in the PNG */
        break;
    case PDF:
        s = cairo_pdf_surface_create_for_stream(mem_write, &m, f->w, f->h);
        cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_CREATOR, "nabla");
        if (f->title) cairo_pdf_surface_set_metadata(s, CAIRO_PDF_METADATA_TITLE, f->title);
        break;
    }
    cairo_t *cr = cairo_create(s);
    int rc = draw_figure(cr, f);
    cairo_destroy(cr);
    cairo_status_t st = CAIRO_STATUS_SUCCESS;
    if (!rc && fmt == PNG) st = cairo_surface_write_to_png_stream(s, mem_write, &m);
    cairo_surface_finish(s); /* SVG and PDF write their last bytes here */
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (rc) rc = nb_error("%s: %s", path, nb_errmsg());
    else if (m.oom) rc = nb_error("%s: out of memory for the encoded picture", path);
    else if (st != CAIRO_STATUS_SUCCESS) rc = nb_error("%s: cairo: %s", path, cairo_status_to_string(st));
    else rc = nb_write_file_atomic(path, m.data, m.len);
    free(m.data);
    return rc;
}
