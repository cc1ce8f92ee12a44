/* env_2048.c — the game 2048 (Cirulli 2014) on a 4x4 board: slide all tiles
 * up, right, down or left; equal neighbours merge once per move; a new 2
 * (probability 0.9) or 4 appears in a random empty cell after every move. */
#include "env.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { UP, RIGHT, DOWN, LEFT };
#define MAX_EXP 15 /* observation channels 0..15: empty, 2, 4, ..., 32768 and above */

typedef struct {
    uint8_t e[16]; /* cell r*4+c holds 2^e[.] (0: empty) */
    int64_t score; /* sum of merged tile values: the game's score */
    int64_t moves;
    bool done;
} game;

/* The four cells of line `i` for a move in direction d, listed from the edge
 * the tiles move towards. */
static void line_cells(int d, int i, int *cell) {
    for (int k = 0; k < 4; k++) {
        switch (d) {
        case UP: cell[k] = k * 4 + i; break;
        case DOWN: cell[k] = (3 - k) * 4 + i; break;
        case LEFT: cell[k] = i * 4 + k; break;
        default: cell[k] = i * 4 + 3 - k; break;
        }
    }
}

/* Applies move d to e (in place); returns the merged value, or -1 when
 * nothing moves (an illegal move). Each tile merges at most once: [2,2,2,2]
 * to the left gives [4,4,0,0], not [8,0,0,0]. */
static int64_t slide(uint8_t *e, int d) {
    int64_t reward = 0;
    bool moved = false;
    for (int i = 0; i < 4; i++) {
        int cell[4];
        line_cells(d, i, cell);
        uint8_t out[4] = {0}, last = 0;
        int j = 0;
        for (int k = 0; k < 4; k++) {
            uint8_t v = e[cell[k]];
            if (!v) continue;
            if (v == last) { /* merge with the tile just placed, once */
                out[j - 1] = (uint8_t)(v + 1);
                reward += (int64_t)1 << (v + 1);
                last = 0;
            } else {
                out[j++] = v;
                last = v;
            }
        }
        for (int k = 0; k < 4; k++) {
            moved |= e[cell[k]] != out[k];
            e[cell[k]] = out[k];
        }
    }
    return moved ? reward : -1;
}

static void spawn(game *g, nb_rng *r) {
    int empty[16], n = 0;
    for (int i = 0; i < 16; i++)
        if (!g->e[i]) empty[n++] = i;
    if (!n) return;
    int at = empty[nb_rng_below(r, (uint32_t)n)];
    g->e[at] = nb_rng_uniform(r) < 0.9 ? 1 : 2;
}

static int g_legal(const void *p, bool *mask) {
    const game *g = p;
    int n = 0;
    for (int d = 0; d < 4; d++) {
        uint8_t e[16];
        memcpy(e, g->e, 16);
        mask[d] = !g->done && slide(e, d) >= 0;
        n += mask[d];
    }
    return n;
}

static void g_reset(void *p, nb_rng *r) {
    game *g = p;
    memset(g, 0, sizeof *g);
    spawn(g, r);
    spawn(g, r);
}

static float g_step(void *p, int action, nb_rng *r, bool *terminal, bool *truncated) {
    game *g = p;
    *truncated = false;
    *terminal = g->done;
    if (g->done) return 0;
    int64_t reward = slide(g->e, action);
    if (reward < 0) return 0; /* illegal: nothing happens (callers mask it) */
    g->score += reward;
    g->moves++;
    spawn(g, r);
    bool mask[4];
    g->done = g_legal(g, mask) == 0;
    *terminal = g->done;
    return (float)reward;
}

/* One-hot planes [16, 4, 4]: plane k marks the cells holding 2^k (plane 0
 * the empty ones), so tile values enter as categories, not magnitudes. */
static void g_observe(const void *p, float *obs) {
    const game *g = p;
    memset(obs, 0, sizeof(float) * 256);
    for (int i = 0; i < 16; i++) obs[(g->e[i] > MAX_EXP ? MAX_EXP : g->e[i]) * 16 + i] = 1.0f;
}

static int g_render(const void *p, char *buf, size_t n) {
    const game *g = p;
    size_t off = 0;
    int total = 0;
#define OUT(...)                                                                   \
    do {                                                                           \
        int k_ = snprintf(buf + off, off < n ? n - off : 0, __VA_ARGS__);          \
        total += k_;                                                               \
        off += (size_t)k_;                                                         \
    } while (0)
    OUT("+------+------+------+------+\n");
    for (int r = 0; r < 4; r++) {
        for (int c = 0; c < 4; c++) {
            uint8_t v = g->e[r * 4 + c];
            if (v) OUT("|%5lld ", (long long)1 << v);
            else OUT("|      ");
        }
        OUT("|\n+------+------+------+------+\n");
    }
    OUT("score %lld  moves %lld%s\n", (long long)g->score, (long long)g->moves, g->done ? "  game over" : "");
#undef OUT
    return total;
}

static void g_get(const void *p, double *v) {
    const game *g = p;
    for (int i = 0; i < 16; i++) v[i] = g->e[i] ? ldexp(1.0, g->e[i]) : 0.0;
    v[16] = (double)g->score;
    v[17] = (double)g->moves;
}

static int g_set(void *p, const double *v) {
    game *g = p;
    for (int i = 0; i < 16; i++) {
        int ex;
        double m = frexp(v[i], &ex); /* v = m 2^ex, m in [0.5, 1) */
        if (v[i] == 0) g->e[i] = 0;
        else if (m == 0.5 && ex - 1 >= 1 && ex - 1 <= 30) g->e[i] = (uint8_t)(ex - 1);
        else return nb_error("2048: cell %d holds %g; expected 0 or a power of two from 2 to 2^30", i, v[i]);
    }
    if (!(v[16] >= 0 && v[17] >= 0)) return nb_error("2048: score and move count must be non-negative");
    g->score = (int64_t)v[16];
    g->moves = (int64_t)v[17];
    bool mask[4];
    g->done = false;
    g->done = g_legal(g, mask) == 0;
    return 0;
}

/* The 8 symmetries of the square: k >= 4 mirrors (column c -> 3 - c),
 * then k % 4 clockwise quarter turns ((r, c) -> (c, 3 - r)). Moves follow
 * the board: a mirror swaps left and right, a quarter turn takes up to
 * right, right to down, down to left, left to up. */
static int sym_cell(int k, int cell) {
    int r = cell / 4, c = cell % 4;
    if (k >= 4) c = 3 - c;
    for (int t = 0; t < k % 4; t++) {
        int nr = c, nc = 3 - r;
        r = nr;
        c = nc;
    }
    return r * 4 + c;
}

static int sym_action(int k, int a) {
    if (k >= 4 && (a == LEFT || a == RIGHT)) a = a == LEFT ? RIGHT : LEFT;
    return (a + k % 4) % 4;
}

static void g_symmetry(int k, float *obs, int *action, bool *legal) {
    if (k <= 0 || k >= 8) return;
    float in[256];
    memcpy(in, obs, sizeof in);
    for (int p = 0; p <= MAX_EXP; p++)
        for (int i = 0; i < 16; i++) obs[p * 16 + sym_cell(k, i)] = in[p * 16 + i];
    if (action) *action = sym_action(k, *action);
    if (legal) {
        bool l[4];
        memcpy(l, legal, sizeof l);
        for (int a = 0; a < 4; a++) legal[sym_action(k, a)] = l[a];
    }
}

static const char *const g_actions[] = {"up", "right", "down", "left"};

/* An MLP on the one-hot board: two layers of 256 (in a sweep, 128 learned
 * as well per step early on but stopped lower). */
static const char G_NET[] = "# Q-network for 2048: Q(s, up), Q(s, right), Q(s, down), Q(s, left)\n"
                            "[net]\ninput = 16x4x4\n"
                            "[dense]\nout = 256\nactivation = relu\n"
                            "[dense]\nout = 256\nactivation = relu\n"
                            "[dense]\nout = 4\n";

const nb_env_class nb_env_2048_class = {
    .name = "2048",
    .nactions = 4,
    .action_names = g_actions,
    .obs_nd = 3,
    .obs_shape = {16, 4, 4},
    .obs_binary = true,
    .nstate = 18,
    .size = sizeof(game),
    .reset = g_reset,
    .step = g_step,
    .observe = g_observe,
    .legal = g_legal,
    .render = g_render,
    .nsym = 8,
    .symmetry = g_symmetry,
    .get_state = g_get,
    .set_state = g_set,
    .net_cfg = G_NET,
    /* From a sweep on seed 1: the 8 symmetries of the board multiply the
     * data and helped most; then log rewards, so that a merge into 512 does
     * not drown the dozens of small merges that prepare it; squared error;
     * Double DQN against the noise of the random tiles; one update per 8
     * moves (more updates per move learned no faster per move); and a
     * cosine decay of the rate, which settles the final policy. */
    .defaults = {.steps = 2000000, .lr = 5e-4, .lr_end = 5e-5, .gamma = 0.99, .buffer = 200000, .batch = 64,
                 .eps_start = 1.0, .eps_end = 0.01, .eps_steps = 30000, .target_every = 2000, .huber = false,
                 .learn_start = 5000, .train_every = 8, .reward_scale = 0.1, .reward_log = true, .grad_clip = 10.0,
                 .double_q = true, .augment = true},
};
