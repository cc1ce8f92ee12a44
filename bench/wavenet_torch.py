#!/usr/bin/python3
"""wavenet_torch.py — the PyTorch side of bench/wavenet_bench.sh: the same
WaveNet as `nabla wavenet` (src/models/wavenet.c), with the same parameter
names and layouts, so that a state_dict moves both ways as safetensors.

  wavenet_torch.py speed [--threads N] [--steps N] [--layers 10] [--stacks 2]
                         [--residual 32] [--skip 32] [--segment 16000] [--batch 1] [--naive-samples N]
  wavenet_torch.py roundtrip MODEL.st DATA OUT.st [--lr 1e-3] [--nabla build/nabla]

speed: training steps/s (Adam, random levels) and samples/s of the naive
generation loop (the whole receptive field per sample). roundtrip: loads a
nabla model (strict: every name and shape must match), prints its bits per
sample on DATA's held-out clips (whole clips, as `nabla wavenet eval` scores
clips shorter than 16000 samples), takes one Adam step on them, prints the
new bits and writes the new weights to OUT.st with nabla's metadata, for
`nabla wavenet eval OUT.st DATA` to reproduce. A model conditioned on the
log-mel (`--cond mel`) takes each clip's features from
`nabla wavenet spectrogram CLIP --out F.npy`, normalizes them with the model's
cond_norm buffers and upsamples them here (eq. 33). Prints one JSON line.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import nbfile

MU = 255


class WaveNet(nn.Module):
    def __init__(self, layers, stacks, residual, skip, nspeakers=0, cond_dim=0, cond_hop=0, cond_channels=0):
        super().__init__()
        R, S = residual, skip
        C = cond_channels or cond_dim  # the upsampled width entering every gate
        self.nspeakers, self.cond_dim, self.n = nspeakers, cond_dim, layers * stacks
        self.dilations = [2 ** (k % layers) for k in range(self.n)]
        self.embed = nn.Embedding(256, R)
        self.layers = nn.ModuleList()
        for k in range(self.n):
            b = nn.Module()
            b.dilated = nn.Conv1d(R, 2 * R, 2, dilation=self.dilations[k])
            if nspeakers:
                b.speaker = nn.Linear(nspeakers, 2 * R, bias=False)
            if cond_dim:
                b.cond = nn.Conv1d(C, 2 * R, 1, bias=False)
            if k < self.n - 1:
                b.res = nn.Conv1d(R, R, 1)
            b.skip = nn.Conv1d(R, S, 1)
            self.layers.append(b)
        self.out1 = nn.Conv1d(S, S, 1)
        self.out2 = nn.Conv1d(S, 256, 1)
        if cond_dim:
            self.upsample = nn.ConvTranspose1d(cond_dim, C, cond_hop, stride=cond_hop)
            # features enter as (f - mean) * scale, fitted on the training clips by nabla
            self.cond_norm = nn.Module()
            self.cond_norm.register_buffer("mean", torch.zeros(cond_dim))
            self.cond_norm.register_buffer("scale", torch.ones(cond_dim))

    def condition(self, feats, n):
        """feats [frames, D] of a clip of n samples -> the upsampled features [1, C, n - 1] at the
        samples predicted from inputs 0..n-2 (samples 1..n-1), as nb_wavenet_cond gives them."""
        h = (torch.from_numpy(feats) - self.cond_norm.mean) * self.cond_norm.scale
        return self.upsample(h.t()[None])[:, :, 1:n]  # eq. 33's y = f(h)

    def receptive_field(self):
        return sum(self.dilations) + 1

    def forward(self, x, speaker=None, cond=None):
        """x [N, L] levels -> logits [N, 256, L]; cond [N, C, L] upsampled."""
        h = self.embed(x).transpose(1, 2)
        skip = 0
        onehot = F.one_hot(speaker, self.nspeakers).float() if self.nspeakers else None
        for k, b in enumerate(self.layers):
            a = b.dilated(F.pad(h, (self.dilations[k], 0)))  # causal
            if onehot is not None:
                a = a + b.speaker(onehot)[:, :, None]  # eq. 34
            if cond is not None:
                a = a + b.cond(cond)  # eq. 33
            f, g = a.chunk(2, 1)
            z = torch.tanh(f) * torch.sigmoid(g)  # eq. 32
            skip = skip + b.skip(z)
            if k < self.n - 1:
                h = h + b.res(z)
        return self.out2(F.relu(self.out1(F.relu(skip))))


def mulaw_encode(x):
    """eq. 31 and 256 levels, in nabla's arithmetic (the companded value rounded to float32)."""
    a = np.minimum(np.abs(x.astype(np.float64)), 1.0)
    f = np.sign(x) * np.log1p(MU * a) / np.log1p(MU)
    f = f.astype(np.float32).astype(np.float64)
    return np.clip(np.floor((f + 1) / 2 * 255 + 0.5), 0, 255).astype(np.int64)


def read_safetensors(path):
    arrays, meta = nbfile.read_safetensors(path)
    return {k: torch.from_numpy(v) for k, v in arrays.items()}, meta


def write_safetensors(path, tensors, meta):
    head, off, blobs = {"__metadata__": meta}, 0, []
    for k, t in tensors.items():
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        head[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(head).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(path + ".tmp", path)


def heldout_clips(data):
    """nabla's speaker folders: sub-folders in name order, their .wav files in name order; a clip
    is held out when the FNV-1a hash of its name is 8 or 9 mod 10 (all clips if none is).
    Returns (speaker, levels, path) per clip."""
    clips = []
    for k, spk in enumerate(sorted(d for d in os.listdir(data) if os.path.isdir(os.path.join(data, d)))):
        for name in sorted(os.listdir(os.path.join(data, spk))):
            if not name.endswith(".wav"):
                continue
            h = 2166136261
            for c in name.encode():
                h = ((h ^ c) * 16777619) & 0xFFFFFFFF
            path = os.path.join(data, spk, name)
            with wave.open(path) as w:
                assert w.getframerate() == 16000 and w.getsampwidth() == 2 and w.getnchannels() == 1
                x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
            clips.append((h % 10 >= 8, k, mulaw_encode(x), path))
    held = [c for c in clips if c[0]]
    return [(k, q, path) for _, k, q, path in (held or clips)]


def logmel(nabla, path, mels):
    """The clip's log-mel as nabla computes it for --cond mel: [frames, mels]."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "f.npy")
        subprocess.run([nabla, "wavenet", "spectrogram", path, "--mels", str(mels), "--out", out], check=True,
                       stderr=subprocess.DEVNULL)
        return np.load(out).astype(np.float32)


def clip_loss(model, spk, q, feats, reduction):
    x, y = torch.from_numpy(q[None, :-1]), torch.from_numpy(q[None, 1:])
    cond = model.condition(feats, len(q)) if feats is not None else None
    logits = model(x, torch.tensor([spk]) if model.nspeakers else None, cond)
    return F.cross_entropy(logits, y, reduction=reduction), y.numel()


def bits(model, clips):
    tot, n = 0.0, 0
    for spk, q, feats in clips:
        loss, count = clip_loss(model, spk, q, feats, "sum")
        tot += loss.item()
        n += count
    return tot / n / math.log(2)


def cmd_roundtrip(a):
    tensors, meta = read_safetensors(a.model)
    g = lambda k: int(meta.get("nabla.wavenet." + k, 0))
    cond = meta.get("nabla.wavenet.cond", "none")
    assert cond in ("none", "mel"), "roundtrip covers unconditioned, speaker and log-mel models, not --cond " + cond
    m = WaveNet(g("layers"), g("stacks"), g("residual"), g("skip"), g("speakers"), g("cond_dim"), g("cond_hop"),
                g("cond_channels") or g("cond_dim"))
    params = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
    m.load_state_dict(params, strict=True)  # every name and shape must match, cond_norm's too
    clips = [(s, q, logmel(a.nabla, path, g("cond_dim")) if cond == "mel" else None)
             for s, q, path in heldout_clips(a.data)]
    before = bits(m, clips)
    opt = torch.optim.Adam(m.parameters(), lr=a.lr)
    opt.zero_grad()
    tot = sum(clip_loss(m, s, q, f, "mean")[0] for s, q, f in clips)
    tot.backward()
    opt.step()
    with torch.no_grad():
        after = bits(m, clips)
    keep = {k: v for k, v in meta.items() if k.startswith("nabla.wavenet.") or k == "nabla.model"}
    write_safetensors(a.out, m.state_dict(), keep)
    print(json.dumps({"bits_before": before, "bits_after": after, "parameters": len(params)}))


def cmd_speed(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    m = WaveNet(a.layers, a.stacks, a.residual, a.skip).to(dev)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(2)
    q = torch.randint(0, 256, (a.batch, a.segment + 1), generator=g)

    def step():
        x = q.to(dev)  # the batch's one move, and the loss read back, as nabla does every step
        loss = F.cross_entropy(m(x[:, :-1]), x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()

    step()  # warm-up, as nabla's rate leaves out its first two steps
    step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sps = a.steps / (time.perf_counter() - t0)
    # naive generation: the receptive field through the whole network per sample
    rf = m.receptive_field()
    hist = [128] * rf
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(a.naive_samples):
            logits = m(torch.tensor([hist[-rf:]], device=dev))[0, :, -1].cpu()
            hist.append(int(torch.multinomial(F.softmax(logits, 0), 1, generator=g)))
        gen = a.naive_samples / (time.perf_counter() - t0)
    print(json.dumps({"steps_per_second": sps, "naive_samples_per_second": gen, "receptive_field": rf,
                      "threads": a.threads}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--layers", type=int, default=10)
    s.add_argument("--stacks", type=int, default=2)
    s.add_argument("--residual", type=int, default=32)
    s.add_argument("--skip", type=int, default=32)
    s.add_argument("--segment", type=int, default=16000)
    s.add_argument("--batch", type=int, default=1)
    s.add_argument("--naive-samples", type=int, default=50)
    s.add_argument("--device", default="cpu", help="cpu, or cuda (TF32 off: float32 as nabla computes)")
    r = sub.add_parser("roundtrip")
    r.add_argument("model")
    r.add_argument("data")
    r.add_argument("out")
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--nabla", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "nabla"),
                   help="the nabla command that computes the log-mel of a --cond mel model's clips")
    a = p.parse_args()
    {"speed": cmd_speed, "roundtrip": cmd_roundtrip}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
