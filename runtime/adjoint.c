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
#include <math.h>
#include <string.h>

#define PAR_MIN ((size_t)1 << 14)

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
    const char *g = op->g->name;
    char p;
    if (!strcmp(g, "rx") || !strcmp(g, "rxx"))
        p = 'X';
    else if (!strcmp(g, "ry") || !strcmp(g, "ryy"))
        p = 'Y';
    else if (!strcmp(g, "rz") || !strcmp(g, "rzz"))
        p = 'Z';
    else
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
        ar += sg * (lr * pr + li * pi);
        ai += sg * (lr * pi - li * pr);
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

qd_status qd_circuit_vjp_vec(const qd_circuit *c, const double *theta, const qd_c *x,
                             size_t count, const size_t *outcomes, const qd_c *G,
                             const double *dLdP, double *grad, qd_c *G_in, double *prob,
                             qd_err *e)
{
    const int n = c->n, nm = c->nmeas;
    const size_t d = (size_t)1 << n;
    int kept[QD_MAX_QUBITS];
    const int nout = qd_circuit_nout(c, kept);
    const size_t dout = (size_t)1 << nout;
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
    double *P = pm + count * (size_t)nm, *contrib = P + count;
    memcpy(psi, x, sizeof(qd_c) * amps);
    qd_status st = QD_OK;
    const int par = count > 1 && amps >= PAR_MIN;

    /* forward, outcomes fixed, checkpoints before each measurement */
    int mi = 0;
    for (size_t o = 0; o < c->nops && st == QD_OK; o++) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET) {
            memcpy(ck + amps * (size_t)mi, psi, sizeof(qd_c) * amps);
            size_t K = (size_t)1 << op->k;
            for (size_t j = 0; j < count; j++)
                if (outcomes[j * (size_t)nm + (size_t)mi] >= K)
                    st = qd_fail(e, QD_EARG, "outcome of measurement %d out of range 0..%zu (member %zu)",
                                 mi + 1, K - 1, j + 1);
            if (st != QD_OK)
                break;
            #pragma omp parallel for schedule(static) if (par)
            for (size_t j = 0; j < count; j++)
                pm[(size_t)mi * count + j] =
                    qd_circ_project(psi + j * d, n, op->qs, op->k, outcomes[j * (size_t)nm + (size_t)mi],
                                    op->kind == QD_OP_RESET);
            mi++;
        } else {
            double ang[3];
            qd_op_angles(c, o, theta, NULL, ang);
            st = qd_circ_apply_op(c, o, ang, psi, count, 0, e);
        }
    }
    if (st != QD_OK)
        goto done;
    for (size_t j = 0; j < count; j++) {
        double pj = 1;
        for (int i = 0; i < nm; i++)
            pj *= pm[(size_t)i * count + j];
        P[j] = pj;
        if (prob)
            prob[j] = pj;
    }

    /* lambda = G on the kept qubits (x) the discarded qubits' basis state */
    {
        int src_mi[QD_MAX_QUBITS], src_bit[QD_MAX_QUBITS];
        discard_sources(c, src_mi, src_bit);
        #pragma omp parallel for schedule(static) if (par)
        for (size_t j = 0; j < count; j++) {
            qd_c *lj = lam + j * d;
            memset(lj, 0, sizeof(qd_c) * d);
            if (P[j] == 0)
                continue;
            size_t dpat = 0;
            for (int q = 0; q < n; q++)
                if (src_mi[q] >= 0 &&
                    ((outcomes[j * (size_t)nm + (size_t)src_mi[q]] >> src_bit[q]) & 1))
                    dpat |= (size_t)1 << (n - 1 - q);
            const qd_c *gj = G + j * dout;
            for (size_t r = 0; r < dout; r++) {
                size_t i = dpat;
                for (int t = 0; t < nout; t++)
                    if ((r >> (nout - 1 - t)) & 1)
                        i |= (size_t)1 << (n - 1 - kept[t]);
                lj[i] = gj[r];
            }
        }
    }

    for (int s = 0; s < c->nslots; s++)
        grad[s] = 0;
    mi = nm;
    for (size_t o = c->nops; o-- > 0 && st == QD_OK;) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET) {
            mi--;
            const int reset = op->kind == QD_OP_RESET;
            #pragma omp parallel for schedule(static) if (par)
            for (size_t j = 0; j < count; j++) {
                if (P[j] == 0)
                    continue;
                qd_c *pj = psi + j * d, *lj = lam + j * d;
                size_t m = outcomes[j * (size_t)nm + (size_t)mi], mask;
                size_t pat = qd_circ_pattern(n, op->qs, op->k, m, &mask);
                if (reset) {
                    xor_permute(pj, d, pat);
                    xor_permute(lj, d, pat);
                }
                double p = pm[(size_t)mi * count + j], sq = sqrt(p);
                double re = 0;
                for (size_t i = 0; i < d; i++)
                    re += creal(lj[i]) * creal(pj[i]) + cimag(lj[i]) * cimag(pj[i]);
                double extra = dLdP ? dLdP[j] * (P[j] / p) * sq : 0;   /* (dL/dp_i) phi = . psi' */
                for (size_t i = 0; i < d; i++)
                    lj[i] = (i & mask) == pat ? (lj[i] - re * pj[i]) / sq + extra * pj[i] : 0;
            }
            memcpy(psi, ck + amps * (size_t)mi, sizeof(qd_c) * amps);
            continue;
        }
        double ang[3];
        qd_op_angles(c, o, theta, NULL, ang);
        size_t px, pz;
        int pny;
        int pauli = op->kind == QD_OP_GATE && op->slot[0] >= 0 && op->scale[0] != 0 &&
                    pauli_of(op, n, &px, &pz, &pny);
        if (pauli) {   /* before uncomputing: needs the state after the gate */
            double sc = op->scale[0];
            #pragma omp parallel for schedule(static) if (par)
            for (size_t j = 0; j < count; j++)
                contrib[j] = sc * cimag(pauli_braket(lam + j * d, psi + j * d, d, px, pz, pny));
            double acc = 0;
            for (size_t j = 0; j < count; j++)
                acc += contrib[j];
            grad[op->slot[0]] += acc;
        }
        st = qd_circ_apply_op(c, o, ang, psi, count, 1, e);   /* psi <- psi before op o */
        if (st != QD_OK)
            break;
        if (op->kind == QD_OP_GATE && !pauli)
            for (int i = 0; i < op->g->nparams; i++) {
                int s = op->slot[i];
                if (s < 0 || op->scale[i] == 0)
                    continue;
                qd_c D[16];
                qd_gate_dmatrix(op->g, ang, i, D);
                double sc = 2 * op->scale[i];
                #pragma omp parallel for schedule(static) if (par)
                for (size_t j = 0; j < count; j++)
                    contrib[j] = sc * creal(braket_local(lam + j * d, psi + j * d, n, op->qs,
                                                         op->k, D));
                double acc = 0;
                for (size_t j = 0; j < count; j++)
                    acc += contrib[j];
                grad[s] += acc;
            }
        st = qd_circ_apply_op(c, o, ang, lam, count, 1, e);
    }
    if (st == QD_OK && G_in)
        memcpy(G_in, lam, sizeof(qd_c) * amps);
done:
    qd_free(psi);
    qd_free(lam);
    qd_free(ck);
    qd_free(pm);
    return st;
}

qd_status qd_circuit_vjp_dm(const qd_circuit *c, const double *theta, const qd_c *rho,
                            const qd_c *G, double *grad, qd_c *G_in, qd_err *e)
{
    const int n = c->n, nm = c->nmeas;
    if (2 * n > QD_MAX_QUBITS)
        return qd_fail(e, QD_ENOMEM, "density matrix too large");
    const size_t d = (size_t)1 << n, amps = d * d;
    int kept[QD_MAX_QUBITS];
    const int nout = qd_circuit_nout(c, kept);
    const size_t dout = (size_t)1 << nout;
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
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET) {
            memcpy(ck + amps * (size_t)mi++, A, sizeof(qd_c) * amps);
            if (op->kind == QD_OP_MEASURE)
                qd_circ_dm_dephase(A, n, op->qs, op->k);
            else
                qd_circ_dm_reset(A, n, op->qs, op->k, 0);
        } else {
            double ang[3];
            qd_op_angles(c, o, theta, NULL, ang);
            st = qd_circ_apply_op_dm(c, o, ang, A, 0, e);
        }
    }
    if (st != QD_OK)
        goto done;
    /* lambda = G (x) I on the discarded qubits (adjoint of the partial trace) */
    {
        size_t dmask = 0;
        for (int q = 0; q < n; q++)
            if ((c->discarded >> q) & 1)
                dmask |= (size_t)1 << (n - 1 - q);
        #pragma omp parallel for schedule(static) if (amps >= PAR_MIN)
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
    for (int s = 0; s < c->nslots; s++)
        grad[s] = 0;
    mi = nm;
    for (size_t o = c->nops; o-- > 0 && st == QD_OK;) {
        const qd_op *op = &c->ops[o];
        if (op->kind == QD_OP_MEASURE || op->kind == QD_OP_RESET) {
            mi--;
            if (op->kind == QD_OP_MEASURE)
                qd_circ_dm_dephase(lam, n, op->qs, op->k);
            else
                qd_circ_dm_reset(lam, n, op->qs, op->k, 1);
            memcpy(A, ck + amps * (size_t)mi, sizeof(qd_c) * amps);
            continue;
        }
        double ang[3];
        qd_op_angles(c, o, theta, NULL, ang);
        st = qd_circ_apply_op_dm(c, o, ang, A, 1, e);   /* A <- rho before op o */
        if (st != QD_OK)
            break;
        if (op->kind == QD_OP_GATE && op->g->nparams > 0) {
            int k = op->k, rq[3];
            for (int i = 0; i < k; i++)
                rq[i] = n + op->qs[i];   /* row qubits in the 2n-qubit vector view */
            size_t dk = (size_t)1 << k;
            qd_c M[16], Mc[16];
            qd_gate_matrix(op->g, ang, M);
            for (size_t l = 0; l < dk * dk; l++)
                Mc[l] = conj(M[l]);
            for (int i = 0; i < op->g->nparams && st == QD_OK; i++) {
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
                st = qd_apply_matrix(B, 2 * n, 1, op->qs, k, Mc, e);
                if (st != QD_OK)
                    break;
                qd_c t1 = braket_local(lam, B, 2 * n, rq, k, D);
                /* term 2: <lam| U (x) conj(dU) |A> */
                memcpy(B, A, sizeof(qd_c) * amps);
                st = qd_apply_matrix(B, 2 * n, 1, rq, k, M, e);
                if (st != QD_OK)
                    break;
                qd_c t2 = braket_local(lam, B, 2 * n, op->qs, k, Dc);
                grad[s] += 2 * op->scale[i] * creal(t1 + t2);
            }
            if (st != QD_OK)
                break;
        }
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
