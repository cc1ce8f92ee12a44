#!/usr/bin/python3
"""parity_torch.py -- PyTorch's side of bench/parity.sh.

bench/parity (parity.c) writes, for each case, nabla's inputs x<i>.npy and
constants c<i>.npy, its outputs out<k>.npy, random weights R<k>.npy and the
gradients g<i>.npy of loss = sum_k sum(out_k * R_k) (meta.txt: the op and its
parameters). This script recomputes every case in float64 PyTorch from the
same inputs and compares outputs and gradients. The error of an array is
max |nabla - torch| / max(max |torch|, 1e-12) (normwise, so a float32 result scores about
1e-7 where it is right); a case passes when every array's error is at most
the op's tolerance, TOL below (10 times it for H v, the Hessian of the loss
times a random v, which nabla's nb_hvp and PyTorch's double backward give,
relative to at least 1e-6 of the largest gradient). Prints one line per case:

    case  shapes  max-rel-err  tolerance  pass|FAIL  [worst array]

and a summary; exit status 1 on any FAIL.

    /usr/bin/python3 bench/parity_torch.py DIR [NAME...]

Conventions checked (where nabla documents one, its own):
  - leaky_relu / PReLU at exactly 0: slope (PyTorch: x > 0 ? g : slope*g)
  - ReLU and |x| at 0: derivative 0 (PyTorch's)
  - max over an axis and max pooling: the gradient goes to one maximum
    (the first, PyTorch's CPU kernels), checked with ties present
  - avg pooling: count_include_pad=True (a k*k divisor), floor output size
  - dropout: inverted, kept units scaled by 1/(1-p); the identity in eval
  - mu-law at x = 0: nabla's documented derivative, the true slope
    mu/ln(1+mu) (PyTorch's autograd of the formula gives 0 there)
  - cosine schedule: nabla holds min_lr from step `total` on (documented;
    CosineAnnealingLR is periodic)
  - clip_grad_norm: one L2 norm over all tensors, scale max/(norm + 1e-6)
  - Adam: eps added to sqrt(v_hat) after bias correction; L2 weight decay in
    the gradient; AdamW decoupled (w -= lr*wd*w) before the Adam step
  - weight decay applies to weights only (nb_param.decay: biases are off),
    as nabla's nets set it; PyTorch gets two parameter groups
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

# tolerance on max|nabla - torch| / max|torch| (float32 against float64)
TOL = {
    "default": 1e-5,
    "matmul": 2e-5, "matmul_t": 2e-5, "linear": 2e-5,
    "conv2d": 2e-5, "conv1d": 2e-5, "conv_transpose1d": 2e-5,
    "rnn": 5e-5, "lstm_packed": 5e-5,
    "log_softmax": 1e-5, "cross_entropy": 1e-5,
    "style": 5e-5, "hvp": 1e-4,
    "optim": 1e-5,
    "fgsm": 1e-6, "net": 2e-5,
    # 4 and 8 iterations: the same steps (first step min(1, 1/|g|_1), H0 = s'y/y'y,
    # strong Wolfe); float32 rounding grows along the path (2e-5 seen after 8)
    "lbfgs": 1e-4,
    "lbfgs_min": 2e-3,  # converged: parameters to ~sqrt(float32 eps) (parity.c, c_lbfgs)
    "init": 1e-2, "dropout_rate": 2e-2,  # statistics of random draws
}


def load(d, prefix):
    out = []
    i = 0
    while os.path.exists(f"{d}/{prefix}{i}.npy"):
        out.append(torch.from_numpy(np.load(f"{d}/{prefix}{i}.npy").astype(np.float64)))
        i += 1
    return out


def meta(d):
    p = {}
    with open(f"{d}/meta.txt") as f:
        for line in f:
            k, _, v = line.strip().partition(" ")
            if k in ("op", "cell", "kind"):  # names ("nan" would read as a float)
                p[k] = v
                continue
            vals = v.split()
            conv = []
            for s in vals:
                try:
                    conv.append(int(s))
                except ValueError:
                    try:
                        conv.append(float(s))
                    except ValueError:
                        conv.append(s)
            p[k] = conv[0] if len(conv) == 1 else conv
    return p


def ints(t):
    return t.long()


# ---- the ops: f(x, c, p) -> list of outputs --------------------------------

def op_unary(fn):
    return lambda x, c, p: [fn(x[0])]


def op_max(x, c, p):
    return [torch.max(x[0], p["axis"], keepdim=bool(p["keepdim"])).values]


def op_shapes(x, c, p):
    a, y = x
    xp = a.permute(2, 1, 0)
    cat = torch.cat([xp, y], 2)
    s = cat[-3:-1]
    t = s.transpose(0, 2)
    return [t.reshape(-1, 2 * a.shape[1])]


def op_gather(x, c, p):
    idx = ints(c[0])
    V = x[0].shape[0]
    sc = torch.zeros(V, x[1].shape[1]).index_add(0, idx, x[1])
    return [x[0][idx], sc]


def op_broadcast(x, c, p):
    a, b, _ = x[1].shape
    return [x[0].expand(a, b, 3), x[1].sum((0, 2)).reshape(b, 1)]


def op_matmul_t(x, c, p):
    a = x[0].transpose(-1, -2) if p["ta"] else x[0]
    b = x[1].transpose(-1, -2) if p["tb"] else x[1]
    return [a @ b]


def op_prelu(x, c, p):
    return [F.prelu(x[0], x[1]), F.prelu(x[2], x[3])]


def op_dqn(x, c, p):
    q, a, t = x[0], ints(c[0]), c[1]
    qa = q.gather(1, a[:, None])[:, 0]
    if p["huber"]:
        return [F.smooth_l1_loss(qa, t, beta=1.0)]
    return [0.5 * F.mse_loss(qa, t)]


def op_conv2d(x, c, p):
    xp = F.pad(x[0], p["pad"])  # left, right, top, bottom: asymmetric padding
    return [F.conv2d(xp, x[1], x[2], stride=p["stride"], dilation=p["dilation"])]


def op_conv1d(x, c, p):
    if p["causal"]:
        xp = F.pad(x[0], ((x[1].shape[2] - 1) * p["dilation"], 0))
        return [F.conv1d(xp, x[1], x[2], stride=p["stride"], dilation=p["dilation"])]
    return [F.conv1d(x[0], x[1], x[2], stride=p["stride"], padding=p["pad"], dilation=p["dilation"])]


def op_pool(fn):
    return lambda x, c, p: [fn(x[0], p["k"], p["s"], p["p"])]


def op_dropout(x, c, p, nabla_out):
    # the mask is nabla's (PyTorch's generator differs); the scaling is checked
    kept = torch.from_numpy(nabla_out[0] != 0).to(torch.float64)
    return [x[0] * kept / (1 - p["p"]), F.dropout(x[0], p["p"], training=False)]


def op_gated(x, c, p):
    a, b = x[0].chunk(2, 1)
    return [torch.tanh(a) * torch.sigmoid(b)]


def op_mulaw(x, c, p):
    # eq. 31; at x = 0 the slope mu / ln(1 + mu), nabla's documented
    # convention (the formula's autograd gives 0 there)
    mu = 255.0
    f = torch.sign(x[0]) * torch.log1p(mu * x[0].abs()) / math.log1p(mu)
    return [torch.where(x[0] == 0, x[0] * (mu / math.log1p(mu)), f)]


def op_rnn(x, c, p):
    cell, L, H = p["cell"], p["layers"], p["hidden"]
    np_ = 4 * L
    params, xin = x[:np_], x[np_]
    I = xin.shape[2]
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    m = cls(I, H, L)
    # nabla's parameters come in PyTorch's order and names: weight_ih_l<k>,
    # weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k>, gates i f g o (LSTM), r z n (GRU)
    for name, t in zip([n for n, _ in m.named_parameters()], params):
        setattr(m, name, torch.nn.Parameter(t))
    m._flat_weights = [getattr(m, n) for n in m._flat_weights_names]
    if cell == "lstm":
        y, (h, cc) = m(xin, (x[np_ + 1], x[np_ + 2]))
        return [y, h, cc], m
    y, h = m(xin, x[np_ + 1])
    return [y, h], m


def op_lstm_packed(x, c, p):
    xw, whh, bih, bhh = x
    H = p["hidden"]
    lens = [int(v) for v in c[0]]
    n, T = len(lens), max(lens)
    batch = [sum(1 for L in lens if L > t) for t in range(T)]
    off = np.cumsum([0] + batch)
    # PyTorch's LSTM cell with W_ih = I (xw is already x W_ih^T), one
    # sequence at a time, each to its own length
    outs = []
    for j in range(n):
        h = torch.zeros(1, H)
        cc = torch.zeros(1, H)
        for t in range(lens[j]):
            h, cc = torch.lstm_cell(xw[off[t] + j][None], (h, cc), torch.eye(4 * H), whh, bih, bhh)
        outs.append(h)
    return [torch.cat(outs, 0)]


def op_style(x, c, p):
    Fm, F2, xi = x
    P, A, A2 = c

    def mat(t):
        return t.reshape(t.shape[-3] if t.dim() >= 3 else t.shape[0], -1) if t.dim() != 2 else t

    def gram(t):
        m = mat(t)
        return m @ m.T

    def layer(t, a):
        m = mat(t)
        N, M = m.shape
        return ((gram(t) - a) ** 2).sum() / (4 * N * N * M * M)

    content = 0.5 * ((Fm - P) ** 2).sum()
    style = 0.3 * layer(Fm, A) + 1.7 * layer(F2, A2)
    tv = ((xi[..., 1:, :] - xi[..., :-1, :]) ** 2).sum() + ((xi[..., :, 1:] - xi[..., :, :-1]) ** 2).sum()
    total = 0.25 * content + 3 * layer(F2, A2)
    return [gram(Fm), content, layer(Fm, A), style, tv, total]


def op_hvp(x, c, p):
    ps = [t.clone().requires_grad_(True) for t in c[:6]]
    v, xin, y = c[6:12], c[12], ints(c[13])
    h = torch.tanh(F.conv2d(xin, ps[0], ps[1]))
    h = torch.sigmoid(F.linear(h.flatten(1), ps[2], ps[3]))
    loss = F.cross_entropy(F.linear(h, ps[4], ps[5]), y)
    g = torch.autograd.grad(loss, ps, create_graph=True)
    dot = sum((gi * vi).sum() for gi, vi in zip(g, v))
    return list(torch.autograd.grad(dot, ps))


def op_fgsm(x, c, p):
    w1, b1, w2, b2, w3, b3 = c[:6]
    xin, y = c[6], ints(c[7])

    def net(z):
        h = F.max_pool2d(torch.relu(F.conv2d(z, w1, b1, padding=1)), 2)
        h = torch.tanh(F.linear(h.flatten(1), w2, b2))
        return F.linear(h, w3, b3)

    xi = xin.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(net(xi), y), xi)
    return [(xin + p["eps"] * g.sign()).clamp(0, 1), net(xin)]


def op_optim(x, c, p):
    w, b, gw, gb = [t.clone() for t in c[:4]]
    w.requires_grad_(True)
    b.requires_grad_(True)
    kind, wd = p["kind"], p["weight_decay"]
    groups = [{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}]
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=p["lr"], momentum=p["momentum"], nesterov=bool(p["nesterov"]))
    else:
        cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=p["lr"], betas=(p["beta1"], p["beta2"]), eps=p["eps"])
    for k in range(p["steps"]):
        w.grad = gw[k].clone()
        b.grad = gb[k].clone()
        opt.step()
    return [w.detach(), b.detach()]


def op_lbfgs(x, c, p):
    X, y, w0 = c[0], ints(c[1]), c[2]
    w = w0.clone().requires_grad_(True)
    b = torch.zeros(w.shape[0], requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=p["iters"], max_eval=100000, history_size=10, tolerance_grad=1e-7,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(F.linear(X, w, b), y) + 0.5 * p["lam"] * ((w ** 2).sum() + (b ** 2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return [torch.cat([w.detach().flatten(), b.detach()])]


def op_clip(x, c, p):
    w = torch.zeros_like(c[0], requires_grad=True)
    b = torch.zeros_like(c[1], requires_grad=True)
    w.grad, b.grad = c[0].clone(), c[1].clone()
    norm = torch.nn.utils.clip_grad_norm_([w, b], p["max_norm"])
    return [w.grad, b.grad, norm]


def op_schedule(x, c, p):
    out = []
    for make in (lambda o: torch.optim.lr_scheduler.StepLR(o, p["every"], p["gamma"]),
                 lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, p["total"], p["min_lr"])):
        o = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        s = make(o)
        lrs = []
        for i in range(40):
            lrs.append(o.param_groups[0]["lr"])
            o.step()
            s.step()
        out.append(torch.tensor(lrs))
    # nabla's cosine holds min_lr from step `total` on (its documented
    # convention); PyTorch's CosineAnnealingLR is periodic and rises again
    out[1][p["total"]:] = p["min_lr"]
    return out


def op_nan(x, c, p):
    t = c[0]
    return [torch.relu(t), F.leaky_relu(t, 0.1), torch.sigmoid(t), torch.tanh(t), F.max_pool2d(t, 2, 2),
            torch.max(t, -1).values, torch.softmax(t, -1), torch.abs(t)]


def op_net(x, c, p, d):
    # the network as bench/hessian_torch.py rebuilds nabla's models for
    # PyTorch (nabla's .cfg reader and forward, evaluation mode)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import hessian_torch
    with open(f"{d}/net.cfg") as f:
        _, layers = hessian_torch.parse_cfg(f.read())
    with open(f"{d}/names.txt") as f:
        names = f.read().split()
    return [hessian_torch.forward(layers, dict(zip(names, x)), x[len(names)])]


def op_stats(x, c, p):
    X, pp, q, S1, mu1, S2, mu2, g = c
    D = torch.distributions
    sc = [D.Categorical(probs=pp).entropy(), -(pp * q.log()).sum(),
          D.kl_divergence(D.Categorical(probs=pp), D.Categorical(probs=q)),
          D.Normal(0.0, g[1]).entropy(), D.kl_divergence(D.Normal(g[0], g[1]), D.Normal(g[2], g[3])),
          D.MultivariateNormal(mu1, S1).entropy(),
          D.kl_divergence(D.MultivariateNormal(mu1, S1), D.MultivariateNormal(mu2, S2))]
    return [X.mean(0), X.var(0, unbiased=False), X.var(0, unbiased=True), torch.cov(X.T), torch.corrcoef(X.T),
            torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in sc])]


def op_init(x, c, p, nabla_out):
    # [bound, std] of nn.init's xavier_uniform_, xavier_normal_,
    # kaiming_uniform_ and kaiming_normal_ (a = 0: gain sqrt 2), from
    # PyTorch's own fan and gain; over 2*10^5 draws the sample max is within
    # 1e-4 of a bound and a std within 0.8% (5 standard errors): TOL 1e-2.
    # A normal's max is unbounded: nabla's own value stands there.
    O, C, k, _ = p["shape"]
    fi, fo = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(O, C, k, k))
    g = torch.nn.init.calculate_gain("relu")
    xs, hs = math.sqrt(2 / (fi + fo)), g / math.sqrt(fi)
    got = nabla_out[0].astype(np.float64)
    return [torch.tensor([xs * math.sqrt(3), xs, got[2], xs, hs * math.sqrt(3), hs, got[6], hs])]


OPS = {
    "stats": op_stats,
    "nan": op_nan,
    "add": lambda x, c, p: [x[0] + x[1]],
    "sub": lambda x, c, p: [x[0] - x[1]],
    "mul": lambda x, c, p: [x[0] * x[1]],
    "div": lambda x, c, p: [x[0] / x[1]],
    "scalars": lambda x, c, p: [x[0] * -1.75 + 0.3],
    "exp": op_unary(torch.exp), "log": op_unary(torch.log), "sqrt": op_unary(torch.sqrt),
    # |x| as x * sign(x): the same values and first derivative (0 at 0), but
    # Debian's PyTorch 1.13 double backward of torch.abs returns garbage (seen:
    # 1.6e238, varying run to run) when x holds exact zeros
    "abs": op_unary(lambda t: t * torch.sign(t)), "square": op_unary(torch.square), "neg": op_unary(torch.neg),
    "sigmoid": op_unary(torch.sigmoid), "tanh": op_unary(torch.tanh),
    "pow": lambda x, c, p: [torch.pow(x[0], p["p"]), torch.pow(x[1], 3)],
    "sum": lambda x, c, p: [x[0].sum(tuple(p["axes"]), keepdim=bool(p["keepdim"]))],
    "mean": lambda x, c, p: [x[0].mean(tuple(p["axes"]), keepdim=bool(p["keepdim"]))],
    "max": op_max,
    "sum_all": lambda x, c, p: [x[0].sum()],
    "shapes": op_shapes, "gather_scatter": op_gather, "broadcast_sum_to": op_broadcast,
    "matmul": lambda x, c, p: [x[0] @ x[1], x[0] @ x[2], x[3] @ x[4], x[5] @ x[6]],
    "matmul_t": op_matmul_t,
    "linear": lambda x, c, p: [F.linear(x[0], x[1], x[2]), F.linear(x[3], x[1])],
    "relu": op_unary(torch.relu),
    "leaky_relu": lambda x, c, p: [F.leaky_relu(x[0], p["slope"])],
    "prelu": op_prelu,
    "softmax": lambda x, c, p: [torch.softmax(x[0], p["axis"])],
    "log_softmax": lambda x, c, p: [torch.log_softmax(x[0], p["axis"])],
    "cross_entropy": lambda x, c, p: [F.cross_entropy(x[0], ints(c[0]))],
    "softmax_masked": lambda x, c, p: [torch.softmax(x[0], -1), F.cross_entropy(x[1], ints(c[0]))],
    "mse": lambda x, c, p: [F.mse_loss(x[0], x[1])],
    "bce_logits": lambda x, c, p: [F.binary_cross_entropy_with_logits(x[0], x[1])],
    "dqn_loss": op_dqn,
    "conv2d": op_conv2d, "conv1d": op_conv1d,
    "conv_transpose1d": lambda x, c, p: [F.conv_transpose1d(x[0], x[1], x[2], stride=p["stride"], padding=p["pad"])],
    "maxpool2d": op_pool(F.max_pool2d),
    "avgpool2d": op_pool(lambda t, k, s, pd: F.avg_pool2d(t, k, s, pd, count_include_pad=True)),
    "embedding": lambda x, c, p: [F.embedding(ints(c[0]), x[0])],
    "dropout": op_dropout, "gated": op_gated, "mulaw": op_mulaw,
    "rnn": op_rnn, "lstm_packed": op_lstm_packed,
    "style": op_style, "hvp": op_hvp, "fgsm": op_fgsm,
    "optim": op_optim, "lbfgs": op_lbfgs, "lbfgs_min": op_lbfgs, "clip_grad_norm": op_clip, "schedule": op_schedule,
}


def err(a, b, floor=1e-12):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return math.inf, f"shape {a.shape} vs {b.shape}"
    if a.size == 0:
        return 0.0, ""
    if not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return math.inf, "non-finite"
    if not np.all(np.isfinite(b)):  # the same NaN/inf positions: compare those
        if not np.array_equal(a[~np.isfinite(b)], b[~np.isfinite(b)], equal_nan=True):
            return math.inf, "non-finite"
        a, b = np.where(np.isfinite(b), a, 0), np.where(np.isfinite(b), b, 0)
    # relative to the largest reference value, but never below 1e-12 (the
    # inputs are of order 1): a saturated softmax's true gradient of 1e-62 is
    # 0 in float32, rightly
    scale = max(np.max(np.abs(b)), floor)
    return np.max(np.abs(a - b)) / scale, ""


def run_case(d):
    p = meta(d)
    op = p["op"]
    x = [t.clone().requires_grad_(True) for t in load(d, "x")]
    c = load(d, "c")
    outs_nb = [np.load(f"{d}/out{k}.npy") for k in range(8) if os.path.exists(f"{d}/out{k}.npy")]
    model = None
    if op == "dropout":
        outs = op_dropout(x, c, p, outs_nb)
    elif op == "net":
        outs = op_net(x, c, p, d)
    elif op == "init":
        outs = op_init(x, c, p, outs_nb)
    elif op == "dropout_rate":  # 10^6 draws: 5 standard errors are 1.5% of p = 0.1, less above
        outs = [torch.tensor(p["p"])]
    elif op == "rnn":
        outs, model = op_rnn(x, c, p)
    else:
        outs = OPS[op](x, c, p)
    outs = [o if torch.is_tensor(o) else torch.tensor(o) for o in outs]
    results = []
    for k, (a, b) in enumerate(zip(outs_nb, outs)):
        results.append((f"out{k}",) + err(a, b.detach().numpy()))
    if len(outs) != len(outs_nb):
        results.append(("outputs", math.inf, f"{len(outs_nb)} from nabla, {len(outs)} from torch"))
    if x:
        R = load(d, "R")
        loss = sum((o * r).sum() for o, r in zip(outs, R))
        wrt = x
        if model is not None:  # nn.RNN's own Parameters stand for x[0..4L-1]
            np_ = 4 * p["layers"]
            wrt = [getattr(model, n) for n in model._flat_weights_names] + x[np_:]
        grads = torch.autograd.grad(loss, wrt, allow_unused=True, create_graph=True)
        for i, (g, gt) in enumerate(zip(load(d, "g"), grads)):
            gt = torch.zeros_like(g) if gt is None else gt
            results.append((f"grad{i}",) + err(g.numpy(), gt.detach().numpy()))
        # H v by double backward, against nabla's nb_hvp (tolerance x 10),
        # relative to at least 1e-6 of the largest gradient: with logits of
        # 1e4 an entry of H v can be 1e-10 where the gradient is 0.19, made
        # by cancellation of gradient-sized float32 terms (seen: 1e-13 off)
        gscale = max([float(gt.detach().abs().max()) for gt in grads if gt is not None and gt.numel()] + [0.0])
        v = load(d, "v")
        terms = [(gt * vi).sum() for gt, vi in zip(grads, v) if gt is not None and gt.requires_grad]
        hvt = torch.autograd.grad(sum(terms), wrt, allow_unused=True) if terms else [None] * len(wrt)
        for i, (h, ht) in enumerate(zip(load(d, "hv"), hvt)):
            ht = torch.zeros_like(h) if ht is None else ht
            e, note = err(h.numpy(), ht.detach().numpy(), max(1e-12, 1e-6 * gscale))
            results.append((f"hv{i}", e / 10, note))
    shapes = " ".join("x".join(str(s) for s in t.shape) for t in (x or c)[:3])
    worst = max(results, key=lambda r: r[1])
    tol = TOL.get(op, TOL["default"])
    return op, p, shapes, worst, tol


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: parity_torch.py DIR [NAME...]")
    root, names = sys.argv[1], sys.argv[2:]
    cases = sorted(os.listdir(root))
    fails = 0
    n = 0
    closest = (0.0, "")  # the passing case closest to its tolerance
    print(f"{'case':26s} {'shapes':28s} {'max rel err':>11s} {'tolerance':>9s}  result")
    for name in cases:
        if names and not any(s in name for s in names):
            continue
        d = f"{root}/{name}"
        try:
            _, _, shapes, (what, e, note), tol = run_case(d)
            ok = e <= tol
        except Exception as ex:  # a case the script cannot run is a failure, named
            shapes, e, tol, ok, what, note = "", math.inf, 0, False, "error", repr(ex)
        n += 1
        fails += not ok
        if ok and tol > 0 and e / tol >= closest[0]:
            closest = (e / tol, f"{name}, {e:.2e} against {tol:.0e}")
        flag = "pass" if ok else f"FAIL ({what} {note})".rstrip()
        print(f"{name:26s} {shapes[:28]:28s} {e:11.2e} {tol:9.0e}  {flag}")
    print(f"parity: {n} cases, {n - fails} pass, {fails} FAIL; closest to its tolerance: {closest[1]}")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
