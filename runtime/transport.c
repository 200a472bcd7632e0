/* transport.c — optimal transport between discrete distributions, exact and entropic.
 *
 *  - qd_ot_assign: linear assignment by LAPJV (Jonker–Volgenant 1987: initialisation by
 *    column reduction, reduction transfer and augmenting row reduction, then shortest
 *    augmenting paths with dual potentials; qd_ot_assign_ref is the plain Hungarian
 *    scheme, kept for the tests). Used for the QuDDPM
 *    Wasserstein loss when both ensembles have N members with uniform weights: an optimal
 *    transport plan is then a permutation (Birkhoff) scaled by 1/N.
 *  - qd_ot_simplex: the transportation problem (any sizes, any weights) by the network
 *    simplex on the complete bipartite graph: a basis is a spanning tree of N+M-1 cells,
 *    dual potentials from the tree, Dantzig pricing (most negative reduced cost), the
 *    tree cycle of the entering cell, ratio test. Degeneracy (ubiquitous with uniform
 *    weights) is removed by Orden's perturbation: supplies a_i + delta, last demand
 *    b_M + N delta; flows are carried as x + y*delta with integer y and compared
 *    lexicographically, which makes every basis non-degenerate, so the simplex cannot
 *    cycle and stops at an optimum of the unperturbed problem (drop the delta parts).
 *    Uniform weights are scaled to integers (a_i = M, b_j = N) so the x parts are exact.
 *  - qd_ot_sinkhorn: entropic OT in the log domain (Peyré & Cuturi, Computational OT,
 *    sec. 4.4): f_i = -eps LSE_j(log b_j + (g_j - C_ij)/eps), g likewise.
 */
#include "qd_loss.h"
#include <math.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- assignment
 *
 * Jonker & Volgenant, "A shortest augmenting path algorithm for dense and sparse linear
 * assignment problems", Computing 38 (1987) 325-340 (LAPJV):
 *   1. column reduction: v_j = min_i C_ij, column j goes to its minimising row when that
 *      row has no column yet;
 *   2. reduction transfer: a row holding exactly one column j1 lowers v_j1 by its second
 *      best reduced cost, so that j1 stays its best column;
 *   3. augmenting row reduction (two passes): every free row takes its best column (ties
 *      to the second best), lowering that column's price by the gap to the second best and
 *      evicting the previous holder, which is processed again (in the next pass);
 *   4. shortest augmenting paths (Dijkstra with the column prices v as potentials; the row
 *      potential is implicit, u_i = C_i,x_i - v_x_i) for the rows still free; it stops
 *      at the first free column reached at the minimum distance.
 * Invariant from step 2 on: every assigned row's column minimises C_ij - v_j over j, i.e.
 * (u, v) is dual feasible and complementary on the partial assignment, so each augmenting
 * path is a shortest one and the final assignment is optimal (exactly, up to the rounding
 * of the reduced costs; distances are clamped at the current minimum so rounding can never
 * make a Dijkstra label decrease).
 * Costs are copied once into row-major order (contiguous row scans). Every loop over the
 * columns is branch-free over all n columns (omp simd reductions; scanned columns are
 * masked with infinities rather than removed from a list), which vectorises; the order of
 * the floating-point operations does not depend on the thread count (the solver is serial).
 * Warm start (v given): steps 1-2 are skipped and step 3 starts from all rows free with the
 * given prices; any v is a valid start (step 3 establishes the invariant), so the result is
 * optimal whatever v holds. */

/* min_j (a[j] - b[j]) over j in [0, n) (vectorised; no NaN here: costs are finite) */
static inline double min_diff(const double *a, const double *b, size_t n)
{
    double m = INFINITY;
    #pragma omp simd reduction(min : m)
    for (size_t j = 0; j < n; j++) {
        double h = a[j] - b[j];
        m = h < m ? h : m;
    }
    return m;
}

/* With m = min_j (a[j] - b[j]): the first and the last j at the minimum, and the smallest
 * value above it (+inf if none). Vectorised (index reductions, no early exit); the
 * differences are recomputed exactly as in min_diff, so "== m" is exact. */
static inline void at_min(const double *a, const double *b, size_t n, double m, size_t *first,
                          size_t *last, double *above)
{
    size_t f = n, l = 0;
    double m2 = INFINITY;
    #pragma omp simd reduction(min : f, m2) reduction(max : l)
    for (size_t j = 0; j < n; j++) {
        double h = a[j] - b[j];
        size_t cf = h == m ? j : n, cl = h == m ? j : 0;
        double hh = h > m ? h : INFINITY;
        f = cf < f ? cf : f;
        l = cl > l ? cl : l;
        m2 = hh < m2 ? hh : m2;
    }
    *first = f;
    *last = l;
    *above = m2;
}

/* first j with a[j] == m (m is one of the a[j]) */
static inline size_t find_eq(const double *a, size_t n, double m)
{
    size_t j = 0;
#ifdef __AVX2__
    __m256d mv = _mm256_set1_pd(m);
    for (; j + 4 <= n; j += 4) {
        int k = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(a + j), mv, _CMP_EQ_OQ));
        if (k)
            return j + (size_t)__builtin_ctz((unsigned)k);
    }
#endif
    while (j < n - 1 && a[j] != m)
        j++;
    return j;
}

static qd_status assign_core(const double *C, size_t n, size_t *perm, double *cost, double *vio,
                             int warm, qd_err *e)
{
    if (n == 0)
        return qd_fail(e, QD_EARG, "empty assignment problem");
    size_t nn;
    if (qd_mul_overflow(n, n, &nn) || nn > ((size_t)-1) / 64)
        return qd_fail(e, QD_ENOMEM, "assignment problem too large");
    {   /* finite check, vectorised: x - x is NaN exactly for an infinite or NaN x */
        double z = 0;
        #pragma omp simd reduction(+ : z)
        for (size_t i = 0; i < nn; i++)
            z += C[i] - C[i];
        if (z != 0)
            for (size_t i = 0; i < nn; i++)
                if (!isfinite(C[i]))
                    return qd_fail(e, QD_EARG, "cost matrix has a non-finite entry at (%zu, %zu)",
                                   i % n + 1, i / n + 1);
    }
    if (n == 1) {
        perm[0] = 0;
        *cost = C[0];
        if (vio)
            vio[0] = C[0];
        return QD_OK;
    }
    if (warm && vio)
        for (size_t j = 0; j < n; j++)
            if (!isfinite(vio[j]))
                return qd_fail(e, QD_EARG, "warm start: non-finite column potential at %zu", j + 1);
    /* one block: row-major costs, then per-column doubles v, vv, dk, dsc, then integers */
    size_t bytes = sizeof(double) * (nn + 4 * n) + sizeof(ptrdiff_t) * 6 * n;
    char *blk = qd_malloc(bytes);
    if (!blk)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu assignment", n, n);
    double *c = (double *)blk, *v = c + nn, *vv = v + n, *dk = vv + n, *dsc = dk + n;
    ptrdiff_t *x = (ptrdiff_t *)(dsc + n), *y = x + n, *fre = y + n, *scn = fre + n,
              *pred = scn + n, *cnt = pred + n;
    for (size_t j0 = 0; j0 < n; j0 += 8)   /* row-major copy, by 8 x 8 tiles */
        for (size_t i0 = 0; i0 < n; i0 += 8) {
            size_t j1 = j0 + 8 < n ? j0 + 8 : n, i1 = i0 + 8 < n ? i0 + 8 : n;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1; j++)
                    c[i * n + j] = C[i + j * n];
        }
    size_t nfree = 0;
    for (size_t i = 0; i < n; i++)
        x[i] = -1;
    for (size_t j = 0; j < n; j++)
        y[j] = -1;
    if (warm) {
        for (size_t j = 0; j < n; j++)
            v[j] = vio[j];
        for (size_t i = 0; i < n; i++)
            fre[nfree++] = (ptrdiff_t)(n - 1 - i);
    } else {
        /* 1. column reduction (last column first, as in the paper) */
        for (size_t i = 0; i < n; i++) {
            cnt[i] = 0;
            vv[i] = 0;
        }
        for (size_t j = n; j-- > 0;) {
            const double *Cj = C + j * n;
            double m = min_diff(Cj, vv, n);   /* vv = 0 here */
            size_t im = find_eq(Cj, n, m);
            v[j] = m;
            if (++cnt[im] == 1) {
                x[im] = (ptrdiff_t)j;
                y[j] = (ptrdiff_t)im;
            } else if (v[j] < v[x[im]]) {
                ptrdiff_t j1 = x[im];
                x[im] = (ptrdiff_t)j;
                y[j] = (ptrdiff_t)im;
                y[j1] = -1;
            }
        }
        /* 2. reduction transfer; rows without a column are free */
        for (size_t i = n; i-- > 0;) {
            if (cnt[i] == 0) {
                fre[nfree++] = (ptrdiff_t)i;
            } else if (cnt[i] == 1) {
                const double *ci = c + i * n;
                size_t j1 = (size_t)x[i];
                double keep = v[j1];
                v[j1] = -INFINITY;   /* excludes j1 from the minimum */
                double m = min_diff(ci, v, n);
                v[j1] = keep - (m - (ci[j1] - keep));
            }
        }
    }
    /* 3. augmenting row reduction, two passes */
    for (int pass = 0; pass < 2 && nfree > 0; pass++) {
        size_t k = 0, prv = nfree;
        nfree = 0;
        while (k < prv) {
            ptrdiff_t i = fre[k++];
            const double *ci = c + (size_t)i * n;
            double u1 = min_diff(ci, v, n), u2;
            size_t j1, j2;
            at_min(ci, v, n, u1, &j1, &j2, &u2);
            if (j2 != j1)   /* a tie: the second best is u1 itself, at column j2 */
                u2 = u1;    /* (otherwise j2 is not used) */
            ptrdiff_t i0 = y[j1];
            if (u1 < u2)
                v[j1] -= u2 - u1;
            else if (i0 >= 0) {
                j1 = j2;
                i0 = y[j2];
            }
            if (i0 >= 0)
                x[i0] = -1;
            x[i] = (ptrdiff_t)j1;
            y[j1] = i;
            /* The paper re-processes an evicted row at once when u1 < u2. With real costs
             * the price decrements can be tiny and two rows can pass a column back and
             * forth many times, so the evicted row is queued for the next pass instead
             * (measured faster on random costs and on the degenerate infidelity costs of
             * the QuDDPM circle task); what is left after two passes goes to step 4. */
            if (i0 >= 0)
                fre[nfree++] = i0;
        }
    }
    /* 4. shortest augmenting paths (Dijkstra over the columns) for the remaining free rows.
     * dk: tentative distance of an unreached column (+inf once scanned), vv: v with -inf on
     * the scanned columns (so their labels never change), dsc: final distance of a scanned
     * column. Every loop over the columns is contiguous and vectorised. */
    for (size_t f = 0; f < nfree; f++) {
        ptrdiff_t fr = fre[f];
        const double *cf = c + (size_t)fr * n;
        for (size_t j = 0; j < n; j++) {
            vv[j] = v[j];
            dk[j] = cf[j] - v[j];
            pred[j] = fr;
        }
        size_t ns = 0;
        ptrdiff_t end;
        double mn = INFINITY, next = INFINITY;
        #pragma omp simd reduction(min : next)
        for (size_t j = 0; j < n; j++)
            next = dk[j] < next ? dk[j] : next;
        for (;;) {
            mn = next;
            /* the first column at the minimum */
            ptrdiff_t j1 = (ptrdiff_t)find_eq(dk, n, mn);
            if (y[j1] < 0) {
                end = j1;
                break;
            }
            scn[ns++] = j1;
            dsc[j1] = mn;
            dk[j1] = INFINITY;
            vv[j1] = -INFINITY;
            ptrdiff_t i = y[j1];
            const double *ci = c + (size_t)i * n;
            double h = ci[j1] - v[j1] - mn;
            next = INFINITY;
            #pragma omp simd reduction(min : next)
            for (size_t j = 0; j < n; j++) {
                double w = ci[j] - vv[j] - h;   /* +inf on scanned columns */
                w = w < mn ? mn : w;             /* rounding: never below the current minimum */
                int lt = w < dk[j];
                double dn = lt ? w : dk[j];
                dk[j] = dn;
                pred[j] = lt ? i : pred[j];
                next = dn < next ? dn : next;
            }
        }
        for (size_t k = 0; k < ns; k++) {   /* prices of the scanned columns */
            ptrdiff_t j = scn[k];
            v[j] += dsc[j] - mn;
        }
        for (;;) {   /* augment along pred */
            ptrdiff_t i = pred[end];
            y[end] = i;
            ptrdiff_t t = x[i];
            x[i] = end;
            end = t;
            if (i == fr)
                break;
        }
    }
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        perm[i] = (size_t)x[i];
        s += c[i * n + (size_t)x[i]];
    }
    *cost = s;
    if (vio)
        memcpy(vio, v, sizeof(double) * n);
    qd_free(blk);
    return QD_OK;
}

qd_status qd_ot_assign(const double *C, size_t n, size_t *perm, double *cost, qd_err *e)
{
    return assign_core(C, n, perm, cost, NULL, 0, e);
}

qd_status qd_ot_assign_warm(const double *C, size_t n, size_t *perm, double *cost, double *v,
                            int warm, qd_err *e)
{
    return assign_core(C, n, perm, cost, v, warm, e);
}

/* The textbook O(n^3) Hungarian method (shortest augmenting path row by row, all columns
 * scanned each step); kept as an independent reference for the tests. */
qd_status qd_ot_assign_ref(const double *C, size_t n, size_t *perm, double *cost, qd_err *e)
{
    if (n == 0)
        return qd_fail(e, QD_EARG, "empty assignment problem");
    for (size_t i = 0; i < n * n; i++)
        if (!isfinite(C[i]))
            return qd_fail(e, QD_EARG, "cost matrix has a non-finite entry at (%zu, %zu)",
                           i % n + 1, i / n + 1);
    /* 1-based arrays as in the textbook: p[j] = row matched to column j (0: none) */
    double *u = qd_calloc(n + 1, sizeof(double)), *v = qd_calloc(n + 1, sizeof(double));
    double *minv = qd_malloc(sizeof(double) * (n + 1));
    size_t *p = qd_calloc(n + 1, sizeof(size_t)), *way = qd_calloc(n + 1, sizeof(size_t));
    char *used = qd_malloc(n + 1);
    qd_status st = QD_OK;
    if (!u || !v || !minv || !p || !way || !used) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu assignment", n, n);
        goto done;
    }
    for (size_t i = 1; i <= n; i++) {
        p[0] = i;
        size_t j0 = 0;
        for (size_t j = 0; j <= n; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            used[j0] = 1;
            size_t i0 = p[j0], j1 = 0;
            double delta = INFINITY;
            for (size_t j = 1; j <= n; j++) {
                if (used[j])
                    continue;
                double cur = C[(i0 - 1) + (j - 1) * n] - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (size_t j = 0; j <= n; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            size_t j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    double s = 0;
    for (size_t j = 1; j <= n; j++)
        perm[p[j] - 1] = j - 1;
    for (size_t i = 0; i < n; i++)
        s += C[i + perm[i] * n];
    *cost = s;
done:
    qd_free(u);
    qd_free(v);
    qd_free(minv);
    qd_free(p);
    qd_free(way);
    qd_free(used);
    return st;
}

/* ---------------------------------------------------------------- weights */

/* Checks weights (NULL = uniform) and returns their totals; QD_EARG on bad input. */
static qd_status check_weights(const double *w, size_t n, const char *which, double *tot,
                               qd_err *e)
{
    if (!w) {
        *tot = 1;
        return QD_OK;
    }
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(w[i]) || w[i] < 0)
            return qd_fail(e, QD_EARG, "weights %s: finite non-negative entries expected, "
                           "got %g at position %zu", which, w[i], i + 1);
        s += w[i];
    }
    if (!(s > 0))
        return qd_fail(e, QD_EARG, "weights %s: positive total expected", which);
    *tot = s;
    return QD_OK;
}

static qd_status check_problem(const double *C, size_t N, size_t M, const double *a,
                               const double *b, double *ta, double *tb, qd_err *e)
{
    if (N == 0 || M == 0)
        return qd_fail(e, QD_EARG, "empty transport problem (%zu x %zu)", N, M);
    size_t NM;
    if (qd_mul_overflow(N, M, &NM))
        return qd_fail(e, QD_ENOMEM, "transport problem too large");
    double z = 0;   /* vectorised finite check: x - x is NaN exactly for inf and NaN */
    #pragma omp simd reduction(+ : z)
    for (size_t i = 0; i < NM; i++)
        z += C[i] - C[i];
    if (z != 0)
        for (size_t i = 0; i < NM; i++)
            if (!isfinite(C[i]))
                return qd_fail(e, QD_EARG, "cost matrix has a non-finite entry at (%zu, %zu)",
                               i % N + 1, i / N + 1);
    if (check_weights(a, N, "a", ta, e) || check_weights(b, M, "b", tb, e))
        return e ? e->status : QD_EARG;
    return QD_OK;
}

/* ---------------------------------------------------------------- network simplex */

typedef struct {
    double x;   /* real part */
    long y;     /* coefficient of the perturbation delta */
} lexv;

/* a < b lexicographically, x parts equal within tol */
static int lex_lt(lexv a, lexv b, double tol)
{
    if (fabs(a.x - b.x) > tol)
        return a.x < b.x;
    return a.y < b.y;
}

static lexv lex_sub(lexv a, lexv b)
{
    lexv r = {a.x - b.x, a.y - b.y};
    return r;
}

static lexv lex_add(lexv a, lexv b)
{
    lexv r = {a.x + b.x, a.y + b.y};
    return r;
}

qd_status qd_ot_simplex(const double *C, size_t N, size_t M, const double *a, const double *b,
                        double *P, double *cost, qd_err *e)
{
    double ta, tb;
    qd_status st = check_problem(C, N, M, a, b, &ta, &tb, e);
    if (st)
        return st;
    size_t K = N + M - 1, V = N + M, NM = N * M;
    /* supplies / demands (scaled: uniform -> integers; given -> b rescaled to a's total) */
    lexv *sup = qd_malloc(sizeof(lexv) * N), *dem = qd_malloc(sizeof(lexv) * M);
    lexv *flow = qd_malloc(sizeof(lexv) * K);
    size_t *bi = qd_malloc(sizeof(size_t) * K), *bj = qd_malloc(sizeof(size_t) * K);
    size_t *isb = qd_calloc(NM, sizeof(size_t));            /* basis index + 1, or 0 */
    size_t *deg = qd_malloc(sizeof(size_t) * (V + 1)), *adj = qd_malloc(sizeof(size_t) * 2 * K);
    size_t *parent = qd_malloc(sizeof(size_t) * V), *pedge = qd_malloc(sizeof(size_t) * V);
    size_t *depth = qd_malloc(sizeof(size_t) * V), *queue = qd_malloc(sizeof(size_t) * V);
    size_t *pth = qd_malloc(sizeof(size_t) * V), *pth2 = qd_malloc(sizeof(size_t) * V);
    double *pot = qd_malloc(sizeof(double) * V);
    if (!sup || !dem || !flow || !bi || !bj || !isb || !deg || !adj || !parent || !pedge ||
        !depth || !queue || !pth || !pth2 || !pot) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu transport problem", N, M);
        goto done;
    }
    double scale;   /* plan = flow / scale */
    if (!a && !b) {
        for (size_t i = 0; i < N; i++)
            sup[i] = (lexv){(double)M, 1};
        for (size_t j = 0; j < M; j++)
            dem[j] = (lexv){(double)N, 0};
        scale = (double)N * (double)M;
    } else {
        for (size_t i = 0; i < N; i++)
            sup[i] = (lexv){a ? a[i] / ta : 1.0 / (double)N, 1};
        for (size_t j = 0; j < M; j++)
            dem[j] = (lexv){b ? b[j] / tb : 1.0 / (double)M, 0};
        scale = 1;
    }
    dem[M - 1].y = (long)N;
    double tolx = 1e-13 * (scale > 1 ? scale : 1.0);
    double cmax = 0;
    for (size_t i = 0; i < NM; i++)
        cmax = fabs(C[i]) > cmax ? fabs(C[i]) : cmax;
    double tolc = 1e-12 * (1 + cmax);

    /* initial basis: north-west corner (a staircase, hence a spanning tree) */
    {
        size_t i = 0, j = 0, k = 0;
        lexv rs = sup[0], rd = dem[0];
        for (;;) {
            int take_row = (j == M - 1) || (i < N - 1 && !lex_lt(rd, rs, tolx));
            lexv amt = take_row ? rs : rd;
            bi[k] = i;
            bj[k] = j;
            flow[k] = amt;
            isb[i + j * N] = k + 1;
            k++;
            if (i == N - 1 && j == M - 1)
                break;
            if (take_row) {
                rd = lex_sub(rd, amt);
                rs = sup[++i];
            } else {
                rs = lex_sub(rs, amt);
                rd = dem[++j];
            }
        }
    }

    size_t max_pivots = 20 * NM + 10 * V + 1000, pivots = 0, cursor = 0;
    size_t block = (size_t)sqrt((double)NM);
    block = block < 16 ? 16 : block;
    for (;;) {
        /* tree structure (CSR adjacency) and potentials: u_i + v_j = C_ij on basic cells */
        memset(deg, 0, sizeof(size_t) * (V + 1));
        for (size_t k = 0; k < K; k++) {
            deg[bi[k] + 1]++;
            deg[N + bj[k] + 1]++;
        }
        for (size_t v = 0; v < V; v++)
            deg[v + 1] += deg[v];
        for (size_t v = 0; v < V; v++)
            queue[v] = deg[v];   /* fill cursors */
        for (size_t k = 0; k < K; k++) {
            adj[queue[bi[k]]++] = k;
            adj[queue[N + bj[k]]++] = k;
        }
        for (size_t v = 0; v < V; v++)
            depth[v] = (size_t)-1;
        size_t qh = 0, qt = 0;
        queue[qt++] = 0;
        depth[0] = 0;
        parent[0] = 0;
        pot[0] = 0;
        while (qh < qt) {
            size_t v = queue[qh++];
            for (size_t t = deg[v]; t < deg[v + 1]; t++) {
                size_t k = adj[t];
                size_t w = v < N ? N + bj[k] : bi[k];
                if (depth[w] != (size_t)-1)
                    continue;
                depth[w] = depth[v] + 1;
                parent[w] = v;
                pedge[w] = k;
                pot[w] = C[bi[k] + bj[k] * N] - pot[v];
                queue[qt++] = w;
            }
        }
        if (qt != V) {
            st = qd_fail(e, QD_ENUMERIC, "transport simplex: basis is not a spanning tree");
            goto done;
        }
        /* pricing by block search (as in LEMON's network simplex): scan the cells
         * cyclically from where the last scan stopped, in blocks of ~sqrt(NM); enter the
         * most negative reduced cost C_ij - u_i - v_j of the first block that has one.
         * Optimal when a whole cycle finds none. (Any improving cell is a valid choice:
         * with the perturbation every pivot strictly improves, so none can cycle.) */
        double best = -tolc;
        size_t ei = 0, ej = 0;
        int found = 0;
        for (size_t scanned = 0, inblock = 0; scanned < NM; scanned++) {
            size_t c = cursor;
            cursor = cursor + 1 == NM ? 0 : cursor + 1;
            size_t i = c % N, j = c / N;
            double r = C[c] - pot[i] - pot[N + j];
            if (r < best && !isb[c]) {
                best = r;
                ei = i;
                ej = j;
                found = 1;
            }
            if (++inblock == block) {
                if (found)
                    break;
                inblock = 0;
            }
        }
        if (!found)
            break;
        if (++pivots > max_pivots) {
            st = qd_fail(e, QD_ENUMERIC, "transport simplex did not finish in %zu pivots",
                         max_pivots);
            goto done;
        }
        /* tree path from column node ej to row node ei: pth (from ej up), pth2 (from ei up) */
        size_t x = N + ej, y = ei, n1 = 0, n2 = 0;
        while (depth[x] > depth[y]) {
            pth[n1++] = pedge[x];
            x = parent[x];
        }
        while (depth[y] > depth[x]) {
            pth2[n2++] = pedge[y];
            y = parent[y];
        }
        while (x != y) {
            pth[n1++] = pedge[x];
            x = parent[x];
            pth2[n2++] = pedge[y];
            y = parent[y];
        }
        for (size_t t = 0; t < n2; t++)   /* append pth2 reversed: the path ends at ei */
            pth[n1 + t] = pth2[n2 - 1 - t];
        size_t len = n1 + n2;             /* odd; even positions lose theta */
        size_t leave = pth[0];
        lexv theta = flow[leave];
        for (size_t t = 2; t < len; t += 2)
            if (lex_lt(flow[pth[t]], theta, tolx)) {
                theta = flow[pth[t]];
                leave = pth[t];
            }
        for (size_t t = 0; t < len; t++)
            flow[pth[t]] = (t % 2 == 0) ? lex_sub(flow[pth[t]], theta) : lex_add(flow[pth[t]], theta);
        isb[bi[leave] + bj[leave] * N] = 0;
        bi[leave] = ei;
        bj[leave] = ej;
        flow[leave] = theta;
        isb[ei + ej * N] = leave + 1;
    }
    memset(P, 0, sizeof(double) * NM);
    double s = 0;
    for (size_t k = 0; k < K; k++) {
        double f = flow[k].x / scale;
        if (f < 0)
            f = 0;   /* rounding of an x part that is exactly zero in exact arithmetic */
        P[bi[k] + bj[k] * N] = f;
    }
    for (size_t i = 0; i < NM; i++)
        s += P[i] * C[i];
    *cost = s;
done:
    qd_free(sup);
    qd_free(dem);
    qd_free(flow);
    qd_free(bi);
    qd_free(bj);
    qd_free(isb);
    qd_free(deg);
    qd_free(adj);
    qd_free(parent);
    qd_free(pedge);
    qd_free(depth);
    qd_free(queue);
    qd_free(pth);
    qd_free(pth2);
    qd_free(pot);
    return st;
}

qd_status qd_ot_exact(const double *C, size_t N, size_t M, const double *a, const double *b,
                      double *P, double *cost, qd_err *e)
{
    return qd_ot_exact_warm(C, N, M, a, b, P, cost, NULL, 0, e);
}

qd_status qd_ot_exact_warm(const double *C, size_t N, size_t M, const double *a,
                           const double *b, double *P, double *cost, double *v, int warm,
                           qd_err *e)
{
    if (N == M && !a && !b && N > 0) {
        double ta, tb;
        qd_status st = check_problem(C, N, M, a, b, &ta, &tb, e);
        if (st)
            return st;
        size_t *perm = qd_malloc(sizeof(size_t) * N);
        if (!perm)
            return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu assignment", N, N);
        double c;
        st = assign_core(C, N, perm, &c, v, v ? warm : 0, e);
        if (st == QD_OK) {
            memset(P, 0, sizeof(double) * N * N);
            double s = 0;
            for (size_t i = 0; i < N; i++) {
                P[i + perm[i] * N] = 1.0 / (double)N;
                s += C[i + perm[i] * N];
            }
            *cost = s / (double)N;
        }
        qd_free(perm);
        return st;
    }
    return qd_ot_simplex(C, N, M, a, b, P, cost, e);
}

/* ---------------------------------------------------------------- Sinkhorn (log domain) */

/* log-domain half steps (used to start, to finish, and whenever the scaled iteration
 * would divide by an underflowed sum): f_i = -eps LSE_j(lb_j + (g_j - C_ij)/eps) */
static void lse_f(const double *C, size_t N, size_t M, const double *lb, const double *g,
                  double eps, double *f, double *tmp)
{
    for (size_t i = 0; i < N; i++) {
        double m = -INFINITY;
        for (size_t j = 0; j < M; j++) {
            double t = lb[j] + (g[j] - C[i + j * N]) / eps;
            tmp[j] = t;
            m = t > m ? t : m;
        }
        double s = 0;
        for (size_t j = 0; j < M; j++)
            s += exp(tmp[j] - m);
        f[i] = -eps * (m + log(s));
    }
}

static void lse_g(const double *C, size_t N, size_t M, const double *la, const double *f,
                  double eps, double *g, double *tmp)
{
    for (size_t j = 0; j < M; j++) {
        const double *Cj = C + j * N;
        double m = -INFINITY;
        for (size_t i = 0; i < N; i++) {
            double t = la[i] + (f[i] - Cj[i]) / eps;
            tmp[i] = t;
            m = t > m ? t : m;
        }
        double s = 0;
        for (size_t i = 0; i < N; i++)
            s += exp(tmp[i] - m);
        g[j] = -eps * (m + log(s));
    }
}

/* K_ij = exp((f_i + g_j - C_ij)/eps): the kernel with the potentials absorbed */
static void absorb_kernel(const double *C, size_t N, size_t M, const double *f, const double *g,
                          double eps, double *K)
{
    for (size_t j = 0; j < M; j++)
        for (size_t i = 0; i < N; i++)
            K[i + j * N] = exp((f[i] + g[j] - C[i + j * N]) / eps);
}

qd_status qd_ot_sinkhorn(const double *C, size_t N, size_t M, const double *a, const double *b,
                         double eps, size_t max_iter, double tol, double *P, double *value,
                         qd_sinkhorn_info *info, qd_err *e)
{
    double ta, tb;
    qd_status st = check_problem(C, N, M, a, b, &ta, &tb, e);
    if (st)
        return st;
    if (!(eps > 0) || !isfinite(eps))
        return qd_fail(e, QD_EARG, "eps > 0 expected, got %g", eps);
    if (!(tol > 0))
        return qd_fail(e, QD_EARG, "tol > 0 expected, got %g", tol);
    size_t NM = N * M;
    double *la = qd_malloc(sizeof(double) * N), *lb = qd_malloc(sizeof(double) * M);
    double *wa = qd_malloc(sizeof(double) * N), *wb = qd_malloc(sizeof(double) * M);
    double *f = qd_calloc(N, sizeof(double)), *g = qd_calloc(M, sizeof(double));
    double *u = qd_malloc(sizeof(double) * N), *v = qd_malloc(sizeof(double) * M);
    double *s = qd_malloc(sizeof(double) * N), *t = qd_malloc(sizeof(double) * M);
    double *tmp = qd_malloc(sizeof(double) * (N > M ? N : M));
    double *K = qd_malloc(sizeof(double) * NM);
    if (!la || !lb || !wa || !wb || !f || !g || !u || !v || !s || !t || !tmp || !K) {
        st = qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu Sinkhorn problem", N, M);
        goto done;
    }
    /* normalised weights (both sum to 1) */
    for (size_t i = 0; i < N; i++) {
        wa[i] = a ? a[i] / ta : 1.0 / (double)N;
        la[i] = log(wa[i]);
    }
    for (size_t j = 0; j < M; j++) {
        wb[j] = b ? b[j] / tb : 1.0 / (double)M;
        lb[j] = log(wb[j]);
    }
    /* eps-scaling (warm start): run the iterations at eps_s = max(eps, range(C) 2^-s),
     * s = 0, 1, ..., each stage to a loose tolerance, then at eps to tol. The fixed point at
     * eps does not depend on the start; the annealing only shortens the slow initial phase
     * that small eps has (Schmitzer 2019, sec. 3.2). max_iter counts all iterations.
     * Within a stage the iteration is the stabilised scaling form (Schmitzer 2019, sec.
     * 3.1): P = diag(a u) K diag(b v) with the log-domain potentials f, g absorbed into
     * K = exp((f + g - C)/eps); u = 1/(K b v), v = 1/(K^T a u) cost multiply-adds only, and
     * u, v are absorbed back into f, g (K recomputed) before they leave [1e-30, 1e30], at
     * each eps change and at the end. Mathematically the same iteration as the pure
     * log-domain one. */
    double cmin = INFINITY, cmax = -INFINITY;
    for (size_t i = 0; i < NM; i++) {
        cmin = C[i] < cmin ? C[i] : cmin;
        cmax = C[i] > cmax ? C[i] : cmax;
    }
    double eps_final = eps;
    eps = cmax - cmin > eps_final ? cmax - cmin : eps_final;
    double tol_final = tol;
    tol = eps > eps_final ? fmax(tol_final, 1e-6) : tol_final;
    double err = INFINITY;
    size_t it = 0;
    int conv = 0;
    /* start: one log-domain g step from f = 0, then the scaled form */
    lse_g(C, N, M, la, f, eps, g, tmp);
    absorb_kernel(C, N, M, f, g, eps, K);
    for (size_t i = 0; i < N; i++)
        u[i] = 1;
    for (size_t j = 0; j < M; j++)
        v[j] = 1;
    while (it < max_iter) {
        it++;
        /* s = K (b v); the row marginals of the current plan are a_i u_i s_i (its columns
         * are exact after each v update), so the stopping test is free */
        for (size_t i = 0; i < N; i++)
            s[i] = 0;
        for (size_t j = 0; j < M; j++) {
            double w = wb[j] * v[j];
            const double *Kj = K + j * N;
            for (size_t i = 0; i < N; i++)
                s[i] += Kj[i] * w;
        }
        err = 0;
        int bad = 0;
        for (size_t i = 0; i < N; i++) {
            if (wa[i] > 0)
                err += wa[i] * fabs(u[i] * s[i] - 1.0);
            bad |= !(s[i] > 0) || !isfinite(s[i]);
        }
        if (bad) {
            /* an underflowed row sum: absorb and take log-domain steps instead */
            for (size_t i = 0; i < N; i++)
                f[i] += eps * log(u[i]);
            for (size_t j = 0; j < M; j++)
                g[j] += eps * log(v[j]);
            lse_f(C, N, M, lb, g, eps, f, tmp);
            lse_g(C, N, M, la, f, eps, g, tmp);
            absorb_kernel(C, N, M, f, g, eps, K);
            for (size_t i = 0; i < N; i++)
                u[i] = 1;
            for (size_t j = 0; j < M; j++)
                v[j] = 1;
            err = INFINITY;
            continue;
        }
        if (err <= tol) {
            if (eps <= eps_final) {
                conv = 1;
                break;
            }
            for (size_t i = 0; i < N; i++)
                f[i] += eps * log(u[i]);
            for (size_t j = 0; j < M; j++)
                g[j] += eps * log(v[j]);
            eps = eps * 0.5 > eps_final ? eps * 0.5 : eps_final;
            if (eps <= eps_final)
                tol = tol_final;
            absorb_kernel(C, N, M, f, g, eps, K);
            for (size_t i = 0; i < N; i++)
                u[i] = 1;
            for (size_t j = 0; j < M; j++)
                v[j] = 1;
            continue;
        }
        for (size_t i = 0; i < N; i++) {
            u[i] = 1.0 / s[i];
            tmp[i] = wa[i] * u[i];
        }
        /* t = K^T (a u), v = 1/t */
        int big = 0;
        for (size_t j = 0; j < M; j++) {
            const double *Kj = K + j * N;
            double acc = 0;
            for (size_t i = 0; i < N; i++)
                acc += Kj[i] * tmp[i];
            t[j] = acc;
            if (!(acc > 0) || !isfinite(acc))
                big = 1;
            else
                v[j] = 1.0 / acc;
        }
        for (size_t i = 0; i < N && !big; i++)
            big = u[i] > 1e30 || u[i] < 1e-30;
        for (size_t j = 0; j < M && !big; j++)
            big = v[j] > 1e30 || v[j] < 1e-30;
        if (big) {
            /* absorb u (and v where finite) into the potentials; redo g in the log domain */
            for (size_t i = 0; i < N; i++)
                f[i] += eps * log(u[i]);
            lse_g(C, N, M, la, f, eps, g, tmp);
            absorb_kernel(C, N, M, f, g, eps, K);
            for (size_t i = 0; i < N; i++)
                u[i] = 1;
            for (size_t j = 0; j < M; j++)
                v[j] = 1;
        }
    }
    for (size_t i = 0; i < N; i++)
        f[i] += eps * log(u[i]);
    for (size_t j = 0; j < M; j++)
        g[j] += eps * log(v[j]);
    eps = eps_final;
    double val = 0, cst = 0;
    for (size_t j = 0; j < M; j++)
        for (size_t i = 0; i < N; i++) {
            double pij = exp(la[i] + lb[j] + (f[i] + g[j] - C[i + j * N]) / eps);
            P[i + j * N] = pij;
            cst += pij * C[i + j * N];
        }
    for (size_t i = 0; i < N; i++)
        if (wa[i] > 0)
            val += wa[i] * f[i];
    for (size_t j = 0; j < M; j++)
        if (wb[j] > 0)
            val += wb[j] * g[j];
    *value = val;
    if (info) {
        info->iters = it;
        info->err = err;
        info->converged = conv;
        info->cost = cst;
    }
done:
    qd_free(la);
    qd_free(lb);
    qd_free(wa);
    qd_free(wb);
    qd_free(f);
    qd_free(g);
    qd_free(u);
    qd_free(v);
    qd_free(s);
    qd_free(t);
    qd_free(tmp);
    qd_free(K);
    return st;
}
