/* shape.c — ops that move data without arithmetic: reshape, broadcast_to and
 * its adjoint sum_to. (Tensors are always contiguous; reshape shares data.) */
#include "../core/internal.h"

/* out = x viewed with a new shape;  dx = reshape(g, x.shape) */
static void reshape_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], nb_reshape(g, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_reshape = {"reshape", reshape_bw};

nb_tensor *nb_reshape(nb_tensor *x, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > NB_MAXDIM) nb_fatal("reshape", "%d dimensions (at most %d)", ndim, NB_MAXDIM);
    int64_t s[NB_MAXDIM], known = 1;
    int infer = -1;
    for (int k = 0; k < ndim; k++) {
        s[k] = shape[k];
        if (s[k] == -1) {
            if (infer >= 0) nb_fatal("reshape", "more than one -1 in the new shape");
            infer = k;
        } else {
            if (s[k] < 0) nb_fatal("reshape", "negative dimension %lld", (long long)s[k]);
            known *= s[k];
        }
    }
    if (infer >= 0) s[infer] = known ? x->size / known : 0;
    int64_t n = nb_shape_numel(ndim, s);
    if (n != x->size) {
        char a[96];
        nb_fatal("reshape", "cannot view a tensor of shape %s (%lld elements) with %lld elements",
                 nb_shape_str(x, a, sizeof a), (long long)x->size, (long long)n);
    }
    nb_tensor *out = nb_detach(x);
    out->ndim = ndim;
    for (int k = 0; k < NB_MAXDIM; k++) out->shape[k] = k < ndim ? s[k] : 1;
    nb__record(&op_reshape, out, &x, 1);
    return out;
}

nb_tensor *nb_flatten(nb_tensor *x, int start) {
    int a = nb__axis("flatten", x, start);
    int64_t s[NB_MAXDIM];
    for (int k = 0; k < a; k++) s[k] = x->shape[k];
    s[a] = -1;
    return nb_reshape(x, a + 1, s);
}

/* Index arithmetic shared by broadcast_to and sum_to: for every element of
 * the big tensor, the offset of the element of the small one it maps to. */
static int64_t small_offset(int64_t i, int nd, const int64_t *big, const int64_t *sst) {
    int64_t off = 0;
    for (int k = nd - 1; k >= 0; k--) {
        int64_t idx = i % big[k];
        i /= big[k];
        off += idx * sst[k];
    }
    return off;
}

static void small_strides(int nd, const int64_t *big, int snd, const int64_t *small, int64_t *sst, const char *op) {
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int ks = k - (nd - snd);
        int64_t d = ks >= 0 ? small[ks] : 1;
        if (d != 1 && d != big[k]) nb_fatal(op, "dimension %d: %lld does not broadcast to %lld", k, (long long)d, (long long)big[k]);
        sst[k] = d == 1 ? 0 : s;
        s *= d;
    }
}

/* out = x repeated along broadcast dims;  dx = sum_to(g, x.shape) */
static void broadcast_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], nb_sum_to(g, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_broadcast = {"broadcast_to", broadcast_bw};

nb_tensor *nb_broadcast_to(nb_tensor *x, int ndim, const int64_t *shape) {
    if (ndim < x->ndim) nb_fatal("broadcast_to", "target has fewer dimensions (%d) than the input (%d)", ndim, x->ndim);
    int64_t sst[NB_MAXDIM];
    small_strides(ndim, shape, x->ndim, x->shape, sst, "broadcast_to");
    nb_tensor *out = nb__new(ndim, shape);
    const float *px = x->data;
    float *po = out->data;
    int64_t n = out->size;
    NB_OMP_FOR(n)
    for (int64_t i = 0; i < n; i++) po[i] = px[small_offset(i, ndim, shape, sst)];
    nb__record(&op_broadcast, out, &x, 1);
    return out;
}

/* Whether small is [1, ..., 1, big's trailing dims]: then summing is a sum of
 * contiguous rows. */
static bool is_trailing(int nd, const int64_t *big, int snd, const int64_t *small) {
    int k = nd - 1;
    for (; k >= 0; k--) {
        int ks = k - (nd - snd);
        if (ks < 0 || small[ks] != big[k]) break;
    }
    for (; k >= 0; k--) {
        int ks = k - (nd - snd);
        if (ks >= 0 && small[ks] != 1) return false;
    }
    return true;
}

/* out = x summed over the dims where shape has 1 (or lacks the dim);
 * dx = broadcast_to(g, x.shape) */
static void sum_to_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], nb_broadcast_to(g, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_sum_to = {"sum_to", sum_to_bw};

nb_tensor *nb_sum_to(nb_tensor *x, int ndim, const int64_t *shape) {
    if (ndim > x->ndim) nb_fatal("sum_to", "target has more dimensions (%d) than the input (%d)", ndim, x->ndim);
    int64_t sst[NB_MAXDIM];
    small_strides(x->ndim, x->shape, ndim, shape, sst, "sum_to");
    nb_tensor *out = nb_zeros(ndim, shape);
    const float *px = x->data;
    float *po = out->data;
    int nd = x->ndim;
    int64_t n = x->size, m = out->size;
    if (m == 1) {
        double s = 0;
        NB_PRAGMA(omp parallel for reduction(+ : s) if (n >= NB_PAR_MIN))
        for (int64_t i = 0; i < n; i++) s += px[i];
        po[0] = (float)s;
    } else if (is_trailing(nd, x->shape, ndim, shape)) {
        /* Common case (bias gradients): x is [rows, m] summed over rows. */
        int64_t rows = n / m;
        for (int64_t r = 0; r < rows; r++) {
            const float *row = px + r * m;
            for (int64_t j = 0; j < m; j++) po[j] += row[j];
        }
    } else {
        for (int64_t i = 0; i < n; i++) po[small_offset(i, nd, x->shape, sst)] += px[i];
    }
    nb__record(&op_sum_to, out, &x, 1);
    return out;
}

nb_tensor *nb_sum_all(nb_tensor *x) { return nb_sum_to(x, 0, NULL); }
