/* plot.h — what the files of the figures (plot*.c) share and users never
 * see: the style (font sizes, colours, spacing), the figure's cells, the
 * axes and plot area every chart lays out, and the drawing of text, frames
 * and pixel pictures. Each chart kind draws itself in its own file
 * (plot_lines.c, plot_bars.c, plot_heatmap.c, plot_images.c); plot.c holds
 * the figure and saves it. */
#ifndef NB_IO_PLOT_H
#define NB_IO_PLOT_H

#include "io.h"
#include <cairo.h>
#include <math.h>

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

/* --- text (plot_text.c) ----------------------------------------------------- */

void nb__plot_set_color(cairo_t *cr, uint32_t c, double alpha);
void nb__plot_set_font(cairo_t *cr, double size, bool bold);
/* The advance width of s in the current font. */
double nb__plot_text_w(cairo_t *cr, const char *s);
/* The height of capitals and digits, which is what the eye centres on. */
double nb__plot_cap_h(cairo_t *cr);
/* Draws s with its baseline at y, anchored at x by align (0 left, 0.5
 * centre, 1 right). */
void nb__plot_text_at(cairo_t *cr, double x, double y, const char *s, double align, uint32_t color);
/* Copies s into buf, shortened with an ellipsis so that it is at most maxw
 * wide in the current font; whole UTF-8 characters only. */
const char *nb__plot_fit_text(cairo_t *cr, const char *s, double maxw, char *buf, size_t n);
/* Text turned a quarter left (a y axis label), centred on (x, y). */
void nb__plot_text_up(cairo_t *cr, double x, double y, const char *s, uint32_t color);

/* --- axes (plot_axes.c) ----------------------------------------------------- */

#define MAX_TICKS 64
typedef struct axis {
    double lo, hi; /* the visible range */
    double tick[MAX_TICKS];
    char label[MAX_TICKS][64];
    int nticks;
    bool categories; /* ticks at bar centres, no grid lines */
} axis;

/* A chart's plot area in figure coordinates, with its axes. */
typedef struct frame {
    double left, top, right, bottom;
    axis ax, ay;
} frame;

static inline double nb__plot_fx(const frame *f, double x) { return f->left + (x - f->ax.lo) / (f->ax.hi - f->ax.lo) * (f->right - f->left); }
static inline double nb__plot_fy(const frame *f, double y) { return f->bottom - (y - f->ay.lo) / (f->ay.hi - f->ay.lo) * (f->bottom - f->top); }

/* The cell's rectangle. */
typedef struct box {
    double x, y, w, h;
} box;

/* What a chart tells nb__plot_frame_layout about its axes. */
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

/* Chooses an axis's visible range and ticks (see plot_axes.c). */
void nb__plot_make_axis(cairo_t *cr, axis *a, double dmin, double dmax, bool have, double pad, double length,
                        double spacing, bool horizontal, bool integers);
/* Places the plot area inside the cell and makes the axes; -1 if the cell is
 * too small for them. */
int nb__plot_frame_layout(cairo_t *cr, box b, const axes_spec *s, frame *fr);
/* Title, grid, ticks, tick labels and axis labels of a frame. */
void nb__plot_frame_draw(cairo_t *cr, box b, const axes_spec *s, const frame *fr);
/* The frame's border, drawn last, over the data. */
void nb__plot_frame_border(cairo_t *cr, const frame *fr);
/* Clips drawing to the plot area. */
void nb__plot_clip_to(cairo_t *cr, const frame *fr);
/* Turns cr's error state (out of memory, mostly) into ours. */
int nb__plot_cairo_check(cairo_t *cr, const char *what);

/* Values beyond +-1e300 are drawn at +-1e300, the ends of the widest axis,
 * so that every point lands inside the plot area: cairo's coordinates are
 * fixed-point and would overflow far outside it. */
static inline double nb__plot_clamp300(double v) { return fmax(-1e300, fmin(1e300, v)); }

/* --- the figure (plot.c) ---------------------------------------------------- */

/* Cell number cell's rectangle. */
box nb__plot_cell_box(cairo_t *cr, const nb_figure *f, int cell);
/* Checks the cell argument of a chart call. */
int nb__plot_check_cell(const nb_figure *f, int cell, const char *fn);
/* A copy of n bytes at src owned by the figure (NULL stays NULL); clears
 * *ok when out of memory. */
void *nb__plot_keep(nb_figure *f, const void *src, size_t n, bool *ok);
const char *nb__plot_keep_str(nb_figure *f, const char *s, bool *ok);

/* --- the charts (plot_lines.c, plot_bars.c, plot_heatmap.c, plot_images.c) -- */

/* Each draws its chart into b; with dry, only lays it out (-1 if it does
 * not fit), as the figure does when the chart is given. */
int nb__plot_draw_lines(cairo_t *cr, box b, const nb_lines *c, bool dry);
int nb__plot_draw_bars(cairo_t *cr, box b, const nb_bars *c, bool dry);
int nb__plot_draw_heatmap(cairo_t *cr, box b, const nb_heatmap *c, bool dry);
int nb__plot_draw_images(cairo_t *cr, box b, const nb_images *c, bool dry);

/* --- pixel pictures: heat maps and image grids (plot_pixels.c) -------------- */

/* How many times to repeat each pixel of a picture: a picture is embedded
 * at about the size it is shown, so that SVG and PDF viewers, which smooth
 * small images as they enlarge them, show sharp cells. Each side stays
 * within cairo's 32767 and the whole within 4 M pixels. */
typedef struct scale2 {
    int x, y;
} scale2;

scale2 nb__plot_upscale(int w, int h, double dw, double dh);
/* An RGB24 image of w x h pixels, each repeated k.x x k.y times; pix(ctx,
 * x, y) gives the colour of source pixel (x, y), y = 0 the top row. */
cairo_surface_t *nb__plot_pixel_surface(int w, int h, scale2 k, uint32_t (*pix)(const void *, int, int), const void *ctx);
/* Paints img (w x h source pixels, repeated k times) over the rectangle. */
void nb__plot_paint_pixels(cairo_t *cr, cairo_surface_t *img, int w, int h, scale2 k, double x, double y, double dw,
                           double dh);

#endif
