/* feedback.c — the per-member solve of a learnt feedback Hamiltonian (reverse-time diffusion,
 * stdlib/qd/protocols/reverse_diffusion.lua): for every ensemble member j, the coefficients c
 * of H_fb = sum_p c_p P_p whose drift of the model's Pauli expectations best matches the
 * learnt reverse drift h, min |J c - h|^2 + eps |c|^2, through the normal equations
 * (J^T J + eps I) c = J^T h and a Cholesky factorisation. J is sparse with a fixed pattern
 * (entry (q, p) non-zero when P_q and P_p anticommute) whose values are expectations of the
 * member's state. Members are independent: the loop is split over threads, each member's
 * arithmetic is the same whatever the split. */
#include "qd_dynamics.h"
#include <math.h>
#include <string.h>

/* one member: S (m x m, row-major) and b from the entries, then c (m) */
static void solve_member(int m, size_t N, size_t j, const qd_fb_entry *e, size_t ne,
                         const double *V, const double *H, const double *damp, double eps,
                         double *S, double *Lm, double *b, double *vals, double *c)
{
    size_t mm = (size_t)m * (size_t)m;
    for (size_t i = 0; i < mm; i++)
        S[i] = 0.0;
    for (int p = 0; p < m; p++) {
        S[(size_t)p * (size_t)m + (size_t)p] = eps;
        b[p] = 0.0;
    }
    size_t a0 = 0;
    for (int q = 0; q < m; q++) {
        size_t a1 = a0;
        while (a1 < ne && e[a1].q == q)
            a1++;
        double hq = H[j + (size_t)q * N] - damp[q] * V[j + (size_t)q * N];
        for (size_t a = a0; a < a1; a++)
            vals[a - a0] = e[a].f * V[j + (size_t)e[a].v * N];
        for (size_t a = a0; a < a1; a++) {
            double va = vals[a - a0];
            size_t base = (size_t)e[a].p * (size_t)m;
            b[e[a].p] = b[e[a].p] + va * hq;
            for (size_t a2 = a0; a2 < a1; a2++)
                S[base + (size_t)e[a2].p] = S[base + (size_t)e[a2].p] + va * vals[a2 - a0];
        }
        a0 = a1;
    }
    /* Cholesky S = L L^T (row-major lower triangle), then the two triangular solves */
    for (int i = 0; i < m; i++) {
        size_t bi = (size_t)i * (size_t)m;
        for (int jj = 0; jj <= i; jj++) {
            size_t bj = (size_t)jj * (size_t)m;
            double sum = S[bi + (size_t)jj];
            for (int k = 0; k < jj; k++)
                sum = sum - Lm[bi + (size_t)k] * Lm[bj + (size_t)k];
            if (i == jj)
                Lm[bi + (size_t)i] = sqrt(sum > 1e-300 ? sum : 1e-300);
            else
                Lm[bi + (size_t)jj] = sum / Lm[bj + (size_t)jj];
        }
    }
    for (int i = 0; i < m; i++) {
        size_t bi = (size_t)i * (size_t)m;
        double sum = b[i];
        for (int k = 0; k < i; k++)
            sum = sum - Lm[bi + (size_t)k] * c[k];
        c[i] = sum / Lm[bi + (size_t)i];
    }
    for (int i = m - 1; i >= 0; i--) {
        double sum = c[i];
        for (int k = i + 1; k < m; k++)
            sum = sum - Lm[(size_t)k * (size_t)m + (size_t)i] * c[k];
        c[i] = sum / Lm[(size_t)i * (size_t)m + (size_t)i];
    }
}

qd_status qd_feedback_solve(int m, size_t N, const qd_fb_entry *e, size_t ne, const double *V,
                            const double *H, const double *damp, double eps, double *C, qd_err *err)
{
    size_t mm = (size_t)m * (size_t)m, per = 2 * mm + 2 * (size_t)m + ne;
    int nt = qd_get_threads();
    if (nt < 1 || N < 64)
        nt = 1;
    double *work = qd_malloc(sizeof(double) * per * (size_t)nt);
    if (!work)
        return qd_fail(err, QD_ENOMEM, "feedback solve: out of memory");
    if (nt == 1) {
        for (size_t j = 0; j < N; j++)
            solve_member(m, N, j, e, ne, V, H, damp, eps, work, work + mm, work + 2 * mm,
                         work + 2 * mm + m, C + j * (size_t)m);
    } else {
#pragma omp parallel num_threads(nt)
        {
            double *w = work + per * (size_t)qd_thread_num();
#pragma omp for schedule(static)
            for (long j = 0; j < (long)N; j++)
                solve_member(m, N, (size_t)j, e, ne, V, H, damp, eps, w, w + mm, w + 2 * mm,
                             w + 2 * mm + m, C + (size_t)j * (size_t)m);
        }
    }
    qd_free(work);
    return QD_OK;
}

void qd_poly_features(size_t N, size_t ld, const double *V, const int *idx, const size_t *off,
                      size_t nmono, const double *tf, size_t ntf, double *Phi)
{
    for (size_t b = 0; b < nmono; b++) {
        /* the monomial's value for every member, factors in the listed order from 1.0 */
        double *col = Phi + b * N;   /* the first time function's block holds it for now */
        for (size_t j = 0; j < N; j++)
            col[j] = 1.0;
        for (size_t k = off[b]; k < off[b + 1]; k++) {
            const double *v = V + (size_t)idx[k] * ld;
            for (size_t j = 0; j < N; j++)
                col[j] = col[j] * v[j];
        }
    }
    /* blocks a = ntf-1 .. 0 (block 0 last: it holds the monomials until then) */
    for (size_t a = ntf; a-- > 0;)
        for (size_t b = 0; b < nmono; b++) {
            const double *mono = Phi + b * N;
            double *out = Phi + (a * nmono + b) * N;
            for (size_t j = 0; j < N; j++)
                out[j] = tf[a] * mono[j];
        }
}
