/* ref.c — naive dense reference implementations the kernels are tested against. */
#include "harness.h"
#include <math.h>
#include <string.h>

void ref_full_operator(int nq, const int *qs, int k, const qd_c *m, qd_c *out)
{
    size_t d = (size_t)1 << nq, dk = (size_t)1 << k;
    for (size_t c = 0; c < d; c++) {
        for (size_t r = 0; r < d; r++) {
            /* the non-target bits of r and c must agree; the target bits index m */
            size_t lr = 0, lc = 0, rr = r, cc = c;
            for (int j = 0; j < k; j++) {
                int bit = nq - 1 - qs[j];
                lr = (lr << 1) | ((r >> bit) & 1);
                lc = (lc << 1) | ((c >> bit) & 1);
                rr &= ~((size_t)1 << bit);
                cc &= ~((size_t)1 << bit);
            }
            out[r + c * d] = rr == cc ? m[lr + lc * dk] : 0;
        }
    }
}

void ref_matvec(const qd_c *M, size_t d, const qd_c *x, qd_c *y)
{
    for (size_t r = 0; r < d; r++) {
        qd_c s = 0;
        for (size_t c = 0; c < d; c++)
            s += M[r + c * d] * x[c];
        y[r] = s;
    }
}

void ref_matmul(const qd_c *A, const qd_c *B, size_t d, qd_c *C)
{
    for (size_t c = 0; c < d; c++)
        for (size_t r = 0; r < d; r++) {
            qd_c s = 0;
            for (size_t k = 0; k < d; k++)
                s += A[r + k * d] * B[k + c * d];
            C[r + c * d] = s;
        }
}

void ref_dagger(const qd_c *A, size_t d, qd_c *out)
{
    for (size_t c = 0; c < d; c++)
        for (size_t r = 0; r < d; r++)
            out[c + r * d] = conj(A[r + c * d]);
}

double ref_maxdiff(const qd_c *a, const qd_c *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double x = cabs(a[i] - b[i]);
        if (x > m || isnan(x))
            m = isnan(x) ? INFINITY : x;
    }
    return m;
}

void ref_random_vec(qd_c *a, size_t n, qd_rng *r)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        a[i] = qd_rng_cnormal(r);
        s += creal(a[i] * conj(a[i]));
    }
    for (size_t i = 0; i < n; i++)
        a[i] /= sqrt(s);
}

void ref_random_dm(qd_c *rho, size_t d, qd_rng *r)
{
    /* rho = G G^dagger / Tr, G Ginibre */
    qd_c G[d * d];
    for (size_t i = 0; i < d * d; i++)
        G[i] = qd_rng_cnormal(r);
    double tr = 0;
    for (size_t c = 0; c < d; c++)
        for (size_t rr = 0; rr < d; rr++) {
            qd_c s = 0;
            for (size_t k = 0; k < d; k++)
                s += G[rr + k * d] * conj(G[c + k * d]);
            rho[rr + c * d] = s;
            if (rr == c)
                tr += creal(s);
        }
    for (size_t i = 0; i < d * d; i++)
        rho[i] /= tr;
}
