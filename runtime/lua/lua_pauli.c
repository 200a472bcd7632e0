/* lua_pauli.c — qd.PauliSum: operators sum_t c_t P_t (pauli.c) as immutable userdata.
 * Constructors qd.pauli_sum{{c, "ZZI"}, {c, "XZ", {0, 2}}, ...}, qd.pauli_sum.tfim,
 * .sigma_minus, .sigma_plus; arithmetic (+ - * / unary -), adjoint; matrix-free
 * application and expectation on State / Ensemble / DensityMatrix; dense matrix, spectrum,
 * ground state, Gibbs state (LAPACK, cached eigen-decomposition); exp(-iHt) on states,
 * ensembles and density matrices (H:evolve(obj, t) and obj:evolve(H, t)). */
#include "lua_util.h"
#include "qd_dynamics.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

#define QDL_PAULI "qd.PauliSum"

typedef struct {
    qd_pauli_sum ps;
    double *w;          /* cached eigen-decomposition (NULL until needed) */
    qd_c *V;
    size_t wbytes, eigbytes;
    int freed;
} qdl_pauli;

/* shared with lua_dynamics.c */

static int typeerror(lua_State *L, int arg, const char *expected)
{
    const char *got = luaL_getmetafield(L, arg, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                        : luaL_typename(L, arg);
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

static qdl_pauli *newpauli(lua_State *L, int n)
{
    qdl_pauli *p = lua_newuserdatauv(L, sizeof *p, 0);
    memset(p, 0, sizeof *p);
    qd_ps_init(&p->ps, n);
    luaL_setmetatable(L, QDL_PAULI);
    return p;
}

static void pauli_release(qdl_pauli *p)
{
    qd_ps_free(&p->ps);
    qdL_release(p->w, p->wbytes);
    qdL_release(p->V, p->eigbytes);
    p->w = NULL;
    p->V = NULL;
    p->wbytes = p->eigbytes = 0;
    p->freed = 1;
}

static qdl_pauli *checkp(lua_State *L, int idx)
{
    qdl_pauli *p = luaL_testudata(L, idx, QDL_PAULI);
    if (!p)
        typeerror(L, idx, QDL_PAULI);
    if (p->freed)
        luaL_argerror(L, idx, "qd.PauliSum has been freed");
    return p;
}

qd_pauli_sum *qdL_checkpauli(lua_State *L, int idx)
{
    return &checkp(L, idx)->ps;
}

static void raise_if(lua_State *L, qd_status s, const qd_err *e)
{
    if (s != QD_OK)
        qdL_raise(L, e);
}

/* full-length Pauli string -> new PauliSum (coefficient 1) pushed; n > 0 checks length */
static qd_pauli_sum *from_string(lua_State *L, int idx, int n, const char *label)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    if (len < 1 || len > QD_MAX_QUBITS || (n > 0 && (int)len != n))
        luaL_error(L, "%s: Pauli string of %d letters expected, got \"%s\"", label, n > 0 ? n : (int)len, s);
    qdl_pauli *p = newpauli(L, (int)len);
    int qs[QD_MAX_QUBITS];
    for (size_t i = 0; i < len; i++)
        qs[i] = (int)i;
    qd_err e;
    qd_status st = qd_ps_add_term(&p->ps, 1.0, s, qs, (int)len, &e);
    if (st != QD_OK)
        luaL_error(L, "%s: %s", label, e.msg);
    return &p->ps;
}

/* A PauliSum argument or a Pauli string (converted; a temporary is PUSHED). n > 0: the
 * operator must act on n qubits. label names it in messages ("bad argument #2 ..."). */
qd_pauli_sum *qdL_topauli(lua_State *L, int idx, int n, const char *label)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING)
        return from_string(L, idx, n, label);
    qdl_pauli *p = luaL_testudata(L, idx, QDL_PAULI);
    if (!p) {
        const char *got = luaL_getmetafield(L, idx, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, idx);
        luaL_error(L, "%s: qd.PauliSum or Pauli string expected, got %s", label, got);
    }
    if (p->freed)
        luaL_error(L, "%s: qd.PauliSum has been freed", label);
    if (n > 0 && p->ps.n != n)
        luaL_error(L, "%s: operator on %d qubits expected, got %d qubits", label, n, p->ps.n);
    return &p->ps;
}

/* ------------------------------------------------------------------ constructors */

/* qd.pauli_sum(terms [, {n=}]) or qd.pauli_sum("ZZI") */
static int l_pauli_sum(lua_State *L)
{
    qdL_checknargs(L, 2);
    if (lua_type(L, 1) == LUA_TSTRING) {
        qdL_checknargs(L, 1);
        from_string(L, 1, 0, "bad argument #1 to 'pauli_sum'");
        return 1;
    }
    if (!lua_istable(L, 1))
        return typeerror(L, 1, "table of terms {coef, \"ZZI\"} or a Pauli string");
    static const char *const opts[] = {"n", NULL};
    qdL_checkoptions(L, 2, opts);
    int n = 0;
    if (lua_istable(L, 2) && lua_getfield(L, 2, "n") != LUA_TNIL) {
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < 1 || v > QD_MAX_QUBITS)
            return luaL_argerror(L, 2, lua_pushfstring(L, "option 'n': number of qubits 1..%d expected", QD_MAX_QUBITS));
        n = (int)v;
        lua_pop(L, 1);
    }
    /* the length read once and bounded (a table whose __len lies cannot drive the work) */
    lua_Integer nt = qdL_checklen(L, 1, 1, (lua_Integer)1 << 24, "terms");
    /* infer n from the first term given as a full-length string (among the first 64) */
    if (n == 0) {
        for (lua_Integer i = 1; i <= nt && i <= 64 && n == 0; i++) {
            if (lua_geti(L, 1, i) == LUA_TTABLE) {
                int has_q = lua_geti(L, -1, 3) != LUA_TNIL;
                lua_pop(L, 1);
                if (!has_q && lua_geti(L, -1, 2) == LUA_TSTRING)
                    n = (int)luaL_len(L, -1);
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        if (n == 0)
            return luaL_argerror(L, 1, "number of qubits unknown: give a full-length term such as {1, \"ZZI\"} or the option {n=}");
        if (n > QD_MAX_QUBITS)
            return luaL_argerror(L, 1, lua_pushfstring(L, "at most %d qubits expected, got %d", QD_MAX_QUBITS, n));
    }
    qdl_pauli *p = newpauli(L, n);
    int pi = lua_gettop(L);
    for (lua_Integer i = 1; i <= nt; i++) {
        if (lua_geti(L, 1, i) != LUA_TTABLE)
            return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: {coef, \"XZ\" [, {qubits}]} expected, got %s",
                                                       (int)i, luaL_typename(L, -1)));
        int ti = lua_gettop(L);
        lua_geti(L, ti, 1);
        qd_c c;
        if (!qdL_tocomplex(L, -1, &c) || !isfinite(creal(c)) || !isfinite(cimag(c)))
            return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: finite coefficient (number or {re, im}) expected first", (int)i));
        lua_pop(L, 1);
        if (lua_geti(L, ti, 2) != LUA_TSTRING)
            return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: Pauli string expected second", (int)i));
        size_t len;
        const char *ops = lua_tolstring(L, -1, &len);
        int qs[QD_MAX_QUBITS], k;
        if (lua_geti(L, ti, 3) == LUA_TNIL) {
            if ((int)len != n)
                return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: Pauli string of %d letters expected, got \"%s\"",
                                                           (int)i, n, ops));
            k = n;
            for (int q = 0; q < n; q++)
                qs[q] = q;
        } else {
            if (!lua_istable(L, -1))
                return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: qubit list expected third", (int)i));
            lua_Integer nq = luaL_len(L, -1);
            if (nq != (lua_Integer)len || nq > n)
                return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: %d letters for %d qubits", (int)i, (int)len, (int)nq));
            k = (int)nq;
            for (int q = 0; q < k; q++) {
                lua_geti(L, -1, q + 1);
                int isint = 0;
                lua_Integer v = lua_tointegerx(L, -1, &isint);
                if (!isint || v < 0 || v >= n)
                    return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: qubit indices 0..%d expected", (int)i, n - 1));
                qs[q] = (int)v;
                lua_pop(L, 1);
            }
        }
        lua_pop(L, 1);
        qd_err e;
        if (qd_ps_add_term(&p->ps, c, ops, qs, k, &e) != QD_OK)
            return luaL_argerror(L, 1, lua_pushfstring(L, "term %d: %s", (int)i, e.msg));
        lua_settop(L, pi);
    }
    qd_ps_simplify(&p->ps, 0);
    return 1;
}

static int l_pauli_sum_call(lua_State *L)
{
    lua_remove(L, 1);
    return l_pauli_sum(L);
}

/* qd.pauli_sum.tfim(n, g [, {J=1, periodic=false}]): -J sum Z_i Z_{i+1} - g sum X_i */
static int l_tfim(lua_State *L)
{
    qdL_checknargs(L, 3);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    double g = luaL_checknumber(L, 2);
    if (!isfinite(g))
        return luaL_argerror(L, 2, "finite field g expected");
    static const char *const opts[] = {"J", "periodic", NULL};
    qdL_checkoptions(L, 3, opts);
    double J = 1;
    if (lua_istable(L, 3) && lua_getfield(L, 3, "J") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TNUMBER || !isfinite(lua_tonumber(L, -1)))
            return luaL_argerror(L, 3, "option 'J': finite number expected");
        J = lua_tonumber(L, -1);
    }
    int per = qdL_optbool(L, 3, "periodic", 0);
    qdl_pauli *p = newpauli(L, n);
    qd_err e;
    for (int i = 0; i + 1 < n || (per && n > 2 && i < n); i++) {
        int qs[2] = {i, (i + 1) % n};
        raise_if(L, qd_ps_add_term(&p->ps, -J, "ZZ", qs, 2, &e), &e);
    }
    for (int i = 0; i < n; i++)
        raise_if(L, qd_ps_add_term(&p->ps, -g, "X", &i, 1, &e), &e);
    qd_ps_simplify(&p->ps, 0);
    return 1;
}

/* sigma_minus = |0><1| = (X + iY)/2, sigma_plus = |1><0| = (X - iY)/2 on qubit q of n */
static int sigma(lua_State *L, double sy)
{
    qdL_checknargs(L, 2);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    int q = qdL_checkqubit(L, 2, n);
    qdl_pauli *p = newpauli(L, n);
    qd_err e;
    raise_if(L, qd_ps_add_term(&p->ps, 0.5, "X", &q, 1, &e), &e);
    raise_if(L, qd_ps_add_term(&p->ps, 0.5 * sy * I, "Y", &q, 1, &e), &e);
    return 1;
}

static int l_sigma_minus(lua_State *L)
{
    return sigma(L, 1);
}

static int l_sigma_plus(lua_State *L)
{
    return sigma(L, -1);
}

/* ------------------------------------------------------------------ metamethods */

static int p_gc(lua_State *L)
{
    qdl_pauli *p = luaL_checkudata(L, 1, QDL_PAULI);
    if (!p->freed)
        pauli_release(p);
    return 0;
}

static void push_coef(lua_State *L, luaL_Buffer *b, qd_c c, int first)
{
    char buf[80];
    if (cimag(c) == 0) {
        double r = creal(c);
        if (first)
            snprintf(buf, sizeof buf, "%.6g", r);
        else
            snprintf(buf, sizeof buf, " %s %.6g", r < 0 ? "-" : "+", fabs(r));
    } else {
        snprintf(buf, sizeof buf, "%s(%.6g%+.6gi)", first ? "" : " + ", creal(c), cimag(c));
    }
    (void)L;
    luaL_addstring(b, buf);
}

static int p_tostring(lua_State *L)
{
    qdl_pauli *p = luaL_checkudata(L, 1, QDL_PAULI);
    if (p->freed) {
        lua_pushliteral(L, "qd.PauliSum (freed)");
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "qd.PauliSum(%d qubit%s, %d term%s)", p->ps.n, p->ps.n == 1 ? "" : "s",
                    (int)p->ps.nterms, p->ps.nterms == 1 ? "" : "s");
    luaL_addvalue(&b);
    if (p->ps.nterms)
        luaL_addstring(&b, ": ");
    char s[QD_MAX_QUBITS + 2];
    size_t shown = p->ps.nterms < 12 ? p->ps.nterms : 12;
    for (size_t t = 0; t < shown; t++) {
        push_coef(L, &b, p->ps.c[t], t == 0);
        qd_ps_term_string(&p->ps, t, s);
        luaL_addchar(&b, ' ');
        luaL_addstring(&b, s);
    }
    if (shown < p->ps.nterms) {
        lua_pushfstring(L, " + ... (%d more)", (int)(p->ps.nterms - shown));
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

static int p_len(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)checkp(L, 1)->ps.nterms);
    return 1;
}

/* scalar (number or {re, im}) at idx? */
static int getscalar(lua_State *L, int idx, qd_c *z)
{
    if (luaL_testudata(L, idx, QDL_PAULI))
        return 0;
    return qdL_tocomplex(L, idx, z);
}

static int combine(lua_State *L, qd_c a, qd_pauli_sum *A, qd_c b, qd_pauli_sum *B)
{
    qdl_pauli *r = newpauli(L, A->n);
    qd_err e;
    raise_if(L, qd_ps_axpby(a, A, b, B, &r->ps, &e), &e);
    return 1;
}

static int p_add(lua_State *L)
{
    qd_pauli_sum *A = &checkp(L, 1)->ps, *B = &checkp(L, 2)->ps;
    if (A->n != B->n)
        return luaL_error(L, "cannot add Pauli sums on %d and %d qubits", A->n, B->n);
    return combine(L, 1, A, 1, B);
}

static int p_sub(lua_State *L)
{
    qd_pauli_sum *A = &checkp(L, 1)->ps, *B = &checkp(L, 2)->ps;
    if (A->n != B->n)
        return luaL_error(L, "cannot subtract Pauli sums on %d and %d qubits", A->n, B->n);
    return combine(L, 1, A, -1, B);
}

static int scaled(lua_State *L, qd_pauli_sum *A, qd_c s)
{
    qd_pauli_sum Z;
    qd_ps_init(&Z, A->n);
    return combine(L, s, A, 0, &Z);
}

static int p_mul(lua_State *L)
{
    qd_c z;
    if (getscalar(L, 1, &z))
        return scaled(L, &checkp(L, 2)->ps, z);
    if (getscalar(L, 2, &z))
        return scaled(L, &checkp(L, 1)->ps, z);
    qd_pauli_sum *A = &checkp(L, 1)->ps, *B = &checkp(L, 2)->ps;
    if (A->n != B->n)
        return luaL_error(L, "cannot multiply Pauli sums on %d and %d qubits", A->n, B->n);
    qdl_pauli *r = newpauli(L, A->n);
    qd_err e;
    raise_if(L, qd_ps_mul(A, B, &r->ps, &e), &e);
    return 1;
}

static int p_div(lua_State *L)
{
    qd_c z;
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    if (!getscalar(L, 2, &z) || z == 0)
        return luaL_argerror(L, 2, "non-zero number or {re, im} expected");
    return scaled(L, A, 1.0 / z);
}

static int p_unm(lua_State *L)
{
    return scaled(L, &checkp(L, 1)->ps, -1);
}

/* ------------------------------------------------------------------ methods */

static int m_free(lua_State *L)
{
    qdl_pauli *p = luaL_checkudata(L, 1, QDL_PAULI);
    if (!p->freed)
        pauli_release(p);
    return 0;
}

static int m_dagger(lua_State *L)
{
    qdL_checknargs(L, 1);
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    qdl_pauli *r = newpauli(L, A->n);
    qd_err e;
    raise_if(L, qd_ps_copy(A, &r->ps, &e), &e);
    qd_ps_dagger(&r->ps);
    return 1;
}

static double opt_tol(lua_State *L, int arg, double def)
{
    if (lua_isnoneornil(L, arg))
        return def;
    double t = luaL_checknumber(L, arg);
    if (!(t >= 0) || !isfinite(t))
        luaL_argerror(L, arg, "tolerance >= 0 expected");
    return t;
}

static int m_simplify(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    double tol = opt_tol(L, 2, 0);
    qdl_pauli *r = newpauli(L, A->n);
    qd_err e;
    raise_if(L, qd_ps_copy(A, &r->ps, &e), &e);
    qd_ps_simplify(&r->ps, tol);
    return 1;
}

static int m_is_hermitian(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    double tol = opt_tol(L, 2, 1e-12);
    lua_pushboolean(L, qd_ps_max_imag(A) <= tol);
    return 1;
}

static int m_norm_bound(lua_State *L)
{
    qdL_checknargs(L, 1);
    lua_pushnumber(L, qd_ps_norm_bound(&checkp(L, 1)->ps));
    return 1;
}

/* H:terms() -> {{coef, "ZZI"}, ...}, coef a number if real else {re, im} */
static int m_terms(lua_State *L)
{
    qdL_checknargs(L, 1);
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    char s[QD_MAX_QUBITS + 2];
    lua_createtable(L, (int)A->nterms, 0);
    for (size_t t = 0; t < A->nterms; t++) {
        lua_createtable(L, 2, 0);
        qd_c c = A->c[t];
        if (cimag(c) == 0) {
            lua_pushnumber(L, creal(c));
        } else {
            lua_createtable(L, 2, 0);
            lua_pushnumber(L, creal(c));
            lua_rawseti(L, -2, 1);
            lua_pushnumber(L, cimag(c));
            lua_rawseti(L, -2, 2);
        }
        lua_rawseti(L, -2, 1);
        qd_ps_term_string(A, t, s);
        lua_pushstring(L, s);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (lua_Integer)t + 1);
    }
    return 1;
}

static void check_dense(lua_State *L, int arg, const qd_pauli_sum *A, const char *what)
{
    if (A->n > QD_PS_DENSE_MAX)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s needs a dense matrix: at most %d qubits, got %d", what,
                                              QD_PS_DENSE_MAX, A->n));
}

static int m_matrix(lua_State *L)
{
    qdL_checknargs(L, 1);
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    check_dense(L, 1, A, "matrix()");
    size_t d = (size_t)1 << A->n;
    qdl_array *M = qdL_newarray(L, d, d, 1, 0);
    qd_ps_dense(A, M->data);
    return 1;
}

/* cached eigen-decomposition of a Hermitian sum */
static void ensure_eig(lua_State *L, int arg, qdl_pauli *p, const char *what)
{
    if (p->V)
        return;
    check_dense(L, arg, &p->ps, what);
    double im = qd_ps_max_imag(&p->ps);
    if (im > 1e-12)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s needs a Hermitian operator (real coefficients), got an imaginary part %s",
                                              what, lua_pushfstring(L, "%f", im)));
    size_t d = (size_t)1 << p->ps.n;
    char desc[96];
    snprintf(desc, sizeof desc, "the eigen-decomposition of a %d-qubit operator", p->ps.n);
    /* w is owned by p at once, so a failing second allocation (which raises) leaks nothing */
    if (!p->w) {
        p->w = qdL_alloc(L, sizeof(double) * d, 0, desc);
        p->wbytes = sizeof(double) * d;
    }
    qd_c *V = qdL_alloc(L, sizeof(qd_c) * d * d, 0, desc);
    qd_err e;
    qd_status s = qd_ps_eigh(&p->ps, p->w, V, &e);
    if (s != QD_OK) {
        qdL_release(V, sizeof(qd_c) * d * d);
        qdL_raise(L, &e);
    }
    p->V = V;
    p->eigbytes = sizeof(qd_c) * d * d;
}

static int m_eigh(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_pauli *p = checkp(L, 1);
    ensure_eig(L, 1, p, "eigh()");
    size_t d = (size_t)1 << p->ps.n;
    qdl_array *w = qdL_newarray(L, d, 1, 0, 1);
    memcpy(w->data, p->w, sizeof(double) * d);
    qdl_array *V = qdL_newarray(L, d, d, 1, 0);
    memcpy(V->data, p->V, sizeof(qd_c) * d * d);
    return 2;
}

static int m_spectrum(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_pauli *p = checkp(L, 1);
    ensure_eig(L, 1, p, "spectrum()");
    size_t d = (size_t)1 << p->ps.n;
    qdl_array *w = qdL_newarray(L, d, 1, 0, 1);
    memcpy(w->data, p->w, sizeof(double) * d);
    return 1;
}

/* H:ground_state([{method="auto"|"eig"|"lanczos", tol=1e-10}]) -> State (phase fixed),
 * energy, gap (nil with Lanczos) */
static int m_ground_state(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_pauli *p = checkp(L, 1);
    static const char *const opts[] = {"method", "tol", NULL};
    qdL_checkoptions(L, 2, opts);
    int lanczos = p->ps.n > QD_GROUND_EIG_MAX_QUBITS;
    double tol = 1e-10;
    if (lua_istable(L, 2)) {
        if (lua_getfield(L, 2, "method") != LUA_TNIL) {
            const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(m, "eig") == 0)
                lanczos = 0;
            else if (strcmp(m, "lanczos") == 0)
                lanczos = 1;
            else if (strcmp(m, "auto") != 0)
                return luaL_argerror(L, 2, lua_pushfstring(L, "option 'method': \"auto\", \"eig\" or \"lanczos\" expected, got %s",
                                                           luaL_tolstring(L, -1, NULL)));
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 2, "tol") != LUA_TNIL) {
            tol = lua_tonumber(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER || !(tol > 0 && tol < 1))
                return luaL_argerror(L, 2, "option 'tol': a number in (0, 1) expected");
        }
        lua_pop(L, 1);
    }
    size_t d = (size_t)1 << p->ps.n;
    if (lanczos) {
        if (qd_ps_max_imag(&p->ps) > 1e-12)
            return luaL_argerror(L, 1, "ground_state() needs a Hermitian operator (real coefficients)");
        qdl_reg *s = qdL_newreg(L, QDL_K_STATE, p->ps.n, 1);
        double e0;
        qd_err e;
        raise_if(L, qd_ps_ground_lanczos(&p->ps, s->a, &e0, tol, 0, NULL, &e), &e);
        lua_pushnumber(L, e0);
        lua_pushnil(L);
        return 3;
    }
    ensure_eig(L, 1, p, "ground_state()");
    qdl_reg *s = qdL_newreg(L, QDL_K_STATE, p->ps.n, 1);
    memcpy(s->a, p->V, sizeof(qd_c) * d);
    qd_phase_fix(s->a, d);
    lua_pushnumber(L, p->w[0]);
    lua_pushnumber(L, d > 1 ? p->w[1] - p->w[0] : 0);
    return 3;
}

/* H:gibbs(beta) -> DensityMatrix e^{-beta H}/Z, ln Z */
static int m_gibbs(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_pauli *p = checkp(L, 1);
    double beta = luaL_checknumber(L, 2);
    if (!(beta >= 0) || !isfinite(beta))
        return luaL_argerror(L, 2, "inverse temperature beta >= 0 (finite) expected");
    ensure_eig(L, 1, p, "gibbs()");
    qdl_reg *r = qdL_newreg(L, QDL_K_DM, p->ps.n, 1);
    double logz;
    qd_err e;
    raise_if(L, qd_ps_gibbs(&p->ps, beta, r->a, &logz, p->w, p->V, &e), &e);
    lua_pushnumber(L, logz);
    return 2;
}

/* register at arg, checked against the operator's size */
static qdl_reg *reg_for(lua_State *L, int arg, const qd_pauli_sum *A)
{
    qdl_reg *r = qdL_checkreg(L, arg);
    if (r->n != A->n)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s of %d qubits expected (the operator acts on %d), got %d qubits",
                                              qdL_kindname(r->kind), A->n, A->n, r->n));
    return r;
}

/* H:apply(obj) -> new State / Ensemble H|psi> (not normalised) */
static int m_apply(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    qdl_reg *r = reg_for(L, 2, A);
    if (r->kind == QDL_K_DM)
        return luaL_argerror(L, 2, "qd.State or qd.Ensemble expected, got qd.DensityMatrix (use H:matrix() or H:expect(rho))");
    qdl_reg *o = qdL_newreg(L, r->kind, r->n, r->count);
    if (!A->D)
        qd_ps_prepare(A);   /* immutable from Lua: the grouped-diagonal cache stays valid */
    qd_ps_apply(A, NULL, 0, r->a, r->count, o->a, 0);
    return 1;
}

/* H:expect(obj) -> number (re, im if not Hermitian) or qd.Vector for an Ensemble */
static int m_expect(lua_State *L)
{
    qdL_checknargs(L, 2);
    qd_pauli_sum *A = &checkp(L, 1)->ps;
    qdl_reg *r = reg_for(L, 2, A);
    int herm = qd_ps_max_imag(A) <= 1e-12;
    if (!A->D && r->kind != QDL_K_DM)
        qd_ps_prepare(A);
    if (r->kind == QDL_K_DM) {
        qd_c v = qd_ps_expect_dm(A, r->a);
        lua_pushnumber(L, creal(v));
        if (herm)
            return 1;
        lua_pushnumber(L, cimag(v));
        return 2;
    }
    if (r->kind == QDL_K_STATE) {
        qd_c v;
        qd_ps_expect(A, r->a, 1, &v);
        lua_pushnumber(L, creal(v));
        if (herm)
            return 1;
        lua_pushnumber(L, cimag(v));
        return 2;
    }
    qdl_array *v = qdL_newarray(L, r->count, 1, !herm, 1);
    qd_c *tmp = lua_newuserdatauv(L, sizeof(qd_c) * r->count, 0);
    qd_ps_expect(A, r->a, r->count, tmp);
    for (size_t j = 0; j < r->count; j++) {
        if (herm)
            ((double *)v->data)[j] = creal(tmp[j]);
        else
            ((qd_c *)v->data)[j] = tmp[j];
    }
    lua_pop(L, 1);
    return 1;
}

/* evolve: (H at hi, obj at oi, t at ti, opts at pi) */
static int do_evolve(lua_State *L, int hi, int oi, int ti, int pi)
{
    qdl_pauli *p = checkp(L, hi);
    qdl_reg *r = reg_for(L, oi, &p->ps);
    double t = luaL_checknumber(L, ti);
    if (!isfinite(t))
        return luaL_argerror(L, ti, "finite time expected");
    static const char *const opts[] = {"method", "tol", "stats", NULL};
    qdL_checkoptions(L, pi, opts);
    qd_expm_method meth = QD_EXPM_AUTO;
    double tol = 0;
    int want = 0;
    if (lua_istable(L, pi)) {
        if (lua_getfield(L, pi, "method") != LUA_TNIL) {
            const char *m = lua_tostring(L, -1);
            if (lua_type(L, -1) != LUA_TSTRING)
                return luaL_argerror(L, pi, "option 'method': \"auto\", \"eig\" or \"krylov\" expected");
            if (strcmp(m, "auto") == 0)
                meth = QD_EXPM_AUTO;
            else if (strcmp(m, "eig") == 0)
                meth = QD_EXPM_EIG;
            else if (strcmp(m, "krylov") == 0)
                meth = QD_EXPM_KRYLOV;
            else
                return luaL_argerror(L, pi, lua_pushfstring(L, "option 'method': \"auto\", \"eig\" or \"krylov\" expected, got \"%s\"", m));
        }
        lua_pop(L, 1);
        if (lua_getfield(L, pi, "tol") != LUA_TNIL) {
            tol = lua_tonumber(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER || !(tol > 0 && tol < 1))
                return luaL_argerror(L, pi, "option 'tol': a number in (0, 1) expected");
        }
        lua_pop(L, 1);
        want = qdL_optbool(L, pi, "stats", 0);
    }
    if (qd_ps_max_imag(&p->ps) > 1e-12)
        return luaL_argerror(L, hi, "exp(-iHt) needs a Hermitian operator (real coefficients)");
    qd_err e;
    qd_expm_stats st = {0, 0, 0};
    if (r->kind == QDL_K_DM) {
        if (meth == QD_EXPM_KRYLOV)
            return luaL_argerror(L, pi, "a qd.DensityMatrix evolves by eigen-decomposition (method \"eig\" or \"auto\")");
        ensure_eig(L, hi, p, "evolve() on a density matrix");
        raise_if(L, qd_ps_evolve_dm(&p->ps, t, r->a, p->w, p->V, &e), &e);
    } else {
        int use_eig = meth == QD_EXPM_EIG || (meth == QD_EXPM_AUTO && p->ps.n <= QD_EXPM_EIG_MAX_QUBITS);
        if (use_eig) {
            ensure_eig(L, hi, p, "evolve(method=\"eig\")");
            raise_if(L, qd_ps_evolve(&p->ps, t, r->a, r->count, QD_EXPM_EIG, 0, p->w, p->V, &st, &e), &e);
        } else {
            raise_if(L, qd_ps_evolve(&p->ps, t, r->a, r->count, QD_EXPM_KRYLOV, tol, NULL, NULL, &st, &e), &e);
        }
    }
    lua_pushvalue(L, oi);
    if (!want)
        return 1;
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)st.substeps);
    lua_setfield(L, -2, "substeps");
    lua_pushinteger(L, (lua_Integer)st.matvecs);
    lua_setfield(L, -2, "matvecs");
    lua_pushnumber(L, st.err_est);
    lua_setfield(L, -2, "error_estimate");
    return 2;
}

/* H:evolve(obj, t [, opts]) */
static int m_evolve(lua_State *L)
{
    qdL_checknargs(L, 4);
    return do_evolve(L, 1, 2, 3, 4);
}

/* obj:evolve(H, t [, opts]); on a DensityMatrix with opts.jumps: Lindblad (lua_dynamics.c) */
static int reg_evolve(lua_State *L)
{
    qdL_checknargs(L, 4);
    qdl_reg *r = qdL_checkreg(L, 1);
    if (r->kind == QDL_K_DM && lua_istable(L, 4)) {
        lua_getfield(L, 4, "jumps");
        int lind = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (lind)
            return qdL_lindblad_evolve(L);
    }
    return do_evolve(L, 2, 1, 3, 4);
}

static int p_index(lua_State *L)
{
    qdl_pauli *p = luaL_checkudata(L, 1, QDL_PAULI);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *key = lua_tostring(L, 2);
        if (strcmp(key, "n") == 0) {
            if (p->freed)
                return luaL_error(L, "qd.PauliSum has been freed");
            lua_pushinteger(L, p->ps.n);
            return 1;
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

void qdL_open_pauli(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"terms", m_terms},       {"dagger", m_dagger},       {"simplify", m_simplify},
        {"is_hermitian", m_is_hermitian}, {"norm_bound", m_norm_bound}, {"matrix", m_matrix},
        {"eigh", m_eigh},         {"spectrum", m_spectrum},   {"ground_state", m_ground_state},
        {"gibbs", m_gibbs},       {"apply", m_apply},         {"expect", m_expect},
        {"evolve", m_evolve},     {"free", m_free},           {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", p_gc},   {"__close", p_gc}, {"__tostring", p_tostring}, {"__len", p_len},
        {"__add", p_add}, {"__sub", p_sub},  {"__mul", p_mul},           {"__div", p_div},
        {"__unm", p_unm}, {NULL, NULL}};
    qdL_newclass(L, QDL_PAULI, methods, p_index, meta);
    lua_pop(L, 1);

    /* obj:evolve(H, t) on the three register types */
    qdL_add_reg_method(L, "evolve", reg_evolve);
    static const luaL_Reg fns[] = {
        {"pauli_sum", l_pauli_sum},       {"pauli_sum_call", l_pauli_sum_call},
        {"pauli_tfim", l_tfim},           {"pauli_sigma_minus", l_sigma_minus},
        {"pauli_sigma_plus", l_sigma_plus}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
