#!/usr/bin/python3
"""quddpm_step_torch.py — the PyTorch side of the QuDDPM training-iteration benchmark.

    quddpm_step_torch.py DIR SETTING [--round K/R] [THREADS...]

SETTING is mmd (n = 2, n_A = 1, L = 6, N = 100, fidelity-kernel MMD) or circle (n = 1,
n_A = 2, L = 6, N = 100, exact Wasserstein with cost 1 - |<a|b>|^2). The inputs come from
`qd bench/quddpm_step.lua DIR SETTING` (DIR/SETTING_X.npy: the N inputs with the ancillas
embedded, N x 2^(n+n_A); _targets.npy N x 2^n; _theta.npy; _outcomes.npy N x 1, the
ancilla outcome index of each member). One training iteration, written the straightforward
PyTorch way (complex128, CPU, autograd, torch.optim.Adam), batched over the N members:

  psi = X;  for each layer: on every qubit q the 2x2 RY(theta) RX(theta) (built from theta
  with torch ops), applied to psi viewed as (N, 2^q, 2, 2^(rest)); then the CZs on even and
  odd pairs (one +-1 diagonal); ancillas = the n_A most significant qubits: p = sum of
  |psi|^2 over the data index, psi' = psi[k, m_k, :] / sqrt(p[k, m_k]) (outcome m_k given, or
  sampled with torch.multinomial), loss(psi', targets), loss.backward(), opt.step().

Two ways of writing the circuit are timed ("gates": per-qubit 2x2 as above; "kron": the
layer's full 2^(n+n_A) unitary from torch.kron, one matmul per layer); the faster is the
reference. Loss: MMD = mean|<a|a'>|^2 + mean|<b|b'>|^2 - 2 mean|<a|b>|^2 (Gram matrices, as
the reference code); Wasserstein = sum_i C[i, j_i] / N with j = scipy's
linear_sum_assignment on the detached cost (the reference code's way), the gradient flowing
through C with the assignment fixed.

Check: with the written outcomes, the loss, dL/dtheta, the generated states and theta after
one Adam step are compared with qd's (DIR/SETTING_qd_tT_*.npy for every thread count T
given) to 1e-10 (max differences printed; exit status 1 if any disagrees), and qd's 1- and
2-thread results must be bitwise identical. Timing as qd's: after a warm-up, REPEATS batches
of BATCH iterations each timed on its own, the minimum over batches of the batch median;
with torch.set_num_threads(T) for each T, fixed and sampled outcomes; every timed iteration
starts from theta0 (the Adam state carries on), as qd's, so both sides solve the same
problem. Prints qd's speed-up from DIR/SETTING_qd_tT_times.txt. With --round K/R
(quddpm_step.sh runs qd and torch alternately R times) the torch figures are merged with
the earlier rounds' (minimum, kept in DIR/SETTING_torch_tT_times.txt) and the timing table
is printed in the last round only.

Trajectory mode: K = 200 consecutive real training iterations from theta0 (theta advancing
with a fresh torch.optim.Adam), with the per-iteration outcomes qd fixed beforehand
(DIR/SETTING_traj_outcomes.npy, K x N, drawn by qd along its own trajectory: "sampled"; or
the written outcomes at every iteration: "held"). The per-iteration losses and the final
theta are compared with qd's (DIR/SETTING_qd_tT_traj{s,h}_{losses,theta}.npy) to 1e-9; the
time is the whole sequence / K, minimum over TREPEATS sequences (no reset of theta: this
is what training does; qd warm-starts its assignment along the sequence, scipy solves each
iteration from scratch, as the reference code).
"""
import os
import sys
import time

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

TOL = 1e-10
LR = 5e-3
WARMUP, BATCH = 10, 20
REPEATS = int(os.environ.get("QD_BENCH_REPEATS_TORCH", "15"))
TREPEATS = int(os.environ.get("QD_BENCH_TRAJ_REPEATS_TORCH", "3"))
TRAJ_TOL = 1e-9

SETTINGS = {"mmd": (2, 1, 6, "mmd"), "circle": (1, 2, 6, "wasserstein")}


class Step:
    def __init__(self, X, targets, n, na, L, loss, variant):
        self.X = torch.from_numpy(X)                     # (N, 2^(n+na))
        self.B = torch.from_numpy(targets)               # (N, 2^n)
        self.n, self.na, self.L, self.loss, self.variant = n, na, L, loss, variant
        self.nt = n + na
        self.N = X.shape[0]
        self.D = 1 << self.nt
        idx = np.arange(self.D)
        bit = [(idx >> (self.nt - 1 - q)) & 1 for q in range(self.nt)]   # qubit 0 = MSB
        s = np.ones(self.D)
        for q in list(range(0, self.nt - 1, 2)) + list(range(1, self.nt - 1, 2)):
            s = s * np.where(bit[q] & bit[q + 1], -1.0, 1.0)
        self.cz = torch.from_numpy(s.astype(np.complex128))
        self.rows = torch.arange(self.N)
        if loss == "mmd":
            G = self.B.conj() @ self.B.T
            self.kbb = (G.real ** 2 + G.imag ** 2).mean()  # constant term of the MMD

    def gates(self, theta):
        """2x2 RY(b) RX(a) per qubit, shape (L, nt, 2, 2): slot 2nt(l) + i is RX on qubit i,
        2nt(l) + nt + i RY on qubit i (qd.ansatz.quddpm's layout)"""
        th = theta.view(self.L, 2, self.nt)
        a, b = th[:, 0], th[:, 1]
        ca, sa = torch.cos(a / 2), torch.sin(a / 2)
        cb, sb = torch.cos(b / 2), torch.sin(b / 2)
        ca, sa, cb, sb = (t.to(torch.complex128) for t in (ca, sa, cb, sb))
        j = 1j
        # RY(b) = [[cb, -sb], [sb, cb]];  RX(a) = [[ca, -i sa], [-i sa, ca]]
        u00 = cb * ca + j * sb * sa
        u01 = -j * cb * sa - sb * ca
        u10 = sb * ca - j * cb * sa
        u11 = -j * sb * sa + cb * ca
        return torch.stack([torch.stack([u00, u01], -1), torch.stack([u10, u11], -1)], -2)

    def circuit(self, theta):
        U = self.gates(theta)
        psi = self.X
        N, nt = self.N, self.nt
        for l in range(self.L):
            if self.variant == "gates":
                for q in range(nt):
                    v = psi.reshape(N, 1 << q, 2, 1 << (nt - 1 - q))
                    psi = torch.einsum("ab,nibj->niaj", U[l, q], v).reshape(N, self.D)
                psi = psi * self.cz
            else:
                W = U[l, 0]
                for q in range(1, nt):
                    W = torch.kron(W, U[l, q])
                psi = (psi @ W.T) * self.cz
        return psi

    def output(self, theta, outcomes):
        psi = self.circuit(theta).reshape(self.N, 1 << self.na, 1 << self.n)
        p = (psi.real ** 2 + psi.imag ** 2).sum(-1)                 # (N, 2^na)
        if outcomes is None:
            outcomes = torch.multinomial(p.detach(), 1).squeeze(1)
        m = outcomes
        return psi[self.rows, m, :] / torch.sqrt(p[self.rows, m]).unsqueeze(-1)

    def lossval(self, A):
        G = A.conj() @ self.B.T
        K = G.real ** 2 + G.imag ** 2
        if self.loss == "mmd":
            H = A.conj() @ A.T
            return (H.real ** 2 + H.imag ** 2).mean() + self.kbb - 2 * K.mean()
        C = 1 - K
        r, c = linear_sum_assignment(C.detach().numpy())
        return C[torch.from_numpy(r), torch.from_numpy(c)].sum() / self.N

    def iteration(self, theta, opt, outcomes):
        opt.zero_grad()
        A = self.output(theta, outcomes)
        loss = self.lossval(A)
        loss.backward()
        opt.step()
        return loss, A


def median(t):
    return float(np.median(t))


def bench(step, theta0, outcomes):
    """per iteration: theta <- theta0 (the Adam state carries on), then one iteration"""
    th0 = torch.from_numpy(theta0)
    theta = torch.tensor(theta0, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=LR)

    def timed():
        with torch.no_grad():
            theta.copy_(th0)
        step.iteration(theta, opt, outcomes)

    for _ in range(WARMUP):
        timed()
    best = float("inf")
    for _ in range(REPEATS):
        ts = []
        for _ in range(BATCH):
            t0 = time.perf_counter()
            timed()
            ts.append(time.perf_counter() - t0)
        best = min(best, median(ts))
    return best


def trajectory(step, theta0, ocs, losses=None):
    """K consecutive iterations from theta0 with a fresh Adam state; outcomes ocs[k] at
    iteration k; returns the final theta"""
    theta = torch.tensor(theta0, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=LR)
    for oc in ocs:
        lossv, _ = step.iteration(theta, opt, oc)
        if losses is not None:
            losses.append(lossv.item())
    return theta.detach().numpy().copy()


def bench_traj(step, theta0, ocs):
    """whole sequence / K, minimum over TREPEATS sequences"""
    best = float("inf")
    for _ in range(TREPEATS):
        t0 = time.perf_counter()
        trajectory(step, theta0, ocs)
        best = min(best, (time.perf_counter() - t0) / len(ocs))
    return best


def maxdiff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def main():
    if len(sys.argv) < 3 or sys.argv[2] not in SETTINGS:
        sys.exit("usage: quddpm_step_torch.py DIR mmd|circle [--round K/R] [THREADS...]")
    d, setting = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    rnd, nrounds = 1, 1
    if rest and rest[0] == "--round":
        rnd, nrounds = (int(x) for x in rest[1].split("/"))
        rest = rest[2:]
    threads = [int(t) for t in rest] or [1, 2]
    final = rnd == nrounds
    n, na, L, loss = SETTINGS[setting]
    pre = os.path.join(d, setting + "_")
    X = np.load(pre + "X.npy")
    targets = np.load(pre + "targets.npy")
    theta0 = np.load(pre + "theta.npy")
    outc = np.load(pre + "outcomes.npy")
    assert X.shape == (100, 1 << (n + na)) and targets.shape == (100, 1 << n), "inputs: bad shapes"
    assert theta0.shape == (2 * (n + na) * L,) and outc.shape == (100, 1), "inputs: bad shapes"
    outcomes = torch.from_numpy(outc[:, 0].astype(np.int64))
    say = print if final else (lambda *a, **k: None)
    say(f"  torch {torch.__version__}, complex128, CPU; {loss}, n={n} n_A={na} L={L} N={X.shape[0]}")

    # ---- check: both variants against each other and against qd, fixed outcomes
    ok = True
    steps = {v: Step(X, targets, n, na, L, loss, v) for v in ("gates", "kron")}
    ref = {}
    for v, st in steps.items():
        theta = torch.tensor(theta0, requires_grad=True)
        opt = torch.optim.Adam([theta], lr=LR)
        lossv, A = st.iteration(theta, opt, outcomes)
        ref[v] = dict(loss=np.array([lossv.item()]), grad=theta.grad.numpy().copy(),
                      out=A.detach().numpy().copy(), theta1=theta.detach().numpy().copy())
    qd_res = {}
    for t in threads:
        tag = f"{pre}qd_t{t}_"
        if os.path.exists(tag + "loss.npy"):
            qd_res[t] = {k: np.load(tag + k + ".npy") for k in ("loss", "grad", "out", "theta1")}
    if not qd_res:
        print("  FAIL: no qd results found (run quddpm_step.lua first)")
        ok = False
    say(f"  loss (torch, gates) {ref['gates']['loss'][0]:.15g}")
    checks = [("torch kron", ref["kron"])] + [(f"qd {t} thr", r) for t, r in qd_res.items()]
    for name, r in checks:
        diffs = {k: maxdiff(ref["gates"][k], r[k]) for k in ("loss", "grad", "out", "theta1")}
        good = all(x <= TOL for x in diffs.values())
        ok &= good
        (say if good else print)(
            f"  vs torch(gates) {name:10s} max|diff|: loss {diffs['loss']:.1e}  grad {diffs['grad']:.1e}"
            f"  output {diffs['out']:.1e}  theta after Adam {diffs['theta1']:.1e}  "
            + ("ok (<= 1e-10)" if good else "FAIL (> 1e-10)"))
    if 1 in qd_res and 2 in qd_res:
        same = all(np.array_equal(qd_res[1][k], qd_res[2][k]) for k in qd_res[1])
        ok &= same
        (say if same else print)("  qd results bitwise identical with 1 and 2 threads: "
                                 + ("yes" if same else "NO (FAIL)"))

    # ---- trajectories: K real iterations from theta0, outcomes fixed per iteration by qd
    #      ("sampled": drawn by qd along its trajectory; "held": the written outcomes every time)
    ocs_s = np.load(pre + "traj_outcomes.npy").astype(np.int64)
    K = ocs_s.shape[0]
    assert ocs_s.shape == (K, X.shape[0]), "traj_outcomes: bad shape"
    trajs = {"s": [torch.from_numpy(ocs_s[k].copy()) for k in range(K)], "h": [outcomes] * K}
    for kind, ocs in trajs.items():
        tref = {}
        for v, st in steps.items():
            ls = []
            th = trajectory(st, theta0, ocs, ls)
            tref[v] = dict(losses=np.array(ls), theta=th)
        cmp = [("torch kron", tref["kron"])]
        for t in threads:
            tag = f"{pre}qd_t{t}_traj{kind}_"
            if os.path.exists(tag + "losses.npy"):
                cmp.append((f"qd {t} thr", dict(losses=np.load(tag + "losses.npy").reshape(-1),
                                                theta=np.load(tag + "theta.npy").reshape(-1))))
        if len(cmp) == 1:
            print(f"  FAIL: no qd trajectory results found for {kind}")
            ok = False
        for name, r in cmp:
            dl = maxdiff(tref["gates"]["losses"], r["losses"])
            dt = maxdiff(tref["gates"]["theta"], r["theta"])
            good = dl <= TRAJ_TOL and dt <= TRAJ_TOL
            ok &= good
            (say if good else print)(
                f"  trajectory ({'sampled' if kind == 's' else 'held'} outcomes, K = {K}) vs torch(gates) "
                f"{name:10s} max|diff|: losses {dl:.1e}  final theta {dt:.1e}  "
                + ("ok (<= 1e-9)" if good else "FAIL (> 1e-9)"))

    # ---- timing
    for t in threads:
        torch.set_num_threads(t)
        tt = {}
        for mode, oc in (("fixed", outcomes), ("sampled", None)):
            tt[mode] = {v: bench(st, theta0, oc) for v, st in steps.items()}
        for kind, ocs in trajs.items():
            tt["traj" + kind] = {v: bench_traj(st, theta0, ocs) for v, st in steps.items()}
        tfn = f"{pre}torch_t{t}_times.txt"
        if rnd > 1 and os.path.exists(tfn):
            with open(tfn) as f:
                for line in f:
                    k, v = line.split()
                    mode, var = k.split("_")
                    tt[mode][var] = min(tt[mode][var], float(v))
        with open(tfn, "w") as f:
            for mode in tt:
                for var in tt[mode]:
                    f.write(f"{mode}_{var} {tt[mode][var]:.9e}\n")
        if not final:
            continue
        best_v = min(tt["fixed"], key=lambda v: tt["fixed"][v])
        qd_t = {}
        fn = f"{pre}qd_t{t}_times.txt"
        if os.path.exists(fn):
            with open(fn) as f:
                for line in f:
                    k, v = line.split()
                    qd_t[k] = float(v)
        print(f"  -- {t} thread{'s' if t > 1 else ''} (torch.set_num_threads({t}), qd --threads {t})"
              + (f"; best of {nrounds} rounds" if nrounds > 1 else ""))
        labels = {"fixed": "fixed theta0, fixed outcomes  ", "sampled": "fixed theta0, sampled outcomes",
                  "trajs": "trajectory, sampled outcomes  ", "trajh": "trajectory, held outcomes     "}
        for mode in ("fixed", "sampled", "trajs", "trajh"):
            bv = min(tt[mode], key=lambda v: tt[mode][v]) if mode.startswith("traj") else best_v
            tv = tt[mode][bv]
            other = [f"{v} {tt[mode][v] * 1e3:.3f} ms" for v in tt[mode] if v != bv]
            line = (f"  {labels[mode]}: torch ({bv}) {tv * 1e3:8.3f} ms  [{', '.join(other)}]")
            if mode in qd_t:
                q = qd_t[mode]
                line += f"   qd {q * 1e6:8.1f} us   qd faster by {tv / q:6.1f}x"
                if mode + "cold" in qd_t and loss == "wasserstein":
                    qc = qd_t[mode + "cold"]
                    line += f"   (qd cold assignment {qc * 1e6:.1f} us, {tv / qc:.1f}x)"
            print(line)
            print(f"RESULT {setting} threads={t} mode={mode} torch_{bv}_s={tv:.6e} "
                  + (f"qd_s={qd_t[mode]:.6e} ratio={tv / qd_t[mode]:.2f}" if mode in qd_t else "qd_s=NA")
                  + (f" qd_cold_s={qd_t[mode + 'cold']:.6e}" if mode + "cold" in qd_t else ""))
    if not ok:
        print(f"  {setting}: CHECK FAILED")
        sys.exit(1)
    say(f"  {setting}: loss, gradient, output and Adam step agree to 1e-10")


if __name__ == "__main__":
    main()
