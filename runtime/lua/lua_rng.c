/* lua_rng.c — qd.Rng: seeded, splittable generators, and the run's generator. */
#include "lua_util.h"
#include "lua_qd.h"
#include <math.h>

#define RUN_RNG_KEY "qd.run_rng"


static qd_rng *pushrng(lua_State *L)
{
    qd_rng *r = lua_newuserdatauv(L, sizeof *r, 0);
    qd_rng_init(r, 0);
    luaL_setmetatable(L, QDL_RNG);
    return r;
}

qd_rng *qdL_checkrng(lua_State *L, int idx)
{
    qd_rng *r = luaL_testudata(L, idx, QDL_RNG);
    if (!r && lua_isinteger(L, idx) && lua_tointeger(L, idx) >= 0) {
        /* an integer seed where a generator is expected: qd.rng(seed), in its place on the
         * stack (so it lives as long as the call) */
        idx = lua_absindex(L, idx);
        uint64_t seed = (uint64_t)lua_tointeger(L, idx);
        r = pushrng(L);
        qd_rng_init(r, seed);
        lua_replace(L, idx);
        return r;
    }
    if (!r) {
        const char *got = luaL_getmetafield(L, idx, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, idx);
        luaL_argerror(L, idx, lua_pushfstring(L, "qd.Rng (or an integer seed) expected, got %s", got));
    }
    return r;
}

/* the generator a method is called on: a qd.Rng only (an integer seed is for arguments) */
static qd_rng *checkself(lua_State *L)
{
    qd_rng *r = luaL_testudata(L, 1, QDL_RNG);
    if (!r) {
        const char *got = luaL_getmetafield(L, 1, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                          : luaL_typename(L, 1);
        luaL_argerror(L, 1, lua_pushfstring(L, "qd.Rng expected, got %s", got));
    }
    return r;
}

qd_rng *qdL_runrng(lua_State *L)
{
    return qdL_optrng(L, lua_gettop(L) + 1);
}

qd_rng *qdL_optrng(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) {
        lua_getfield(L, LUA_REGISTRYINDEX, RUN_RNG_KEY);
        qd_rng *r = luaL_testudata(L, -1, QDL_RNG);
        lua_pop(L, 1);   /* the registry keeps it alive */
        if (!r) {
            qdL_set_run_seed(L, QD_DEFAULT_SEED);
            lua_getfield(L, LUA_REGISTRYINDEX, RUN_RNG_KEY);
            r = lua_touserdata(L, -1);
            lua_pop(L, 1);
        }
        return r;
    }
    return qdL_checkrng(L, idx);
}

void qdL_set_run_seed(lua_State *L, uint64_t seed)
{
    qd_rng *r = pushrng(L);
    qd_rng_init(r, seed);
    lua_setfield(L, LUA_REGISTRYINDEX, RUN_RNG_KEY);
}

static uint64_t checkseed(lua_State *L, int arg)
{
    int isnum = 0;
    lua_Integer s = lua_tointegerx(L, arg, &isnum);
    if (!isnum || s < 0)
        luaL_argerror(L, arg, lua_pushfstring(L, "non-negative integer seed expected, got %s",
                                              isnum ? lua_pushfstring(L, "%I", (LUAI_UACINT)s)
                                                    : lua_type(L, arg) == LUA_TNUMBER ? "a non-integer"
                                                                                      : luaL_typename(L, arg)));
    return (uint64_t)s;
}

/* qd.rng(seed) */
static int l_rng(lua_State *L)
{
    qdL_checknargs(L, 1);
    uint64_t seed = checkseed(L, 1);
    qd_rng *r = pushrng(L);
    qd_rng_init(r, seed);
    return 1;
}

/* qd.run_rng() — the run's generator (seeded by --seed) */
static int l_run_rng(lua_State *L)
{
    qdL_checknargs(L, 0);
    qdL_optrng(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, RUN_RNG_KEY);
    return 1;
}

/* qd.set_seed(seed) — reseed the run's generator */
static int l_set_seed(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdL_set_run_seed(L, checkseed(L, 1));
    return 0;
}

/* r:uniform() in [0,1); r:uniform(a, b) in [a, b); r:uniform(a, b, n) -> qd.Vector */
static int m_uniform(lua_State *L)
{
    qd_rng *r = checkself(L);
    qdL_checknargs(L, 4);
    double a = luaL_optnumber(L, 2, 0.0), b = luaL_optnumber(L, 3, 1.0);
    if (!(b >= a) || !isfinite(a) || !isfinite(b))
        luaL_argerror(L, 3, "finite bounds with a <= b expected");
    if (!lua_isnoneornil(L, 4)) {
        size_t n = qdL_checkcount(L, 4, "count");
        qdl_array *v = qdL_newarray(L, n, 1, 0, 1);
        double *d = v->data;
        for (size_t i = 0; i < n; i++)
            d[i] = a + (b - a) * qd_rng_uniform(r);
        return 1;
    }
    lua_pushnumber(L, a + (b - a) * qd_rng_uniform(r));
    return 1;
}

/* r:normal() ~ N(0,1); r:normal(mu, sigma); r:normal(mu, sigma, n) -> qd.Vector */
static int m_normal(lua_State *L)
{
    qd_rng *r = checkself(L);
    qdL_checknargs(L, 4);
    double mu = luaL_optnumber(L, 2, 0.0), sd = luaL_optnumber(L, 3, 1.0);
    if (!(sd >= 0) || !isfinite(mu) || !isfinite(sd))
        luaL_argerror(L, 3, "finite sigma >= 0 expected");
    if (!lua_isnoneornil(L, 4)) {
        size_t n = qdL_checkcount(L, 4, "count");
        qdl_array *v = qdL_newarray(L, n, 1, 0, 1);
        double *d = v->data;
        for (size_t i = 0; i < n; i++)
            d[i] = mu + sd * qd_rng_normal(r);
        return 1;
    }
    lua_pushnumber(L, mu + sd * qd_rng_normal(r));
    return 1;
}

/* r:integer(lo, hi) uniform in [lo, hi] */
static int m_integer(lua_State *L)
{
    qd_rng *r = checkself(L);
    qdL_checknargs(L, 3);
    lua_Integer lo = luaL_checkinteger(L, 2), hi = luaL_checkinteger(L, 3);
    if (hi < lo)
        luaL_argerror(L, 3, "upper bound >= lower bound expected");
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1, x;
    if (span == 0) {
        x = qd_rng_u64(r);
    } else {
        /* rejection sampling: no modulo bias */
        uint64_t lim = UINT64_MAX - UINT64_MAX % span;
        do
            x = qd_rng_u64(r);
        while (x >= lim);
        x %= span;
    }
    lua_pushinteger(L, (lua_Integer)((uint64_t)lo + x));
    return 1;
}

static int m_split(lua_State *L)
{
    qd_rng *r = checkself(L);
    qdL_checknargs(L, 1);
    qd_rng c = qd_rng_split(r);
    qd_rng *n = pushrng(L);
    *n = c;
    return 1;
}

/* r:substream(k) — the k-th substream (does not advance r) */
static int m_substream(lua_State *L)
{
    qd_rng *r = checkself(L);
    qdL_checknargs(L, 2);
    lua_Integer k = luaL_checkinteger(L, 2);
    if (k < 0)
        luaL_argerror(L, 2, lua_pushfstring(L, "substream index >= 0 expected, got %I", (LUAI_UACINT)k));
    qd_rng c = qd_rng_sub(r, (uint64_t)k);
    qd_rng *n = pushrng(L);
    *n = c;
    return 1;
}

static int m_seed(lua_State *L)
{
    qd_rng *r = checkself(L);
    qdL_checknargs(L, 1);
    lua_pushinteger(L, (lua_Integer)r->seed);
    return 1;
}

static int m_tostring(lua_State *L)
{
    qd_rng *r = checkself(L);
    lua_pushfstring(L, "qd.Rng(seed %I, %I draws)", (LUAI_UACINT)r->seed, (LUAI_UACINT)r->ctr);
    return 1;
}

void qdL_open_rng(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"uniform", m_uniform}, {"normal", m_normal}, {"integer", m_integer},
        {"split", m_split},     {"substream", m_substream}, {"seed", m_seed},
        {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__tostring", m_tostring}, {NULL, NULL}};
    qdL_newclass(L, QDL_RNG, methods, NULL, meta);
    lua_pop(L, 1);
    /* module functions go into the table on top */
    static const luaL_Reg fns[] = {
        {"rng", l_rng}, {"run_rng", l_run_rng}, {"set_seed", l_set_seed}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
}
