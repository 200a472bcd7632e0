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

/* K = sqrt(F) of a pair and, if ga / gb, dK/d conj(a) and dK/d conj(b) (from the
 * gradients of 1 - F: dK = dF / (2K)) */
/* one qubit: F = Tr(ab) + 2 sqrt(det a det b), dF/d conj(a) = b/2 + sqrt(det b / det a) adj(a)/2
 * (adj(a) = [[a11, -a01], [-a10, a00]]; no second term where det a <= QD_SF_FLOOR), returned as
 * the gradient of 1 - F like qd_loss_infid_dd's */
static double det2(const qd_c *a) { return creal(a[0]) * creal(a[3]) - (creal(a[2]) * creal(a[2]) + cimag(a[2]) * cimag(a[2])); }

static void fid1_grad(const qd_c *a, const qd_c *b, double da, double db, qd_c *g)
{
    double c = da > QD_SF_FLOOR ? sqrt(db / da) : 0.0;
    g[0] = -0.5 * (b[0] + c * creal(a[3]));
    g[3] = -0.5 * (b[3] + c * creal(a[0]));
    g[1] = -0.5 * (b[1] - c * a[1]);
    g[2] = -0.5 * (b[2] - c * a[2]);
}

static double fid1(const qd_c *a, const qd_c *b, qd_c *ga, qd_c *gb)
{
    double t = 0.0, da = det2(a), db = det2(b);
    for (int i = 0; i < 4; i++)
        t += creal(a[i]) * creal(b[i]) + cimag(a[i]) * cimag(b[i]);
    da = da > 0 ? da : 0;
    db = db > 0 ? db : 0;
    if (ga)
        fid1_grad(a, b, da, db, ga);
    if (gb)
        fid1_grad(b, a, db, da, gb);
    return 1.0 - (t + 2.0 * sqrt(da * db));
}

static qd_status root_fid(const qd_c *a, const qd_c *b, int n, size_t d2, double *K, qd_c *ga, qd_c *gb, qd_err *e)
{
    double v;
    if (n == 1)
        v = fid1(a, b, ga, gb);
    else if (qd_loss_infid_dd(a, b, n, &v, ga, gb, e) != QD_OK)
        return e->status;
    double f = 1.0 - v;
    *K = sqrt(f > 0 ? f : 0);
    double c = *K > 0 ? -0.5 / *K : 0.0;
    for (size_t i = 0; ga && i < d2; i++)
        ga[i] *= c;
    for (size_t i = 0; gb && i < d2; i++)
        gb[i] *= c;
    return QD_OK;
}

static int log2_of(size_t d)
{
    int n = 0;
    while (((size_t)1 << n) < d)
        n++;
    return n;
}

qd_status qd_dms_mmd_uhl(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                         qd_c *GA, qd_err *e)
{
    size_t d2 = d * d;
    int n = log2_of(d);
    qd_c *g1 = qd_malloc(sizeof(qd_c) * d2 * 2);
    if (!g1)
        return qd_fail(e, QD_ENOMEM, "not enough memory for the fidelity MMD");
    qd_c *g2 = g1 + d2;
    if (GA)
        memset(GA, 0, sizeof(qd_c) * N * d2);
    double aa = 0, bb = 0, ab = 0, K;
    qd_status st = QD_OK;
    /* A-A: each unordered pair once, twice in the mean; its gradient to both members */
    for (size_t i = 0; i < N && !st; i++)
        for (size_t j = i; j < N && !st; j++) {
            st = root_fid(A + i * d2, A + j * d2, n, d2, &K, GA ? g1 : NULL, GA ? g2 : NULL, e);
            double w = (i == j ? 1.0 : 2.0) / ((double)N * (double)N);
            aa += (i == j ? 1.0 : 2.0) * K;
            for (size_t q = 0; GA && !st && q < d2; q++) {
                GA[i * d2 + q] += w * g1[q];
                GA[j * d2 + q] += w * g2[q];
            }
        }
    for (size_t i = 0; i < M && !st; i++)
        for (size_t j = i; j < M && !st; j++) {
            st = root_fid(B + i * d2, B + j * d2, n, d2, &K, NULL, NULL, e);
            bb += (i == j ? 1.0 : 2.0) * K;
        }
    for (size_t i = 0; i < N && !st; i++)
        for (size_t j = 0; j < M && !st; j++) {
            st = root_fid(A + i * d2, B + j * d2, n, d2, &K, GA ? g1 : NULL, NULL, e);
            ab += K;
            for (size_t q = 0; GA && !st && q < d2; q++)
                GA[i * d2 + q] -= 2.0 / ((double)N * (double)M) * g1[q];
        }
    qd_free(g1);
    if (st)
        return st;
    *val = aa / ((double)N * (double)N) + bb / ((double)M * (double)M) - 2.0 * ab / ((double)N * (double)M);
    return QD_OK;
}

qd_status qd_dms_wass_uhl(const qd_c *A, size_t N, const qd_c *B, size_t M, size_t d, double *val,
                          qd_c *GA, double *P, qd_err *e)
{
    size_t d2 = d * d;
    int n = log2_of(d);
    double *C = qd_malloc(sizeof(double) * N * M);
    double *plan = P ? P : qd_malloc(sizeof(double) * N * M);
    qd_c *g = qd_malloc(sizeof(qd_c) * d2);
    qd_status st = QD_OK;
    if (!C || !plan || !g) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for the fidelity Wasserstein cost of %zu x %zu", N, M);
        goto done;
    }
    for (size_t j = 0; j < M && !st; j++)
        for (size_t i = 0; i < N && !st; i++) {
            double K;
            st = root_fid(A + i * d2, B + j * d2, n, d2, &K, NULL, NULL, e);
            C[i + j * N] = 1.0 - K;
        }
    if (!st)
        st = qd_ot_exact(C, N, M, NULL, NULL, plan, val, e);
    if (st || !GA)
        goto done;
    /* the plan held fixed: G_i = - sum_j P_ij dK(a_i, b_j)/d conj(a_i), only where P_ij > 0 */
    memset(GA, 0, sizeof(qd_c) * N * d2);
    for (size_t j = 0; j < M && !st; j++)
        for (size_t i = 0; i < N && !st; i++) {
            double p = plan[i + j * N], K;
            if (p <= 0)
                continue;
            st = root_fid(A + i * d2, B + j * d2, n, d2, &K, g, NULL, e);
            for (size_t q = 0; !st && q < d2; q++)
                GA[i * d2 + q] -= p * g[q];
        }
done:
    qd_free(C);
    if (!P)
        qd_free(plan);
    qd_free(g);
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
