/* fuzz_checkpoint.c — libFuzzer target: the loaders of the model files that
 * fuzz_model does not read: the chat dual encoder (sizes and vocabulary in
 * __metadata__), WaveNet (settings in __metadata__) and a DQN learner's
 * checkpoint (target network, Adam's moments, replay memory, random streams,
 * episode in progress). Each must return a model or an error that names the
 * file; never crash, leak or hit UB, and never allocate what the file does
 * not hold. */
#include "nabla.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The loaders take a path: the input goes into an in-memory file, reached as
 * /proc/self/fd/N, so no disk is touched. */
static int fd = -1;
static char path[64];

static void need_error(void) {
    if (!strstr(nb_errmsg(), path)) abort(); /* every failure names the file */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fd < 0) {
        fd = memfd_create("fuzz-checkpoint", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();

    nb_safetensors *st = NULL;
    nb_clear_error();
    nb_dualenc *de = nb_dualenc_load(path, &st);
    if (de) {
        if (!st) abort();
        nb_dualenc_free(de);
        nb_st_free(st);
    } else {
        if (st) abort();
        need_error();
    }

    st = NULL;
    nb_clear_error();
    nb_wavenet *wn = nb_wavenet_load(path, &st);
    if (wn) {
        if (!st) abort();
        nb_wavenet_free(wn);
        nb_st_free(st);
    } else {
        if (st) abort();
        need_error();
    }

    st = NULL;
    nb_clear_error();
    nb_dqn *dq = nb_dqn_resume(path, &st);
    if (dq) {
        if (!st) abort();
        nb_dqn_free(dq);
        nb_st_free(st);
    } else {
        if (st) abort();
        need_error();
    }
    return 0;
}
