/* dqn.c — deep Q-learning with experience replay (notes §4.3): acting
 * epsilon-greedily, training on minibatches of the replay memory against a
 * target network, model selection on held-out seeds and greedy evaluation.
 * The equations are in rl.c, the environments in env.c, the replay memory
 * in replay.c and the model and checkpoint files in dqn_file.c. */
#include "../core/internal.h"
#include "dqn.h"
#include <math.h>
#include <stdlib.h>

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

int nb_dqn_defaults(const char *env, nb_dqn_opts *o) {
    const nb_env_class *c = nb__env_class(env);
    if (!c) return -1;
    *o = c->defaults;
    o->seed = 1;
    return 0;
}

const char *nb_dqn_net_cfg(const char *env) {
    const nb_env_class *c = nb__env_class(env);
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
int nb__dqn_check_net(nb_net *net, const nb_env_class *c, const char *what) {
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
    if (nb_net_build(net, c->obs_nd, c->obs_shape, init) || nb__dqn_check_net(net, c, "Q-network")) {
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
    const nb_env_class *c = nb__env_class(env);
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

/* One update of Q from a minibatch drawn uniformly from D. A TD loss that
 * is not finite (the weights or the targets overflowed: a learning rate too
 * large) takes no step and is an error: every later update would only
 * spread the NaN. */
static int update(nb_dqn *d) {
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
    float lv = nb_item(loss);
    if (!isfinite(lv))
        return nb_error("the TD loss became %g at step %lld, update %lld: the Q-network's weights or its targets "
                        "are no longer finite (try a smaller --lr)", (double)lv, (long long)d->step,
                        (long long)d->updates + 1);
    nb_backward(loss);
    if (d->o.lr_end > 0 && d->o.lr_end < d->o.lr)
        nb_optim_set_lr(d->opt, nb_lr_cosine((float)d->o.lr, d->step, d->o.steps, (float)d->o.lr_end));
    if (d->o.grad_clip > 0) nb_clip_grad_norm(d->params, d->np, (float)d->o.grad_clip);
    nb_optim_step_zero(d->opt, NULL, 0); /* step, then zero the gradients, in one pass */
    d->updates++;
    return 0;
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
    if (nb_replay_size(d->mem) >= d->o.learn_start && nb_replay_size(d->mem) >= 1 && d->step % d->o.train_every == 0 &&
        update(d)) {
        nb_arena_reset();
        nb_arena_use(old);
        return -1;
    }
    if (d->target && d->step % d->o.target_every == 0) sync_target(d);
    if (d->o.select_every > 0 && d->step <= d->o.steps && (d->step % d->o.select_every == 0 || d->step == d->o.steps)) {
        validate(d);
        if (d->step == d->o.steps) restore_best(d);
    }
    int done = term || trunc;
    if (done) {
        if (ep) *ep = (nb_rl_episode){d->ep_ret, d->ep_len, trunc, nb__env_highest_tile(d->env)};
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

int nb_dqn_update(nb_dqn *d) {
    if (nb_replay_size(d->mem) < 1) return nb_error("dqn update: the replay memory is empty (take steps first)");
    nb_arena *old = nb_arena_use(d->arena);
    int rc = update(d);
    nb_arena_reset();
    nb_arena_use(old);
    return rc;
}

int64_t nb_dqn_steps(const nb_dqn *d) { return d->step; }
int64_t nb_dqn_updates(const nb_dqn *d) { return d->updates; }
double nb_dqn_epsilon(const nb_dqn *d) { return nb_rl_epsilon(d->o.eps_start, d->o.eps_end, d->o.eps_steps, d->step); }
double nb_dqn_td_error(const nb_dqn *d) { return d->td; }
nb_net *nb_dqn_net(nb_dqn *d) { return d->q; }
double nb_dqn_selected_return(const nb_dqn *d) { return d->best_ret; }
int64_t nb_dqn_selected_step(const nb_dqn *d) { return d->best_step; }
const nb_dqn_opts *nb_dqn_options(const nb_dqn *d) { return &d->o; }

/* --- evaluation ------------------------------------------------------------ */

int nb_dqn_evaluate(nb_net *q, const char *env, int episodes, uint64_t seed, double eps, nb_rl_episode *out) {
    const nb_env_class *c = nb__env_class(env);
    if (!c) return -1;
    if (episodes < 1) return nb_error("evaluate: need at least one episode, got %d", episodes);
    if (!(eps >= 0 && eps <= 1)) return nb_error("evaluate: epsilon must be in [0, 1], got %g", eps);
    if (q && nb__dqn_check_net(q, c, "evaluate")) return -1;
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
                out[i].highest = nb__env_highest_tile(envs[i]);
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
