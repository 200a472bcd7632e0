#!/usr/bin/python3
"""batched_step.py — the numpy side of the batched diffusion-training-shaped steps.

Two steps, both 100 states x 8 qubits through 10 layers of [RY on every qubit, RZ on every
qubit, CZ ladder cz(0,1) ... cz(6,7)], then the 100 x 100 fidelity matrix
F[i, j] = |<psi_i|psi_j>|^2:

  shared   the TRAINING step: one angle per gate for the whole batch (160 angles, the circuit
           parameters theta), exactly qd.ansatz.ry_rz_cz(8, 10): per layer l (0-based) RY on
           qubit i has angle theta[16 l + i], RZ on qubit i theta[16 l + 8 + i]
  member   the QuDDPM forward-process shape: one angle per gate AND member (per-member angle
           vectors, 80 x 100 for RY and for RZ, row = layer*8 + qubit)

  batched_step.py gen DIR        write the shared inputs (numpy makes them, qd reads them):
                                 DIR/psi0.npy (100, 256) complex128, DIR/theta.npy (160,),
                                 DIR/ry.npy and DIR/rz.npy (80, 100) float64
  batched_step.py time DIR MODE  time the numpy variants of MODE in this process, print JSON
  batched_step.py run DIR MODE LABEL...
                                 time the numpy step of MODE (several ways of writing it; the
                                 fastest is the reference), check every variant and qd's
                                 fidelity matrices (DIR/F_MODE_LABEL.npy, F2_MODE_LABEL.npy: 1
                                 and 2 threads, written by `batched_step.lua DIR MODE LABEL`)
                                 against each other to 1e-10, and print qd's speed-up from
                                 DIR/times_MODE_LABEL.txt

Conventions as qd: qubit 0 is the most significant bit of the basis index, rotations are
exp(-i theta P / 2). No Python loop over members anywhere. RY and RZ on different qubits
commute, so "RY on every qubit, then RZ on every qubit" is the product over qubits of the
fused 2x2 RZ(rz_i) . RY(ry_i); the CZ ladder is one diagonal (a +-1 vector).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

N, NQ, LAYERS = 100, 8, 10
D = 1 << NQ


def gen(out):
    rng = np.random.default_rng(20261125)
    psi = rng.standard_normal((N, D)) + 1j * rng.standard_normal((N, D))
    psi /= np.linalg.norm(psi, axis=1, keepdims=True)
    ry = rng.uniform(0, 2 * np.pi, (LAYERS * NQ, N))
    rz = rng.uniform(0, 2 * np.pi, (LAYERS * NQ, N))
    theta = rng.uniform(0, 2 * np.pi, 2 * NQ * LAYERS)
    np.save(os.path.join(out, "psi0.npy"), psi)
    np.save(os.path.join(out, "theta.npy"), theta)
    np.save(os.path.join(out, "ry.npy"), ry)
    np.save(os.path.join(out, "rz.npy"), rz)


def cz_ladder_signs():
    idx = np.arange(D)
    bits = [(idx >> (NQ - 1 - q)) & 1 for q in range(NQ)]   # qubit 0 = MSB
    s = np.ones(D)
    for q in range(NQ - 1):
        s = s * np.where(bits[q] & bits[q + 1], -1.0, 1.0)
    return s


def fused_rotations(ry, rz):
    """U[l, q, b] = RZ(rz) @ RY(ry) as (LAYERS, NQ, N, 2, 2), all members at once."""
    return rz_ry(ry, rz).reshape(LAYERS, NQ, N, 2, 2)


def rz_ry(ry, rz):
    """RZ(rz) @ RY(ry) elementwise: shape ry.shape + (2, 2)"""
    cy, sy = np.cos(ry / 2), np.sin(ry / 2)
    ez = np.exp(-0.5j * rz)               # RZ = diag(e^{-i t/2}, e^{+i t/2})
    U = np.empty(ry.shape + (2, 2), dtype=complex)
    U[..., 0, 0] = ez * cy
    U[..., 0, 1] = -ez * sy
    U[..., 1, 0] = np.conj(ez) * sy
    U[..., 1, 1] = np.conj(ez) * cy
    return U


def fidelities(psi):
    G = psi.conj() @ psi.T                 # one matrix product
    return G.real ** 2 + G.imag ** 2


def step_matmul(psi0, ry, rz):
    """per qubit: (N,1,2,2) @ (N, 2^q, 2, 2^(7-q)) broadcast matmul"""
    U = fused_rotations(ry, rz)
    s = cz_ladder_signs()
    psi = psi0
    for l in range(LAYERS):
        for q in range(NQ):
            psi = np.matmul(U[l, q][:, None], psi.reshape(N, 1 << q, 2, 1 << (NQ - 1 - q)))
        psi = psi.reshape(N, D) * s
    return psi, fidelities(psi)


def step_einsum(psi0, ry, rz):
    """per qubit: einsum over the batch"""
    U = fused_rotations(ry, rz)
    s = cz_ladder_signs()
    psi = psi0
    for l in range(LAYERS):
        for q in range(NQ):
            psi = np.einsum("bij,bajc->baic", U[l, q],
                            psi.reshape(N, 1 << q, 2, 1 << (NQ - 1 - q)))
        psi = psi.reshape(N, D) * s
    return psi, fidelities(psi)


def step_elementwise(psi0, ry, rz):
    """per qubit: new0 = u00 x0 + u01 x1, new1 = u10 x0 + u11 x1, broadcast products"""
    U = fused_rotations(ry, rz)
    s = cz_ladder_signs()
    psi = psi0.copy()
    for l in range(LAYERS):
        for q in range(NQ):
            v = psi.reshape(N, 1 << q, 2, 1 << (NQ - 1 - q))
            u = U[l, q][:, None, :, :, None]          # (N, 1, 2, 2, 1)
            x0, x1 = v[:, :, 0:1], v[:, :, 1:2]       # (N, a, 1, c)
            psi = (u[:, :, :, 0] * x0 + u[:, :, :, 1] * x1).reshape(N, D)
        psi *= s
    return psi, fidelities(psi)


def kron_b(x, y):
    """batched Kronecker product: (N, a, b) (x) (N, c, d) -> (N, ac, bd)"""
    n, a, b = x.shape
    _, c, d = y.shape
    return (x[:, :, None, :, None] * y[:, None, :, None, :]).reshape(n, a * c, b * d)


def step_kron(psi0, ry, rz):
    """per layer: the layer's rotations as two 16x16 per-member unitaries (batched
    Kronecker products of the 2x2s), psi as (N, 16, 16) -> A psi B^T, two batched
    matmuls; the CZ ladder is a +-1 pattern on the (16, 16) view"""
    U = fused_rotations(ry, rz)
    s = cz_ladder_signs().reshape(16, 16)
    psi = psi0.reshape(N, 16, 16)
    for l in range(LAYERS):
        u = U[l]
        A = kron_b(kron_b(u[0], u[1]), kron_b(u[2], u[3]))
        B = kron_b(kron_b(u[4], u[5]), kron_b(u[6], u[7]))
        psi = (A @ psi @ B.transpose(0, 2, 1)) * s
    psi = psi.reshape(N, D)
    return psi, fidelities(psi)


def step_moveaxis(psi0, ry, rz):
    """per qubit: bring the qubit's axis forward and apply (N,2,2) @ (N, 2, 128)"""
    U = fused_rotations(ry, rz)
    s = cz_ladder_signs()
    psi = psi0
    for l in range(LAYERS):
        for q in range(NQ):
            a, c = 1 << q, 1 << (NQ - 1 - q)
            x = psi.reshape(N, a, 2, c).transpose(0, 2, 1, 3).reshape(N, 2, a * c)
            psi = (U[l, q] @ x).reshape(N, 2, a, c).transpose(0, 2, 1, 3).reshape(N, D)
        psi = psi * s
    return psi, fidelities(psi)


# ---------------------------------------------------------------- shared angles (training)

def shared_rotations(theta):
    """R[l, q] = RZ(theta[16 l + 8 + q]) @ RY(theta[16 l + q]) as (LAYERS, NQ, 2, 2)"""
    t = theta.reshape(LAYERS, 2, NQ)
    return rz_ry(t[:, 0], t[:, 1])


def kron4(R):
    """(LAYERS, 4, 2, 2) -> (LAYERS, 16, 16): kron(R[:,0], R[:,1], R[:,2], R[:,3]), qubit 0
    of the four the most significant, for all layers in one einsum"""
    return np.einsum("lab,lcd,lef,lgh->lacegbdfh", R[:, 0], R[:, 1], R[:, 2],
                     R[:, 3]).reshape(LAYERS, 16, 16)


def layer_unitaries(theta):
    """(LAYERS, 256, 256): CZ-ladder diagonal times the kron of the layer's 8 fused 2x2s"""
    R = shared_rotations(theta)
    A, B = kron4(R[:, :4]), kron4(R[:, 4:])
    K = np.einsum("lac,lbd->labcd", A, B).reshape(LAYERS, D, D)     # kron(A_l, B_l)
    return cz_ladder_signs()[None, :, None] * K


def shared_full_U(psi0, theta):
    """the layer unitaries multiplied into the full 256x256 U, then U @ Psi (Psi 256 x N)"""
    Ul = layer_unitaries(theta)
    U = Ul[0]
    for l in range(1, LAYERS):
        U = Ul[l] @ U
    P = U @ psi0.T
    G = P.conj().T @ P
    return P.T, G.real ** 2 + G.imag ** 2


def shared_layer_U(psi0, theta):
    """per layer: the 256x256 layer unitary @ Psi (256 x N)"""
    Ul = layer_unitaries(theta)
    P = psi0.T
    for l in range(LAYERS):
        P = Ul[l] @ P
    G = P.conj().T @ P
    return P.T, G.real ** 2 + G.imag ** 2


def shared_kron16(psi0, theta):
    """per layer: psi as (N, 16, 16) (rows qubits 0-3, columns 4-7) -> A psi B^T with the
    kron'd 16x16 A (qubits 0-3) and B (qubits 4-7), two broadcast matmuls over the batch
    (faster here than one (16N x 16) @ (16 x 16) product); CZ ladder as a +-1 (16, 16)
    pattern"""
    R = shared_rotations(theta)
    A, BT = kron4(R[:, :4]), kron4(R[:, 4:]).transpose(0, 2, 1)
    s = cz_ladder_signs().reshape(16, 16)
    psi = psi0.reshape(N, 16, 16)
    for l in range(LAYERS):
        psi = A[l] @ psi @ BT[l]
        psi *= s
    psi = psi.reshape(N, D)
    return psi, fidelities(psi)


def shared_kron16_cols(psi0, theta):
    """per layer on Psi^T as (16, 16 N): A @ Psi (one product), then B on the middle axis
    (a transpose, one product, transpose back); CZ ladder as a +-1 pattern"""
    R = shared_rotations(theta)
    A, B = kron4(R[:, :4]), kron4(R[:, 4:])
    s = cz_ladder_signs().reshape(16, 16, 1)
    P = np.ascontiguousarray(psi0.T).reshape(16, 16 * N)
    for l in range(LAYERS):
        P = (A[l] @ P).reshape(16, 16, N).transpose(1, 0, 2).reshape(16, 16 * N)
        P = (B[l] @ P).reshape(16, 16, N).transpose(1, 0, 2) * s
        P = P.reshape(16, 16 * N)
    P = P.reshape(D, N)
    G = P.conj().T @ P
    return P.T, G.real ** 2 + G.imag ** 2


def shared_per_qubit(psi0, theta):
    """per qubit: the fused 2x2 (the same for all members) on the moved axis, one
    (2 x 2) @ (2 x 128 N) product"""
    R = shared_rotations(theta)
    s = cz_ladder_signs()
    psi = psi0
    for l in range(LAYERS):
        for q in range(NQ):
            a, c = N << q, 1 << (NQ - 1 - q)
            x = psi.reshape(a, 2, c).transpose(1, 0, 2).reshape(2, a * c)
            psi = (R[l, q] @ x).reshape(2, a, c).transpose(1, 0, 2).reshape(N, D)
        psi = psi * s
    return psi, fidelities(psi)


VARIANTS = {
    "member": [
        ("broadcast matmul per qubit", step_matmul),
        ("einsum per qubit", step_einsum),
        ("elementwise 2x2 per qubit", step_elementwise),
        ("2x2 matmul on the moved axis, per qubit", step_moveaxis),
        ("kron'd 16x16 per layer, 2 batched matmuls", step_kron),
    ],
    "shared": [
        ("full U (kron'd 2x2s x CZ diagonal per layer, multiplied), U @ Psi", shared_full_U),
        ("per layer: 256x256 layer unitary @ Psi", shared_layer_U),
        ("per layer: kron'd 16x16 A psi B^T, 2 products", shared_kron16),
        ("per layer: kron'd 16x16 on Psi^T (16, 16N), 2 products", shared_kron16_cols),
        ("per qubit: shared 2x2 @ (2, 128N) on the moved axis", shared_per_qubit),
    ],
}


def best_time(fn, args, budget=1.0, min_reps=5, max_reps=200):
    fn(*args)   # warm-up
    best, reps, t_start = float("inf"), 0, time.perf_counter()
    while reps < min_reps or (reps < max_reps and time.perf_counter() - t_start < budget):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return best, reps


def blas_library():
    """the BLAS shared object numpy loaded (from /proc/self/maps), for the record"""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
        return ", ".join(sorted(os.path.realpath(x) for x in libs)) or "?"
    except OSError:
        return "?"


def blas_core():
    """OpenBLAS's kernel set in this process (openblas_get_corename), or '?'"""
    try:
        import ctypes
        for path in blas_library().split(", "):
            lib = ctypes.CDLL(path)
            if hasattr(lib, "openblas_get_corename"):
                lib.openblas_get_corename.restype = ctypes.c_char_p
                return lib.openblas_get_corename().decode()
    except OSError:
        pass
    return "?"


def load_inputs(out, mode):
    psi0 = np.load(os.path.join(out, "psi0.npy"))
    if mode == "shared":
        return (psi0, np.load(os.path.join(out, "theta.npy")))
    return (psi0, np.load(os.path.join(out, "ry.npy")), np.load(os.path.join(out, "rz.npy")))


def time_variants(out, mode):
    """{variant: (best seconds, repeats)} in this process"""
    args = load_inputs(out, mode)
    return {name: best_time(fn, args) for name, fn in VARIANTS[mode]}


def cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


def run(out, mode, labels):
    args = load_inputs(out, mode)
    fails = []
    print(f"  numpy {np.__version__} (python {sys.version.split()[0]}), BLAS {blas_library()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    # every variant computes the same F (checked here) and is timed in child processes
    # (OpenBLAS reads these variables when it loads), once per setting: OpenBLAS's default
    # thread count and OPENBLAS_NUM_THREADS=1, each with the inherited OPENBLAS_CORETYPE and
    # with SkylakeX (the kernel qd is also run with); the fastest of all is the reference
    Fs = {name: fn(*args)[1] for name, fn in VARIANTS[mode]}
    core0 = os.environ.get("OPENBLAS_CORETYPE")
    settings = [({}, "default"), ({"OPENBLAS_NUM_THREADS": "1"}, "1")]
    # SkylakeX kernels only where the CPU has AVX-512 (elsewhere OpenBLAS dies of SIGILL)
    if core0 != "SkylakeX" and cpu_has_avx512():
        settings += [({"OPENBLAS_CORETYPE": "SkylakeX"}, "default"),
                     ({"OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": "1"}, "1")]
    timings = {}
    for extra, thr in settings:
        env = dict(os.environ, **extra)
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "time", out, mode],
                               env=env, capture_output=True, text=True)
        if child.returncode != 0:
            fails.append(f"numpy timing with {extra or 'the inherited environment'} failed: "
                         + child.stderr.strip())
            continue
        res = json.loads(child.stdout)
        for name, tr in res["times"].items():
            timings[(name, f"{thr}, core {res['core']}")] = tuple(tr)
    if not timings:
        print("  CHECK FAILED: no numpy timing")
        return 1
    for (name, thr), (t, reps) in timings.items():
        print(f"  numpy {name:<66s} BLAS threads {thr:<20s} {t * 1e3:9.3f} ms  (min of {reps})")
    ref = min(timings, key=lambda k: timings[k][0])
    t_np = timings[ref][0]
    F_np = Fs[ref[0]]
    if not np.allclose(np.diag(F_np), 1.0, atol=1e-10):
        fails.append("numpy: diag(F) != 1")
    for name, F in Fs.items():
        d = np.max(np.abs(F - F_np))
        if not d <= 1e-10:
            fails.append(f"numpy variant '{name}' differs from '{ref[0]}' by {d:.3e}")
    rows = []
    for label in labels:
        qd = {}
        with open(os.path.join(out, f"times_{mode}_{label}.txt")) as f:
            for line in f:
                k, v = line.split()
                qd[k] = v
        for tag in ("F", "F2"):
            F_qd = np.load(os.path.join(out, f"{tag}_{mode}_{label}.npy"))
            diff = np.max(np.abs(F_qd - F_np)) if F_qd.shape == F_np.shape else float("inf")
            thr = 1 if tag == "F" else 2
            print(f"  qd ({label}, core {qd['core']}, {thr} thread{'s' if thr > 1 else ''}) vs numpy: "
                  f"max |F_qd - F_numpy| = {diff:.3e} (tolerance 1e-10: "
                  f"{'ok' if diff <= 1e-10 else 'FAIL'})")
            if not diff <= 1e-10:
                fails.append(f"qd ({label}) fidelity matrix differs from numpy by {diff:.3e}")
        if qd["sameE"] != "1":
            fails.append(f"qd ({label}): final ensembles differ between 1 and 2 threads")
        if qd["sameF"] != "1":
            fails.append(f"qd ({label}): fidelity matrix (OpenBLAS core {qd['core']}) differs "
                         f"between 1 and 2 threads by up to {qd['maxdF']}")
        rows.append((label, qd))
    print()
    title = {"shared": "training step (shared angles)",
             "member": "forward-process step (per-member angles)"}[mode]
    print(f"  {title + ', 100 x 8 qubits, 10 layers + F':<92s} {'ms':>8s} {'t_ref/t':>8s}")
    for key, (t, _) in sorted(timings.items(), key=lambda kv: -kv[1][0]):
        mark = "  <- reference (fastest numpy)" if key == ref else ""
        desc = f"numpy: {key[0]} (BLAS threads {key[1]})"
        print(f"  {desc:<92s} {t * 1e3:8.3f} {t_np / t:8.2f}{mark}")
    for label, qd in rows:
        for thr in (1, 2):
            t = float(qd[f"t{thr}"])
            desc = f"qd, {thr} thread{'s' if thr > 1 else ''}, BLAS core {qd['core']}"
            print(f"  {desc:<92s} {t * 1e3:8.3f} {t_np / t:8.2f}")
    print()
    for label, qd in rows:
        t1, t2 = float(qd["t1"]), float(qd["t2"])
        print(f"  {mode} angles, qd ({label}): speed-up over the fastest numpy "
              f"{t_np / t1:.1f}x with 1 thread, {t_np / min(t1, t2):.1f}x best "
              f"(targets >= 5x and >= 8x)")
    for f in fails:
        print(f"  CHECK FAILED: {f}")
    print(f"  batched-step ({mode}) checks: "
          f"{'all passed' if not fails else str(len(fails)) + ' failed'}")
    return 0 if not fails else 1


def main():
    a = sys.argv
    if len(a) == 3 and a[1] == "gen":
        gen(a[2])
        return 0
    if len(a) == 4 and a[1] == "time" and a[3] in VARIANTS:
        print(json.dumps({"times": time_variants(a[2], a[3]), "core": blas_core()}))
        return 0
    if len(a) >= 4 and a[1] == "run" and a[3] in VARIANTS:
        return run(a[2], a[3], a[4:] or ["qd"])
    print("usage: batched_step.py gen DIR | run DIR shared|member LABEL... | "
          "time DIR shared|member", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
