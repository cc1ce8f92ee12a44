/* dqn.c — deep Q-learning with experience replay (notes §4.3): the discounted
 * return (eq. 28), the Bellman target, the Q-learning update, the DQN loss,
 * the replay memory, epsilon-greedy exploration, the environments' common
 * front end, training, model selection on held-out seeds, greedy evaluation
 * and model files. */
#include "../core/internal.h"
#include "env.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

/* --- the equations ------------------------------------------------------- */

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

/* --- environments -------------------------------------------------------- */

struct nb_env {
    const nb_env_class *c;
    nb_rng rng;
    void *s;
    bool done;
};

static const nb_env_class *const CLASSES[] = {&nb_env_cartpole_class, &nb_env_2048_class, &nb_env_catch_class};
#define NCLASSES (int)(sizeof CLASSES / sizeof CLASSES[0])

static const nb_env_class *find_class(const char *name) {
    for (int i = 0; i < NCLASSES; i++)
        if (name && !strcmp(name, CLASSES[i]->name)) return CLASSES[i];
    nb_error("unknown environment '%s' (expected cartpole, 2048 or catch)", name ? name : "(null)");
    return NULL;
}

nb_env *nb_env_new(const char *name) {
    const nb_env_class *c = find_class(name);
    if (!c) return NULL;
    nb_env *e = calloc(1, sizeof *e);
    if (!e || !(e->s = calloc(1, c->size))) nb_oom("an environment", 0);
    e->c = c;
    nb_env_reset(e, 0);
    return e;
}

void nb_env_free(nb_env *e) {
    if (!e) return;
    free(e->s);
    free(e);
}

const char *nb_env_name(const nb_env *e) { return e->c->name; }
int nb_env_actions(const nb_env *e) { return e->c->nactions; }
const char *nb_env_action_name(const nb_env *e, int a) {
    return a >= 0 && a < e->c->nactions ? e->c->action_names[a] : "?";
}
int nb_env_obs_shape(const nb_env *e, int64_t *shape) {
    nb__shape_copy(shape, e->c->obs_shape, e->c->obs_nd);
    return e->c->obs_nd;
}
int64_t nb_env_obs_size(const nb_env *e) { return nb_shape_numel(e->c->obs_nd, e->c->obs_shape); }

void nb_env_reset(nb_env *e, uint64_t seed) {
    nb_rng_seed(&e->rng, seed, 0x656e76); /* the stream keeps episodes apart from the learner's draws */
    e->c->reset(e->s, &e->rng);
    e->done = false;
}

float nb_env_step(nb_env *e, int action, bool *terminal, bool *truncated) {
    if (action < 0 || action >= e->c->nactions)
        nb_fatal("env_step", "%s: action %d is outside [0, %d)", e->c->name, action, e->c->nactions);
    if (e->done) nb_fatal("env_step", "%s: the episode is over; call nb_env_reset first", e->c->name);
    bool term = false, trunc = false;
    float r = e->c->step(e->s, action, &e->rng, &term, &trunc);
    e->done = term || trunc;
    if (terminal) *terminal = term;
    if (truncated) *truncated = trunc;
    return r;
}

bool nb_env_done(const nb_env *e) { return e->done; }
void nb_env_observe(const nb_env *e, float *obs) { e->c->observe(e->s, obs); }

int nb_env_legal(const nb_env *e, bool *mask) {
    /* The game's own rule: a time limit does not take moves away, so a
     * truncated state still has its actions (the learner bootstraps). */
    if (e->c->legal) return e->c->legal(e->s, mask);
    for (int a = 0; a < e->c->nactions; a++) mask[a] = true;
    return e->c->nactions;
}

int nb_env_render(const nb_env *e, char *buf, size_t n) { return e->c->render(e->s, buf, n); }
int nb_env_state_size(const nb_env *e) { return e->c->nstate; }
void nb_env_get_state(const nb_env *e, double *v) { e->c->get_state(e->s, v); }

int nb_env_set_state(nb_env *e, const double *v) {
    if (e->c->set_state(e->s, v)) return -1;
    bool mask[8];
    e->done = e->c->legal && e->c->legal(e->s, mask) == 0;
    return 0;
}

int nb_env_symmetries(const nb_env *e) { return e->c->nsym > 1 ? e->c->nsym : 1; }

void nb_env_symmetry(const nb_env *e, int k, float *obs, int *action, bool *legal) {
    if (k < 0 || k >= nb_env_symmetries(e))
        nb_fatal("env_symmetry", "%s has %d symmetries, asked for number %d", e->c->name, nb_env_symmetries(e), k);
    if (k > 0) e->c->symmetry(k, obs, action, legal);
}

/* The 2048 tile to report at the end of a game. */
static double highest_tile(const nb_env *e) {
    if (e->c != &nb_env_2048_class) return 0;
    double v[32], best = 0;
    e->c->get_state(e->s, v);
    for (int i = 0; i < 16; i++) best = fmax(best, v[i]);
    return best;
}

/* --- replay memory --------------------------------------------------------- */

struct nb_replay {
    int64_t cap, obs, size, next, pushed;
    int na;
    bool bytes;
    float *sf, *s2f;   /* float observations ... */
    uint8_t *sb, *s2b; /* ... or byte ones */
    int32_t *a;
    float *r;
    uint8_t *term, *legal2;
};

void nb_replay_free(nb_replay *r) {
    if (!r) return;
    free(r->sf);
    free(r->s2f);
    free(r->sb);
    free(r->s2b);
    free(r->a);
    free(r->r);
    free(r->term);
    free(r->legal2);
    free(r);
}

nb_replay *nb_replay_new(int64_t capacity, int64_t obs_size, int nactions, bool bytes) {
    if (capacity < 1 || obs_size < 1 || nactions < 1 || nactions > 64) {
        nb_error("replay memory: need capacity >= 1, obs_size >= 1 and 1..64 actions (got %lld, %lld, %d)",
                 (long long)capacity, (long long)obs_size, nactions);
        return NULL;
    }
    int64_t n = nb_shape_numel(2, (int64_t[]){capacity, obs_size});
    size_t esz = bytes ? 1 : sizeof(float);
    if (n < 0 || (uint64_t)n > SIZE_MAX / 2 / esz) {
        nb_error("replay memory: %lld transitions of %lld values do not fit in memory", (long long)capacity,
                 (long long)obs_size);
        return NULL;
    }
    nb_replay *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->cap = capacity;
    r->obs = obs_size;
    r->na = nactions;
    r->bytes = bytes;
    if (bytes) {
        r->sb = malloc((size_t)n);
        r->s2b = malloc((size_t)n);
    } else {
        r->sf = malloc((size_t)n * sizeof(float));
        r->s2f = malloc((size_t)n * sizeof(float));
    }
    r->a = malloc(sizeof(int32_t) * (size_t)capacity);
    r->r = malloc(sizeof(float) * (size_t)capacity);
    r->term = malloc((size_t)capacity);
    r->legal2 = malloc((size_t)capacity * (size_t)nactions);
    if ((bytes ? !r->sb || !r->s2b : !r->sf || !r->s2f) || !r->a || !r->r || !r->term || !r->legal2) goto oom;
    return r;
oom:
    nb_replay_free(r);
    nb_error("replay memory: out of memory for %lld transitions of %lld values", (long long)capacity,
             (long long)obs_size);
    return NULL;
}

void nb_replay_push(nb_replay *r, const float *s, int32_t a, float reward, const float *s2, bool terminal,
                    const bool *legal2) {
    int64_t i = r->next, o = r->obs;
    if (r->bytes)
        for (int64_t k = 0; k < o; k++) {
            r->sb[i * o + k] = s[k] != 0;
            r->s2b[i * o + k] = s2[k] != 0;
        }
    else {
        memcpy(r->sf + i * o, s, sizeof(float) * (size_t)o);
        memcpy(r->s2f + i * o, s2, sizeof(float) * (size_t)o);
    }
    r->a[i] = a;
    r->r[i] = reward;
    r->term[i] = terminal;
    for (int k = 0; k < r->na; k++) r->legal2[i * r->na + k] = legal2 ? legal2[k] : 1;
    /* The ring: slots fill from 0; once full, the oldest is overwritten. */
    r->next = (i + 1) % r->cap;
    if (r->size < r->cap) r->size++;
    r->pushed++;
}

int64_t nb_replay_size(const nb_replay *r) { return r->size; }
int64_t nb_replay_pushed(const nb_replay *r) { return r->pushed; }

void nb_replay_sample(const nb_replay *r, nb_rng *rng, int64_t n, int64_t *idx) {
    if (r->size < 1) nb_fatal("replay_sample", "the replay memory is empty");
    /* Slots [0, size) are exactly the filled ones (the ring fills from 0). */
    for (int64_t i = 0; i < n; i++) idx[i] = (int64_t)nb_rng_below(rng, (uint32_t)r->size);
}

void nb_replay_gather(const nb_replay *r, const int64_t *idx, int64_t n, float *s, int32_t *a, float *reward, float *s2,
                      bool *terminal, bool *legal2) {
    int64_t o = r->obs;
    for (int64_t i = 0; i < n; i++) {
        int64_t j = idx[i];
        if (j < 0 || j >= r->size) nb_fatal("replay_gather", "slot %lld is not filled (size %lld)", (long long)j, (long long)r->size);
        if (r->bytes) {
            for (int64_t k = 0; k < o; k++) {
                if (s) s[i * o + k] = r->sb[j * o + k];
                if (s2) s2[i * o + k] = r->s2b[j * o + k];
            }
        } else {
            if (s) memcpy(s + i * o, r->sf + j * o, sizeof(float) * (size_t)o);
            if (s2) memcpy(s2 + i * o, r->s2f + j * o, sizeof(float) * (size_t)o);
        }
        if (a) a[i] = r->a[j];
        if (reward) reward[i] = r->r[j];
        if (terminal) terminal[i] = r->term[j];
        if (legal2)
            for (int k = 0; k < r->na; k++) legal2[i * r->na + k] = r->legal2[j * r->na + k];
    }
}

/* --- acting ---------------------------------------------------------------- */

/* argmax over the legal entries of row q[0..na); the first on ties. */
static int masked_argmax(const float *q, const bool *legal, int na) {
    int best = -1;
    for (int a = 0; a < na; a++)
        if ((!legal || legal[a]) && (best < 0 || q[a] > q[best])) best = a;
    return best < 0 ? 0 : best;
}

/* A uniformly random legal action. */
static int random_legal(nb_rng *r, const bool *legal, int na) {
    int n = 0;
    for (int a = 0; a < na; a++) n += !legal || legal[a];
    if (!n) return 0;
    int k = (int)nb_rng_below(r, (uint32_t)n);
    for (int a = 0; a < na; a++)
        if ((!legal || legal[a]) && k-- == 0) return a;
    return 0;
}

/* Q on a batch of n observations, no gradient: [n, actions] in the arena. */
static nb_tensor *q_values(nb_net *q, const float *obs, int64_t n) {
    int64_t shape[5] = {n};
    int nd = nb_net_input_shape(q, shape + 1);
    bool old = nb_set_grad_enabled(false);
    nb_tensor *out = nb_net_forward(q, nb_from_data(nd + 1, shape, obs), false, NULL);
    nb_set_grad_enabled(old);
    return out;
}

int nb_dqn_act(nb_net *q, const float *obs, const bool *legal, int nactions) {
    nb_tensor *v = q_values(q, obs, 1);
    if (v->shape[1] != nactions)
        nb_fatal("dqn_act", "the network has %lld outputs for %d actions", (long long)v->shape[1], nactions);
    return masked_argmax(v->data, legal, nactions);
}

/* --- the learner ----------------------------------------------------------- */

struct nb_dqn {
    nb_dqn_opts o;
    const nb_env_class *c;
    nb_env *env;
    nb_net *q, *target;
    nb_param *params;
    int np;
    nb_optim *opt;
    nb_replay *mem;
    nb_arena *arena;
    nb_rng rng_act, rng_sample, rng_episode;
    int na;
    int64_t obs_size;
    float *obs, *obs2;
    bool *legal2;
    /* one minibatch */
    int64_t *idx;
    float *bs, *bs2, *br, *targets;
    int32_t *ba;
    bool *bterm, *blegal;
    int64_t step, updates, ep_len;
    double ep_ret, td;
    /* model selection on held-out seeds: the best weights, flat */
    nb_rl_episode *val;
    float *best;
    double best_ret;
    int64_t best_step;
};

int nb_dqn_defaults(const char *env, nb_dqn_opts *o) {
    const nb_env_class *c = find_class(env);
    if (!c) return -1;
    *o = c->defaults;
    o->seed = 1;
    return 0;
}

const char *nb_dqn_net_cfg(const char *env) {
    const nb_env_class *c = find_class(env);
    return c ? c->net_cfg : NULL;
}

static int check_opts(const nb_dqn_opts *o) {
    if (!o) return nb_error("dqn: the options are NULL (nb_dqn_defaults fills them for an environment)");
    if (o->steps < 0) return nb_error("dqn: steps must be >= 0, got %lld", (long long)o->steps);
    if (!(o->lr > 0 && isfinite(o->lr))) return nb_error("dqn: the learning rate must be > 0, got %g", o->lr);
    if (!(o->lr_end >= 0 && o->lr_end <= o->lr))
        return nb_error("dqn: the final learning rate must be in [0, lr = %g], got %g", o->lr, o->lr_end);
    if (!(o->gamma >= 0 && o->gamma <= 1)) return nb_error("dqn: gamma must be in [0, 1], got %g", o->gamma);
    if (o->buffer < 1) return nb_error("dqn: the replay buffer needs at least 1 slot, got %lld", (long long)o->buffer);
    if (o->batch < 1 || o->batch > 65536) return nb_error("dqn: the batch must be in [1, 65536], got %lld", (long long)o->batch);
    if (!(o->eps_start >= 0 && o->eps_start <= 1 && o->eps_end >= 0 && o->eps_end <= 1))
        return nb_error("dqn: epsilon must be in [0, 1] (got start %g, end %g)", o->eps_start, o->eps_end);
    if (o->eps_steps < 0) return nb_error("dqn: epsilon steps must be >= 0, got %lld", (long long)o->eps_steps);
    if (o->target_every < 0) return nb_error("dqn: target-every must be >= 0, got %lld", (long long)o->target_every);
    if (o->learn_start < 0) return nb_error("dqn: learn-start must be >= 0, got %lld", (long long)o->learn_start);
    if (o->train_every < 1) return nb_error("dqn: train-every must be >= 1, got %lld", (long long)o->train_every);
    if (!(o->reward_scale > 0 && isfinite(o->reward_scale)))
        return nb_error("dqn: the reward scale must be > 0, got %g", o->reward_scale);
    if (!(o->grad_clip >= 0 && isfinite(o->grad_clip))) return nb_error("dqn: grad-clip must be >= 0, got %g", o->grad_clip);
    if (o->select_every < 0) return nb_error("dqn: select-every must be >= 0, got %lld", (long long)o->select_every);
    if (o->select_every > 0 && (o->select_episodes < 1 || o->select_episodes > 100000))
        return nb_error("dqn: select-episodes must be in [1, 100000], got %lld", (long long)o->select_episodes);
    return 0;
}

/* Whether a network fits an environment: its inputs and outputs. */
static int check_net(nb_net *net, const nb_env_class *c, const char *what) {
    int64_t shape[4];
    int nd = nb_net_input_shape(net, shape);
    int64_t in = nb_shape_numel(nd, shape), want = nb_shape_numel(c->obs_nd, c->obs_shape);
    if (in != want)
        return nb_error("%s: the network takes %lld inputs; %s observations have %lld", what, (long long)in, c->name,
                        (long long)want);
    if (nb_net_outputs(net) != c->nactions)
        return nb_error("%s: the network has %lld outputs; %s has %d actions (one Q value each)", what,
                        (long long)nb_net_outputs(net), c->name, c->nactions);
    return 0;
}

static nb_net *make_net(const nb_env_class *c, const char *cfg, nb_rng *init) {
    nb_net *net = nb_net_parse(cfg, cfg == c->net_cfg ? "<built-in Q-network>" : "<Q-network>");
    if (!net) return NULL;
    if (nb_net_build(net, c->obs_nd, c->obs_shape, init) || check_net(net, c, "Q-network")) {
        nb_net_free(net);
        return NULL;
    }
    return net;
}

/* The target network takes Q's current weights. */
static void sync_target(nb_dqn *d) {
    nb_param *tp;
    nb_net_params(d->target, &tp);
    for (int i = 0; i < d->np; i++) nb_copy_into(tp[i].t, d->params[i].t);
}

/* A training episode's seed: bit 63 set, so no training episode shares its
 * seed with a validation (2^62 + i) or evaluation (< 2^62) episode. */
static uint64_t next_seed(nb_rng *r) { return (uint64_t)nb_rng_u32(r) << 32 | nb_rng_u32(r) | UINT64_C(1) << 63; }

void nb_dqn_free(nb_dqn *d) {
    if (!d) return;
    nb_env_free(d->env);
    nb_net_free(d->q);
    nb_net_free(d->target);
    nb_optim_free(d->opt);
    nb_replay_free(d->mem);
    if (d->arena) nb_arena_free(d->arena);
    free(d->obs);
    free(d->obs2);
    free(d->legal2);
    free(d->idx);
    free(d->bs);
    free(d->bs2);
    free(d->br);
    free(d->targets);
    free(d->ba);
    free(d->bterm);
    free(d->blegal);
    free(d->val);
    free(d->best);
    free(d);
}

nb_dqn *nb_dqn_new(const char *env, const nb_dqn_opts *o, const char *net_cfg) {
    const nb_env_class *c = find_class(env);
    if (!c || check_opts(o)) return NULL;
    nb_dqn *d = calloc(1, sizeof *d);
    if (!d) nb_oom("the DQN learner", 0);
    d->o = *o;
    d->c = c;
    d->na = c->nactions;
    /* Separate streams of one seed: initialization, exploration, minibatch
     * sampling and the episodes' own seeds. */
    nb_rng init;
    nb_rng_seed(&init, o->seed, 0);
    nb_rng_seed(&d->rng_act, o->seed, 1);
    nb_rng_seed(&d->rng_sample, o->seed, 2);
    nb_rng_seed(&d->rng_episode, o->seed, 3);
    const char *cfg = net_cfg ? net_cfg : c->net_cfg;
    if (!(d->q = make_net(c, cfg, &init))) goto fail;
    d->np = nb_net_params(d->q, &d->params);
    if (o->target_every > 0) {
        if (!(d->target = make_net(c, cfg, &init))) goto fail;
        nb_param *tp;
        nb_net_params(d->target, &tp);
        for (int i = 0; i < d->np; i++) nb_requires_grad(tp[i].t, false); /* copied, never trained */
        sync_target(d);
    }
    nb_optim_opts oo = {.kind = NB_ADAM, .lr = (float)o->lr};
    if (!(d->opt = nb_optim_new(&oo, d->params, d->np))) goto fail;
    d->env = nb_env_new(c->name);
    d->obs_size = nb_env_obs_size(d->env);
    int64_t cap = o->buffer;
    if (!(d->mem = nb_replay_new(cap, d->obs_size, d->na, c->obs_binary))) goto fail;
    size_t B = (size_t)o->batch, O = (size_t)d->obs_size, A = (size_t)d->na;
    d->obs = malloc(sizeof(float) * O);
    d->obs2 = malloc(sizeof(float) * O);
    d->legal2 = malloc(A);
    d->idx = malloc(sizeof(int64_t) * B);
    d->bs = malloc(sizeof(float) * B * O);
    d->bs2 = malloc(sizeof(float) * B * O);
    d->br = malloc(sizeof(float) * B);
    d->targets = malloc(sizeof(float) * B);
    d->ba = malloc(sizeof(int32_t) * B);
    d->bterm = malloc(B);
    d->blegal = malloc(B * A);
    if (!d->obs || !d->obs2 || !d->legal2 || !d->idx || !d->bs || !d->bs2 || !d->br || !d->targets || !d->ba ||
        !d->bterm || !d->blegal) {
        nb_error("dqn: out of memory for a batch of %lld", (long long)o->batch);
        goto fail;
    }
    d->best_step = -1;
    d->best_ret = -INFINITY;
    if (o->select_every > 0) {
        int64_t n = 0;
        for (int i = 0; i < d->np; i++) n += d->params[i].t->size;
        d->val = malloc(sizeof *d->val * (size_t)o->select_episodes);
        d->best = malloc(sizeof(float) * (size_t)n);
        if (!d->val || !d->best) {
            nb_error("dqn: out of memory for model selection");
            goto fail;
        }
    }
    d->arena = nb_arena_new();
    nb_env_reset(d->env, next_seed(&d->rng_episode));
    nb_env_observe(d->env, d->obs);
    return d;
fail:
    nb_dqn_free(d);
    return NULL;
}

/* One gradient step on a minibatch drawn uniformly from D. */
static void update(nb_dqn *d) {
    int64_t B = d->o.batch, A = d->na;
    nb_replay_sample(d->mem, &d->rng_sample, B, d->idx);
    nb_replay_gather(d->mem, d->idx, B, d->bs, d->ba, d->br, d->bs2, d->bterm, d->blegal);
    /* Targets from the target network (or Q itself), held constant: terminal
     * -> r; otherwise r + gamma max over the legal a' of Q(s', a'). */
    if (d->o.augment && d->c->nsym > 1)
        for (int64_t i = 0; i < B; i++) {
            /* s and s' through the same symmetry: a transition of the game too */
            int k = (int)nb_rng_below(&d->rng_sample, (uint32_t)d->c->nsym), a = d->ba[i];
            if (!k) continue;
            d->c->symmetry(k, d->bs + i * d->obs_size, &a, NULL);
            d->c->symmetry(k, d->bs2 + i * d->obs_size, NULL, d->blegal + i * A);
            d->ba[i] = a;
        }
    nb_tensor *qn = q_values(d->target ? d->target : d->q, d->bs2, B);
    nb_tensor *qo = d->o.double_q ? q_values(d->q, d->bs2, B) : NULL;
    for (int64_t i = 0; i < B; i++) {
        const bool *lg = d->blegal + i * A;
        if (!qo) {
            d->targets[i] = nb_rl_bellman_target(d->br[i], (float)d->o.gamma, qn->data + i * A, lg, (int)A, d->bterm[i]);
            continue;
        }
        /* Double DQN: the online Q chooses a', the target network values it,
         * so one network's noise does not both pick and inflate the max. */
        int best = masked_argmax(qo->data + i * A, lg, (int)A);
        bool any = false;
        for (int64_t a = 0; a < A; a++) any |= lg[a];
        d->targets[i] = d->bterm[i] || !any ? d->br[i] : d->br[i] + (float)d->o.gamma * qn->data[i * A + best];
    }
    int64_t shape[5] = {B};
    int nd = nb_net_input_shape(d->q, shape + 1);
    nb_tensor *qs = nb_net_forward(d->q, nb_from_data(nd + 1, shape, d->bs), true, NULL);
    double td = 0;
    for (int64_t i = 0; i < B; i++) td += fabs((double)d->targets[i] - qs->data[i * A + d->ba[i]]);
    d->td = td / (double)B;
    nb_tensor *loss = nb_dqn_loss(qs, d->ba, d->targets, d->o.huber);
    nb_backward(loss);
    if (d->o.lr_end > 0 && d->o.lr_end < d->o.lr)
        nb_optim_set_lr(d->opt, nb_lr_cosine((float)d->o.lr, d->step, d->o.steps, (float)d->o.lr_end));
    if (d->o.grad_clip > 0) nb_clip_grad_norm(d->params, d->np, (float)d->o.grad_clip);
    nb_optim_step_zero(d->opt, NULL, 0); /* step, then zero the gradients, in one pass */
    d->updates++;
}

/* Model selection: the greedy policy's mean return on the validation seeds;
 * weights at least as good as the best so far replace it (the latest wins a
 * tie: it has trained longer at a lower rate). The greedy policy of
 * Q-learning swings between good and poor ones (CartPole: 500 and about 220
 * from one 5,000-step check to the next), so the last weights are a draw
 * from that swing; the validated best is not. */
static void validate(nb_dqn *d) {
    int n = (int)d->o.select_episodes;
    if (nb_dqn_evaluate(d->q, d->c->name, n, NB_DQN_VALIDATION_SEED, 0, d->val))
        nb_fatal("dqn", "validation: %s", nb_errmsg());
    double ret = 0;
    for (int i = 0; i < n; i++) ret += d->val[i].ret;
    ret /= n;
    if (ret < d->best_ret) return;
    d->best_ret = ret;
    d->best_step = d->step;
    float *w = d->best;
    for (int i = 0; i < d->np; i++) {
        memcpy(w, d->params[i].t->data, sizeof(float) * (size_t)d->params[i].t->size);
        w += d->params[i].t->size;
    }
}

/* Q takes the selected weights (the target network too, should training go
 * on past the planned steps). */
static void restore_best(nb_dqn *d) {
    const float *w = d->best;
    for (int i = 0; i < d->np; i++) {
        memcpy(d->params[i].t->data, w, sizeof(float) * (size_t)d->params[i].t->size);
        w += d->params[i].t->size;
    }
    if (d->target) sync_target(d);
}

int nb_dqn_step(nb_dqn *d, nb_rl_episode *ep) {
    nb_arena *old = nb_arena_use(d->arena);
    int na = d->na;
    bool legal[64];
    nb_env_legal(d->env, legal);
    /* epsilon-greedy: a random legal action with probability epsilon, else
     * argmax_a Q(s, a) over the legal ones. */
    double eps = nb_dqn_epsilon(d);
    int a = nb_rng_uniform(&d->rng_act) < eps ? random_legal(&d->rng_act, legal, na)
                                              : nb_dqn_act(d->q, d->obs, legal, na);
    bool term, trunc;
    float r = nb_env_step(d->env, a, &term, &trunc);
    nb_env_observe(d->env, d->obs2);
    nb_env_legal(d->env, d->legal2);
    /* Only a terminal s' stops the bootstrap; a truncated one does not. */
    double rl = d->o.reward_log ? copysign(log2(1.0 + fabs(r)), r) : r;
    nb_replay_push(d->mem, d->obs, a, (float)(rl * d->o.reward_scale), d->obs2, term, d->legal2);
    d->ep_ret += r;
    d->ep_len++;
    d->step++;
    if (nb_replay_size(d->mem) >= d->o.learn_start && nb_replay_size(d->mem) >= 1 && d->step % d->o.train_every == 0)
        update(d);
    if (d->target && d->step % d->o.target_every == 0) sync_target(d);
    if (d->o.select_every > 0 && d->step <= d->o.steps && (d->step % d->o.select_every == 0 || d->step == d->o.steps)) {
        validate(d);
        if (d->step == d->o.steps) restore_best(d);
    }
    int done = term || trunc;
    if (done) {
        if (ep) *ep = (nb_rl_episode){d->ep_ret, d->ep_len, trunc, highest_tile(d->env)};
        d->ep_ret = 0;
        d->ep_len = 0;
        nb_env_reset(d->env, next_seed(&d->rng_episode));
        nb_env_observe(d->env, d->obs);
    } else {
        float *t = d->obs;
        d->obs = d->obs2;
        d->obs2 = t;
    }
    nb_arena_reset();
    nb_arena_use(old);
    return done;
}

int64_t nb_dqn_steps(const nb_dqn *d) { return d->step; }
int64_t nb_dqn_updates(const nb_dqn *d) { return d->updates; }
double nb_dqn_epsilon(const nb_dqn *d) { return nb_rl_epsilon(d->o.eps_start, d->o.eps_end, d->o.eps_steps, d->step); }
double nb_dqn_td_error(const nb_dqn *d) { return d->td; }
nb_net *nb_dqn_net(nb_dqn *d) { return d->q; }
double nb_dqn_selected_return(const nb_dqn *d) { return d->best_ret; }
int64_t nb_dqn_selected_step(const nb_dqn *d) { return d->best_step; }
const nb_dqn_opts *nb_dqn_options(const nb_dqn *d) { return &d->o; }

/* --- model files ----------------------------------------------------------- */

/* The model file: Q, the options and the extra metadata and tensors. */
static int save_file(const nb_dqn *d, const char *path, const char *const *keys, const char *const *vals, int n,
                     const char *const *xnames, nb_tensor *const *xt, int nx) {
    enum { NK = 25 };
    char v[NK][64];
    const char **k = malloc(sizeof(char *) * (size_t)(NK + 1 + n)), **vv = malloc(sizeof(char *) * (size_t)(NK + 1 + n));
    if (!k || !vv) nb_oom("a DQN model file", 0);
    int m = 0;
    const nb_dqn_opts *o = &d->o;
#define PUT(key, ...) (k[m] = (key), snprintf(v[m], sizeof v[m], __VA_ARGS__), vv[m] = v[m], m++)
    PUT("nabla.dqn.steps", "%" PRId64, d->step);
    PUT("nabla.dqn.updates", "%" PRId64, d->updates);
    PUT("nabla.dqn.lr", "%.9g", o->lr);
    PUT("nabla.dqn.lr_end", "%.9g", o->lr_end);
    PUT("nabla.dqn.gamma", "%.9g", o->gamma);
    PUT("nabla.dqn.buffer", "%" PRId64, o->buffer);
    PUT("nabla.dqn.batch", "%" PRId64, o->batch);
    PUT("nabla.dqn.epsilon_start", "%.9g", o->eps_start);
    PUT("nabla.dqn.epsilon_end", "%.9g", o->eps_end);
    PUT("nabla.dqn.epsilon_steps", "%" PRId64, o->eps_steps);
    PUT("nabla.dqn.target_every", "%" PRId64, o->target_every);
    PUT("nabla.dqn.huber", "%d", o->huber);
    PUT("nabla.dqn.learn_start", "%" PRId64, o->learn_start);
    PUT("nabla.dqn.train_every", "%" PRId64, o->train_every);
    PUT("nabla.dqn.reward_scale", "%.9g", o->reward_scale);
    PUT("nabla.dqn.reward_log", "%d", o->reward_log);
    PUT("nabla.dqn.grad_clip", "%.9g", o->grad_clip);
    PUT("nabla.dqn.double_q", "%d", o->double_q);
    PUT("nabla.dqn.augment", "%d", o->augment);
    PUT("nabla.dqn.select_every", "%" PRId64, o->select_every);
    PUT("nabla.dqn.select_episodes", "%" PRId64, o->select_episodes);
    /* Which weights the file holds: the selected ones once the run is over,
     * else the current ones (their validation return then unknown: nan). */
    bool selected = d->best_step >= 0 && d->step == o->steps;
    PUT("nabla.dqn.selected_step", "%" PRId64, selected ? d->best_step : d->step);
    PUT("nabla.dqn.selected_return", "%.6g", selected ? d->best_ret : NAN);
    PUT("nabla.dqn.seed", "%" PRIu64, o->seed);
#undef PUT
    k[m] = "nabla.dqn.env";
    vv[m++] = d->c->name;
    for (int i = 0; i < n; i++) {
        k[m] = keys[i];
        vv[m++] = vals[i];
    }
    int rc = nb_net_save(d->q, path, k, vv, m, xnames, xt, nx);
    free(k);
    free(vv);
    return rc;
}

int nb_dqn_save(const nb_dqn *d, const char *path, const char *const *keys, const char *const *vals, int n) {
    return save_file(d, path, keys, vals, n, NULL, NULL, 0);
}

/* --- checkpoints: resuming a run ------------------------------------------- */

/* A checkpoint holds, besides Q and the options nb_dqn_save writes, every
 * part of the learner that the next step reads: the target network, Adam's
 * moments and step count, the replay memory, the four random streams, the
 * environment in mid-episode (its state and its own stream), the current
 * observation, the counters and the best weights of model selection. The
 * resumed learner then takes exactly the steps the uninterrupted one takes. */

/* Model files hold float32 tensors and the reader keeps every bit pattern
 * (NaNs included), so raw bytes travel as the bit patterns of
 * ceil(n / 4) floats. */
static nb_tensor *pack_bytes(const void *src, int64_t n) {
    nb_tensor *t = nb_tensor_new(1, (int64_t[]){n > 0 ? (n + 3) / 4 : 1});
    if (n > 0) memcpy(t->data, src, (size_t)n);
    return t;
}

static int unpack_bytes(const nb_safetensors *st, const char *path, const char *name, void *dst, int64_t n) {
    nb_tensor *t = nb_st_get(st, name);
    int64_t want = n > 0 ? (n + 3) / 4 : 1;
    if (!t || t->size != want)
        return nb_error("%s: the checkpoint's '%s' is %s (expected %lld values)", path, name,
                        t ? "of the wrong size" : "missing", (long long)want);
    if (n > 0) memcpy(dst, t->data, (size_t)n);
    return 0;
}

static int get_rng(const nb_safetensors *st, const char *path, const char *key, nb_rng *r) {
    const char *v = nb_st_meta(st, key);
    if (nb_rng_from_text(v, r))
        return nb_error("%s: '%s' in __metadata__ is %s (expected two 16-digit hex numbers, the second odd)", path, key,
                        v ? "malformed" : "missing");
    return 0;
}

/* Reads `count` numbers separated by single spaces from a metadata value. */
static int get_numbers(const nb_safetensors *st, const char *path, const char *key, double *v, int count) {
    const char *s = nb_st_meta(st, key);
    if (!s) return nb_error("%s: '%s' missing from __metadata__", path, key);
    for (int i = 0; i < count; i++) {
        char *end;
        errno = 0;
        v[i] = strtod(s, &end);
        if (end == s || errno || (i + 1 < count ? *end != ' ' : *end != 0))
            return nb_error("%s: '%s' in __metadata__: expected %d numbers separated by spaces, got '%.80s'", path, key,
                            count, nb_st_meta(st, key));
        s = end + (i + 1 < count);
    }
    return 0;
}

/* Whether a stored number may be cast to int64_t: a damaged file's 1e300 or
 * nan would be undefined behaviour there. No count reaches 2^53. */
static bool is_count(double x) { return x >= -9007199254740992.0 && x <= 9007199254740992.0; }

static int need_counts(const char *path, const char *key, const double *v, int count) {
    for (int i = 0; i < count; i++)
        if (!is_count(v[i]))
            return nb_error("%s: '%s' in __metadata__: %g is not a count (at most 2^53 in size)", path, key, v[i]);
    return 0;
}

int nb_dqn_checkpoint(const nb_dqn *d, const char *path, const char *const *keys, const char *const *vals, int n) {
    const nb_replay *m = d->mem;
    const char **onames = NULL;
    nb_tensor **ot = NULL;
    int no = nb_optim_state(d->opt, &onames, &ot);
    int cap = d->np + no + 8;
    const char **names = malloc(sizeof(char *) * (size_t)cap);
    nb_tensor **ts = malloc(sizeof(nb_tensor *) * (size_t)cap);
    char (*tn)[32] = malloc(sizeof *tn * (size_t)(d->np ? d->np : 1));
    nb_tensor **owned = malloc(sizeof(nb_tensor *) * 8);
    enum { NS = 8 };
    char sv[NS][4096];
    const char **mk = malloc(sizeof(char *) * (size_t)(n + NS)), **mv = malloc(sizeof(char *) * (size_t)(n + NS));
    if (!names || !ts || !tn || !owned || !mk || !mv) nb_oom("a DQN checkpoint", 0);
    int k = 0, nown = 0;
    if (d->target) {
        nb_param *tp;
        nb_net_params(d->target, &tp);
        for (int i = 0; i < d->np; i++) {
            snprintf(tn[i], sizeof tn[i], "dqn.target.%d", i);
            names[k] = tn[i];
            ts[k++] = tp[i].t;
        }
    }
    for (int i = 0; i < no; i++) {
        names[k] = onames[i];
        ts[k++] = ot[i];
    }
    int64_t O = m->obs, S = m->size, A = m->na, esz = m->bytes ? 1 : (int64_t)sizeof(float);
#define PACK(name, src, bytes) (names[k] = (name), ts[k++] = owned[nown++] = pack_bytes((src), (bytes)))
    PACK("dqn.obs", d->obs, O * (int64_t)sizeof(float));
    PACK("dqn.replay.s", m->bytes ? (const void *)m->sb : (const void *)m->sf, S * O * esz);
    PACK("dqn.replay.s2", m->bytes ? (const void *)m->s2b : (const void *)m->s2f, S * O * esz);
    PACK("dqn.replay.a", m->a, S * (int64_t)sizeof(int32_t));
    PACK("dqn.replay.r", m->r, S * (int64_t)sizeof(float));
    PACK("dqn.replay.term", m->term, S);
    PACK("dqn.replay.legal2", m->legal2, S * A);
    if (d->best && d->best_step >= 0) {
        int64_t nbest = 0;
        for (int i = 0; i < d->np; i++) nbest += d->params[i].t->size;
        PACK("dqn.best", d->best, nbest * (int64_t)sizeof(float));
    }
#undef PACK
    /* The state as metadata: counters, streams, the environment. */
    double env[64];
    int ne = nb_env_state_size(d->env);
    if (ne > 64) nb_fatal("dqn_checkpoint", "%s has %d state values, more than 64", d->c->name, ne);
    nb_env_get_state(d->env, env);
    int j = 0;
    snprintf(sv[j], sizeof sv[j], "%" PRId64 " %" PRId64 " %" PRId64 " %.17g %.17g %.17g %" PRId64 " %" PRId64 " %" PRId64,
             d->step, d->updates, d->ep_len, d->ep_ret, d->td, d->best_ret, d->best_step, nb_optim_steps(d->opt),
             d->o.steps);
    mk[j++] = "nabla.dqn.state";
    snprintf(sv[j], sizeof sv[j], "%" PRId64 " %" PRId64 " %" PRId64, m->size, m->next, m->pushed);
    mk[j++] = "nabla.dqn.state.replay";
    nb_rng_to_text(&d->rng_act, sv[j]);
    mk[j++] = "nabla.dqn.state.rng_act";
    nb_rng_to_text(&d->rng_sample, sv[j]);
    mk[j++] = "nabla.dqn.state.rng_sample";
    nb_rng_to_text(&d->rng_episode, sv[j]);
    mk[j++] = "nabla.dqn.state.rng_episode";
    nb_rng_to_text(&d->env->rng, sv[j]);
    mk[j++] = "nabla.dqn.state.rng_env";
    size_t off = 0;
    for (int i = 0; i < ne; i++) off += (size_t)snprintf(sv[j] + off, sizeof sv[j] - off, i ? " %.17g" : "%.17g", env[i]);
    mk[j++] = "nabla.dqn.state.env";
    for (int i = 0; i < j; i++) mv[i] = sv[i];
    for (int i = 0; i < n; i++) {
        mk[j + i] = keys[i];
        mv[j + i] = vals[i];
    }
    int rc = save_file(d, path, mk, mv, j + n, names, ts, k);
    for (int i = 0; i < nown; i++) nb_tensor_free(owned[i]);
    free(names);
    free(ts);
    free(tn);
    free(owned);
    free(mk);
    free(mv);
    return rc;
}

/* The options nb_dqn_save records, read back ("nabla.dqn.steps" is the steps
 * taken; a checkpoint's state holds the steps planned). */
static int read_opts(const nb_safetensors *st, const char *path, nb_dqn_opts *o) {
    static const char *const keys[] = {"steps", "updates", "lr", "lr_end", "gamma", "buffer", "batch",
                                       "epsilon_start", "epsilon_end", "epsilon_steps", "target_every", "huber",
                                       "learn_start", "train_every", "reward_scale", "reward_log", "grad_clip",
                                       "double_q", "augment", "select_every", "select_episodes", "seed"};
    double v[sizeof keys / sizeof *keys];
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char key[64];
        snprintf(key, sizeof key, "nabla.dqn.%s", keys[i]);
        if (get_numbers(st, path, key, &v[i], 1)) return -1;
        /* the integer settings are cast below */
        bool real = !strcmp(keys[i], "lr") || !strcmp(keys[i], "lr_end") || !strcmp(keys[i], "gamma") ||
                    !strcmp(keys[i], "epsilon_start") || !strcmp(keys[i], "epsilon_end") || !strcmp(keys[i], "reward_scale") || !strcmp(keys[i], "grad_clip") ||
                    !strcmp(keys[i], "seed"); /* read exactly below */
        if (!real && need_counts(path, key, &v[i], 1)) return -1;
    }
    const char *seed = nb_st_meta(st, "nabla.dqn.seed");
    char *end;
    errno = 0;
    uint64_t sd = strtoull(seed, &end, 10); /* exact, not through a double */
    if (errno || *end) return nb_error("%s: 'nabla.dqn.seed' in __metadata__ is not an integer", path);
    *o = (nb_dqn_opts){.steps = (int64_t)v[0], .lr = v[2], .lr_end = v[3], .gamma = v[4], .buffer = (int64_t)v[5],
                       .batch = (int64_t)v[6], .eps_start = v[7], .eps_end = v[8], .eps_steps = (int64_t)v[9],
                       .target_every = (int64_t)v[10], .huber = v[11] != 0, .learn_start = (int64_t)v[12],
                       .train_every = (int64_t)v[13], .reward_scale = v[14], .reward_log = v[15] != 0,
                       .grad_clip = v[16], .double_q = v[17] != 0, .augment = v[18] != 0,
                       .select_every = (int64_t)v[19], .select_episodes = (int64_t)v[20], .seed = sd};
    return 0;
}

nb_dqn *nb_dqn_resume(const char *path, nb_safetensors **out_st) {
    if (out_st) *out_st = NULL;
    nb_safetensors *st;
    nb_net *q = nb_net_load(path, &st);
    if (!q) return NULL;
    nb_dqn *d = NULL;
    const char *env = nb_st_meta(st, "nabla.dqn.env");
    nb_dqn_opts o;
    if (!env) {
        nb__st_not_a(st, path, "a DQN model");
        goto fail;
    }
    if (!nb_st_meta(st, "nabla.dqn.state")) {
        nb_error("%s: holds no training state to resume (the model of a finished run)", path);
        goto fail;
    }
    double c[9], r[3], ev[64];
    if (read_opts(st, path, &o) || get_numbers(st, path, "nabla.dqn.state", c, 9)) goto fail;
    /* c[3], c[4] and c[5] are returns and a loss; the others are counts */
    if (need_counts(path, "nabla.dqn.state", c, 3) || need_counts(path, "nabla.dqn.state", c + 6, 3)) goto fail;
    o.steps = (int64_t)c[8];
    if (!(d = nb_dqn_new(env, &o, nb_net_source(q)))) { /* a stored setting out of range: name the file */
        if (!strstr(nb_errmsg(), path)) nb_error("%s: %s", path, nb_errmsg());
        goto fail;
    }
    int ne = nb_env_state_size(d->env);
    if (get_numbers(st, path, "nabla.dqn.state.replay", r, 3) || need_counts(path, "nabla.dqn.state.replay", r, 3) ||
        get_numbers(st, path, "nabla.dqn.state.env", ev, ne) || get_rng(st, path, "nabla.dqn.state.rng_act", &d->rng_act) ||
        get_rng(st, path, "nabla.dqn.state.rng_sample", &d->rng_sample) ||
        get_rng(st, path, "nabla.dqn.state.rng_episode", &d->rng_episode))
        goto fail;
    nb_replay *m = d->mem;
    d->step = (int64_t)c[0];
    d->updates = (int64_t)c[1];
    d->ep_len = (int64_t)c[2];
    d->ep_ret = c[3];
    d->td = c[4];
    d->best_ret = c[5];
    d->best_step = (int64_t)c[6];
    if (!(d->step >= 0 && d->step <= o.steps && r[0] >= 0 && r[0] <= (double)m->cap && r[1] >= 0 &&
          r[1] < (double)m->cap && r[2] >= r[0] && c[7] >= 0)) {
        nb_error("%s: the training state is inconsistent (step %g of %lld, replay %g of %lld)", path, c[0],
                 (long long)o.steps, r[0], (long long)m->cap);
        goto fail;
    }
    m->size = (int64_t)r[0];
    m->next = (int64_t)r[1];
    m->pushed = (int64_t)r[2];
    nb_optim_set_steps(d->opt, (int64_t)c[7]);
    /* Q's weights (nb_net_load checked them), the target network's, Adam's. */
    nb_param *qp, *tp;
    nb_net_params(q, &qp);
    for (int i = 0; i < d->np; i++) nb_copy_into(d->params[i].t, qp[i].t);
    if (d->target) {
        nb_net_params(d->target, &tp);
        for (int i = 0; i < d->np; i++) {
            char name[32];
            snprintf(name, sizeof name, "dqn.target.%d", i);
            nb_tensor *t = nb_st_get(st, name);
            if (!t || t->size != tp[i].t->size) {
                nb_error("%s: the checkpoint's '%s' is %s", path, name, t ? "of the wrong size" : "missing");
                goto fail;
            }
            nb_copy_into(tp[i].t, t);
        }
    }
    const char **onames;
    nb_tensor **ot;
    int no = nb_optim_state(d->opt, &onames, &ot);
    for (int i = 0; i < no; i++) {
        nb_tensor *t = nb_st_get(st, onames[i]);
        if (!t || t->size != ot[i]->size) {
            nb_error("%s: the checkpoint's '%s' is %s", path, onames[i], t ? "of the wrong size" : "missing");
            goto fail;
        }
        nb_copy_into(ot[i], t);
    }
    int64_t O = m->obs, S = m->size, A = m->na, esz = m->bytes ? 1 : (int64_t)sizeof(float);
    if (unpack_bytes(st, path, "dqn.obs", d->obs, O * (int64_t)sizeof(float)) ||
        unpack_bytes(st, path, "dqn.replay.s", m->bytes ? (void *)m->sb : (void *)m->sf, S * O * esz) ||
        unpack_bytes(st, path, "dqn.replay.s2", m->bytes ? (void *)m->s2b : (void *)m->s2f, S * O * esz) ||
        unpack_bytes(st, path, "dqn.replay.a", m->a, S * (int64_t)sizeof(int32_t)) ||
        unpack_bytes(st, path, "dqn.replay.r", m->r, S * (int64_t)sizeof(float)) ||
        unpack_bytes(st, path, "dqn.replay.term", m->term, S) ||
        unpack_bytes(st, path, "dqn.replay.legal2", m->legal2, S * A))
        goto fail;
    for (int64_t i = 0; i < S; i++)
        if (m->a[i] < 0 || m->a[i] >= A) {
            nb_error("%s: the replay memory holds action %d, outside [0, %lld)", path, m->a[i], (long long)A);
            goto fail;
        }
    if (d->best && d->best_step >= 0) {
        int64_t nbest = 0;
        for (int i = 0; i < d->np; i++) nbest += d->params[i].t->size;
        if (unpack_bytes(st, path, "dqn.best", d->best, nbest * (int64_t)sizeof(float))) goto fail;
    }
    /* The episode in progress: its state and its own random stream. */
    if (nb_env_set_state(d->env, ev) || get_rng(st, path, "nabla.dqn.state.rng_env", &d->env->rng)) {
        if (!strstr(nb_errmsg(), path)) nb_error("%s: the environment's state: %s", path, nb_errmsg());
        goto fail;
    }
    if (d->env->done) {
        nb_error("%s: the stored episode is already over", path);
        goto fail;
    }
    nb_net_free(q);
    if (out_st) *out_st = st;
    else nb_st_free(st);
    return d;
fail:
    nb_dqn_free(d);
    nb_net_free(q);
    nb_st_free(st);
    return NULL;
}

nb_net *nb_dqn_load(const char *path, char *env, size_t n) {
    nb_safetensors *st;
    nb_net *net = nb_net_load(path, &st);
    if (!net) return NULL;
    const char *name = nb_st_meta(st, "nabla.dqn.env");
    const nb_env_class *c = NULL;
    if (!name) nb__st_not_a(st, path, "a DQN model");
    else if (!(c = find_class(name))) nb_error("%s: unknown environment '%s' in __metadata__", path, name);
    if (!c || check_net(net, c, path)) {
        nb_st_free(st);
        nb_net_free(net);
        return NULL;
    }
    snprintf(env, n, "%s", c->name);
    nb_st_free(st);
    return net;
}

/* --- evaluation ------------------------------------------------------------ */

int nb_dqn_evaluate(nb_net *q, const char *env, int episodes, uint64_t seed, double eps, nb_rl_episode *out) {
    const nb_env_class *c = find_class(env);
    if (!c) return -1;
    if (episodes < 1) return nb_error("evaluate: need at least one episode, got %d", episodes);
    if (!(eps >= 0 && eps <= 1)) return nb_error("evaluate: epsilon must be in [0, 1], got %g", eps);
    if (q && check_net(q, c, "evaluate")) return -1;
    int na = c->nactions;
    nb_env **envs = calloc((size_t)episodes, sizeof *envs);
    int64_t O = nb_shape_numel(c->obs_nd, c->obs_shape);
    float *obs = malloc(sizeof(float) * (size_t)(O * episodes));
    int *live = malloc(sizeof(int) * (size_t)episodes);
    bool *legal = malloc((size_t)(na * episodes));
    if (!envs || !obs || !live || !legal) nb_oom("the evaluation episodes", 0);
    for (int i = 0; i < episodes; i++) {
        envs[i] = nb_env_new(c->name);
        nb_env_reset(envs[i], seed + (uint64_t)i);
        out[i] = (nb_rl_episode){0};
    }
    nb_rng r;
    nb_rng_seed(&r, seed, 4);
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    for (;;) {
        /* One forward pass for every episode still running. */
        int n = 0;
        for (int i = 0; i < episodes; i++)
            if (!nb_env_done(envs[i])) {
                nb_env_observe(envs[i], obs + (int64_t)n * O);
                nb_env_legal(envs[i], legal + n * na);
                live[n++] = i;
            }
        if (!n) break;
        nb_tensor *v = q ? q_values(q, obs, n) : NULL;
        for (int k = 0; k < n; k++) {
            int i = live[k];
            bool *lg = legal + k * na;
            int a = !q || (eps > 0 && nb_rng_uniform(&r) < eps) ? random_legal(&r, lg, na) : masked_argmax(v->data + k * na, lg, na);
            bool term, trunc;
            out[i].ret += nb_env_step(envs[i], a, &term, &trunc);
            out[i].length++;
            if (term || trunc) {
                out[i].truncated = trunc;
                out[i].highest = highest_tile(envs[i]);
            }
        }
        nb_arena_reset();
    }
    nb_arena_use(old);
    nb_arena_free(arena);
    for (int i = 0; i < episodes; i++) nb_env_free(envs[i]);
    free(envs);
    free(obs);
    free(live);
    free(legal);
    return 0;
}
