/*
 * main.c — the `qd` program: command line, startup, running scripts and -e chunks.
 *
 * Modelled on Lua 5.4's lua.c: the whole run happens inside one protected C function
 * (pmain) so that even a memory error during startup is reported, not a crash; every
 * chunk runs under a message handler that appends a traceback; Ctrl-C while Lua runs
 * becomes the Lua error "interrupted!" through a debug hook. The interactive prompt is
 * in repl.c. docs/cli.md describes the command line for users.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "interp.h"
#include "lua_qd.h"
#include "qd.h"
#include "qd_isa.h"

/* Where `make install` puts stdlib (PREFIX/share/qd holds qd/init.lua). The Makefile
 * defines it; this fallback matches its default PREFIX. */
#ifndef QD_STDLIB_INSTALL
#define QD_STDLIB_INSTALL "/usr/local/share/qd"
#endif

#define MAX_THREADS 1024

const char *qdi_progname = "qd";

/* ------------------------------------------------------------------ usage */

static const char usage_text[] =
    "usage: qd [options] [script [args...]]\n"
    "Runs a qd script (Lua 5.4 with the qd library loaded as the global 'qd'),\n"
    "or starts the interactive prompt.\n"
    "\n"
    "Options:\n"
    "  -e chunk       run the Lua code 'chunk' (repeatable; runs before the script)\n"
    "  -i             enter the interactive prompt after the script and -e chunks\n"
    "  -              read the script from stdin\n"
    "  --seed N       seed of the run's random generator, 0..9223372036854775807\n"
    "                 (default 1: runs are reproducible unless a seed is given)\n"
    "  --threads N    threads for the numerical kernels, 1..1024\n"
    "                 (default: $QD_THREADS, else the number of online CPUs)\n"
    "  --version      print version information and exit\n"
    "  -h, --help     print this help and exit\n"
    "  --             stop handling options (the next argument is the script)\n"
    "\n"
    "With no script and no -e: the interactive prompt if stdin is a terminal,\n"
    "otherwise stdin is run as a script. The script gets its arguments in the\n"
    "table 'arg' (arg[0] is the script name) and as '...'.\n"
    "\n"
    "Environment:\n"
    "  QD_PATH        ';'-separated directories searched first by require\n"
    "                 (one holding qd/init.lua replaces the built-in library)\n"
    "  QD_THREADS     default for --threads\n"
    "  QD_SIMD        kernel set: auto (default: the best this CPU runs), portable,\n"
    "                 avx2 or avx512 ('qd --version' lists them; results are the same)\n"
    "  QD_ASSUME_NO_FMA=1  take the paths of a CPU without FMA instructions\n"
    "                 (tests and benchmarks)\n"
    "  QD_HISTORY     history file of the prompt (default ~/.qd_history;\n"
    "                 set but empty: no history file)\n"
    "  LUA_PATH, LUA_CPATH   as in Lua (searched after the qd directories)\n"
    "\n"
    "Exit status: 0 on success, 1 if the script fails or is interrupted (Ctrl-C),\n"
    "2 for a bad command line.\n";

/* Bad command line: one line saying what was wrong, then the usage, exit 2 (the
 * convention of GNU tools, and distinct from a failing script's 1). */
static void usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "qd: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\nusage: qd [options] [script [args...]]\n"
                    "Try 'qd --help' for the options.\n");
    exit(2);
}

/* ------------------------------------------------------------------ options */

typedef struct {
    int argc;
    char **argv;
    int script;            /* index in argv of the script, 0 if none */
    int interactive;       /* -i */
    const char **chunks;   /* -e chunks in order */
    int nchunks;
    uint64_t seed;
    int threads;
    int ok;                /* set by pmain when everything succeeded */
} qd_opts;

/* Decimal digits only (no sign, no spaces, no hex): a seed or a count is something a
 * run record stores and a reader retypes, so accept exactly one spelling. Returns 0 if
 * s is not such a number or exceeds max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* The seed stays within lua_Integer so that scripts (and run records) read it back
 * exactly. */
static uint64_t check_seed(const char *s)
{
    uint64_t v;
    if (!parse_uint(s, (uint64_t)INT64_MAX, &v))
        usage_error("bad value for --seed: '%s' (an integer 0..9223372036854775807 expected)",
                    s);
    return v;
}

static int check_threads(const char *s, const char *from)
{
    uint64_t v;
    if (!parse_uint(s, MAX_THREADS, &v) || v < 1) {
        char msg[256];
        snprintf(msg, sizeof msg, "bad value for %s: '%.100s' (an integer 1..%d expected)",
                 from, s, MAX_THREADS);
        if (strcmp(from, "QD_THREADS") == 0) {
            /* not a command-line mistake: no usage text */
            qdi_message(qdi_progname, msg);
            exit(2);
        }
        usage_error("%s", msg);
    }
    return (int)v;
}

/* CPUs this process may run on (the affinity mask respects taskset and container
 * cpusets, which the plain online count does not), capped to MAX_THREADS. */
static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 &&
        (n < 1 || CPU_COUNT(&set) < n))
        n = CPU_COUNT(&set);
    if (n < 1)
        n = 1;
    return n > MAX_THREADS ? MAX_THREADS : (int)n;
}

/* Value of an option that takes one: "--seed=N" or "--seed N". Advances *i past it. */
static const char *option_value(qd_opts *o, int *i, const char *name)
{
    const char *a = o->argv[*i];
    size_t len = strlen(name);
    if (a[len] == '=')
        return a + len + 1;
    if (*i + 1 >= o->argc)
        usage_error("option '%s' needs an argument", name);
    return o->argv[++*i];
}

static void print_version(void)
{
    printf("qd %s, %s, %s\n", QD_VERSION, LUA_RELEASE, qd_la_info());
    printf("kernels: %s (built: %s; this CPU runs: %s; CPU: %s)\n", qd_isa_name(),
           qd_isa_built(), qd_isa_runnable_list(), qd_isa_cpu());
}

/* Options come first, then the script and its arguments (as in lua.c: everything after
 * the script name belongs to the script, even if it looks like an option). */
static void parse_args(qd_opts *o)
{
    int threads = 0;
    int i;
    for (i = 1; i < o->argc; i++) {
        const char *a = o->argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0) {
            o->script = i;
            break;
        }
        if (strcmp(a, "--") == 0) {
            if (i + 1 < o->argc)
                o->script = i + 1;
            break;
        }
        if (strncmp(a, "-e", 2) == 0) {
            /* "-e chunk" or, as lua.c allows, "-echunk" */
            if (a[2] == '\0') {
                if (i + 1 >= o->argc)
                    usage_error("option '%s' needs an argument", "-e");
                o->chunks[o->nchunks++] = o->argv[++i];
            } else {
                o->chunks[o->nchunks++] = a + 2;
            }
        } else if (strcmp(a, "-i") == 0) {
            o->interactive = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            print_version();
            exit(0);
        } else if (strcmp(a, "--seed") == 0 || strncmp(a, "--seed=", 7) == 0) {
            o->seed = check_seed(option_value(o, &i, "--seed"));
        } else if (strcmp(a, "--threads") == 0 || strncmp(a, "--threads=", 10) == 0) {
            threads = check_threads(option_value(o, &i, "--threads"), "--threads");
        } else {
            usage_error("unrecognized option '%s'", a);
        }
    }
    if (threads == 0) {
        const char *env = getenv("QD_THREADS");
        threads = env && *env ? check_threads(env, "QD_THREADS") : default_threads();
    }
    o->threads = threads;
}

/* ------------------------------------------------------------------ Ctrl-C */

/* The state the signal handler sets its hook on. A signal handler can do almost
 * nothing safely; lua_sethook is designed to be callable from one (it only stores
 * fields), so the handler arms a hook and the hook, running as ordinary Lua code at the
 * next instruction, raises the error. */
static lua_State *globalL = NULL;
static int sigint_ignored;

int qdi_sigint_ignored(void)
{
    return sigint_ignored;
}

static void laction(int sig);

static void set_sigint(void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART as signal() gives lua.c: a Ctrl-C must not make some unrelated read or
     * write in the core fail with EINTR; the hook fires as soon as Lua runs again. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, old);
}

static void lstop(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    /* Lua is responsive again, so a later Ctrl-C may interrupt again (lua.c leaves the
     * default action, which would make the next Ctrl-C kill a REPL session whose
     * interrupt was swallowed by a pcall). */
    set_sigint(laction, NULL);
    luaL_error(L, "interrupted!");
}

static void laction(int sig)
{
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    /* Until the hook runs, a second Ctrl-C kills the process: the way out when qd is
     * stuck in a long C kernel that never returns to Lua. */
    signal(sig, SIG_DFL);
    lua_sethook(globalL, lstop, flag, 1);
}

/* ------------------------------------------------------------------ running chunks */

void qdi_message(const char *pname, const char *msg)
{
    fflush(stdout);
    if (pname)
        fprintf(stderr, "%s: ", pname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

int qdi_report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        qdi_message(qdi_progname, msg ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return status;
}

/* As lua.c: a string (or number) gets a traceback appended; another error object with
 * a __tostring metamethod is shown as that string, without traceback; anything else is
 * named by its type. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int qdi_docall(lua_State *L, int narg, int nres)
{
    int base = lua_gettop(L) - narg;   /* function index */
    struct sigaction old;
    int status;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    globalL = L;
    if (!sigint_ignored)
        set_sigint(laction, &old);
    status = lua_pcall(L, narg, nres, base);
    if (!sigint_ignored)
        sigaction(SIGINT, &old, NULL);
    /* A Ctrl-C that landed just as the chunk finished must not interrupt the next one. */
    if (lua_gethook(L) == lstop)
        lua_sethook(L, NULL, 0, 0);
    lua_remove(L, base);
    return status;
}

static int dochunk(lua_State *L, int status)
{
    if (status == LUA_OK)
        status = qdi_docall(L, 0, 0);
    return qdi_report(L, status);
}

/* The script: fname NULL reads stdin. Its arguments (argv after it) are passed as '...'
 * too, like lua.c. */
static int handle_script(lua_State *L, qd_opts *o)
{
    const char *fname = o->argv[o->script];
    int status, n, i;
    if (strcmp(fname, "-") == 0 && strcmp(o->argv[o->script - 1], "--") != 0)
        fname = NULL;
    status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        n = o->argc - o->script - 1;
        luaL_checkstack(L, n + 3, "too many arguments to script");
        for (i = 1; i <= n; i++)
            lua_pushstring(L, o->argv[o->script + i]);
        status = qdi_docall(L, n, 0);
    }
    return qdi_report(L, status);
}

/* Global 'arg' as lua.c builds it: arg[0] the script, arg[1..] its arguments, negative
 * indices the interpreter and its options. Without a script arg[0] is the program. */
static void create_arg_table(lua_State *L, qd_opts *o)
{
    int script = o->script;
    int i;
    lua_createtable(L, o->argc - script - 1 > 0 ? o->argc - script - 1 : 0, script + 1);
    for (i = 0; i < o->argc; i++) {
        lua_pushstring(L, o->argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* ------------------------------------------------------------------ package.path */

/* Directory of the running executable, from /proc/self/exe (exact even when qd is run
 * through PATH or a symlink), else from argv[0] when it holds a '/'. */
static int exe_dir(const char *argv0, char *out, size_t len)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    char *slash;
    if (n > 0)
        buf[n] = '\0';
    else if (!(argv0 && strchr(argv0, '/') && realpath(argv0, buf)))
        return 0;
    slash = strrchr(buf, '/');
    if (!slash)
        return 0;
    if (slash == buf)
        slash++;   /* executable in "/" */
    *slash = '\0';
    if (strlen(buf) + 1 > len)
        return 0;
    strcpy(out, buf);
    return 1;
}

/* Pushes "<dir>/?.lua;<dir>/?/init.lua;" if dir exists (and, when need_qd, holds
 * qd/init.lua) and was not pushed before; seen is a table of canonical paths. Returns
 * the number of strings pushed (0 or 1). */
static int push_dir(lua_State *L, int seen, const char *dir, size_t len, int need_qd)
{
    char path[PATH_MAX + sizeof "/qd/init.lua"], real[PATH_MAX];
    struct stat st;
    if (len == 0 || len >= PATH_MAX)
        return 0;
    memcpy(path, dir, len);
    path[len] = '\0';
    if (!realpath(path, real) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    if (need_qd) {
        snprintf(path, sizeof path, "%s/qd/init.lua", real);
        if (access(path, R_OK) != 0)
            return 0;
    }
    if (lua_getfield(L, seen, real) != LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, seen, real);
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", real, real);
    return 1;
}

/* Puts the qd library directories in front of package.path, first found first:
 * $QD_PATH entries, then (if they hold qd/init.lua) <exe dir>/../stdlib (the source
 * tree: build/qd), <exe dir>/../share/qd (installed: PREFIX/bin/qd) and the install
 * directory compiled in. Canonical paths, so error messages show real file names. */
static void set_paths(lua_State *L, const char *argv0)
{
    int top = lua_gettop(L);
    int pkg, seen, n = 0;
    const char *env = getenv("QD_PATH");
    char dir[PATH_MAX], cand[PATH_MAX + 32];

    lua_getglobal(L, "package");
    pkg = lua_gettop(L);
    lua_newtable(L);
    seen = lua_gettop(L);
    while (env && *env) {
        const char *end = strchr(env, ';');
        size_t len = end ? (size_t)(end - env) : strlen(env);
        luaL_checkstack(L, 4, "too many directories in QD_PATH");
        n += push_dir(L, seen, env, len, 0);
        env = end ? end + 1 : NULL;
    }
    if (exe_dir(argv0, dir, sizeof dir)) {
        snprintf(cand, sizeof cand, "%s/../stdlib", dir);
        n += push_dir(L, seen, cand, strlen(cand), 1);
        snprintf(cand, sizeof cand, "%s/../share/qd", dir);
        n += push_dir(L, seen, cand, strlen(cand), 1);
    }
    n += push_dir(L, seen, QD_STDLIB_INSTALL, strlen(QD_STDLIB_INSTALL), 1);
    lua_getfield(L, pkg, "path");
    lua_concat(L, n + 1);
    lua_setfield(L, pkg, "path");
    lua_settop(L, top);
}

/* ------------------------------------------------------------------ startup */

/* Loads the C module, seeds the run's generator, then qd = require "qd" and
 * help = qd.help. "qd.core" is loaded first because it registers the metatables
 * (qd.Rng among them) that qdL_set_run_seed's object needs, and the seed must be in
 * place before stdlib's own code runs. */
static int load_qd(lua_State *L, uint64_t seed)
{
    int status;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "qd.core");
    status = qdi_docall(L, 1, 0);
    if (status == LUA_OK) {
        qdL_set_run_seed(L, seed);
        lua_getglobal(L, "require");
        lua_pushliteral(L, "qd");
        status = qdi_docall(L, 1, 1);
    }
    if (status != LUA_OK) {
        qdi_report(L, status);
        qdi_message(qdi_progname, "cannot load the qd library (set QD_PATH to the "
                                  "directory that holds qd/init.lua)");
        return status;
    }
    lua_pushvalue(L, -1);
    lua_setglobal(L, "qd");
    if (lua_istable(L, -1)) {
        if (lua_getfield(L, -1, "help") != LUA_TNIL)
            lua_setglobal(L, "help");
        else
            lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return LUA_OK;
}

static int pmain(lua_State *L)
{
    qd_opts *o = lua_touserdata(L, 1);
    int i;
    luaL_checkversion(L);
    /* The garbage collector stays in Lua's default incremental mode: big quantum
     * buffers are reported to it by the bindings, and incremental pacing reacts to
     * that more predictably than generational mode (lua.c's choice). */
    luaL_openlibs(L);
    qdL_openlibs(L);
    set_paths(L, o->argv[0]);
    create_arg_table(L, o);
    qd_set_threads(o->threads);
    if (load_qd(L, o->seed) != LUA_OK)
        return 0;
    for (i = 0; i < o->nchunks; i++) {
        const char *c = o->chunks[i];
        if (dochunk(L, luaL_loadbuffer(L, c, strlen(c), "=(command line)")) != LUA_OK)
            return 0;
    }
    if (o->script && handle_script(L, o) != LUA_OK)
        return 0;
    if (o->interactive) {
        qdi_repl(L);
    } else if (o->script == 0 && o->nchunks == 0) {
        if (isatty(STDIN_FILENO))
            qdi_repl(L);
        else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK)
            return 0;
    }
    o->ok = 1;
    return 0;
}

int main(int argc, char **argv)
{
    qd_opts o;
    struct sigaction sa;
    lua_State *L;
    int status;

    /* Training loops allocate and free the same mid-sized buffers (cost matrices, plans,
     * output ensembles: 1-50 MB) every epoch. glibc serves those with mmap and gives them
     * back on free, so every epoch page-faulted ~5 MB of fresh zeroed pages: the full
     * QuDDPM circle run spent 401 s in the kernel for 627 s of user time. Keep such
     * buffers in the heap and the heap from shrinking below 256 MiB; state vectors of
     * 64 MiB and more still get their own mappings. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);

    /* a kernel set forced through QD_SIMD that is unknown or that this CPU cannot run:
     * say so rather than run another set silently (or die of an illegal instruction) */
    if (qd_isa_error()) {
        qdi_message(qdi_progname, qd_isa_error());
        return 2;
    }

    memset(&o, 0, sizeof o);
    o.argc = argc;
    o.argv = argv;
    o.seed = QD_DEFAULT_SEED;
    o.chunks = calloc(argc > 0 ? (size_t)argc : 1, sizeof *o.chunks);
    if (!o.chunks) {
        qdi_message(qdi_progname, "not enough memory");
        return 1;
    }
    parse_args(&o);

    /* A shell starts background jobs with SIGINT ignored so that Ctrl-C at the
     * terminal reaches only the foreground; respect that (as Python does). */
    if (sigaction(SIGINT, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
        sigint_ignored = 1;

    L = luaL_newstate();
    if (L == NULL) {
        qdi_message(qdi_progname, "cannot create Lua state: not enough memory");
        free(o.chunks);
        return 1;
    }
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, &o);
    status = lua_pcall(L, 1, 0, 0);
    qdi_report(L, status);
    lua_close(L);
    free(o.chunks);
    return status == LUA_OK && o.ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
