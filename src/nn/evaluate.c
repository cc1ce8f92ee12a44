/* evaluate.c — classification metrics of a network on a data set, and the
 * fast gradient sign method (eq. 21) used for adversarial training and
 * adversarial evaluation. */
#include "../core/internal.h"
#include <math.h>
#include <stdlib.h>

int nb_net_check_data(const nb_net *net, const nb_dataset *d, const char *model, const char *data) {
    int64_t shape[4];
    int nd = nb_net_input_shape(net, shape);
    int64_t takes = nb_shape_numel(nd, shape), has = nb_shape_numel(d->nd, d->shape);
    if (takes != has)
        return nb_error("%s: the network takes %lld values per example, %s has %lld", model, (long long)takes, data,
                        (long long)has);
    /* Labels index the outputs from 0: labels 1..K need K + 1 of them. */
    if (nb_net_outputs(net) < d->nclass)
        return nb_error("%s: the network has %lld outputs, but %s has labels up to %d; classes are numbered from 0, "
                        "so it needs %d outputs", model, (long long)nb_net_outputs(net), data, d->nclass - 1, d->nclass);
    return 0;
}

nb_tensor *nb_fgsm(nb_net *net, nb_tensor *x, const int32_t *y, float eps) {
    /* Differentiate the loss w.r.t. the image itself, not the weights. */
    nb_tensor *xi = nb_detach(x);
    xi->requires_grad = true;
    bool old = nb_set_grad_enabled(true);
    nb_tensor *loss = nb_cross_entropy(nb_net_forward(net, xi, false, NULL), y);
    nb_tensor *g;
    nb_grad(loss, &xi, 1, &g, false);
    nb_set_grad_enabled(old);
    /* eq. 21: x' = x + eps * sign(grad_x J), kept a valid image in [0, 1]. */
    if (nb__on_gpu(x)) {
        /* clamped to [0, 1] as relu(v) - relu(v - 1): exact, since v - 1 is
         * exact for v in [1, 2] (x in [0, 1], eps <= 1) */
        old = nb_set_grad_enabled(false);
        nb_tensor *v = nb_add(x, nb_mul_scalar(nb_sign(g), eps));
        nb_tensor *adv = nb_sub(nb_relu(v), nb_relu(nb_add_scalar(v, -1.f)));
        nb_set_grad_enabled(old);
        return adv;
    }
    nb_tensor *adv = nb_empty_like(x);
    for (int64_t i = 0; i < x->size; i++) {
        float s = (float)((g->data[i] > 0) - (g->data[i] < 0));
        float v = x->data[i] + eps * s;
        adv->data[i] = v < 0.f ? 0.f : v > 1.f ? 1.f : v;
    }
    return adv;
}

/* Accuracy and summed loss of logits against labels; first: the batch's
 * first example, for messages. */
static void score(const nb_tensor *logits, const int32_t *y, int64_t first, double *loss_sum, int64_t *correct,
                  int32_t *pred) {
    int64_t n = logits->shape[0], c = logits->shape[1];
    nb_argmax_rows(logits, pred);
    const float *host = logits->data;
    if (nb__on_gpu(logits)) { /* a batch of logits comes back to be scored */
        float *h = nb_arena_alloc(sizeof(float) * (size_t)logits->size);
        nb_tensor_read(logits, h);
        host = h;
    }
    for (int64_t i = 0; i < n; i++) {
        /* row[y[i]] below: a label beyond the outputs read another row or
         * memory past the logits, and gave a plausible loss. */
        if (y[i] < 0 || y[i] >= c)
            nb_fatal("net_evaluate", "label %d of example %lld is outside the network's %lld outputs [0, %lld) "
                     "(nb_net_check_data says so before)", (int)y[i], (long long)(first + i), (long long)c, (long long)c);
        const float *row = host + i * c;
        float m = row[0];
        for (int64_t j = 1; j < c; j++) m = row[j] > m ? row[j] : m;
        double s = 0;
        for (int64_t j = 0; j < c; j++) s += exp((double)row[j] - m);
        *loss_sum += log(s) + m - row[y[i]];
        *correct += pred[i] == y[i];
    }
}

void nb_net_evaluate(nb_net *net, const nb_dataset *d, int64_t batch, float adv_eps, nb_eval_result *r) {
    memset(r, 0, sizeof *r);
    if (batch <= 0) batch = 1000;
    /* Batches are reset as they go. When the caller's arena holds nothing
     * (a training loop between steps), evaluation reuses its memory; else a
     * private arena keeps the caller's tensors alive. */
    bool reuse = nb_arena_bytes_used() == 0;
    nb_arena *arena = reuse ? NULL : nb_arena_new(), *caller = reuse ? NULL : nb_arena_use(arena);
    int64_t *idx = nb__xmalloc("an evaluation", (size_t)batch, sizeof(int64_t));
    int32_t *y = nb__xmalloc("an evaluation", (size_t)batch, sizeof(int32_t)), *pred = nb__xmalloc("an evaluation", (size_t)batch, sizeof(int32_t));
    double loss = 0, zeros = 0, acts = 0;
    int64_t correct = 0, adv_correct = 0;
    for (int64_t start = 0; start < d->n; start += batch) {
        int64_t m = d->n - start < batch ? d->n - start : batch;
        for (int64_t i = 0; i < m; i++) idx[i] = start + i;
        bool old = nb_set_grad_enabled(false);
        nb_tensor *x = nb_to(nb_dataset_batch(d, idx, m, y), nb_net_device(net));
        nb_tensor *logits = nb_net_forward(net, x, false, NULL);
        score(logits, y, start, &loss, &correct, pred);
        for (int l = 0; l < nb_net_layers(net); l++) {
            if (!nb_net_layer_is_activation(net, l)) continue;
            const nb_tensor *h = nb_net_layer_output(net, l);
            const float *hd = h->data;
            if (nb__on_gpu(h)) {
                float *c = nb_arena_alloc(sizeof(float) * (size_t)h->size);
                nb_tensor_read(h, c);
                hd = c;
            }
            int64_t z = 0; /* an integer count vectorizes; a branch on each element mispredicts */
            for (int64_t i = 0; i < h->size; i++) z += hd[i] == 0.f;
            zeros += (double)z;
            acts += (double)h->size;
        }
        nb_set_grad_enabled(old);
        if (adv_eps > 0) {
            nb_tensor *xa = nb_fgsm(net, x, y, adv_eps);
            old = nb_set_grad_enabled(false);
            double unused = 0;
            score(nb_net_forward(net, xa, false, NULL), y, start, &unused, &adv_correct, pred);
            nb_set_grad_enabled(old);
        }
        nb_arena_reset();
    }
    r->n = d->n;
    r->loss = d->n ? loss / (double)d->n : 0;
    r->accuracy = d->n ? (double)correct / (double)d->n : 0;
    r->adv_accuracy = d->n ? (double)adv_correct / (double)d->n : 0;
    r->zero_fraction = acts > 0 ? zeros / acts : 0;
    if (!reuse) {
        nb_arena_use(caller);
        nb_arena_free(arena);
    }
    free(idx);
    free(y);
    free(pred);
}
