/* fuzz_audio.c — libFuzzer target: nb_audio_parse (libsndfile from memory,
 * mixing, resampling) on arbitrary bytes must return mono samples in [-1, 1]
 * or an error with a message; never crash, leak or hit UB. */
#include "nabla.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libsndfile 1.2.0 leaks the vorbis_info it initialized when an OGG stream's
 * headers turn out corrupt (its failed sf_open_virtual returns no handle for
 * nabla to close). Only allocations made inside libvorbis are suppressed. */
const char *__lsan_default_suppressions(void) { return "leak:libvorbis.so\n"; }

static void check(const uint8_t *data, size_t size, int rate) {
    nb_clear_error();
    nb_audio a;
    if (nb_audio_parse(data, size, "fuzz.wav", rate, &a) != 0) {
        if (!nb_errmsg()[0] || a.x || a.n) abort(); /* every failure says why and leaves nothing */
        return;
    }
    if (a.n < 1 || !a.x || (rate && a.rate != rate)) abort();
    for (int64_t i = 0; i < a.n; i++)
        if (!(a.x[i] >= -1.0f && a.x[i] <= 1.0f)) abort();
    int64_t n = a.n;
    nb_audio_free(&a);
    /* resample the short ones too (the rate conversion costs time per sample) */
    if (rate == 0 && n < 20000) check(data, size, 16000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size, 0);
    return 0;
}
