/* fuzz_manifest.c — libFuzzer target: nb_speech_open on a folder whose
 * manifest.csv holds arbitrary bytes (next to clips a.wav and b.wav, a phone
 * file p.npy and an inventory phones.txt, so that valid lines are reachable)
 * must give a consistent set or an error naming the manifest. */
#include "nabla.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void put(const char *name, const void *buf, size_t len) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) abort();
    fclose(f);
}

static void cleanup(void) {
    const char *names[] = {"a.wav", "b.wav", "p.npy", "phones.txt", "manifest.csv"};
    char p[512];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/nabla-fuzz-manifest-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(dir)) abort();
        atexit(cleanup);
        put("a.wav", "", 0); /* nb_speech_open checks that clips exist; it does not decode them */
        put("b.wav", "", 0);
        put("p.npy", "", 0);
        put("phones.txt", "pau\nh\n", 6);
    }
    put("manifest.csv", data, size);
    nb_clear_error();
    nb_speech_set s;
    if (nb_speech_open(dir, &s) != 0) {
        if (!strstr(nb_errmsg(), "manifest.csv") || s.n || s.clips) abort();
        return 0;
    }
    if (s.n < 1 || s.nspeakers < 1 || s.nspeakers > s.n) abort();
    for (int i = 0; i < s.n; i++) {
        const nb_speech_clip *c = &s.clips[i];
        if (c->speaker < 0 || c->speaker >= s.nspeakers || c->split < 0 || c->split > 2 || !c->path || !c->text)
            abort();
        if (c->phones && s.n_phones != 2) abort();
    }
    nb_speech_free(&s);
    return 0;
}
