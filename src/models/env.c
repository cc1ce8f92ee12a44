/* env.c — the environments' common front end (nb_env_*): the classes of
 * CartPole, 2048 and Catch (env_*.c) looked up by name, each episode seeded
 * on its own random stream, and the checks every game shares. */
#include "../core/internal.h"
#include "env.h"
#include <math.h>
#include <stdlib.h>

static const nb_env_class *const CLASSES[] = {&nb_env_cartpole_class, &nb_env_2048_class, &nb_env_catch_class};
#define NCLASSES (int)(sizeof CLASSES / sizeof CLASSES[0])

const nb_env_class *nb__env_class(const char *name) {
    for (int i = 0; i < NCLASSES; i++)
        if (name && !strcmp(name, CLASSES[i]->name)) return CLASSES[i];
    nb_error("unknown environment '%s' (expected cartpole, 2048 or catch)", name ? name : "(null)");
    return NULL;
}

nb_env *nb_env_new(const char *name) {
    const nb_env_class *c = nb__env_class(name);
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
double nb__env_highest_tile(const nb_env *e) {
    if (e->c != &nb_env_2048_class) return 0;
    double v[32], best = 0;
    e->c->get_state(e->s, v);
    for (int i = 0; i < 16; i++) best = fmax(best, v[i]);
    return best;
}
