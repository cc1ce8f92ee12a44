/* device.cu — the device itself: choosing it and creating the cuBLAS handle
 * (nb__gpu_init), its name, device memory and copies, waiting for queued
 * work, and the check that turns a failed runtime call into nb_fatal. */
#include "common.h"
#include <stdio.h>
#include <string.h>

static bool ready;
static char name[256]; /* "" until nb__gpu_init succeeds */
static cublasHandle_t blas;

void nb__gpu_check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) nb_fatal("cuda", "%s: %s", what, cudaGetErrorString(e));
}

/* The handle blas.cu's products run through; declared there. */
cublasHandle_t nb__gpu_cublas(void) {
    if (!ready) nb_fatal("cuda", "a matrix product before nb__gpu_init (a bug: no tensor can be on the GPU yet)");
    return blas;
}

/* Records why in why[0..n) and clears the runtime's error state, so that a
 * failed init leaves nothing behind for a later cudaGetLastError to report. */
static int fail(char *why, size_t n, const char *what, const char *detail) {
    if (why && n) snprintf(why, n, "%s: %s", what, detail);
    (void)cudaGetLastError();
    return -1;
}

int nb__gpu_init(char *why, size_t n) {
    if (ready) return 0;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) return fail(why, n, "cudaGetDeviceCount", cudaGetErrorString(e));
    if (count < 1) return fail(why, n, "cudaGetDeviceCount", "no CUDA device");
    if ((e = cudaSetDevice(0)) != cudaSuccess) return fail(why, n, "cudaSetDevice(0)", cudaGetErrorString(e));
    cudaDeviceProp p;
    if ((e = cudaGetDeviceProperties(&p, 0)) != cudaSuccess)
        return fail(why, n, "cudaGetDeviceProperties", cudaGetErrorString(e));
    cublasStatus_t st = cublasCreate(&blas);
    if (st != CUBLAS_STATUS_SUCCESS) return fail(why, n, "cublasCreate", cublasGetStatusString(st));
    /* DEFAULT_MATH, set explicitly: single-precision routines then take
     * fp32 inputs and accumulate with fp32 FMAs, never TF32 tensor cores or
     * the BF16x9 emulation (those need CUBLAS_TF32_TENSOR_OP_MATH,
     * CUBLAS_FP32_EMULATED_BF16X9_MATH or a matching compute type), so the
     * products agree with the CPU's sgemm to fp32 rounding. PEDANTIC_MATH
     * ("prescribed precision and standardized arithmetic for all phases")
     * would rule out the same shortcuts, but cuBLAS warns it "might not be
     * as performant"; default math already gives the same bits run to run
     * on one GPU, which is all backend.h promises. */
    st = cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH);
    if (st != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(blas);
        return fail(why, n, "cublasSetMathMode", cublasGetStatusString(st));
    }
    snprintf(name, sizeof name, "%s", p.name);
    ready = true;
    return 0;
}

const char *nb__gpu_name(void) { return name; }

void *nb__gpu_alloc(size_t bytes) {
    void *p = NULL;
    /* cudaMalloc(0) may succeed with NULL, which would read as out of
     * memory: a zero-size tensor gets the smallest block instead.
     * cudaMalloc's blocks are 256-byte aligned. */
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError(); /* not sticky, but clear it for the next check */
        return NULL;
    }
    nb__gpu_check(e, "cudaMalloc");
    return p;
}

void nb__gpu_free(void *p) {
    if (p) nb__gpu_check(cudaFree(p), "cudaFree");
}

void nb__gpu_to_device(void *dst, const void *src_host, size_t bytes) {
    if (bytes) nb__gpu_check(cudaMemcpy(dst, src_host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
}

void nb__gpu_to_host(void *dst_host, const void *src, size_t bytes) {
    if (bytes) nb__gpu_check(cudaMemcpy(dst_host, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
}

void nb__gpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src)
        nb__gpu_check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy device to device");
}

