/* dynamics.c — open-system dynamics (qd_dynamics.h): the Lindblad master equation on a
 * density matrix (adaptive Dormand-Prince 5(4), operators applied locally as Pauli sums)
 * and stochastic Schroedinger equation trajectories of measured observables (Ito,
 * Euler-Maruyama or the Rouchon-Ralph Kraus scheme), batched over ensemble members, with
 * a per-step feedback Hamiltonian supplied by a callback, forward or in reverse time. */
#include "qd_dynamics.h"
#include "qd_lanemath.h"
#include "qd_sse_lanes.h"
#include "qd_sse_law.h"
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif


/* ---------------------------------------------------------------- Lindblad */

qd_status qd_lindblad_k(const qd_pauli_sum *H, const qd_pauli_sum *L, size_t nL, int n,
                        qd_pauli_sum *K, qd_err *e)
{
    qd_ps_init(K, n);
    qd_status s = QD_OK;
    if (H) {
        if (H->n != n)
            return qd_fail(e, QD_EARG, "Hamiltonian on %d qubits for a %d-qubit state", H->n, n);
        qd_pauli_sum Z;
        qd_ps_init(&Z, n);
        s = qd_ps_axpby(-I, H, 0, &Z, K, e);
        if (s != QD_OK)
            return s;
    }
    for (size_t k = 0; k < nL; k++) {
        if (L[k].n != n) {
            qd_ps_free(K);
            return qd_fail(e, QD_EARG, "jump operator %zu on %d qubits for a %d-qubit state", k + 1,
                           L[k].n, n);
        }
        qd_pauli_sum Ld, P, S;
        s = qd_ps_copy(&L[k], &Ld, e);
        if (s != QD_OK)
            break;
        qd_ps_dagger(&Ld);
        s = qd_ps_mul(&Ld, &L[k], &P, e);
        qd_ps_free(&Ld);
        if (s != QD_OK)
            break;
        s = qd_ps_axpby(1.0, K, -0.5, &P, &S, e);
        qd_ps_free(&P);
        if (s != QD_OK)
            break;
        qd_ps_free(K);
        *K = S;
    }
    if (s != QD_OK)
        qd_ps_free(K);
    return s;
}

static int max_threads(void);
static int tid(void);

/* i^k */
static qd_c ipow4(int k)
{
    switch (k & 3) {
    case 0: return 1;
    case 1: return I;
    case 2: return -1;
    default: return -I;
    }
}

/* v = (rho O^H)[:, c] = sum_t conj(o_t) phase_t(c) rho[:, c ^ x_t], with
 * P_t[c', c] = phase_t(c) = i^ny (-1)^|c & z| at c' = c ^ x_t. accumulate: v += instead. */
static void col_rho_odag(const qd_pauli_sum *O, const qd_c *rho, size_t d, size_t c, qd_c *v,
                         int accumulate)
{
    if (!accumulate)
        memset(v, 0, sizeof(qd_c) * d);
    double *vv = (double *)v;
    for (size_t t = 0; t < O->nterms; t++) {
        uint64_t x = O->x[t], z = O->z[t];
        qd_c k = conj(O->c[t]) * ipow4(__builtin_popcountll(x & z)) * (__builtin_parityll(c & z) ? -1.0 : 1.0);
        /* + nki*ai, not - ki*ai: the same value, no vfmaddsub (scripts/check_contraction.sh) */
        const double kr = creal(k), ki = cimag(k), nki = -ki;
        const double *src = (const double *)(rho + (c ^ x) * d);
        for (size_t r = 0; r < d; r++) {
            double ar = src[2 * r], ai = src[2 * r + 1];
            vv[2 * r] += kr * ar + nki * ai;
            vv[2 * r + 1] += kr * ai + ki * ar;
        }
    }
}

/* scratch: 2 * 4^n (per-thread column buffers). Column by column, each written by one
 * thread, no transposes:
 *   f[:, c] = K rho[:, c] + (rho K^H)[:, c] + sum_k L_k (rho L_k^H)[:, c]
 * which is the Lindblad generator for any rho (Hermiticity is not assumed). */
qd_status qd_lindblad_rhs(const qd_pauli_sum *K, const qd_pauli_sum *L, size_t nL,
                          const qd_c *rho, qd_c *out, qd_c *scratch)
{
    size_t d = (size_t)1 << K->n;
    int nt = max_threads();
    if (nt < 1)
        nt = 1;
    if ((size_t)nt > 2 * d)
        nt = (int)(2 * d);
    #pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && d * d >= QD_PAR_MIN)
    for (size_t c = 0; c < d; c++) {
        qd_c *o = out + c * d, *v = scratch + (size_t)tid() * d;
        qd_ps_apply1(K, NULL, rho + c * d, o, 1.0, 0);     /* K rho */
        col_rho_odag(K, rho, d, c, o, 1);                  /* + rho K^H */
        for (size_t k = 0; k < nL; k++) {
            col_rho_odag(&L[k], rho, d, c, v, 0);          /* rho L^H */
            qd_ps_apply1(&L[k], NULL, v, o, 1.0, 1);       /* + L rho L^H */
        }
    }
    return QD_OK;
}

/* RMS of |err_i| / (atol + rtol max(|y_i|, |z_i|)) */
static double err_norm(const qd_c *err, const qd_c *y, const qd_c *z, size_t N, double rtol,
                       double atol)
{
    double s = 0;
    for (size_t i = 0; i < N; i++) {
        double sc = atol + rtol * fmax(cabs(y[i]), cabs(z[i]));
        double q = cabs(err[i]) / sc;
        s += q * q;
    }
    return sqrt(s / (double)N);
}

/* Dormand-Prince 5(4) tableau (Hairer, Norsett & Wanner, Table II.5.2) */
static const double C2 = 1.0 / 5, C3 = 3.0 / 10, C4 = 4.0 / 5, C5 = 8.0 / 9;
static const double A21 = 1.0 / 5;
static const double A31 = 3.0 / 40, A32 = 9.0 / 40;
static const double A41 = 44.0 / 45, A42 = -56.0 / 15, A43 = 32.0 / 9;
static const double A51 = 19372.0 / 6561, A52 = -25360.0 / 2187, A53 = 64448.0 / 6561,
                    A54 = -212.0 / 729;
static const double A61 = 9017.0 / 3168, A62 = -355.0 / 33, A63 = 46732.0 / 5247,
                    A64 = 49.0 / 176, A65 = -5103.0 / 18656;
static const double A71 = 35.0 / 384, A73 = 500.0 / 1113, A74 = 125.0 / 192,
                    A75 = -2187.0 / 6784, A76 = 11.0 / 84;
/* error coefficients b5 - b4 */
static const double E1 = 71.0 / 57600, E3 = -71.0 / 16695, E4 = 71.0 / 1920,
                    E5 = -17253.0 / 339200, E6 = 22.0 / 525, E7 = -1.0 / 40;

/* Dormand-Prince 5(4) on the Lindblad equation: the generator (K, the jumps L), the stage
 * buffers, the tolerances. */
typedef struct {
    const qd_pauli_sum *K, *L;
    size_t nL, d, D;
    double rtol, atol;
    qd_c *k1, *k2, *k3, *k4, *k5, *k6, *k7, *yn, *tmp, *scr;
} dp_ws;

static void dp_rhs(const dp_ws *w, const qd_c *x, qd_c *dx)
{
    qd_lindblad_rhs(w->K, w->L, w->nL, x, dx, w->scr);
}

/* Hairer's starting step (II.4, "automatic step size selection"); k1 holds f(rho) */
static double dp_first_step(dp_ws *w, const qd_c *rho)
{
    size_t D = w->D;
    double d0 = err_norm(rho, rho, rho, D, w->rtol, w->atol), d1 = err_norm(w->k1, rho, rho, D, w->rtol, w->atol);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    for (size_t i = 0; i < D; i++)
        w->tmp[i] = rho[i] + h0 * w->k1[i];
    dp_rhs(w, w->tmp, w->k2);
    for (size_t i = 0; i < D; i++)
        w->k3[i] = w->k2[i] - w->k1[i];
    double d2 = err_norm(w->k3, rho, rho, D, w->rtol, w->atol) / h0;
    double mx = fmax(d1, d2);
    double h1 = mx <= 1e-15 ? fmax(1e-6, h0 * 1e-3) : pow(0.01 / mx, 0.2);
    return fmin(100 * h0, h1);
}

/* one step of size hh from rho (k1 = f(rho)): the 5th-order solution in yn, f(yn) in k7
 * (first same as last), and the scaled error estimate returned (6 evaluations) */
static double dp_step(dp_ws *w, const qd_c *rho, double hh)
{
    size_t D = w->D;
    qd_c *k1 = w->k1, *k2 = w->k2, *k3 = w->k3, *k4 = w->k4, *k5 = w->k5, *k6 = w->k6,
         *k7 = w->k7, *yn = w->yn, *tmp = w->tmp;
    for (size_t i = 0; i < D; i++)
        tmp[i] = rho[i] + hh * A21 * k1[i];
    dp_rhs(w, tmp, k2);
    for (size_t i = 0; i < D; i++)
        tmp[i] = rho[i] + hh * (A31 * k1[i] + A32 * k2[i]);
    dp_rhs(w, tmp, k3);
    for (size_t i = 0; i < D; i++)
        tmp[i] = rho[i] + hh * (A41 * k1[i] + A42 * k2[i] + A43 * k3[i]);
    dp_rhs(w, tmp, k4);
    for (size_t i = 0; i < D; i++)
        tmp[i] = rho[i] + hh * (A51 * k1[i] + A52 * k2[i] + A53 * k3[i] + A54 * k4[i]);
    dp_rhs(w, tmp, k5);
    for (size_t i = 0; i < D; i++)
        tmp[i] = rho[i] + hh * (A61 * k1[i] + A62 * k2[i] + A63 * k3[i] + A64 * k4[i] + A65 * k5[i]);
    dp_rhs(w, tmp, k6);
    for (size_t i = 0; i < D; i++)
        yn[i] = rho[i] + hh * (A71 * k1[i] + A73 * k3[i] + A74 * k4[i] + A75 * k5[i] + A76 * k6[i]);
    dp_rhs(w, yn, k7);
    for (size_t i = 0; i < D; i++)
        tmp[i] = hh * (E1 * k1[i] + E3 * k3[i] + E4 * k4[i] + E5 * k5[i] + E6 * k6[i] + E7 * k7[i]);
    return err_norm(tmp, rho, yn, D, w->rtol, w->atol);
}

/* accept the step: rho = yn made exactly Hermitian (rounding would otherwise drift), k1 =
 * f(yn) (FSAL) */
static void dp_accept(dp_ws *w, qd_c *rho)
{
    size_t d = w->d;
    const qd_c *yn = w->yn;
    for (size_t c = 0; c < d; c++) {
        rho[c + c * d] = creal(yn[c + c * d]);
        for (size_t r = c + 1; r < d; r++) {
            qd_c m = 0.5 * (yn[r + c * d] + conj(yn[c + r * d]));
            rho[r + c * d] = m;
            rho[c + r * d] = conj(m);
        }
    }
    memcpy(w->k1, w->k7, sizeof(qd_c) * w->D);
}

/* prepared copies of the jump operators (the caller's stay untouched); NULL for none */
static qd_status jump_copies(const qd_pauli_sum *L, size_t nL, qd_pauli_sum **out, qd_err *e)
{
    *out = NULL;
    if (!nL)
        return QD_OK;
    qd_pauli_sum *Lc = qd_calloc(nL, sizeof(qd_pauli_sum));
    if (!Lc)
        return qd_fail(e, QD_ENOMEM, "not enough memory for the jump operators");
    qd_status s = QD_OK;
    for (size_t k = 0; k < nL && s == QD_OK; k++) {
        s = qd_ps_copy(&L[k], &Lc[k], e);
        if (s == QD_OK)
            qd_ps_prepare(&Lc[k]);
    }
    if (s != QD_OK) {
        for (size_t k = 0; k < nL; k++)
            qd_ps_free(&Lc[k]);
        qd_free(Lc);
        return s;
    }
    *out = Lc;
    return QD_OK;
}

qd_status qd_lindblad(qd_c *rho, int n, const qd_pauli_sum *H, const qd_pauli_sum *L,
                      size_t nL, const double *ts, size_t nt, qd_c *out,
                      qd_lindblad_opts *o, qd_err *e)
{
    (void)C2;
    (void)C3;
    (void)C4;
    (void)C5;   /* autonomous equation: the nodes are not needed */
    size_t maxst = o->max_steps ? o->max_steps : 10000000;
    o->steps = o->rejected = o->fevals = 0;
    for (size_t i = 0; i < nt; i++)
        if (!isfinite(ts[i]) || ts[i] < 0 || (i > 0 && ts[i] < ts[i - 1]))
            return qd_fail(e, QD_EARG, "output times must be finite, >= 0 and increasing (time %zu is %g)",
                           i + 1, ts[i]);
    qd_pauli_sum K;
    qd_status s = qd_lindblad_k(H, L, nL, n, &K, e);
    if (s != QD_OK)
        return s;
    qd_ps_prepare(&K);
    qd_pauli_sum *Lc;
    if ((s = jump_copies(L, nL, &Lc, e)) != QD_OK) {
        qd_ps_free(&K);
        return s;
    }
    size_t d = (size_t)1 << n, D = d * d, bytes = 0;
    dp_ws w = {&K, Lc, nL, d, D, o->rtol > 0 ? o->rtol : 1e-8, o->atol > 0 ? o->atol : 1e-10,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    qd_c *buf = NULL;
    if (qd_mul_overflow(D, 11 * sizeof(qd_c), &bytes) || !(buf = qd_malloc(bytes))) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for the Lindblad integrator (11 x %zu x %zu)", d, d);
        goto done;
    }
    w.k1 = buf, w.k2 = w.k1 + D, w.k3 = w.k2 + D, w.k4 = w.k3 + D, w.k5 = w.k4 + D, w.k6 = w.k5 + D;
    w.k7 = w.k6 + D, w.yn = w.k7 + D, w.tmp = w.yn + D, w.scr = w.tmp + D;
    double t = 0, h = o->h0, tend = nt ? ts[nt - 1] : 0;
    qd_progress("qd.lindblad", 0);
    dp_rhs(&w, rho, w.k1);
    o->fevals++;
    if (!(h > 0)) {
        h = dp_first_step(&w, rho);
        o->fevals++;
    }
    for (size_t iout = 0; iout < nt; iout++) {
        double target = ts[iout];
        while (t < target) {
            if (qd_interrupt) {   /* Ctrl-C or a time limit (qd.h) */
                s = qd_fail(e, QD_EINTR, "interrupted at t = %g", t);
                goto done;
            }
            if (o->steps + o->rejected >= maxst) {
                s = qd_fail(e, QD_ENUMERIC, "Lindblad integration: more than %zu steps (t = %g of %g)",
                            maxst, t, target);
                goto done;
            }
            double hh = h, rest = target - t;
            int clipped = 0;
            if (hh >= rest) {
                hh = rest;
                clipped = 1;
            }
            double err = dp_step(&w, rho, hh);
            o->fevals += 6;
            if (!isfinite(err)) {
                h = hh * 0.2;
                o->rejected++;
            } else if (err <= 1) {
                t = clipped ? target : t + hh;
                dp_accept(&w, rho);
                o->steps++;
                if (tend > 0)
                    qd_progress("qd.lindblad", t / tend * 0.999);
                double f = err > 0 ? 0.9 * pow(err, -0.2) : 5;
                f = f > 5 ? 5 : (f < 0.2 ? 0.2 : f);
                /* a clipped step says nothing about the step that fits: keep h */
                h = clipped ? fmax(h, hh * f) : hh * f;
            } else {
                double f = 0.9 * pow(err, -0.2);
                h = hh * (f < 0.2 ? 0.2 : f);
                o->rejected++;
            }
            if (h < 1e-14 * fmax(1.0, fabs(t))) {
                s = qd_fail(e, QD_ENUMERIC, "Lindblad integration: step size underflow at t = %g", t);
                goto done;
            }
        }
        if (out)
            memcpy(out + iout * D, rho, sizeof(qd_c) * D);
    }
done:
    qd_progress("qd.lindblad", 1);
    qd_free(buf);
    qd_ps_free(&K);
    for (size_t k = 0; k < nL; k++)
        qd_ps_free(&Lc[k]);
    qd_free(Lc);
    return s;
}

/* ---------------------------------------------------------------- SSE */

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int tid(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* one step of one member. psi normalised on entry; scratch (m + 1) * d; dW[m] drawn. */
static int sse_member_step(const qd_sse_opts *o, int n, qd_c *psi, const qd_c *fcoef,
                           const double *dW, double *dy, qd_c *scr)
{
    size_t d = (size_t)1 << n, m = o->m;
    double dt = o->dt;
    qd_c *nv = scr, *u = scr + d;
    double a[64];
    memcpy(nv, psi, sizeof(qd_c) * d);
    for (size_t k = 0; k < m; k++) {
        qd_ps_apply1(&o->A[k], NULL, psi, u + k * d, 1.0, 0);
        a[k] = creal(qd_inner(psi, u + k * d, d));
    }
    if (o->H)
        qd_ps_apply1(o->H, NULL, psi, nv, -I * (o->reverse ? -dt : dt), 1);
    if (o->F)
        qd_ps_apply1(o->F, fcoef, psi, nv, -I * dt, 1);
    if (o->scheme == QD_SSE_EULER) {
        for (size_t k = 0; k < m; k++) {
            double g = o->gamma[k], sg = sqrt(g);
            qd_c *v = u + k * d;
            for (size_t i = 0; i < d; i++)
                v[i] -= a[k] * psi[i];                         /* (A - a) psi */
            qd_ps_apply1(&o->A[k], NULL, v, nv, -0.5 * g * dt, 1);   /* -(g/2) dt A (A - a) psi */
            double cv = 0.5 * g * dt * a[k] + sg * dW[k];     /* +(g/2) dt a (A - a) psi + sqrt(g) dW (A - a) psi */
            for (size_t i = 0; i < d; i++)
                nv[i] += cv * v[i];
            dy[k] = 2 * sg * a[k] * dt + dW[k];
        }
    } else {
        for (size_t k = 0; k < m; k++)
            dy[k] = 2 * sqrt(o->gamma[k]) * a[k] * dt + dW[k];
        for (size_t k = 0; k < m; k++) {
            double g = o->gamma[k];
            qd_c *uk = u + k * d;
            double cu = sqrt(g) * dy[k];
            for (size_t i = 0; i < d; i++)
                nv[i] += cu * uk[i];
            for (size_t l = 0; l < m; l++) {
                /* A_k A_l psi = A_k u_l; diagonal: -1/2 g dt + 1/2 g (dy^2 - dt) */
                double c = l == k ? g * (0.5 * dy[k] * dy[k] - dt)
                                  : 0.5 * sqrt(g * o->gamma[l]) * dy[k] * dy[l];
                if (c != 0)
                    qd_ps_apply1(&o->A[k], NULL, u + l * d, nv, c, 1);
            }
        }
    }
    if (o->scheme == QD_SSE_ROUCHON || o->normalize) {
        double nn = qd_norm2(nv, d);
        if (!(nn > 0) || !isfinite(nn))
            return 1;
        double f = 1 / sqrt(nn);
        for (size_t i = 0; i < d; i++)
            psi[i] = nv[i] * f;
    } else {
        memcpy(psi, nv, sizeof(qd_c) * d);
        if (!isfinite(qd_norm2(psi, d)))
            return 1;
    }
    return 0;
}

/* <O_i> of member j into vals[(i * nsave + idx) * count + j] (summed in member order later) */
static void sse_observe_member(const qd_sse_opts *o, const qd_c *psi, size_t count, size_t j,
                               double *vals, size_t nsave, size_t idx)
{
    for (size_t i = 0; i < o->nobs; i++) {
        qd_c v;
        qd_ps_expect(&o->obs[i], psi, 1, &v);
        vals[(i * nsave + idx) * count + j] = creal(v);
    }
}

/* steps [s0, s1) of member j; returns 0, the 1-based step at which its norm failed, or
 * SSE_STOPPED when qd_interrupt was set */
#define SSE_STOPPED SIZE_MAX
static size_t sse_member_run(const qd_sse_opts *o, int n, qd_c *psi, size_t j, size_t count,
                             size_t s0, size_t s1, const qd_c *fc, qd_rng *rng, qd_c *scr,
                             double *vals, size_t nsave)
{
    double sq = sqrt(o->dt), dW[64], dy[64];
    size_t m = o->m;
    for (size_t st = s0; st < s1; st++) {
        if (qd_interrupt)   /* Ctrl-C or a time limit (qd.h) */
            return SSE_STOPPED;
        if (count == 1 && (st & 1023) == 0)   /* one long trajectory: its own progress */
            qd_progress("qd.sse", (double)st / (double)o->steps);
        for (size_t k = 0; k < m; k++)
            dW[k] = sq * qd_rng_gauss(rng);
        if (sse_member_step(o, n, psi, fc, dW, dy, scr))
            return st + 1;
        if (o->records)
            for (size_t k = 0; k < m; k++)
                o->records[k * o->steps * count + st + j * o->steps] = dy[k];
        if (o->nobs && (st + 1) % o->every == 0)
            sse_observe_member(o, psi, count, j, vals, nsave, (st + 1) / o->every);
    }
    return 0;
}

static qd_status sse_run(qd_c *a, int n, size_t count, const qd_sse_opts *o, const qd_rng *base,
                         qd_err *e);

/* Runs on prepared copies of the fixed operators (grouped diagonals, qd_ps_prepare); the
 * feedback terms keep the term-by-term path (their coefficients change every step). */
qd_status qd_sse_run(qd_c *a, int n, size_t count, const qd_sse_opts *o, const qd_rng *base,
                     qd_err *e)
{
    if (o->m > 64)
        return qd_fail(e, QD_EARG, "at most 64 measured observables, got %zu", o->m);
    qd_sse_opts oo = *o;
    size_t nc = (o->H ? 1 : 0) + o->m + o->nobs + (o->F ? 1 : 0);
    qd_pauli_sum *cp = nc ? qd_calloc(nc, sizeof(qd_pauli_sum)) : NULL;
    if (nc && !cp)
        return qd_fail(e, QD_ENOMEM, "not enough memory for SSE operators");
    qd_status s = QD_OK;
    size_t k = 0;
    if (o->H) {
        s = qd_ps_copy(o->H, &cp[k], e);
        oo.H = &cp[k++];
    }
    oo.A = cp + k;
    for (size_t i = 0; i < o->m && s == QD_OK; i++)
        s = qd_ps_copy(&o->A[i], &cp[k++], e);
    oo.obs = o->nobs ? cp + k : NULL;
    for (size_t i = 0; i < o->nobs && s == QD_OK; i++)
        s = qd_ps_copy(&o->obs[i], &cp[k++], e);
    /* the feedback terms are copied too (the callback could free the caller's object) but
     * not prepared: their coefficients are replaced every step */
    if (o->F && s == QD_OK) {
        s = qd_ps_copy(o->F, &cp[k], e);
        oo.F = &cp[k];
    }
    if (s == QD_OK) {
        for (size_t i = 0; i < nc - (o->F ? 1 : 0); i++)
            qd_ps_prepare(&cp[i]);
        s = sse_run(a, n, count, &oo, base, e);
    }
    for (size_t i = 0; i < nc; i++)
        qd_ps_free(&cp[i]);
    qd_free(cp);
    return s;
}

/* the tracked observables' ensemble means, summed in member order */
static void sse_means(const qd_sse_opts *o, const double *vals, size_t nsave, size_t count)
{
    for (size_t i = 0; i < o->nobs; i++)
        for (size_t idx = 0; idx < nsave; idx++) {
            double acc = 0;
            const double *v = vals + (i * nsave + idx) * count;
            for (size_t j = 0; j < count; j++)
                acc += v[j];
            o->obs_out[idx + i * nsave] = acc / (double)count;
        }
}

/* unit u of a run: block u of qd_sse_lanes_unit members on the lane path (LP), else member u; steps
 * [s0, s1); fco: the feedback coefficients (perm: one column of nF per member) */
static void sse_unit(const qd_sse_lanes *LP, const qd_sse_opts *o, int n, qd_c *a, size_t u,
                     size_t count, size_t s0, size_t s1, const qd_c *fco, int perm, qd_rng *rngs,
                     size_t *bad, double *vals, size_t nsave, qd_c *sc)
{
    size_t d = (size_t)1 << n, nF = o->F ? o->F->nterms : 0;
    if (LP) {
        size_t w = qd_sse_lanes_unit(LP), j0 = u * w, nl = count - j0 < w ? count - j0 : w;
        if (qd_sse_lanes_block(LP, a + j0 * d, j0, nl, count, s0, s1, perm ? fco + j0 * nF : fco,
                               perm ? nF : 0, rngs + j0, bad + j0, vals, nsave, (double *)sc))
            bad[j0] = SSE_STOPPED;
    } else if (!bad[u])
        bad[u] = sse_member_run(o, n, a + u * d, u, count, s0, s1, perm ? fco + u * nF : fco,
                                &rngs[u], sc, vals, nsave);
}

/* the options' consistency (qd_sse_run's errors) */
static qd_status sse_check(const qd_sse_opts *o, int n, qd_err *e)
{
    size_t m = o->m;
    if (!(o->dt > 0) || !isfinite(o->dt) || !isfinite(o->t0))
        return qd_fail(e, QD_EARG, "time step dt > 0 (finite) expected");
    if (m > 64)
        return qd_fail(e, QD_EARG, "at most 64 measured observables, got %zu", m);
    if (o->H && o->H->n != n)
        return qd_fail(e, QD_EARG, "Hamiltonian on %d qubits for %d-qubit states", o->H->n, n);
    for (size_t k = 0; k < m; k++) {
        if (o->A[k].n != n)
            return qd_fail(e, QD_EARG, "measured observable %zu on %d qubits for %d-qubit states", k + 1,
                           o->A[k].n, n);
        if (!(o->gamma[k] >= 0) || !isfinite(o->gamma[k]))
            return qd_fail(e, QD_EARG, "measurement rate %zu: finite gamma >= 0 expected", k + 1);
        if (qd_ps_max_imag(&o->A[k]) > 1e-12)
            return qd_fail(e, QD_EARG, "measured observable %zu must be Hermitian (real coefficients)", k + 1);
    }
    if (o->F && (o->F->n != n || !o->fb == !o->law))
        return qd_fail(e, QD_EARG, "feedback terms on %d qubits (with a callback or a law) expected", n);
    if (o->law && !o->F)
        return qd_fail(e, QD_EARG, "a feedback law needs feedback terms");
    if (o->law) {
        const char *why = qd_law_check(o->law, o->F->nterms, n);
        if (why)
            return qd_fail(e, QD_EARG, "%s", why);
    }
    if (o->nobs && (!o->obs || !o->obs_out || o->every < 1))
        return qd_fail(e, QD_EARG, "observables to track need an output buffer and every >= 1");
    for (size_t i = 0; i < o->nobs; i++)
        if (o->obs[i].n != n)
            return qd_fail(e, QD_EARG, "tracked observable %zu on %d qubits for %d-qubit states", i + 1,
                           o->obs[i].n, n);
    return QD_OK;
}

/* the member-by-member path's feedback law: the coefficients of every member at step st (0-based,
 * time t) into coef (nF per member), QD_LV members at a time with the lane path's evaluation
 * (qd_sse_law.h; lw: scratch of nexp + nnodes lane vectors, allocated once per run); a member
 * whose law value is not finite gets 0 and is marked in bad */
static void sse_law_coefs(const qd_sse_opts *o, int n, const qd_c *a, size_t count, size_t st, double t,
                          qd_c *coef, size_t *bad, qd_lv *lw)
{
    const qd_sse_law *law = o->law;
    size_t d = (size_t)1 << n, nF = o->F->nterms;
    qd_lv *exv = lw, *val = lw + law->nexp;
    for (size_t j0 = 0; j0 < count; j0 += QD_LV) {
        for (size_t i = 0; i < law->nexp; i++) {
            exv[i] = qd_l_set1(0);
            for (size_t l = 0; l < QD_LV && j0 + l < count; l++) {
                qd_c v;
                qd_ps_expect(&law->exps[i], a + (j0 + l) * d, 1, &v);
                exv[i][l] = creal(v);
            }
        }
        qd_li ok;
        qd_law_eval(law, nF, exv, t, val, 1, &ok, st == 0 && j0 == 0);
        for (size_t l = 0; l < QD_LV && j0 + l < count; l++) {
            for (size_t f = 0; f < nF; f++)
                coef[(j0 + l) * nF + f] = ok[l] ? val[law->out[f]][l] : 0;
            if (!ok[l] && !bad[j0 + l])
                bad[j0 + l] = (st + 1) | QD_SSE_LAW_FAILED;
        }
    }
}

static qd_status sse_run(qd_c *a, int n, size_t count, const qd_sse_opts *o, const qd_rng *base,
                         qd_err *e)
{
    size_t d = (size_t)1 << n, m = o->m;
    qd_status s = sse_check(o, n, e);
    if (s != QD_OK)
        return s;
    /* the lane path (sse_lanes.c) for small registers: units of qd_sse_lanes_unit members; else one
     * member per unit */
    qd_sse_lanes *LP = qd_sse_generic_only ? NULL : qd_sse_lanes_new(o, n);
    size_t unit = LP ? qd_sse_lanes_unit(LP) : 1, nunits = (count + unit - 1) / unit;
    int nt = max_threads();
    if (nt < 1)
        nt = 1;
    if ((size_t)nt > nunits)
        nt = (int)nunits;
    size_t per = LP ? qd_sse_lanes_scratch(LP) / 2 : ((m + 1) * d + 3) & ~(size_t)3, bytes;   /* qd_c; whole cache lines per thread */
    if (qd_mul_overflow(per, (size_t)nt * sizeof(qd_c), &bytes)) {
        qd_sse_lanes_free(LP);
        return qd_fail(e, QD_ENOMEM, "not enough memory for SSE scratch");
    }
    size_t nF = o->F ? o->F->nterms : 0, fbytes = 0;
    size_t nsave = o->steps / (o->every ? o->every : 1) + 1, vbytes = 0;
    if ((nF && qd_mul_overflow(nF * sizeof(qd_c), count, &fbytes)) ||
        (o->nobs && (qd_mul_overflow(nsave * o->nobs, count, &vbytes) || qd_mul_overflow(vbytes, sizeof(double), &vbytes)))) {
        qd_sse_lanes_free(LP);
        return qd_fail(e, QD_ENOMEM, "not enough memory for %zu SSE trajectories", count);
    }
    qd_c *scr = qd_malloc(bytes);
    qd_rng *rngs = qd_malloc(sizeof(qd_rng) * count);
    size_t *bad = qd_calloc(count, sizeof(size_t));
    double *vals = o->nobs ? qd_malloc(vbytes) : NULL;
    qd_c *fco = nF ? qd_malloc(fbytes) : NULL;
    /* the member-by-member path's law scratch (nexp + nnodes lane vectors; both < 2^24) */
    qd_lv *lw = o->law && !LP ? qd_malloc(sizeof(qd_lv) * (o->law->nexp + o->law->nnodes)) : NULL;
    if (!scr || !rngs || !bad || (o->nobs && !vals) || (nF && !fco) || (o->law && !LP && !lw)) {
        s = qd_fail(e, QD_ENOMEM, "not enough memory for %zu SSE trajectories", count);
        goto done;
    }
    for (size_t j = 0; j < count; j++)
        rngs[j] = qd_rng_sub(base, j);
    if (LP && o->nobs)
        qd_sse_lanes_observe0(LP, a, count, vals, nsave, (double *)scr);
    else
        for (size_t j = 0; j < count; j++)
            sse_observe_member(o, a + j * d, count, j, vals, nsave, 0);
    /* threads over units; a parallel region per step only when a feedback callback has
     * to see all members between steps (otherwise units run their whole trajectory
     * independently: one region, no per-step synchronisation) */
    /* (a law on the lane path is evaluated inside the blocks: no synchronisation either) */
    int sync = nF && !(o->law && LP);
    int par = nt > 1 && count * d * (m + 1) * (sync ? 1 : o->steps) >= ((size_t)1 << 15);
    qd_progress("qd.sse", 0);
    if (!sync) {
        /* progress: the units thread 0 has done, of its static share */
        size_t share = (nunits + (size_t)(par ? nt : 1) - 1) / (size_t)(par ? nt : 1);
        #pragma omp parallel for schedule(static) num_threads(nt) if (par)
        for (size_t u = 0; u < nunits; u++) {
            sse_unit(LP, o, n, a, u, count, 0, o->steps, NULL, 0, rngs, bad, vals, nsave,
                     scr + (size_t)tid() * per);
            if (tid() == 0 && count > 1)
                qd_progress("qd.sse", (double)(u + 1) / (double)share * 0.999);
        }
    } else {
        for (size_t st = 0; st < o->steps; st++) {
            qd_progress("qd.sse", (double)st / (double)o->steps);
            double t = o->reverse ? o->t0 - (double)st * o->dt : o->t0 + (double)st * o->dt;
            int perm = 0;
            if (o->law) {
                sse_law_coefs(o, n, a, count, st, t, fco, bad, lw);
                perm = 1;
            } else if ((s = o->fb(o->ctx, st, t, a, count, fco, &perm, e)) != QD_OK)
                goto done;
            for (size_t i = 0; i < (perm ? nF * count : nF); i++)
                if (!isfinite(creal(fco[i])) || !isfinite(cimag(fco[i]))) {
                    s = qd_fail(e, QD_EARG, "feedback coefficients at step %zu are not finite", st + 1);
                    goto done;
                }
            #pragma omp parallel for schedule(static) num_threads(nt) if (par)
            for (size_t u = 0; u < nunits; u++)
                sse_unit(LP, o, n, a, u, count, st, st + 1, fco, perm, rngs, bad, vals, nsave,
                         scr + (size_t)tid() * per);
            size_t j = 0;
            while (j < count && !bad[j])
                j++;
            if (j < count)
                break;
        }
    }
    for (size_t j = 0; j < count; j++)
        if (bad[j] == SSE_STOPPED) {
            s = qd_fail(e, QD_EINTR, "interrupted");
            goto done;
        }
    /* the earliest failure (then the lowest member): what the step-by-step path stops at */
    size_t jb = count, sb = SIZE_MAX;
    for (size_t j = 0; j < count; j++)
        if (bad[j] && (bad[j] & ~QD_SSE_LAW_FAILED) < sb) {
            jb = j;
            sb = bad[j] & ~QD_SSE_LAW_FAILED;
        }
    if (jb < count && (bad[jb] & QD_SSE_LAW_FAILED)) {
        s = qd_fail(e, QD_EARG, "feedback law: a value is not finite for member %zu at step %zu (log or "
                    "division by 0, atanh of +-1 or beyond, sqrt of a negative number, overflow?)", jb + 1, sb);
        goto done;
    } else if (jb < count) {
        s = qd_fail(e, QD_ENUMERIC, "member %zu: the state's norm vanished or is not finite at step %zu (dt too large?)",
                    jb + 1, sb);
        goto done;
    }
    sse_means(o, vals, nsave, count);
done:
    qd_progress("qd.sse", 1);
    qd_free(scr);
    qd_free(rngs);
    qd_free(bad);
    qd_free(vals);
    qd_free(fco);
    qd_free(lw);
    qd_sse_lanes_free(LP);
    return s;
}
