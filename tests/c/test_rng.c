/* test_rng.c — the generator: determinism, substreams, moments; the SSE's Gaussians. */
#include "harness.h"
/* 64-byte vectors between inline helpers only (as the Makefile says for the kernel sets) */
#pragma GCC diagnostic ignored "-Wpsabi"
#include "qd_lanemath.h"
#include <math.h>
#include <string.h>

QD_TEST(rng_deterministic)
{
    qd_rng a, b;
    qd_rng_init(&a, 42);
    qd_rng_init(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++)
        same &= qd_rng_u64(&a) == qd_rng_u64(&b);
    CHECK(same, "same seed gives the same stream");
    qd_rng_init(&b, 43);
    CHECK(qd_rng_u64(&a) != qd_rng_u64(&b), "different seeds differ");
}

QD_TEST(rng_substreams)
{
    qd_rng r;
    qd_rng_init(&r, 7);
    qd_rng s1 = qd_rng_sub(&r, 1), s1b = qd_rng_sub(&r, 1), s2 = qd_rng_sub(&r, 2);
    CHECK(qd_rng_u64(&s1) == qd_rng_u64(&s1b), "substream k is reproducible");
    CHECK(qd_rng_u64(&s1) != qd_rng_u64(&s2), "substreams differ");
    uint64_t before = r.ctr;
    qd_rng sp = qd_rng_split(&r);
    CHECK(r.ctr == before + 1, "split advances the parent");
    CHECK(sp.key != r.key, "split has a new key");
}

QD_TEST(rng_moments)
{
    qd_rng r;
    qd_rng_init(&r, 1);
    double m = 0, v = 0, mu = 0;
    int n = 200000, inrange = 1;
    for (int i = 0; i < n; i++) {
        double x = qd_rng_normal(&r);
        m += x;
        v += x * x;
        double u = qd_rng_uniform(&r);
        inrange &= u >= 0 && u < 1;
        mu += u;
    }
    CHECK(inrange, "uniform in [0,1)");
    CHECK_NEAR(m / n, 0, 0.01, "normal mean");
    CHECK_NEAR(v / n, 1, 0.01, "normal variance");
    CHECK_NEAR(mu / n, 0.5, 0.005, "uniform mean");
}

/* qd_rng_gauss: qd_lanemath.h's Box-Muller. The lane code compiled here (the test's
 * baseline flags) against the library's active kernel set: the same bits; its log and
 * sin/cos within 2 ulp of libm's; the draws within 1e-12 of qd_rng_normal's (the same
 * uniforms but for their 53rd bit); the moments of N(0, 1). */
static double ulps(double got, double want)
{
    if (got == want)
        return 0;
    double u = nextafter(fabs(want), INFINITY) - fabs(want);
    return fabs(got - want) / u;
}

QD_TEST(rng_gauss_lanes)
{
    qd_rng base;
    qd_rng_init(&base, 2024);
    /* QD_LV streams side by side, 16000 pairs in all, against qd_rng_gauss one at a time */
    int same = 1;
    double worst_normal = 0, s1 = 0, s2 = 0, s4 = 0;
    size_t cnt = 0;
    qd_lu key, ctr;
    qd_rng one[QD_LV], old[QD_LV];
    for (int l = 0; l < QD_LV; l++) {
        one[l] = old[l] = qd_rng_sub(&base, (uint64_t)l);
        key[l] = one[l].key;
        ctr[l] = 0;
    }
    for (int i = 0; i < 16000 / QD_LV; i++) {   /* 32000 draws whatever the width */
        qd_lv g0, g1;
        qd_l_gauss_pair(key, &ctr, &g0, &g1);
        for (int l = 0; l < QD_LV; l++) {
            double a = qd_rng_gauss(&one[l]), b = qd_rng_gauss(&one[l]);
            same &= memcmp(&a, &g0[l], 8) == 0 && memcmp(&b, &g1[l], 8) == 0;
            worst_normal = fmax(worst_normal, fabs(a - qd_rng_normal(&old[l])));
            worst_normal = fmax(worst_normal, fabs(b - qd_rng_normal(&old[l])));
            s1 += a + b;
            s2 += a * a + b * b;
            s4 += a * a * a * a + b * b * b * b;
            cnt += 2;
        }
    }
    CHECK(same, "lane pairs (this file's build) = qd_rng_gauss (the library's kernel set) bit for bit");
    CHECK(worst_normal < 1e-12, "qd_rng_gauss within 1e-12 of qd_rng_normal: %g", worst_normal);
    double m = s1 / (double)cnt, v = s2 / (double)cnt, k4 = s4 / (double)cnt;
    CHECK(fabs(m) < 0.02 && fabs(v - 1) < 0.03 && fabs(k4 - 3) < 0.15, "moments %g %g %g", m, v, k4);
    /* log on (0, 1] and beyond, sin/cos of 2 pi u, against libm */
    double wl = 0, ws = 0, wc = 0;
    qd_rng r;
    qd_rng_init(&r, 9);
    for (int i = 0; i < 20000; i++) {
        qd_lv x, u, sn, cs;
        for (int l = 0; l < QD_LV; l++) {
            double e = (double)(int)(qd_rng_uniform(&r) * 80) - 70;   /* 2^-70 .. 2^9 */
            x[l] = ldexp(1 + qd_rng_uniform(&r), (int)e);
            u[l] = qd_rng_uniform(&r);
        }
        if (i < 4) {   /* the quarter points and log 1 */
            x[0] = 1;
            u[0] = 0.25 * i;
        }
        qd_lv lg = qd_l_log(x);
        qd_l_sincos2pi(u, &sn, &cs);
        for (int l = 0; l < QD_LV; l++) {
            wl = fmax(wl, ulps(lg[l], log(x[l])));
            /* reference: the exact quarter split, then libm on |x| <= pi/4 */
            double t4 = 4 * u[l], q = nearbyint(t4), xr = (t4 - q) * (M_PI / 2);
            double sr = sin(xr), cr = cos(xr), S, C;
            switch ((int)q & 3) {
            case 0: S = sr; C = cr; break;
            case 1: S = cr; C = -sr; break;
            case 2: S = -sr; C = -cr; break;
            default: S = -cr; C = sr; break;
            }
            ws = fmax(ws, ulps(sn[l], S));
            wc = fmax(wc, ulps(cs[l], C));
        }
    }
    CHECK(wl <= 2 && ws <= 2 && wc <= 2, "log / sin / cos within 2 ulp of libm: %g %g %g", wl, ws, wc);
}
