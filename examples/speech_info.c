/* speech_info.c — checks and describes a speech data folder through the
 * library's audio API: nb_speech_open, then every clip read at 16 kHz
 * (nb_audio_read), its log-mel spectrogram (nb_logmel) and, when the clip has
 * them, its phone features (nb_npy_read), whose frames must match the
 * spectrogram's and whose columns must be the inventory's. Prints speakers,
 * clips and minutes per split, and a JSON line. Exits 1 on the first defect,
 * with the error naming the file.
 * Build: make examples; run: build/examples/speech_info DIR */
#include <nabla.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: speech_info DIR\n");
        return 2;
    }
    nb_speech_set s;
    if (nb_speech_open(argv[1], &s) != 0) {
        fprintf(stderr, "speech_info: %s\n", nb_errmsg());
        return 1;
    }
    int64_t *samples = calloc((size_t)s.nspeakers * 3, sizeof *samples);
    int *clips = calloc((size_t)s.nspeakers * 3, sizeof *clips);
    int rc = 0, with_phones = 0;
    for (int i = 0; i < s.n && rc == 0; i++) {
        const nb_speech_clip *c = &s.clips[i];
        nb_audio a;
        if (nb_audio_read(c->path, 16000, &a) != 0) {
            fprintf(stderr, "speech_info: %s\n", nb_errmsg());
            rc = 1;
            break;
        }
        nb_tensor *mel = nb_logmel(a.x, a.n, a.rate, 80);
        if (!mel) {
            fprintf(stderr, "speech_info: %s: %s\n", c->path, nb_errmsg());
            rc = 1;
        }
        if (mel && c->phones) {
            nb_tensor *ph = nb_npy_read(c->phones);
            if (!ph) {
                fprintf(stderr, "speech_info: %s\n", nb_errmsg());
                rc = 1;
            } else if (ph->ndim != 2 || ph->shape[0] != mel->shape[0] || ph->shape[1] != s.n_phones) {
                fprintf(stderr, "speech_info: %s: shape [%lld, %lld], expected [%lld, %d] (frames of %s, phones.txt)\n",
                        c->phones, (long long)ph->shape[0], (long long)(ph->ndim > 1 ? ph->shape[1] : 0),
                        (long long)mel->shape[0], s.n_phones, c->path);
                rc = 1;
            } else
                with_phones++;
            nb_tensor_free(ph);
        }
        nb_tensor_free(mel);
        samples[c->speaker * 3 + c->split] += a.n;
        clips[c->speaker * 3 + c->split]++;
        nb_audio_free(&a);
    }
    if (rc == 0) {
        int64_t total = 0;
        int tc[3] = {0};
        printf("%-24s %8s %8s %8s %9s\n", "speaker", "train", "valid", "test", "minutes");
        for (int k = 0; k < s.nspeakers; k++) {
            int64_t n = samples[k * 3] + samples[k * 3 + 1] + samples[k * 3 + 2];
            printf("%-24s %8d %8d %8d %9.2f\n", s.speakers[k], clips[k * 3], clips[k * 3 + 1], clips[k * 3 + 2],
                   n / 16000.0 / 60);
            total += n;
            for (int j = 0; j < 3; j++) tc[j] += clips[k * 3 + j];
        }
        printf("{\"speakers\": %d, \"clips\": %d, \"train\": %d, \"valid\": %d, \"test\": %d, \"minutes\": %.3f, "
               "\"n_phones\": %d, \"clips_with_phones\": %d}\n",
               s.nspeakers, s.n, tc[0], tc[1], tc[2], total / 16000.0 / 60, s.n_phones, with_phones);
    }
    free(samples);
    free(clips);
    nb_speech_free(&s);
    return rc;
}
