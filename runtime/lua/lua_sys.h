/* lua_sys.h — the file-system side of the bindings (lua_sys.c): core.sys (directories,
 * atomic writes, SHA-256), the sandbox's path policy that every binding opening a file
 * asks, and what the interpreter tells the library about the run (script text, seed). */
#ifndef LUA_SYS_H
#define LUA_SYS_H
#include <stddef.h>
#include <stdint.h>
#include <lua.h>

/* Raises a Lua error unless the sandbox (if on) allows opening path for reading
 * (write == 0) or writing/creating/removing (write != 0). what names the argument
 * ("bad argument #1 to 'load_npy' (...)" style is the caller's: this message says
 * "sandbox: no read access to <path> (...)"). No-op without --sandbox. */
void qdL_check_path(lua_State *L, const char *path, int write);
/* the same as a test: 1 allowed, 0 refused (msg filled when given) */
int qdL_path_allowed(const char *path, int write, char *msg, size_t msglen);

/* ---- set by the interpreter before the script runs ---- */
/* Turns the sandbox on. out: the directory the run may write (created if missing;
 * its real path is what counts). Returns 0, or -1 with msg filled. */
int qdL_sandbox_enable(const char *out, char *msg, size_t msglen);
/* a file (read only) or a directory tree (read only) the sandboxed run may read */
int qdL_sandbox_allow_read(const char *path, int tree);
/* a private directory qd itself created (qd.mpi.scratch_dir: mkdtemp, removed at exit) that
 * a sandboxed run may write too: ranks other than 0 keep their records there */
int qdL_sandbox_allow_scratch(const char *dir);
int qdL_sandbox_on(void);
/* Turns it off again (qd replay, once the sandboxed run's Lua state is closed). */
void qdL_sandbox_disable(void);
/* The directory record.open uses when the script names none (sys.default_out). */
void qdL_sys_set_default_out(const char *dir);
const char *qdL_sandbox_out(void);   /* the real path of the writable directory, or NULL */
/* The main script's text (kept for run records and replay; copied) and the run seed. */
void qdL_sys_set_script(const char *text, size_t len);
void qdL_sys_set_seed(uint64_t seed);
/* SHA-256 of a buffer as 64 lowercase hex digits + NUL */
void qdL_sha256_hex(const void *data, size_t len, char out[65]);
#endif
