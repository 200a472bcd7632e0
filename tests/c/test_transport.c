/* test_transport.c — exact and entropic optimal transport against brute force:
 * assignment vs all permutations (n <= 7), network simplex vs assignment (equal sizes,
 * with many ties to stress degeneracy) and vs a brute-force LP over all spanning-tree
 * bases (tiny unequal sizes), Sinkhorn -> exact as eps -> 0. */
#include "harness.h"
#include "qd_loss.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static double best_perm;

static void perm_rec(const double *C, size_t n, size_t *p, size_t k, double acc)
{
    if (k == n) {
        if (acc < best_perm)
            best_perm = acc;
        return;
    }
    for (size_t t = k; t < n; t++) {
        size_t s = p[k];
        p[k] = p[t];
        p[t] = s;
        perm_rec(C, n, p, k + 1, acc + C[k + p[k] * n]);
        s = p[k];
        p[k] = p[t];
        p[t] = s;
    }
}

static double brute_assign(const double *C, size_t n)
{
    size_t p[8];
    for (size_t i = 0; i < n; i++)
        p[i] = i;
    best_perm = INFINITY;
    perm_rec(C, n, p, 0, 0);
    return best_perm;
}

static void check_marginals(const double *P, size_t N, size_t M, const double *a,
                            const double *b, double tol, const char *what)
{
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        double s = 0;
        for (size_t j = 0; j < M; j++) {
            s += P[i + j * N];
            if (P[i + j * N] < -1e-15)
                worst = 1;
        }
        worst = fmax(worst, fabs(s - a[i]));
    }
    for (size_t j = 0; j < M; j++) {
        double s = 0;
        for (size_t i = 0; i < N; i++)
            s += P[i + j * N];
        worst = fmax(worst, fabs(s - b[j]));
    }
    CHECK(worst <= tol, "%s: marginals off by %g", what, worst);
}

QD_TEST(ot_assign_vs_permutations)
{
    qd_rng r;
    qd_rng_init(&r, 301);
    for (size_t n = 1; n <= 7; n++)
        for (int rep = 0; rep < 6; rep++) {
            double C[49];
            for (size_t i = 0; i < n * n; i++)   /* rep odd: integer costs with many ties */
                C[i] = rep % 2 ? (double)(qd_rng_u64(&r) % 3) : qd_rng_uniform(&r) - 0.3;
            size_t perm[7];
            double cost;
            qd_err e;
            CHECK(qd_ot_assign(C, n, perm, &cost, &e) == QD_OK, "assign n=%zu", n);
            int seen[7] = {0}, ok = 1;
            double s = 0;
            for (size_t i = 0; i < n; i++) {
                ok &= perm[i] < n && !seen[perm[i]];
                if (perm[i] < n)
                    seen[perm[i]] = 1;
                s += C[i + perm[i] * n];
            }
            CHECK(ok, "assignment is a permutation (n=%zu)", n);
            CHECK_NEAR(cost, s, 1e-12, "reported cost = sum of chosen entries");
            CHECK_NEAR(cost, brute_assign(C, n), 1e-12, "assignment optimal");
        }
    double bad[4] = {0, NAN, 1, 2};
    size_t perm[2];
    double c;
    qd_err e;
    CHECK(qd_ot_assign(bad, 2, perm, &c, &e) == QD_EARG && strstr(e.msg, "non-finite"),
          "NaN cost rejected: %s", e.msg);
}

QD_TEST(ot_simplex_vs_assignment)
{
    qd_rng r;
    qd_rng_init(&r, 302);
    size_t sizes[] = {1, 2, 3, 5, 8, 13, 30};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        size_t n = sizes[t];
        for (int rep = 0; rep < 3; rep++) {
            double *C = malloc(sizeof(double) * n * n), *P = malloc(sizeof(double) * n * n);
            double *P2 = malloc(sizeof(double) * n * n), *u = malloc(sizeof(double) * n);
            size_t *perm = malloc(sizeof(size_t) * n);
            for (size_t i = 0; i < n * n; i++)
                C[i] = rep == 1 ? (double)(qd_rng_u64(&r) % 4) : qd_rng_uniform(&r);
            for (size_t i = 0; i < n; i++)
                u[i] = 1.0 / (double)n;
            double ca, cs, ce;
            qd_err e;
            CHECK(qd_ot_assign(C, n, perm, &ca, &e) == QD_OK, "assign");
            CHECK(qd_ot_simplex(C, n, n, NULL, NULL, P, &cs, &e) == QD_OK, "simplex n=%zu: %s",
                  n, e.msg);
            CHECK_NEAR(cs, ca / (double)n, 1e-12, "simplex = assignment / n");
            check_marginals(P, n, n, u, u, 1e-14, "simplex plan");
            CHECK(qd_ot_exact(C, n, n, NULL, NULL, P2, &ce, &e) == QD_OK, "exact");
            CHECK_NEAR(ce, cs, 1e-12, "exact (assignment path) = simplex");
            /* given (uniform) weights force the simplex path with real weights */
            CHECK(qd_ot_exact(C, n, n, u, u, P2, &ce, &e) == QD_OK, "exact weighted");
            CHECK_NEAR(ce, cs, 1e-12, "weighted simplex = integer simplex");
            free(C);
            free(P);
            free(P2);
            free(u);
            free(perm);
        }
    }
}

/* brute-force LP: every basis (N+M-1 cells forming a spanning tree), solved by leaf
 * elimination; the best feasible one */
static double brute_lp(const double *C, size_t N, size_t M, const double *a, const double *b)
{
    size_t NM = N * M, K = N + M - 1, V = N + M;
    double best = INFINITY;
    for (unsigned long mask = 0; mask < (1ul << NM); mask++) {
        if ((size_t)__builtin_popcountl(mask) != K)
            continue;
        /* acyclic? union-find */
        size_t uf[16];
        for (size_t v = 0; v < V; v++)
            uf[v] = v;
        int ok = 1;
        for (size_t c = 0; c < NM && ok; c++) {
            if (!(mask >> c & 1))
                continue;
            size_t x = c % N, y = N + c / N;
            while (uf[x] != x)
                x = uf[x];
            while (uf[y] != y)
                y = uf[y];
            if (x == y)
                ok = 0;
            else
                uf[x] = y;
        }
        if (!ok)
            continue;
        double rem[16], flow[16] = {0};
        for (size_t i = 0; i < N; i++)
            rem[i] = a[i];
        for (size_t j = 0; j < M; j++)
            rem[N + j] = b[j];
        unsigned long left = mask;
        while (left) {
            /* a node of degree 1 among the remaining cells */
            int progress = 0;
            for (size_t v = 0; v < V && left; v++) {
                int deg = 0;
                size_t cell = 0;
                for (size_t c = 0; c < NM; c++)
                    if ((left >> c & 1) && ((v < N && c % N == v) || (v >= N && c / N == v - N))) {
                        deg++;
                        cell = c;
                    }
                if (deg != 1)
                    continue;
                flow[cell] = rem[v];
                rem[cell % N] -= flow[cell];
                rem[N + cell / N] -= flow[cell];
                left &= ~(1ul << cell);
                progress = 1;
            }
            if (!progress)
                break;
        }
        double cost = 0;
        for (size_t c = 0; c < NM; c++) {
            if (flow[c] < -1e-12)
                ok = 0;
            cost += flow[c] * C[c];
        }
        if (ok && cost < best)
            best = cost;
    }
    return best;
}

QD_TEST(ot_simplex_vs_brute_lp)
{
    qd_rng r;
    qd_rng_init(&r, 303);
    size_t shapes[][2] = {{1, 3}, {2, 3}, {3, 2}, {2, 5}, {3, 4}, {4, 3}, {2, 6}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        size_t N = shapes[t][0], M = shapes[t][1];
        for (int rep = 0; rep < 4; rep++) {
            double C[12], P[12], a[6], b[6], ua[6], ub[6];
            for (size_t i = 0; i < N * M; i++)
                C[i] = rep == 3 ? (double)(qd_rng_u64(&r) % 2) : qd_rng_uniform(&r);
            double sa = 0, sb = 0;
            for (size_t i = 0; i < N; i++) {
                a[i] = rep == 2 && i == 0 && N > 1 ? 0.0 : qd_rng_uniform(&r) + 0.1;
                sa += a[i];
                ua[i] = 1.0 / (double)N;
            }
            for (size_t j = 0; j < M; j++) {
                b[j] = qd_rng_uniform(&r) + 0.1;
                sb += b[j];
                ub[j] = 1.0 / (double)M;
            }
            for (size_t i = 0; i < N; i++)
                a[i] /= sa;
            for (size_t j = 0; j < M; j++)
                b[j] /= sb;
            double c;
            qd_err e;
            CHECK(qd_ot_exact(C, N, M, NULL, NULL, P, &c, &e) == QD_OK, "uniform %zux%zu", N, M);
            CHECK_NEAR(c, brute_lp(C, N, M, ua, ub), 1e-12, "uniform simplex = brute-force LP");
            check_marginals(P, N, M, ua, ub, 1e-14, "uniform plan");
            CHECK(qd_ot_exact(C, N, M, a, b, P, &c, &e) == QD_OK, "weighted %zux%zu", N, M);
            CHECK_NEAR(c, brute_lp(C, N, M, a, b), 1e-12, "weighted simplex = brute-force LP");
            check_marginals(P, N, M, a, b, 1e-13, "weighted plan");
        }
    }
    double C[6] = {0.3, 0.1, 0.7, 0.2, 0.5, 0.4}, P[6], P2[6], c, c2, bad[3] = {0.5, 0.5, 0.5};
    double ok2[2] = {0.5, 0.5}, ok3[3] = {1.0 / 3, 1.0 / 3, 1.0 / 3};
    qd_err e;
    CHECK(qd_ot_exact(C, 2, 3, ok2, bad, P, &c, &e) == QD_OK &&
          qd_ot_exact(C, 2, 3, ok2, ok3, P2, &c2, &e) == QD_OK && fabs(c - c2) < 1e-15,
          "weights are relative (normalised separately)");
    bad[1] = -1;
    CHECK(qd_ot_exact(C, 2, 3, NULL, bad, P, &c, &e) == QD_EARG && strstr(e.msg, "non-negative"),
          "negative weight rejected: %s", e.msg);
}

/* larger unequal problem: simplex vs the same problem with weights expanded so that it
 * becomes an assignment (N x M with uniform weights = NM/g x NM/g copies... here simply
 * M = 2N: each row duplicated gives a 2N x 2N assignment) */
QD_TEST(ot_simplex_unequal_vs_duplicated_assignment)
{
    qd_rng r;
    qd_rng_init(&r, 304);
    size_t N = 20, M = 40;
    double *C = malloc(sizeof(double) * N * M), *P = malloc(sizeof(double) * N * M);
    double *C2 = malloc(sizeof(double) * M * M);
    size_t *perm = malloc(sizeof(size_t) * M);
    for (size_t i = 0; i < N * M; i++)
        C[i] = qd_rng_uniform(&r);
    for (size_t j = 0; j < M; j++)
        for (size_t i = 0; i < M; i++)
            C2[i + j * M] = C[(i % N) + j * N];
    double cs, ca;
    qd_err e;
    CHECK(qd_ot_exact(C, N, M, NULL, NULL, P, &cs, &e) == QD_OK, "simplex 20x40");
    CHECK(qd_ot_assign(C2, M, perm, &ca, &e) == QD_OK, "assign 40x40");
    CHECK_NEAR(cs, ca / (double)M, 1e-12, "unequal simplex = duplicated-row assignment");
    free(C);
    free(P);
    free(C2);
    free(perm);
}

QD_TEST(ot_sinkhorn_to_exact)
{
    qd_rng r;
    qd_rng_init(&r, 305);
    size_t N = 6, M = 9;
    double C[54], P[54], Pe[54], w, ua[6], ub[9];
    for (size_t i = 0; i < N * M; i++)
        C[i] = qd_rng_uniform(&r);
    for (size_t i = 0; i < N; i++)
        ua[i] = 1.0 / (double)N;
    for (size_t j = 0; j < M; j++)
        ub[j] = 1.0 / (double)M;
    qd_err e;
    CHECK(qd_ot_exact(C, N, M, NULL, NULL, Pe, &w, &e) == QD_OK, "exact");
    double epss[] = {0.3, 0.1, 0.03, 0.01, 0.001}, prev = INFINITY;
    for (size_t t = 0; t < 5; t++) {
        double v;
        qd_sinkhorn_info info;
        CHECK(qd_ot_sinkhorn(C, N, M, NULL, NULL, epss[t], 100000, 1e-12, P, &v, &info, &e) ==
              QD_OK, "sinkhorn");
        CHECK(info.converged, "sinkhorn eps=%g converged (err %g after %zu)", epss[t], info.err,
              info.iters);
        check_marginals(P, N, M, ua, ub, 1e-11, "sinkhorn plan");
        /* OT_eps - W in [0, eps log(NM)] (entropy of a coupling <= log NM) */
        double gap = v - w;
        CHECK(gap >= -1e-10 && gap <= epss[t] * log((double)(N * M)) + 1e-10,
              "eps=%g: regularised value %.12g vs exact %.12g", epss[t], v, w);
        CHECK(fabs(info.cost - w) <= prev + 1e-12, "transport cost approaches W");
        prev = fabs(info.cost - w);
        /* dual value = primal objective <P,C> + eps KL(P || ab^T) at convergence */
        double kl = 0;
        for (size_t i = 0; i < N * M; i++)
            if (P[i] > 0)
                kl += P[i] * log(P[i] * (double)(N * M));   /* sum P = 1 */
        CHECK_NEAR(v, info.cost + epss[t] * kl, 1e-9, "dual = primal");
    }
    double maxd = 0;
    for (size_t i = 0; i < N * M; i++)
        maxd = fmax(maxd, fabs(P[i] - Pe[i]));
    CHECK(maxd < 1e-3, "plan at eps=1e-3 close to the exact plan (max diff %g)", maxd);
    /* envelope theorem: d value / d C_ij = P_ij */
    double v0, vp, vm;
    qd_ot_sinkhorn(C, N, M, NULL, NULL, 0.05, 100000, 1e-14, P, &v0, NULL, &e);
    size_t idx[] = {0, 7, 20, 53};
    for (size_t t = 0; t < 4; t++) {
        double h = 1e-6, keep = C[idx[t]], Pt[54];
        C[idx[t]] = keep + h;
        qd_ot_sinkhorn(C, N, M, NULL, NULL, 0.05, 100000, 1e-14, Pt, &vp, NULL, &e);
        C[idx[t]] = keep - h;
        qd_ot_sinkhorn(C, N, M, NULL, NULL, 0.05, 100000, 1e-14, Pt, &vm, NULL, &e);
        C[idx[t]] = keep;
        CHECK_NEAR((vp - vm) / (2 * h), P[idx[t]], 1e-8, "d OT_eps / dC = P");
    }
    qd_sinkhorn_info info;
    double v;
    CHECK(qd_ot_sinkhorn(C, N, M, NULL, NULL, 1e-3, 2, 1e-12, P, &v, &info, &e) == QD_OK &&
          !info.converged && info.iters == 2, "iteration cap reported");
    CHECK(qd_ot_sinkhorn(C, N, M, NULL, NULL, 0, 10, 1e-12, P, &v, &info, &e) == QD_EARG,
          "eps = 0 rejected");
}

/* ---- LAPJV (qd_ot_assign) against the textbook Hungarian (qd_ot_assign_ref) on larger
 * problems: continuous costs, integer costs with many ties (0..2, and all equal), a rank-1
 * infidelity-like cost 1 - |<a|b>|^2 of random single-qubit states (massive near-ties),
 * and the warm start (any potentials: previous optimum, perturbed cost, garbage) */
static int is_perm(const size_t *p, size_t n)
{
    char seen[512] = {0};
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= n || seen[p[i]])
            return 0;
        seen[p[i]] = 1;
    }
    return 1;
}

static void fill_cost(double *C, size_t n, int kind, qd_rng *r)
{
    if (kind == 3) {   /* 1 - |<a_i|b_j>|^2, a, b random qubit states */
        double th[2][512], ph[2][512];
        for (int s = 0; s < 2; s++)
            for (size_t i = 0; i < n; i++) {
                th[s][i] = acos(2 * qd_rng_uniform(r) - 1);
                ph[s][i] = 2 * M_PI * qd_rng_uniform(r);
            }
        for (size_t j = 0; j < n; j++)
            for (size_t i = 0; i < n; i++) {
                double ov = cos(th[0][i] / 2) * cos(th[1][j] / 2);
                qd_c o = ov + sin(th[0][i] / 2) * sin(th[1][j] / 2) * cexp(I * (ph[1][j] - ph[0][i]));
                C[i + j * n] = 1 - creal(o * conj(o));
            }
        return;
    }
    for (size_t i = 0; i < n * n; i++)
        C[i] = kind == 0   ? qd_rng_uniform(r) - 0.5
               : kind == 1 ? (double)(qd_rng_u64(r) % 3)
               : kind == 2 ? 1.0
                           : 1e3 * qd_rng_uniform(r);
}

QD_TEST(ot_assign_lapjv_vs_hungarian)
{
    qd_rng r;
    qd_rng_init(&r, 4711);
    static const size_t ns[] = {2, 3, 5, 17, 64, 100, 257};
    size_t nt = sizeof ns / sizeof ns[0];
    double *C = malloc(sizeof(double) * 257 * 257), *v = malloc(sizeof(double) * 257);
    size_t *p1 = malloc(sizeof(size_t) * 257), *p2 = malloc(sizeof(size_t) * 257);
    for (size_t t = 0; t < nt; t++)
        for (int kind = 0; kind <= 4; kind++) {
            size_t n = ns[t];
            fill_cost(C, n, kind, &r);
            double c1, c2, c3, c4;
            qd_err e;
            CHECK(qd_ot_assign(C, n, p1, &c1, &e) == QD_OK, "lapjv n=%zu kind %d", n, kind);
            CHECK(qd_ot_assign_ref(C, n, p2, &c2, &e) == QD_OK, "ref n=%zu", n);
            CHECK(is_perm(p1, n), "lapjv gives a permutation (n=%zu kind %d)", n, kind);
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += C[i + p1[i] * n];
            CHECK_NEAR(c1, s, 1e-12, "reported cost = sum of chosen entries");
            CHECK(fabs(c1 - c2) <= 1e-12 * (kind == 4 ? 1e3 : 1), "lapjv = hungarian (n=%zu kind %d): %.17g vs %.17g", n, kind, c1, c2);
            /* cold with potentials out, then warm from them on the same cost */
            CHECK(qd_ot_assign_warm(C, n, p1, &c3, v, 0, &e) == QD_OK, "cold + v");
            CHECK_NEAR(c3, c2, 1e-12 * (kind == 4 ? 1e3 : 1), "cold (v out) optimal");
            /* dual feasibility of the returned v with u_i = C_i,p(i) - v_p(i) */
            double worst = 0;
            for (size_t i = 0; i < n; i++) {
                double u = C[i + p1[i] * n] - v[p1[i]];
                for (size_t j = 0; j < n; j++)
                    worst = fmin(worst, C[i + j * n] - u - v[j]);
            }
            CHECK(worst > -1e-9 * (kind == 4 ? 1e3 : 1), "returned prices dual feasible (%g)", worst);
            CHECK(qd_ot_assign_warm(C, n, p1, &c4, v, 1, &e) == QD_OK && is_perm(p1, n), "warm same");
            CHECK_NEAR(c4, c2, 1e-12 * (kind == 4 ? 1e3 : 1), "warm start on the same cost optimal");
            /* perturb the cost (a training step), warm from the old prices */
            for (size_t i = 0; i < n * n; i++)
                C[i] += 0.05 * (qd_rng_uniform(&r) - 0.5);
            CHECK(qd_ot_assign_warm(C, n, p1, &c3, v, 1, &e) == QD_OK && is_perm(p1, n), "warm");
            CHECK(qd_ot_assign_ref(C, n, p2, &c2, &e) == QD_OK, "ref perturbed");
            CHECK(fabs(c3 - c2) <= 1e-12 * (kind == 4 ? 1e3 : 1), "warm start on a perturbed cost "
                                                                  "optimal (n=%zu kind %d): %.17g vs %.17g", n, kind, c3, c2);
            /* arbitrary (bad) prices are still a valid start */
            for (size_t j = 0; j < n; j++)
                v[j] = 10 * (qd_rng_uniform(&r) - 0.5);
            CHECK(qd_ot_assign_warm(C, n, p1, &c4, v, 1, &e) == QD_OK && is_perm(p1, n), "warm garbage");
            CHECK_NEAR(c4, c2, 1e-12 * (kind == 4 ? 1e3 : 1), "warm start from random prices optimal");
        }
    /* errors: non-finite warm prices, n = 1 */
    double one = 2.5, v1 = NAN, c;
    size_t p;
    qd_err e;
    CHECK(qd_ot_assign_warm(&one, 1, &p, &c, &v1, 0, &e) == QD_OK && p == 0 && c == 2.5, "n = 1");
    v[0] = NAN;
    fill_cost(C, 4, 0, &r);
    CHECK(qd_ot_assign_warm(C, 4, p1, &c, v, 1, &e) == QD_EARG && strstr(e.msg, "potential"),
          "NaN warm price rejected");
    C[2 + 1 * 4] = -INFINITY;   /* (3, 2) */
    CHECK(qd_ot_assign(C, 4, p1, &c, &e) == QD_EARG && strstr(e.msg, "non-finite entry at (3, 2)"),
          "-inf cost rejected with its position: %s", e.msg);
    C[2 + 1 * 4] = 0;
    C[15] = INFINITY;
    CHECK(qd_ot_assign(C, 4, p1, &c, &e) == QD_EARG && strstr(e.msg, "at (4, 4)"),
          "+inf cost rejected with its position: %s", e.msg);
    free(C);
    free(v);
    free(p1);
    free(p2);
}

/* qd_ot_exact_warm: the assignment case warm-started along a drifting random cost gives the
 * cold plan (tie-free) and cost; other shapes / weights leave v alone; qd_ot_exact is the
 * cold wrapper */
QD_TEST(ot_exact_warm)
{
    qd_rng r;
    qd_rng_init(&r, 99);
    size_t n = 50;
    double *C0 = malloc(sizeof(double) * n * n), *Dc = malloc(sizeof(double) * n * n);
    double *C = malloc(sizeof(double) * n * n);
    double *P0 = malloc(sizeof(double) * n * n), *P1 = malloc(sizeof(double) * n * n);
    double v[50], keep[50];
    for (size_t i = 0; i < n * n; i++) {
        C0[i] = qd_rng_uniform(&r);
        Dc[i] = qd_rng_uniform(&r) - 0.5;
    }
    qd_err e;
    for (int step = 0; step < 15; step++) {
        for (size_t i = 0; i < n * n; i++)
            C[i] = C0[i] + 0.01 * step * Dc[i];
        double c0, c1;
        CHECK(qd_ot_exact(C, n, n, NULL, NULL, P0, &c0, &e) == QD_OK, "cold");
        CHECK(qd_ot_exact_warm(C, n, n, NULL, NULL, P1, &c1, v, step > 0, &e) == QD_OK, "warm");
        CHECK_NEAR(c1, c0, 1e-12, "warm cost = cold cost");
        CHECK(memcmp(P0, P1, sizeof(double) * n * n) == 0, "warm plan = cold plan (step %d)", step);
    }
    for (size_t j = 0; j < n; j++)
        keep[j] = v[j] = -1.0 - (double)j;
    double c0, c1;
    CHECK(qd_ot_exact_warm(C, n, n - 3, NULL, NULL, P1, &c1, v, 1, &e) == QD_OK, "N != M");
    CHECK(qd_ot_exact(C, n, n - 3, NULL, NULL, P0, &c0, &e) == QD_OK && c0 == c1 &&
          memcmp(keep, v, sizeof keep) == 0, "N != M: simplex, v untouched");
    double w[50];
    for (size_t i = 0; i < n; i++)
        w[i] = 1 + (double)(i % 3);
    CHECK(qd_ot_exact_warm(C, n, n, w, NULL, P1, &c1, v, 1, &e) == QD_OK, "weights");
    CHECK(qd_ot_simplex(C, n, n, w, NULL, P0, &c0, &e) == QD_OK && c0 == c1 &&
          memcmp(keep, v, sizeof keep) == 0, "weights: simplex, v untouched");
    free(C0), free(Dc), free(C), free(P0), free(P1);
}

/* ---- adversarial assignment instances for the vectorised LAPJV: every size around the
 * 8-wide blocks and the 64-column words of its sweeps (1, 2, 3, 7, 8, 9, ..., 127, 128,
 * 129, 257), and costs with ties everywhere (integers 0..2, all equal, rank 1, a two-valued
 * checkerboard, differences of one ulp), the rank <= 4 infidelity of qubit states, large
 * offsets and scales. Checked: the optimum against the textbook Hungarian; the row-major
 * entry point (qd_ot_assign_rm) and the portable (non-AVX-512) code, compiled again at the
 * end of this file, against qd_ot_assign bitwise (permutation, cost and prices), cold and
 * warm. */
size_t port_ot_assign_ld(size_t n);
qd_status port_ot_assign(const double *C, size_t n, size_t *perm, double *cost, qd_err *e);
qd_status port_ot_assign_warm(const double *C, size_t n, size_t *perm, double *cost, double *v,
                              int warm, qd_err *e);
qd_status port_ot_assign_rm(const double *c, size_t n, size_t *perm, double *cost, double *v,
                            int warm, qd_err *e);
qd_status port_ot_assign_ref(const double *C, size_t n, size_t *perm, double *cost, qd_err *e);
qd_status port_ot_exact(const double *C, size_t N, size_t M, const double *a, const double *b,
                        double *P, double *cost, qd_err *e);
qd_status port_ot_exact_warm(const double *C, size_t N, size_t M, const double *a,
                             const double *b, double *P, double *cost, double *v, int warm,
                             qd_err *e);
qd_status port_ot_simplex(const double *C, size_t N, size_t M, const double *a, const double *b,
                          double *P, double *cost, qd_err *e);
qd_status port_ot_sinkhorn(const double *C, size_t N, size_t M, const double *a, const double *b,
                           double eps, size_t max_iter, double tol, double *P, double *value,
                           qd_sinkhorn_info *info, qd_err *e);

static void fill_cost_adv(double *C, size_t n, int kind, qd_rng *r)
{
    if (kind <= 4) {
        fill_cost(C, n, kind, r);
        return;
    }
    double a[512], b[512];
    for (size_t i = 0; i < n; i++) {
        a[i] = qd_rng_uniform(r);
        b[i] = qd_rng_uniform(r);
    }
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < n; i++) {
            double x;
            switch (kind) {
            case 5: x = a[i] * b[j]; break;                                     /* rank 1 */
            case 6: x = (double)((i + j) % 2); break;                           /* checkerboard */
            case 7: x = 1.0 + (double)(qd_rng_u64(r) % 4) * 0x1p-52; break;    /* ulp steps */
            case 8: x = -1e6 + qd_rng_uniform(r); break;                        /* big offset */
            default: x = 1e-300 * (double)(qd_rng_u64(r) % 5); break;           /* tiny */
            }
            C[i + j * n] = x;
        }
}

static void to_rowmajor(const double *C, size_t n, double *c)
{
    size_t ld = qd_ot_assign_ld(n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ld; j++)
            c[i * ld + j] = j < n ? C[i + j * n] : 0;
}

QD_TEST(ot_assign_adversarial)
{
    qd_rng r;
    qd_rng_init(&r, 20261126);
    static const size_t ns[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 128, 129, 257};
    size_t nt = sizeof ns / sizeof ns[0], nmax = 257, ldmax = 264;
    double *C = malloc(sizeof(double) * nmax * nmax);
    double *c = qd_malloc(sizeof(double) * nmax * ldmax);
    double v0[257], v1[257], v2[257];
    size_t *p0 = malloc(sizeof(size_t) * nmax), *p1 = malloc(sizeof(size_t) * nmax),
           *p2 = malloc(sizeof(size_t) * nmax);
    int nbad = 0;
    for (size_t t = 0; t < nt; t++)
        for (int kind = 0; kind <= 9; kind++) {
            size_t n = ns[t];
            CHECK(port_ot_assign_ld(n) == qd_ot_assign_ld(n) && qd_ot_assign_ld(n) % 8 == 0 &&
                  qd_ot_assign_ld(n) >= n && qd_ot_assign_ld(n) < n + 8, "ld(%zu)", n);
            fill_cost_adv(C, n, kind, &r);
            to_rowmajor(C, n, c);
            double scale = 0;
            for (size_t i = 0; i < n * n; i++)
                scale = fmax(scale, fabs(C[i]));
            double cr, c0, c1, c2;
            qd_err e;
            CHECK(qd_ot_assign_ref(C, n, p0, &cr, &e) == QD_OK, "ref");
            CHECK(qd_ot_assign_warm(C, n, p0, &c0, v0, 0, &e) == QD_OK && is_perm(p0, n),
                  "assign n=%zu kind %d", n, kind);
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += C[i + p0[i] * n];
            nbad += !(fabs(c0 - cr) <= 1e-12 * fmax(1.0, scale) && c0 == s);
            CHECK(fabs(c0 - cr) <= 1e-12 * fmax(1.0, scale), "optimal (n=%zu kind %d): %.17g vs %.17g",
                  n, kind, c0, cr);
            CHECK(c0 == s, "reported cost = sum of the chosen entries");
            CHECK(qd_ot_assign_rm(c, n, p1, &c1, v1, 0, &e) == QD_OK, "rm");
            CHECK(port_ot_assign_warm(C, n, p2, &c2, v2, 0, &e) == QD_OK, "portable");
            CHECK(c1 == c0 && memcmp(p1, p0, sizeof(size_t) * n) == 0 &&
                      memcmp(v1, v0, sizeof(double) * n) == 0,
                  "row-major entry = column-major, bitwise (n=%zu kind %d)", n, kind);
            CHECK(c2 == c0 && memcmp(p2, p0, sizeof(size_t) * n) == 0 &&
                      memcmp(v2, v0, sizeof(double) * n) == 0,
                  "portable code = AVX-512 code, bitwise (n=%zu kind %d)", n, kind);
            /* warm from the optimal prices of a perturbed cost, all three entry points */
            for (size_t i = 0; i < n * n; i++)
                C[i] += 0.01 * scale * (qd_rng_uniform(&r) - 0.5);
            to_rowmajor(C, n, c);
            memcpy(v1, v0, sizeof v0);
            memcpy(v2, v0, sizeof v0);
            CHECK(qd_ot_assign_ref(C, n, p0, &cr, &e) == QD_OK, "ref perturbed");
            CHECK(qd_ot_assign_warm(C, n, p0, &c0, v0, 1, &e) == QD_OK && is_perm(p0, n), "warm");
            CHECK(fabs(c0 - cr) <= 1e-12 * fmax(1.0, scale), "warm optimal (n=%zu kind %d): %.17g vs %.17g",
                  n, kind, c0, cr);
            CHECK(qd_ot_assign_rm(c, n, p1, &c1, v1, 1, &e) == QD_OK &&
                      port_ot_assign_warm(C, n, p2, &c2, v2, 1, &e) == QD_OK,
                  "warm rm, portable");
            CHECK(c1 == c0 && c2 == c0 && memcmp(p1, p0, sizeof(size_t) * n) == 0 &&
                      memcmp(p2, p0, sizeof(size_t) * n) == 0 &&
                      memcmp(v1, v0, sizeof(double) * n) == 0 && memcmp(v2, v0, sizeof(double) * n) == 0,
                  "warm: the three entry points agree bitwise (n=%zu kind %d)", n, kind);
        }
    CHECK(nbad == 0, "%d instances off", nbad);
    /* errors of the row-major entry: a non-finite entry or padding, misalignment, n = 0 */
    qd_err e;
    double cc;
    fill_cost_adv(C, 5, 0, &r);
    to_rowmajor(C, 5, c);
    c[3 * 8 + 1] = NAN;
    CHECK(qd_ot_assign_rm(c, 5, p1, &cc, NULL, 0, &e) == QD_EARG && strstr(e.msg, "(4, 2)"),
          "NaN cost rejected with its position: %s", e.msg);
    c[3 * 8 + 1] = 0;
    c[2 * 8 + 6] = INFINITY;
    CHECK(qd_ot_assign_rm(c, 5, p1, &cc, NULL, 0, &e) == QD_EARG && strstr(e.msg, "padding"),
          "non-finite padding rejected: %s", e.msg);
    c[2 * 8 + 6] = 0;
    CHECK(qd_ot_assign_rm(c + 1, 5, p1, &cc, NULL, 0, &e) == QD_EARG && strstr(e.msg, "aligned"),
          "misaligned cost rejected: %s", e.msg);
    CHECK(qd_ot_assign_rm(c, 0, p1, &cc, NULL, 0, &e) == QD_EARG, "n = 0 rejected");
    v1[0] = NAN;
    CHECK(qd_ot_assign_rm(c, 5, p1, &cc, v1, 1, &e) == QD_EARG && strstr(e.msg, "potential"),
          "NaN warm price rejected");
    free(C);
    qd_free(c);
    free(p0);
    free(p1);
    free(p2);
}

/* ---- the portable solver: transport.c again, without the AVX-512 kernels, under other
 * names (keep this at the end of the file; it redefines the qd_ot_* names; a change to
 * transport.c needs this file rebuilt, which `make` does not track: touch it) */
#define QD_OT_PORTABLE 1
#define qd_ot_assign_ld port_ot_assign_ld
#define qd_ot_assign_rm port_ot_assign_rm
#define qd_ot_assign port_ot_assign
#define qd_ot_assign_warm port_ot_assign_warm
#define qd_ot_assign_ref port_ot_assign_ref
#define qd_ot_exact port_ot_exact
#define qd_ot_exact_warm port_ot_exact_warm
#define qd_ot_simplex port_ot_simplex
#define qd_ot_sinkhorn port_ot_sinkhorn
#include "../../runtime/core/transport.c"
