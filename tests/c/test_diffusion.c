/* test_diffusion.c — the QuDDPM scrambling kernel against the same operation composed
 * from single gate calls (qd_apply_gate rz, ry, rz on every qubit, then rzz on every pair)
 * member by member; angle ranges and order; independence of N and of the thread count
 * (bitwise); the forward family (marginal and trajectory modes); drift to Haar. */
#include "harness.h"
#include "qd_random.h"
#include <math.h>
#include <string.h>

static void gate_reference(qd_c *v, int n, const qd_rng *stream, size_t k, uint64_t s, double h)
{
    const qd_gate_info *rz = qd_gate_lookup("rz"), *ry = qd_gate_lookup("ry"), *rzz = qd_gate_lookup("rzz");
    double phi[3 * 8], g;
    qd_diffusion_angles(stream, k, s, n, h, phi, &g);
    for (int q = 0; q < n; q++) {
        qd_apply_gate(v, n, 1, rz, &q, &phi[3 * q], 0);
        qd_apply_gate(v, n, 1, ry, &q, &phi[3 * q + 1], 0);
        qd_apply_gate(v, n, 1, rz, &q, &phi[3 * q + 2], 0);
    }
    if (n >= 2) {
        double th = g / (2 * sqrt((double)n));
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                int qs[2] = {i, j};
                qd_apply_gate(v, n, 1, rzz, qs, &th, 0);
            }
    }
}

QD_TEST(diffusion_vs_gates)
{
    double hs[4] = {0.7, 1.3, 2.9, 4.0};
    for (int n = 1; n <= 5; n++) {
        const size_t N = 4, d = (size_t)1 << n;
        qd_rng base, r;
        qd_rng_init(&base, 11 * n);
        qd_rng_init(&r, 3);
        qd_c *a = qd_malloc(sizeof(qd_c) * N * d), *b = qd_malloc(sizeof(qd_c) * N * d);
        for (size_t k = 0; k < N; k++)
            qd_state_haar(a + k * d, n, &r);
        memcpy(b, a, sizeof(qd_c) * N * d);
        qd_diffusion_steps(a, n, N, hs, 1, 4, &base);
        double worst = 0, nrm = 0;
        for (size_t k = 0; k < N; k++) {
            for (uint64_t s = 1; s <= 4; s++)
                gate_reference(b + k * d, n, &base, k, s, hs[s - 1]);
            double x = ref_maxdiff(a + k * d, b + k * d, d);
            worst = x > worst ? x : worst;
            double nn = fabs(qd_norm2(a + k * d, d) - 1);
            nrm = nn > nrm ? nn : nrm;
        }
        CHECK(worst < 1e-13, "scramble = rz ry rz + all-pairs rzz from gate calls (n=%d): %g", n, worst);
        CHECK(nrm < 1e-13, "norm preserved (n=%d)", n);
        /* steps applied one call at a time = all in one call */
        memcpy(b, a, sizeof(qd_c) * N * d);
        qd_diffusion_steps(a, n, N, hs, 2, 3, &base);
        qd_diffusion_steps(b, n, N, hs, 2, 2, &base);
        qd_diffusion_steps(b, n, N, hs, 3, 3, &base);
        CHECK(memcmp(a, b, sizeof(qd_c) * N * d) == 0, "steps 2..3 in one call = two calls (n=%d)", n);
        qd_free(a);
        qd_free(b);
    }
}

QD_TEST(diffusion_angles)
{
    qd_rng base;
    qd_rng_init(&base, 5);
    const int n = 3, M = 20000;
    const double h = 2.5, a = M_PI / 8 * h;
    double sphi = 0, sg = 0, minp = 1e9, maxp = -1e9, ming = 1e9, maxg = -1e9;
    for (int k = 0; k < M; k++) {
        double phi[9], g;
        qd_diffusion_angles(&base, (size_t)k, 1, n, h, phi, &g);
        for (int i = 0; i < 9; i++) {
            sphi += phi[i];
            minp = phi[i] < minp ? phi[i] : minp;
            maxp = phi[i] > maxp ? phi[i] : maxp;
        }
        sg += g;
        ming = g < ming ? g : ming;
        maxg = g > maxg ? g : maxg;
    }
    CHECK(minp >= -a && maxp < a && minp < -0.99 * a && maxp > 0.99 * a, "phi fills [-pi/8 h, pi/8 h): %g %g", minp, maxp);
    CHECK(ming >= 0.4 * h && maxg < 0.6 * h && ming < 0.401 * h && maxg > 0.599 * h, "g fills [0.4 h, 0.6 h): %g %g", ming, maxg);
    CHECK_NEAR(sphi / (9.0 * M), 0.0, 5 * a / sqrt(3.0 * 9 * M), "mean phi = 0");
    CHECK_NEAR(sg / M, 0.5 * h, 5 * 0.1 * h / sqrt(3.0 * M), "mean g = 0.5 h");
    /* draw order: phi_{0,1}, phi_{0,2}, phi_{0,3}, phi_{1,1}, ..., then g */
    double phi[9], g;
    qd_diffusion_angles(&base, 7, 3, n, h, phi, &g);
    qd_rng mk = qd_rng_sub(&base, 7), r = qd_rng_sub(&mk, 3);
    int ok = 1;
    for (int i = 0; i < 9; i++)
        ok &= phi[i] == h * (-M_PI / 8 + 2 * (M_PI / 8) * qd_rng_uniform(&r));
    ok &= g == h * (0.4 + 0.2 * qd_rng_uniform(&r));
    CHECK(ok, "angles drawn in the documented order from sub(sub(stream, k), s)");
    qd_diffusion_angles(&base, 7, 3, 1, h, phi, &g);
    CHECK(g == 0, "no g for n = 1");
}

QD_TEST(diffusion_independence)
{
    /* member k identical for N = 10 and N = 100, and for 1 and 2 threads (bitwise) */
    const int n = 4;
    const size_t d = 16, N = 1000;   /* 16000 amplitudes: above the parallel threshold */
    double hs[3] = {0.5, 1.0, 2.0};
    qd_rng base, r;
    qd_rng_init(&base, 99);
    qd_rng_init(&r, 1);
    qd_c *a0 = qd_malloc(sizeof(qd_c) * N * d), *a = qd_malloc(sizeof(qd_c) * N * d);
    qd_c *b = qd_malloc(sizeof(qd_c) * N * d), *c = qd_malloc(sizeof(qd_c) * 10 * d);
    for (size_t k = 0; k < N; k++)
        qd_state_haar(a0 + k * d, n, &r);
    int saved = qd_get_threads();
    qd_set_threads(1);
    memcpy(a, a0, sizeof(qd_c) * N * d);
    qd_diffusion_steps(a, n, N, hs, 1, 3, &base);
    qd_set_threads(2);
    memcpy(b, a0, sizeof(qd_c) * N * d);
    qd_diffusion_steps(b, n, N, hs, 1, 3, &base);
    CHECK(memcmp(a, b, sizeof(qd_c) * N * d) == 0, "1 and 2 threads give bitwise identical ensembles");
    memcpy(c, a0, sizeof(qd_c) * 10 * d);
    qd_diffusion_steps(c, n, 10, hs, 1, 3, &base);
    CHECK(memcmp(a, c, sizeof(qd_c) * 10 * d) == 0, "members 1..10 identical for N = 10 and N = 1000");
    /* forward family, both thread counts */
    const size_t T = 3, per = N * d;
    qd_c *f1 = qd_malloc(sizeof(qd_c) * (T + 1) * per), *f2 = qd_malloc(sizeof(qd_c) * (T + 1) * per);
    qd_c *p1[4], *p2[4];
    for (size_t t = 0; t <= T; t++) {
        p1[t] = f1 + t * per;
        p2[t] = f2 + t * per;
    }
    qd_set_threads(1);
    qd_diffusion_forward(a0, n, N, hs, T, &base, 1, p1);
    qd_set_threads(2);
    qd_diffusion_forward(a0, n, N, hs, T, &base, 1, p2);
    CHECK(memcmp(f1, f2, sizeof(qd_c) * (T + 1) * per) == 0, "forward: 1 and 2 threads bitwise identical");
    qd_set_threads(saved);
    qd_free(f1);
    qd_free(f2);
    qd_free(a0);
    qd_free(a);
    qd_free(b);
    qd_free(c);
}

QD_TEST(diffusion_forward)
{
    const int n = 2;
    const size_t N = 50, d = 4, T = 5, per = N * d;
    double hs[5] = {0.5, 1, 2, 3, 4};
    qd_rng base, r;
    qd_rng_init(&base, 123);
    qd_rng_init(&r, 9);
    qd_c *a0 = qd_malloc(sizeof(qd_c) * per), *out = qd_malloc(sizeof(qd_c) * (T + 1) * per);
    qd_c *x = qd_malloc(sizeof(qd_c) * per), *po[6];
    for (size_t t = 0; t <= T; t++)
        po[t] = out + t * per;
    qd_data_clustered(a0, n, N, 0.06, &r);
    /* marginal: S_t = a0 with steps 1..t from stream sub(base, t) */
    qd_diffusion_forward(a0, n, N, hs, T, &base, 1, po);
    CHECK(memcmp(out, a0, sizeof(qd_c) * per) == 0, "S_0 = E0");
    int ok = 1;
    for (size_t t = 1; t <= T; t++) {
        qd_rng st = qd_rng_sub(&base, t);
        memcpy(x, a0, sizeof(qd_c) * per);
        qd_diffusion_steps(x, n, N, hs, 1, t, &st);
        ok &= memcmp(x, out + t * per, sizeof(qd_c) * per) == 0;
    }
    CHECK(ok, "marginal S_t = t fresh steps from substream t");
    /* trajectory: S_t = step t of S_{t-1} */
    qd_diffusion_forward(a0, n, N, hs, T, &base, 0, po);
    ok = 1;
    memcpy(x, a0, sizeof(qd_c) * per);
    for (size_t t = 1; t <= T; t++) {
        qd_diffusion_steps(x, n, N, hs, t, t, &base);
        ok &= memcmp(x, out + t * per, sizeof(qd_c) * per) == 0;
    }
    CHECK(ok, "trajectory S_t = step t applied to S_{t-1}");
    qd_free(a0);
    qd_free(out);
    qd_free(x);
}

QD_TEST(diffusion_reaches_haar)
{
    /* after the cluster-2 schedule linspace(0.5, 4, 20), mean F0 -> 1/d and the
     * fidelity-kernel MMD to the Haar first moment Tr[(rho_bar - I/d)^2] is small */
    const int n = 2;
    const size_t N = 2000, d = 4;
    double hs[20];
    qd_schedule_linear(hs, 20, 0.5, 4, NULL);
    qd_rng base, r;
    qd_rng_init(&base, 7);
    qd_rng_init(&r, 8);
    qd_c *a = qd_malloc(sizeof(qd_c) * N * d);
    qd_data_clustered(a, n, N, 0.06, &r);
    double f0 = 0;
    for (size_t k = 0; k < N; k++)
        f0 += creal(a[k * d] * conj(a[k * d]));
    CHECK(f0 / N > 0.95, "clustered ensemble starts near |00>: %g", f0 / N);
    qd_diffusion_steps(a, n, N, hs, 1, 20, &base);
    qd_c rho[16];
    qd_dm_from_ensemble(a, n, N, rho);
    double dist = 0;
    for (size_t i = 0; i < 16; i++) {
        qd_c x = rho[i] - ((i % 5 == 0) ? 0.25 : 0.0);
        dist += creal(x * conj(x));
    }
    CHECK_NEAR(creal(rho[0]), 0.25, 0.03, "mean F0 after T steps ~ 1/d");
    CHECK(dist < 0.01, "Tr[(rho_bar - I/d)^2] small after scrambling: %g", dist);
    qd_free(a);
}
