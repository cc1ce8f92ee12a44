/* matmul.c — (batched) matrix products through OpenBLAS's sgemm, and the
 * linear layer y = x W^T + b in PyTorch's weight layout. */
#include "../core/internal.h"
#include <cblas.h>

/* Dimensions of op(a) op(b) for one batch element. */
typedef struct { int64_t m, k, n, batch; int nd; int64_t shape[NB_MAXDIM]; } mm_dims;

static void mm_check(nb_tensor *a, nb_tensor *b, bool ta, bool tb, mm_dims *d) {
    if (a->ndim < 2 || b->ndim < 2) nb__shape_fatal("matmul", a, b, "operands need at least 2 dimensions");
    int64_t am = a->shape[a->ndim - 2], ak = a->shape[a->ndim - 1];
    int64_t bk = b->shape[b->ndim - 2], bn = b->shape[b->ndim - 1];
    d->m = ta ? ak : am;
    d->k = ta ? am : ak;
    int64_t k2 = tb ? bn : bk;
    d->n = tb ? bk : bn;
    if (d->k != k2) nb__shape_fatal("matmul", a, b, "inner dimensions differ");
    /* Batch dims: equal, or one operand is a plain matrix shared by all. */
    const nb_tensor *big = a->ndim >= b->ndim ? a : b;
    if (a->ndim > 2 && b->ndim > 2) {
        if (a->ndim != b->ndim) nb__shape_fatal("matmul", a, b, "batch dimensions differ");
        for (int k = 0; k < a->ndim - 2; k++)
            if (a->shape[k] != b->shape[k]) nb__shape_fatal("matmul", a, b, "batch dimensions differ");
    }
    d->nd = big->ndim;
    d->batch = 1;
    for (int k = 0; k < big->ndim - 2; k++) {
        d->shape[k] = big->shape[k];
        d->batch *= big->shape[k];
    }
    d->shape[d->nd - 2] = d->m;
    d->shape[d->nd - 1] = d->n;
}

/* c = op(a) op(b) + beta c, per batch element. */
static void mm_kernel(const nb_tensor *a, const nb_tensor *b, bool ta, bool tb, const mm_dims *d, float *c, float beta) {
    int64_t lda = a->shape[a->ndim - 1], ldb = b->shape[b->ndim - 1];
    if (nb__on_gpu(a)) { /* cuBLAS: one strided-batched call (stride 0 for a shared operand) */
        if (d->batch > 1 && a->ndim > 2 && b->ndim == 2 && !ta)
            nb__gpu_gemm(ta, tb, d->m * d->batch, d->n, d->k, 1.f, a->data, lda, 0, b->data, ldb, 0, beta, c, d->n, 0, 1);
        else
            nb__gpu_gemm(ta, tb, d->m, d->n, d->k, 1.f, a->data, lda, a->ndim > 2 ? d->m * d->k : 0, b->data, ldb,
                         b->ndim > 2 ? d->k * d->n : 0, beta, c, d->n, d->m * d->n, d->batch);
        return;
    }
    CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
    if (d->batch > 1 && a->ndim > 2 && b->ndim == 2 && !ta) {
        /* A stack of matrices times one matrix is one tall product. */
        cblas_sgemm(CblasRowMajor, TA, TB, (int)(d->m * d->batch), (int)d->n, (int)d->k, 1.f, a->data, (int)lda,
                    b->data, (int)ldb, beta, c, (int)d->n);
        return;
    }
    int64_t sa = a->ndim > 2 ? d->m * d->k : 0, sb = b->ndim > 2 ? d->k * d->n : 0;
    for (int64_t i = 0; i < d->batch; i++)
        cblas_sgemm(CblasRowMajor, TA, TB, (int)d->m, (int)d->n, (int)d->k, 1.f, a->data + i * sa, (int)lda,
                    b->data + i * sb, (int)ldb, beta, c + i * d->m * d->n, (int)d->n);
}

/* The gradient of an operand that was shared across the batch is the sum of
 * the per-batch gradients. */
static void accum_mm(nb_tensor *x, nb_tensor *g) {
    if (!x->requires_grad) return;
    nb__accum(x, nb_same_shape(x, g) ? g : nb_sum_to(g, x->ndim, x->shape));
}

/* --- weight gradients from sparse operands ----------------------------------
 * A weight gradient p^T q often has a p that is mostly exact zeros: a linear
 * layer's output gradient G [N, out] under a ReLU is zero wherever the unit
 * was off (over 60% in the MLP of examples/ after one epoch), and so is a
 * ReLU's output fed to a matmul. c [m, n] += p^T q for p [N, m], q [N, n]
 * then needs only p's nonzeros:
 *   c[o, :] += sum over b with p[b, o] != 0 of p[b, o] q[b, :],
 * rows of q times scalars added into rows of c. With at most SPARSE_DENSITY
 * nonzeros this beats the dense GEMM, which cannot skip zeros (the MLP trains
 * ~17% faster: `nabla train examples/mlp.cfg --steps 1000 --json` against a
 * build without it; a threshold of 85% was no faster than 50%). The sums run
 * over b in order, so the result does not depend on the thread count. */
#define SPARSE_DENSITY 0.5
#define SPARSE_COLS 128 /* columns of q and c per pass: 8 16-float accumulators */
#define SPARSE_MIN 1024 /* entries of p below which the scan is not worth it */

typedef float v16 __attribute__((vector_size(64), aligned(4))); /* unaligned loads and stores */

/* co[0 .. 16*nv) += sum over one column's list of v * q[b, same columns]. */
static inline void sparse_rows(float *co, const float *q, int64_t ldq, const int32_t *rows, const float *vals,
                               int32_t nnz, int nv) {
    v16 acc[SPARSE_COLS / 16];
    for (int v = 0; v < nv; v++) acc[v] = *(const v16 *)(co + 16 * v);
    for (int32_t k = 0; k < nnz; k++) {
        const float *qr = q + rows[k] * ldq;
        const float s = vals[k];
        for (int v = 0; v < nv; v++) acc[v] += s * *(const v16 *)(qr + 16 * v);
    }
    for (int v = 0; v < nv; v++) *(v16 *)(co + 16 * v) = acc[v];
}

/* c [m, n] += p^T q for p [N, m], q [N, n], when p is sparse enough; false,
 * with nothing done, otherwise. */
static bool sparse_tn_product(const nb_tensor *P, const nb_tensor *Q, float *c) {
    int64_t N = P->shape[0], m = P->shape[1], n = Q->shape[1];
    if (N > INT32_MAX || N * m < SPARSE_MIN) return false;
    const float *pd = P->data, *qd = Q->data;
    /* Nonzeros per column (o) of p, counted without branches. */
    int32_t *cnt = nb_arena_alloc(sizeof(int32_t) * (size_t)m);
    memset(cnt, 0, sizeof(int32_t) * (size_t)m);
    for (int64_t b = 0; b < N; b++)
        for (int64_t o = 0; o < m; o++) cnt[o] += pd[b * m + o] != 0.f;
    int64_t nnz = 0;
    for (int64_t o = 0; o < m; o++) nnz += cnt[o];
    if ((double)nnz > SPARSE_DENSITY * (double)(N * m)) return false;
    /* Each column's nonzeros in row order, from start[o], with one spare
     * slot after them: every entry is written, and a zero's write is
     * overwritten by the column's next nonzero, or lands in the spare slot. */
    int32_t *start = nb_arena_alloc(sizeof(int32_t) * (size_t)m);
    int32_t *fill = nb_arena_alloc(sizeof(int32_t) * (size_t)m);
    int32_t *rows = nb_arena_alloc(sizeof(int32_t) * (size_t)(nnz + m));
    float *vals = nb_arena_alloc(sizeof(float) * (size_t)(nnz + m));
    for (int64_t o = 0, at = 0; o < m; at += cnt[o] + 1, o++) start[o] = fill[o] = (int32_t)at;
    for (int64_t b = 0; b < N; b++)
        for (int64_t o = 0; o < m; o++) {
            float v = pd[b * m + o];
            rows[fill[o]] = (int32_t)b;
            vals[fill[o]] = v;
            fill[o] += v != 0.f;
        }
    /* A block of q's columns stays in L1 while every row of c takes it. */
    int64_t j0 = 0;
    for (; j0 + SPARSE_COLS <= n; j0 += SPARSE_COLS)
        for (int64_t o = 0; o < m; o++)
            sparse_rows(c + o * n + j0, qd + j0, n, rows + start[o], vals + start[o], cnt[o], SPARSE_COLS / 16);
    int nv = (int)((n - j0) / 16);
    if (nv)
        for (int64_t o = 0; o < m; o++)
            sparse_rows(c + o * n + j0, qd + j0, n, rows + start[o], vals + start[o], cnt[o], nv);
    for (j0 += 16 * nv; j0 < n; j0++) /* the last n % 16 columns */
        for (int64_t o = 0; o < m; o++) {
            float s = c[o * n + j0];
            for (int32_t k = start[o]; k < start[o] + cnt[o]; k++) s += vals[k] * qd[rows[k] * n + j0];
            c[o * n + j0] = s;
        }
    return true;
}

/* x's gradient op(p) op(q): one GEMM with beta = 1 straight into x's .grad
 * when nb_backward allows it and the product is a single matrix of x's
 * shape (nb__direct_grad), which saves zeroing a result and adding it in
 * (p^T q from p's nonzeros alone when p is sparse); otherwise the matmul op,
 * summed over a shared batch. */
static void accum_product(nb_tensor *x, nb_tensor *p, nb_tensor *q, bool tp, bool tq) {
    if (!x->requires_grad) return;
    float *direct = x->ndim == 2 ? nb__direct_grad(x) : NULL;
    mm_dims d;
    if (direct) {
        mm_check(p, q, tp, tq, &d);
        if (d.batch == 1 && d.nd == 2 && d.m == x->shape[0] && d.n == x->shape[1]) {
            if (d.k && !(tp && !tq && sparse_tn_product(p, q, direct))) mm_kernel(p, q, tp, tq, &d, direct, 1.f);
            return;
        }
    }
    accum_mm(x, nb_matmul_t(p, q, tp, tq));
}

/* c = op(a) op(b). With G = dL/dc:
 *   c = a b      : da = G b^T      db = a^T G
 *   c = a^T b    : da = b G^T      db = a G
 *   c = a b^T    : da = G b        db = G^T a
 *   c = a^T b^T  : da = b^T G^T    db = G^T a^T */
static void matmul_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *a = n->in[0], *b = n->in[1];
    bool ta = n->i[0], tb = n->i[1];
    if (a->requires_grad) {
        if (!ta) accum_product(a, g, b, false, !tb);
        else if (!tb) accum_product(a, b, g, false, true);
        else accum_product(a, b, g, true, true);
    }
    if (b->requires_grad) {
        if (b->ndim == 2 && a->ndim > 2 && !ta) {
            /* Shared b, folded a: reduce over the batch inside one GEMM. */
            nb_tensor *a2 = nb_reshape(a, 2, (int64_t[]){-1, a->shape[a->ndim - 1]});
            nb_tensor *g2 = nb_reshape(g, 2, (int64_t[]){-1, g->shape[g->ndim - 1]});
            if (!tb) accum_product(b, a2, g2, true, false);
            else accum_product(b, g2, a2, true, false);
        } else if (!ta) {
            if (!tb) accum_product(b, a, g, true, false);
            else accum_product(b, g, a, true, false);
        } else {
            if (!tb) accum_product(b, a, g, false, false);
            else accum_product(b, g, a, true, true);
        }
    }
}
static const nb_op op_matmul = {"matmul", matmul_bw};

nb_tensor *nb_matmul_t(nb_tensor *a, nb_tensor *b, bool ta, bool tb) {
    mm_dims d;
    mm_check(a, b, ta, tb, &d);
    nb_tensor *out = nb__new_on(NB_DEVICE("matmul", a, b), d.nd, d.shape);
    if (out->size) {
        if (d.k) mm_kernel(a, b, ta, tb, &d, out->data, 0.f);
        else nb_fill(out, 0.f); /* an empty sum */
    }
    nb_node *n = nb__record(&op_matmul, out, (nb_tensor *[]){a, b}, 2);
    if (n) {
        n->i[0] = ta;
        n->i[1] = tb;
    }
    return out;
}

nb_tensor *nb_matmul(nb_tensor *a, nb_tensor *b) { return nb_matmul_t(a, b, false, false); }

/* The linear layer as one op for 2-D x [N, in], w [out, in], b [out]:
 * y = x w^T + b, the bias copied into y's rows and the GEMM adding to it
 * (beta = 1), instead of a GEMM and a broadcast add. With G = dL/dy:
 *   dx = G w,   dw = G^T x,   db = sum of G's rows,
 * dw added straight into .grad when nb_backward allows it, from G's nonzeros
 * alone when G is mostly zeros (accum_product). */
static void linear_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
    accum_product(x, g, w, false, false);
    accum_product(w, g, x, true, false);
    /* The bias is out floats: routing its gradient costs nothing worth a
     * direct path. */
    if (b && b->requires_grad) nb__accum(b, nb_sum(g, (int[]){0}, 1, false));
}
static const nb_op op_linear = {"linear", linear_bw};

nb_tensor *nb_linear(nb_tensor *x, nb_tensor *w, nb_tensor *b) {
    bool fused = x->ndim == 2 && w->ndim == 2 && (!b || (b->ndim == 1 && b->shape[0] == w->shape[0]));
    if (!fused) {
        nb_tensor *y = nb_matmul_t(x, w, false, true);
        return b ? nb_add(y, b) : y;
    }
    if (x->shape[1] != w->shape[1]) nb__shape_fatal("linear", x, w, "x [N, in] and w [out, in] differ in 'in'");
    int64_t N = x->shape[0], nout = w->shape[0], nin = w->shape[1]; /* not I: <complex.h>'s, via cblas.h */
    nb_device dev = NB_DEVICE("linear", x, w, b);
    nb_tensor *y = nb__new_on(dev, 2, (int64_t[]){N, nout});
    if (dev == NB_CUDA && y->size) {
        if (b) nb__gpu_strided_copy(y->data, b->data, 2, (int64_t[]){N, nout}, (int64_t[]){0, 1});
        else if (!nin) nb_fill(y, 0.f);
    }
    for (int64_t i = 0; dev == NB_CPU && i < N; i++) {
        if (b) memcpy(y->data + i * nout, b->data, sizeof(float) * (size_t)nout);
        else if (!nin) memset(y->data + i * nout, 0, sizeof(float) * (size_t)nout); /* an empty sum */
    }
    mm_dims d;
    mm_check(x, w, false, true, &d);
    if (y->size && nin) mm_kernel(x, w, false, true, &d, y->data, b ? 1.f : 0.f);
    nb__record(&op_linear, y, (nb_tensor *[]){x, w, b}, b ? 3 : 2);
    return y;
}
