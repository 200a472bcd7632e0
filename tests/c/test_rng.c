/* test_rng.c — the generator: determinism, substreams, moments. */
#include "harness.h"
#include <math.h>

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
