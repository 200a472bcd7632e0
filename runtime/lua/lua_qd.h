/* lua_qd.h — what the interpreter needs from the bindings. */
#ifndef LUA_QD_H
#define LUA_QD_H
#include <stdint.h>
#include <lua.h>

/* Registers the C module "qd.core" in package.preload (call after luaL_openlibs).
 * The public module "qd" is stdlib/qd/init.lua, which requires "qd.core". */
void qdL_openlibs(lua_State *L);
/* Sets the run's generator (qd.run_rng()) to a fresh qd.Rng seeded with seed. Call before
 * the script runs; the seed is what run records store. */
void qdL_set_run_seed(lua_State *L, uint64_t seed);
/* Default seed when --seed is not given (fixed: runs are reproducible by default). */
#define QD_DEFAULT_SEED 1
#endif
