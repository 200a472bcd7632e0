/* test_state.c — state constructors and conversions against naive references: basis
 * states, Haar states (normalisation, determinism), embedding with ancillas most
 * significant, Kronecker products of vectors and density matrices, density matrices of
 * states and ensembles. */
#include "harness.h"
#include <math.h>
#include <string.h>

QD_TEST(state_basis)
{
    qd_c a[16];
    qd_state_zero(a, 4);
    int ok = a[0] == 1;
    for (int i = 1; i < 16; i++)
        ok &= a[i] == 0;
    CHECK(ok, "zero state is |0000>");
    qd_state_basis(a, 4, 9);
    ok = 1;
    for (int i = 0; i < 16; i++)
        ok &= a[i] == (i == 9 ? 1.0 : 0.0);
    CHECK(ok, "basis state |1001> is index 9");
    qd_state_zero(a, 0);
    CHECK(a[0] == 1, "0-qubit state is the scalar 1");
}

QD_TEST(state_haar)
{
    qd_rng r1, r2, r3;
    qd_rng_init(&r1, 123);
    qd_rng_init(&r2, 123);
    qd_rng_init(&r3, 124);
    enum { NQ = 13 };   /* 8192 amplitudes: more than one reduction block */
    const size_t d = (size_t)1 << NQ;
    qd_c *a = qd_malloc(sizeof(qd_c) * d), *b = qd_malloc(sizeof(qd_c) * d);
    qd_c *c = qd_malloc(sizeof(qd_c) * d);
    qd_state_haar(a, NQ, &r1);
    qd_state_haar(b, NQ, &r2);
    qd_state_haar(c, NQ, &r3);
    double n2 = 0;
    for (size_t i = 0; i < d; i++)
        n2 += creal(a[i] * conj(a[i]));
    CHECK_NEAR(n2, 1.0, 1e-13, "Haar state is normalised");
    CHECK(memcmp(a, b, sizeof(qd_c) * d) == 0, "same seed gives the same Haar state bitwise");
    CHECK(memcmp(a, c, sizeof(qd_c) * d) != 0, "different seeds give different states");
    CHECK(r1.ctr == r2.ctr, "the generator advanced the same way");

    /* it is the normalised vector of the generator's complex normals, in order */
    qd_rng r4;
    qd_rng_init(&r4, 123);
    double s = 0;
    for (size_t i = 0; i < d; i++) {
        c[i] = qd_rng_cnormal(&r4);
        s += creal(c[i] * conj(c[i]));
    }
    for (size_t i = 0; i < d; i++)
        c[i] /= sqrt(s);
    CHECK(ref_maxdiff(a, c, d) < 1e-14, "Haar state = normalised complex normals");

    /* small statistics: E|a_i|^2 = 1/d over many 1-qubit Haar states, phases uniform */
    qd_rng r5;
    qd_rng_init(&r5, 9);
    double m0 = 0, re01 = 0;
    int N = 20000;
    for (int k = 0; k < N; k++) {
        qd_c v[2];
        qd_state_haar(v, 1, &r5);
        m0 += creal(v[0] * conj(v[0]));
        re01 += creal(v[0] * conj(v[1]));
    }
    CHECK_NEAR(m0 / N, 0.5, 0.01, "E|a_0|^2 = 1/2");
    CHECK_NEAR(re01 / N, 0.0, 0.01, "E Re a_0 conj(a_1) = 0");
    qd_free(a);
    qd_free(b);
    qd_free(c);
}

QD_TEST(state_embed)
{
    qd_rng r;
    qd_rng_init(&r, 3);
    qd_c psi[8], out[32], want[32], zero[4];
    ref_random_vec(psi, 8, &r);
    qd_state_embed(psi, 3, 2, out);
    /* |00>_A (x) psi, ancillas first (most significant) */
    qd_state_zero(zero, 2);
    qd_kron_vec(zero, 2, psi, 3, want);
    CHECK(ref_maxdiff(out, want, 32) == 0, "embed = |00> (x) psi");
    CHECK(memcmp(out, psi, sizeof psi) == 0, "psi sits in indices 0..7");
    /* in place: psi at the start of a buffer large enough for the result */
    qd_c buf[32];
    memcpy(buf, psi, sizeof psi);
    for (int i = 8; i < 32; i++)
        buf[i] = 7;   /* garbage that must be cleared */
    qd_state_embed(buf, 3, 2, buf);
    CHECK(memcmp(buf, out, sizeof out) == 0, "embed in place");
    qd_state_embed(psi, 3, 0, out);
    CHECK(memcmp(out, psi, sizeof psi) == 0, "embed with no ancilla copies");
}

QD_TEST(state_kron_vec)
{
    qd_rng r;
    qd_rng_init(&r, 4);
    qd_c a[4], b[8], out[32];
    ref_random_vec(a, 4, &r);
    ref_random_vec(b, 8, &r);
    qd_kron_vec(a, 2, b, 3, out);
    /* index bits: the 2 high bits pick a's entry, the 3 low bits b's */
    double err = 0;
    for (size_t i = 0; i < 32; i++)
        err = fmax(err, cabs(out[i] - a[i >> 3] * b[i & 7]));
    CHECK(err < 1e-15, "kron_vec: out[i] = a[i>>3] b[i&7] (err %g)", err);

    /* a gate on qubit 0 of a (x) b acts on a's first qubit */
    qd_c ga[4], gout[32];
    memcpy(ga, a, sizeof a);
    int q0 = 0;
    qd_apply_gate(ga, 2, 1, qd_gate_lookup("h"), &q0, NULL, 0);
    qd_kron_vec(ga, 2, b, 3, gout);
    qd_apply_gate(out, 5, 1, qd_gate_lookup("h"), &q0, NULL, 0);
    CHECK(ref_maxdiff(out, gout, 32) < 1e-15, "a's qubits come first");

    /* big enough for the threaded path */
    enum { NA = 9, NB = 8 };
    qd_c *A = qd_malloc(sizeof(qd_c) << NA), *B = qd_malloc(sizeof(qd_c) << NB);
    qd_c *O = qd_malloc(sizeof(qd_c) << (NA + NB));
    ref_random_vec(A, (size_t)1 << NA, &r);
    ref_random_vec(B, (size_t)1 << NB, &r);
    qd_kron_vec(A, NA, B, NB, O);
    err = 0;
    for (size_t i = 0; i < ((size_t)1 << (NA + NB)); i++)
        err = fmax(err, cabs(O[i] - A[i >> NB] * B[i & (((size_t)1 << NB) - 1)]));
    CHECK(err < 1e-15, "kron_vec 9 (x) 8 qubits (err %g)", err);
    qd_free(A);
    qd_free(B);
    qd_free(O);
}

QD_TEST(state_kron_dm)
{
    qd_rng r;
    qd_rng_init(&r, 5);
    enum { NA = 2, NB = 1, N = NA + NB };
    const size_t da = 1 << NA, db = 1 << NB, D = 1 << N;
    qd_c A[16], B[4], out[64], EA[64], EB[64], want[64];
    ref_random_dm(A, da, &r);
    ref_random_dm(B, db, &r);
    qd_kron_dm(A, NA, B, NB, out);
    /* A (x) B = (A (x) I)(I (x) B), each built by the reference operator embedding */
    int qa[NA] = {0, 1}, qb[NB] = {2};
    ref_full_operator(N, qa, NA, A, EA);
    ref_full_operator(N, qb, NB, B, EB);
    ref_matmul(EA, EB, D, want);
    CHECK(ref_maxdiff(out, want, D * D) < 1e-15, "kron_dm = (A (x) I)(I (x) B)");
    double tr = 0;
    for (size_t i = 0; i < D; i++)
        tr += creal(out[i + i * D]);
    CHECK_NEAR(tr, 1.0, 1e-14, "trace of a product state is 1");

    /* consistent with kron_vec on pure states */
    qd_c a[4], b[2], ab[8], ra[16], rb[4], rab[64], rab2[64];
    ref_random_vec(a, 4, &r);
    ref_random_vec(b, 2, &r);
    qd_kron_vec(a, 2, b, 1, ab);
    qd_dm_from_state(a, 2, ra);
    qd_dm_from_state(b, 1, rb);
    qd_kron_dm(ra, 2, rb, 1, rab);
    qd_dm_from_state(ab, 3, rab2);
    CHECK(ref_maxdiff(rab, rab2, 64) < 1e-15, "|a><a| (x) |b><b| = |ab><ab|");
}

QD_TEST(state_dm_from_state)
{
    qd_rng r;
    qd_rng_init(&r, 6);
    qd_c psi[8], rho[64];
    ref_random_vec(psi, 8, &r);
    qd_dm_from_state(psi, 3, rho);
    double err = 0, herm = 0, tr = 0;
    for (size_t c = 0; c < 8; c++)
        for (size_t rr = 0; rr < 8; rr++) {
            err = fmax(err, cabs(rho[rr + 8 * c] - psi[rr] * conj(psi[c])));
            herm = fmax(herm, cabs(rho[rr + 8 * c] - conj(rho[c + 8 * rr])));
        }
    for (size_t i = 0; i < 8; i++)
        tr += creal(rho[i + 8 * i]);
    CHECK(err < 1e-15, "rho[r,c] = psi_r conj(psi_c) (column-major)");
    /* not bitwise: with -march=native the compiler may fuse r,c and c,r differently */
    CHECK(herm < 1e-16, "rho is Hermitian (err %g)", herm);
    CHECK_NEAR(tr, 1.0, 1e-14, "trace 1");
}

QD_TEST(state_dm_from_ensemble)
{
    qd_rng r;
    qd_rng_init(&r, 7);
    enum { N = 3, CNT = 7 };
    const size_t d = 1 << N;
    qd_c A[CNT * 8], rho[64], want[64] = {0}, one[64];
    for (int j = 0; j < CNT; j++)
        ref_random_vec(A + j * d, d, &r);
    qd_dm_from_ensemble(A, N, CNT, rho);
    for (int j = 0; j < CNT; j++) {
        qd_dm_from_state(A + j * d, N, one);
        for (size_t i = 0; i < d * d; i++)
            want[i] += one[i] / CNT;
    }
    CHECK(ref_maxdiff(rho, want, d * d) < 1e-14, "mean of |psi_j><psi_j| (err %g)",
          ref_maxdiff(rho, want, d * d));
    /* a 1-member ensemble is the pure state */
    qd_dm_from_ensemble(A, N, 1, rho);
    qd_dm_from_state(A, N, one);
    CHECK(ref_maxdiff(rho, one, d * d) < 1e-15, "1 member = |psi><psi|");
    qd_dm_from_ensemble(A, N, 0, rho);
    int zero = 1;
    for (size_t i = 0; i < d * d; i++)
        zero &= rho[i] == 0;
    CHECK(zero, "empty ensemble gives the zero matrix");
}
