/* shape.c — ops that move data without arithmetic: reshape, broadcast_to and
 * its adjoint sum_to, permute/transpose, slice and concat, gather_rows and its
 * adjoint scatter_rows. (Tensors are always contiguous and never written in
 * place once made, so reshape and some slices share their input's data.) */
#include "../core/internal.h"

/* out = x viewed with a new shape;  dx = reshape(g, x.shape) (a uniform
 * gradient stays one) */
static void reshape_bw(nb_node *n, nb_tensor *g) {
    if (nb__uniform(n, g)) nb__accum_uniform(n->in[0], g);
    else nb__accum(n->in[0], nb_reshape(g, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_reshape = {"reshape", reshape_bw, .uniform = true};

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
            /* Checked before multiplying: signed overflow is undefined, and a
             * wrapped product could even match x's size. */
            if (s[k] && known > INT64_MAX / s[k])
                nb_fatal("reshape", "the new shape's size overflows (dimension %d is %lld)", k, (long long)s[k]);
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

/* The big tensor seen as [outer, run]: the longest run of trailing dims
 * along which the small one is either copied as is (*copy = true: equal
 * dims) or repeated (*copy = false: the small dims are all 1). Whole runs
 * then move with one offset computation instead of one per element. */
static int64_t trailing_run(int nd, const int64_t *big, const int64_t *sst, bool *copy) {
    int k = nd - 1;
    while (k >= 0 && big[k] == 1) k--; /* size-1 dims fit either kind */
    if (k < 0) {
        *copy = true;
        return 1;
    }
    *copy = sst[k] != 0;
    int64_t run = 1;
    for (int j = nd - 1; j >= 0; j--) {
        if (big[j] != 1 && (sst[j] != 0) != *copy) break;
        run *= big[j];
    }
    return run;
}

/* out = x repeated along broadcast dims;  dx = sum_to(g, x.shape) */
static void broadcast_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], nb_sum_to(g, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_broadcast = {"broadcast_to", broadcast_bw};

nb_tensor *nb_broadcast_to(nb_tensor *x, int ndim, const int64_t *shape) {
    if (ndim < x->ndim) nb_fatal("broadcast_to", "target has fewer dimensions (%d) than the input (%d)", ndim, x->ndim);
    /* Before small_strides fills sst[ndim]: more dims overflowed it. */
    if (ndim > NB_MAXDIM) nb_fatal("broadcast_to", "target has %d dimensions (at most %d)", ndim, NB_MAXDIM);
    for (int k = 0; k < ndim; k++)
        if (shape[k] < 0) nb_fatal("broadcast_to", "negative dimension %lld in the target", (long long)shape[k]);
    int64_t sst[NB_MAXDIM];
    small_strides(ndim, shape, x->ndim, x->shape, sst, "broadcast_to");
    nb_tensor *out = nb__new_on(x->device, ndim, shape);
    if (nb__on_gpu(x)) {
        if (out->size) nb__gpu_strided_copy(out->data, x->data, ndim, shape, sst);
        nb__record(&op_broadcast, out, &x, 1);
        return out;
    }
    const float *px = x->data;
    float *po = out->data;
    int64_t n = out->size;
    bool copy;
    int64_t run = trailing_run(ndim, shape, sst, &copy), outer = run ? n / run : 0;
    NB_PARALLEL_FOR(n, for (int64_t o = 0; o < outer; o++) {
        const float *src = px + nb__strided_offset(o * run, ndim, shape, sst);
        float *dst = po + o * run;
        if (copy) {
            memcpy(dst, src, sizeof(float) * (size_t)run);
        } else {
            const float v = src[0]; /* hoisted: dst might alias src for all the compiler knows */
            for (int64_t j = 0; j < run; j++) dst[j] = v;
        }
    });
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
 * dx = broadcast_to(g, x.shape), uniform when g has one element. */
static void sum_to_bw(nb_node *n, nb_tensor *g) {
    if (g->size == 1) nb__accum_uniform(n->in[0], g);
    else nb__accum(n->in[0], nb_broadcast_to(g, n->in[0]->ndim, n->in[0]->shape));
}
static const nb_op op_sum_to = {"sum_to", sum_to_bw, .uniform = true};

nb_tensor *nb_sum_to(nb_tensor *x, int ndim, const int64_t *shape) {
    if (ndim > x->ndim) nb_fatal("sum_to", "target has more dimensions (%d) than the input (%d)", ndim, x->ndim);
    if (ndim < 0) nb_fatal("sum_to", "target has %d dimensions", ndim);
    int64_t sst[NB_MAXDIM];
    small_strides(x->ndim, x->shape, ndim, shape, sst, "sum_to");
    if (nb__on_gpu(x)) {
        nb_tensor *out = nb__new_on(NB_CUDA, ndim, shape);
        unsigned mask = 0; /* the dims that are summed: broadcast in the target */
        for (int k = 0; k < x->ndim; k++)
            if (sst[k] == 0 && x->shape[k] != 1) mask |= 1u << k;
        if (!x->size) nb_fill(out, 0.f);
        else nb__gpu_sum_mask(x, mask, out->data);
        nb__record(&op_sum_to, out, &x, 1);
        return out;
    }
    nb_tensor *out = nb_zeros(ndim, shape);
    const float *px = x->data;
    float *po = out->data;
    int nd = x->ndim;
    int64_t n = x->size, m = out->size;
    if (m == 0) {
        /* An empty target ([2, 0, 5] summed to [0, 5], the gradient of a
         * broadcast of an empty tensor): nothing to add, and the row count
         * n / m below would divide by zero. */
    } else if (m == 1) {
        po[0] = (float)nb__sum_floats(px, n);
    } else if (is_trailing(nd, x->shape, ndim, shape)) {
        /* Common case (bias gradients): x is [rows, m] summed over rows. */
        int64_t rows = n / m;
        for (int64_t r = 0; r < rows; r++) {
            const float *row = px + r * m;
            for (int64_t j = 0; j < m; j++) po[j] += row[j];
        }
    } else {
        /* Runs of x either add element-wise into a run of out, or all into
         * one element of out (e.g. [N, C, H, W] to [C, 1, 1]). Serial, so
         * the order of the additions is fixed. */
        bool copy;
        int64_t run = trailing_run(nd, x->shape, sst, &copy), outer = run ? n / run : 0;
        for (int64_t o = 0; o < outer; o++) {
            const float *src = px + o * run;
            float *dst = po + nb__strided_offset(o * run, nd, x->shape, sst);
            if (copy) {
                for (int64_t j = 0; j < run; j++) dst[j] += src[j];
            } else {
                float acc[8] = {0}; /* eight lanes, so the sum vectorizes */
                int64_t j = 0;
                for (; j + 8 <= run; j += 8)
                    for (int l = 0; l < 8; l++) acc[l] += src[j + l];
                float t = 0;
                for (; j < run; j++) t += src[j];
                dst[0] += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + t;
            }
        }
    }
    nb__record(&op_sum_to, out, &x, 1);
    return out;
}

nb_tensor *nb_sum_all(nb_tensor *x) { return nb_sum_to(x, 0, NULL); }

/* --- permute / transpose ------------------------------------------------ */

/* Product of shape[from..to). */
static int64_t dims_prod(const int64_t *shape, int from, int to) {
    int64_t p = 1;
    for (int k = from; k < to; k++) p *= shape[k];
    return p;
}

/* A permutation, simplified: size-1 dims dropped and output dims that are
 * also adjacent in the input merged, so most permutations become a plain
 * copy, a copy of contiguous rows, or a batch of 2-D transposes. */
typedef struct {
    int m;                 /* merged dims, in output order */
    int64_t d[NB_MAXDIM];  /* sizes */
    int64_t is[NB_MAXDIM]; /* strides in the input */
    int64_t os[NB_MAXDIM]; /* strides in the (contiguous) output */
} perm_plan;

static void perm_plan_make(const nb_tensor *x, const int *perm, perm_plan *p) {
    int64_t xst[NB_MAXDIM], s = 1;
    for (int k = x->ndim - 1; k >= 0; k--) {
        xst[k] = s;
        s *= x->shape[k];
    }
    p->m = 0;
    for (int k = 0; k < x->ndim; k++) {
        int64_t d = x->shape[perm[k]], st = xst[perm[k]];
        if (d == 1) continue;
        /* The previous (outer) output dim continues this one in the input too. */
        if (p->m && p->is[p->m - 1] == st * d) {
            p->d[p->m - 1] *= d;
            p->is[p->m - 1] = st;
            continue;
        }
        p->d[p->m] = d;
        p->is[p->m] = st;
        p->m++;
    }
    s = 1;
    for (int k = p->m - 1; k >= 0; k--) {
        p->os[k] = s;
        s *= p->d[k];
    }
}

#define NB_TILE 64 /* tile edge of the blocked transpose, done in 8x8 blocks */

static void permute_kernel(const float *px, float *po, const perm_plan *p, int64_t size) {
    int L = p->m - 1;
    if (p->is[L] == 1) {
        /* The innermost output dim is contiguous in the input: copy rows. */
        int64_t len = p->d[L], rows = size / len;
        NB_PARALLEL_FOR(size, for (int64_t r = 0; r < rows; r++) {
            memcpy(po + r * len, px + nb__strided_offset(r, L, p->d, p->is), (size_t)len * sizeof(float));
        });
        return;
    }
    /* Otherwise the input's innermost dim is some other output dim q: each
     * (q, L) plane is a 2-D transpose, done in tiles so that both the strided
     * reads and the contiguous writes stay in cache; inside a tile, full 8x8
     * blocks have constant trip counts that the compiler unrolls, and each
     * touches just 8 cache lines on either side. */
    int q = 0;
    while (p->is[q] != 1) q++;
    int64_t od[NB_MAXDIM], ois[NB_MAXDIM], oos[NB_MAXDIM];
    int no = 0;
    for (int k = 0; k < L; k++)
        if (k != q) {
            od[no] = p->d[k];
            ois[no] = p->is[k];
            oos[no] = p->os[k];
            no++;
        }
    int64_t nq = (p->d[q] + NB_TILE - 1) / NB_TILE, nl = (p->d[L] + NB_TILE - 1) / NB_TILE;
    int64_t tasks = dims_prod(od, 0, no) * nq * nl;
    int64_t sq = p->os[q], sl = p->is[L], dq = p->d[q], dl = p->d[L];
    NB_PARALLEL_FOR(size, for (int64_t t = 0; t < tasks; t++) {
        int64_t bl = t % nl, bq = (t / nl) % nq, c = t / (nl * nq);
        const float *src = px + nb__strided_offset(c, no, od, ois);
        float *dst = po + nb__strided_offset(c, no, od, oos);
        int64_t i0 = bq * NB_TILE, i1 = i0 + NB_TILE < dq ? i0 + NB_TILE : dq;
        int64_t j0 = bl * NB_TILE, j1 = j0 + NB_TILE < dl ? j0 + NB_TILE : dl;
        for (int64_t ib = i0; ib < i1; ib += 8)
            for (int64_t jb = j0; jb < j1; jb += 8) {
                if (ib + 8 <= i1 && jb + 8 <= j1) {
                    for (int i = 0; i < 8; i++)
                        for (int j = 0; j < 8; j++) dst[(ib + i) * sq + jb + j] = src[ib + i + (jb + j) * sl];
                } else {
                    for (int64_t i = ib; i < i1 && i < ib + 8; i++)
                        for (int64_t j = jb; j < j1 && j < jb + 8; j++) dst[i * sq + j] = src[i + j * sl];
                }
            }
    });
}

/* out.shape[k] = x.shape[perm[k]];  dx = permute(g, perm^-1) */
static void permute_bw(nb_node *n, nb_tensor *g) {
    int nd = n->in[0]->ndim, inv[NB_MAXDIM];
    for (int k = 0; k < nd; k++) inv[n->i[k]] = k;
    nb__accum(n->in[0], nb_permute(g, inv));
}
static const nb_op op_permute = {"permute", permute_bw};

nb_tensor *nb_permute(nb_tensor *x, const int *perm) {
    int nd = x->ndim, p[NB_MAXDIM];
    unsigned seen = 0;
    int64_t shape[NB_MAXDIM];
    for (int k = 0; k < nd; k++) {
        p[k] = perm[k] < 0 ? perm[k] + nd : perm[k];
        if (p[k] < 0 || p[k] >= nd || (seen >> p[k] & 1u)) {
            char s[96];
            nb_fatal("permute", "entry %d (= %d) makes no permutation of the %d axes of a tensor of shape %s", k,
                     perm[k], nd, nb_shape_str(x, s, sizeof s));
        }
        seen |= 1u << p[k];
        shape[k] = x->shape[p[k]];
    }
    perm_plan plan;
    perm_plan_make(x, p, &plan);
    /* Nothing moves (identity, or only size-1 dims reordered): a view. */
    if (x->size == 0 || plan.m == 0 || (plan.m == 1 && plan.is[0] == 1)) return nb_reshape(x, nd, shape);
    nb_tensor *out = nb__new_on(x->device, nd, shape);
    if (nb__on_gpu(x)) nb__gpu_strided_copy(out->data, x->data, plan.m, plan.d, plan.is);
    else permute_kernel(x->data, out->data, &plan, out->size);
    nb_node *n = nb__record(&op_permute, out, &x, 1);
    if (n)
        for (int k = 0; k < nd; k++) n->i[k] = p[k];
    return out;
}

nb_tensor *nb_transpose(nb_tensor *x, int axis0, int axis1) {
    int a = nb__axis("transpose", x, axis0), b = nb__axis("transpose", x, axis1), p[NB_MAXDIM];
    for (int k = 0; k < x->ndim; k++) p[k] = k;
    p[a] = b;
    p[b] = a;
    return nb_permute(x, p);
}

/* --- slice and its adjoint (zero padding), concat ----------------------- */

/* x viewed as [outer, x.shape[axis], inner]. */
static void split_at(const nb_tensor *x, int axis, int64_t *outer, int64_t *inner) {
    *outer = dims_prod(x->shape, 0, axis);
    *inner = dims_prod(x->shape, axis + 1, x->ndim);
}

static nb_tensor *slice_pad(nb_tensor *g, int axis, int64_t start, int64_t full);

/* out = x[..., start:stop, ...] along axis;  dx = g zero-padded back to x.shape */
static void slice_bw(nb_node *n, nb_tensor *g) {
    nb_tensor *x = n->in[0];
    nb__accum(x, slice_pad(g, (int)n->i[0], n->i[1], x->shape[n->i[0]]));
}
static const nb_op op_slice = {"slice", slice_bw};

nb_tensor *nb_slice(nb_tensor *x, int axis, int64_t start, int64_t stop) {
    int a = nb__axis("slice", x, axis);
    int64_t d = x->shape[a], b = start < 0 ? start + d : start, e = stop < 0 ? stop + d : stop;
    if (b < 0 || e > d || b > e) {
        char s[96];
        nb_fatal("slice", "range [%lld, %lld) out of bounds for axis %d (size %lld) of a tensor of shape %s",
                 (long long)start, (long long)stop, axis, (long long)d, nb_shape_str(x, s, sizeof s));
    }
    int64_t outer, inner, shape[NB_MAXDIM];
    split_at(x, a, &outer, &inner);
    nb__shape_copy(shape, x->shape, x->ndim);
    shape[a] = e - b;
    nb_tensor *out;
    if (outer == 1) {
        /* One contiguous block (slicing the leading axis, e.g. a mini-batch
         * of a dataset): a view, no copy. */
        out = nb_detach(x);
        out->data = x->data + b * inner;
        out->ndim = x->ndim;
        nb__shape_copy(out->shape, shape, x->ndim);
        out->size = (e - b) * inner;
    } else if (nb__on_gpu(x)) {
        out = nb__new_on(NB_CUDA, x->ndim, shape);
        if (out->size) nb__gpu_strided_copy(out->data, x->data + b * inner, 3, (int64_t[]){outer, e - b, inner},
                                            (int64_t[]){d * inner, inner, 1});
    } else {
        out = nb__new(x->ndim, shape);
        int64_t len = (e - b) * inner;
        const float *px = x->data;
        float *po = out->data;
        NB_PARALLEL_FOR(out->size, for (int64_t o = 0; o < outer; o++) {
            memcpy(po + o * len, px + (o * d + b) * inner, (size_t)len * sizeof(float));
        });
    }
    nb_node *n = nb__record(&op_slice, out, &x, 1);
    if (n) {
        n->i[0] = a;
        n->i[1] = b;
    }
    return out;
}

/* out = zeros with `full` entries along axis and g in [start, start + g.shape[axis]);
 * the adjoint of slice, so dg = slice(gg, axis, start, start + g.shape[axis]). */
static void slice_pad_bw(nb_node *n, nb_tensor *g) {
    int a = (int)n->i[0];
    nb__accum(n->in[0], nb_slice(g, a, n->i[1], n->i[1] + n->in[0]->shape[a]));
}
static const nb_op op_slice_pad = {"slice_pad", slice_pad_bw};

static nb_tensor *slice_pad(nb_tensor *g, int axis, int64_t start, int64_t full) {
    int64_t outer, inner, shape[NB_MAXDIM], len = g->shape[axis];
    split_at(g, axis, &outer, &inner);
    nb__shape_copy(shape, g->shape, g->ndim);
    shape[axis] = full;
    nb_tensor *out = nb__new_on(g->device, g->ndim, shape);
    nb_fill(out, 0.f);
    const float *pg = g->data;
    float *po = out->data;
    size_t bytes = (size_t)(len * inner) * sizeof(float);
    if (nb__on_gpu(g)) {
        nb__gpu_copy_rows(po + start * inner, full * inner, pg, len * inner, outer, len * inner);
    } else {
        NB_PARALLEL_FOR(g->size, for (int64_t o = 0; o < outer; o++) {
            memcpy(po + (o * full + start) * inner, pg + o * len * inner, bytes);
        });
    }
    nb_node *n = nb__record(&op_slice_pad, out, &g, 1);
    if (n) {
        n->i[0] = axis;
        n->i[1] = start;
    }
    return out;
}

/* out = [x_0, x_1, ...] along axis;  dx_k = slice(g, axis, off_k, off_k + x_k.shape[axis]) */
static void concat_bw(nb_node *n, nb_tensor *g) {
    int a = (int)n->i[0];
    int64_t off = 0;
    for (int k = 0; k < n->nin; k++) {
        nb_tensor *x = n->in[k];
        int64_t len = x->shape[a];
        if (x->requires_grad) nb__accum(x, nb_slice(g, a, off, off + len));
        off += len;
    }
}
static const nb_op op_concat = {"concat", concat_bw};

nb_tensor *nb_concat(nb_tensor **xs, int n, int axis) {
    if (n < 1) nb_fatal("concat", "needs at least one tensor, got %d", n);
    int a = nb__axis("concat", xs[0], axis);
    int64_t shape[NB_MAXDIM], total = 0;
    for (int k = 0; k < n; k++) {
        if (xs[k]->ndim != xs[0]->ndim) nb__shape_fatal("concat", xs[0], xs[k], "numbers of dimensions differ");
        for (int j = 0; j < xs[0]->ndim; j++)
            if (j != a && xs[k]->shape[j] != xs[0]->shape[j])
                nb__shape_fatal("concat", xs[0], xs[k], "shapes differ outside the concatenation axis");
        total += xs[k]->shape[a];
    }
    nb__shape_copy(shape, xs[0]->shape, xs[0]->ndim);
    shape[a] = total;
    nb_device dev = nb__device_of("concat", n, xs);
    nb_tensor *out = nb__new_on(dev, xs[0]->ndim, shape);
    int64_t outer, inner;
    split_at(out, a, &outer, &inner);
    float *po = out->data;
    if (dev == NB_CUDA) { /* one block copy per piece: its rows into their columns of out */
        int64_t off = 0;
        for (int k = 0; k < n; k++) {
            int64_t len = xs[k]->shape[a] * inner;
            nb__gpu_copy_rows(po + off, total * inner, xs[k]->data, len, outer, len);
            off += len;
        }
        nb_node *nd = nb__record(&op_concat, out, xs, n);
        if (nd) nd->i[0] = a;
        return out;
    }
    /* Each outer index gets one contiguous piece of every input, in order. */
    NB_PARALLEL_FOR(out->size, for (int64_t o = 0; o < outer; o++) {
        float *dst = po + o * total * inner;
        for (int k = 0; k < n; k++) {
            int64_t len = xs[k]->shape[a] * inner;
            memcpy(dst, xs[k]->data + o * len, (size_t)len * sizeof(float));
            dst += len;
        }
    });
    nb_node *nd = nb__record(&op_concat, out, xs, n);
    if (nd) nd->i[0] = a;
    return out;
}

/* --- gather_rows / scatter_rows (adjoint pair) --------------------------- */

static void check_rows(const char *op, const int32_t *idx, int64_t n, int64_t bound) {
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= bound)
            nb_fatal(op, "index %d (entry %lld) is out of range [0, %lld)", idx[i], (long long)i, (long long)bound);
}

/* A copy of idx in the arena: the backward pass runs after the caller's
 * array may be gone, and the arena copy dies with the tape that uses it. */
static int32_t *rows_copy(const int32_t *idx, int64_t n) {
    int32_t *c = nb_arena_alloc((size_t)n * sizeof(int32_t));
    if (n) memcpy(c, idx, (size_t)n * sizeof(int32_t));
    return c;
}

static nb_tensor *gather_rows(nb_tensor *x, const int32_t *idx, int64_t n, bool keep_idx);
static nb_tensor *scatter_rows(nb_tensor *x, const int32_t *idx, int64_t rows, bool keep_idx);

/* out [n, ...] = x[idx[i], ...];  dx = scatter_rows(g, idx, x.shape[0]) */
static void gather_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], scatter_rows(g, n->aux, n->in[0]->shape[0], false));
}
static const nb_op op_gather = {"gather_rows", gather_bw};

/* out [rows, ...]: out[idx[i], ...] += x[i, ...];  dx = gather_rows(g, idx, x.shape[0]) */
static void scatter_bw(nb_node *n, nb_tensor *g) {
    nb__accum(n->in[0], gather_rows(g, n->aux, n->in[0]->shape[0], false));
}
static const nb_op op_scatter = {"scatter_rows", scatter_bw};

/* The kernels, for idx already checked. keep_idx: idx belongs to the caller
 * and is copied if recorded; backward rules pass the arena copy they hold. */
static nb_tensor *gather_rows(nb_tensor *x, const int32_t *idx, int64_t n, bool keep_idx) {
    int64_t shape[NB_MAXDIM], d = dims_prod(x->shape, 1, x->ndim);
    nb__shape_copy(shape, x->shape, x->ndim);
    shape[0] = n;
    nb_tensor *out = nb__new_on(x->device, x->ndim, shape);
    const float *px = x->data;
    float *po = out->data;
    if (nb__on_gpu(x)) {
        if (out->size) nb__gpu_gather_rows(po, px, nb__to_gpu_arena(idx, sizeof(int32_t) * (size_t)n), n, d);
    } else {
        NB_PARALLEL_FOR(out->size, for (int64_t i = 0; i < n; i++) {
            memcpy(po + i * d, px + (int64_t)idx[i] * d, (size_t)d * sizeof(float));
        });
    }
    nb_node *nd = nb__record(&op_gather, out, &x, 1);
    if (nd) nd->aux = keep_idx ? rows_copy(idx, n) : (void *)idx;
    return out;
}

/* The GPU's scatter as a gather: on the host, each output row's source rows
 * (the i with idx[i] = r, ascending: the CPU's order of addition) as a
 * compressed list, by a counting sort; on the GPU, each output element sums
 * its sources in that order. Deterministic without atomics, and a row that
 * many indices name costs its own threads only. */
static void scatter_rows_gpu(float *po, const float *px, const int32_t *idx, int64_t n, int64_t rows, int64_t d) {
    int64_t *start = nb_arena_alloc(sizeof(int64_t) * (size_t)(rows + 1));
    int64_t *from = nb_arena_alloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t r = 0; r <= rows; r++) start[r] = 0;
    for (int64_t i = 0; i < n; i++) start[idx[i] + 1]++;
    for (int64_t r = 0; r < rows; r++) start[r + 1] += start[r];
    /* start[r] is row r's first slot; filling advances it to the next row's */
    for (int64_t i = 0; i < n; i++) from[start[idx[i]]++] = i;
    for (int64_t r = rows; r > 0; r--) start[r] = start[r - 1];
    start[0] = 0;
    nb__gpu_scatter_rows(po, px, nb__to_gpu_arena(start, sizeof(int64_t) * (size_t)(rows + 1)),
                         nb__to_gpu_arena(from, sizeof(int64_t) * (size_t)n), rows, d);
}

static nb_tensor *scatter_rows(nb_tensor *x, const int32_t *idx, int64_t rows, bool keep_idx) {
    int64_t shape[NB_MAXDIM], n = x->shape[0], d = dims_prod(x->shape, 1, x->ndim);
    nb__shape_copy(shape, x->shape, x->ndim);
    shape[0] = rows;
    if (nb__on_gpu(x)) {
        nb_tensor *out = nb__new_on(NB_CUDA, x->ndim, shape);
        if (out->size) scatter_rows_gpu(out->data, x->data, idx, n, rows, d);
        nb_node *nd = nb__record(&op_scatter, out, &x, 1);
        if (nd) nd->aux = keep_idx ? rows_copy(idx, n) : (void *)idx;
        return out;
    }
    nb_tensor *out = nb_zeros(x->ndim, shape);
    const float *px = x->data;
    float *po = out->data;
    /* Repeated indices add into the same row, so rows cannot be split among
     * threads; columns can: each thread owns one band of columns (at least a
     * 64-byte line wide) and walks all of idx in order, which also keeps the
     * sums deterministic. */
    int64_t th = x->size >= NB_PAR_MIN ? nb_get_threads() : 1, band = (d + th - 1) / th;
    band = band < 16 ? 16 : (band + 15) / 16 * 16;
    int64_t bands = (d + band - 1) / band;
    NB_PARALLEL(bands > 1, for schedule(static), for (int64_t b = 0; b < bands; b++) {
        int64_t c0 = b * band, c1 = c0 + band < d ? c0 + band : d;
        for (int64_t i = 0; i < n; i++) {
            float *dst = po + (int64_t)idx[i] * d;
            const float *src = px + i * d;
            for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
        }
    });
    nb_node *nd = nb__record(&op_scatter, out, &x, 1);
    if (nd) nd->aux = keep_idx ? rows_copy(idx, n) : (void *)idx;
    return out;
}

nb_tensor *nb_gather_rows(nb_tensor *x, const int32_t *idx, int64_t n) {
    if (x->ndim < 1) nb_fatal("gather_rows", "needs a tensor with at least 1 dimension, got a scalar");
    if (n < 0) nb_fatal("gather_rows", "negative number of indices %lld", (long long)n);
    check_rows("gather_rows", idx, n, x->shape[0]);
    return gather_rows(x, idx, n, true);
}

nb_tensor *nb_scatter_rows(nb_tensor *x, const int32_t *idx, int64_t rows) {
    if (x->ndim < 1) nb_fatal("scatter_rows", "needs a tensor with at least 1 dimension, got a scalar");
    if (rows < 0) nb_fatal("scatter_rows", "negative number of rows %lld", (long long)rows);
    check_rows("scatter_rows", idx, x->shape[0], rows);
    return scatter_rows(x, idx, rows, true);
}
