/* pmf.c — the distribution of a sum of two independent discrete variables
 * (notes §4.2, eq. 25-27): the convolution of their probability mass
 * functions, on the grid of integers when the values are integers (eq. 27)
 * and over all pairs otherwise (eq. 25). */
#include "../core/internal.h"
#include "../core/fault.h" /* allocations through the seam (nb__malloc) */
#include <math.h>
#include <stdlib.h>

#define PMF_GRID_MAX_SPAN ((int64_t)1 << 22) /* Y's dense array */
#define PMF_GRID_MAX_WORK ((int64_t)1 << 26) /* sums x values of X */
#define PMF_MAX_PAIRS ((int64_t)1 << 24)
#define PMF_SUM_TOL 1e-6
#define PMF_MERGE_TOL 1e-9

/* Checks one variable; its largest |value| and whether all values are
 * integers go to *vmax and *ints. */
static int check_pmf(const char *name, const double *v, const double *p, int64_t n, double *vmax, bool *ints) {
    if (!v || !p || n < 1) return nb_error("convolve: %s has no values (n = %lld)", name, (long long)n);
    double total = 0;
    *vmax = 0;
    *ints = true;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) return nb_error("convolve: %s: value %g at index %lld is not finite", name, v[i], (long long)i);
        if (!(p[i] >= 0 && p[i] <= 1))
            return nb_error("convolve: %s: probability %g at index %lld is not in [0, 1]", name, p[i], (long long)i);
        total += p[i];
        *vmax = fmax(*vmax, fabs(v[i]));
        /* Integers the grid can index: whole and well inside int64. */
        if (v[i] != floor(v[i]) || fabs(v[i]) > 0x1p52) *ints = false;
    }
    if (fabs(total - 1) > PMF_SUM_TOL)
        return nb_error("convolve: %s: the probabilities sum to %.10g, not 1 (within %g)", name, total, PMF_SUM_TOL);
    return 0;
}

typedef struct pmf_pair {
    double s, p;
    double mag; /* |a| + |b| of the pair: the scale of its rounding */
} pmf_pair;

static int by_sum(const void *a, const void *b) {
    double x = ((const pmf_pair *)a)->s, y = ((const pmf_pair *)b)->s;
    return (x > y) - (x < y);
}

/* An error if a value occurs twice (found in a sorted copy). */
static int check_distinct(const char *name, const double *v, int64_t n) {
    pmf_pair *q = nb__malloc((size_t)n * sizeof *q);
    if (!q) return nb_error("convolve: out of memory for %lld values", (long long)n);
    for (int64_t i = 0; i < n; i++) q[i] = (pmf_pair){v[i], 0, 0};
    qsort(q, (size_t)n, sizeof *q, by_sum);
    int rc = 0;
    for (int64_t i = 1; i < n && !rc; i++)
        if (q[i].s == q[i - 1].s)
            rc = nb_error("convolve: %s: the value %.17g is given twice; give each value once", name, q[i].s);
    free(q);
    return rc;
}

int nb_convolve_pmf(const double *xv, const double *xp, int64_t nx, const double *yv, const double *yp, int64_t ny,
                    double **sv, double **sp, int64_t *n) {
    if (!sv || !sp || !n) nb_fatal("nb_convolve_pmf", "NULL output pointer");
    *sv = *sp = NULL;
    *n = 0;
    double xmax, ymax;
    bool xint, yint;
    if (check_pmf("X", xv, xp, nx, &xmax, &xint) || check_pmf("Y", yv, yp, ny, &ymax, &yint) ||
        check_distinct("X", xv, nx) || check_distinct("Y", yv, ny))
        return -1;
    /* |a + b| <= xmax + ymax: when that is finite no sum overflows. An
     * infinite sum made the merge below compare inf - inf (NaN) with the
     * tolerance and never advance: nb_convolve_pmf never returned. */
    if (!isfinite(xmax + ymax))
        return nb_error("convolve: values as large as %g (X) and %g (Y) make sums beyond the range of a double", xmax,
                        ymax);
    pmf_pair *out = NULL;
    int64_t m = 0;
    if (xint && yint) {
        double x0 = xv[0], x1 = xv[0], y0 = yv[0], y1 = yv[0];
        for (int64_t i = 1; i < nx; i++) x0 = fmin(x0, xv[i]), x1 = fmax(x1, xv[i]);
        for (int64_t j = 1; j < ny; j++) y0 = fmin(y0, yv[j]), y1 = fmax(y1, yv[j]);
        double yspan = y1 - y0 + 1, span = (x1 - x0) + (y1 - y0) + 1;
        if (yspan <= (double)PMF_GRID_MAX_SPAN && span * (double)nx <= (double)PMF_GRID_MAX_WORK) {
            /* eq. 27: (f * g)(c) = sum_a f(a) g(c - a), with g dense on
             * y0..y1 and a over X's values; c runs over x0 + y0 .. x1 + y1. */
            int64_t gy = (int64_t)yspan, S = (int64_t)span;
            double *g = nb__calloc((size_t)gy, sizeof *g);
            out = nb__malloc((size_t)S * sizeof *out);
            if (!g || !out) {
                free(g);
                free(out);
                return nb_error("convolve: out of memory for %lld sums", (long long)S);
            }
            for (int64_t j = 0; j < ny; j++) g[(int64_t)(yv[j] - y0)] = yp[j];
            for (int64_t k = 0; k < S; k++) {
                double c = x0 + y0 + (double)k, pc = 0;
                for (int64_t i = 0; i < nx; i++) {
                    double b = c - xv[i] - y0; /* index of c - a in g */
                    if (b >= 0 && b < (double)gy) pc += xp[i] * g[(int64_t)b];
                }
                if (pc > 0) out[m++] = (pmf_pair){c, pc};
            }
            free(g);
        }
    }
    if (!out) {
        if ((double)nx * (double)ny > (double)PMF_MAX_PAIRS)
            return nb_error("convolve: %lld x %lld values make %.0f pairs; at most %lld are supported", (long long)nx,
                            (long long)ny, (double)nx * (double)ny, (long long)PMF_MAX_PAIRS);
        /* eq. 25: Pr(a + b = c) = sum over the pairs with a + b = c of
         * f(a) g(b): every pair, sorted by its sum, equal sums merged. */
        pmf_pair *pairs = nb__malloc((size_t)(nx * ny) * sizeof *pairs);
        if (!pairs) return nb_error("convolve: out of memory for %lld pairs", (long long)(nx * ny));
        for (int64_t i = 0; i < nx; i++)
            for (int64_t j = 0; j < ny; j++)
                pairs[i * ny + j] = (pmf_pair){xv[i] + yv[j], xp[i] * yp[j], fabs(xv[i]) + fabs(yv[j])};
        qsort(pairs, (size_t)(nx * ny), sizeof *pairs, by_sum);
        /* Two sums are one when they differ by less than 1e-9 of the larger
         * pair's |a| + |b|, the scale of their rounding. A tolerance from
         * max |x| + max |y| merged small sums that differ for real when
         * another value was large: X = {0.5, 1e9}, Y = {0, 0.25} gave 0.5
         * and 0.75 as one sum (the tolerance was 1). */
        for (int64_t k = 0; k < nx * ny;) {
            double s0 = pairs[k].s, mag0 = pairs[k].mag, pc = 0;
            while (k < nx * ny && pairs[k].s - s0 <= PMF_MERGE_TOL * fmax(mag0, pairs[k].mag)) pc += pairs[k++].p;
            if (pc > 0) pairs[m++] = (pmf_pair){s0, pc, mag0};
        }
        out = pairs;
    }
    double *v = nb__malloc((size_t)(m ? m : 1) * sizeof *v), *p = nb__malloc((size_t)(m ? m : 1) * sizeof *p);
    if (!v || !p) {
        free(v);
        free(p);
        free(out);
        return nb_error("convolve: out of memory for %lld sums", (long long)m);
    }
    for (int64_t k = 0; k < m; k++) v[k] = out[k].s, p[k] = out[k].p;
    free(out);
    *sv = v;
    *sp = p;
    *n = m;
    return 0;
}
