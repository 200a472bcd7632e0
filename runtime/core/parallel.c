/* parallel.c — the thread count used by core loops (OpenMP) and by OpenBLAS.
 * Results never depend on it: kernels parallelise over independent amplitudes or
 * members, and reductions sum fixed blocks in order. */
#include "qd.h"
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static int g_threads = 1;

void qd_set_threads(int n)
{
    if (n < 1)
        n = 1;
    g_threads = n;
    /* OpenBLAS first: its OpenMP build's openblas_set_num_threads(1) also sets OpenMP's
     * default thread count (omp_set_num_threads), which must end up n */
    qd_la_set_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int qd_get_threads(void)
{
    return g_threads;
}

int qd_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Switches read by the kernels live here, in a file compiled once: each kernel set is a
 * separate copy of the kernel code (runtime/core/qd_isa.h) and would have its own copy. */
volatile int qd_interrupt = 0;       /* qd.h: set by the interpreter's signal handlers */
int qd_adjoint_generic_only = 0;   /* tests: force the generic adjoint (qd_circuit.h) */
int qd_sse_generic_only = 0;       /* tests: force the generic SSE member step (qd_sse_lanes.h) */

/* ---- progress of long single calls (qd.h) */
qd_progress_cb qd_progress_hook = NULL;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void qd_progress(const char *what, double frac)
{
    static const char *cur;
    static double t0, tlast;
    static int shown;
    if (!qd_progress_hook)
        return;
    double t = now_s();
    if (frac <= 0 || what != cur) {   /* a new call */
        cur = what;
        t0 = tlast = t;
        shown = 0;
        if (frac <= 0)
            return;
    }
    if (frac >= 1) {   /* done: the hook clears its line if it drew one */
        if (shown)
            qd_progress_hook(what, 1, t - t0);
        cur = NULL;
        return;
    }
    /* the first report after a second (short calls stay silent), then four a second */
    if (t - t0 >= 1.0 && t - tlast >= 0.25) {
        qd_progress_hook(what, frac, t - t0);
        tlast = t;
        shown = 1;
    }
}
