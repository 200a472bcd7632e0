/* diffusion.c — the QuDDPM forward (scrambling) process (arXiv 2310.05866)
 * as one C call over an ensemble. Each step gives every member its own random
 *   W = [prod_{i<j} RZZ_ij(g/(2 sqrt n))] . (x)_i RZ(phi_i3) RY(phi_i2) RZ(phi_i1),
 * phi ~ U[-pi/8, pi/8)*h, g ~ U[0.4, 0.6)*h. The single-qubit part is one 2x2 matrix per
 * qubit; the all-pairs RZZ layer with one shared angle theta is diagonal with phase
 *   exp(-i theta/2 sum_{i<j} z_i z_j),  sum_{i<j} z_i z_j = ((n - 2w)^2 - n)/2,
 * w = popcount of the basis index (z = 1 - 2 bit), so it costs one pass, not n(n-1)/2.
 * Member k step s draws from qd_rng_sub(qd_rng_sub(stream, k), s): results do not depend
 * on N, on which steps were applied in the same call, or on the thread count. */
#include "qd_random.h"
#include <math.h>
#include <string.h>

#define PAR_MIN_AMPS 4096

void qd_diffusion_angles(const qd_rng *stream, size_t k, uint64_t s, int n, double h,
                         double *phi, double *g)
{
    qd_rng mk = qd_rng_sub(stream, k);
    qd_rng r = qd_rng_sub(&mk, s);
    const double a = M_PI / 8;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
            phi[3 * i + j] = h * (-a + 2 * a * qd_rng_uniform(&r));
    *g = n >= 2 ? h * (0.4 + 0.2 * qd_rng_uniform(&r)) : 0.0;
}

/* RZ(p3) RY(p2) RZ(p1), column-major. RZ(t) = diag(e^{-it/2}, e^{it/2}),
 * RY(t) = [[c, -s], [s, c]] with c = cos t/2, s = sin t/2. */
static void euler_zyz(double p1, double p2, double p3, qd_c m[4])
{
    double c = cos(p2 / 2), s = sin(p2 / 2);
    qd_c e1 = cexp(-I * p1 / 2), e3 = cexp(-I * p3 / 2);
    /* RY RZ(p1) = [[c e1, -s conj(e1)], [s e1, c conj(e1)]]; then rows times e3, conj(e3) */
    m[0] = e3 * c * e1;                /* (0,0) */
    m[1] = conj(e3) * s * e1;          /* (1,0) */
    m[2] = -e3 * s * conj(e1);         /* (0,1) */
    m[3] = conj(e3) * c * conj(e1);    /* (1,1) */
}

static void step_one(qd_c *v, int n, const qd_rng *stream, size_t k, uint64_t s, double h)
{
    double phi[3 * QD_MAX_QUBITS], g;
    qd_diffusion_angles(stream, k, s, n, h, phi, &g);
    size_t d = (size_t)1 << n;
    for (int q = 0; q < n; q++) {
        qd_c m[4];
        euler_zyz(phi[3 * q], phi[3 * q + 1], phi[3 * q + 2], m);
        size_t bit = (size_t)1 << (n - 1 - q);
        for (size_t i = 0; i < d; i++) {
            if (i & bit)
                continue;
            qd_c x = v[i], y = v[i | bit];   /* qd_cmul: no vfmaddsub (check_contraction.sh) */
            v[i] = qd_cmul(m[0], x) + qd_cmul(m[2], y);
            v[i | bit] = qd_cmul(m[1], x) + qd_cmul(m[3], y);
        }
    }
    if (n >= 2) {
        double theta = g / (2.0 * sqrt((double)n));
        qd_c ph[QD_MAX_QUBITS + 1];
        for (int w = 0; w <= n; w++) {
            double zz = 0.5 * ((double)(n - 2 * w) * (double)(n - 2 * w) - (double)n);
            ph[w] = cexp(-I * (theta / 2) * zz);
        }
        for (size_t i = 0; i < d; i++)
            v[i] = qd_cmul(v[i], ph[__builtin_popcountll((unsigned long long)i)]);
    }
}

void qd_diffusion_steps(qd_c *a, int n, size_t count, const double *hs, uint64_t s_first,
                        uint64_t s_last, const qd_rng *stream)
{
    size_t d = (size_t)1 << n;
    #pragma omp parallel for schedule(static) if (count > 1 && count * d >= PAR_MIN_AMPS)
    for (size_t k = 0; k < count; k++)
        for (uint64_t s = s_first; s <= s_last; s++)
            step_one(a + k * d, n, stream, k, s, hs[s - 1]);
}

void qd_diffusion_forward(const qd_c *a0, int n, size_t N, const double *hs, size_t T,
                          const qd_rng *base, int marginal, qd_c *const *out)
{
    size_t per = N << n;
    if (out[0] != a0)
        memcpy(out[0], a0, sizeof(qd_c) * per);
    for (size_t t = 1; t <= T; t++) {
        if (marginal) {
            qd_rng st = qd_rng_sub(base, t);
            memcpy(out[t], a0, sizeof(qd_c) * per);
            qd_diffusion_steps(out[t], n, N, hs, 1, t, &st);
        } else {
            memcpy(out[t], out[t - 1], sizeof(qd_c) * per);
            qd_diffusion_steps(out[t], n, N, hs, t, t, base);
        }
    }
}
