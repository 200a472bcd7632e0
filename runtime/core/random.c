/* random.c — random unitaries, random density matrices, random circuits, and the
 * data-set kernels behind qd.data (clustered, circle and correlated-noise ensembles).
 * Haar unitaries follow Mezzadri (arXiv math-ph/0609050): QR of a complex Ginibre matrix
 * with the phases of R's diagonal moved into Q. Batched generators draw member k from
 * qd_rng_sub(stream, k) and run OpenMP over members (no cross-member reductions), so the
 * output is bitwise the same for any batch size or thread count. Complex products in the
 * kernels go through qd_cmul (qd.h): the same values as `*`, but GCC cannot fuse them into
 * vfmaddsub (scripts/check_contraction.sh). */
#include "qd_random.h"
#include <math.h>
#include <string.h>

/* members per thread below which a parallel region is not worth starting */
#define PAR_MIN_AMPS 4096

void qd_ginibre(qd_c *G, size_t m, size_t n, qd_rng *r)
{
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < m; i++)
            G[i + j * m] = qd_rng_cnormal(r);
}

/* columns of the m x n matrix Q times phase(rdiag[j]) so R' has a positive diagonal */
static void phase_fix(qd_c *Q, size_t m, size_t n, const qd_c *rdiag)
{
    for (size_t j = 0; j < n; j++) {
        double a = cabs(rdiag[j]);
        qd_c ph = a > 0 ? rdiag[j] / a : 1.0;
        for (size_t i = 0; i < m; i++)
            Q[i + j * m] *= ph;
    }
}

qd_status qd_haar_unitary(qd_c *U, size_t d, qd_rng *r, qd_err *e)
{
    if (d == 0)
        return qd_fail(e, QD_EARG, "dimension >= 1 expected");
    qd_c *rd = qd_malloc(sizeof(qd_c) * d);
    if (!rd)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a Haar unitary");
    qd_ginibre(U, d, d, r);
    qd_status s = qd_la_qr(U, d, d, rd, e);
    if (s == QD_OK)
        phase_fix(U, d, d, rd);
    qd_free(rd);
    return s;
}

void qd_unitary_from_ginibre_gs(qd_c *G, size_t d)
{
    for (size_t j = 0; j < d; j++) {
        qd_c *g = G + j * d;
        /* two passes of modified Gram-Schmidt ("twice is enough"): orthogonal to rounding */
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < j; i++) {
                const qd_c *q = G + i * d;
                qd_c p = 0;
                for (size_t l = 0; l < d; l++)
                    p += conj(q[l]) * g[l];
                for (size_t l = 0; l < d; l++)
                    g[l] -= p * q[l];
            }
        double nn = 0;
        for (size_t l = 0; l < d; l++)
            nn += creal(g[l]) * creal(g[l]) + cimag(g[l]) * cimag(g[l]);
        nn = sqrt(nn);
        /* a Ginibre matrix is singular with probability 0; keep a unit vector anyway */
        if (nn > 0)
            for (size_t l = 0; l < d; l++)
                g[l] /= nn;
    }
}

/* rho (d x d) = A A^H / Tr(A A^H) for A d x k, made exactly Hermitian */
static void gram_normalised(const qd_c *A, size_t d, size_t k, qd_c *rho)
{
    qd_la_zgemm('N', 'C', d, d, k, 1.0, A, d, A, d, 0.0, rho, d);
    double tr = 0;
    for (size_t i = 0; i < d; i++)
        tr += creal(rho[i + i * d]);
    for (size_t j = 0; j < d; j++) {
        rho[j + j * d] = creal(rho[j + j * d]) / tr;
        for (size_t i = j + 1; i < d; i++) {
            qd_c v = 0.5 * (rho[i + j * d] + conj(rho[j + i * d])) / tr;
            rho[i + j * d] = v;
            rho[j + i * d] = conj(v);
        }
    }
}

qd_status qd_random_dm_hs(qd_c *rho, size_t d, size_t k, qd_rng *r, qd_err *e)
{
    size_t dk;
    if (d == 0 || k == 0 || k > d || qd_mul_overflow(d, k, &dk))
        return qd_fail(e, QD_EARG, "rank 1..%zu expected, got %zu", d, k);
    qd_c *G = qd_malloc(sizeof(qd_c) * dk);
    if (!G)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a random density matrix");
    qd_ginibre(G, d, k, r);
    gram_normalised(G, d, k, rho);
    qd_free(G);
    return QD_OK;
}

qd_status qd_random_dm_bures(qd_c *rho, size_t d, qd_rng *r, qd_err *e)
{
    size_t dd;
    if (d == 0 || qd_mul_overflow(d, d, &dd))
        return qd_fail(e, QD_EARG, "bad dimension for a random density matrix");
    qd_c *U = qd_malloc(sizeof(qd_c) * dd), *G = qd_malloc(sizeof(qd_c) * dd);
    qd_c *A = qd_malloc(sizeof(qd_c) * dd);
    qd_status s = QD_OK;
    if (!U || !G || !A) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for a random density matrix");
        goto done;
    }
    s = qd_haar_unitary(U, d, r, e);
    if (s != QD_OK)
        goto done;
    qd_ginibre(G, d, d, r);
    for (size_t i = 0; i < d; i++)
        U[i + i * d] += 1.0;                       /* I + U */
    qd_la_zgemm('N', 'N', d, d, d, 1.0, U, d, G, d, 0.0, A, d);
    gram_normalised(A, d, d, rho);
done:
    qd_free(U);
    qd_free(G);
    qd_free(A);
    return s;
}

qd_status qd_random_mixture(qd_c *rho, size_t d, size_t k, const double *w, double *wout,
                            qd_rng *r, qd_err *e)
{
    size_t dk;
    if (d == 0 || k == 0 || k > d || qd_mul_overflow(d, k, &dk))
        return qd_fail(e, QD_EARG, "rank 1..%zu expected, got %zu", d, k);
    qd_c *V = qd_malloc(sizeof(qd_c) * dk), *rd = qd_malloc(sizeof(qd_c) * k);
    double *ww = qd_malloc(sizeof(double) * k);
    qd_status s = QD_OK;
    if (!V || !rd || !ww) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for a random mixture");
        goto done;
    }
    /* the first k columns of a Haar unitary: phase-fixed QR of a d x k Ginibre matrix */
    qd_ginibre(V, d, k, r);
    s = qd_la_qr(V, d, k, rd, e);
    if (s != QD_OK)
        goto done;
    phase_fix(V, d, k, rd);
    if (w) {
        memcpy(ww, w, sizeof(double) * k);
    } else {
        /* Dirichlet(1, ..., 1): normalised Exp(1) variables */
        double t = 0;
        for (size_t i = 0; i < k; i++) {
            ww[i] = -log(1.0 - qd_rng_uniform(r));
            t += ww[i];
        }
        for (size_t i = 0; i < k; i++)
            ww[i] /= t;
    }
    if (wout)
        memcpy(wout, ww, sizeof(double) * k);
    /* rho = V diag(w) V^H: scale columns by sqrt(w) then Gram (weights sum to 1) */
    for (size_t j = 0; j < k; j++) {
        double sw = sqrt(ww[j] > 0 ? ww[j] : 0.0);
        for (size_t i = 0; i < d; i++)
            V[i + j * d] *= sw;
    }
    gram_normalised(V, d, k, rho);
done:
    qd_free(V);
    qd_free(rd);
    qd_free(ww);
    return s;
}

/* ---------------------------------------------------------------- random circuits */

/* m (2x2 column-major) on qubit q of one vector */
static void apply1(qd_c *a, int nq, int q, const qd_c *m)
{
    size_t d = (size_t)1 << nq, bit = (size_t)1 << (nq - 1 - q);
    for (size_t i = 0; i < d; i++) {
        if (i & bit)
            continue;
        qd_c x = a[i], y = a[i | bit];
        a[i] = qd_cmul(m[0], x) + qd_cmul(m[2], y);
        a[i | bit] = qd_cmul(m[1], x) + qd_cmul(m[3], y);
    }
}

/* m (4x4 column-major, q0 the more significant bit of its index) on qubits q0, q1 */
static void apply2(qd_c *a, int nq, int q0, int q1, const qd_c *m)
{
    size_t d = (size_t)1 << nq, b0 = (size_t)1 << (nq - 1 - q0), b1 = (size_t)1 << (nq - 1 - q1);
    for (size_t i = 0; i < d; i++) {
        if (i & (b0 | b1))
            continue;
        size_t idx[4] = {i, i | b1, i | b0, i | b0 | b1};
        qd_c x[4];
        for (int l = 0; l < 4; l++)
            x[l] = a[idx[l]];
        for (int r = 0; r < 4; r++) {
            qd_c s = 0;
            for (int c = 0; c < 4; c++)
                s += qd_cmul(m[r + 4 * c], x[c]);
            a[idx[r]] = s;
        }
    }
}

static void circuit_one(qd_c *a, int nq, int depth, qd_rng *r)
{
    qd_c m[16];
    for (int l = 0; l < depth; l++) {
        if (nq == 1) {
            qd_ginibre(m, 2, 2, r);
            qd_unitary_from_ginibre_gs(m, 2);
            apply1(a, nq, 0, m);
            continue;
        }
        for (int i = l % 2; i + 1 < nq; i += 2) {
            qd_ginibre(m, 4, 4, r);
            qd_unitary_from_ginibre_gs(m, 4);
            apply2(a, nq, i, i + 1, m);
        }
    }
}

void qd_random_circuit(qd_c *a, int nq, size_t count, int depth, const qd_rng *stream)
{
    size_t d = (size_t)1 << nq;
    #pragma omp parallel for schedule(static) if (count > 1 && count * d >= PAR_MIN_AMPS)
    for (size_t k = 0; k < count; k++) {
        qd_rng sub = qd_rng_sub(stream, k);
        circuit_one(a + k * d, nq, depth, &sub);
    }
}

/* ---------------------------------------------------------------- data sets */

void qd_data_clustered(qd_c *a, int n, size_t N, double eps, const qd_rng *stream)
{
    size_t d = (size_t)1 << n;
    #pragma omp parallel for schedule(static) if (N > 1 && N * d >= PAR_MIN_AMPS)
    for (size_t k = 0; k < N; k++) {
        qd_rng sub = qd_rng_sub(stream, k);
        qd_c *v = a + k * d;
        v[0] = 1.0;
        double nn = 1.0;
        for (size_t j = 1; j < d; j++) {
            double x = qd_rng_normal(&sub);
            double y = qd_rng_normal(&sub);
            v[j] = eps * x + I * (eps * y);
            nn += creal(v[j]) * creal(v[j]) + cimag(v[j]) * cimag(v[j]);
        }
        nn = sqrt(nn);
        for (size_t j = 0; j < d; j++)
            v[j] /= nn;
    }
}

void qd_data_circle(qd_c *a, int n, size_t N, double lo, double hi, const qd_rng *stream,
                    double *phis)
{
    size_t d = (size_t)1 << n;
    #pragma omp parallel for schedule(static) if (N > 1 && N * d >= PAR_MIN_AMPS)
    for (size_t k = 0; k < N; k++) {
        qd_rng sub = qd_rng_sub(stream, k);
        qd_c *v = a + k * d;
        double c[QD_MAX_QUBITS], s[QD_MAX_QUBITS];
        for (int q = 0; q < n; q++) {
            double phi = lo + (hi - lo) * qd_rng_uniform(&sub);
            if (phis)
                phis[k * (size_t)n + (size_t)q] = phi;
            c[q] = cos(phi);
            s[q] = sin(phi);
        }
        /* product state: amplitude of |b> is prod_q (b_q ? sin : cos), qubit 0 = MSB */
        for (size_t i = 0; i < d; i++) {
            double x = 1.0;
            for (int q = 0; q < n; q++)
                x *= ((i >> (n - 1 - q)) & 1) ? s[q] : c[q];
            v[i] = x;
        }
    }
}

void qd_data_xxzz(qd_c *a, size_t N, double p, double emax, const qd_rng *stream,
                  double *is_xx, double *eps_out)
{
    const qd_c psi0[4] = {sqrt(0.1) * cexp(0.8 * I), sqrt(0.55) * cexp(1.7 * I), 0.0,
                          sqrt(0.35) * cexp(2.4 * I)};
    #pragma omp parallel for schedule(static) if (N >= PAR_MIN_AMPS / 4)
    for (size_t k = 0; k < N; k++) {
        qd_rng sub = qd_rng_sub(stream, k);
        double u = qd_rng_uniform(&sub);
        double eps = -emax + 2.0 * emax * qd_rng_uniform(&sub);
        int xx = u < p;
        qd_c *v = a + 4 * k;
        double c = cos(eps), s = sin(eps);
        for (int i = 0; i < 4; i++) {
            if (xx) {
                /* exp(-i eps X⊗X) = cos eps I - i sin eps X⊗X; X⊗X maps |i> to |3-i> */
                v[i] = c * psi0[i] - qd_cmul(I * s, psi0[3 - i]);
            } else {
                /* exp(-i eps Z⊗Z): phase e^{-i eps z}, z = +1 on |00>, |11>, -1 otherwise */
                double z = (i == 0 || i == 3) ? 1.0 : -1.0;
                v[i] = qd_cmul(c - I * (s * z), psi0[i]);
            }
        }
        if (is_xx)
            is_xx[k] = xx;
        if (eps_out)
            eps_out[k] = eps;
    }
}
