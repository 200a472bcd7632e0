#!/usr/bin/python3
"""quddpm_torch.py — the whole QuDDPM protocol (arXiv 2310.05866) in
PyTorch, for the end-to-end wall-time comparison with qd (bench/quddpm_e2e.sh).

    quddpm_torch.py TASK [--epochs E] [--seed S] [--threads T] [--N N] [--lr LR]
                         [--circuit kron|gates] [--mmd gram|dm] [--out FILE.json] [--quiet]

TASK is one of cluster1, cluster2, circle, noise, tfim, with the settings of qd's examples
(examples/quddpm_{cluster,circle,noise,tfim}.lua and qd.protocols.quddpm):

  task      n n_A  T  L  schedule h_s                               loss         N   epochs/step
  cluster1  1  1  20  4  linspace(1, 4, 20)                         MMD         100  1500
  cluster2  2  1  20  6  linspace(0.5, 4, 20)                       MMD         100  2000
  circle    1  2  40  6  1e-3 s^2, s = 1..40                        Wasserstein 500  5000
  noise     2  2  20  6  [linspace(0.05, 1, 12), linspace(1.2,4,8)] MMD         500  2500
  tfim      4  2  30 12  linspace(0.1, 2, 30)                       MMD         100  3000

Adam (torch.optim.Adam, betas 0.9/0.999, eps 1e-8, as qd's), lr 5e-3, theta_t ~ N(0, 1),
one initialisation per step. Written the straightforward batched PyTorch way (complex128,
CPU, autograd; no Python loop over ensemble members):

  * data: the task's target ensemble S_0 of N states (clustered states, circle states, the
    correlated-noise ensemble, TFIM ground states from one batched torch.linalg.eigh).
  * forward: the marginal sets S_t = t fresh scrambling steps on S_0 for t = 1..T (every
    member its own angles, phi ~ U[-pi/8, pi/8) h_s, g ~ U[0.4, 0.6) h_s, W = RZZ layer .
    (x)_i RZ RY RZ), all T sets advanced together: step s is applied to sets t >= s.
  * training: N Haar inputs; for t = T-1 .. 0: theta_t ~ N(0, 1), fresh Adam; each epoch the
    backward circuit (L layers of RX, RY on every qubit, CZ on even then odd pairs; ancillas
    the n_A most significant qubits, |0>) on the whole ensemble, an ancilla outcome sampled
    per member (torch.multinomial), the normalised post-measurement data state, the loss
    against the N targets, loss.backward(), opt.step(). The targets are S_t itself (it has
    exactly N members, as in qd: drawing N of N without replacement is a permutation, and
    both losses are invariant under permuting the targets). MMD = mean|<a|a'>|^2 +
    mean|<b|b'>|^2 - 2 mean|<a|b>|^2 from Gram matrices (--mmd gram, the default and the
    reference code's way; the target-target term is a constant of the step and computed
    once) or, with --mmd dm, the same value as Tr[(rho_A - rho_B)^2] from the average states
    (what qd's qd.loss.mmd does when 2^n < N + M: every task here); Wasserstein = sum_i C[i, j_i] / N, C = 1 -
    |<a|b>|^2, j = scipy's linear_sum_assignment on the detached C (the reference code's
    way), the gradient through C with the assignment fixed. After step t is trained the
    inputs are pushed through it (outcomes sampled, no gradient).
  * generation: the trained chain on the training inputs and on N fresh Haar states (fresh
    outcomes), metrics at t = 0 against S_0: F0, mmd (cluster), wass, y2, F0 (circle), p_hat,
    mmd (noise), magnetization, mmd (tfim) — the same keys as qd's run.json.

The circuit is written two ways (bench/quddpm_step_torch.py, where both agree with qd to
1e-10 on a training iteration): "kron" (the layer's 2^(n+n_A) unitary from torch.kron, one
matmul per layer; the faster one for these sizes, the default) and "gates" (one einsum per
rotation). Randomness: torch.Generator streams seeded from --seed by purpose (its draws are
not qd's: the runs are statistically, not bitwise, comparable).

Output: a progress line per step (unless --quiet), the metrics, and the timings:
"protocol" is the wall time of everything above (data, forward sets, training, generation,
metrics) after the imports; "process" (measured by the caller) adds Python's start-up and
`import torch`. With --out the figures go to a JSON file.
"""
import argparse
import json
import math
import sys
import time

T_PROC0 = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T_PROC0
C128, F64 = torch.complex128, torch.float64


def linspace(a, b, k):
    return [float(x) for x in np.linspace(a, b, k)]


TASKS = {
    "cluster1": dict(n=1, na=1, T=20, L=4, sched=linspace(1, 4, 20), loss="mmd", N=100, epochs=1500,
                     metrics=["F0", "mmd"]),
    "cluster2": dict(n=2, na=1, T=20, L=6, sched=linspace(0.5, 4, 20), loss="mmd", N=100, epochs=2000,
                     metrics=["F0", "mmd"]),
    "circle": dict(n=1, na=2, T=40, L=6, sched=[1e-3 * s * s for s in range(1, 41)], loss="wasserstein",
                   N=500, epochs=5000, metrics=["wass", "y2", "F0"]),
    "noise": dict(n=2, na=2, T=20, L=6, sched=linspace(0.05, 1, 12) + linspace(1.2, 4, 8), loss="mmd",
                  N=500, epochs=2500, metrics=["p_hat", "mmd"]),
    "tfim": dict(n=4, na=2, T=30, L=12, sched=linspace(0.1, 2, 30), loss="mmd", N=100, epochs=3000,
                 metrics=["magnetization", "mmd"]),
}


# ---------------------------------------------------------------- states and data sets

def normalise(z):
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True)


def cnormal(shape, gen):
    return torch.complex(torch.randn(shape, generator=gen, dtype=F64),
                         torch.randn(shape, generator=gen, dtype=F64))


def haar(n, N, gen):
    return normalise(cnormal((N, 1 << n), gen))


def uniform(shape, lo, hi, gen):
    return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=F64)


def data_clustered(n, N, eps, gen):
    c = cnormal((N, 1 << n), gen) * eps
    c[:, 0] = 1.0
    return normalise(c)


def data_circle(N, gen):
    phi = uniform((N,), 0.0, 2 * math.pi, gen)
    return torch.stack([torch.cos(phi), torch.sin(phi)], -1).to(C128)


def data_noise(N, gen, p=0.8, emax=math.pi / 3):
    psi0 = torch.tensor([math.sqrt(0.1) * np.exp(0.8j), math.sqrt(0.55) * np.exp(1.7j), 0,
                         math.sqrt(0.35) * np.exp(2.4j)], dtype=C128)
    xx = torch.rand((N,), generator=gen, dtype=F64) < p
    eps = uniform((N,), -emax, emax, gen)
    # e^{-i eps X(x)X} psi = cos(eps) psi - i sin(eps) psi[3 - j];  e^{-i eps Z(x)Z}: phases
    px = torch.cos(eps)[:, None] * psi0 - 1j * torch.sin(eps)[:, None] * psi0.flip(0)
    z = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=F64)
    pz = torch.exp(-1j * eps[:, None] * z) * psi0
    return torch.where(xx[:, None], px, pz)


def data_tfim(n, N, gen, lo=0.2, hi=0.4):
    """ground states of H = -sum Z_i Z_{i+1} - g sum X_i (open chain), g ~ U[lo, hi)"""
    d = 1 << n
    idx = np.arange(d)
    z = np.array([1 - 2 * ((idx >> (n - 1 - q)) & 1) for q in range(n)], dtype=float)
    hzz = np.diag(sum(z[i] * z[i + 1] for i in range(n - 1)))
    X = np.array([[0.0, 1.0], [1.0, 0.0]])
    hx = np.zeros((d, d))
    for q in range(n):
        m = np.eye(1)
        for j in range(n):
            m = np.kron(m, X if j == q else np.eye(2))
        hx += m
    g = uniform((N,), lo, hi, gen)
    H = -torch.from_numpy(hzz)[None] - g[:, None, None] * torch.from_numpy(hx)[None]
    _, V = torch.linalg.eigh(H)
    return V[:, :, 0].to(C128)


def target_of(task, N, gen):
    if task == "cluster1":
        return data_clustered(1, N, 0.08, gen)
    if task == "cluster2":
        return data_clustered(2, N, 0.06, gen)
    if task == "circle":
        return data_circle(N, gen)
    if task == "noise":
        return data_noise(N, gen)
    return data_tfim(4, N, gen)


# ---------------------------------------------------------------- forward (scrambling)

def apply_1q_batched(psi, U, q, n):
    """psi (B, 2^n), U (B, 2, 2) one matrix per member, on qubit q (qubit 0 = MSB)"""
    B = psi.shape[0]
    v = psi.reshape(B, 1 << q, 2, 1 << (n - 1 - q))
    return torch.einsum("bac,bicj->biaj", U, v).reshape(B, 1 << n)


def euler_zyz(p1, p2, p3):
    """RZ(p3) RY(p2) RZ(p1), (B, 2, 2)"""
    c, s = torch.cos(p2 / 2), torch.sin(p2 / 2)
    e1, e3 = torch.exp(-0.5j * p1), torch.exp(-0.5j * p3)
    u00 = e3 * c * e1
    u01 = -e3 * s * e1.conj()
    u10 = e3.conj() * s * e1
    u11 = e3.conj() * c * e1.conj()
    return torch.stack([torch.stack([u00, u01], -1), torch.stack([u10, u11], -1)], -2)


def forward_sets(S0, sched, n, gen):
    """[S_0, ..., S_T], S_t = t fresh scrambling steps on S_0 (marginal), all sets at once"""
    T, N, d = len(sched), S0.shape[0], S0.shape[1]
    X = S0.unsqueeze(0).repeat(T, 1, 1)          # X[t-1] becomes S_t
    w = torch.tensor([bin(i).count("1") for i in range(d)], dtype=F64)
    zz = 0.5 * ((n - 2 * w) ** 2 - n)            # sum_{i<j} z_i z_j of each basis state
    for s in range(1, T + 1):
        h = sched[s - 1]
        Y = X[s - 1:].reshape(-1, d)             # the sets t >= s, every member
        B = Y.shape[0]
        phi = uniform((B, n, 3), -math.pi / 8 * h, math.pi / 8 * h, gen)
        for q in range(n):
            Y = apply_1q_batched(Y, euler_zyz(phi[:, q, 0], phi[:, q, 1], phi[:, q, 2]), q, n)
        if n >= 2:
            g = uniform((B,), 0.4 * h, 0.6 * h, gen)
            theta = g / (2 * math.sqrt(n))
            Y = Y * torch.exp(-0.5j * theta[:, None] * zz[None, :])
        X[s - 1:] = Y.reshape(T - s + 1, N, d)
    return [S0] + [X[t] for t in range(T)]


# ---------------------------------------------------------------- the backward step

class Backward:
    def __init__(self, n, na, L, N, variant):
        self.n, self.na, self.L, self.N, self.variant = n, na, L, N, variant
        self.nt = n + na
        self.D = 1 << self.nt
        self.P = 2 * self.nt * L
        idx = np.arange(self.D)
        bit = [(idx >> (self.nt - 1 - q)) & 1 for q in range(self.nt)]    # qubit 0 = MSB
        s = np.ones(self.D)
        for q in list(range(0, self.nt - 1, 2)) + list(range(1, self.nt - 1, 2)):
            s = s * np.where(bit[q] & bit[q + 1], -1.0, 1.0)
        self.cz = torch.from_numpy(s.astype(np.complex128))

    def embed(self, E):
        X = torch.zeros(E.shape[0], self.D, dtype=C128)
        X[:, : 1 << self.n] = E                                          # ancillas |0>, MSBs
        return X

    def gates(self, theta):
        """2x2 RY(b) RX(a) per qubit, (L, nt, 2, 2); slot 2nt l + i = RX on qubit i,
        2nt l + nt + i = RY on qubit i (qd.ansatz.quddpm's layout)"""
        th = theta.view(self.L, 2, self.nt)
        a, b = th[:, 0], th[:, 1]
        ca, sa = torch.cos(a / 2).to(C128), torch.sin(a / 2).to(C128)
        cb, sb = torch.cos(b / 2).to(C128), torch.sin(b / 2).to(C128)
        j = 1j
        u00 = cb * ca + j * sb * sa
        u01 = -j * cb * sa - sb * ca
        u10 = sb * ca - j * cb * sa
        u11 = -j * sb * sa + cb * ca
        return torch.stack([torch.stack([u00, u01], -1), torch.stack([u10, u11], -1)], -2)

    def circuit(self, X, theta):
        U = self.gates(theta)
        psi, M, nt = X, X.shape[0], self.nt
        for l in range(self.L):
            if self.variant == "gates":
                for q in range(nt):
                    v = psi.reshape(M, 1 << q, 2, 1 << (nt - 1 - q))
                    psi = torch.einsum("ab,nibj->niaj", U[l, q], v).reshape(M, self.D)
                psi = psi * self.cz
            else:
                W = U[l, 0]
                for q in range(1, nt):
                    W = torch.kron(W, U[l, q])
                psi = (psi @ W.T) * self.cz
        return psi

    def output(self, X, theta, gen):
        """circuit, ancillas measured (outcome sampled per member), normalised data states"""
        M = X.shape[0]
        psi = self.circuit(X, theta).reshape(M, 1 << self.na, 1 << self.n)
        p = (psi.real ** 2 + psi.imag ** 2).sum(-1)                       # (M, 2^na)
        m = torch.multinomial(p.detach(), 1, generator=gen).squeeze(1)
        rows = torch.arange(M)
        return psi[rows, m, :] / torch.sqrt(p[rows, m]).unsqueeze(-1)


def kernel(A, B):
    G = A.conj() @ B.T
    return G.real ** 2 + G.imag ** 2


def mmd(A, B, kbb=None):
    """fidelity-kernel MMD from the three Gram matrices (the reference code's way);
    kbb: the constant target-target term when it is known"""
    if kbb is None:
        kbb = kernel(B, B).mean()
    return kernel(A, A).mean() + kbb - 2 * kernel(A, B).mean()


def mean_state(A):
    return A.T @ A.conj() / A.shape[0]


def mmd_dm(A, rho_b):
    """the same MMD as Tr[(rho_A - rho_B)^2] (the average states; what qd computes when
    2^n < N + M): O(N 4^n) instead of O(N^2 2^n)"""
    D = mean_state(A) - rho_b
    return (D.real ** 2 + D.imag ** 2).sum()


def wasserstein(A, B):
    C = 1 - kernel(A, B)
    r, c = linear_sum_assignment(C.detach().numpy())
    return C[torch.from_numpy(r), torch.from_numpy(c)].sum() / A.shape[0]


# ---------------------------------------------------------------- metrics

def metric(name, E, S0):
    n = int(math.log2(E.shape[1]))
    with torch.no_grad():
        if name == "F0":
            return float((E[:, 0].abs() ** 2).mean())
        if name == "mmd":
            return float(mmd(E, S0))
        if name == "wass":
            return float(wasserstein(E, S0))
        if name == "y2":
            s = 0.0
            for q in range(n):
                v = E.reshape(E.shape[0], 1 << q, 2, 1 << (n - 1 - q))
                y = 2 * (v[:, :, 0, :].conj() * v[:, :, 1, :]).imag.sum((1, 2))   # <Y_q>
                s += float((y ** 2).sum())
            return s / (n * E.shape[0])
        if name == "p_hat":
            esin2 = 0.5 - math.sin(2 * math.pi / 3) / (4 * math.pi / 3)
            return float((E[:, 2].abs() ** 2).mean()) / (0.55 * esin2)
        if name == "magnetization":
            b = torch.arange(1 << n)
            w = sum(((b >> j) & 1) for j in range(n)).to(F64)
            mag = ((2 * w - n) / n).abs()
            return float(((E.abs() ** 2) * mag).sum(1).mean())
    raise ValueError(name)


# ---------------------------------------------------------------- the protocol

def run(task, epochs, seed, N, lr, variant, mmd_way, quiet):
    cfg = TASKS[task]
    n, na, T, L = cfg["n"], cfg["na"], cfg["T"], cfg["L"]
    sched = cfg["sched"]
    assert len(sched) == T

    def stream(k):
        return torch.Generator().manual_seed(1000003 * seed + k)

    times = {}
    t0 = time.perf_counter()
    S0 = target_of(task, N, stream(1))
    sets = forward_sets(S0, sched, n, stream(2))
    times["data_forward_seconds"] = time.perf_counter() - t0

    bw = Backward(n, na, L, N, variant)
    inputs = haar(n, N, stream(3))
    params = [None] * T
    final_loss = [None] * T
    t1 = time.perf_counter()
    for t in range(T - 1, -1, -1):
        gen = stream(100 + t)
        theta = torch.randn(bw.P, generator=gen, dtype=F64).requires_grad_(True)
        opt = torch.optim.Adam([theta], lr=lr)
        X = bw.embed(inputs)
        targets = sets[t]
        if cfg["loss"] == "mmd":
            kbb = kernel(targets, targets).mean() if mmd_way == "gram" else None
            rho_b = mean_state(targets) if mmd_way == "dm" else None
        losses = []
        for _ in range(epochs):
            opt.zero_grad()
            A = bw.output(X, theta, gen)
            if cfg["loss"] == "wasserstein":
                loss = wasserstein(A, targets)
            elif mmd_way == "gram":
                loss = mmd(A, targets, kbb)
            else:
                loss = mmd_dm(A, rho_b)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        params[t] = theta.detach().clone()
        w = max(1, epochs // 10)
        final_loss[t] = sum(losses[-w:]) / w
        if t >= 1:
            with torch.no_grad():
                inputs = bw.output(X, params[t], stream(10000 + t))
        if not quiet:
            el = time.perf_counter() - t1
            print(f"  step {T - t}/{T} (t = {t}): loss {final_loss[t]:.4g}, {el:.1f} s,"
                  f" {(T - t) * epochs / el:.0f} epochs/s", flush=True)
    times["train_seconds"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    with torch.no_grad():
        def generate(E, key):
            for t in range(T - 1, -1, -1):
                E = bw.output(bw.embed(E), params[t], stream(key + t))
            return E
        g_train = generate(haar(n, N, stream(3)), 20000)
        g_test = generate(haar(n, N, stream(4)), 30000)
    metrics = {}
    for m in cfg["metrics"]:
        metrics[m + "_train"] = metric(m, g_train, S0)
        metrics[m + "_test"] = metric(m, g_test, S0)
    metrics["target"] = {m: metric(m, S0, S0) for m in cfg["metrics"] if m not in ("mmd", "wass")}
    times["generate_metrics_seconds"] = time.perf_counter() - t2
    times["protocol_seconds"] = time.perf_counter() - t0
    times["epochs"] = T * epochs
    times["seconds_per_epoch"] = times["train_seconds"] / (T * epochs)
    settings = dict(task=task, n=n, na=na, T=T, L=L, N=N, loss=cfg["loss"], lr=lr, epochs=epochs,
                    seed=seed, circuit=variant, mmd=mmd_way, nparams=bw.P, schedule=sched)
    return dict(settings=settings, metrics=metrics, timing=times, step_final_loss=final_loss)


def main():
    ap = argparse.ArgumentParser(description="QuDDPM end to end in PyTorch (see the module docstring)")
    ap.add_argument("task", choices=sorted(TASKS))
    ap.add_argument("--epochs", type=int, default=0, help="epochs per step (0 = the task's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--N", type=int, default=0, help="ensemble size (0 = the task's)")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--circuit", choices=["kron", "gates"], default="kron")
    ap.add_argument("--mmd", choices=["gram", "dm"], default="gram",
                    help="how the MMD training loss is computed: Gram matrices (the reference code) or"
                         " average states (qd's choice for these sizes)")
    ap.add_argument("--out", default="", help="write the figures to this JSON file")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if a.epochs < 0 or a.N < 0 or a.threads < 1:
        ap.error("--epochs, --N must be >= 0 and --threads >= 1")
    torch.set_num_threads(a.threads)
    cfg = TASKS[a.task]
    epochs = a.epochs or cfg["epochs"]
    N = a.N or cfg["N"]
    res = run(a.task, epochs, a.seed, N, a.lr, a.circuit, a.mmd, a.quiet)
    res["torch_version"] = torch.__version__
    res["threads"] = a.threads
    res["timing"]["import_seconds"] = IMPORT_SECONDS
    s, tm = res["settings"], res["timing"]
    print(f"QuDDPM {a.task} in PyTorch {torch.__version__} (T={s['T']}, L={s['L']}, N={N}, {epochs} epochs/step,"
          f" loss {s['loss']}{' (' + a.mmd + ')' if s['loss'] == 'mmd' else ''}, circuit {a.circuit}, seed {a.seed}, {a.threads} thread{'s' if a.threads > 1 else ''}):")
    for k in sorted(k for k in res["metrics"] if k != "target"):
        print(f"  {k:20s} {res['metrics'][k]:.6g}")
    print("  target: " + ", ".join(f"{k} {v:.4g}" for k, v in res["metrics"]["target"].items()))
    print(f"  protocol {tm['protocol_seconds']:.2f} s (data + forward {tm['data_forward_seconds']:.2f} s,"
          f" train {tm['train_seconds']:.2f} s = {tm['seconds_per_epoch'] * 1e3:.3f} ms/epoch,"
          f" generation + metrics {tm['generate_metrics_seconds']:.2f} s); imports {IMPORT_SECONDS:.2f} s")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
    bad = [k for k, v in res["metrics"].items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        print("  non-finite metrics: " + ", ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
