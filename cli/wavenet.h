/* wavenet.h — what the verbs of `nabla wavenet` share across files: the
 * sample rate and log-mel size, the speech folder read as μ-law clips
 * (wavenet_data.c), the bits-per-sample scoring of training's validation
 * and of eval (wavenet_eval.c), --seconds (wavenet.c), and the verbs, which
 * wavenet.c's table dispatches to (argv[0] is the verb; each returns the
 * exit status). */
#ifndef NB_CLI_WAVENET_H
#define NB_CLI_WAVENET_H

#include "cli.h"

#define NB_WN_RATE 16000 /* every clip is read, and every WAV written, at 16 kHz */
#define NB_WN_MELS 80    /* log-mel bands of --cond mel, distance and features */

/* --- data (wavenet_data.c) ---------------------------------------------------- */

typedef struct {
    int32_t *q;       /* μ-law levels */
    int64_t n;
    int speaker;
    int split;        /* 0 train, 1 valid, 2 test */
    nb_tensor *feats; /* [frames, D] or NULL */
} nb_wn_clip;

typedef struct {
    nb_wn_clip *train, *val;
    int ntrain, nval;
    int nspeakers;
    char **speakers;
    bool val_is_train; /* no held-out clip: validation reuses the training clips */
} nb_wn_corpus;

/* Split bits for nb_wn_corpus_load's `keep`. */
#define NB_WN_KEEP_TRAIN 1u
#define NB_WN_KEEP_VALID 2u
#define NB_WN_KEEP_TEST 4u
#define NB_WN_KEEP_ALL 7u

int nb_wn_corpus_load(nb_wn_corpus *c, const char *dir, const char *cond, unsigned keep);
void nb_wn_corpus_free(nb_wn_corpus *c);
unsigned nb_wn_split_mask(const char *split);
int nb_wn_features_finite(const char *path, const nb_tensor *t);

/* --- scoring (wavenet_eval.c) ------------------------------------------------- */

double nb_wn_bits_per_sample(nb_wavenet *m, const nb_wn_clip *clips, int n, int64_t chunk, int64_t max_samples,
                             bool spread, int64_t *count, int64_t hist[NB_WAVENET_CLASSES]);

/* --- the command line (wavenet.c) --------------------------------------------- */

int nb_wn_seconds_to_samples(const nb_cli *c, double seconds, int64_t *n);

/* --- the verbs ---------------------------------------------------------------- */

int nb_wn_train(int argc, char **argv);       /* wavenet_train.c */
int nb_wn_generate(int argc, char **argv);    /* wavenet_generate.c */
int nb_wn_eval(int argc, char **argv);        /* wavenet_eval.c */
int nb_wn_spectrogram(int argc, char **argv); /* wavenet_logmel.c */
int nb_wn_distance(int argc, char **argv);    /* wavenet_logmel.c */
int nb_wn_features(int argc, char **argv);    /* wavenet_logmel.c */
int nb_wn_synth(int argc, char **argv);       /* wavenet_synth.c */

#endif
