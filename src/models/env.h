/* env.h — the interface every reinforcement-learning environment implements
 * (CartPole, 2048, Catch): a class of functions over a private state, so the
 * DQN learner and the command drive all games the same way. */
#ifndef NB_ENV_H
#define NB_ENV_H

#include "nabla.h"

/* One game. The state is an opaque struct of `size` bytes; every random draw
 * goes through the rng the caller passes, so a seed fixes a whole episode. */
typedef struct nb_env_class {
    const char *name;           /* "cartpole", as on the command line */
    int nactions;
    const char *const *action_names;
    int obs_nd;                 /* observation shape, without a batch dim */
    int64_t obs_shape[3];
    bool obs_binary;            /* every observation value is 0 or 1 (replay stores bytes) */
    int nstate;                 /* numbers in get_state/set_state */
    size_t size;                /* bytes of the state struct */
    void (*reset)(void *s, nb_rng *r);
    /* Applies `action`; the reward, and whether the episode ended by the
     * game's rules (terminal) or by a time limit (truncated). */
    float (*step)(void *s, int action, nb_rng *r, bool *terminal, bool *truncated);
    void (*observe)(const void *s, float *obs);
    /* Fills mask[nactions] and returns the number of legal actions; NULL
     * means every action is always legal. */
    int (*legal)(const void *s, bool *mask);
    /* Text picture of the state (rows ending in '\n'); returns the length
     * snprintf would have written. */
    int (*render)(const void *s, char *buf, size_t n);
    /* Symmetries of the game: nsym transformations (0 is the identity)
     * under which the dynamics are unchanged. symmetry(k, ...) maps an
     * observation in place, and an action and a legal mask when not NULL. */
    int nsym;
    void (*symmetry)(int k, float *obs, int *action, bool *legal);
    void (*get_state)(const void *s, double *v);
    int (*set_state)(void *s, const double *v); /* 0, or -1 with nb_errmsg() */
    /* The built-in Q-network (a NET.cfg text) and the tuned defaults. */
    const char *net_cfg;
    nb_dqn_opts defaults;
} nb_env_class;

extern const nb_env_class nb_env_cartpole_class, nb_env_2048_class, nb_env_catch_class;

/* An environment (env.c): its class, its own random stream and state. The
 * learner's checkpoint (dqn_file.c) saves and restores the stream and
 * reads whether the stored episode is over. */
struct nb_env {
    const nb_env_class *c;
    nb_rng rng;
    void *s;
    bool done;
};

/* The class of the environment called name, or NULL with nb_error naming
 * the known ones. */
const nb_env_class *nb__env_class(const char *name);
/* The 2048 tile to report at the end of a game (0 for the other games). */
double nb__env_highest_tile(const nb_env *e);

#endif
