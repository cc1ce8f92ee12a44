/* vmath.h — exp, log, sigmoid and tanh written so that loops over them
 * vectorize (glibc's expf is a scalar call that stops GCC from vectorizing;
 * its SIMD variants are only declared under -ffast-math). Shared by the
 * activation ops and the fused recurrent cells. */
#ifndef NB_VMATH_H
#define NB_VMATH_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* exp is Cephes' expf (relative error < 2e-7 over the whole
 * float range) written with selects and bit operations only, so a loop of it
 * compiles to AVX/NEON code. */

/* bits <-> float without aliasing trouble; compiles to a register move. */
static inline float nb__f_from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
static inline uint32_t nb__bits_from_f(float f) {
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* c ? a : b as bit operations on both (already computed) values. GCC keeps
 * a plain ?: with arithmetic on one side as a branch (under the default
 * -ftrapping-math it may not compute a * v where the source does not), and a
 * branch stops vectorization; this form is a compare and a blend. */
static inline float nb__sel(bool c, float a, float b) {
    uint32_t m = -(uint32_t)c, ia = nb__bits_from_f(a), ib = nb__bits_from_f(b);
    return nb__f_from_bits((ia & m) | (ib & ~m));
}

/* e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2)/2. Overflows to inf
 * above ~88.72, goes through the subnormals down to 0, and propagates NaN. */
static inline float nb__vexpf(float x) {
    /* Clamping keeps n in [-150, 128]; written as selects so NaN passes
     * (as bit selects, or GCC splits the loop into constant-folded paths). */
    x = nb__sel(x > 89.f, 89.f, x);
    x = nb__sel(x < -104.f, -104.f, x);
    /* Round x log2(e) to an integer by the 1.5*2^23 trick: the sum's low
     * mantissa bits are n in two's complement. Integer work is unsigned (no
     * float->int conversion, no signed overflow), so a NaN input, whose bits
     * here are garbage, is still defined behaviour and gives NaN. */
    const float magic = 12582912.f;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    uint32_t ni = nb__bits_from_f(t) - nb__bits_from_f(magic);
    /* r = x - n ln 2, with ln 2 split in two so the product is exact. */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.f;
    /* 2^n as two factors, each a normal float for n in [-150, 128], so
     * results in the subnormal range are rounded once, correctly. */
    uint32_t na = (uint32_t)((int32_t)ni >> 1), nb = ni - na;
    return p * nb__f_from_bits((na + 127u) << 23) * nb__f_from_bits((nb + 127u) << 23);
}

/* log x as Cephes' logf (relative error about 1e-7), in selects and bit
 * operations like nb__vexpf so that loops of it vectorize. x = m 2^e with m
 * in [sqrt(1/2), sqrt(2)); log x = log m + e log 2, log m from a polynomial
 * in m - 1. Subnormal x is scaled by 2^25 first; log 0 = -inf, log of a
 * negative number NaN, log inf = inf, NaN stays NaN. */
static inline float nb__vlogf(float x) {
    bool sub = x < 1.17549435e-38f; /* below the smallest normal (and <= 0) */
    float xs = nb__sel(sub, x * 33554432.f, x);
    uint32_t b = nb__bits_from_f(xs);
    float e = (float)(int32_t)((b >> 23) & 0xffu) - nb__sel(sub, 151.f, 126.f);
    float m = nb__f_from_bits((b & 0x007fffffu) | 0x3f000000u); /* in [0.5, 1) */
    bool low = m < 0.707106781186547524f;
    e = nb__sel(low, e - 1.f, e);
    float t = nb__sel(low, m + m - 1.f, m - 1.f);
    float z = t * t;
    float p = 7.0376836292e-2f;
    p = p * t - 1.1514610310e-1f;
    p = p * t + 1.1676998740e-1f;
    p = p * t - 1.2420140846e-1f;
    p = p * t + 1.4249322787e-1f;
    p = p * t - 1.6668057665e-1f;
    p = p * t + 2.0000714765e-1f;
    p = p * t - 2.4999993993e-1f;
    p = p * t + 3.3333331174e-1f;
    float y = p * t * z;
    y = y + e * -2.12194440e-4f;
    y = y - 0.5f * z;
    float r = (t + y) + e * 0.693359375f;
    r = nb__sel(x == 0.f, -INFINITY, r);
    r = nb__sel((x < 0.f) | (x != x), NAN, r); /* | not ||: no branch, so it vectorizes */
    return nb__sel(x == INFINITY, INFINITY, r);
}

/* 1 / (1 + e^-v) from e^-|v|, so nothing overflows. */
static inline float nb__vsigmoidf(float v) {
    float e = nb__vexpf(-fabsf(v));
    float r = 1.f / (1.f + e);
    return nb__sel(v < 0.f, e * r, r);
}

/* tanh as Cephes' tanhf: for |x| > 0.625, 1 - 2 / (e^{2|x|} + 1) with the
 * sign restored (no overflow: e^{2|x|} = inf gives exactly 1); below that an
 * odd polynomial, because the subtraction would cancel most digits near 0. */
static inline float nb__vtanhf(float v) {
    float z = fabsf(v);
    float big = 1.f - 2.f / (nb__vexpf(z + z) + 1.f);
    big = nb__sel(v < 0.f, -big, big);
    float s = v * v;
    float p = -5.70498872745e-3f;
    p = p * s + 2.06390887954e-2f;
    p = p * s - 5.37397155531e-2f;
    p = p * s + 1.33314422036e-1f;
    p = p * s - 3.33332819422e-1f;
    float small = p * s * v + v;
    return nb__sel(z > 0.625f, big, small);
}

#endif
