/* lua_optim.c — the per-entry loops of qd.optim.adam and qd.optim.sgd (stdlib/qd/optim.lua)
 * as two internal qd.core functions. optim.lua validates the call and the options, keeps
 * the step count and the bias corrections, and hands the loop over here:
 *
 *   core.optim_adam(x, g, m, v, n, beta1, beta2, eps, weight_decay, -step, sqrt(bc2))
 *   core.optim_sgd(x, g, buf, n, lr, momentum, dampening, weight_decay, nesterov, first)
 *   core.optim_vinfo(v) -> length, is_complex (a live qd.Vector) or nothing
 *
 * x (updated in place) and g are real qd.Vectors or tables of numbers; Adam's m and v are real
 * qd.Vectors (updated in place; optim.lua makes them so when x is a Vector) or plain Lua
 * arrays, and buf a plain array (arrays read and written raw, so a state keeps its exact
 * shape and round-trips through optim.checkpoint as before). Every entry is read and checked before
 * anything is written: a bad entry raises with x, m, v and buf untouched (optim.lua has
 * already counted the step in state.t, as the Lua loop had).
 *
 * The arithmetic is the Lua loop's, operation by operation (PyTorch's order, see
 * optim.lua). The build is ISO C11 (-std=c11), under which GCC does not contract a*b + c
 * into a fused multiply-add (-ffp-contract=off), so each line rounds exactly as Lua's
 * doubles do; tests/lua/test_optim.lua checks the results bit for bit against the Lua
 * loop. Numbers are taken as doubles: Lua integers in a table behave as the equal float
 * (the Lua loop would multiply two integers exactly, which only differs beyond 2^53). */
#include "lua_util.h"
#include <math.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* entries read per call on the C stack; longer vectors use a scratch userdata */
#define OPTIM_STACK_ENTRIES 128

/* arg: a real qd.Vector of n entries (returned) or a table (NULL) */
static qdl_array *vec_or_table(lua_State *L, int arg, lua_Integer n, const char *what)
{
    if (lua_type(L, arg) == LUA_TTABLE)
        return NULL;
    qdl_array *a = luaL_testudata(L, arg, QDL_VECTOR);
    if (!a) {
        const char *got = luaL_getmetafield(L, arg, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, arg);
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: real qd.Vector or table expected, got %s", what, got));
    }
    if (a->freed)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: qd.Vector has been freed", what));
    if (a->cplx)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: real qd.Vector expected, got a complex one", what));
    if ((lua_Integer)(a->rows * a->cols) != n)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: qd.Vector of length %I expected, got %I", what,
                                              (LUAI_UACINT)n, (LUAI_UACINT)(a->rows * a->cols)));
    return a;
}

/* entry i of the table at idx as a double (raw access for the state's arrays, t[i] with
 * metamethods for x and g, as the Lua loop read them) */
static double entry(lua_State *L, int idx, lua_Integer i, int raw, const char *fname, const char *what)
{
    if (raw)
        lua_rawgeti(L, idx, i);
    else
        lua_geti(L, idx, i);
    int ok;
    lua_Number d = lua_tonumberx(L, -1, &ok);
    if (!ok)
        luaL_error(L, "%s: %s entry %I: number expected, got %s", fname, what, (LUAI_UACINT)i,
                   luaL_typename(L, -1));
    lua_pop(L, 1);
    return (double)d;
}

/* entry i of the two tables at 3 and 4 (Adam's m and v), raw: the common path, two
 * values pushed, converted and dropped together (fewer Lua API calls per entry) */
static void entry_pair(lua_State *L, lua_Integer i, double *a, double *b)
{
    lua_rawgeti(L, 3, i);
    lua_rawgeti(L, 4, i);
    int oka, okb;
    *a = (double)lua_tonumberx(L, -2, &oka);
    *b = (double)lua_tonumberx(L, -1, &okb);
    if (!oka)
        luaL_error(L, "adam: state.m entry %I: number expected, got %s", (LUAI_UACINT)i, luaL_typename(L, -2));
    if (!okb)
        luaL_error(L, "adam: state.v entry %I: number expected, got %s", (LUAI_UACINT)i, luaL_typename(L, -1));
    lua_pop(L, 2);
}

static lua_Integer checkn(lua_State *L, int arg)
{
    lua_Integer n = luaL_checkinteger(L, arg);
    if (n < 0)
        luaL_argerror(L, arg, "parameter count >= 0 expected");
    return n;
}

/* k doubles per entry for n entries: the stack buffer or a pushed scratch userdata */
static double *scratch(lua_State *L, double *stackbuf, lua_Integer n, size_t k)
{
    if ((size_t)n <= OPTIM_STACK_ENTRIES)
        return stackbuf;
    if ((size_t)n > SIZE_MAX / (k * sizeof(double)))
        luaL_error(L, "not enough memory for the optimizer's scratch (size overflows)");
    return lua_newuserdatauv(L, (size_t)n * k * sizeof(double), 0);
}

/* x was checked before the table reads (which may run metamethods): still usable? */
static double *vector_data(lua_State *L, qdl_array *a, int arg)
{
    if (a->freed)
        luaL_argerror(L, arg, "qd.Vector has been freed");
    return a->data;
}

/* core.optim_adam(x, g, m, v, n, b1, b2, eps, wd, nstep, bc2s): one Adam step in place
 * (nstep = -lr / (1 - b1^t), bc2s = sqrt(1 - b2^t), computed in optim.lua) */
static int l_optim_adam(lua_State *L)
{
    qdL_checknargs(L, 11);
    lua_Integer n = checkn(L, 5);
    qdl_array *xa = vec_or_table(L, 1, n, "parameters");
    qdl_array *ga = vec_or_table(L, 2, n, "gradient");
    qdl_array *ma = vec_or_table(L, 3, n, "state.m");
    qdl_array *va = vec_or_table(L, 4, n, "state.v");
    double b1 = luaL_checknumber(L, 6), b2 = luaL_checknumber(L, 7), eps = luaL_checknumber(L, 8);
    double wd = luaL_checknumber(L, 9), nstep = luaL_checknumber(L, 10), bc2s = luaL_checknumber(L, 11);
    double c1 = 1 - b1, c2 = 1 - b2;
    /* pass 1: read (and check) everything that lives in Lua tables: [g, m, v, x] per entry */
    double stackbuf[4 * OPTIM_STACK_ENTRIES], one[4];
    int direct = xa && ga && ma && va;   /* all in qd.Vectors: no scratch */
    double *s = direct ? NULL : scratch(L, stackbuf, n, 4);
    for (lua_Integer i = 1; !direct && i <= n; i++) {
        double *e = s + 4 * (i - 1);
        if (!ga)
            e[0] = entry(L, 2, i, 0, "adam", "gradient");
        if (!ma && !va)
            entry_pair(L, i, &e[1], &e[2]);
        else if (!ma)
            e[1] = entry(L, 3, i, 1, "adam", "state.m");
        else if (!va)
            e[2] = entry(L, 4, i, 1, "adam", "state.v");
        if (!xa)
            e[3] = entry(L, 1, i, 0, "adam", "parameter");
    }
    double *x = xa ? vector_data(L, xa, 1) : NULL;
    const double *g = ga ? vector_data(L, ga, 2) : NULL;
    double *mv = ma ? vector_data(L, ma, 3) : NULL, *vv = va ? vector_data(L, va, 4) : NULL;
    /* pass 2: the update, in the Lua loop's order, in plain C (no Lua calls in the loop,
     * so the divisions and square roots of successive entries overlap). Entry i of g is
     * read before x[i] is written, so g may be x itself, as with the Lua loop's snapshot.
     * m, v and a table x's new values go back to the scratch, written to Lua in pass 3. */
    for (lua_Integer i = 0; i < n; i++) {
        double *e = direct ? one : s + 4 * i;
        double gi = g ? g[i] : e[0];
        double xi = x ? x[i] : e[3];
        if (wd != 0)
            gi = gi + wd * xi;
        double mi = (mv ? mv[i] : e[1]) * b1 + gi * c1;
        double vi = (vv ? vv[i] : e[2]) * b2 + gi * gi * c2;
        double denom = sqrt(vi) / bc2s + eps;
        double xn = xi + nstep * (mi / denom);
        if (mv)
            mv[i] = mi;
        else
            e[1] = mi;
        if (vv)
            vv[i] = vi;
        else
            e[2] = vi;
        if (x)
            x[i] = xn;
        else
            e[3] = xn;
    }
    if (mv && vv && x)
        return 0;
    for (lua_Integer i = 1; i <= n; i++) {
        const double *e = s + 4 * (i - 1);
        if (!mv) {
            lua_pushnumber(L, e[1]);
            lua_rawseti(L, 3, i);
        }
        if (!vv) {
            lua_pushnumber(L, e[2]);
            lua_rawseti(L, 4, i);
        }
        if (!x) {
            lua_pushnumber(L, e[3]);
            lua_seti(L, 1, i);
        }
    }
    return 0;
}

/* core.optim_sgd(x, g, buf, n, lr, mu, damp, wd, nesterov, first): one SGD step in place;
 * buf (the momentum buffer) is used only when mu ~= 0; first: buf is being filled */
static int l_optim_sgd(lua_State *L)
{
    qdL_checknargs(L, 10);
    lua_Integer n = checkn(L, 4);
    qdl_array *xa = vec_or_table(L, 1, n, "parameters");
    qdl_array *ga = vec_or_table(L, 2, n, "gradient");
    double lr = luaL_checknumber(L, 5), mu = luaL_checknumber(L, 6), damp = luaL_checknumber(L, 7);
    double wd = luaL_checknumber(L, 8);
    int nesterov = lua_toboolean(L, 9), first = lua_toboolean(L, 10);
    int mom = mu != 0;
    if (mom)
        luaL_checktype(L, 3, LUA_TTABLE);
    double c = 1 - damp, nlr = -lr;
    /* pass 1: [g, buf, x] per entry from Lua tables */
    double stackbuf[3 * OPTIM_STACK_ENTRIES];
    double *s = scratch(L, stackbuf, n, 3);
    for (lua_Integer i = 1; i <= n; i++) {
        double *e = s + 3 * (i - 1);
        if (!ga)
            e[0] = entry(L, 2, i, 0, "sgd", "gradient");
        if (mom && !first)
            e[1] = entry(L, 3, i, 1, "sgd", "state.buf");
        if (!xa)
            e[2] = entry(L, 1, i, 0, "sgd", "parameter");
    }
    double *x = xa ? vector_data(L, xa, 1) : NULL;
    const double *g = ga ? vector_data(L, ga, 2) : NULL;
    /* pass 2: the update in plain C (see optim_adam); new buf and table-x values go back
     * to the scratch for pass 3 */
    for (lua_Integer i = 0; i < n; i++) {
        double *e = s + 3 * i;
        double gi = g ? g[i] : e[0];
        double xi = x ? x[i] : e[2];
        if (wd != 0)
            gi = gi + wd * xi;
        if (mom) {
            double b = first ? gi + 0.0 : e[1] * mu + gi * c;
            e[1] = b;
            gi = nesterov ? gi + mu * b : b;
        }
        double xn = xi + nlr * gi;
        if (x)
            x[i] = xn;
        else
            e[2] = xn;
    }
    if (mom || !x) {
        for (lua_Integer i = 1; i <= n; i++) {
            const double *e = s + 3 * (i - 1);
            if (mom) {
                lua_pushnumber(L, e[1]);
                lua_rawseti(L, 3, i);
            }
            if (!x) {
                lua_pushnumber(L, e[2]);
                lua_seti(L, 1, i);
            }
        }
    }
    return 0;
}

/* core.optim_vinfo(v) -> length, is_complex for a live qd.Vector; nothing for anything
 * else (a table, a freed Vector, ...), which optim.lua then checks the long way. One call
 * instead of v:is_complex() and #v on the common path. */
static int l_optim_vinfo(lua_State *L)
{
    qdl_array *a = luaL_testudata(L, 1, QDL_VECTOR);
    if (!a || a->freed)
        return 0;
    lua_pushinteger(L, (lua_Integer)(a->rows * a->cols));
    lua_pushboolean(L, a->cplx);
    return 2;
}

void qdL_open_optim(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"optim_adam", l_optim_adam}, {"optim_sgd", l_optim_sgd}, {"optim_vinfo", l_optim_vinfo}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
