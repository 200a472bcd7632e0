/* main.c — runs the registered C tests; prints a summary line "N passed, N failed". */
#include "harness.h"
#include "qd_isa.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TESTS 1024
static struct { const char *name; qd_test_fn fn; } tests[MAX_TESTS];
static int ntests;
static long npass, nfail;
static const char *current;

void qd_test_register(const char *name, qd_test_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests].fn = fn;
        ntests++;
    }
}

void qd_check_result(int ok, const char *file, int line, const char *fmt, ...)
{
    if (ok) {
        npass++;
        return;
    }
    nfail++;
    if (nfail > 200)
        return;   /* do not flood the log */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s (%s:%d): ", current, file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    if (qd_isa_error()) {   /* QD_SIMD names a set this build or CPU lacks */
        fprintf(stderr, "test_core: %s\n", qd_isa_error());
        return 2;
    }
    printf("kernel set: %s (this CPU runs: %s)%s\n", qd_isa_name(), qd_isa_runnable_list(),
           qd_isa_assume_no_fma ? ", the paths for CPUs without FMA" : "");
    /* run in name order so the log is stable */
    qsort(tests, ntests, sizeof tests[0], cmp);
    for (int i = 0; i < ntests; i++) {
        if (filter && !strstr(tests[i].name, filter))
            continue;
        current = tests[i].name;
        long f0 = nfail;
        tests[i].fn();
        printf("%-40s %s\n", tests[i].name, nfail == f0 ? "ok" : "FAILED");
    }
    printf("%ld passed, %ld failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
