/* test_random.c — random.c against definitions and known moments: Haar unitaries
 * (unitarity, the phase fix, E|<0|U|0>|^2 = 1/d, E|.|^4 = 2/(d(d+1)), E Tr U = 0,
 * E|Tr U|^2 = 1, LAPACK QR vs Gram-Schmidt), random density matrices (Hermitian, trace 1,
 * PSD, rank; mean purity of the Hilbert-Schmidt and Bures measures), mixtures (spectrum),
 * random circuits (vs a dense reference built from the same draws; batch independence),
 * and the data-set kernels (vs their definitions, gate-built references). Statistical
 * tolerances are 5 standard errors of the sample mean at a fixed seed. */
#include "harness.h"
#include "qd_random.h"
#include <math.h>
#include <string.h>

static double max_offdiag_unit(const qd_c *U, size_t d)
{
    /* max |U^H U - I| */
    double m = 0;
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            qd_c s = 0;
            for (size_t l = 0; l < d; l++)
                s += conj(U[l + i * d]) * U[l + j * d];
            double x = cabs(s - (i == j ? 1.0 : 0.0));
            if (x > m)
                m = x;
        }
    return m;
}

QD_TEST(random_haar_unitary)
{
    size_t dims[] = {1, 2, 3, 8, 16};
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        size_t d = dims[t];
        qd_c U[256], G[256], R[256];
        qd_rng r, r2;
        qd_rng_init(&r, 40 + d);
        r2 = r;
        qd_err e;
        CHECK(qd_haar_unitary(U, d, &r, &e) == QD_OK, "haar_unitary ok (d=%zu)", d);
        CHECK(max_offdiag_unit(U, d) < 1e-12, "U^H U = I to 1e-12 (d=%zu): %g", d, max_offdiag_unit(U, d));
        /* phase fix: the same Ginibre matrix G = U R with R upper triangular, diag > 0 */
        qd_ginibre(G, d, d, &r2);
        CHECK(r.ctr == r2.ctr, "haar_unitary draws exactly d*d complex normals (d=%zu)", d);
        qd_la_zgemm('C', 'N', d, d, d, 1.0, U, d, G, d, 0.0, R, d);
        double below = 0, diag_im = 0, diag_min = 1e300;
        for (size_t j = 0; j < d; j++)
            for (size_t i = 0; i < d; i++) {
                if (i > j && cabs(R[i + j * d]) > below)
                    below = cabs(R[i + j * d]);
                if (i == j) {
                    if (fabs(cimag(R[i + j * d])) > diag_im)
                        diag_im = fabs(cimag(R[i + j * d]));
                    if (creal(R[i + j * d]) < diag_min)
                        diag_min = creal(R[i + j * d]);
                }
            }
        CHECK(below < 1e-12, "U^H G is upper triangular (d=%zu): %g", d, below);
        CHECK(diag_im < 1e-12 && diag_min > 0, "R diagonal real positive (d=%zu): im %g min %g", d, diag_im, diag_min);
        /* Gram-Schmidt on the same matrix gives the same U */
        qd_unitary_from_ginibre_gs(G, d);
        CHECK(ref_maxdiff(G, U, d * d) < 1e-12, "Gram-Schmidt = phase-fixed LAPACK QR (d=%zu): %g", d,
              ref_maxdiff(G, U, d * d));
    }
    /* determinism */
    qd_c A[16], B[16];
    qd_rng r1, r2;
    qd_rng_init(&r1, 5);
    qd_rng_init(&r2, 5);
    qd_haar_unitary(A, 4, &r1, NULL);
    qd_haar_unitary(B, 4, &r2, NULL);
    CHECK(memcmp(A, B, sizeof A) == 0, "same seed, same unitary bitwise");
}

QD_TEST(random_haar_moments)
{
    /* |U_00|^2 ~ Beta(1, d-1): mean 1/d, second moment 2/(d(d+1)); U_00 has uniform phase
     * (mean 0, E U_00^2 = 0 — fails without the phase fix); Tr U: mean 0, E|Tr U|^2 = 1. */
    const size_t d = 4;
    const int M = 20000;
    qd_rng r;
    qd_rng_init(&r, 2024);
    double m1 = 0, m2 = 0, m4 = 0, t2 = 0, t4 = 0;
    qd_c u00 = 0, u00sq = 0, tr = 0;
    for (int s = 0; s < M; s++) {
        qd_c U[16];
        qd_haar_unitary(U, d, &r, NULL);
        double x = creal(U[0] * conj(U[0]));
        m1 += x;
        m2 += x * x;
        m4 += x * x * x * x;
        u00 += U[0];
        u00sq += U[0] * U[0];
        qd_c t = 0;
        for (size_t i = 0; i < d; i++)
            t += U[i + i * d];
        tr += t;
        double a2 = creal(t * conj(t));
        t2 += a2;
        t4 += a2 * a2;
    }
    m1 /= M;
    m2 /= M;
    m4 /= M;
    t2 /= M;
    t4 /= M;
    double se1 = sqrt((m2 - m1 * m1) / M), se2 = sqrt((m4 - m2 * m2) / M);
    CHECK_NEAR(m1, 1.0 / d, 5 * se1, "E|<0|U|0>|^2 = 1/d");
    CHECK_NEAR(m2, 2.0 / (d * (d + 1.0)), 5 * se2, "E|<0|U|0>|^4 = 2/(d(d+1))");
    double seu = sqrt(1.0 / d / M);
    CHECK(cabs(u00 / M) < 5 * seu, "E U_00 = 0 (phase uniform): |mean| %g", cabs(u00 / M));
    CHECK(cabs(u00sq / M) < 5 * sqrt(m2 / M), "E U_00^2 = 0: |mean| %g", cabs(u00sq / M));
    CHECK(cabs(tr / M) < 5 * sqrt(1.0 / M), "E Tr U = 0: |mean| %g", cabs(tr / M));
    CHECK_NEAR(t2, 1.0, 5 * sqrt((t4 - t2 * t2) / M), "E|Tr U|^2 = 1");
}

static void check_dm(const qd_c *rho, size_t d, size_t rank, const char *what)
{
    double herm = 0, tr = 0;
    for (size_t i = 0; i < d; i++) {
        tr += creal(rho[i + i * d]);
        for (size_t j = 0; j < d; j++) {
            double x = cabs(rho[i + j * d] - conj(rho[j + i * d]));
            if (x > herm)
                herm = x;
        }
    }
    CHECK(herm == 0, "%s: exactly Hermitian (%g)", what, herm);
    CHECK_NEAR(tr, 1.0, 1e-13, what);
    qd_c A[256];
    double w[16];
    memcpy(A, rho, sizeof(qd_c) * d * d);
    qd_la_eigh(A, d, w, 0, NULL);
    CHECK(w[0] > -1e-14, "%s: PSD (min eigenvalue %g)", what, w[0]);
    size_t nz = 0;
    for (size_t i = 0; i < d; i++)
        nz += w[i] > 1e-12;
    CHECK(nz == rank, "%s: rank %zu expected, got %zu", what, rank, nz);
}

static double purity(const qd_c *rho, size_t d)
{
    double p = 0;
    for (size_t i = 0; i < d * d; i++)
        p += creal(rho[i] * conj(rho[i]));
    return p;
}

QD_TEST(random_density_matrices)
{
    qd_rng r;
    qd_rng_init(&r, 77);
    qd_c rho[256];
    qd_err e;
    CHECK(qd_random_dm_hs(rho, 8, 8, &r, &e) == QD_OK, "hs ok");
    check_dm(rho, 8, 8, "HS d=8");
    CHECK(qd_random_dm_hs(rho, 8, 3, &r, &e) == QD_OK, "induced ok");
    check_dm(rho, 8, 3, "induced d=8 k=3");
    CHECK(qd_random_dm_bures(rho, 8, &r, &e) == QD_OK, "bures ok");
    check_dm(rho, 8, 8, "Bures d=8");
    CHECK(qd_random_dm_hs(rho, 4, 5, &r, &e) == QD_EARG, "rank > d rejected");
    CHECK(strstr(e.msg, "rank 1..4 expected, got 5") != NULL, "message: %s", e.msg);
    CHECK(qd_random_dm_hs(rho, 4, 0, &r, &e) == QD_EARG, "rank 0 rejected");

    /* mean purity: HS (k = d) 2d/(d^2+1); induced (d, k) (d+k)/(dk+1); Bures
     * (5d^2+1)/(2d(d^2+2)) (Sommers & Zyczkowski, J. Phys. A 37, 8457 (2004)) */
    const size_t d = 4;
    const int M = 4000;
    double s[3] = {0}, s2[3] = {0};
    for (int i = 0; i < M; i++) {
        double p;
        qd_random_dm_hs(rho, d, d, &r, NULL);
        p = purity(rho, d);
        s[0] += p;
        s2[0] += p * p;
        qd_random_dm_hs(rho, d, 2, &r, NULL);
        p = purity(rho, d);
        s[1] += p;
        s2[1] += p * p;
        qd_random_dm_bures(rho, d, &r, NULL);
        p = purity(rho, d);
        s[2] += p;
        s2[2] += p * p;
    }
    double expect[3] = {2.0 * d / (d * d + 1.0), (d + 2.0) / (2.0 * d + 1.0),
                        (5.0 * d * d + 1.0) / (2.0 * d * (d * d + 2.0))};
    const char *names[3] = {"HS mean purity 2d/(d^2+1)", "induced k=2 mean purity (d+k)/(dk+1)",
                            "Bures mean purity (5d^2+1)/(2d(d^2+2))"};
    for (int j = 0; j < 3; j++) {
        double m = s[j] / M, se = sqrt((s2[j] / M - m * m) / M);
        CHECK_NEAR(m, expect[j], 5 * se, names[j]);
    }
}

QD_TEST(random_mixture)
{
    qd_rng r;
    qd_rng_init(&r, 8);
    qd_c rho[64];
    double w[3] = {0.5, 0.3, 0.2}, wout[4], ev[8];
    qd_err e;
    CHECK(qd_random_mixture(rho, 8, 3, w, wout, &r, &e) == QD_OK, "mixture ok");
    check_dm(rho, 8, 3, "mixture rank 3");
    qd_c A[64];
    memcpy(A, rho, sizeof A);
    qd_la_eigh(A, 8, ev, 0, NULL);
    CHECK_NEAR(ev[7], 0.5, 1e-13, "largest eigenvalue = w1");
    CHECK_NEAR(ev[6], 0.3, 1e-13, "second eigenvalue = w2");
    CHECK_NEAR(ev[5], 0.2, 1e-13, "third eigenvalue = w3");
    CHECK(wout[0] == 0.5 && wout[2] == 0.2, "weights echoed");
    /* Dirichlet weights: sum 1, positive, the spectrum */
    CHECK(qd_random_mixture(rho, 4, 4, NULL, wout, &r, &e) == QD_OK, "dirichlet ok");
    double sw = wout[0] + wout[1] + wout[2] + wout[3];
    CHECK(wout[0] > 0 && wout[1] > 0 && wout[2] > 0 && wout[3] > 0, "positive weights");
    CHECK_NEAR(sw, 1.0, 1e-15, "Dirichlet weights sum to 1");
    check_dm(rho, 4, 4, "Dirichlet mixture");
    /* E w_i = 1/k for Dirichlet(1..1) */
    double m = 0;
    const int M = 4000;
    for (int i = 0; i < M; i++) {
        qd_random_mixture(rho, 2, 2, NULL, wout, &r, NULL);
        m += wout[0];
    }
    CHECK_NEAR(m / M, 0.5, 5 * sqrt(1.0 / 12 / M), "Dirichlet(1,1) weight mean 1/2");
    CHECK(qd_random_mixture(rho, 2, 3, NULL, NULL, &r, &e) == QD_EARG, "rank > d rejected");
}

QD_TEST(random_circuit)
{
    for (int nq = 1; nq <= 4; nq++) {
        const int depth = 4;
        const size_t N = 6, d = (size_t)1 << nq;
        qd_rng base;
        qd_rng_init(&base, 100 + nq);
        qd_c *a = qd_calloc(N * d, sizeof(qd_c)), *b = qd_calloc(3 * d, sizeof(qd_c));
        for (size_t k = 0; k < N; k++)
            a[k * d] = 1;
        for (size_t k = 0; k < 3; k++)
            b[k * d] = 1;
        qd_random_circuit(a, nq, N, depth, &base);
        qd_random_circuit(b, nq, 3, depth, &base);
        CHECK(memcmp(a, b, sizeof(qd_c) * 3 * d) == 0, "members 1-3 same for N=3 and N=6 (n=%d)", nq);
        /* dense reference from the same draws */
        double worst = 0;
        for (size_t k = 0; k < N; k++) {
            qd_rng sub = qd_rng_sub(&base, k);
            qd_c v[16] = {1}, w[16], F[256], m[16];
            for (int l = 0; l < depth; l++) {
                int nk = nq == 1 ? 1 : 2;
                for (int i = nq == 1 ? 0 : l % 2; nq == 1 ? i < 1 : i + 1 < nq; i += 2) {
                    size_t g = (size_t)1 << nk;
                    qd_ginibre(m, g, g, &sub);
                    qd_unitary_from_ginibre_gs(m, g);
                    int qs[2] = {i, i + 1};
                    ref_full_operator(nq, qs, nk, m, F);
                    ref_matvec(F, d, v, w);
                    memcpy(v, w, sizeof(qd_c) * d);
                }
            }
            double x = ref_maxdiff(v, a + k * d, d);
            if (x > worst)
                worst = x;
        }
        CHECK(worst < 1e-13, "random circuit = dense reference (n=%d): %g", nq, worst);
        qd_free(a);
        qd_free(b);
    }
}

QD_TEST(random_data_sets)
{
    qd_rng base;
    qd_rng_init(&base, 31);
    /* clustered: member k = normalise(1, eps(x1 + i y1), ...) from substream k */
    const int n = 2;
    const size_t N = 5, d = 4;
    qd_c a[20], b[8];
    qd_data_clustered(a, n, N, 0.06, &base);
    qd_data_clustered(b, n, 2, 0.06, &base);
    CHECK(memcmp(a, b, sizeof b) == 0, "clustered: independent of N");
    double worst = 0;
    for (size_t k = 0; k < N; k++) {
        qd_rng sub = qd_rng_sub(&base, k);
        qd_c v[4] = {1};
        double nn = 1;
        for (size_t j = 1; j < d; j++) {
            double x = qd_rng_normal(&sub), y = qd_rng_normal(&sub);
            v[j] = 0.06 * x + I * 0.06 * y;
            nn += 0.0036 * (x * x + y * y);
        }
        for (size_t j = 0; j < d; j++)
            v[j] /= sqrt(nn);
        double dd = ref_maxdiff(v, a + k * d, d);
        worst = dd > worst ? dd : worst;
    }
    CHECK(worst < 1e-15, "clustered = definition: %g", worst);

    /* circle: cos/sin of phi ~ U[lo, hi) */
    double phis[10];
    qd_c c[20];
    qd_data_circle(c, 1, 10, 0, 2 * M_PI, &base, phis);
    int ok = 1;
    for (size_t k = 0; k < 10; k++) {
        qd_rng sub = qd_rng_sub(&base, k);
        double phi = 2 * M_PI * qd_rng_uniform(&sub);
        ok &= phi == phis[k] && c[2 * k] == cos(phi) && c[2 * k + 1] == sin(phi);
    }
    CHECK(ok, "circle = (cos phi, sin phi), phi from substream k");
    qd_c c2[16];
    qd_data_circle(c2, 2, 4, 0, 1, &base, phis);
    ok = 1;
    for (size_t k = 0; k < 4; k++) {
        double c0 = cos(phis[2 * k]), s0 = sin(phis[2 * k]), c1 = cos(phis[2 * k + 1]), s1 = sin(phis[2 * k + 1]);
        qd_c v[4] = {c0 * c1, c0 * s1, s0 * c1, s0 * s1};
        ok &= ref_maxdiff(v, c2 + 4 * k, 4) < 1e-16;
    }
    CHECK(ok, "2-qubit circle states are products, qubit 0 most significant");

    /* correlated XX/ZZ noise vs gates: exp(-i eps P⊗P) = rpp(2 eps) */
    const size_t Nn = 40;
    qd_c z[160];
    double isxx[40], eps[40];
    qd_data_xxzz(z, Nn, 0.8, M_PI / 3, &base, isxx, eps);
    const qd_gate_info *rxx = qd_gate_lookup("rxx"), *rzz = qd_gate_lookup("rzz");
    worst = 0;
    int nxx = 0;
    for (size_t k = 0; k < Nn; k++) {
        qd_c v[4] = {sqrt(0.1) * cexp(0.8 * I), sqrt(0.55) * cexp(1.7 * I), 0, sqrt(0.35) * cexp(2.4 * I)};
        int qs[2] = {0, 1};
        double th = 2 * eps[k];
        qd_apply_gate(v, 2, 1, isxx[k] ? rxx : rzz, qs, &th, 0);
        double dd = ref_maxdiff(v, z + 4 * k, 4);
        worst = dd > worst ? dd : worst;
        nxx += isxx[k] == 1;
        CHECK(fabs(eps[k]) <= M_PI / 3, "eps in [-pi/3, pi/3]");
    }
    CHECK(worst < 1e-15, "xxzz = gate reference: %g", worst);
    CHECK(nxx > 20 && nxx < 40, "about 80%% XX (%d of 40)", nxx);
    /* p-hat statistic of the paper: mean |<10|psi>|^2 = p * 0.55 * E sin^2 eps */
    const size_t Nb = 20000;
    qd_c *big = qd_malloc(sizeof(qd_c) * 4 * Nb);
    qd_data_xxzz(big, Nb, 0.8, M_PI / 3, &base, NULL, NULL);
    double f10 = 0, f10sq = 0;
    for (size_t k = 0; k < Nb; k++) {
        double f = creal(big[4 * k + 2] * conj(big[4 * k + 2]));
        f10 += f;
        f10sq += f * f;
    }
    f10 /= Nb;
    double esin2 = 0.5 - sin(2 * M_PI / 3) / (2 * (2 * M_PI / 3));
    CHECK_NEAR(f10, 0.8 * 0.55 * esin2, 5 * sqrt((f10sq / Nb - f10 * f10) / Nb), "mean F10 = 0.8 * 0.55 * 0.2933");
    qd_free(big);
}

QD_TEST(random_threads)
{
    /* batched generators: 1 and 2 threads give bitwise identical batches */
    const size_t N = 2000;
    qd_rng base;
    qd_rng_init(&base, 4);
    qd_c *a = qd_malloc(sizeof(qd_c) * 16 * N), *b = qd_malloc(sizeof(qd_c) * 16 * N);
    int saved = qd_get_threads();
    for (int which = 0; which < 3; which++) {
        for (int pass = 0; pass < 2; pass++) {
            qd_c *x = pass ? b : a;
            qd_set_threads(pass + 1);
            if (which == 0) {
                qd_data_clustered(x, 4, N, 0.1, &base);
            } else if (which == 1) {
                memset(x, 0, sizeof(qd_c) * 16 * N);
                for (size_t k = 0; k < N; k++)
                    x[16 * k] = 1;
                qd_random_circuit(x, 4, N, 3, &base);
            } else {
                qd_data_circle(x, 4, N, 0, 6, &base, NULL);
            }
        }
        CHECK(memcmp(a, b, sizeof(qd_c) * 16 * N) == 0, "kernel %d: 1 and 2 threads bitwise identical", which);
    }
    qd_data_xxzz(a, 4 * N, 0.8, 1, &base, NULL, NULL);
    qd_set_threads(1);
    qd_data_xxzz(b, 4 * N, 0.8, 1, &base, NULL, NULL);
    CHECK(memcmp(a, b, sizeof(qd_c) * 16 * N) == 0, "xxzz: 1 and 2 threads bitwise identical");
    qd_set_threads(saved);
    qd_free(a);
    qd_free(b);
}
