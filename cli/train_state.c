/* train_state.c — checkpoint metadata, optimizer state and the CSV log of
 * `nabla train` (see train_state.h). */
#include "train_state.h"
#include "cli.h"
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *LOG_HEADER =
    "epoch,train_loss,train_accuracy,test_loss,test_accuracy,adversarial_accuracy,zero_fraction,seconds";

void nb_train_state_defaults(nb_train_state *s) {
    memset(s, 0, sizeof *s);
    s->epochs = 10;
    s->batch = 128;
    s->lr = 0.05;
    s->momentum = 0.9;
    s->seed = 1;
    s->shuffle = true;
    s->optim = "sgd";
    s->schedule = "cosine";
    nb_train_state_seed(s);
}

void nb_train_state_seed(nb_train_state *s) {
    nb_rng_seed(&s->rng_shuffle, s->seed, 1);
    nb_rng_seed(&s->rng_dropout, s->seed, 2);
    s->rng_epoch = s->rng_shuffle;
}

/* --- metadata ------------------------------------------------------------ */

static const char *own(nb_train_state *s, const char *v) {
    if (s->nowned == (int)(sizeof s->owned / sizeof s->owned[0])) return v;
    return s->owned[s->nowned++] = nb__xstrdup("a checkpoint's settings", v);
}

/* A number the checkpoint must hold, finite (nb_cli_meta_number): this copy
 * of its check let inf through, and a running loss of inf was logged. */
static int get_f64(const nb_safetensors *st, const char *path, const char *key, double *out) {
    if (!nb_st_meta(st, key)) return nb_error("%s: not a training checkpoint ('%s' missing from __metadata__)", path, key);
    return nb_cli_meta_number(st, path, key, out);
}

static int get_rng(const nb_safetensors *st, const char *path, const char *key, nb_rng *r) {
    const char *v = nb_st_meta(st, key);
    if (!v) return nb_error("%s: not a training checkpoint ('%s' missing from __metadata__)", path, key);
    if (nb_rng_from_text(v, r))
        return nb_error("%s: __metadata__ '%s': expected a generator state 'hex:hex', got '%s'", path, key, v);
    return 0;
}

int nb_train_state_read(nb_train_state *s, const nb_safetensors *st, const char *path) {
    int64_t shuffle = 1, nesterov = 0, seed = 1;
    if (nb_cli_meta_count(st, path, "nabla.epochs", &s->epochs) || nb_cli_meta_count(st, path, "nabla.batch", &s->batch) ||
        nb_cli_meta_count(st, path, "nabla.max_steps", &s->max_steps) || nb_cli_meta_count(st, path, "nabla.epoch", &s->epoch) ||
        nb_cli_meta_count(st, path, "nabla.epoch_pos", &s->epoch_pos) || nb_cli_meta_count(st, path, "nabla.step", &s->step) ||
        nb_cli_meta_count(st, path, "nabla.images", &s->images) || nb_cli_meta_count(st, path, "nabla.shuffle", &shuffle) ||
        nb_cli_meta_count(st, path, "nabla.nesterov", &nesterov) || nb_cli_meta_count(st, path, "nabla.seed", &seed) ||
        get_f64(st, path, "nabla.lr", &s->lr) || get_f64(st, path, "nabla.momentum", &s->momentum) ||
        get_f64(st, path, "nabla.weight_decay", &s->weight_decay) ||
        get_f64(st, path, "nabla.l1_activation", &s->l1_activation) ||
        get_f64(st, path, "nabla.adversarial", &s->adversarial) ||
        get_rng(st, path, "nabla.rng_epoch", &s->rng_epoch) || get_rng(st, path, "nabla.rng_dropout", &s->rng_dropout))
        return -1;
    const char *optim = nb_st_meta(st, "nabla.optim"), *data = nb_st_meta(st, "nabla.data");
    const char *schedule = nb_st_meta(st, "nabla.schedule");
    if (!optim || !data || !schedule) return nb_error("%s: not a training checkpoint (optimizer or data set missing from __metadata__)", path);
    if (s->batch < 1) return nb_error("%s: __metadata__ 'nabla.batch' must be positive", path);
    s->optim = own(s, optim);
    s->schedule = own(s, schedule);
    s->data = own(s, data);
    s->shuffle = shuffle != 0;
    s->nesterov = nesterov != 0;
    s->seed = (uint64_t)seed;
    /* Resume from the start of the epoch in progress: the shuffle stream is
     * replayed from there. */
    s->rng_shuffle = s->rng_epoch;
    /* --steps limits one invocation; a resumed run goes on unless given again. */
    s->max_steps = 0;
    /* Optional (checkpoints before they were recorded lack them), each
     * group whole: one key of a group alone is a damaged file, whose other
     * keys would be read as 0 (an epoch's sums, a brightness without its
     * spread). */
    static const char *const mean_keys[] = {"nabla.input_mean", "nabla.input_mean_sd"};
    static const char *const edge_keys[] = {"nabla.input_edge", "nabla.input_edge_sd"};
    static const char *const epoch_keys[] = {"nabla.epoch_loss", "nabla.epoch_seen", "nabla.epoch_correct"};
    int has;
    if ((has = nb_cli_meta_together(st, path, mean_keys, 2)) < 0 ||
        (has && (get_f64(st, path, "nabla.input_mean", &s->input_mean) ||
                 get_f64(st, path, "nabla.input_mean_sd", &s->input_mean_sd))))
        return -1;
    if (nb_st_meta(st, "nabla.grad_clip") && get_f64(st, path, "nabla.grad_clip", &s->grad_clip)) return -1;
    if ((has = nb_cli_meta_together(st, path, epoch_keys, 3)) < 0 ||
        (has && (get_f64(st, path, "nabla.epoch_loss", &s->epoch_loss) ||
                 nb_cli_meta_count(st, path, "nabla.epoch_seen", &s->epoch_seen) ||
                 nb_cli_meta_count(st, path, "nabla.epoch_correct", &s->epoch_correct))))
        return -1;
    if ((has = nb_cli_meta_together(st, path, edge_keys, 2)) < 0 ||
        (has && (get_f64(st, path, "nabla.input_edge", &s->input_edge) ||
                 get_f64(st, path, "nabla.input_edge_sd", &s->input_edge_sd))))
        return -1;
    return 0;
}

void nb_input_brightness(int nd, const int64_t *shape, const uint8_t *u8, const float *f32, double *mean, double *edge) {
    int64_t per = 1;
    for (int k = 0; k < nd; k++) per *= shape[k];
    double scale = u8 ? 1 / 255.0 : 1; /* images enter the network as pixel/255 */
#define PIX(j) (u8 ? u8[j] * scale : (double)f32[j])
    double m = 0;
    for (int64_t j = 0; j < per; j++) m += PIX(j);
    *mean = m / (double)(per ? per : 1);
    *edge = -1;
    if (nd != 3 || shape[1] < 8 || shape[2] < 8) return;
    int64_t H = shape[1], W = shape[2], plane = H * W, count = 0;
    double e = 0;
    for (int64_t c = 0; c < shape[0]; c++)
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++)
                if (y < 2 || y >= H - 2 || x < 2 || x >= W - 2) {
                    e += PIX(c * plane + y * W + x);
                    count++;
                }
#undef PIX
    *edge = e / (double)count;
}

void nb_train_input_stats(nb_train_state *s, const nb_dataset *d) {
    int64_t per = 1;
    for (int k = 0; k < d->nd; k++) per *= d->shape[k];
    double sum = 0, sum2 = 0, esum = 0, esum2 = 0;
    bool edges = true;
    for (int64_t i = 0; i < d->n; i++) {
        double m, e;
        nb_input_brightness(d->nd, d->shape, d->u8 ? d->u8 + i * per : NULL, d->f32 ? d->f32 + i * per : NULL, &m, &e);
        sum += m;
        sum2 += m * m;
        edges &= e >= 0;
        esum += e;
        esum2 += e * e;
    }
    double n = (double)(d->n ? d->n : 1), mean = sum / n, var = sum2 / n - mean * mean;
    s->input_mean = mean;
    s->input_mean_sd = var > 0 ? sqrt(var) : 0;
    double emean = esum / n, evar = esum2 / n - emean * emean;
    s->input_edge = edges ? emean : 0;
    s->input_edge_sd = edges && evar > 0 ? sqrt(evar) : 0;
}

int nb_train_state_save(const nb_train_state *s, const nb_net *net, nb_optim *opt, const char *path) {
    char v[32][64];
    const char *keys[32], *vals[32];
    int n = 0;
#define PUT(k, ...) (keys[n] = (k), snprintf(v[n], sizeof v[n], __VA_ARGS__), vals[n] = v[n], n++)
    /* the settings as the user wrote them (0.1, not 0.10000000000000001) */
#define PUTD(k, x) (keys[n] = (k), nb_cli_shortest(v[n], sizeof v[n], (x)), vals[n] = v[n], n++)
    PUT("nabla.epochs", "%" PRId64, s->epochs);
    PUT("nabla.batch", "%" PRId64, s->batch);
    PUT("nabla.max_steps", "%" PRId64, s->max_steps);
    PUT("nabla.epoch", "%" PRId64, s->epoch);
    PUT("nabla.epoch_pos", "%" PRId64, s->epoch_pos);
    PUT("nabla.step", "%" PRId64, s->step);
    PUT("nabla.images", "%" PRId64, s->images);
    PUT("nabla.shuffle", "%d", s->shuffle);
    PUT("nabla.nesterov", "%d", s->nesterov);
    PUT("nabla.seed", "%" PRIu64, s->seed);
    PUTD("nabla.lr", s->lr);
    PUTD("nabla.momentum", s->momentum);
    PUTD("nabla.weight_decay", s->weight_decay);
    PUTD("nabla.l1_activation", s->l1_activation);
    PUTD("nabla.adversarial", s->adversarial);
    PUTD("nabla.grad_clip", s->grad_clip);
    PUT("nabla.epoch_loss", "%.17g", s->epoch_loss);
    PUT("nabla.epoch_seen", "%" PRId64, s->epoch_seen);
    PUT("nabla.epoch_correct", "%" PRId64, s->epoch_correct);
    char re[NB_RNG_TEXT], rd[NB_RNG_TEXT];
    nb_rng_to_text(&s->rng_epoch, re);
    nb_rng_to_text(&s->rng_dropout, rd);
    PUT("nabla.rng_epoch", "%s", re);
    PUT("nabla.rng_dropout", "%s", rd);
    PUT("nabla.optim_steps", "%" PRId64, nb_optim_steps(opt));
    if (s->input_mean_sd > 0) {
        PUT("nabla.input_mean", "%.9g", s->input_mean);
        PUT("nabla.input_mean_sd", "%.9g", s->input_mean_sd);
    }
    if (s->input_edge_sd > 0) {
        PUT("nabla.input_edge", "%.9g", s->input_edge);
        PUT("nabla.input_edge_sd", "%.9g", s->input_edge_sd);
    }
#undef PUT
#undef PUTD
    keys[n] = "nabla.optim";
    vals[n++] = s->optim;
    keys[n] = "nabla.data";
    vals[n++] = s->data;
    keys[n] = "nabla.schedule";
    vals[n++] = s->schedule;
    nb_cli_extras x;
    nb_cli_extras_init(&x, opt, 0);
    int rc = nb_net_save(net, path, keys, vals, n, x.names, x.ts, x.n);
    nb_cli_extras_free(&x);
    return rc;
}

double nb_train_lr(const nb_train_state *s, int64_t step, int64_t steps_per_epoch) {
    int64_t total = s->epochs * steps_per_epoch;
    if (!strcmp(s->schedule, "cosine")) return nb_lr_cosine((float)s->lr, step, total, 0.f);
    if (!strcmp(s->schedule, "step")) {
        double f = (double)step / (double)(total ? total : 1);
        return s->lr * (f >= 0.75 ? 0.01 : f >= 0.5 ? 0.1 : 1.0);
    }
    return s->lr;
}

nb_optim *nb_train_make_optim(const nb_train_state *s, nb_param *params, int np) {
    nb_optim_opts o = {0};
    o.kind = !strcmp(s->optim, "adam") ? NB_ADAM : !strcmp(s->optim, "adamw") ? NB_ADAMW : NB_SGD;
    o.lr = (float)s->lr;
    o.momentum = o.kind == NB_SGD ? (float)s->momentum : 0.f;
    o.nesterov = s->nesterov;
    o.weight_decay = (float)s->weight_decay;
    return nb_optim_new(&o, params, np);
}

int nb_train_state_restore_optim(const nb_train_state *s, nb_optim *opt, const nb_safetensors *st, const char *path) {
    char hint[64];
    snprintf(hint, sizeof hint, " (was it trained with --optim %s?)", s->optim);
    if (nb_cli_optim_restore(opt, st, path, hint)) return -1;
    int64_t steps;
    if (nb_cli_meta_count(st, path, "nabla.optim_steps", &steps)) return -1;
    nb_optim_set_steps(opt, steps);
    return 0;
}

int nb_train_load_weights(nb_net *net, const char *path) {
    nb_safetensors *st = nb_st_read(path);
    if (!st) return -1;
    nb_param *params;
    const char **names;
    int np = nb_net_params(net, &params);
    nb_net_param_names(net, &names);
    int rc = 0;
    for (int i = 0; i < np && !rc; i++) {
        nb_tensor *t = nb_st_get(st, names[i]);
        char a[96], b[96];
        if (!t) rc = nb_error("%s: tensor '%s' is missing (the network needs it)", path, names[i]);
        else if (!nb_same_shape(t, params[i].t))
            rc = nb_error("%s: tensor '%s' has shape %s, the network expects %s", path, names[i],
                          nb_shape_str(t, a, sizeof a), nb_shape_str(params[i].t, b, sizeof b));
        else nb_copy_into(params[i].t, t);
    }
    nb_st_free(st);
    return rc;
}

/* --- CSV log --------------------------------------------------------------- */

int nb_train_log_open(nb_train_state *s, bool resuming) {
    /* Keep the rows of finished epochs; a partial epoch is trained again. */
    return nb_cli_log_open(&s->csv, s->log, LOG_HEADER, resuming, 1, s->epoch);
}

void nb_train_log_row(nb_train_state *s, int64_t epoch, double train_loss, double train_acc, const nb_eval_result *ev,
                      double seconds) {
    if (!s->log) return;
    char line[256];
    snprintf(line, sizeof line, "%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.3f", (long long)epoch, train_loss, train_acc,
             ev->loss, ev->accuracy, ev->adv_accuracy, ev->zero_fraction, seconds);
    /* A partial epoch's row is replaced when that epoch finishes. */
    nb_cli_log_put(&s->csv, line);
}

int nb_train_log_write(const nb_train_state *s) { return nb_cli_log_write(&s->csv); }

void nb_train_state_free(nb_train_state *s) {
    for (int i = 0; i < s->nowned; i++) free(s->owned[i]);
    nb_cli_log_free(&s->csv);
    s->nowned = 0;
}
