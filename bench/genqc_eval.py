#!/usr/bin/python3
"""bench/genqc_eval.py — the genQC evaluation (validity, Schmidt-rank vector, gate count,
uniqueness) of a token file in plain numpy, the way genQC does it per circuit (decode the
tensor, simulate the state, partial trace + numpy.linalg.matrix_rank per qubit), for
bench/genqc_eval.sh. Same rules as qd.synth (qd_synth.h): +v target, -v control, V + 1
padding, one gate per column; qubit 0 the most significant bit.

  genqc_eval.py TOKENS.npy V [COUNT]   -> prints "RESULT seconds count valid srv_checksum unique"
Only the first COUNT circuits are evaluated (default all); the vocabulary is {h, cx} (V = 2).
"""
import sys
import time
import numpy as np

H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)


def decode(tok, V):
    n, G = tok.shape
    ops, padded = [], False
    for t in range(G):
        col = tok[:, t]
        nz = col[col != 0]
        if nz.size == 0:
            if padded:
                return None
            continue
        if np.any(col == V + 1):
            if np.all(col == V + 1):
                padded = True
                continue
            return None
        if padded or np.any(col != np.floor(col)) or np.any(np.abs(nz) > V):
            return None
        g = np.unique(np.abs(nz))
        if g.size != 1:
            return None
        g = int(g[0])
        ctrl = list(np.nonzero(col == -g)[0])
        tgt = list(np.nonzero(col == g)[0])
        want = {1: (0, 1), 2: (1, 1)}[g]
        if (len(ctrl), len(tgt)) != want:
            return None
        ops.append((g, ctrl, tgt))
    return ops


def simulate(ops, n):
    psi = np.zeros([2] * n, dtype=complex)
    psi[(0,) * n] = 1
    for g, ctrl, tgt in ops:
        if g == 1:
            psi = np.moveaxis(np.tensordot(H, psi, axes=([1], [tgt[0]])), 0, tgt[0])
        else:
            c, t = ctrl[0], tgt[0]
            idx = [slice(None)] * n
            idx[c] = 1
            sub = psi[tuple(idx)].copy()
            tt = t if t < c else t - 1
            psi[tuple(idx)] = np.flip(sub, axis=tt)
    return psi


def srv(psi, n):
    ranks = []
    for q in range(n):
        m = np.moveaxis(psi, q, 0).reshape(2, -1)
        rho = m @ m.conj().T   # reduced density matrix of qubit q
        ranks.append(int(np.linalg.matrix_rank(rho, hermitian=True, tol=1e-8)))
    return ranks


def main():
    toks = np.load(sys.argv[1])
    V = int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else toks.shape[0]
    n = toks.shape[1]
    t0 = time.perf_counter()
    valid, checksum, keys = 0, 0, set()
    for b in range(count):
        ops = decode(toks[b], V)
        if ops is None:
            continue
        valid += 1
        r = srv(simulate(ops, n), n)
        checksum += sum(r[q] * (q + 1) for q in range(n))
        keys.add(tuple((g, tuple(c), tuple(t)) for g, c, t in ops))
    secs = time.perf_counter() - t0
    print(f"RESULT {secs:.6f} {count} {valid} {checksum} {len(keys)}")


main()
