/* vmath.c — element-wise functions on arrays of doubles, QD_LV entries at a time with
 * qd_lanemath.h's functions (the same bits in every kernel set; no libm). For the
 * elementwise methods of qd.Vector / qd.Matrix (runtime/lua/lua_vmath.c). */
#include "qd.h"
#include "qd_lanemath.h"

void qd_vm_atanh(const double *x, double *y, size_t n)
{
    size_t i = 0;
    for (; i + QD_LV <= n; i += QD_LV) {
        qd_lv v;
        memcpy(&v, x + i, sizeof v);
        v = qd_l_atanh(v);
        memcpy(y + i, &v, sizeof v);
    }
    if (i < n) {
        qd_lv v = qd_l_set1(0);
        for (size_t l = 0; i + l < n; l++)
            v[l] = x[i + l];
        v = qd_l_atanh(v);
        for (size_t l = 0; i + l < n; l++)
            y[i + l] = v[l];
    }
}
