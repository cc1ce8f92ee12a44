/* charrnn.c — a character-level language model (notes §2.4, eq. 10.8-10.12):
 * UTF-8 text as code points, one-hot characters through recurrent layers,
 * a softmax output per step; truncated-BPTT batches, bits per character,
 * sampling, and model files with the vocabulary in their metadata. */
#include "../core/internal.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* --- UTF-8 ------------------------------------------------------------- */

/* Control bytes that plain text does not contain. Tab, newline, vertical tab,
 * form feed, carriage return, backspace, bell and escape do occur in text
 * files (old fortune files underline with backspaces), so they count as text. */
static bool odd_control(uint8_t c) {
    return (c < 0x20 && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r' && c != '\b' && c != '\a' &&
            c != 0x1b) || c == 0x7f;
}

/* Binary data: a NUL byte anywhere, or more than 5% odd control bytes in the
 * first 4 KiB (random bytes have about 12%; text almost none). */
static int binary_check(const uint8_t *buf, size_t len, const char *what) {
    if (nb_sniff(buf, len < NB_SNIFF_BYTES ? len : NB_SNIFF_BYTES) == NB_FILE_UTF16)
        return nb_error("%s: not UTF-8 text: it looks like %s", what, nb_file_kind_name(NB_FILE_UTF16));
    const uint8_t *nul = memchr(buf, 0, len);
    if (nul) return nb_error("%s: binary data, not text (a NUL byte at offset %zu)", what, (size_t)(nul - buf));
    size_t m = len < 4096 ? len : 4096, odd = 0;
    for (size_t i = 0; i < m; i++) odd += odd_control(buf[i]);
    if (odd * 20 > m) return nb_error("%s: binary data, not text (%zu control bytes in the first %zu)", what, odd, m);
    return 0;
}

int32_t *nb_utf8_decode(const uint8_t *buf, size_t len, const char *what, int64_t *n) {
    *n = 0;
    if (len == nb_utf8_bom(buf, len)) {
        nb_error("%s: empty text", what);
        return NULL;
    }
    if (binary_check(buf, len, what)) return NULL;
    int32_t *out = malloc(sizeof(int32_t) * len);
    if (!out) {
        nb_error("%s: out of memory for %zu characters", what, len);
        return NULL;
    }
    int64_t k = 0, line = 1, col = 1;
    /* A byte-order mark is a marker of the file, not a character of the text. */
    for (size_t i = nb_utf8_bom(buf, len); i < len;) {
        uint8_t c = buf[i];
        int32_t cp;
        int need;
        int32_t min;
        if (c < 0x80) { cp = c; need = 0; min = 0; }
        else if (c >= 0xC2 && c <= 0xDF) { cp = c & 0x1F; need = 1; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { cp = c & 0x0F; need = 2; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { cp = c & 0x07; need = 3; min = 0x10000; }
        else goto bad;
        if ((size_t)need >= len - i) goto bad; /* truncated at the end */
        for (int j = 1; j <= need; j++) {
            if ((buf[i + j] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (buf[i + j] & 0x3F);
        }
        /* Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8. */
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) goto bad;
        out[k++] = cp;
        i += (size_t)need + 1;
        if (cp == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        continue;
    bad:
        nb_error("%s:%lld:%lld: invalid UTF-8 (byte 0x%02X); the text must be UTF-8 (from Latin-1: iconv -f latin1 -t "
                 "utf-8)", what, (long long)line, (long long)col, buf[i]);
        free(out);
        return NULL;
    }
    *n = k;
    return out;
}

size_t nb_utf8_bom(const void *text, size_t len) {
    return len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0;
}

int nb_utf8_encode(int32_t cp, char out[4]) {
    /* Not a Unicode scalar value (negative, a UTF-16 surrogate, past
     * U+10FFFF): the replacement character, not bytes no decoder accepts. */
    if (cp < 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int nb_text_load(const char *const *paths, int n, int32_t **text, int64_t *len) {
    *text = NULL;
    *len = 0;
    int32_t *all = NULL;
    int64_t total = 0;
    for (int f = 0; f < n; f++) {
        size_t blen;
        uint8_t *buf = nb_read_file(paths[f], &blen);
        if (!buf) {
            free(all);
            return -1;
        }
        int64_t m;
        int32_t *cps = nb_utf8_decode(buf, blen, paths[f], &m);
        free(buf);
        if (!cps) {
            free(all);
            return -1;
        }
        int32_t *grown = realloc(all, sizeof(int32_t) * (size_t)(total + m));
        if (!grown) {
            free(cps);
            free(all);
            return nb_error("%s: out of memory for %lld characters", paths[f], (long long)(total + m));
        }
        all = grown;
        memcpy(all + total, cps, sizeof(int32_t) * (size_t)m);
        total += m;
        free(cps);
    }
    *text = all;
    *len = total;
    return 0;
}

int32_t *nb_vocab_build(const int32_t *text, int64_t n, int *nvocab) {
    *nvocab = 0;
    if (n <= 0) return NULL;
    /* A presence map over all of Unicode (1.1 MB) sorts by construction. */
    uint8_t *seen = calloc(0x110000, 1);
    if (!seen) {
        nb_error("vocabulary: out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (text[i] >= 0 && text[i] <= 0x10FFFF) seen[text[i]] = 1;
    int count = 0;
    for (int32_t c = 0; c <= 0x10FFFF; c++) count += seen[c];
    int32_t *v = malloc(sizeof(int32_t) * (size_t)(count ? count : 1));
    if (!v) nb_error("vocabulary: out of memory");
    else {
        int k = 0;
        for (int32_t c = 0; c <= 0x10FFFF; c++)
            if (seen[c]) v[k++] = c;
        *nvocab = count;
    }
    free(seen);
    return v;
}

/* --- the model ---------------------------------------------------------- */

#define MAX_VOCAB 65536

nb_charrnn *nb_charrnn_new(nb_cell cell, const int32_t *vocab, int nvocab, int64_t hidden, int layers, nb_rng *r) {
    if (nvocab < 1 || nvocab > MAX_VOCAB) {
        nb_error("charrnn: vocabulary of %d characters (need 1..%d)", nvocab, MAX_VOCAB);
        return NULL;
    }
    for (int i = 0; i < nvocab; i++)
        if (vocab[i] < 0 || vocab[i] > 0x10FFFF || (i && vocab[i] <= vocab[i - 1])) {
            nb_error("charrnn: the vocabulary must be distinct code points in ascending order (entry %d is %d)", i,
                     (int)vocab[i]);
            return NULL;
        }
    nb_rnn *rnn = nb_rnn_new(cell, nvocab, hidden, layers, r);
    if (!rnn) return NULL;
    nb_charrnn *m = calloc(1, sizeof *m);
    if (!m) nb_oom("the character model", 0);
    m->rnn = rnn;
    m->nvocab = nvocab;
    m->vocab = malloc(sizeof(int32_t) * (size_t)nvocab);
    if (!m->vocab) nb_oom("the character model", 0);
    memcpy(m->vocab, vocab, sizeof(int32_t) * (size_t)nvocab);
    /* The output layer o = c + V h (eq. 10.10) as nn.Linear initializes it:
     * U(-1/sqrt(H), 1/sqrt(H)) for both. */
    m->fc_w = nb_tensor_new(2, (int64_t[]){nvocab, hidden});
    m->fc_b = nb_tensor_new(1, (int64_t[]){nvocab});
    float k = 1.f / sqrtf((float)hidden);
    nb_init_uniform(m->fc_w, -k, k, r);
    nb_init_uniform(m->fc_b, -k, k, r);
    nb_requires_grad(m->fc_w, true);
    nb_requires_grad(m->fc_b, true);
    m->fc_w->name = "fc.weight";
    m->fc_b->name = "fc.bias";
    nb_param *rp;
    const char **rn;
    int nr = nb_rnn_params(rnn, &rp);
    nb_rnn_param_names(rnn, &rn);
    m->np = nr + 2;
    m->params = calloc((size_t)m->np, sizeof *m->params);
    m->names = calloc((size_t)m->np, sizeof *m->names);
    if (!m->params || !m->names) nb_oom("the character model", 0);
    for (int i = 0; i < nr; i++) {
        m->params[i] = rp[i];
        char *s = malloc(strlen(rn[i]) + 5);
        if (!s) nb_oom("the character model", 0);
        sprintf(s, "rnn.%s", rn[i]);
        m->names[i] = s;
    }
    m->params[nr] = (nb_param){m->fc_w, true};
    m->params[nr + 1] = (nb_param){m->fc_b, false};
    m->names[nr] = nb__xstrdup("the character model", "fc.weight");
    m->names[nr + 1] = nb__xstrdup("the character model", "fc.bias");
    return m;
}

void nb_charrnn_to(nb_charrnn *m, nb_device d) {
    nb_params_to(m->params, m->np, d);
}

void nb_charrnn_free(nb_charrnn *m) {
    if (!m) return;
    for (int i = 0; i < m->np; i++) free((char *)m->names[i]);
    free(m->names);
    free(m->params);
    nb_rnn_free(m->rnn);
    nb_tensor_free(m->fc_w);
    nb_tensor_free(m->fc_b);
    free(m->vocab);
    free(m);
}

/* The id of code point c, or -1 (binary search in the sorted vocabulary). */
static int32_t vocab_id(const nb_charrnn *m, int32_t c) {
    int lo = 0, hi = m->nvocab - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (m->vocab[mid] == c) return mid;
        if (m->vocab[mid] < c) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int nb_charrnn_encode(const nb_charrnn *m, const int32_t *text, int64_t n, int32_t *ids, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        ids[i] = vocab_id(m, text[i]);
        if (ids[i] < 0) {
            int64_t line = 1, col = 1;
            for (int64_t j = 0; j < i; j++) {
                if (text[j] == '\n') {
                    line++;
                    col = 1;
                } else {
                    col++;
                }
            }
            char u[5] = {0};
            int len = nb_utf8_encode(text[i], u);
            u[len] = 0;
            return nb_error("%s:%lld:%lld: character U+%04X ('%s') is not in the model's vocabulary of %d characters",
                            what, (long long)line, (long long)col, (unsigned)text[i], text[i] >= 0x20 ? u : "?",
                            m->nvocab);
        }
    }
    return 0;
}

/* eq. 10.10: o^(t) = c + V h^(t) for every step and stream at once. */
nb_tensor *nb_charrnn_forward(nb_charrnn *m, const int32_t *x, int64_t T, int64_t B, const nb_rnn_state *init,
                              nb_rnn_state *final) {
    nb_tensor *hs = nb_rnn_forward_onehot(m->rnn, x, T, B, init, final);
    nb_tensor *h2 = nb_reshape(hs, 2, (int64_t[]){T * B, nb_rnn_hidden_size(m->rnn)});
    return nb_linear(h2, m->fc_w, m->fc_b);
}

int64_t nb_charrnn_windows(int64_t n, int64_t T, int64_t B) {
    if (n < 1 || T < 1 || B < 1) return 0;
    int64_t len = n / B;
    return len >= 1 ? (len - 1) / T : 0;
}

int nb_charrnn_batch(const int32_t *ids, int64_t n, int64_t T, int64_t B, int64_t k, int32_t *x, int32_t *y) {
    int64_t K = nb_charrnn_windows(n, T, B);
    if (K < 1)
        return nb_error("a text of %lld characters is too short for %lld streams of %lld steps (needs at least %lld)",
                        (long long)n, (long long)B, (long long)T, (long long)(B * (T + 1)));
    /* A negative k gave a negative window and reads before ids. */
    if (k < 0) return nb_error("batch number %lld is negative", (long long)k);
    int64_t len = n / B, w = k % K;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < B; b++) {
            int64_t p = b * len + w * T + t;
            x[t * B + b] = ids[p];
            y[t * B + b] = ids[p + 1];
        }
    return w == 0;
}

/* Persistent [L, B, H] state tensors for a run of batches (c for LSTM only). */
static void state_new(const nb_charrnn *m, int64_t B, nb_tensor **h, nb_tensor **c) {
    int64_t shape[3] = {nb_rnn_num_layers(m->rnn), B, nb_rnn_hidden_size(m->rnn)};
    *h = nb_tensor_new(3, shape);
    *c = nb_rnn_cell(m->rnn) == NB_CELL_LSTM ? nb_tensor_new(3, shape) : NULL;
    nb_tensor_move(*h, m->fc_w->device); /* where the model is */
    if (*c) nb_tensor_move(*c, m->fc_w->device);
}

double nb_charrnn_bits_per_char(nb_charrnn *m, const int32_t *ids, int64_t n, int64_t T, int64_t B, int64_t *chars) {
    if (chars) *chars = 0;
    if (n < 2) return nb_error("bits per character: a text of %lld characters has nothing to predict", (long long)n);
    /* Checked here: an id past the vocabulary was refused only as a label
     * of the cross-entropy inside, named so. */
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->nvocab)
            nb_fatal("charrnn_bits_per_char", "id %d at position %lld is outside the vocabulary [0, %d)", (int)ids[i],
                     (long long)i, m->nvocab);
    if (T < 1) T = 1;
    if (B < 1) B = 1;
    while (B > 1 && nb_charrnn_windows(n, T, B) < 1) B--;
    if (nb_charrnn_windows(n, T, B) < 1) T = n - 1;
    int64_t K = nb_charrnn_windows(n, T, B);
    /* A private arena: the caller's step tensors stay valid. */
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    bool grad = nb_set_grad_enabled(false);
    nb_tensor *h, *c;
    state_new(m, B, &h, &c);
    int32_t *x = malloc(sizeof(int32_t) * (size_t)(T * B)), *y = malloc(sizeof(int32_t) * (size_t)(T * B));
    if (!x || !y) nb_oom("the character model", 0);
    double total = 0;
    for (int64_t k = 0; k < K; k++) {
        nb_charrnn_batch(ids, n, T, B, k, x, y);
        nb_rnn_state init = {nb_detach(h), c ? nb_detach(c) : NULL}, fin;
        nb_tensor *logits = nb_charrnn_forward(m, x, T, B, &init, &fin);
        total += (double)nb_item(nb_cross_entropy(logits, y)) * (double)(T * B);
        nb_copy_into(h, fin.h);
        if (c) nb_copy_into(c, fin.c);
        nb_arena_reset();
    }
    free(x);
    free(y);
    nb_tensor_free(h);
    nb_tensor_free(c);
    nb_set_grad_enabled(grad);
    nb_arena_use(old);
    nb_arena_free(arena);
    if (chars) *chars = K * T * B;
    /* eq. 10.12 is in nats; a bit is ln 2 nats. */
    return total / (double)(K * T * B) / log(2.0);
}

/* An id drawn from softmax(o / temperature) (double precision, max first). */
static int32_t draw(const float *o, int V, float temperature, nb_rng *r) {
    int32_t best = 0;
    for (int j = 1; j < V; j++)
        if (o[j] > o[best]) best = j;
    if (!(temperature > 0.f)) return best;
    double s = 0, u;
    for (int j = 0; j < V; j++) s += exp(((double)o[j] - o[best]) / temperature);
    u = nb_rng_uniform(r) * s;
    for (int j = 0; j < V; j++) {
        u -= exp(((double)o[j] - o[best]) / temperature);
        if (u < 0) return j;
    }
    return best; /* rounding left a sliver */
}

int nb_charrnn_sample(nb_charrnn *m, const int32_t *prime, int64_t nprime, int64_t length, float temperature,
                      nb_rng *r, int32_t *out) {
    if (nprime < 1) return nb_error("sample: needs at least one character to start from");
    if (length < 0) return nb_error("sample: negative length %lld", (long long)length);
    if (!(temperature >= 0.f) || !isfinite(temperature))
        return nb_error("sample: temperature must be a finite number >= 0, got %g", (double)temperature);
    for (int64_t i = 0; i < nprime; i++)
        if (prime[i] < 0 || prime[i] >= m->nvocab)
            return nb_error("sample: id %d of the prime is outside the vocabulary", prime[i]);
    if (!r) r = nb_global_rng();
    nb_arena *arena = nb_arena_new(), *old = nb_arena_use(arena);
    bool grad = nb_set_grad_enabled(false);
    nb_tensor *h, *c;
    state_new(m, 1, &h, &c);
    int V = m->nvocab;
    float *last = malloc(sizeof(float) * (size_t)V);
    if (!last) nb_oom("the character model", 0);
    /* The prime in one pass (T = nprime), then one step per drawn character. */
    const int32_t *in = prime;
    int64_t T = nprime;
    int32_t id;
    for (int64_t k = 0; k < length; k++) {
        nb_rnn_state init = {nb_detach(h), c ? nb_detach(c) : NULL}, fin;
        nb_tensor *logits = nb_charrnn_forward(m, in, T, 1, &init, &fin);
        nb_tensor_read(nb_slice(logits, 0, T - 1, T), last); /* the last row, from any device */
        nb_copy_into(h, fin.h);
        if (c) nb_copy_into(c, fin.c);
        nb_arena_reset();
        out[k] = id = draw(last, V, temperature, r);
        in = &id;
        T = 1;
    }
    free(last);
    nb_tensor_free(h);
    nb_tensor_free(c);
    nb_set_grad_enabled(grad);
    nb_arena_use(old);
    nb_arena_free(arena);
    return 0;
}

/* --- model files ---------------------------------------------------------- */

int nb_charrnn_save(const nb_charrnn *m, const char *path, const char *const *keys, const char *const *vals, int nmeta,
                    const char *const *extra_names, nb_tensor *const *extra, int nextra) {
    /* The vocabulary as decimal code points: no escaping questions in JSON. */
    char *vocab = malloc((size_t)m->nvocab * 8 + 1), *p = vocab;
    if (!vocab) return nb_error("%s: out of memory", path);
    *p = 0;
    for (int i = 0; i < m->nvocab; i++) p += sprintf(p, i ? " %d" : "%d", (int)m->vocab[i]);
    char hidden[24], layers[24];
    snprintf(hidden, sizeof hidden, "%lld", (long long)nb_rnn_hidden_size(m->rnn));
    snprintf(layers, sizeof layers, "%d", nb_rnn_num_layers(m->rnn));
    const char *own_keys[] = {"nabla.model", "nabla.charrnn.cell", "nabla.charrnn.hidden", "nabla.charrnn.layers",
                              "nabla.charrnn.vocab"};
    const char *own_vals[] = {"charrnn", nb_cell_name(nb_rnn_cell(m->rnn)), hidden, layers, vocab};
    int rc = nb__st_write_model(path, own_keys, own_vals, 5, keys, vals, nmeta, m->params,
                                (const char *const *)m->names, m->np, extra_names, extra, nextra);
    free(vocab);
    return rc;
}

static int meta_int(const nb_safetensors *st, const char *path, const char *key, long lo, long hi, long *out) {
    return nb__st_meta_long(st, path, "charrnn", key, lo, hi, out);
}

nb_charrnn *nb_charrnn_load(const char *path, nb_safetensors **out_st) {
    if (out_st) *out_st = NULL;
    nb_safetensors *st = nb_st_read(path);
    if (!st) return NULL;
    nb_charrnn *m = NULL;
    int32_t *vocab = NULL;
    const char *model = nb_st_meta(st, "nabla.model");
    if (!model || strcmp(model, "charrnn")) {
        nb__st_not_a(st, path, "a charrnn model");
        goto fail;
    }
    const char *cs = nb_st_meta(st, "nabla.charrnn.cell"), *vs = nb_st_meta(st, "nabla.charrnn.vocab");
    nb_cell cell;
    long hidden, layers;
    if (!cs || !vs) {
        nb_error("%s: not a charrnn model (cell type or vocabulary missing from __metadata__)", path);
        goto fail;
    }
    if (nb_cell_from_name(cs, &cell)) {
        nb_error("%s: __metadata__ 'nabla.charrnn.cell': unknown cell type '%s' (expected rnn, lstm or gru)", path, cs);
        goto fail;
    }
    if (meta_int(st, path, "nabla.charrnn.hidden", 1, 65536, &hidden) ||
        meta_int(st, path, "nabla.charrnn.layers", 1, 64, &layers))
        goto fail;
    /* The vocabulary: decimal code points separated by spaces, ascending. */
    size_t cap = strlen(vs) / 2 + 2;
    vocab = malloc(sizeof(int32_t) * cap);
    if (!vocab) nb_oom("the character model", 0);
    int nv = 0;
    for (const char *p = vs; *p;) {
        char *end;
        errno = 0;
        long c = strtol(p, &end, 10);
        if (end == p || errno || c < 0 || c > 0x10FFFF || (nv && c <= vocab[nv - 1]) || (*end && *end != ' ') ||
            (size_t)nv >= cap) {
            nb_error("%s: __metadata__ 'nabla.charrnn.vocab': expected ascending code points separated by spaces, "
                     "bad entry %d", path, nv + 1);
            goto fail;
        }
        vocab[nv++] = (int32_t)c;
        p = *end ? end + 1 : end;
    }
    /* Every layer of every cell has at least a hidden x hidden recurrent
     * matrix: a file that holds fewer values is refused before the model is
     * allocated (its metadata may ask for 64 layers of 65536). */
    int64_t values = 0;
    for (int i = 0; i < st->n; i++) values += st->entries[i].t->size;
    if ((double)layers * (double)hidden * (double)hidden > (double)values) {
        nb_error("%s: a %s of %ld layers of %ld needs more than the %lld parameter values the file holds", path, cs,
                 layers, hidden, (long long)values);
        goto fail;
    }
    m = nb_charrnn_new(cell, vocab, nv, hidden, (int)layers, NULL);
    if (!m) {
        char why[512];
        snprintf(why, sizeof why, "%s", nb_errmsg());
        nb_error("%s: %s", path, why);
        goto fail;
    }
    char what[128];
    snprintf(what, sizeof what, "the %s with hidden size %ld and %d characters", cs, hidden, nv);
    if (nb__st_copy_params(st, path, m->params, (const char *const *)m->names, m->np, what,
                           " (were the weights written for another cell type?)"))
        goto fail;
    free(vocab);
    if (out_st) *out_st = st;
    else nb_st_free(st);
    return m;
fail:
    free(vocab);
    nb_charrnn_free(m);
    nb_st_free(st);
    return NULL;
}
