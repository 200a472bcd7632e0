/* rng.c — counter-based random numbers.
 * Output i of a stream with key K is splitmix64's finaliser applied to
 * K + (i+1)*golden — i.e. SplitMix64 (Steele, Lea, Flood 2014) addressed by counter, so
 * any output can be computed without the ones before it. Substreams hash (key, k) into
 * a new key, so member k of an ensemble gets the same numbers whatever the batch size or
 * thread count. Normals: Box-Muller on two 53-bit uniforms. */
#include "qd.h"
#include "qd_lanemath.h"
#include <math.h>

#define GOLDEN 0x9E3779B97F4A7C15ULL

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void qd_rng_init(qd_rng *r, uint64_t seed)
{
    r->seed = seed;
    r->key = mix64(seed ^ 0x6A09E667F3BCC909ULL);
    r->ctr = 0;
    r->has_spare = 0;
    r->spare = 0.0;
}

uint64_t qd_rng_u64(qd_rng *r)
{
    r->ctr++;
    return mix64(r->key + r->ctr * GOLDEN);
}

double qd_rng_uniform(qd_rng *r)
{
    return (double)(qd_rng_u64(r) >> 11) * 0x1.0p-53;
}

double qd_rng_normal(qd_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - qd_rng_uniform(r);   /* (0, 1]: log is finite */
    double u2 = qd_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    r->spare = rad * sin(2.0 * M_PI * u2);
    r->has_spare = 1;
    return rad * cos(2.0 * M_PI * u2);
}

double qd_rng_gauss(qd_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    /* lane 0 of the lane version: the same operations, so the same bits */
    qd_lu key = {0}, ctr = {0};
    key[0] = r->key;
    ctr[0] = r->ctr;
    qd_lv g0, g1;
    qd_l_gauss_pair(key, &ctr, &g0, &g1);
    r->ctr = ctr[0];
    r->spare = g1[0];
    r->has_spare = 1;
    return g0[0];
}

qd_c qd_rng_cnormal(qd_rng *r)
{
    double re = qd_rng_normal(r), im = qd_rng_normal(r);
    return (re + I * im) * M_SQRT1_2;
}

qd_rng qd_rng_split(qd_rng *r)
{
    qd_rng c = *r;
    c.key = mix64(qd_rng_u64(r) ^ 0xA54FF53A5F1D36F1ULL);
    c.ctr = 0;
    c.has_spare = 0;
    return c;
}

qd_rng qd_rng_sub(const qd_rng *r, uint64_t k)
{
    qd_rng c = *r;
    c.key = mix64(r->key ^ mix64(k + 0x510E527FADE682D1ULL));
    c.ctr = 0;
    c.has_spare = 0;
    return c;
}
