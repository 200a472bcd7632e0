/* isa.c — which kernel set runs (see qd_isa.h). Compiled once, for the baseline CPU, like
 * everything outside the kernel sets: it must run on any x86-64 to decide what else can. */
#include "qd_isa.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_name = "portable";
static int g_fma;   /* the CPU has FMA instructions */
int qd_isa_assume_no_fma = 0;
static char g_error[256];
static int g_ready;

/* can this CPU run set `name`? (__builtin_cpu_supports also checks that the OS saves the
 * wide registers: the ISA levels test XCR0 through libgcc's cpu model) */
static int cpu_runs(const char *name)
{
    if (strcmp(name, "portable") == 0 || strcmp(name, "native") == 0)
        return 1;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (strcmp(name, "avx2") == 0)
        return __builtin_cpu_supports("x86-64-v3") != 0;
    if (strcmp(name, "avx512") == 0)
        return __builtin_cpu_supports("x86-64-v4") != 0;
#endif
    return 0;
}

static int find(const char *name)
{
    for (int i = 0; i < qd_isa_nsets; i++)
        if (strcmp(qd_isa_sets[i].name, name) == 0)
            return i;
    return -1;
}

static void use(int i)
{
    if (qd_isa_nentries > 0)   /* a single-set build has no table */
        memcpy(qd_isa_active, qd_isa_sets[i].table, sizeof(void *) * (size_t)qd_isa_nentries);
    g_name = qd_isa_sets[i].name;
}

void qd_isa_init(void)
{
    if (g_ready)
        return;
    g_ready = 1;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    g_fma = __builtin_cpu_supports("fma") != 0;
#else
    g_fma = 1;   /* arm64 and the others qd targets have a fused multiply-add */
#endif
    /* tests and benchmarks: the paths of a CPU without FMA instructions, on any CPU */
    const char *nofma = getenv("QD_ASSUME_NO_FMA");
    if (nofma && strcmp(nofma, "1") == 0)
        qd_isa_assume_no_fma = 1;
    int best = 0;   /* the sets are listed worst first; the first is always runnable */
    for (int i = 0; i < qd_isa_nsets; i++)
        if (cpu_runs(qd_isa_sets[i].name))
            best = i;
    const char *want = getenv("QD_SIMD");
    if (want && *want && strcmp(want, "auto") != 0) {
        int i = find(want);
        if (i < 0)
            snprintf(g_error, sizeof g_error,
                     "QD_SIMD=%.40s: no such kernel set in this build (built: %s; or auto)",
                     want, qd_isa_built());
        else if (!cpu_runs(want))
            snprintf(g_error, sizeof g_error,
                     "QD_SIMD=%.40s: this CPU cannot run that kernel set (it runs: %s)",
                     want, qd_isa_runnable_list());
        else
            best = i;
    }
    use(best);
}

int qd_isa_fma_hw(void)
{
    qd_isa_init();
    return g_fma && !qd_isa_assume_no_fma;
}

const char *qd_isa_name(void)
{
    qd_isa_init();
    return g_name;
}

const char *qd_isa_error(void)
{
    qd_isa_init();
    return g_error[0] ? g_error : NULL;
}

static void list(char *buf, size_t cap, int runnable_only)
{
    buf[0] = 0;
    for (int i = 0; i < qd_isa_nsets; i++) {
        if (runnable_only && !cpu_runs(qd_isa_sets[i].name))
            continue;
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", l ? " " : "", qd_isa_sets[i].name);
    }
}

const char *qd_isa_built(void)
{
    static char buf[128];
    list(buf, sizeof buf, 0);
    return buf;
}

const char *qd_isa_runnable_list(void)
{
    static char buf[128];
    list(buf, sizeof buf, 1);
    return buf;
}

int qd_isa_runnable(const char *name)
{
    return find(name) >= 0 && cpu_runs(name);
}

const char *qd_isa_cpu(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3"))
        return "x86-64-v3 (AVX2 FMA, no AVX-512)";
    if (__builtin_cpu_supports("x86-64-v2"))
        return "x86-64-v2 (SSE4.2, no AVX2)";
    return "x86-64 (SSE2)";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "unknown";
#endif
}

qd_status qd_isa_select(const char *name, qd_err *e)
{
    qd_isa_init();
    int i = find(name);
    if (i < 0)
        return qd_fail(e, QD_EARG, "no kernel set '%s' in this build (built: %s)", name,
                       qd_isa_built());
    if (!cpu_runs(name))
        return qd_fail(e, QD_EARG, "this CPU cannot run the kernel set '%s' (it runs: %s)",
                       name, qd_isa_runnable_list());
    use(i);
    return QD_OK;
}
