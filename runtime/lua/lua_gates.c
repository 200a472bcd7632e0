/* lua_gates.c — gate methods shared by qd.State, qd.DensityMatrix and qd.Ensemble.
 * One C closure per gate of the core's table (upvalue: the gate), so the three types
 * expose exactly the same gate names and argument rules:
 *   obj:NAME(q1, ..., qk, p1, ..., pm)   -> obj       (qubits first, then angles)
 * On an Ensemble each angle may be a number (all members) or a qd.Vector / table of N
 * numbers (one per member), applied in one C call. */
#include "lua_util.h"
#include <math.h>
#include <string.h>

/* per-member angles for parameter at arg: returns 1 and fills out[j*np + pi] */
static int member_params(lua_State *L, int arg, size_t N, size_t np, size_t pi, double *out)
{
    qdl_array *v = qdL_testarray(L, arg);
    if (v) {
        if (v->cplx || v->rows * v->cols != N)
            luaL_argerror(L, arg, lua_pushfstring(L, "number or real qd.Vector of %d angles expected, got %s of %d",
                                                  (int)N, v->cplx ? "complex array" : "array", (int)(v->rows * v->cols)));
        for (size_t j = 0; j < N; j++)
            out[j * np + pi] = ((double *)v->data)[j];
        return 1;
    }
    if (lua_istable(L, arg)) {
        lua_Integer len = luaL_len(L, arg);
        if ((size_t)len != N)
            luaL_argerror(L, arg, lua_pushfstring(L, "number or table of %d angles expected, got %d angles",
                                                  (int)N, (int)len));
        for (size_t j = 0; j < N; j++) {
            lua_geti(L, arg, (lua_Integer)j + 1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_argerror(L, arg, lua_pushfstring(L, "angle at position %d is not a number", (int)j + 1));
            out[j * np + pi] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        return 1;
    }
    return 0;
}

static void check_finite(lua_State *L, int arg, double x)
{
    if (!isfinite(x))
        luaL_argerror(L, arg, "finite angle expected, got nan or inf");
}

static int gate_method(lua_State *L)
{
    const qd_gate_info *g = lua_touserdata(L, lua_upvalueindex(1));
    qdl_reg *r = qdL_checkreg(L, 1);
    int k = g->nqubits, np = g->nparams;
    qdL_checknargs(L, 1 + k + np);
    if (r->n < k)
        return luaL_error(L, "'%s' acts on %d qubits, the %s has %d", g->name, k,
                          qdL_kindname(r->kind), r->n);
    int qs[3];
    for (int i = 0; i < k; i++) {
        qs[i] = qdL_checkqubit(L, 2 + i, r->n);
        for (int j = 0; j < i; j++)
            if (qs[j] == qs[i])
                luaL_argerror(L, 2 + i, lua_pushfstring(L, "distinct qubits expected, got qubit %d twice", qs[i]));
    }
    double p[3] = {0, 0, 0};
    int per_member = 0;
    for (int i = 0; i < np; i++) {
        int arg = 2 + k + i;
        if (lua_type(L, arg) == LUA_TNUMBER) {
            p[i] = lua_tonumber(L, arg);
            check_finite(L, arg, p[i]);
        } else if (r->kind == QDL_K_ENS && (qdL_testarray(L, arg) || lua_istable(L, arg))) {
            per_member = 1;
        } else if (lua_isnone(L, arg)) {
            luaL_argerror(L, arg, lua_pushfstring(L, "'%s' takes %d qubit%s and %d angle%s; angle expected",
                                                  g->name, k, k > 1 ? "s" : "", np, np > 1 ? "s" : ""));
        } else {
            luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s",
                                                  r->kind == QDL_K_ENS ? "angle (number or qd.Vector of angles)" : "angle (number)",
                                                  luaL_typename(L, arg)));
        }
    }
    if (r->kind == QDL_K_DM) {
        qd_dm_apply_gate(r->a, r->n, g, qs, p);
    } else if (per_member) {
        size_t N = r->count;
        double *pv = lua_newuserdatauv(L, sizeof(double) * N * (size_t)np, 0);
        for (int i = 0; i < np; i++) {
            int arg = 2 + k + i;
            if (!member_params(L, arg, N, (size_t)np, (size_t)i, pv))
                for (size_t j = 0; j < N; j++)
                    pv[j * (size_t)np + (size_t)i] = p[i];
            for (size_t j = 0; j < N; j++)
                check_finite(L, arg, pv[j * (size_t)np + (size_t)i]);
        }
        qd_apply_gate(r->a, r->n, r->count, g, qs, pv, 1);
        lua_pop(L, 1);
    } else {
        qd_apply_gate(r->a, r->n, r->count, g, qs, p, 0);
    }
    lua_settop(L, 1);
    return 1;
}

/* obj:unitary(U, {q...}) — any k-qubit unitary (qd.Matrix or table of rows), qs[1] the
 * most significant bit of U's index. Checked for unitarity (tolerance 1e-8). */
static int m_unitary(lua_State *L)
{
    qdl_reg *r = qdL_checkreg(L, 1);
    qdL_checknargs(L, 3);
    int qs[QD_MAX_QUBITS];
    int k = qdL_checkqubits(L, 3, r->n, qs, 0);
    if (k > 12)
        luaL_argerror(L, 3, "at most 12 target qubits expected");
    qd_c *m = qdL_checkunitary(L, 2, k);
    qd_err e;
    qd_status st = r->kind == QDL_K_DM ? qd_dm_apply_matrix(r->a, r->n, qs, k, m, &e)
                                        : qd_apply_matrix(r->a, r->n, r->count, qs, k, m, &e);
    if (st != QD_OK)
        return qdL_raise(L, &e);
    lua_settop(L, 1);
    return 1;
}

void qdL_add_gate_methods(lua_State *L)
{
    size_t n;
    const qd_gate_info *g = qd_gate_list(&n);
    for (size_t i = 0; i < n; i++) {
        lua_pushlightuserdata(L, (void *)&g[i]);
        lua_pushcclosure(L, gate_method, 1);
        lua_setfield(L, -2, g[i].name);
    }
    lua_pushcfunction(L, m_unitary);
    lua_setfield(L, -2, "unitary");
}

/* qd.gates() -> { name = {qubits=k, params=m, doc="..."}, ... } */
static int l_gates(lua_State *L)
{
    qdL_checknargs(L, 0);
    size_t n;
    const qd_gate_info *g = qd_gate_list(&n);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 0, 3);
        lua_pushinteger(L, g[i].nqubits);
        lua_setfield(L, -2, "qubits");
        lua_pushinteger(L, g[i].nparams);
        lua_setfield(L, -2, "params");
        lua_pushstring(L, g[i].doc ? g[i].doc : "");
        lua_setfield(L, -2, "doc");
        lua_setfield(L, -2, g[i].name);
    }
    return 1;
}

/* core.gate_inverses() -> { name = rule }: how each gate's inverse is formed — "negate"
 * (every angle negated; self-inverse when it has none), "u" (u(t,f,l)^-1 = u(-t,-l,-f)) or
 * the inverse gate's name (for qasm.lua's `inv @`; not part of the public qd table) */
static int l_gate_inverses(lua_State *L)
{
    size_t n;
    const qd_gate_info *g = qd_gate_list(&n);
    lua_createtable(L, 0, (int)n);
    for (size_t i = 0; i < n; i++) {
        const qd_gate_info *gi = g[i].inv == QD_INV_OTHER ? qd_gate_get(g[i].inverse) : NULL;
        lua_pushstring(L, gi ? gi->name : g[i].inv == QD_INV_U ? "u" : "negate");
        lua_setfield(L, -2, g[i].name);
    }
    return 1;
}

/* qd.gate_matrix(name, p...) -> qd.Matrix */
static int l_gate_matrix(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const qd_gate_info *g = qd_gate_lookup(name);
    if (!g)
        return luaL_argerror(L, 1, lua_pushfstring(L, "gate name expected, got '%s'", name));
    qdL_checknargs(L, 1 + g->nparams);
    double p[3] = {0, 0, 0};
    for (int i = 0; i < g->nparams; i++)
        p[i] = luaL_checknumber(L, 2 + i);
    size_t d = (size_t)1 << g->nqubits;
    qdl_array *a = qdL_newarray(L, d, d, 1, 0);
    qd_gate_matrix(g, p, a->data);
    return 1;
}

void qdL_open_gates(lua_State *L)
{
    static const luaL_Reg fns[] = {{"gates", l_gates}, {"gate_matrix", l_gate_matrix},
                                   {"gate_inverses", l_gate_inverses}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
