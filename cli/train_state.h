/* train_state.h — what a `nabla train` run must remember to be resumed with
 * the same result: settings, counters, random streams and the CSV log. */
#ifndef NB_TRAIN_STATE_H
#define NB_TRAIN_STATE_H

#include "cli.h"
#include "nabla.h"

typedef struct nb_train_state {
    /* settings */
    int64_t epochs, batch, max_steps;
    double lr, momentum, weight_decay, l1_activation, adversarial, grad_clip;
    bool nesterov, shuffle, json;
    uint64_t seed;
    const char *optim, *schedule, *data, *out, *log;
    /* The training images' brightness: mean and standard deviation over the
     * examples of each example's mean value (for `nabla predict`'s check
     * that an input looks like the training data); 0, 0 if unknown. */
    double input_mean, input_mean_sd;
    /* The same for the ring of pixels two wide along an image's edges
     * (images of at least 8x8 only; else 0, 0). */
    double input_edge, input_edge_sd;
    /* progress */
    int64_t epoch;      /* finished epochs */
    int64_t epoch_pos;  /* batches done in the epoch in progress */
    int64_t step, images;
    /* The totals of the epoch in progress over its first epoch_pos batches
     * (every rank's), so that a resumed epoch's log row and printed figures
     * are those of an uninterrupted one: sum of the batch losses weighted by
     * their examples, examples, correct predictions. */
    double epoch_loss;
    int64_t epoch_seen, epoch_correct;
    nb_rng rng_shuffle; /* advances once per epoch (the permutation) */
    nb_rng rng_epoch;   /* rng_shuffle as it was when the current epoch began */
    nb_rng rng_dropout;
    /* storage */
    char *owned[16];
    int nowned;
    nb_cli_log csv;     /* the CSV log's rows, header first */
} nb_train_state;

void nb_train_state_defaults(nb_train_state *s);
/* Seeds the shuffle and dropout streams from s->seed (streams 1 and 2; the
 * initialization uses stream 0). */
void nb_train_state_seed(nb_train_state *s);
/* Reads settings and progress from a checkpoint's metadata. */
int nb_train_state_read(nb_train_state *s, const nb_safetensors *st, const char *path);
/* Writes the network, the optimizer state and s as a checkpoint, atomically. */
int nb_train_state_save(const nb_train_state *s, const nb_net *net, nb_optim *opt, const char *path);
/* The learning rate of step `step` (steps done before it) under s->schedule: cosine decays from
 * lr to 0 over all epochs (nb_lr_cosine), step multiplies by 0.1 at 50% and
 * 75% of them, constant keeps lr. A function of the step count alone, so a
 * resumed run follows the same curve. */
double nb_train_lr(const nb_train_state *s, int64_t step, int64_t steps_per_epoch);
nb_optim *nb_train_make_optim(const nb_train_state *s, nb_param *params, int np);
int nb_train_state_restore_optim(const nb_train_state *s, nb_optim *opt, const nb_safetensors *st, const char *path);
/* --init: copies the parameters of another model (names and shapes must match). */
int nb_train_load_weights(nb_net *net, const char *path);
/* The CSV log: open keeps the rows of finished epochs when resuming. */
int nb_train_log_open(nb_train_state *s, bool resuming);
void nb_train_log_row(nb_train_state *s, int64_t epoch, double train_loss, double train_acc, const nb_eval_result *ev,
                      double seconds);
int nb_train_log_write(const nb_train_state *s);
void nb_train_state_free(nb_train_state *s);
/* An example's mean value and, for images of at least 8x8 (nd = 3), the mean of
 * its edge ring (else -1): the statistics nb_train_input_stats summarizes. */
void nb_input_brightness(int nd, const int64_t *shape, const uint8_t *u8, const float *f32, double *mean, double *edge);
/* Fills s->input_mean, s->input_edge and their deviations from a data set. */
void nb_train_input_stats(nb_train_state *s, const nb_dataset *d);

#endif
