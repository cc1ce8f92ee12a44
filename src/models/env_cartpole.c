/* env_cartpole.c — CartPole (Barto, Sutton & Anderson 1983) with the constants
 * and explicit Euler step of the classic-control benchmark (gym's
 * CartPole-v1): a pole hinged on a cart; push left or right to keep it up. */
#include "env.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* The classic constants. */
#define GRAVITY 9.8
#define MASS_CART 1.0
#define MASS_POLE 0.1
#define TOTAL_MASS (MASS_CART + MASS_POLE)
#define HALF_LENGTH 0.5 /* half the pole's length */
#define POLEMASS_LENGTH (MASS_POLE * HALF_LENGTH)
#define FORCE 10.0
#define TAU 0.02                                 /* seconds per step */
#define THETA_LIMIT (12.0 * 2.0 * M_PI / 360.0) /* failure beyond +-12 degrees */
#define X_LIMIT 2.4
#define MAX_STEPS 500 /* truncation, not failure */

typedef struct {
    double x, x_dot, theta, theta_dot;
    int steps;
    bool done;
} cartpole;

static void cp_reset(void *p, nb_rng *r) {
    cartpole *s = p;
    /* Each variable uniform in [-0.05, 0.05], as the benchmark starts. */
    double *v[4] = {&s->x, &s->x_dot, &s->theta, &s->theta_dot};
    for (int i = 0; i < 4; i++) *v[i] = -0.05 + 0.1 * nb_rng_uniform(r);
    s->steps = 0;
    s->done = false;
}

static float cp_step(void *p, int action, nb_rng *r, bool *terminal, bool *truncated) {
    (void)r;
    cartpole *s = p;
    double force = action == 1 ? FORCE : -FORCE;
    double c = cos(s->theta), sn = sin(s->theta);
    /* The equations of motion of the benchmark (Florian 2007's corrected
     * form without friction), then one explicit Euler step of TAU: positions
     * advance with the old velocities, velocities with the new accelerations. */
    double temp = (force + POLEMASS_LENGTH * s->theta_dot * s->theta_dot * sn) / TOTAL_MASS;
    double theta_acc = (GRAVITY * sn - c * temp) / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * c * c / TOTAL_MASS));
    double x_acc = temp - POLEMASS_LENGTH * theta_acc * c / TOTAL_MASS;
    s->x += TAU * s->x_dot;
    s->x_dot += TAU * x_acc;
    s->theta += TAU * s->theta_dot;
    s->theta_dot += TAU * theta_acc;
    s->steps++;
    *terminal = s->x < -X_LIMIT || s->x > X_LIMIT || s->theta < -THETA_LIMIT || s->theta > THETA_LIMIT;
    /* The time limit ends the episode but is not a state of the game: the
     * learner must still bootstrap from it. */
    *truncated = !*terminal && s->steps >= MAX_STEPS;
    s->done = *terminal || *truncated;
    return 1.0f; /* one per step, the failing step included */
}

static void cp_observe(const void *p, float *obs) {
    const cartpole *s = p;
    obs[0] = (float)s->x;
    obs[1] = (float)s->x_dot;
    obs[2] = (float)s->theta;
    obs[3] = (float)s->theta_dot;
}

/* The track as 61 columns for [-2.4, 2.4]; the pole drawn along its angle
 * over 8 rows (its length is not to scale: the angle is what matters). */
static int cp_render(const void *p, char *buf, size_t n) {
    const cartpole *s = p;
    enum { W = 61, H = 10 };
    char g[H][W + 1];
    for (int i = 0; i < H; i++) {
        memset(g[i], ' ', W);
        g[i][W] = 0;
    }
    int cx = (int)lround((s->x + X_LIMIT) / (2 * X_LIMIT) * (W - 1));
    if (cx < 0) cx = 0;
    if (cx > W - 1) cx = W - 1;
    /* Terminal cells are about twice as tall as wide: x steps count double. */
    for (int k = 1; k <= 7; k++) {
        int px = cx + (int)lround(2.0 * k * sin(s->theta)), py = H - 2 - (int)lround(k * cos(s->theta));
        if (px >= 0 && px < W && py >= 0 && py < H - 1) g[py][px] = 'o';
    }
    for (int dx = -2; dx <= 2; dx++)
        if (cx + dx >= 0 && cx + dx < W) g[H - 2][cx + dx] = dx == 0 ? '#' : '=';
    memset(g[H - 1], '-', W);
    g[H - 1][0] = g[H - 1][W - 1] = '|';
    size_t off = 0;
    int total = 0;
    for (int i = 0; i < H; i++) {
        int k = snprintf(buf + off, off < n ? n - off : 0, "%s\n", g[i]);
        total += k;
        off += (size_t)k;
    }
    total += snprintf(buf + off, off < n ? n - off : 0, "step %d  x %+.3f  theta %+.2f deg\n", s->steps, s->x,
                      s->theta * 180.0 / M_PI);
    return total;
}

static void cp_get(const void *p, double *v) {
    const cartpole *s = p;
    v[0] = s->x;
    v[1] = s->x_dot;
    v[2] = s->theta;
    v[3] = s->theta_dot;
    v[4] = s->steps;
}

static int cp_set(void *p, const double *v) {
    cartpole *s = p;
    for (int i = 0; i < 4; i++)
        if (!isfinite(v[i])) return nb_error("cartpole: state value %d is not finite", i);
    if (!(v[4] >= 0 && v[4] < MAX_STEPS) || v[4] != floor(v[4]))
        return nb_error("cartpole: step count %g is not an integer in [0, %d)", v[4], MAX_STEPS);
    s->x = v[0];
    s->x_dot = v[1];
    s->theta = v[2];
    s->theta_dot = v[3];
    s->steps = (int)v[4];
    s->done = false;
    return 0;
}

/* The mirror x -> -x: every variable changes sign, left and right swap. */
static void cp_symmetry(int k, float *obs, int *action, bool *legal) {
    (void)legal;
    if (k != 1) return;
    for (int i = 0; i < 4; i++) obs[i] = -obs[i];
    if (action) *action = 1 - *action;
}

static const char *const cp_actions[] = {"left", "right"};

/* Two hidden layers of 128 ReLU units: the four state variables need no
 * more, and the small net keeps a step fast. */
static const char CP_NET[] = "# Q-network for CartPole: Q(s, left), Q(s, right)\n"
                             "[net]\ninput = 4\n"
                             "[dense]\nout = 128\nactivation = relu\n"
                             "[dense]\nout = 128\nactivation = relu\n"
                             "[dense]\nout = 2\n";

const nb_env_class nb_env_cartpole_class = {
    .name = "cartpole",
    .nactions = 2,
    .action_names = cp_actions,
    .obs_nd = 1,
    .obs_shape = {4},
    .obs_binary = false,
    .nstate = 5,
    .size = sizeof(cartpole),
    .reset = cp_reset,
    .step = cp_step,
    .observe = cp_observe,
    .legal = NULL,
    .render = cp_render,
    .nsym = 2,
    .symmetry = cp_symmetry,
    .get_state = cp_get,
    .set_state = cp_set,
    .net_cfg = CP_NET,
    /* Squared error (the notes' loss), a target copy every 250 steps, one
     * update of 128 per two steps, and a replay memory that holds the whole
     * run, so the rare failing states of a good policy are never forgotten.
     * With only those, 3 of seeds 1-10 ended below 475 (341, 215, 278): Q(s0) rose to 110-117 where no policy is worth more than
     * 1 / (1 - gamma) = 100 (the max picks noise: Double DQN brings it to
     * about 107), and at a constant rate the greedy policy still swings
     * between 500 and about 220 from one 5,000-step check to the next, so the
     * final weights were a draw. The rate now falls to 1e-5 by a cosine, and
     * the weights kept are the best of 20 greedy checks on 50 held-out
     * validation episodes. */
    .defaults = {.steps = 100000, .lr = 5e-4, .lr_end = 1e-5, .gamma = 0.99, .buffer = 100000, .batch = 128,
                 .eps_start = 1.0, .eps_end = 0.01, .eps_steps = 10000, .target_every = 250, .huber = false,
                 .learn_start = 1000, .train_every = 2, .reward_scale = 1.0, .grad_clip = 10.0, .double_q = true,
                 .select_every = 5000, .select_episodes = 50},
};
