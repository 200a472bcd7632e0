/* qd_simd.h — a small lane-vector layer for kernels whose lanes are independent (members of
 * an ensemble side by side, "structure of arrays").
 *
 * qd_vd holds QD_VL doubles: 8 with AVX-512F, 4 with AVX2+FMA, else 8 in GCC vector
 * extensions (no intrinsics: the portable kernel set). Only element-wise operations are
 * offered, and the fused multiply-adds are single-rounding FMAs in every variant (fma()
 * in the portable one), so a lane's result is bitwise the same
 * whichever variant the compiler was allowed to use and however many lanes are active: the
 * lane width changes the blocking, never a member's arithmetic. */
#ifndef QD_SIMD_H
#define QD_SIMD_H

#include <math.h>
#include <string.h>
#include "qd.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define QD_VL 8
typedef __m512d qd_vd;
#define qd_vload(p) _mm512_loadu_pd(p)
#define qd_vstore(p, v) _mm512_storeu_pd((p), (v))
#define qd_vset1(x) _mm512_set1_pd(x)
#define qd_vzero() _mm512_setzero_pd()
#define qd_vmul(a, b) _mm512_mul_pd((a), (b))
#define qd_vfma(a, b, c) _mm512_fmadd_pd((a), (b), (c))    /* a b + c */
#define qd_vfms(a, b, c) _mm512_fmsub_pd((a), (b), (c))    /* a b - c */
#define qd_vfnma(a, b, c) _mm512_fnmadd_pd((a), (b), (c))  /* c - a b */
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define QD_VL 4
typedef __m256d qd_vd;
#define qd_vload(p) _mm256_loadu_pd(p)
#define qd_vstore(p, v) _mm256_storeu_pd((p), (v))
#define qd_vset1(x) _mm256_set1_pd(x)
#define qd_vzero() _mm256_setzero_pd()
#define qd_vmul(a, b) _mm256_mul_pd((a), (b))
#define qd_vfma(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define qd_vfms(a, b, c) _mm256_fmsub_pd((a), (b), (c))
#define qd_vfnma(a, b, c) _mm256_fnmadd_pd((a), (b), (c))
#else
/* no intrinsics: GCC vector extensions of 8 doubles, element-wise fma() (libm's, exact).
 * Where the compiler may use FMA instructions (arm64, or x86-64 built for a newer CPU)
 * they become vector FMAs; in the baseline x86-64 build each is a call into libm, which
 * glibc sends to the FMA instruction when the CPU has one. 8 lanes, as with AVX-512, and
 * not 4 as with AVX2: so that `make check` on an AVX2 machine compares an 8-lane set (this
 * one) with a 4-lane set (avx2) and catches any sum whose order follows the lane width. */
#define QD_VL 8
typedef double qd_vd __attribute__((vector_size(64)));
static inline qd_vd qd_vload(const double *p)
{
    qd_vd v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void qd_vstore(double *p, qd_vd v)
{
    memcpy(p, &v, sizeof v);
}
static inline qd_vd qd_vset1(double x)
{
    return (qd_vd){x, x, x, x, x, x, x, x};
}
static inline qd_vd qd_vzero(void)
{
    return (qd_vd){0};
}
static inline qd_vd qd_vmul(qd_vd a, qd_vd b)
{
    return a * b;
}
static inline qd_vd qd_vfma(qd_vd a, qd_vd b, qd_vd c)    /* a b + c */
{
    qd_vd r;
    for (int l = 0; l < 8; l++)
        r[l] = fma(a[l], b[l], c[l]);
    return r;
}
static inline qd_vd qd_vfms(qd_vd a, qd_vd b, qd_vd c)    /* a b - c */
{
    return qd_vfma(a, b, -c);
}
static inline qd_vd qd_vfnma(qd_vd a, qd_vd b, qd_vd c)   /* c - a b */
{
    return qd_vfma(-a, b, c);
}
#endif

/* QD_VREGS32: 32 vector registers of QD_VL doubles (AVX-512); tile sizes follow it */
#if defined(__AVX512F__)
#define QD_VREGS32 1
#else
#define QD_VREGS32 0
#endif

#if defined(__AVX512F__)
/* the 8 x 8 transpose of rows r[0..8) in place (24 shuffles) */
static inline __attribute__((always_inline)) void qd_transpose8(__m512d *r)
{
    __m512d t[8], s[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm512_unpacklo_pd(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_pd(r[2 * k], r[2 * k + 1]);
    }
    for (int o = 0; o < 2; o++) {   /* o = 0: even elements (from unpacklo), 1: odd */
        s[0] = _mm512_shuffle_f64x2(t[o], t[o + 2], 0x88);
        s[1] = _mm512_shuffle_f64x2(t[o + 4], t[o + 6], 0x88);
        s[2] = _mm512_shuffle_f64x2(t[o], t[o + 2], 0xdd);
        s[3] = _mm512_shuffle_f64x2(t[o + 4], t[o + 6], 0xdd);
        r[o] = _mm512_shuffle_f64x2(s[0], s[1], 0x88);       /* element o */
        r[o + 4] = _mm512_shuffle_f64x2(s[0], s[1], 0xdd);   /* element o + 4 */
        r[o + 2] = _mm512_shuffle_f64x2(s[2], s[3], 0x88);   /* element o + 2 */
        r[o + 6] = _mm512_shuffle_f64x2(s[2], s[3], 0xdd);   /* element o + 6 */
    }
}
#endif

#if QD_VL == 4 && defined(__AVX2__)
/* the 4 x 4 transpose of rows r[0..4) in place */
static inline __attribute__((always_inline)) void qd_transpose4(__m256d *r)
{
    __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}
#endif

/* Members a[0..nl) (d amplitudes each, nl <= QD_VL) into the block S of 2d rows x QD_VL
 * lanes: S[i*QD_VL + l] = Re a_l[i], S[(d + i)*QD_VL + l] = Im a_l[i]; lanes >= nl are 0. */
static inline void qd_soa_in(double *S, const qd_c *a, size_t d, size_t nl)
{
#if defined(__AVX512F__)
    if (d >= 4) {
        for (size_t c = 0; c < d / 4; c++) {
            __m512d r[8];
            for (size_t l = 0; l < 8; l++)
                r[l] = l < nl ? _mm512_loadu_pd((const double *)(a + l * d + 4 * c))
                              : _mm512_setzero_pd();
            qd_transpose8(r);
            for (int e = 0; e < 8; e++)   /* element e: amplitude 4c + e/2, Re or Im */
                _mm512_storeu_pd(S + ((e & 1) * d + 4 * c + e / 2) * 8, r[e]);
        }
        return;
    }
#elif QD_VL == 4 && defined(__AVX2__)
    if (d >= 2) {   /* 2 amplitudes of 4 members a step: row e = (Re, Im, Re, Im)[e] */
        for (size_t i = 0; i < d; i += 2) {
            __m256d r[4];
            for (size_t l = 0; l < 4; l++)
                r[l] = l < nl ? _mm256_loadu_pd((const double *)(a + l * d + i))
                              : _mm256_setzero_pd();
            qd_transpose4(r);
            _mm256_storeu_pd(S + i * 4, r[0]);
            _mm256_storeu_pd(S + (d + i) * 4, r[1]);
            _mm256_storeu_pd(S + (i + 1) * 4, r[2]);
            _mm256_storeu_pd(S + (d + i + 1) * 4, r[3]);
        }
        return;
    }
#endif
    for (size_t l = 0; l < QD_VL; l++)
        for (size_t i = 0; i < d; i++) {
            S[i * QD_VL + l] = l < nl ? creal(a[l * d + i]) : 0;
            S[(d + i) * QD_VL + l] = l < nl ? cimag(a[l * d + i]) : 0;
        }
}

/* the block S (qd_soa_in's layout) back to members a[0..nl) */
static inline void qd_soa_out(const double *S, qd_c *a, size_t d, size_t nl)
{
#if defined(__AVX512F__)
    if (d >= 4) {
        for (size_t c = 0; c < d / 4; c++) {
            __m512d r[8];
            for (int e = 0; e < 8; e++)
                r[e] = _mm512_loadu_pd(S + ((e & 1) * d + 4 * c + e / 2) * 8);
            qd_transpose8(r);
            for (size_t l = 0; l < nl; l++)
                _mm512_storeu_pd((double *)(a + l * d + 4 * c), r[l]);
        }
        return;
    }
#elif QD_VL == 4 && defined(__AVX2__)
    if (d >= 2) {
        for (size_t i = 0; i < d; i += 2) {
            __m256d r[4] = {_mm256_loadu_pd(S + i * 4), _mm256_loadu_pd(S + (d + i) * 4),
                            _mm256_loadu_pd(S + (i + 1) * 4), _mm256_loadu_pd(S + (d + i + 1) * 4)};
            qd_transpose4(r);
            for (size_t l = 0; l < nl; l++)
                _mm256_storeu_pd((double *)(a + l * d + i), r[l]);
        }
        return;
    }
#endif
    for (size_t l = 0; l < nl; l++)
        for (size_t i = 0; i < d; i++)
            a[l * d + i] = CMPLX(S[i * QD_VL + l], S[(d + i) * QD_VL + l]);
}

/* A complex 2x2 M (column-major) on the amplitude pairs (i, i + b), bit b clear, of a block
 * in qd_soa_in's layout (d amplitudes: rows i Re, d + i Im) */
static inline void qd_soa_2x2(double *S, size_t d, size_t b, const qd_c *M)
{
    const qd_vd ar = qd_vset1(creal(M[0])), ai = qd_vset1(cimag(M[0])),
                br = qd_vset1(creal(M[1])), bi = qd_vset1(cimag(M[1])),
                cr = qd_vset1(creal(M[2])), ci = qd_vset1(cimag(M[2])),
                dr = qd_vset1(creal(M[3])), di = qd_vset1(cimag(M[3]));
    for (size_t i = 0; i < d; i++) {
        if (i & b)
            continue;
        double *pur = S + i * QD_VL, *pui = S + (d + i) * QD_VL;
        double *pvr = S + (i + b) * QD_VL, *pvi = S + (d + i + b) * QD_VL;
        qd_vd ur = qd_vload(pur), ui = qd_vload(pui), vr = qd_vload(pvr), vi = qd_vload(pvi);
        qd_vd xr = qd_vfnma(ci, vi, qd_vfma(cr, vr, qd_vfnma(ai, ui, qd_vmul(ar, ur))));
        qd_vd xi = qd_vfma(ci, vr, qd_vfma(cr, vi, qd_vfma(ai, ur, qd_vmul(ar, ui))));
        qd_vd yr = qd_vfnma(di, vi, qd_vfma(dr, vr, qd_vfnma(bi, ui, qd_vmul(br, ur))));
        qd_vd yi = qd_vfma(di, vr, qd_vfma(dr, vi, qd_vfma(bi, ur, qd_vmul(br, ui))));
        qd_vstore(pur, xr);
        qd_vstore(pui, xi);
        qd_vstore(pvr, yr);
        qd_vstore(pvi, yi);
    }
}

#endif
