#!/usr/bin/python3
"""charrnn_torch.py — the PyTorch side of bench/charrnn_bench.sh: the same
character-level language model as `nabla charrnn train` (one-hot characters,
nn.LSTM/GRU/RNN, nn.Linear, per-step cross-entropy, global-norm clipping,
Adam), the same corpus, vocabulary, validation split, truncated-BPTT batches
and bits-per-character evaluation, so that steps/s and validation bits/char
compare like for like.

  charrnn_torch.py speed   [--threads N] [--steps N] [--cell lstm] [--hidden 256] [--seq 64] [--batch 32]
  charrnn_torch.py quality --init MODEL.safetensors --steps N [--threads N]

`quality` starts from the weights of a nabla model file (e.g. written by
`nabla charrnn train --steps 0 --out init.safetensors`), whose vocabulary and
sizes it takes, and prints the validation bits/char after --steps steps.
Prints one JSON line on stdout.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import nbfile

FORTUNES = "/usr/share/games/fortunes"
VAL_PERCENT = 5


def corpus_files(args):
    """TEXT files, or a directory's files in name order without hidden
    files and fortune(6)'s *.dat / *.u8 index files (as nabla reads them)."""
    out = []
    for a in args or [FORTUNES]:
        if os.path.isdir(a):
            names = sorted(n for n in os.listdir(a)
                           if not n.startswith(".") and not n.endswith(".dat") and not n.endswith(".u8"))
            # nabla sorts full paths with strcmp: the same order for one directory.
            out += [os.path.join(a, n) for n in names if os.path.isfile(os.path.join(a, n))]
        else:
            out.append(a)
    return out


def load_texts(files):
    return [open(f, "rb").read().decode("utf-8") for f in files]


def read_safetensors(path):
    """The model's tensors (torch) and metadata."""
    arrays, meta = nbfile.read_safetensors(path)
    return {k: torch.from_numpy(v) for k, v in arrays.items()}, meta


class CharRNN(torch.nn.Module):
    def __init__(self, cell, vocab, hidden, layers):
        super().__init__()
        kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
        self.vocab = vocab
        self.rnn = kind(vocab, hidden, layers)
        self.fc = torch.nn.Linear(hidden, vocab)
        if cell == "lstm":  # nabla's forget-gate bias: 1 in bias_ih, 0 in bias_hh
            with torch.no_grad():
                for l in range(layers):
                    getattr(self.rnn, f"bias_ih_l{l}")[hidden:2 * hidden] = 1
                    getattr(self.rnn, f"bias_hh_l{l}")[hidden:2 * hidden] = 0

    def forward(self, x, state):
        # One-hot characters [T, B, V] into the recurrent layers (the notes' x^(t)).
        h, state = self.rnn(F.one_hot(x, self.vocab).float(), state)
        return self.fc(h.reshape(-1, h.shape[-1])), state


def windows(n, T, B):
    ln = n // B
    return (ln - 1) // T if ln >= 1 else 0


def batch(ids, T, B, k):
    """nabla's nb_charrnn_batch: B streams of n // B ids, window k mod windows."""
    ln = len(ids) // B
    w = k % windows(len(ids), T, B)
    idx = np.arange(B)[None, :] * ln + w * T + np.arange(T)[:, None]
    return torch.from_numpy(ids[idx]), torch.from_numpy(ids[idx + 1]), w == 0


def detach(state):
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


@torch.no_grad()
def bits_per_char(model, ids, T, B):
    """nabla's nb_charrnn_bits_per_char: the same batches, state carried."""
    n = len(ids)
    while B > 1 and windows(n, T, B) < 1:
        B -= 1
    if windows(n, T, B) < 1:
        T = n - 1
    K, total, state = windows(n, T, B), 0.0, None
    for k in range(K):
        x, y, _ = batch(ids, T, B, k)
        logits, state = model(x, state)
        total += F.cross_entropy(logits, y.reshape(-1)).item() * T * B
    return total / (K * T * B) / math.log(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["speed", "quality"])
    ap.add_argument("text", nargs="*")
    ap.add_argument("--init")
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--schedule", choices=["cosine", "constant"], default="cosine",
                    help="as nabla's: cosine anneals lr to 0 over --steps")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for speed (then TF32 is off: float32 as nabla computes)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        if a.mode != "speed":
            ap.error("--device cuda is for speed runs")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    texts = load_texts(corpus_files(a.text))
    text = "".join(texts)
    if a.init:
        tensors, meta = read_safetensors(a.init)
        vocab = [int(c) for c in meta["nabla.charrnn.vocab"].split()]
        a.cell, a.hidden, a.layers = meta["nabla.charrnn.cell"], int(meta["nabla.charrnn.hidden"]), int(meta["nabla.charrnn.layers"])
    else:
        vocab = sorted({ord(c) for c in text})
    index = {c: i for i, c in enumerate(vocab)}
    # nabla's split: the last VAL_PERCENT% of every file is validation text.
    parts = [np.array([index[ord(c)] for c in t], dtype=np.int64) for t in texts]
    cut = [len(p) - len(p) * VAL_PERCENT // 100 for p in parts]
    train = np.concatenate([p[:c] for p, c in zip(parts, cut)])
    val = np.concatenate([p[c:] for p, c in zip(parts, cut)])

    model = CharRNN(a.cell, len(vocab), a.hidden, a.layers)
    if a.init:
        want = model.state_dict()  # names map one to one; the file also holds optimizer state
        model.load_state_dict({k: v for k, v in tensors.items() if k in want}, strict=True)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    state, loss, t_train, steps = None, None, 0.0, a.steps + (a.warmup if a.mode == "speed" else 0)
    for k in range(steps):
        t0 = time.perf_counter()
        if a.schedule == "cosine":  # nabla's rule: lr (1 + cos(pi k / steps)) / 2 for step k
            for group in opt.param_groups:
                group["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * min(k / steps, 1.0)))
        x, y, reset = batch(train, a.seq, a.batch, k)
        x, y = x.to(dev), y.to(dev)  # the batch's one move; nabla reads the loss every step, as loss.item() below
        if reset:
            state = None
        logits, state = model(x, state)
        loss = F.cross_entropy(logits, y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        state = detach(state)  # truncated BPTT
        loss.item()
        if a.mode == "quality" or k >= a.warmup:
            t_train += time.perf_counter() - t0
    timed = a.steps
    out = {"framework": "pytorch " + torch.__version__, "threads": a.threads, "cell": a.cell, "hidden": a.hidden,
           "layers": a.layers, "seq": a.seq, "batch": a.batch, "vocab": len(vocab), "steps": timed,
           "steps_per_second": timed / t_train if t_train > 0 else 0.0, "train_loss_bpc": loss.item() / math.log(2) if loss is not None else None}
    if a.mode == "quality":
        out["val_bpc"] = bits_per_char(model, val, a.seq, a.batch)
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
