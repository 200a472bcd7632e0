/* schedule.c — noise schedules for diffusion protocols: T per-step values v_1..v_T
 * (QuDDPM's scrambling strengths h_t, DDPM-style betas, depolarizing rates). Formulas in
 * qd_random.h and docs/api.md; linear follows numpy.linspace exactly (start + i*step, last
 * value set to `to`), so schedules copied from reference code compare bitwise. */
#include "qd_random.h"
#include <math.h>

static qd_status check_common(size_t T, double from, double to, qd_err *e)
{
    if (T < 1)
        return qd_fail(e, QD_EARG, "T >= 1 expected, got %zu", T);
    if (!isfinite(from) || !isfinite(to))
        return qd_fail(e, QD_EARG, "finite 'from' and 'to' expected");
    return QD_OK;
}

qd_status qd_schedule_linear(double *v, size_t T, double from, double to, qd_err *e)
{
    qd_status s = check_common(T, from, to, e);
    if (s != QD_OK)
        return s;
    if (T == 1) {
        v[0] = from;
        return QD_OK;
    }
    double step = (to - from) / (double)(T - 1);
    for (size_t i = 0; i < T; i++)
        v[i] = (double)i * step + from;
    v[T - 1] = to;
    return QD_OK;
}

qd_status qd_schedule_quadratic(double *v, size_t T, double from, double to, qd_err *e)
{
    qd_status s = check_common(T, from, to, e);
    if (s != QD_OK)
        return s;
    if (from < 0 || to < 0)
        return qd_fail(e, QD_EARG, "quadratic schedule needs from, to >= 0 (got %g, %g)", from, to);
    s = qd_schedule_linear(v, T, sqrt(from), sqrt(to), e);
    for (size_t i = 0; i < T; i++)
        v[i] *= v[i];
    v[0] = from;           /* exact endpoints (sqrt then square may round) */
    if (T > 1)
        v[T - 1] = to;
    return s;
}

qd_status qd_schedule_geometric(double *v, size_t T, double from, double to, qd_err *e)
{
    qd_status s = check_common(T, from, to, e);
    if (s != QD_OK)
        return s;
    if (!(from > 0) || !(to > 0))
        return qd_fail(e, QD_EARG, "geometric schedule needs from, to > 0 (got %g, %g)", from, to);
    if (T == 1) {
        v[0] = from;
        return QD_OK;
    }
    /* as numpy.geomspace: 10^linspace(log10 from, log10 to), endpoints exact */
    double l0 = log10(from), l1 = log10(to), step = (l1 - l0) / (double)(T - 1);
    for (size_t i = 0; i < T; i++)
        v[i] = pow(10.0, (double)i * step + l0);
    v[0] = from;
    v[T - 1] = to;
    return QD_OK;
}

qd_status qd_schedule_sq_cosine(double *v, size_t T, double from, double to, qd_err *e)
{
    qd_status s = check_common(T, from, to, e);
    if (s != QD_OK)
        return s;
    for (size_t t = 1; t <= T; t++) {
        double x = sin(M_PI * (double)t / (2.0 * (double)T));
        v[t - 1] = from + (to - from) * x * x;
    }
    v[T - 1] = to;
    return QD_OK;
}

static double cos_f(double t, double T, double s)
{
    double c = cos(M_PI / 2 * (t / T + s) / (1 + s));
    return c * c;
}

qd_status qd_schedule_cosine(double *v, size_t T, double s, double max_beta, qd_err *e)
{
    if (T < 1)
        return qd_fail(e, QD_EARG, "T >= 1 expected, got %zu", T);
    if (!(s >= 0) || !isfinite(s))
        return qd_fail(e, QD_EARG, "offset s >= 0 expected, got %g", s);
    if (!(max_beta > 0 && max_beta <= 1))
        return qd_fail(e, QD_EARG, "max_beta in (0, 1] expected, got %g", max_beta);
    double f0 = cos_f(0, (double)T, s);
    for (size_t t = 1; t <= T; t++) {
        double ab = cos_f((double)t, (double)T, s) / f0;
        double ab_prev = cos_f((double)(t - 1), (double)T, s) / f0;
        double beta = 1.0 - ab / ab_prev;
        v[t - 1] = beta < max_beta ? beta : max_beta;
    }
    return QD_OK;
}

void qd_schedule_clip(double *v, size_t T, double lo, double hi)
{
    for (size_t i = 0; i < T; i++)
        v[i] = v[i] < lo ? lo : v[i] > hi ? hi : v[i];
}

double qd_schedule_alpha_bar(const double *v, size_t t)
{
    double p = 1.0;
    for (size_t i = 0; i < t; i++)
        p *= 1.0 - v[i];
    return p;
}
