/* test_pauli.c — Pauli sums (pauli.c) against naive dense references: the dense matrix
 * (Kronecker products of the letters), matrix-free application (single, batched, per-member
 * coefficients), expectations on states and density matrices, products/sums/adjoints,
 * spectra and ground states (QuTiP: tests/data/dynamics, make_dynamics_refs.py),
 * exp(-iHt) by eigen-decomposition (QuTiP expm) and by Krylov (against eig, up to 9
 * qubits), Gibbs states (QuTiP), thread-count independence and error messages. */
#include "harness.h"
#include "qd_dynamics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const qd_c PM[4][4] = {{1, 0, 0, 1}, {0, 1, 1, 0}, {0, I, -I, 0}, {1, 0, 0, -1}};

static int letter_idx(char c)
{
    return c == 'X' ? 1 : c == 'Y' ? 2 : c == 'Z' ? 3 : 0;
}

/* dense matrix of a full-length Pauli string by Kronecker products (qubit 0 leftmost) */
static void ref_string(const char *s, int n, qd_c *out)
{
    size_t d = (size_t)1 << n;
    qd_c *a = malloc(sizeof(qd_c) * d * d), *b = malloc(sizeof(qd_c) * d * d);
    a[0] = 1;
    size_t da = 1;
    for (int q = 0; q < n; q++) {
        const qd_c *m = PM[letter_idx(s[q])];
        size_t db = da * 2;
        for (size_t r = 0; r < db; r++)
            for (size_t c = 0; c < db; c++)
                b[r + c * db] = a[(r >> 1) + (c >> 1) * da] * m[(r & 1) + (c & 1) * 2];
        memcpy(a, b, sizeof(qd_c) * db * db);
        da = db;
    }
    memcpy(out, a, sizeof(qd_c) * d * d);
    free(a);
    free(b);
}

static void ref_sum(const qd_pauli_sum *H, qd_c *out)
{
    size_t d = (size_t)1 << H->n;
    qd_c *m = malloc(sizeof(qd_c) * d * d);
    char buf[64];
    memset(out, 0, sizeof(qd_c) * d * d);
    for (size_t t = 0; t < H->nterms; t++) {
        qd_ps_term_string(H, t, buf);
        ref_string(buf, H->n, m);
        for (size_t i = 0; i < d * d; i++)
            out[i] += H->c[t] * m[i];
    }
    free(m);
}

static void add(qd_pauli_sum *H, qd_c c, const char *full)
{
    int qs[64];
    int n = (int)strlen(full);
    for (int i = 0; i < n; i++)
        qs[i] = i;
    qd_err e;
    qd_status s = qd_ps_add_term(H, c, full, qs, n, &e);
    CHECK(s == QD_OK, "add_term %s", full);
}

static void random_sum(qd_pauli_sum *H, int n, size_t nt, int hermitian, qd_rng *r)
{
    qd_ps_init(H, n);
    char s[64];
    for (size_t t = 0; t < nt; t++) {
        for (int q = 0; q < n; q++)
            s[q] = "IXYZ"[qd_rng_u64(r) & 3];
        s[n] = 0;
        qd_c c = hermitian ? qd_rng_normal(r) : qd_rng_cnormal(r);
        add(H, c, s);
    }
}

static void tfim(qd_pauli_sum *H, int n, double g)
{
    qd_ps_init(H, n);
    qd_err e;
    for (int i = 0; i + 1 < n; i++) {
        int qs[2] = {i, i + 1};
        qd_ps_add_term(H, -1.0, "ZZ", qs, 2, &e);
    }
    for (int i = 0; i < n; i++)
        qd_ps_add_term(H, -g, "X", &i, 1, &e);
}

/* H3 of make_dynamics_refs.py */
void test_h3(qd_pauli_sum *H);
void test_h3(qd_pauli_sum *H)
{
    qd_ps_init(H, 3);
    add(H, 0.7, "XII");
    add(H, 0.4, "IZI");
    add(H, -0.3, "IIY");
    add(H, 0.5, "ZZI");
    add(H, 0.2, "IXX");
    add(H, 0.25, "YIY");
}

/* reads tests/data/dynamics/<name>.npy; matrices transposed to column-major */
int load_ref(const char *name, qd_npy *f);
int load_ref(const char *name, qd_npy *f)
{
    char buf[512];
    const char *d = getenv("QD_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/dynamics/%s.npy", d && *d ? d : "tests/data", name);
    qd_err e;
    if (qd_npy_read(buf, f, &e) != QD_OK) {
        CHECK(0, "reading %s: %s", buf, e.msg);
        return 0;
    }
    if (f->is_complex && f->ndim >= 2) {
        size_t r = f->shape[f->ndim - 2], c = f->shape[f->ndim - 1], blk = r * c;
        qd_c *a = f->data, *tmp = malloc(sizeof(qd_c) * blk);
        for (size_t b = 0; b < f->count / blk; b++) {
            for (size_t i = 0; i < r; i++)
                for (size_t j = 0; j < c; j++)
                    tmp[i + j * r] = a[b * blk + i * c + j];
            memcpy(a + b * blk, tmp, sizeof(qd_c) * blk);
        }
        free(tmp);
    }
    return 1;
}

QD_TEST(pauli_dense_apply_expect)
{
    qd_rng r;
    qd_rng_init(&r, 11);
    for (int n = 1; n <= 5; n++) {
        size_t d = (size_t)1 << n;
        qd_pauli_sum H;
        random_sum(&H, n, 7, 0, &r);
        qd_c *M = malloc(sizeof(qd_c) * d * d), *R = malloc(sizeof(qd_c) * d * d);
        qd_ps_dense(&H, M);
        ref_sum(&H, R);
        CHECK(ref_maxdiff(M, R, d * d) < 1e-14, "dense = Kronecker reference (n=%d): %g", n, ref_maxdiff(M, R, d * d));
        /* batched application, shared and per-member coefficients */
        size_t cnt = 3;
        qd_c *a = malloc(sizeof(qd_c) * d * cnt), *o = malloc(sizeof(qd_c) * d * cnt), *y = malloc(sizeof(qd_c) * d);
        for (size_t j = 0; j < cnt; j++)
            ref_random_vec(a + j * d, d, &r);
        qd_ps_apply(&H, NULL, 0, a, cnt, o, 0);
        double worst = 0;
        for (size_t j = 0; j < cnt; j++) {
            ref_matvec(R, d, a + j * d, y);
            worst = fmax(worst, ref_maxdiff(y, o + j * d, d));
        }
        CHECK(worst < 1e-13, "apply = dense matvec (n=%d): %g", n, worst);
        qd_c *coef = malloc(sizeof(qd_c) * H.nterms * cnt);
        for (size_t i = 0; i < H.nterms * cnt; i++)
            coef[i] = qd_rng_cnormal(&r);
        qd_ps_apply(&H, coef, H.nterms, a, cnt, o, 0);
        worst = 0;
        for (size_t j = 0; j < cnt; j++) {
            qd_pauli_sum Hj;
            qd_err e;
            qd_ps_copy(&H, &Hj, &e);
            memcpy(Hj.c, coef + j * H.nterms, sizeof(qd_c) * H.nterms);
            ref_sum(&Hj, M);
            ref_matvec(M, d, a + j * d, y);
            worst = fmax(worst, ref_maxdiff(y, o + j * d, d));
            qd_ps_free(&Hj);
        }
        CHECK(worst < 1e-13, "per-member coefficients (n=%d): %g", n, worst);
        /* accumulate with alpha */
        memcpy(o, a, sizeof(qd_c) * d);
        qd_ps_apply1(&H, NULL, a, o, 0.5 - 0.25 * I, 1);
        ref_matvec(R, d, a, y);
        for (size_t i = 0; i < d; i++)
            y[i] = a[i] + (0.5 - 0.25 * I) * y[i];
        CHECK(ref_maxdiff(y, o, d) < 1e-13, "apply1 accumulate alpha (n=%d)", n);
        /* expectations */
        qd_c ex[3];
        qd_ps_expect(&H, a, cnt, ex);
        worst = 0;
        for (size_t j = 0; j < cnt; j++) {
            ref_matvec(R, d, a + j * d, y);
            qd_c s = 0;
            for (size_t i = 0; i < d; i++)
                s += conj(a[j * d + i]) * y[i];
            worst = fmax(worst, cabs(s - ex[j]));
        }
        CHECK(worst < 1e-13, "<psi|O|psi> (n=%d): %g", n, worst);
        /* the grouped-diagonal cache gives the same results */
        qd_ps_prepare(&H);
        CHECK(H.D != NULL && H.ng >= 1 && H.ng <= H.nterms, "prepared (n=%d, %zu groups)", n, H.ng);
        qd_ps_apply(&H, NULL, 0, a, cnt, o, 0);
        qd_c ex2[3];
        qd_ps_expect(&H, a, cnt, ex2);
        worst = 0;
        for (size_t j = 0; j < cnt; j++) {
            ref_matvec(R, d, a + j * d, y);
            worst = fmax(worst, ref_maxdiff(y, o + j * d, d));
            worst = fmax(worst, cabs(ex2[j] - ex[j]));
        }
        CHECK(worst < 1e-13, "prepared apply / expect = dense (n=%d): %g", n, worst);
        memcpy(o, a, sizeof(qd_c) * d);
        qd_ps_apply1(&H, NULL, a, o, 0.5 - 0.25 * I, 1);
        ref_matvec(R, d, a, y);
        for (size_t i = 0; i < d; i++)
            y[i] = a[i] + (0.5 - 0.25 * I) * y[i];
        CHECK(ref_maxdiff(y, o, d) < 1e-13, "prepared apply1 accumulate alpha (n=%d)", n);
        qd_ps_simplify(&H, 0);
        CHECK(H.D == NULL, "a change drops the cache");
        qd_c *rho = malloc(sizeof(qd_c) * d * d), *P = malloc(sizeof(qd_c) * d * d);
        ref_random_dm(rho, d, &r);
        ref_matmul(R, rho, d, P);
        qd_c tr = 0;
        for (size_t i = 0; i < d; i++)
            tr += P[i + i * d];
        CHECK(cabs(tr - qd_ps_expect_dm(&H, rho)) < 1e-13, "Tr(O rho) (n=%d)", n);
        free(M);
        free(R);
        free(a);
        free(o);
        free(y);
        free(coef);
        free(rho);
        free(P);
        qd_ps_free(&H);
    }
}

QD_TEST(pauli_big_apply_threads)
{
    /* 15 qubits: the threaded block path; identical for 1 and 2 threads */
    int n = 15;
    size_t d = (size_t)1 << n;
    qd_rng r;
    qd_rng_init(&r, 3);
    qd_pauli_sum H;
    random_sum(&H, n, 6, 1, &r);
    qd_c *a = malloc(sizeof(qd_c) * d), *o1 = malloc(sizeof(qd_c) * d), *o2 = malloc(sizeof(qd_c) * d),
         *o3 = malloc(sizeof(qd_c) * d);
    ref_random_vec(a, d, &r);
    int th = qd_get_threads();
    qd_set_threads(1);
    qd_ps_apply(&H, NULL, 0, a, 1, o1, 0);
    qd_c e1;
    qd_ps_expect(&H, a, 1, &e1);
    qd_set_threads(2);
    qd_ps_apply(&H, NULL, 0, a, 1, o2, 0);
    qd_c e2;
    qd_ps_expect(&H, a, 1, &e2);
    qd_set_threads(th);
    qd_ps_apply1(&H, NULL, a, o3, 1.0, 0);
    CHECK(memcmp(o1, o2, sizeof(qd_c) * d) == 0 && memcmp(o1, o3, sizeof(qd_c) * d) == 0,
          "apply bitwise identical for 1/2 threads and the serial kernel");
    CHECK(e1 == e2, "expect bitwise identical for 1/2 threads");
    CHECK(fabs(cimag(e1)) < 1e-12, "Hermitian expectation is real");
    free(a);
    free(o1);
    free(o2);
    free(o3);
    qd_ps_free(&H);
}

QD_TEST(pauli_algebra)
{
    qd_rng r;
    qd_rng_init(&r, 5);
    int n = 3;
    size_t d = 8;
    qd_pauli_sum A, B, P, S;
    random_sum(&A, n, 5, 0, &r);
    random_sum(&B, n, 4, 0, &r);
    qd_err e;
    CHECK(qd_ps_mul(&A, &B, &P, &e) == QD_OK, "mul ok");
    CHECK(qd_ps_axpby(2.0, &A, -1.0 + I, &B, &S, &e) == QD_OK, "axpby ok");
    qd_c Ad[64], Bd[64], Pd[64], R[64], Sd[64];
    ref_sum(&A, Ad);
    ref_sum(&B, Bd);
    qd_ps_dense(&P, Pd);
    ref_matmul(Ad, Bd, d, R);
    CHECK(ref_maxdiff(Pd, R, 64) < 1e-13, "dense(A B) = dense(A) dense(B): %g", ref_maxdiff(Pd, R, 64));
    qd_ps_dense(&S, Sd);
    for (int i = 0; i < 64; i++)
        R[i] = 2.0 * Ad[i] + (-1.0 + I) * Bd[i];
    CHECK(ref_maxdiff(Sd, R, 64) < 1e-14, "2A + (-1+i)B");
    qd_ps_dagger(&P);
    qd_ps_dense(&P, Pd);
    ref_dagger(R, d, Sd);
    ref_matmul(Ad, Bd, d, R);
    ref_dagger(R, d, Sd);
    CHECK(ref_maxdiff(Pd, Sd, 64) < 1e-13, "dagger");
    /* Pauli algebra identities: XY = iZ, YX = -iZ, ZZ = I */
    qd_pauli_sum x, y, xy;
    qd_ps_init(&x, 1);
    qd_ps_init(&y, 1);
    add(&x, 1, "X");
    add(&y, 1, "Y");
    qd_ps_mul(&x, &y, &xy, &e);
    char buf[8];
    qd_ps_term_string(&xy, 0, buf);
    CHECK(xy.nterms == 1 && strcmp(buf, "Z") == 0 && cabs(xy.c[0] - I) < 1e-15, "XY = iZ");
    qd_ps_free(&xy);
    qd_ps_mul(&y, &x, &xy, &e);
    CHECK(xy.nterms == 1 && cabs(xy.c[0] + I) < 1e-15, "YX = -iZ");
    qd_ps_free(&xy);
    /* simplify merges and drops */
    qd_pauli_sum m;
    qd_ps_init(&m, 2);
    add(&m, 1, "XZ");
    add(&m, 2, "ZZ");
    add(&m, -1, "XZ");
    add(&m, 0.5, "ZZ");
    qd_ps_simplify(&m, 0);
    qd_ps_term_string(&m, 0, buf);
    CHECK(m.nterms == 1 && strcmp(buf, "ZZ") == 0 && m.c[0] == 2.5, "simplify: XZ cancels, ZZ merges");
    CHECK(qd_ps_max_imag(&m) == 0 && qd_ps_norm_bound(&m) == 2.5, "max_imag, norm bound");
    qd_ps_free(&m);
    qd_ps_free(&x);
    qd_ps_free(&y);
    qd_ps_free(&A);
    qd_ps_free(&B);
    qd_ps_free(&P);
    qd_ps_free(&S);
}

QD_TEST(pauli_errors)
{
    qd_pauli_sum H;
    qd_ps_init(&H, 2);
    qd_err e;
    int qs[2] = {0, 2};
    CHECK(qd_ps_add_term(&H, 1, "XZ", qs, 2, &e) == QD_EARG && strstr(e.msg, "qubit 2 out of range 0..1"), "bad qubit: %s", e.msg);
    qs[1] = 0;
    CHECK(qd_ps_add_term(&H, 1, "XZ", qs, 2, &e) == QD_EARG && strstr(e.msg, "appears twice"), "repeated qubit: %s", e.msg);
    qs[1] = 1;
    CHECK(qd_ps_add_term(&H, 1, "XQ", qs, 2, &e) == QD_EARG && strstr(e.msg, "got 'Q'"), "bad letter: %s", e.msg);
    CHECK(qd_ps_add_term(&H, I, "XY", qs, 2, &e) == QD_OK, "complex coefficient ok");
    double w[4];
    CHECK(qd_ps_eigh(&H, w, NULL, &e) == QD_EARG && strstr(e.msg, "Hermitian"), "eigh non-Hermitian: %s", e.msg);
    qd_c a[4] = {1, 0, 0, 0};
    CHECK(qd_ps_evolve(&H, 1.0, a, 1, QD_EXPM_KRYLOV, 0, NULL, NULL, NULL, &e) == QD_EARG, "Krylov non-Hermitian");
    CHECK(qd_ps_evolve(&H, NAN, a, 1, QD_EXPM_AUTO, 0, NULL, NULL, NULL, &e) == QD_EARG, "NaN time");
    qd_c rho[16];
    CHECK(qd_ps_gibbs(&H, -1, rho, NULL, NULL, NULL, &e) == QD_EARG && strstr(e.msg, "beta"), "negative beta");
    qd_ps_free(&H);
    qd_pauli_sum B;
    qd_ps_init(&B, 13);
    double w13[1];
    CHECK(qd_ps_eigh(&B, w13, NULL, &e) == QD_EARG && strstr(e.msg, "at most 12 qubits"), "too big for dense: %s", e.msg);
    qd_ps_free(&B);
}

QD_TEST(pauli_spectrum_qutip)
{
    qd_npy f;
    qd_pauli_sum T;
    tfim(&T, 4, 0.3);
    double w[16];
    qd_c V[256];
    qd_err e;
    CHECK(qd_ps_eigh(&T, w, V, &e) == QD_OK, "eigh TFIM(4)");
    if (load_ref("tfim4_spectrum", &f)) {
        double worst = 0;
        for (int i = 0; i < 16; i++)
            worst = fmax(worst, fabs(w[i] - ((double *)f.data)[i]));
        CHECK(worst < 1e-12, "TFIM(4, 0.3) spectrum = QuTiP: %g", worst);
        qd_free(f.data);
    }
    if (load_ref("tfim4_ground", &f)) {
        qd_phase_fix(V, 16);
        CHECK(ref_maxdiff(V, f.data, 16) < 1e-10, "ground state = QuTiP (phase fixed): %g", ref_maxdiff(V, f.data, 16));
        qd_free(f.data);
    }
    qd_ps_free(&T);
    tfim(&T, 6, 1.0);
    double w6[64];
    CHECK(qd_ps_eigh(&T, w6, NULL, &e) == QD_OK, "eigh TFIM(6)");
    if (load_ref("tfim6_e0", &f)) {
        CHECK_NEAR(w6[0], ((double *)f.data)[0], 1e-12, "TFIM(6, 1) ground energy = QuTiP");
        qd_free(f.data);
    }
    qd_ps_free(&T);
    qd_pauli_sum H;
    test_h3(&H);
    double w3[8];
    qd_ps_eigh(&H, w3, NULL, &e);
    if (load_ref("h3_spectrum", &f)) {
        double worst = 0;
        for (int i = 0; i < 8; i++)
            worst = fmax(worst, fabs(w3[i] - ((double *)f.data)[i]));
        CHECK(worst < 1e-13, "H3 spectrum = QuTiP: %g", worst);
        qd_free(f.data);
    }
    qd_ps_free(&H);
}

QD_TEST(pauli_expm_gibbs_qutip)
{
    qd_pauli_sum H;
    test_h3(&H);
    qd_npy fp, fu, fg, fz;
    qd_err e;
    if (!load_ref("psi3", &fp))
        return;
    qd_c a[8], b[8];
    memcpy(a, fp.data, sizeof a);
    memcpy(b, fp.data, sizeof b);
    CHECK(qd_ps_evolve(&H, 1.3, a, 1, QD_EXPM_EIG, 0, NULL, NULL, NULL, &e) == QD_OK, "eig evolve");
    qd_expm_stats st;
    CHECK(qd_ps_evolve(&H, 1.3, b, 1, QD_EXPM_KRYLOV, 1e-13, NULL, NULL, &st, &e) == QD_OK, "Krylov evolve");
    qd_npy fe;
    if (load_ref("expm3", &fe)) {
        CHECK(ref_maxdiff(a, fe.data, 8) < 1e-13, "eig exp(-iHt)psi = QuTiP expm: %g", ref_maxdiff(a, fe.data, 8));
        CHECK(ref_maxdiff(b, fe.data, 8) < 1e-12, "Krylov (8-dim space: exact) = QuTiP: %g", ref_maxdiff(b, fe.data, 8));
        qd_free(fe.data);
    }
    /* the unitary: evolve the 8 basis vectors as one batch */
    qd_c U[64];
    memset(U, 0, sizeof U);
    for (int i = 0; i < 8; i++)
        U[i + 8 * i] = 1;
    qd_ps_evolve(&H, 1.3, U, 8, QD_EXPM_AUTO, 0, NULL, NULL, NULL, &e);
    if (load_ref("U3", &fu)) {
        CHECK(ref_maxdiff(U, fu.data, 64) < 1e-13, "batched = QuTiP U: %g", ref_maxdiff(U, fu.data, 64));
        qd_free(fu.data);
    }
    /* U rho U^H on a density matrix */
    qd_c rho[64], R1[64], R2[64], Ud[64];
    qd_rng r;
    qd_rng_init(&r, 9);
    ref_random_dm(rho, 8, &r);
    memcpy(R1, rho, sizeof rho);
    CHECK(qd_ps_evolve_dm(&H, 1.3, R1, NULL, NULL, &e) == QD_OK, "evolve_dm");
    ref_matmul(U, rho, 8, R2);
    ref_dagger(U, 8, Ud);
    ref_matmul(R2, Ud, 8, rho);
    CHECK(ref_maxdiff(R1, rho, 64) < 1e-13, "evolve_dm = U rho U^H");
    double logz;
    CHECK(qd_ps_gibbs(&H, 0.7, rho, &logz, NULL, NULL, &e) == QD_OK, "gibbs");
    if (load_ref("gibbs3", &fg)) {
        CHECK(ref_maxdiff(rho, fg.data, 64) < 1e-14, "Gibbs = QuTiP: %g", ref_maxdiff(rho, fg.data, 64));
        qd_free(fg.data);
    }
    if (load_ref("gibbs3_logz", &fz)) {
        CHECK_NEAR(logz, ((double *)fz.data)[0], 1e-13, "ln Z = QuTiP");
        qd_free(fz.data);
    }
    qd_ps_gibbs(&H, 0, rho, &logz, NULL, NULL, &e);
    CHECK(fabs(creal(rho[0]) - 0.125) < 1e-15 && fabs(logz - log(8)) < 1e-14, "beta = 0: I/d");
    qd_free(fp.data);
    qd_ps_free(&H);
}

QD_TEST(pauli_krylov_vs_eig)
{
    /* 9 qubits, random local Hamiltonian; Krylov (batched, threads) vs dense eig */
    int n = 9;
    size_t d = (size_t)1 << n, cnt = 3;
    qd_rng r;
    qd_rng_init(&r, 21);
    qd_pauli_sum H;
    tfim(&H, n, 0.8);
    qd_err e;
    int qs[2] = {0, 5};
    qd_ps_add_term(&H, 0.3, "YY", qs, 2, &e);
    qd_c *a = malloc(sizeof(qd_c) * d * cnt), *b = malloc(sizeof(qd_c) * d * cnt), *c = malloc(sizeof(qd_c) * d * cnt);
    for (size_t j = 0; j < cnt; j++)
        ref_random_vec(a + j * d, d, &r);
    memcpy(b, a, sizeof(qd_c) * d * cnt);
    memcpy(c, a, sizeof(qd_c) * d * cnt);
    CHECK(qd_ps_evolve(&H, -2.5, a, cnt, QD_EXPM_EIG, 0, NULL, NULL, NULL, &e) == QD_OK, "eig n=9");
    qd_expm_stats st;
    int th = qd_get_threads();
    qd_set_threads(2);
    CHECK(qd_ps_evolve(&H, -2.5, b, cnt, QD_EXPM_AUTO, 1e-12, NULL, NULL, &st, &e) == QD_OK, "auto (Krylov) n=9");
    qd_set_threads(1);
    qd_ps_evolve(&H, -2.5, c, cnt, QD_EXPM_KRYLOV, 1e-12, NULL, NULL, NULL, &e);
    qd_set_threads(th);
    double err = ref_maxdiff(a, b, d * cnt);
    CHECK(err < 1e-10, "Krylov tol 1e-12 vs eig: %g (estimate %g, %zu sub-steps, %zu matvecs)", err, st.err_est,
          st.substeps, st.matvecs);
    CHECK(st.substeps > 1 && st.err_est < 1e-11, "several sub-steps, error estimate below tol: %zu, %g", st.substeps, st.err_est);
    CHECK(memcmp(b, c, sizeof(qd_c) * d * cnt) == 0, "Krylov identical for 1 and 2 threads");
    CHECK(fabs(qd_norm2(b, d) - 1) < 1e-12, "norm preserved");
    /* a loose tolerance gives a visibly larger but bounded error */
    memcpy(c, a, sizeof(qd_c) * d);
    qd_ps_evolve(&H, 2.5, c, 1, QD_EXPM_EIG, 0, NULL, NULL, NULL, &e);   /* back to the start */
    memcpy(b, c, sizeof(qd_c) * d);
    qd_ps_evolve(&H, -2.5, b, 1, QD_EXPM_KRYLOV, 1e-6, NULL, NULL, &st, &e);
    err = ref_maxdiff(a, b, d);
    CHECK(err < 1e-5, "Krylov tol 1e-6: error %g", err);
    free(a);
    free(b);
    free(c);
    qd_ps_free(&H);
}

QD_TEST(pauli_lanczos_ground)
{
    qd_err e;
    /* critical open TFIM (g = 1): E0 = 1 - 1/sin(pi / (2 (2N + 1))) (Pfeuty 1970) */
    qd_pauli_sum T;
    tfim(&T, 12, 1.0);
    size_t d = 4096, mv = 0;
    qd_c *psi = malloc(sizeof(qd_c) * d), *hp = malloc(sizeof(qd_c) * d);
    double e0;
    CHECK(qd_ps_ground_lanczos(&T, psi, &e0, 1e-10, 0, &mv, &e) == QD_OK, "Lanczos 12 qubits");
    CHECK_NEAR(e0, 1 - 1 / sin(M_PI / (2 * (2 * 12 + 1))), 1e-11, "critical TFIM(12) ground energy (exact formula)");
    qd_ps_apply(&T, NULL, 0, psi, 1, hp, 0);
    double res = 0;
    for (size_t i = 0; i < d; i++)
        res += pow(cabs(hp[i] - e0 * psi[i]), 2);
    CHECK(sqrt(res) < 1e-9 && fabs(qd_norm2(psi, d) - 1) < 1e-13, "residual %g after %zu matvecs", sqrt(res), mv);
    qd_ps_free(&T);
    free(psi);
    free(hp);
    /* random 7-qubit Hamiltonian: Lanczos = eig (energy, state up to phase) */
    qd_rng r;
    qd_rng_init(&r, 17);
    qd_pauli_sum H;
    tfim(&H, 7, 0.6);   /* plus random 1- and 2-local terms: a non-degenerate ground state */
    for (int q = 0; q < 7; q++) {
        int qs[2] = {q, (q + 3) % 7};
        qd_ps_add_term(&H, 0.3 * qd_rng_normal(&r), "Z", qs, 1, &e);
        qd_ps_add_term(&H, 0.3 * qd_rng_normal(&r), "YY", qs, 2, &e);
    }
    double w[128];
    qd_c V[128 * 128], g[128];
    qd_ps_eigh(&H, w, V, &e);
    CHECK(qd_ps_ground_lanczos(&H, g, &e0, 1e-11, 0, NULL, &e) == QD_OK, "Lanczos random H");
    CHECK_NEAR(e0, w[0], 1e-12, "Lanczos energy = eig");
    CHECK(w[1] - w[0] > 1e-3, "test Hamiltonian has a gap: %g", w[1] - w[0]);
    CHECK(cabs(qd_inner(V, g, 128)) > 1 - 1e-12, "Lanczos state = eig state (|overlap| %.15f)", cabs(qd_inner(V, g, 128)));
    qd_ps_free(&H);
    /* degenerate ground space (Z0 Z1 on 3 qubits: 4-fold) still converges */
    qd_pauli_sum D;
    qd_ps_init(&D, 3);
    add(&D, 1, "ZZI");
    qd_c g3[8];
    CHECK(qd_ps_ground_lanczos(&D, g3, &e0, 1e-10, 0, NULL, &e) == QD_OK && fabs(e0 + 1) < 1e-12, "degenerate: E0 = -1");
    qd_ps_free(&D);
    qd_pauli_sum N;
    qd_ps_init(&N, 1);
    add(&N, I, "X");
    CHECK(qd_ps_ground_lanczos(&N, g3, &e0, 0, 0, NULL, &e) == QD_EARG, "non-Hermitian rejected");
    qd_ps_free(&N);
}
