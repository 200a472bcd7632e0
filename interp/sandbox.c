/*
 * sandbox.c — qd --sandbox: running a protocol file from someone else.
 *
 * A Lua-level sandbox (docs/cli.md says what it promises and what it does not). After the
 * standard libraries and qd are loaded, the functions that reach outside are removed or
 * replaced by checked versions, all of them C closures holding the originals as upvalues
 * (which a script cannot reach once the debug library is gone):
 *   - removed: os.execute, io.popen, io.tmpfile, os.tmpname, package.loadlib,
 *     package.searchpath, string.dump, C module loading, the debug library but for
 *     debug.traceback and a debug.getinfo that reports positions only (no functions);
 *   - checked against the path policy of runtime/lua/lua_sys.c (writes only inside the run's
 *     output directory; reads there, in the files named on the command line and in qd's
 *     library): io.open, io.lines, io.input, io.output, os.remove, os.rename, loadfile,
 *     dofile — and qd's own file functions, which ask the same policy;
 *   - text chunks only (load, loadfile, dofile, require): precompiled bytecode can crash
 *     the Lua VM, so it is refused;
 *   - require finds only qd's own Lua modules (package.path is not consulted);
 *   - os.exit ends the script (raising an error object the interpreter recognises), not
 *     the process, so the interpreter still closes the run record (and qd replay compares);
 *   - os.getenv answers only for the variables qd's library reads;
 *   - collectgarbage: no "stop"/"restart" (a stopped collector is a way to run out of
 *     memory, not a feature).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "interp.h"
#include "lua_sys.h"

#define EXIT_MT "qd.exit"

/* --- io / os / base wrappers: check, then call the original (upvalue 1) with the same
 * arguments */

static int call_original(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

static int mode_writes(const char *mode)
{
    return strpbrk(mode, "wa+") != NULL;
}

static int w_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const char *mode = luaL_optstring(L, 2, "r");
    qdL_check_path(L, path, mode_writes(mode));
    return call_original(L);
}

/* io.lines(path, ...) / io.input(path): reading a named file */
static int w_read_arg1(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING)
        qdL_check_path(L, lua_tostring(L, 1), 0);
    return call_original(L);
}

/* io.output(path): writing a named file */
static int w_write_arg1(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING)
        qdL_check_path(L, lua_tostring(L, 1), 1);
    return call_original(L);
}

static int w_remove(lua_State *L)
{
    qdL_check_path(L, luaL_checkstring(L, 1), 1);
    return call_original(L);
}

static int w_rename(lua_State *L)
{
    qdL_check_path(L, luaL_checkstring(L, 1), 1);
    qdL_check_path(L, luaL_checkstring(L, 2), 1);
    return call_original(L);
}

/* load(chunk [, name [, mode [, env]]]): text only */
static int w_load(lua_State *L)
{
    const char *mode = luaL_optstring(L, 3, "t");
    if (strchr(mode, 'b'))
        return luaL_error(L, "sandbox: precompiled (binary) chunks are not allowed");
    if (lua_gettop(L) < 3)
        lua_settop(L, 3);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    return call_original(L);
}

/* loadfile([path [, mode [, env]]]): a readable file, text only */
static int w_loadfile(lua_State *L)
{
    const char *mode = luaL_optstring(L, 2, "t");
    if (!lua_isnoneornil(L, 1))
        qdL_check_path(L, luaL_checkstring(L, 1), 0);
    if (strchr(mode, 'b'))
        return luaL_error(L, "sandbox: precompiled (binary) chunks are not allowed");
    if (lua_gettop(L) < 2)
        lua_settop(L, 2);
    lua_pushliteral(L, "t");
    lua_replace(L, 2);
    return call_original(L);
}

/* dofile([path]) */
static int w_dofile(lua_State *L)
{
    const char *path = luaL_optstring(L, 1, NULL);
    if (path)
        qdL_check_path(L, path, 0);
    lua_settop(L, 1);
    if (luaL_loadfilex(L, path, "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

static int w_collectgarbage(lua_State *L)
{
    static const char *const ok[] = {"collect",     "count",        "step", "isrunning",
                                     "incremental", "generational", NULL};
    luaL_checkoption(L, 1, "collect", ok);
    return call_original(L);
}

static int w_getenv(lua_State *L)
{
    static const char *const known[] = {"QD_PROGRESS", "COLUMNS", "TERM", "NO_COLOR", NULL};
    const char *name = luaL_checkstring(L, 1);
    for (int i = 0; known[i]; i++)
        if (strcmp(name, known[i]) == 0)
            return call_original(L);
    luaL_pushfail(L);
    return 1;
}

/* debug.getinfo(f [, what]) without 'f' (the function itself: a way to reach functions
 * on the stack) and without a thread argument; the library uses it to point errors at
 * the caller's line */
static int w_getinfo(lua_State *L)
{
    const char *what = luaL_optstring(L, 2, "Slnu");
    luaL_argcheck(L, lua_type(L, 1) == LUA_TNUMBER, 1, "a stack level expected in the sandbox");
    for (const char *c = what; *c; c++)
        if (!strchr("Slnrtu", *c))
            return luaL_argerror(L, 2, "only options of \"Slnrtu\" in the sandbox");
    lua_settop(L, 2);
    lua_pushstring(L, what);
    lua_replace(L, 2);
    /* the level counts from the caller of getinfo, as with the original */
    lua_Debug ar;
    lua_Integer level = lua_tointeger(L, 1);
    if (level < 0 || level > 1000000 || !lua_getstack(L, (int)level, &ar)) {
        luaL_pushfail(L);
        return 1;
    }
    lua_getinfo(L, what, &ar);
    lua_createtable(L, 0, 8);
    if (strchr(what, 'S')) {
        lua_pushstring(L, ar.source);
        lua_setfield(L, -2, "source");
        lua_pushstring(L, ar.short_src);
        lua_setfield(L, -2, "short_src");
        lua_pushinteger(L, ar.linedefined);
        lua_setfield(L, -2, "linedefined");
        lua_pushinteger(L, ar.lastlinedefined);
        lua_setfield(L, -2, "lastlinedefined");
        lua_pushstring(L, ar.what);
        lua_setfield(L, -2, "what");
    }
    if (strchr(what, 'l')) {
        lua_pushinteger(L, ar.currentline);
        lua_setfield(L, -2, "currentline");
    }
    if (strchr(what, 'n')) {
        lua_pushstring(L, ar.name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, ar.namewhat);
        lua_setfield(L, -2, "namewhat");
    }
    if (strchr(what, 'u')) {
        lua_pushinteger(L, ar.nups);
        lua_setfield(L, -2, "nups");
        lua_pushinteger(L, ar.nparams);
        lua_setfield(L, -2, "nparams");
        lua_pushboolean(L, ar.isvararg);
        lua_setfield(L, -2, "isvararg");
    }
    if (strchr(what, 't')) {
        lua_pushboolean(L, ar.istailcall);
        lua_setfield(L, -2, "istailcall");
    }
    return 1;
}

/* os.exit([code]): ends the script with that status (true = 0, false = 1) */
static int w_exit(lua_State *L)
{
    int code;
    if (lua_isboolean(L, 1))
        code = lua_toboolean(L, 1) ? 0 : 1;
    else
        code = (int)luaL_optinteger(L, 1, 0);
    int *u = lua_newuserdatauv(L, sizeof *u, 0);
    *u = code;
    luaL_setmetatable(L, EXIT_MT);
    return lua_error(L);
}

static int exit_tostring(lua_State *L)
{
    int *u = luaL_checkudata(L, 1, EXIT_MT);
    lua_pushfstring(L, "os.exit(%d)", *u);
    return 1;
}

void qdi_install_exit(lua_State *L)
{
    if (luaL_newmetatable(L, EXIT_MT)) {
        lua_pushcfunction(L, exit_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_getglobal(L, "os");
    lua_pushcfunction(L, w_exit);
    lua_setfield(L, -2, "exit");
    lua_pop(L, 1);
}

int qdi_exit_code(lua_State *L, int idx, int *code)
{
    int *u = luaL_testudata(L, idx, EXIT_MT);
    if (!u)
        return 0;
    *code = *u;
    return 1;
}

/* --- require: qd's own modules only (searcher 2 of package.searchers; upvalue 1 is the
 * table of library directories) */
static int valid_module_name(const char *s)
{
    if (!*s || *s == '.')
        return 0;
    for (const char *p = s; *p; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || *p == '_' || (*p == '.' && p[1] != '.' && p[1]);
        if (!ok)
            return 0;
    }
    return 1;
}

static int lib_searcher(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    struct stat st;
    if (!valid_module_name(name)) {
        lua_pushfstring(L, "\n\tno module '%s' (a sandboxed run loads qd's own modules only)",
                        name);
        return 1;
    }
    lua_settop(L, 1);
    const char *rel = luaL_gsub(L, name, ".", "/");   /* index 2 */
    lua_Integer ndirs = luaL_len(L, lua_upvalueindex(1));
    for (lua_Integer i = 1; i <= ndirs; i++) {
        static const char *const forms[] = {"%s/%s.lua", "%s/%s/init.lua"};
        lua_rawgeti(L, lua_upvalueindex(1), i);
        const char *dir = lua_tostring(L, -1);
        for (int f = 0; f < 2; f++) {
            const char *fn = lua_pushfstring(L, forms[f], dir, rel);
            if (stat(fn, &st) == 0 && S_ISREG(st.st_mode)) {
                if (luaL_loadfilex(L, fn, "t") != LUA_OK)
                    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                                      name, fn, lua_tostring(L, -1));
                lua_pushvalue(L, -2);   /* file name: the loader's second argument */
                return 2;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pushfstring(L, "\n\tno module '%s' in the qd library (a sandboxed run loads qd's "
                       "own modules only)", name);
    return 1;
}

/* --- installing it */

static void wrap(lua_State *L, int tbl, const char *name, lua_CFunction f)
{
    lua_getfield(L, tbl, name);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, tbl, name);
}

static void drop(lua_State *L, int tbl, const char *name)
{
    lua_pushnil(L);
    lua_setfield(L, tbl, name);
}

void qdi_sandbox_install(lua_State *L, const char *const *libdirs, int nlibdirs)
{
    int top = lua_gettop(L);
    luaL_newmetatable(L, EXIT_MT);
    lua_pushcfunction(L, exit_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    lua_pushglobaltable(L);
    int G = lua_gettop(L);
    wrap(L, G, "load", w_load);
    wrap(L, G, "loadfile", w_loadfile);
    wrap(L, G, "collectgarbage", w_collectgarbage);
    lua_pushcfunction(L, w_dofile);
    lua_setfield(L, G, "dofile");
    /* debug: traceback and a getinfo that reads positions only (w_getinfo) */
    lua_getglobal(L, "debug");
    lua_createtable(L, 0, 2);
    lua_getfield(L, -2, "traceback");
    lua_setfield(L, -2, "traceback");
    lua_pushcfunction(L, w_getinfo);
    lua_setfield(L, -2, "getinfo");
    lua_setfield(L, G, "debug");
    lua_pop(L, 1);

    lua_getglobal(L, "io");
    int io = lua_gettop(L);
    wrap(L, io, "open", w_open);
    wrap(L, io, "lines", w_read_arg1);
    wrap(L, io, "input", w_read_arg1);
    wrap(L, io, "output", w_write_arg1);
    drop(L, io, "popen");
    drop(L, io, "tmpfile");

    lua_getglobal(L, "os");
    int os = lua_gettop(L);
    wrap(L, os, "remove", w_remove);
    wrap(L, os, "rename", w_rename);
    wrap(L, os, "getenv", w_getenv);
    lua_pushcfunction(L, w_exit);
    lua_setfield(L, os, "exit");
    drop(L, os, "execute");
    drop(L, os, "tmpname");

    lua_getglobal(L, "string");
    drop(L, lua_gettop(L), "dump");

    lua_getglobal(L, "package");
    int pkg = lua_gettop(L);
    drop(L, pkg, "loadlib");
    drop(L, pkg, "searchpath");
    lua_pushliteral(L, "");
    lua_setfield(L, pkg, "cpath");
    lua_getfield(L, pkg, "loaded");
    drop(L, lua_gettop(L), "debug");
    lua_pop(L, 1);
    /* searchers: the preload one (qd.core lives there), then qd's library */
    lua_getfield(L, pkg, "searchers");
    lua_createtable(L, 2, 0);
    lua_rawgeti(L, -2, 1);
    lua_rawseti(L, -2, 1);
    lua_createtable(L, nlibdirs, 0);
    for (int i = 0; i < nlibdirs; i++) {
        lua_pushstring(L, libdirs[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcclosure(L, lib_searcher, 1);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, pkg, "searchers");
    lua_settop(L, top);
}
