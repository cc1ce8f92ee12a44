/* net.c — networks described in plain text (NET.cfg): the parser, shape
 * inference with parameter creation, and the forward pass. */
#include "../core/internal.h"
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

typedef enum {
    L_DENSE, L_CONV, L_MAXPOOL, L_AVGPOOL, L_FLATTEN, L_DROPOUT,
    L_RELU, L_LEAKY, L_PRELU, L_ABS, L_SIGMOID, L_TANH, L_NKINDS
} kind;

static const char *kind_names[L_NKINDS] = {"dense", "conv2d", "maxpool", "avgpool", "flatten", "dropout",
                                           "relu", "leaky", "prelu", "abs", "sigmoid", "tanh"};

/* The keys each kind accepts (so a typo is an error, not a silent default). */
static const char *kind_keys[L_NKINDS] = {
    "out name activation init", "out kernel stride padding dilation name activation init",
    "size stride padding", "size stride padding", "", "p", "", "slope", "name init", "", "", ""};

typedef enum { INIT_AUTO, INIT_HE, INIT_XAVIER } init_kind;

typedef struct layer {
    kind k;
    int line;
    char name[48];
    int64_t out;               /* dense/conv: units or channels */
    int kernel, stride, pad, dil;
    float slope, p, prelu_init;
    init_kind init;
    nb_tensor *w, *b;          /* parameters (persistent) */
    int in_nd, out_nd;         /* shapes without the batch dim */
    int64_t in_shape[4], out_shape[4];
    nb_tensor *last;           /* output of the last forward (arena) */
} layer;

struct nb_net {
    char *source, *file;
    int nin;                   /* input shape from [net] (0 if absent) */
    int64_t in_shape[4];
    layer *layers;
    int n, cap;
    bool built;
    nb_param *params;
    const char **param_names;
    int nparams;
    bool replica;              /* shares source, names and weights' memory */
    int64_t max_values;        /* nb__net_build_within: parameter values allowed (0: any) */
};

/* --- parsing ------------------------------------------------------------- */

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static bool key_allowed(kind k, const char *key) {
    const char *keys = kind_keys[k];
    size_t n = strlen(key);
    for (const char *p = keys; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, key, n)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static int parse_int(const char *file, int line, const char *key, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return nb_error("%s:%d: %s: expected an integer in [%ld, %ld], got '%s'", file, line, key, lo, hi, v);
    *out = x;
    return 0;
}

static int parse_float(const char *file, int line, const char *key, const char *v, double lo, double hi, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi))
        return nb_error("%s:%d: %s: expected a number in [%g, %g], got '%s'", file, line, key, lo, hi, v);
    *out = x;
    return 0;
}

static layer *add_layer(nb_net *net, kind k, int line) {
    if (net->n == net->cap) {
        net->cap = net->cap ? net->cap * 2 : 8;
        layer *nl = realloc(net->layers, sizeof(layer) * (size_t)net->cap);
        if (!nl) nb_oom("a network", 0);
        net->layers = nl;
    }
    layer *L = &net->layers[net->n++];
    memset(L, 0, sizeof *L);
    L->k = k;
    L->line = line;
    L->stride = 0; /* 0: the kind's default, set in finish_layer */
    L->dil = 1;
    L->slope = 0.01f;
    L->prelu_init = 0.25f;
    return L;
}

static int activation_kind(const char *v, kind *k) {
    static const struct { const char *name; kind k; } acts[] = {
        {"relu", L_RELU}, {"leaky", L_LEAKY}, {"prelu", L_PRELU}, {"abs", L_ABS}, {"sigmoid", L_SIGMOID}, {"tanh", L_TANH}};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (!strcmp(v, acts[i].name)) {
            *k = acts[i].k;
            return 1;
        }
    return strcmp(v, "linear") == 0 ? 0 : -1;
}

/* Applies one `key = value` line to layer L (or to the [net] section). */
static int set_key(nb_net *net, layer *L, const char *file, int line, const char *key, const char *v, kind *act) {
    long x = 0;
    double d = 0;
    if (!L) { /* [net] */
        if (!strcmp(key, "input")) {
            int64_t dims[4];
            int nd = 0;
            const char *p = v;
            while (*p) {
                char *end;
                errno = 0;
                long long q = strtoll(p, &end, 10);
                if (end == p || q <= 0 || q > (1 << 24) || errno || nd == 3)
                    return nb_error("%s:%d: input: expected C x H x W (e.g. 1x28x28) or a feature count, got '%s'", file, line, v);
                dims[nd++] = q;
                p = end;
                if (*p == 'x' || *p == 'X') p++;
                else if (*p) return nb_error("%s:%d: input: expected C x H x W (e.g. 1x28x28) or a feature count, got '%s'", file, line, v);
            }
            if (nd != 1 && nd != 3)
                return nb_error("%s:%d: input: expected C x H x W (e.g. 1x28x28) or a feature count, got '%s'", file, line, v);
            net->nin = nd;
            nb__shape_copy(net->in_shape, dims, nd);
            return 0;
        }
        return nb_error("%s:%d: unknown key '%s' in [net] (expected: input)", file, line, key);
    }
    if (!key_allowed(L->k, key))
        return nb_error("%s:%d: [%s] has no option '%s'%s%s%s", file, line, kind_names[L->k], key,
                        *kind_keys[L->k] ? " (expected one of: " : " (it takes no options", kind_keys[L->k],
                        ")");
    if (!strcmp(key, "out")) {
        if (parse_int(file, line, key, v, 1, 1 << 24, &x)) return -1;
        L->out = x;
    } else if (!strcmp(key, "kernel") || !strcmp(key, "size")) {
        if (parse_int(file, line, key, v, 1, 1024, &x)) return -1;
        L->kernel = (int)x;
    } else if (!strcmp(key, "stride")) {
        if (parse_int(file, line, key, v, 1, 1024, &x)) return -1;
        L->stride = (int)x;
    } else if (!strcmp(key, "padding")) {
        if (parse_int(file, line, key, v, 0, 1024, &x)) return -1;
        L->pad = (int)x;
    } else if (!strcmp(key, "dilation")) {
        if (parse_int(file, line, key, v, 1, 1024, &x)) return -1;
        L->dil = (int)x;
    } else if (!strcmp(key, "p")) {
        if (parse_float(file, line, key, v, 0.0, 0.99, &d)) return -1;
        L->p = (float)d;
    } else if (!strcmp(key, "slope")) {
        if (parse_float(file, line, key, v, -10.0, 10.0, &d)) return -1;
        L->slope = (float)d;
    } else if (!strcmp(key, "name")) {
        size_t n = strlen(v);
        if (n == 0 || n >= sizeof L->name) return nb_error("%s:%d: name: expected 1 to %zu characters", file, line, sizeof L->name - 1);
        for (const char *c = v; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
                return nb_error("%s:%d: name: '%s' may only hold letters, digits, '_' and '.'", file, line, v);
        strcpy(L->name, v);
    } else if (!strcmp(key, "activation")) {
        int r = activation_kind(v, act);
        if (r < 0) return nb_error("%s:%d: activation: expected relu, leaky, prelu, abs, sigmoid, tanh or linear, got '%s'", file, line, v);
        if (r == 0) *act = L_NKINDS;
    } else if (!strcmp(key, "init")) {
        if (L->k == L_PRELU) {
            if (parse_float(file, line, key, v, -10.0, 10.0, &d)) return -1;
            L->prelu_init = (float)d;
        } else if (!strcmp(v, "he")) L->init = INIT_HE;
        else if (!strcmp(v, "xavier")) L->init = INIT_XAVIER;
        else return nb_error("%s:%d: init: expected he or xavier, got '%s'", file, line, v);
    }
    return 0;
}

/* Checks the keys a layer must have and appends its inline activation. */
static int finish_layer(nb_net *net, const char *file, kind act) {
    if (!net->n) return 0;
    layer *L = &net->layers[net->n - 1];
    if ((L->k == L_DENSE || L->k == L_CONV) && !L->out)
        return nb_error("%s:%d: [%s] needs 'out' (the number of %s)", file, L->line, kind_names[L->k],
                        L->k == L_DENSE ? "units" : "output channels");
    if ((L->k == L_CONV || L->k == L_MAXPOOL || L->k == L_AVGPOOL) && !L->kernel)
        return nb_error("%s:%d: [%s] needs '%s'", file, L->line, kind_names[L->k], L->k == L_CONV ? "kernel" : "size");
    if (!L->stride) L->stride = (L->k == L_MAXPOOL || L->k == L_AVGPOOL) ? L->kernel : 1;
    if (act != L_NKINDS) add_layer(net, act, L->line);
    return 0;
}

nb_net *nb_net_parse(const char *text, const char *file) {
    if (!text) {
        nb_error("%s: the description is NULL", file ? file : "<net>");
        return NULL;
    }
    /* A byte-order mark (Notepad's "UTF-8 with BOM") is not text of the
     * first line, and a lone CR (classic Mac OS) ends a line as LF does. */
    text += nb_utf8_bom(text, strlen(text));
    nb_net *net = nb__xcalloc("a network", 1, sizeof *net);
    char *buf = nb__xstrdup("a network", text);
    for (char *c = buf; *c; c++)
        if (*c == '\r' && c[1] != '\n') *c = '\n';
    net->source = nb__xstrdup("a network", text);
    net->file = nb__xstrdup("a network", file ? file : "<net>");
    file = net->file;
    bool in_net = false, any = false;
    kind act = L_NKINDS;
    int lineno = 0;
    for (char *rest = buf, *ln; (ln = strsep(&rest, "\n")) != NULL;) {
        lineno++;
        char *hash = strpbrk(ln, "#;");
        if (hash) *hash = 0;
        char *s = trim(ln);
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || trim(close + 1)[0]) {
                nb_error("%s:%d: expected a section header like [dense], got '%s'", file, lineno, s);
                goto fail;
            }
            *close = 0;
            char *name = trim(s + 1);
            if (finish_layer(net, file, act)) goto fail;
            act = L_NKINDS;
            if (!strcmp(name, "net")) {
                if (any) {
                    nb_error("%s:%d: [net] must come first", file, lineno);
                    goto fail;
                }
                in_net = true;
                continue;
            }
            int k = 0;
            while (k < L_NKINDS && strcmp(name, kind_names[k])) k++;
            if (k == L_NKINDS) {
                nb_error("%s:%d: unknown layer [%s] (expected net, dense, conv2d, maxpool, avgpool, flatten, dropout, "
                         "relu, leaky, prelu, abs, sigmoid or tanh)", file, lineno, name);
                goto fail;
            }
            add_layer(net, (kind)k, lineno);
            in_net = false;
            any = true;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            nb_error("%s:%d: expected 'key = value' or a [section], got '%s'", file, lineno, s);
            goto fail;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (!in_net && !net->n) {
            nb_error("%s:%d: '%s' comes before any [section]", file, lineno, key);
            goto fail;
        }
        if (!*val) {
            nb_error("%s:%d: %s has no value", file, lineno, key);
            goto fail;
        }
        if (set_key(net, in_net ? NULL : &net->layers[net->n - 1], file, lineno, key, val, &act)) goto fail;
    }
    if (finish_layer(net, file, act)) goto fail;
    if (!net->n) {
        nb_error("%s: no layers (expected sections like [dense] with out = 10)", file);
        goto fail;
    }
    free(buf);
    /* Default names, counted per kind as PyTorch models usually are. */
    int ndense = 0, nconv = 0, nprelu = 0, nother = 0;
    for (int i = 0; i < net->n; i++) {
        layer *L = &net->layers[i];
        int c = L->k == L_DENSE ? ++ndense : L->k == L_CONV ? ++nconv : L->k == L_PRELU ? ++nprelu : ++nother;
        if (!L->name[0])
            snprintf(L->name, sizeof L->name, "%s%d",
                     L->k == L_DENSE ? "fc" : L->k == L_CONV ? "conv" : kind_names[L->k], c);
    }
    for (int i = 0; i < net->n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(net->layers[i].name, net->layers[j].name)) {
                nb_error("%s:%d: layer name '%s' is already used on line %d", file, net->layers[i].line,
                         net->layers[i].name, net->layers[j].line);
                nb_net_free(net);
                return NULL;
            }
    return net;
fail:
    free(buf);
    nb_net_free(net);
    return NULL;
}

nb_net *nb_net_load_cfg(const char *path) {
    size_t len;
    uint8_t *buf = nb_read_file(path, &len);
    if (!buf) return NULL;
    if (memchr(buf, 0, len)) {
        free(buf);
        nb_error("%s: not a text file (contains NUL bytes)", path);
        return NULL;
    }
    char *text = nb__xmalloc("a network", len + 1, 1);
    memcpy(text, buf, len);
    text[len] = 0;
    free(buf);
    nb_net *net = nb_net_parse(text, path);
    free(text);
    return net;
}

void nb_net_free(nb_net *net) {
    if (!net) return;
    for (int i = 0; i < net->n; i++) {
        nb_tensor_free(net->layers[i].w);
        nb_tensor_free(net->layers[i].b);
    }
    free(net->layers);
    free(net->params);
    if (net->replica) {
        free(net);
        return;
    }
    for (int i = 0; i < net->nparams; i++) free((char *)net->param_names[i]);
    free(net->param_names);
    free(net->source);
    free(net->file);
    free(net);
}

const char *nb_net_source(const nb_net *net) { return net->source; }

/* --- shapes and parameters ----------------------------------------------- */

static int64_t pool_out(int64_t in, int k, int s, int p, int d) {
    int64_t span = (int64_t)d * (k - 1) + 1;
    return in + 2 * p < span ? 0 : (in + 2 * p - span) / s + 1;
}


/* Far beyond any network nabla trains (64 GiB of float32), and below where
 * element counts overflow: a description asking for more is refused. */
#define NB_NET_MAX_PARAMS (INT64_C(1) << 34)

/* A layer's parameter, counted against the network's budget before it is
 * allocated, so that a description from a model file cannot make the loader
 * allocate more than the file holds (a 200-byte file asking for a 3 GB dense
 * layer), nor any description overflow a size. NULL with an error if over. */
static nb_tensor *new_param(const nb_net *net, const layer *L, int64_t *used, int nd, const int64_t *shape) {
    int64_t n = nb_shape_numel(nd, shape);
    if (n < 0 || n > NB_NET_MAX_PARAMS - *used) {
        nb_error("%s:%d: the network would have more than %lld parameters", net->file, L->line,
                 (long long)NB_NET_MAX_PARAMS);
        return NULL;
    }
    if (net->max_values && *used + n > net->max_values) {
        nb_error("%s:%d: the network needs more parameters (%lld so far) than the %lld values the file holds",
                 net->file, L->line, (long long)(*used + n), (long long)(net->max_values > 0 ? net->max_values : 0));
        return NULL;
    }
    *used += n;
    nb_tensor *t = nb_tensor_new(nd, shape);
    nb_requires_grad(t, true);
    return t;
}

int nb__net_build_within(nb_net *net, int64_t max_values) {
    net->max_values = max_values > 0 ? max_values : -1; /* -1: none at all */
    int rc = nb_net_build(net, 0, NULL, NULL);
    net->max_values = 0;
    return rc;
}

static bool relu_like_follows(const nb_net *net, int i) {
    if (i + 1 >= net->n) return false;
    kind k = net->layers[i + 1].k;
    return k == L_RELU || k == L_LEAKY || k == L_PRELU || k == L_ABS;
}

int nb_net_build(nb_net *net, int ndim, const int64_t *input_shape, nb_rng *rng) {
    if (net->built) return nb_error("%s: network already built", net->file);
    int nd = net->nin;
    int64_t s[4];
    nb__shape_copy(s, net->in_shape, nd);
    if (ndim > 0) {
        /* As [net] input takes it: C x H x W or fewer dims, each >= 1. More
         * dims overflowed s, and a negative one made a nonsense size. */
        if (ndim > 3)
            return nb_error("%s: the input shape has %d dimensions; at most 3 (C x H x W)", net->file, ndim);
        for (int k = 0; k < ndim; k++)
            if (input_shape[k] < 1)
                return nb_error("%s: input dimension %d is %lld; each must be at least 1", net->file, k,
                                (long long)input_shape[k]);
        if (net->nin) {
            int64_t a = nb_shape_numel(net->nin, net->in_shape), b = nb_shape_numel(ndim, input_shape);
            if (a != b || (ndim == net->nin && memcmp(s, input_shape, sizeof(int64_t) * (size_t)ndim)))
                return nb_error("%s: [net] input does not match the data (%lld values per example in the data, %lld in the description)",
                                net->file, (long long)b, (long long)a);
        }
        nd = ndim;
        nb__shape_copy(s, input_shape, nd);
    }
    if (!nd) return nb_error("%s: the input shape is unknown: add 'input = CxHxW' to a [net] section", net->file);
    int64_t used = 0;
    for (int i = 0; i < net->n; i++) {
        layer *L = &net->layers[i];
        L->in_nd = nd;
        nb__shape_copy(L->in_shape, s, nd);
        switch (L->k) {
        case L_DENSE: {
            int64_t in = nb_shape_numel(nd, s);
            /* A dense layer after a conv flattens in C,H,W order, as PyTorch's flatten does. */
            if (!(L->w = new_param(net, L, &used, 2, (int64_t[]){L->out, in})) ||
                !(L->b = new_param(net, L, &used, 1, &L->out)))
                return -1;
            nd = 1;
            s[0] = L->out;
            break;
        }
        case L_CONV:
            if (nd != 3) return nb_error("%s:%d: [conv2d] needs a C x H x W input, got %d dimension(s)", net->file, L->line, nd);
            if (!(L->w = new_param(net, L, &used, 4, (int64_t[]){L->out, s[0], L->kernel, L->kernel})) ||
                !(L->b = new_param(net, L, &used, 1, &L->out)))
                return -1;
            s[1] = pool_out(s[1], L->kernel, L->stride, L->pad, L->dil);
            s[2] = pool_out(s[2], L->kernel, L->stride, L->pad, L->dil);
            s[0] = L->out;
            if (s[1] <= 0 || s[2] <= 0) return nb_error("%s:%d: [conv2d] output would be empty (input too small for the kernel)", net->file, L->line);
            break;
        case L_MAXPOOL:
        case L_AVGPOOL:
            if (nd != 3) return nb_error("%s:%d: [%s] needs a C x H x W input", net->file, L->line, kind_names[L->k]);
            if (2 * L->pad > L->kernel) return nb_error("%s:%d: padding must be at most half the size", net->file, L->line);
            s[1] = pool_out(s[1], L->kernel, L->stride, L->pad, 1);
            s[2] = pool_out(s[2], L->kernel, L->stride, L->pad, 1);
            if (s[1] <= 0 || s[2] <= 0) return nb_error("%s:%d: [%s] output would be empty", net->file, L->line, kind_names[L->k]);
            break;
        case L_FLATTEN:
            s[0] = nb_shape_numel(nd, s);
            nd = 1;
            break;
        case L_PRELU:
            /* One slope per channel (axis 1), as nn.PReLU(num_parameters=C). */
            if (!(L->w = new_param(net, L, &used, 1, s))) return -1;
            nb_fill(L->w, L->prelu_init);
            break;
        default: break;
        }
        L->out_nd = nd;
        nb__shape_copy(L->out_shape, s, nd);
    }
    /* Initialization: He for layers feeding the ReLU family, Xavier otherwise. */
    for (int i = 0; i < net->n; i++) {
        layer *L = &net->layers[i];
        if (L->k != L_DENSE && L->k != L_CONV) continue;
        init_kind ik = L->init != INIT_AUTO ? L->init : relu_like_follows(net, i) ? INIT_HE : INIT_XAVIER;
        if (ik == INIT_HE) nb_init_he_uniform(L->w, rng);
        else nb_init_xavier_uniform(L->w, rng);
    }
    /* The parameter list, in layer order: weight then bias. */
    int np = 0;
    for (int i = 0; i < net->n; i++) np += (net->layers[i].w != NULL) + (net->layers[i].b != NULL);
    net->params = nb__xcalloc("a network", (size_t)(np ? np : 1), sizeof(nb_param));
    net->param_names = nb__xcalloc("a network", (size_t)(np ? np : 1), sizeof(char *));
    np = 0;
    for (int i = 0; i < net->n; i++) {
        layer *L = &net->layers[i];
        nb_tensor *pt[2] = {L->w, L->b};
        const char *suffix[2] = {"weight", "bias"};
        for (int j = 0; j < 2; j++) {
            if (!pt[j]) continue;
            char nm[64];
            snprintf(nm, sizeof nm, "%s.%s", L->name, suffix[j]);
            /* PReLU slopes are not weights in the sense of eq. 7.1. */
            net->params[np] = (nb_param){pt[j], j == 0 && L->k != L_PRELU};
            net->param_names[np] = pt[j]->name = nb__xstrdup("a network", nm);
            np++;
        }
    }
    net->nparams = np;
    net->built = true;
    return 0;
}

int nb_net_input_shape(const nb_net *net, int64_t *shape) {
    if (!net->built || !net->n) {
        nb__shape_copy(shape, net->in_shape, net->nin);
        return net->nin;
    }
    nb__shape_copy(shape, net->layers[0].in_shape, net->layers[0].in_nd);
    return net->layers[0].in_nd;
}

int64_t nb_net_outputs(const nb_net *net) {
    const layer *L = &net->layers[net->n - 1];
    return nb_shape_numel(L->out_nd, L->out_shape);
}

int nb_net_params(nb_net *net, nb_param **params) {
    *params = net->params;
    return net->nparams;
}

void nb_net_to(nb_net *net, nb_device d) {
    if (!net->built) nb_fatal("net_to", "build the network first (nb_net_build)");
    nb_params_to(net->params, net->nparams, d);
}

nb_device nb_net_device(const nb_net *net) { return net->nparams ? net->params[0].t->device : NB_CPU; }

int nb_net_param_names(const nb_net *net, const char ***names) {
    *names = net->param_names;
    return net->nparams;
}

/* --- replicas for data parallelism ---------------------------------------- */

/* A persistent tensor over t's memory, with a gradient buffer of its own. */
static nb_tensor *alias(const nb_tensor *t) {
    if (!t) return NULL;
    nb_tensor *a = calloc(1, sizeof *a);
    if (!a) nb_oom("a network replica", 0);
    a->data = t->data;
    nb__shape_copy(a->shape, t->shape, t->ndim);
    a->ndim = t->ndim;
    a->size = t->size;
    a->name = t->name;
    a->persistent = true; /* owns_data stays false: the weights are the network's */
    nb_requires_grad(a, true);
    return a;
}

nb_net *nb_net_replica(nb_net *net) {
    if (!net->built) nb_fatal("net_replica", "build the network first (nb_net_build)");
    /* Replicas are the CPU's data parallelism: their aliases and gradient
     * buffers are host tensors, which over device memory would be read by
     * host code. A GPU network trains as one (nabla train uses one shard). */
    if (nb_net_device(net) != NB_CPU) nb__no_gpu("net_replica");
    nb_net *r = malloc(sizeof *r);
    if (!r) nb_oom("a network replica", 0);
    *r = *net;
    r->replica = true;
    r->layers = malloc(sizeof(layer) * (size_t)(net->n ? net->n : 1));
    r->params = calloc((size_t)(net->nparams ? net->nparams : 1), sizeof(nb_param));
    if (!r->layers || !r->params) nb_oom("a network replica", 0);
    int np = 0;
    for (int i = 0; i < net->n; i++) {
        layer *L = &r->layers[i];
        *L = net->layers[i];
        L->last = NULL;
        L->w = alias(L->w);
        L->b = alias(L->b);
        /* Same order as nb_net_build's list, so params[k] match. */
        if (L->w) r->params[np] = (nb_param){L->w, net->params[np].decay}, np++;
        if (L->b) r->params[np] = (nb_param){L->b, net->params[np].decay}, np++;
    }
    return r;
}

void nb_net_replica_reduce(nb_net *net, nb_net *const *replicas, int n) {
    /* Each must share net's weights (nb_net_replica's): another network's
     * gradients were added by position, past the end of smaller ones. */
    for (int j = 0; j < n; j++) {
        const nb_net *r = replicas[j];
        bool same = r && r->replica && r->nparams == net->nparams;
        for (int k = 0; same && k < net->nparams; k++) same = r->params[k].t->data == net->params[k].t->data;
        if (!same) nb_fatal("net_replica_reduce", "replicas[%d] is not a replica of this network (nb_net_replica)", j);
    }
    for (int k = 0; k < net->nparams; k++) {
        float *restrict dst = net->params[k].t->grad->data;
        int64_t m = net->params[k].t->size;
        for (int j = 0; j < n; j++) {
            float *restrict src = replicas[j]->params[k].t->grad->data; /* restrict: a vector loop */
            NB_PARALLEL_FOR(m, for (int64_t i = 0; i < m; i++) {
                dst[i] += src[i];
                src[i] = 0.f;
            });
        }
    }
}

/* --- forward ------------------------------------------------------------- */

nb_tensor *nb_net_forward(nb_net *net, nb_tensor *x, bool training, nb_rng *rng) {
    if (!net->built) nb_fatal("net_forward", "build the network first (nb_net_build)");
    const layer *first = &net->layers[0];
    int64_t per = nb_shape_numel(first->in_nd, first->in_shape);
    if (x->ndim < 1 || x->size != x->shape[0] * per) {
        char s[96];
        nb_fatal("net_forward", "input of shape %s does not hold N examples of %lld values", nb_shape_str(x, s, sizeof s),
                 (long long)per);
    }
    int64_t N = x->shape[0];
    int64_t shape[5] = {N};
    nb__shape_copy(shape + 1, first->in_shape, first->in_nd);
    nb_tensor *h = nb_reshape(x, first->in_nd + 1, shape);
    for (int i = 0; i < net->n; i++) {
        layer *L = &net->layers[i];
        switch (L->k) {
        case L_DENSE:
            if (h->ndim != 2) h = nb_flatten(h, 1);
            h = nb_linear(h, L->w, L->b);
            break;
        case L_CONV: {
            nb_conv2d_opts o = {L->stride, L->stride, L->pad, L->pad, L->pad, L->pad, L->dil, L->dil};
            h = nb_conv2d(h, L->w, L->b, &o);
            break;
        }
        case L_MAXPOOL: h = nb_maxpool2d(h, L->kernel, L->stride, L->pad); break;
        case L_AVGPOOL: h = nb_avgpool2d(h, L->kernel, L->stride, L->pad); break;
        case L_FLATTEN: h = nb_flatten(h, 1); break;
        case L_DROPOUT: h = nb_dropout(h, L->p, training, rng); break;
        case L_RELU: h = nb_relu(h); break;
        case L_LEAKY: h = nb_leaky_relu(h, L->slope); break;
        case L_PRELU: h = nb_prelu(h, L->w); break;
        case L_ABS: h = nb_abs_rect(h); break;
        case L_SIGMOID: h = nb_sigmoid(h); break;
        case L_TANH: h = nb_tanh(h); break;
        default: nb_fatal("net_forward", "unknown layer kind %d", (int)L->k);
        }
        /* Threads may run one network's forward at once (shared for
         * inference): each stores its own output here, atomically, and the
         * last store wins; a thread that reads the layer outputs wants a
         * network of its own (nb_net_replica). Relaxed: a plain store. */
        __atomic_store_n(&L->last, h, __ATOMIC_RELAXED);
    }
    if (h->ndim != 2) h = nb_flatten(h, 1);
    return h;
}

int nb_net_layers(const nb_net *net) { return net->n; }
/* The layer index of the accessors below, checked: an index past the layers
 * read beyond the array. */
static const layer *layer_at(const char *op, const nb_net *net, int i) {
    if (i < 0 || i >= net->n) nb_fatal(op, "layer %d is out of range [0, %d)", i, net->n);
    return &net->layers[i];
}
nb_tensor *nb_net_layer_output(const nb_net *net, int i) {
    return __atomic_load_n(&layer_at("net_layer_output", net, i)->last, __ATOMIC_RELAXED);
}
const char *nb_net_layer_name(const nb_net *net, int i) { return layer_at("net_layer_name", net, i)->name; }

bool nb_net_layer_is_activation(const nb_net *net, int i) {
    kind k = layer_at("net_layer_is_activation", net, i)->k;
    bool act = k == L_RELU || k == L_LEAKY || k == L_PRELU || k == L_ABS || k == L_SIGMOID || k == L_TANH;
    return act && i != net->n - 1; /* an output nonlinearity is not a hidden representation */
}

void nb_net_summary(const nb_net *net, FILE *f) {
    int64_t total = 0;
    fprintf(f, "%-10s %-8s %-16s %s\n", "layer", "kind", "output", "params");
    for (int i = 0; i < net->n; i++) {
        const layer *L = &net->layers[i];
        char shp[64] = "";
        size_t off = 0;
        for (int k = 0; k < L->out_nd; k++)
            off += (size_t)snprintf(shp + off, sizeof shp - off, k ? "x%lld" : "%lld", (long long)L->out_shape[k]);
        int64_t np = (L->w ? L->w->size : 0) + (L->b ? L->b->size : 0);
        total += np;
        fprintf(f, "%-10s %-8s %-16s %lld\n", L->name, kind_names[L->k], shp, (long long)np);
    }
    fprintf(f, "total parameters: %lld\n", (long long)total);
}
