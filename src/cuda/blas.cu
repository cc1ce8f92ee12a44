/* blas.cu — matrix products, batched or not, through cuBLAS (sgemm in the
 * math mode nb__gpu_init chose: fp32 throughout, no TF32).
 *
 * cuBLAS is column-major; nabla is row-major. A row-major matrix with row
 * stride ld is, read column-major with leading dimension ld, its transpose.
 * So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: pass b
 * as cuBLAS's first operand and a as its second, swap m and n, keep each
 * operand's transpose flag, and the row strides serve as the leading
 * dimensions unchanged. */
#include "common.h"
#include <limits.h>


/* C = beta C over m x n (zeros when beta = 0, whatever C held, NaN
 * included): the product when k = 0, where A and B hold nothing. */
static __global__ void scale_c_kernel(float *c, int64_t m, int64_t n, int64_t ldc, int64_t stride_c, int64_t batch,
                                      float beta) {
    int64_t mn = m * n, total = batch * mn;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = i / mn, r = (i - b * mn) / n, j = i - b * mn - r * n;
        float *p = c + b * stride_c + r * ldc + j;
        *p = beta == 0.f ? 0.f : beta * *p;
    }
}

/* A row stride is read only to step from one row to the next, so for a
 * matrix of one row it may be anything; cuBLAS checks it against the row's
 * length all the same, so such a stride is raised to that length. */
static int64_t row_stride(int64_t ld, int64_t rows, int64_t cols) { return rows == 1 && ld < cols ? cols : ld; }

void nb__gpu_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  int64_t stride_a, const float *b, int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                  int64_t stride_c, int64_t batch) {
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (k <= 0) {
        /* cuBLAS's handling of k = 0 is a corner case not worth relying on.
         * With stride_c = 0 every product writes the one C: scale it once. */
        int64_t nb = stride_c == 0 ? 1 : batch;
        NB_LAUNCH(scale_c_kernel, nb__gpu_blocks(nb * m * n), NB_GPU_THREADS, 0, c, m, n, ldc, stride_c, nb, beta);
        NB_GPU_CHECK_LAUNCH("gemm (k = 0)");
        return;
    }
    lda = ta ? row_stride(lda, k, m) : row_stride(lda, m, k);
    ldb = tb ? row_stride(ldb, n, k) : row_stride(ldb, k, n);
    ldc = row_stride(ldc, m, n);
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX || ldc > INT_MAX ||
        batch > INT_MAX)
        nb_fatal("cuda", "gemm: m %lld, n %lld, k %lld, lda %lld, ldb %lld, ldc %lld or batch %lld exceeds cuBLAS's int",
                 (long long)m, (long long)n, (long long)k, (long long)lda, (long long)ldb, (long long)ldc,
                 (long long)batch);
    /* The transpose of op(B) is B^T, which is b as stored (OP_N), when B is
     * not transposed; likewise for A. */
    cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t st;
    if (batch == 1)
        st = cublasSgemm(nb__gpu_cublas(), opb, opa, (int)n, (int)m, (int)k, &alpha, b, (int)ldb, a, (int)lda, &beta, c,
                         (int)ldc);
    else
        st = cublasSgemmStridedBatched(nb__gpu_cublas(), opb, opa, (int)n, (int)m, (int)k, &alpha, b, (int)ldb,
                                       (long long)stride_b, a, (int)lda, (long long)stride_a, &beta, c, (int)ldc,
                                       (long long)stride_c, (int)batch);
    if (st != CUBLAS_STATUS_SUCCESS)
        nb_fatal("cuda",
                 "%s(ta %d, tb %d, m %lld, n %lld, k %lld, lda %lld, ldb %lld, ldc %lld, strides %lld %lld %lld, batch "
                 "%lld): %s",
                 batch == 1 ? "cublasSgemm" : "cublasSgemmStridedBatched", (int)ta, (int)tb, (long long)m, (long long)n,
                 (long long)k, (long long)lda, (long long)ldb, (long long)ldc, (long long)stride_a, (long long)stride_b,
                 (long long)stride_c, (long long)batch, cublasGetStatusString(st));
    /* A launch failure inside cuBLAS shows here, naming the product. */
    NB_GPU_CHECK_LAUNCH("gemm");
}
