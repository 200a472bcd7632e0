/* test_quantities.c — norms, inner products, Pauli expectations, fidelities, distances,
 * entropy, Schmidt rank and overlaps against naive references and known closed forms. */
#include "harness.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const qd_c PAULI[4][4] = {
    {1, 0, 0, 1},                  /* I */
    {0, 1, 1, 0},                  /* X */
    {0, I, -I, 0},                 /* Y = [[0, -i], [i, 0]] column-major */
    {1, 0, 0, -1},                 /* Z */
};

static int pauli_index(char c)
{
    return c == 'X' ? 1 : c == 'Y' ? 2 : c == 'Z' ? 3 : 0;
}

/* Kronecker product of single-qubit Paulis ops[0] (x) ops[1] (x) ... (ops[0] = MSB) */
static void kron_paulis(const char *ops, int k, qd_c *m)
{
    size_t K = (size_t)1 << k;
    for (size_t c = 0; c < K; c++)
        for (size_t r = 0; r < K; r++) {
            qd_c v = 1;
            for (int j = 0; j < k; j++) {
                int sh = k - 1 - j;
                v *= PAULI[pauli_index(ops[j])][((r >> sh) & 1) + 2 * ((c >> sh) & 1)];
            }
            m[r + c * K] = v;
        }
}

static qd_c naive_inner(const qd_c *a, const qd_c *b, size_t d)
{
    qd_c s = 0;
    for (size_t i = 0; i < d; i++)
        s += conj(a[i]) * b[i];
    return s;
}

static void outer(const qd_c *psi, size_t d, qd_c *rho)
{
    for (size_t c = 0; c < d; c++)
        for (size_t r = 0; r < d; r++)
            rho[r + c * d] = psi[r] * conj(psi[c]);
}

/* ---------------------------------------------------------------- norms */

QD_TEST(quant_norm_inner)
{
    qd_rng r;
    qd_rng_init(&r, 61);
    size_t sizes[] = {1, 2, 3, 7, 4096, 4097, 3 * 4096 + 5, 1 << 17};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        size_t d = sizes[t];
        qd_c *a = qd_malloc(sizeof(qd_c) * d), *b = qd_malloc(sizeof(qd_c) * d);
        for (size_t i = 0; i < d; i++) {
            a[i] = qd_rng_cnormal(&r);
            b[i] = qd_rng_cnormal(&r);
        }
        double n2 = 0;
        for (size_t i = 0; i < d; i++)
            n2 += creal(a[i] * conj(a[i]));
        qd_c ip = naive_inner(a, b, d);
        CHECK(fabs(qd_norm2(a, d) - n2) <= 1e-13 * n2, "norm2 d=%zu", d);
        CHECK(cabs(qd_inner(a, b, d) - ip) <= 1e-12 * sqrt((double)d), "inner d=%zu", d);
        qd_c self = qd_inner(a, a, d);
        CHECK(fabs(creal(self) - n2) <= 1e-13 * n2 && fabs(cimag(self)) <= 1e-12 * n2,
              "<a|a> = |a|^2");
        qd_free(a);
        qd_free(b);
    }
    CHECK(qd_norm2(NULL, 0) == 0 && qd_inner(NULL, NULL, 0) == 0, "empty");
}

/* bitwise identical for 1 and 2 threads */
QD_TEST(quant_deterministic_threads)
{
    qd_rng r;
    qd_rng_init(&r, 62);
    size_t d = (size_t)1 << 18;
    qd_c *a = qd_malloc(sizeof(qd_c) * d), *b = qd_malloc(sizeof(qd_c) * d);
    for (size_t i = 0; i < d; i++) {
        a[i] = qd_rng_cnormal(&r);
        b[i] = qd_rng_cnormal(&r);
    }
    int qs[3] = {17, 0, 9};
    qd_set_threads(1);
    double n1 = qd_norm2(a, d), e1 = qd_expect_pauli(a, 18, "XYZ", qs, 3);
    qd_c i1 = qd_inner(a, b, d);
    qd_set_threads(2);
    double n2 = qd_norm2(a, d), e2 = qd_expect_pauli(a, 18, "XYZ", qs, 3);
    qd_c i2 = qd_inner(a, b, d);
    qd_set_threads(1);
    CHECK(memcmp(&n1, &n2, sizeof n1) == 0, "norm2 same bits");
    CHECK(memcmp(&i1, &i2, sizeof i1) == 0, "inner same bits");
    CHECK(memcmp(&e1, &e2, sizeof e1) == 0, "expect_pauli same bits");
    qd_free(a);
    qd_free(b);
}

/* ---------------------------------------------------------------- Pauli expectations */

QD_TEST(quant_expect_pauli_vs_dense)
{
    qd_rng r;
    qd_rng_init(&r, 63);
    static const char sym[4] = {'I', 'X', 'Y', 'Z'};
    int sets[][3] = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {0, 1, 0}, {2, 0, 0}, {1, 3, 0},
                     {3, 0, 1}, {2, 4, 0}, {4, 1, 3}, {0, 2, 4}};
    int klen[] = {1, 1, 1, 2, 2, 2, 3, 3, 3, 3};
    for (int n = 1; n <= 5; n++) {
        size_t d = (size_t)1 << n;
        qd_c psi[32], rho[1024], P[1024], Ppsi[32], PR[1024], m[64];
        ref_random_vec(psi, d, &r);
        ref_random_dm(rho, d, &r);
        for (size_t t = 0; t < sizeof klen / sizeof klen[0]; t++) {
            int k = klen[t], bad = 0;
            for (int j = 0; j < k; j++)
                bad |= sets[t][j] >= n;
            if (bad)
                continue;
            int nops = 1 << (2 * k);
            for (int code = 0; code < nops; code++) {
                char ops[4] = {0};
                for (int j = 0; j < k; j++)
                    ops[j] = sym[(code >> (2 * j)) & 3];
                kron_paulis(ops, k, m);
                ref_full_operator(n, sets[t], k, m, P);
                ref_matvec(P, d, psi, Ppsi);
                qd_c ref = naive_inner(psi, Ppsi, d);
                double got = qd_expect_pauli(psi, n, ops, sets[t], k);
                CHECK(fabs(got - creal(ref)) < 1e-14, "<%s> n=%d: %g vs %g", ops, n, got,
                      creal(ref));
                ref_matmul(P, rho, d, PR);
                qd_c tr = 0;
                for (size_t i = 0; i < d; i++)
                    tr += PR[i + i * d];
                got = qd_dm_expect_pauli(rho, n, ops, sets[t], k);
                CHECK(fabs(got - creal(tr)) < 1e-14, "Tr(%s rho) n=%d: %g vs %g", ops, n, got,
                      creal(tr));
            }
        }
    }
    /* known values: <0|Z|0> = 1, <+|X|+> = 1, <+i|Y|+i> = 1, Bell <ZZ> = <XX> = 1, <YY> = -1 */
    qd_c zero[2] = {1, 0}, plus[2] = {M_SQRT1_2, M_SQRT1_2}, pi[2] = {M_SQRT1_2, I * M_SQRT1_2};
    int q0 = 0, q01[2] = {0, 1};
    CHECK(qd_expect_pauli(zero, 1, "Z", &q0, 1) == 1, "<0|Z|0>");
    CHECK_NEAR(qd_expect_pauli(plus, 1, "X", &q0, 1), 1, 1e-15, "<+|X|+>");
    CHECK_NEAR(qd_expect_pauli(pi, 1, "Y", &q0, 1), 1, 1e-15, "<+i|Y|+i>");
    qd_c bell[4] = {M_SQRT1_2, 0, 0, M_SQRT1_2};
    CHECK_NEAR(qd_expect_pauli(bell, 2, "ZZ", q01, 2), 1, 1e-15, "Bell ZZ");
    CHECK_NEAR(qd_expect_pauli(bell, 2, "XX", q01, 2), 1, 1e-15, "Bell XX");
    CHECK_NEAR(qd_expect_pauli(bell, 2, "YY", q01, 2), -1, 1e-15, "Bell YY");
    CHECK_NEAR(qd_expect_pauli(bell, 2, "ZI", q01, 2), 0, 1e-15, "Bell ZI");
}

/* larger register (parallel blocks): against Paulis applied one qubit at a time */
QD_TEST(quant_expect_pauli_large)
{
    qd_rng r;
    qd_rng_init(&r, 64);
    int n = 16;
    size_t d = (size_t)1 << n;
    qd_c *psi = qd_malloc(sizeof(qd_c) * d), *v = qd_malloc(sizeof(qd_c) * d);
    ref_random_vec(psi, d, &r);
    const char *strs[] = {"XYZ", "YYY", "ZIX", "YXI"};
    int qs[3] = {15, 3, 8};
    for (int t = 0; t < 4; t++) {
        memcpy(v, psi, sizeof(qd_c) * d);
        for (int j = 0; j < 3; j++) {
            const qd_c *m = PAULI[pauli_index(strs[t][j])];
            size_t bit = (size_t)1 << (n - 1 - qs[j]);
            for (size_t i = 0; i < d; i++)
                if (!(i & bit)) {
                    qd_c x0 = v[i], x1 = v[i | bit];
                    v[i] = m[0] * x0 + m[2] * x1;
                    v[i | bit] = m[1] * x0 + m[3] * x1;
                }
        }
        double ref = creal(naive_inner(psi, v, d));
        CHECK(fabs(qd_expect_pauli(psi, n, strs[t], qs, 3) - ref) < 1e-13, "large <%s>",
              strs[t]);
    }
    qd_free(psi);
    qd_free(v);
}

/* a batch of members: the same bits as qd_expect_pauli member by member (one block per
 * member up to QD_BLOCK amplitudes, the block sums beyond) */
QD_TEST(quant_expect_pauli_batch)
{
    qd_rng r;
    qd_rng_init(&r, 65);
    int ns[] = {1, 2, 4, 13};
    const char *strs[] = {"Y", "XZ", "ZYX", "YIZ"};
    int qs[3] = {0, 1, 2};
    for (int t = 0; t < 4; t++) {
        int n = ns[t], k = (int)strlen(strs[t]);
        size_t d = (size_t)1 << n, count = 5;
        qd_c *a = qd_malloc(sizeof(qd_c) * d * count);
        for (size_t j = 0; j < count; j++)
            ref_random_vec(a + j * d, d, &r);
        double out[5];
        qd_expect_pauli_batch(a, n, count, strs[t], qs, k, out);
        int same = 1;
        for (size_t j = 0; j < count; j++) {
            double one = qd_expect_pauli(a + j * d, n, strs[t], qs, k);
            same &= memcmp(&one, &out[j], sizeof one) == 0;
        }
        CHECK(same, "batch <%s> at n = %d: the per-member bits", strs[t], n);
        qd_free(a);
    }
}

/* qd_vm_atanh (vmath.c): within 4 ulp of libm's atanh, odd, exact at 0 and tiny values */
QD_TEST(quant_vm_atanh)
{
    qd_rng r;
    qd_rng_init(&r, 66);
    size_t n = 20003;
    double *x = qd_malloc(sizeof(double) * n), *y = qd_malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) {
        double u = qd_rng_uniform(&r);
        if (i % 3 == 0)
            x[i] = u * 2 - 1;
        else if (i % 3 == 1)
            x[i] = (u - 0.5) * ldexp(1, -(int)(i % 60));
        else
            x[i] = 1 - ldexp(0.5 + u / 2, -(int)(i % 50));   /* |x| < 1 */
    }
    x[0] = 0;
    x[1] = -0.0;
    x[2] = 1e-300;
    x[3] = -(1 - 0x1p-53);
    qd_vm_atanh(x, y, n);
    double worst = 0;
    int odd = 1;
    for (size_t i = 0; i < n; i++) {
        double want = atanh(x[i]);
        if (y[i] != want)
            worst = fmax(worst, fabs(y[i] - want) / (nextafter(fabs(want), INFINITY) - fabs(want)));
    }
    for (size_t i = 0; i < n; i++)
        x[i] = -x[i];
    double *z = qd_malloc(sizeof(double) * n);
    qd_vm_atanh(x, z, n);
    for (size_t i = 0; i < n; i++)
        odd &= z[i] == -y[i];
    CHECK(worst <= 4, "atanh within 4 ulp of libm: %g", worst);
    CHECK(odd && y[2] == 1e-300 && y[0] == 0 && signbit(y[1]), "odd; exact at 0, -0 and 1e-300");
    qd_free(x);
    qd_free(y);
    qd_free(z);
}

/* ---------------------------------------------------------------- density matrices */

QD_TEST(quant_dm_trace_purity_fid_pure)
{
    qd_rng r;
    qd_rng_init(&r, 65);
    for (int n = 1; n <= 5; n++) {
        size_t d = (size_t)1 << n;
        qd_c rho[1024], rho2[1024], a[32], b[32], ra[1024];
        ref_random_dm(rho, d, &r);
        ref_random_vec(a, d, &r);
        ref_random_vec(b, d, &r);
        CHECK_NEAR(qd_dm_trace_re(rho, n), 1.0, 1e-14, "trace");
        ref_matmul(rho, rho, d, rho2);
        double tr2 = 0;
        for (size_t i = 0; i < d; i++)
            tr2 += creal(rho2[i + i * d]);
        CHECK_NEAR(qd_dm_purity(rho, n), tr2, 1e-14, "purity");
        outer(a, d, ra);
        CHECK_NEAR(qd_dm_purity(ra, n), 1.0, 1e-14, "pure state purity");
        double ov = cabs(naive_inner(a, b, d));
        CHECK_NEAR(qd_fid_pure_pure(a, b, n), ov * ov, 1e-14, "|<a|b>|^2");
        CHECK_NEAR(qd_fid_pure_pure(a, a, n), 1.0, 1e-14, "|<a|a>|^2");
        qd_c ra_psi[32];
        ref_matvec(rho, d, a, ra_psi);
        CHECK_NEAR(qd_fid_pure_dm(a, rho, n), creal(naive_inner(a, ra_psi, d)), 1e-14,
                   "<psi|rho|psi>");
        CHECK_NEAR(qd_fid_pure_dm(a, ra, n), 1.0, 1e-14, "<psi|psi><psi|psi>");
    }
    /* maximally mixed: purity 1/d */
    qd_c mm[64] = {0};
    for (int i = 0; i < 8; i++)
        mm[i + i * 8] = 0.125;
    CHECK_NEAR(qd_dm_purity(mm, 3), 0.125, 1e-16, "maximally mixed purity");
    /* a bigger one through the parallel column blocks */
    int n = 9;
    size_t d = (size_t)1 << n;
    qd_c *rho = qd_malloc(sizeof(qd_c) * d * d), *psi = qd_malloc(sizeof(qd_c) * d),
         *v = qd_malloc(sizeof(qd_c) * d);
    ref_random_vec(psi, d, &r);
    for (size_t i = 0; i < d * d; i++)
        rho[i] = qd_rng_cnormal(&r);
    ref_matvec(rho, d, psi, v);
    CHECK(fabs(qd_fid_pure_dm(psi, rho, n) - creal(naive_inner(psi, v, d))) < 1e-12,
          "large <psi|rho|psi>");
    qd_free(rho);
    qd_free(psi);
    qd_free(v);
}

/* direct evaluation: F = ||sqrt(sigma) sqrt(rho)||_1^2 (sum of singular values) */
static double fid_by_svd(const qd_c *rho, const qd_c *sigma, size_t d)
{
    qd_c *sr = malloc(sizeof(qd_c) * d * d), *ss = malloc(sizeof(qd_c) * d * d),
         *m = malloc(sizeof(qd_c) * d * d);
    double *s = malloc(sizeof(double) * d);
    qd_la_sqrtm_psd(rho, d, sr, NULL);
    qd_la_sqrtm_psd(sigma, d, ss, NULL);
    ref_matmul(ss, sr, d, m);
    qd_la_svdvals(m, d, d, s, NULL);
    double t = 0;
    for (size_t i = 0; i < d; i++)
        t += s[i];
    free(sr);
    free(ss);
    free(m);
    free(s);
    return t * t;
}

QD_TEST(quant_fid_dm_dm)
{
    qd_rng r;
    qd_rng_init(&r, 66);
    for (int n = 1; n <= 4; n++) {
        size_t d = (size_t)1 << n;
        qd_c a[16], b[16], ra[256], rb[256], rho[256], sigma[256];
        double f;
        /* pure states (rank-deficient): |<a|b>|^2 to rounding, and F(rho, rho) = 1 */
        ref_random_vec(a, d, &r);
        ref_random_vec(b, d, &r);
        outer(a, d, ra);
        outer(b, d, rb);
        double ov = cabs(naive_inner(a, b, d));
        CHECK(qd_fid_dm_dm(ra, rb, n, &f, NULL) == QD_OK, "fid ok");
        CHECK_NEAR(f, ov * ov, 1e-13, "pure states reduce to |<a|b>|^2");
        CHECK(qd_fid_dm_dm(ra, ra, n, &f, NULL) == QD_OK, "fid ok");
        CHECK_NEAR(f, 1.0, 1e-13, "F(pure, pure) = 1");
        /* rho = sigma */
        ref_random_dm(rho, d, &r);
        CHECK(qd_fid_dm_dm(rho, rho, n, &f, NULL) == QD_OK, "fid ok");
        CHECK_NEAR(f, 1.0, 1e-13, "F(rho, rho) = 1");
        /* commuting diagonal states: (sum sqrt(p q))^2 */
        double p[16], q[16], sp = 0, sq = 0;
        for (size_t i = 0; i < d; i++) {
            p[i] = qd_rng_uniform(&r);
            q[i] = qd_rng_uniform(&r);
            sp += p[i];
            sq += q[i];
        }
        memset(rho, 0, sizeof rho);
        memset(sigma, 0, sizeof sigma);
        double bc = 0;
        for (size_t i = 0; i < d; i++) {
            rho[i + i * d] = p[i] / sp;
            sigma[i + i * d] = q[i] / sq;
            bc += sqrt(p[i] / sp * q[i] / sq);
        }
        CHECK(qd_fid_dm_dm(rho, sigma, n, &f, NULL) == QD_OK, "fid ok");
        CHECK_NEAR(f, bc * bc, 1e-12, "diagonal states: Bhattacharyya^2");
        /* random full-rank pair vs the singular-value formula; symmetric in its arguments */
        ref_random_dm(rho, d, &r);
        ref_random_dm(sigma, d, &r);
        double f2;
        CHECK(qd_fid_dm_dm(rho, sigma, n, &f, NULL) == QD_OK &&
              qd_fid_dm_dm(sigma, rho, n, &f2, NULL) == QD_OK, "fid ok");
        CHECK_NEAR(f, fid_by_svd(rho, sigma, d), 1e-10, "random rho, sigma vs SVD form");
        CHECK_NEAR(f, f2, 1e-10, "F symmetric");
        CHECK(f > 0 && f < 1, "0 < F < 1");
        if (n == 1) {
            /* one qubit: F = Tr(rho sigma) + 2 sqrt(det rho det sigma) */
            qd_c rs[4];
            ref_matmul(rho, sigma, 2, rs);
            double det1 = creal(rho[0] * rho[3] - rho[1] * rho[2]);
            double det2 = creal(sigma[0] * sigma[3] - sigma[1] * sigma[2]);
            CHECK_NEAR(f, creal(rs[0] + rs[3]) + 2 * sqrt(det1 * det2), 1e-12,
                       "one-qubit closed form");
        }
    }
}

QD_TEST(quant_trace_distance)
{
    qd_rng r;
    qd_rng_init(&r, 67);
    for (int n = 1; n <= 4; n++) {
        size_t d = (size_t)1 << n;
        qd_c a[16], b[16], ra[256], rb[256], rho[256], sigma[256];
        double t;
        ref_random_vec(a, d, &r);
        ref_random_vec(b, d, &r);
        outer(a, d, ra);
        outer(b, d, rb);
        double ov = cabs(naive_inner(a, b, d));
        CHECK(qd_trace_distance(ra, rb, n, &t, NULL) == QD_OK, "td ok");
        CHECK_NEAR(t, sqrt(1 - ov * ov), 1e-12, "pure states: sqrt(1 - |<a|b>|^2)");
        ref_random_dm(rho, d, &r);
        CHECK(qd_trace_distance(rho, rho, n, &t, NULL) == QD_OK && fabs(t) < 1e-15, "T(rho,rho)");
        /* diagonal: half the l1 distance of the distributions */
        memset(rho, 0, sizeof rho);
        memset(sigma, 0, sizeof sigma);
        double sp = 0, sq = 0, p[16], q[16], l1 = 0;
        for (size_t i = 0; i < d; i++) {
            p[i] = qd_rng_uniform(&r);
            q[i] = qd_rng_uniform(&r);
            sp += p[i];
            sq += q[i];
        }
        for (size_t i = 0; i < d; i++) {
            rho[i + i * d] = p[i] / sp;
            sigma[i + i * d] = q[i] / sq;
            l1 += fabs(p[i] / sp - q[i] / sq);
        }
        CHECK(qd_trace_distance(rho, sigma, n, &t, NULL) == QD_OK, "td ok");
        CHECK_NEAR(t, 0.5 * l1, 1e-14, "diagonal: half l1");
    }
    /* one qubit: half the distance of the Bloch vectors */
    qd_c r0[4] = {1, 0, 0, 0}, rp[4] = {0.5, 0.5, 0.5, 0.5};
    double t;
    CHECK(qd_trace_distance(r0, rp, 1, &t, NULL) == QD_OK, "td ok");
    CHECK_NEAR(t, 0.5 * sqrt(2.0), 1e-15, "|0> vs |+>");
}

QD_TEST(quant_entropy)
{
    qd_rng r;
    qd_rng_init(&r, 68);
    for (int n = 1; n <= 5; n++) {
        size_t d = (size_t)1 << n;
        qd_c rho[1024] = {0}, a[32];
        double s;
        for (size_t i = 0; i < d; i++)
            rho[i + i * d] = 1.0 / d;
        CHECK(qd_entropy_vn(rho, n, &s, NULL) == QD_OK, "entropy ok");
        CHECK_NEAR(s, n * log(2.0), 1e-13, "maximally mixed: n ln 2");
        ref_random_vec(a, d, &r);
        outer(a, d, rho);
        CHECK(qd_entropy_vn(rho, n, &s, NULL) == QD_OK && fabs(s) < 1e-12, "pure: 0 (%g)", s);
    }
    /* diagonal in a rotated basis: eigenvalues are what counts */
    double p[4] = {0.5, 0.25, 0.125, 0.125};
    qd_c rho[16] = {0}, U[16], T[16], Ud[16], rot[16];
    for (int i = 0; i < 4; i++)
        rho[i + i * 4] = p[i];
    qd_rng_init(&r, 69);
    for (int i = 0; i < 16; i++)
        U[i] = qd_rng_cnormal(&r);
    qd_c rd[4];
    CHECK(qd_la_qr(U, 4, 4, rd, NULL) == QD_OK, "random unitary");
    ref_matmul(U, rho, 4, T);
    ref_dagger(U, 4, Ud);
    ref_matmul(T, Ud, 4, rot);
    double s, h = 0;
    for (int i = 0; i < 4; i++)
        h -= p[i] * log(p[i]);
    CHECK(qd_entropy_vn(rot, 2, &s, NULL) == QD_OK, "entropy ok");
    CHECK_NEAR(s, h, 1e-13, "rotated diagonal state");
}

/* ---------------------------------------------------------------- Schmidt rank */

QD_TEST(quant_schmidt_rank)
{
    qd_rng r;
    qd_rng_init(&r, 70);
    size_t rank = 99;
    qd_err e;
    /* product of 4 random one-qubit states: rank 1 across every split */
    qd_c q[4][2], prod[16];
    for (int j = 0; j < 4; j++)
        ref_random_vec(q[j], 2, &r);
    for (size_t i = 0; i < 16; i++)
        prod[i] = q[0][i >> 3 & 1] * q[1][i >> 2 & 1] * q[2][i >> 1 & 1] * q[3][i & 1];
    int splits[][3] = {{0}, {1}, {3}, {0, 2}, {2, 0}, {3, 1}, {1, 2, 3}, {3, 0, 2}};
    int ks[] = {1, 1, 1, 2, 2, 2, 3, 3};
    int all1 = 1;
    for (int t = 0; t < 8; t++)
        all1 &= qd_schmidt_rank(prod, 4, splits[t], ks[t], 1e-10, &rank, NULL) == QD_OK &&
                rank == 1;
    CHECK(all1, "product state: rank 1");
    /* Bell pair on qubits 0 and 2, qubit 1 in |+>: (|0+0> + |1+1>)/sqrt 2 */
    qd_c bell[8] = {0};
    for (int b = 0; b < 2; b++)
        for (int m = 0; m < 2; m++)
            bell[(b << 2) | (m << 1) | b] = 0.5;
    struct { int k, A[2]; size_t want; } bc[] = {
        {1, {0}, 2}, {1, {1}, 1}, {1, {2}, 2}, {2, {0, 2}, 1}, {2, {2, 0}, 1}, {2, {0, 1}, 2},
        {2, {1, 2}, 2}, {0, {0}, 1},
    };
    for (size_t t = 0; t < sizeof bc / sizeof bc[0]; t++) {
        CHECK(qd_schmidt_rank(bell, 3, bc[t].A, bc[t].k, 1e-10, &rank, NULL) == QD_OK &&
              rank == bc[t].want, "Bell split %zu: rank %zu, want %zu", t, rank, bc[t].want);
    }
    /* GHZ on 5 qubits: 2 across every non-trivial split */
    qd_c ghz[32] = {0};
    ghz[0] = ghz[31] = M_SQRT1_2;
    int g[][4] = {{0}, {4}, {2, 0}, {3, 1, 4}, {0, 1, 2, 3}};
    int gk[] = {1, 1, 2, 3, 4};
    for (int t = 0; t < 5; t++)
        CHECK(qd_schmidt_rank(ghz, 5, g[t], gk[t], 1e-10, &rank, NULL) == QD_OK && rank == 2,
              "GHZ split %d: %zu", t, rank);
    int allq[5] = {0, 1, 2, 3, 4};
    CHECK(qd_schmidt_rank(ghz, 5, allq, 5, 1e-10, &rank, NULL) == QD_OK && rank == 1,
          "all qubits in A: rank 1");
    /* random 4-qubit state: min(2^k, 2^(4-k)) */
    qd_c rnd[16];
    ref_random_vec(rnd, 16, &r);
    int A2[2] = {3, 0}, A3[3] = {2, 0, 3};
    CHECK(qd_schmidt_rank(rnd, 4, A2, 2, 1e-10, &rank, NULL) == QD_OK && rank == 4, "random 2|2");
    CHECK(qd_schmidt_rank(rnd, 4, A3, 3, 1e-10, &rank, NULL) == QD_OK && rank == 2, "random 3|1");
    /* two Bell pairs (0,3) and (1,2): rank 4 across {0,1}|{2,3}, 1 across {0,3}|{1,2};
     * this catches a reshape that mixes up which bits belong to A */
    qd_c bb[16] = {0};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            bb[(a << 3) | (b << 2) | (b << 1) | a] = 0.5;
    int s01[2] = {0, 1}, s03[2] = {3, 0}, s1[1] = {1};
    CHECK(qd_schmidt_rank(bb, 4, s01, 2, 1e-10, &rank, NULL) == QD_OK && rank == 4, "{0,1}: 4");
    CHECK(qd_schmidt_rank(bb, 4, s03, 2, 1e-10, &rank, NULL) == QD_OK && rank == 1, "{3,0}: 1");
    CHECK(qd_schmidt_rank(bb, 4, s1, 1, 1e-10, &rank, NULL) == QD_OK && rank == 2, "{1}: 2");
    /* bad subsystem */
    int dup[2] = {1, 1}, big[1] = {4};
    qd_err_clear(&e);
    CHECK(qd_schmidt_rank(bb, 4, dup, 2, 1e-10, &rank, &e) == QD_EARG && strstr(e.msg, "twice"),
          "duplicate: %s", e.msg);
    CHECK(qd_schmidt_rank(bb, 4, big, 1, 1e-10, &rank, &e) == QD_EARG &&
          strstr(e.msg, "out of range"), "out of range: %s", e.msg);
}

/* ---------------------------------------------------------------- overlaps */

QD_TEST(quant_overlaps)
{
    qd_rng r;
    qd_rng_init(&r, 71);
    int nq = 3;
    size_t dim = 8, N = 3, M = 5;
    qd_c A[24], B[40];
    for (size_t j = 0; j < N; j++)
        ref_random_vec(A + j * dim, dim, &r);
    for (size_t j = 0; j < M; j++)
        ref_random_vec(B + j * dim, dim, &r);
    double out[15];
    CHECK(qd_overlaps(A, N, B, M, nq, out, NULL) == QD_OK, "overlaps ok");
    int ok = 1;
    for (size_t j = 0; j < M; j++)
        for (size_t i = 0; i < N; i++) {
            double o = cabs(naive_inner(A + i * dim, B + j * dim, dim));
            ok &= fabs(out[i + j * N] - o * o) < 1e-14;
        }
    CHECK(ok, "overlaps vs naive loops");
    /* self-overlaps have a unit diagonal */
    double g[9];
    CHECK(qd_overlaps(A, N, A, N, nq, g, NULL) == QD_OK && fabs(g[0] - 1) < 1e-14 &&
          fabs(g[4] - 1) < 1e-14 && fabs(g[8] - 1) < 1e-14 && g[3] == g[1], "gram diagonal");
    /* empty ensembles; sizes that cannot be allocated or passed to BLAS (inputs untouched) */
    qd_err e;
    qd_err_clear(&e);
    CHECK(qd_overlaps(A, 0, B, M, nq, out, &e) == QD_OK, "N = 0");
    size_t huge = 2147483647;
    CHECK(qd_overlaps(A, huge, B, huge, nq, out, &e) == QD_ENOMEM && e.status == QD_ENOMEM,
          "huge overlap matrix: %s", e.msg);
    qd_err_clear(&e);
    CHECK(qd_overlaps(A, 2, B, 2, 31, out, &e) == QD_EARG && strstr(e.msg, "BLAS"),
          "dimension beyond BLAS int: %s", e.msg);
}
