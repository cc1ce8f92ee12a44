"""nbfile.py — what the PyTorch sides of the benchmarks share with nabla: its
model files (safetensors, float32 tensors, settings in __metadata__) and its
random-number generator (nb_rng, src/core/rng.c), replayed where a benchmark
must draw the same minibatches or orders as nabla did."""
import json
import struct

import numpy as np

M64 = (1 << 64) - 1


def read_safetensors(path):
    """({name: float32 array}, metadata) of a safetensors file nabla wrote.

    The arrays are copies (writable), in the order of their data in the file;
    a tensor of another dtype is refused naming it (nabla writes F32 only)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    arrays = {}
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {e['dtype']}, expected F32")
        a, b = e["data_offsets"]
        arrays[name] = np.frombuffer(buf[base + a:base + b], dtype="<f4").reshape(e["shape"]).copy()
    return arrays, meta


class PCG32:
    """nabla's nb_rng: PCG32 (O'Neill's XSH RR) and Lemire's unbiased below()."""

    def __init__(self, seed, stream):
        """As nb_rng_seed(rng, seed, stream)."""
        self.state, self.inc = 0, ((stream << 1) | 1) & M64
        self.u32()
        self.state = (self.state + seed) & M64
        self.u32()

    @classmethod
    def from_state(cls, text):
        """A generator as a checkpoint stored it: "STATE:INC" in hexadecimal."""
        g = cls.__new__(cls)
        s, inc = text.split(":")
        g.state, g.inc = int(s, 16), int(inc, 16)
        return g

    def u32(self):
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & M64
        x = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((x >> rot) | (x << ((-rot) & 31))) & 0xFFFFFFFF

    def below(self, n):
        """Uniform in [0, n)."""
        threshold = ((1 << 32) - n) % n
        while True:
            x = self.u32()
            if x >= threshold:
                return x % n

    def shuffle(self, v):
        """Fisher-Yates from the end, as nb_rng_shuffle."""
        for i in range(len(v) - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]
