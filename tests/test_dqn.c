/* test_dqn.c — deep Q-learning (notes §4.3): eq. 28, the Bellman target, the
 * Q-learning update and the DQN loss against hand-computed numbers; the
 * replay memory, the epsilon schedule, the three environments' dynamics
 * against hand-computed steps, and determinism under a seed. */
#include "test.h"
#include <stdlib.h>
#include <unistd.h>

TEST(test_eq_28_dqn_discounted_return) {
    /* R_0 = 1 + 0.9 * 0 + 0.81 * 2 + 0.729 * (-1) = 1.891 */
    float r[4] = {1, 0, 2, -1};
    CHECK_NEAR(nb_rl_discounted_return(r, 4, 0.9), 1.891, 1e-12);
    /* The recursion R_t = r_t + gamma R_{t+1} holds for every suffix. */
    for (int t = 0; t < 3; t++)
        CHECK_NEAR(nb_rl_discounted_return(r + t, 4 - t, 0.9), r[t] + 0.9 * nb_rl_discounted_return(r + t + 1, 3 - t, 0.9),
                   1e-12);
    CHECK_NEAR(nb_rl_discounted_return(r, 4, 1.0), 2.0, 1e-12); /* undiscounted: the plain sum */
    CHECK_NEAR(nb_rl_discounted_return(r, 4, 0.0), 1.0, 1e-12); /* myopic: the first reward */
    CHECK(nb_rl_discounted_return(r, 0, 0.9) == 0.0);
    /* CartPole's 500 rewards of 1 with gamma 0.99: (1 - 0.99^500) / 0.01. */
    float ones[500];
    for (int i = 0; i < 500; i++) ones[i] = 1;
    CHECK_NEAR(nb_rl_discounted_return(ones, 500, 0.99), (1 - pow(0.99, 500)) / 0.01, 1e-9);
}

TEST(test_eq_bellman_dqn_target) {
    float qn[3] = {1, 5, 3};
    /* r + gamma max_a' Q(s', a') = 2 + 0.5 * 5 */
    CHECK_NEAR(nb_rl_bellman_target(2, 0.5f, qn, NULL, 3, false), 4.5, 1e-7);
    /* The max runs over legal actions only (2048's masked moves). */
    bool legal[3] = {true, false, true};
    CHECK_NEAR(nb_rl_bellman_target(2, 0.5f, qn, legal, 3, false), 3.5, 1e-7);
    /* Terminal s': the target is r. So is a state without legal moves. */
    CHECK_NEAR(nb_rl_bellman_target(2, 0.5f, qn, NULL, 3, true), 2.0, 0);
    bool none[3] = {false, false, false};
    CHECK_NEAR(nb_rl_bellman_target(2, 0.5f, qn, none, 3, false), 2.0, 0);
    /* Q* of a chain 0 -> 1 -> 2 -> goal (reward 1 on reaching it, gamma 0.9)
     * is a fixed point: Q*(s, right) = 0.9^(2-s), Q*(s, left) = 0.9 V*(s-1). */
    float Q[3][2] = {{0.729f, 0.81f}, {0.729f, 0.9f}, {0.81f, 1.0f}}; /* [s][left, right] */
    for (int s = 0; s < 3; s++) {
        int left = s > 0 ? s - 1 : 0;
        CHECK_NEAR(nb_rl_bellman_target(0, 0.9f, Q[left], NULL, 2, false), Q[s][0], 1e-6);
        if (s < 2) CHECK_NEAR(nb_rl_bellman_target(0, 0.9f, Q[s + 1], NULL, 2, false), Q[s][1], 1e-6);
        else CHECK_NEAR(nb_rl_bellman_target(1, 0.9f, Q[0], NULL, 2, true), Q[s][1], 1e-6);
    }
}

TEST(test_eq_q_update_dqn_tabular) {
    /* (1 - alpha) Q + alpha target = 0.9 * 2 + 0.1 * 5 */
    CHECK_NEAR(nb_rl_q_update(2, 0.1f, 5), 2.3, 1e-6);
    CHECK_NEAR(nb_rl_q_update(2, 1.0f, 5), 5.0, 0);
    CHECK_NEAR(nb_rl_q_update(2, 0.0f, 5), 2.0, 0);
    /* Tabular Q-learning with random exploration on the chain above converges
     * to Q* (the independent route: Q* by hand). */
    float Q[4][2] = {{0}};
    const float want[3][2] = {{0.729f, 0.81f}, {0.729f, 0.9f}, {0.81f, 1.0f}};
    nb_rng r;
    nb_rng_seed(&r, 3, 0);
    int s = 0;
    for (int it = 0; it < 20000; it++) {
        int a = (int)nb_rng_below(&r, 2);
        int s2 = a ? s + 1 : (s > 0 ? s - 1 : 0);
        bool terminal = s2 == 3;
        float rew = terminal ? 1.0f : 0.0f;
        float t = nb_rl_bellman_target(rew, 0.9f, Q[s2], NULL, 2, terminal);
        Q[s][a] = nb_rl_q_update(Q[s][a], 0.5f, t);
        s = terminal ? 0 : s2;
    }
    for (int k = 0; k < 3; k++)
        for (int a = 0; a < 2; a++) CHECK_NEAR(Q[k][a], want[k][a], 1e-4);
}

TEST(test_eq_dqn_loss) {
    /* Two transitions: a non-terminal one, target 0.5 + 0.5 * max(4, 1) =
     * 2.5, and a terminal one, target r = 0. */
    float t[2] = {nb_rl_bellman_target(0.5f, 0.5f, (float[]){4, 1}, NULL, 2, false),
                  nb_rl_bellman_target(0.0f, 0.5f, (float[]){4, 1}, NULL, 2, true)};
    CHECK_NEAR(t[0], 2.5, 0);
    CHECK_NEAR(t[1], 0.0, 0);
    int32_t act[2] = {1, 0};
    nb_tensor *q = nb_tensor_from(NB_SHAPE(2, 2), (float[]){1, 2, 3, 4});
    nb_requires_grad(q, true);
    /* Errors Q(s, a) - target: 2 - 2.5 = -0.5 and 3 - 0 = 3.
     * Squared: mean(1/2 0.25, 1/2 9) = 2.3125; dL/dQ = d / B at the action
     * taken, 0 elsewhere (the notes' step 3). */
    nb_tensor *L = nb_dqn_loss(q, act, t, false);
    CHECK_NEAR(nb_item(L), 2.3125, 1e-6);
    nb_backward(L);
    float g1[4] = {0, -0.25f, 1.5f, 0};
    for (int i = 0; i < 4; i++) CHECK_NEAR(q->grad->data[i], g1[i], 1e-6);
    /* Huber: 1/2 0.25 = 0.125 and 3 - 1/2 = 2.5, mean 1.3125; the gradient
     * of the large error is clipped to 1 (then / B). */
    nb_zero_grad(q);
    L = nb_dqn_loss(q, act, t, true);
    CHECK_NEAR(nb_item(L), 1.3125, 1e-6);
    nb_backward(L);
    float g2[4] = {0, -0.25f, 0.5f, 0};
    for (int i = 0; i < 4; i++) CHECK_NEAR(q->grad->data[i], g2[i], 1e-6);
    nb_arena_reset();
    nb_tensor_free(q);
}

static int32_t gc_actions[6] = {0, 2, 1, 1, 0, 2};
static float gc_targets[6] = {0.3f, -2.0f, 1.5f, 0.1f, 4.0f, -0.2f};
static nb_tensor *f_sq(nb_tensor **in, void *c) { return nb_dqn_loss(in[0], gc_actions, gc_targets, false); }
static nb_tensor *f_hub(nb_tensor **in, void *c) { return nb_dqn_loss(in[0], gc_actions, gc_targets, true); }

TEST(test_dqn_loss_gradcheck) {
    nb_tensor *q = nb_test_param(NB_SHAPE(6, 3), 1.5f);
    nb_gradcheck("dqn_loss squared", f_sq, &q, 1, NULL, 1e-2f, 2e-3f);
    nb_gradcheck("dqn_loss huber", f_hub, &q, 1, NULL, 1e-3f, 5e-3f);
    nb_tensor_free(q);
}

TEST(test_dqn_replay_memory_sampling) {
    nb_replay *r = nb_replay_new(10, 2, 3, false);
    CHECK(r != NULL);
    /* Four transitions: samples come only from the four filled slots and
     * each about equally often. */
    for (int i = 0; i < 4; i++) {
        float s[2] = {(float)i, -1}, s2[2] = {(float)i + 1, -2};
        nb_replay_push(r, s, i % 3, (float)i * 10, s2, i == 3, NULL);
    }
    CHECK(nb_replay_size(r) == 4);
    nb_rng rng;
    nb_rng_seed(&rng, 11, 0);
    enum { N = 40000 };
    int64_t *idx = malloc(sizeof(int64_t) * N);
    nb_replay_sample(r, &rng, N, idx);
    int counts[10] = {0};
    bool in_range = true;
    for (int i = 0; i < N; i++) {
        in_range &= idx[i] >= 0 && idx[i] < 4;
        if (idx[i] >= 0 && idx[i] < 10) counts[idx[i]]++;
    }
    CHECK(in_range);
    for (int k = 0; k < 4; k++) CHECK_NEAR(counts[k] / (double)N, 0.25, 0.02);
    /* Contents round-trip. */
    float s[2], s2[2], rew;
    int32_t a;
    bool term, legal[3];
    nb_replay_gather(r, (int64_t[]){3}, 1, s, &a, &rew, s2, &term, legal);
    CHECK(s[0] == 3 && s[1] == -1 && s2[0] == 4 && s2[1] == -2 && a == 0 && rew == 30 && term);
    CHECK(legal[0] && legal[1] && legal[2]);
    /* Fifteen pushes into ten slots: the ring wraps and the five oldest are
     * overwritten; every slot is then fair game. */
    for (int i = 4; i < 15; i++) {
        float x[2] = {(float)i, 0};
        bool lg[3] = {i % 2 == 0, true, false};
        nb_replay_push(r, x, i % 3, (float)i, x, false, lg);
    }
    CHECK(nb_replay_size(r) == 10);
    CHECK(nb_replay_pushed(r) == 15);
    nb_replay_gather(r, (int64_t[]){0}, 1, s, &a, &rew, NULL, &term, legal);
    CHECK(s[0] == 10 && rew == 10 && !term && legal[0] && !legal[2]); /* slot 0: the 11th push */
    nb_replay_gather(r, (int64_t[]){5}, 1, s, NULL, &rew, NULL, NULL, legal);
    CHECK(s[0] == 5 && rew == 5 && !legal[0]);
    nb_replay_sample(r, &rng, N, idx);
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < N; i++) counts[idx[i]]++;
    for (int k = 0; k < 10; k++) CHECK_NEAR(counts[k] / (double)N, 0.1, 0.01);
    free(idx);
    nb_replay_free(r);
    /* Byte storage keeps 0/1 observations exactly. */
    r = nb_replay_new(2, 4, 2, true);
    nb_replay_push(r, (float[]){0, 1, 1, 0}, 1, -1, (float[]){1, 0, 0, 1}, true, NULL);
    float b[4], b2[4];
    nb_replay_gather(r, (int64_t[]){0}, 1, b, NULL, NULL, b2, NULL, NULL);
    CHECK(b[0] == 0 && b[1] == 1 && b[2] == 1 && b[3] == 0 && b2[0] == 1 && b2[3] == 1 && b2[1] == 0);
    nb_replay_free(r);
    CHECK(nb_replay_new(0, 4, 2, false) == NULL && strstr(nb_errmsg(), "capacity"));
    nb_clear_error();
}

static void gather_unfilled(void *ctx) {
    nb_replay *r = ctx;
    float s[2];
    nb_replay_gather(r, (int64_t[]){2}, 1, s, NULL, NULL, NULL, NULL, NULL);
}

TEST(test_dqn_replay_gather_refuses_unfilled_slot_and_act_breaks_ties_first) {
    /* Two of four slots filled: slot 2, the next to be written, holds nothing. */
    nb_replay *r = nb_replay_new(4, 2, 2, false);
    for (int i = 0; i < 2; i++) nb_replay_push(r, (float[]){1, 2}, 0, 0, (float[]){3, 4}, false, NULL);
    nb_test_expect_fatal("gather slot 2 of 2", gather_unfilled, r, (const char *[]){"replay_gather", "not filled", NULL});
    nb_replay_free(r);
    /* Greedy actions: the argmax over the legal actions, the first of equals.
     * A dense layer with zero weights gives Q = its bias, whatever the input. */
    nb_net *q = nb_net_parse("[net]\ninput = 2\n[dense]\nout = 4\n", "ties");
    nb_rng rng;
    nb_rng_seed(&rng, 1, 0);
    CHECK(q != NULL && nb_net_build(q, 0, NULL, &rng) == 0);
    nb_param *p;
    int np = nb_net_params(q, &p);
    for (int i = 0; i < np; i++) memset(p[i].t->data, 0, sizeof(float) * (size_t)p[i].t->size);
    for (int i = 0; i < np; i++)
        if (p[i].t->ndim == 1) memcpy(p[i].t->data, (float[]){1, 3, 3, 2}, sizeof(float) * 4);
    float obs[2] = {0.5f, -0.5f};
    CHECK(nb_dqn_act(q, obs, NULL, 4) == 1);
    CHECK(nb_dqn_act(q, obs, (bool[]){true, false, true, true}, 4) == 2);
    CHECK(nb_dqn_act(q, obs, (bool[]){true, false, false, true}, 4) == 3);
    CHECK(nb_dqn_act(q, obs, (bool[]){true, false, false, false}, 4) == 0);
    nb_net_free(q);
}

TEST(test_dqn_epsilon_schedule) {
    /* Linear from 1 to 0.1 over 100 steps, then constant. */
    CHECK_NEAR(nb_rl_epsilon(1, 0.1, 100, 0), 1.0, 0);
    CHECK_NEAR(nb_rl_epsilon(1, 0.1, 100, 50), 0.55, 1e-12);
    CHECK_NEAR(nb_rl_epsilon(1, 0.1, 100, 99), 0.109, 1e-12);
    CHECK_NEAR(nb_rl_epsilon(1, 0.1, 100, 100), 0.1, 0);
    CHECK_NEAR(nb_rl_epsilon(1, 0.1, 100, 100000), 0.1, 0);
    CHECK_NEAR(nb_rl_epsilon(1, 0.1, 0, 0), 0.1, 0);
    /* The learner follows the same schedule, one step at a time. */
    nb_dqn_opts o;
    CHECK(nb_dqn_defaults("catch", &o) == 0);
    o.eps_start = 1;
    o.eps_end = 0.2;
    o.eps_steps = 40;
    o.learn_start = 1000; /* no updates: only the schedule matters here */
    nb_dqn *d = nb_dqn_new("catch", &o, NULL);
    CHECK(d != NULL);
    for (int t = 0; t < 60; t++) {
        CHECK_NEAR(nb_dqn_epsilon(d), nb_rl_epsilon(1, 0.2, 40, t), 1e-12);
        nb_dqn_step(d, NULL);
    }
    nb_dqn_free(d);
}

TEST(test_dqn_env_cartpole_euler_step) {
    nb_env *e = nb_env_new("cartpole");
    CHECK(nb_env_actions(e) == 2 && nb_env_obs_size(e) == 4 && nb_env_state_size(e) == 5);
    CHECK(nb_env_set_state(e, (double[]){0.01, 0.02, 0.03, 0.04, 0}) == 0);
    bool term, trunc;
    float r = nb_env_step(e, 1, &term, &trunc);
    /* By hand with F = +10: temp = (F + m_p l theta'^2 sin theta) / (m_c + m_p),
     * theta'' = (g sin theta - cos theta temp) / (l (4/3 - m_p cos^2 theta / M))
     * = -14.153435898, x'' = temp - m_p l theta'' cos theta / M = 9.733959787;
     * Euler: positions move with the old velocities. */
    double v[5];
    nb_env_get_state(e, v);
    CHECK_NEAR(v[0], 0.0104, 1e-12);
    CHECK_NEAR(v[1], 0.02 + 0.02 * 9.733959787377762, 1e-12);
    CHECK_NEAR(v[2], 0.0308, 1e-12);
    CHECK_NEAR(v[3], 0.04 + 0.02 * -14.153435898000408, 1e-12);
    CHECK(v[4] == 1 && r == 1 && !term && !trunc);
    float obs[4];
    nb_env_observe(e, obs);
    CHECK_NEAR(obs[3], -0.24306871796000815, 1e-7);
    /* Beyond 12 degrees the pole has fallen: terminal, and still a reward of 1. */
    double lim = 12 * 2 * M_PI / 360;
    CHECK(nb_env_set_state(e, (double[]){0, 0, lim - 1e-4, 1.0, 10}) == 0);
    r = nb_env_step(e, 0, &term, &trunc);
    CHECK(term && !trunc && r == 1 && nb_env_done(e));
    /* Beyond 2.4 the cart has left the track. */
    CHECK(nb_env_set_state(e, (double[]){2.399, 1.0, 0, 0, 0}) == 0);
    nb_env_step(e, 1, &term, &trunc);
    CHECK(term);
    /* The 500th step truncates: the episode ends but the state is not terminal. */
    CHECK(nb_env_set_state(e, (double[]){0, 0, 0, 0, 499}) == 0);
    nb_env_step(e, 0, &term, &trunc);
    CHECK(!term && trunc && nb_env_done(e));
    bool mask[2];
    CHECK(nb_env_legal(e, mask) == 2); /* a time limit takes no action away */
    CHECK(nb_env_set_state(e, (double[]){NAN, 0, 0, 0, 0}) == -1);
    nb_clear_error();
    /* reset: each variable in [-0.05, 0.05] */
    for (uint64_t s = 0; s < 20; s++) {
        nb_env_reset(e, s);
        nb_env_get_state(e, v);
        for (int i = 0; i < 4; i++) CHECK(fabs(v[i]) <= 0.05);
        CHECK(v[4] == 0);
    }
    char buf[2048];
    CHECK(nb_env_render(e, buf, sizeof buf) > 0 && strstr(buf, "#") && strstr(buf, "theta"));
    nb_env_free(e);
}

TEST(test_dqn_env_cartpole_limits_both_sides) {
    nb_env *e = nb_env_new("cartpole");
    bool term, trunc;
    /* The failure region is symmetric: the cart past -2.4 and the pole past
     * -12 degrees end the episode as +2.4 and +12 degrees do. */
    double lim = 12 * 2 * M_PI / 360;
    CHECK(nb_env_set_state(e, (double[]){-2.399, -1.0, 0, 0, 0}) == 0);
    nb_env_step(e, 0, &term, &trunc); /* x = -2.399 - 0.02 */
    CHECK(term && !trunc);
    CHECK(nb_env_set_state(e, (double[]){0, 0, -lim + 1e-4, -1.0, 0}) == 0);
    nb_env_step(e, 1, &term, &trunc); /* theta = -lim + 1e-4 - 0.02 */
    CHECK(term && !trunc);
    /* 12 degrees exactly, not more: with theta' = 0 the angle does not move in
     * one Euler step, so 12.5 degrees fails and 11.5 degrees does not. */
    CHECK(nb_env_set_state(e, (double[]){0, 0, 12.5 * M_PI / 180, 0, 0}) == 0);
    nb_env_step(e, 0, &term, &trunc);
    CHECK(term);
    CHECK(nb_env_set_state(e, (double[]){0, 0, -11.5 * M_PI / 180, 0, 0}) == 0);
    nb_env_step(e, 1, &term, &trunc);
    CHECK(!term && !trunc);
    /* Failing on the 500th step is a failure, not a truncation: the learner
     * must not bootstrap from it. */
    CHECK(nb_env_set_state(e, (double[]){2.399, 1.0, 0, 0, 499}) == 0);
    nb_env_step(e, 1, &term, &trunc);
    CHECK(term && !trunc && nb_env_done(e));
    /* A state may hold steps 0..499 only: 500 has already ended. */
    CHECK(nb_env_set_state(e, (double[]){0, 0, 0, 0, 500}) == -1 && strstr(nb_errmsg(), "step count"));
    nb_clear_error();
    CHECK(nb_env_set_state(e, (double[]){0, 0, 0, 0, 1.5}) == -1);
    nb_clear_error();
    /* reset draws each variable from all of [-0.05, 0.05], both signs. */
    double lo[4] = {1, 1, 1, 1}, hi[4] = {-1, -1, -1, -1}, v[5];
    for (uint64_t s = 0; s < 200; s++) {
        nb_env_reset(e, s);
        nb_env_get_state(e, v);
        for (int i = 0; i < 4; i++) lo[i] = fmin(lo[i], v[i]), hi[i] = fmax(hi[i], v[i]);
    }
    for (int i = 0; i < 4; i++) CHECK(lo[i] < -0.045 && hi[i] > 0.045);
    nb_env_free(e);
}

/* A 2048 board from 16 tile values plus score 0 and move 0. */
static void set_board(nb_env *e, const double *tiles) {
    double v[18] = {0};
    memcpy(v, tiles, sizeof(double) * 16);
    CHECK(nb_env_set_state(e, v) == 0);
}

enum { UP, RIGHT, DOWN, LEFT };

TEST(test_dqn_env_2048_merges) {
    nb_env *e = nb_env_new("2048");
    CHECK(nb_env_actions(e) == 4 && nb_env_obs_size(e) == 256);
    nb_env_reset(e, 5);
    /* [2,2,2,2] to the left: [4,4,0,0], reward 8 (each tile merges once). */
    set_board(e, (double[16]){2, 2, 2, 2});
    bool term, trunc;
    float r = nb_env_step(e, LEFT, &term, &trunc);
    CHECK(r == 8 && !term && !trunc);
    double v[18];
    nb_env_get_state(e, v);
    CHECK(v[0] == 4 && v[1] == 4 && v[2] == 0 && v[3] == 0 && v[16] == 8 && v[17] == 1);
    int fresh = 0;
    for (int i = 2; i < 16; i++)
        if (v[i]) {
            fresh++;
            CHECK(v[i] == 2 || v[i] == 4);
        }
    CHECK(fresh == 1); /* exactly one new tile, in an empty cell */
    /* [2,2,4,0] left: [4,4,0,0], reward 4 (the new 4 does not merge again). */
    set_board(e, (double[16]){2, 2, 4, 0});
    CHECK(nb_env_step(e, LEFT, NULL, NULL) == 4);
    nb_env_get_state(e, v);
    CHECK(v[0] == 4 && v[1] == 4 && v[2] == 0 && v[3] == 0);
    /* [4,0,4,8] right: [0,0,8,8], reward 8; [2,2,2,0] right: [0,0,2,4]. */
    set_board(e, (double[16]){4, 0, 4, 8, 2, 2, 2, 0});
    CHECK(nb_env_step(e, RIGHT, NULL, NULL) == 12);
    nb_env_get_state(e, v);
    CHECK(v[2] == 8 && v[3] == 8 && v[6] == 2 && v[7] == 4 && v[4] + v[5] + v[0] + v[1] <= 4);
    /* Columns: up merges from the top; down from the bottom. */
    set_board(e, (double[16]){2, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0});
    CHECK(nb_env_step(e, DOWN, NULL, NULL) == 12);
    nb_env_get_state(e, v);
    CHECK(v[12] == 8 && v[8] == 4);
    /* Legal moves: a full first row that cannot merge can only go down. */
    set_board(e, (double[16]){2, 4, 8, 16});
    bool mask[4];
    CHECK(nb_env_legal(e, mask) == 1 && mask[DOWN] && !mask[UP] && !mask[LEFT] && !mask[RIGHT]);
    /* An illegal move changes nothing and earns nothing. */
    CHECK(nb_env_step(e, LEFT, &term, NULL) == 0 && !term);
    nb_env_get_state(e, v);
    CHECK(v[0] == 2 && v[3] == 16 && v[17] == 0);
    /* A full board without equal neighbours: game over. */
    double over[16] = {2, 4, 2, 4, 4, 2, 4, 2, 2, 4, 2, 4, 4, 2, 4, 2};
    set_board(e, over);
    CHECK(nb_env_done(e) && nb_env_legal(e, mask) == 0);
    /* One move from the end: right opens cell 12 only; a spawned 4 there has
     * no equal neighbour (2 above, 8 to the right): game over, while a 2
     * could still merge upwards. */
    double last[16] = {2, 4, 2, 4, 4, 2, 4, 2, 2, 4, 2, 4, 8, 16, 8, 0};
    int ends = 0;
    for (uint64_t seed = 0; seed < 40; seed++) {
        nb_env_reset(e, seed);
        set_board(e, last);
        r = nb_env_step(e, RIGHT, &term, NULL);
        nb_env_get_state(e, v);
        CHECK(r == 0 && v[13] == 8 && v[14] == 16 && v[15] == 8 && (v[12] == 2 || v[12] == 4));
        CHECK(term == (v[12] == 4) && nb_env_done(e) == term && (nb_env_legal(e, mask) == 0) == term);
        ends += term;
    }
    CHECK(ends > 0 && ends < 40);
    /* Observation: one-hot planes, plane k at the tiles 2^k, plane 0 empty. */
    set_board(e, (double[16]){2, 0, 0, 0, 0, 1024});
    float obs[256];
    nb_env_observe(e, obs);
    CHECK(obs[1 * 16 + 0] == 1 && obs[10 * 16 + 5] == 1 && obs[0 * 16 + 1] == 1 && obs[0 * 16 + 0] == 0);
    float sum = 0;
    for (int i = 0; i < 256; i++) sum += obs[i];
    CHECK(sum == 16);
    CHECK(nb_env_set_state(e, (double[18]){3}) == -1 && strstr(nb_errmsg(), "power of two"));
    nb_clear_error();
    /* reset: two tiles, 2 or 4 */
    nb_env_reset(e, 9);
    nb_env_get_state(e, v);
    int n = 0;
    for (int i = 0; i < 16; i++) {
        n += v[i] != 0;
        CHECK(v[i] == 0 || v[i] == 2 || v[i] == 4);
    }
    CHECK(n == 2);
    char buf[1024];
    CHECK(nb_env_render(e, buf, sizeof buf) > 0 && strstr(buf, "score 0"));
    nb_env_free(e);
}

TEST(test_dqn_env_2048_state_score_and_big_tiles) {
    nb_env *e = nb_env_new("2048");
    nb_env_reset(e, 3);
    /* The score adds each move's merges to what it was: 100 + 4 + 4. */
    double v[18] = {2, 2, 2, 2};
    v[16] = 100;
    v[17] = 7;
    CHECK(nb_env_set_state(e, v) == 0);
    CHECK(nb_env_step(e, LEFT, NULL, NULL) == 8);
    nb_env_get_state(e, v);
    CHECK(v[16] == 108 && v[17] == 8);
    /* Tiles from 2^15 up share the last plane: 2^16 and 2^20 do not index
     * past the 16 planes. (Padding after obs keeps a stray write in bounds.) */
    double big[16] = {65536, 1048576, 32768, 2};
    set_board(e, big);
    float obs[256 + 64];
    for (int i = 0; i < 256 + 64; i++) obs[i] = -1;
    nb_env_observe(e, obs);
    CHECK(obs[15 * 16 + 0] == 1 && obs[15 * 16 + 1] == 1 && obs[15 * 16 + 2] == 1 && obs[1 * 16 + 3] == 1);
    float sum = 0;
    for (int i = 0; i < 256; i++) sum += obs[i];
    CHECK(sum == 16 && obs[256] == -1);
    nb_env_get_state(e, v);
    CHECK(v[0] == 65536 && v[1] == 1048576); /* the state keeps the exact tile */
    /* set_state: tiles 0 or 2..2^30, score and moves non-negative. */
    const double bad_tile[] = {1, 0.5, -2, 2147483648.0, 6, NAN, INFINITY};
    for (int i = 0; i < 7; i++) {
        double w[18] = {0};
        w[5] = bad_tile[i];
        CHECK_MSG(nb_env_set_state(e, w) == -1 && strstr(nb_errmsg(), "cell 5"), "tile %g accepted", bad_tile[i]);
        nb_clear_error();
    }
    double w[18] = {[5] = 1073741824.0};
    CHECK(nb_env_set_state(e, w) == 0);
    w[16] = -1;
    CHECK(nb_env_set_state(e, w) == -1 && strstr(nb_errmsg(), "non-negative"));
    nb_clear_error();
    w[16] = 0;
    w[17] = -1;
    CHECK(nb_env_set_state(e, w) == -1 && strstr(nb_errmsg(), "non-negative"));
    nb_clear_error();
    /* A board set to a lost position is over, and its picture says so. */
    set_board(e, (double[16]){2, 4, 2, 4, 4, 2, 4, 2, 2, 4, 2, 4, 4, 2, 4, 2});
    char buf[1024];
    CHECK(nb_env_done(e) && nb_env_render(e, buf, sizeof buf) > 0 && strstr(buf, "game over"));
    set_board(e, (double[16]){2, 2});
    CHECK(!nb_env_done(e) && nb_env_render(e, buf, sizeof buf) > 0 && !strstr(buf, "game over"));
    nb_env_free(e);
}

TEST(test_dqn_env_2048_spawn_probability) {
    /* New tiles are 2 with probability 0.9. */
    nb_env *e = nb_env_new("2048");
    int fours = 0, n = 0;
    for (uint64_t s = 0; s < 4000; s++) {
        nb_env_reset(e, s);
        double v[18];
        nb_env_get_state(e, v);
        for (int i = 0; i < 16; i++)
            if (v[i]) {
                n++;
                fours += v[i] == 4;
            }
    }
    CHECK(n == 8000);
    CHECK_NEAR(fours / (double)n, 0.1, 0.01);
    nb_env_free(e);
}

TEST(test_dqn_env_catch_dynamics) {
    nb_env *e = nb_env_new("catch");
    CHECK(nb_env_actions(e) == 3 && nb_env_obs_size(e) == 50);
    /* Ball in column 4, paddle in 2: right, right, then stay; the ball
     * reaches the bottom row after 9 steps, caught: +1. */
    CHECK(nb_env_set_state(e, (double[]){0, 4, 2}) == 0);
    bool term = false;
    float r = 0;
    for (int t = 0; t < 9; t++) {
        CHECK(!term);
        r = nb_env_step(e, t < 2 ? 2 : 1, &term, NULL);
        double v[3];
        nb_env_get_state(e, v);
        CHECK(v[0] == t + 1 && v[1] == 4 && v[2] == (t < 1 ? 3 : 4));
        if (t < 8) CHECK(r == 0);
    }
    CHECK(term && r == 1);
    /* Missed: -1. The paddle stops at the wall. */
    CHECK(nb_env_set_state(e, (double[]){0, 4, 2}) == 0);
    for (int t = 0; t < 9; t++) r = nb_env_step(e, 0, &term, NULL);
    double v[3];
    nb_env_get_state(e, v);
    CHECK(term && r == -1 && v[2] == 0);
    /* The screen: ball and paddle pixels. */
    CHECK(nb_env_set_state(e, (double[]){3, 1, 2}) == 0);
    float obs[50];
    nb_env_observe(e, obs);
    float sum = 0;
    for (int i = 0; i < 50; i++) sum += obs[i];
    CHECK(sum == 2 && obs[3 * 5 + 1] == 1 && obs[9 * 5 + 2] == 1);
    /* reset: top row, any column; paddle in the middle */
    int seen[5] = {0};
    for (uint64_t s = 0; s < 500; s++) {
        nb_env_reset(e, s);
        nb_env_get_state(e, v);
        CHECK(v[0] == 0 && v[2] == 2);
        seen[(int)v[1]]++;
    }
    for (int c = 0; c < 5; c++) CHECK(seen[c] > 60);
    CHECK(nb_env_set_state(e, (double[]){9, 0, 0}) == -1);
    nb_clear_error();
    nb_env_free(e);
    CHECK(nb_env_new("pong") == NULL && strstr(nb_errmsg(), "pong"));
    nb_clear_error();
}

TEST(test_dqn_env_catch_walls_state_and_render) {
    nb_env *e = nb_env_new("catch");
    /* The right wall stops the paddle as the left one does. */
    CHECK(nb_env_set_state(e, (double[]){0, 4, 4}) == 0);
    nb_env_step(e, 2, NULL, NULL);
    double v[3];
    nb_env_get_state(e, v);
    CHECK(v[0] == 1 && v[2] == 4);
    /* Caught or missed, the last line of the picture says which. */
    char buf[256];
    CHECK(nb_env_set_state(e, (double[]){8, 3, 3}) == 0);
    bool term;
    CHECK(nb_env_step(e, 1, &term, NULL) == 1 && term);
    CHECK(nb_env_render(e, buf, sizeof buf) > 0 && strstr(buf, "caught") && !strstr(buf, "missed") && strstr(buf, "@"));
    CHECK(nb_env_set_state(e, (double[]){8, 0, 3}) == 0);
    CHECK(nb_env_step(e, 1, &term, NULL) == -1 && term);
    CHECK(nb_env_render(e, buf, sizeof buf) > 0 && strstr(buf, "missed") && !strstr(buf, "caught"));
    /* set_state: whole numbers, ball row in [0, 9), columns in [0, 5). */
    const double bad[][3] = {{0, 5, 0}, {0, 0, 5}, {0, -1, 0}, {0, 0, -1}, {-1, 0, 0}, {0, 1.5, 0}, {0, 0, 2.5}, {0.5, 0, 0}};
    for (int i = 0; i < 8; i++) {
        CHECK(nb_env_set_state(e, bad[i]) == -1 && strstr(nb_errmsg(), "catch"));
        nb_clear_error();
    }
    CHECK(nb_env_set_state(e, (double[]){8, 4, 0}) == 0);
    nb_env_free(e);
}

/* Plays one episode with a fixed action pattern; returns its observations'
 * checksum and the return. */
static double play_fixed(const char *name, uint64_t seed, double *ret) {
    nb_env *e = nb_env_new(name);
    nb_env_reset(e, seed);
    int na = nb_env_actions(e);
    float obs[256];
    bool mask[4];
    double sum = 0;
    *ret = 0;
    for (int t = 0; t < 5000 && !nb_env_done(e); t++) {
        nb_env_legal(e, mask);
        int a = t % na;
        while (!mask[a]) a = (a + 1) % na;
        *ret += nb_env_step(e, a, NULL, NULL);
        nb_env_observe(e, obs);
        for (int64_t i = 0; i < nb_env_obs_size(e); i++) sum += obs[i] * (double)((i + t) % 7 + 1);
    }
    nb_env_free(e);
    return sum;
}

TEST(test_dqn_env_determinism) {
    const char *names[3] = {"cartpole", "2048", "catch"};
    for (int k = 0; k < 3; k++) {
        double r1, r2, r3;
        double a = play_fixed(names[k], 42, &r1), b = play_fixed(names[k], 42, &r2);
        CHECK_MSG(a == b && r1 == r2, "%s: the same seed gave different episodes", names[k]);
        double c = 0;
        bool differs = false;
        for (uint64_t s = 43; s < 53 && !differs; s++) {
            c = play_fixed(names[k], s, &r3);
            differs = c != a;
        }
        CHECK_MSG(differs, "%s: ten other seeds all gave the same episode", names[k]);
    }
}

TEST(test_dqn_deterministic_and_save_load) {
    /* Two learners with one seed take the same steps and end with the same
     * weights; a saved model loads back with the same greedy actions. */
    nb_dqn_opts o;
    CHECK(nb_dqn_defaults("cartpole", &o) == 0);
    o.learn_start = 64;
    o.train_every = 1;
    o.batch = 16;
    o.target_every = 50;
    o.seed = 9;
    nb_dqn *a = nb_dqn_new("cartpole", &o, NULL), *b = nb_dqn_new("cartpole", &o, NULL);
    int ends_a = 0, ends_b = 0;
    for (int t = 0; t < 300; t++) {
        nb_rl_episode ea, eb;
        int da = nb_dqn_step(a, &ea), db = nb_dqn_step(b, &eb);
        ends_a += da;
        ends_b += db;
        CHECK(da == db);
        if (da && db) CHECK(ea.ret == eb.ret && ea.length == eb.length && !ea.truncated);
    }
    CHECK(ends_a == ends_b && ends_a > 3);
    CHECK(nb_dqn_updates(a) == 300 - 63 && nb_dqn_steps(a) == 300);
    nb_param *pa, *pb;
    int n = nb_net_params(nb_dqn_net(a), &pa);
    nb_net_params(nb_dqn_net(b), &pb);
    bool same = true;
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < pa[i].t->size; j++) same &= pa[i].t->data[j] == pb[i].t->data[j];
    CHECK(same);
    char path[] = "/tmp/nabla-dqn-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    const char *k[1] = {"note"}, *v[1] = {"hello"};
    CHECK(nb_dqn_save(a, path, k, v, 1) == 0);
    char env[32];
    nb_net *q = nb_dqn_load(path, env, sizeof env);
    CHECK(q != NULL && !strcmp(env, "cartpole"));
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    for (int t = 0; q && t < 50; t++) {
        float obs[4];
        for (int i = 0; i < 4; i++) obs[i] = (float)(nb_rng_uniform(&r) - 0.5);
        CHECK(nb_dqn_act(q, obs, NULL, 2) == nb_dqn_act(nb_dqn_net(a), obs, NULL, 2));
    }
    nb_arena_reset();
    /* Greedy evaluation is reproducible, and the random policy too. */
    nb_rl_episode e1[4], e2[4];
    CHECK(nb_dqn_evaluate(q, "cartpole", 4, 7, 0, e1) == 0 && nb_dqn_evaluate(q, "cartpole", 4, 7, 0, e2) == 0);
    for (int i = 0; i < 4; i++) CHECK(e1[i].ret == e2[i].ret && e1[i].ret == (double)e1[i].length);
    CHECK(nb_dqn_evaluate(NULL, "cartpole", 4, 7, 0, e1) == 0 && nb_dqn_evaluate(NULL, "cartpole", 4, 7, 0, e2) == 0);
    for (int i = 0; i < 4; i++) CHECK(e1[i].ret == e2[i].ret && e1[i].ret >= 8);
    /* A network that does not fit the game is refused. */
    CHECK(q == NULL || nb_dqn_evaluate(q, "catch", 2, 1, 0, e1) == -1);
    nb_clear_error();
    nb_net_free(q);
    nb_dqn_free(a);
    nb_dqn_free(b);
    /* A model without the environment's name is not a DQN model. */
    nb_net *plain = nb_net_parse(nb_dqn_net_cfg("cartpole"), "x");
    nb_net_build(plain, 0, NULL, &r);
    CHECK(nb_net_save(plain, path, NULL, NULL, 0, NULL, NULL, 0) == 0);
    CHECK(nb_dqn_load(path, env, sizeof env) == NULL && strstr(nb_errmsg(), "not a DQN model: it holds a network (nabla train or nabla init)"));
    nb_clear_error();
    nb_net_free(plain);
    unlink(path);
    /* Bad options are errors, not crashes. */
    CHECK(nb_dqn_defaults("cartpole", &o) == 0);
    o.gamma = 1.5;
    CHECK(nb_dqn_new("cartpole", &o, NULL) == NULL && strstr(nb_errmsg(), "gamma"));
    nb_clear_error();
    CHECK(nb_dqn_defaults("cartpole", &o) == 0);
    CHECK(nb_dqn_new("cartpole", &o, "[net]\ninput = 4\n[dense]\nout = 3\n") == NULL && strstr(nb_errmsg(), "2 actions"));
    nb_clear_error();
    /* NULL options were dereferenced by the option checks. */
    CHECK(nb_dqn_new("cartpole", NULL, NULL) == NULL && strstr(nb_errmsg(), "options are NULL"));
    nb_clear_error();
}

TEST(test_dqn_selects_best_weights_on_held_out_seeds) {
    /* With select_every, the learner scores its greedy policy on the
     * validation seeds every select_every steps and, at the last step, takes
     * back the best-scoring weights (the latest on ties). A twin without
     * selection takes the same steps (validation draws nothing from the
     * learner's streams); scoring it by hand must find the same weights. */
    int threads = nb_get_threads();
    nb_set_threads(1);
    nb_dqn_opts o;
    CHECK(nb_dqn_defaults("cartpole", &o) == 0);
    o.steps = 600;
    o.learn_start = 64;
    o.train_every = 1;
    o.batch = 16;
    o.target_every = 50;
    o.eps_steps = 300;
    o.select_every = 100;
    o.select_episodes = 5;
    o.seed = 11;
    nb_dqn *d = nb_dqn_new("cartpole", &o, NULL);
    o.select_every = 0;
    nb_dqn *t = nb_dqn_new("cartpole", &o, NULL);
    CHECK(d && t);
    nb_param *pd, *pt;
    int np = nb_net_params(nb_dqn_net(d), &pd);
    nb_net_params(nb_dqn_net(t), &pt);
    int64_t total = 0;
    for (int i = 0; i < np; i++) total += pt[i].t->size;
    float *best = malloc(sizeof(float) * (size_t)total);
    double best_ret = -INFINITY, worst_ret = INFINITY;
    int64_t best_step = -1;
    nb_rl_episode ep[5];
    for (int64_t s = 1; d && t && s <= 600; s++) {
        nb_dqn_step(d, NULL);
        nb_dqn_step(t, NULL);
        if (s % 100) continue;
        /* the validation episodes: NB_DQN_VALIDATION_SEED + i, greedy */
        CHECK(nb_dqn_evaluate(nb_dqn_net(t), "cartpole", 5, NB_DQN_VALIDATION_SEED, 0, ep) == 0);
        double m = 0;
        for (int i = 0; i < 5; i++) m += ep[i].ret;
        m /= 5;
        worst_ret = fmin(worst_ret, m);
        CHECK(nb_dqn_selected_return(d) == fmax(best_ret, m)); /* the best so far, as it goes */
        if (m >= best_ret) {
            best_ret = m;
            best_step = s;
            float *w = best;
            for (int i = 0; i < np; i++) {
                memcpy(w, pt[i].t->data, sizeof(float) * (size_t)pt[i].t->size);
                w += pt[i].t->size;
            }
        }
    }
    CHECK_MSG(worst_ret < best_ret, "every check scored %g: the test would not tell selection from none", best_ret);
    CHECK(nb_dqn_selected_step(d) == best_step && nb_dqn_selected_return(d) == best_ret);
    bool same = true, moved = false;
    const float *w = best;
    for (int i = 0; i < np; i++)
        for (int64_t j = 0; j < pd[i].t->size; j++, w++) {
            same &= pd[i].t->data[j] == *w;
            moved |= pt[i].t->data[j] != *w;
        }
    CHECK_MSG(same, "the learner does not hold the weights of step %lld", (long long)best_step);
    CHECK(moved == (best_step != 600)); /* the twin kept its last weights */
    /* The model file holds the selected weights and says which. */
    char path[] = "/tmp/nabla-dqn-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(d && nb_dqn_save(d, path, NULL, NULL, 0) == 0);
    nb_safetensors *st = NULL;
    nb_net *q = nb_net_load(path, &st);
    CHECK(q && st);
    if (st) {
        const char *ss = nb_st_meta(st, "nabla.dqn.selected_step");
        CHECK(ss && strtoll(ss, NULL, 10) == best_step);
        nb_st_free(st);
    }
    nb_net_free(q);
    unlink(path);
    /* Training episodes (seed bit 63 set) and validation episodes (2^62 + i)
     * never take the seeds of nabla dqn eval's 1000000 + i. */
    CHECK(NB_DQN_VALIDATION_SEED > 1000000 + 100000 && NB_DQN_VALIDATION_SEED + 100000 < UINT64_C(1) << 63);
    free(best);
    nb_dqn_free(d);
    nb_dqn_free(t);
    /* Selection needs episodes to play. */
    CHECK(nb_dqn_defaults("cartpole", &o) == 0);
    o.select_episodes = 0;
    CHECK(nb_dqn_new("cartpole", &o, NULL) == NULL && strstr(nb_errmsg(), "select-episodes"));
    nb_clear_error();
    nb_set_threads(threads);
}

TEST(test_dqn_learns_catch) {
    /* A short run of the notes' algorithm on Catch's pixels already beats
     * the random policy (which catches about 1 ball in 5). */
    int threads = nb_get_threads();
    nb_set_threads(1); /* tiny kernels: threads would only wait on each other */
    nb_dqn_opts o;
    CHECK(nb_dqn_defaults("catch", &o) == 0);
    o.eps_steps = 1500;
    o.seed = 3;
    nb_dqn *d = nb_dqn_new("catch", &o, NULL);
    for (int t = 0; t < 3000; t++) nb_dqn_step(d, NULL);
    nb_rl_episode ep[50];
    CHECK(nb_dqn_evaluate(nb_dqn_net(d), "catch", 50, 1000, 0, ep) == 0);
    int caught = 0;
    for (int i = 0; i < 50; i++) caught += ep[i].ret > 0;
    CHECK_MSG(caught >= 35, "caught %d of 50 after 3000 steps", caught);
    nb_dqn_free(d);
    nb_set_threads(threads);
}

/* The tiles of a 2048 observation (one-hot planes) as state values. */
static void decode_2048(const float *obs, double *v) {
    memset(v, 0, sizeof(double) * 18);
    for (int p = 1; p < 16; p++)
        for (int i = 0; i < 16; i++)
            if (obs[p * 16 + i] == 1) v[i] = ldexp(1, p);
}

TEST(test_dqn_env_symmetries) {
    /* 2048: a transformed board has the transformed legal moves, and each
     * move earns what the transformed move earns on it. */
    nb_env *e = nb_env_new("2048"), *f = nb_env_new("2048"), *g = nb_env_new("2048");
    CHECK(nb_env_symmetries(e) == 8);
    nb_rng r;
    nb_rng_seed(&r, 4, 0);
    int checked = 0;
    for (uint64_t seed = 0; seed < 6; seed++) {
        nb_env_reset(e, seed);
        for (int t = 0; t < 40 && !nb_env_done(e); t++) {
            float obs[256];
            double v[18], w[18];
            bool legal[4];
            nb_env_observe(e, obs);
            nb_env_get_state(e, v);
            nb_env_legal(e, legal);
            for (int k = 0; k < 8; k++) {
                float ok[256];
                bool lk[4];
                memcpy(ok, obs, sizeof ok);
                memcpy(lk, legal, sizeof lk);
                nb_env_symmetry(e, k, ok, NULL, lk);
                decode_2048(ok, w);
                CHECK(nb_env_set_state(f, w) == 0);
                bool lf[4];
                nb_env_legal(f, lf);
                for (int a = 0; a < 4; a++) {
                    CHECK(lf[a] == lk[a]);
                    int ak = a;
                    nb_env_symmetry(e, k, ok, &ak, NULL); /* obs mapped again: only the action matters here */
                    if (!legal[a]) continue;
                    CHECK(nb_env_set_state(g, v) == 0);
                    CHECK(nb_env_set_state(f, w) == 0);
                    CHECK(nb_env_step(g, a, NULL, NULL) == nb_env_step(f, ak, NULL, NULL));
                    checked++;
                }
            }
            int a = (int)nb_rng_below(&r, 4);
            while (!legal[a]) a = (a + 1) % 4;
            nb_env_step(e, a, NULL, NULL);
        }
    }
    CHECK(checked > 500);
    /* One quarter turn clockwise takes the top-left corner to the top-right
     * and "left" to "up"; a mirror swaps left and right. */
    float one[256] = {0};
    one[1 * 16 + 0] = 1;
    int a = 3;
    nb_env_symmetry(e, 1, one, &a, NULL);
    CHECK(one[1 * 16 + 3] == 1 && one[1 * 16 + 0] == 0 && a == 0);
    a = 3;
    nb_env_symmetry(e, 4, one, &a, NULL);
    CHECK(one[1 * 16 + 0] == 1 && a == 1);
    nb_env_free(e);
    nb_env_free(f);
    nb_env_free(g);
    /* CartPole's mirror: the state changes sign, left and right swap. */
    e = nb_env_new("cartpole");
    CHECK(nb_env_symmetries(e) == 2);
    float s[4] = {0.1f, -0.2f, 0.03f, 0.4f};
    a = 0;
    nb_env_symmetry(e, 1, s, &a, NULL);
    CHECK(s[0] == -0.1f && s[1] == 0.2f && s[2] == -0.03f && s[3] == -0.4f && a == 1);
    nb_env_free(e);
    /* Catch's mirror: columns reverse, left and right swap. */
    e = nb_env_new("catch");
    CHECK(nb_env_set_state(e, (double[]){2, 0, 1}) == 0);
    float px[50];
    nb_env_observe(e, px);
    a = 2;
    nb_env_symmetry(e, 1, px, &a, NULL);
    CHECK(px[2 * 5 + 4] == 1 && px[9 * 5 + 3] == 1 && px[2 * 5 + 0] == 0 && a == 0);
    nb_env_free(e);
}

/* The bytes of one packed checkpoint tensor (the replay memory is stored
 * raw in float32 tensors). */
static const uint8_t *ck_bytes(const nb_safetensors *st, const char *name) {
    nb_tensor *t = nb_st_get(st, name);
    CHECK_MSG(t != NULL, "checkpoint lacks %s", name);
    return t ? (const uint8_t *)t->data : NULL;
}

/* A learner that never updates (learn_start beyond the run) and never validates. */
static nb_dqn *idle_learner(const char *env, double eps) {
    nb_dqn_opts o;
    CHECK(nb_dqn_defaults(env, &o) == 0);
    o.steps = 1000;
    o.eps_start = o.eps_end = eps;
    o.learn_start = 100000;
    o.select_every = 0;
    o.seed = 3;
    return nb_dqn_new(env, &o, NULL);
}

/* A learning rate so large that the first update overflows Q's weights:
 * the next update's TD loss is NaN, and nb_dqn_step says so (-1) instead of
 * stepping on, which spread the NaN and trained for the rest of the run. */
TEST(test_dqn_step_stops_at_a_nonfinite_td_loss) {
    nb_dqn_opts o;
    CHECK(nb_dqn_defaults("catch", &o) == 0);
    o.steps = 2000, o.learn_start = 32, o.train_every = 1, o.select_every = 0, o.seed = 5, o.lr = 1e38;
    nb_dqn *d = nb_dqn_new("catch", &o, NULL);
    CHECK(d != NULL);
    int rc = 0;
    int64_t t = 0;
    for (; t < 2000 && rc >= 0; t++) rc = nb_dqn_step(d, NULL);
    CHECK(rc == -1);
    CHECK(strstr(nb_errmsg(), "the TD loss became") != NULL);
    int64_t updates = nb_dqn_updates(d);
    CHECK(updates >= 1 && updates < 10); /* stopped within a few updates of the overflow */
    nb_clear_error();
    nb_dqn_free(d);
    /* An infinite TD loss stops it too, at that update (a reward scaled to
     * 1e30, squared: inf in float32, not NaN), rather than one update later
     * at the NaN that stepping on inf gradients makes. */
    o.lr = 1e-3, o.huber = false, o.reward_scale = 1e30, o.grad_clip = 0;
    d = nb_dqn_new("catch", &o, NULL);
    CHECK(d != NULL);
    rc = 0;
    for (t = 0; t < 2000 && rc >= 0; t++) rc = nb_dqn_step(d, NULL);
    CHECK_MSG(rc == -1 && strstr(nb_errmsg(), "the TD loss became inf"), "rc %d: %s", rc, nb_errmsg());
    nb_clear_error();
    nb_dqn_free(d);
}

TEST(test_dqn_learner_acts_stores_and_schedules) {
    char path[64], path2[64];
    snprintf(path, sizeof path, "/tmp/nabla-test-dqn-learner-%d.safetensors", (int)getpid());
    snprintf(path2, sizeof path2, "/tmp/nabla-test-dqn-learner2-%d.safetensors", (int)getpid());
    /* epsilon 0: every stored action is the greedy one of its stored state. */
    nb_dqn *d = idle_learner("catch", 0);
    for (int t = 0; t < 100; t++) nb_dqn_step(d, NULL);
    CHECK(nb_dqn_checkpoint(d, path, NULL, NULL, 0) == 0);
    nb_safetensors *st = nb_st_read(path);
    CHECK(st != NULL);
    const uint8_t *s = ck_bytes(st, "dqn.replay.s"), *ab = ck_bytes(st, "dqn.replay.a");
    int greedy = 0;
    for (int i = 0; i < 100 && s && ab; i++) {
        float obs[50];
        for (int k = 0; k < 50; k++) obs[k] = s[i * 50 + k];
        int32_t a;
        memcpy(&a, ab + 4 * i, 4);
        greedy += a == nb_dqn_act(nb_dqn_net(d), obs, NULL, 3);
    }
    CHECK(greedy == 100);
    nb_st_free(st);
    nb_dqn_free(d);
    /* epsilon 1: uniform over the actions; Catch's rewards +-1 stored as
     * sign(r) log2(1 + |r|) * scale = +-0.5 on the terminal steps only. */
    nb_dqn_opts o;
    nb_dqn_defaults("catch", &o);
    o.steps = 1000, o.eps_start = o.eps_end = 1, o.learn_start = 100000, o.select_every = 0, o.seed = 5;
    o.reward_log = true, o.reward_scale = 0.5;
    d = nb_dqn_new("catch", &o, NULL);
    int ends = 0, misses = 0;
    for (int t = 0; t < 900; t++) {
        nb_rl_episode ep;
        if (nb_dqn_step(d, &ep)) ends++, misses += ep.ret < 0;
    }
    CHECK(nb_dqn_checkpoint(d, path, NULL, NULL, 0) == 0);
    st = nb_st_read(path);
    ab = ck_bytes(st, "dqn.replay.a");
    const uint8_t *rb = ck_bytes(st, "dqn.replay.r"), *tb = ck_bytes(st, "dqn.replay.term");
    int count[3] = {0}, stored_ends = 0, stored_misses = 0;
    bool rewards_ok = true;
    for (int i = 0; i < 900 && ab && rb && tb; i++) {
        int32_t a;
        float r;
        memcpy(&a, ab + 4 * i, 4);
        memcpy(&r, rb + 4 * i, 4);
        if (a >= 0 && a < 3) count[a]++;
        rewards_ok &= tb[i] ? (r == 0.5f || r == -0.5f) : r == 0;
        stored_ends += tb[i];
        stored_misses += r < 0;
    }
    for (int a = 0; a < 3; a++) CHECK_NEAR(count[a] / 900.0, 1 / 3.0, 0.06);
    CHECK(rewards_ok && stored_ends == ends && stored_misses == misses && misses > 0 && misses < ends);
    nb_st_free(st);
    nb_dqn_free(d);
    /* 2048, epsilon 1: the random action is always a legal one (the legal
     * moves of s_t are those stored with s_{t-1} when it was not terminal). */
    d = idle_learner("2048", 1);
    for (int t = 0; t < 400; t++) nb_dqn_step(d, NULL);
    CHECK(nb_dqn_checkpoint(d, path, NULL, NULL, 0) == 0);
    st = nb_st_read(path);
    ab = ck_bytes(st, "dqn.replay.a"), tb = ck_bytes(st, "dqn.replay.term");
    const uint8_t *lb = ck_bytes(st, "dqn.replay.legal2");
    int illegal = 0, checked = 0;
    for (int i = 1; i < 400 && ab && tb && lb; i++) {
        if (tb[i - 1]) continue;
        int32_t a;
        memcpy(&a, ab + 4 * i, 4);
        illegal += !lb[(i - 1) * 4 + a];
        checked++;
    }
    CHECK(illegal == 0 && checked > 300);
    nb_st_free(st);
    nb_dqn_free(d);
    /* CartPole's time limit: resumed at step 499 of an episode, the next step
     * truncates it, and the stored transition is not terminal (the learner
     * bootstraps from it). */
    d = idle_learner("cartpole", 0);
    nb_dqn_step(d, NULL);
    CHECK(nb_dqn_checkpoint(d, path, NULL, NULL, 0) == 0);
    nb_dqn_free(d);
    st = nb_st_read(path);
    const char **names = malloc(sizeof(char *) * (size_t)st->n);
    nb_tensor **ts = malloc(sizeof(nb_tensor *) * (size_t)st->n);
    const char **mk = malloc(sizeof(char *) * (size_t)st->n_meta), **mv = malloc(sizeof(char *) * (size_t)st->n_meta);
    for (int i = 0; i < st->n; i++) names[i] = st->entries[i].name, ts[i] = st->entries[i].t;
    for (int i = 0; i < st->n_meta; i++) {
        mk[i] = st->meta_keys[i];
        mv[i] = strcmp(mk[i], "nabla.dqn.state.env") ? st->meta_vals[i] : "0 0 0 0 499";
    }
    CHECK(nb_st_write(path2, names, ts, st->n, mk, mv, st->n_meta) == 0);
    free(names), free(ts), free(mk), free(mv);
    nb_st_free(st);
    d = nb_dqn_resume(path2, NULL);
    CHECK_MSG(d != NULL, "%s", nb_errmsg());
    if (d) {
        nb_rl_episode ep = {0};
        CHECK(nb_dqn_step(d, &ep) == 1 && ep.truncated && ep.length == 2); /* one step before the checkpoint */
        CHECK(nb_dqn_checkpoint(d, path, NULL, NULL, 0) == 0);
        st = nb_st_read(path);
        tb = ck_bytes(st, "dqn.replay.term");
        CHECK(tb && tb[0] == 0 && tb[1] == 0); /* slot 1: the truncated step */
        nb_st_free(st);
        nb_dqn_free(d);
    }
    /* Updates every train_every steps, counted from the first step, once D
     * holds learn_start transitions; the target copies Q every target_every. */
    nb_dqn_defaults("catch", &o);
    o.steps = 1000, o.learn_start = 10, o.train_every = 4, o.target_every = 6, o.select_every = 0, o.batch = 4;
    o.seed = 9;
    d = nb_dqn_new("catch", &o, NULL);
    int64_t want = 0;
    for (int t = 1; t <= 24; t++) {
        nb_dqn_step(d, NULL);
        want += t >= 10 && t % 4 == 0;
        CHECK_MSG(nb_dqn_updates(d) == want, "step %d: %lld updates, expected %lld", t, (long long)nb_dqn_updates(d),
                  (long long)want);
        if (t == 12 || t == 16) {
            /* Step 12 updated Q and then copied it; step 16 updated it after the copy at 12. */
            CHECK(nb_dqn_checkpoint(d, path, NULL, NULL, 0) == 0);
            st = nb_st_read(path);
            nb_param *p;
            int np = nb_net_params(nb_dqn_net(d), &p);
            bool same = true;
            for (int i = 0; i < np; i++) {
                char nm[32];
                snprintf(nm, sizeof nm, "dqn.target.%d", i);
                nb_tensor *tt = nb_st_get(st, nm);
                same &= tt && tt->size == p[i].t->size && nb_test_maxrel(tt->data, p[i].t->data, tt->size) == 0;
            }
            CHECK_MSG(same == (t == 12), "step %d: target %s Q", t, same ? "equals" : "differs from");
            nb_st_free(st);
        }
    }
    nb_dqn_free(d);
    unlink(path);
    unlink(path2);
}

/* nb_dqn_update is the update nb_dqn_step takes: a learner whose first
 * update falls inside step 200 and one that takes 200 steps without updates
 * and then calls nb_dqn_update end with the same weights, bit for bit (the
 * same minibatch, targets, learning rate and Adam step). An empty memory is
 * an error, not a crash. */
TEST(test_dqn_update_is_the_step_update) {
    const char *envs[2] = {"cartpole", "catch"};
    for (int e = 0; e < 2; e++) {
        nb_dqn_opts o;
        CHECK(nb_dqn_defaults(envs[e], &o) == 0);
        o.steps = 1000, o.select_every = 0, o.seed = 7, o.train_every = 1, o.target_every = 300;
        o.learn_start = 200;
        nb_dqn *a = nb_dqn_new(envs[e], &o, NULL);
        o.learn_start = 100000;
        nb_dqn *b = nb_dqn_new(envs[e], &o, NULL);
        CHECK(a && b);
        CHECK(nb_dqn_update(b) == -1 && strstr(nb_errmsg(), "replay memory is empty"));
        nb_clear_error();
        CHECK(nb_dqn_updates(b) == 0);
        for (int t = 0; t < 200; t++) {
            nb_dqn_step(a, NULL);
            nb_dqn_step(b, NULL);
        }
        CHECK(nb_dqn_updates(a) == 1 && nb_dqn_updates(b) == 0);
        nb_param *pa, *pb;
        int np = nb_net_params(nb_dqn_net(a), &pa);
        nb_net_params(nb_dqn_net(b), &pb);
        int differ = 0;
        for (int i = 0; i < np; i++) differ += memcmp(pa[i].t->data, pb[i].t->data, sizeof(float) * (size_t)pa[i].t->size) != 0;
        CHECK_MSG(differ > 0, "%s: the step's update changed no weight", envs[e]);
        CHECK(nb_dqn_update(b) == 0 && nb_dqn_updates(b) == 1);
        CHECK(nb_dqn_td_error(b) == nb_dqn_td_error(a) && nb_dqn_td_error(a) > 0);
        differ = 0;
        for (int i = 0; i < np; i++) differ += memcmp(pa[i].t->data, pb[i].t->data, sizeof(float) * (size_t)pa[i].t->size) != 0;
        CHECK_MSG(differ == 0, "%s: %d of %d tensors differ", envs[e], differ, np);
        nb_dqn_free(a);
        nb_dqn_free(b);
    }
}
