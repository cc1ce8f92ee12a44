/* graph.c — the tape and reverse-mode differentiation (eq. 6.45-6.46:
 * grad_x z = J^T grad_y z, applied node by node from the loss back).
 *
 * Ops record nodes as they run (define-by-run); nodes are kept in creation
 * order, so walking the tape backwards visits every node after all of its
 * consumers: a valid reverse topological order with no sorting. Each backward
 * rule is written with nb_* ops; when a pass runs with create_graph those ops
 * are recorded too, so gradients can be differentiated again (Hessian-vector
 * products by double backward, as PyTorch does). */
#include "internal.h"

static _Thread_local bool grad_on = true;
static _Thread_local bool into_leaf_grads; /* inside nb_backward's pass */

bool nb_set_grad_enabled(bool on) {
    bool old = grad_on;
    grad_on = on;
    return old;
}
bool nb_grad_enabled(void) { return grad_on; }

nb_node *nb__record(const nb_op *op, nb_tensor *out, nb_tensor **in, int nin) {
    if (!grad_on) return NULL;
    bool any = false;
    for (int k = 0; k < nin; k++) any |= in[k] && in[k]->requires_grad;
    if (!any) return NULL;
    nb_node *n = nb_arena_alloc(sizeof *n);
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->nin = nin;
    n->in = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)(nin ? nin : 1));
    for (int k = 0; k < nin; k++) n->in[k] = in[k];
    nb_node **tape = nb__tape();
    n->prev = *tape;
    *tape = n;
    out->node = n;
    out->requires_grad = true;
    return n;
}

nb_tensor *nb__whole(const nb_tensor *x, nb_tensor *g) {
    if (nb_same_shape(x, g)) return g;
    if (g->size == x->size) return nb_reshape(g, x->ndim, x->shape);
    int64_t ones[NB_MAXDIM];
    for (int k = 0; k < x->ndim; k++) ones[k] = 1;
    return nb_broadcast_to(nb_reshape(g, x->ndim, ones), x->ndim, x->shape);
}

void nb__accum(nb_tensor *x, nb_tensor *gi) {
    if (!x || !x->requires_grad || !gi) return;
    if (x->size != gi->size) nb__shape_fatal("backward", x, gi, "gradient does not match its tensor");
    if (x->device != gi->device)
        nb_fatal("backward", "a gradient on %s for a tensor on %s (a backward rule left its device)",
                 nb_device_str(gi->device), nb_device_str(x->device));
    if (!x->tgrad) {
        /* Gradient tensors are never written in place (sums make new
         * tensors), so sharing gi between several inputs is safe. */
        x->tgrad = gi;
    } else {
        x->tgrad = nb_add(nb__whole(x, x->tgrad), gi);
    }
}

/* A filled tensor of x's shape on x's device. */
static nb_tensor *full_like(const nb_tensor *x, float v) {
    nb_tensor *t = nb_empty_like(x);
    nb_fill(t, v);
    return t;
}

float *nb__direct_grad(nb_tensor *x) {
    /* The in-place paths are host loops: a GPU gradient takes the ops' way. */
    if (nb__on_gpu(x)) return NULL;
    if (!into_leaf_grads || grad_on || !x->requires_grad || x->node || !x->persistent || !x->grad) return NULL;
    return x->grad->data;
}

void nb__accum_uniform(nb_tensor *x, nb_tensor *g) {
    if (!x || !x->requires_grad) return;
    if (g->size != 1) nb__shape_fatal("backward", x, g, "a uniform gradient needs one element");
    float *dst = nb__direct_grad(x);
    if (dst) {
        const float v = g->data[0];
        int64_t m = x->size;
        NB_PARALLEL_FOR(m, for (int64_t i = 0; i < m; i++) { dst[i] += v; });
        return;
    }
    /* A stand-in is shaped [] so that it broadcasts against anything; a
     * second one adds to it, a whole gradient takes it in by broadcasting. */
    g = nb_reshape(nb_to(g, x->device), 0, NULL);
    x->tgrad = x->tgrad ? nb_add(x->tgrad, g) : g;
}

/* Runs node n's backward rule with the gradient accumulated for its output;
 * a uniform stand-in is broadcast whole unless the op takes it as is. */
void nb__node_backward(nb_node *n) {
    nb_tensor *g = n->out->tgrad;
    if (!g) return;
    /* On the GPU a stand-in is always broadcast: the rules' uniform paths
     * read its value on the host. */
    bool as_is = nb_same_shape(g, n->out) || (nb__uniform(n, g) && n->op->uniform && !grad_on && !nb__on_gpu(n->out));
    if (!as_is) g = n->out->tgrad = nb__whole(n->out, g);
    n->op->backward(n, g);
}

static void clear_pass(nb_node *from) {
    for (nb_node *n = from; n; n = n->prev) {
        n->out->tgrad = NULL;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k]) n->in[k]->tgrad = NULL;
    }
}

/* Runs the tape backwards from out's node, leaving gradients in ->tgrad. */
static void run_backward(nb_tensor *out, bool create_graph) {
    if (!out->node) return;
    bool old = nb_set_grad_enabled(create_graph);
    out->tgrad = full_like(out, 1.f);
    for (nb_node *n = out->node; n; n = n->prev) nb__node_backward(n);
    nb_set_grad_enabled(old);
}

void nb_backward(nb_tensor *loss) {
    if (loss->size != 1) {
        char s[96];
        nb_fatal("backward", "needs a one-element loss, got shape %s", nb_shape_str(loss, s, sizeof s));
    }
    if (!loss->node) {
        /* A loss that no tensor requiring a gradient reached has nothing to
         * give: calling backward on it is a mistake (PyTorch raises too),
         * and silence would leave every .grad at zero with no hint why. */
        if (!loss->requires_grad)
            nb_fatal("backward", "the loss does not depend on any tensor that requires a gradient "
                                 "(computed with recording off, nb_set_grad_enabled(false), or from constants only)");
        /* The loss is itself a leaf: dL/dL = 1 goes into its own .grad (as
         * nb_grad gives 1 for wrt == out). */
        if (loss->grad) {
            if (nb__on_gpu(loss)) nb__gpu_accum(loss->grad->data, full_like(loss, 1.f)->data, 1);
            else loss->grad->data[0] += 1.f;
        }
        return;
    }
    into_leaf_grads = true;
    run_backward(loss, false);
    into_leaf_grads = false;
    /* Persistent leaves keep their gradient across steps: add into .grad.
     * Each leaf is cleared after the first visit so it is added once. */
    for (nb_node *n = loss->node; n; n = n->prev) {
        for (int k = 0; k < n->nin; k++) {
            nb_tensor *x = n->in[k];
            if (!x || x->node || !x->tgrad || !x->grad) continue;
            float *dst = x->grad->data;
            const float *src = nb__whole(x, x->tgrad)->data;
            int64_t m = x->size;
            if (nb__on_gpu(x)) nb__gpu_accum(dst, src, m);
            else NB_PARALLEL_FOR(m, for (int64_t i = 0; i < m; i++) { dst[i] += src[i]; });
            x->tgrad = NULL;
        }
    }
    clear_pass(loss->node);
}

void nb_grad(nb_tensor *out, nb_tensor **wrt, int n, nb_tensor **grads, bool create_graph) {
    if (out->size != 1) {
        char s[96];
        nb_fatal("grad", "needs a one-element output, got shape %s", nb_shape_str(out, s, sizeof s));
    }
    /* A wrt tensor that is itself `out` (or already carries a stale scratch
     * gradient from user code) must start clean. */
    for (int k = 0; k < n; k++) wrt[k]->tgrad = NULL;
    run_backward(out, create_graph);
    for (int k = 0; k < n; k++) {
        nb_tensor *g = wrt[k] == out ? full_like(out, 1.f) : wrt[k]->tgrad;
        grads[k] = g ? nb__whole(wrt[k], g) : full_like(wrt[k], 0.f);
    }
    if (out->node) clear_pass(out->node);
    for (int k = 0; k < n; k++) wrt[k]->tgrad = NULL;
}

void nb_hvp(nb_tensor *loss, nb_tensor **params, nb_tensor **v, int n, nb_tensor **hv) {
    /* H v = grad_theta (grad_theta L . v): one backward with create_graph,
     * a dot product with v, and a second backward. No finite differences. */
    for (int k = 0; k < n; k++) /* checked here, or the reshape below would be named */
        if (v[k]->size != params[k]->size) nb__shape_fatal("hvp", params[k], v[k], "v[k] must have params[k]'s size");
    nb_tensor **g = nb_arena_alloc(sizeof(nb_tensor *) * (size_t)n);
    nb_grad(loss, params, n, g, true);
    bool old = nb_set_grad_enabled(true);
    nb_tensor *dot = NULL;
    for (int k = 0; k < n; k++) {
        nb_tensor *vk = nb_detach(v[k]);
        nb_tensor *term = nb_sum_all(nb_mul(g[k], nb_reshape(vk, g[k]->ndim, g[k]->shape)));
        dot = dot ? nb_add(dot, term) : term;
    }
    nb_set_grad_enabled(old);
    if (!dot || !dot->requires_grad) { /* gradient independent of params: H = 0 */
        for (int k = 0; k < n; k++) hv[k] = full_like(params[k], 0.f);
        return;
    }
    nb_grad(dot, params, n, hv, false);
}
