#!/usr/bin/python3
"""train_torch.py -- PyTorch's side of issue 3's training-speed benchmark.

Trains the models of examples/mlp.cfg and examples/cnn.cfg on Fashion-MNIST
exactly as `nabla train` does: batch 128, SGD lr 0.05 momentum 0.9, pixels/255,
a shuffled epoch (or --steps N), then evaluates the test set. train_seconds
counts the training steps alone (batch assembly from the uint8 images,
forward, backward, update), as nabla's --json does. Prints one JSON line:
    {"model", "threads", "steps", "train_seconds", "train_images_per_second",
     "test_accuracy", "flop_per_step"}
--flops prints only the FLOPs of one training step (see flop_per_step).
Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def read_idx(path):
    """An unsigned-byte IDX file (gzip or not) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(split):
    def path(kind):
        p = os.path.join(DATA, f"{split}-{kind}")
        return p + ".gz" if os.path.exists(p + ".gz") else p
    x = torch.from_numpy(read_idx(path("images-idx3-ubyte")).copy()).unsqueeze(1)  # [n,1,28,28] uint8
    y = torch.from_numpy(read_idx(path("labels-idx1-ubyte")).astype(np.int64))
    return x, y


class MLP(nn.Module):  # examples/mlp.cfg
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CNN(nn.Module):  # examples/cnn.cfg
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
        self.fc1, self.fc2 = nn.Linear(1568, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def flop_per_step(model, batch):
    """Multiply-add FLOPs of one training step in the dense and conv layers
    (2 per multiply-add; activations, pooling and the update are not counted):
    forward F per layer; backward F for the weight gradient and F for the
    input gradient, except in the first layer, whose input needs none."""
    fwd = []

    def hook(m, inp, out):
        per_out = m.in_features if isinstance(m, nn.Linear) else m.weight[0].numel()
        fwd.append(2.0 * out.numel() * per_out)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    with torch.no_grad():
        model(torch.zeros(batch, 1, 28, 28))
    for h in hs:
        h.remove()
    return 3 * sum(fwd) - fwd[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["mlp", "cnn"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="stop after N steps (0: one epoch)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (then TF32 is off: float32 as nabla computes)")
    ap.add_argument("--flops", action="store_true", help="print the FLOPs of one training step and exit")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = MLP() if a.model == "mlp" else CNN()
    flop = flop_per_step(model, a.batch)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model.to(dev)
    if a.flops:
        print(f"{flop:.0f}")
        return

    xtr, ytr = load("train")
    xte, yte = load("t10k")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    n = len(ytr)
    perm = torch.randperm(n)
    steps = a.steps if a.steps > 0 else (n + a.batch - 1) // a.batch
    train_seconds, images = 0.0, 0
    model.train()
    for s in range(steps):
        t0 = time.perf_counter()
        idx = perm[(s * a.batch) % n:][:a.batch]
        # On a GPU the batch moves once per step, as with nabla --device cuda,
        # and reading the loss waits for the step (nabla reads it every step).
        x = xtr[idx].float().div_(255).to(dev)
        loss = F.cross_entropy(model(x), ytr[idx].to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        train_seconds += time.perf_counter() - t0
        images += len(idx)

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(yte), 1000):
            correct += (model((xte[i:i + 1000].float() / 255).to(dev)).argmax(1).cpu() == yte[i:i + 1000]).sum().item()
    print(json.dumps({"model": a.model, "device": a.device, "batch": a.batch, "threads": a.threads, "steps": steps, "train_seconds": round(train_seconds, 3),
                      "train_images_per_second": round(images / train_seconds, 1),
                      "test_accuracy": correct / len(yte), "flop_per_step": flop}))


if __name__ == "__main__":
    main()
