/* rl.c — the reinforcement-learning equations of the notes (§4.3): the
 * discounted return (eq. 28), the Bellman target, the tabular Q-learning
 * update, the epsilon schedule of exploration and the DQN loss. The learner
 * that uses them is dqn.c. */
#include "../core/internal.h"
#include <math.h>

double nb_rl_discounted_return(const float *r, int64_t n, double gamma) {
    /* eq. 28: R_t = r_t + gamma R_{t+1}, from the last reward back. */
    double R = 0;
    for (int64_t t = n - 1; t >= 0; t--) R = (double)r[t] + gamma * R;
    return R;
}

float nb_rl_bellman_target(float r, float gamma, const float *q_next, const bool *legal, int nactions, bool terminal) {
    /* Bellman: Q(s, a) = r + gamma max_a' Q(s', a'); at a terminal s' no
     * reward follows, so the target is r (the notes' algorithm: tt = rr). */
    if (terminal) return r;
    float best = -INFINITY;
    for (int a = 0; a < nactions; a++)
        if ((!legal || legal[a]) && q_next[a] > best) best = q_next[a];
    if (best == -INFINITY) return r; /* no legal action: the game is over */
    return r + gamma * best;
}

float nb_rl_q_update(float q, float alpha, float target) {
    /* Q(s, a) <- (1 - alpha) Q(s, a) + alpha (r + gamma max_a' Q(s', a')) */
    return (1.0f - alpha) * q + alpha * target;
}

double nb_rl_epsilon(double start, double end, int64_t steps, int64_t t) {
    if (steps <= 0 || t >= steps) return end;
    if (t <= 0) return start;
    return start + (end - start) * ((double)t / (double)steps);
}

nb_tensor *nb_dqn_loss(nb_tensor *q, const int32_t *actions, const float *targets, bool huber) {
    if (q->ndim != 2) {
        char s[96];
        nb_fatal("dqn_loss", "expected Q values [B, A], got shape %s", nb_shape_str(q, s, sizeof s));
    }
    int64_t B = q->shape[0], A = q->shape[1];
    /* Q(s_i, a_i) as the row sum of Q times a one-hot mask: the gradient
     * reaches only the action taken, the notes' "error 0 for the others". */
    nb_tensor *onehot = nb_zeros(2, (int64_t[]){B, A});
    for (int64_t i = 0; i < B; i++) {
        if (actions[i] < 0 || actions[i] >= A)
            nb_fatal("dqn_loss", "action %d of row %lld is outside [0, %lld)", actions[i], (long long)i, (long long)A);
        onehot->data[i * A + actions[i]] = 1.0f;
    }
    nb_tensor *qa = nb_sum(nb_mul(q, nb_to(onehot, q->device)), (int[]){1}, 1, false);
    nb_tensor *d = nb_sub(qa, nb_to(nb_from_data(1, (int64_t[]){B}, targets), q->device));
    if (!huber) return nb_mul_scalar(nb_mean(nb_square(d), NULL, 0, false), 0.5f); /* 1/2 [target - Q(s, a)]^2 */
    /* Huber with threshold 1 from differentiable pieces: with m = min(|d|, 1)
     * = 1 - relu(1 - |d|), h = m^2 / 2 + (|d| - m) is d^2/2 inside and
     * |d| - 1/2 outside, and dh/dd = clip(d, -1, 1). */
    nb_tensor *ad = nb_abs(d);
    nb_tensor *m = nb_add_scalar(nb_neg(nb_relu(nb_add_scalar(nb_neg(ad), 1.0f))), 1.0f);
    nb_tensor *h = nb_add(nb_mul_scalar(nb_square(m), 0.5f), nb_sub(ad, m));
    return nb_mean(h, NULL, 0, false);
}
