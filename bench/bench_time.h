/* bench_time.h — the clock and the sweep timing rule shared by bench_core.c (qd) and
 * quest_sweep.c (QuEST), so the two sides of bench/quest.sh are timed alike. */
#ifndef QD_BENCH_TIME_H
#define QD_BENCH_TIME_H
#include <stdlib.h>
#include <time.h>

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* seconds of one run of fn(ctx): one warm-up run, then the median of 5; -1 if fn fails */
static double bench_median5(int (*fn)(void *), void *ctx)
{
    double t[5];
    if (fn(ctx))
        return -1;
    for (int r = 0; r < 5; r++) {
        double t0 = bench_now();
        fn(ctx);
        t[r] = bench_now() - t0;
    }
    qsort(t, 5, sizeof t[0], bench_cmpd);
    return t[2];
}
#endif
