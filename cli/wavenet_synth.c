/* wavenet_synth.c — `nabla wavenet synth`: a small synthetic speech folder
 * (harmonic tones with gliding pitch and syllable-like loudness, one
 * sub-folder per speaker) for trying the other verbs. */
#include "wavenet.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int nb_wn_synth(int argc, char **argv) {
    const char *cmd = "wavenet synth";
    long speakers = 2, clips = 3, seed = 1;
    double seconds = 1;
    nb_flag flags[] = {
        {"--speakers", NB_FLAG_INT, &speakers, "speakers (sub-folders)", .range = "[1, 64]"},
        {"--clips", NB_FLAG_INT, &clips, "clips per speaker", .range = "[1, 1000]"},
        {"--seconds", NB_FLAG_FLOAT, &seconds, "length of each clip", .range = "(0, 60]"},
        NB_FLAG_SEED(&seed, "the signals"),
    };
    nb_cli c = {.cmd = cmd, .args = "DIR ",
                .about = "Writes DIR/spk<k>/clip<i>.wav: 16 kHz sums of harmonics whose pitch glides and whose\n"
                         "loudness follows syllable-like envelopes; speaker k has its own pitch range and timbre.\n"
                         "A small data set for trying the other verbs.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, rc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (rc != NB_CLI_OK) return rc;
    int64_t n;
    if ((rc = nb_wn_seconds_to_samples(&c, seconds, &n)) != NB_CLI_OK) return rc;
    if (mkdir(pos[0], 0777) && errno != EEXIST) return nb_cli_fail(cmd, "%s: %s", pos[0], strerror(errno));
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed, 3);
    float *x = nb__xmalloc("a clip", (size_t)n, sizeof(float));
    for (long k = 0; k < speakers; k++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/spk%ld", pos[0], k);
        if (mkdir(dir, 0777) && errno != EEXIST) {
            free(x);
            return nb_cli_fail(cmd, "%s: %s", dir, strerror(errno));
        }
        double f0 = 110.0 * pow(1.6, (double)k), bright = 0.35 + 0.3 * (double)(k % 3);
        for (long i = 0; i < clips; i++) {
            double glide = 0.5 + nb_rng_uniform(&r), phase = 0, syl = 3 + 3 * nb_rng_uniform(&r);
            for (int64_t t = 0; t < n; t++) {
                double s = (double)t / NB_WN_RATE;
                double f = f0 * (1 + 0.15 * sin(2 * M_PI * glide * s));
                phase += 2 * M_PI * f / NB_WN_RATE;
                double v = 0;
                for (int h = 1; h <= 6; h++) v += pow(bright, h - 1) * sin(h * phase);
                double env = 0.5 * (1 - cos(2 * M_PI * syl * s));
                x[t] = (float)(0.3 * env * v + 0.003 * nb_rng_normal(&r));
            }
            char path[4200];
            snprintf(path, sizeof path, "%s/clip%ld.wav", dir, i);
            if (nb_audio_write(path, x, n, NB_WN_RATE)) {
                free(x);
                return nb_cli_fail(cmd, "%s", nb_errmsg());
            }
        }
    }
    free(x);
    fprintf(stderr, "wrote %ld speakers x %ld clips of %.2f s to %s\n", speakers, clips, seconds, pos[0]);
    return 0;
}
