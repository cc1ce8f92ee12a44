/* cuda_emu_selftest.cu — checks the CUDA emulator (src/cuda/emu.h, emu.cc)
 * on its own, without the nabla library:
 *
 *   g++ -std=c++17 -DNB_CUDA_EMU -x c++ -Iinclude -Isrc/cuda tests/cuda_emu_selftest.cu \
 *       src/cuda/emu.cc $(pkg-config --cflags --libs openblas) && ./a.out
 *
 * Exits 0 when every check holds; prints the launch costs the test suite
 * will pay. */
#include "emu.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

/* As common.h's NB_LAUNCH and NB_DYN_SHARED (common.h needs the library). */
#define LAUNCH(kernel, grid, block, shmem, ...)                                   \
    (nb_emu_check_args(#kernel __VA_OPT__(, ) __VA_ARGS__),                                   \
     nb_emu_launch(#kernel, dim3(grid), dim3(block), (size_t)(shmem), [&] { kernel(__VA_ARGS__); }))
#define DYN_SHARED(type, name) type *name = (type *)nb_emu_dyn_shared()

static int checks, failures;
#define CHECK(c)                                                            \
    do {                                                                    \
        checks++;                                                           \
        if (!(c)) {                                                         \
            failures++;                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
        }                                                                   \
    } while (0)
#define CUDA_OK(e) CHECK((e) == cudaSuccess)

static double now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned long long rng = 88172645463325252ull;
static float frand() { /* [-1, 1) with varied low bits */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float *dev_upload(const std::vector<float> &h) {
    float *d = nullptr;
    CUDA_OK(cudaMalloc(&d, h.size() * sizeof(float)));
    CUDA_OK(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

static std::vector<float> dev_download(const float *d, size_t n) {
    std::vector<float> h(n);
    CUDA_OK(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

/* --- kernels ------------------------------------------------------------------ */

/* y = a x + b over any grid and block shape; hits counts the visits. */
__global__ void axpb(float *y, const float *x, int *hits, long long n, float a, float b) {
    unsigned tin = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
    unsigned long long blk = blockIdx.x + (unsigned long long)gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned long long stride = (unsigned long long)per_block * gridDim.x * gridDim.y * gridDim.z;
    for (long long i = (long long)(blk * per_block + tin); i < n; i += (long long)stride) {
        y[i] = a * __ldg(x + i) + b;
        atomicAdd(hits + i, 1);
    }
}

__global__ void scale(float *y, const float *x, long long n, float a) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)blockDim.x * gridDim.x)
        y[i] = a * x[i];
}

/* The sum of each block's 256 elements, by a tree in static shared memory. */
__global__ void reduce_static(float *out, const float *x, int n) {
    __shared__ float s[256];
    unsigned t = threadIdx.x, i = blockIdx.x * 256 + t;
    s[t] = i < (unsigned)n ? x[i] : 0.0f;
    __syncthreads();
    for (unsigned h = 128; h > 0; h >>= 1) {
        if (t < h) s[t] += s[t + h];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

/* The same for any power-of-two block, in dynamic shared memory. */
__global__ void reduce_dyn(float *out, const float *x, int n) {
    DYN_SHARED(float, s);
    unsigned t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    s[t] = i < (unsigned)n ? x[i] : 0.0f;
    __syncthreads();
    for (unsigned h = blockDim.x / 2; h > 0; h >>= 1) {
        if (t < h) s[t] += s[t + h];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

/* Warp sums by __shfl_down_sync, then the warps' sums by one warp. */
__global__ void reduce_shfl(float *out, const float *x, int n) {
    __shared__ float part[32];
    unsigned t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    float v = i < (unsigned)n ? x[i] : 0.0f;
    for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
    if (t % 32 == 0) part[t / 32] = v;
    __syncthreads();
    if (t < 32) {
        v = t < blockDim.x / 32 ? part[t] : 0.0f;
        for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
        if (t == 0) out[blockIdx.x] = v;
    }
}

/* Per lane: the butterfly max, a broadcast from lane 5, shifted ids and a
 * ballot of the odd lanes. */
__global__ void warp_ops(int *o) {
    unsigned t = threadIdx.x, lane = t % 32;
    int v = (int)((t * 37u) % 101u);
    for (int m = 16; m > 0; m >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, m));
    o[4 * t] = v;
    o[4 * t + 1] = __shfl_sync(0xffffffffu, (int)t, 5);
    o[4 * t + 2] = __shfl_up_sync(0xffffffffu, (int)t, 3, 8);
    o[4 * t + 3] = (int)__ballot_sync(0xffffffffu, lane & 1);
}

/* Threads past `live` return before the barrier the others wait at. */
__global__ void diverge(float *o, unsigned live) {
    if (threadIdx.x >= live) return;
    o[threadIdx.x] = 1.0f;
    __syncthreads();
}

/* A full-warp shuffle in a block of fewer than 32 threads. */
__global__ void bad_mask(float *o) { o[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1); }

static int host_runs;
__global__ void count_runs() { host_runs++; }

__global__ void touch(float *p, long long i) { p[i] = 1.0f; }

/* Recursion 1 KiB a frame, deeper than a thread's stack allows. */
__device__ float deep(volatile float *p, int d) {
    volatile float buf[256];
    buf[d % 256] = (float)d;
    return d ? deep(buf, d - 1) + buf[d % 256] : p[0];
}
__global__ void overflow_stack(float *o, int depth) {
    float v = 0.0f;
    o[0] = deep(&v, depth);
}

__global__ void overrun_shared(float *o) {
    DYN_SHARED(float, s);
    s[threadIdx.x + 16] = 1.0f; /* 64 bytes of shared memory, 16 floats */
    o[0] = s[0];
}

/* --- checks ---------------------------------------------------------------- */

static void test_elementwise() {
    struct shape {
        dim3 g, b;
    } shapes[] = {
        {dim3(1), dim3(1)},           {dim3(3), dim3(5)},        {dim3(3, 2), dim3(16, 4)},
        {dim3(2, 3, 2), dim3(8, 4, 2)}, {dim3(5, 1, 3), dim3(7, 3, 5)}, {dim3(4000), dim3(256)},
    };
    for (long long n : {1ll, 7ll, 1000003ll}) {
        std::vector<float> hx(n);
        for (auto &v : hx) v = frand();
        float *x = dev_upload(hx), *y;
        int *hits;
        CUDA_OK(cudaMalloc(&y, n * sizeof(float)));
        CUDA_OK(cudaMalloc(&hits, n * sizeof(int)));
        for (const shape &s : shapes) {
            CUDA_OK(cudaMemset(hits, 0, n * sizeof(int)));
            LAUNCH(axpb, s.g, s.b, 0, y, x, hits, n, 2.0f, 0.5f);
            CUDA_OK(cudaGetLastError());
            std::vector<float> hy = dev_download(y, n);
            std::vector<int> hh(n);
            CUDA_OK(cudaMemcpy(hh.data(), hits, n * sizeof(int), cudaMemcpyDeviceToHost));
            long long bad = 0;
            for (long long i = 0; i < n; i++) bad += hy[i] != 2.0f * hx[i] + 0.5f || hh[i] != 1;
            CHECK(bad == 0);
        }
        CUDA_OK(cudaFree(x));
        CUDA_OK(cudaFree(y));
        CUDA_OK(cudaFree(hits));
    }
}

/* The reduction tree of reduce_static/reduce_dyn, serially. */
static std::vector<float> tree_sums(const std::vector<float> &x, unsigned block) {
    std::vector<float> out, s(block);
    for (size_t b = 0; b * block < x.size(); b++) {
        for (unsigned t = 0; t < block; t++) s[t] = b * block + t < x.size() ? x[b * block + t] : 0.0f;
        for (unsigned h = block / 2; h > 0; h >>= 1)
            for (unsigned t = 0; t < h; t++) s[t] += s[t + h];
        out.push_back(s[0]);
    }
    return out;
}

/* reduce_shfl's order: shuffle-down trees per warp, then over the warps. */
static std::vector<float> shfl_sums(const std::vector<float> &x, unsigned block) {
    std::vector<float> out;
    for (size_t b = 0; b * block < x.size(); b++) {
        float part[32], w[32];
        for (unsigned wi = 0; wi < block / 32; wi++) {
            for (unsigned l = 0; l < 32; l++) {
                size_t i = b * block + wi * 32 + l;
                w[l] = i < x.size() ? x[i] : 0.0f;
            }
            for (unsigned d = 16; d > 0; d >>= 1)
                for (unsigned l = 0; l < 32; l++) w[l] += l + d < 32 ? w[l + d] : w[l];
            part[wi] = w[0];
        }
        for (unsigned l = 0; l < 32; l++) w[l] = l < block / 32 ? part[l] : 0.0f;
        for (unsigned d = 16; d > 0; d >>= 1)
            for (unsigned l = 0; l < 32; l++) w[l] += l + d < 32 ? w[l + d] : w[l];
        out.push_back(w[0]);
    }
    return out;
}

static void test_reductions() {
    int n = 1000; /* four blocks of 256, the last partial */
    std::vector<float> hx(n);
    for (int i = 0; i < n; i++) hx[i] = frand() * (float)(1 << (i % 17)); /* magnitudes that make order matter */
    float *x = dev_upload(hx), *out;
    CUDA_OK(cudaMalloc(&out, 16 * sizeof(float)));

    LAUNCH(reduce_static, 4, 256, 0, out, x, n);
    CUDA_OK(cudaGetLastError());
    std::vector<float> got = dev_download(out, 4), want = tree_sums(hx, 256);
    CHECK(memcmp(got.data(), want.data(), 4 * sizeof(float)) == 0);

    for (unsigned block : {64u, 256u, 1024u}) {
        unsigned nb = (n + block - 1) / block;
        LAUNCH(reduce_dyn, nb, block, block * sizeof(float), out, x, n);
        CUDA_OK(cudaGetLastError());
        got = dev_download(out, nb);
        want = tree_sums(hx, block);
        CHECK(memcmp(got.data(), want.data(), nb * sizeof(float)) == 0);
    }

    LAUNCH(reduce_shfl, 4, 256, 0, out, x, n);
    CUDA_OK(cudaGetLastError());
    got = dev_download(out, 4);
    want = shfl_sums(hx, 256);
    CHECK(memcmp(got.data(), want.data(), 4 * sizeof(float)) == 0);

    int *o;
    CUDA_OK(cudaMalloc(&o, 64 * 4 * sizeof(int)));
    LAUNCH(warp_ops, 1, 64, 0, o);
    CUDA_OK(cudaGetLastError());
    std::vector<int> h(64 * 4);
    CUDA_OK(cudaMemcpy(h.data(), o, h.size() * sizeof(int), cudaMemcpyDeviceToHost));
    for (unsigned t = 0; t < 64; t++) {
        unsigned w = t / 32 * 32;
        int mx = 0;
        for (unsigned l = 0; l < 32; l++) mx = max(mx, (int)(((w + l) * 37u) % 101u));
        CHECK(h[4 * t] == mx);
        CHECK(h[4 * t + 1] == (int)(w + 5));
        CHECK(h[4 * t + 2] == (int)(t % 8 >= 3 ? t - 3 : t));
        CHECK((unsigned)h[4 * t + 3] == 0xaaaaaaaau);
    }
    CUDA_OK(cudaFree(o));
    CUDA_OK(cudaFree(x));
    CUDA_OK(cudaFree(out));
}

static void test_launch_errors() {
    float *o;
    CUDA_OK(cudaMalloc(&o, 256 * sizeof(float)));
    fprintf(stderr, "(two launch failures expected next)\n");
    LAUNCH(diverge, 2, 256, 0, o, 100u);
    CHECK(cudaPeekAtLastError() == cudaErrorLaunchFailure);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
    CHECK(cudaGetLastError() == cudaSuccess);
    LAUNCH(bad_mask, 1, 16, 0, o);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
    LAUNCH(diverge, 1, 256, 0, o, 256u); /* everyone reaches it: fine */
    CUDA_OK(cudaGetLastError());
    /* Parked threads were dropped: reductions still work after a failure. */
    test_reductions();

    struct cfg {
        dim3 g, b;
        size_t sh;
        cudaError_t want;
    } cfgs[] = {
        {dim3(1), dim3(1025), 0, cudaErrorInvalidConfiguration},
        {dim3(1), dim3(0), 0, cudaErrorInvalidConfiguration},
        {dim3(0), dim3(32), 0, cudaErrorInvalidConfiguration},
        {dim3(1, 0), dim3(32), 0, cudaErrorInvalidConfiguration},
        {dim3(1), dim3(1, 1, 65), 0, cudaErrorInvalidConfiguration},
        {dim3(1), dim3(32, 32, 2), 0, cudaErrorInvalidConfiguration},
        {dim3(1, 65536), dim3(1), 0, cudaErrorInvalidConfiguration},
        {dim3(1, 1, 65536), dim3(1), 0, cudaErrorInvalidConfiguration},
        {dim3(2147483648u), dim3(1), 0, cudaErrorInvalidConfiguration},
        {dim3(1), dim3(32), 48 * 1024 + 1, cudaErrorInvalidValue},
    };
    for (const cfg &c : cfgs) {
        host_runs = 0;
        LAUNCH(count_runs, c.g, c.b, c.sh, );
        CHECK(cudaGetLastError() == c.want);
        CHECK(host_runs == 0);
    }
    host_runs = 0;
    LAUNCH(count_runs, dim3(2, 3), dim3(4, 1, 2), 48 * 1024, );
    CUDA_OK(cudaGetLastError());
    CHECK(host_runs == 48);
    CUDA_OK(cudaFree(o));
}

static void test_memory() {
    std::vector<float> h(1000), back(1000, 0.0f);
    for (auto &v : h) v = frand();
    float *a = dev_upload(h), *b;
    CUDA_OK(cudaMalloc(&b, 1000 * sizeof(float)));
    CHECK((uintptr_t)a % 256 == 0 && (uintptr_t)b % 256 == 0);
    CUDA_OK(cudaMemcpy(b, a, 1000 * sizeof(float), cudaMemcpyDeviceToDevice));
    CUDA_OK(cudaMemcpy(back.data(), b, 1000 * sizeof(float), cudaMemcpyDefault));
    CHECK(back == h);
    /* An interior pointer is a device pointer too. */
    CUDA_OK(cudaMemcpy(back.data(), a + 10, 990 * sizeof(float), cudaMemcpyDeviceToHost));
    CHECK(back[0] == h[10] && back[989] == h[999]);
    CUDA_OK(cudaMemset(b, 0, 1000 * sizeof(float)));
    back = dev_download(b, 1000);
    CHECK(back == std::vector<float>(1000, 0.0f));
    /* New memory is NaN: a kernel reading what nobody wrote shows it. */
    float *c;
    CUDA_OK(cudaMalloc(&c, 8 * sizeof(float)));
    CHECK(isnan(dev_download(c, 8)[7]));
    CUDA_OK(cudaFree(c));

    /* Host pointers passed as device ones, and the reverse. */
    CHECK(cudaMemcpy(h.data(), back.data(), 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(back.data(), h.data(), 4, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(a, b, 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(back.data(), a, 4, cudaMemcpyHostToHost) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(back.data(), a, 1001 * sizeof(float), cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    CHECK(cudaMemcpy(back.data(), a, 4, (cudaMemcpyKind)7) == cudaErrorInvalidMemcpyDirection);
    CHECK(cudaMemset(h.data(), 0, 4) == cudaErrorInvalidValue);
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);

    /* cudaFree: NULL is fine; host, interior and freed pointers are not. */
    CUDA_OK(cudaFree(nullptr));
    CHECK(cudaFree(h.data()) == cudaErrorInvalidValue);
    CHECK(cudaFree(a + 1) == cudaErrorInvalidValue);
    CUDA_OK(cudaFree(a));
    CHECK(cudaFree(a) == cudaErrorInvalidValue);
    CUDA_OK(cudaFree(b));
    cudaGetLastError();

    void *z = &z;
    CUDA_OK(cudaMalloc(&z, 0));
    CHECK(z == nullptr);
}

/* Run with NB_EMU_MEM=64: all of it in one piece once everything is freed
 * (the free list coalesced), then nothing more. */
static void test_oom() {
    size_t fr, total;
    CUDA_OK(cudaMemGetInfo(&fr, &total));
    CHECK(total == 64u << 20 && fr == total);
    void *p[4];
    for (int i = 0; i < 4; i++) CUDA_OK(cudaMalloc(&p[i], 16u << 20));
    void *q = nullptr;
    CHECK(cudaMalloc(&q, 1) == cudaErrorMemoryAllocation);
    CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
    CUDA_OK(cudaFree(p[1]));
    CUDA_OK(cudaFree(p[2]));
    CUDA_OK(cudaMalloc(&q, 32u << 20)); /* the two neighbours merged */
    CHECK(q == p[1]);
    CUDA_OK(cudaFree(q));
    CUDA_OK(cudaFree(p[0]));
    CUDA_OK(cudaFree(p[3]));
    CUDA_OK(cudaMalloc(&q, 64u << 20));
    CUDA_OK(cudaFree(q));
    CHECK(cudaMalloc(&q, (64u << 20) + 1) == cudaErrorMemoryAllocation);
    CHECK(cudaMalloc(&q, (size_t)1 << 62) == cudaErrorMemoryAllocation);
    cudaGetLastError();
}

/* f(d) in a child, which must die of signal sig (and print nb_emu's note on
 * it); under AddressSanitizer, whose own handler reports a SEGV, a SIGSEGV
 * death may be an exit with an error instead. */
static bool dies_of(int sig, void (*f)(float *), float *d) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        nb_emu_adopt_after_fork();
        f(d);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
#ifdef __SANITIZE_ADDRESS__
    if (sig == SIGSEGV && WIFEXITED(st) && WEXITSTATUS(st) != 0) return true;
#endif
    return WIFSIGNALED(st) && WTERMSIG(st) == sig;
}
static bool dies_of_segv(void (*f)(float *), float *d) { return dies_of(SIGSEGV, f, d); }

static void host_reads(float *d) {
    volatile float v = d[3];
    (void)v;
}
static void host_writes(float *d) { d[0] = 1.0f; }
static void kernel_past_allocations(float *d) { LAUNCH(touch, 1, 1, 0, d, 1ll << 20); }
static void kernel_past_shared(float *d) { LAUNCH(overrun_shared, 1, 1, 64, d); }
static void kernel_stack_overflow(float *d) { LAUNCH(overflow_stack, 1, 1, 0, d, 1 << 20); }

/* A host buffer handed to a kernel: a GPU would fault, the emulator stops at the launch. */
static void kernel_host_arg(float *d) {
    static float host[16];
    LAUNCH(scale, 1, 16, 0, d, host, 16, 2.0f);
}

static void test_faults() {
    float *d;
    CUDA_OK(cudaMalloc(&d, 64 * sizeof(float)));
    fprintf(stderr, "(five deaths by SIGSEGV expected next)\n");
    CHECK(dies_of_segv(host_reads, d));
    CHECK(dies_of_segv(host_writes, d));
    CHECK(dies_of_segv(kernel_past_allocations, d));
    CHECK(dies_of_segv(kernel_past_shared, d));
    CHECK(dies_of_segv(kernel_stack_overflow, d));
    fprintf(stderr, "(one launch with a host pointer expected next)\n");
    CHECK(dies_of(SIGABRT, kernel_host_arg, d));
    /* The parent is unharmed: device memory still works. */
    LAUNCH(touch, 1, 1, 0, d, 5);
    CUDA_OK(cudaGetLastError());
    CHECK(dev_download(d, 8)[5] == 1.0f);
    CUDA_OK(cudaFree(d));
}

/* Column-major C = alpha op(A) op(B) + beta C, naively, in double. */
static void naive_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                double a = ta ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda];
                double b = tb ? B[j + (size_t)p * ldb] : B[p + (size_t)j * ldb];
                s += a * b;
            }
            float &c = C[i + (size_t)j * ldc];
            c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * c));
        }
}

static bool close_all(const std::vector<float> &got, const std::vector<float> &want) {
    for (size_t i = 0; i < got.size(); i++) {
        if (isnan(want[i]) ? !isnan(got[i]) : fabsf(got[i] - want[i]) > 1e-5f * (1.0f + fabsf(want[i]))) {
            fprintf(stderr, "  element %zu: got %g, want %g\n", i, got[i], want[i]);
            return false;
        }
    }
    return true;
}

static void test_cublas() {
    cublasHandle_t h;
    CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSetStream(h, 0) == CUBLAS_STATUS_SUCCESS);
    const int m = 37, n = 19, k = 23, batch = 3;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
            int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
            int lda = ar + 3, ldb = br + 5, ldc = m + 2;
            long long sa = (long long)lda * ac + 7, sb = (long long)ldb * bc + 1, sc = (long long)ldc * n + 11;
            std::vector<float> A(sa * batch), B(sb * batch), C0(sc * batch);
            for (auto &v : A) v = frand();
            for (auto &v : B) v = frand();
            for (auto &v : C0) v = frand();
            float *dA = dev_upload(A), *dB = dev_upload(B);
            for (float beta : {0.0f, 1.0f}) {
                float alpha = 0.75f;
                /* beta = 0: C's NaNs must not leak into the product. */
                std::vector<float> C = C0;
                if (beta == 0.0f)
                    for (int j = 0; j < n; j++)
                        for (int i = 0; i < m; i++) C[i + (size_t)j * ldc] = NAN;
                float *dC = dev_upload(C);
                CHECK(cublasSgemm(h, oa, ob, m, n, k, &alpha, dA, lda, dB, ldb, &beta, dC, ldc) ==
                      CUBLAS_STATUS_SUCCESS);
                std::vector<float> want = C;
                naive_gemm(ta, tb, m, n, k, alpha, A.data(), lda, B.data(), ldb, beta, want.data(), ldc);
                CHECK(close_all(dev_download(dC, C.size()), want));

                /* Strided batched, each batch its own A, B, C. */
                CUDA_OK(cudaMemcpy(dC, C.data(), C.size() * sizeof(float), cudaMemcpyHostToDevice));
                CHECK(cublasSgemmStridedBatched(h, oa, ob, m, n, k, &alpha, dA, lda, sa, dB, ldb, sb, &beta, dC, ldc,
                                                sc, batch) == CUBLAS_STATUS_SUCCESS);
                want = C;
                for (int b = 0; b < batch; b++)
                    naive_gemm(ta, tb, m, n, k, alpha, A.data() + b * sa, lda, B.data() + b * sb, ldb, beta,
                               want.data() + b * sc, ldc);
                CHECK(close_all(dev_download(dC, C.size()), want));

                /* Stride 0: one A for the whole batch. */
                CUDA_OK(cudaMemcpy(dC, C.data(), C.size() * sizeof(float), cudaMemcpyHostToDevice));
                CHECK(cublasSgemmStridedBatched(h, oa, ob, m, n, k, &alpha, dA, lda, 0, dB, ldb, sb, &beta, dC, ldc,
                                                sc, batch) == CUBLAS_STATUS_SUCCESS);
                want = C;
                for (int b = 0; b < batch; b++)
                    naive_gemm(ta, tb, m, n, k, alpha, A.data(), lda, B.data() + b * sb, ldb, beta,
                               want.data() + b * sc, ldc);
                CHECK(close_all(dev_download(dC, C.size()), want));
                CUDA_OK(cudaFree(dC));
            }
            /* lda one short of what the stored A needs. */
            float one = 1.0f, zero = 0.0f;
            float *dC;
            CUDA_OK(cudaMalloc(&dC, sc * batch * sizeof(float)));
            CHECK(cublasSgemm(h, oa, ob, m, n, k, &one, dA, ar - 1, dB, ldb, &zero, dC, ldc) ==
                  CUBLAS_STATUS_INVALID_VALUE);
            CHECK(cublasSgemm(h, oa, ob, m, n, k, &one, dA, lda, dB, br - 1, &zero, dC, ldc) ==
                  CUBLAS_STATUS_INVALID_VALUE);
            CHECK(cublasSgemm(h, oa, ob, m, n, k, &one, dA, lda, dB, ldb, &zero, dC, m - 1) ==
                  CUBLAS_STATUS_INVALID_VALUE);
            CHECK(cublasSgemmStridedBatched(h, oa, ob, m, n, k, &one, dA, ar - 1, sa, dB, ldb, sb, &zero, dC, ldc, sc,
                                            batch) == CUBLAS_STATUS_INVALID_VALUE);
            CUDA_OK(cudaFree(dC));
            CUDA_OK(cudaFree(dA));
            CUDA_OK(cudaFree(dB));
        }

    float one = 1.0f, zero = 0.0f;
    float *d;
    CUDA_OK(cudaMalloc(&d, 64 * sizeof(float)));
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 2, &one, d, 2, d, 2, &zero, d, 2) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h, (cublasOperation_t)9, CUBLAS_OP_N, 2, 2, 2, &one, d, 2, d, 2, &zero, d, 2) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, 0, d, 2, &zero, d, 2) ==
          CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 0, 0, 0, &one, d, 1, d, 1, &zero, d, 1) == CUBLAS_STATUS_SUCCESS);
    CHECK(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, 2, 4, d, 2, 4, &zero, d + 32, 2, 4,
                                    -1) == CUBLAS_STATUS_INVALID_VALUE);
    CHECK(cublasSgemm(nullptr, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, d, 2, d, 2, &zero, d, 2) ==
          CUBLAS_STATUS_NOT_INITIALIZED);
    /* k = 0: C = beta C, A and B unread; beta = 0 clears NaN. */
    std::vector<float> nan4(4, NAN);
    CUDA_OK(cudaMemcpy(d, nan4.data(), 4 * sizeof(float), cudaMemcpyHostToDevice));
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0, &one, nullptr, 2, nullptr, 1, &zero, d, 2) ==
          CUBLAS_STATUS_SUCCESS);
    CHECK(dev_download(d, 4) == std::vector<float>(4, 0.0f));
    /* A host matrix where a device one belongs. */
    std::vector<float> hostA(4, 1.0f);
    fprintf(stderr, "(one cuBLAS complaint expected next)\n");
    CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, hostA.data(), 2, d, 2, &zero, d + 8, 2) ==
          CUBLAS_STATUS_EXECUTION_FAILED);
    CUDA_OK(cudaFree(d));
    CHECK(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS);
}

/* A race: each thread reads its neighbour's shared word with no barrier
 * between the write and the read. */
__global__ void racy_neighbour(float *o) {
    __shared__ float s[64];
    unsigned t = threadIdx.x;
    s[t] = (float)t;
    o[t] = t + 1 < 64 ? s[t + 1] : -1.f;
}

/* Each block starts with its static shared memory poisoned (NaN), not with
 * what the block before left there. */
__global__ void shared_leftover(float *o) {
    __shared__ float s[32];
    if (threadIdx.x == 0) o[blockIdx.x] = s[5];
    __syncthreads();
    s[5] = 42.0f;
}

static void test_shared_poison() {
    float *o;
    CUDA_OK(cudaMalloc(&o, 4 * sizeof(float)));
    LAUNCH(shared_leftover, 4, 32, 0, o);
    CUDA_OK(cudaGetLastError());
    std::vector<float> h = dev_download(o, 4);
    CHECK(std::isnan(h[0]) && std::isnan(h[1]) && std::isnan(h[3]));
    CUDA_OK(cudaFree(o));
}

/* NB_EMU_ORDER=reverse runs threads last to first: a race gives another
 * result, which is how make cuda-emu finds races (it runs the tests both ways). */
static void test_order() {
    float *o;
    CUDA_OK(cudaMalloc(&o, 64 * sizeof(float)));
    const char *old = getenv("NB_EMU_ORDER");
    std::string saved = old ? old : "";
    std::vector<float> r[2];
    for (int k = 0; k < 2; k++) {
        setenv("NB_EMU_ORDER", k ? "reverse" : "forward", 1);
        LAUNCH(racy_neighbour, 1, 64, 0, o);
        CUDA_OK(cudaGetLastError());
        r[k] = dev_download(o, 64);
    }
    if (old) setenv("NB_EMU_ORDER", saved.c_str(), 1);
    else unsetenv("NB_EMU_ORDER");
    CHECK(r[1][0] == 1.0f && r[1][62] == 63.0f); /* the neighbour ran first */
    CHECK(r[0][0] != 1.0f);                      /* it had not: the read was stale */
    CUDA_OK(cudaFree(o));
}

static void test_runtime() {
    int count = 0, dev = -1;
    CUDA_OK(cudaGetDeviceCount(&count));
    CHECK(count == 1);
    CUDA_OK(cudaSetDevice(0));
    CHECK(cudaSetDevice(1) == cudaErrorInvalidDevice);
    CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
    CUDA_OK(cudaGetDevice(&dev));
    CHECK(dev == 0);
    cudaDeviceProp p;
    CUDA_OK(cudaGetDeviceProperties(&p, 0));
    CHECK(strcmp(p.name, "nabla CUDA emulator") == 0 && p.totalGlobalMem == 64u << 20 && p.multiProcessorCount >= 1);
    CHECK(strcmp(cudaGetErrorString(cudaErrorInvalidConfiguration), "invalid configuration argument") == 0);
    cudaStream_t s;
    CUDA_OK(cudaStreamCreate(&s));
    CUDA_OK(cudaStreamSynchronize(s));
    CUDA_OK(cudaStreamDestroy(s));
    CUDA_OK(cudaDeviceSynchronize());
}

/* After fork, the child of a process that used CUDA cannot: every call fails
 * with cudaErrorInitializationError, as on a real GPU; the parent goes on. */
static void test_fork() {
    float *p = nullptr;
    CUDA_OK(cudaMalloc(&p, 64));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        float *q = nullptr;
        float h[16] = {0};
        int bad = 0;
        bad += cudaMalloc(&q, 64) != cudaErrorInitializationError;
        bad += cudaMemcpy(h, p, 64, cudaMemcpyDeviceToHost) != cudaErrorInitializationError;
        LAUNCH(scale, 1, 16, 0, p, p, 16, 2.0f);
        bad += cudaGetLastError() != cudaErrorInitializationError;
        cublasHandle_t hd;
        bad += cublasCreate(&hd) != CUBLAS_STATUS_NOT_INITIALIZED;
        _exit(bad);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CUDA_OK(cudaMemset(p, 0, 64)); /* the parent's device is untouched */
    CUDA_OK(cudaFree(p));
}

static void timings() {
    const long long n = 1000000;
    std::vector<float> hx(n, 1.0f);
    float *x = dev_upload(hx), *y;
    CUDA_OK(cudaMalloc(&y, n * sizeof(float)));
    unsigned blocks = (unsigned)((n + 255) / 256);
    LAUNCH(scale, blocks, 256, 0, y, x, n, 2.0f); /* warm up: stacks, pages */
    int reps = 20;
    double t0 = now();
    for (int r = 0; r < reps; r++) LAUNCH(scale, blocks, 256, 0, y, x, n, 2.0f);
    double el = (now() - t0) / reps;
    CUDA_OK(cudaGetLastError());
    CHECK(dev_download(y, n)[n - 1] == 2.0f);
    printf("elementwise, 10^6 threads (%u blocks of 256): %.2f ms per launch, %.1f M threads/s\n", blocks, el * 1e3,
           n / el * 1e-6);

    float *out;
    CUDA_OK(cudaMalloc(&out, 4096 * sizeof(float)));
    LAUNCH(reduce_dyn, 1, 1024, 1024 * sizeof(float), out, x, 1024);
    reps = 50;
    t0 = now();
    for (int r = 0; r < reps; r++) LAUNCH(reduce_dyn, 1, 1024, 1024 * sizeof(float), out, x, 1024);
    double rd = (now() - t0) / reps;
    CUDA_OK(cudaGetLastError());
    CHECK(dev_download(out, 1)[0] == 1024.0f);
    printf("block reduction, 1024 threads, 11 barriers: %.3f ms per launch (%.0f ns per thread per barrier)\n",
           rd * 1e3, rd / (1024.0 * 11) * 1e9);

    LAUNCH(reduce_static, 3907, 256, 0, out, x, 256 * 3907);
    t0 = now();
    reps = 3;
    for (int r = 0; r < reps; r++) LAUNCH(reduce_static, 3907, 256, 0, out, x, 256 * 3907);
    double rs = (now() - t0) / reps;
    printf("block reductions over 10^6 elements (3907 blocks of 256, 9 barriers): %.1f ms per launch\n", rs * 1e3);

    LAUNCH(reduce_shfl, 3907, 256, 0, out, x, 256 * 3907);
    t0 = now();
    for (int r = 0; r < reps; r++) LAUNCH(reduce_shfl, 3907, 256, 0, out, x, 256 * 3907);
    double rw = (now() - t0) / reps;
    printf("shuffle reductions over 10^6 elements (3907 blocks of 256): %.1f ms per launch\n", rw * 1e3);
    CUDA_OK(cudaGetLastError());
    CUDA_OK(cudaFree(out));
    CUDA_OK(cudaFree(x));
    CUDA_OK(cudaFree(y));
}

int main() {
    setenv("NB_EMU_MEM", "64", 1); /* read at the first call: small, so that running out is cheap */
    test_runtime();
    test_memory();
    test_elementwise();
    test_reductions();
    test_launch_errors();
    test_faults();
    test_cublas();
    test_oom();
    test_fork();
    test_order();
    test_shared_poison();
    timings();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
