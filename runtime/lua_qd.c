/* lua_qd.c — the C module "qd.core": registers every userdata type and module function.
 * The public module is stdlib/qd/init.lua, which arranges these under the documented
 * names (qd.state(n), qd.state.from, qd.ensemble.haar, ...). */
#include "lua_util.h"
#include "lua_qd.h"
#include <time.h>

void qdL_open_state(lua_State *L);
void qdL_open_dm(lua_State *L);
void qdL_open_ensemble(lua_State *L);
void qdL_open_random(lua_State *L);     /* lua_random.c: core.random, core.data_* */
void qdL_open_schedule(lua_State *L);   /* lua_schedule.c: core.schedule, qd.Schedule */
void qdL_open_diffusion(lua_State *L);  /* lua_diffusion.c: core.diffusion_* */
void qdL_open_channel(lua_State *L);    /* lua_channel.c: core.channel, qd.Channel, obj:apply */
void qdL_open_circuit(lua_State *L);    /* lua_circuit.c: core.circuit, qd.Circuit */
void qdL_open_loss(lua_State *L);       /* lua_loss.c: core.loss, core.ot, core.superfidelity */
void qdL_open_pauli(lua_State *L);      /* lua_pauli.c: core.pauli_sum*, qd.PauliSum, obj:evolve */
void qdL_open_dynamics(lua_State *L);   /* lua_dynamics.c: core.lindblad, core.sse */
void qdL_open_optim(lua_State *L);      /* lua_optim.c: core.optim_adam, core.optim_sgd (optim.lua) */

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

static int l_blas_info(lua_State *L)
{
    qdL_checknargs(L, 0);
    lua_pushstring(L, qd_la_info());
    return 1;
}

static int luaopen_qd_core(lua_State *L)
{
    lua_newtable(L);
    qdL_open_rng(L);
    qdL_open_array(L);
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
    qdL_open_pauli(L);
    qdL_open_dynamics(L);
    qdL_open_optim(L);
    static const luaL_Reg fns[] = {
        {"set_threads", l_set_threads}, {"threads", l_get_threads}, {"blas_info", l_blas_info}, {"clock", l_clock},
        {NULL, NULL}};
    luaL_setfuncs(L, fns, 0);
    lua_pushliteral(L, QD_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, QD_MAX_QUBITS);
    lua_setfield(L, -2, "max_qubits");
    /* metatables, for help() and type checks from Lua */
    const char *mts[] = {QDL_STATE, QDL_DM, QDL_ENS, QDL_VECTOR, QDL_MATRIX, QDL_RNG};
    lua_newtable(L);
    for (int i = 0; i < 6; i++) {
        luaL_getmetatable(L, mts[i]);
        lua_setfield(L, -2, mts[i]);
    }
    luaL_getmetatable(L, "qd.Circuit");
    lua_setfield(L, -2, "qd.Circuit");
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
