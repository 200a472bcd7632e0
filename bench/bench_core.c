/* bench_core.c — C-level benchmarks of the qd core (run by bench/run.sh, `make bench`).
 *
 *   bench_core gates [nmin nmax]   1- and 2-qubit gates on an n-qubit state vector, as ns per
 *                                  amplitude and as a fraction of the in-place roof, with 1
 *                                  and 2 threads
 *   bench_core sweep SVN DMN       the sweeps of bench/quest_sweep.c (the QuEST comparison,
 *                                  bench/quest.sh): h, ry, cx on every qubit of an SVN-qubit
 *                                  state vector, depolarizing and amplitude damping on every
 *                                  qubit of a DMN-qubit density matrix, ns per element per
 *                                  gate, median of 5 sweeps, qd_get_threads() threads
 *   bench_core blas                overlap matrix of two 8-qubit ensembles of 1000 states
 *                                  (qd_overlaps) as a fraction of a raw zgemm of the same
 *                                  shape, with 1 and 2 threads
 *
 * The roof: a read-modify-write sweep a[i] = a[i] * c (complex, unit modulus) over the same
 * buffer, split over OpenMP threads the same way as the gate kernels (static contiguous
 * pieces). An in-place gate cannot beat it: it must read and write every amplitude once.
 * Fraction of roof = t_roof / t_gate (1.0 = the gate runs at memory speed).
 *
 * Timings are the minimum over repeated rounds; within a round the roof and every gate are
 * timed back to back, so a burst of load from other processes hits both alike.
 * Every gate is also checked to give bitwise identical results with 1 and 2 threads. */
#include "qd.h"
#include "qd_channel.h"
#include "bench_time.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* the roof: a[i] *= c over d amplitudes, real arithmetic so it vectorises like the kernels */
static void roof_sweep(qd_c *a, size_t d, double cr, double ci)
{
    double *x = (double *)a;
    int nt = qd_get_threads();
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < d; i++) {
        double re = x[2 * i], im = x[2 * i + 1];
        x[2 * i] = cr * re - ci * im;
        x[2 * i + 1] = cr * im + ci * re;
    }
}

static void fill_random(qd_c *a, size_t d, uint64_t seed)
{
    int nt = qd_get_threads();
    /* first touch in parallel, like the sweeps that follow; cheap hash values */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < d; i++) {
        uint64_t h = (i + seed) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 32;
        a[i] = CMPLX((double)(h & 0xFFFF) / 65536.0 - 0.5, (double)(h >> 48) / 65536.0 - 0.5);
    }
    double n = sqrt(qd_norm2(a, d));
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < d; i++)
        a[i] /= n;
}

/* a gate case: a named gate (params fixed) or a 2-qubit matrix */
typedef struct {
    const char *label;
    const char *gate;   /* NULL: dense random 2-qubit unitary through qd_apply_matrix */
    int nq_g;
    int qs[2];
    double p;
} gcase;

static qd_c U4[16];

static void random_unitary4(qd_c *m, uint64_t seed)
{
    qd_rng r;
    qd_rng_init(&r, seed);
    for (int i = 0; i < 16; i++)
        m[i] = qd_rng_cnormal(&r);
    qd_c rd[4];
    qd_err e;
    if (qd_la_qr(m, 4, 4, rd, &e) != QD_OK) {
        fprintf(stderr, "bench_core: QR failed: %s\n", e.msg);
        exit(1);
    }
}

static void run_case(qd_c *a, int n, const gcase *c)
{
    if (!c->gate) {
        qd_err e;
        if (qd_apply_matrix(a, n, 1, c->qs, 2, U4, &e) != QD_OK) {
            fprintf(stderr, "bench_core: %s\n", e.msg);
            exit(1);
        }
        return;
    }
    const qd_gate_info *g = qd_gate_lookup(c->gate);
    qd_apply_gate(a, n, 1, g, c->qs, &c->p, 0);
}

static int bench_gates(int nmin, int nmax)
{
    random_unitary4(U4, 99);
    printf("gates on an n-qubit state vector (qubit 0 = most significant bit)\n");
    printf("roof = in-place RMW sweep a[i] *= c over the same buffer; fraction = t_roof / t_gate\n");
    printf("timings: min over rounds (roof and gates timed back to back in each round)\n\n");
    printf("%-3s %-3s %-22s %10s %10s %8s\n", "n", "thr", "operation", "ms", "ns/amp", "of roof");
    int bad = 0;
    double worst1q[3] = {1e9, 1e9, 1e9};
    for (int n = nmin; n <= nmax; n++) {
        const size_t d = (size_t)1 << n;
        gcase cases[16];
        int nc = 0;
        char lab[16][48];
        int mid = n / 2;
#define ADD(G, K, Q0, Q1, P, ...)                                         \
        do {                                                              \
            snprintf(lab[nc], sizeof lab[nc], __VA_ARGS__);               \
            cases[nc] = (gcase){lab[nc], G, K, {Q0, Q1}, P};              \
            nc++;                                                         \
        } while (0)
        ADD("h", 1, n - 1, 0, 0, "1q h(%d) low", n - 1);
        ADD("h", 1, mid, 0, 0, "1q h(%d) mid", mid);
        ADD("h", 1, 0, 0, 0, "1q h(0) high");
        ADD("ry", 1, mid, 0, 0.3, "1q ry(%d)", mid);
        ADD("rz", 1, mid, 0, 0.3, "1q rz(%d) diag", mid);
        ADD("cx", 2, 0, n - 1, 0, "2q cx(0,%d)", n - 1);
        ADD(NULL, 2, n - 2, n - 1, 0, "2q U4(%d,%d) low", n - 2, n - 1);
        ADD(NULL, 2, mid - 1, mid, 0, "2q U4(%d,%d) mid", mid - 1, mid);
        ADD(NULL, 2, 0, 1, 0, "2q U4(0,1) high");
#undef ADD
        qd_c *a = qd_malloc(sizeof(qd_c) * d);
        qd_c *b = n == nmin ? qd_malloc(sizeof(qd_c) * d) : NULL;
        if (!a || (n == nmin && !b)) {
            fprintf(stderr, "bench_core: cannot allocate %zu amplitudes\n", d);
            return 1;
        }
        qd_set_threads(2);
        fill_random(a, d, 7);
        /* determinism: every case once with 1 thread and once with 2 threads (smallest n) */
        if (b) {
            int same = 1;
            for (int c = 0; c < nc; c++) {
                memcpy(b, a, sizeof(qd_c) * d);
                qd_set_threads(1);
                run_case(b, n, &cases[c]);
                qd_c *t = qd_malloc(sizeof(qd_c) * d);
                memcpy(t, a, sizeof(qd_c) * d);
                qd_set_threads(2);
                run_case(t, n, &cases[c]);
                if (memcmp(t, b, sizeof(qd_c) * d) != 0) {
                    printf("MISMATCH: %s differs between 1 and 2 threads\n", cases[c].label);
                    same = 0;
                    bad = 1;
                }
                qd_free(t);
            }
            printf("n=%d: every operation bitwise identical with 1 and 2 threads: %s\n", n,
                   same ? "yes" : "NO");
            qd_free(b);
        }
        for (int thr = 1; thr <= 2; thr++) {
            qd_set_threads(thr);
            double troof = 1e30, tg[16];
            for (int c = 0; c < nc; c++)
                tg[c] = 1e30;
            /* warm up */
            roof_sweep(a, d, cos(0.1), sin(0.1));
            for (int c = 0; c < nc; c++)
                run_case(a, n, &cases[c]);
            /* rounds: at least 5, more for small n, until ~1 s per thread count */
            double t_start = bench_now();
            int rounds = 0;
            while (rounds < 5 || (rounds < 400 && bench_now() - t_start < 1.0)) {
                double t0 = bench_now();
                roof_sweep(a, d, cos(0.1), sin(0.1));
                double t1 = bench_now();
                if (t1 - t0 < troof)
                    troof = t1 - t0;
                for (int c = 0; c < nc; c++) {
                    t0 = bench_now();
                    run_case(a, n, &cases[c]);
                    t1 = bench_now();
                    if (t1 - t0 < tg[c])
                        tg[c] = t1 - t0;
                }
                rounds++;
            }
            printf("%-3d %-3d %-22s %10.3f %10.3f %8s   (%d rounds)\n", n, thr, "roof a[i]*=c",
                   troof * 1e3, troof * 1e9 / (double)d, "1.00", rounds);
            for (int c = 0; c < nc; c++) {
                double f = troof / tg[c];
                printf("%-3d %-3d %-22s %10.3f %10.3f %8.2f%s\n", n, thr, cases[c].label,
                       tg[c] * 1e3, tg[c] * 1e9 / (double)d, f,
                       cases[c].gate && strcmp(cases[c].gate, "cx") == 0
                           ? "  (touches half the amplitudes)" : "");
                if (cases[c].nq_g == 1 && strcmp(cases[c].gate, "rz") != 0 && f < worst1q[thr])
                    worst1q[thr] = f;
            }
        }
        qd_free(a);
        printf("\n");
    }
    printf("worst 1-qubit dense gate (h, ry) fraction of roof, n = %d..%d: %.2f with 1 thread, "
           "%.2f with 2 threads (target >= 0.80)\n", nmin, nmax, worst1q[1], worst1q[2]);
    return bad;
}

/* ---------------------------------------------------------------- overlaps vs zgemm */

static int bench_blas(void)
{
    enum { NQ = 8, N = 1000 };
    const size_t dim = 1u << NQ;
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("BLAS: %s   [OPENBLAS_CORETYPE=%s]\n", qd_la_info(), ct ? ct : "(unset)");
    qd_c *A = qd_malloc(sizeof(qd_c) * dim * N), *B = qd_malloc(sizeof(qd_c) * dim * N);
    qd_c *C = qd_malloc(sizeof(qd_c) * N * N);
    double *F1 = qd_malloc(sizeof(double) * N * N), *F2 = qd_malloc(sizeof(double) * N * N);
    if (!A || !B || !C || !F1 || !F2) {
        fprintf(stderr, "bench_core: out of memory\n");
        return 1;
    }
    qd_set_threads(2);
    for (size_t j = 0; j < N; j++) {
        qd_rng r;
        qd_rng_init(&r, 11);
        qd_rng s = qd_rng_sub(&r, j);
        qd_state_haar(A + j * dim, NQ, &s);
        qd_rng_init(&r, 12);
        s = qd_rng_sub(&r, j);
        qd_state_haar(B + j * dim, NQ, &s);
    }
    const double flops = 8.0 * N * N * dim;   /* complex m*n*k multiply-adds */
    int bad = 0;
    printf("%-3s %-34s %10s %10s %8s\n", "thr", "operation (1000x1000, k=256)", "ms", "GFLOP/s",
           "of zgemm");
    for (int thr = 1; thr <= 2; thr++) {
        qd_set_threads(thr);
        double tz = 1e30, to = 1e30;
        qd_err e;
        /* warm up */
        qd_la_zgemm('C', 'N', N, N, dim, 1.0, A, dim, B, dim, 0.0, C, N);
        if (qd_overlaps(A, N, B, N, NQ, thr == 1 ? F1 : F2, &e) != QD_OK) {
            fprintf(stderr, "bench_core: %s\n", e.msg);
            return 1;
        }
        double t_start = bench_now();
        int rounds = 0;
        while (rounds < 5 || (rounds < 100 && bench_now() - t_start < 1.0)) {
            double t0 = bench_now();
            qd_la_zgemm('C', 'N', N, N, dim, 1.0, A, dim, B, dim, 0.0, C, N);
            double t1 = bench_now();
            if (t1 - t0 < tz)
                tz = t1 - t0;
            t0 = bench_now();
            qd_overlaps(A, N, B, N, NQ, thr == 1 ? F1 : F2, &e);
            t1 = bench_now();
            if (t1 - t0 < to)
                to = t1 - t0;
            rounds++;
        }
        printf("%-3d %-34s %10.3f %10.1f %8s   (%d rounds)\n", thr, "raw zgemm A^H B", tz * 1e3,
               flops / tz * 1e-9, "1.00", rounds);
        printf("%-3d %-34s %10.3f %10.1f %8.2f\n", thr, "qd_overlaps |A^H B|^2", to * 1e3,
               flops / to * 1e-9, tz / to);
    }
    /* sanity: a few entries against a direct sum */
    double err = 0;
    for (size_t i = 0; i < N; i += 97)
        for (size_t j = 0; j < N; j += 89) {
            qd_c s = qd_inner(A + i * dim, B + j * dim, dim);
            double v = creal(s) * creal(s) + cimag(s) * cimag(s);
            err = fmax(err, fabs(v - F2[i + j * N]));
        }
    printf("overlaps vs direct inner products: max err %.2e%s\n", err, err < 1e-12 ? "" : "  BAD");
    if (err >= 1e-12)
        bad = 1;
    printf("overlaps bitwise identical with 1 and 2 threads: %s\n",
           memcmp(F1, F2, sizeof(double) * N * N) == 0 ? "yes" : "no (OpenBLAS split)");
    qd_free(A);
    qd_free(B);
    qd_free(C);
    qd_free(F1);
    qd_free(F2);
    return bad;
}

/* ---- the QuEST comparison's sweeps (bench/quest.sh; the QuEST side: bench/quest_sweep.c) */
enum { SW_H, SW_RY, SW_CX, SW_DEPOL, SW_DAMP };

static int sweep_once(qd_c *a, int n, int op)
{
    qd_err e;
    const qd_gate_info *h = qd_gate_lookup("h"), *ry = qd_gate_lookup("ry"),
                       *cx = qd_gate_lookup("cx");
    /* amplitude damping (gamma = 0.2): K0 = diag(1, sqrt(1-g)), K1 = sqrt(g) |0><1| */
    const double g = 0.2;
    const qd_c K[8] = {1, 0, 0, sqrt(1 - g), 0, 0, sqrt(g), 0};
    for (int t = 0; t < n; t++) {
        double th = 0.3 + 0.01 * t;
        int qs[2] = {t, (t + 1) % n};
        switch (op) {
        case SW_H: qd_apply_gate(a, n, 1, h, qs, NULL, 0); break;
        case SW_RY: qd_apply_gate(a, n, 1, ry, qs, &th, 0); break;
        case SW_CX: qd_apply_gate(a, n, 1, cx, qs, NULL, 0); break;
        case SW_DEPOL:   /* p = 0.1 in the Pauli form = lambda 4p/3 in the mixing form */
            if (qd_depol_apply_dm(a, n, qs, 1, 0.4 / 3, &e) != QD_OK)
                return 1;
            break;
        case SW_DAMP:
            if (qd_channel_apply_dm(a, n, qs, 1, K, 2, NULL, QD_CH_AUTO, &e) != QD_OK)
                return 1;
            break;
        }
    }
    return 0;
}

typedef struct {
    qd_c *a;
    int n, op;
} sweep_arg;

static int sweep_fn(void *v)
{
    const sweep_arg *s = v;
    return sweep_once(s->a, s->n, s->op);
}

static int sweep_run(qd_c *a, int n, double elems, int op, const char *name)
{
    sweep_arg s = {a, n, op};
    double t = bench_median5(sweep_fn, &s);
    if (t < 0)
        return 1;
    printf("qd    %-6s %.4f\n", name, t / n / elems * 1e9);
    return 0;
}

static int bench_sweep(int ns, int nd)
{
    size_t d = (size_t)1 << ns, dd = ((size_t)1 << nd) * ((size_t)1 << nd);
    qd_c *a = qd_malloc(sizeof(qd_c) * (d > dd ? d : dd));
    if (!a)
        return 1;
    fill_random(a, d, 7);
    int bad = sweep_run(a, ns, (double)d, SW_H, "h") | sweep_run(a, ns, (double)d, SW_RY, "ry") |
              sweep_run(a, ns, (double)d, SW_CX, "cx");
    /* |+><+| on nd qubits (as QuEST's initPlusState): every entry 1/2^nd */
    for (size_t i = 0; i < dd; i++)
        a[i] = 1.0 / (double)((size_t)1 << nd);
    bad |= sweep_run(a, nd, (double)dd, SW_DEPOL, "depol") |
           sweep_run(a, nd, (double)dd, SW_DAMP, "damp");
    qd_free(a);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "sweep") == 0) {
        int ns = atoi(argv[2]), nd = atoi(argv[3]);
        if (ns < 2 || ns > 30 || nd < 2 || nd > 15) {
            fprintf(stderr, "bench_core: sweep SVN DMN: 2..30 and 2..15 qubits expected\n");
            return 2;
        }
        const char *t = getenv("OMP_NUM_THREADS");
        qd_set_threads(t && atoi(t) > 0 ? atoi(t) : 1);
        return bench_sweep(ns, nd);
    }
    if (argc >= 2 && strcmp(argv[1], "gates") == 0) {
        int nmin = argc >= 3 ? atoi(argv[2]) : 20, nmax = argc >= 4 ? atoi(argv[3]) : 24;
        if (nmin < 4 || nmax > 30 || nmin > nmax) {
            fprintf(stderr, "bench_core: qubit range 4..30 expected\n");
            return 2;
        }
        return bench_gates(nmin, nmax);
    }
    if (argc >= 2 && strcmp(argv[1], "blas") == 0)
        return bench_blas();
    fprintf(stderr, "usage: bench_core gates [nmin nmax] | bench_core sweep SVN DMN | bench_core blas\n");
    return 2;
}
