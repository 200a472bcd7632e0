/* dm_stack.c — whole-ensemble kernels on stacks of density matrices (qd_dmstack.h): the
 * superfidelity MMD / Wasserstein losses of MSQuDDPM (arXiv 2411.17608, Eqs. 4-7) with their
 * gradients, and its measured backward step through the Kraus blocks of the step circuit's
 * isometry, with the vector-Jacobian product. Each member's work is a few d x d (or D x d)
 * products; member order and reduction order are fixed, so results do not depend on threads
 * or kernel sets. */
#include "qd_dmstack.h"
#include "qd_loss.h"
#include <math.h>
#include <string.h>

void qd_dms_depolarize(const qd_c *A, size_t N, size_t d, double keep, qd_c *out)
{
    size_t d2 = d * d;
    double mix = (1.0 - keep) / (double)d;
    for (size_t k = 0; k < N; k++) {
        const qd_c *a = A + k * d2;
        qd_c *o = out + k * d2;
        for (size_t i = 0; i < d2; i++)
            o[i] = keep * a[i];
        for (size_t i = 0; i < d; i++)
            o[i * d + i] += mix;
    }
}

/* s_k = sqrt(max(f, 1 - Tr rho_k^2)) (Tr rho^2 = sum |rho_ij|^2 for a Hermitian rho);
 * live[k] = whether the floor was not hit (the square root term then has a gradient) */
static void sf_roots(const qd_c *A, size_t N, size_t d2, double *s, unsigned char *live)
{
    for (size_t k = 0; k < N; k++) {
        const qd_c *a = A + k * d2;
        double p = 0.0;
        for (size_t i = 0; i < d2; i++)
            p += creal(a[i]) * creal(a[i]) + cimag(a[i]) * cimag(a[i]);
        double v = 1.0 - p;
        if (live)
            live[k] = v > QD_SF_FLOOR;
        s[k] = sqrt(v > QD_SF_FLOOR ? v : QD_SF_FLOOR);
    }
}

static void mean_matrix(const qd_c *A, size_t N, size_t d2, qd_c *out)
{
    for (size_t i = 0; i < d2; i++)
        out[i] = 0;
    for (size_t k = 0; k < N; k++)
        for (size_t i = 0; i < d2; i++)
            out[i] += A[k * d2 + i];
    for (size_t i = 0; i < d2; i++)
        out[i] /= (double)N;
}

qd_status qd_dms_mmd_sf(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                        qd_c *GA, qd_err *e)
{
    size_t d2 = d * d;
    double *s = qd_malloc(sizeof(double) * (N + M));
    unsigned char *live = qd_malloc(N ? N : 1);
    qd_c *D = qd_malloc(sizeof(qd_c) * d2 * 2);
    if (!s || !live || !D) {
        qd_free(s);
        qd_free(live);
        qd_free(D);
        return qd_fail(e, QD_ENOMEM, "not enough memory for the MMD of %zu and %zu density matrices", N, M);
    }
    double *t = s + N;
    sf_roots(A, N, d2, s, live);
    sf_roots(B, M, d2, t, NULL);
    qd_c *bb = D + d2;
    mean_matrix(A, N, d2, D);
    mean_matrix(B, M, d2, bb);
    double sa = 0.0, tb = 0.0, f = 0.0;
    for (size_t k = 0; k < N; k++)
        sa += s[k];
    for (size_t k = 0; k < M; k++)
        tb += t[k];
    sa /= (double)N;
    tb /= (double)M;
    for (size_t i = 0; i < d2; i++) {
        D[i] -= bb[i];
        f += creal(D[i]) * creal(D[i]) + cimag(D[i]) * cimag(D[i]);
    }
    *val = f + (sa - tb) * (sa - tb);
    /* dL = 2 Re Tr(D drho_i)/N - 2 (sa - tb) Re Tr(rho_i drho_i)/(N s_i) */
    if (GA)
        for (size_t k = 0; k < N; k++) {
            const qd_c *a = A + k * d2;
            qd_c *g = GA + k * d2;
            double c = live[k] ? (sa - tb) / ((double)N * s[k]) : 0.0;
            for (size_t i = 0; i < d2; i++)
                g[i] = D[i] / (double)N - c * a[i];
        }
    qd_free(s);
    qd_free(live);
    qd_free(D);
    return QD_OK;
}

qd_status qd_dms_wass_sf(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                         qd_c *GA, double *P, qd_err *e)
{
    size_t d2 = d * d;
    double *s = qd_malloc(sizeof(double) * (N + M)), *C = qd_malloc(sizeof(double) * N * M);
    double *plan = P ? P : qd_malloc(sizeof(double) * N * M);
    qd_c *X = qd_malloc(sizeof(qd_c) * N * M);
    unsigned char *live = qd_malloc(N ? N : 1);
    qd_status st = QD_OK;
    if (!s || !C || !plan || !X || !live) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the Wasserstein cost of %zu x %zu density matrices", N, M);
        goto done;
    }
    double *t = s + N;
    sf_roots(A, N, d2, s, live);
    sf_roots(B, M, d2, t, NULL);
    /* X_ij = sum_ab conj(a_i[ab]) b_j[ab] = conj Tr(a_i b_j) for Hermitian members */
    qd_la_zgemm('C', 'N', N, M, d2, 1.0, A, d2, B, d2, 0.0, X, N);
    for (size_t j = 0; j < M; j++)
        for (size_t i = 0; i < N; i++)
            C[i + j * N] = 1.0 - creal(X[i + j * N]) - s[i] * t[j];
    st = qd_ot_exact(C, N, M, NULL, NULL, plan, val, e);
    if (st != QD_OK || !GA)
        goto done;
    /* X (as d2 x N) = B P^T: the plan-weighted targets of each member */
    qd_c *Pt = qd_malloc(sizeof(qd_c) * N * M), *Y = qd_malloc(sizeof(qd_c) * d2 * N);
    if (!Pt || !Y) {
        qd_free(Pt);
        qd_free(Y);
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the Wasserstein gradient");
        goto done;
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < M; j++)
            Pt[j + i * M] = plan[i + j * N];
    qd_la_zgemm('N', 'N', d2, N, M, 1.0, B, d2, Pt, M, 0.0, Y, d2);
    for (size_t i = 0; i < N; i++) {
        double w = 0.0;   /* sum_j P_ij t_j */
        for (size_t j = 0; j < M; j++)
            w += plan[i + j * N] * t[j];
        double c = live[i] ? w / (2.0 * s[i]) : 0.0;
        const qd_c *a = A + i * d2;
        for (size_t q = 0; q < d2; q++)
            GA[i * d2 + q] = -0.5 * Y[i * d2 + q] + c * a[q];
    }
    qd_free(Pt);
    qd_free(Y);
done:
    qd_free(s);
    qd_free(C);
    if (!P)
        qd_free(plan);
    qd_free(X);
    qd_free(live);
    return st;
}

/* member k's isometry V (D x d): W's first d columns, or anc0 W_0 + anc1 W_1 */
static void member_iso(const qd_c *W, size_t D, size_t d, int haar, const qd_c *anc, size_t k, qd_c *V)
{
    if (!haar) {
        memcpy(V, W, sizeof(qd_c) * D * d);
        return;
    }
    qd_c a0 = anc[2 * k], a1 = anc[2 * k + 1];
    const qd_c *W1 = W + D * d;
    for (size_t i = 0; i < D * d; i++)
        V[i] = a0 * W[i] + a1 * W1[i];
}

/* p_m = Re Tr(K_m rho K_m^H) = Re sum_{b,i} T[m d + b, i] conj(V[m d + b, i]), T = V rho */
static double outcome_prob(const qd_c *T, const qd_c *V, size_t D, size_t d, size_t m)
{
    double p = 0.0;
    for (size_t i = 0; i < d; i++)
        for (size_t b = 0; b < d; b++) {
            qd_c x = T[m * d + b + i * D], y = V[m * d + b + i * D];
            p += creal(x) * creal(y) + cimag(x) * cimag(y);
        }
    return p;
}

static qd_status step_args(int n, int na, size_t *d, size_t *D, size_t *M, qd_err *e)
{
    if (n < 1 || na < 1 || n + na > 14)
        return qd_fail(e, QD_EARG, "1 <= n, 1 <= na and n + na <= 14 expected, got n = %d, na = %d", n, na);
    *d = (size_t)1 << n;
    *M = (size_t)1 << na;
    *D = *d * *M;
    return QD_OK;
}

qd_status qd_dms_kraus_step(const qd_c *W, int n, int na, int haar, const qd_c *anc, size_t N,
                            const qd_c *rho, const double *u, qd_c *out, int *outcome, double *prob,
                            qd_err *e)
{
    size_t d = 0, D = 0, M = 0;
    if (step_args(n, na, &d, &D, &M, e) != QD_OK)
        return QD_EARG;
    size_t d2 = d * d;
    qd_c *V = qd_malloc(sizeof(qd_c) * D * d), *T = qd_malloc(sizeof(qd_c) * D * d);
    double *p = qd_malloc(sizeof(double) * M);
    qd_status st = QD_OK;
    if (!V || !T || !p) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the Kraus blocks (%d + %d qubits)", n, na);
        goto done;
    }
    for (size_t k = 0; k < N; k++) {
        member_iso(W, D, d, haar, anc, k, V);
        qd_la_zgemm('N', 'N', D, d, d, 1.0, V, D, rho + k * d2, d, 0.0, T, D);   /* T = V rho */
        double tot = 0.0;
        for (size_t m = 0; m < M; m++) {
            p[m] = outcome_prob(T, V, D, d, m);
            if (p[m] < 0)
                p[m] = 0;
            tot += p[m];
        }
        if (!(tot > 0)) {
            st = qd_fail(e, QD_EARG, "member %zu: every measurement outcome has probability 0", k + 1);
            goto done;
        }
        /* the outcome: the first m whose cumulative probability passes u tot; the last
         * outcome of positive probability if roundoff leaves u tot beyond them all */
        double r = u[k] * tot, c = 0.0;
        size_t m = M, last = 0;
        for (size_t j = 0; j < M; j++) {
            if (p[j] > 0)
                last = j;
            c += p[j];
            if (m == M && r < c && p[j] > 0)
                m = j;
        }
        if (m == M)
            m = last;
        qd_c *o = out + k * d2;
        qd_la_zgemm('N', 'C', d, d, d, 1.0 / p[m], T + m * d, D, V + m * d, D, 0.0, o, d);
        if (outcome)
            outcome[k] = (int)m;
        if (prob)
            prob[k] = p[m];
    }
done:
    qd_free(V);
    qd_free(T);
    qd_free(p);
    return st;
}

qd_status qd_dms_kraus_vjp(const qd_c *W, int n, int na, int haar, const qd_c *anc, size_t N,
                           const qd_c *rho, const qd_c *out, const int *outcome, const qd_c *G,
                           qd_c *gW, qd_err *e)
{
    size_t d = 0, D = 0, M = 0;
    if (step_args(n, na, &d, &D, &M, e) != QD_OK)
        return QD_EARG;
    size_t d2 = d * d, cols = haar ? 2 * d : d;
    qd_c *V = qd_malloc(sizeof(qd_c) * D * d), *T = qd_malloc(sizeof(qd_c) * d * d);
    qd_c *Gp = qd_malloc(sizeof(qd_c) * d2), *gK = qd_malloc(sizeof(qd_c) * d2);
    qd_status st = QD_OK;
    if (!V || !T || !Gp || !gK) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the Kraus blocks' gradient (%d + %d qubits)", n, na);
        goto done;
    }
    memset(gW, 0, sizeof(qd_c) * D * cols);
    for (size_t k = 0; k < N; k++) {
        size_t m = (size_t)outcome[k];
        if (m >= M) {
            st = qd_fail(e, QD_EARG, "member %zu: outcome %zu out of range", k + 1, m);
            goto done;
        }
        member_iso(W, D, d, haar, anc, k, V);
        const qd_c *K = V + m * d, *r = rho + k * d2, *o = out + k * d2, *g = G + k * d2;
        /* T = K rho (d x d), p = Re Tr(T K^H) */
        qd_la_zgemm('N', 'N', d, d, d, 1.0, K, D, r, d, 0.0, T, d);
        double p = 0.0, tg = 0.0;
        for (size_t i = 0; i < d; i++)
            for (size_t b = 0; b < d; b++) {
                qd_c x = T[b + i * d], y = K[b + i * D];
                p += creal(x) * creal(y) + cimag(x) * cimag(y);
            }
        for (size_t q = 0; q < d2; q++)   /* Tr(G out) = sum conj(G) out for Hermitian G */
            tg += creal(g[q]) * creal(o[q]) + cimag(g[q]) * cimag(o[q]);
        for (size_t q = 0; q < d2; q++)
            Gp[q] = g[q] / p;
        for (size_t i = 0; i < d; i++)
            Gp[i + i * d] -= tg / p;
        /* dL/d conj(K) = 2 G' K rho = 2 G' T */
        qd_la_zgemm('N', 'N', d, d, d, 2.0, Gp, d, T, d, 0.0, gK, d);
        qd_c c0 = haar ? conj(anc[2 * k]) : 1.0, c1 = haar ? conj(anc[2 * k + 1]) : 0.0;
        for (size_t i = 0; i < d; i++)
            for (size_t b = 0; b < d; b++) {
                qd_c v = gK[b + i * d];
                gW[m * d + b + i * D] += c0 * v;
                if (haar)
                    gW[m * d + b + (i + d) * D] += c1 * v;
            }
    }
done:
    qd_free(V);
    qd_free(T);
    qd_free(Gp);
    qd_free(gK);
    return st;
}

void qd_dms_expect(const qd_c *A, size_t N, size_t d, const qd_c *O, double *vals)
{
    size_t d2 = d * d;
    for (size_t k = 0; k < N; k++) {
        const qd_c *a = A + k * d2;
        double v = 0.0;   /* Re Tr(A O) = Re sum_ij A_ij O_ji */
        for (size_t j = 0; j < d; j++)
            for (size_t i = 0; i < d; i++)
                v += creal(a[i + j * d] * O[j + i * d]);
        vals[k] = v;
    }
}
