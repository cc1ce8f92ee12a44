#!/usr/bin/python3
"""chat_torch.py -- the dual-encoder LSTM of `nabla chat train` in PyTorch, for bench/chat_bench.sh.

Starts from the initial weights of a nabla model file (`nabla chat train ... --steps 0 --out init.st`: the
vocabulary and the settings come from its metadata), tokenizes the CSV files as nabla does (src/io/dialogue.c),
draws the same batches (PCG32 shuffles seeded by the seed and the epoch, as cli/chat.c) and runs the same
model: nn.Embedding, one nn.LSTM over packed sequences (no compute on padding) shared by context and
response, M, logits c^T M r, BCEWithLogitsLoss (eq. 29), Adam, clip_grad_norm_. Prints one JSON line: the
validation loss after --steps steps (the mean eq. 29 loss over every candidate of VALID, as nabla logs it),
recall@1 and the training throughput in pairs per second. --device cuda runs it on a GPU (cuDNN's LSTM, TF32
off), for bench/cuda_check.sh.
"""
import argparse, csv, json, time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_sequence

import nbfile

PCG32 = nbfile.PCG32


def read_safetensors(path):
    arrays, meta = nbfile.read_safetensors(path)
    return {k: torch.from_numpy(v) for k, v in arrays.items()}, meta


def word_byte(c):
    return c >= 0x80 or (48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122)


def tokens(text):
    """nabla's tokenizer (dialogue.c, next_token) on the UTF-8 bytes."""
    s, p, n, out = text.encode("utf-8"), 0, None, []
    n = len(s)
    while True:
        while p < n and (s[p] in b" \t\n\v\f\r" or s[p] < 32):
            p += 1
        if p >= n:
            return out
        st = p
        if s[p:p + 7] in (b"__eou__", b"__eot__"):
            p += 7
        elif word_byte(s[p]):
            while p < n and (word_byte(s[p]) or (s[p] == 39 and p + 1 < n and word_byte(s[p + 1]) and p > st)):
                p += 1
        else:
            p += 1
        out.append(s[st:p][:63].lower())


def encode(vocab, text, mx, last):
    ids = [vocab.get(t, 0) for t in tokens(text)]
    ids = ids[-mx:] if last else ids[:mx]
    return ids or [0]


class DualEncoder(nn.Module):
    def __init__(self, w):
        super().__init__()
        V, E = w["embedding.weight"].shape
        H = w["M"].shape[0]
        self.embedding = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H)
        self.M = nn.Parameter(torch.zeros(H, H))
        # the model file also keeps the training corpus's document frequencies
        # (tfidf.df, for --tfidf-weight): data, not parameters
        self.load_state_dict({k: v for k, v in w.items() if not k.startswith("tfidf.")}, strict=True)

    def encode(self, seqs):
        dev = self.M.device
        packed = pack_sequence([self.embedding(torch.tensor(s, device=dev)) for s in seqs], enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return h[0]  # [n, H] in the order given

    def logits(self, ctx, rsp):
        e = self.encode(ctx + rsp)
        c, r = e[:len(ctx)], e[len(ctx):]
        return ((c @ self.M) * r).sum(1)  # dual_encoder: c^T M r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="write the trained weights (.npy per tensor prefix)")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (TF32 off: float32 as nabla computes)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    w, meta = read_safetensors(a.init)
    words = meta["nabla.dualenc.vocab"].split("\n")
    vocab = {t.encode("utf-8"): i for i, t in enumerate(words)}
    B, lr, clip = int(meta["nabla.chat.batch"]), float(meta["nabla.chat.lr"]), float(meta["nabla.chat.clip"])
    mc, mr, seed = int(meta["nabla.chat.max_context"]), int(meta["nabla.chat.max_response"]), int(meta["nabla.chat.seed"])
    params = {k: v for k, v in w.items() if not k.startswith(("optim.", "bank."))}
    model = DualEncoder(params).to(dev)
    rows = list(csv.reader(open(a.train, newline="", encoding="utf-8")))[1:]
    ctx = [encode(vocab, r[0], mc, True) for r in rows]
    rsp = [encode(vocab, r[1], mr, False) for r in rows]
    lab = [float(r[2]) for r in rows]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    lossf = nn.BCEWithLogitsLoss()
    step, epoch, n, secs, pairs = 0, 0, len(rows), 0.0, 0
    while step < a.steps:
        order = list(range(n))
        PCG32(seed, 1000 + epoch).shuffle(order)
        for p in range(0, n, B):
            if step >= a.steps:
                break
            sync()
            t0 = time.perf_counter()
            idx = order[p:p + B]
            z = model.logits([ctx[i] for i in idx], [rsp[i] for i in idx])
            loss = lossf(z, torch.tensor([lab[i] for i in idx], device=dev))
            opt.zero_grad()
            loss.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sync()
            secs += time.perf_counter() - t0
            pairs += len(idx)
            step += 1
        epoch += 1
    vrows = list(csv.reader(open(a.valid, newline="", encoding="utf-8")))[1:]
    K = len(vrows[0]) - 1
    tot, hits, cnt = 0.0, 0.0, 0
    with torch.no_grad():
        for r in vrows:
            z = model.logits([encode(vocab, r[0], mc, True)] * K, [encode(vocab, x, mr, False) for x in r[1:]])
            y = torch.zeros(K, device=dev)
            y[0] = 1
            tot += float(nn.functional.binary_cross_entropy_with_logits(z.double(), y.double(), reduction="sum"))
            cnt += K
            g, e = int((z[1:] > z[0]).sum()), int((z[1:] == z[0]).sum())
            hits += min(1.0, max(0.0, (1 - g) / (e + 1)))
    print(json.dumps({"steps": step, "valid_loss": tot / cnt, "valid_recall_1": hits / len(vrows),
                      "pairs_per_second": pairs / secs if secs else 0, "train_seconds": secs, "threads": a.threads}))


if __name__ == "__main__":
    main()
