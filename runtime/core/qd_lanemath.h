/* qd_lanemath.h — element-wise maths on QD_LV doubles side by side (members of an ensemble
 * in SIMD lanes), written once in GCC vector extensions so that every kernel set compiles
 * the same operations: no fused multiply-adds (the kernels are built with
 * -ffp-contract=off, and scripts/check_contraction.sh checks it), integer tricks instead of
 * conversions, IEEE division and square root. A lane's result therefore has the same bits in
 * the portable, avx2 and avx512 sets, whatever the lane width, and does not depend on the C
 * library's libm (whose last bits can differ between versions and CPUs).
 *
 * Used for the SSE's Gaussian increments (sse_lanes.c, rng.c's qd_rng_gauss): Box-Muller on
 * two 52-bit uniforms of the counter-based stream (rng.c), with
 *   log x   x = 2^e m, m in [sqrt(1/2), sqrt(2)): log m = 2 atanh(s), s = (m-1)/(m+1),
 *           |s| <= 0.1716, the series to s^21 (truncation < 1e-17 relative), e ln 2 in
 *           two parts (Cody-Waite);
 *   sin, cos of 2 pi u, u in [0, 1): u = q/4 + r exactly (q the nearest quarter), x = 2 pi r
 *           in [-pi/4, pi/4], Taylor series to x^17 / x^18 (truncation < 1e-17), then
 *           the quadrant's swap and signs.
 * Accuracy (tests/c/test_dynamics.c): within 2 ulp of libm's log, sin, cos on these ranges. */
#ifndef QD_LANEMATH_H
#define QD_LANEMATH_H

#include <stdint.h>
#include <string.h>
#include "qd.h"

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

/* QD_LV: the lanes of these vectors — the machine's vector width (8 with AVX-512, 4 with AVX2,
 * 2 in the portable set: SSE2's registers; wider generic vectors there would be split into
 * 128-bit pieces and spilled). Every lane computes alone, so the width changes the blocking,
 * never a lane's bits. */
#if defined(__AVX512F__)
#define QD_LV 8
#elif defined(__AVX2__)
#define QD_LV 4
#else
#define QD_LV 2
#endif
typedef double qd_lv __attribute__((vector_size(QD_LV * 8)));
typedef uint64_t qd_lu __attribute__((vector_size(QD_LV * 8)));
typedef int64_t qd_li __attribute__((vector_size(QD_LV * 8)));

static inline __attribute__((always_inline)) qd_lv qd_l_set1(double x)
{
    qd_lv v;
    for (int l = 0; l < QD_LV; l++)
        v[l] = x;
    return v;
}

/* bitwise select: m (all ones or zero per lane) ? a : b */
static inline __attribute__((always_inline)) qd_lv qd_l_select(qd_li m, qd_lv a, qd_lv b)
{
    return (qd_lv)(((qd_lu)a & (qd_lu)m) | ((qd_lu)b & ~(qd_lu)m));
}

/* 1 if any lane of the mask m is nonzero */
static inline __attribute__((always_inline)) int qd_l_any(qd_li m)
{
#if defined(__AVX512F__) && QD_LV == 8
    return _mm512_test_epi64_mask((__m512i)m, (__m512i)m) != 0;
#elif defined(__AVX__) && QD_LV == 4
    return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#else
    int64_t r = 0;
    for (int l = 0; l < QD_LV; l++)
        r |= m[l];
    return r != 0;
#endif
}

static inline __attribute__((always_inline)) qd_lv qd_l_sqrt(qd_lv x)
{
#if defined(__AVX512F__) && QD_LV == 8
    return (qd_lv)_mm512_sqrt_pd((__m512d)x);
#elif defined(__AVX__) && QD_LV == 4
    return (qd_lv)_mm256_sqrt_pd((__m256d)x);
#else
    qd_lv r;
    for (int l = 0; l < QD_LV; l++)
        r[l] = __builtin_sqrt(x[l]);
    return r;
#endif
}

/* splitmix64's finaliser (rng.c's mix64), lane-wise */
static inline __attribute__((always_inline)) qd_lu qd_l_mix64(qd_lu z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* natural log of x in [2^-1022, 1] (normal, positive, finite) */
static inline __attribute__((always_inline)) qd_lv qd_l_log(qd_lv x)
{
    const qd_lu b = (qd_lu)x;
    qd_lv m = (qd_lv)((b & 0x000FFFFFFFFFFFFFULL) | 0x3FF0000000000000ULL);   /* [1, 2) */
    qd_lu big = (qd_lu)(m > 0x1.6a09e667f3bcdp+0);                           /* m > sqrt 2 */
    m = (qd_lv)((qd_lu)m - (big & 0x0010000000000000ULL));                    /* m / 2: exact */
    qd_lu eb = (b >> 52) + (big & 1);                                           /* biased exponent */
    qd_lv e = (qd_lv)(eb | 0x4330000000000000ULL) - (0x1p52 + 1023.0);          /* exact */
    qd_lv f = m - 1.0;
    qd_lv s = f / (f + 2.0);
    qd_lv z = s * s;
    qd_lv p = qd_l_set1(1.0 / 21);
    p = p * z + 1.0 / 19;
    p = p * z + 1.0 / 17;
    p = p * z + 1.0 / 15;
    p = p * z + 1.0 / 13;
    p = p * z + 1.0 / 11;
    p = p * z + 1.0 / 9;
    p = p * z + 1.0 / 7;
    p = p * z + 1.0 / 5;
    p = p * z + 1.0 / 3;
    qd_lv t = s * (p * z);   /* 2 atanh(s) = 2 s + 2 s (z/3 + z^2/5 + ...) */
    const double ln2_hi = 0x1.62e42fee00000p-1, ln2_lo = 0x1.a39ef35793c76p-33;
    return e * ln2_hi + ((t + t + e * ln2_lo) + (s + s));
}

/* sin(2 pi u) and cos(2 pi u) for u in [0, 1) */
static inline __attribute__((always_inline)) void qd_l_sincos2pi(qd_lv u, qd_lv *sn, qd_lv *cs)
{
    const double magic = 0x1.8p52;   /* adding it rounds to an integer, kept in the low bits */
    qd_lv t = u * 4.0;               /* exact */
    qd_lv tm = t + magic;
    qd_lu q = (qd_lu)tm & 3;         /* the quadrant: the nearest integer mod 4 */
    qd_lv r = t - (tm - magic);      /* exact, in [-1/2, 1/2] */
    qd_lv x = r * 0x1.921fb54442d18p+0;   /* (pi / 2) r */
    qd_lv z = x * x;
    qd_lv ps = qd_l_set1(1.0 / 355687428096000.0);       /* 1/17! */
    ps = ps * z - 1.0 / 1307674368000.0;                  /* 1/15! */
    ps = ps * z + 1.0 / 6227020800.0;
    ps = ps * z - 1.0 / 39916800.0;
    ps = ps * z + 1.0 / 362880.0;
    ps = ps * z - 1.0 / 5040.0;
    ps = ps * z + 1.0 / 120.0;
    ps = ps * z - 1.0 / 6.0;
    qd_lv s = x + x * (ps * z);
    qd_lv pc = qd_l_set1(-1.0 / 6402373705728000.0);     /* -1/18! */
    pc = pc * z + 1.0 / 20922789888000.0;                 /* 1/16! */
    pc = pc * z - 1.0 / 87178291200.0;
    pc = pc * z + 1.0 / 479001600.0;
    pc = pc * z - 1.0 / 3628800.0;
    pc = pc * z + 1.0 / 40320.0;
    pc = pc * z - 1.0 / 720.0;
    pc = pc * z + 1.0 / 24.0;
    qd_lv c = (1.0 - 0.5 * z) + (z * z) * pc;
    qd_li swap = (qd_li)(0 - (q & 1));
    qd_lv s2 = qd_l_select(swap, c, s), c2 = qd_l_select(swap, s, c);
    *sn = (qd_lv)((qd_lu)s2 ^ ((q >> 1) << 63));
    *cs = (qd_lv)((qd_lu)c2 ^ (((q ^ (q >> 1)) & 1) << 63));
}

/* One Box-Muller pair per lane from the counter-based streams with keys `key`, counters
 * `*ctr` (advanced by 2): outputs ctr+1 and ctr+2 of the stream give u1 = 1 - U in (0, 1]
 * and U2 in [0, 1) (52-bit uniforms), and g0 = sqrt(-2 ln u1) cos(2 pi U2),
 * g1 = sqrt(-2 ln u1) sin(2 pi U2). */
static inline __attribute__((always_inline)) void qd_l_gauss_pair(qd_lu key, qd_lu *ctr, qd_lv *g0,
                                                                  qd_lv *g1)
{
    const uint64_t golden = 0x9E3779B97F4A7C15ULL;
    qd_lu c1 = *ctr + 1, c2 = *ctr + 2;
    *ctr = c2;
    qd_lu h1 = qd_l_mix64(key + c1 * golden), h2 = qd_l_mix64(key + c2 * golden);
    qd_lv m1 = (qd_lv)((h1 >> 12) | 0x3FF0000000000000ULL);   /* 1 + U1 in [1, 2) */
    qd_lv u2 = (qd_lv)((h2 >> 12) | 0x3FF0000000000000ULL) - 1.0;
    qd_lv u1 = 2.0 - m1;                                         /* 1 - U1: exact, (0, 1] */
    qd_lv rad = qd_l_sqrt(-2.0 * qd_l_log(u1));
    qd_lv sn, cs;
    qd_l_sincos2pi(u2, &sn, &cs);
    *g0 = rad * cs;
    *g1 = rad * sn;
}

/* log1p(x) for x >= 0 finite: u = 1 + x, log(u) x / (u - 1) (exact when u == 1: x) —
 * the rounding of 1 + x is divided out (Goldberg 1991, Theorem 4) */
static inline __attribute__((always_inline)) qd_lv qd_l_log1p_pos(qd_lv x)
{
    qd_lv u = 1.0 + x, um1 = u - 1.0;
    qd_li one = um1 == 0;
    qd_lv r = qd_l_log(u) * (x / qd_l_select(one, qd_l_set1(1), um1));
    return qd_l_select(one, x, r);
}

/* atanh(z) = sign(z) log1p(2|z| / (1 - |z|)) / 2 for |z| < 1 (the caller checks; qd.Vector's
 * atanh, vmath.c, and feedback laws, qd_sse_law.h) */
static inline __attribute__((always_inline)) qd_lv qd_l_atanh(qd_lv z)
{
    qd_lu sign = (qd_lu)z & 0x8000000000000000ULL;
    qd_lv a = (qd_lv)((qd_lu)z & 0x7FFFFFFFFFFFFFFFULL);
    qd_lv r = 0.5 * qd_l_log1p_pos((a + a) / (1.0 - a));
    return (qd_lv)((qd_lu)r | sign);
}

#endif
