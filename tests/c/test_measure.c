/* test_measure.c — probabilities, sampling, measurement, projection and partial traces
 * against naive references: bit-by-bit outcome indices, explicit projectors
 * P = |m><m| (x) I built with ref_full_operator, and O(d^2) sums for partial traces.
 * Qubit subsets include unsorted orders such as {2, 0}. */
#include "harness.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- naive index helpers */

/* outcome index of basis index i for qubits qs (qs[0] most significant) */
static size_t nv_outcome(size_t i, int n, const int *qs, int k)
{
    size_t m = 0;
    for (int j = 0; j < k; j++)
        m = (m << 1) | ((i >> (n - 1 - qs[j])) & 1);
    return m;
}

static int in_set(int q, const int *qs, int k)
{
    for (int j = 0; j < k; j++)
        if (qs[j] == q)
            return 1;
    return 0;
}

/* index of the other qubits, in their original order (lowest qubit number = MSB) */
static size_t nv_rest(size_t i, int n, const int *qs, int k)
{
    size_t r = 0;
    for (int q = 0; q < n; q++)
        if (!in_set(q, qs, k))
            r = (r << 1) | ((i >> (n - 1 - q)) & 1);
    return r;
}

/* next ordered k-tuple of distinct qubits in [0, n) (base-n counter, duplicates skipped);
 * start with qs = {0, 0, ...}: the first call returns the first valid tuple. */
static int next_tuple(int n, int k, int *qs, int *started)
{
    for (;;) {
        if (!*started) {
            *started = 1;
            for (int j = 0; j < k; j++)
                qs[j] = 0;
        } else {
            int j = k - 1;
            while (j >= 0 && ++qs[j] == n)
                qs[j--] = 0;
            if (j < 0)
                return 0;
        }
        int ok = 1;
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
                ok &= qs[a] != qs[b];
        if (ok)
            return 1;
    }
}

static void naive_probs(const qd_c *a, int n, const int *qs, int k, double *p)
{
    size_t d = (size_t)1 << n;
    memset(p, 0, sizeof(double) * ((size_t)1 << k));
    for (size_t i = 0; i < d; i++)
        p[nv_outcome(i, n, qs, k)] += creal(a[i] * conj(a[i]));
}

/* projector |m><m| on qubits qs, as a full operator */
static void projector(int n, const int *qs, int k, size_t m, qd_c *P)
{
    size_t K = (size_t)1 << k;
    qd_c *pm = calloc(K * K, sizeof(qd_c));
    pm[m + m * K] = 1;
    ref_full_operator(n, qs, k, pm, P);
    free(pm);
}

static double maxdiff_d(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double x = fabs(a[i] - b[i]);
        if (!(x <= m))
            m = isnan(x) ? INFINITY : x;
    }
    return m;
}

/* ---------------------------------------------------------------- probabilities */

QD_TEST(measure_probs_vs_naive)
{
    qd_rng r;
    qd_rng_init(&r, 11);
    for (int n = 1; n <= 5; n++) {
        size_t d = (size_t)1 << n;
        qd_c a[32];
        ref_random_vec(a, d, &r);
        for (int k = 1; k <= n && k <= 3; k++) {
            int qs[5], started = 0;
            while (next_tuple(n, k, qs, &started)) {
                double p[32], q[32];
                qd_probs(a, n, qs, k, p);
                naive_probs(a, n, qs, k, q);
                CHECK(maxdiff_d(p, q, (size_t)1 << k) < 1e-14, "probs n=%d k=%d qs[0]=%d", n, k,
                      qs[0]);
            }
        }
        /* all qubits in order = |a_i|^2; reversed order = bit-reversed index */
        int id[5], rev[5];
        for (int j = 0; j < n; j++) {
            id[j] = j;
            rev[j] = n - 1 - j;
        }
        double p[32], q[32];
        qd_probs(a, n, id, n, p);
        int ok = 1;
        for (size_t i = 0; i < d; i++)
            ok &= fabs(p[i] - creal(a[i] * conj(a[i]))) < 1e-15;
        CHECK(ok, "probs of all qubits n=%d", n);
        qd_probs(a, n, rev, n, p);
        naive_probs(a, n, rev, n, q);
        CHECK(maxdiff_d(p, q, d) < 1e-15, "probs reversed n=%d", n);
        /* k = 0: one outcome, the norm */
        qd_probs(a, n, id, 0, p);
        CHECK_NEAR(p[0], 1.0, 1e-14, "k=0 probability");
    }
}

QD_TEST(measure_dm_probs_vs_naive)
{
    qd_rng r;
    qd_rng_init(&r, 12);
    for (int n = 1; n <= 5; n++) {
        size_t d = (size_t)1 << n;
        qd_c rho[32 * 32];
        ref_random_dm(rho, d, &r);
        for (int k = 1; k <= n && k <= 3; k++) {
            int qs[5], started = 0;
            while (next_tuple(n, k, qs, &started)) {
                double p[32], q[32] = {0};
                qd_dm_probs(rho, n, qs, k, p);
                for (size_t i = 0; i < d; i++)
                    q[nv_outcome(i, n, qs, k)] += creal(rho[i + i * d]);
                CHECK(maxdiff_d(p, q, (size_t)1 << k) < 1e-14, "dm probs n=%d k=%d", n, k);
            }
        }
    }
}

/* bigger registers exercise the multi-block (parallel) and many-outcome code paths;
 * results must be bitwise identical for 1 and 2 threads */
QD_TEST(measure_probs_large_paths)
{
    qd_rng r;
    qd_rng_init(&r, 13);
    int n = 16;
    size_t d = (size_t)1 << n;
    qd_c *a = qd_malloc(sizeof(qd_c) * d);
    double *p = qd_malloc(sizeof(double) * d), *q = qd_malloc(sizeof(double) * d);
    double *p2 = qd_malloc(sizeof(double) * d);
    ref_random_vec(a, d, &r);
    int sets[][8] = {{3, 14}, {15, 0, 7}, {9, 2, 12, 5, 0, 15, 8, 1}, {0, 1, 2, 3, 4, 5, 6, 7}};
    int ks[] = {2, 3, 8, 7};
    for (int t = 0; t < 4; t++) {
        qd_set_threads(1);
        qd_probs(a, n, sets[t], ks[t], p);
        qd_set_threads(2);
        qd_probs(a, n, sets[t], ks[t], p2);
        naive_probs(a, n, sets[t], ks[t], q);
        size_t K = (size_t)1 << ks[t];
        CHECK(maxdiff_d(p, q, K) < 1e-13, "large probs set %d", t);
        CHECK(memcmp(p, p2, sizeof(double) * K) == 0, "probs independent of threads, set %d", t);
    }
    /* all 16 qubits scrambled: 65536 outcomes, one amplitude each */
    int all[16] = {5, 0, 15, 3, 8, 1, 14, 2, 9, 4, 13, 6, 11, 7, 12, 10};
    qd_probs(a, n, all, 16, p);
    naive_probs(a, n, all, 16, q);
    CHECK(maxdiff_d(p, q, d) == 0, "scrambled full probs exact");
    qd_set_threads(1);
    qd_free(a);
    qd_free(p);
    qd_free(q);
    qd_free(p2);
}

/* ---------------------------------------------------------------- sampling */

QD_TEST(measure_sample_counts_statistics)
{
    qd_rng r;
    qd_rng_init(&r, 21);
    double p[8] = {0.1, 0.0, 0.25, 0.05, 0.3, 0.001, 0.294, 0.005};
    uint64_t c[8] = {0};
    size_t shots = 100000;
    qd_rng r0 = r;
    qd_sample_counts(p, 8, shots, &r, c);
    uint64_t tot = 0;
    int ok = 1;
    for (int i = 0; i < 8; i++) {
        tot += c[i];
        double sd = sqrt(shots * p[i] * (1 - p[i]));
        ok &= fabs((double)c[i] - shots * p[i]) <= 5 * sd + 1e-9;
    }
    CHECK(tot == shots, "counts sum to shots (%llu)", (unsigned long long)tot);
    CHECK(ok, "frequencies within 5 sigma");
    CHECK(c[1] == 0, "zero-probability outcome never drawn");

    /* deterministic for a given rng state; the rng advances */
    uint64_t c2[8] = {0};
    qd_sample_counts(p, 8, shots, &r0, c2);
    CHECK(memcmp(c, c2, sizeof c) == 0, "same rng state, same counts");
    CHECK(r0.ctr == r.ctr && r0.ctr > 0, "rng advanced identically");
    uint64_t c3[8] = {0};
    qd_sample_counts(p, 8, shots, &r, c3);
    CHECK(memcmp(c, c3, sizeof c) != 0, "advanced rng, new counts");

    /* counts accumulate */
    qd_rng_init(&r, 22);
    uint64_t acc[8] = {0};
    qd_sample_counts(p, 8, 1000, &r, acc);
    qd_sample_counts(p, 8, 1000, &r, acc);
    tot = 0;
    for (int i = 0; i < 8; i++)
        tot += acc[i];
    CHECK(tot == 2000, "counts are added to");

    /* unnormalised input is normalised; zeros at both ends; a point mass */
    double q[6] = {0, 0, 2.0, 0, 6.0, 0};
    uint64_t cq[6] = {0};
    qd_sample_counts(q, 6, shots, &r, cq);
    CHECK(cq[0] == 0 && cq[1] == 0 && cq[3] == 0 && cq[5] == 0, "only positive outcomes");
    CHECK(cq[2] + cq[4] == shots, "all shots counted");
    CHECK(fabs((double)cq[2] - 0.25 * shots) < 5 * sqrt(shots * 0.25 * 0.75), "25/75 split");
    double pt[4] = {0, 0, 0, 1};
    uint64_t ct[4] = {0};
    qd_sample_counts(pt, 4, 777, &r, ct);
    CHECK(ct[3] == 777 && ct[0] + ct[1] + ct[2] == 0, "point mass");
    double one = 1;
    uint64_t c1 = 0;
    qd_sample_counts(&one, 1, 5, &r, &c1);
    CHECK(c1 == 5, "d = 1");
    double zero[3] = {0, 0, 0};
    uint64_t cz[3] = {0};
    qd_sample_counts(zero, 3, 10, &r, cz);
    CHECK(cz[0] + cz[1] + cz[2] == 0, "all-zero distribution draws nothing");
    /* a tiny negative entry (rounding in a density-matrix diagonal) counts as 0 */
    double neg[3] = {0.5, -1e-17, 0.5};
    uint64_t cn[3] = {0};
    qd_sample_counts(neg, 3, 1000, &r, cn);
    CHECK(cn[1] == 0 && cn[0] + cn[2] == 1000, "negative probability never drawn");
}

/* many outcomes, few shots per outcome: chi-square against the distribution */
QD_TEST(measure_sample_counts_large_d)
{
    qd_rng r;
    qd_rng_init(&r, 23);
    size_t d = 1 << 14, shots = 200000;
    double *p = qd_malloc(sizeof(double) * d), s = 0;
    uint64_t *c = qd_calloc(d, sizeof(uint64_t));
    for (size_t i = 0; i < d; i++) {
        double u = qd_rng_uniform(&r);
        p[i] = 0.2 + u * u;   /* uneven weights, none tiny (see the variance below) */
        s += p[i];
    }
    for (size_t i = 0; i < d; i++)
        p[i] /= s;
    qd_sample_counts(p, d, shots, &r, c);
    double chi2 = 0;
    uint64_t tot = 0;
    for (size_t i = 0; i < d; i++) {
        double ex = shots * p[i];
        if (ex > 0)
            chi2 += (c[i] - ex) * (c[i] - ex) / ex;
        tot += c[i];
    }
    CHECK(tot == shots, "total");
    /* Pearson's statistic has mean d-1 and, for a multinomial, variance
     * 2(d-1) + (sum 1/p_i - d^2 - 2d + 2) / shots (exact, not the large-count limit) */
    double dof = (double)d - 1, inv = 0;
    for (size_t i = 0; i < d; i++)
        inv += 1 / p[i];
    double var = 2 * dof + (inv - (double)d * d - 2.0 * d + 2) / shots;
    CHECK(fabs(chi2 - dof) < 5 * sqrt(var), "chi-square %g for %g dof (sd %g)", chi2, dof,
          sqrt(var));
    /* the first and the last halves get their share: catches an off-by-one in the walk */
    double ph = 0;
    uint64_t ch = 0;
    for (size_t i = 0; i < d / 2; i++) {
        ph += p[i];
        ch += c[i];
    }
    CHECK(fabs(ch - shots * ph) < 5 * sqrt(shots * ph * (1 - ph)), "first half share");
    qd_free(p);
    qd_free(c);
}

/* ---------------------------------------------------------------- measurement */

/* expected post-states: full = P a / sqrt(p); reduced = its entries on the outcome, by
 * naive rest index */
static void expected_post(const qd_c *a, int n, const int *qs, int k, size_t m, qd_c *full,
                          qd_c *red, double *pm)
{
    size_t d = (size_t)1 << n;
    qd_c *P = malloc(sizeof(qd_c) * d * d);
    projector(n, qs, k, m, P);
    ref_matvec(P, d, a, full);
    free(P);
    double p = 0;
    for (size_t i = 0; i < d; i++)
        p += creal(full[i] * conj(full[i]));
    *pm = p;
    for (size_t i = 0; i < d; i++)
        full[i] /= sqrt(p);
    for (size_t i = 0; i < d; i++)
        if (nv_outcome(i, n, qs, k) == m)
            red[nv_rest(i, n, qs, k)] = full[i];
}

QD_TEST(measure_vs_projector)
{
    qd_rng r;
    qd_rng_init(&r, 31);
    double us[] = {0.0, 0.3, 0.77, 0.999999};
    for (int n = 1; n <= 4; n++) {
        size_t d = (size_t)1 << n;
        qd_c a[16];
        ref_random_vec(a, d, &r);
        for (int k = 1; k <= n && k <= 3; k++) {
            int qs[4], started = 0;
            while (next_tuple(n, k, qs, &started)) {
                size_t K = (size_t)1 << k;
                double p[8];
                naive_probs(a, n, qs, k, p);
                for (int t = 0; t < 4; t++) {
                    /* expected outcome: first m with cumulative p > u */
                    size_t em = 0;
                    double c = 0;
                    for (em = 0; em < K; em++) {
                        c += p[em];
                        if (c > us[t])
                            break;
                    }
                    qd_c full[16], red[16], out[16];
                    double pm;
                    expected_post(a, n, qs, k, em, full, red, &pm);
                    size_t m = 99;
                    double prob = -1;
                    qd_err e;
                    qd_err_clear(&e);
                    qd_status s = qd_measure(a, n, qs, k, us[t], 1, out, &m, &prob, &e);
                    CHECK(s == QD_OK && m == em, "outcome n=%d k=%d u=%g: %zu vs %zu", n, k,
                          us[t], m, em);
                    CHECK_NEAR(prob, pm, 1e-14, "outcome probability");
                    CHECK(ref_maxdiff(out, full, d) < 1e-13, "keep post-state n=%d k=%d", n, k);
                    s = qd_measure(a, n, qs, k, us[t], 0, out, &m, &prob, &e);
                    CHECK(s == QD_OK && m == em, "outcome (no keep)");
                    CHECK(ref_maxdiff(out, red, d / K) < 1e-13, "reduced post-state n=%d k=%d",
                          n, k);
                    /* in place */
                    qd_c b[16];
                    memcpy(b, a, sizeof(qd_c) * d);
                    s = qd_measure(b, n, qs, k, us[t], 1, b, &m, &prob, &e);
                    CHECK(s == QD_OK && ref_maxdiff(b, full, d) < 1e-13, "in-place measure");
                }
            }
        }
    }
}

QD_TEST(measure_edge_cases)
{
    /* |0110>: every measurement is certain whatever u */
    qd_c a[16] = {0};
    a[6] = 1;
    int qs[2] = {2, 0};
    double us[] = {0.0, 0.5, 0.9999999999};
    for (int t = 0; t < 3; t++) {
        qd_c out[16];
        size_t m;
        double p;
        qd_status s = qd_measure(a, 4, qs, 2, us[t], 0, out, &m, &p, NULL);
        /* qubit 2 = 1, qubit 0 = 0 -> outcome 0b10 = 2; rest (qubits 1, 3) = 0b10 */
        CHECK(s == QD_OK && m == 2 && p == 1.0, "certain outcome u=%g: m=%zu p=%g", us[t], m, p);
        CHECK(cabs(out[2] - 1) < 1e-15 && cabs(out[0]) + cabs(out[1]) + cabs(out[3]) == 0,
              "certain post-state");
    }
    /* k = 0: nothing measured, state renormalised */
    qd_c b[2] = {3, 4}, ob[2];
    size_t m;
    double p;
    CHECK(qd_measure(b, 1, qs, 0, 0.5, 1, ob, &m, &p, NULL) == QD_OK && m == 0 && p == 1.0,
          "k=0 measure");
    CHECK(cabs(ob[0] - 0.6) < 1e-15 && cabs(ob[1] - 0.8) < 1e-15, "k=0 renormalised");
    /* unnormalised state: prob is relative, post-state normalised */
    int q0 = 0;
    CHECK(qd_measure(b, 1, &q0, 1, 0.5, 1, ob, &m, &p, NULL) == QD_OK && m == 1, "3,4 -> 1");
    CHECK_NEAR(p, 0.64, 1e-15, "relative probability");
    CHECK(cabs(ob[1] - 1) < 1e-15 && ob[0] == 0, "normalised post-state");
    /* zero state */
    qd_c z[4] = {0}, oz[4];
    qd_err e;
    qd_err_clear(&e);
    CHECK(qd_measure(z, 2, &q0, 1, 0.5, 1, oz, &m, &p, &e) == QD_ENUMERIC &&
          e.status == QD_ENUMERIC && strstr(e.msg, "zero norm"), "zero state: %s", e.msg);
    /* bad qubits */
    int dup[2] = {1, 1}, big[1] = {4};
    qd_err_clear(&e);
    CHECK(qd_measure(a, 4, dup, 2, 0.5, 1, oz, &m, &p, &e) == QD_EARG && strstr(e.msg, "twice"),
          "duplicate qubit: %s", e.msg);
    CHECK(qd_measure(a, 4, big, 1, 0.5, 1, oz, &m, &p, &e) == QD_EARG &&
          strstr(e.msg, "out of range"), "qubit out of range: %s", e.msg);
}

QD_TEST(measure_project_vs_projector)
{
    qd_rng r;
    qd_rng_init(&r, 32);
    for (int n = 1; n <= 4; n++) {
        size_t d = (size_t)1 << n;
        qd_c a[16];
        ref_random_vec(a, d, &r);
        for (int k = 1; k <= n && k <= 3; k++) {
            int qs[4], started = 0;
            while (next_tuple(n, k, qs, &started)) {
                size_t K = (size_t)1 << k;
                for (size_t m = 0; m < K; m++) {
                    qd_c full[16], red[16], out[16];
                    double pm, prob = -1;
                    expected_post(a, n, qs, k, m, full, red, &pm);
                    qd_status s = qd_project(a, n, qs, k, m, 1, out, &prob, NULL);
                    CHECK(s == QD_OK && fabs(prob - pm) < 1e-14, "project prob n=%d k=%d m=%zu",
                          n, k, m);
                    CHECK(ref_maxdiff(out, full, d) < 1e-13, "project keep n=%d k=%d", n, k);
                    s = qd_project(a, n, qs, k, m, 0, out, &prob, NULL);
                    CHECK(s == QD_OK && ref_maxdiff(out, red, d / K) < 1e-13,
                          "project reduced n=%d k=%d", n, k);
                }
            }
        }
    }
    /* zero-probability outcome and bad outcome */
    qd_c b[8] = {0}, out[8];
    b[5] = 1;   /* |101> */
    int qs[2] = {2, 1};
    double p;
    qd_err e;
    qd_err_clear(&e);
    CHECK(qd_project(b, 3, qs, 2, 2, 0, out, &p, &e) == QD_OK && p == 1.0, "certain outcome");
    CHECK(qd_project(b, 3, qs, 2, 1, 0, out, &p, &e) == QD_ENUMERIC && e.status == QD_ENUMERIC,
          "zero-probability outcome fails");
    CHECK(strcmp(e.msg, "outcome 1 has probability 0") == 0, "message: %s", e.msg);
    qd_err_clear(&e);
    CHECK(qd_project(b, 3, qs, 2, 4, 0, out, &p, &e) == QD_EARG && strstr(e.msg, "out of range"),
          "outcome out of range: %s", e.msg);
    /* in place */
    qd_rng_init(&r, 33);
    qd_c c[16], full[16], red[16];
    double pm;
    ref_random_vec(c, 16, &r);
    expected_post(c, 4, qs, 2, 3, full, red, &pm);
    CHECK(qd_project(c, 4, qs, 2, 3, 1, c, &p, NULL) == QD_OK && ref_maxdiff(c, full, 16) < 1e-13
          && fabs(p - pm) < 1e-14, "in-place project");
}

/* larger register: measure/project through the multi-block paths */
QD_TEST(measure_large_register)
{
    qd_rng r;
    qd_rng_init(&r, 34);
    int n = 16;
    size_t d = (size_t)1 << n;
    qd_c *a = qd_malloc(sizeof(qd_c) * d), *out = qd_malloc(sizeof(qd_c) * d);
    ref_random_vec(a, d, &r);
    int qs[3] = {13, 2, 7};
    double p[8];
    naive_probs(a, n, qs, 3, p);
    for (size_t m = 0; m < 8; m++) {
        double prob;
        CHECK(qd_project(a, n, qs, 3, m, 0, out, &prob, NULL) == QD_OK, "project");
        CHECK_NEAR(prob, p[m], 1e-13, "large project probability");
        int ok = 1;
        for (size_t i = 0; i < d; i++)
            if (nv_outcome(i, n, qs, 3) == m)
                ok &= cabs(out[nv_rest(i, n, qs, 3)] - a[i] / sqrt(p[m])) < 1e-12;
        CHECK(ok, "large reduced post-state m=%zu", m);
    }
    size_t m;
    double prob;
    CHECK(qd_measure(a, n, qs, 3, 0.5, 1, out, &m, &prob, NULL) == QD_OK, "measure");
    int ok = 1;
    for (size_t i = 0; i < d; i++)
        ok &= cabs(out[i] - (nv_outcome(i, n, qs, 3) == m ? a[i] / sqrt(p[m]) : 0)) < 1e-12;
    CHECK(ok, "large keep post-state");
    qd_free(a);
    qd_free(out);
}

QD_TEST(measure_dm_vs_projector)
{
    qd_rng r;
    qd_rng_init(&r, 41);
    double us[] = {0.0, 0.45, 0.999};
    for (int n = 1; n <= 4; n++) {
        size_t d = (size_t)1 << n;
        qd_c rho[256], P[256], T[256], PR[256], out[256];
        ref_random_dm(rho, d, &r);
        for (int k = 1; k <= n && k <= 3; k++) {
            int qs[4], started = 0;
            while (next_tuple(n, k, qs, &started)) {
                size_t K = (size_t)1 << k, R = d / K;
                double p[8] = {0};
                for (size_t i = 0; i < d; i++)
                    p[nv_outcome(i, n, qs, k)] += creal(rho[i + i * d]);
                for (int t = 0; t < 3; t++) {
                    size_t em;
                    double c = 0;
                    for (em = 0; em < K; em++) {
                        c += p[em];
                        if (c > us[t])
                            break;
                    }
                    projector(n, qs, k, em, P);
                    ref_matmul(P, rho, d, T);
                    ref_matmul(T, P, d, PR);
                    for (size_t i = 0; i < d * d; i++)
                        PR[i] /= p[em];
                    size_t m;
                    double prob;
                    qd_status s = qd_dm_measure(rho, n, qs, k, us[t], 1, out, &m, &prob, NULL);
                    CHECK(s == QD_OK && m == em, "dm outcome n=%d k=%d", n, k);
                    CHECK_NEAR(prob, p[em], 1e-14, "dm probability");
                    CHECK(ref_maxdiff(out, PR, d * d) < 1e-13, "dm keep n=%d k=%d", n, k);
                    s = qd_dm_measure(rho, n, qs, k, us[t], 0, out, &m, &prob, NULL);
                    CHECK(s == QD_OK && m == em, "dm outcome (no keep)");
                    int ok = 1;
                    for (size_t cc = 0; cc < d; cc++)
                        for (size_t rr = 0; rr < d; rr++)
                            if (nv_outcome(rr, n, qs, k) == em && nv_outcome(cc, n, qs, k) == em)
                                ok &= cabs(out[nv_rest(rr, n, qs, k) + nv_rest(cc, n, qs, k) * R]
                                           - PR[rr + cc * d]) < 1e-13;
                    CHECK(ok, "dm reduced n=%d k=%d", n, k);
                }
            }
        }
    }
    /* |psi><psi| measured as a density matrix = the pure-state measurement */
    qd_c psi[8], rho[64], out[64], post[8];
    ref_random_vec(psi, 8, &r);
    for (size_t c = 0; c < 8; c++)
        for (size_t rr = 0; rr < 8; rr++)
            rho[rr + c * 8] = psi[rr] * conj(psi[c]);
    int qs[2] = {2, 0};
    size_t m1, m2;
    double p1, p2;
    CHECK(qd_measure(psi, 3, qs, 2, 0.6, 0, post, &m1, &p1, NULL) == QD_OK, "pure");
    CHECK(qd_dm_measure(rho, 3, qs, 2, 0.6, 0, out, &m2, &p2, NULL) == QD_OK, "dm");
    CHECK(m1 == m2 && fabs(p1 - p2) < 1e-14, "same outcome and probability");
    int ok = 1;
    for (size_t c = 0; c < 2; c++)
        for (size_t rr = 0; rr < 2; rr++)
            ok &= cabs(out[rr + c * 2] - post[rr] * conj(post[c])) < 1e-13;
    CHECK(ok, "dm post-state = |post><post|");
    /* zero trace */
    qd_c zero[16] = {0};
    qd_err e;
    qd_err_clear(&e);
    CHECK(qd_dm_measure(zero, 2, qs + 1, 1, 0.5, 1, out, &m1, &p1, &e) == QD_ENUMERIC &&
          strstr(e.msg, "zero trace"), "zero trace: %s", e.msg);
}

/* ---------------------------------------------------------------- partial traces */

/* O(d^2): out[o(i), o(j)] += psi_i conj(psi_j) whenever the traced-out bits agree */
static void naive_ptrace_state(const qd_c *psi, int n, const int *keep, int k, qd_c *out)
{
    size_t d = (size_t)1 << n, K = (size_t)1 << k;
    memset(out, 0, sizeof(qd_c) * K * K);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++)
            if (nv_rest(i, n, keep, k) == nv_rest(j, n, keep, k))
                out[nv_outcome(i, n, keep, k) + nv_outcome(j, n, keep, k) * K] +=
                    psi[i] * conj(psi[j]);
}

/* O(K^2 R): the same sum organised by (x, y, rest); for registers too big for O(d^2) */
static void seminaive_ptrace_state(const qd_c *psi, int n, const int *keep, int k, qd_c *out)
{
    size_t d = (size_t)1 << n, K = (size_t)1 << k, R = d / K;
    size_t *byo = malloc(sizeof(size_t) * d);   /* basis index of (outcome, rest) */
    for (size_t i = 0; i < d; i++)
        byo[nv_outcome(i, n, keep, k) * R + nv_rest(i, n, keep, k)] = i;
    for (size_t y = 0; y < K; y++)
        for (size_t x = 0; x < K; x++) {
            qd_c t = 0;
            for (size_t s = 0; s < R; s++)
                t += psi[byo[x * R + s]] * conj(psi[byo[y * R + s]]);
            out[x + y * K] = t;
        }
    free(byo);
}

QD_TEST(measure_ptrace_state_vs_naive)
{
    qd_rng r;
    qd_rng_init(&r, 51);
    for (int n = 1; n <= 5; n++) {
        size_t d = (size_t)1 << n;
        qd_c psi[32], out[1024], ref[1024];
        ref_random_vec(psi, d, &r);
        for (int k = 0; k <= n; k++) {
            int qs[5], started = 0;
            while (next_tuple(n, k, qs, &started)) {
                size_t K = (size_t)1 << k;
                qd_ptrace_state(psi, n, qs, k, out);
                naive_ptrace_state(psi, n, qs, k, ref);
                CHECK(ref_maxdiff(out, ref, K * K) < 1e-14, "ptrace n=%d k=%d qs[0]=%d", n, k,
                      k ? qs[0] : -1);
                int herm = 1;
                for (size_t c = 0; c < K; c++)
                    for (size_t x = 0; x < K; x++)
                        herm &= out[x + c * K] == conj(out[c + x * K]);
                CHECK(herm, "exactly Hermitian");
                if (k == 0)
                    break;
            }
        }
    }
}

/* the bigger-K paths: pairwise (tiny rest), zgemm on contiguous top / bottom qubits,
 * gathered zgemm for scattered qubits (one chunk and several chunks) */
QD_TEST(measure_ptrace_state_large_paths)
{
    qd_rng r;
    qd_rng_init(&r, 52);
    struct { int n, k, qs[6]; } cases[] = {
        {6, 4, {5, 1, 3, 0}},           /* K=16, R=4: pairs */
        {6, 5, {4, 0, 2, 5, 1}},        /* K=32, R=2: pairs */
        {8, 4, {0, 1, 2, 3}},           /* top, in order: zgemm on psi */
        {8, 4, {4, 5, 6, 7}},           /* bottom, in order: zgemm on psi */
        {8, 4, {6, 1, 3, 4}},           /* scattered: gathered */
        {8, 5, {7, 6, 5, 4, 3}},        /* reversed bottom: gathered */
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int n = cases[t].n, k = cases[t].k;
        size_t d = (size_t)1 << n, K = (size_t)1 << k;
        qd_c *psi = malloc(sizeof(qd_c) * d), *out = malloc(sizeof(qd_c) * K * K),
             *ref = malloc(sizeof(qd_c) * K * K);
        ref_random_vec(psi, d, &r);
        qd_ptrace_state(psi, n, cases[t].qs, k, out);
        naive_ptrace_state(psi, n, cases[t].qs, k, ref);
        CHECK(ref_maxdiff(out, ref, K * K) < 1e-13, "ptrace path case %zu", t);
        free(psi);
        free(out);
        free(ref);
    }
    /* several gather chunks (K*R > 16384), checked against the O(K^2 R) reference, which is
     * itself checked against the O(d^2) one above through the small cases */
    struct { int n, k, qs[6]; } big[] = {
        {15, 4, {3, 14, 0, 7}},
        {15, 5, {9, 2, 11, 0, 5}},
        {15, 2, {14, 3}},               /* small K, several blocks, parallel */
    };
    for (size_t t = 0; t < sizeof big / sizeof big[0]; t++) {
        int n = big[t].n, k = big[t].k;
        size_t d = (size_t)1 << n, K = (size_t)1 << k;
        qd_c *psi = malloc(sizeof(qd_c) * d), *out = malloc(sizeof(qd_c) * K * K),
             *ref = malloc(sizeof(qd_c) * K * K), *out1 = malloc(sizeof(qd_c) * K * K);
        ref_random_vec(psi, d, &r);
        qd_set_threads(2);
        qd_ptrace_state(psi, n, big[t].qs, k, out);
        qd_set_threads(1);
        qd_ptrace_state(psi, n, big[t].qs, k, out1);
        seminaive_ptrace_state(psi, n, big[t].qs, k, ref);
        CHECK(ref_maxdiff(out, ref, K * K) < 1e-13, "big ptrace case %zu", t);
        if (K <= 8)
            CHECK(memcmp(out, out1, sizeof(qd_c) * K * K) == 0, "ptrace independent of threads");
        free(psi);
        free(out);
        free(ref);
        free(out1);
    }
}

QD_TEST(measure_ptrace_dm_vs_naive)
{
    qd_rng r;
    qd_rng_init(&r, 53);
    for (int n = 1; n <= 4; n++) {
        size_t d = (size_t)1 << n;
        qd_c rho[256], out[256], ref[256];
        ref_random_dm(rho, d, &r);
        for (int k = 0; k <= n; k++) {
            int qs[4], started = 0;
            while (next_tuple(n, k, qs, &started)) {
                size_t K = (size_t)1 << k;
                qd_ptrace_dm(rho, n, qs, k, out);
                memset(ref, 0, sizeof(qd_c) * K * K);
                for (size_t j = 0; j < d; j++)
                    for (size_t i = 0; i < d; i++)
                        if (nv_rest(i, n, qs, k) == nv_rest(j, n, qs, k))
                            ref[nv_outcome(i, n, qs, k) + nv_outcome(j, n, qs, k) * K] +=
                                rho[i + j * d];
                CHECK(ref_maxdiff(out, ref, K * K) < 1e-14, "dm ptrace n=%d k=%d", n, k);
                if (k == 0)
                    break;
            }
        }
    }
    /* ptrace of |psi><psi| = ptrace of psi */
    qd_c psi[32], rho[1024], a[64], b[64];
    ref_random_vec(psi, 32, &r);
    for (size_t c = 0; c < 32; c++)
        for (size_t x = 0; x < 32; x++)
            rho[x + c * 32] = psi[x] * conj(psi[c]);
    int keep[3] = {4, 1, 2};
    qd_ptrace_dm(rho, 5, keep, 3, a);
    qd_ptrace_state(psi, 5, keep, 3, b);
    CHECK(ref_maxdiff(a, b, 64) < 1e-14, "dm and state partial traces agree");
}

/* Beyond 2^24 shots the counts come from conditional binomials (Knuth's beta splitting
 * with Marsaglia-Tsang gammas): totals exact, each count within 6 sigma of shots * p_i,
 * zero-probability outcomes never drawn, unnormalised p accepted, deterministic. */
QD_TEST(measure_sample_counts_many_shots)
{
    const double p[6] = {0.1, 0, 0.2, 0.3, -1e-17, 0.4};
    const size_t sizes[3] = {((size_t)1 << 24) + 1, (size_t)123456789012, (size_t)1000000000000};
    for (int s = 0; s < 3; s++) {
        size_t shots = sizes[s];
        uint64_t c[6] = {0}, c2[6] = {0}, tot = 0;
        qd_rng r, r2;
        qd_rng_init(&r, 900 + (uint64_t)s);
        r2 = r;
        qd_sample_counts(p, 6, shots, &r, c);
        qd_sample_counts(p, 6, shots, &r2, c2);
        CHECK(memcmp(c, c2, sizeof c) == 0, "deterministic for a given rng state");
        for (int i = 0; i < 6; i++)
            tot += c[i];
        CHECK(tot == shots, "counts sum to shots (%llu vs %zu)", (unsigned long long)tot, shots);
        CHECK(c[1] == 0 && c[4] == 0, "p <= 0 never drawn");
        for (int i = 0; i < 6; i++) {
            if (!(p[i] > 0))
                continue;
            double mean = (double)shots * p[i], sd = sqrt((double)shots * p[i] * (1 - p[i]));
            CHECK(fabs((double)c[i] - mean) < 6 * sd, "count %d: %llu vs %.0f +- %.0f", i,
                  (unsigned long long)c[i], mean, sd);
        }
    }
    /* scaled p (sum 2) gives the same distribution: check the mean over repeats at 2^25 */
    const double q[3] = {0.5, 1.0, 0.5};
    double acc[3] = {0};
    qd_rng r;
    qd_rng_init(&r, 77);
    size_t shots = (size_t)1 << 25;
    for (int rep = 0; rep < 50; rep++) {
        uint64_t c[3] = {0};
        qd_sample_counts(q, 3, shots, &r, c);
        for (int i = 0; i < 3; i++)
            acc[i] += (double)c[i];
    }
    for (int i = 0; i < 3; i++) {
        double n = 50.0 * (double)shots, pi = q[i] / 2, sd = sqrt(n * pi * (1 - pi));
        CHECK(fabs(acc[i] - n * pi) < 6 * sd, "unnormalised p, outcome %d", i);
    }
}
