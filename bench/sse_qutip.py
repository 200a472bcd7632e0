#!/usr/bin/python3
"""sse_qutip.py — the QuTiP side of the stochastic Schroedinger equation benchmark
(bench/noise.sh).

  sse_qutip.py gen DIR          write DIR/sse_params.txt (the problem, read by sse_qutip.lua)
  sse_qutip.py run DIR TAG...   time qutip.ssesolve on the same problem, compare qd's
                                trajectory average (DIR/qd_sse_*_t<TAG>.npy) with QuTiP's and
                                with the exact Lindblad solution (qutip.mesolve), print qd's
                                speed-up from DIR/qd_sse_times_t<TAG>.txt

The problem: n = 4 qubits from |0000>, H = -J sum Z_i Z_{i+1} - g sum X_i (open chain,
J = g = 1), the observable A = sum_i Z_i measured continuously at rate gamma = 0.25:
homodyne detection of the Hermitian collapse operator c = sqrt(gamma) A, whose SSE (Ito) is
  d psi = [-iH - (gamma/2)(A - <A>)^2] psi dt + sqrt(gamma) (A - <A>) psi dW,
in QuTiP's form -1/2 (c^+c - <c+c^+> c + <c+c^+>^2/4) dt + (c - <c+c^+>/2) dW (the same
equation for Hermitian c), and in qd's docs/api.md form. 1000 trajectories x 1000 steps of
dt = 0.002 (T = 2), Euler-Maruyama, the state renormalised after every step (QuTiP's
ssesolve default, qd's "euler" default), <A> tracked at every step, no measurement records.

QuTiP: ssesolve(H, psi0, times, sc_ops=[sqrt(gamma) A], e_ops=[A], ntraj=1000,
nsubsteps=1, method="homodyne", solver="euler-maruyama", normalize=True,
map_func=serial_map, progress_bar off) — its Cython SSE solver, one process, one thread
(the default map for ssesolve is serial_map too; given explicitly).

The two sides use different noise streams, so their averages agree only statistically:
the check is |mean_qd(T) - mean_QuTiP(T)| <= 4 sqrt(se_qd^2 + se_QuTiP^2) at the final
time (se: standard error over trajectories), and each against the Lindblad solution
(mesolve with c_ops = [sqrt(gamma) A]). The Euler-Maruyama weak bias is small against se
here: measured with qd.sse at N = 80000, the mean of <A> minus the Lindblad value at
t = 1 / T = 2 is +0.056 / +0.021 (dt = 0.004), +0.031 / +0.013 (dt = 0.002), +0.015 / -0.006
(dt = 0.001), i.e. ~15 dt at t = 1 (first order), against se ~0.06-0.07 at N = 1000.
"""
import os
import sys
import time

import numpy as np

PARAMS = dict(n=4, N=1000, steps=1000, dt=0.002, gamma=0.25, g=1.0, J=1.0, seed=20261126)
ZMAX = 4.0


def gen(d):
    with open(os.path.join(d, "sse_params.txt"), "w") as f:
        for k, v in PARAMS.items():
            f.write(f"{k} {v!r}\n")


def problem(qt):
    n = PARAMS["n"]

    def op(P, q):
        ops = [qt.qeye(2)] * n
        ops[q] = P
        return qt.tensor(ops)

    H = 0
    for i in range(n - 1):
        H = H - PARAMS["J"] * op(qt.sigmaz(), i) * op(qt.sigmaz(), i + 1)
    for i in range(n):
        H = H - PARAMS["g"] * op(qt.sigmax(), i)
    A = 0
    for i in range(n):
        A = A + op(qt.sigmaz(), i)
    psi0 = qt.tensor([qt.basis(2, 0)] * n)
    times = np.linspace(0.0, PARAMS["steps"] * PARAMS["dt"], PARAMS["steps"] + 1)
    return H, A, psi0, times


def label(tag):
    """qd thread tags of noise.sh: "1", "2", "2p" (2 threads, OMP_WAIT_POLICY=passive)"""
    return tag[:-1] + " passive" if tag.endswith("p") else tag


def run(d, tags):
    import qutip as qt
    from qutip.ui.progressbar import BaseProgressBar
    print(f"  QuTiP {qt.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    H, A, psi0, times = problem(qt)
    g, N = PARAMS["gamma"], PARAMS["N"]

    def solve():
        return qt.ssesolve(H, psi0, times, sc_ops=[np.sqrt(g) * A], e_ops=[A], ntraj=N,
                           nsubsteps=1, method="homodyne", solver="euler-maruyama",
                           normalize=True, noise=PARAMS["seed"], map_func=qt.serial_map,
                           progress_bar=BaseProgressBar())

    reps = int(os.environ.get("QUTIP_REPEATS", "3"))
    best, res = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        res = solve()
        best = min(best, time.perf_counter() - t0)
    print(f"  QuTiP ssesolve {N} trajectories x {PARAMS['steps']} steps "
          f"({res.solver})  {best * 1e3:9.1f} ms  (min of {reps})")
    m_qt = np.real(res.expect[0])
    se_qt = np.sqrt(np.maximum(np.real(res.se[0]), 0))   # res.se is the variance of the mean
    exact = np.real(qt.mesolve(H, qt.ket2dm(psi0), times, c_ops=[np.sqrt(g) * A], e_ops=[A],
                               options=qt.Options(atol=1e-12, rtol=1e-10)).expect[0])

    fails = []
    print()
    print(f"  final time T = {times[-1]:g}: Lindblad <A> = {exact[-1]:+.5f}")
    print(f"  {'':<18s} {'mean <A>(T)':>12s} {'std err':>8s} {'z vs Lindblad':>14s}")
    print(f"  {'QuTiP':<18s} {m_qt[-1]:+12.5f} {se_qt[-1]:8.5f} {(m_qt[-1] - exact[-1]) / se_qt[-1]:+14.2f}")
    rows = []
    first = None
    for tag in tags:
        mean = np.load(os.path.join(d, f"qd_sse_mean_t{tag}.npy")).reshape(-1)
        fin = np.load(os.path.join(d, f"qd_sse_final_t{tag}.npy")).reshape(-1)
        with open(os.path.join(d, f"qd_sse_times_t{tag}.txt")) as f:
            _, t, r = f.read().split()
        m, se = fin.mean(), fin.std(ddof=1) / np.sqrt(fin.size)
        if abs(m - mean[-1]) > 1e-12:
            fails.append(f"qd t{tag}: tracked mean {mean[-1]} != mean of final values {m}")
        z_l = (m - exact[-1]) / se
        z_q = (m - m_qt[-1]) / np.hypot(se, se_qt[-1])
        print(f"  {'qd, ' + label(tag) + ' thr':<18s} {m:+12.5f} {se:8.5f} {z_l:+14.2f}   z vs QuTiP {z_q:+.2f}")
        if not abs(z_q) <= ZMAX:
            fails.append(f"qd t{tag} and QuTiP disagree at T: z = {z_q:.2f}")
        if not abs(z_l) <= ZMAX:
            fails.append(f"qd t{tag} and the Lindblad solution disagree at T: z = {z_l:.2f}")
        if tag == tags[0]:
            # information only (the 1001 points are strongly correlated): the largest
            # deviation from the Lindblad curve over time, in units of QuTiP's std error
            ok = se_qt > 0.01 * se_qt.max()   # not the first steps (|0000> has no spread)
            zt_qd = np.max(np.abs(mean - exact)[ok] / se_qt[ok])
            zt_qt = np.max(np.abs(m_qt - exact)[ok] / se_qt[ok])
        if first is None:
            first = fin
        elif not np.array_equal(fin, first):
            fails.append(f"qd results with {label(tags[0])} and {label(tag)} threads differ")
        rows.append((tag, float(t), int(r)))
    print(f"  over all {times.size} times, max |mean - Lindblad| / (QuTiP std err at that time): "
          f"qd {zt_qd:.2f}, QuTiP {zt_qt:.2f} (information; times with QuTiP std err < 1% of its maximum excluded)")
    if not abs((m_qt[-1] - exact[-1]) / se_qt[-1]) <= ZMAX:
        fails.append("QuTiP and the Lindblad solution disagree at T")
    print()
    missed = False
    for tag, t, r in rows:
        sp = best / t
        if sp < 10 and tag == tags[0]:
            missed = True
        print(f"  qd {label(tag):>9s} thread(s) {t * 1e3:9.1f} ms (min of {r})   QuTiP {best * 1e3:9.1f} ms   "
              f"speed-up {sp:6.1f}x{'' if sp >= 10 else '  < 10x'}")
    print(f"  target >= 10x with 1 thread: {'met' if not missed else 'MISSED'}")
    if fails:
        for f in fails:
            print("  FAIL: " + f)
        return 1
    print(f"  trajectory averages agree (|z| <= {ZMAX:g}) with each other and with mesolve; "
          f"qd results bitwise identical for "
          f"{', '.join(label(t) for t in tags)} threads")
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
        return 0
    if len(sys.argv) >= 4 and sys.argv[1] == "run":
        return run(sys.argv[2], sys.argv[3:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
