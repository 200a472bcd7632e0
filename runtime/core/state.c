/* state.c — constructors and conversions on raw amplitude buffers: basis and Haar
 * states, embedding into a larger register, Kronecker products of vectors and density
 * matrices, and density matrices from pure states and ensembles.
 *
 * Conventions (qd.h): qubit 0 is the most significant bit, so in a product a (x) b the
 * factor a supplies the high bits of the index: out[i*db + j] = a[i] b[j]. Density
 * matrices are column-major, element (r, c) at r + c*d. */
#include "qd.h"
#include <math.h>
#include <string.h>

/* Loops below this many output elements stay on the calling thread. */
#define PAR_MIN (4 * QD_PAR_MIN)   /* initialisation loops: a store per amplitude */

void qd_state_zero(qd_c *a, int nq)
{
    qd_state_basis(a, nq, 0);
}

void qd_state_basis(qd_c *a, int nq, size_t idx)
{
    size_t d = (size_t)1 << nq;
    memset(a, 0, sizeof(qd_c) * d);
    a[idx] = 1;
}

void qd_state_haar(qd_c *a, int nq, qd_rng *r)
{
    /* A vector of i.i.d. complex Gaussians, normalised, is Haar distributed (its law is
     * invariant under every unitary). The draws are sequential, so member k of an
     * ensemble depends only on its rng, never on the thread count. */
    size_t d = (size_t)1 << nq;
    for (size_t i = 0; i < d; i++)
        a[i] = qd_rng_cnormal(r);
    /* sum |a_i|^2 in fixed QD_BLOCK blocks added in order, the same reduction order
     * every reduction in qd uses (qd.h) */
    double total = 0;
    for (size_t b0 = 0; b0 < d; b0 += QD_BLOCK) {
        size_t b1 = b0 + QD_BLOCK < d ? b0 + QD_BLOCK : d;
        double s = 0;
        for (size_t i = b0; i < b1; i++)
            s += creal(a[i]) * creal(a[i]) + cimag(a[i]) * cimag(a[i]);
        total += s;
    }
    if (!(total > 0)) {   /* probability zero, but stay a valid state regardless */
        qd_state_basis(a, nq, 0);
        return;
    }
    const double inv = 1.0 / sqrt(total);
    for (size_t i = 0; i < d; i++)
        a[i] *= inv;
}

void qd_state_embed(const qd_c *psi, int nq, int na, qd_c *out)
{
    /* |0..0>_A (x) psi with the ancillas most significant: psi fills indices
     * 0..2^nq-1 and every index with an ancilla bit set is 0. memmove: out may be the
     * (large enough) buffer that holds psi. */
    size_t d = (size_t)1 << nq, D = (size_t)1 << (nq + na);
    memmove(out, psi, sizeof(qd_c) * d);
    memset(out + d, 0, sizeof(qd_c) * (D - d));
}

void qd_kron_vec(const qd_c *a, int na, const qd_c *b, int nb, qd_c *out)
{
    size_t da = (size_t)1 << na, db = (size_t)1 << nb;
#pragma omp parallel for schedule(static) if (da * db >= PAR_MIN)
    for (size_t i = 0; i < da; i++) {
        /* ar*br + nai*bi, not ar*br - ai*bi: the same value, no vfmaddsub
         * (scripts/check_contraction.sh) */
        const double ar = creal(a[i]), ai = cimag(a[i]), nai = -ai;
        qd_c *o = out + i * db;
        for (size_t j = 0; j < db; j++) {
            double br = creal(b[j]), bi = cimag(b[j]);
            o[j] = CMPLX(ar * br + nai * bi, ar * bi + ai * br);
        }
    }
}

void qd_kron_dm(const qd_c *a, int na, const qd_c *b, int nb, qd_c *out)
{
    /* (A (x) B)[(ia db + ib), (ja db + jb)] = A[ia, ja] B[ib, jb] */
    size_t da = (size_t)1 << na, db = (size_t)1 << nb, D = da * db;
#pragma omp parallel for schedule(static) if (D * D >= PAR_MIN)
    for (size_t col = 0; col < D; col++) {
        size_t ja = col / db, jb = col % db;
        qd_c *o = out + col * D;
        for (size_t ia = 0; ia < da; ia++) {
            qd_c av = a[ia + ja * da];
            /* + nai*bi: no vfmaddsub (scripts/check_contraction.sh) */
            const double ar = creal(av), ai = cimag(av), nai = -ai;
            const qd_c *bc = b + jb * db;
            for (size_t ib = 0; ib < db; ib++) {
                double br = creal(bc[ib]), bi = cimag(bc[ib]);
                o[ia * db + ib] = CMPLX(ar * br + nai * bi, ar * bi + ai * br);
            }
        }
    }
}

void qd_dm_from_state(const qd_c *psi, int n, qd_c *rho)
{
    /* rho[r, c] = psi[r] conj(psi[c]) */
    size_t d = (size_t)1 << n;
#pragma omp parallel for schedule(static) if (d * d >= PAR_MIN)
    for (size_t c = 0; c < d; c++) {
        /* + pi*nci: no vfmaddsub (scripts/check_contraction.sh) */
        const double cr = creal(psi[c]), ci = -cimag(psi[c]), nci = -ci;
        qd_c *o = rho + c * d;
        for (size_t r = 0; r < d; r++) {
            double pr = creal(psi[r]), pi = cimag(psi[r]);
            o[r] = CMPLX(pr * cr + pi * nci, pr * ci + pi * cr);
        }
    }
}

void qd_dm_from_ensemble(const qd_c *a, int n, size_t count, qd_c *rho)
{
    size_t d = (size_t)1 << n;
    if (count == 0) {   /* the mean of nothing: leave a defined (zero) matrix */
        memset(rho, 0, sizeof(qd_c) * d * d);
        return;
    }
    /* the ensemble is the d x count column-major matrix A (one member per column):
     * rho = (1/count) A A^H, one zgemm */
    qd_la_zgemm('N', 'C', d, d, count, 1.0 / (double)count, a, d, a, d, 0.0, rho, d);
}
