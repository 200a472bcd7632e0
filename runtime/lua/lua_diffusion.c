/* lua_diffusion.c — the QuDDPM forward process from Lua, one C call each:
 *   core.diffusion_scramble(E, h [, rng]) -> E   one step of strength h, in place
 *   core.diffusion_forward(E0, hs [, rng] [, {mode=}]) -> {S_0, ..., S_T}
 * hs: a qd.Schedule, a qd.Vector or a table of numbers (h_1..h_T). The stream is split
 * off rng (the run's generator by default); member k of S_t does not depend on N or the
 * thread count (diffusion.c). stdlib/qd/diffusion.lua is the documented wrapper. */
#include "lua_util.h"
#include "qd_random.h"
#include <math.h>
#include <string.h>

/* lua_schedule.c: the values of the qd.Schedule at idx, or NULL if it is not one */

/* the strengths at arg as a (pushed, GC-owned) buffer of T values */
static const double *checkhs(lua_State *L, int arg, size_t *T)
{
    const double *sv = qdL_schedule_values(L, arg, T);
    if (sv) {
        lua_pushvalue(L, arg);   /* keeps the schedule (and its values) alive */
        return sv;
    }
    qdl_array *a = qdL_testarray(L, arg);
    size_t n;
    if (a) {
        if (a->cplx)
            luaL_argerror(L, arg, "real strengths expected, got a complex qd.Vector");
        n = a->rows * a->cols;
    } else if (lua_istable(L, arg)) {
        lua_Integer len = luaL_len(L, arg);
        n = len > 0 ? (size_t)len : 0;
    } else {
        const char *got = luaL_getmetafield(L, arg, "__name") == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, arg);
        luaL_argerror(L, arg, lua_pushfstring(L, "qd.Schedule, qd.Vector or table of strengths expected, got %s", got));
        return NULL;
    }
    if (n < 1 || n > 10000000)
        luaL_argerror(L, arg, lua_pushfstring(L, "1..10000000 strengths expected, got %I", (LUAI_UACINT)n));
    double *v = lua_newuserdatauv(L, sizeof(double) * n, 0);
    for (size_t i = 0; i < n; i++) {
        if (a) {
            v[i] = ((double *)a->data)[i];
        } else {
            lua_geti(L, arg, (lua_Integer)i + 1);
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_argerror(L, arg, lua_pushfstring(L, "number expected at position %I, got %s", (LUAI_UACINT)i + 1,
                                                      luaL_typename(L, -1)));
            v[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        if (!isfinite(v[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "finite strength expected at position %I", (LUAI_UACINT)i + 1));
    }
    *T = n;
    return v;
}

static int l_scramble(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_reg *E = qdL_checkkind(L, 1, QDL_K_ENS);
    double h = luaL_checknumber(L, 2);
    if (!isfinite(h))
        return luaL_argerror(L, 2, "finite strength h expected");
    qd_rng *rng = qdL_optrng(L, 3);
    qd_rng base = qd_rng_split(rng);
    qd_diffusion_steps(E->a, E->n, E->count, &h, 1, 1, &base);
    lua_settop(L, 1);
    return 1;
}

/* forward(E0, hs [, rng] [, {mode = "marginal" | "trajectory"}]) */
static int l_forward(lua_State *L)
{
    qdL_checknargs(L, 4);
    qdl_reg *E = qdL_checkkind(L, 1, QDL_K_ENS);
    int oi = 4;
    qd_rng *rng;
    if (lua_istable(L, 3)) {
        qdL_checknargs(L, 3);
        oi = 3;
        rng = qdL_runrng(L);
    } else {
        rng = qdL_optrng(L, 3);
    }
    static const char *const opts[] = {"mode", NULL};
    qdL_checkoptions(L, oi, opts);
    int marginal = 1;
    if (!lua_isnoneornil(L, oi)) {
        int t = lua_getfield(L, oi, "mode");
        const char *m = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (t != LUA_TNIL) {
            if (m && strcmp(m, "trajectory") == 0)
                marginal = 0;
            else if (!m || strcmp(m, "marginal") != 0)
                return luaL_argerror(L, oi, lua_pushfstring(L, "option 'mode': \"marginal\" or \"trajectory\" expected, got %s",
                                                            m ? lua_pushfstring(L, "\"%s\"", m) : luaL_typename(L, -1)));
        }
        lua_pop(L, 1);
    }
    size_t T = 0;
    const double *hs = checkhs(L, 2, &T);
    /* T+1 ensembles, allocated first (so a memory error leaves nothing half done) */
    lua_createtable(L, (int)(T + 1 < 1000000 ? T + 1 : 0), 0);
    int tab = lua_gettop(L);
    qd_c **out = lua_newuserdatauv(L, sizeof(qd_c *) * (T + 1), 0);
    for (size_t t = 0; t <= T; t++) {
        qdl_reg *S = qdL_newreg(L, QDL_K_ENS, E->n, E->count);
        out[t] = S->a;
        lua_rawseti(L, tab, (lua_Integer)t + 1);
    }
    qd_rng base = qd_rng_split(rng);
    qd_diffusion_forward(E->a, E->n, E->count, hs, T, &base, marginal, out);
    lua_settop(L, tab);
    return 1;
}

void qdL_open_diffusion(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"diffusion_scramble", l_scramble}, {"diffusion_forward", l_forward}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
