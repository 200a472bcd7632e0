#!/usr/bin/python3
"""channels_qutip.py — the QuTiP side of the noise-channel benchmark (bench/noise.sh).

  channels_qutip.py gen DIR          write the shared inputs: DIR/rho10.npy, DIR/rho12.npy
                                     (random full-rank density matrices, Ginibre G G^+ / Tr)
                                     and DIR/cases.txt (the cases, read by channels_qutip.lua)
  channels_qutip.py run DIR TAG...   time QuTiP on every case, check qd's outputs
                                     DIR/qd_<case>_t<TAG>.npy against QuTiP's to 1e-12 (and
                                     the TAGs against each other bitwise), print qd's speed-up
                                     from DIR/qd_times_t<TAG>.txt

The cases: the 1-qubit depolarizing channel (Pauli form, p = 0.1:
rho -> (1-p) rho + p/3 (X rho X + Y rho Y + Z rho Z)) and amplitude damping (gamma = 0.2,
K0 = [[1,0],[0,sqrt(1-gamma)]], K1 = [[0,sqrt(gamma)],[0,0]]) on one qubit (the middle
one) of a 10- and a 12-qubit density matrix, and on every qubit in turn (a noise layer) of
the 10-qubit one. (A 12-qubit layer is left out: QuTiP needs ~4 s per qubit there.)

How QuTiP is used — what a QuTiP 4.7 user writes (there is no built-in channel
application in QuTiP 4.7; qutip-qip's noise models are not in Debian): the density matrix
is a Qobj, the 1-qubit operators are expanded to the register with qutip.tensor and
qeye(2) (built once, outside the timed region), and two ways of applying them are timed;
the faster one is the reference:
  "kraus sum"  rho' = sum_i K_i rho K_i^+  (Qobj products; for depolarizing
               (1-p) rho + p/3 sum_P P rho P, the identity term as a scalar multiple)
  "superop"    S = sum_i sprepost(K_i, K_i^+) built once per qubit (qutip's own
               superoperator representation, sparse 4^n x 4^n), applied as
               vector_to_operator(S * operator_to_vector(rho)); a layer applies the n
               per-qubit S in turn (their product would be far denser)
qutip.settings.auto_tidyup is switched off: with it on, Qobj arithmetic zeroes entries
below atol = 1e-12 and the result is off by up to ~6e-13 (and the pass costs time).
Conventions as qd: qubit 0 = the first tensor factor = the most significant bit.
"""
import os
import sys
import time

import numpy as np

NS = (10, 12)
P_DEPOL, GAMMA_AD = 0.1, 0.2
TOL = 1e-12


def cases():
    out = []
    for n in NS:
        q = n // 2
        out.append((f"depolarizing_n{n}_q{q}", n, "depolarizing", P_DEPOL, [q]))
        out.append((f"amplitude_damping_n{n}_q{q}", n, "amplitude_damping", GAMMA_AD, [q]))
    n = 10
    out.append((f"depolarizing_n{n}_layer", n, "depolarizing", P_DEPOL, list(range(n))))
    out.append((f"amplitude_damping_n{n}_layer", n, "amplitude_damping", GAMMA_AD, list(range(n))))
    return out


def gen(d):
    rng = np.random.default_rng(20261126)
    for n in NS:
        dim = 1 << n
        G = rng.standard_normal((dim, dim)) + 1j * rng.standard_normal((dim, dim))
        rho = G @ G.conj().T
        rho = 0.5 * (rho + rho.conj().T)
        rho /= np.trace(rho).real
        np.save(os.path.join(d, f"rho{n}.npy"), rho)
    with open(os.path.join(d, "cases.txt"), "w") as f:
        for name, n, ch, par, tg in cases():
            f.write(f"{name} {n} {ch} {par!r} {','.join(map(str, tg))}\n")


# ---------------------------------------------------------------- the QuTiP side

def qutip_setup():
    import qutip as qt
    qt.settings.auto_tidyup = False
    return qt


def kraus_1q(qt, ch, x):
    if ch == "depolarizing":
        return None   # handled in structured form below
    return [qt.Qobj([[1, 0], [0, np.sqrt(1 - x)]]), qt.Qobj([[0, np.sqrt(x)], [0, 0]])]


def expand(qt, op, q, n):
    ops = [qt.qeye(2)] * n
    ops[q] = op
    return qt.tensor(ops)


class QutipCase:
    """the expanded operators of one case, built once (not timed)"""

    def __init__(self, qt, n, ch, x, targets, superop):
        self.qt, self.ch, self.x = qt, ch, x
        self.per_qubit = []
        for q in targets:
            if ch == "depolarizing":
                paulis = [expand(qt, P, q, n) for P in (qt.sigmax(), qt.sigmay(), qt.sigmaz())]
                if superop:
                    S = (1 - x) * qt.sprepost(qt.qeye([2] * n), qt.qeye([2] * n))
                    for P in paulis:
                        S = S + (x / 3) * qt.sprepost(P, P)
                    self.per_qubit.append(S)
                else:
                    self.per_qubit.append(paulis)
            else:
                Ks = [expand(qt, K, q, n) for K in kraus_1q(qt, ch, x)]
                pairs = [(K, K.dag()) for K in Ks]
                if superop:
                    S = qt.sprepost(*pairs[0])
                    for K, Kd in pairs[1:]:
                        S = S + qt.sprepost(K, Kd)
                    self.per_qubit.append(S)
                else:
                    self.per_qubit.append(pairs)
        self.superop = superop

    def apply(self, rho):
        qt, x = self.qt, self.x
        for ops in self.per_qubit:
            if self.superop:
                rho = qt.vector_to_operator(ops * qt.operator_to_vector(rho))
            elif self.ch == "depolarizing":
                acc = (1 - x) * rho
                for P in ops:
                    acc = acc + (x / 3) * (P * rho * P)
                rho = acc
            else:
                acc = None
                for K, Kd in ops:
                    t = K * rho * Kd
                    acc = t if acc is None else acc + t
                rho = acc
        return rho


def best_time(fn, min_reps, budget):
    best, reps, spent = float("inf"), 0, 0.0
    while reps < min_reps or spent < budget:
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        best, spent, reps = min(best, t), spent + t, reps + 1
    return best, reps


def read_times(path):
    out = {}
    with open(path) as f:
        for line in f:
            name, t, reps = line.split()
            out[name] = (float(t), int(reps))
    return out


def label(tag):
    """qd thread tags of noise.sh: "1", "2", "2p" (2 threads, OMP_WAIT_POLICY=passive)"""
    return tag[:-1] + " passive" if tag.endswith("p") else tag


def run(d, tags):
    qt = qutip_setup()
    import scipy
    print(f"  QuTiP {qt.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"python {sys.version.split()[0]}; auto_tidyup off")
    min_reps = int(os.environ.get("QUTIP_REPEATS", "3"))
    fails = []
    qdt = {tag: read_times(os.path.join(d, f"qd_times_t{tag}.txt")) for tag in tags}
    rows = []
    inputs = {}
    for name, n, ch, x, tg in cases():
        if n not in inputs:
            r = np.load(os.path.join(d, f"rho{n}.npy"))
            inputs[n] = (r, qt.Qobj(r, dims=[[2] * n, [2] * n]))
        r_np, rho = inputs[n]
        res = {}
        for vname, sup in (("kraus sum", False), ("superop", True)):
            t0 = time.perf_counter()
            case = QutipCase(qt, n, ch, x, tg, sup)
            tb = time.perf_counter() - t0
            out = case.apply(rho).full()
            t, reps = best_time(lambda: case.apply(rho), min_reps if n < 12 else max(1, min_reps - 1), 0.0)
            res[vname] = (t, out)
            print(f"  QuTiP {name:<28s} {vname:<9s} {t * 1e3:10.1f} ms  (min of {reps}; "
                  f"operators built in {tb * 1e3:.0f} ms, not timed)")
            del case
        ref = min(res, key=lambda k: res[k][0])
        t_qt, out_qt = res[ref]
        for vname, (_, o) in res.items():
            dv = np.max(np.abs(o - out_qt))
            if not dv <= TOL:
                fails.append(f"{name}: QuTiP '{vname}' differs from '{ref}' by {dv:.2e}")
        scale = np.max(np.abs(out_qt))
        first = None
        for tag in tags:
            q = np.load(os.path.join(d, f"qd_{name}_t{tag}.npy"))
            dq = np.max(np.abs(q - out_qt))
            if not dq <= TOL:
                fails.append(f"{name}: qd ({label(tag)} threads) differs from QuTiP by {dq:.2e} > {TOL}")
            if first is None:
                first = q
            elif not np.array_equal(q, first):
                fails.append(f"{name}: qd results with {label(tags[0])} and {label(tag)} threads differ "
                             f"(max {np.max(np.abs(q - first)):.2e})")
            rows.append((name, tag, qdt[tag][name][0], t_qt, ref, dq, scale))
    print()
    print(f"  {'case':<28s} {'qd threads':>10s} {'qd ms':>10s} {'QuTiP ms':>10s} {'speed-up':>9s}  "
          f"max|qd-QuTiP| (max|rho'|)")
    missed = 0
    for name, tag, tq, tt, ref, dq, scale in rows:
        sp = tt / tq
        flag = "" if sp >= 10 else "  < 10x"
        if sp < 10 and tag == tags[0]:
            missed += 1
        print(f"  {name:<28s} {label(tag):>10s} {tq * 1e3:10.3f} {tt * 1e3:10.1f} {sp:8.1f}x  "
              f"{dq:.1e} ({scale:.1e}){flag}")
    print(f"  (QuTiP reference per case: its faster variant; QuTiP runs with 1 thread)")
    print(f"  target >= 10x with 1 thread: {'met in every case' if missed == 0 else f'MISSED in {missed} case(s)'}")
    if fails:
        for f in fails:
            print("  FAIL: " + f)
        return 1
    print(f"  qd outputs agree with QuTiP to <= {TOL:g}; qd outputs bitwise identical for "
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
