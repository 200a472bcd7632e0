/* lua_ensemble.c — qd.Ensemble: N pure states of n qubits in one 2^n x N column-major
 * buffer (member k is column k), so whole-ensemble overlaps are one zgemm and gates run
 * over all members in one C call (per-member angles allowed, see lua_gates.c).
 * Members are 1-based from Lua: E[1] .. E[#E]. Randomness: member k draws from substream
 * k of a generator split off the given one, so results do not depend on batch size. */
#include "lua_util.h"
#include <math.h>
#include <string.h>


static qdl_reg *checkens(lua_State *L, int idx)
{
    return qdL_checkkind(L, idx, QDL_K_ENS);
}

/* qd.ensemble(n, N) -> N copies of |0...0> */
static int l_ensemble(lua_State *L)
{
    qdL_checknargs(L, 2);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    size_t N = qdL_checkcount(L, 2, "number of states");
    qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, N);
    size_t d = (size_t)1 << n;
    for (size_t k = 0; k < N; k++)
        E->a[k * d] = 1;
    return 1;
}

static int l_ensemble_call(lua_State *L)
{
    lua_remove(L, 1);   /* called as __call of the qd.ensemble table */
    return l_ensemble(L);
}

/* qd.ensemble.haar(n, N [, rng]) */
static int l_ensemble_haar(lua_State *L)
{
    qdL_checknargs(L, 3);
    int n = qdL_checknqubits(L, 1, QD_MAX_QUBITS);
    size_t N = qdL_checkcount(L, 2, "number of states");
    qd_rng *rng = qdL_optrng(L, 3);
    qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, N);
    qd_rng base = qd_rng_split(rng);
    size_t d = (size_t)1 << n;
    #pragma omp parallel for schedule(static) if (N * d > 4096)
    for (size_t k = 0; k < N; k++) {
        qd_rng sub = qd_rng_sub(&base, k);
        qd_state_haar(E->a + k * d, n, &sub);
    }
    return 1;
}

/* qd.ensemble.from{s1, s2, ...} (States of equal size) or from(matrix N x 2^n rows)
 * [, {normalize = true}]: members pass the value checks (finite, normalised within
 * QDL_NORM_TOL) unless normalize = true scales each. Each table entry is read once. */
static int l_ensemble_from(lua_State *L)
{
    qdL_checknargs(L, 2);
    if (!qdL_testarray(L, 1))
        luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const opts[] = {"normalize", NULL};
    qdL_checkoptions(L, 2, opts);
    int normalize = qdL_optbool(L, 2, "normalize", -1);
    lua_settop(L, 2);
    qdl_array *M = qdL_testarray(L, 1);
    if (M) {
        size_t d = M->cols;
        int n = 0;
        while (n < QD_MAX_QUBITS && ((size_t)1 << n) < d)
            n++;
        if (((size_t)1 << n) != d || n < 1 || M->rows < 1)
            return luaL_argerror(L, 1, lua_pushfstring(L, "N x 2^n matrix (one member per row) expected, got %dx%d",
                                                       (int)M->rows, (int)M->cols));
        qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, M->rows);
        for (size_t k = 0; k < M->rows; k++)
            for (size_t i = 0; i < d; i++)
                E->a[i + k * d] = qdL_array_get(M, k + i * M->rows);
        qdL_check_amps(L, 1, E->a, n, E->count, normalize);
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer N = qdL_checklen(L, 1, 1, (lua_Integer)1 << 40, "table of qd.State");
    if (N < 1)
        return luaL_argerror(L, 1, "non-empty table of qd.State expected");
    int n = -1;
    qdl_reg *E = NULL;
    size_t d = 0;
    for (lua_Integer k = 1; k <= N; k++) {
        lua_geti(L, 1, k);
        qdl_reg *s = qdL_testkind(L, -1, QDL_K_STATE);
        if (!s || !s->a)
            return luaL_argerror(L, 1, lua_pushfstring(L, "qd.State expected at position %d, got %s", (int)k,
                                                       s ? "a freed qd.State"
                                                         : luaL_getmetafield(L, -1, "__name") == LUA_TSTRING
                                                               ? lua_tostring(L, -1)
                                                               : luaL_typename(L, -1)));
        if (n < 0) {
            /* member 1 fixes the size; the ensemble is made while it is on the stack, so
             * it is not read twice */
            n = s->n;
            d = (size_t)1 << n;
            E = qdL_newreg(L, QDL_K_ENS, n, (size_t)N);
            lua_insert(L, -2);
        }
        if (s->n != n)
            return luaL_argerror(L, 1, lua_pushfstring(L, "states of equal size expected (position %d has %d qubits, position 1 has %d)",
                                                       (int)k, s->n, n));
        memcpy(E->a + (size_t)(k - 1) * d, s->a, sizeof(qd_c) * d);
        lua_pop(L, 1);
    }
    qdL_check_amps(L, 1, E->a, n, E->count, normalize);
    return 1;
}

static size_t checkmember(lua_State *L, qdl_reg *E, int arg)
{
    lua_Integer k = luaL_checkinteger(L, arg);
    if (k < 1 || (size_t)k > E->count)
        luaL_argerror(L, arg, lua_pushfstring(L, "member index 1..%I expected, got %I", (LUAI_UACINT)E->count, (LUAI_UACINT)k));
    return (size_t)(k - 1);
}

/* E:get(k) / E[k] -> a copy of member k as a qd.State */
static int m_get(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 2);
    size_t k = checkmember(L, E, 2);
    qdl_reg *s = qdL_newreg(L, QDL_K_STATE, E->n, 1);
    size_t d = (size_t)1 << E->n;
    memcpy(s->a, E->a + k * d, sizeof(qd_c) * d);
    return 1;
}

/* E:set(k, state) -> E */
static int m_set(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 3);
    size_t k = checkmember(L, E, 2);
    qdl_reg *s = qdL_checkkind(L, 3, QDL_K_STATE);
    if (s->n != E->n)
        return luaL_argerror(L, 3, lua_pushfstring(L, "%d-qubit qd.State expected, got %d qubits", E->n, s->n));
    /* a State can have left the value checks behind (sse{normalize = false}): checked here */
    char msg[160];
    if (qdL_amps_problem(s->a, s->n, 1, QDL_NORM_TOL, msg, sizeof msg))
        return luaL_argerror(L, 3, msg);
    size_t d = (size_t)1 << E->n;
    memcpy(E->a + k * d, s->a, sizeof(qd_c) * d);
    lua_settop(L, 1);
    return 1;
}

static int m_copy(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 1);
    qdl_reg *c = qdL_newreg(L, QDL_K_ENS, E->n, E->count);
    memcpy(c->a, E->a, E->bytes);
    return 1;
}

/* E:norms() -> qd.Vector of member norms */
static int m_norms(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 1);
    qdl_array *v = qdL_newarray(L, E->count, 1, 0, 1);
    size_t d = (size_t)1 << E->n;
    for (size_t k = 0; k < E->count; k++)
        ((double *)v->data)[k] = sqrt(qd_norm2(E->a + k * d, d));
    return 1;
}

/* E:overlaps(F) -> N x M qd.Matrix of |<a_i|b_j>|^2 (one zgemm) */
static int m_overlaps(lua_State *L)
{
    qdl_reg *A = checkens(L, 1);
    qdL_checknargs(L, 2);
    qdl_reg *B = lua_isnoneornil(L, 2) ? A : checkens(L, 2);
    if (B->n != A->n)
        return luaL_argerror(L, 2, lua_pushfstring(L, "ensemble of %d-qubit states expected, got %d qubits", A->n, B->n));
    qdl_array *m = qdL_newarray(L, A->count, B->count, 0, 0);
    qd_err e;
    if (qd_overlaps(A->a, A->count, B->a, B->count, A->n, m->data, &e) != QD_OK)
        return qdL_raise(L, &e);
    return 1;
}

/* E:fidelities(state) -> qd.Vector of |<psi|e_k>|^2 */
static int m_fidelities(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 2);
    qdl_reg *s = qdL_checkkind(L, 2, QDL_K_STATE);
    if (s->n != E->n)
        return luaL_argerror(L, 2, lua_pushfstring(L, "%d-qubit qd.State expected, got %d qubits", E->n, s->n));
    qdl_array *v = qdL_newarray(L, E->count, 1, 0, 1);
    size_t d = (size_t)1 << E->n;
    for (size_t k = 0; k < E->count; k++)
        ((double *)v->data)[k] = qd_fid_pure_pure(s->a, E->a + k * d, E->n);
    return 1;
}

/* E:mean_dm() -> (1/N) sum_k |e_k><e_k| */
static int m_mean_dm(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 1);
    if (2 * E->n > QD_MAX_QUBITS)
        return luaL_error(L, "mean_dm: %d qubits is too many for a density matrix", E->n);
    qdl_reg *o = qdL_newreg(L, QDL_K_DM, E->n, 1);
    qd_dm_from_ensemble(E->a, E->n, E->count, o->a);
    return 1;
}

/* E:measure(qubits [, rng] [, {keep=true}]) -> outcomes (table of bitstrings), qd.Vector of
 * probabilities, post-measurement ensemble (E itself when keep, else a new ensemble on the
 * unmeasured qubits). Member k draws its outcome from its own substream. */
static int m_measure(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 4);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 2, E->n, qs, 0);
    int optarg;
    qd_rng *rng = qdL_rng_opts(L, 3, &optarg);
    static const char *const opts[] = {"keep", NULL};
    qdL_checkoptions(L, optarg, opts);
    int keep = qdL_optbool(L, optarg, "keep", 1);
    if (!keep && k == E->n)
        return luaL_argerror(L, 2, "keep=false needs at least one unmeasured qubit");
    size_t N = E->count, d = (size_t)1 << E->n;
    qdl_array *pv = qdL_newarray(L, N, 1, 0, 1);
    int pv_idx = lua_gettop(L);
    size_t *outc = lua_newuserdatauv(L, sizeof(size_t) * N, 0);
    qdl_reg *out = E;
    size_t dout = d;
    if (!keep) {
        out = qdL_newreg(L, QDL_K_ENS, E->n - k, N);
        dout = (size_t)1 << out->n;
    } else {
        lua_pushvalue(L, 1);
    }
    int out_idx = lua_gettop(L);
    qd_rng base = qd_rng_split(rng);
    qd_err e;
    qd_status st = QD_OK;
    for (size_t j = 0; j < N && st == QD_OK; j++) {
        qd_rng sub = qd_rng_sub(&base, j);
        double u = qd_rng_uniform(&sub);
        st = qd_measure(E->a + j * d, E->n, qs, k, u, keep, out->a + j * dout, &outc[j],
                        (double *)pv->data + j, &e);
    }
    if (st != QD_OK)
        return qdL_raise(L, &e);
    lua_createtable(L, (int)N, 0);
    char bits[QD_MAX_QUBITS + 1];
    for (size_t j = 0; j < N; j++) {
        qdL_bits(outc[j], k, bits);
        lua_pushstring(L, bits);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_pushvalue(L, pv_idx);
    lua_pushvalue(L, out_idx);
    return 3;
}

/* E:totable() -> { qd.State, ... } (copies) */
static int m_states(lua_State *L)
{
    qdl_reg *E = checkens(L, 1);
    qdL_checknargs(L, 1);
    size_t d = (size_t)1 << E->n;
    lua_createtable(L, (int)E->count, 0);
    for (size_t k = 0; k < E->count; k++) {
        qdl_reg *s = qdL_newreg(L, QDL_K_STATE, E->n, 1);
        memcpy(s->a, E->a + k * d, sizeof(qd_c) * d);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
}

void qdL_open_ensemble(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"get", m_get},           {"set", m_set},         {"copy", m_copy},
        {"norms", m_norms},       {"overlaps", m_overlaps}, {"fidelities", m_fidelities},
        {"mean_dm", m_mean_dm},   {"measure", m_measure}, {"states", m_states},
        {"probs", qdL_m_probs},   {"expect", qdL_m_expect}, {"embed", qdL_m_embed},
        {NULL, NULL}};
    qdL_reg_metatable(L, QDL_K_ENS, methods);
    static const luaL_Reg fns[] = {
        {"ensemble_new", l_ensemble}, {"ensemble_call", l_ensemble_call}, {"ensemble_haar", l_ensemble_haar},
        {"ensemble_from", l_ensemble_from}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
