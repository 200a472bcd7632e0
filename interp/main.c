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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "interp.h"
#include "lua_qd.h"
#include "lua_sys.h"
#include "qd.h"
#include "qd_isa.h"
#include "qd_dist.h"

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
    "  --sandbox      run a script from someone else: no processes, libraries or\n"
    "                 files beyond its run directory (--out DIR among the script's\n"
    "                 arguments, else a new runs/sandbox-...) and the files named\n"
    "                 on the command line (docs/cli.md says exactly what it does)\n"
    "  --max-seconds N  stop the run after N seconds of CPU time\n"
    "  --max-memory S   stop the run when qd and Lua hold more than S bytes\n"
    "                 (suffixes K, M, G, T: --max-memory 4G)\n"
    "  --version      print version information and exit\n"
    "  -h, --help     print this help and exit\n"
    "  --             stop handling options (the next argument is the script)\n"
    "\n"
    "       qd replay RUNDIR [--out DIR] [--threads N] [--no-sandbox]\n"
    "                 rerun a run record (in the sandbox) and compare its metrics and\n"
    "                 files with the original, bit for bit\n"
    "       qd plot RUNDIR [--out DIR] [--format png|svg|pdf]\n"
    "                 draw a run record's standard figures (loss curves, metrics per\n"
    "                 step, Bloch spheres) into RUNDIR/figures with gnuplot\n"
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
    "Exit status: 0 on success, 1 if the script fails or is interrupted (Ctrl-C,\n"
    "a limit), 2 for a bad command line; qd replay: 0 identical, 1 different.\n";

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
    int threads_given;     /* --threads was on the command line */
    int sandbox;           /* --sandbox */
    uint64_t max_seconds;  /* --max-seconds (0: none) */
    uint64_t max_memory;   /* --max-memory (0: none) */
    const char *replay;    /* qd replay RUNDIR */
    const char *replay_out;
    int plot;              /* qd plot RUNDIR ...: index in argv of "plot", 0 if not */
    int exit_code;         /* set by pmain: the process's exit status */
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
    /* MPI ranks on this machine share its cores: each gets its share (at least 1) */
    if (qd_dist_local_size() > 1) {
        n /= qd_dist_local_size();
        n = n < 1 ? 1 : n;
    }
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

/* "4G", "512M", "100000": bytes (suffixes K, M, G, T are powers of 1024) */
static uint64_t check_size(const char *s, const char *opt)
{
    char num[32];
    size_t len = strlen(s);
    uint64_t v, mul = 1;
    if (len > 0 && len < sizeof num) {
        memcpy(num, s, len + 1);
        switch (num[len - 1]) {
        case 'K': case 'k': mul = 1ull << 10; break;
        case 'M': case 'm': mul = 1ull << 20; break;
        case 'G': case 'g': mul = 1ull << 30; break;
        case 'T': case 't': mul = 1ull << 40; break;
        default: break;
        }
        if (mul > 1)
            num[len - 1] = '\0';
        if (parse_uint(num, UINT64_MAX / mul, &v) && v > 0)
            return v * mul;
    }
    usage_error(strcmp(opt, "--max-memory") == 0
                    ? "bad value for --max-memory: '%s' (a size such as 4G, 512M or a number "
                      "of bytes expected)"
                    : "bad value for --max-seconds: '%s' (a positive integer expected)",
                s);
    return 0;
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
        } else if (strcmp(a, "--sandbox") == 0) {
            o->sandbox = 1;
        } else if (strcmp(a, "--max-seconds") == 0 || strncmp(a, "--max-seconds=", 14) == 0) {
            const char *v = option_value(o, &i, "--max-seconds");
            if (!parse_uint(v, (uint64_t)INT32_MAX, &o->max_seconds) || o->max_seconds == 0)
                usage_error("bad value for --max-seconds: '%s' (an integer 1..2147483647 expected)",
                            v);
        } else if (strcmp(a, "--max-memory") == 0 || strncmp(a, "--max-memory=", 13) == 0) {
            o->max_memory = check_size(option_value(o, &i, "--max-memory"), "--max-memory");
        } else {
            usage_error("unrecognized option '%s'", a);
        }
    }
    /* qd [options] replay RUNDIR [--out DIR] [--threads N] [--no-sandbox] */
    if (o->script && strcmp(o->argv[o->script], "replay") == 0 &&
        strcmp(o->argv[o->script - 1], "--") != 0) {
        o->sandbox = 1;
        for (i = o->script + 1; i < o->argc; i++) {
            const char *a = o->argv[i];
            if (strcmp(a, "--out") == 0 || strncmp(a, "--out=", 6) == 0)
                o->replay_out = option_value(o, &i, "--out");
            else if (strcmp(a, "--threads") == 0 || strncmp(a, "--threads=", 10) == 0)
                threads = check_threads(option_value(o, &i, "--threads"), "--threads");
            else if (strcmp(a, "--no-sandbox") == 0)
                o->sandbox = 0;
            else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                fputs(usage_text, stdout);
                exit(0);
            } else if (a[0] == '-' || o->replay)
                usage_error("qd replay: unexpected argument '%s'", a);
            else
                o->replay = a;
        }
        if (!o->replay)
            usage_error("%s", "qd replay needs a run directory");
        o->script = 0;
    }
    /* qd [options] plot RUNDIR [--out DIR] [--format F]: qd.plot_run parses the rest */
    if (o->script && strcmp(o->argv[o->script], "plot") == 0 &&
        strcmp(o->argv[o->script - 1], "--") != 0) {
        o->plot = o->script;
        o->script = 0;
    }
    o->threads_given = threads != 0;
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
 * next instruction, raises the error. A long C kernel does not run Lua code, so the
 * handler also sets qd_interrupt (runtime/core/qd.h), which the kernels poll between steps:
 * they return early and the hook raises the error as soon as Lua runs again.
 * SIGXCPU (the --max-seconds limit, RLIMIT_CPU) takes the same way with another
 * message. */
static lua_State *globalL = NULL;
static int sigint_ignored;
static volatile sig_atomic_t stop_reason;    /* 0, STOP_INT or STOP_CPU: pending */
static volatile sig_atomic_t int_presses;    /* Ctrl-Cs not yet delivered */
static volatile sig_atomic_t cpu_fired;      /* the CPU limit was reached once */
static uint64_t cpu_limit;                   /* --max-seconds, for the message */
enum { STOP_INT = 1, STOP_CPU = 2 };

int qdi_sigint_ignored(void)
{
    return sigint_ignored;
}

static void laction(int sig);

static void set_handler(int sig, void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART as signal() gives lua.c: a Ctrl-C must not make some unrelated read or
     * write in the core fail with EINTR; the hook fires as soon as Lua runs again. */
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, old);
}

static void lstop(lua_State *L, lua_Debug *ar)
{
    int reason = stop_reason;
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    stop_reason = 0;
    int_presses = 0;
    qd_interrupt = 0;
    if (reason == STOP_CPU)
        luaL_error(L, "CPU time limit of %d s reached (--max-seconds)", (int)cpu_limit);
    luaL_error(L, "interrupted!");
}

static void laction(int sig)
{
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    if (sig == SIGXCPU) {
        /* the kernel repeats SIGXCPU every CPU second past the soft limit: once is
         * enough (the hard limit, 30 s later, kills a run that does not stop) */
        if (cpu_fired)
            return;
        cpu_fired = 1;
        stop_reason = STOP_CPU;
    } else {
        int_presses++;
        if (int_presses == 2) {
            static const char m[] = "\nqd: stopping at the next check; press Ctrl-C again to "
                                    "quit at once\n";
            ssize_t w = write(STDERR_FILENO, m, sizeof m - 1);
            (void)w;
        } else if (int_presses >= 3) {
            /* stuck somewhere that never checks (a LAPACK call): the way out */
            signal(SIGINT, SIG_DFL);
            raise(SIGINT);
            return;
        }
        if (!stop_reason)
            stop_reason = STOP_INT;
    }
    qd_interrupt = 1;
    if (globalL)
        lua_sethook(globalL, lstop, flag, 1);
}

/* ------------------------------------------------------------------ progress of long calls */

/* qd_progress_hook (runtime/core/qd.h): a line on stderr for a single call (qd.lindblad,
 * qd.sse) that has run a second, redrawn four times a second, cleared at the end. Only on
 * a terminal, and not with QD_PROGRESS=quiet or lines (scripts that print their own). */
static void progress_line(const char *what, double frac, double seconds)
{
    char buf[160];
    int len;
    if (frac >= 1) {
        len = snprintf(buf, sizeof buf, "\r\x1b[K");
    } else if (frac > 0.01) {   /* with an estimate of the time left */
        len = snprintf(buf, sizeof buf, "\r%s: %3.0f%%  %.0f s, about %.0f s left\x1b[K", what,
                       100 * frac, seconds, seconds * (1 - frac) / frac);
    } else {
        len = snprintf(buf, sizeof buf, "\r%s: %3.0f%%  %.0f s\x1b[K", what, 100 * frac, seconds);
    }
    if (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1);
        (void)w;
    }
}

static void install_progress(void)
{
    const char *env = getenv("QD_PROGRESS");
    if (isatty(STDERR_FILENO) && !(env && (strcmp(env, "quiet") == 0 || strcmp(env, "lines") == 0)))
        qd_progress_hook = progress_line;
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
        if (msg && qd_mem_limit_hit() && strstr(msg, "not enough memory")) {
            /* say which limit: the machine's or --max-memory */
            char lim[32];
            qd_format_bytes((double)qd_mem_get_limit(), lim, sizeof lim);
            lua_pushfstring(L, "%s\n(the --max-memory limit of %s was reached)", msg, lim);
            lua_remove(L, -2);
            msg = lua_tostring(L, -1);
        }
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
    int code;
    const char *msg;
    if (qdi_exit_code(L, 1, &code))   /* os.exit in the sandbox: not an error */
        return 1;
    msg = lua_tostring(L, 1);
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
    if (stop_reason == STOP_CPU)   /* the limit struck between chunks */
        lua_sethook(L, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
    if (!sigint_ignored)
        set_handler(SIGINT, laction, &old);
    status = lua_pcall(L, narg, nres, base);
    if (!sigint_ignored)
        sigaction(SIGINT, &old, NULL);
    /* A Ctrl-C that landed just as the chunk finished must not interrupt the next one. */
    if (lua_gethook(L) == lstop)
        lua_sethook(L, NULL, 0, 0);
    if (stop_reason == STOP_INT) {
        stop_reason = 0;
        int_presses = 0;
        qd_interrupt = 0;
    }
    lua_remove(L, base);
    return status;
}

static int dochunk(lua_State *L, qd_opts *o, int status)
{
    int code;
    if (status == LUA_OK)
        status = qdi_docall(L, 0, 0);
    if (status != LUA_OK && qdi_exit_code(L, -1, &code)) {   /* os.exit (sandbox, MPI) */
        lua_pop(L, 1);
        o->exit_code = code;
        return LUA_ERRRUN;   /* the program ends here, with that code */
    }
    return qdi_report(L, status);
}

/* The whole of a file (fname NULL: stdin) in a malloc'd buffer; NULL + message on failure */
static char *read_all(const char *fname, size_t *len, char *msg, size_t msglen)
{
    FILE *f = fname ? fopen(fname, "rb") : stdin;
    size_t cap = 1 << 16, n = 0, r;
    char *buf;
    if (!f) {
        snprintf(msg, msglen, "cannot open %.200s: %s", fname, strerror(errno));
        return NULL;
    }
    buf = malloc(cap + 1);
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            char *nb = cap > SIZE_MAX / 4 ? NULL : realloc(buf, 2 * cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (buf && ferror(f)) {
        snprintf(msg, msglen, "cannot read %.200s", fname ? fname : "stdin");
        free(buf);
        buf = NULL;
    } else if (!buf)
        snprintf(msg, msglen, "not enough memory to read %.200s", fname ? fname : "stdin");
    if (fname)
        fclose(f);
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* Saves the run records the script left open (qd.record.close_all): on failure each is
 * written with its status and the message, and where it is (and how to resume) is said. */
static void close_records(lua_State *L, int ok, const char *msg)
{
    int top = lua_gettop(L);
    if (!ok)
        qd_mem_set_limit(0);   /* room to write the record, whatever the limit stopped */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "qd.record") == LUA_TTABLE &&
        lua_getfield(L, -1, "close_all") == LUA_TFUNCTION) {
        lua_pushboolean(L, ok);
        lua_pushstring(L, msg ? msg : "");
        if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_istable(L, -1)) {
            lua_Integer n = luaL_len(L, -1);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, i);
                if (lua_type(L, -1) == LUA_TSTRING)
                    qdi_message(qdi_progname, lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        }
    }
    lua_settop(L, top);
}

/* After the script: os.exit under the sandbox gives the exit status; an error is
 * reported (a memory error caused by --max-memory says so); the run records are closed.
 * Returns LUA_OK when the run succeeded. */
static int finish_script(lua_State *L, qd_opts *o, int status)
{
    int code;
    if (status != LUA_OK && qdi_exit_code(L, -1, &code)) {
        lua_pop(L, 1);
        o->exit_code = code;
        char m[32];
        snprintf(m, sizeof m, "os.exit(%d)", code);
        close_records(L, code == 0, m);
        return code == 0 ? LUA_OK : LUA_ERRRUN;
    }
    if (status != LUA_OK) {
        char *copy;
        const char *msg = lua_tostring(L, -1);
        copy = msg ? strdup(msg) : NULL;
        qdi_report(L, status);
        close_records(L, 0, copy ? copy : "error");
        free(copy);
        return status;
    }
    close_records(L, 1, NULL);
    return LUA_OK;
}

/* Runs a script's text (the run record keeps it: main script only) with its arguments
 * as '...'. name: the chunk's name ("@file" or "=stdin"). A first line starting with
 * '#' is skipped (a #! line), as lua.c does, keeping the line numbers. */
static int run_text(lua_State *L, qd_opts *o, const char *chunkname, const char *text,
                    size_t len, char **args, int nargs)
{
    const char *start = text;
    int status, i;
    qdL_sys_set_script(text, len);
    if (len > 0 && text[0] == '#')
        while (start < text + len && *start != '\n')
            start++;
    status = luaL_loadbufferx(L, start, len - (size_t)(start - text), chunkname,
                              o->sandbox ? "t" : NULL);
    if (status == LUA_OK) {
        luaL_checkstack(L, nargs + 3, "too many arguments to script");
        for (i = 0; i < nargs; i++)
            lua_pushstring(L, args[i]);
        status = qdi_docall(L, nargs, 0);
    }
    return finish_script(L, o, status);
}

/* The script: "-" (not after "--") reads stdin. Its arguments (argv after it) are passed
 * as '...' too, like lua.c. */
static int handle_script(lua_State *L, qd_opts *o)
{
    const char *fname = o->argv[o->script];
    char msg[512];
    size_t len;
    char *text;
    int status;
    if (strcmp(fname, "-") == 0 && strcmp(o->argv[o->script - 1], "--") != 0)
        fname = NULL;
    text = read_all(fname, &len, msg, sizeof msg);
    if (!text) {
        lua_pushstring(L, msg);
        return qdi_report(L, LUA_ERRFILE);
    }
    lua_pushfstring(L, fname ? "@%s" : "=stdin", fname);
    status = run_text(L, o, lua_tostring(L, -1), text, len, o->argv + o->script + 1,
                      o->argc - o->script - 1);
    lua_pop(L, 1);
    free(text);
    return status;
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

/* the library directories found (real paths): a sandboxed require searches these only */
#define MAX_LIBDIRS 16
static char libdir_buf[MAX_LIBDIRS][PATH_MAX];
static const char *libdirs[MAX_LIBDIRS];
static int nlibdirs;

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
    if (nlibdirs < MAX_LIBDIRS) {
        strcpy(libdir_buf[nlibdirs], real);
        libdirs[nlibdirs] = libdir_buf[nlibdirs];
        nlibdirs++;
    }
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

    nlibdirs = 0;
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

/* ------------------------------------------------------------------ the sandbox */

/* value of option name (--name V or --name=V) among the script's arguments, or NULL */
static const char *script_option(char **args, int nargs, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < nargs; i++) {
        if (strncmp(args[i], name, len) != 0)
            continue;
        if (args[i][len] == '=')
            return args[i] + len + 1;
        if (args[i][len] == '\0' && i + 1 < nargs)
            return args[i + 1];
    }
    return NULL;
}

/* A new directory runs/sandbox-<script>-<UTC time>[-k] for a run that names none. */
static int fresh_run_dir(const char *script, char *out, size_t len)
{
    const char *base = script ? strrchr(script, '/') : NULL;
    char stem[64], stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    base = base ? base + 1 : (script ? script : "stdin");
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = '\0';
    for (char *c = stem; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-'))
            *c = '_';
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    if (mkdir("runs", 0777) != 0 && errno != EEXIST)
        return -1;
    for (int k = 1; k <= 1000; k++) {
        if (k == 1)
            snprintf(out, len, "runs/sandbox-%s-%s", stem, stamp);
        else
            snprintf(out, len, "runs/sandbox-%s-%s-%d", stem, stamp, k);
        if (mkdir(out, 0777) == 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

/* Turns the sandbox on for a script with these arguments: its output directory (--out,
 * --resume, the replay's, else a fresh one) is writable, the script and the files and
 * directories its arguments name are readable, and the standard functions are replaced
 * (sandbox.c). Returns 0, or -1 after printing why not. */
static int sandbox_prepare(lua_State *L, const char *script, char **args, int nargs,
                           const char *out)
{
    char dir[PATH_MAX], msg[512];
    struct stat st;
    const char *given = out;
    if (!given)
        given = script_option(args, nargs, "--out");
    if (!given)
        given = script_option(args, nargs, "--resume");
    if (!given) {
        if (fresh_run_dir(script, dir, sizeof dir) != 0) {
            qdi_message(qdi_progname, "sandbox: cannot create a run directory under runs/");
            return -1;
        }
        given = dir;
        qdL_sys_set_default_out(dir);
    } else if (out) {
        qdL_sys_set_default_out(out);
    }
    if (qdL_sandbox_enable(given, msg, sizeof msg) != 0) {
        qdi_message(qdi_progname, msg);
        return -1;
    }
    if (script)
        qdL_sandbox_allow_read(script, 0);
    for (int i = 0; i < nargs; i++) {
        const char *v = args[i];
        const char *eq = strchr(v, '=');
        if (v[0] == '-' && v[1] == '-' && eq)
            v = eq + 1;
        if (*v && stat(v, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
            char real[PATH_MAX];
            if (realpath(v, real) && strcmp(real, "/") != 0)
                qdL_sandbox_allow_read(v, S_ISDIR(st.st_mode));
        }
    }
    for (int i = 0; i < nlibdirs; i++)
        qdL_sandbox_allow_read(libdirs[i], 1);
    /* public data files qd's loaders read (qd.data.digits: the 8x8 digits of Debian's
     * python3-sklearn; the same path as stdlib/qd/digits.lua), read only, when present */
    qdL_sandbox_allow_read("/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz", 0);
    qdi_sandbox_install(L, libdirs, nlibdirs);
    return 0;
}

/* ------------------------------------------------------------------ running */

/* Everything a run needs before its chunks: libraries, paths, arg, threads, qd loaded. */
static int setup_state(lua_State *L, qd_opts *o, uint64_t seed)
{
    luaL_checkversion(L);
    /* The garbage collector stays in Lua's default incremental mode: big quantum
     * buffers are reported to it by the bindings, and incremental pacing reacts to
     * that more predictably than generational mode (lua.c's choice). */
    luaL_openlibs(L);
    qdL_openlibs(L);
    if (qd_dist_enabled())
        qdi_install_exit(L);   /* os.exit ends the script, then MPI is finalised */
    set_paths(L, o->argv[0]);
    create_arg_table(L, o);
    qd_set_threads(o->threads);
    qdL_sys_set_seed(seed);
    return load_qd(L, seed);
}

static int pmain(lua_State *L)
{
    qd_opts *o = lua_touserdata(L, 1);
    int i;
    if (setup_state(L, o, o->seed) != LUA_OK)
        return 0;
    if (o->sandbox) {
        char **args = o->script ? o->argv + o->script + 1 : NULL;
        int nargs = o->script ? o->argc - o->script - 1 : 0;
        const char *script = o->script && strcmp(o->argv[o->script], "-") ? o->argv[o->script] : NULL;
        if (sandbox_prepare(L, script, args, nargs, NULL) != 0)
            return 0;
    }
    for (i = 0; i < o->nchunks; i++) {
        const char *c = o->chunks[i];
        if (dochunk(L, o, luaL_loadbuffer(L, c, strlen(c), "=(command line)")) != LUA_OK)
            return 0;
    }
    if (o->script && handle_script(L, o) != LUA_OK)
        return 0;
    if (o->interactive) {
        qdi_repl(L);
    } else if (o->script == 0 && o->nchunks == 0) {
        if (isatty(STDIN_FILENO))
            qdi_repl(L);
        else if (dochunk(L, o, luaL_loadfile(L, NULL)) != LUA_OK)
            return 0;
    }
    o->ok = 1;
    return 0;
}

/* ------------------------------------------------------------------ qd replay */

/* The sandboxed rerun of a replay, in its own Lua state: plan is {script, text, args,
 * run_seed, threads, out} from qd.replay.plan. */
static int preplay_run(lua_State *L)
{
    qd_opts *o = lua_touserdata(L, 1);
    const char *chunkname = lua_tostring(L, 2);
    size_t len;
    const char *text = lua_tolstring(L, 3, &len);
    const char *out = lua_tostring(L, 4);
    char **args = o->argv + o->script + 1;
    int nargs = o->argc - o->script - 1;
    if (setup_state(L, o, o->seed) != LUA_OK)
        return 0;
    if (o->sandbox && sandbox_prepare(L, o->argv[o->script], args, nargs, out) != 0)
        return 0;
    if (!o->sandbox)
        qdL_sys_set_default_out(out);
    if (run_text(L, o, chunkname, text, len, args, nargs) == LUA_OK)
        o->ok = 1;
    return 0;
}

static lua_State *new_state(void);

/* qd replay RUNDIR: plan (qd.replay, unsandboxed: it reads the old record), rerun in a
 * fresh sandboxed state, compare. */
static int preplay(lua_State *L)
{
    qd_opts *o = lua_touserdata(L, 1);
    qd_opts sub;
    lua_State *R;
    int status, n, same = 0;
    char **argv;
    if (setup_state(L, o, o->seed) != LUA_OK)
        return 0;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "qd.replay");
    if (qdi_report(L, qdi_docall(L, 1, 1)) != LUA_OK)
        return 0;
    lua_getfield(L, -1, "plan");
    lua_pushstring(L, o->replay);
    if (o->replay_out)
        lua_pushstring(L, o->replay_out);
    else
        lua_pushnil(L);
    if (qdi_report(L, qdi_docall(L, 2, 1)) != LUA_OK)
        return 0;
    int plan = lua_gettop(L);
    /* argv of the rerun: qd, the script, its arguments */
    lua_getfield(L, plan, "args");
    n = (int)luaL_len(L, -1);
    argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 3), 0);
    argv[0] = o->argv[0];
    lua_getfield(L, plan, "script");
    argv[1] = (char *)lua_tostring(L, -1);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, plan + 1, i);
        argv[i + 1] = (char *)lua_tostring(L, -1);   /* kept alive: left on the stack */
    }
    argv[n + 2] = NULL;
    sub = *o;
    sub.argc = n + 2;
    sub.argv = argv;
    sub.script = 1;
    sub.nchunks = 0;
    sub.interactive = 0;
    sub.ok = 0;
    sub.exit_code = -1;
    lua_getfield(L, plan, "run_seed");
    sub.seed = (uint64_t)lua_tointeger(L, -1);
    lua_getfield(L, plan, "threads");
    if (!o->threads_given && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= MAX_THREADS)
        sub.threads = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    R = new_state();
    if (!R)
        return luaL_error(L, "cannot create Lua state: not enough memory");
    lua_pushcfunction(R, preplay_run);
    lua_pushlightuserdata(R, &sub);
    lua_getfield(L, plan, "chunkname");
    lua_pushstring(R, lua_tostring(L, -1));
    lua_getfield(L, plan, "text");
    {
        size_t len;
        const char *t = lua_tolstring(L, -1, &len);
        lua_pushlstring(R, t, len);
    }
    lua_getfield(L, plan, "out");
    lua_pushstring(R, lua_tostring(L, -1));
    lua_pop(L, 3);
    status = lua_pcall(R, 4, 0, 0);
    qdi_report(R, status);
    lua_close(R);
    globalL = L;
    qdL_sandbox_disable();
    qdL_sys_set_default_out(NULL);
    qd_set_threads(o->threads);
    /* compare, whether the rerun succeeded or not (the report says) */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "qd.replay");
    qdi_docall(L, 1, 1);
    lua_getfield(L, -1, "compare");
    lua_pushvalue(L, plan);
    lua_pushboolean(L, status == LUA_OK && sub.ok);
    if (qdi_report(L, qdi_docall(L, 2, 1)) != LUA_OK)
        return 0;
    same = lua_toboolean(L, -1);
    o->exit_code = same ? 0 : 1;
    o->ok = 1;
    return 0;
}

/* ------------------------------------------------------------------ qd plot */

/* qd plot RUNDIR ...: qd.plot_run.command(args) draws the figures and gives the exit
 * status (0 drawn, 1 failed, 2 bad command line). */
static int pplot(lua_State *L)
{
    qd_opts *o = lua_touserdata(L, 1);
    if (setup_state(L, o, o->seed) != LUA_OK)
        return 0;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "qd.plot_run");
    if (qdi_report(L, qdi_docall(L, 1, 1)) != LUA_OK)
        return 0;
    lua_getfield(L, -1, "command");
    lua_createtable(L, o->argc - o->plot, 0);
    for (int i = o->plot + 1; i < o->argc; i++) {
        lua_pushstring(L, o->argv[i]);
        lua_rawseti(L, -2, i - o->plot);
    }
    if (qdi_report(L, qdi_docall(L, 1, 1)) != LUA_OK)
        return 0;
    o->exit_code = (int)lua_tointeger(L, -1);
    o->ok = o->exit_code == 0;
    return 0;
}

/* ------------------------------------------------------------------ main */

/* Lua's allocator with --max-memory: Lua's heap is charged to the same account as qd's
 * buffers (runtime/core/mem.c), so a script cannot get around the limit with Lua tables. */
static void *counted_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (ptr == NULL)
        osize = 0;
    if (nsize == 0) {
        free(ptr);
        qd_mem_uncharge(osize);
        return NULL;
    }
    if (nsize > osize && !qd_mem_charge(nsize - osize))
        return NULL;
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (nsize > osize)
            qd_mem_uncharge(nsize - osize);
        return NULL;
    }
    if (nsize < osize)
        qd_mem_uncharge(osize - nsize);
    return p;
}

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    if (L && qd_mem_get_limit()) {
        /* what luaL_newstate allocated before the switch is charged now */
        size_t used = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
        qd_mem_charge(used);
        lua_setallocf(L, counted_alloc, NULL);
    }
    return L;
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

    /* MPI (the `make MPI=1` build; one process otherwise): every rank runs the script;
     * rank 0 alone prints (the others' stdout goes to /dev/null unless QD_MPI_OUTPUT=all)
     * and writes run records (qd.record gives the others a scratch directory) */
    if (qd_dist_init(&argc, &argv) != 0) {
        qdi_message(qdi_progname, "MPI_Init_thread failed");
        return 1;
    }
    atexit(qd_dist_finalize);   /* every other way out (--help, --version, exit(2)) too */
    if (qd_dist_rank() > 0) {
        static char name[32];
        const char *out = getenv("QD_MPI_OUTPUT");
        snprintf(name, sizeof name, "qd[rank %d]", qd_dist_rank());
        qdi_progname = name;
        if (!(out && strcmp(out, "all") == 0) && !freopen("/dev/null", "w", stdout))
            qdi_message(qdi_progname, "cannot silence stdout");
    }

    memset(&o, 0, sizeof o);
    o.argc = argc;
    o.argv = argv;
    o.seed = QD_DEFAULT_SEED;
    o.exit_code = -1;
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

    if (o.max_memory)
        qd_mem_set_limit((size_t)o.max_memory);
    if (o.max_seconds) {
        /* RLIMIT_CPU: SIGXCPU at the soft limit (handled: the run stops with a message and
         * its record), SIGKILL at the hard one, 30 s later, if it does not */
        struct rlimit rl;
        cpu_limit = o.max_seconds;
        if (getrlimit(RLIMIT_CPU, &rl) == 0) {
            rlim_t soft = (rlim_t)o.max_seconds, hard = soft + 30;
            if (rl.rlim_max != RLIM_INFINITY && hard > rl.rlim_max)
                hard = rl.rlim_max;
            if (soft > hard)
                soft = hard;
            rl.rlim_cur = soft;
            rl.rlim_max = hard;
            setrlimit(RLIMIT_CPU, &rl);
        }
        set_handler(SIGXCPU, laction, NULL);
    }

    install_progress();
    L = new_state();
    if (L == NULL) {
        qdi_message(qdi_progname, "cannot create Lua state: not enough memory");
        free(o.chunks);
        return 1;
    }
    lua_pushcfunction(L, o.replay ? preplay : o.plot ? pplot : pmain);
    lua_pushlightuserdata(L, &o);
    status = lua_pcall(L, 1, 0, 0);
    qdi_report(L, status);
    lua_close(L);
    free(o.chunks);
    int rc = o.exit_code >= 0 ? o.exit_code
           : status == LUA_OK && o.ok ? EXIT_SUCCESS : EXIT_FAILURE;
    /* a rank that failed with an error ends the others (they may wait in a collective for
     * it); os.exit(code) is the script's choice, made alike on every rank */
    fflush(NULL);
    if (rc != 0 && o.exit_code < 0)
        qd_dist_abort(rc);
    qd_dist_finalize();
    return rc;
}
