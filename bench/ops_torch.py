#!/usr/bin/python3
"""ops_torch.py -- the cases of bench/ops_bench.c, same names and sizes, in PyTorch.

Every input requires a gradient; one iteration is the op forward, .sum() to a
scalar (unless the op gives one) and .backward(), whose gradients accumulate
into the inputs' .grad, as in ops_bench (and as in a training step whose
gradients are zeroed, not dropped, between steps). Resetting .grad to None
instead would let PyTorch store each gradient without adding it in: a
cheaper job than nabla's, for the ops whose backward is one memory pass.
After warm-up each repetition times
enough iterations to last >= 2 ms; the median per iteration is printed as
    name  ms  gflop  gflops
like ops_bench. Run with Debian's /usr/bin/python3 (python3-torch):
    /usr/bin/python3 bench/ops_torch.py --threads 2 [--reps N] [--cpu] [NAME...]
--cpu times with the process's CPU time instead of the wall clock (robust to
other load; meaningful with 1 thread only).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def mm(m, k, n):
    return 2.0 * m * k * n


def conv(n, oc, oh, ow, c, kh, kw):
    return 2.0 * n * oc * oh * ow * c * kh * kw


def conv1d_causal(x, w, b, dilation=4):
    return F.conv1d(F.pad(x, ((w.shape[2] - 1) * dilation, 0)), w, b, dilation=dilation)


# name, forward, input shapes, flop per iteration (0: not meaningful), options
CASES = [
    ("matmul_128x784x256", torch.matmul, ["128x784", "784x256"], 3 * mm(128, 784, 256), {}),
    ("matmul_fwd_128x784x256", torch.matmul, ["128x784", "784x256"], mm(128, 784, 256), {"nograd": True}),
    ("bmm_32x128x64x128", torch.matmul, ["32x128x64", "32x64x128"], 3 * 32 * mm(128, 64, 128), {}),
    ("linear_128x784x256", F.linear, ["128x784", "256x784", "256"], 3 * mm(128, 784, 256), {}),
    ("linear_128x256x128", F.linear, ["128x256", "128x256", "128"], 3 * mm(128, 256, 128), {}),
    ("conv2d_1to16_5x5_28", lambda x, w, b: F.conv2d(x, w, b, padding=2),
     ["128x1x28x28", "16x1x5x5", "16"], 3 * conv(128, 16, 28, 28, 1, 5, 5), {}),
    ("conv2d_16to32_5x5_14", lambda x, w, b: F.conv2d(x, w, b, padding=2),
     ["128x16x14x14", "32x16x5x5", "32"], 3 * conv(128, 32, 14, 14, 16, 5, 5), {}),
    ("conv1d_32to32_k2_d4_causal", conv1d_causal, ["16x32x1000", "32x32x2", "32"],
     3 * conv(16, 32, 1, 1000, 32, 1, 2), {}),
    ("maxpool2_128x16x28x28", lambda x: F.max_pool2d(x, 2), ["128x16x28x28"], 0, {}),
    ("avgpool2_128x16x28x28", lambda x: F.avg_pool2d(x, 2), ["128x16x28x28"], 0, {}),
]
for act, fn in (("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
    for shape in ("128x10", "128x256", "128x16x28x28"):
        CASES.append((f"{act}_{shape}", fn, [shape], 0, {}))
CASES += [
    ("softmax_128x10", lambda x: torch.softmax(x, -1), ["128x10"], 0, {}),
    ("softmax_128x1000", lambda x: torch.softmax(x, -1), ["128x1000"], 0, {}),
    ("softmax_128x256x256", lambda x: torch.softmax(x, -1), ["128x256x256"], 0, {}),
    ("log_softmax_128x10", lambda x: torch.log_softmax(x, -1), ["128x10"], 0, {}),
    ("log_softmax_128x1000", lambda x: torch.log_softmax(x, -1), ["128x1000"], 0, {}),
    ("cross_entropy_128x10", F.cross_entropy, ["128x10"], 0, {"labels": (10, 128)}),
    ("cross_entropy_128x1000", F.cross_entropy, ["128x1000"], 0, {"labels": (1000, 128)}),
    ("add_bias_128x256+256", torch.add, ["128x256", "256"], 0, {}),
    ("add_bias_128x16x28x28+16x1x1", torch.add, ["128x16x28x28", "16x1x1"], 0, {}),
    ("add_128x16x28x28", torch.add, ["128x16x28x28", "128x16x28x28"], 0, {}),
    ("mul_128x16x28x28", torch.mul, ["128x16x28x28", "128x16x28x28"], 0, {}),
    ("sum_128x16x28x28", torch.sum, ["128x16x28x28"], 0, {}),
    ("mean_axis1_128x256x64", lambda x: x.mean(1), ["128x256x64"], 0, {}),
    ("exp_128x16x28x28", torch.exp, ["128x16x28x28"], 0, {}),
    ("log_128x16x28x28", torch.log, ["128x16x28x28"], 0, {"positive": True}),
    # nabla's embedding(w, idx) is F.embedding(idx, w)
    ("embedding_10000x128_n4096", lambda w, idx: F.embedding(idx, w), ["10000x128"], 0,
     {"labels": (10000, 4096)}),
    ("dropout_128x256", lambda x: F.dropout(x, 0.5, training=True), ["128x256"], 0, {}),
    ("dropout_128x16x28x28", lambda x: F.dropout(x, 0.5, training=True), ["128x16x28x28"], 0, {}),
]


def run_case(name, fn, shapes, flop, opt, reps, warmup, clock):
    gen = torch.Generator().manual_seed(42)
    ins = []
    for s in shapes:
        shape = [int(d) for d in s.split("x")]
        lo, hi = (0.5, 1.5) if opt.get("positive") else (-1.0, 1.0)
        t = torch.rand(shape, generator=gen) * (hi - lo) + lo
        t.requires_grad_(not opt.get("nograd"))
        ins.append(t)
    args = list(ins)
    if "labels" in opt:
        hi, n = opt["labels"]
        args.append(torch.randint(0, hi, (n,), generator=gen))

    def step():
        if opt.get("nograd"):
            with torch.no_grad():
                fn(*args)
            return
        y = fn(*args)
        (y if y.numel() == 1 else y.sum()).backward()

    t0 = clock()
    w = 0
    while w < warmup or clock() - t0 < 0.05:
        step()
        w += 1
    one = (clock() - t0) / w
    inner = 1 if one >= 2e-3 else int(2e-3 / one) + 1
    times = []
    for _ in range(reps):
        s = clock()
        for _ in range(inner):
            step()
        times.append((clock() - s) / inner)
    med = statistics.median(times)
    if flop > 0:
        print(f"{name:<32s} {1e3 * med:10.4f} {1e-9 * flop:8.4f} {1e-9 * flop / med:8.2f}", flush=True)
    else:
        print(f"{name:<32s} {1e3 * med:10.4f} {'-':>8s} {'-':>8s}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cpu", action="store_true", help="time with process CPU time, not the wall clock")
    ap.add_argument("names", nargs="*", help="run the cases whose names contain one of these")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    print(f"# torch {torch.__version__} ops: threads {torch.get_num_threads()}, median of {a.reps} reps, "
          f"forward+backward, {'CPU' if a.cpu else 'wall'} time")
    for name, fn, shapes, flop, opt in CASES:
        if not a.names or any(s in name for s in a.names):
            run_case(name, fn, shapes, flop, opt, a.reps, a.warmup, time.process_time if a.cpu else time.perf_counter)


if __name__ == "__main__":
    main()
