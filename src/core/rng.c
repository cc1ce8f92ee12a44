/* rng.c — PCG32 (O'Neill, "PCG: a family of simple fast space-efficient
 * statistically good algorithms", 2014): small state, good statistics, and a
 * stream id so that independent uses can share one seed. */
#include "internal.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

void nb_rng_seed(nb_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    nb_rng_u32(r);
    r->state += seed;
    nb_rng_u32(r);
}

uint32_t nb_rng_u32(nb_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

double nb_rng_uniform(nb_rng *r) {
    uint64_t hi = nb_rng_u32(r) >> 5, lo = nb_rng_u32(r) >> 6; /* 27 + 26 bits */
    return ((double)hi * 67108864.0 + (double)lo) / 9007199254740992.0;
}

double nb_rng_normal(nb_rng *r) {
    /* Box-Muller; 1 - u keeps the log argument in (0, 1]. */
    double u1 = 1.0 - nb_rng_uniform(r), u2 = nb_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint32_t nb_rng_below(nb_rng *r, uint32_t n) {
    /* [0, 0) is empty; the modulo below would divide by zero (SIGFPE). */
    if (n == 0) nb_fatal("rng_below", "n must be >= 1 (a uniform draw from [0, n)), got 0");
    /* Lemire's rejection: unbiased without division in the common case. */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t x = nb_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

void nb_rng_shuffle(nb_rng *r, int64_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)nb_rng_below(r, (uint32_t)(i + 1));
        int64_t t = v[i]; v[i] = v[j]; v[j] = t;
    }
}

/* One per thread, every thread's starting from the same state: threads that
 * seed theirs alike draw alike (a thread's dropout masks do not depend on
 * what another thread draws at the same time), and no two write one state. */
static _Thread_local nb_rng global_rng = {0x853c49e6748fea9bULL, 0xda3e39cb94b95bdbULL};
nb_rng *nb_global_rng(void) { return &global_rng; }
void nb_manual_seed(uint64_t seed) { nb_rng_seed(&global_rng, seed, 54); }

void nb_rng_to_text(const nb_rng *r, char buf[NB_RNG_TEXT]) {
    snprintf(buf, NB_RNG_TEXT, "%016" PRIx64 ":%016" PRIx64, r->state, r->inc);
}

int nb_rng_from_text(const char *s, nb_rng *r) {
    uint64_t a, b;
    int used = 0;
    if (!s || sscanf(s, "%16" SCNx64 ":%16" SCNx64 "%n", &a, &b, &used) != 2 || s[used] || !(b & 1)) return -1;
    r->state = a, r->inc = b; /* only a whole, valid state replaces r */
    return 0;
}
