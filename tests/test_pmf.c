/* test_pmf.c — nb_convolve_pmf, the distribution of X + Y for independent
 * discrete X and Y (notes §4.2, eq. 25-27): closed forms, sampling, the two
 * ways of computing it against each other, and bad input. */
#include "test.h"
#include <stdlib.h>

static bool has(const char *msg, const char *part) { return strstr(msg, part) != NULL; }

TEST(test_eq_25_27_two_dice_closed_form) {
    /* Two fair dice: Pr(X + Y = s) = (6 - |s - 7|) / 36 for s = 2..12. The
     * integers go by eq. 27 on the grid; halved values (0.5, 1, ..., 3) are
     * not all integers and go by eq. 25 over the pairs: the same numbers at
     * s / 2. */
    double v[6], p[6], h[6];
    for (int i = 0; i < 6; i++) v[i] = i + 1, h[i] = (i + 1) / 2.0, p[i] = 1.0 / 6;
    for (int pass = 0; pass < 2; pass++) {
        const double *x = pass ? h : v;
        double *sv, *sp;
        int64_t n;
        CHECK_MSG(nb_convolve_pmf(x, p, 6, x, p, 6, &sv, &sp, &n) == 0, "%s", nb_errmsg());
        CHECK(n == 11);
        if (n != 11) continue;
        double total = 0;
        for (int k = 0; k < 11; k++) {
            int s = k + 2;
            CHECK_NEAR(sv[k], pass ? s / 2.0 : s, 0);
            CHECK_NEAR(sp[k], (6 - abs(s - 7)) / 36.0, 1e-15);
            total += sp[k];
        }
        CHECK_NEAR(total, 1.0, 1e-14);
        free(sv);
        free(sp);
    }
    /* A die and a coin shifted below zero, values given in any order:
     * X + Y for Y in {-3, -1}, each 1/2, is uniform on 1 / 12 except the
     * overlap of the two shifted dice (-1..3), which gets 1/6. */
    double y[2] = {-1, -3}, q[2] = {0.5, 0.5}, xr[6] = {6, 2, 4, 1, 3, 5};
    double *sv, *sp;
    int64_t n;
    CHECK(nb_convolve_pmf(xr, p, 6, y, q, 2, &sv, &sp, &n) == 0);
    CHECK(n == 8); /* -2 .. 5 */
    for (int64_t k = 0; k < n && n == 8; k++) {
        CHECK_NEAR(sv[k], -2 + k, 0);
        CHECK_NEAR(sp[k], (sv[k] >= 0 && sv[k] <= 3) ? 1.0 / 6 : 1.0 / 12, 1e-15);
    }
    free(sv);
    free(sp);
}

TEST(test_eq_25_27_grid_and_pairs_agree) {
    /* Random integer pmfs with gaps and zero probabilities: the grid
     * (eq. 27) on the integers and the pairs (eq. 25) on the same values
     * times 0.25 (exact in binary, not integers) give the same list. */
    nb_rng *r = nb_test_rng();
    for (int trial = 0; trial < 20; trial++) {
        int nx = 1 + (int)nb_rng_below(r, 9), ny = 1 + (int)nb_rng_below(r, 9);
        double xv[9], xp[9], yv[9], yp[9], xq[9], yq[9], tx = 0, ty = 0;
        for (int i = 0; i < nx; i++) {
            xv[i] = i * 3 - 7 + (double)nb_rng_below(r, 3); /* distinct: steps of 3, jitter below 3 */
            xp[i] = nb_rng_below(r, 4) ? nb_rng_uniform(r) : 0;
            tx += xp[i];
        }
        for (int j = 0; j < ny; j++) {
            yv[j] = j * 5 + (double)nb_rng_below(r, 5);
            yp[j] = nb_rng_uniform(r) + 0.01;
            ty += yp[j];
        }
        if (tx == 0) xp[0] = tx = 1;
        for (int i = 0; i < nx; i++) xp[i] /= tx, xq[i] = xv[i] * 0.25;
        for (int j = 0; j < ny; j++) yp[j] /= ty, yq[j] = yv[j] * 0.25;
        double *av, *ap, *bv, *bp;
        int64_t na, nb;
        CHECK_MSG(nb_convolve_pmf(xv, xp, nx, yv, yp, ny, &av, &ap, &na) == 0, "%s", nb_errmsg());
        CHECK_MSG(nb_convolve_pmf(xq, xp, nx, yq, yp, ny, &bv, &bp, &nb) == 0, "%s", nb_errmsg());
        CHECK(na == nb && na >= 1);
        double total = 0, mean = 0, want_mean = 0;
        for (int i = 0; i < nx; i++) want_mean += xp[i] * xv[i];
        for (int j = 0; j < ny; j++) want_mean += yp[j] * yv[j];
        for (int64_t k = 0; k < na && na == nb; k++) {
            CHECK(av[k] * 0.25 == bv[k]);
            CHECK_NEAR(ap[k], bp[k], 1e-14);
            CHECK(ap[k] > 0 && (k == 0 || av[k] > av[k - 1]));
            total += ap[k];
            mean += ap[k] * av[k];
        }
        CHECK_NEAR(total, 1.0, 1e-12);
        CHECK_NEAR(mean, want_mean, 1e-10); /* E[X + Y] = E[X] + E[Y] */
        free(av), free(ap), free(bv), free(bp);
    }
}

/* Index of the value v in the sorted sums (exact match), or -1. */
static int64_t find(const double *sv, int64_t n, double v) {
    int64_t lo = 0, hi = n - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        if (sv[mid] == v) return mid;
        if (sv[mid] < v) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* A draw from the discrete distribution p (n outcomes). */
static int draw(nb_rng *r, const double *p, int n) {
    double u = nb_rng_uniform(r), c = 0;
    for (int i = 0; i < n - 1; i++)
        if (u < (c += p[i])) return i;
    return n - 1;
}

TEST(test_eq_25_27_against_sampling) {
    /* X + Y sampled 1e5 times, X on irregular non-integer values (the pair
     * path), Y a loaded die (mixed: the sums are not integers). The counts
     * are compared with N p by Pearson's chi-square: under the computed
     * distribution it follows chi^2 with k - 1 degrees of freedom (every
     * expected count here is >= 500, far above the usual 5, so the
     * approximation is sound). Mean k - 1, standard deviation sqrt(2 (k - 1));
     * with k = 24 the bound mean + 8 sd is 77.3, exceeded by chance with
     * probability about 1e-7 (Wilson-Hilferty: z = 5.2), so a correct
     * distribution passes with this seed and practically any other; yet a
     * single probability off by 0.01 (1000 counts of 1e5) adds
     * 1000^2 / (N p) >= 100 on its own. Each cell's deviation
     * |count / N - p| is also bounded by 5 standard errors sqrt(p (1 - p) / N)
     * (a chance failure of about 1e-5 over the 24 cells; the seed is fixed). */
    double xv[4] = {-1.5, 0.25, 2.75, 10.125}, xp[4] = {0.1, 0.4, 0.3, 0.2};
    double yv[6] = {1, 2, 3, 4, 5, 6}, yp[6] = {0.1, 0.1, 0.1, 0.1, 0.1, 0.5};
    double *sv, *sp;
    int64_t k;
    CHECK_MSG(nb_convolve_pmf(xv, xp, 4, yv, yp, 6, &sv, &sp, &k) == 0, "%s", nb_errmsg());
    CHECK(k == 24); /* the 4 x 6 sums are all different */
    enum { N = 100000 };
    int64_t *count = calloc((size_t)k, sizeof *count);
    nb_rng r;
    nb_rng_seed(&r, 2527, 1);
    for (int t = 0; t < N; t++) {
        double s = xv[draw(&r, xp, 4)] + yv[draw(&r, yp, 6)];
        int64_t at = find(sv, k, s);
        CHECK_MSG(at >= 0, "sampled sum %.17g is not among the computed sums", s);
        if (at >= 0) count[at]++;
    }
    double chi2 = 0;
    for (int64_t i = 0; i < k; i++) {
        double e = N * sp[i];
        chi2 += (count[i] - e) * (count[i] - e) / e;
        double se = sqrt(sp[i] * (1 - sp[i]) / N);
        CHECK_MSG(fabs((double)count[i] / N - sp[i]) < 5 * se, "sum %g: frequency %g, probability %g", sv[i],
                  (double)count[i] / N, sp[i]);
    }
    double df = (double)(k - 1);
    CHECK_MSG(chi2 < df + 8 * sqrt(2 * df), "chi-square %g with %g degrees of freedom", chi2, df);
    free(count);
    free(sv);
    free(sp);
}

TEST(test_convolve_pmf_merges_equal_sums_and_rejects_bad_input) {
    /* 0.1 + 0.2 is 0.30000000000000004 in binary, 0.3 + 0 is 0.3: one sum. */
    double xv[2] = {0.1, 0.3}, xp[2] = {0.5, 0.5}, yv[2] = {0.2, 0}, yp[2] = {0.5, 0.5};
    double *sv, *sp;
    int64_t n;
    CHECK(nb_convolve_pmf(xv, xp, 2, yv, yp, 2, &sv, &sp, &n) == 0);
    CHECK(n == 3);
    if (n == 3) {
        CHECK_NEAR(sv[0], 0.1, 1e-15);
        CHECK_NEAR(sv[1], 0.3, 1e-15);
        CHECK_NEAR(sp[1], 0.5, 1e-15);
        CHECK_NEAR(sv[2], 0.5, 1e-15);
    }
    free(sv), free(sp);
    /* Zero-probability sums are left out. */
    double zp[2] = {1, 0};
    CHECK(nb_convolve_pmf(xv, zp, 2, yv, zp, 2, &sv, &sp, &n) == 0 && n == 1 && sp[0] == 1);
    free(sv), free(sp);
    /* Errors name the variable and the defect; nothing is allocated. */
    double bad[2] = {0.5, 0.6};
    CHECK(nb_convolve_pmf(xv, bad, 2, yv, yp, 2, &sv, &sp, &n) == -1 && has(nb_errmsg(), "X") &&
          has(nb_errmsg(), "sum to 1.1") && !sv && !sp && n == 0);
    double over[2] = {1.5, -0.5};
    CHECK(nb_convolve_pmf(xv, xp, 2, yv, over, 2, &sv, &sp, &n) == -1 && has(nb_errmsg(), "Y") &&
          has(nb_errmsg(), "not in [0, 1]"));
    double nan_v[2] = {NAN, 1};
    CHECK(nb_convolve_pmf(nan_v, xp, 2, yv, yp, 2, &sv, &sp, &n) == -1 && has(nb_errmsg(), "not finite"));
    double dup[2] = {4, 4};
    CHECK(nb_convolve_pmf(xv, xp, 2, dup, yp, 2, &sv, &sp, &n) == -1 && has(nb_errmsg(), "given twice"));
    CHECK(nb_convolve_pmf(xv, xp, 0, yv, yp, 2, &sv, &sp, &n) == -1 && has(nb_errmsg(), "no values"));
    /* Within 1e-6 of 1 is accepted; 5e-6 off is not. */
    double near1[2] = {0.5, 0.5000005};
    CHECK(nb_convolve_pmf(xv, near1, 2, yv, yp, 2, &sv, &sp, &n) == 0);
    free(sv), free(sp);
    double off1[2] = {0.5, 0.500005};
    CHECK(nb_convolve_pmf(xv, off1, 2, yv, yp, 2, &sv, &sp, &n) == -1 && has(nb_errmsg(), "not 1"));
}

TEST(test_eq_25_merge_tolerance_follows_each_pair_and_grid_bounds) {
    /* A large value elsewhere does not merge small sums that differ for real:
     * X = {0.5, 1e9}, Y = {0, 0.25} gives 0.5 and 0.75 with 1/4 each, while
     * 1e9 and 1e9 + 0.25, within 1e-9 of their size, are one sum of 1/2.
     * (The tolerance was 1e-9 (max |x| + max |y|) = 1 for every pair, and
     * 0.5 and 0.75 came out as one sum of probability 1/2.) */
    double *sv, *sp;
    int64_t n;
    CHECK(nb_convolve_pmf((double[]){0.5, 1e9}, (double[]){0.5, 0.5}, 2, (double[]){0, 0.25}, (double[]){0.5, 0.5}, 2,
                          &sv, &sp, &n) == 0);
    CHECK_MSG(n == 3, "%lld sums", (long long)n);
    if (n == 3) CHECK(sv[0] == 0.5 && sp[0] == 0.25 && sv[1] == 0.75 && sp[1] == 0.25 && sv[2] == 1e9 && sp[2] == 0.5);
    free(sv), free(sp);
    /* The grid spans every value's range, wherever the smallest and largest
     * stand: X = {1, 0}, Y = {0, 1} gives 0, 1, 2 with 1/4, 1/2, 1/4. */
    CHECK(nb_convolve_pmf((double[]){1, 0}, (double[]){0.5, 0.5}, 2, (double[]){0, 1}, (double[]){0.5, 0.5}, 2, &sv, &sp,
                          &n) == 0);
    CHECK(n == 3 && sv[0] == 0 && sv[1] == 1 && sv[2] == 2 && sp[0] == 0.25 && sp[1] == 0.5 && sp[2] == 0.25);
    free(sv), free(sp);
    CHECK(nb_convolve_pmf((double[]){0, 1}, (double[]){0.5, 0.5}, 2, (double[]){1, 0}, (double[]){0.5, 0.5}, 2, &sv, &sp,
                          &n) == 0);
    CHECK(n == 3 && sv[0] == 0 && sv[2] == 2 && sp[1] == 0.5);
    free(sv), free(sp);
}

TEST(test_eq_25_sums_beyond_double_range_are_an_error) {
    /* 1e308 + 1e308 is inf: the merge of equal sums compared inf - inf (NaN)
     * with its tolerance, never advanced, and the call never returned. */
    double *sv = NULL, *sp = NULL;
    int64_t n = -1;
    CHECK(nb_convolve_pmf((double[]){1e308}, (double[]){1}, 1, (double[]){1e308}, (double[]){1}, 1, &sv, &sp, &n) == -1);
    CHECK(strstr(nb_errmsg(), "beyond the range of a double") != NULL);
    CHECK(n == 0 && !sv && !sp);
    /* Large values whose sums stay finite are still fine: two sums. */
    CHECK(nb_convolve_pmf((double[]){0.5}, (double[]){1}, 1, (double[]){-1e308, 1e308}, (double[]){0.5, 0.5}, 2, &sv, &sp,
                          &n) == 0);
    CHECK(n == 2);
    free(sv);
    free(sp);
}
