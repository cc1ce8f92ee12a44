#!/usr/bin/python3
"""classic.py — nabla's classical models side by side with LIBSVM and
scikit-learn on Fashion-MNIST, in one run (called by bench/classic.sh).

  SVM:     PCA-50 features from `nabla convert` (10,000 training and the 10,000
           test images), RBF, the same C and gamma: `nabla fit svm` vs Debian's
           svm-train/svm-predict. Targets: test accuracy within 0.3 points,
           training time no slower.
  logreg:  raw pixels / 255, all 60,000 training images, L2 with the same C and
           iteration limit: `nabla fit logreg` vs sklearn LogisticRegression
           (lbfgs). Target: test accuracy within 0.5 points, faster.
  PCA/PPCA: raw pixels, k = 50 (sklearn PCA(svd_solver="full").score, the
           probabilistic PCA likelihood); FA and GMM on the PCA-50 features
           (FactorAnalysis(svd_method="lapack"), GaussianMixture full). Targets:
           mean log-likelihoods within 0.5%, faster.
"""
import argparse, gzip, json, os, subprocess, sys, time

import numpy as np

FASHION = os.environ.get("NABLA_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def idx(path):
    with gzip.open(path) as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def fashion(split):
    p = "train" if split == "train" else "t10k"
    x = idx(f"{FASHION}/{p}-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / np.float32(255)
    y = idx(f"{FASHION}/{p}-labels-idx1-ubyte.gz").astype(np.int64)
    return x, y


def run(cmd):
    """Runs a command; returns (stdout, wall seconds). Fails loudly."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"classic.py: {' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout, r.stderr, dt


def nabla_json(cmd):
    out, err, dt = run(cmd)
    return json.loads(out.strip().splitlines()[-1]), dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nabla", default="build/nabla")
    ap.add_argument("--out", default="bench/out/classic")
    ap.add_argument("--C", type=float, default=10.0, help="SVM cost")
    ap.add_argument("--gamma", type=float, default=0.02, help="SVM RBF gamma")
    ap.add_argument("--logreg-C", type=float, default=1.0)
    ap.add_argument("--logreg-iter", type=int, default=100)
    ap.add_argument("--only", default="svm,logreg,pca,fa,gmm")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    only = a.only.split(",")
    rows, ok = [], True

    def report(name, ours, theirs, unit, target, passed, t_ours, t_theirs, tname):
        nonlocal ok
        ok &= passed
        rows.append((name, ours, theirs, unit, target, t_ours, t_theirs, tname, passed))
        print(f"{name:8s} nabla {ours:.6g} vs {tname} {theirs:.6g} {unit} ({target}); "
              f"time {t_ours:.2f} s vs {t_theirs:.2f} s -> {'PASS' if passed else 'FAIL'}", flush=True)

    fm = os.path.join(a.out, "fm50")
    if not os.path.exists(fm + ".t") or any(k in only for k in ("svm", "fa", "gmm")):
        run([a.nabla, "convert", "fashion-mnist", "--to", "libsvm", "--pca", "50", "--train", "10000", "--out", fm])

    if "svm" in only:
        model = os.path.join(a.out, "fm50.libsvm.model")
        _, _, t_lib = run(["svm-train", "-q", "-c", str(a.C), "-g", str(a.gamma), fm, model])
        out, _, _ = run(["svm-predict", fm + ".t", model, os.path.join(a.out, "fm50.libsvm.pred")])
        acc_lib = float(out.split("=")[1].split("%")[0])
        nst = os.path.join(a.out, "fm50.nabla.st")
        j, t_cmd = nabla_json([a.nabla, "fit", "svm", fm, "-c", str(a.C), "-g", str(a.gamma), "--out", nst, "--json"])
        p, _ = nabla_json([a.nabla, "predict", nst, fm + ".t", "--json"])
        acc = 100 * p["accuracy"]
        nsv_lib = sum(int(v) for v in open(model).read().split("nr_sv")[1].split("\n")[0].split())
        print(f"svm: nabla {j['support_vectors']} SVs, LIBSVM {nsv_lib}; nabla fit {j['seconds']:.2f} s "
              f"(whole command {t_cmd:.2f} s incl. reading and train accuracy), svm-train {t_lib:.2f} s")
        report("svm", acc, acc_lib, "% test acc", "within 0.3 points, no slower",
               abs(acc - acc_lib) <= 0.3 and j["seconds"] <= t_lib, j["seconds"], t_lib, "LIBSVM")

    need_sk = any(k in only for k in ("logreg", "pca", "fa", "gmm"))
    if need_sk:
        from sklearn.datasets import load_svmlight_file
        from sklearn.decomposition import PCA, FactorAnalysis
        from sklearn.linear_model import LogisticRegression
        from sklearn.mixture import GaussianMixture

    if "logreg" in only:
        xtr, ytr = fashion("train")
        xte, yte = fashion("test")
        j, _ = nabla_json([a.nabla, "fit", "logreg", "fashion-mnist", "--C", str(a.logreg_C),
                           "--max-iter", str(a.logreg_iter), "--json"])
        t0 = time.perf_counter()
        sk = LogisticRegression(C=a.logreg_C, max_iter=a.logreg_iter).fit(xtr, ytr)
        t_sk = time.perf_counter() - t0
        acc_sk = 100 * sk.score(xte, yte)
        report("logreg", 100 * j["test_accuracy"], acc_sk, "% test acc", "within 0.5 points, faster",
               abs(100 * j["test_accuracy"] - acc_sk) <= 0.5 and j["seconds"] < t_sk, j["seconds"], t_sk, "sklearn")

    def loglik_row(name, j, ll_sk, t_sk):
        rel = abs(j["train_loglik"] - ll_sk) / abs(ll_sk)
        report(name, j["train_loglik"], float(ll_sk), "mean log-lik", f"within 0.5% ({100 * rel:.3f}%), faster",
               rel <= 0.005 and j["seconds"] < t_sk, j["seconds"], t_sk, "sklearn")

    if "pca" in only:
        xtr, _ = fashion("train")
        for kind in ("pca", "ppca"):
            j, _ = nabla_json([a.nabla, "fit", kind, "fashion-mnist", "--k", "50", "--json"])
            t0 = time.perf_counter()
            sk = PCA(n_components=50, svd_solver="full").fit(xtr)
            t_sk = time.perf_counter() - t0
            loglik_row(kind, j, sk.score(xtr), t_sk)

    if "fa" in only or "gmm" in only:
        x50, _ = load_svmlight_file(fm, n_features=50)
        x50 = np.asarray(x50.todense(), dtype=np.float32)
    if "fa" in only:
        j, _ = nabla_json([a.nabla, "fit", "fa", fm, "--k", "10", "--json"])
        t0 = time.perf_counter()
        sk = FactorAnalysis(n_components=10, svd_method="lapack").fit(x50)
        t_sk = time.perf_counter() - t0
        loglik_row("fa", j, sk.score(x50), t_sk)
    if "gmm" in only:
        j, _ = nabla_json([a.nabla, "fit", "gmm", fm, "--k", "10", "--json"])
        t0 = time.perf_counter()
        sk = GaussianMixture(n_components=10, covariance_type="full", random_state=0).fit(x50)
        t_sk = time.perf_counter() - t0
        loglik_row("gmm", j, sk.score(x50), t_sk)

    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump([dict(zip(("name", "nabla", "reference", "unit", "target", "nabla_s", "reference_s", "reference_name",
                             "pass"), r)) for r in rows], f, indent=1)
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
