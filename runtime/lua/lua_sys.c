/*
 * lua_sys.c — core.sys: what the library needs of the file system (exclusive mkdir,
 * mkdir -p, atomic writes, SHA-256 of strings and files, isatty), the sandbox's path
 * policy, and the run facts the interpreter hands to run records (script text, seed).
 *
 * The sandbox (qd --sandbox, docs/cli.md) is a Lua-level one: the interpreter removes
 * the functions that reach processes and libraries, and every function that opens,
 * creates or removes a file — Lua's io/os ones (wrapped by interp/sandbox.c) and qd's own
 * (.npy, this file) — asks qdL_check_path first. The policy: writes only inside one
 * directory (the run's output directory), reads there, in the files named on the
 * command line and in the qd library's directories. Paths are compared after realpath,
 * so "..", symlinks to elsewhere and relative spellings do not get around it; a path
 * that does not exist yet is judged by its parent directory's real path (and refused if
 * it is a dangling symlink).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <nettle/sha2.h>

#include "lua_sys.h"

/* ------------------------------------------------------------------ run facts */

static char *g_script;
static size_t g_script_len;
static uint64_t g_seed = 1;
static char *g_default_out;

void qdL_sys_set_default_out(const char *dir)
{
    free(g_default_out);
    g_default_out = dir ? strdup(dir) : NULL;
}

void qdL_sys_set_script(const char *text, size_t len)
{
    free(g_script);
    g_script = NULL;
    g_script_len = 0;
    if (!text)
        return;
    g_script = malloc(len + 1);
    if (g_script) {
        memcpy(g_script, text, len);
        g_script[len] = '\0';
        g_script_len = len;
    }
}

void qdL_sys_set_seed(uint64_t seed)
{
    g_seed = seed;
}

/* ------------------------------------------------------------------ SHA-256 */

static void hex_digest(struct sha256_ctx *c, char out[65])
{
    uint8_t d[SHA256_DIGEST_SIZE];
    static const char hx[] = "0123456789abcdef";
    sha256_digest(c, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = '\0';
}

void qdL_sha256_hex(const void *data, size_t len, char out[65])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, data);
    hex_digest(&c, out);
}

/* ------------------------------------------------------------------ sandbox policy */

#define MAX_READ 64
static struct {
    int on;
    char out[PATH_MAX];            /* writable tree (real path) */
    char scratch[PATH_MAX];        /* a second one: the rank's private scratch (qd.mpi) */
    char *read[MAX_READ];          /* readable files or trees (real paths) */
    int tree[MAX_READ];
    int nread;
} sb;

/* Real path of path, or for a path that does not exist yet, its parent's real path plus
 * the last component. 0 on success; -1 when neither resolves (or a dangling symlink). */
static int resolve(const char *path, char out[PATH_MAX])
{
    char dir[PATH_MAX], rdir[PATH_MAX];
    const char *slash, *base;
    struct stat st;
    if (!path || !*path || strlen(path) >= PATH_MAX)
        return -1;
    if (realpath(path, out))
        return 0;
    if (errno != ENOENT)
        return -1;
    if (lstat(path, &st) == 0)   /* exists but does not resolve: a dangling symlink */
        return -1;
    slash = strrchr(path, '/');
    if (slash) {
        size_t dl = (size_t)(slash - path);
        if (dl == 0)
            strcpy(dir, "/");
        else {
            memcpy(dir, path, dl);
            dir[dl] = '\0';
        }
        base = slash + 1;
    } else {
        strcpy(dir, ".");
        base = path;
    }
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -1;
    if (!realpath(dir, rdir))
        return -1;
    size_t rl = strlen(rdir), bl = strlen(base);
    if (rl == 1)   /* "/" */
        rl = 0;
    if (rl + 1 + bl >= PATH_MAX)
        return -1;
    memcpy(out, rdir, rl);
    out[rl] = '/';
    memcpy(out + rl + 1, base, bl + 1);
    return 0;
}

static int under(const char *p, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return 1;
    return strncmp(p, root, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

int qdL_path_allowed(const char *path, int write, char *msg, size_t msglen)
{
    char real[PATH_MAX];
    if (!sb.on)
        return 1;
    if (resolve(path, real) != 0) {
        if (msg)
            snprintf(msg, msglen, "sandbox: no %s access to '%.200s' (cannot resolve the path)",
                     write ? "write" : "read", path);
        return 0;
    }
    if (under(real, sb.out) || (sb.scratch[0] && under(real, sb.scratch)))
        return 1;
    if (!write)
        for (int i = 0; i < sb.nread; i++)
            if (sb.tree[i] ? under(real, sb.read[i]) : strcmp(real, sb.read[i]) == 0)
                return 1;
    if (msg)
        snprintf(msg, msglen,
                 "sandbox: no %s access to '%.200s' (a sandboxed run %s only %s)",
                 write ? "write" : "read", path, write ? "writes" : "reads",
                 write ? "inside its output directory" :
                         "its output directory, the files named on the command line and "
                         "the qd library");
    return 0;
}

void qdL_check_path(lua_State *L, const char *path, int write)
{
    char msg[512];
    if (!qdL_path_allowed(path, write, msg, sizeof msg))
        luaL_error(L, "%s", msg);
}

static int mkdir_p(const char *path, char *msg, size_t msglen);

int qdL_sandbox_enable(const char *out, char *msg, size_t msglen)
{
    char real[PATH_MAX];
    if (mkdir_p(out, msg, msglen) != 0)
        return -1;
    if (!realpath(out, real)) {
        snprintf(msg, msglen, "cannot resolve output directory '%.200s': %s", out,
                 strerror(errno));
        return -1;
    }
    if (strcmp(real, "/") == 0) {
        snprintf(msg, msglen, "the sandbox's output directory cannot be '/'");
        return -1;
    }
    strcpy(sb.out, real);
    sb.on = 1;
    return 0;
}

int qdL_sandbox_allow_read(const char *path, int tree)
{
    char real[PATH_MAX];
    if (sb.nread >= MAX_READ || !realpath(path, real))
        return -1;
    sb.read[sb.nread] = strdup(real);
    if (!sb.read[sb.nread])
        return -1;
    sb.tree[sb.nread++] = tree;
    return 0;
}

int qdL_sandbox_allow_scratch(const char *dir)
{
    char real[PATH_MAX];
    if (!realpath(dir, real) || strcmp(real, "/") == 0)
        return -1;
    strcpy(sb.scratch, real);
    return 0;
}

void qdL_sandbox_disable(void)
{
    for (int i = 0; i < sb.nread; i++)
        free(sb.read[i]);
    memset(&sb, 0, sizeof sb);
}

int qdL_sandbox_on(void)
{
    return sb.on;
}

const char *qdL_sandbox_out(void)
{
    return sb.on ? sb.out : NULL;
}

/* ------------------------------------------------------------------ directories */

/* mkdir -p with the policy asked for every directory it creates. 0, or -1 + msg. */
static int mkdir_p(const char *path, char *msg, size_t msglen)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    struct stat st;
    if (len == 0 || len >= sizeof buf) {
        snprintf(msg, msglen, "bad directory name '%.200s'", path);
        return -1;
    }
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (stat(buf, &st) != 0) {
            if (!qdL_path_allowed(buf, 1, msg, msglen))
                return -1;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                snprintf(msg, msglen, "cannot create directory %.200s: %s", buf, strerror(errno));
                return -1;
            }
        } else if (!S_ISDIR(st.st_mode)) {
            snprintf(msg, msglen, "cannot create directory %.200s: a file of that name exists",
                     buf);
            return -1;
        }
        buf[i] = c;
    }
    return 0;
}

/* sys.mkdir_p(path) -> true | nil, message */
static int l_mkdir_p(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char msg[512];
    if (mkdir_p(path, msg, sizeof msg) != 0) {
        luaL_pushfail(L);
        lua_pushstring(L, msg);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* sys.mkdir(path) -> true | nil, message, exists: exclusive (fails when path exists) */
static int l_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    qdL_check_path(L, path, 1);
    if (mkdir(path, 0777) == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    int e = errno;
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot create directory %s: %s", path, strerror(e));
    lua_pushboolean(L, e == EEXIST);
    return 3;
}

static int stat_kind(lua_State *L, int want_file)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    int ok = qdL_path_allowed(path, 0, NULL, 0) && stat(path, &st) == 0 &&
             (!want_file || S_ISREG(st.st_mode));
    lua_pushboolean(L, ok);
    return 1;
}

static int l_exists(lua_State *L)
{
    return stat_kind(L, 0);
}

static int l_is_file(lua_State *L)
{
    return stat_kind(L, 1);
}

/* ------------------------------------------------------------------ files */

/* sys.write_atomic(path, text) -> true | nil, message. A temporary file beside path
 * (same file system, so the rename is atomic), written, flushed to disk, renamed. */
static int l_write_atomic(lua_State *L)
{
    size_t len, dl;
    const char *path = luaL_checkstring(L, 1);
    const char *text = luaL_checklstring(L, 2, &len);
    const char *slash = strrchr(path, '/');
    char tmp[PATH_MAX];
    int fd, err = 0;
    qdL_check_path(L, path, 1);
    dl = slash ? (size_t)(slash - path) + 1 : 0;
    if (dl + strlen(slash ? slash + 1 : path) + 16 >= sizeof tmp) {
        luaL_pushfail(L);
        lua_pushstring(L, "path too long");
        return 2;
    }
    snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", (int)dl, path, slash ? slash + 1 : path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        luaL_pushfail(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    fchmod(fd, 0644);
    for (size_t off = 0; off < len && !err;) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno != EINTR)
                err = errno;
        } else
            off += (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        luaL_pushfail(L);
        lua_pushstring(L, strerror(err));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* sys.sha256(string) -> 64 hex digits */
static int l_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char hex[65];
    qdL_sha256_hex(s, len, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* sys.sha256_file(path) -> 64 hex digits | nil, message */
static int l_sha256_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct sha256_ctx c;
    unsigned char buf[1 << 16];
    size_t n;
    char hex[65];
    FILE *f;
    qdL_check_path(L, path, 0);
    f = fopen(path, "rb");
    if (!f) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    sha256_init(&c);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&c, n, buf);
    if (ferror(f)) {
        fclose(f);
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: read error", path);
        return 2;
    }
    fclose(f);
    hex_digest(&c, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* sys.isatty(fd): fd 0, 1 or 2 */
static int l_isatty(lua_State *L)
{
    lua_Integer fd = luaL_checkinteger(L, 1);
    luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "0, 1 or 2 expected");
    lua_pushboolean(L, isatty((int)fd));
    return 1;
}

/* sys.check_path(path, write): raises the sandbox's error unless allowed */
static int l_check_path(lua_State *L)
{
    qdL_check_path(L, luaL_checkstring(L, 1), lua_toboolean(L, 2));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_script_text(lua_State *L)
{
    if (!g_script)
        return 0;
    lua_pushlstring(L, g_script, g_script_len);
    return 1;
}

static int l_run_seed(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)g_seed);
    return 1;
}

static int l_sandboxed(lua_State *L)
{
    lua_pushboolean(L, sb.on);
    return 1;
}

/* sys.default_out(): the run directory qd chose for this run (--sandbox, qd replay), or
 * nothing: record.open uses it when the script names none */
static int l_default_out(lua_State *L)
{
    if (!g_default_out)
        return 0;
    lua_pushstring(L, g_default_out);
    return 1;
}

void qdL_open_sys(lua_State *L)
{
    static const luaL_Reg f[] = {
        {"mkdir", l_mkdir},           {"mkdir_p", l_mkdir_p},
        {"exists", l_exists},         {"is_file", l_is_file},
        {"write_atomic", l_write_atomic},
        {"sha256", l_sha256},         {"sha256_file", l_sha256_file},
        {"isatty", l_isatty},         {"check_path", l_check_path},
        {"script_text", l_script_text}, {"run_seed", l_run_seed},
        {"sandboxed", l_sandboxed},   {"default_out", l_default_out},
        {NULL, NULL},
    };
    luaL_newlib(L, f);
    lua_setfield(L, -2, "sys");
}
