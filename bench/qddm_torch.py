#!/usr/bin/python3
"""qddm_torch.py — one training epoch of QDDM's Q-Dense (arXiv 2401.07049) written
independently in PyTorch, as the reference stack runs it (PennyLane's default.qubit.torch
with diff_method="backprop": a complex128 state vector, one tensordot per gate, autograd),
for bench/qddm_bench.sh. PennyLane itself is not installable here.

    qddm_torch.py DIR [--threads T] [--reps R] [--check] [--tag TAG] [--method gates|fused]

Reads what bench/qddm_bench.lua wrote to DIR (w0.npy, xin_B.npy, tgt_B.npy for B = 1..8, and
qd's grad0.npy, losses.npy, w1.npy, results.json, qd_TAG.json) and
  * with --check: the loss and gradient on batch 1 at w0 against qd's, then one epoch of
    torch.optim.Adam (lr 1e-3) over the 8 batches: the batch losses and the final weights
    against qd's (max abs differences; PASS if all <= 1e-10);
  * with --reps R > 0: R x one epoch (fresh weights and optimiser), the median, and the ratio
    torch / qd against DIR/qd_TAG.json.

The model (written from the reference's description, not from qd's code):
  input     x / |x| (64 pixels, AmplitudeEmbedding with normalize=True) on 6 wires, wire 0
            the most significant bit of the basis index
  layers    StronglyEntanglingLayers(pi tanh(w)), w of shape (55, 6, 3): per layer l a
            Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi) on every wire i (angles
            w[l, i, :]), then CNOT(i, (i + r) mod 6), r = (l mod 5) + 1, for i = 0..5
  read-out  y = clamp(64 |psi|^2, 0, 1); noise goal: pred = (y - 0.5) 0.1; loss =
            mean((pred - target)^2) (torch.nn.MSELoss)
--method gates (default) applies the gates one at a time as the reference stack does;
--method fused computes the same values with one 64 x 64 matmul and one gather per layer
(a faster torch program than the reference's, for an honest second figure).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

N_WIRES = 6


def rot_matrix(phi, theta, omega):
    """PennyLane's Rot as a 2 x 2 complex128 tensor built from scalar tensors (autograd)"""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    e = lambda a: torch.exp(1j * a)
    return torch.stack([torch.stack([e(-(phi + omega) / 2) * c, -e((phi - omega) / 2) * s]),
                        torch.stack([e(-(phi - omega) / 2) * s, e((phi + omega) / 2) * c])])


def apply_1q(state, m, wire):
    """state (B, 2, ..., 2): m on wire (axis 1 + wire), as default.qubit's tensordot"""
    st = torch.tensordot(m, state, dims=([1], [1 + wire]))   # new axis 0 = wire
    return torch.movedim(st, 0, 1 + wire)


def apply_cnot(state, ctrl, tgt):
    """CNOT as a gate tensor (2,2,2,2) contracted on (ctrl, tgt)"""
    cn = torch.zeros(4, 4, dtype=torch.complex128)
    cn[0, 0] = cn[1, 1] = cn[2, 3] = cn[3, 2] = 1
    cn = cn.reshape(2, 2, 2, 2)
    st = torch.tensordot(cn, state, dims=([2, 3], [1 + ctrl, 1 + tgt]))
    return torch.movedim(st, (0, 1), (1 + ctrl, 1 + tgt))


def model_loss(w, xin, tgt):
    """w (55, 6, 3) leaf; xin, tgt (B, 64) float64 -> MSE loss (noise goal)"""
    B = xin.shape[0]
    x = xin / torch.linalg.norm(xin, dim=1, keepdim=True)
    state = x.to(torch.complex128).reshape((B,) + (2,) * N_WIRES)
    ang = math.pi * torch.tanh(w)
    L = w.shape[0]
    for l in range(L):
        for i in range(N_WIRES):
            state = apply_1q(state, rot_matrix(ang[l, i, 0], ang[l, i, 1], ang[l, i, 2]), i)
        r = (l % (N_WIRES - 1)) + 1
        for i in range(N_WIRES):
            state = apply_cnot(state, i, (i + r) % N_WIRES)
    p = (state.real ** 2 + state.imag ** 2).reshape(B, 64)
    y = torch.clamp(64 * p, 0, 1)
    pred = (y - 0.5) * 0.1
    return torch.mean((pred - tgt) ** 2)


def cnot_ring_perm(r):
    """the basis permutation of CNOT(i, (i + r) mod 6), i = 0..5 applied in order"""
    perm = np.arange(64)
    for i in range(N_WIRES):
        c, t = i, (i + r) % N_WIRES
        bc, bt = 1 << (N_WIRES - 1 - c), 1 << (N_WIRES - 1 - t)
        new = perm.copy()
        for k in range(64):
            # new state[k] = old state[k ^ bt if control set]
            new[k] = perm[k ^ bt] if k & bc else perm[k]
        perm = new
    return torch.tensor(perm)


PERMS = [cnot_ring_perm((l % (N_WIRES - 1)) + 1) for l in range(N_WIRES - 1)]


def model_loss_fused(w, xin, tgt):
    """the same values, computed layer-wise: the 6 Rot of a layer as one 64 x 64 Kronecker
    product (a matmul over the batch), the CNOT ring as one gather (a faster torch program
    than the reference's gate-by-gate one)"""
    B = xin.shape[0]
    x = xin / torch.linalg.norm(xin, dim=1, keepdim=True)
    state = x.to(torch.complex128)                       # (B, 64), rows = members
    ang = math.pi * torch.tanh(w)
    for l in range(w.shape[0]):
        U = rot_matrix(ang[l, 0, 0], ang[l, 0, 1], ang[l, 0, 2])
        for i in range(1, N_WIRES):
            U = torch.kron(U, rot_matrix(ang[l, i, 0], ang[l, i, 1], ang[l, i, 2]))
        state = state @ U.T
        state = state[:, PERMS[l % (N_WIRES - 1)]]
    p = state.real ** 2 + state.imag ** 2
    y = torch.clamp(64 * p, 0, 1)
    return torch.mean(((y - 0.5) * 0.1 - tgt) ** 2)


def load(d):
    w0 = np.load(os.path.join(d, "w0.npy")).reshape(55, N_WIRES, 3)
    batches = []
    for b in range(1, 9):
        xin = np.load(os.path.join(d, "xin_%d.npy" % b)).T.copy()   # 64 x 100 -> 100 x 64
        tgt = np.load(os.path.join(d, "tgt_%d.npy" % b)).T.copy()
        batches.append((torch.tensor(xin), torch.tensor(tgt)))
    return w0, batches


def epoch(w0, batches, lr=1e-3, f=model_loss):
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    losses = []
    for xin, tgt in batches:
        opt.zero_grad()
        loss = f(w, xin, tgt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return w.detach().numpy().reshape(-1), np.array(losses)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--tag", default="t1")
    ap.add_argument("--method", default="gates", choices=["gates", "fused"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w0, batches = load(a.dir)
    f = model_loss if a.method == "gates" else model_loss_fused
    ok = True
    if a.check:
        res = json.load(open(os.path.join(a.dir, "results.json")))
        w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
        loss = f(w, *batches[0])
        loss.backward()
        g = w.grad.numpy().reshape(-1)
        dl = abs(loss.item() - res["loss0"])
        dg = np.max(np.abs(g - np.load(os.path.join(a.dir, "grad0.npy"))))
        w1, losses = epoch(w0, batches, res["lr"], f)
        dls = np.max(np.abs(losses - np.load(os.path.join(a.dir, "losses.npy"))))
        dw = np.max(np.abs(w1 - np.load(os.path.join(a.dir, "w1.npy"))))
        worst = max(dl, dg, dls, dw)
        ok = worst <= 1e-10
        print("   torch (%s) vs qd: loss %.2e, gradient %.2e (max |g| %.2e), epoch losses %.2e, weights after "
              "the epoch %.2e: %s" % (a.method, dl, dg, np.max(np.abs(g)), dls, dw, "PASS" if ok else "FAIL"))
    if a.reps > 0:
        epoch(w0, batches, 1e-3, f)   # warm-up
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            epoch(w0, batches, 1e-3, f)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        qdf = os.path.join(a.dir, "qd_%s.json" % a.tag)
        q = json.load(open(qdf))["epoch_seconds"] if os.path.exists(qdf) else None
        print("   torch %s (%d thread%s): one epoch %.3f s (median of %d)%s" % (
            a.method, a.threads, "s" if a.threads > 1 else "", med, a.reps,
            (", torch / qd = %.1fx" % (med / q)) if q else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
