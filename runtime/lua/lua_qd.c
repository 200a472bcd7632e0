/* lua_qd.c — the C module "qd.core": registers every userdata type and module function.
 * The public module is stdlib/qd/init.lua, which arranges these under the documented
 * names (qd.state(n), qd.state.from, qd.ensemble.haar, ...). */
#include <math.h>
#include "lua_util.h"
#include "lua_qd.h"
#include <string.h>
#include <time.h>
#include "qd_isa.h"


static int l_set_threads(lua_State *L)
{
    qdL_checknargs(L, 1);
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1 || n > 1024)
        return luaL_argerror(L, 1, "thread count 1..1024 expected");
    qd_set_threads((int)n);
    return 0;
}

static int l_get_threads(lua_State *L)
{
    qdL_checknargs(L, 0);
    lua_pushinteger(L, qd_get_threads());
    return 1;
}

/* qd.clock() -> seconds from a monotonic clock (for timing and progress, never randomness) */
static int l_clock(lua_State *L)
{
    qdL_checknargs(L, 0);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    return 1;
}

/* qd.simd() -> the kernel set in use ("portable", "avx2", "avx512"; see qd_isa.h) */
static int l_simd(lua_State *L)
{
    qdL_checknargs(L, 0);
    lua_pushstring(L, qd_isa_name());
    return 1;
}

/* qd.simd_sets() -> {names this CPU runs, best last}, {names built in}, the CPU's ISA */
static int push_words(lua_State *L, const char *list)
{
    lua_newtable(L);
    lua_Integer k = 0;
    for (const char *p = list; *p;) {
        const char *q = strchr(p, ' ');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        lua_pushlstring(L, p, n);
        lua_rawseti(L, -2, ++k);
        p += n + (q != NULL);
    }
    return 1;
}

static int l_simd_sets(lua_State *L)
{
    qdL_checknargs(L, 0);
    push_words(L, qd_isa_runnable_list());
    push_words(L, qd_isa_built());
    lua_pushstring(L, qd_isa_cpu());
    return 3;
}

/* qd.set_simd(name): switch the kernel set (results are the same; for tests and benches) */
static int l_set_simd(lua_State *L)
{
    qdL_checknargs(L, 1);
    const char *name = luaL_checkstring(L, 1);
    qd_err e;
    if (qd_isa_select(name, &e) != QD_OK)
        return luaL_argerror(L, 1, e.msg);
    return 0;
}

static int l_blas_info(lua_State *L)
{
    qdL_checknargs(L, 0);
    lua_pushstring(L, qd_la_info());
    return 1;
}

/* core.json_numarray(t) -> the JSON text of t if t is a non-empty array of numbers (keys
 * exactly 1..#t), else nil: qd.json's fast path for the long number lists of run records
 * and checkpoints. Formats as qd.json does: integers with LUA_INTEGER_FMT, other numbers
 * "%.17g", NaN and infinities null. */
static int l_json_numarray(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Unsigned n = lua_rawlen(L, 1);
    if (n == 0)
        return 0;
    lua_Unsigned count = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        int isnum;
        lua_Integer k = lua_tointegerx(L, -2, &isnum);
        if (!isnum || lua_type(L, -2) != LUA_TNUMBER || !lua_isinteger(L, -2) || k < 1 ||
            (lua_Unsigned)k > n || lua_type(L, -1) != LUA_TNUMBER) {
            lua_pop(L, 2);
            return 0;
        }
        count++;
        lua_pop(L, 1);
    }
    if (count != n)
        return 0;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '[');
    char tmp[64];
    for (lua_Unsigned i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, (lua_Integer)i);
        int len;
        if (lua_isinteger(L, -1)) {
            len = snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, -1));
        } else {
            double v = lua_tonumber(L, -1);
            len = (v != v || isinf(v)) ? snprintf(tmp, sizeof tmp, "null")
                                       : snprintf(tmp, sizeof tmp, "%.17g", v);
        }
        lua_pop(L, 1);
        if (i > 1)
            luaL_addchar(&b, ',');
        luaL_addlstring(&b, tmp, (size_t)len);
    }
    luaL_addchar(&b, ']');
    luaL_pushresult(&b);
    return 1;
}

static int luaopen_qd_core(lua_State *L)
{
    lua_newtable(L);
    qdL_open_rng(L);
    qdL_open_array(L);
    qdL_open_vmath(L);   /* elementwise methods of Vector and Matrix */
    qdL_open_law(L);     /* qd.sse's traced feedback laws */
    qdL_open_gates(L);
    qdL_open_state(L);
    qdL_open_dm(L);
    qdL_open_ensemble(L);
    qdL_open_npy(L);
    qdL_open_random(L);
    qdL_open_schedule(L);
    qdL_open_diffusion(L);
    qdL_open_channel(L);
    qdL_open_circuit(L);
    qdL_open_loss(L);
    qdL_open_dmstack(L);
    qdL_open_pauli(L);
    qdL_open_dynamics(L);
    qdL_open_optim(L);
    qdL_open_nn(L);
    qdL_open_synth(L);
    qdL_open_image(L);
    qdL_open_sys(L);
    qdL_open_mpi(L);
    qdL_open_arith(L);   /* after the types it adds operators to */
    static const luaL_Reg fns[] = {
        {"set_threads", l_set_threads}, {"threads", l_get_threads}, {"blas_info", l_blas_info}, {"clock", l_clock},
        {"simd", l_simd}, {"simd_sets", l_simd_sets}, {"set_simd", l_set_simd},
        {"json_numarray", l_json_numarray}, {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    lua_pushliteral(L, QD_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, QD_MAX_QUBITS);
    lua_setfield(L, -2, "max_qubits");
    /* metatables, for help() and type checks from Lua */
    const char *mts[] = {QDL_STATE, QDL_DM, QDL_ENS, QDL_VECTOR, QDL_MATRIX, QDL_RNG,
                         "qd.Circuit", "qd.Tape", "qd.PauliSum", "qd.Channel", "qd.Schedule",
                         "qd.DistState", "qd.MLP"};
    lua_newtable(L);
    for (size_t i = 0; i < sizeof mts / sizeof mts[0]; i++) {
        luaL_getmetatable(L, mts[i]);
        lua_setfield(L, -2, mts[i]);
    }
    lua_setfield(L, -2, "metatables");
    return 1;
}

void qdL_openlibs(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_qd_core);
    lua_setfield(L, -2, "qd.core");
    lua_pop(L, 1);
}
