#!/usr/bin/env python3
"""linalg_numpy.py — nabla's factorizations against NumPy's on the same .npy files.

Writes float32 inputs (a symmetric, a general and a rectangular matrix and
right-hand sides) to DIR, runs bench/linalg_bench on them (nabla: results
saved as DIR/nabla.*.npy, best-of-REPS times on stdout), runs the same
operations in NumPy (float64 on the same float32 data, as nabla computes in
double), and prints for each operation the largest relative disagreement
(pass: <= 1e-5) and the time ratio NumPy / nabla (> 1: nabla faster).

Usage: bench/linalg_numpy.py [--n 300] [--m 500] [--p 200] [--k 4]
                             [--reps 5] [--threads 2] [--dir bench/out/linalg]
                             [--bin bench/linalg_bench]
Exit status 1 if any operation disagrees.
"""
import argparse
import os
import subprocess
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--n", type=int, default=300, help="size of the square matrices")
ap.add_argument("--m", type=int, default=500, help="rows of the rectangular matrix")
ap.add_argument("--p", type=int, default=200, help="columns of the rectangular matrix")
ap.add_argument("--k", type=int, default=4, help="right-hand sides")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "2")))
ap.add_argument("--seed", type=int, default=0)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap.add_argument("--dir", default=os.path.join(root, "bench", "out", "linalg"))
ap.add_argument("--bin", default=os.path.join(root, "bench", "linalg_bench"))
args = ap.parse_args()

# Same thread count for NumPy's BLAS/LAPACK as for nabla, set before import.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)
import numpy as np  # noqa: E402

TOL = 1e-5
os.makedirs(args.dir, exist_ok=True)
rng = np.random.default_rng(args.seed)
n, m, p, k = args.n, args.m, args.p, args.k
b = rng.standard_normal((n, n)).astype(np.float32)
inputs = {
    "sym": ((b + b.T) / 2).astype(np.float32),
    "gen": rng.standard_normal((n, n)).astype(np.float32),
    "rect": rng.standard_normal((m, p)).astype(np.float32),
    "rhs": rng.standard_normal((n, k)).astype(np.float32),
    "rhs_rect": rng.standard_normal((m, k)).astype(np.float32),
}
for name, a in inputs.items():
    np.save(os.path.join(args.dir, name + ".npy"), a)

env = dict(os.environ, NABLA_THREADS=str(args.threads))
out = subprocess.run([args.bin, args.dir, str(args.reps)], env=env, capture_output=True, text=True)
if out.returncode:
    sys.exit("linalg_numpy.py: linalg_bench failed:\n" + out.stderr)
t_nabla = {op: float(sec) for op, sec in (line.split() for line in out.stdout.splitlines())}


def nb(name):
    return np.load(os.path.join(args.dir, "nabla." + name + ".npy")).astype(np.float64)


def best(fn):
    """Best-of-reps wall time of fn() (conversion to float64 included, as in
    nabla) and its last result."""
    t, r = 1e30, None
    for _ in range(args.reps):
        t0 = time.perf_counter()
        r = fn()
        t = min(t, time.perf_counter() - t0)
    return t, r


def rel(a, b):
    """Largest |a - b| relative to the largest |b|."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


S, G, R = (inputs[x].astype(np.float64) for x in ("sym", "gen", "rect"))
rows = []

# eigh (eq. 2.40): eigenvalues, descending, and nabla's own reconstruction.
t, (w, q) = best(lambda: np.linalg.eigh(inputs["sym"].astype(np.float64)))
w_nb, q_nb = nb("eigh.w"), nb("eigh.Q")
recon = np.linalg.norm(S - (q_nb * w_nb) @ q_nb.T) / np.linalg.norm(S)
rows.append(("eigh", max(rel(w_nb, w[::-1]), recon), t_nabla["eigh"], t))

# eigenvalues of a general matrix: match each of nabla's to the nearest.
t, ev = best(lambda: np.linalg.eigvals(inputs["gen"].astype(np.float64)))
e_nb = nb("eig.w")
e_nb = e_nb[:, 0] + 1j * e_nb[:, 1]
dist = np.abs(e_nb[:, None] - ev[None, :])
rows.append(("eigvals", float(dist.min(axis=1).max() / np.abs(ev).max()), t_nabla["eigvals"], t))

# SVD (eq. 10): singular values and nabla's reconstruction U D V^T.
t, (u, s, vt) = best(lambda: np.linalg.svd(inputs["rect"].astype(np.float64), full_matrices=False))
u_nb, s_nb, vt_nb = nb("svd.U"), nb("svd.s"), nb("svd.Vt")
recon = np.linalg.norm(R - (u_nb * s_nb) @ vt_nb) / np.linalg.norm(R)
rows.append(("svd", max(rel(s_nb, s), recon), t_nabla["svd"], t))

# pinv (eq. 11): NumPy's default rcond is 1e-15 (for float64 data); nabla's
# max(m, n) * FLT_EPSILON; a full-rank random matrix is far from both.
t, pi = best(lambda: np.linalg.pinv(inputs["rect"].astype(np.float64)))
rows.append(("pinv", rel(nb("pinv"), pi), t_nabla["pinv"], t))

t, (sg, la) = best(lambda: np.linalg.slogdet(inputs["gen"].astype(np.float64)))
sd = nb("slogdet")
rows.append(("slogdet", abs(sd[1] - la) / abs(la) + (0.0 if sd[0] == sg else 1.0), t_nabla["slogdet"], t))

t, c = best(lambda: np.linalg.cond(inputs["gen"].astype(np.float64)))
c_sym = np.abs(np.linalg.eigvalsh(S))  # eq. 4.2 for the symmetric one
c_nb = nb("cond")
rows.append(("cond", max(rel(c_nb[0], c), rel(c_nb[1], c_sym.max() / c_sym.min())), t_nabla["cond"], t))

t, n2 = best(lambda: np.linalg.norm(inputs["gen"].astype(np.float64), 2))
want = [np.linalg.norm(G, 1), n2, np.linalg.norm(G, np.inf), np.linalg.norm(G, "fro")]
rows.append(("norm2", max(rel(a, b) for a, b in zip(nb("norms"), want)), t_nabla["norm2"], t))

t, x = best(lambda: np.linalg.solve(inputs["gen"].astype(np.float64), inputs["rhs"].astype(np.float64)))
rows.append(("solve", rel(nb("solve"), x), t_nabla["solve"], t))

t, (x, *_) = best(lambda: np.linalg.lstsq(inputs["rect"].astype(np.float64),
                                          inputs["rhs_rect"].astype(np.float64), rcond=None))
rows.append(("lstsq", rel(nb("lstsq"), x), t_nabla["lstsq"], t))

t, x = best(lambda: np.linalg.inv(inputs["gen"].astype(np.float64)))
rows.append(("inv", rel(nb("inv"), x), t_nabla["inv"], t))

t, x = best(lambda: np.cov(inputs["rect"].astype(np.float64), rowvar=False))
rows.append(("cov", rel(nb("cov"), x), t_nabla["cov"], t))

print(f"# linalg: sym/gen {n}x{n}, rect {m}x{p}, {k} right-hand sides, best of {args.reps}, "
      f"{args.threads} threads, NumPy {np.__version__} (float64 on the float32 inputs)")
print(f"{'op':<9} {'max rel diff':>12} {'agree':>6} {'nabla ms':>9} {'numpy ms':>9} {'numpy/nabla':>11}")
bad = 0
for op, err, tn, tp in rows:
    ok = err <= TOL
    bad += not ok
    print(f"{op:<9} {err:12.2e} {'yes' if ok else 'NO':>6} {tn * 1e3:9.2f} {tp * 1e3:9.2f} {tp / tn:11.2f}")
sys.exit(1 if bad else 0)
