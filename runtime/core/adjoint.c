/* adjoint.c — reverse-mode (adjoint) gradients of circuits (qd_circuit.h).
 *
 * Pure states and ensembles
 * -------------------------
 * Forward: psi_k = U_k psi_{k-1}. With G = dL/d conj(psi_out) (dL = 2 Re <G|dpsi_out>),
 * lambda_K = G and, going back, lambda_{k-1} = U_k^dagger lambda_k, and for an angle a of
 * gate k
 *     dL/da = 2 Re <lambda_k| (dU_k/da) |psi_{k-1}>,
 * dU/da from the exact matrix-level shift rule (qd_gate_dmatrix). psi_{k-1} is recomputed
 * from psi_k by the inverse gate (no tape: memory O(state)); a slot's gradient is the sum
 * over its ops of scale * dL/da. Ensembles: every gate is one batched call over the
 * members; the per-member contractions are summed in member order (thread-independent).
 *
 * Through a measurement with the outcome m held fixed (QuDDPM: the sampled ancilla outcome
 * is kept, the data register renormalised):
 *     phi = P_m psi,   p = <phi|phi>,   psi' = phi / sqrt(p).
 * With G' = dL/d conj(psi'):
 *     dpsi' = dphi / sqrt(p) - phi dp / (2 p^{3/2}),   dp = 2 Re <phi|dphi>
 *     dL = 2 Re <G'|dpsi'> = 2 Re <G'|dphi>/sqrt(p) - Re<G'|phi> 2 Re<phi|dphi> / p^{3/2}
 *        = 2 Re < (G' - Re<G'|psi'> psi') / sqrt(p) | dphi >
 * so G_phi = (G' - Re<G'|psi'> psi') / sqrt(p)  (the component along psi' that only changes
 * the norm is removed), and through the projection dphi = P_m dpsi: G_psi = P_m G_phi.
 * Expected-loss mode (L = sum_m P_m l_m over outcome branches): with the joint probability
 * P = prod_i p_i of the member's outcomes and dL/dP given, dP = P sum_i dp_i / p_i and
 * dp_i = 2 Re <phi_i|dphi_i>, so each measurement adds (dL/dP) (P / p_i) phi_i to G_phi.
 * A reset is the measurement followed by X^m (a permutation, its own inverse).
 * The pre-measurement state cannot be uncomputed, so it is checkpointed (one copy per
 * measurement op). A member whose outcome has probability 0 contributes nothing.
 *
 * Density matrices (QGDM): adjoint on rho viewed as a vector of 2n qubits
 * ----------------------------------------------------------------------
 * Chosen over parameter shift because (1) rho -> U rho U^dagger is the unitary U (x) conj U
 * on that vector, so the same uncompute-and-propagate scheme gives the whole gradient in ~3
 * forward passes whatever the number of parameters (parameter shift needs 2-4 full
 * density-matrix runs per angle occurrence), and (2) it is exact for any differentiable
 * loss of rho_out (Uhlmann fidelity, trace or Hilbert-Schmidt distance), whereas the shift
 * rule holds only for losses linear in rho_out. Memory: 3 density matrices (+1 per
 * measurement/reset op). With lambda = dL/d conj(rho) (dL = 2 Re Tr(lambda^dagger drho)):
 *     lambda <- U^dagger lambda U            (adjoint of the unitary channel)
 *     dL/da = 2 Re [ Tr(lambda^dagger dU A U^dagger) + Tr(lambda^dagger U A dU^dagger) ]
 * (A = rho before the gate), both terms as local contractions on the vector view.
 * Measurement (dephasing) is self-adjoint; the reset channel's adjoint is
 * G -> sum_m |m><0| G |0><m|; the partial trace's adjoint is G -> G (x) I.
 */
#include "qd_circuit.h"
#include "qd_simd.h"
#include "qd_isa.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <string.h>


/* <lam| D_qs |psi> over groups [g0, g1) of one vector of nq qubits, D a 2^k x 2^k local
 * matrix (k <= 3). Groups are the 2^(nq-k) index sets sharing the non-target bits; group g's
 * base index is g with zeros inserted at the target bits. Sequential sum. */
static inline __attribute__((always_inline)) qd_c
braket_k(const qd_c *lam, const qd_c *psi, int nq, const int *qs, const int k, const qd_c *D,
         size_t g0, size_t g1)
{
    size_t dk = (size_t)1 << k, off[8];
    int bits[3];
    for (int j = 0; j < k; j++)
        bits[j] = nq - 1 - qs[j];
    for (size_t l = 0; l < dk; l++) {
        size_t o = 0;
        for (int j = 0; j < k; j++)
            if ((l >> (k - 1 - j)) & 1)
                o |= (size_t)1 << bits[j];
        off[l] = o;
    }
    int sb[3];   /* target bits ascending, for inserting zeros */
    for (int j = 0; j < k; j++)
        sb[j] = bits[j];
    for (int a = 0; a < k; a++)
        for (int b = a + 1; b < k; b++)
            if (sb[b] < sb[a]) {
                int t = sb[a];
                sb[a] = sb[b];
                sb[b] = t;
            }
    double dr[64], di[64];
    for (size_t l = 0; l < dk * dk; l++) {
        dr[l] = creal(D[l]);
        di[l] = cimag(D[l]);
    }
    double sr = 0, si = 0;
    for (size_t g = g0; g < g1; g++) {
        size_t i = g;
        for (int j = 0; j < k; j++)
            i = ((i >> sb[j]) << (sb[j] + 1)) | (i & (((size_t)1 << sb[j]) - 1));
        double xr[8], xi[8];
        for (size_t l = 0; l < dk; l++) {
            xr[l] = creal(psi[i | off[l]]);
            xi[l] = cimag(psi[i | off[l]]);
        }
        for (size_t r = 0; r < dk; r++) {
            double yr = 0, yi = 0;
            for (size_t cc = 0; cc < dk; cc++) {
                yr += dr[r + cc * dk] * xr[cc] - di[r + cc * dk] * xi[cc];
                yi += dr[r + cc * dk] * xi[cc] + di[r + cc * dk] * xr[cc];
            }
            double lr = creal(lam[i | off[r]]), li = cimag(lam[i | off[r]]);
            sr += lr * yr + li * yi;   /* conj(lam) * y */
            si += lr * yi - li * yr;
        }
    }
    return CMPLX(sr, si);
}

/* k is a compile-time constant in each branch, so the local loops unroll */
static qd_c braket_range(const qd_c *lam, const qd_c *psi, int nq, const int *qs, int k,
                         const qd_c *D, size_t g0, size_t g1)
{
    switch (k) {
    case 1: return braket_k(lam, psi, nq, qs, 1, D, g0, g1);
    case 2: return braket_k(lam, psi, nq, qs, 2, D, g0, g1);
    default: return braket_k(lam, psi, nq, qs, 3, D, g0, g1);
    }
}

/* The whole vector. Large vectors are cut into fixed blocks of QD_BLOCK groups whose partial
 * sums are added in block order, so the result does not depend on the thread count. */
static qd_c braket_local(const qd_c *lam, const qd_c *psi, int nq, const int *qs, int k,
                         const qd_c *D)
{
    size_t G = ((size_t)1 << nq) >> k;
    if (G < 4 * (size_t)QD_BLOCK)
        return braket_range(lam, psi, nq, qs, k, D, 0, G);
    size_t nb = (G + QD_BLOCK - 1) / QD_BLOCK;
    qd_c *part = qd_malloc(sizeof(qd_c) * nb);
    if (!part)   /* no scratch: the same blocks, one after the other */
    {
        qd_c s = 0;
        for (size_t b = 0; b < nb; b++) {
            size_t e = (b + 1) * QD_BLOCK < G ? (b + 1) * QD_BLOCK : G;
            s += braket_range(lam, psi, nq, qs, k, D, b * QD_BLOCK, e);
        }
        return s;
    }
    #pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t e = (b + 1) * QD_BLOCK < G ? (b + 1) * QD_BLOCK : G;
        part[b] = braket_range(lam, psi, nq, qs, k, D, b * QD_BLOCK, e);
    }
    qd_c s = 0;
    for (size_t b = 0; b < nb; b++)
        s += part[b];
    qd_free(part);
    return s;
}

/* Rotations exp(-i a P/2) with a Pauli generator P: dU/da = (-i/2) P U, so
 *   dL/da = 2 Re <lam| dU |psi_pre> = Im <lam| P |psi_post>,
 * one cheap pass over the state (no 2^k x 2^k local product). P = i^ny X^x Z^z (Y = iXZ):
 * (P psi)_i = i^ny (-1)^popcount((i^x) & z) psi_(i^x). */
static int pauli_of(const qd_op *op, int nq, size_t *x, size_t *z, int *ny)
{
    char p = op->g->pauli;   /* exp(-i a P..P/2) on all the gate's qubits (gate_table.c) */
    if (!p)
        return 0;
    *x = *z = 0;
    *ny = 0;
    for (int j = 0; j < op->k; j++) {
        size_t b = (size_t)1 << (nq - 1 - op->qs[j]);
        if (p != 'Z')
            *x |= b;
        if (p != 'X')
            *z |= b;
        *ny += p == 'Y';
    }
    return 1;
}

static void pauli_range(const qd_c *lam, const qd_c *psi, size_t x, size_t z, size_t i0,
                        size_t i1, double *sr, double *si)
{
    double ar = 0, ai = 0;
    for (size_t i = i0; i < i1; i++) {
        size_t j = i ^ x;
        double sg = (__builtin_popcountll((unsigned long long)(j & z)) & 1) ? -1.0 : 1.0;
        double lr = creal(lam[i]), li = cimag(lam[i]), pr = creal(psi[j]), pi = cimag(psi[j]);
        double nli = -li;   /* + nli*pr, not - li*pr: no vfmsubadd (scripts/check_contraction.sh) */
        ar += sg * (lr * pr + li * pi);
        ai += sg * (lr * pi + nli * pr);
    }
    *sr = ar;
    *si = ai;
}

/* <lam|P|psi> for one vector of d amplitudes (fixed blocks: thread-independent) */
static qd_c pauli_braket(const qd_c *lam, const qd_c *psi, size_t d, size_t x, size_t z, int ny)
{
    double sr = 0, si = 0;
    if (d < 4 * (size_t)QD_BLOCK) {
        pauli_range(lam, psi, x, z, 0, d, &sr, &si);
    } else {
        size_t nb = (d + QD_BLOCK - 1) / QD_BLOCK;
        double *part = qd_malloc(sizeof(double) * 2 * nb);
        if (part) {
            #pragma omp parallel for schedule(static)
            for (size_t b = 0; b < nb; b++) {
                size_t e = (b + 1) * QD_BLOCK < d ? (b + 1) * QD_BLOCK : d;
                pauli_range(lam, psi, x, z, b * QD_BLOCK, e, &part[2 * b], &part[2 * b + 1]);
            }
        }
        for (size_t b = 0; b < nb; b++) {
            double r, i;
            if (part) {
                r = part[2 * b];
                i = part[2 * b + 1];
            } else {
                size_t e = (b + 1) * QD_BLOCK < d ? (b + 1) * QD_BLOCK : d;
                pauli_range(lam, psi, x, z, b * QD_BLOCK, e, &r, &i);
            }
            sr += r;
            si += i;
        }
        qd_free(part);
    }
    qd_c v = CMPLX(sr, si);
    static const qd_c ipow[4] = {1, I, -1, -I};
    return ipow[ny & 3] * v;
}

/* sum over all members of Im <lam_j| P_q |psi_j> when P is a single-qubit Pauli on bit
 * b = 1 << (nq - 1 - q), lam and psi `amps` amplitudes (members back to back; each member's
 * 2^nq is a multiple of 2b, so the pairs (i0, i0 + b) of the flat array are exactly the
 * members' pairs). A pair loop like the gate kernels, no popcount, vectorised over pairs:
 * runs of b pairs, vectorised within a run (b = 1: over all pairs). The summation order is fixed at compile time (the
 * same for any thread count). With (P psi) from P = i^ny X^x Z^z:
 *   X: Im sum conj(l0) p1 + conj(l1) p0
 *   Y: (Y psi)_0 = -i p1, (Y psi)_1 = i p0  ->  sum Re(conj(l1) p0) - Re(conj(l0) p1)
 *   Z: Im sum conj(l0) p0 - conj(l1) p1 */
/* one term per pair (i0, i1) of Im/Re sums, flat double indices */
#define PAULI1_TERM(p, l, q, i0, i1)                                                             \
    ((p) == 'X'   ? (l[i0] * q[i1 + 1] - l[i0 + 1] * q[i1]) + (l[i1] * q[i0 + 1] - l[i1 + 1] * q[i0]) \
     : (p) == 'Y' ? (l[i1] * q[i0] + l[i1 + 1] * q[i0 + 1]) - (l[i0] * q[i1] + l[i0 + 1] * q[i1 + 1]) \
                  : (l[i0] * q[i0 + 1] - l[i0 + 1] * q[i0]) - (l[i1] * q[i1 + 1] - l[i1 + 1] * q[i1]))

/* The long sums below (b = 1, and runs of b >= 16 pairs) go into 8 partial sums, pair t
 * into acc[t % 8], added at the end in the fixed order of sum8. Not `omp simd reduction`:
 * that lets the compiler split the sum by its vector width (2, 4 or 8 lanes), so the
 * portable, AVX2 and AVX-512 builds would round differently. The terms of a chunk of pairs
 * are computed first (an elementwise loop: vectorised at any width, the same arithmetic
 * per term), then added into the partial sums (contiguous: vectorised too). Computing
 * and adding in one loop left GCC 12 a strided de-interleave it vectorised poorly (3x
 * slower on AVX2). */
#define ACC8_CHUNK 128   /* pairs per chunk: a multiple of 8 */

static inline double sum8(const double a[8])
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* a8[i % 8] += t[i] for i < n (t: the terms of a chunk that starts at a multiple of 8) */
static inline __attribute__((always_inline)) void acc8_add(double a8[8], const double *t,
                                                           size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (size_t u = 0; u < 8; u++)
            a8[u] += t[i + u];
    for (; i < n; i++)
        a8[i % 8] += t[i];
}

static inline __attribute__((always_inline)) double
pauli1_sum_p(const double *l, const double *q, size_t amps, size_t b, const char p)
{
    double acc = 0;
    if (b == 1) {   /* adjacent pairs: affine, contiguous */
        double a8[8] = {0}, tb[ACC8_CHUNK];
        const size_t n = amps / 2;
        for (size_t t0 = 0; t0 < n; t0 += ACC8_CHUNK) {
            const size_t m = n - t0 < ACC8_CHUNK ? n - t0 : ACC8_CHUNK;
            const double *l0 = l + 4 * t0, *q0 = q + 4 * t0;
            #pragma omp simd
            for (size_t t = 0; t < m; t++)
                tb[t] = PAULI1_TERM(p, l0, q0, 4 * t, 4 * t + 2);
            acc8_add(a8, tb, m);
        }
        acc = sum8(a8);
    } else if (b < 16) {   /* short runs: per-lane partial sums across runs */
        double part[16] = {0};
        for (size_t hi = 0; hi < amps; hi += 2 * b) {
            const double *l0 = l + 2 * hi, *q0 = q + 2 * hi;
            #pragma omp simd
            for (size_t t = 0; t < b; t++)
                part[t] += PAULI1_TERM(p, l0, q0, 2 * t, 2 * t + 2 * b);
        }
        for (size_t t = 0; t < b; t++)
            acc += part[t];
    } else {        /* long runs of b pairs (pair t of a run into acc[t % 8], every run) */
        double a8[8] = {0}, tb[ACC8_CHUNK];
        for (size_t hi = 0; hi < amps; hi += 2 * b)
            for (size_t t0 = 0; t0 < b; t0 += ACC8_CHUNK) {
                const size_t m = b - t0 < ACC8_CHUNK ? b - t0 : ACC8_CHUNK;
                const double *l0 = l + 2 * (hi + t0), *q0 = q + 2 * (hi + t0);
                #pragma omp simd
                for (size_t t = 0; t < m; t++)
                    tb[t] = PAULI1_TERM(p, l0, q0, 2 * t, 2 * t + 2 * b);
                acc8_add(a8, tb, m);
            }
        acc = sum8(a8);
    }
    return acc;
}

/* b as a compile-time constant for the short runs (2, 4, 8), so the run loop unrolls */
static inline __attribute__((always_inline)) double
pauli1_sum_b(const double *l, const double *q, size_t amps, size_t b, const char p)
{
    switch (b) {
    case 2:
        return pauli1_sum_p(l, q, amps, 2, p);
    case 4:
        return pauli1_sum_p(l, q, amps, 4, p);
    case 8:
        return pauli1_sum_p(l, q, amps, 8, p);
    default:
        return pauli1_sum_p(l, q, amps, b, p);
    }
}

static double pauli1_braket_sum(const qd_c *lam, const qd_c *psi, size_t amps, size_t b, char p)
{
    const double *l = (const double *)lam, *q = (const double *)psi;
    return p == 'X' ? pauli1_sum_b(l, q, amps, b, 'X')
           : p == 'Y' ? pauli1_sum_b(l, q, amps, b, 'Y')
                      : pauli1_sum_b(l, q, amps, b, 'Z');
}

#define P3_TERMS(L, Q, i0, i1)                                                     \
    double l0r = L[i0], l0i = L[i0 + 1], l1r = L[i1], l1i = L[i1 + 1];             \
    double p0r = Q[i0], p0i = Q[i0 + 1], p1r = Q[i1], p1i = Q[i1 + 1];             \
    double tx = (l0r * p1i - l0i * p1r) + (l1r * p0i - l1i * p0r);                 \
    double ty = (l1r * p0r + l1i * p0i) - (l0r * p1r + l0i * p1i);                 \
    double tz = (l0r * p0i - l0i * p0r) - (l1r * p1i - l1i * p1r);

/* the pairs (step t, step t + off), t < m <= ACC8_CHUNK, of l0 / q0: their three terms
 * first, then into the 8 partial sums of each bracket (as pauli1_sum_p) */
static inline __attribute__((always_inline)) void
pauli3_chunk(const double *l0, const double *q0, size_t m, const size_t step, size_t off,
             double *x8, double *y8, double *z8)
{
    double bx[ACC8_CHUNK], by[ACC8_CHUNK], bz[ACC8_CHUNK];
    #pragma omp simd
    for (size_t t = 0; t < m; t++) {
        P3_TERMS(l0, q0, step * t, step * t + off)
        bx[t] = tx;
        by[t] = ty;
        bz[t] = tz;
    }
    acc8_add(x8, bx, m);
    acc8_add(y8, by, m);
    acc8_add(z8, bz, m);
}

/* All three single-qubit brackets (X, Y, Z on bit b) in one pass: out[0..2] as
 * pauli1_braket_sum would give them (same per-pair terms, same summation order). */
static inline __attribute__((always_inline)) void
pauli3_sum_b(const double *l, const double *q, size_t amps, size_t b, double *out)
{
    double ax = 0, ay = 0, az = 0;
    if (b == 1) {   /* 8 partial sums each, chunked as in pauli1_sum_p */
        double x8[8] = {0}, y8[8] = {0}, z8[8] = {0};
        const size_t n = amps / 2;
        for (size_t t0 = 0; t0 < n; t0 += ACC8_CHUNK) {
            const size_t m = n - t0 < ACC8_CHUNK ? n - t0 : ACC8_CHUNK;
            pauli3_chunk(l + 4 * t0, q + 4 * t0, m, 4, 2, x8, y8, z8);
        }
        ax = sum8(x8);
        ay = sum8(y8);
        az = sum8(z8);
    } else if (b < 16) {
        double px[16] = {0}, py[16] = {0}, pz[16] = {0};
        for (size_t hi = 0; hi < amps; hi += 2 * b) {
            const double *l0 = l + 2 * hi, *q0 = q + 2 * hi;
            #pragma omp simd
            for (size_t t = 0; t < b; t++) {
                P3_TERMS(l0, q0, 2 * t, 2 * t + 2 * b)
                px[t] += tx;
                py[t] += ty;
                pz[t] += tz;
            }
        }
        for (size_t t = 0; t < b; t++) {
            ax += px[t];
            ay += py[t];
            az += pz[t];
        }
    } else {
        double x8[8] = {0}, y8[8] = {0}, z8[8] = {0};
        for (size_t hi = 0; hi < amps; hi += 2 * b)
            for (size_t t0 = 0; t0 < b; t0 += ACC8_CHUNK) {
                const size_t m = b - t0 < ACC8_CHUNK ? b - t0 : ACC8_CHUNK;
                pauli3_chunk(l + 2 * (hi + t0), q + 2 * (hi + t0), m, 2, 2 * b, x8, y8, z8);
            }
        ax = sum8(x8);
        ay = sum8(y8);
        az = sum8(z8);
    }
    out[0] = ax;
    out[1] = ay;
    out[2] = az;
}
#undef P3_TERMS

static void pauli3_braket_sum(const qd_c *lam, const qd_c *psi, size_t amps, size_t b, double *out)
{
    const double *l = (const double *)lam, *q = (const double *)psi;
    switch (b) {
    case 1:
        pauli3_sum_b(l, q, amps, 1, out);
        break;
    case 2:
        pauli3_sum_b(l, q, amps, 2, out);
        break;
    case 4:
        pauli3_sum_b(l, q, amps, 4, out);
        break;
    case 8:
        pauli3_sum_b(l, q, amps, 8, out);
        break;
    default:
        pauli3_sum_b(l, q, amps, b, out);
    }
}

/* the three-bracket kernel on one vector (for the tests) */
void qd_pauli3_braket_im(const qd_c *lam, const qd_c *psi, int nq, int q, double out[3])
{
    pauli3_braket_sum(lam, psi, (size_t)1 << nq, (size_t)1 << (nq - 1 - q), out);
}

/* the generic bracket, used as a reference by the tests (qd_circuit.h) */
double qd_pauli_braket_im(const qd_c *lam, const qd_c *psi, int nq, size_t x, size_t z, int ny)
{
    return cimag(pauli_braket(lam, psi, (size_t)1 << nq, x, z, ny));
}

/* the specialised single-qubit kernel on one vector (for the tests) */
double qd_pauli1_braket_im(const qd_c *lam, const qd_c *psi, int nq, int q, char p)
{
    return pauli1_braket_sum(lam, psi, (size_t)1 << nq, (size_t)1 << (nq - 1 - q), p);
}

static void xor_permute(qd_c *a, size_t d, size_t pat)
{
    if (!pat)
        return;
    for (size_t i = 0; i < d; i++) {
        size_t j = i ^ pat;
        if (i < j) {
            qd_c t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}

/* For each discarded qubit: the measurement index and bit position that fixes its value. */
static void discard_sources(const qd_circuit *c, int *src_mi, int *src_bit)
{
    int mi = 0;
    for (int q = 0; q < c->n; q++)
        src_mi[q] = -1;
    for (size_t o = 0; o < c->nops; o++) {
        const qd_op *op = &c->ops[o];
        if (op->kind != QD_OP_MEASURE && op->kind != QD_OP_RESET)
            continue;
        if (op->kind == QD_OP_MEASURE && op->discard)
            for (int j = 0; j < op->k; j++) {
                src_mi[op->qs[j]] = mi;
                src_bit[op->qs[j]] = op->k - 1 - j;
            }
        mi++;
    }
}

/* 0, 1, 2 for rx, ry, rz (single-qubit Pauli rotations), -1 otherwise */
static int pauli_index(const qd_op *op)
{
    if (op->kind != QD_OP_GATE || op->k != 1)
        return -1;
    char p = op->g->pauli;
    return p == 'X' ? 0 : p == 'Y' ? 1 : p == 'Z' ? 2 : -1;
}

/* ops o1, o2 = o1 + 1: two Pauli rotations (rx, ry, rz) on the same qubit. The backward
 * pass treats them as one step; this need not match how the forward grouped its runs (the
 * uncompute is exact in exact arithmetic either way). */
static int pauli_pair(const qd_circuit *c, size_t o1, size_t o2)
{
    const qd_op *a = &c->ops[o1], *b = &c->ops[o2];
    return pauli_index(a) >= 0 && pauli_index(b) >= 0 && a->qs[0] == b->qs[0];
}

/* ---- the backward pass with members in SIMD lanes (small registers)
 * For circuits of up to 10 qubits whose gates all come before their measurements/resets
 * and are 1-qubit gates (parameterised only as rx, ry, rz), cz and cx: QD_VL members at a time
 * (qd_simd.h) with psi and lambda transposed into blocks of 2d rows x QD_VL lanes, every
 * step (a cz run as one +-1 diagonal; a 1-qubit gate, or a pair of Pauli rotations on one
 * qubit as the generic backward pairs them) applied to the block while it is in L1. The
 * brackets Im<lam|P|psi> become lane-wise sums (a plain sequence of FMAs over the
 * amplitude pairs of each member), kept per member and term and summed over the members
 * in member order afterwards: results do not depend on the blocking or the threads. */
#define SB_MAXQ 10

/* a single state (count 1) of at least this many qubits takes the generic backward pass */
#define QD_SB_LONE_GENERIC 6

/* qd_adjoint_generic_only (a test switch) is defined in parallel.c: the kernel sets define
 * no global variables (scripts/gen_dispatch.sh) */

typedef struct {
    int kind;            /* 0: 1-qubit step, 1: +-1 diagonal (a cz run), 2: cx (permutation) */
    int q, brk;          /* qubit (kind 2: control); brk: the brackets (X, Y, Z) are needed */
    int q2;              /* kind 2: target */
    int unit;            /* kind 0: 1 = phase on |1> then (X if sw) then T (see sb_plan) */
    qd_c Md[4];          /* unit 0: the matrix applied to the stored vectors */
    double ec, es;       /* unit 1: the phase e^{i eps} = ec + i es on the |1> amplitude */
    double c0, c1;       /* unit 1: T = [[1, c0], [c1, 1]] */
    int sw;
    int nt, t0;          /* gradient terms: nt of them from term t0 */
    size_t sg;           /* kind 1: offset of its d signs in the sign table */
} sb_step;

/* Phase frames. The stored vectors S (psi) and T (lambda) are the true ones up to the same
 * factor g F, F = prod_q diag(1, e^{i d_q}) (per-qubit phases on |1>) and g a complex
 * scalar: true = g F stored for both. Both the frames and g depend only on the circuit
 * (never on a member), so sb_plan tracks them and folds them into the step data:
 *  - brackets: Im<lam|P_q|psi> = |g|^2 Im<T| F_q^dag P_q F_q |S>, and with F_q =
 *    diag(1, e^{i d}), F^dag X F = cos d X - sin d Y, F^dag Y F = sin d X + cos d Y,
 *    F^dag Z F = Z, so each term's coefficients on the stored brackets are rotated and
 *    scaled;
 *  - an uncompute U (2x2 on q) acts on the stored vectors as N = U F_q = diag(a0, a1) R
 *    diag(1, w) (Z-Y-Z, R = [[c, -s], [s, c]]) with R = diag(r0, r1) T X^sw in the
 *    unit-diagonal form of the forward fusion: the stored vectors get the phase w on |1>,
 *    the swap and T (8 FMA-sized operations per amplitude pair instead of 16 for N), and
 *    diag(a0 r0, a1 r1) = a0 r0 diag(1, e^{i d'}) becomes the new frame (a0 r0 into g);
 *  - a cz run commutes with the frames;
 *  - a cx commutes with its control's frame but not with its target's: the target's frame
 *    is first applied to the stored vectors (a diagonal step, d_t = 0 after), then the cx
 *    permutes the stored vectors.
 * At the end lambda's true value is g F T (one diagonal pass, only when G_in is wanted).
 * A step whose N is too close to diagonal or anti-diagonal (|c| or |s| <= 1e-3) applies N
 * itself (unit 0) and its qubit keeps its frame d_q (N already includes F_q: d_q = 0 after). */

typedef struct {
    int slot;
    double scale, coef[3];   /* value = coef . (X, Y, Z brackets) per member */
} sb_term;

static int is_cz_op(const qd_op *op)
{
    return op->kind == QD_OP_GATE && op->g->id == QD_G_CZ;
}

static int is_cx_op(const qd_op *op)
{
    return op->kind == QD_OP_GATE && op->g->id == QD_G_CX;
}

static double sb_abs(qd_c z)
{
    return sqrt(creal(z) * creal(z) + cimag(z) * cimag(z));
}

/* Folds the frames into step s (its Md = the true uncompute U on entry): the terms'
 * coefficients rotated and scaled for the stored brackets, and the stored-vector operation
 * (unit form when possible); updates the frame fr[q] (e^{i d_q}), |g|^2 (g2) and g's
 * phase-and-scale (gph). */
static void sb_frame_step(sb_step *s, sb_term *tm, qd_c *fr, double *g2, qd_c *gph)
{
    const int q = s->q;
    const double cd = creal(fr[q]), sd = cimag(fr[q]);
    for (int t = s->t0; t < s->t0 + s->nt; t++) {
        double cx = tm[t].coef[0], cy = tm[t].coef[1], cz = tm[t].coef[2];
        tm[t].coef[0] = *g2 * (cx * cd + cy * sd);
        tm[t].coef[1] = *g2 * (cy * cd - cx * sd);
        tm[t].coef[2] = *g2 * cz;
    }
    /* N = U F_q: column 1 of U times e^{i d} */
    qd_c N[4] = {s->Md[0], s->Md[1], s->Md[2] * fr[q], s->Md[3] * fr[q]};
    double cc = sb_abs(N[0]), ss = sb_abs(N[1]);
    s->unit = 0;
    if (cc > 1e-3 && ss > 1e-3) {
        qd_c a0 = N[0] / cc, a1 = N[1] / ss;
        double n1 = creal(a1) * creal(a1) + cimag(a1) * cimag(a1);
        qd_c w = N[3] * conj(a1) / (n1 * cc);
        if (sb_abs(a1 * cc * w - N[3]) <= 1e-15 && sb_abs(-a0 * ss * w - N[2]) <= 1e-15) {
            double wa = sb_abs(w), r0, r1;
            s->ec = creal(w) / wa;
            s->es = cimag(w) / wa;
            if (cc >= ss) {   /* R = c [[1, -s/c], [s/c, 1]] */
                s->c0 = -ss / cc;
                s->c1 = ss / cc;
                r0 = r1 = cc;
                s->sw = 0;
            } else {          /* R = diag(-s, s) [[1, -c/s], [c/s, 1]] X */
                s->c0 = -cc / ss;
                s->c1 = cc / ss;
                r0 = -ss;
                r1 = ss;
                s->sw = 1;
            }
            qd_c l0 = a0 * r0, l1 = a1 * r1, e = l1 / l0;
            double ea = sb_abs(e);
            fr[q] = e / ea;
            *gph *= l0;
            *g2 *= creal(l0) * creal(l0) + cimag(l0) * cimag(l0);
            s->unit = 1;
            return;
        }
    }
    memcpy(s->Md, N, sizeof N);   /* N applied as is: the frame of q is used up */
    fr[q] = 1;
}

/* The steps for ops [0, og) in backward order; 0 if some op is not of the supported kinds.
 * fin: the d factors g F that make the stored lambda the true one at the end. */
static int sb_plan(const qd_circuit *c, const double *theta, size_t og, sb_step *st,
                   int *nst, sb_term *tm, int *ntm, double *signs, qd_c *fin)
{
    const int n = c->n;
    const size_t d = (size_t)1 << n;
    int ns = 0, nt = 0;
    size_t nsg = 0;
    qd_c fr[QD_MAX_QUBITS], gph = 1;
    double g2v = 1, *g2 = &g2v;
    for (int q = 0; q < n; q++)
        fr[q] = 1;
    for (size_t o = og; o-- > 0;) {
        const qd_op *op = &c->ops[o];
        sb_step *s = &st[ns];
        memset(s, 0, sizeof *s);
        s->t0 = nt;
        if (is_cz_op(op)) {   /* the run of cz ops ending at o: one +-1 diagonal */
            size_t o0 = o;
            while (o0 > 0 && is_cz_op(&c->ops[o0 - 1]))
                o0--;
            double *sg = signs + nsg;
            for (size_t i = 0; i < d; i++) {
                int par = 0;
                for (size_t t = o0; t <= o; t++) {
                    size_t mk = ((size_t)1 << (n - 1 - c->ops[t].qs[0])) |
                                ((size_t)1 << (n - 1 - c->ops[t].qs[1]));
                    par ^= (i & mk) == mk;
                }
                sg[i] = par ? -1.0 : 1.0;
            }
            s->kind = 1;
            s->sg = nsg;
            nsg += d;
            ns++;
            o = o0;
            continue;
        }
        if (is_cx_op(op)) {   /* the target's frame applied first (see above), then cx */
            const int qt = op->qs[1];
            if (creal(fr[qt]) != 1 || cimag(fr[qt]) != 0) {
                s->q = qt;
                s->Md[0] = s->Md[3] = 1;
                sb_frame_step(s, tm, fr, g2, &gph);   /* N = F_t: applied as is, d_t = 0 */
                s = &st[++ns];
                memset(s, 0, sizeof *s);
                s->t0 = nt;
            }
            s->kind = 2;
            s->q = op->qs[0];
            s->q2 = qt;
            ns++;
            continue;
        }
        if (op->kind != QD_OP_GATE || op->k != 1)
            return 0;
        int p2 = pauli_index(op);
        int d2 = op->g->nparams > 0 && op->slot[0] >= 0 && op->scale[0] != 0;
        if (d2 && p2 < 0)
            return 0;   /* a parameterised 1-qubit gate other than rx, ry, rz */
        s->q = op->qs[0];
        if (o > 0 && pauli_pair(c, o - 1, o)) {
            /* as the generic pass: both brackets from the state after the pair; for the
             * first, U2 P1 U2^dagger = cos(a2) P1 - eps sin(a2) Q (P1 != P2) */
            const qd_op *o1 = &c->ops[o - 1];
            int p1 = pauli_index(o1);
            int d1 = o1->slot[0] >= 0 && o1->scale[0] != 0;
            if (d2) {
                tm[nt] = (sb_term){op->slot[0], op->scale[0], {0, 0, 0}};
                tm[nt++].coef[p2] = 1;
            }
            if (d1) {
                tm[nt] = (sb_term){o1->slot[0], o1->scale[0], {0, 0, 0}};
                if (p1 == p2) {
                    tm[nt].coef[p2] = 1;
                } else {
                    double a2[3];
                    int pq = 3 - p1 - p2;
                    double eps = (p2 - p1 + 3) % 3 == 1 ? 1.0 : -1.0;
                    qd_op_angles(c, o, theta, NULL, a2);
                    tm[nt].coef[p1] = cos(a2[0]);
                    tm[nt].coef[pq] = -eps * sin(a2[0]);
                }
                nt++;
            }
            qd_c M[4];
            qd_circ_fused_matrix(c, o - 1, 2, theta, NULL, M);
            s->Md[0] = conj(M[0]);
            s->Md[1] = conj(M[2]);
            s->Md[2] = conj(M[1]);
            s->Md[3] = conj(M[3]);
            o--;
        } else {
            if (d2) {
                tm[nt] = (sb_term){op->slot[0], op->scale[0], {0, 0, 0}};
                tm[nt++].coef[p2] = 1;
            }
            qd_c M[4];
            qd_circ_fused_matrix(c, o, 1, theta, NULL, M);
            s->Md[0] = conj(M[0]);
            s->Md[1] = conj(M[2]);
            s->Md[2] = conj(M[1]);
            s->Md[3] = conj(M[3]);
        }
        s->nt = nt - s->t0;
        s->brk = s->nt > 0;
        sb_frame_step(s, tm, fr, g2, &gph);
        ns++;
    }
    *nst = ns;
    *ntm = nt;
    for (size_t i = 0; i < d; i++) {
        qd_c f = gph;
        for (int q = 0; q < n; q++)
            if ((i >> (n - 1 - q)) & 1)
                f *= fr[q];
        fin[i] = f;
    }
    return 1;
}

/* 1 if the circuit suits sweep_back: at most SB_MAXQ qubits; ops [0, og) gates, each a cz,
 * a cx or a 1-qubit gate whose differentiated parameters (slot >= 0, scale != 0) are those of
 * rx, ry, rz; ops [og, nops) measurements/resets; og > 0. */
static int sb_eligible(const qd_circuit *c, size_t *og)
{
    if (c->n > SB_MAXQ)
        return 0;
    size_t o = 0;
    while (o < c->nops && c->ops[o].kind != QD_OP_MEASURE && c->ops[o].kind != QD_OP_RESET)
        o++;
    *og = o;
    for (size_t t = o; t < c->nops; t++)
        if (c->ops[t].kind != QD_OP_MEASURE && c->ops[t].kind != QD_OP_RESET)
            return 0;
    for (size_t t = 0; t < o; t++) {
        const qd_op *op = &c->ops[t];
        if (is_cz_op(op) || is_cx_op(op))
            continue;
        if (op->kind != QD_OP_GATE || op->k != 1)
            return 0;
        for (int i = 0; i < op->g->nparams; i++)
            if (op->slot[i] >= 0 && op->scale[i] != 0 && pauli_index(op) < 0)
                return 0;
    }
    return o > 0;
}

/* a unit step in one pass over the amplitude pairs: the brackets (if BRK) from the
 * vectors as they are, then on both vectors the phase on |1>, the swap (if SW) and T */
static inline __attribute__((always_inline)) void
sb_unit_pass(const sb_step *s, double *S, double *T, size_t d, size_t b, const int BRK,
             const int SW, qd_vd *acc)
{
    const qd_vd ec = qd_vset1(s->ec), es = qd_vset1(s->es), C0 = qd_vset1(s->c0),
                C1 = qd_vset1(s->c1);
    qd_vd ax = qd_vzero(), ay = qd_vzero(), az = qd_vzero();
    for (size_t i = 0; i < d; i++) {
        if (i & b)
            continue;
        double *q[8] = {S + i * QD_VL, S + (d + i) * QD_VL, S + (i + b) * QD_VL,
                        S + (d + i + b) * QD_VL, T + i * QD_VL, T + (d + i) * QD_VL,
                        T + (i + b) * QD_VL, T + (d + i + b) * QD_VL};
        qd_vd v[8];
        for (int k = 0; k < 8; k++)
            v[k] = qd_vload(q[k]);
        if (BRK) {   /* p = v[0..3] (psi: 0r 0i 1r 1i), l = v[4..7] */
            /* four FMAs chained through each sum. Adding each pair's term to the sum
             * instead shortens the loop-carried chain (~9% on the tfim run with the avx2
             * set, AVX-512 Zen 4 class) but rounds differently and moves every result
             * that depends on these gradients, so the order stays; running two lane
             * blocks side by side (the same bits) gained only 2-5% with avx2 and lost
             * 3% on 4-qubit registers (bench/RESULTS.md, 2026-12-08), so not kept */
            ax = qd_vfnma(v[7], v[0], qd_vfma(v[6], v[1], qd_vfnma(v[5], v[2], qd_vfma(v[4], v[3], ax))));
            ay = qd_vfnma(v[5], v[3], qd_vfnma(v[4], v[2], qd_vfma(v[7], v[1], qd_vfma(v[6], v[0], ay))));
            az = qd_vfma(v[7], v[2], qd_vfnma(v[6], v[3], qd_vfnma(v[5], v[0], qd_vfma(v[4], v[1], az))));
        }
        for (int w = 0; w < 2; w++) {
            qd_vd ur = v[4 * w], ui = v[4 * w + 1];
            qd_vd vr = qd_vfnma(es, v[4 * w + 3], qd_vmul(ec, v[4 * w + 2])),
                  vi = qd_vfma(es, v[4 * w + 2], qd_vmul(ec, v[4 * w + 3]));
            if (SW) {
                qd_vd tr = ur, ti = ui;
                ur = vr;
                ui = vi;
                vr = tr;
                vi = ti;
            }
            qd_vstore(q[4 * w], qd_vfma(C0, vr, ur));
            qd_vstore(q[4 * w + 1], qd_vfma(C0, vi, ui));
            qd_vstore(q[4 * w + 2], qd_vfma(C1, ur, vr));
            qd_vstore(q[4 * w + 3], qd_vfma(C1, ui, vi));
        }
    }
    acc[0] = ax;
    acc[1] = ay;
    acc[2] = az;
}

/* one block: the steps on psi (S) and lambda (T), 2d rows x QD_VL lanes each; per-member
 * term values to val[(j0 + l) * nterms + term] */
static void sb_block(const sb_step *st, int ns, const sb_term *tm, const double *signs, int n,
                     double *S, double *T, double *val, int ntm, size_t j0, size_t nl)
{
    const size_t d = (size_t)1 << n;
    for (int k = 0; k < ns; k++) {
        const sb_step *s = &st[k];
        if (s->kind == 1) {
            const double *sg = signs + s->sg;
            for (size_t i = 0; i < d; i++) {
                if (sg[i] > 0)
                    continue;
                double *rows[4] = {S + i * QD_VL, S + (d + i) * QD_VL, T + i * QD_VL,
                                   T + (d + i) * QD_VL};
                for (int r = 0; r < 4; r++)
                    qd_vstore(rows[r], qd_vmul(qd_vset1(-1.0), qd_vload(rows[r])));
            }
            continue;
        }
        if (s->kind == 2) {   /* cx: rows i and i + tb swapped where the control is 1 */
            const size_t cb = (size_t)1 << (n - 1 - s->q), tb = (size_t)1 << (n - 1 - s->q2);
            for (size_t i = 0; i < d; i++) {
                if (!(i & cb) || (i & tb))
                    continue;
                double *rows[4] = {S + i * QD_VL, S + (d + i) * QD_VL, T + i * QD_VL,
                                   T + (d + i) * QD_VL};
                for (int r = 0; r < 4; r++) {
                    qd_vd a = qd_vload(rows[r]), bv = qd_vload(rows[r] + tb * QD_VL);
                    qd_vstore(rows[r], bv);
                    qd_vstore(rows[r] + tb * QD_VL, a);
                }
            }
            continue;
        }
        const size_t b = (size_t)1 << (n - 1 - s->q);
        if (s->unit) {
            qd_vd acc[3];
            switch (2 * s->brk + s->sw) {   /* constant flags: specialised loops */
            case 0: sb_unit_pass(s, S, T, d, b, 0, 0, acc); break;
            case 1: sb_unit_pass(s, S, T, d, b, 0, 1, acc); break;
            case 2: sb_unit_pass(s, S, T, d, b, 1, 0, acc); break;
            default: sb_unit_pass(s, S, T, d, b, 1, 1, acc); break;
            }
            if (s->brk) {
                double bx[QD_VL], by[QD_VL], bz[QD_VL];
                qd_vstore(bx, acc[0]);
                qd_vstore(by, acc[1]);
                qd_vstore(bz, acc[2]);
                for (int t = s->t0; t < s->t0 + s->nt; t++)
                    for (size_t l = 0; l < nl; l++)
                        val[(j0 + l) * (size_t)ntm + (size_t)t] = tm[t].coef[0] * bx[l] +
                                                          tm[t].coef[1] * by[l] +
                                                          tm[t].coef[2] * bz[l];
            }
            continue;
        }
        if (s->brk) {
            qd_vd ax = qd_vzero(), ay = qd_vzero(), az = qd_vzero();
            for (size_t i = 0; i < d; i++) {
                if (i & b)
                    continue;
                qd_vd l0r = qd_vload(T + i * QD_VL), l0i = qd_vload(T + (d + i) * QD_VL),
                      l1r = qd_vload(T + (i + b) * QD_VL), l1i = qd_vload(T + (d + i + b) * QD_VL),
                      p0r = qd_vload(S + i * QD_VL), p0i = qd_vload(S + (d + i) * QD_VL),
                      p1r = qd_vload(S + (i + b) * QD_VL), p1i = qd_vload(S + (d + i + b) * QD_VL);
                /* X: Im(conj(l0) p1 + conj(l1) p0)
                 * Y: Re(conj(l1) p0) - Re(conj(l0) p1)
                 * Z: Im(conj(l0) p0 - conj(l1) p1) */
                /* chained as in sb_unit_pass */
                ax = qd_vfnma(l1i, p0r, qd_vfma(l1r, p0i, qd_vfnma(l0i, p1r, qd_vfma(l0r, p1i, ax))));
                ay = qd_vfnma(l0i, p1i, qd_vfnma(l0r, p1r, qd_vfma(l1i, p0i, qd_vfma(l1r, p0r, ay))));
                az = qd_vfma(l1i, p1r, qd_vfnma(l1r, p1i, qd_vfnma(l0i, p0r, qd_vfma(l0r, p0i, az))));
            }
            double bx[QD_VL], by[QD_VL], bz[QD_VL];
            qd_vstore(bx, ax);
            qd_vstore(by, ay);
            qd_vstore(bz, az);
            for (int t = s->t0; t < s->t0 + s->nt; t++)
                for (size_t l = 0; l < nl; l++)
                    val[(j0 + l) * (size_t)ntm + (size_t)t] =
                        tm[t].coef[0] * bx[l] + tm[t].coef[1] * by[l] + tm[t].coef[2] * bz[l];
        }
        qd_soa_2x2(S, d, b, s->Md);   /* N itself (no unit form) on both vectors */
        qd_soa_2x2(T, d, b, s->Md);
    }
}

/* lane block blk (members blk QD_VL ...) through the steps, in the scratch S (4d x QD_VL) */
static void sb_lanes(const sb_step *st, int ns, const sb_term *tm, int nt, const double *signs,
                     const qd_c *fin, int n, qd_c *psi, qd_c *lam, size_t count, size_t blk,
                     int need_lam, double *val, double *S)
{
    const size_t d = (size_t)1 << n;
    double *T = S + 2 * d * QD_VL;
    const size_t j0 = blk * QD_VL, nl = count - j0 < QD_VL ? count - j0 : QD_VL;
    qd_soa_in(S, psi + j0 * d, d, nl);
    qd_soa_in(T, lam + j0 * d, d, nl);
    sb_block(st, ns, tm, signs, n, S, T, val, nt, j0, nl);
    if (need_lam) {   /* true lambda = g F T; psi is scratch: left as it was */
        for (size_t i = 0; i < d; i++) {
            qd_vd re = qd_vload(T + i * QD_VL), im = qd_vload(T + (d + i) * QD_VL);
            qd_vd fr = qd_vset1(creal(fin[i])), fi = qd_vset1(cimag(fin[i]));
            qd_vstore(T + i * QD_VL, qd_vfms(re, fr, qd_vmul(im, fi)));
            qd_vstore(T + (d + i) * QD_VL, qd_vfma(re, fi, qd_vmul(im, fr)));
        }
        qd_soa_out(T, lam + j0 * d, d, nl);
    }
}

/* ops [0, og) backward on psi and lambda (count members), gradient terms into grad (the
 * circuit passed sb_eligible); lambda written back only if need_lam (psi never: the caller
 * treats it as scratch). Returns 1, or 0 on an allocation failure (e set). */
static int sweep_back(const qd_circuit *c, const double *theta, size_t og, size_t count,
                      qd_c *psi, qd_c *lam, int need_lam, double *grad,
                      qd_adjoint_terms *out, qd_err *e)
{
    const int n = c->n;
    const size_t d = (size_t)1 << n;
    sb_step *st = qd_malloc(sizeof(sb_step) * 2 * og);   /* a cx may take two steps */
    sb_term *tm = qd_malloc(sizeof(sb_term) * 2 * og);
    double *signs = qd_malloc(sizeof(double) * d * og);
    qd_c *fin = qd_malloc(sizeof(qd_c) * d);
    int ns = 0, nt = 0, ok = 1;
    if (!st || !tm || !signs || !fin) {
        ok = -1;
        goto done;
    }
    if (!sb_plan(c, theta, og, st, &ns, tm, &nt, signs, fin)) {   /* cannot happen: eligible */
        ok = -1;
        goto done;
    }
    const size_t nblk = (count + QD_VL - 1) / QD_VL;
    int nth = 1;
#ifdef _OPENMP
    if (nblk > 1 && count * d >= 4096)
        nth = qd_get_threads();
#endif
    double *val = qd_malloc(sizeof(double) * ((size_t)nt * (count + 1) + 1));
    double *buf = qd_malloc(sizeof(double) * 4 * d * QD_VL * (size_t)nth);
    if (!val || !buf) {
        qd_free(val);
        qd_free(buf);
        ok = -1;
        goto done;
    }
    if (nth > 1) {   /* no OpenMP region on one thread (qd.h, qd_thread_num) */
        #pragma omp parallel for num_threads(nth) schedule(static)
        for (size_t blk = 0; blk < nblk; blk++)
            sb_lanes(st, ns, tm, nt, signs, fin, n, psi, lam, count, blk, need_lam, val,
                     buf + 4 * d * QD_VL * (size_t)qd_thread_num());
    } else {
        for (size_t blk = 0; blk < nblk; blk++)
            sb_lanes(st, ns, tm, nt, signs, fin, n, psi, lam, count, blk, need_lam, val, buf);
    }
    if (out) {   /* the caller sums them (qd_adjoint_terms) */
        memcpy(out->vals, val, sizeof(double) * (size_t)nt * count);
        out->nt = nt;
        for (int t = 0; t < nt; t++) {
            out->slots[t] = tm[t].slot;
            out->scales[t] = tm[t].scale;
        }
        qd_free(val);
        qd_free(buf);
        goto done;
    }
    /* per term: the members' values summed in member order (the terms side by side, so
     * the sums vectorise across terms; each is still one sequential sum) */
    double *acc = val + (size_t)nt * count;
    for (int t = 0; t < nt; t++)
        acc[t] = 0;
    for (size_t j = 0; j < count; j++) {
        const double *vj = val + j * (size_t)nt;
        #pragma omp simd
        for (int t = 0; t < nt; t++)
            acc[t] += vj[t];
    }
    for (int t = 0; t < nt; t++)   /* in step order (backward) */
        grad[tm[t].slot] += tm[t].scale * acc[t];
    qd_free(val);
    qd_free(buf);
done:
    qd_free(st);
    qd_free(tm);
    qd_free(signs);
    qd_free(fin);
    if (ok < 0)
        qd_fail(e, QD_ENOMEM, "not enough memory for the gradient's work buffers");
    return ok > 0;
}

/* The backward pass in steps: the state of one pass (vjp_back) and one function per kind
 * of op met going backwards (a measurement/reset, a pair of Pauli rotations on one qubit,
 * any other gate; cz runs are one diagonal). */
typedef struct {
    const qd_circuit *c;
    const double *theta;
    size_t count, d, amps;
    int n, nm, par;
    const size_t *outcomes;
    const double *dLdP, *pm, *P;
    double *contrib, *grad;
    qd_c *psi, *lam;
} vjp_pass;

/* where lambda's amplitudes come from: the kept qubits and the discarded qubits' sources */
typedef struct {
    int kept[QD_MAX_QUBITS], src_mi[QD_MAX_QUBITS], src_bit[QD_MAX_QUBITS], nout;
} vjp_layout;

/* member j of lambda = G on the kept qubits (x) the discarded qubits' basis state */
static void vjp_lambda_member(const vjp_pass *v, const vjp_layout *ly, const qd_c *G, size_t j)
{
    const int n = v->n, nm = v->nm, nout = ly->nout;
    const size_t d = v->d, dout = (size_t)1 << nout;
    qd_c *lj = v->lam + j * d;
    if (nout == n && v->P[j] != 0) {   /* nothing discarded: lambda = G */
        memcpy(lj, G + j * d, sizeof(qd_c) * d);
        return;
    }
    memset(lj, 0, sizeof(qd_c) * d);
    if (v->P[j] == 0)
        return;
    size_t dpat = 0;
    for (int q = 0; q < n; q++)
        if (ly->src_mi[q] >= 0 &&
            ((v->outcomes[j * (size_t)nm + (size_t)ly->src_mi[q]] >> ly->src_bit[q]) & 1))
            dpat |= (size_t)1 << (n - 1 - q);
    const qd_c *gj = G + j * dout;
    for (size_t r = 0; r < dout; r++) {
        size_t i = dpat;
        for (int t = 0; t < nout; t++)
            if ((r >> (nout - 1 - t)) & 1)
                i |= (size_t)1 << (n - 1 - ly->kept[t]);
        lj[i] = gj[r];
    }
}

/* lambda = G on the kept qubits (x) the discarded qubits' basis state */
static void vjp_lambda(const vjp_pass *v, const qd_c *G)
{
    vjp_layout ly;
    ly.nout = qd_circuit_nout(v->c, ly.kept);
    discard_sources(v->c, ly.src_mi, ly.src_bit);
    if (v->par) {   /* no OpenMP region on one thread (qd.h, qd_thread_num) */
        #pragma omp parallel for schedule(static)
        for (size_t j = 0; j < v->count; j++)
            vjp_lambda_member(v, &ly, G, j);
    } else {
        for (size_t j = 0; j < v->count; j++)
            vjp_lambda_member(v, &ly, G, j);
    }
}

/* member j through measurement or reset op (the mi-th), see vjp_measure */
static void vjp_measure_member(const vjp_pass *v, const qd_op *op, int mi, size_t j)
{
    const int n = v->n, nm = v->nm;
    const size_t d = v->d, count = v->count;
    if (v->P[j] == 0)
        return;
    qd_c *pj = v->psi + j * d, *lj = v->lam + j * d;
    size_t m = v->outcomes[j * (size_t)nm + (size_t)mi], mask;
    size_t pat = qd_circ_pattern(n, op->qs, op->k, m, &mask);
    if (op->kind == QD_OP_RESET) {
        xor_permute(pj, d, pat);
        xor_permute(lj, d, pat);
    }
    double p = v->pm[(size_t)mi * count + j], sq = sqrt(p);
    double re = 0;
    for (size_t i = 0; i < d; i++)
        re += creal(lj[i]) * creal(pj[i]) + cimag(lj[i]) * cimag(pj[i]);
    double extra = v->dLdP ? v->dLdP[j] * (v->P[j] / p) * sq : 0;   /* (dL/dp_i) phi = . psi' */
    /* lj = (lj - re pj) / sq + extra pj on the outcome's block, 0 elsewhere (the complex
     * arithmetic written out per part: the same operations, vectorised) */
    double *l2 = (double *)lj;
    const double *p2 = (const double *)pj;
    #pragma omp simd
    for (size_t i = 0; i < d; i++) {
        double nr = (l2[2 * i] - re * p2[2 * i]) / sq + extra * p2[2 * i];
        double ni = (l2[2 * i + 1] - re * p2[2 * i + 1]) / sq + extra * p2[2 * i + 1];
        int keep = (i & mask) == pat;
        l2[2 * i] = keep ? nr : 0;
        l2[2 * i + 1] = keep ? ni : 0;
    }
}

/* measurement or reset op (the mi-th): lambda through the normalised projection (and the
 * outcome probability's own gradient dL/dP), psi back to the tape's state before it */
static void vjp_measure(const vjp_pass *v, const qd_op *op, int mi, const qd_c *ck)
{
    if (v->par) {
        #pragma omp parallel for schedule(static)
        for (size_t j = 0; j < v->count; j++)
            vjp_measure_member(v, op, mi, j);
    } else {
        for (size_t j = 0; j < v->count; j++)
            vjp_measure_member(v, op, mi, j);
    }
    memcpy(v->psi, ck + v->amps * (size_t)mi, sizeof(qd_c) * v->amps);
}

/* ops o-1, o: rotations exp(-i a1 P1/2) then exp(-i a2 P2/2) on one qubit, as fused by the
 * forward run: both brackets from the state after the pair, one 2x2 pass each to uncompute
 * psi and lambda. For the first one,
 *   <lam_1|P1|psi_1> = <lam_2| U2 P1 U2^dagger |psi_2>,
 *   U2 P1 U2^dagger = P1 (P1 = P2), else cos(a2) P1 - eps sin(a2) Q
 * with P1 P2 = i eps Q (eps = +-1, Q the third Pauli). */
static void vjp_pauli_pair(const vjp_pass *v, size_t o)
{
    const qd_circuit *c = v->c;
    const qd_op *op = &c->ops[o], *o1 = &c->ops[o - 1];
    int p1 = pauli_index(o1), p2 = pauli_index(op), q = op->qs[0];
    size_t b = (size_t)1 << (v->n - 1 - q);
    double br[3], a2[3];
    int need1 = o1->slot[0] >= 0 && o1->scale[0] != 0 && p1 != p2;
    if (need1)   /* all three brackets in one pass */
        pauli3_braket_sum(v->lam, v->psi, v->amps, b, br);
    else
        br[p2] = pauli1_braket_sum(v->lam, v->psi, v->amps, b, "XYZ"[p2]);
    if (op->slot[0] >= 0 && op->scale[0] != 0)
        v->grad[op->slot[0]] += op->scale[0] * br[p2];
    if (o1->slot[0] >= 0 && o1->scale[0] != 0) {
        double bf;
        if (p1 == p2) {
            bf = br[p2];
        } else {
            int pq = 3 - p1 - p2;
            double eps = (p2 - p1 + 3) % 3 == 1 ? 1.0 : -1.0;
            qd_op_angles(c, o, v->theta, NULL, a2);
            bf = cos(a2[0]) * br[p1] - eps * sin(a2[0]) * br[pq];
        }
        v->grad[o1->slot[0]] += o1->scale[0] * bf;
    }
    qd_c M[4], Md[4];
    qd_circ_fused_matrix(c, o - 1, 2, v->theta, NULL, M);
    Md[0] = conj(M[0]);
    Md[1] = conj(M[2]);
    Md[2] = conj(M[1]);
    Md[3] = conj(M[3]);
    qd_k_1q(v->psi, v->n, v->count, q, Md);
    qd_k_1q(v->lam, v->n, v->count, q, Md);
}

/* any other op o: its angles' gradients (a Pauli rotation from one bracket with the state
 * after it; other gates from the exact matrix derivative), psi and lambda uncomputed */
static qd_status vjp_gate(const vjp_pass *v, size_t o, qd_err *e)
{
    const qd_circuit *c = v->c;
    const qd_op *op = &c->ops[o];
    const int n = v->n;
    const size_t d = v->d, count = v->count;
    double ang[3];
    qd_op_angles(c, o, v->theta, NULL, ang);
    size_t px, pz;
    int pny;
    int pauli = op->kind == QD_OP_GATE && op->slot[0] >= 0 && op->scale[0] != 0 &&
                pauli_of(op, n, &px, &pz, &pny);
    if (pauli) {   /* before uncomputing: needs the state after the gate */
        double sc = op->scale[0];
        if (op->k == 1 && !v->par) {   /* small: one vectorised pass over all members */
            v->grad[op->slot[0]] += sc * pauli1_braket_sum(v->lam, v->psi, v->amps, px | pz,
                                                           pny ? 'Y' : px ? 'X' : 'Z');
        } else if (op->k == 1) {   /* large: member by member, each a vectorised pass */
            const char p = pny ? 'Y' : px ? 'X' : 'Z';
            #pragma omp parallel for schedule(static)
            for (size_t j = 0; j < count; j++)
                v->contrib[j] = sc * pauli1_braket_sum(v->lam + j * d, v->psi + j * d, d, px | pz, p);
            double acc = 0;
            for (size_t j = 0; j < count; j++)
                acc += v->contrib[j];
            v->grad[op->slot[0]] += acc;
        } else {
            if (v->par) {
                #pragma omp parallel for schedule(static)
                for (size_t j = 0; j < count; j++)
                    v->contrib[j] = sc * cimag(pauli_braket(v->lam + j * d, v->psi + j * d, d, px, pz, pny));
            } else {
                for (size_t j = 0; j < count; j++)
                    v->contrib[j] = sc * cimag(pauli_braket(v->lam + j * d, v->psi + j * d, d, px, pz, pny));
            }
            double acc = 0;
            for (size_t j = 0; j < count; j++)
                acc += v->contrib[j];
            v->grad[op->slot[0]] += acc;
        }
    }
    qd_status st = qd_circ_apply_op(c, o, ang, v->psi, count, 1, e);   /* psi <- psi before op o */
    if (st != QD_OK)
        return st;
    if (op->kind == QD_OP_GATE && !pauli)
        for (int i = 0; i < op->g->nparams; i++) {
            int s = op->slot[i];
            if (s < 0 || op->scale[i] == 0)
                continue;
            qd_c D[16];
            qd_gate_dmatrix(op->g, ang, i, D);
            double sc = 2 * op->scale[i];
            if (v->par) {
                #pragma omp parallel for schedule(static)
                for (size_t j = 0; j < count; j++)
                    v->contrib[j] = sc * creal(braket_local(v->lam + j * d, v->psi + j * d, n,
                                                            op->qs, op->k, D));
            } else {
                for (size_t j = 0; j < count; j++)
                    v->contrib[j] = sc * creal(braket_local(v->lam + j * d, v->psi + j * d, n,
                                                            op->qs, op->k, D));
            }
            double acc = 0;
            for (size_t j = 0; j < count; j++)
                acc += v->contrib[j];
            v->grad[s] += acc;
        }
    return qd_circ_apply_op(c, o, ang, v->lam, count, 1, e);
}

/* The backward pass: psi = final state of the forward run (overwritten: scratch, undefined
 * afterwards), ck/pm its tape. */
/* out (qd_circuit_vjp_vec_tape_terms): the lane sweep's per-member terms instead of their
 * sum; count_whole: the member count of the whole ensemble (the lane-path choice) */
static qd_status vjp_back(const qd_circuit *c, const double *theta, size_t count,
                          const size_t *outcomes, const qd_c *G, const double *dLdP,
                          double *grad, qd_c *G_in, double *prob, qd_c *psi, qd_c *lam,
                          const qd_c *ck, double *pm, qd_adjoint_terms *out,
                          size_t count_whole, qd_err *e)
{
    const int nm = c->nmeas;
    const size_t d = (size_t)1 << c->n, amps = d * count;
    double *P = pm + count * (size_t)nm;
    vjp_pass v = {c, theta, count, d, amps, c->n, nm, count > 1 && amps >= QD_PAR_MIN, outcomes, dLdP,
                  pm, P, P + count, grad, psi, lam};
    qd_status st = QD_OK;
    for (size_t j = 0; j < count; j++) {
        double pj = 1;
        for (int i = 0; i < nm; i++)
            pj *= pm[(size_t)i * count + j];
        P[j] = pj;
        if (prob)
            prob[j] = pj;
    }
    vjp_lambda(&v, G);
    for (int s = 0; s < c->nslots; s++)
        grad[s] = 0;
    /* small registers, gates then measurements: the gates by sweep_back (after the
     * measurements below); lo = the first op the loop below handles. A lone state of 6
     * qubits or more goes the generic way: the lane sweep would carry QD_VL - 1 empty
     * lanes (a Born machine's gradient at n = 8-10: 2-3x faster; measured on AVX-512) */
    size_t og = 0, lo = 0;
    if (!qd_adjoint_generic_only && !(count_whole == 1 && c->n >= QD_SB_LONE_GENERIC) &&
        qd_isa_fma_hw() && sb_eligible(c, &og))
        lo = og;
    if (out && lo == 0)
        return qd_fail(e, QD_EARG, "the per-member gradient terms need the lane pass: at most %d "
                                   "qubits, gates (rx, ry, rz and other 1-qubit gates, cz, cx) all "
                                   "before the measurements, a CPU with FMA", SB_MAXQ);
    int mi = nm;
    for (size_t o = c->nops; o-- > lo && st == QD_OK;) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET) {
            vjp_measure(&v, op, --mi, ck);
            continue;
        }
        int rc = qd_circ_runcz(c, o, -1);
        if (rc > 1) {   /* a run of cz ops o-rc+1 .. o: one +-1 diagonal, self-inverse */
            size_t o0 = o + 1 - (size_t)rc;
            qd_circ_apply_czrun(c, o0, rc, psi, count);
            qd_circ_apply_czrun(c, o0, rc, lam, count);
            o = o0;   /* the loop continues with op o0 - 1 */
            continue;
        }
        if (!v.par && o > 0 && pauli_pair(c, o - 1, o)) {
            vjp_pauli_pair(&v, o);
            o--;   /* op o - 1 done too */
            continue;
        }
        st = vjp_gate(&v, o, e);
    }
    if (st == QD_OK && lo > 0 &&
        !sweep_back(c, theta, lo, count, psi, lam, G_in != NULL, grad, out, e))
        st = QD_ENOMEM;
    if (st == QD_OK && G_in)
        memcpy(G_in, lam, sizeof(qd_c) * amps);
    return st;
}

qd_status qd_circuit_vjp_vec_tape(const qd_circuit *c, const double *theta, size_t count,
                                  const size_t *outcomes, const qd_c *G, const double *dLdP,
                                  double *grad, qd_c *G_in, double *prob, qd_c *psi,
                                  qd_c *lam, const qd_c *ck, double *pm, qd_err *e)
{
    if (c->ncondops)
        return qd_fail(e, QD_EARG, "no gradient through a conditional op (an OpenQASM 'if' on measured bits)");
    if (c->nchan)
        return qd_fail(e, QD_EARG, "no gradient through a channel on pure states (its Kraus operator "
                                   "is sampled): use a DensityMatrix input for gradients of noisy circuits");
    if (c->nmeas && !outcomes)
        return qd_fail(e, QD_EARG, "the circuit has measurements: outcomes must be given");
    return vjp_back(c, theta, count, outcomes, G, dLdP, grad, G_in, prob, psi, lam, ck, pm, NULL,
                    count, e);
}

qd_status qd_circuit_vjp_vec_tape_terms(const qd_circuit *c, const double *theta, size_t count,
                                        size_t count_whole, const size_t *outcomes,
                                        const qd_c *G, qd_adjoint_terms *out, qd_c *psi,
                                        qd_c *lam, const qd_c *ck, double *pm, qd_err *e)
{
    if (c->ncondops || c->nchan)
        return qd_fail(e, QD_EARG, "no gradient through a conditional op or a channel on pure states");
    if (c->nmeas && !outcomes)
        return qd_fail(e, QD_EARG, "the circuit has measurements: outcomes must be given");
    double *grad = qd_malloc(sizeof(double) * (size_t)(c->nslots + 1));
    if (!grad)
        return qd_fail(e, QD_ENOMEM, "not enough memory for the gradient");
    /* only measurement ops run before the lane sweep here: nothing is added to grad */
    qd_status st = vjp_back(c, theta, count, outcomes, G, NULL, grad, NULL, NULL, psi, lam, ck,
                            pm, out, count_whole, e);
    qd_free(grad);
    return st;
}

qd_status qd_circuit_vjp_vec(const qd_circuit *c, const double *theta, const qd_c *x,
                             size_t count, const size_t *outcomes, const qd_c *G,
                             const double *dLdP, double *grad, qd_c *G_in, double *prob,
                             qd_err *e)
{
    if (c->ncondops)
        return qd_fail(e, QD_EARG, "no gradient through a conditional op (an OpenQASM 'if' on measured bits)");
    if (c->nchan)
        return qd_fail(e, QD_EARG, "no gradient through a channel on pure states (its Kraus operator "
                                   "is sampled): use a DensityMatrix input for gradients of noisy circuits");
    const int n = c->n, nm = c->nmeas;
    const size_t d = (size_t)1 << n;
    if (nm && !outcomes)
        return qd_fail(e, QD_EARG, "the circuit has measurements: outcomes must be given");
    size_t amps = d * count, bytes;
    if (qd_mul_overflow(amps, sizeof(qd_c) * (size_t)(2 + nm), &bytes))
        return qd_fail(e, QD_ENOMEM, "gradient buffers overflow");
    qd_c *psi = qd_malloc(sizeof(qd_c) * amps), *lam = qd_malloc(sizeof(qd_c) * amps);
    qd_c *ck = nm ? qd_malloc(sizeof(qd_c) * amps * (size_t)nm) : NULL;
    double *pm = qd_malloc(sizeof(double) * count * (size_t)(nm + 2));
    if (!psi || !lam || (nm && !ck) || !pm) {
        qd_free(psi);
        qd_free(lam);
        qd_free(ck);
        qd_free(pm);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the gradient buffers (%zu members of %d qubits)",
                       count, n);
    }
    memcpy(psi, x, sizeof(qd_c) * amps);
    qd_status st = QD_OK;

    /* forward, outcomes fixed, checkpoints before each measurement: the same run as
     * c:run (so c:grad, which reuses its run, gives bitwise the same result) */
    qd_meas_ctl mc = {NULL, (size_t *)outcomes, 1, 1, NULL};
    st = qd_circuit_run_vec_tape(c, theta, psi, count, &mc, ck, pm, e);
    if (st != QD_OK)
        goto done;
    st = vjp_back(c, theta, count, outcomes, G, dLdP, grad, G_in, prob, psi, lam, ck, pm, NULL,
                  count, e);
done:
    qd_free(psi);
    qd_free(lam);
    qd_free(ck);
    qd_free(pm);
    return st;
}

/* lambda = G (x) I on the discarded qubits (adjoint of the partial trace) */
static void dm_lambda(const qd_circuit *c, const qd_c *G, qd_c *lam)
{
    const int n = c->n;
    const size_t d = (size_t)1 << n;
    int kept[QD_MAX_QUBITS];
    const int nout = qd_circuit_nout(c, kept);
    const size_t dout = (size_t)1 << nout;
    size_t dmask = 0;
    for (int q = 0; q < n; q++)
        if ((c->discarded >> q) & 1)
            dmask |= (size_t)1 << (n - 1 - q);
    #pragma omp parallel for schedule(static) if (d * d >= QD_PAR_MIN)
    for (size_t cc = 0; cc < d; cc++)
        for (size_t r = 0; r < d; r++) {
            qd_c v = 0;
            if ((r & dmask) == (cc & dmask)) {
                size_t rk = 0, ckk = 0;
                for (int t = 0; t < nout; t++) {
                    int b = n - 1 - kept[t];
                    rk = (rk << 1) | ((r >> b) & 1);
                    ckk = (ckk << 1) | ((cc >> b) & 1);
                }
                v = G[rk + ckk * dout];
            }
            lam[r + cc * d] = v;
        }
}

/* the angles' gradients of gate op on a density matrix: A = rho before the op, lam the
 * adjoint after it, B scratch (4^n) */
static qd_status dm_gate_grad(const qd_op *op, int n, const double *ang, const qd_c *A,
                              const qd_c *lam, qd_c *B, double *grad, qd_err *e)
{
    const size_t amps = (size_t)1 << (2 * n);
    int k = op->k, rq[3];
    for (int i = 0; i < k; i++)
        rq[i] = n + op->qs[i];   /* row qubits in the 2n-qubit vector view */
    size_t dk = (size_t)1 << k;
    qd_c M[16], Mc[16];
    qd_gate_matrix(op->g, ang, M);
    for (size_t l = 0; l < dk * dk; l++)
        Mc[l] = conj(M[l]);
    for (int i = 0; i < op->g->nparams; i++) {
        int s = op->slot[i];
        if (s < 0 || op->scale[i] == 0)
            continue;
        qd_c D[16], Dc[16];
        qd_gate_dmatrix(op->g, ang, i, D);
        for (size_t l = 0; l < dk * dk; l++)
            Dc[l] = conj(D[l]);
        /* term 1: <lam| dU (x) conj(U) |A> = contraction of dU on the rows of
         * A U^dagger (conj U on the column qubits) */
        memcpy(B, A, sizeof(qd_c) * amps);
        qd_status st = qd_apply_matrix(B, 2 * n, 1, op->qs, k, Mc, e);
        if (st != QD_OK)
            return st;
        qd_c t1 = braket_local(lam, B, 2 * n, rq, k, D);
        /* term 2: <lam| U (x) conj(dU) |A> */
        memcpy(B, A, sizeof(qd_c) * amps);
        if ((st = qd_apply_matrix(B, 2 * n, 1, rq, k, M, e)) != QD_OK)
            return st;
        qd_c t2 = braket_local(lam, B, 2 * n, op->qs, k, Dc);
        grad[s] += 2 * op->scale[i] * creal(t1 + t2);
    }
    return QD_OK;
}

/* Im <lam| P_b |psi> over amps amplitudes, P a one-qubit Pauli on index bit b: fixed chunks
 * (a multiple of 2b, independent of the thread count) summed in order */
static double dm_pauli1_im(const qd_c *lam, const qd_c *psi, size_t amps, size_t b, char p)
{
    size_t chunk = 2 * b > ((size_t)1 << 14) ? 2 * b : (size_t)1 << 14;
    size_t nc = amps / chunk;
    if (nc < 2)
        return pauli1_braket_sum(lam, psi, amps, b, p);
    double *part = qd_malloc(sizeof(double) * nc);
    if (!part)
        return pauli1_braket_sum(lam, psi, amps, b, p);
    #pragma omp parallel for schedule(static) if (amps >= QD_PAR_MIN)
    for (size_t i = 0; i < nc; i++)
        part[i] = pauli1_braket_sum(lam + i * chunk, psi + i * chunk, chunk, b, p);
    double sum = 0;
    for (size_t i = 0; i < nc; i++)
        sum += part[i];
    qd_free(part);
    return sum;
}

/* A Pauli rotation exp(-i a P/2) on a density matrix: rho' = U rho U^dagger gives
 * d rho'/da = (-i/2)(P rho' - rho' P), so with dL = 2 Re <lam, d rho'>
 *   dL/da = Im <lam, P rho'> - Im <lam, rho' P>,
 * two Pauli brakets over the 2n-qubit vector view of column-major rho' (column bits high,
 * row bits low): P acts on the row bits; rho' P = (P^T on the column bits), P^T =
 * (-1)^ny P. Reads rho' and lam once each per term: no copy, no matrix product (the
 * generic path, dm_gate_grad, needs both). Returns 0 if op is not such a rotation. */
static int dm_pauli_grad(const qd_op *op, int n, const qd_c *post, const qd_c *lam, double *grad)
{
    size_t x, z;
    int ny;
    if (op->g->nparams != 1 || !pauli_of(op, n, &x, &z, &ny))
        return 0;
    int s = op->slot[0];
    if (s < 0 || op->scale[0] == 0)
        return 1;
    size_t amps = (size_t)1 << (2 * n);
    double rows, cols;
    if (op->k == 1) {   /* the vectorised pair loop, on the row bit and on the column bit */
        size_t b = (size_t)1 << (n - 1 - op->qs[0]);
        rows = dm_pauli1_im(lam, post, amps, b, op->g->pauli);
        cols = dm_pauli1_im(lam, post, amps, b << n, op->g->pauli);
    } else {
        rows = cimag(pauli_braket(lam, post, amps, x, z, ny));
        cols = cimag(pauli_braket(lam, post, amps, x << n, z << n, ny));
    }
    grad[s] += op->scale[0] * (rows - ((ny & 1) ? -cols : cols));
    return 1;
}

qd_status qd_circuit_vjp_dm(const qd_circuit *c, const double *theta, const qd_c *rho,
                            const qd_c *G, double *grad, qd_c *G_in, qd_err *e)
{
    if (c->ncondops)
        return qd_fail(e, QD_EARG, "no gradient through a conditional op (an OpenQASM 'if' on measured bits)");
    /* the tape: rho before every measurement, reset and channel (none of them invertible) */
    const int n = c->n, nm = c->nmeas + c->nchan;
    if (2 * n > QD_MAX_QUBITS)
        return qd_fail(e, QD_ENOMEM, "density matrix too large");
    const size_t d = (size_t)1 << n, amps = d * d;
    qd_c *A = qd_malloc(sizeof(qd_c) * amps), *lam = qd_malloc(sizeof(qd_c) * amps);
    qd_c *B = qd_malloc(sizeof(qd_c) * amps);
    qd_c *ck = nm ? qd_malloc(sizeof(qd_c) * amps * (size_t)nm) : NULL;
    if (!A || !lam || !B || (nm && !ck)) {
        qd_free(A);
        qd_free(lam);
        qd_free(B);
        qd_free(ck);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the gradient buffers (%d-qubit density matrices)", n);
    }
    memcpy(A, rho, sizeof(qd_c) * amps);
    qd_status st = QD_OK;
    int mi = 0;
    for (size_t o = 0; o < c->nops && st == QD_OK; o++) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET || op->kind == QD_OP_CHANNEL) {
            memcpy(ck + amps * (size_t)mi++, A, sizeof(qd_c) * amps);
            if (op->kind == QD_OP_MEASURE)
                qd_circ_dm_dephase(A, n, op->qs, op->k);
            else if (op->kind == QD_OP_RESET)
                qd_circ_dm_reset(A, n, op->qs, op->k, 0);
            else
                st = qd_circ_apply_op_dm(c, o, NULL, A, 0, e);
        } else {
            double ang[3];
            qd_op_angles(c, o, theta, NULL, ang);
            st = qd_circ_apply_op_dm(c, o, ang, A, 0, e);
        }
    }
    if (st != QD_OK)
        goto done;
    dm_lambda(c, G, lam);
    for (int s = 0; s < c->nslots; s++)
        grad[s] = 0;
    mi = nm;
    for (size_t o = c->nops; o-- > 0 && st == QD_OK;) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET || op->kind == QD_OP_CHANNEL) {
            mi--;
            if (op->kind == QD_OP_MEASURE)
                qd_circ_dm_dephase(lam, n, op->qs, op->k);
            else if (op->kind == QD_OP_RESET)
                qd_circ_dm_reset(lam, n, op->qs, op->k, 1);
            else   /* the adjoint map: lam <- sum_i K_i^dagger lam K_i */
                st = qd_circ_apply_op_dm(c, o, NULL, lam, 1, e);
            memcpy(A, ck + amps * (size_t)mi, sizeof(qd_c) * amps);
            continue;
        }
        double ang[3];
        qd_op_angles(c, o, theta, NULL, ang);
        /* Pauli rotations from rho after the op (A now); other gates from rho before it */
        int done = op->kind == QD_OP_GATE && op->g->nparams > 0 && dm_pauli_grad(op, n, A, lam, grad);
        st = qd_circ_apply_op_dm(c, o, ang, A, 1, e);   /* A <- rho before op o */
        if (st != QD_OK)
            break;
        if (!done && op->kind == QD_OP_GATE && op->g->nparams > 0 &&
            (st = dm_gate_grad(op, n, ang, A, lam, B, grad, e)) != QD_OK)
            break;
        st = qd_circ_apply_op_dm(c, o, ang, lam, 1, e);   /* lam <- U^dagger lam U */
    }
    if (st == QD_OK && G_in)
        memcpy(G_in, lam, sizeof(qd_c) * amps);
done:
    qd_free(A);
    qd_free(lam);
    qd_free(B);
    qd_free(ck);
    return st;
}
