#!/usr/bin/python3
"""reverse_feedback_multi.py — the numpy side of bench/reverse_feedback_multi.lua: n qubits,
each monitored in Z at rate g (Rouchon scheme M psi / |M psi| with the n commuting Z_q: M is
diagonal, M = I - sum_q g/2 dt + sum_q sqrt(g) Z_q dy_q + sum_{q,l} g/2 Z_q Z_l (dy_q dy_l -
delta_ql dt), dy_q = 2 sqrt(g) <Z_q> dt + dW_q), and in reverse the feedback Hamiltonian
H_fb = sum_q c_Xq X_q + c_Yq Y_q with c_Xq = 2 g kappa_q y_q, c_Yq = -2 g kappa_q x_q,
kappa_q = -(artanh z_q - u0) / (4 g t) - z_q, added as -i H_fb dt to M psi. Vectorised over
the N members (arrays of shape (2^n, N), amplitude-major so that every numpy operation runs
along N; one Python loop over the steps; qubit 0 is the most
significant bit of the amplitude index, as in qd).
  python3 bench/reverse_feedback_multi.py [n=2] [N=4000] [steps=500]"""
import os, sys, time
# glibc hands freed blocks of >= 128 KiB (these (2^n, N) complex temporaries) back to the
# kernel, and faulting the pages in again for every new temporary took most of the time
# (n = 1 reverse: 1.15 s against 0.11 s): keep them in the process (the fastest numpy)
if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
    os.environ.update(MALLOC_MMAP_THRESHOLD_="67108864", MALLOC_TRIM_THRESHOLD_="268435456")
    os.execv(sys.executable, [sys.executable] + sys.argv)
import numpy as np

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2
N = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 500
g, tau, z0 = 1.0, 0.5, 0.5
u0 = np.arctanh(z0)
dt = tau / steps
d = 1 << n
rng = np.random.default_rng(1)
idx = np.arange(d)
bit = [1 << (n - 1 - q) for q in range(n)]
sgn = np.array([1.0 - 2.0 * ((idx & b) != 0) for b in bit])   # (n, d): Z_q eigenvalues
flip = [idx ^ b for b in bit]                                 # X_q, Y_q permutation

def data():
    psi = np.ones((1, N), dtype=complex)
    th = np.arccos(z0)
    for q in range(n):
        ph = rng.uniform(0, 2 * np.pi, N)
        one = np.stack([np.full(N, np.cos(th / 2), dtype=complex), np.exp(1j * ph) * np.sin(th / 2)])
        psi = (psi[:, None, :] * one[None, :, :]).reshape(-1, N)
    return psi                                                 # (d, N): amplitude-major

def expect_z(psi):
    return sgn @ (np.abs(psi) ** 2)                            # (n, N)

def step(psi, cx=None, cy=None):
    z = expect_z(psi)
    dy = 2 * np.sqrt(g) * z * dt + np.sqrt(dt) * rng.standard_normal((n, N))
    s = sgn[0][:, None] * dy[0]                                # sum_q dy_q Z_q(b): (d, N), C order
    for q in range(1, n):
        s += sgn[q][:, None] * dy[q]
    m = 1 - 0.5 * n * g * dt + np.sqrt(g) * s + 0.5 * g * (s ** 2 - n * dt)
    nv = m * psi
    if cx is not None:
        for q in range(n):
            # X_q psi [b] = psi[b ^ bit], Y_q psi [b] = -i Z_q(b) psi[b ^ bit]
            pf = psi[flip[q]]
            nv -= 1j * dt * (cx[q] * pf - 1j * cy[q] * (sgn[q][:, None] * pf))
    nrm = np.sqrt(np.sum(np.abs(nv) ** 2, axis=0))
    psi[:] = nv / nrm

def feedback(psi, t):
    z = np.clip(expect_z(psi), -1 + 1e-15, 1 - 1e-15)
    cx, cy = np.empty((n, N)), np.empty((n, N))
    for q in range(n):
        c = np.conj(psi) * psi[flip[q]]                          # conj(psi_b) psi_{b^bit}
        x = np.sum(c.real, axis=0)
        y = np.sum(c.imag * sgn[q][:, None], axis=0)             # Re(-i Z(b) c) = Z(b) Im c
        k = -(np.arctanh(z[q]) - u0) / (4 * g * t) - z[q]
        cx[q], cy[q] = 2 * g * k * y, -2 * g * k * x
    return cx, cy

best_f = best_r = float("inf")
for rep in range(3):
    psi = data()
    t0 = time.perf_counter()
    for s_ in range(steps):
        step(psi)
    t1 = time.perf_counter()
    for s_ in range(steps - 1):
        t = tau - s_ * dt
        cx, cy = feedback(psi, t)
        step(psi, cx, cy)
    t2 = time.perf_counter()
    best_f, best_r = min(best_f, t1 - t0), min(best_r, t2 - t1)
    zmean = np.mean(expect_z(psi)[0])
print("numpy %s: n = %d, N = %d, %d steps: forward %.4f s, reverse with feedback %.4f s; mean z_0 after reverse %.4f (data %.1f)"
      % (np.__version__, n, N, steps, best_f, best_r, zmean, z0))
