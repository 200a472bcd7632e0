/* lua_state.c — qd.State (pure state of n qubits, 2^n amplitudes), the printed summaries
 * of all three register types, and the generic quantities (qd.fidelity, ...). */
#include "lua_util.h"
#include <math.h>
#include <string.h>
#include <stdio.h>

/* ------------------------------------------------------------------ printing */
/* a coefficient of a ket sum; a real or imaginary part below 1e-7 of the amplitude's
 * modulus is not shown (so 5e-10i stays 5e-10i, and 0.7071 + 1e-17i is 0.7071) */
static void addcoef(luaL_Buffer *b, qd_c z, int first)
{
    char buf[80];
    double re = creal(z), im = cimag(z), mod = cabs(z);
    if (fabs(im) < 1e-7 * mod) {
        if (first)
            snprintf(buf, sizeof buf, "%.4g", re);
        else
            snprintf(buf, sizeof buf, " %c %.4g", re < 0 ? '-' : '+', fabs(re));
    } else if (fabs(re) < 1e-7 * mod) {
        if (first)
            snprintf(buf, sizeof buf, "%.4gi", im);
        else
            snprintf(buf, sizeof buf, " %c %.4gi", im < 0 ? '-' : '+', fabs(im));
    } else {
        snprintf(buf, sizeof buf, "%s(%.4g%+.4gi)", first ? "" : " + ", re, im);
    }
    luaL_addstring(b, buf);
}

/* ket notation of the largest-magnitude-first-in-index-order nonzero amplitudes */
static void add_kets(luaL_Buffer *b, const qd_c *a, int n, size_t maxterms)
{
    size_t d = (size_t)1 << n, shown = 0, nonzero = 0;
    char bits[QD_MAX_QUBITS + 1];
    for (size_t i = 0; i < d; i++) {
        if (cabs(a[i]) < 1e-12)   /* "0" to print: below 1e-12 in modulus */
            continue;
        nonzero++;
        if (shown < maxterms) {
            addcoef(b, a[i], shown == 0);
            qdL_bits(i, n, bits);
            luaL_addchar(b, '|');
            luaL_addstring(b, bits);
            luaL_addchar(b, '>');
            shown++;
        } else if (d > ((size_t)1 << 16)) {
            /* do not scan a huge state just to count */
            luaL_addstring(b, " + ...");
            return;
        }
    }
    if (nonzero == 0)
        luaL_addstring(b, "0");
    if (nonzero > shown) {
        char buf[64];
        snprintf(buf, sizeof buf, " + ... (%zu more terms)", nonzero - shown);
        luaL_addstring(b, buf);
    }
}

void qdL_reg_tostring(lua_State *L, qdl_reg *r)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char buf[160], sz[32];
    qd_format_bytes((double)r->bytes, sz, sizeof sz);
    if (r->kind == QDL_K_STATE) {
        /* arithmetic (s1 + s2, 2 * s) makes unnormalised states: say so */
        double n2 = qd_norm2(r->a, (size_t)1 << r->n);
        char unnorm[64] = "";
        if (!(fabs(n2 - 1) <= 1e-8))
            snprintf(unnorm, sizeof unnorm, ", norm %.6g: not normalised", sqrt(n2));
        snprintf(buf, sizeof buf, "qd.State(%d qubit%s%s%s%s): ", r->n, r->n == 1 ? "" : "s",
                 r->n > 10 ? ", " : "", r->n > 10 ? sz : "", unnorm);
        luaL_addstring(&b, buf);
        add_kets(&b, r->a, r->n, r->n <= 4 ? 16 : 8);
    } else if (r->kind == QDL_K_DM) {
        double tr = qd_dm_trace_re(r->a, r->n), pur = qd_dm_purity(r->a, r->n);
        snprintf(buf, sizeof buf, "qd.DensityMatrix(%d qubit%s, %s, trace %.6g, purity %.6g)", r->n,
                 r->n == 1 ? "" : "s", sz, tr, pur);
        luaL_addstring(&b, buf);
        if (r->n <= 12) {
            size_t d = (size_t)1 << r->n;
            qdL_add_matrix(&b, r->a, d, d, 1);
        }
    } else {
        snprintf(buf, sizeof buf, "qd.Ensemble(%zu state%s of %d qubit%s, %s)", r->count,
                 r->count == 1 ? "" : "s", r->n, r->n == 1 ? "" : "s", sz);
        luaL_addstring(&b, buf);
        size_t d = (size_t)1 << r->n, show = r->count < 3 ? r->count : 3;
        if (r->n <= 12)
            for (size_t k = 0; k < show; k++) {
                snprintf(buf, sizeof buf, "\n  [%zu] ", k + 1);
                luaL_addstring(&b, buf);
                add_kets(&b, r->a + k * d, r->n, 4);
            }
        if (show < r->count && r->n <= 12)
            luaL_addstring(&b, "\n  ...");
    }
    luaL_pushresult(&b);
}

/* ------------------------------------------------------------------ constructors */
static int parse_bits(const char *s, int n, size_t *idx)
{
    size_t v = 0;
    int len = (int)strlen(s);
    if (len != n)
        return 0;
    for (int i = 0; i < n; i++) {
        if (s[i] != '0' && s[i] != '1')
            return 0;
        v = (v << 1) | (size_t)(s[i] - '0');
    }
    *idx = v;
    return 1;
}

/* qd.state(n) -> |0...0>; qd.state(n, "0110") -> that basis state (qubit 0 leftmost) */
static int l_state(lua_State *L)
{
    qdL_checknargs(L, 2);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    size_t idx = 0;
    if (!lua_isnoneornil(L, 2)) {
        const char *bits = lua_tostring(L, 2);
        if (lua_type(L, 2) != LUA_TSTRING || !parse_bits(bits, n, &idx))
            luaL_argerror(L, 2, lua_pushfstring(L, "bitstring of %d characters 0/1 expected, got %s", n,
                                                lua_type(L, 2) == LUA_TSTRING ? lua_pushfstring(L, "'%s'", bits)
                                                                              : luaL_typename(L, 2)));
    }
    qdl_reg *r = qdL_newreg(L, QDL_K_STATE, n, 1);
    qd_state_basis(r->a, n, idx);
    return 1;
}

/* qd.state is a callable table (it also holds qd.state.from); its __call drops the table
 * so argument numbers and the error position refer to the caller's view. */
static int l_state_call(lua_State *L)
{
    lua_remove(L, 1);
    return l_state(L);
}

static int log2_exact(size_t d)
{
    if (d == 0 || (d & (d - 1)))
        return -1;
    int n = 0;
    while (((size_t)1 << n) < d)
        n++;
    return n;
}

/* qd.state.from(amps [, {normalize = true}]): amps a table of numbers / {re, im} pairs, or
 * a qd.Vector; length a power of two >= 2. The amplitudes must pass the value checks
 * (finite, | |psi|^2 - 1 | <= QDL_NORM_TOL) unless normalize = true scales them. */
static int l_state_from(lua_State *L)
{
    qdL_checknargs(L, 2);
    static const char *const opts[] = {"normalize", NULL};
    qdL_checkoptions(L, 2, opts);
    int normalize = qdL_optbool(L, 2, "normalize", -1);
    qdl_array *v = qdL_testarray(L, 1);
    size_t d;
    if (v && v->rows > 1 && v->cols > 1)
        return luaL_argerror(L, 1, lua_pushfstring(L, "table of amplitudes or qd.Vector expected, got a %dx%d qd.Matrix",
                                                   (int)v->rows, (int)v->cols));
    if (v)
        d = v->rows * v->cols;
    else if (lua_istable(L, 1))
        d = (size_t)qdL_checklen(L, 1, 1, (lua_Integer)1 << QD_MAX_QUBITS, "table of amplitudes");
    else
        return luaL_argerror(L, 1, lua_pushfstring(L, "table of amplitudes or qd.Vector expected, got %s",
                                                   luaL_typename(L, 1)));
    int n = log2_exact(d);
    if (n < 1)
        return luaL_argerror(L, 1, lua_pushfstring(L, "2^n amplitudes (n >= 1) expected, got %d", (int)d));
    qdl_reg *r = qdL_newreg(L, QDL_K_STATE, n, 1);
    for (size_t i = 0; i < d; i++) {
        if (v) {
            r->a[i] = qdL_array_get(v, i);
        } else {
            lua_geti(L, 1, (lua_Integer)i + 1);
            qd_c z;
            if (!qdL_tocomplex(L, -1, &z))
                return luaL_argerror(L, 1, lua_pushfstring(L, "number or {re, im} expected at position %d", (int)i + 1));
            r->a[i] = z;
            lua_pop(L, 1);
        }
    }
    qdL_check_amps(L, 1, r->a, n, 1, normalize);
    return 1;
}

/* qd.haar_state(n [, rng]) */
static int l_haar_state(lua_State *L)
{
    qdL_checknargs(L, 2);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    qd_rng *rng = qdL_optrng(L, 2);
    qd_rng sub = qd_rng_split(rng);
    qdl_reg *r = qdL_newreg(L, QDL_K_STATE, n, 1);
    qd_state_haar(r->a, n, &sub);
    return 1;
}

/* ------------------------------------------------------------------ methods */
static qdl_reg *checkstate(lua_State *L, int idx)
{
    return qdL_checkkind(L, idx, QDL_K_STATE);
}

static int m_copy(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 1);
    qdl_reg *c = qdL_newreg(L, QDL_K_STATE, s->n, 1);
    memcpy(c->a, s->a, s->bytes);
    return 1;
}

/* s:amp(i) (1-based basis index) or s:amp("0110") -> re, im */
static int m_amp(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 2);
    size_t d = (size_t)1 << s->n, idx;
    if (lua_type(L, 2) == LUA_TSTRING) {
        if (!parse_bits(lua_tostring(L, 2), s->n, &idx))
            return luaL_argerror(L, 2, lua_pushfstring(L, "bitstring of %d characters 0/1 expected", s->n));
    } else {
        lua_Integer i = luaL_checkinteger(L, 2);
        if (i < 1 || (size_t)i > d)
            return luaL_argerror(L, 2, lua_pushfstring(L, "index 1..%I expected, got %I", (LUAI_UACINT)d, (LUAI_UACINT)i));
        idx = (size_t)(i - 1);
    }
    qdL_pushcomplex(L, s->a[idx]);
    return 2;
}

/* s:totable() -> { {re, im}, ... } in basis order */
static int m_totable(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 1);
    size_t d = (size_t)1 << s->n;
    if (d > ((size_t)1 << 24))
        return luaL_error(L, "state too large for a Lua table (%d qubits); use :save_npy", s->n);
    lua_createtable(L, (int)d, 0);
    for (size_t i = 0; i < d; i++) {
        lua_createtable(L, 2, 0);
        lua_pushnumber(L, creal(s->a[i]));
        lua_rawseti(L, -2, 1);
        lua_pushnumber(L, cimag(s->a[i]));
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* s:vector() -> complex qd.Vector of the amplitudes */
static int m_vector(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 1);
    qdl_array *v = qdL_newarray(L, (size_t)1 << s->n, 1, 1, 1);
    memcpy(v->data, s->a, s->bytes);
    return 1;
}

static int m_norm(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 1);
    lua_pushnumber(L, sqrt(qd_norm2(s->a, (size_t)1 << s->n)));
    return 1;
}

static int m_normalize(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 1);
    size_t d = (size_t)1 << s->n;
    double nrm = sqrt(qd_norm2(s->a, d));
    if (!(nrm > 0) || !isfinite(nrm))
        return luaL_error(L, "cannot normalize a state of norm %f", nrm);
    for (size_t i = 0; i < d; i++)
        s->a[i] /= nrm;
    lua_settop(L, 1);
    return 1;
}

static qdl_reg *checksame(lua_State *L, int arg, qdl_reg *a, qdl_kind kind)
{
    qdl_reg *b = qdL_checkkind(L, arg, kind);
    if (b->n != a->n)
        luaL_argerror(L, arg, lua_pushfstring(L, "%d-qubit %s expected, got %d qubits", a->n,
                                              qdL_kindname(kind), b->n));
    return b;
}

/* s:inner(t) -> re, im of <s|t> */
static int m_inner(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 2);
    qdl_reg *t = checksame(L, 2, s, QDL_K_STATE);
    qdL_pushcomplex(L, qd_inner(s->a, t->a, (size_t)1 << s->n));
    return 2;
}

/* ------------------------------------------------------------------ measurement (State & DM) */
/* obj:probs([qubits]) -> qd.Vector of 2^k outcome probabilities (qubits[1] = MSB) */
static int m_probs(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    qdL_checknargs(L, 2);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, r->n, qs, 1);
    if (k > 30)
        return luaL_error(L, "too many qubits for a probability vector (%d)", k);
    if (r->kind == QDL_K_ENS) {
        qdl_array *m = qdL_newarray(L, (size_t)1 << k, r->count, 0, 0);
        size_t d = (size_t)1 << r->n;
        for (size_t j = 0; j < r->count; j++)
            qd_probs(r->a + j * d, r->n, qs, k, (double *)m->data + j * ((size_t)1 << k));
        return 1;
    }
    qdl_array *v = qdL_newarray(L, (size_t)1 << k, 1, 0, 1);
    if (r->kind == QDL_K_STATE)
        qd_probs(r->a, r->n, qs, k, v->data);
    else
        qd_dm_probs(r->a, r->n, qs, k, v->data);
    return 1;
}

/* obj:sample(shots [, rng] [, {qubits=}]) -> { ["0101"] = count, ... } */
static int m_sample(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    if (r->kind == QDL_K_ENS)
        return luaL_error(L, "sample is defined for qd.State and qd.DensityMatrix; sample E[k] per member");
    qdL_checknargs(L, 4);
    size_t shots = qdL_checkcount(L, 2, "number of shots");
    /* (shots [, rng] [, options]) */
    int optarg;
    qd_rng *rng = qdL_rng_opts(L, 3, &optarg);
    static const char *const opts[] = {"qubits", NULL};
    qdL_checkoptions(L, optarg, opts);
    int qs[QD_MAX_QUBITS], k;
    if (!lua_isnoneornil(L, optarg)) {
        lua_getfield(L, optarg, "qubits");
        int top = lua_gettop(L);
        k = qdL_checkqubits(L, top, r->n, qs, 1);
        lua_pop(L, 1);
    } else {
        k = qdL_checkqubits(L, lua_gettop(L) + 1, r->n, qs, 1);
    }
    if (k > 26)
        return luaL_error(L, "sampling more than 26 qubits at once is not supported (got %d)", k);
    size_t d = (size_t)1 << k;
    double *p = qdL_alloc(L, sizeof(double) * d, 0, "outcome probabilities");
    uint64_t *cnt = qd_calloc(d, sizeof(uint64_t));
    if (!cnt) {
        qdL_release(p, sizeof(double) * d);
        return luaL_error(L, "not enough memory for outcome counts");
    }
    if (r->kind == QDL_K_STATE)
        qd_probs(r->a, r->n, qs, k, p);
    else
        qd_dm_probs(r->a, r->n, qs, k, p);
    qd_sample_counts(p, d, shots, rng, cnt);
    qdL_release(p, sizeof(double) * d);
    lua_newtable(L);
    char bits[64];
    for (size_t i = 0; i < d; i++)
        if (cnt[i]) {
            qdL_bits(i, k, bits);
            lua_pushinteger(L, (lua_Integer)cnt[i]);
            lua_setfield(L, -2, bits);
        }
    qd_free(cnt);
    return 1;
}

/* s:measure(qubits [, rng] [, {keep=true}]) -> outcome bits, probability, post-state.
 * keep=true: collapses s in place (returns s); keep=false: returns a new State on the
 * unmeasured qubits (s unchanged). Same for a DensityMatrix. */
static int m_measure(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    /* a State's or DensityMatrix's method called on an Ensemble (s.measure(E, ...)) */
    if (r->kind == QDL_K_ENS)
        return luaL_argerror(L, 1, "qd.State or qd.DensityMatrix expected, got qd.Ensemble");
    qdL_checknargs(L, 4);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, r->n, qs, 0);
    /* (qubits [, rng] [, options]) */
    int optarg;
    qd_rng *rng = qdL_rng_opts(L, 3, &optarg);
    static const char *const opts[] = {"keep", NULL};
    qdL_checkoptions(L, optarg, opts);
    int keep = qdL_optbool(L, optarg, "keep", 1);
    if (!keep && k == r->n)
        return luaL_argerror(L, 2, "keep=false needs at least one unmeasured qubit");
    double u = qd_rng_uniform(rng);
    size_t outcome;
    double prob;
    qd_err e;
    qd_status st;
    if (keep) {
        st = r->kind == QDL_K_STATE ? qd_measure(r->a, r->n, qs, k, u, 1, r->a, &outcome, &prob, &e)
                                    : qd_dm_measure(r->a, r->n, qs, k, u, 1, r->a, &outcome, &prob, &e);
        if (st != QD_OK)
            return qdL_raise(L, &e);
        lua_pushvalue(L, 1);
    } else {
        qdl_reg *out = qdL_newreg(L, r->kind, r->n - k, 1);
        st = r->kind == QDL_K_STATE ? qd_measure(r->a, r->n, qs, k, u, 0, out->a, &outcome, &prob, &e)
                                    : qd_dm_measure(r->a, r->n, qs, k, u, 0, out->a, &outcome, &prob, &e);
        if (st != QD_OK)
            return qdL_raise(L, &e);
    }
    char bits[QD_MAX_QUBITS + 1];
    qdL_bits(outcome, k, bits);
    lua_pushstring(L, bits);
    lua_pushnumber(L, prob);
    lua_rotate(L, -3, 2);   /* bits, prob, state */
    return 3;
}

/* s:project(qubits, "01" [, {keep=true}]) -> probability, post-state (fixed outcome) */
static int m_project(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 4);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, s->n, qs, 0);
    size_t outcome;
    if (lua_type(L, 3) != LUA_TSTRING || !parse_bits(lua_tostring(L, 3), k, &outcome))
        return luaL_argerror(L, 3, lua_pushfstring(L, "outcome bitstring of %d characters expected", k));
    static const char *const opts[] = {"keep", NULL};
    qdL_checkoptions(L, 4, opts);
    int keep = qdL_optbool(L, 4, "keep", 1);
    if (!keep && k == s->n)
        return luaL_argerror(L, 2, "keep=false needs at least one unmeasured qubit");
    double prob;
    qd_err e;
    if (keep) {
        if (qd_project(s->a, s->n, qs, k, outcome, 1, s->a, &prob, &e) != QD_OK)
            return qdL_raise(L, &e);
        lua_pushnumber(L, prob);
        lua_pushvalue(L, 1);
        return 2;
    }
    qdl_reg *out = qdL_newreg(L, QDL_K_STATE, s->n - k, 1);
    if (qd_project(s->a, s->n, qs, k, outcome, 0, out->a, &prob, &e) != QD_OK)
        return qdL_raise(L, &e);
    lua_pushnumber(L, prob);
    lua_insert(L, -2);
    return 2;
}

/* obj:expect("XZ", {0, 2}) or obj:expect("XIZ") (one letter per qubit) -> number
 * (a qd.Vector of N values on an Ensemble). */
static int m_expect(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    if (luaL_testudata(L, 2, "qd.PauliSum")) {
        /* obj:expect(H) is H:expect(obj) */
        qdL_checknargs(L, 2);
        if (luaL_getmetafield(L, 2, "methods") != LUA_TTABLE)
            return luaL_error(L, "qd.PauliSum has no methods table");
        lua_getfield(L, -1, "expect");
        lua_pushvalue(L, 2);
        lua_pushvalue(L, 1);
        lua_call(L, 2, LUA_MULTRET);
        return lua_gettop(L) - 3;
    }
    qdL_checknargs(L, 3);
    size_t len;
    const char *ops = luaL_checklstring(L, 2, &len);
    for (size_t i = 0; i < len; i++)
        if (!strchr("IXYZ", ops[i]) || ops[i] == '\0')
            return luaL_argerror(L, 2, lua_pushfstring(L, "Pauli string of I, X, Y, Z expected, got '%s'", ops));
    int qs[QD_MAX_QUBITS], k;
    if (lua_isnoneornil(L, 3)) {
        if ((int)len != r->n)
            return luaL_argerror(L, 2, lua_pushfstring(L, "Pauli string of length %d (one letter "
                                                          "per qubit) expected, got length %d; or give the qubits",
                                                       r->n, (int)len));
        k = qdL_checkqubits(L, 3, r->n, qs, 1);
    } else {
        k = qdL_checkqubits(L, 3, r->n, qs, 0);
        if ((size_t)k != len)
            return luaL_argerror(L, 3, lua_pushfstring(L, "%d qubits for a %d-letter Pauli string expected, got %d",
                                                       (int)len, (int)len, k));
    }
    if (r->kind == QDL_K_ENS) {
        qdl_array *v = qdL_newarray_nz(L, r->count, 1, 0, 1);   /* every entry written */
        double *out = v->data;
        qd_expect_pauli_batch(r->a, r->n, r->count, ops, qs, k, out);
        return 1;
    }
    lua_pushnumber(L, r->kind == QDL_K_STATE ? qd_expect_pauli(r->a, r->n, ops, qs, k)
                                              : qd_dm_expect_pauli(r->a, r->n, ops, qs, k));
    return 1;
}

/* s:embed(na) -> |0...0>_A (x) s, ancillas as the most significant qubits (also Ensemble) */
static int m_embed(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    qdL_checknargs(L, 2);
    if (r->kind == QDL_K_DM)
        return luaL_error(L, "embed is for qd.State and qd.Ensemble; use qd.kron(qd.dm(na), rho)");
    lua_Integer na = luaL_checkinteger(L, 2);
    if (na < 0 || na > QD_MAX_QUBITS - r->n)   /* (na + n would overflow for huge na) */
        return luaL_argerror(L, 2, lua_pushfstring(L, "number of ancillas 0..%d expected", QD_MAX_QUBITS - r->n));
    qdl_reg *out = qdL_newreg(L, r->kind, r->n + (int)na, r->count);
    size_t d = (size_t)1 << r->n, D = (size_t)1 << out->n;
    for (size_t j = 0; j < r->count; j++)
        qd_state_embed(r->a + j * d, r->n, (int)na, out->a + j * D);
    return 1;
}

/* qd.kron(a, b) / a:kron(b): tensor product, a's qubits first (most significant) */
static int m_kron(lua_State *L)
{
    qdl_reg *a = qdL_checkreg(L, 1);
    qdL_checknargs(L, 2);
    qdl_reg *b = qdL_checkreg(L, 2);
    if (a->kind == QDL_K_ENS || b->kind == QDL_K_ENS)
        return luaL_error(L, "kron is for qd.State and qd.DensityMatrix (use E:embed for ancillas)");
    if (a->n + b->n > QD_MAX_QUBITS)
        return luaL_error(L, "kron: %d + %d qubits is too many", a->n, b->n);
    if (a->kind == QDL_K_STATE && b->kind == QDL_K_STATE) {
        qdl_reg *o = qdL_newreg(L, QDL_K_STATE, a->n + b->n, 1);
        qd_kron_vec(a->a, a->n, b->a, b->n, o->a);
        return 1;
    }
    /* promote pure to mixed */
    const qd_c *ra = a->a, *rb = b->a;
    qd_c *ta = NULL, *tb = NULL;
    qdl_reg *o = qdL_newreg(L, QDL_K_DM, a->n + b->n, 1);
    if (a->kind == QDL_K_STATE) {
        qdl_reg *t = qdL_newreg(L, QDL_K_DM, a->n, 1);
        qd_dm_from_state(a->a, a->n, t->a);
        ra = ta = t->a;
    }
    if (b->kind == QDL_K_STATE) {
        qdl_reg *t = qdL_newreg(L, QDL_K_DM, b->n, 1);
        qd_dm_from_state(b->a, b->n, t->a);
        rb = tb = t->a;
    }
    (void)ta;
    (void)tb;
    qd_kron_dm(ra, a->n, rb, b->n, o->a);
    lua_settop(L, 3);   /* the result; temporaries are collected */
    return 1;
}

/* obj:ptrace(keep) -> DensityMatrix on the kept qubits (keep[1] most significant) */
static int m_ptrace(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    qdL_checknargs(L, 2);
    if (r->kind == QDL_K_ENS)
        return luaL_error(L, "ptrace is for qd.State and qd.DensityMatrix");
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, r->n, qs, 0);
    qdl_reg *o = qdL_newreg(L, QDL_K_DM, k, 1);
    if (r->kind == QDL_K_STATE)
        qd_ptrace_state(r->a, r->n, qs, k, o->a);
    else
        qd_ptrace_dm(r->a, r->n, qs, k, o->a);
    return 1;
}

/* s:schmidt_rank(qubitsA [, tol=1e-10]) */
static int m_schmidt_rank(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 3);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, s->n, qs, 0);
    double tol = luaL_optnumber(L, 3, 1e-10);
    if (!(tol >= 0) || !isfinite(tol))
        return luaL_argerror(L, 3, "finite tolerance >= 0 expected");
    size_t rank;
    qd_err e;
    if (qd_schmidt_rank(s->a, s->n, qs, k, tol, &rank, &e) != QD_OK)
        return qdL_raise(L, &e);
    lua_pushinteger(L, (lua_Integer)rank);
    return 1;
}

/* s:dm() -> |s><s| */
static int m_dm(lua_State *L)
{
    qdl_reg *s = checkstate(L, 1);
    qdL_checknargs(L, 1);
    qdl_reg *o = qdL_newreg(L, QDL_K_DM, s->n, 1);
    qd_dm_from_state(s->a, s->n, o->a);
    return 1;
}

/* ------------------------------------------------------------------ generic quantities */
static void check_pair(lua_State *L, qdl_reg *a, qdl_reg *b)
{
    if (a->kind == QDL_K_ENS)
        luaL_argerror(L, 1, "qd.State or qd.DensityMatrix expected, got qd.Ensemble");
    if (b->kind == QDL_K_ENS)
        luaL_argerror(L, 2, "qd.State or qd.DensityMatrix expected, got qd.Ensemble");
    if (a->n != b->n)
        luaL_argerror(L, 2, lua_pushfstring(L, "%d-qubit state expected, got %d qubits", a->n, b->n));
}

/* qd.fidelity(a, b): |<a|b>|^2, <a|rho|a>, or Uhlmann (Tr sqrt(sqrt(rho) sigma sqrt(rho)))^2 */
static int l_fidelity(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_reg *a = qdL_checkreg(L, 1), *b = qdL_checkreg(L, 2);
    check_pair(L, a, b);
    double f;
    if (a->kind == QDL_K_STATE && b->kind == QDL_K_STATE)
        f = qd_fid_pure_pure(a->a, b->a, a->n);
    else if (a->kind == QDL_K_STATE)
        f = qd_fid_pure_dm(a->a, b->a, a->n);
    else if (b->kind == QDL_K_STATE)
        f = qd_fid_pure_dm(b->a, a->a, a->n);
    else {
        qd_err e;
        if (qd_fid_dm_dm(a->a, b->a, a->n, &f, &e) != QD_OK)
            return qdL_raise(L, &e);
    }
    lua_pushnumber(L, f);
    return 1;
}

/* a DensityMatrix view of a register at idx (pure states promoted; pushes a temporary) */
static const qd_c *as_dm(lua_State *L, qdl_reg *r)
{
    if (r->kind == QDL_K_DM)
        return r->a;
    qdl_reg *t = qdL_newreg(L, QDL_K_DM, r->n, 1);
    qd_dm_from_state(r->a, r->n, t->a);
    return t->a;
}

/* qd.trace_distance(a, b) = 1/2 ||rho - sigma||_1 */
static int l_trace_distance(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_reg *a = qdL_checkreg(L, 1), *b = qdL_checkreg(L, 2);
    check_pair(L, a, b);
    double t;
    if (a->kind == QDL_K_STATE && b->kind == QDL_K_STATE) {
        double f = qd_fid_pure_pure(a->a, b->a, a->n);
        t = sqrt(f < 1 ? 1 - f : 0);
    } else {
        const qd_c *ra = as_dm(L, a), *rb = as_dm(L, b);
        qd_err e;
        if (qd_trace_distance(ra, rb, a->n, &t, &e) != QD_OK)
            return qdL_raise(L, &e);
    }
    lua_pushnumber(L, t);
    return 1;
}

/* qd.purity(x), qd.entropy(x) (von Neumann, natural log) */
static int l_purity(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_reg *a = qdL_checkreg(L, 1);
    if (a->kind == QDL_K_ENS)
        return luaL_argerror(L, 1, "qd.State or qd.DensityMatrix expected, got qd.Ensemble");
    if (a->kind == QDL_K_STATE) {
        double n2 = qd_norm2(a->a, (size_t)1 << a->n);
        lua_pushnumber(L, n2 * n2);
    } else {
        lua_pushnumber(L, qd_dm_purity(a->a, a->n));
    }
    return 1;
}

static int l_entropy(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_reg *a = qdL_checkreg(L, 1);
    if (a->kind == QDL_K_ENS)
        return luaL_argerror(L, 1, "qd.State or qd.DensityMatrix expected, got qd.Ensemble");
    if (a->kind == QDL_K_STATE) {
        lua_pushnumber(L, 0.0);
        return 1;
    }
    double s;
    qd_err e;
    if (qd_entropy_vn(a->a, a->n, &s, &e) != QD_OK)
        return qdL_raise(L, &e);
    lua_pushnumber(L, s);
    return 1;
}

/* methods shared with the DensityMatrix / Ensemble files */
int qdL_m_probs(lua_State *L) { return m_probs(L); }
int qdL_m_sample(lua_State *L) { return m_sample(L); }
int qdL_m_measure(lua_State *L) { return m_measure(L); }
int qdL_m_expect(lua_State *L) { return m_expect(L); }
int qdL_m_embed(lua_State *L) { return m_embed(L); }
int qdL_m_kron(lua_State *L) { return m_kron(L); }
int qdL_m_ptrace(lua_State *L) { return m_ptrace(L); }
int qdL_fidelity(lua_State *L) { return l_fidelity(L); }
int qdL_trace_distance(lua_State *L) { return l_trace_distance(L); }
int qdL_purity(lua_State *L) { return l_purity(L); }
int qdL_entropy(lua_State *L) { return l_entropy(L); }

void qdL_open_state(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"copy", m_copy},       {"amp", m_amp},         {"totable", m_totable},
        {"vector", m_vector},   {"norm", m_norm},       {"normalize", m_normalize},
        {"inner", m_inner},     {"probs", m_probs},     {"sample", m_sample},
        {"measure", m_measure}, {"project", m_project}, {"expect", m_expect},
        {"embed", m_embed},     {"kron", m_kron},       {"ptrace", m_ptrace},
        {"schmidt_rank", m_schmidt_rank}, {"dm", m_dm}, {"fidelity", l_fidelity},
        {"trace_distance", l_trace_distance}, {"purity", l_purity}, {"entropy", l_entropy},
        {NULL, NULL}};
    qdL_reg_metatable(L, QDL_K_STATE, methods);
    static const luaL_Reg fns[] = {
        {"state_new", l_state}, {"state_call", l_state_call}, {"state_from", l_state_from}, {"haar_state", l_haar_state},
        {"kron", m_kron},       {"fidelity", l_fidelity},     {"trace_distance", l_trace_distance},
        {"purity", l_purity},   {"entropy", l_entropy},       {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
