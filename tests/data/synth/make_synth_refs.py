#!/usr/bin/python3
"""make_synth_refs.py — numpy references for tests/lua/test_synth.lua (qd.synth, qd.tokens).

Independent of qd: gate matrices, genQC's token encoding (+v target, -v control, padding
V + 1 after the end; parameters (angle mod 4 pi - 2 pi) / 2 pi) and Schmidt ranks the way
genQC computes them (partial trace, numpy.linalg.matrix_rank of the reduced density matrix).
Qubit q is qd's qubit q: the most significant bit of a basis index (np.kron order).
Files (all float64 / complex128):
  srv_states_n{n}.npy  (K, 2^n) random states (some product, some entangled), srv_n{n}.npy (K, n)
  circ_tokens.npy (B, 3, 12), circ_params.npy (B, 1, 12), circ_unitaries.npy (B, 8, 8)
      random circuits over {h, cx, ccx, swap, rx, ry, rz, cp} (U[b] as a C-order matrix)
  circ_srv.npy (B, 3)  Schmidt ranks of circuit b's output from |000>
  circ_tokens_int32.npy  the same tokens as int32 (genQC's dtype)
  circ_target.npy (8, 8) a random unitary V; circ_infid.npy (B,) 1 - |Tr(V^dag U_b)/8|^2,
  circ_dist.npy (B,) 1/2 ||U_b - V||_F^2
Run: /usr/bin/python3 tests/data/synth/make_synth_refs.py (writes next to itself)."""
import os
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261207)

I2 = np.eye(2)
H = np.array([[1, 1], [1, -1]]) / np.sqrt(2)
X = np.array([[0, 1], [1, 0]])
Z = np.diag([1.0, -1.0])


def rx(a): return np.array([[np.cos(a / 2), -1j * np.sin(a / 2)], [-1j * np.sin(a / 2), np.cos(a / 2)]])
def ry(a): return np.array([[np.cos(a / 2), -np.sin(a / 2)], [np.sin(a / 2), np.cos(a / 2)]])
def rz(a): return np.diag([np.exp(-0.5j * a), np.exp(0.5j * a)])


def op_on(n, m, qs):
    """full 2^n matrix of the k-qubit matrix m on qubits qs (qs[0] = m's most significant bit)"""
    d, k = 2 ** n, len(qs)
    U = np.zeros((d, d), dtype=complex)
    for col in range(d):
        bits = [(col >> (n - 1 - q)) & 1 for q in range(n)]
        loc = 0
        for q in qs:
            loc = 2 * loc + bits[q]
        for out in range(2 ** k):
            amp = m[out, loc]
            if amp == 0:
                continue
            b2 = list(bits)
            for i, q in enumerate(qs):
                b2[q] = (out >> (k - 1 - i)) & 1
            row = 0
            for b in b2:
                row = 2 * row + b
            U[row, col] += amp
    return U


def controlled(m, nc):
    k = nc + int(np.log2(m.shape[0]))
    U = np.eye(2 ** k, dtype=complex)
    s = m.shape[0]
    U[-s:, -s:] = m
    return U


SWAP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
# name: (controls, targets, params, matrix builder)
GATES = {
    "h": (0, 1, 0, lambda p: H), "cx": (1, 1, 0, lambda p: controlled(X, 1)),
    "ccx": (2, 1, 0, lambda p: controlled(X, 2)), "swap": (0, 2, 0, lambda p: SWAP),
    "rx": (0, 1, 1, lambda p: rx(p[0])), "ry": (0, 1, 1, lambda p: ry(p[0])),
    "rz": (0, 1, 1, lambda p: rz(p[0])),
    "cp": (1, 1, 1, lambda p: np.diag([1, 1, 1, np.exp(1j * p[0])])),
}
VOCAB = ["h", "cx", "ccx", "swap", "rx", "ry", "rz", "cp"]


def srv_of(psi, n):
    rho = np.outer(psi, psi.conj()).reshape([2] * (2 * n))
    ranks = []
    for q in range(n):
        r = rho
        # trace out every qubit but q
        keep = q
        m = r
        cur = n
        idx = list(range(n))
        for t in reversed(range(n)):
            if t == keep:
                continue
            pos = idx.index(t)
            m = np.trace(m, axis1=pos, axis2=pos + cur)
            idx.pop(pos)
            cur -= 1
        ranks.append(np.linalg.matrix_rank(m.reshape(2, 2), hermitian=True, tol=1e-8))
    return ranks


def random_states(n, K):
    out = []
    for k in range(K):
        if k % 3 == 0:   # product state
            psi = np.array([1.0 + 0j])
            for _ in range(n):
                v = rng.normal(size=2) + 1j * rng.normal(size=2)
                psi = np.kron(psi, v / np.linalg.norm(v))
        elif k % 3 == 1:  # one qubit pair entangled, rest product
            a = rng.normal(size=4) + 1j * rng.normal(size=4)
            psi = a / np.linalg.norm(a)
            for _ in range(n - 2):
                v = rng.normal(size=2) + 1j * rng.normal(size=2)
                psi = np.kron(psi, v / np.linalg.norm(v))
        else:
            v = rng.normal(size=2 ** n) + 1j * rng.normal(size=2 ** n)
            psi = v / np.linalg.norm(v)
        out.append(psi)
    return np.array(out)


for n in (2, 3, 4, 5):
    S = random_states(n, 12)
    np.save(os.path.join(here, f"srv_states_n{n}.npy"), S)
    np.save(os.path.join(here, f"srv_n{n}.npy"), np.array([srv_of(s, n) for s in S], dtype=float))

n, G, B = 3, 12, 40
V = len(VOCAB)
toks = np.zeros((B, n, G))
pars = np.zeros((B, 1, G))
Us = np.zeros((B, 2 ** n, 2 ** n), dtype=complex)
srvs = np.zeros((B, n))
for b in range(B):
    ng = rng.integers(1, G + 1)
    U = np.eye(2 ** n, dtype=complex)
    for t in range(ng):
        v = rng.integers(1, V + 1)
        name = VOCAB[v - 1]
        nc, nt, npar, mk = GATES[name]
        qs = list(rng.choice(n, nc + nt, replace=False))
        ctrl, tgt = sorted(qs[:nc]), sorted(qs[nc:])
        p = list(rng.uniform(-10, 20, size=npar))
        for q in ctrl:
            toks[b, q, t] = -v
        for q in tgt:
            toks[b, q, t] = v
        if npar:
            pars[b, 0, t] = (p[0] % (4 * np.pi) - 2 * np.pi) / (2 * np.pi)
            p = [(pars[b, 0, t] + 1) * 2 * np.pi]   # the angle the tokens carry
        U = op_on(n, mk(p), ctrl + tgt) @ U
    toks[b, :, ng:] = V + 1
    Us[b] = U
    psi = U[:, 0]
    srvs[b] = srv_of(psi, n)
Vt = np.linalg.qr(rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8)))[0]
infid = np.array([1 - abs(np.trace(Vt.conj().T @ U) / 8) ** 2 for U in Us])
dist = np.array([0.5 * np.linalg.norm(U - Vt) ** 2 for U in Us])
for name, arr in [("circ_tokens", toks), ("circ_params", pars), ("circ_unitaries", Us),
                  ("circ_srv", srvs), ("circ_target", Vt), ("circ_infid", infid), ("circ_dist", dist)]:
    np.save(os.path.join(here, name + ".npy"), arr)
# genQC's own dtype: int32 tokens (torch.int32)
np.save(os.path.join(here, "circ_tokens_int32.npy"), toks.astype(np.int32))
print("wrote", here)
