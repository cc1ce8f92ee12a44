/* dqn_file.c — the files of deep Q-learning: the model file (Q, the
 * options and the selected step), checkpoints that resume a run exactly, and
 * loading a model for play and evaluation. */
#include "../core/internal.h"
#include "dqn.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>

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
    char (*tn)[32] = nb__xmalloc("a DQN checkpoint", (size_t)(d->np ? d->np : 1), sizeof *tn);
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
    else if (!(c = nb__env_class(name))) nb_error("%s: unknown environment '%s' in __metadata__", path, name);
    if (!c || nb__dqn_check_net(net, c, path)) {
        nb_st_free(st);
        nb_net_free(net);
        return NULL;
    }
    snprintf(env, n, "%s", c->name);
    nb_st_free(st);
    return net;
}
