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
#include <stdint.h>
#include <string.h>

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
 * Costs are copied once into row-major order, rows padded to ld = n rounded up to 8
 * columns (c[i*ld + j]; the padding columns are never used: their price is -inf, so every
 * reduced cost there is +inf). The solver is serial, so the order of the floating-point
 * operations does not depend on the thread count.
 * Warm start (v given): steps 1-2 are skipped and step 3 starts from all rows free with the
 * given prices; any v is a valid start (step 3 establishes the invariant), so the result is
 * optimal whatever v holds.
 *
 * Speed (n ~ 100, the QuDDPM losses): a Dijkstra step is latency-bound: the next row to
 * scan is the one holding the column at the minimum just found. So every loop over the
 * columns is one branch-free sweep over whole 8-wide blocks (AVX-512 when available, else
 * the same arithmetic in scalar code; both give bitwise the same result: the loops only
 * subtract, compare and select, and ties always go to the first column at the minimum),
 * keeping two running minima (even and odd blocks: short dependency chains); the column at
 * the minimum is found afterwards from the blocks' equality masks. A column is scanned
 * exactly when its label is +inf; the sweep itself marks the column it scans (no separate
 * store into the label vector that the sweep would have to wait for). The cost of the row
 * holding column j is kept per column (cx), so a step reads the next row only in its
 * sweep. No masked stores (slow on AMD, and not forwarded to later loads). On the QuDDPM
 * circle costs this is ~2x the speed of the previous LAPJV code (same algorithm, same
 * number of row scans). */

#if defined(__AVX512F__) && defined(__AVX512VL__) && !defined(QD_OT_PORTABLE)
#define OT_AVX512 1
#include <immintrin.h>
#elif defined(__AVX2__) && !defined(QD_OT_PORTABLE)
/* AVX2: the same sweeps 4 columns a register, two registers per 8-column block (the low
 * and high halves keep separate running minima, as the even and odd blocks do above);
 * blends through compare masks, the column at the minimum from movemask bits */
#define OT_AVX2 1
#include <immintrin.h>

static inline double ot_hmin4(__m256d v)
{
    __m128d lo = _mm_min_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_min_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

/* the low 32 bits of each 64-bit lane of a compare mask: a 4 x int32 blend mask */
static inline __m128 ot_mask32(__m256d m)
{
    __m128 lo = _mm_castpd_ps(_mm256_castpd256_pd128(m)), hi = _mm_castpd_ps(_mm256_extractf128_pd(m, 1));
    return _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
}

/* lane k of 4 set (all ones), the others clear */
static inline __m256d ot_lane(size_t k)
{
    static const int64_t t[4][4] = {{-1, 0, 0, 0}, {0, -1, 0, 0}, {0, 0, -1, 0}, {0, 0, 0, -1}};
    return _mm256_castsi256_pd(_mm256_loadu_si256((const __m256i *)t[k]));
}

/* the first column j with x_j == m, x_j = a[j] - b[j] (b NULL: x_j = a[j]); m is one of
 * them. Equality bits of each 64-column group, then a bit scan. */
static inline size_t ot_first_eq4(const double *a, const double *b, size_t ld, double m)
{
    __m256d mv = _mm256_set1_pd(m);
    for (size_t g = 0;; g += 64) {
        size_t ge = g + 64 < ld ? g + 64 : ld;
        uint64_t bits = 0;
        for (size_t j = g; j < ge; j += 4) {
            __m256d x = _mm256_load_pd(a + j);
            if (b)
                x = _mm256_sub_pd(x, _mm256_load_pd(b + j));
            bits |= (uint64_t)_mm256_movemask_pd(_mm256_cmp_pd(x, mv, _CMP_EQ_OQ)) << (j - g);
        }
        if (bits || ge == ld)
            return g + (size_t)__builtin_ctzll(bits | (bits ? 0 : 1));
    }
}
#endif

size_t qd_ot_assign_ld(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

#ifdef OT_AVX512
static inline size_t ot_first_at_diff(const double *a, const double *b, size_t ld, double m);
#endif
/* With x_j = a[j] - b[j]: u1 = min x, j1 = the first j at it, u2 = the second smallest
 * of the multiset {x_j} (u2 == u1 on a tie). */
static inline void ot_rowmin2(const double *a, const double *b, size_t ld, double *u1,
                              size_t *j1, double *u2)
{
#ifdef OT_AVX512
    /* per lane the smallest and second smallest (multiset) over even and odd blocks (two
     * short dependency chains), merged; the column is found afterwards */
    __m512d p1 = _mm512_set1_pd(INFINITY), p2 = p1, q1 = p1, q2 = p1;
    for (size_t j = 0; j < ld; j += 8) {
        __m512d x = _mm512_sub_pd(_mm512_load_pd(a + j), _mm512_load_pd(b + j));
        if (j & 8) {
            q2 = _mm512_min_pd(q2, _mm512_max_pd(q1, x));
            q1 = _mm512_min_pd(q1, x);
        } else {
            p2 = _mm512_min_pd(p2, _mm512_max_pd(p1, x));
            p1 = _mm512_min_pd(p1, x);
        }
    }
    __m512d m1 = _mm512_min_pd(p1, q1);
    __m512d m2 = _mm512_min_pd(_mm512_max_pd(p1, q1), _mm512_min_pd(p2, q2));
    double m = _mm512_reduce_min_pd(m1);
    __mmask8 eq = _mm512_cmp_pd_mask(m1, _mm512_set1_pd(m), _CMP_EQ_OQ);
    *u1 = m;
    if (__builtin_popcount((unsigned)eq) > 1) {
        *u2 = m;
    } else {
        double s1 = _mm512_reduce_min_pd(m2);
        double s2 = _mm512_reduce_min_pd(_mm512_mask_mov_pd(m1, eq, _mm512_set1_pd(INFINITY)));
        *u2 = s1 < s2 ? s1 : s2;
    }
    *j1 = ot_first_at_diff(a, b, ld, m);
#elif defined(OT_AVX2)
    __m256d p1 = _mm256_set1_pd(INFINITY), p2 = p1, q1 = p1, q2 = p1;
    for (size_t j = 0; j < ld; j += 8) {
        __m256d x0 = _mm256_sub_pd(_mm256_load_pd(a + j), _mm256_load_pd(b + j));
        __m256d x1 = _mm256_sub_pd(_mm256_load_pd(a + j + 4), _mm256_load_pd(b + j + 4));
        p2 = _mm256_min_pd(p2, _mm256_max_pd(p1, x0));
        p1 = _mm256_min_pd(p1, x0);
        q2 = _mm256_min_pd(q2, _mm256_max_pd(q1, x1));
        q1 = _mm256_min_pd(q1, x1);
    }
    __m256d m1 = _mm256_min_pd(p1, q1);
    __m256d m2 = _mm256_min_pd(_mm256_max_pd(p1, q1), _mm256_min_pd(p2, q2));
    double m = ot_hmin4(m1);
    __m256d eq = _mm256_cmp_pd(m1, _mm256_set1_pd(m), _CMP_EQ_OQ);
    *u1 = m;
    if (__builtin_popcount((unsigned)_mm256_movemask_pd(eq)) > 1) {
        *u2 = m;
    } else {
        double s1 = ot_hmin4(m2);
        double s2 = ot_hmin4(_mm256_blendv_pd(m1, _mm256_set1_pd(INFINITY), eq));
        *u2 = s1 < s2 ? s1 : s2;
    }
    *j1 = ot_first_eq4(a, b, ld, m);
#else
    double m1 = INFINITY, m2 = INFINITY;
    size_t i1 = 0;
    for (size_t j = 0; j < ld; j++) {
        double x = a[j] - b[j];
        if (x < m1) {
            m2 = m1;
            m1 = x;
            i1 = j;
        } else if (x < m2) {
            m2 = x;
        }
    }
    *u1 = m1;
    *j1 = i1;
    *u2 = m2;
#endif
}

#ifdef OT_AVX512
/* the first column j with dk[j] == m (m is one of the labels): every block's equality
 * mask gathered into 64-bit words, then a bit scan; no data-dependent branch for
 * ld <= 128 */
static inline size_t ot_first_at(const double *dk, size_t ld, double m)
{
    __m512d mv = _mm512_set1_pd(m);
    uint64_t lo = 0, hi = 0;
    size_t j = 0;
    for (; j < ld && j < 64; j += 8)
        lo |= (uint64_t)_mm512_cmp_pd_mask(_mm512_load_pd(dk + j), mv, _CMP_EQ_OQ) << j;
    for (; j < ld && j < 128; j += 8)
        hi |= (uint64_t)_mm512_cmp_pd_mask(_mm512_load_pd(dk + j), mv, _CMP_EQ_OQ) << (j - 64);
    if (ld <= 128 || lo || hi)
        return lo ? (size_t)__builtin_ctzll(lo) : 64 + (size_t)__builtin_ctzll(hi | (hi ? 0 : 1));
    for (size_t g = 128;; g += 64) {
        size_t ge = g + 64 < ld ? g + 64 : ld;
        uint64_t bits = 0;
        for (j = g; j < ge; j += 8)
            bits |= (uint64_t)_mm512_cmp_pd_mask(_mm512_load_pd(dk + j), mv, _CMP_EQ_OQ) << (j - g);
        if (bits || ge == ld)
            return g + (size_t)__builtin_ctzll(bits | (bits ? 0 : 1));
    }
}
#endif

#ifdef OT_AVX512
/* the first column j with a[j] - b[j] == m (m is one of those differences); no
 * data-dependent branch for ld <= 128 */
static inline size_t ot_first_at_diff(const double *a, const double *b, size_t ld, double m)
{
    __m512d mv = _mm512_set1_pd(m);
    uint64_t lo = 0, hi = 0;
    size_t j = 0;
    for (; j < ld && j < 64; j += 8)
        lo |= (uint64_t)_mm512_cmp_pd_mask(_mm512_sub_pd(_mm512_load_pd(a + j), _mm512_load_pd(b + j)),
                                           mv, _CMP_EQ_OQ) << j;
    for (; j < ld && j < 128; j += 8)
        hi |= (uint64_t)_mm512_cmp_pd_mask(_mm512_sub_pd(_mm512_load_pd(a + j), _mm512_load_pd(b + j)),
                                           mv, _CMP_EQ_OQ) << (j - 64);
    if (ld <= 128 || lo || hi)
        return lo ? (size_t)__builtin_ctzll(lo) : 64 + (size_t)__builtin_ctzll(hi | (hi ? 0 : 1));
    for (size_t g = 128;; g += 64) {
        size_t ge = g + 64 < ld ? g + 64 : ld;
        uint64_t bits = 0;
        for (j = g; j < ge; j += 8) {
            __m512d x = _mm512_sub_pd(_mm512_load_pd(a + j), _mm512_load_pd(b + j));
            bits |= (uint64_t)_mm512_cmp_pd_mask(x, mv, _CMP_EQ_OQ) << (j - g);
        }
        if (bits || ge == ld)
            return g + (size_t)__builtin_ctzll(bits | (bits ? 0 : 1));
    }
}
#endif

/* v[j] = val as a read-modify-write of j's 8-wide block, so that the next sweep's vector
 * load of that block is forwarded from a store of the same size (a scalar store followed by
 * a wider load that covers it stalls until the store reaches the cache) */
static inline void ot_set_at(double *v, size_t j, double val)
{
#ifdef OT_AVX512
    size_t b = j & ~(size_t)7;
    __m512d x = _mm512_mask_mov_pd(_mm512_load_pd(v + b), (__mmask8)(1u << (j & 7)),
                                   _mm512_set1_pd(val));
    __asm__("" : "+v"(x));   /* no masked store (see ot_dij_scan) */
    _mm512_store_pd(v + b, x);
#elif defined(OT_AVX2)
    size_t b = j & ~(size_t)3;
    _mm256_store_pd(v + b, _mm256_blendv_pd(_mm256_load_pd(v + b), _mm256_set1_pd(val),
                                            ot_lane(j & 3)));
#else
    v[j] = val;
#endif
}


/* Dijkstra start from free row cf: dk = cf - v (+inf on the padding, where v = -inf),
 * pred = fr; returns min dk and its first column */
static inline double ot_dij_init(const double *cf, const double *v, double *dk, int32_t *pred,
                                 int32_t fr, size_t ld, size_t *jmin)
{
#ifdef OT_AVX512
    __m512d b0 = _mm512_set1_pd(INFINITY), b1 = b0;
    __m256i pf = _mm256_set1_epi32(fr);
    for (size_t j = 0; j < ld; j += 8) {
        __m512d d = _mm512_sub_pd(_mm512_load_pd(cf + j), _mm512_load_pd(v + j));
        _mm512_store_pd(dk + j, d);
        _mm256_store_si256((__m256i *)(pred + j), pf);
        if (j & 8)
            b1 = _mm512_min_pd(b1, d);
        else
            b0 = _mm512_min_pd(b0, d);
    }
    double m = _mm512_reduce_min_pd(_mm512_min_pd(b0, b1));
    *jmin = ot_first_at(dk, ld, m);
    return m;
#elif defined(OT_AVX2)
    __m256d b0 = _mm256_set1_pd(INFINITY), b1 = b0;
    __m128i pf = _mm_set1_epi32(fr);
    for (size_t j = 0; j < ld; j += 8) {
        __m256d d0 = _mm256_sub_pd(_mm256_load_pd(cf + j), _mm256_load_pd(v + j));
        __m256d d1 = _mm256_sub_pd(_mm256_load_pd(cf + j + 4), _mm256_load_pd(v + j + 4));
        _mm256_store_pd(dk + j, d0);
        _mm256_store_pd(dk + j + 4, d1);
        _mm_store_si128((__m128i *)(pred + j), pf);
        _mm_store_si128((__m128i *)(pred + j + 4), pf);
        b0 = _mm256_min_pd(b0, d0);
        b1 = _mm256_min_pd(b1, d1);
    }
    double m = ot_hmin4(_mm256_min_pd(b0, b1));
    *jmin = ot_first_eq4(dk, NULL, ld, m);
    return m;
#else
    double bm = INFINITY;
    size_t bi = 0;
    for (size_t j = 0; j < ld; j++) {
        double d = cf[j] - v[j];
        dk[j] = d;
        pred[j] = fr;
        if (d < bm) {
            bm = d;
            bi = j;
        }
    }
    *jmin = bi;
    return bm;
#endif
}

/* One Dijkstra step: column js (at the minimum distance mn) becomes scanned and its row i
 * (h = its reduced cost at js minus mn) relaxes the unscanned columns. A column is scanned
 * exactly when its label is +inf (labels of real columns are finite from the start; the
 * padding's are +inf), so js is marked by setting its label to +inf inside this sweep and
 * no label of a scanned column ever changes again. Row i offers w_j = c_ij - v_j - h,
 * clamped at mn (rounding must never make a label decrease below the current minimum); a
 * label only changes on a strict decrease. Returns the new minimum label and its first
 * column. The step is latency-bound (the next row depends on this minimum), so the sweep
 * only keeps two running minima (even and odd blocks: short dependency chains) and the
 * column is found afterwards by one compare per block. */
static inline double ot_dij_scan(const double *ci, const double *v, double *dk, int32_t *pred,
                                 size_t js, int32_t i, double h, double mn, size_t ld,
                                 size_t *jmin)
{
#ifdef OT_AVX512
    __m512d hv = _mm512_set1_pd(h), mv = _mm512_set1_pd(mn), inf = _mm512_set1_pd(INFINITY);
    __m512d b0 = inf, b1 = inf;
    __m256i pi = _mm256_set1_epi32(i);
    size_t jb = js & ~(size_t)7;
    __mmask8 kb = (__mmask8)(1u << (js & 7));
    for (size_t j = 0; j < ld; j += 8) {
        __m512d w = _mm512_sub_pd(_mm512_sub_pd(_mm512_load_pd(ci + j), _mm512_load_pd(v + j)), hv);
        w = _mm512_max_pd(w, mv);
        __m512d d = _mm512_load_pd(dk + j);
        d = _mm512_mask_mov_pd(d, j == jb ? kb : 0, inf);   /* js is scanned now */
        __mmask8 open = _mm512_cmp_pd_mask(d, inf, _CMP_LT_OQ);
        __mmask8 lt = _mm512_mask_cmp_pd_mask(open, w, d, _CMP_LT_OQ);
        d = _mm512_mask_blend_pd(lt, d, w);
        _mm512_store_pd(dk + j, d);
        /* load + blend + store: a masked store is slow on AMD; the empty asm keeps the
         * compiler from turning the three back into one */
        __m256i pj = _mm256_mask_blend_epi32(lt, _mm256_load_si256((const __m256i *)(pred + j)), pi);
        __asm__("" : "+v"(pj));
        _mm256_store_si256((__m256i *)(pred + j), pj);
        if (j & 8)
            b1 = _mm512_min_pd(b1, d);
        else
            b0 = _mm512_min_pd(b0, d);
    }
    double m = _mm512_reduce_min_pd(_mm512_min_pd(b0, b1));
    *jmin = ot_first_at(dk, ld, m);
    return m;
#elif defined(OT_AVX2)
    const __m256d hv = _mm256_set1_pd(h), mv = _mm256_set1_pd(mn), inf = _mm256_set1_pd(INFINITY);
    const __m128 pi = _mm_castsi128_ps(_mm_set1_epi32(i));
    __m256d b0 = inf, b1 = inf;
    /* js is scanned now: its label becomes +inf in the sweep's own load (a scalar store
     * before the sweep would stall the wider load that covers it) */
    const size_t jb = js & ~(size_t)7;
    const __m256d k0 = (js & 4) ? _mm256_setzero_pd() : ot_lane(js & 3);
    const __m256d k1 = (js & 4) ? ot_lane(js & 3) : _mm256_setzero_pd();
#define OT_SCAN4(J, K, B)                                                                     \
    {                                                                                         \
        __m256d w = _mm256_sub_pd(_mm256_sub_pd(_mm256_load_pd(ci + (J)), _mm256_load_pd(v + (J))), hv); \
        w = _mm256_max_pd(w, mv);                                                             \
        __m256d d = _mm256_blendv_pd(_mm256_load_pd(dk + (J)), inf, (K));                     \
        __m256d lt = _mm256_and_pd(_mm256_cmp_pd(d, inf, _CMP_LT_OQ), _mm256_cmp_pd(w, d, _CMP_LT_OQ)); \
        d = _mm256_blendv_pd(d, w, lt);                                                       \
        _mm256_store_pd(dk + (J), d);                                                         \
        _mm_store_ps((float *)(pred + (J)),                                                   \
                     _mm_blendv_ps(_mm_load_ps((const float *)(pred + (J))), pi, ot_mask32(lt))); \
        B = _mm256_min_pd(B, d);                                                              \
    }
    const __m256d z = _mm256_setzero_pd();
    for (size_t j = 0; j < ld; j += 8) {
        const int here = j == jb;
        OT_SCAN4(j, here ? k0 : z, b0)
        OT_SCAN4(j + 4, here ? k1 : z, b1)
    }
#undef OT_SCAN4
    double m = ot_hmin4(_mm256_min_pd(b0, b1));
    *jmin = ot_first_eq4(dk, NULL, ld, m);
    return m;
#else
    double bm = INFINITY;
    size_t bi = 0;
    dk[js] = INFINITY;
    for (size_t j = 0; j < ld; j++) {
        double d = dk[j];
        if (d < INFINITY) {
            double w = ci[j] - v[j] - h;
            w = w < mn ? mn : w;
            if (w < d) {
                d = w;
                dk[j] = w;
                pred[j] = i;
            }
        }
        if (d < bm) {
            bm = d;
            bi = j;
        }
    }
    *jmin = bi;
    return bm;
#endif
}

/* The solver on the padded row-major cost c (ld = qd_ot_assign_ld(n), n >= 2, finite).
 * v: ld prices (in: the start when warm; out: the optimal prices, -inf on the padding).
 * ws: workspace of ot_ws_bytes(n). x[i] = column of row i on return. */
static size_t ot_ws_bytes(size_t n)
{
    size_t ld = qd_ot_assign_ld(n);
    return sizeof(double) * 3 * ld + sizeof(int32_t) * (2 * ld + 5 * n) + 64;
}

static void ot_solve(const double *c, size_t n, double *v, int warm, void *ws, int32_t *x)
{
    size_t ld = qd_ot_assign_ld(n);
    double *dk = ws, *cx = dk + ld, *dsc = cx + ld;
    int32_t *pred = (int32_t *)(dsc + ld), *y = pred + ld, *fre = y + ld, *scn = fre + n,
            *cnt = scn + n;
    size_t nfree = 0;
    for (size_t i = 0; i < n; i++)
        x[i] = -1;
    for (size_t j = 0; j < ld; j++)
        y[j] = -1;
    if (warm) {
        for (size_t i = 0; i < n; i++)
            fre[nfree++] = (int32_t)(n - 1 - i);
    } else {
        /* 1. column reduction: v_j = min_i c_ij and its first row, all columns in one
         * sweep over the rows (pred holds the rows), then the assignment logic of the paper
         * (last column first) */
        int32_t *arg = pred;
        for (size_t j = 0; j < ld; j++) {
            v[j] = INFINITY;
            arg[j] = 0;
        }
        for (size_t i = 0; i < n; i++) {
            const double *ci = c + i * ld;
#ifdef OT_AVX512
            __m256i iv = _mm256_set1_epi32((int32_t)i);
            for (size_t j = 0; j < ld; j += 8) {
                __m512d r = _mm512_load_pd(ci + j), m = _mm512_load_pd(v + j);
                __mmask8 lt = _mm512_cmp_pd_mask(r, m, _CMP_LT_OQ);
                _mm512_store_pd(v + j, _mm512_mask_blend_pd(lt, m, r));
                __m256i aj = _mm256_mask_blend_epi32(lt, _mm256_load_si256((const __m256i *)(arg + j)), iv);
                __asm__("" : "+v"(aj));   /* no masked store (see ot_dij_scan) */
                _mm256_store_si256((__m256i *)(arg + j), aj);
            }
#elif defined(OT_AVX2)
            const __m128 iv = _mm_castsi128_ps(_mm_set1_epi32((int32_t)i));
            for (size_t j = 0; j < ld; j += 4) {
                __m256d r = _mm256_load_pd(ci + j), m = _mm256_load_pd(v + j);
                __m256d lt = _mm256_cmp_pd(r, m, _CMP_LT_OQ);
                _mm256_store_pd(v + j, _mm256_blendv_pd(m, r, lt));
                _mm_store_ps((float *)(arg + j),
                             _mm_blendv_ps(_mm_load_ps((const float *)(arg + j)), iv, ot_mask32(lt)));
            }
#else
            for (size_t j = 0; j < ld; j++)
                if (ci[j] < v[j]) {
                    v[j] = ci[j];
                    arg[j] = (int32_t)i;
                }
#endif
        }
        for (size_t i = 0; i < n; i++)
            cnt[i] = 0;
        for (size_t j = n; j-- > 0;) {
            int32_t im = arg[j];
            if (++cnt[im] == 1) {
                x[im] = (int32_t)j;
                y[j] = im;
                cx[j] = v[j];   /* = c[im, j] */
            } else if (v[j] < v[x[im]]) {
                int32_t j1 = x[im];
                x[im] = (int32_t)j;
                y[j] = im;
                cx[j] = v[j];
                y[j1] = -1;
            }
        }
        for (size_t j = n; j < ld; j++)
            v[j] = -INFINITY;
        /* 2. reduction transfer; rows without a column are free */
        for (size_t i = n; i-- > 0;) {
            if (cnt[i] == 0) {
                fre[nfree++] = (int32_t)i;
            } else if (cnt[i] == 1) {
                const double *ci = c + i * ld;
                size_t j1 = (size_t)x[i];
                /* j1 is a minimum of the row (c_ij1 - v_j1 = 0 <= the others), so the
                 * smallest over the other columns is the second smallest, u2 */
                double keep = v[j1], u1, m;
                size_t jm;
                ot_rowmin2(ci, v, ld, &u1, &jm, &m);
                ot_set_at(v, j1, keep - (m - (ci[j1] - keep)));
            }
        }
    }
    /* 3. augmenting row reduction, two passes */
    for (int pass = 0; pass < 2 && nfree > 0; pass++) {
        size_t k = 0, prv = nfree;
        nfree = 0;
        while (k < prv) {
            int32_t i = fre[k++];
            const double *ci = c + (size_t)i * ld;
            double u1, u2;
            size_t j1;
            ot_rowmin2(ci, v, ld, &u1, &j1, &u2);
            int32_t i0 = y[j1];
            if (u1 < u2) {
                ot_set_at(v, j1, v[j1] - (u2 - u1));
            } else if (i0 >= 0) {   /* a tie: take the last column at the minimum */
                size_t j2 = j1;
                for (size_t j = n; j-- > j1 + 1;)
                    if (ci[j] - v[j] == u1) {
                        j2 = j;
                        break;
                    }
                j1 = j2;
                i0 = y[j2];
            }
            /* the previous holder (if any) becomes free, without a branch: */
            x[i0 >= 0 ? i0 : i] = -1;
            x[i] = (int32_t)j1;
            y[j1] = i;
            cx[j1] = ci[j1];
            /* The paper re-processes an evicted row at once when u1 < u2. With real costs
             * the price decrements can be tiny and two rows can pass a column back and
             * forth many times, so the evicted row is queued for the next pass instead;
             * what is left after two passes goes to step 4. */
            fre[nfree] = i0;
            nfree += i0 >= 0;
        }
    }
    /* 4. shortest augmenting paths (Dijkstra over the columns) for the remaining free rows.
     * dk: tentative distance of a column (+inf once scanned), dsc: final distance of a
     * scanned column, pred: the row that gave a column its label. */
    for (size_t f = 0; f < nfree; f++) {
        int32_t fr = fre[f];
        size_t j1, ns = 0;
        double mn = ot_dij_init(c + (size_t)fr * ld, v, dk, pred, fr, ld, &j1);
        while (y[j1] >= 0) {
            scn[ns++] = (int32_t)j1;
            dsc[j1] = mn;
            int32_t i = y[j1];
            double h = cx[j1] - v[j1] - mn;   /* cx[j1] = c[i, j1], read without the row */
            mn = ot_dij_scan(c + (size_t)i * ld, v, dk, pred, j1, i, h, mn, ld, &j1);
        }
        for (size_t k = 0; k < ns; k++) {   /* prices of the scanned columns */
            int32_t j = scn[k];
            v[j] += dsc[j] - mn;
        }
        int32_t end = (int32_t)j1;
        for (;;) {   /* augment along pred */
            int32_t i = pred[end];
            y[end] = i;
            cx[end] = c[(size_t)i * ld + (size_t)end];
            int32_t t = x[i];
            x[i] = end;
            end = t;
            if (i == fr)
                break;
        }
    }
}

/* finite check, vectorised: x - x is NaN exactly for an infinite or NaN x */
static int all_finite(const double *C, size_t nn)
{
    double z[4][8] = {{0}};   /* 4 x 8 independent partial sums (no long add chain) */
    size_t i = 0;
    for (; i + 32 <= nn; i += 32)
        for (int a = 0; a < 4; a++) {
            #pragma omp simd
            for (int l = 0; l < 8; l++)
                z[a][l] += C[i + 8 * (size_t)a + (size_t)l] - C[i + 8 * (size_t)a + (size_t)l];
        }
    double t = 0;
    for (; i < nn; i++)
        t += C[i] - C[i];
    for (int a = 0; a < 4; a++)
        for (int l = 0; l < 8; l++)
            t += z[a][l];
    return t == 0;
}

/* The solve on the row-major padded cost c (ld columns) with work prices vw (ld entries):
 * warm-started from vio when warm (padding -inf), the permutation and its cost out, the
 * final column prices back to vio (if given). */
static void solve_collect(const double *c, size_t n, size_t ld, double *vw, double *vio,
                          int warm, void *ws, int32_t *x, size_t *perm, double *cost)
{
    if (warm && vio) {
        for (size_t j = 0; j < n; j++)
            vw[j] = vio[j];
        for (size_t j = n; j < ld; j++)
            vw[j] = -INFINITY;
    }
    ot_solve(c, n, vw, warm && vio, ws, x);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        perm[i] = (size_t)x[i];
        s += c[i * ld + (size_t)x[i]];
    }
    *cost = s;
    if (vio)
        memcpy(vio, vw, sizeof(double) * n);
}

static qd_status assign_core(const double *C, size_t n, size_t *perm, double *cost, double *vio,
                             int warm, qd_err *e)
{
    if (n == 0)
        return qd_fail(e, QD_EARG, "empty assignment problem");
    size_t nn, ld = qd_ot_assign_ld(n);
    if (n > (size_t)INT32_MAX / 2 || qd_mul_overflow(n, ld, &nn) || nn > ((size_t)-1) / 64)
        return qd_fail(e, QD_ENOMEM, "assignment problem too large");
    if (!all_finite(C, n * n))
        for (size_t i = 0; i < n * n; i++)
            if (!isfinite(C[i]))
                return qd_fail(e, QD_EARG, "cost matrix has a non-finite entry at (%zu, %zu)",
                               i % n + 1, i / n + 1);
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
    /* one block: padded row-major costs, prices, columns of the rows, workspace */
    size_t bytes = sizeof(double) * (nn + ld) + sizeof(int32_t) * ld + ot_ws_bytes(n);
    char *blk = qd_malloc(bytes);
    if (!blk)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu assignment", n, n);
    double *c = (double *)blk, *v = c + nn;
    int32_t *x = (int32_t *)(v + ld);
    void *ws = blk + ((sizeof(double) * (nn + ld) + sizeof(int32_t) * ld + 63) & ~(size_t)63);
    for (size_t j0 = 0; j0 < n; j0 += 8)   /* row-major copy, by 8 x 8 tiles */
        for (size_t i0 = 0; i0 < n; i0 += 8) {
            size_t j1 = j0 + 8 < n ? j0 + 8 : n, i1 = i0 + 8 < n ? i0 + 8 : n;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1; j++)
                    c[i * ld + j] = C[i + j * n];
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = n; j < ld; j++)
            c[i * ld + j] = 0;
    solve_collect(c, n, ld, v, vio, warm, ws, x, perm, cost);
    qd_free(blk);
    return QD_OK;
}

qd_status qd_ot_assign_rm(const double *c, size_t n, size_t *perm, double *cost, double *v,
                          int warm, qd_err *e)
{
    if (n == 0)
        return qd_fail(e, QD_EARG, "empty assignment problem");
    size_t ld = qd_ot_assign_ld(n);
    if (n > (size_t)INT32_MAX / 2)
        return qd_fail(e, QD_ENOMEM, "assignment problem too large");
    if ((uintptr_t)c % 64 != 0)
        return qd_fail(e, QD_EARG, "row-major cost must be 64-byte aligned (qd_malloc)");
    if (!all_finite(c, n * ld))   /* the padding too: a NaN there would be a label */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < ld; j++)
                if (!isfinite(c[i * ld + j]))
                    return qd_fail(e, QD_EARG, "cost matrix has a non-finite entry at (%zu, %zu)%s",
                                   i + 1, j + 1, j < n ? "" : " (padding)");
    if (warm && v)
        for (size_t j = 0; j < n; j++)
            if (!isfinite(v[j]))
                return qd_fail(e, QD_EARG, "warm start: non-finite column potential at %zu", j + 1);
    if (n == 1) {
        perm[0] = 0;
        *cost = c[0];
        if (v)
            v[0] = c[0];
        return QD_OK;
    }
    size_t bytes = sizeof(double) * ld + sizeof(int32_t) * ld + ot_ws_bytes(n);
    char *blk = qd_malloc(bytes);
    if (!blk)
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu assignment", n, n);
    double *vw = (double *)blk;
    int32_t *x = (int32_t *)(vw + ld);
    void *ws = blk + ((sizeof(double) * ld + sizeof(int32_t) * ld + 63) & ~(size_t)63);
    solve_collect(c, n, ld, vw, v, warm, ws, x, perm, cost);
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
    /* vectorised finite check: x - x is NaN exactly for inf and NaN. 8 partial sums, entry
     * i into z8[i % 8], added in a fixed order: the same arithmetic at any vector width
     * (not `omp simd reduction`, whose split follows the width of the build) */
    double z8[8] = {0};
    size_t i0 = 0;
    for (; i0 + 8 <= NM; i0 += 8)
        for (size_t u = 0; u < 8; u++)
            z8[u] += C[i0 + u] - C[i0 + u];
    for (; i0 < NM; i0++)
        z8[i0 % 8] += C[i0] - C[i0];
    double z = ((z8[0] + z8[1]) + (z8[2] + z8[3])) + ((z8[4] + z8[5]) + (z8[6] + z8[7]));
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

/* The network simplex's state: the problem (C, N x M, K = N + M - 1 basic cells, V = N + M
 * nodes: rows 0..N-1, columns N..N+M-1), supplies and demands, the basis (cells bi, bj with
 * their flows; isb: basis index + 1 per cell, or 0), the tree (CSR adjacency deg/adj,
 * parent, the edge to it, depth, potentials) and scratch for the BFS and cycle paths. */
typedef struct {
    const double *C;
    size_t N, M, K, V, NM;
    double scale, tolx, tolc;   /* plan = flow / scale; tolerances of flows and costs */
    lexv *sup, *dem, *flow;
    size_t *bi, *bj, *isb, *deg, *adj, *parent, *pedge, *depth, *queue, *pth, *pth2;
    double *pot;
    size_t cursor, block;       /* the pricing scan */
} nsx_ws;

static void nsx_free(nsx_ws *w)
{
    void *bufs[] = {w->sup, w->dem, w->flow, w->bi, w->bj, w->isb, w->deg, w->adj, w->parent,
                    w->pedge, w->depth, w->queue, w->pth, w->pth2, w->pot};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        qd_free(bufs[i]);
}

static int nsx_alloc(nsx_ws *w)
{
    size_t N = w->N, M = w->M, K = w->K, V = w->V;
    w->sup = qd_malloc(sizeof(lexv) * N), w->dem = qd_malloc(sizeof(lexv) * M);
    w->flow = qd_malloc(sizeof(lexv) * K);
    w->bi = qd_malloc(sizeof(size_t) * K), w->bj = qd_malloc(sizeof(size_t) * K);
    w->isb = qd_calloc(w->NM, sizeof(size_t));
    w->deg = qd_malloc(sizeof(size_t) * (V + 1)), w->adj = qd_malloc(sizeof(size_t) * 2 * K);
    w->parent = qd_malloc(sizeof(size_t) * V), w->pedge = qd_malloc(sizeof(size_t) * V);
    w->depth = qd_malloc(sizeof(size_t) * V), w->queue = qd_malloc(sizeof(size_t) * V);
    w->pth = qd_malloc(sizeof(size_t) * V), w->pth2 = qd_malloc(sizeof(size_t) * V);
    w->pot = qd_malloc(sizeof(double) * V);
    return w->sup && w->dem && w->flow && w->bi && w->bj && w->isb && w->deg && w->adj &&
           w->parent && w->pedge && w->depth && w->queue && w->pth && w->pth2 && w->pot;
}

/* supplies / demands (scaled: uniform -> integers; given -> b rescaled to a's total), the
 * perturbation that makes every pivot strictly improving, the tolerances */
static void nsx_supplies(nsx_ws *w, const double *a, const double *b, double ta, double tb)
{
    size_t N = w->N, M = w->M;
    if (!a && !b) {
        for (size_t i = 0; i < N; i++)
            w->sup[i] = (lexv){(double)M, 1};
        for (size_t j = 0; j < M; j++)
            w->dem[j] = (lexv){(double)N, 0};
        w->scale = (double)N * (double)M;
    } else {
        for (size_t i = 0; i < N; i++)
            w->sup[i] = (lexv){a ? a[i] / ta : 1.0 / (double)N, 1};
        for (size_t j = 0; j < M; j++)
            w->dem[j] = (lexv){b ? b[j] / tb : 1.0 / (double)M, 0};
        w->scale = 1;
    }
    w->dem[M - 1].y = (long)N;
    w->tolx = 1e-13 * (w->scale > 1 ? w->scale : 1.0);
    double cmax = 0;
    for (size_t i = 0; i < w->NM; i++)
        cmax = fabs(w->C[i]) > cmax ? fabs(w->C[i]) : cmax;
    w->tolc = 1e-12 * (1 + cmax);
}

/* initial basis: north-west corner (a staircase, hence a spanning tree) */
static void nsx_northwest(nsx_ws *w)
{
    size_t i = 0, j = 0, k = 0, N = w->N, M = w->M;
    lexv rs = w->sup[0], rd = w->dem[0];
    for (;;) {
        int take_row = (j == M - 1) || (i < N - 1 && !lex_lt(rd, rs, w->tolx));
        lexv amt = take_row ? rs : rd;
        w->bi[k] = i;
        w->bj[k] = j;
        w->flow[k] = amt;
        w->isb[i + j * N] = k + 1;
        k++;
        if (i == N - 1 && j == M - 1)
            break;
        if (take_row) {
            rd = lex_sub(rd, amt);
            rs = w->sup[++i];
        } else {
            rs = lex_sub(rs, amt);
            rd = w->dem[++j];
        }
    }
}

/* tree structure (CSR adjacency) and potentials: u_i + v_j = C_ij on basic cells; 0 if the
 * basis is not a spanning tree */
static int nsx_tree(nsx_ws *w)
{
    size_t N = w->N, K = w->K, V = w->V;
    size_t *deg = w->deg, *queue = w->queue;
    memset(deg, 0, sizeof(size_t) * (V + 1));
    for (size_t k = 0; k < K; k++) {
        deg[w->bi[k] + 1]++;
        deg[N + w->bj[k] + 1]++;
    }
    for (size_t v = 0; v < V; v++)
        deg[v + 1] += deg[v];
    for (size_t v = 0; v < V; v++)
        queue[v] = deg[v];   /* fill cursors */
    for (size_t k = 0; k < K; k++) {
        w->adj[queue[w->bi[k]]++] = k;
        w->adj[queue[N + w->bj[k]]++] = k;
    }
    for (size_t v = 0; v < V; v++)
        w->depth[v] = (size_t)-1;
    size_t qh = 0, qt = 0;
    queue[qt++] = 0;
    w->depth[0] = 0;
    w->parent[0] = 0;
    w->pot[0] = 0;
    while (qh < qt) {
        size_t v = queue[qh++];
        for (size_t t = deg[v]; t < deg[v + 1]; t++) {
            size_t k = w->adj[t];
            size_t u = v < N ? N + w->bj[k] : w->bi[k];
            if (w->depth[u] != (size_t)-1)
                continue;
            w->depth[u] = w->depth[v] + 1;
            w->parent[u] = v;
            w->pedge[u] = k;
            w->pot[u] = w->C[w->bi[k] + w->bj[k] * N] - w->pot[v];
            queue[qt++] = u;
        }
    }
    return qt == V;
}

/* pricing by block search (as in LEMON's network simplex): scan the cells cyclically from
 * where the last scan stopped, in blocks of ~sqrt(NM); enter the most negative reduced cost
 * C_ij - u_i - v_j of the first block that has one. Optimal when a whole cycle finds none
 * (returns 0). (Any improving cell is a valid choice: with the perturbation every pivot
 * strictly improves, so none can cycle.) */
static int nsx_price(nsx_ws *w, size_t *ei, size_t *ej)
{
    size_t N = w->N, NM = w->NM;
    double best = -w->tolc;
    int found = 0;
    for (size_t scanned = 0, inblock = 0; scanned < NM; scanned++) {
        size_t c = w->cursor;
        w->cursor = w->cursor + 1 == NM ? 0 : w->cursor + 1;
        size_t i = c % N, j = c / N;
        double r = w->C[c] - w->pot[i] - w->pot[N + j];
        if (r < best && !w->isb[c]) {
            best = r;
            *ei = i;
            *ej = j;
            found = 1;
        }
        if (++inblock == w->block) {
            if (found)
                break;
            inblock = 0;
        }
    }
    return found;
}

/* cell (ei, ej) enters: the cycle it closes in the tree, the flow shifted around it by the
 * smallest decreasing flow theta, whose cell leaves */
static void nsx_pivot(nsx_ws *w, size_t ei, size_t ej)
{
    size_t N = w->N, *pth = w->pth, *pth2 = w->pth2, *depth = w->depth;
    /* tree path from column node ej to row node ei: pth (from ej up), pth2 (from ei up) */
    size_t x = N + ej, y = ei, n1 = 0, n2 = 0;
    while (depth[x] > depth[y]) {
        pth[n1++] = w->pedge[x];
        x = w->parent[x];
    }
    while (depth[y] > depth[x]) {
        pth2[n2++] = w->pedge[y];
        y = w->parent[y];
    }
    while (x != y) {
        pth[n1++] = w->pedge[x];
        x = w->parent[x];
        pth2[n2++] = w->pedge[y];
        y = w->parent[y];
    }
    for (size_t t = 0; t < n2; t++)   /* append pth2 reversed: the path ends at ei */
        pth[n1 + t] = pth2[n2 - 1 - t];
    size_t len = n1 + n2;             /* odd; even positions lose theta */
    size_t leave = pth[0];
    lexv theta = w->flow[leave];
    for (size_t t = 2; t < len; t += 2)
        if (lex_lt(w->flow[pth[t]], theta, w->tolx)) {
            theta = w->flow[pth[t]];
            leave = pth[t];
        }
    for (size_t t = 0; t < len; t++)
        w->flow[pth[t]] = (t % 2 == 0) ? lex_sub(w->flow[pth[t]], theta) : lex_add(w->flow[pth[t]], theta);
    w->isb[w->bi[leave] + w->bj[leave] * N] = 0;
    w->bi[leave] = ei;
    w->bj[leave] = ej;
    w->flow[leave] = theta;
    w->isb[ei + ej * N] = leave + 1;
}

qd_status qd_ot_simplex(const double *C, size_t N, size_t M, const double *a, const double *b,
                        double *P, double *cost, qd_err *e)
{
    double ta, tb;
    qd_status st = check_problem(C, N, M, a, b, &ta, &tb, e);
    if (st)
        return st;
    nsx_ws w = {.C = C, .N = N, .M = M, .K = N + M - 1, .V = N + M, .NM = N * M};
    if (!nsx_alloc(&w)) {
        nsx_free(&w);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu transport problem", N, M);
    }
    nsx_supplies(&w, a, b, ta, tb);
    nsx_northwest(&w);
    size_t max_pivots = 20 * w.NM + 10 * w.V + 1000, pivots = 0;
    w.block = (size_t)sqrt((double)w.NM);
    w.block = w.block < 16 ? 16 : w.block;
    for (;;) {
        if (!nsx_tree(&w)) {
            st = qd_fail(e, QD_ENUMERIC, "transport simplex: basis is not a spanning tree");
            break;
        }
        size_t ei = 0, ej = 0;
        if (!nsx_price(&w, &ei, &ej))
            break;
        if (++pivots > max_pivots) {
            st = qd_fail(e, QD_ENUMERIC, "transport simplex did not finish in %zu pivots", max_pivots);
            break;
        }
        nsx_pivot(&w, ei, ej);
    }
    if (st == QD_OK) {
        memset(P, 0, sizeof(double) * w.NM);
        double s = 0;
        for (size_t k = 0; k < w.K; k++) {
            double f = w.flow[k].x / w.scale;
            if (f < 0)
                f = 0;   /* rounding of an x part that is exactly zero in exact arithmetic */
            P[w.bi[k] + w.bj[k] * N] = f;
        }
        for (size_t i = 0; i < w.NM; i++)
            s += P[i] * C[i];
        *cost = s;
    }
    nsx_free(&w);
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

/* The Sinkhorn iteration's state: problem, normalised weights (w) and their logs (l),
 * log-domain potentials f, g, scalings u, v (absorbed into f, g and K from time to time),
 * row sums s, column sums t, the absorbed kernel K. */
typedef struct {
    const double *C;
    size_t N, M;
    double eps;
    double *la, *lb, *wa, *wb, *f, *g, *u, *v, *s, *t, *tmp, *K;
} sinkhorn_ws;

static void sk_free(sinkhorn_ws *w)
{
    double **bufs[] = {&w->la, &w->lb, &w->wa, &w->wb, &w->f, &w->g, &w->u, &w->v, &w->s, &w->t, &w->tmp, &w->K};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        qd_free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

static int sk_alloc(sinkhorn_ws *w)
{
    size_t N = w->N, M = w->M;
    w->la = qd_malloc(sizeof(double) * N), w->lb = qd_malloc(sizeof(double) * M);
    w->wa = qd_malloc(sizeof(double) * N), w->wb = qd_malloc(sizeof(double) * M);
    w->f = qd_calloc(N, sizeof(double)), w->g = qd_calloc(M, sizeof(double));
    w->u = qd_malloc(sizeof(double) * N), w->v = qd_malloc(sizeof(double) * M);
    w->s = qd_malloc(sizeof(double) * N), w->t = qd_malloc(sizeof(double) * M);
    w->tmp = qd_malloc(sizeof(double) * (N > M ? N : M));
    w->K = qd_malloc(sizeof(double) * N * M);
    return w->la && w->lb && w->wa && w->wb && w->f && w->g && w->u && w->v && w->s && w->t &&
           w->tmp && w->K;
}

/* K recomputed from the potentials, scalings back to 1 */
static void sk_restart(sinkhorn_ws *w)
{
    absorb_kernel(w->C, w->N, w->M, w->f, w->g, w->eps, w->K);
    for (size_t i = 0; i < w->N; i++)
        w->u[i] = 1;
    for (size_t j = 0; j < w->M; j++)
        w->v[j] = 1;
}

/* the scalings absorbed into the potentials: f += eps log u, g += eps log v */
static void sk_absorb(sinkhorn_ws *w)
{
    for (size_t i = 0; i < w->N; i++)
        w->f[i] += w->eps * log(w->u[i]);
    for (size_t j = 0; j < w->M; j++)
        w->g[j] += w->eps * log(w->v[j]);
}

/* s = K (b v); returns the L1 error of the row marginals a_i u_i s_i (the columns are exact
 * after each v update, so the stopping test is free); *bad if a row sum underflowed */
static double sk_rows(sinkhorn_ws *w, int *bad)
{
    size_t N = w->N, M = w->M;
    for (size_t i = 0; i < N; i++)
        w->s[i] = 0;
    for (size_t j = 0; j < M; j++) {
        double wv = w->wb[j] * w->v[j];
        const double *Kj = w->K + j * N;
        for (size_t i = 0; i < N; i++)
            w->s[i] += Kj[i] * wv;
    }
    double err = 0;
    *bad = 0;
    for (size_t i = 0; i < N; i++) {
        if (w->wa[i] > 0)
            err += w->wa[i] * fabs(w->u[i] * w->s[i] - 1.0);
        *bad |= !(w->s[i] > 0) || !isfinite(w->s[i]);
    }
    return err;
}

/* u = 1/s, then t = K^T (a u), v = 1/t; returns 1 if a scaling left [1e-30, 1e30] or a
 * column sum is not a positive number (then the caller absorbs) */
static int sk_scale(sinkhorn_ws *w)
{
    size_t N = w->N, M = w->M;
    for (size_t i = 0; i < N; i++) {
        w->u[i] = 1.0 / w->s[i];
        w->tmp[i] = w->wa[i] * w->u[i];
    }
    int big = 0;
    for (size_t j = 0; j < M; j++) {
        const double *Kj = w->K + j * N;
        double acc = 0;
        for (size_t i = 0; i < N; i++)
            acc += Kj[i] * w->tmp[i];
        w->t[j] = acc;
        if (!(acc > 0) || !isfinite(acc))
            big = 1;
        else
            w->v[j] = 1.0 / acc;
    }
    for (size_t i = 0; i < N && !big; i++)
        big = w->u[i] > 1e30 || w->u[i] < 1e-30;
    for (size_t j = 0; j < M && !big; j++)
        big = w->v[j] > 1e30 || w->v[j] < 1e-30;
    return big;
}

/* the plan P_ij = a_i b_j exp((f_i + g_j - C_ij)/eps), its cost, and the dual value */
static double sk_plan(const sinkhorn_ws *w, double *P, double *cost)
{
    size_t N = w->N, M = w->M;
    double val = 0, cst = 0;
    for (size_t j = 0; j < M; j++)
        for (size_t i = 0; i < N; i++) {
            double pij = exp(w->la[i] + w->lb[j] + (w->f[i] + w->g[j] - w->C[i + j * N]) / w->eps);
            P[i + j * N] = pij;
            cst += pij * w->C[i + j * N];
        }
    for (size_t i = 0; i < N; i++)
        if (w->wa[i] > 0)
            val += w->wa[i] * w->f[i];
    for (size_t j = 0; j < M; j++)
        if (w->wb[j] > 0)
            val += w->wb[j] * w->g[j];
    *cost = cst;
    return val;
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
    sinkhorn_ws w = {.C = C, .N = N, .M = M};
    if (!sk_alloc(&w)) {
        sk_free(&w);
        return qd_fail(e, QD_ENOMEM, "not enough memory for a %zu x %zu Sinkhorn problem", N, M);
    }
    /* normalised weights (both sum to 1) */
    for (size_t i = 0; i < N; i++) {
        w.wa[i] = a ? a[i] / ta : 1.0 / (double)N;
        w.la[i] = log(w.wa[i]);
    }
    for (size_t j = 0; j < M; j++) {
        w.wb[j] = b ? b[j] / tb : 1.0 / (double)M;
        w.lb[j] = log(w.wb[j]);
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
    for (size_t i = 0; i < N * M; i++) {
        cmin = C[i] < cmin ? C[i] : cmin;
        cmax = C[i] > cmax ? C[i] : cmax;
    }
    double eps_final = eps, tol_final = tol;
    w.eps = cmax - cmin > eps_final ? cmax - cmin : eps_final;
    tol = w.eps > eps_final ? fmax(tol_final, 1e-6) : tol_final;
    double err = INFINITY;
    size_t it = 0;
    int conv = 0, bad;
    /* start: one log-domain g step from f = 0, then the scaled form */
    lse_g(C, N, M, w.la, w.f, w.eps, w.g, w.tmp);
    sk_restart(&w);
    while (it < max_iter) {
        it++;
        err = sk_rows(&w, &bad);
        if (bad) {
            /* an underflowed row sum: absorb and take log-domain steps instead */
            sk_absorb(&w);
            lse_f(C, N, M, w.lb, w.g, w.eps, w.f, w.tmp);
            lse_g(C, N, M, w.la, w.f, w.eps, w.g, w.tmp);
            sk_restart(&w);
            err = INFINITY;
            continue;
        }
        if (err <= tol) {
            if (w.eps <= eps_final) {
                conv = 1;
                break;
            }
            sk_absorb(&w);   /* the next stage: eps halved */
            w.eps = w.eps * 0.5 > eps_final ? w.eps * 0.5 : eps_final;
            if (w.eps <= eps_final)
                tol = tol_final;
            sk_restart(&w);
            continue;
        }
        if (sk_scale(&w)) {
            /* absorb u into the potentials; redo g in the log domain */
            for (size_t i = 0; i < N; i++)
                w.f[i] += w.eps * log(w.u[i]);
            lse_g(C, N, M, w.la, w.f, w.eps, w.g, w.tmp);
            sk_restart(&w);
        }
    }
    sk_absorb(&w);
    w.eps = eps_final;
    double cst;
    *value = sk_plan(&w, P, &cst);
    if (info) {
        info->iters = it;
        info->err = err;
        info->converged = conv;
        info->cost = cst;
    }
    sk_free(&w);
    return st;
}
