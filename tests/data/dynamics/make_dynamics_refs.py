#!/usr/bin/python3
"""make_dynamics_refs.py — QuTiP reference data for Pauli sums and dynamics
(tests/c/test_dynamics.c, tests/c/test_pauli.c, tests/lua/test_dynamics.lua).

Run from the repository root:  /usr/bin/python3 tests/data/dynamics/make_dynamics_refs.py
(needs python3-qutip and python3-numpy from Debian; QuTiP 4.7.1 made the stored files).
Qubit 0 is the leftmost tensor factor (most significant bit), as in qd.

Operators (the tests build the same ones as qd Pauli sums; keep in sync):
  H3  = 0.7 X0 + 0.4 Z1 - 0.3 Y2 + 0.5 Z0 Z1 + 0.2 X1 X2 + 0.25 Y0 Y2         (3 qubits)
  L3  = sqrt(0.3) Z0, sqrt(0.2) sm1, sqrt(0.1) sm2, sqrt(0.15) Z2             (jumps)
  H2  = 1.0 X0 + 0.6 Z0 Z1 + 0.3 Y1                                          (2 qubits)
  L2  = sqrt(0.25) sm0, sqrt(0.4) Z1, sqrt(0.1) sm1
  sm  = |0><1| = (X + iY)/2 (amplitude damping towards |0>), dephasing: sqrt(g) Z.
  TFIM(n, g) = -sum_i Z_i Z_{i+1} - g sum_i X_i   (open chain)

Files (complex128 unless said):
  rho3_0.npy               initial 8x8 density matrix (random, full rank)
  lindblad3.npy            (4, 8, 8): mesolve(H3, rho3_0, [0, 0.5, 1, 2], L3) at the 4 times
  rho2_0.npy, lindblad2.npy (4, 4, 4): the same for H2, L2 at times [0, 0.3, 1.5, 3]
  tfim4_spectrum.npy       float64 (16,): eigenvalues of TFIM(4, 0.3)
  tfim4_ground.npy         (16,): its ground state, phase fixed (largest |amp| real > 0)
  tfim6_e0.npy             float64 (1,): ground energy of TFIM(6, 1.0)
  h3_spectrum.npy          float64 (8,): eigenvalues of H3
  psi3.npy                 (8,) random state; expm3.npy: exp(-i H3 1.3) psi3
  U3.npy                   (8, 8): exp(-i H3 1.3)
  gibbs3.npy               (8, 8): exp(-0.7 H3) / Z;  gibbs3_logz.npy float64 (1,): ln Z
"""
import os
import numpy as np
import qutip as qt

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261126)

I2, X, Y, Z = qt.qeye(2), qt.sigmax(), qt.sigmay(), qt.sigmaz()
SM = qt.Qobj(np.array([[0, 1], [0, 0]], dtype=complex))   # |0><1|


def op(n, ops):
    """ops: {qubit: 2x2 Qobj}; identity elsewhere; qubit 0 leftmost."""
    return qt.tensor([ops.get(q, I2) for q in range(n)])


def save(name, arr, real=False):
    a = np.asarray(arr, dtype=np.float64 if real else np.complex128)
    np.save(os.path.join(HERE, name), np.ascontiguousarray(a))


def rand_dm(d):
    g = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    r = g @ g.conj().T
    return r / np.trace(r).real


def tfim(n, g):
    H = 0 * op(n, {})
    for i in range(n - 1):
        H += -1.0 * op(n, {i: Z, i + 1: Z})
    for i in range(n):
        H += -g * op(n, {i: X})
    return H


opts = qt.Options(atol=1e-13, rtol=1e-11, nsteps=100000)

# ---- 3-qubit Lindblad
H3 = (0.7 * op(3, {0: X}) + 0.4 * op(3, {1: Z}) - 0.3 * op(3, {2: Y}) + 0.5 * op(3, {0: Z, 1: Z})
      + 0.2 * op(3, {1: X, 2: X}) + 0.25 * op(3, {0: Y, 2: Y}))
L3 = [np.sqrt(0.3) * op(3, {0: Z}), np.sqrt(0.2) * op(3, {1: SM}), np.sqrt(0.1) * op(3, {2: SM}),
      np.sqrt(0.15) * op(3, {2: Z})]
r0 = rand_dm(8)
save("rho3_0.npy", r0)
rho0 = qt.Qobj(r0, dims=[[2, 2, 2], [2, 2, 2]])
res = qt.mesolve(H3, rho0, [0, 0.5, 1, 2], L3, [], options=opts)
save("lindblad3.npy", np.array([s.full() for s in res.states]))

# ---- 2-qubit Lindblad
H2 = 1.0 * op(2, {0: X}) + 0.6 * op(2, {0: Z, 1: Z}) + 0.3 * op(2, {1: Y})
L2 = [np.sqrt(0.25) * op(2, {0: SM}), np.sqrt(0.4) * op(2, {1: Z}), np.sqrt(0.1) * op(2, {1: SM})]
r0 = rand_dm(4)
save("rho2_0.npy", r0)
rho0 = qt.Qobj(r0, dims=[[2, 2], [2, 2]])
res = qt.mesolve(H2, rho0, [0, 0.3, 1.5, 3], L2, [], options=opts)
save("lindblad2.npy", np.array([s.full() for s in res.states]))

# ---- spectra and ground states
T4 = tfim(4, 0.3)
w, v = np.linalg.eigh(T4.full())
save("tfim4_spectrum.npy", w, real=True)
g = v[:, 0]
i = int(np.argmax(np.abs(g) >= np.abs(g).max() * (1 - 1e-12)))
g = g * np.conj(g[i]) / abs(g[i])
save("tfim4_ground.npy", g)
save("tfim6_e0.npy", [tfim(6, 1.0).groundstate()[0]], real=True)
save("h3_spectrum.npy", H3.eigenenergies(), real=True)

# ---- exp(-iHt) and Gibbs
psi = rng.normal(size=8) + 1j * rng.normal(size=8)
psi /= np.linalg.norm(psi)
save("psi3.npy", psi)
U = (-1j * 1.3 * H3).expm()
save("U3.npy", U.full())
save("expm3.npy", (U * qt.Qobj(psi, dims=[[2, 2, 2], [1, 1, 1]])).full().ravel())
G = (-0.7 * H3).expm()
save("gibbs3.npy", (G / G.tr()).full())
save("gibbs3_logz.npy", [np.log(G.tr().real)], real=True)
print("written to", HERE)
