#!/usr/bin/python3
"""reverse_feedback.py — the numpy side of bench/reverse_feedback.lua: the same one-qubit
forward SSE (Z at rate g, Rouchon scheme M psi / |M psi|, M = I - g/2 A^2 dt + sqrt(g) A dy
+ g/2 A^2 (dy^2 - dt), dy = 2 sqrt(g) <A> dt + dW) and the reverse run with the feedback
Hamiltonian H_fb = 2 g kappa (y X - x Y), kappa = -(u - u0)/(4 g t) - tanh u, added as
-i H_fb dt to M; vectorised over the N members (numpy arrays of shape (N, 2)), one Python
loop over the steps. QuTiP's ssesolve takes a Hamiltonian that depends on t, not on the
state, so the state-dependent feedback is written in numpy (the docs allow either).
Also timed: the same reverse run trajectory by trajectory (a Python loop over the members
inside the loop over steps, 2-vectors in numpy), the way QuTiP integrates trajectories —
QuTiP 4.7's ssesolve itself cannot feed the state back into H (its coefficient functions
get t and fixed args; the "psi=vec" dynamic argument of mesolve is not passed), so this
loop stands in for it; it runs on N_traj = min(N, 200) members and is reported per member
and step.
  python3 bench/reverse_feedback.py [N=4000] [steps=500]"""
import sys, time
import numpy as np

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 500
g, tau, z0 = 1.0, 0.5, 0.5
u0 = np.arctanh(z0)
dt = tau / steps
rng = np.random.default_rng(1)

def data():
    th, ph = np.arccos(z0), rng.uniform(0, 2 * np.pi, N)
    return np.stack([np.full(N, np.cos(th / 2), dtype=complex), np.exp(1j * ph) * np.sin(th / 2)], axis=1)

def step(psi, cx=None, cy=None):
    a, b = psi[:, 0], psi[:, 1]
    z = np.abs(a) ** 2 - np.abs(b) ** 2
    dy = 2 * np.sqrt(g) * z * dt + np.sqrt(dt) * rng.standard_normal(N)
    # M = I - g/2 dt + sqrt(g) Z dy + g/2 (dy^2 - dt)  (Z^2 = I), diagonal
    d0 = 1 - 0.5 * g * dt + np.sqrt(g) * dy + 0.5 * g * (dy ** 2 - dt)
    d1 = 1 - 0.5 * g * dt - np.sqrt(g) * dy + 0.5 * g * (dy ** 2 - dt)
    na, nb = d0 * a, d1 * b
    if cx is not None:
        # -i dt (cx X + cy Y) psi: X psi = (b, a), Y psi = (-i b, i a)
        na = na - 1j * dt * (cx * b - 1j * cy * b)
        nb = nb - 1j * dt * (cx * a + 1j * cy * a)
    nrm = np.sqrt(np.abs(na) ** 2 + np.abs(nb) ** 2)
    psi[:, 0], psi[:, 1] = na / nrm, nb / nrm

def feedback(psi, t):
    a, b = psi[:, 0], psi[:, 1]
    p0, p1 = np.maximum(np.abs(a) ** 2, 1e-300), np.maximum(np.abs(b) ** 2, 1e-300)
    u = 0.5 * np.log(p0 / p1)
    x = 2 * np.real(np.conj(a) * b)
    y = 2 * np.imag(np.conj(a) * b)
    k = -(u - u0) / (4 * g * t) - np.tanh(u)
    return 2 * g * k * y, -2 * g * k * x

best_f = best_r = float("inf")
for rep in range(3):
    psi = data()
    t0 = time.perf_counter()
    for s in range(steps):
        step(psi)
    t1 = time.perf_counter()
    for s in range(steps - 1):
        t = tau - s * dt
        cx, cy = feedback(psi, t)
        step(psi, cx, cy)
    t2 = time.perf_counter()
    best_f, best_r = min(best_f, t1 - t0), min(best_r, t2 - t1)
    zmean = np.mean(np.abs(psi[:, 0]) ** 2 - np.abs(psi[:, 1]) ** 2)
print("numpy %s: N = %d, %d steps: forward %.4f s, reverse with feedback %.4f s; mean z after reverse %.4f (data %.1f)"
      % (np.__version__, N, steps, best_f, best_r, zmean, z0))

# trajectory by trajectory: one member at a time, the same step and feedback on 2-vectors
Z = np.array([1.0, -1.0])
def traj_reverse(psi):
    for s in range(steps - 1):
        t = tau - s * dt
        a, b = psi[0], psi[1]
        p0, p1 = max(abs(a) ** 2, 1e-300), max(abs(b) ** 2, 1e-300)
        u = 0.5 * np.log(p0 / p1)
        x, y = 2 * (np.conj(a) * b).real, 2 * (np.conj(a) * b).imag
        k = -(u - u0) / (4 * g * t) - np.tanh(u)
        cx, cy = 2 * g * k * y, -2 * g * k * x
        z = p0 - p1
        dy = 2 * np.sqrt(g) * z * dt + np.sqrt(dt) * rng.standard_normal()
        d = 1 - 0.5 * g * dt + np.sqrt(g) * Z * dy + 0.5 * g * (dy ** 2 - dt)
        new = d * psi - 1j * dt * np.array([(cx - 1j * cy) * b, (cx + 1j * cy) * a])
        psi = new / np.linalg.norm(new)
    return psi
Nt = min(N, 200)
start = data()[:Nt]
t0 = time.perf_counter()
zs = [abs(p[0]) ** 2 - abs(p[1]) ** 2 for p in (traj_reverse(start[j].copy()) for j in range(Nt))]
t1 = time.perf_counter()
print("numpy, trajectory by trajectory: %d members x %d steps: %.4f s = %.2f us per member and step; mean z %.4f"
      % (Nt, steps - 1, t1 - t0, (t1 - t0) / Nt / (steps - 1) * 1e6, np.mean(zs)))
