/* wavenet.c — `nabla wavenet train|generate|eval|spectrogram|synth|distance|
 * features`: WaveNet (notes §4.5) on 16 kHz speech. This file holds the verbs'
 * table and what they share of the command line; the verbs are in
 * wavenet_train.c (training with --resume), wavenet_generate.c (generation to
 * WAV), wavenet_eval.c (bits per sample), wavenet_logmel.c (spectrogram,
 * distance, features), wavenet_synth.c (a synthetic data folder), on the data
 * of wavenet_data.c; wavenet.h declares what they share. */
#include "wavenet.h"
#include <math.h>

/* --seconds as a count of samples at 16 kHz, at least one: a shorter one
 * (--seconds 1e-5) wrote empty clips that every other verb refuses. NB_CLI_OK,
 * or 2 after the usage error. */
int nb_wn_seconds_to_samples(const nb_cli *c, double seconds, int64_t *n) {
    *n = (int64_t)llround(seconds * NB_WN_RATE);
    if (*n >= 1) return NB_CLI_OK;
    return nb_cli_usage_error(c, "--seconds %g is less than one sample at %d kHz (at least %g)", seconds,
                              NB_WN_RATE / 1000, 0.5 / NB_WN_RATE);
}

static int cmd_wavenet(int argc, char **argv) {
    static const nb_verb verbs[] = {
        {"train", nb_wn_train, "train a WaveNet on a speech folder"},
        {"generate", nb_wn_generate, "generate audio (cached, or --naive), optionally for a speaker or from features"},
        {"eval", nb_wn_eval, "bits per sample of a model on held-out clips"},
        {"spectrogram", nb_wn_spectrogram, "a log-mel spectrogram of a recording as a picture, or as features (.npy)"},
        {"synth", nb_wn_synth, "write a small synthetic speech folder (harmonic tones, one folder per speaker)"},
        {"distance", nb_wn_distance, "the log-mel distance between two recordings"},
        {"features", nb_wn_features, "per-clip speaker features (log-mel statistics) as CSV for nabla train/eval"},
    };
    return nb_cli_verbs("wavenet", verbs, (int)(sizeof verbs / sizeof verbs[0]), argc, argv);
}

NB_COMMAND("wavenet", cmd_wavenet, "WaveNet on raw audio: train, generate, eval, spectrogram, synth, distance, features")
