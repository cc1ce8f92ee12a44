#!/usr/bin/python3
"""hessian_torch.py -- PyTorch's side of `nabla hessian`'s check (issue 4).

The top eigenvalue of the Hessian of the training loss of a model written by
`nabla train` / `nabla init`, by power iteration on Hessian-vector products
from torch.autograd double backward, as PyHessian does. Same model file (the
safetensors read with numpy and json; the network rebuilt from the NET.cfg
text nabla stores in the "nabla.net" metadata), same batch (the first N
training images in file order, pixels / 255), same loss (mean cross-entropy,
dropout off). Computed in float64 by default, so the reference carries no
float32 rounding.

    bench/hessian_torch.py MODEL [--batch 1000] [--data DIR] [--nabla build/nabla]

prints one JSON line {"loss", "grad_norm", "top_eigenvalue", "iterations",
"seconds", ...}. With --nabla it also runs `nabla hessian MODEL --data
fashion-mnist --batch N --top 1 --json` and prints the relative differences;
the exit status is 1 when the top eigenvalues differ by more than --rtol
(1e-3, the issue's target). Run with Debian's /usr/bin/python3 (python3-torch).

Power iteration converges to the eigenvalue of largest magnitude; at the
usual points of a classifier's loss that is the top one, which Lanczos in
nabla finds directly. If the most negative eigenvalue were larger in
magnitude, the two would differ and the script says so.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import nbfile

DATA = "/usr/share/datasets/fashion-mnist"


def read_safetensors(path):
    """{name: float32 array} and the __metadata__ dict of a safetensors file."""
    try:
        return nbfile.read_safetensors(path)
    except ValueError as e:
        sys.exit(f"hessian_torch.py: {e}")


ACTS = {"relu", "leaky", "prelu", "abs", "sigmoid", "tanh"}


def parse_cfg(text):
    """The input shape and the layer list of a NET.cfg, named as nabla names
    them (fc1, conv1, prelu1, ... counted per kind; `name =` overrides)."""
    layers, shape, cur, in_net = [], None, None, False

    def finish():
        if cur is not None and cur.get("activation", "linear") != "linear":
            layers.append({"kind": cur["activation"]})

    for line in text.splitlines():
        for c in "#;":
            line = line.split(c, 1)[0]
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            finish()
            kind = line[1:line.index("]")].strip()
            if kind == "net":
                in_net, cur = True, None
                continue
            in_net, cur = False, {"kind": kind}
            layers.append(cur)
            continue
        key, val = (s.strip() for s in line.split("=", 1))
        if in_net:
            if key == "input":
                shape = [int(v) for v in val.split("x")]
        else:
            cur[key] = val
    finish()
    counts = {}
    for L in layers:
        k = L["kind"]
        counts[k] = counts.get(k, 0) + 1
        prefix = {"dense": "fc", "conv2d": "conv"}.get(k, k)
        L.setdefault("name", f"{prefix}{counts[k]}")
    return shape, layers


def forward(layers, params, x):
    """nabla's nb_net_forward with training off (dropout is the identity)."""
    h = x
    for L in layers:
        k, p = L["kind"], params
        if k == "dense":
            if h.dim() != 2:
                h = torch.flatten(h, 1)
            h = F.linear(h, p[L["name"] + ".weight"], p[L["name"] + ".bias"])
        elif k == "conv2d":
            s, pad, d = int(L.get("stride", 1)), int(L.get("padding", 0)), int(L.get("dilation", 1))
            h = F.conv2d(h, p[L["name"] + ".weight"], p[L["name"] + ".bias"], stride=s, padding=pad, dilation=d)
        elif k in ("maxpool", "avgpool"):
            size = int(L["size"])
            s, pad = int(L.get("stride", size)), int(L.get("padding", 0))
            h = F.max_pool2d(h, size, s, pad) if k == "maxpool" else F.avg_pool2d(h, size, s, pad)
        elif k == "flatten":
            h = torch.flatten(h, 1)
        elif k == "dropout":
            pass
        elif k == "relu":
            h = F.relu(h)
        elif k == "leaky":
            h = F.leaky_relu(h, float(L.get("slope", 0.01)))
        elif k == "prelu":
            h = F.prelu(h, p[L["name"] + ".weight"])
        elif k == "abs":
            h = torch.abs(h)
        elif k == "sigmoid":
            h = torch.sigmoid(h)
        elif k == "tanh":
            h = torch.tanh(h)
        else:
            sys.exit(f"hessian_torch.py: unknown layer [{k}]")
    return torch.flatten(h, 1) if h.dim() != 2 else h


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def first_batch(folder, n):
    def path(kind):
        p = os.path.join(folder, f"train-{kind}")
        return p + ".gz" if os.path.exists(p + ".gz") else p
    x = read_idx(path("images-idx3-ubyte"))[:n].astype(np.float32) / np.float32(255)
    y = read_idx(path("labels-idx1-ubyte"))[:n].astype(np.int64)
    return x, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--data", default=DATA, help="an MNIST-format IDX folder (Fashion-MNIST)")
    ap.add_argument("--iters", type=int, default=2000, help="power iterations at most")
    ap.add_argument("--tol", type=float, default=1e-8, help="stop when the estimate changes less (relative)")
    ap.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nabla", help="the nabla command to compare with")
    ap.add_argument("--rtol", type=float, default=1e-3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dt = torch.float32 if a.float32 else torch.float64

    tensors, meta = read_safetensors(a.model)
    if "nabla.net" not in meta:
        sys.exit(f"hessian_torch.py: {a.model}: no 'nabla.net' metadata (not a nabla model)")
    shape, layers = parse_cfg(meta["nabla.net"])
    params = {k: torch.tensor(v, dtype=dt, requires_grad=True) for k, v in tensors.items()
              if k.endswith(".weight") or k.endswith(".bias")}
    plist = list(params.values())
    xn, yn = first_batch(a.data, a.batch)
    x = torch.tensor(xn, dtype=dt).reshape([len(xn)] + shape)
    y = torch.tensor(yn)

    t0 = time.time()
    loss = F.cross_entropy(forward(layers, params, x), y)
    g = torch.autograd.grad(loss, plist, create_graph=True)
    grad_norm = torch.sqrt(sum((gi.detach() ** 2).sum() for gi in g)).item()

    def hvp(v):
        return torch.autograd.grad(g, plist, grad_outputs=v, retain_graph=True)

    def normalize(v):
        n = torch.sqrt(sum((vi ** 2).sum() for vi in v))
        return [vi / n for vi in v]

    v = normalize([torch.randn_like(p) for p in plist])
    lam, it = None, 0
    for it in range(1, a.iters + 1):
        hv = hvp(v)
        new = sum((hi * vi).sum() for hi, vi in zip(hv, v)).item()  # Rayleigh quotient v^T H v
        v = normalize([h.detach() for h in hv])
        if lam is not None and abs(new - lam) <= a.tol * abs(new):
            lam = new
            break
        lam = new
    secs = time.time() - t0
    out = {"model": a.model, "examples": len(xn), "dtype": str(dt).replace("torch.", ""), "loss": loss.item(),
           "grad_norm": grad_norm, "top_eigenvalue": lam, "iterations": it, "seconds": round(secs, 3)}
    print(json.dumps(out))
    if not a.nabla:
        return 0
    cmd = [a.nabla, "hessian", a.model, "--data", a.data, "--batch", str(a.batch), "--top", "1", "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"hessian_torch.py: {' '.join(cmd)} failed:\n{r.stderr}")
    nb = json.loads(r.stdout.strip().splitlines()[-1])
    top = nb["top_eigenvalues"][0]
    rel = {"loss": abs(nb["loss"] - out["loss"]) / abs(out["loss"]),
           "grad_norm": abs(nb["grad_norm"] - grad_norm) / abs(grad_norm),
           "top_eigenvalues": abs(top - lam) / abs(lam)}
    ok = rel["top_eigenvalues"] <= a.rtol
    print(f"nabla: loss {nb['loss']:.7g}, ||g|| {nb['grad_norm']:.7g}, top eigenvalue {top:.7g} "
          f"(Lanczos, {nb['hvp_top']} products, {nb['seconds']:.2f} s)")
    print(f"torch: loss {out['loss']:.7g}, ||g|| {grad_norm:.7g}, top eigenvalue {lam:.7g} "
          f"(power iteration, {it} products, {secs:.2f} s, {out['dtype']})")
    print(f"relative difference: loss {rel['loss']:.2e}, ||g|| {rel['grad_norm']:.2e}, "
          f"top eigenvalue {rel['top_eigenvalues']:.2e} -> {'agree' if ok else 'DISAGREE'} to {a.rtol:g}")
    if not ok and nb.get("lambda_min") is not None and abs(nb["lambda_min"]) > abs(top):
        print("(|lambda_min| > lambda_max: power iteration found the most negative eigenvalue instead)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
