/* env_catch.c — Catch from pixels (as in DeepMind's bsuite): a ball falls one
 * row per step down a 10 x 5 screen from a random column of the top row; a
 * one-pixel paddle on the bottom row moves left, stays or moves right; +1 if
 * it is under the ball when the ball reaches the bottom row, -1 if not. */
#include "env.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define ROWS 10
#define COLS 5

typedef struct {
    int ball_row, ball_col, paddle_col;
    bool done;
} catch_state;

static void c_reset(void *p, nb_rng *r) {
    catch_state *s = p;
    s->ball_row = 0;
    s->ball_col = (int)nb_rng_below(r, COLS);
    s->paddle_col = COLS / 2;
    s->done = false;
}

static float c_step(void *p, int action, nb_rng *r, bool *terminal, bool *truncated) {
    (void)r;
    catch_state *s = p;
    *truncated = false;
    *terminal = s->done;
    if (s->done) return 0;
    /* Actions 0, 1, 2 move the paddle by -1, 0, +1, stopping at the walls. */
    int c = s->paddle_col + action - 1;
    s->paddle_col = c < 0 ? 0 : c > COLS - 1 ? COLS - 1 : c;
    s->ball_row++;
    if (s->ball_row == ROWS - 1) {
        s->done = *terminal = true;
        return s->ball_col == s->paddle_col ? 1.0f : -1.0f;
    }
    return 0;
}

/* The screen, [1, 10, 5]: 1 where the ball or the paddle is. */
static void c_observe(const void *p, float *obs) {
    const catch_state *s = p;
    memset(obs, 0, sizeof(float) * ROWS * COLS);
    obs[s->ball_row * COLS + s->ball_col] = 1.0f;
    obs[(ROWS - 1) * COLS + s->paddle_col] = 1.0f;
}

static int c_render(const void *p, char *buf, size_t n) {
    const catch_state *s = p;
    size_t off = 0;
    int total = 0;
    for (int r = 0; r < ROWS; r++) {
        char line[COLS + 4];
        line[0] = '|';
        for (int c = 0; c < COLS; c++) {
            bool ball = r == s->ball_row && c == s->ball_col, paddle = r == ROWS - 1 && c == s->paddle_col;
            line[1 + c] = ball && paddle ? '@' : ball ? 'o' : paddle ? '=' : '.';
        }
        line[COLS + 1] = '|';
        line[COLS + 2] = 0;
        int k = snprintf(buf + off, off < n ? n - off : 0, "%s\n", line);
        total += k;
        off += (size_t)k;
    }
    if (s->done)
        total += snprintf(buf + off, off < n ? n - off : 0, "%s\n", s->ball_col == s->paddle_col ? "caught" : "missed");
    return total;
}

static void c_get(const void *p, double *v) {
    const catch_state *s = p;
    v[0] = s->ball_row;
    v[1] = s->ball_col;
    v[2] = s->paddle_col;
}

static int c_set(void *p, const double *v) {
    catch_state *s = p;
    if (!(v[0] >= 0 && v[0] < ROWS - 1 && v[1] >= 0 && v[1] < COLS && v[2] >= 0 && v[2] < COLS) ||
        v[0] != floor(v[0]) || v[1] != floor(v[1]) || v[2] != floor(v[2]))
        return nb_error("catch: expected ball row in [0, %d), ball and paddle columns in [0, %d)", ROWS - 1, COLS);
    s->ball_row = (int)v[0];
    s->ball_col = (int)v[1];
    s->paddle_col = (int)v[2];
    s->done = false;
    return 0;
}

/* The mirror of the screen: columns reverse, left and right swap. */
static void c_symmetry(int k, float *obs, int *action, bool *legal) {
    (void)legal;
    if (k != 1) return;
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS / 2; c++) {
            float t = obs[r * COLS + c];
            obs[r * COLS + c] = obs[r * COLS + COLS - 1 - c];
            obs[r * COLS + COLS - 1 - c] = t;
        }
    if (action) *action = 2 - *action;
}

static const char *const c_actions[] = {"left", "stay", "right"};

/* A small convolutional net on the pixels, as DQN on Atari frames: 3x3
 * filters find the ball and paddle, a dense layer relates their columns. */
static const char C_NET[] = "# Q-network for Catch: Q(s, left), Q(s, stay), Q(s, right) from the 10x5 screen\n"
                            "[net]\ninput = 1x10x5\n"
                            "[conv2d]\nout = 16\nkernel = 3\npadding = 1\nactivation = relu\n"
                            "[dense]\nout = 64\nactivation = relu\n"
                            "[dense]\nout = 3\n";

const nb_env_class nb_env_catch_class = {
    .name = "catch",
    .nactions = 3,
    .action_names = c_actions,
    .obs_nd = 3,
    .obs_shape = {1, ROWS, COLS},
    .obs_binary = true,
    .nstate = 3,
    .size = sizeof(catch_state),
    .reset = c_reset,
    .step = c_step,
    .observe = c_observe,
    .legal = NULL,
    .render = c_render,
    .nsym = 2,
    .symmetry = c_symmetry,
    .get_state = c_get,
    .set_state = c_set,
    .net_cfg = C_NET,
    .defaults = {.steps = 20000, .lr = 1e-3, .gamma = 0.99, .buffer = 20000, .batch = 32, .eps_start = 1.0,
                 .eps_end = 0.1, .eps_steps = 5000, .target_every = 500, .huber = true, .learn_start = 500,
                 .train_every = 1, .reward_scale = 1.0, .grad_clip = 10.0},
};
