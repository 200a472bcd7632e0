/* harness.h — a tiny C test harness. Each test file defines tests with
 *   QD_TEST(name) { ... CHECK(cond, "fmt", ...); CHECK_NEAR(a, b, tol, "what"); ... }
 * Tests register themselves (constructor attribute), so adding a file needs no edit
 * elsewhere. `test_core [filter]` runs the tests whose name contains filter and ends
 * with "N passed, N failed" (counting checks). */
#ifndef QD_HARNESS_H
#define QD_HARNESS_H
#include <stdio.h>
#include <complex.h>
#include "qd.h"

typedef void (*qd_test_fn)(void);
void qd_test_register(const char *name, qd_test_fn fn);
void qd_check_result(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define QD_TEST(name) \
    static void name(void); \
    __attribute__((constructor)) static void reg_##name(void) { qd_test_register(#name, name); } \
    static void name(void)

#define CHECK(cond, ...) qd_check_result(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_NEAR(a, b, tol, what) do { double _a = (a), _b = (b); \
    qd_check_result(fabs(_a - _b) <= (tol), __FILE__, __LINE__, "%s: %.17g vs %.17g (tol %g)", \
                    (what), _a, _b, (double)(tol)); } while (0)

/* ---- naive dense references (ref.c): slow, obviously correct ---- */
/* full 2^nq x 2^nq operator (column-major) of a k-qubit matrix m on qubits qs
 * (qs[0] = MSB of m's local index; qubit q = bit nq-1-q of the global index) */
void ref_full_operator(int nq, const int *qs, int k, const qd_c *m, qd_c *out);
void ref_matvec(const qd_c *M, size_t d, const qd_c *x, qd_c *y);          /* y = M x */
void ref_matmul(const qd_c *A, const qd_c *B, size_t d, qd_c *C);          /* C = A B */
void ref_dagger(const qd_c *A, size_t d, qd_c *out);
double ref_maxdiff(const qd_c *a, const qd_c *b, size_t n);
void ref_random_vec(qd_c *a, size_t n, qd_rng *r);     /* normalised, random complex */
void ref_random_dm(qd_c *rho, size_t d, qd_rng *r);    /* random full-rank density matrix */
#endif
