/* model_file.h — what the model-file fuzz targets share: the input as a file
 * the loaders can open, the check that a failure names it, and one loader's
 * round on it. */
#ifndef FUZZ_MODEL_FILE_H
#define FUZZ_MODEL_FILE_H
#include "nabla.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The loaders take a path: the input goes into an in-memory file, reached as
 * /proc/self/fd/N, so no disk is touched. Returns that path. */
static const char *fuzz_as_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-model-file", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    return path;
}

/* Every failure names the file. */
static void fuzz_need_error(const char *path) {
    if (!strstr(nb_errmsg(), path)) abort();
}

/* One loader of the form  T *load(const char *path, nb_safetensors **st):
 * a model comes with its file's tensors, a failure with neither and a
 * message naming the file. */
#define FUZZ_LOAD_WITH_ST(T, load, free_model, path)                                                                   \
    do {                                                                                                               \
        nb_safetensors *st_ = NULL;                                                                                    \
        nb_clear_error();                                                                                              \
        T *m_ = load(path, &st_);                                                                                      \
        if (m_) {                                                                                                      \
            if (!st_) abort();                                                                                         \
            free_model(m_);                                                                                            \
            nb_st_free(st_);                                                                                           \
        } else {                                                                                                       \
            if (st_) abort();                                                                                          \
            fuzz_need_error(path);                                                                                     \
        }                                                                                                              \
    } while (0)
#endif
