/* emu.h — the CUDA emulator's interface: what the backend's .cu files use of
 * the CUDA runtime, of cuBLAS and of the device-side language, declared so
 * that they compile with the host C++ compiler (g++ -std=c++17 -DNB_CUDA_EMU
 * -x c++) and run on the CPU against src/cuda/emu.cc. Included (through
 * common.h) instead of <cuda_runtime.h> and <cublas_v2.h>; names, types and
 * enum values are CUDA's own, so the same source compiles with nvcc. Why it
 * exists and what it does not model: see the top of emu.cc.
 *
 * What kernel writers must know (each line one emulated behaviour):
 *  - Blocks run one after another, in order (x fastest, then y, then z); the
 *    threads of a block are coroutines on one OS thread, switched only at
 *    __syncthreads, __syncwarp and the warp intrinsics (*_sync). A thread
 *    otherwise runs from start to finish before the next one starts.
 *  - __shared__ is `static`: one array per kernel (per template
 *    instantiation), shared by the blocks in turn. As in CUDA, a kernel must
 *    not rely on its contents at block start (here it holds the previous
 *    block's values, not zeros).
 *  - Dynamic shared memory (NB_DYN_SHARED) is filled with 0xff bytes (NaN
 *    as float, -1 as int) at the start of every block, and ends at an
 *    inaccessible page: going past the launch's shmem bytes (rounded up to
 *    16) faults.
 *  - A __syncthreads not reached by every thread of the block (one returned
 *    while others wait, or they wait at different barriers) ends the launch
 *    with cudaErrorLaunchFailure (and a line on stderr naming the kernel);
 *    unlike CUDA the error is not sticky.
 *  - Warp intrinsics (__shfl*_sync, __syncwarp, __ballot/__any/__all_sync)
 *    are exact for any mask, provided every lane named in the mask calls the
 *    same intrinsic with that mask; a lane reading from a lane outside the
 *    mask, a mask naming a lane the block lacks, or lanes disagreeing end the
 *    launch with cudaErrorLaunchFailure. Lanes are linear thread ids % 32.
 *  - Code that relies on warp-synchronous execution without __syncwarp (the
 *    old `volatile` shared-memory reductions) computes wrong results here,
 *    as it may on Volta and later GPUs.
 *  - atomicAdd (int, unsigned) is a plain read-modify-write (threads never
 *    run at once). The backend uses no atomics and no fast-math intrinsics,
 *    so the emulator offers neither beyond that.
 *  - Device memory (cudaMalloc) is inaccessible to host code: it is readable
 *    and writable only while a launch, a cudaMemcpy/cudaMemset or a cuBLAS
 *    call runs. Host code that dereferences a device pointer dies with
 *    SIGSEGV at once. New allocations are filled with 0xff bytes (NaN).
 *  - Kernels can still read and write host memory (nothing stops a host
 *    pointer passed to a kernel); the runtime and cuBLAS calls do check that
 *    their device-side pointers lie in allocated device memory.
 *  - Streams, async copies and cudaDeviceSynchronize: everything is
 *    synchronous, on one queue.
 *  - Each emulated thread has a 64 KiB stack (256 KiB under AddressSanitizer).
 * Environment: NB_EMU_MEM sets the device memory in MiB (default 2048);
 * NB_EMU_NO_DEVICE makes cudaGetDeviceCount report no device. */
#ifndef NB_CUDA_EMU_H
#define NB_CUDA_EMU_H

#if defined(__CUDACC__) || !defined(__cplusplus)
#error "emu.h is the CUDA emulator for a host C++ compiler (g++ -DNB_CUDA_EMU -x c++), not for nvcc or C"
#endif

#include <math.h> /* fmaxf, expf, isnan, ... unqualified, as device code spells them */
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

/* --- the language ---------------------------------------------------------- */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
/* Static shared arrays live in a section of their own, which every block
 * starts with filled with 0xff bytes (NaN), as if fresh: on a GPU a block
 * sees garbage in shared memory it has not written, never the last block's
 * values. */
#define __shared__ static __attribute__((section("nb_emu_shared")))

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(8) int2 {
    int x, y;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }

/* The running emulated thread and block; null outside a launch, so host code
 * that reads threadIdx crashes instead of reading zeros. */
struct nb_emu_thread {
    uint3 tid;
};
struct nb_emu_block {
    uint3 bid;
    dim3 bdim, gdim;
};
extern const nb_emu_thread *nb_emu_cur_;
extern const nb_emu_block *nb_emu_blk_;
inline const nb_emu_thread *nb_emu_cur() { return nb_emu_cur_; }
inline const nb_emu_block *nb_emu_blk() { return nb_emu_blk_; }
#define threadIdx (nb_emu_cur()->tid)
#define blockIdx (nb_emu_blk()->bid)
#define blockDim (nb_emu_blk()->bdim)
#define gridDim (nb_emu_blk()->gdim)
inline constexpr int warpSize = 32;

void __syncthreads();
inline void __threadfence() {}
inline void __threadfence_block() {}

/* Runs body once per thread of every block (see the top of this file).
 * Errors (an invalid configuration, a divergent barrier) become the last
 * error (cudaGetLastError); the kernel does not run on a configuration
 * error. */
void nb_emu_launch_(const char *name, dim3 grid, dim3 block, size_t shmem, void (*call)(void *), void *body);
template <class F> inline void nb_emu_launch(const char *name, dim3 grid, dim3 block, size_t shmem, F &&body) {
    using Fn = std::remove_reference_t<F>;
    nb_emu_launch_(name, grid, block, shmem, [](void *f) { (*static_cast<Fn *>(f))(); },
                   const_cast<void *>(static_cast<const void *>(&body)));
}
/* The running launch's dynamic shared memory, 16-byte aligned. */
void *nb_emu_dyn_shared();

/* A kernel on a GPU cannot read host memory through a pointer argument (the
 * access is an illegal address), while the emulator's kernels, which run on
 * the CPU, could: so every pointer argument of a launch must be NULL or point
 * into emulated device memory, or the program dies naming the kernel and the
 * argument. (Pointers inside structs passed by value are not seen.) */
bool nb_emu_device_ptr(const void *p);
[[noreturn]] void nb_emu_bad_arg(const char *kernel, int index, const void *p);
template <class T> inline void nb_emu_check_arg(const char *, int, const T &) {}
template <class T> inline void nb_emu_check_arg(const char *kernel, int index, T *p) {
    if (p && !nb_emu_device_ptr((const void *)p)) nb_emu_bad_arg(kernel, index, (const void *)p);
}
template <class... A> inline void nb_emu_check_args(const char *kernel, const A &...a) {
    int index = 0;
    (nb_emu_check_arg(kernel, index++, a), ...);
}
/* A forked child may not use CUDA (every call fails, as on a GPU); the
 * emulator's selftest, whose fault probes run kernels in forked children on
 * purpose, lets the child take the emulated device over with this. */
void nb_emu_adopt_after_fork();

/* Warp-level operations: every lane named in mask arrives, then each gets
 * its result. op: one of the NB_EMU_W_* values; bits: the lane's value. */
enum {
    NB_EMU_W_SYNC,
    NB_EMU_W_SHFL,
    NB_EMU_W_UP,
    NB_EMU_W_DOWN,
    NB_EMU_W_XOR,
    NB_EMU_W_BALLOT,
};
uint64_t nb_emu_warp_op(int op, unsigned mask, uint64_t bits, int arg, int width);
template <class T> inline T nb_emu_shfl_(int op, unsigned mask, T v, int arg, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a shuffle moves at most 8 bytes");
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof v);
    b = nb_emu_warp_op(op, mask, b, arg, width);
    std::memcpy(&v, &b, sizeof v);
    return v;
}
inline void __syncwarp(unsigned mask = 0xffffffffu) { nb_emu_warp_op(NB_EMU_W_SYNC, mask, 0, 0, 32); }
template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = warpSize) {
    return nb_emu_shfl_(NB_EMU_W_SHFL, mask, v, src, width);
}
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    return nb_emu_shfl_(NB_EMU_W_UP, mask, v, (int)delta, width);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
    return nb_emu_shfl_(NB_EMU_W_DOWN, mask, v, (int)delta, width);
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
    return nb_emu_shfl_(NB_EMU_W_XOR, mask, v, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned)nb_emu_warp_op(NB_EMU_W_BALLOT, mask, pred != 0, 0, 32);
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

/* Atomics: the threads never run at once, so a plain update is atomic. */
template <class T> inline T nb_emu_atomic_add_(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
/* The backend uses no atomics; atomicAdd is here for the emulator's own test. */
inline int atomicAdd(int *p, int v) { return (int)((unsigned)nb_emu_atomic_add_((unsigned *)p, (unsigned)v)); }
inline unsigned atomicAdd(unsigned *p, unsigned v) { return nb_emu_atomic_add_(p, v); }

template <class T> inline T __ldg(const T *p) { return *p; }

/* min/max: the overloads CUDA declares for device code, no more, so that
 * a call ambiguous for nvcc is ambiguous here too. float ones are fminf /
 * fmaxf (NaN loses), as in CUDA. */
#define NB_EMU_MINMAX(R, A, B)                                            \
    inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; }          \
    inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
NB_EMU_MINMAX(int, int, int)
NB_EMU_MINMAX(unsigned, unsigned, unsigned)
NB_EMU_MINMAX(unsigned, int, unsigned)
NB_EMU_MINMAX(unsigned, unsigned, int)
NB_EMU_MINMAX(long, long, long)
NB_EMU_MINMAX(unsigned long, unsigned long, unsigned long)
NB_EMU_MINMAX(unsigned long, long, unsigned long)
NB_EMU_MINMAX(unsigned long, unsigned long, long)
NB_EMU_MINMAX(long long, long long, long long)
NB_EMU_MINMAX(unsigned long long, unsigned long long, unsigned long long)
NB_EMU_MINMAX(unsigned long long, long long, unsigned long long)
NB_EMU_MINMAX(unsigned long long, unsigned long long, long long)
#undef NB_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

/* --- the runtime API (values as in driver_types.h) ------------------------- */

enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

typedef struct CUstream_st *cudaStream_t; /* 0: the default stream */

/* The fields of CUDA's cudaDeviceProp that the emulator fills (a subset). */
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    int major, minor;
    int multiProcessorCount;
};

const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
/* The last error of a runtime call or launch in this host thread; Get
 * clears it, Peek does not. */
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDevice(int *dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int dev);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaMalloc(void **p, size_t bytes);
template <class T> inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
cudaError_t cudaFree(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = 0);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s = 0);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);

/* --- cuBLAS (values as in cublas_api.h) ------------------------------------ */

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum {
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_TENSOR_OP_MATH = 1,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3,
} cublasMath_t;
typedef struct cublasContext *cublasHandle_t;

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasGetStream(cublasHandle_t h, cudaStream_t *s);
/* Accepted and ignored: the products are always full fp32 (OpenBLAS). */
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t cublasGetMathMode(cublasHandle_t h, cublasMath_t *mode);
const char *cublasGetStatusName(cublasStatus_t s);
const char *cublasGetStatusString(cublasStatus_t s);
/* Column-major C = alpha op(A) op(B) + beta C with cuBLAS's argument checks;
 * alpha and beta are host pointers; beta == 0 ignores C (NaN included). A,
 * B or C outside allocated device memory: CUBLAS_STATUS_EXECUTION_FAILED. */
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long stride_a,
                                         const float *B, int ldb, long long stride_b, const float *beta, float *C,
                                         int ldc, long long stride_c, int batch);

#endif
