#!/usr/bin/python3
"""style_torch.py — `nabla style`'s default problem in PyTorch, for bench/style_bench.sh: the same feature network
(5 scales of 64 random 7x7 filters on an average-pooled image pyramid, ReLU, ImageNet normalization; see
src/models/style.c), the same losses (notes §4.6: eq. 1, the Gram matrix eq. 3, eq. 4 with 1/(4 N^2 M^2), eq. 5 with
w_l = 1/5, eq. 7 with alpha 1 and beta 1e4) and the same optimizer (Adam, lr 0.02, pixels clamped to [0, 1] after each
step, or L-BFGS). The filters come from PyTorch's generator, not nabla's: the cost is the same, the values differ.
Prints one JSON line: iterations_per_second over the optimization loop, the losses, and the peak resident memory.
--device cuda runs it on a GPU (TF32 off: float32 as nabla computes). Where neither skimage nor PIL can read the
images (a bare GPU machine), they are uniform noise of --size x --size: the same cost, other losses (said on stderr)."""
import argparse, json, resource, sys, time
import numpy as np
import torch
import torch.nn.functional as Fn

p = argparse.ArgumentParser()
p.add_argument("style")
p.add_argument("--content")
p.add_argument("--size", type=int, default=256)
p.add_argument("--iters", type=int, default=50)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--optim", choices=["adam", "lbfgs"], default="adam")
p.add_argument("--lr", type=float, default=0.02)
p.add_argument("--alpha", type=float, default=1.0)
p.add_argument("--beta", type=float, default=1e4)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--device", default="cpu", help="cpu, or cuda")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
dev = torch.device(a.device)
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

def imread(path):
    """The image as [h, w, c] floats in [0, 1], or None when no reader is installed."""
    try:
        import skimage.io
        img = skimage.io.imread(path)
    except ImportError:
        try:
            from PIL import Image
            img = np.asarray(Image.open(path))
        except ImportError:
            return None
    if img.ndim == 2: img = np.stack([img] * 3, -1)
    return img[..., :3].astype(np.float32) / (65535.0 if img.dtype == np.uint16 else 255.0)

def load(img, h, w):
    if img is None: return torch.rand(1, 3, h, w)
    try:
        import skimage.transform
        img = skimage.transform.resize(img, (h, w), anti_aliasing=True).astype(np.float32)
    except ImportError:  # PIL read it: PyTorch's antialiased bilinear resize
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)
        return Fn.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False).contiguous()
    return torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).contiguous()

ref, sty = imread(a.content or a.style), imread(a.style)
if ref is None:
    print("style_torch.py: no image reader (skimage or PIL): noise images of --size x --size", file=sys.stderr)
    H = W = a.size
else:
    s = a.size / max(ref.shape[0], ref.shape[1])
    H, W = max(1, round(ref.shape[0] * s)), max(1, round(ref.shape[1] * s))
style = load(sty, H, W).to(dev)
content = load(ref, H, W).to(dev) if a.content else None

SCALES, CH, K = 5, 64, 7
weights = [(torch.randn(CH, 3, K, K) * (2.0 / (3 * K * K)) ** 0.5).to(dev) for _ in range(SCALES)]
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).to(dev)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1).to(dev)

def features(x):
    h, out = (x - mean) / std, []
    for i, w in enumerate(weights):
        if i: h = Fn.avg_pool2d(h, 2)
        out.append(torch.relu(Fn.conv2d(h, w, padding=K // 2)))
    return out

def gram(F):  # eq. 3
    F = F.reshape(F.shape[1], -1)
    return F @ F.t()

with torch.no_grad():
    A = [gram(F) for F in features(style)]
    P = features(content)[1] if content is not None else None  # content layer scale2

def losses(x):
    Fs = features(x)
    ls = 0
    for F, Al in zip(Fs, A):  # eq. 4, eq. 5 with w_l = 1/5
        N, M = F.shape[1], F.shape[2] * F.shape[3]
        ls = ls + ((gram(F) - Al) ** 2).sum() / (4.0 * N * N * M * M) / len(Fs)
    lc = 0.5 * ((Fs[1] - P) ** 2).sum() if P is not None else torch.zeros(())  # eq. 1
    return lc, ls, a.alpha * lc + a.beta * ls  # eq. 7

x = torch.rand(1, 3, H, W).to(dev).requires_grad_(True)
with torch.no_grad():
    s0 = losses(x)[1].item()
if dev.type == "cuda": torch.cuda.synchronize()
t0 = time.perf_counter()
if a.optim == "adam":
    opt = torch.optim.Adam([x], lr=a.lr)
    for it in range(a.iters):
        opt.zero_grad()
        lc, ls, tot = losses(x)
        tot.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
else:
    opt = torch.optim.LBFGS([x], lr=1, max_iter=a.iters, history_size=10, tolerance_grad=1e-30,
                            tolerance_change=1e-30, line_search_fn="strong_wolfe")
    def closure():
        opt.zero_grad()
        tot = losses(x)[2]
        tot.backward()
        return tot
    opt.step(closure)
if dev.type == "cuda": torch.cuda.synchronize()
secs = time.perf_counter() - t0
with torch.no_grad():
    x.clamp_(0, 1)
    lc, ls, tot = losses(x)
print(json.dumps({"iterations": a.iters, "seconds": round(secs, 3), "iterations_per_second": a.iters / secs,
                  "initial_style_loss": s0, "style_loss": ls.item(), "content_loss": float(lc), "total_loss": tot.item(),
                  "width": W, "height": H, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
