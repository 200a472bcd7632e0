#!/usr/bin/python3
"""make_channel_refs.py — QuTiP reference data for qd.Channel (tests/lua/test_channel.lua).

Run from the repository root:  /usr/bin/python3 tests/data/qutip/make_channel_refs.py
(needs python3-qutip and python3-numpy from Debian; QuTiP 4.7.1 made the stored files).

For every channel below it writes, as complex128 .npy:
  channel_<name>_super.npy  superoperator, QuTiP's convention: vec stacks columns,
                            S = sum_i conj(K_i) (x) K_i  (qutip.kraus_to_super)
  channel_<name>_choi.npy   Choi matrix J = sum_ij |i><j| (x) E(|i><j|) (qutip.to_choi)
  channel_<name>_out.npy    E applied to the 3-qubit state channel_rho3.npy on the targets
                            listed in TARGETS (first target = most significant bit of the
                            channel's index), computed by QuTiP: the Kraus operators are
                            embedded with qutip.expand_operator, turned into the full
                            64 x 64 superoperator and applied to operator_to_vector(rho).
Inputs the Lua test needs: channel_rho3.npy (random 3-qubit density matrix),
channel_kraus2_ops.npy (the random 2-qubit Kraus list, 3 operators stacked vertically as a
12 x 4 matrix) and channel_rand1_super.npy (a random 1-qubit channel, given to
qd.channel.superop by the test). Amplitude damping and generalized amplitude damping are also checked
here against qutip.mesolve (the Lindblad evolution they come from), which fixes the
parameterisation (Nielsen & Chuang 8.3.5): gamma = 1 - exp(-G (2N+1) t),
p = (N+1)/(2N+1).
"""
import os
import numpy as np
import qutip as qt
from qutip.qip.operations import expand_operator

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261125)

I2 = np.eye(2, dtype=complex)
X = np.array([[0, 1], [1, 0]], dtype=complex)
Y = np.array([[0, -1j], [1j, 0]], dtype=complex)
Z = np.array([[1, 0], [0, -1]], dtype=complex)
PAULI = [I2, X, Y, Z]


def save(name, arr):
    np.save(os.path.join(HERE, name), np.ascontiguousarray(np.asarray(arr, dtype=np.complex128)))


def rand_dm(d):
    g = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    r = g @ g.conj().T
    return r / np.trace(r).real


def pauli_strings(k):
    """4^k Pauli strings, index in base 4 with qubit 0 the most significant digit."""
    out = []
    for j in range(4 ** k):
        m = np.eye(1, dtype=complex)
        for q in range(k):
            dig = (j >> (2 * (k - 1 - q))) & 3
            m = np.kron(m, PAULI[dig])
        out.append(m)
    return out


def qobj(m):
    k = int(round(np.log2(m.shape[0])))
    return qt.Qobj(m, dims=[[2] * k, [2] * k])


def apply_full(kraus, rho, targets):
    """QuTiP: embed each Kraus operator, build the full superoperator, apply it."""
    n = 3
    rq = qt.Qobj(rho, dims=[[2] * n, [2] * n])
    ks = [expand_operator(qobj(K), n, targets) for K in kraus]
    S = qt.kraus_to_super(ks)
    out = qt.vector_to_operator(S * qt.operator_to_vector(rq)).full()
    direct = sum(K.full() @ rho @ K.full().conj().T for K in ks)
    assert np.abs(out - direct).max() < 1e-12
    return out


rho3 = rand_dm(8)
save("channel_rho3.npy", rho3)

# ---------------------------------------------------------------- the channels
p_dep, p_dph, g_ad, g_gad, p_gad = 0.3, 0.2, 0.35, 0.35, 0.8
px, py, pz = 0.1, 0.2, 0.3
theta = 0.7
U = np.array([[np.cos(theta / 2), -1j * np.sin(theta / 2) * np.exp(-0.4j)],
              [-1j * np.sin(theta / 2) * np.exp(0.4j), np.cos(theta / 2)]])   # a unitary

# random 2-qubit channel with 3 Kraus operators: blocks of a random 12 x 4 isometry
G = rng.normal(size=(12, 4)) + 1j * rng.normal(size=(12, 4))
Q, R = np.linalg.qr(G)
Q = Q * (np.diag(R) / np.abs(np.diag(R)))
kraus2 = [Q[4 * i:4 * i + 4, :] for i in range(3)]
save("channel_kraus2_ops.npy", Q)

# random 1-qubit channel (4 Kraus operators) given to qd.channel.superop as a matrix
G1 = rng.normal(size=(8, 2)) + 1j * rng.normal(size=(8, 2))
Q1, R1 = np.linalg.qr(G1)
rand1 = [Q1[2 * i:2 * i + 2, :] for i in range(4)]

def gad_kraus(g, p):
    return [np.sqrt(p) * np.array([[1, 0], [0, np.sqrt(1 - g)]]),
            np.sqrt(p) * np.array([[0, np.sqrt(g)], [0, 0]]),
            np.sqrt(1 - p) * np.array([[np.sqrt(1 - g), 0], [0, 1]]),
            np.sqrt(1 - p) * np.array([[0, 0], [np.sqrt(g), 0]])]

ad = [np.array([[1, 0], [0, np.sqrt(1 - g_ad)]]), np.array([[0, np.sqrt(g_ad)], [0, 0]])]
dph = [np.sqrt(1 - p_dph) * I2, np.sqrt(p_dph) * Z]
pauli = [np.sqrt(1 - px - py - pz) * I2, np.sqrt(px) * X, np.sqrt(py) * Y, np.sqrt(pz) * Z]

CH = {
    "depolarizing": ([np.sqrt(1 - p_dep) * I2] + [np.sqrt(p_dep / 3) * P for P in (X, Y, Z)], [1]),
    "dephasing": (dph, [1]),
    "amplitude_damping": (ad, [1]),
    "gad": (gad_kraus(g_gad, p_gad), [2]),
    "pauli": (pauli, [0]),
    "reset": ([np.array([[1, 0], [0, 0]]), np.array([[0, 1], [0, 0]])], [1]),
    "unitary": ([U], [2]),
    # 2-qubit Pauli-form depolarizing: (1-p) rho + p/15 sum_{P != I} P rho P
    "depolarizing2": ([np.sqrt(1 - 0.4) * P if j == 0 else np.sqrt(0.4 / 15) * P
                       for j, P in enumerate(pauli_strings(2))], [2, 0]),
    # (1-lambda) rho + lambda I/4 (x) Tr rho on 2 qubits
    "global2": ([np.sqrt(1 - 0.6 + 0.6 / 16) * P if j == 0 else np.sqrt(0.6 / 16) * P
                 for j, P in enumerate(pauli_strings(2))], [0, 2]),
    # the whole 3-qubit register: (1-lambda) rho + lambda I/8
    "global3": ([np.sqrt(1 - 0.45 + 0.45 / 64) * P if j == 0 else np.sqrt(0.45 / 64) * P
                 for j, P in enumerate(pauli_strings(3))], [0, 1, 2]),
    "kraus2": (kraus2, [1, 0]),
    "rand1": (rand1, [0]),
}

TARGETS = {}
for name, (kraus, targets) in CH.items():
    tot = sum(K.conj().T @ K for K in kraus)
    assert np.abs(tot - np.eye(tot.shape[0])).max() < 1e-12, name
    S = qt.kraus_to_super([qobj(K) for K in kraus])
    J = qt.to_choi(S)
    if name != "global3":   # 64 x 64: only its output is stored
        save("channel_%s_super.npy" % name, S.full())
        save("channel_%s_choi.npy" % name, J.full())
    save("channel_%s_out.npy" % name, apply_full(kraus, rho3, targets))
    TARGETS[name] = targets

# global3 must be (1-lambda) rho + lambda I/8 exactly
out = np.load(os.path.join(HERE, "channel_global3_out.npy"))
assert np.abs(out - (0.55 * rho3 + 0.45 * np.eye(8) / 8)).max() < 1e-12

# composition amplitude_damping o dephasing (dephasing first) and tensor ad (x) pauli
S_ad = qt.kraus_to_super([qobj(K) for K in ad])
S_dph = qt.kraus_to_super([qobj(K) for K in dph])
S_pauli = qt.kraus_to_super([qobj(K) for K in pauli])
comp = S_ad * S_dph
save("channel_compose_super.npy", comp.full())
save("channel_compose_choi.npy", qt.to_choi(comp).full())
tens = qt.super_tensor(S_ad, S_pauli)
save("channel_tensor_super.npy", tens.full())
save("channel_tensor_choi.npy", qt.to_choi(tens).full())
# and the tensor product applied on targets (2, 1) of rho3 through QuTiP's Kraus form
tk = qt.to_kraus(tens)
rq = qt.Qobj(rho3, dims=[[2] * 3, [2] * 3])
Sfull = qt.kraus_to_super([expand_operator(K, 3, [2, 1]) for K in tk])
save("channel_tensor_out.npy", qt.vector_to_operator(Sfull * qt.operator_to_vector(rq)).full())

# ---------------------------------------------------------------- Lindblad cross-checks
rho1 = rand_dm(2)
r1 = qt.Qobj(rho1)
sm = qt.destroy(2)          # |0><1|: decay from |1> to |0>
G_rate, t = 0.8, 0.6
res = qt.mesolve(qt.qzero(2), r1, [0, t], c_ops=[np.sqrt(G_rate) * sm],
                 options=qt.Options(atol=1e-12, rtol=1e-10))
g = 1 - np.exp(-G_rate * t)
ks = [np.array([[1, 0], [0, np.sqrt(1 - g)]]), np.array([[0, np.sqrt(g)], [0, 0]])]
assert np.abs(res.states[-1].full() - sum(K @ rho1 @ K.conj().T for K in ks)).max() < 1e-8
Nth = 0.4
res = qt.mesolve(qt.qzero(2), r1, [0, t],
                 c_ops=[np.sqrt(G_rate * (Nth + 1)) * sm, np.sqrt(G_rate * Nth) * sm.dag()],
                 options=qt.Options(atol=1e-12, rtol=1e-10))
g = 1 - np.exp(-G_rate * (2 * Nth + 1) * t)
p = (Nth + 1) / (2 * Nth + 1)
assert np.abs(res.states[-1].full() - sum(K @ rho1 @ K.conj().T for K in gad_kraus(g, p))).max() < 1e-8

print("targets:", TARGETS)
print("wrote", len([f for f in os.listdir(HERE) if f.startswith("channel_")]), "files to", HERE)
