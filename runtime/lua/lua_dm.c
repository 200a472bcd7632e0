/* lua_dm.c — qd.DensityMatrix: mixed states of n qubits, 2^n x 2^n column-major.
 * Gates act as rho -> U rho U^dagger (see qd.h for the vector view used by kernels). */
#include "lua_util.h"
#include <math.h>
#include <string.h>


/* qd.dm(n) -> |0..0><0..0|; qd.dm(state) -> |s><s|; qd.dm(matrix) -> that matrix (must be
 * Hermitian, trace 1, PSD up to 1e-8) */
static int l_dm(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_reg *s = qdL_testkind(L, 1, QDL_K_STATE);
    if (s) {
        s = qdL_checkkind(L, 1, QDL_K_STATE);
        char msg[160];   /* a State may have left the checks behind (sse{normalize = false}) */
        if (qdL_amps_problem(s->a, s->n, 1, QDL_NORM_TOL, msg, sizeof msg))
            return luaL_argerror(L, 1, msg);
        qdl_reg *o = qdL_newreg(L, QDL_K_DM, s->n, 1);
        qd_dm_from_state(s->a, s->n, o->a);
        return 1;
    }
    if (qdL_testarray(L, 1) || lua_istable(L, 1)) {
        qd_c *m;
        size_t d = qdL_checkcmatrix(L, 1, &m);
        int n = 0;
        while (((size_t)1 << n) < d)
            n++;
        if (((size_t)1 << n) != d || n < 1) {
                        return luaL_argerror(L, 1, lua_pushfstring(L, "2^n x 2^n matrix expected, got %dx%d", (int)d, (int)d));
        }
        qdL_check_dm(L, 1, m, n);   /* Hermitian, trace 1, PSD within QDL_NORM_TOL */
        qdl_reg *o = qdL_newreg(L, QDL_K_DM, n, 1);
        memcpy(o->a, m, sizeof(qd_c) * d * d);
        return 1;
    }
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    qdl_reg *o = qdL_newreg(L, QDL_K_DM, n, 1);
    o->a[0] = 1;
    return 1;
}

/* qd.maximally_mixed(n) = I / 2^n */
static int l_maximally_mixed(lua_State *L)
{
    qdL_checknargs(L, 1);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    qdl_reg *o = qdL_newreg(L, QDL_K_DM, n, 1);
    size_t d = (size_t)1 << n;
    for (size_t i = 0; i < d; i++)
        o->a[i + i * d] = 1.0 / (double)d;
    return 1;
}

static qdl_reg *checkdm(lua_State *L, int idx)
{
    return qdL_checkkind(L, idx, QDL_K_DM);
}

static int m_copy(lua_State *L)
{
    qdl_reg *r = checkdm(L, 1);
    qdL_checknargs(L, 1);
    qdl_reg *c = qdL_newreg(L, QDL_K_DM, r->n, 1);
    memcpy(c->a, r->a, r->bytes);
    return 1;
}

/* rho:get(r, c) -> re, im (1-based) */
static int m_get(lua_State *L)
{
    qdl_reg *r = checkdm(L, 1);
    qdL_checknargs(L, 3);
    size_t d = (size_t)1 << r->n;
    lua_Integer i = luaL_checkinteger(L, 2), j = luaL_checkinteger(L, 3);
    if (i < 1 || (size_t)i > d)
        return luaL_argerror(L, 2, lua_pushfstring(L, "row 1..%I expected, got %I", (LUAI_UACINT)d, (LUAI_UACINT)i));
    if (j < 1 || (size_t)j > d)
        return luaL_argerror(L, 3, lua_pushfstring(L, "column 1..%I expected, got %I", (LUAI_UACINT)d, (LUAI_UACINT)j));
    qdL_pushcomplex(L, r->a[(size_t)(i - 1) + (size_t)(j - 1) * d]);
    return 2;
}

/* rho:matrix() -> complex qd.Matrix copy */
static int m_matrix(lua_State *L)
{
    qdl_reg *r = checkdm(L, 1);
    qdL_checknargs(L, 1);
    size_t d = (size_t)1 << r->n;
    qdl_array *m = qdL_newarray(L, d, d, 1, 0);
    memcpy(m->data, r->a, r->bytes);
    return 1;
}

static int m_trace(lua_State *L)
{
    qdl_reg *r = checkdm(L, 1);
    qdL_checknargs(L, 1);
    lua_pushnumber(L, qd_dm_trace_re(r->a, r->n));
    return 1;
}

/* rho:eigenvalues() -> qd.Vector, ascending */
static int m_eigenvalues(lua_State *L)
{
    qdl_reg *r = checkdm(L, 1);
    qdL_checknargs(L, 1);
    size_t d = (size_t)1 << r->n;
    qdl_array *v = qdL_newarray(L, d, 1, 0, 1);
    qdl_reg *tmp = qdL_newreg(L, QDL_K_DM, r->n, 1);
    memcpy(tmp->a, r->a, r->bytes);
    qd_err e;
    if (qd_la_eigh(tmp->a, d, v->data, 0, &e) != QD_OK)
        return qdL_raise(L, &e);
    lua_pop(L, 1);
    return 1;
}

/* rho:block(kept [, bits]) -> the block <b|rho|b> of the kept qubits as a DensityMatrix
 * (unnormalised: trace = the probability of b); bits: a string of '0'/'1' for the other
 * qubits in their order (default all '0') */
static int m_block(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    qdL_checknargs(L, 3);
    if (r->kind != QDL_K_DM)
        return luaL_error(L, "block is for qd.DensityMatrix");
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, r->n, qs, 0);
    size_t len = 0;
    const char *bits = luaL_optlstring(L, 3, NULL, &len);
    size_t rest = 0;
    if (bits) {
        if ((int)len != r->n - k)
            return luaL_argerror(L, 3, lua_pushfstring(L, "%d bits expected (the qubits not kept), got %d",
                                                       r->n - k, (int)len));
        for (size_t i = 0; i < len; i++) {
            if (bits[i] != '0' && bits[i] != '1')
                return luaL_argerror(L, 3, "a string of '0' and '1' expected");
            rest = rest << 1 | (size_t)(bits[i] - '0');
        }
    }
    qdl_reg *o = qdL_newreg(L, QDL_K_DM, k, 1);
    qd_dm_block(r->a, r->n, qs, k, rest, o->a);
    return 1;
}

/* the checked arguments of isometry_channel(_vjp): E (2^nin members of nout + m qubits), rho
 * (nin qubits), m (the last m qubits are traced out: nout = E's qubits - m) */
static void iso_args(lua_State *L, qdl_reg **E, qdl_reg **rho, int *m, int *nout)
{
    *E = qdL_checkkind(L, 1, QDL_K_ENS);
    *rho = qdL_checkkind(L, 2, QDL_K_DM);
    lua_Integer mm = luaL_checkinteger(L, 3);
    if (mm < 0 || mm >= (*E)->n)
        luaL_argerror(L, 3, "0 ... the ensemble's qubits - 1 expected");
    *m = (int)mm;
    *nout = (*E)->n - *m;
    if ((*E)->count != (size_t)1 << (*rho)->n)
        luaL_argerror(L, 1, lua_pushfstring(L, "an ensemble of 2^%d members expected (one column of the isometry per "
                                               "basis state of rho), got %d members",
                                            (*rho)->n, (int)(*E)->count));
}

/* core.isometry_channel(W, rho, m) -> sum_j K_j rho K_j^H (qd_isometry_channel_h), on the
 * members' qubits but the last m */
static int l_isometry_channel(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_reg *E, *rho;
    int m, nout;
    iso_args(L, &E, &rho, &m, &nout);
    qdl_reg *o = qdL_newreg_uninit(L, QDL_K_DM, nout, 1);   /* every entry written (or an error raised) */
    qd_err e;
    if (qd_isometry_channel_h(E->a, rho->n, nout, m, rho->a, o->a, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 1;
}

/* core.isometry_channel_vjp(W, rho, m, G) -> dL/d conj(W) (shaped like W), dL/d conj(rho) */
static int l_isometry_channel_vjp(lua_State *L)
{
    qdL_checknargs(L, 4);
    qdl_reg *E, *rho;
    int m, nout;
    iso_args(L, &E, &rho, &m, &nout);
    qdl_reg *G = qdL_checkkind(L, 4, QDL_K_DM);
    if (G->n != nout)
        return luaL_argerror(L, 4, "a gradient on the output's qubits expected");
    /* both written in full by the vjp (or an error raised): no zeroing of 2^(N + nin) amplitudes */
    qdl_reg *gW = qdL_newreg_uninit(L, QDL_K_ENS, E->n, E->count);
    qdl_reg *gr = qdL_newreg_uninit(L, QDL_K_DM, rho->n, 1);
    qd_err e;
    if (qd_isometry_channel_vjp_h(E->a, rho->n, nout, m, rho->a, G->a, gW->a, gr->a, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 2;
}

void qdL_open_dm(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"copy", m_copy},       {"get", m_get},         {"matrix", m_matrix},
        {"trace", m_trace},     {"eigenvalues", m_eigenvalues},
        {"probs", qdL_m_probs}, {"sample", qdL_m_sample}, {"measure", qdL_m_measure},
        {"expect", qdL_m_expect}, {"kron", qdL_m_kron}, {"ptrace", qdL_m_ptrace}, {"block", m_block},
        {"fidelity", qdL_fidelity}, {"trace_distance", qdL_trace_distance},
        {"purity", qdL_purity}, {"entropy", qdL_entropy}, {NULL, NULL}};
    qdL_reg_metatable(L, QDL_K_DM, methods);
    static const luaL_Reg fns[] = {{"dm", l_dm}, {"maximally_mixed", l_maximally_mixed},
                                   {"isometry_channel", l_isometry_channel},
                                   {"isometry_channel_vjp", l_isometry_channel_vjp}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
