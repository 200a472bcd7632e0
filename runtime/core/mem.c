/* mem.c — aligned allocation and size arithmetic. Every big buffer in qd is 64-byte
 * aligned (one cache line, one AVX-512 vector) so kernels can use aligned loads. */
#include "qd.h"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int qd_mul_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}

/* --max-memory: one account for qd's buffers and (charged by the interpreter) Lua's heap.
 * Blocks are charged at their usable size, so a free uncharges exactly what was charged. */
static size_t g_limit, g_used;
static int g_hit;

void qd_mem_set_limit(size_t bytes)
{
    g_limit = bytes;
}

size_t qd_mem_get_limit(void)
{
    return g_limit;
}

int qd_mem_limit_hit(void)
{
    return __atomic_load_n(&g_hit, __ATOMIC_RELAXED);
}

int qd_mem_charge(size_t bytes)
{
    if (!g_limit)
        return 1;
    size_t u = __atomic_add_fetch(&g_used, bytes, __ATOMIC_RELAXED);
    if (u > g_limit || u < bytes) {
        __atomic_sub_fetch(&g_used, bytes, __ATOMIC_RELAXED);
        __atomic_store_n(&g_hit, 1, __ATOMIC_RELAXED);
        return 0;
    }
    return 1;
}

void qd_mem_uncharge(size_t bytes)
{
    if (!g_limit)
        return;
    size_t u = __atomic_load_n(&g_used, __ATOMIC_RELAXED), v;
    do
        v = u >= bytes ? u - bytes : 0;
    while (!__atomic_compare_exchange_n(&g_used, &u, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void *qd_malloc(size_t bytes)
{
    if (bytes == 0)
        return NULL;
    size_t rounded = (bytes + QD_ALIGN - 1) & ~(size_t)(QD_ALIGN - 1);
    if (rounded < bytes)
        return NULL;
    void *p = aligned_alloc(QD_ALIGN, rounded);
    if (p && g_limit && !qd_mem_charge(malloc_usable_size(p))) {
        free(p);
        return NULL;
    }
    return p;
}

void *qd_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (qd_mul_overflow(count, size, &bytes))
        return NULL;
    void *p = qd_malloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void qd_free(void *p)
{
    if (p && g_limit)
        qd_mem_uncharge(malloc_usable_size(p));
    free(p);
}

int qd_amp_bytes(int nq, size_t count, size_t *bytes)
{
    if (nq < 0 || nq > QD_MAX_QUBITS)
        return 1;
    size_t dim = (size_t)1 << nq, n;
    if (qd_mul_overflow(dim, count, &n))
        return 1;
    return qd_mul_overflow(n, sizeof(qd_c), bytes);
}

void qd_format_bytes(double bytes, char *buf, size_t len)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 7) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0 || bytes == (double)(long long)bytes)
        snprintf(buf, len, "%.0f %s", bytes, unit[u]);
    else
        snprintf(buf, len, "%.1f %s", bytes, unit[u]);
}

size_t qd_phys_mem(void)
{
    /* read once: it does not change, and the allocator asks on every allocation */
    static size_t cached;
    static int known;
    if (known)
        return cached;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    size_t b = 0;
    if (pages > 0 && psize > 0 && qd_mul_overflow((size_t)pages, (size_t)psize, &b))
        b = SIZE_MAX;
    cached = b;
    known = 1;
    return b;
}

size_t qd_avail_mem(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    int found = 0;
    if (f) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                found = 1;
                break;
            }
        fclose(f);
    }
    if (!found)
        return qd_phys_mem();
    if (kb > SIZE_MAX / 1024)
        return SIZE_MAX;
    return (size_t)kb * 1024;
}
