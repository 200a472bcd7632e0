#!/usr/bin/python3
"""bench/qcbm_torch.py — the QCBM concentration study of examples/qcbm_variance.lua
(arXiv 2305.02881) written the way a Python user writes it, in PyTorch and in numpy, timed
per random initialisation and checked against qd's values for the same parameters.

Per init theta (ry_rz_cz(n, L) on |0..0>, the GHZ-like target q = (delta_0 + delta_1)/2):
  MMD^2 at sigma = 0.1, 1, n  — Gram form: K_xy = exp(-hamming(x, y)/(2 sigma)) as a 2^n x 2^n
                                matrix, (p - q)^T K (p - q)
  KL(q || p) (p clipped at 1e-12), the global fidelity 1 - |<q|psi>|^2, the local fidelity
  1 - (1/n) sum_j P_j(0) of U^dagger |q>; and dL/dtheta_1 of each:
  torch  state vector as an (2,)*n complex128 tensor, gates by tensordot, autograd (one
         backward pass per loss);
  numpy  the same forward pass, dL/dtheta_1 by the parameter-shift rule (chain rule on the
         probabilities for MMD and KL, shifted values for the fidelities).
The Gram matrix needs 8 * 4^n bytes (2 GiB at n = 14, 32 GiB at n = 16): past --gram-max-n
the script uses the Kronecker form K = (x)_n [[1, e], [e, 1]] (the "kron" rows), applied
axis by axis — what qd does, and not what the issue's reference user writes.

  python3 bench/qcbm_torch.py --n 10 --thetas DIR/thetas_n10.npy [--values DIR/values_n10.npy]
         [--impl torch|numpy] [--L 2] [--gram-max-n 13] [--threads 1] [--reps 3]
prints one line "RESULT impl=... n=... K=... seconds_per_init=... max_abs_diff=..." (seconds: the
minimum over --reps runs, default 3)
(max_abs_diff: against qd's values_nNN.npy, K x 12: six losses then six derivatives, columns
sigma_0.1 sigma_1 sigma_n kl local_fidelity global_fidelity).
"""
import argparse
import math
import time

import numpy as np


def ansatz_layers(psi, th, n, L, apply1, ry, rz, cz, inverse=False):
    """qd.ansatz.ry_rz_cz(n, L) on psi (shape (2,) * n), or its inverse, with the array
    library's apply1 / ry / rz and the CZ ladder as a diagonal cz (torch and numpy alike)."""
    order = range(L - 1, -1, -1) if inverse else range(L)
    for l in order:
        base = 2 * n * l
        if inverse:
            psi = psi * cz
            for i in range(n):
                psi = apply1(psi, rz(-th[base + n + i]), i)
            for i in range(n):
                psi = apply1(psi, ry(-th[base + i]), i)
        else:
            for i in range(n):
                psi = apply1(psi, ry(th[base + i]), i)
            for i in range(n):
                psi = apply1(psi, rz(th[base + n + i]), i)
            psi = psi * cz
    return psi


def ghz(n):
    q = np.zeros(2 ** n)
    q[0] = q[-1] = 0.5
    return q


def hamming_matrix(n):
    x = np.arange(2 ** n, dtype=np.uint32)
    h = np.zeros((2 ** n, 2 ** n), dtype=np.float64)
    xor = x[:, None] ^ x[None, :]
    for b in range(n):
        h += (xor >> b) & 1
    return h


# ------------------------------------------------------------------ torch

def torch_study(n, L, thetas, gram):
    import torch
    dt = torch.complex128
    q = torch.tensor(ghz(n), dtype=torch.float64)
    sq = torch.sqrt(q).to(dt)
    sigmas = [0.1, 1.0, float(n)]
    if gram:
        H = torch.tensor(hamming_matrix(n))
        Ks = [torch.exp(-H / (2 * s)) for s in sigmas]

    def mmd(p, s_idx):
        d = p - q
        if gram:
            return d @ (Ks[s_idx] @ d)
        e = math.exp(-1.0 / (2 * sigmas[s_idx]))
        k = torch.tensor([[1.0, e], [e, 1.0]], dtype=torch.float64)
        y = d.reshape((2,) * n)
        for ax in range(n):
            y = torch.movedim(torch.tensordot(k, y, dims=([1], [ax])), 0, ax)
        return d @ y.reshape(-1)

    def apply1(psi, m, qb):
        return torch.movedim(torch.tensordot(m, psi, dims=([1], [qb])), 0, qb)

    def ry(t):
        c, s = torch.cos(t / 2), torch.sin(t / 2)
        return torch.stack([torch.stack([c, -s]), torch.stack([s, c])]).to(dt)

    def rz(t):
        z = torch.zeros((), dtype=torch.float64)
        e = torch.exp(torch.complex(z, -t / 2))
        return torch.stack([torch.stack([e, torch.zeros((), dtype=dt)]),
                            torch.stack([torch.zeros((), dtype=dt), torch.conj(e)])])

    # CZ ladder as one diagonal of +-1
    x = np.arange(2 ** n)
    czd = np.ones(2 ** n)
    for a in range(n - 1):
        ba, bb = n - 1 - a, n - 2 - a
        czd[((x >> ba) & 1) & ((x >> bb) & 1) == 1] *= -1
    cz = torch.tensor(czd, dtype=dt).reshape((2,) * n)

    def layers(psi, th, inverse=False):
        return ansatz_layers(psi, th, n, L, apply1, ry, rz, cz, inverse)

    zero = torch.zeros((2,) * n, dtype=dt)
    zero.reshape(-1)[0] = 1
    qs = sq.reshape((2,) * n)
    ones = np.zeros(2 ** n)
    for j in range(n):
        ones += (x >> j) & 1
    zeros_frac = torch.tensor((n - ones) / n)
    out = np.zeros((len(thetas), 12))
    for k, th0 in enumerate(thetas):
        vals, grads = [], []
        for which in range(6):
            th = torch.tensor(th0, dtype=torch.float64, requires_grad=True)
            if which == 4:
                phi = layers(qs, th, inverse=True).reshape(-1)
                loss = 1 - ((phi.real ** 2 + phi.imag ** 2) * zeros_frac).sum()
            else:
                psi = layers(zero, th).reshape(-1)
                p = psi.real ** 2 + psi.imag ** 2
                if which < 3:
                    loss = mmd(p, which)
                elif which == 3:
                    loss = (q * (torch.log(torch.where(q > 0, q, torch.ones_like(q))) -
                                 torch.log(torch.clamp(p, min=1e-12)))).sum()
                else:
                    ov = (sq.conj() * psi).sum()
                    loss = 1 - (ov.real ** 2 + ov.imag ** 2)
            loss.backward()
            vals.append(loss.item())
            grads.append(th.grad[0].item())
        out[k, :6], out[k, 6:] = vals, grads
    return out


# ------------------------------------------------------------------ numpy

def numpy_study(n, L, thetas, gram):
    q = ghz(n)
    sq = np.sqrt(q)
    sigmas = [0.1, 1.0, float(n)]
    if gram:
        H = hamming_matrix(n)
        Ks = [np.exp(-H / (2 * s)) for s in sigmas]

    def kd(d, s_idx):
        if gram:
            return Ks[s_idx] @ d
        e = math.exp(-1.0 / (2 * sigmas[s_idx]))
        k = np.array([[1.0, e], [e, 1.0]])
        y = d.reshape((2,) * n)
        for ax in range(n):
            y = np.moveaxis(np.tensordot(k, y, axes=([1], [ax])), 0, ax)
        return y.reshape(-1)

    def apply1(psi, m, qb):
        return np.moveaxis(np.tensordot(m, psi, axes=([1], [qb])), 0, qb)

    def ry(t):
        c, s = math.cos(t / 2), math.sin(t / 2)
        return np.array([[c, -s], [s, c]], dtype=complex)

    def rz(t):
        return np.array([[np.exp(-0.5j * t), 0], [0, np.exp(0.5j * t)]])

    x = np.arange(2 ** n)
    czd = np.ones(2 ** n)
    for a in range(n - 1):
        ba, bb = n - 1 - a, n - 2 - a
        czd[((x >> ba) & 1) & ((x >> bb) & 1) == 1] *= -1
    cz = czd.reshape((2,) * n)
    ones = np.zeros(2 ** n)
    for j in range(n):
        ones += (x >> j) & 1
    zeros_frac = (n - ones) / n

    def layers(psi, th, inverse=False):
        return ansatz_layers(psi, th, n, L, apply1, ry, rz, cz, inverse)

    zero = np.zeros((2,) * n, dtype=complex)
    zero.reshape(-1)[0] = 1
    qs = sq.astype(complex).reshape((2,) * n)
    out = np.zeros((len(thetas), 12))
    for k, th in enumerate(thetas):
        tp, tm = th.copy(), th.copy()
        tp[0] += math.pi / 2
        tm[0] -= math.pi / 2
        psis = [layers(zero, t).reshape(-1) for t in (th, tp, tm)]
        ps = [np.abs(s) ** 2 for s in psis]
        dp = 0.5 * (ps[1] - ps[2])
        p = ps[0]
        for i in range(3):
            Kd = kd(p - q, i)
            out[k, i] = (p - q) @ Kd
            out[k, 6 + i] = 2 * Kd @ dp
        pc = np.maximum(p, 1e-12)
        nz = q > 0
        out[k, 3] = np.sum(q[nz] * (np.log(q[nz]) - np.log(pc[nz])))
        out[k, 9] = np.sum(np.where(p > 1e-12, -q / pc, 0.0) * dp)
        lf = [1 - np.sum(np.abs(layers(qs, t, inverse=True).reshape(-1)) ** 2 * zeros_frac) for t in (th, tp, tm)]
        out[k, 4], out[k, 10] = lf[0], 0.5 * (lf[1] - lf[2])
        gf = [1 - abs(np.vdot(sq, s)) ** 2 for s in psis]
        out[k, 5], out[k, 11] = gf[0], 0.5 * (gf[1] - gf[2])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--L", type=int, default=2)
    ap.add_argument("--thetas", required=True, help=".npy K x P of qd's inits (qcbm.variance_theta)")
    ap.add_argument("--values", default="", help="qd's values_nNN.npy for the same inits")
    ap.add_argument("--impl", choices=["torch", "numpy"], default="torch")
    ap.add_argument("--gram-max-n", type=int, default=13)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions; the minimum is reported")
    a = ap.parse_args()
    thetas = np.load(a.thetas)
    gram = a.n <= a.gram_max_n
    if a.impl == "torch":
        import torch
        torch.set_num_threads(a.threads)
        # warm-up on one init (allocator, kernels), not timed
        torch_study(a.n, a.L, thetas[:1], gram)
        study = torch_study
    else:
        study = numpy_study
    # the minimum over --reps runs (the machine may be shared)
    dt = math.inf
    for _ in range(a.reps):
        t0 = time.perf_counter()
        out = study(a.n, a.L, thetas, gram)
        dt = min(dt, (time.perf_counter() - t0) / len(thetas))
    diff = float("nan")
    if a.values:
        ref = np.load(a.values)
        diff = float(np.max(np.abs(ref[: len(thetas)] - out)))
    print("RESULT impl=%s%s n=%d K=%d seconds_per_init=%.6g max_abs_diff=%.3g"
          % (a.impl, "" if gram else "-kron", a.n, len(thetas), dt, diff))


if __name__ == "__main__":
    main()
