#!/usr/bin/python3
"""qgdm_torch.py — QGDM / RE-QGDM (arXiv 2401.07039, qd.protocols.qgdm) written independently
in PyTorch (complex128 density matrices, CPU, autograd), for bench/qgdm_bench.sh.

    qgdm_torch.py DIR CASE [--threads T] [--reps R] [--K K] [--check] [--tag TAG]
                           [--method dm|kraus] [--sf eig|support]

Reads what bench/qgdm_bench.lua wrote to DIR/CASE (settings.json, target.npy, theta0.npy,
and qd's grad0.npy, losses.npy, thetaK.npy, gradK.npy, results.json, qd_TAG.json) and
  * with --check: the loss and gradient at theta0 against qd's (max abs difference), then K
    Adam iterations (torch.optim.Adam, lr from the settings, betas 0.9/0.999, eps 1e-8) from
    theta0: the per-iteration losses, the final theta, the loss and gradient at theta_K
    against qd's run of K iterations;
  * the times: R x (loss + gradient at theta0) and, with K > 0, R x a whole run of K
    iterations (fresh parameters and optimiser each time), medians, and the ratios
    torch / qd against qd's medians in DIR/CASE/qd_TAG.json.

The model (the same as qgdm.lua's, written from its description, not translated):
  forward   rho_t = abar_t rho_0 + (1 - abar_t) I/d, abar_t = prod_{s<=t} (1 - beta_s),
            beta = linspace(1e-4, 0.5, T) (qd.schedule.linear; checked against settings.json)
  step t    x = rhohat_t (x) tau_t (x) |0..0><0..0|_aux, tau_t = RY(pi t / T)|0><0|RY^dag on
            the time qubit n; then `blocks` x hardware_efficient(N, L, final): per layer
            l = 0..L-1 RY(theta[2N l + 2i]) then RZ(theta[2N l + 2i + 1]) on every qubit i,
            then CX(i, i+1) for i = 0..N-2; a final RY RZ layer (l = L); every block its own
            2N(L+1) parameters; between blocks the aux qubits are traced out and |0><0|
            tensored back (RE-QGDM); at the end time + aux are traced out. Qubit 0 is the
            most significant bit, rotations exp(-i theta P / 2).
  loss      sum_{t=1..T} (1 - F(rhohat_{t-1}, rho_{t-1})) along the chain from rhohat_T = I/d,
            F the squared Uhlmann fidelity.
  circuit   every block's D x D unitary U_b(theta) is built once per loss evaluation (the
            circuit applied to the identity: a rotation layer is the Kronecker product of the
            qubits' 2 x 2 RZ.RY, per group of at most 5 qubits (32 x 32), applied as a batched
            matmul; the CX chain of a layer is one permutation of the basis, index_select);
            every step then is x -> U_b x U_b^dag, two D x D matmuls per block (zgemm), and
            autograd keeps only a few D x D matrices per step.

  --method kraus computes the same values differently (Model.kraus): the step's input is pure on
  the padding, so the step is K rhohat K^dag with K = U (I (x) |psi_t>), from 2d columns of U.

The fidelity is a torch.autograd.Function with the same mathematics as qd (runtime/core/
quantities.c qd_fid_dm_dm, runtime/core/loss.c uhlmann_grad):
  value     F = (sum of singular values of sqrt(rho) sqrt(sigma))^2, the PSD square roots with
            eigenvalues <= d eps max|w| set to 0;
  gradient  dF/drho = sf S X^{+1/2} S, S = sqrt(sigma), X = S rho S, X^{+1/2} the inverse
            square root on the eigenvalues > 1e-12 max w (the support: sigma = rho_0 is
            rank-deficient at t = 1, so X is), sf = sum of sqrt(w) over that support (as qd
            since its fix; --sf eig sums every w > 0, which adds the rounding noise of the
            zero eigenvalues, ~3e-9 each). Torch's convention for a real loss is
            grad = dL/dRe + i dL/dIm = the Hermitian dF/drho itself (qd's G is -1/2 of it
            for 1 - F).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as exc:  # the shell script checks first; this is for direct use
    print(f"qgdm_torch: SKIPPED: {exc} (needs /usr/bin/python3 with python3-torch, python3-numpy)")
    sys.exit(2)

CD = torch.complex128
EPS = 2.220446049250313e-16
SF = {"mode": "support"}   # "support": over the support only (qd's, since its fix); "eig": every sqrt(w > 0)


def sqrtm_psd(a):
    w, v = torch.linalg.eigh(a)
    floor = a.shape[0] * EPS * w.abs().max()
    r = torch.where(w > floor, w.clamp(min=0).sqrt(), torch.zeros_like(w))
    return (v * r.to(CD)) @ v.mH


class Uhlmann(torch.autograd.Function):
    """F(rho, sigma) with sigma fixed (the forward state)."""

    @staticmethod
    def forward(ctx, rho, sigma):
        m = sqrtm_psd(rho) @ sqrtm_psd(sigma)
        f = torch.linalg.svdvals(m).sum() ** 2
        ctx.save_for_backward(rho, sigma)
        return f

    @staticmethod
    def backward(ctx, gout):
        rho, sigma = ctx.saved_tensors
        s = sqrtm_psd(sigma)
        x = s @ rho @ s
        w, v = torch.linalg.eigh(x)
        wmax = w.max().clamp(min=0)
        keep = (w > 1e-12 * wmax) & (w > 0)
        sf = torch.where(keep if SF["mode"] == "support" else w > 0, w.clamp(min=0).sqrt(),
                         torch.zeros_like(w)).sum()
        r = torch.where(keep, w.clamp(min=1e-300) ** -0.25, torch.zeros_like(w))
        t = v * r.to(CD)
        g = sf * (s @ (t @ t.mH) @ s)
        return gout * g, None


def ptrace_tail(rho, d, e):
    """trace out the last (least significant) e-dimensional factor of a (d e) x (d e) matrix"""
    return rho.reshape(d, e, d, e).diagonal(dim1=1, dim2=3).sum(-1)


class Model:
    def __init__(self, st, target, group=5, method="dm"):
        self.method = method
        self.n, self.na, self.nt, self.N = st["n"], st["na"], st["nt"], st["N"]
        self.L, self.T, self.blocks, self.P = st["L"], st["T"], st["blocks"], st["nparams"]
        assert self.nt == 1, "angle time encoding only"
        n, N, T = self.n, self.N, self.T
        self.d, self.D = 2 ** n, 2 ** N
        self.per_block = 2 * N * (self.L + 1)
        assert self.P == self.blocks * self.per_block, (self.P, self.blocks, self.per_block)
        betas = np.linspace(1e-4, 0.5, T)
        self.beta_diff = float(np.max(np.abs(betas - np.array(st["betas"]))))
        abar = np.cumprod(1.0 - betas)
        rho0 = torch.from_numpy(target).to(CD)
        eye = torch.eye(self.d, dtype=CD) / self.d
        self.rhos = [rho0] + [abar[t - 1] * rho0 + (1 - abar[t - 1]) * eye for t in range(1, T + 1)]
        self.eye = eye
        # tau_t (x) |0><0|_aux for every t
        pad0 = torch.zeros(2 ** self.na, 2 ** self.na, dtype=CD)
        pad0[0, 0] = 1
        self.pads = {}
        for t in range(1, T + 1):
            c, s = math.cos(math.pi * t / T / 2), math.sin(math.pi * t / T / 2)
            tau = torch.tensor([[c * c, c * s], [c * s, s * s]], dtype=CD)
            self.pads[t] = torch.kron(tau, pad0)
        self.aux0 = pad0
        # the CX chain CX(0,1) CX(1,2) ... CX(N-2,N-1) as a basis permutation x -> f(x)
        x = np.arange(self.D)
        f = x.copy()
        for i in range(N - 1):
            ctrl, targ = N - 1 - i, N - 2 - i          # bit positions of qubits i, i + 1
            f = np.where((f >> ctrl) & 1 == 1, f ^ (1 << targ), f)
        finv = np.empty_like(f)
        finv[f] = x
        self.finv = torch.from_numpy(finv)
        # qubit groups for the rotation layers (at most 5 qubits each)
        self.groups = []
        q = 0
        while q < N:
            g = min(group, N - q)
            self.groups.append((q, g))
            q += g

    def layer_unitaries(self, ang):
        """ang: (N, 2) angles (RY, RZ) of one rotation layer -> [(q0, g, U_group)]"""
        a, b = ang[:, 0] / 2, ang[:, 1] / 2
        ca, sa = torch.cos(a).to(CD), torch.sin(a).to(CD)
        ez, ezc = torch.exp(-1j * b.to(CD)), torch.exp(1j * b.to(CD))
        # RZ(b) RY(a) = [[e^{-ib/2} c, -e^{-ib/2} s], [e^{ib/2} s, e^{ib/2} c]]
        u = torch.stack([torch.stack([ez * ca, -ez * sa], -1), torch.stack([ezc * sa, ezc * ca], -1)], -2)
        out = []
        for q0, g in self.groups:
            m = u[q0]
            for q in range(q0 + 1, q0 + g):
                m = torch.kron(m, u[q])
            out.append((q0, g, m))
        return out

    def apply_rows(self, M, layers):
        """U M for the rows of a D x m matrix M; layers: the block's L + 1 rotation layers"""
        D, N = self.D, self.N
        m = M.shape[1]
        for l, lu in enumerate(layers):
            for q0, g, U in lu:
                M = torch.matmul(U, M.reshape(2 ** q0, 2 ** g, (D >> (q0 + g)) * m)).reshape(D, m)
            if l < self.L:
                M = M.index_select(0, self.finv)
        return M

    def unitaries(self, theta):
        """the blocks' D x D unitaries U_b(theta): the circuit applied to the identity"""
        N, L = self.N, self.L
        eye = torch.eye(self.D, dtype=CD)
        us = []
        for b in range(self.blocks):
            th = theta[b * self.per_block:(b + 1) * self.per_block].reshape(L + 1, N, 2)
            us.append(self.apply_rows(eye, [self.layer_unitaries(th[l]) for l in range(L + 1)]))
        return us

    def step(self, rho_t, t, us):
        x = torch.kron(rho_t, self.pads[t])
        for b, u in enumerate(us):
            x = u @ x @ u.mH
            if b < self.blocks - 1:                                       # reset aux
                e = 2 ** self.na
                x = torch.kron(ptrace_tail(x, self.D // e, e), self.aux0)
        return ptrace_tail(x, self.d, 2 ** (self.nt + self.na))

    def kraus(self, theta):
        """method "kraus": the step channel's Kraus operators for every t, (T, B, E, d, d) with
        B = A^(blocks-1) reset branches, E = 2^(nt+na): x = rhohat_t (x) |psi_t><psi_t|
        with |psi_t> = RY(pi t/T)|0> (x) |0..0>_aux is pure on the padding, so
        U x U^dag = K rhohat_t K^dag with K = U (I (x) |psi_t>): only the columns of U
        with the padding in |0 or 1>|0..0> (first block) or aux in |0..0> (later blocks)
        are computed (the circuit applied to those unit columns)."""
        N, L, d, D, T = self.N, self.L, self.d, self.D, self.T
        A, E = 2 ** self.na, 2 ** (self.nt + self.na)
        layers = []
        for b in range(self.blocks):
            th = theta[b * self.per_block:(b + 1) * self.per_block].reshape(L + 1, N, 2)
            layers.append([self.layer_unitaries(th[l]) for l in range(L + 1)])
        # first block: columns (data j, time tb, aux 0) -> (D, d, 2)
        cols = (torch.arange(d)[:, None] * E + torch.arange(2)[None, :] * A).reshape(-1)
        first = torch.zeros(D, 2 * d, dtype=CD)
        first[cols, torch.arange(2 * d)] = 1
        m = self.apply_rows(first, layers[0]).reshape(D, d, 2)
        cs = torch.tensor([[math.cos(math.pi * t / T / 2), math.sin(math.pi * t / T / 2)]
                           for t in range(1, T + 1)], dtype=CD)          # (T, 2)
        k = torch.einsum("xjb,tb->txj", m, cs).unsqueeze(1)               # (T, 1, D, d)
        for b in range(1, self.blocks):
            # reset: branch on the aux value, re-embed at aux 0; U_b on the aux-0 columns
            rest = D // A
            sel = torch.zeros(D, rest, dtype=CD)
            sel[torch.arange(rest) * A, torch.arange(rest)] = 1
            ub = self.apply_rows(sel, layers[b])                           # (D, D/A)
            kb = k.reshape(T, -1, rest, A, d).permute(0, 1, 3, 2, 4).reshape(T, -1, rest, d)
            k = torch.matmul(ub, kb)                                       # (T, B A, D, d)
        return k.reshape(T, k.shape[1], d, E, d).permute(0, 1, 3, 2, 4)    # (T, B, E, d, d)

    def loss(self, theta, terms=None):
        if self.method == "kraus":
            ks = self.kraus(theta)
            rho = self.eye
            total = 0
            for t in range(self.T, 0, -1):
                k = ks[t - 1].reshape(-1, self.d, self.d)
                rho = (k @ rho @ k.mH).sum(0)
                term = 1 - Uhlmann.apply(rho, self.rhos[t - 1])
                if terms is not None:
                    terms[t] = term
                total = total + term
            return total
        us = self.unitaries(theta)
        rho = self.eye
        total = 0
        for t in range(self.T, 0, -1):
            rho = self.step(rho, t, us)
            term = 1 - Uhlmann.apply(rho, self.rhos[t - 1])
            if terms is not None:
                terms[t] = term
            total = total + term
        return total

    def grad_t1(self, theta_np):
        """max |d(1 - F(rhohat_0, rho_0))/dtheta|: the t = 1 term alone"""
        th = torch.tensor(theta_np, dtype=torch.float64, requires_grad=True)
        terms = {}
        self.loss(th, terms)
        (g,) = torch.autograd.grad(terms[1], th)
        return float(g.abs().max())

    def loss_grad(self, theta_np):
        th = torch.tensor(theta_np, dtype=torch.float64, requires_grad=True)
        lv = self.loss(th)
        lv.backward()
        return lv.item(), th.grad.numpy().copy()

    def adam_run(self, theta_np, K, lr):
        th = torch.tensor(theta_np, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([th], lr=lr, betas=(0.9, 0.999), eps=1e-8)
        losses = []
        for _ in range(K):
            opt.zero_grad()
            lv = self.loss(th)
            lv.backward()
            opt.step()
            losses.append(lv.item())
        return np.array(losses), th.detach().numpy().copy()


def load_npy(path):
    a = np.load(path)
    return a.reshape(-1) if a.ndim > 1 and 1 in a.shape else a


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("case")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--K", type=int, default=0, help="iterations of the timed run (0: none)")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--method", choices=["dm", "kraus"], default="dm",
                    help="dm: U x U^dag on the register's density matrix (qd's way); kraus: see Model.kraus")
    ap.add_argument("--sf", choices=["eig", "support"], default="support",
                    help="the Uhlmann gradient's scale: over the support only (support, default: qd's) or "
                         "every sqrt(w > 0) (eig: qd before its fix, noisy at rank-deficient targets)")
    ap.add_argument("--tag", default=None, help="qd's times file qd_TAG.json (default t<threads>)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    SF["mode"] = a.sf
    cdir = os.path.join(a.dir, a.case)
    with open(os.path.join(cdir, "settings.json")) as f:
        st = json.load(f)
    target = np.load(os.path.join(cdir, "target.npy"))
    theta0 = load_npy(os.path.join(cdir, "theta0.npy"))
    model = Model(st, target, method=a.method)
    tag = a.tag or f"t{a.threads}"
    lab = f"torch {a.case} [{tag}, {torch.get_num_threads()} thread(s), {a.method}]"
    ok = True

    if a.check:
        with open(os.path.join(cdir, "results.json")) as f:
            res = json.load(f)
        g_qd = load_npy(os.path.join(cdir, "grad0.npy"))
        l0, g0 = model.loss_grad(theta0)
        dl, dg = abs(l0 - res["loss0"]), float(np.max(np.abs(g0 - g_qd)))
        print(f"{lab}: schedule |beta - qd's| max {model.beta_diff:.1e}; {model.P} parameters")
        print(f"  at theta0: loss {l0:.15f} (qd {res['loss0']:.15f}), |dloss| {dl:.2e}; "
              f"max |grad - qd's| {dg:.2e} (max |grad| {np.max(np.abs(g_qd)):.3g})")
        # the t = 1 term: rho_0 rank-deficient, X = S rho S has zero eigenvalues computed as
        # ~1e-17; qd's gradient scale sum sqrt(w > 0) includes their square roots (~3e-9
        # each), torch's own rounding gives other ~1e-17 values: the gradients can then
        # differ by up to ~(d - rank) 3e-9 / sqrt(F_1) relative on the t = 1 term whichever
        # way torch sums them: the band below, 1e-10 + 1e-8 d |grad of the t = 1 term|
        SF["mode"] = "support"
        _, g0s = model.loss_grad(theta0)
        SF["mode"] = a.sf
        g1 = model.grad_t1(theta0)
        dgs = float(np.max(np.abs(g0s - g_qd)))
        band = 1e-10 + 1e-8 * model.d * g1
        print(f"  gradient with sf over the support only (= sqrt(F) to rounding): max |grad - qd's| {dgs:.2e}; "
              f"max |grad of the t = 1 term| {g1:.3g}: qd's sf-rounding band 1e-10 + 1e-8 d x that = {band:.2e}")
        gok = dg <= 1e-10
        if not gok and dg <= band:
            print(f"  gradient: {dg:.2e} > 1e-10 but inside the t = 1 sf-rounding band (see bench/RESULTS.md)")
            gok = True
        ok &= dl <= 1e-10 and gok
        K = st["K"]
        if K > 0 and os.path.exists(os.path.join(cdir, "losses.npy")):
            losses_qd = load_npy(os.path.join(cdir, "losses.npy"))
            thK_qd = load_npy(os.path.join(cdir, "thetaK.npy"))
            gK_qd = load_npy(os.path.join(cdir, "gradK.npy"))
            losses, thK = model.adam_run(theta0, K, st["lr"])
            lK, gK = model.loss_grad(thK)
            dls = float(np.max(np.abs(losses - losses_qd)))
            dth = float(np.max(np.abs(thK - thK_qd)))
            dlK = abs(lK - res["lossK"])
            dgK = float(np.max(np.abs(gK - gK_qd)))
            print(f"  {K} Adam iterations: max |loss_i - qd's| {dls:.2e}; max |theta_K - qd's| {dth:.2e}; "
                  f"loss(theta_K) {lK:.15f} (qd {res['lossK']:.15f}), |d| {dlK:.2e}; "
                  f"max |grad(theta_K) - qd's| {dgK:.2e}")
            ok &= dls <= 1e-10 and dlK <= 1e-10 and dls == dls
        print(f"  agreement (<= 1e-10 on the losses, the gradient at theta0 within 1e-10 or the band): "
              f"{'PASS' if ok else 'FAIL'}")

    if a.reps <= 0:
        return 0 if ok else 1
    # times: wall (perf_counter) and CPU (process_time, all threads)
    load0 = loadavg()
    it_w, it_c, run_w, run_c = [], [], [], []
    for _ in range(a.reps):
        t0, c0 = time.perf_counter(), time.process_time()
        model.loss_grad(theta0)
        it_w.append(time.perf_counter() - t0)
        it_c.append(time.process_time() - c0)
    if a.K > 0:
        for _ in range(a.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            model.adam_run(theta0, a.K, st["lr"])
            run_w.append(time.perf_counter() - t0)
            run_c.append(time.process_time() - c0)
    load1 = loadavg()
    med = statistics.median
    line = (f"{lab}: loss+grad {med(it_w):.4g} s wall, {med(it_c):.4g} s CPU (median of {a.reps}: "
            + ", ".join(f"{x:.4g}" for x in it_w) + ")")
    if run_w:
        line += (f"; run of {a.K} iterations {med(run_w):.4g} s wall, {med(run_c):.4g} s CPU (median of {a.reps}: "
                 + ", ".join(f"{x:.4g}" for x in run_w) + ")")
    print(line + f"   load {load0} -> {load1}")
    qpath = os.path.join(cdir, f"qd_{tag}.json")
    if os.path.exists(qpath):
        with open(qpath) as f:
            q = json.load(f)
        qi, qc = med(q["iteration"]), med(q["iteration_cpu"])
        msg = (f"  ratio torch/qd [{tag}]: iteration {med(it_w) / qi:.3g} wall ({med(it_w):.4g} / {qi:.4g} s), "
               f"{med(it_c) / qc:.3g} CPU ({med(it_c):.4g} / {qc:.4g} s)")
        if run_w and q["run"] and q["K"] == a.K:
            qr, qrc = med(q["run"]), med(q["run_cpu"])
            msg += (f"; run of {a.K} iterations {med(run_w) / qr:.3g} wall ({med(run_w):.4g} / {qr:.4g} s), "
                    f"{med(run_c) / qrc:.3g} CPU")
        print(msg)
    else:
        print(f"  (no {qpath}: no ratio)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
