/* dqn.h — the insides of deep Q-learning that its files share and users
 * never see: the replay memory (replay.c) and the learner (dqn.c), whose
 * every part a checkpoint (dqn_file.c) writes and reads back, and the check
 * that a network fits an environment. */
#ifndef NB_MODELS_DQN_H
#define NB_MODELS_DQN_H

#include "../core/internal.h"
#include "env.h"

/* The ring of transitions: slots [0, size) are filled, next is overwritten
 * next; observations are floats or, for 0/1 ones, bytes. */
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

/* Whether a network fits an environment: its inputs and outputs. 0, or -1
 * with nb_error starting with what. */
int nb__dqn_check_net(nb_net *net, const nb_env_class *c, const char *what);

#endif
