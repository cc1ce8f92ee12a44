/* common.h — what every CUDA source of the backend includes: the CUDA
 * runtime and cuBLAS, or the emulator that stands in for them in a build
 * without a GPU (NB_CUDA_EMU), and the two constructs whose spelling differs
 * between the two: a kernel launch and dynamic shared memory. Kernels are
 * written once and compile either way. */
#ifndef NB_CUDA_COMMON_H
#define NB_CUDA_COMMON_H

#include "backend.h"
#include "nabla.h"

#ifdef NB_CUDA_EMU
#include "emu.h"
/* kernel<<<grid, block, shmem>>>(args...) on the default stream, its pointer
 * arguments checked to be device memory first. */
#define NB_LAUNCH(kernel, grid, block, shmem, ...)                                \
    (nb_emu_check_args(#kernel __VA_OPT__(, ) __VA_ARGS__),                                   \
     nb_emu_launch(#kernel, dim3(grid), dim3(block), (size_t)(shmem), [&] { kernel(__VA_ARGS__); }))
/* `extern __shared__ type name[]`: the launch's dynamic shared memory. */
#define NB_DYN_SHARED(type, name) type *name = (type *)nb_emu_dyn_shared()
#else
#include <cublas_v2.h>
#include <cuda_runtime.h>
#define NB_LAUNCH(kernel, grid, block, shmem, ...) kernel<<<(grid), (block), (size_t)(shmem)>>>(__VA_ARGS__)
#define NB_DYN_SHARED(type, name) extern __shared__ type name[]
#endif

/* After a launch or a runtime call: a failure ends the program naming what
 * failed (a launch fails only from a bug or a lost device). */
void nb__gpu_check(cudaError_t e, const char *what);
#define NB_GPU_CHECK_LAUNCH(name) nb__gpu_check(cudaGetLastError(), name)
/* The cuBLAS handle nb__gpu_init made (device.cu). */
cublasHandle_t nb__gpu_cublas(void);

/* Threads per block for the elementwise kernels, and a grid covering n
 * elements with a grid-stride loop (capped: big tensors loop, not launch
 * millions of blocks). */
#define NB_GPU_THREADS 256
static inline unsigned nb__gpu_blocks(int64_t n) {
    int64_t b = (n + NB_GPU_THREADS - 1) / NB_GPU_THREADS;
    return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

#endif
