/* vmath.c — element-wise functions on arrays of doubles, QD_LV entries at a time with
 * qd_lanemath.h's functions (the same bits in every kernel set; no libm). For the
 * elementwise methods of qd.Vector / qd.Matrix (runtime/lua/lua_vmath.c). */
#include "qd.h"
#include "qd_lanemath.h"

/* log1p(x) for x >= 0 finite: u = 1 + x, log(u) x / (u - 1) (exact when u == 1: x) —
 * the rounding of 1 + x is divided out (Goldberg 1991, Theorem 4) */
static inline __attribute__((always_inline)) qd_lv lm_log1p_pos(qd_lv x)
{
    qd_lv u = 1.0 + x, um1 = u - 1.0;
    qd_li one = um1 == 0;
    qd_lv r = qd_l_log(u) * (x / qd_l_select(one, qd_l_set1(1), um1));
    return qd_l_select(one, x, r);
}

/* atanh(z) = sign(z) log1p(2|z| / (1 - |z|)) / 2 for |z| < 1 (the caller checks) */
static inline __attribute__((always_inline)) qd_lv lm_atanh(qd_lv z)
{
    qd_lu sign = (qd_lu)z & 0x8000000000000000ULL;
    qd_lv a = (qd_lv)((qd_lu)z & 0x7FFFFFFFFFFFFFFFULL);
    qd_lv r = 0.5 * lm_log1p_pos((a + a) / (1.0 - a));
    return (qd_lv)((qd_lu)r | sign);
}

void qd_vm_atanh(const double *x, double *y, size_t n)
{
    size_t i = 0;
    for (; i + QD_LV <= n; i += QD_LV) {
        qd_lv v;
        memcpy(&v, x + i, sizeof v);
        v = lm_atanh(v);
        memcpy(y + i, &v, sizeof v);
    }
    if (i < n) {
        qd_lv v = qd_l_set1(0);
        for (size_t l = 0; i + l < n; l++)
            v[l] = x[i + l];
        v = lm_atanh(v);
        for (size_t l = 0; i + l < n; l++)
            y[i + l] = v[l];
    }
}
