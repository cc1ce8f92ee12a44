#!/usr/bin/python3
"""dqn_torch.py — the PyTorch side of bench/dqn_bench.sh: deep Q-learning
with experience replay as `nabla dqn train` runs it (src/models/dqn.c), on
CartPole (the MLP Q-network 4-128-128-2) and Catch (the CNN on the 10x5
screen: conv 3x3 16 channels, dense 64, dense 3).

The settings and the initial weights come from a nabla model file written by
`nabla dqn train ENV --steps 0 --out FILE` (its __metadata__ holds every
option: replay size, batch, Adam's rate and its cosine decay, gamma, the
target network's period, epsilon's schedule, learning starts, Huber or
squared loss, Double DQN, gradient clipping, model selection), so both sides
run the same algorithm with the same numbers:

  dqn_torch.py learner --model FILE [--updates N] [--warmup N] [--threads T] [--fill N]
      the learner alone: D filled with --fill random-policy transitions
      (default its capacity), then --updates updates timed, each: a
      minibatch drawn uniformly from D, targets from the target network
      (Double DQN: the online network picks a'), forward, backward, gradient
      clipping, Adam. Prints updates_per_second.
  dqn_torch.py train --model FILE --steps N [--threads T] [--seed S]
      the whole training loop of `nabla dqn train --steps N`: epsilon-greedy
      acting (one forward per greedy step), the environment (written here in
      Python, so its cost is Python's), D, the updates every train_every
      steps, target copies, and (CartPole) model selection on 50 greedy
      validation episodes every 5000 steps. Prints steps_per_second.
  dqn_torch.py parity BEFORE AFTER [--tol T]
      BEFORE and AFTER are checkpoints written by bench/dqn_bench --parity
      around nabla's updates: from BEFORE's Q, target network, Adam state,
      replay memory and sampler stream (PCG32, replayed here, so the
      minibatches are nabla's), the same updates in PyTorch; the weights are
      compared with AFTER's. Exit status 1 beyond the tolerance.
  dqn_torch.py flops --model FILE
      FLOPs of one update (dense and conv multiply-adds, 2 FLOPs each:
      forward passes on s', and on s with its backward).

Prints one JSON line on stdout.
"""
import argparse
import json
import math
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import nbfile

# --- nabla's files -------------------------------------------------------------


def read_safetensors(path):
    """Tensors (float32 arrays) with their shapes and file order, and the metadata."""
    arrays, meta = nbfile.read_safetensors(path)
    return arrays, {k: list(v.shape) for k, v in arrays.items()}, list(arrays), meta


def as_tensor(a, shape):
    return torch.from_numpy(np.array(a, dtype=np.float32)).reshape(shape)


def options(meta):
    """nb_dqn_opts from a model file's metadata."""
    g = lambda k: meta["nabla.dqn." + k]
    return dict(env=g("env"), lr=float(g("lr")), lr_end=float(g("lr_end")), gamma=float(g("gamma")),
                buffer=int(g("buffer")), batch=int(g("batch")), eps_start=float(g("epsilon_start")),
                eps_end=float(g("epsilon_end")), eps_steps=int(g("epsilon_steps")), target_every=int(g("target_every")),
                huber=g("huber") == "1", learn_start=int(g("learn_start")), train_every=int(g("train_every")),
                reward_scale=float(g("reward_scale")), reward_log=g("reward_log") == "1", grad_clip=float(g("grad_clip")),
                double_q=g("double_q") == "1", augment=g("augment") == "1", select_every=int(g("select_every")),
                select_episodes=int(g("select_episodes")))


# --- the Q-networks (nabla's built-in ones; parameter names as in its files) ---


class CartPoleQ(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(4, 128), torch.nn.Linear(128, 128), torch.nn.Linear(128, 2)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class CatchQ(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.fc1, self.fc2 = torch.nn.Linear(800, 64), torch.nn.Linear(64, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(F.relu(self.conv1(x)).flatten(1))))


NETS = {"cartpole": CartPoleQ, "catch": CatchQ}
# multiply-adds per sample of each layer, first layer first
LAYER_MACS = {"cartpole": [4 * 128, 128 * 128, 128 * 2], "catch": [16 * 9 * 10 * 5, 800 * 64, 64 * 3]}


def flops_per_update(o):
    """Forward on s' by the target network (and by Q for Double DQN), forward
    on s and its backward (2x, less the first layer's input gradient)."""
    m = LAYER_MACS[o["env"]]
    M, M1 = sum(m), m[0]
    return 2 * o["batch"] * ((2 + o["double_q"]) * M + 2 * M - M1)


def load_q(raw, shapes, order, env, prefix=None):
    """Q from nabla's tensors (the target network's: dqn.target.i in Q's order)."""
    net = NETS[env]()
    names = list(net.state_dict().keys())
    qnames = [n for n in order if not n.startswith("dqn.") and not n.startswith("adam.")]
    assert qnames == names, (qnames, names)
    src = [f"{prefix}.{i}" for i in range(len(names))] if prefix else names
    net.load_state_dict({n: as_tensor(raw[s], shapes[n]) for n, s in zip(names, src)}, strict=True)
    return net


# --- the environments, in Python (nabla's are in C: env_cartpole.c, env_catch.c) --


class CartPole:
    """gym's CartPole-v1 constants and explicit Euler step, as env_cartpole.c."""
    n_actions, obs_shape, binary = 2, (4,), False

    def reset(self, rng):
        self.x, self.xd, self.th, self.thd = (rng.uniform(-0.05, 0.05) for _ in range(4))
        self.t = 0

    def step(self, a):
        force = 10.0 if a == 1 else -10.0
        c, s = math.cos(self.th), math.sin(self.th)
        temp = (force + 0.05 * self.thd * self.thd * s) / 1.1
        th_acc = (9.8 * s - c * temp) / (0.5 * (4.0 / 3.0 - 0.1 * c * c / 1.1))
        x_acc = temp - 0.05 * th_acc * c / 1.1
        self.x += 0.02 * self.xd
        self.xd += 0.02 * x_acc
        self.th += 0.02 * self.thd
        self.thd += 0.02 * th_acc
        self.t += 1
        lim = 12 * 2 * math.pi / 360
        term = self.x < -2.4 or self.x > 2.4 or self.th < -lim or self.th > lim
        return 1.0, term, not term and self.t >= 500

    def observe(self):
        return np.array((self.x, self.xd, self.th, self.thd), dtype=np.float32)


class Catch:
    """The 10 x 5 screen of env_catch.c: the ball falls a row a step."""
    n_actions, obs_shape, binary = 3, (1, 10, 5), True

    def reset(self, rng):
        self.row, self.col, self.paddle = 0, rng.randrange(5), 2

    def step(self, a):
        self.paddle = min(max(self.paddle + a - 1, 0), 4)
        self.row += 1
        if self.row == 9:
            return (1.0 if self.col == self.paddle else -1.0), True, False
        return 0.0, False, False

    def observe(self):
        o = np.zeros((1, 10, 5), dtype=np.float32)
        o[0, self.row, self.col] = 1
        o[0, 9, self.paddle] = 1
        return o


ENVS = {"cartpole": CartPole, "catch": Catch}

# --- the learner -------------------------------------------------------------


class Replay:
    """D as preallocated tensors (pixels as bytes, as nabla stores them)."""

    def __init__(self, cap, shape, binary):
        dt = torch.uint8 if binary else torch.float32
        self.s, self.s2 = torch.zeros((cap,) + shape, dtype=dt), torch.zeros((cap,) + shape, dtype=dt)
        self.a, self.r = torch.zeros(cap, dtype=torch.int64), torch.zeros(cap)
        self.term = torch.zeros(cap, dtype=torch.bool)
        self.cap, self.size, self.next = cap, 0, 0

    def push(self, s, a, r, s2, term):
        i = self.next
        self.s[i], self.s2[i] = torch.from_numpy(s), torch.from_numpy(s2)
        self.a[i], self.r[i], self.term[i] = a, r, term
        self.next = (i + 1) % self.cap
        self.size = min(self.size + 1, self.cap)

    def batch(self, idx):
        return self.s[idx].float(), self.a[idx], self.r[idx], self.s2[idx].float(), self.term[idx]


def cosine(base, step, total, end):
    """nb_lr_cosine."""
    if step >= total:
        return end
    if step <= 0:
        return base
    return end + (base - end) * (1 + math.cos(math.pi * step / total)) / 2


class Learner:
    """Q, its target network (None: Q itself, as nabla's --target-every 0),
    Adam; steps is the run's length, which the cosine decay spans."""

    def __init__(self, o, q, target, steps):
        self.o, self.q, self.target, self.steps = o, q, target if target is not None else q, steps
        if target is not None:
            for p in target.parameters():
                p.requires_grad_(False)
        self.params = list(q.parameters())
        self.opt = torch.optim.Adam(self.params, lr=o["lr"], foreach=True)  # faster here than the per-tensor loop
        self.decay = 0 < o["lr_end"] < o["lr"]

    def update(self, s, a, r, s2, term, step):
        """One update on a minibatch (nabla's update() in dqn.c)."""
        o = self.o
        with torch.no_grad():
            qn = self.target(s2)
            if o["double_q"]:  # Q picks a', the target network values it
                nxt = qn.gather(1, self.q(s2).argmax(1, keepdim=True)).squeeze(1)
            else:
                nxt = qn.max(1).values
            y = torch.where(term, r, r + o["gamma"] * nxt)
        qa = self.q(s).gather(1, a.unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(qa, y) if o["huber"] else 0.5 * F.mse_loss(qa, y)
        td = (y - qa.detach()).abs().mean().item()  # nabla's td_error, logged per episode
        if not math.isfinite(loss.item()):
            raise SystemExit(f"dqn_torch.py: the TD loss became {loss.item()}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.decay:
            for g in self.opt.param_groups:
                g["lr"] = cosine(o["lr"], step, self.steps, o["lr_end"])
        if o["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.params, o["grad_clip"])
        self.opt.step()
        return td


def fill(env, mem, n, rng):
    """n transitions of the uniformly random policy."""
    env.reset(rng)
    obs = env.observe()
    for _ in range(n):
        a = rng.randrange(env.n_actions)
        r, term, trunc = env.step(a)
        obs2 = env.observe()
        mem.push(obs, a, r, obs2, term)
        if term or trunc:
            env.reset(rng)
            obs = env.observe()
        else:
            obs = obs2


def learner_mode(a):
    raw, shapes, order, meta = read_safetensors(a.model)
    o = options(meta)
    env = ENVS[o["env"]]()
    q = load_q(raw, shapes, order, o["env"])
    target = load_q(raw, shapes, order, o["env"]) if o["target_every"] > 0 else None
    L = Learner(o, q, target, a.steps)
    mem = Replay(o["buffer"], env.obs_shape, env.binary)
    rng = random.Random(a.seed)
    fill(env, mem, a.fill or o["buffer"], rng)
    B = o["batch"]

    def one():
        idx = torch.randint(mem.size, (B,))
        L.update(*mem.batch(idx), step=L.steps)

    for _ in range(a.warmup):
        one()
    t0 = time.perf_counter()
    for _ in range(a.updates):
        one()
    s = time.perf_counter() - t0
    return {"framework": "pytorch " + torch.__version__, "env": o["env"], "threads": a.threads, "batch": B,
            "filled": mem.size, "updates": a.updates, "seconds": s, "updates_per_second": a.updates / s}


def greedy(q, obs):
    with torch.no_grad():
        return int(q(torch.from_numpy(obs).unsqueeze(0)).argmax(1))


def evaluate(q, kind, n, seed):
    """n greedy episodes at once, one forward pass a step for those running
    (nb_dqn_evaluate); the mean return."""
    envs, ret = [kind() for _ in range(n)], [0.0] * n
    for i, e in enumerate(envs):
        e.reset(random.Random(seed + i))
    live = list(range(n))
    while live:
        with torch.no_grad():
            acts = q(torch.from_numpy(np.stack([envs[i].observe() for i in live]))).argmax(1).tolist()
        still = []
        for i, act in zip(live, acts):
            r, term, trunc = envs[i].step(act)
            ret[i] += r
            if not (term or trunc):
                still.append(i)
        live = still
    return sum(ret) / n


def train_mode(a):
    """The loop of nb_dqn_step and `nabla dqn train`."""
    raw, shapes, order, meta = read_safetensors(a.model)
    o = options(meta)
    kind = ENVS[o["env"]]
    env = kind()
    q = load_q(raw, shapes, order, o["env"])
    target = load_q(raw, shapes, order, o["env"]) if o["target_every"] > 0 else None
    L = Learner(o, q, target, a.steps)
    mem = Replay(o["buffer"], env.obs_shape, env.binary)
    rng, B = random.Random(a.seed), o["batch"]
    env.reset(rng)
    obs = env.observe()
    ep_ret, episodes, updates, td, best, best_w, last100 = 0.0, 0, 0, 0.0, -math.inf, None, []
    t0 = time.perf_counter()
    for step in range(1, a.steps + 1):
        t = step - 1
        eps = o["eps_end"] if t >= o["eps_steps"] else o["eps_start"] + (o["eps_end"] - o["eps_start"]) * t / o["eps_steps"]
        act = rng.randrange(env.n_actions) if rng.random() < eps else greedy(q, obs)
        r, term, trunc = env.step(act)
        obs2 = env.observe()
        rl = math.copysign(math.log2(1 + abs(r)), r) if o["reward_log"] else r
        mem.push(obs, act, rl * o["reward_scale"], obs2, term)
        ep_ret += r
        if mem.size >= o["learn_start"] and step % o["train_every"] == 0:
            td = L.update(*mem.batch(torch.randint(mem.size, (B,))), step=step)
            updates += 1
        if target is not None and step % o["target_every"] == 0:
            target.load_state_dict(q.state_dict())
        if o["select_every"] and (step % o["select_every"] == 0 or step == a.steps):
            ret = evaluate(q, kind, o["select_episodes"], 1 << 62)
            if ret >= best:
                best, best_w = ret, [p.detach().clone() for p in L.params]
            if step == a.steps:
                with torch.no_grad():
                    for p, w in zip(L.params, best_w):
                        p.copy_(w)
        if term or trunc:
            last100 = (last100 + [ep_ret])[-100:]  # nabla's train_mean100
            episodes, ep_ret = episodes + 1, 0.0
            env.reset(rng)
            obs = env.observe()
        else:
            obs = obs2
    s = time.perf_counter() - t0
    return {"framework": "pytorch " + torch.__version__, "env": o["env"], "threads": a.threads, "steps": a.steps,
            "train_episodes": episodes, "updates": updates, "seconds": s, "steps_per_second": a.steps / s,
            "td_error": td, "train_mean100": sum(last100) / max(len(last100), 1),
            "selected_return": best if o["select_every"] else None}


# --- parity --------------------------------------------------------------------


def unpack(raw, dtype, n):
    return np.frombuffer(raw, dtype=np.uint8)[:n * np.dtype(dtype).itemsize].view(dtype)


def parity_mode(a):
    raw, shapes, order, meta = read_safetensors(a.before)
    o = options(meta)
    if o["augment"]:
        raise SystemExit("dqn_torch.py parity: --augment draws symmetries in between: not replayed here")
    env = ENVS[o["env"]]
    q = load_q(raw, shapes, order, o["env"])
    target = load_q(raw, shapes, order, o["env"], prefix="dqn.target") if o["target_every"] > 0 else None
    state = meta["nabla.dqn.state"].split()
    step, adam_steps, planned = int(state[0]), int(state[7]), int(state[8])
    S = int(meta["nabla.dqn.state.replay"].split()[0])
    O = int(np.prod(env.obs_shape))
    sdt = np.uint8 if env.binary else np.float32
    s_all = torch.from_numpy(unpack(raw["dqn.replay.s"], sdt, S * O).reshape((S,) + env.obs_shape).astype(np.float32))
    s2_all = torch.from_numpy(unpack(raw["dqn.replay.s2"], sdt, S * O).reshape((S,) + env.obs_shape).astype(np.float32))
    a_all = torch.from_numpy(unpack(raw["dqn.replay.a"], np.int32, S).astype(np.int64))
    r_all = torch.from_numpy(unpack(raw["dqn.replay.r"], np.float32, S).copy())
    t_all = torch.from_numpy(unpack(raw["dqn.replay.term"], np.uint8, S) != 0)
    L = Learner(o, q, target, planned)
    # Adam's state: nabla's adam.m.i / adam.v.i and its step count.
    for i, p in enumerate(L.params):
        L.opt.state[p] = {"step": torch.tensor(float(adam_steps)), "exp_avg": as_tensor(raw[f"adam.m.{i}"], p.shape),
                          "exp_avg_sq": as_tensor(raw[f"adam.v.{i}"], p.shape)}
    before = [p.detach().clone() for p in L.params]
    rng = nbfile.PCG32.from_state(meta["nabla.dqn.state.rng_sample"])
    a_raw, a_shapes, a_order, a_meta = read_safetensors(a.after)
    K = int(a_meta["nabla.dqn.state"].split()[1]) - int(state[1])
    for _ in range(K):
        idx = torch.tensor([rng.below(S) for _ in range(o["batch"])])
        td = L.update(s_all[idx], a_all[idx], r_all[idx], s2_all[idx], t_all[idx], step=step)
    after = load_q(a_raw, a_shapes, a_order, o["env"])
    worst, rows = 0.0, []
    for (name, p), w0, pn in zip(q.named_parameters(), before, after.parameters()):
        dt, dn = p.detach() - w0, pn.detach() - w0
        err = float((dn - dt).abs().max() / max(float(dt.abs().max()), 1e-30))
        rows.append((name, err))
        worst = max(worst, err)
    td_n = float(a_meta["nabla.dqn.state"].split()[4])
    out = {"env": o["env"], "updates": K, "batch": o["batch"], "max_rel_err_weight_change": worst,
           "per_tensor": {n: e for n, e in rows}, "td_error_nabla": td_n, "td_error_torch": td,
           "tolerance": a.tol, "pass": worst <= a.tol}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["learner", "train", "parity", "flops"])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--model", help="nabla model file of `nabla dqn train ENV --steps 0` (settings, initial weights)")
    ap.add_argument("--updates", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--fill", type=int, default=0, help="transitions in D before timing (0: its capacity)")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.mode == "parity":
        if len(a.files) != 2:
            ap.error("parity needs BEFORE and AFTER")
        a.before, a.after = a.files
        out = parity_mode(a)
        print(json.dumps(out))
        return 0 if out["pass"] else 1
    if not a.model:
        ap.error("--model is required")
    if a.mode == "flops":
        print(json.dumps({"flop_per_update": flops_per_update(options(read_safetensors(a.model)[3]))}))
        return 0
    print(json.dumps(learner_mode(a) if a.mode == "learner" else train_mode(a)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
