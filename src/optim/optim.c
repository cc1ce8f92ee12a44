/* optim.c — first-order optimizers (SGD with momentum/Nesterov, Adam, AdamW)
 * with PyTorch's update rules and their state as named persistent tensors. */
#include "../core/internal.h"
#include "update.h"
#include <math.h>
#include <stdlib.h>

/* A step splits all parameters' elements into one equal share per thread,
 * so small and large tensors share the threads and no thread waits at a
 * barrier per tensor. Within a share the work goes in runs of at most SPAN
 * that fit in L2 cache, so summing replicas' gradients into a run and then
 * updating it is one pass over memory. */
#define SPAN 16384
typedef struct { int p; int64_t lo, hi; } span; /* elements [lo, hi) of parameter p */

struct nb_optim {
    nb_optim_opts o;     /* with defaults resolved */
    double beta1, beta2; /* in double for the bias corrections 1 - beta^t */
    nb_param *params;    /* a copy of the caller's array */
    int n;
    int64_t steps; /* steps taken; Adam's t is steps after the increment */
    int nstate;
    nb_tensor **state;  /* SGD: v_i; Adam/AdamW: m_i, v_i interleaved */
    const char **names; /* heap strings, one per state tensor */
};

static bool finite_nonneg(float x) { return isfinite(x) && x >= 0.f; }

/* Validates the options (they come from configs and command lines, so a bad
 * value is an error to report, not a crash) and fills in the defaults. */
static int resolve(const nb_optim_opts *in, nb_optim_opts *o, double *b1, double *b2) {
    if (!in) return nb_error("optim: options are NULL");
    *o = *in;
    if (o->kind != NB_SGD && o->kind != NB_ADAM && o->kind != NB_ADAMW)
        return nb_error("optim: unknown optimizer kind %d", (int)o->kind);
    if (!finite_nonneg(o->lr)) return nb_error("optim: lr must be a finite number >= 0, got %g", (double)o->lr);
    if (!finite_nonneg(o->weight_decay))
        return nb_error("optim: weight_decay must be a finite number >= 0, got %g", (double)o->weight_decay);
    if (o->kind == NB_SGD) {
        if (!finite_nonneg(o->momentum))
            return nb_error("optim: momentum must be a finite number >= 0, got %g", (double)o->momentum);
        /* PyTorch refuses this too: without momentum Nesterov is plain SGD,
         * which is surely not what was asked for. */
        if (o->nesterov && o->momentum == 0.f) return nb_error("optim: nesterov needs momentum > 0");
        return 0;
    }
    /* Defaults in double so 1 - 0.9^t is as PyTorch computes it (Python floats). */
    *b1 = o->beta1 == 0.f ? 0.9 : (double)o->beta1;
    *b2 = o->beta2 == 0.f ? 0.999 : (double)o->beta2;
    if (o->eps == 0.f) o->eps = 1e-8f;
    if (!(*b1 > 0 && *b1 < 1)) return nb_error("optim: beta1 must be in (0, 1), got %g", *b1);
    if (!(*b2 > 0 && *b2 < 1)) return nb_error("optim: beta2 must be in (0, 1), got %g", *b2);
    if (!finite_nonneg(o->eps)) return nb_error("optim: eps must be a finite number > 0, got %g", (double)o->eps);
    o->beta1 = (float)*b1;
    o->beta2 = (float)*b2;
    return 0;
}

static nb_tensor *state_tensor(nb_optim *op, const nb_tensor *like, const char *fmt, int i) {
    char buf[64];
    snprintf(buf, sizeof buf, fmt, i);
    char *name = malloc(strlen(buf) + 1);
    if (!name) nb_oom("the optimizer", 0);
    strcpy(name, buf);
    nb_tensor *t = nb_tensor_new(like->ndim, like->shape);
    t->name = name;
    op->names[op->nstate] = name;
    op->state[op->nstate++] = t;
    return t;
}

nb_optim *nb_optim_new(const nb_optim_opts *opts, nb_param *params, int n) {
    nb_optim_opts o;
    double b1 = 0, b2 = 0;
    if (resolve(opts, &o, &b1, &b2) < 0) return NULL;
    if (n < 0 || (n > 0 && !params)) {
        nb_error("optim: %d parameters given%s", n, params ? "" : " with a NULL array");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = params[i].t;
        if (!t) {
            nb_error("optim: parameter %d is NULL", i);
            return NULL;
        }
        /* State tensors and .grad live as long as the optimizer; an arena
         * tensor would die at the next reset. */
        if (!t->persistent) {
            nb_error("optim: parameter %d%s%s is an arena tensor; parameters must be made with nb_tensor_new", i,
                     t->name ? " " : "", t->name ? t->name : "");
            return NULL;
        }
    }
    nb_optim *op = calloc(1, sizeof *op);
    int per = o.kind == NB_SGD ? (o.momentum > 0.f ? 1 : 0) : 2;
    size_t ns = (size_t)n * (size_t)per;
    if (!op || !(op->params = malloc(sizeof(nb_param) * (size_t)(n ? n : 1))) ||
        !(op->state = calloc(ns ? ns : 1, sizeof(nb_tensor *))) || !(op->names = calloc(ns ? ns : 1, sizeof(char *))))
        nb_oom("the optimizer", 0);
    op->o = o;
    op->beta1 = b1;
    op->beta2 = b2;
    op->n = n;
    if (n) memcpy(op->params, params, sizeof(nb_param) * (size_t)n);
    for (int i = 0; i < n; i++) {
        if (o.kind == NB_SGD) {
            /* A zero buffer makes the first step v = mu*0 + g = g, PyTorch's
             * first-step rule, and lets a checkpoint restore v before step 1. */
            if (per) state_tensor(op, params[i].t, "sgd.v.%d", i);
        } else {
            state_tensor(op, params[i].t, "adam.m.%d", i);
            state_tensor(op, params[i].t, "adam.v.%d", i);
        }
    }
    return op;
}

void nb_optim_free(nb_optim *op) {
    if (!op) return;
    for (int k = 0; k < op->nstate; k++) {
        nb_tensor_free(op->state[k]);
        free((char *)op->names[k]);
    }
    free(op->state);
    free(op->names);
    free(op->params);
    free(op);
}

/* The CPU's loops over update.h's element rules. The Adam loop vectorizes
 * because the Makefile builds with -fno-math-errno (sqrtf need not set
 * errno; v >= 0 anyway). */
static void sgd_update(float *restrict w, const float *restrict g, float *restrict v, int64_t n, float lr, float wd,
                       float mu, bool nesterov) {
    if (!v) {
        for (int64_t i = 0; i < n; i++) w[i] = nb__sgd_step(w[i], g[i], lr, wd);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        nb__sgd_state s = nb__sgd_momentum_step(w[i], g[i], v[i], lr, wd, mu, nesterov);
        v[i] = s.v;
        w[i] = s.w;
    }
}

static void adam_update(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                        float b1, float b2, float c1, float c2, float step_size, float sqrt_bc2, float eps, float l2,
                        float shrink) {
    for (int64_t i = 0; i < n; i++) {
        nb__adam_state s = nb__adam_step(w[i], g[i], m[i], v[i], b1, b2, c1, c2, step_size, sqrt_bc2, eps, l2, shrink);
        m[i] = s.m;
        v[i] = s.v;
        w[i] = s.w;
    }
}

/* The scalars of parameter p's update at this step, derived once for the
 * CPU's loops and the GPU's kernels alike. */
typedef struct rule {
    float wd;                   /* SGD: weight decay (0 for parameters not decayed) */
    float c1, c2, step_size, sqrt_bc2, l2, shrink; /* Adam, AdamW (adam_update) */
    nb_tensor *s0, *s1;         /* state: SGD's v (or none); Adam's m and v */
} rule;

static rule rule_of(const nb_optim *op, int p, double bc1, double bc2) {
    const nb_optim_opts *o = &op->o;
    float wd = op->params[p].decay ? o->weight_decay : 0.f;
    int per = o->kind == NB_SGD ? (op->nstate ? 1 : 0) : 2;
    bool decoupled = o->kind == NB_ADAMW;
    return (rule){.wd = wd,
                  .c1 = (float)(1.0 - op->beta1),
                  .c2 = (float)(1.0 - op->beta2),
                  .step_size = (float)(o->lr / bc1),
                  .sqrt_bc2 = (float)sqrt(bc2),
                  .l2 = decoupled ? 0.f : wd,
                  .shrink = decoupled ? (float)(1.0 - (double)o->lr * wd) : 1.f,
                  .s0 = per ? op->state[p * per] : NULL,
                  .s1 = per == 2 ? op->state[p * per + 1] : NULL};
}

/* The update of one run [lo, hi) of parameter p. */
static void step_span(const nb_optim *op, span r, double bc1, double bc2, nb_tensor **const *extra, int nextra,
                      bool zero) {
    const nb_optim_opts *o = &op->o;
    nb_tensor *p = op->params[r.p].t;
    rule u = rule_of(op, r.p, bc1, bc2);
    int64_t lo = r.lo, n = r.hi - r.lo;
    float *restrict g = p->grad->data + lo;
    for (int k = 0; k < nextra; k++) {
        float *restrict e = extra[k][r.p]->data + lo;
        for (int64_t i = 0; i < n; i++) {
            g[i] += e[i];
            e[i] = 0.f;
        }
    }
    if (o->kind == NB_SGD)
        sgd_update(p->data + lo, g, u.s0 ? u.s0->data + lo : NULL, n, o->lr, u.wd, o->momentum, o->nesterov);
    else
        adam_update(p->data + lo, g, u.s0->data + lo, u.s1->data + lo, n, o->beta1, o->beta2, u.c1, u.c2, u.step_size,
                    u.sqrt_bc2, o->eps, u.l2, u.shrink);
    if (zero) memset(g, 0, sizeof(float) * (size_t)n);
}

/* The update of elements [lo, hi) of the parameters that have a .grad,
 * counted across them in order, run by run. */
static void step_share(const nb_optim *op, int64_t lo, int64_t hi, double bc1, double bc2,
                       nb_tensor **const *extra, int nextra, bool zero) {
    int64_t off = 0; /* elements of the parameters before p */
    for (int p = 0; p < op->n && off < hi; p++) {
        const nb_tensor *t = op->params[p].t;
        if (!t->grad) continue; /* never received a gradient: left alone, as PyTorch does */
        if (nb__on_gpu(t)) continue; /* updated by gpu_step */
        int64_t a = lo > off ? lo : off, b = hi < off + t->size ? hi : off + t->size;
        for (; a < b; a += SPAN) {
            int64_t e = b - a > SPAN ? a + SPAN : b;
            step_span(op, (span){p, a - off, e - off}, bc1, bc2, extra, nextra, zero);
        }
        off += t->size;
    }
}

/* The update of a parameter on the GPU: step_span's rule, one kernel per
 * parameter. Its state follows it there on the first step after it moved
 * (and back, when it returns to the CPU). */
static void gpu_step(const nb_optim *op, int p, double bc1, double bc2, nb_tensor **const *extra, int nextra,
                     bool zero) {
    const nb_optim_opts *o = &op->o;
    nb_tensor *t = op->params[p].t;
    rule u = rule_of(op, p, bc1, bc2);
    if (u.s0) nb_tensor_move(u.s0, NB_CUDA);
    if (u.s1) nb_tensor_move(u.s1, NB_CUDA);
    float *g = t->grad->data;
    for (int k = 0; k < nextra; k++) {
        nb_tensor *e = extra[k][p];
        if (!nb__on_gpu(e))
            nb_fatal(zero ? "optim_step_zero" : "optim_step",
                     "extra gradient %d of parameter %d is on the CPU, the parameter on the GPU", k, p);
        nb__gpu_accum(g, e->data, t->size);
        nb__gpu_fill(e->data, e->size, 0.f);
    }
    if (o->kind == NB_SGD)
        nb__gpu_sgd(t->data, g, u.s0 ? u.s0->data : NULL, t->size, o->lr, u.wd, o->momentum, o->nesterov);
    else
        nb__gpu_adam(t->data, g, u.s0->data, u.s1->data, t->size, o->beta1, o->beta2, u.c1, u.c2, u.step_size,
                     u.sqrt_bc2, o->eps, u.l2, u.shrink);
    if (zero) nb__gpu_fill(g, t->size, 0.f);
}

static void step(nb_optim *op, nb_tensor **const *extra, int nextra, bool zero) {
    const char *name = zero ? "optim_step_zero" : "optim_step";
    if (nextra < 0 || (nextra && !extra)) nb_fatal(name, "%d extra gradients given%s", nextra, extra ? "" : " as NULL");
    int64_t total = 0;
    for (int i = 0; i < op->n; i++) {
        nb_tensor *p = op->params[i].t;
        if (!p->grad) {
            if (nextra) nb_fatal(name, "parameter %d has no .grad to add the extra gradients to", i);
            continue;
        }
        if (p->grad->size != p->size) nb__shape_fatal(name, p, p->grad, "gradient size differs from parameter");
        for (int k = 0; k < nextra; k++)
            if (!extra[k] || !extra[k][i] || extra[k][i]->size != p->size)
                nb_fatal(name, "extra gradient %d of parameter %d is missing or not the parameter's size", k, i);
        if (nb__on_gpu(p)) continue;
        /* a parameter back on the CPU takes its state with it */
        int per = op->o.kind == NB_SGD ? (op->nstate ? 1 : 0) : 2;
        for (int k = 0; k < per; k++) nb_tensor_move(op->state[i * per + k], NB_CPU);
        total += p->size;
    }
    op->steps++;
    /* Step scalars in double, as PyTorch forms them from Python floats. */
    double bc1 = 1.0 - pow(op->beta1, (double)op->steps), bc2 = 1.0 - pow(op->beta2, (double)op->steps);
    for (int i = 0; i < op->n; i++)
        if (op->params[i].t->grad && nb__on_gpu(op->params[i].t)) gpu_step(op, i, bc1, bc2, extra, nextra, zero);
    /* Equal shares of the elements, not of the parameters or their runs: an
     * MLP's first weight matrix is 85% of it. */
    int nt = nb__fork(total >= NB_PAR_MIN) ? nb_get_threads() : 1;
    NB_PARALLEL(nt > 1, for num_threads(nt) schedule(static, 1), for (int t = 0; t < nt; t++) {
        step_share(op, total * t / nt, total * (t + 1) / nt, bc1, bc2, extra, nextra, zero);
    });
}

void nb_optim_step(nb_optim *op) { step(op, NULL, 0, false); }

void nb_optim_step_zero(nb_optim *op, nb_tensor **const *extra, int nextra) { step(op, extra, nextra, true); }

void nb_optim_zero_grad(nb_optim *op) {
    for (int i = 0; i < op->n; i++)
        nb_zero_grad(op->params[i].t);
}

void nb_optim_set_lr(nb_optim *op, float lr) {
    if (!finite_nonneg(lr)) nb_fatal("optim_set_lr", "lr must be a finite number >= 0, got %g", (double)lr);
    op->o.lr = lr;
}

int64_t nb_optim_steps(const nb_optim *op) { return op->steps; }

int nb_optim_state(nb_optim *op, const char ***names, nb_tensor ***tensors) {
    if (names) *names = op->names;
    if (tensors) *tensors = op->state;
    return op->nstate;
}

void nb_optim_set_steps(nb_optim *op, int64_t steps) {
    if (steps < 0) nb_fatal("optim_set_steps", "steps must be >= 0, got %lld", (long long)steps);
    op->steps = steps;
}
