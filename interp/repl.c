/*
 * repl.c — the interactive prompt of `qd`.
 *
 * As in lua.c: a line is first tried as "return <line>" so that an expression prints
 * its value, then as a statement; a chunk that ends too early (the syntax error ends in
 * "<eof>") is continued on the next line. Results are shown with luaL_tolstring, so
 * qd objects print their __tostring summaries.
 *
 * On a terminal, lines come from GNU readline (editing, history in ~/.qd_history).
 * readline is driven through its callback interface from our own select() loop, the
 * way Python's readline module does it, because that is what lets Ctrl-C at the prompt
 * just drop the line: the SIGINT handler only writes a byte to a pipe, the loop wakes
 * up on it and resets readline. (readline's own handlers would resend the signal to
 * us, and the default action kills the session with all its objects.) A Ctrl-C while
 * code runs is the "interrupted!" error of main.c's qdi_docall.
 *
 * When stdin is not a terminal (qd -i script.lua < input), lines are read plainly and
 * no banner or prompt is printed, so the output is just what the code prints.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <readline/readline.h>
#include <readline/history.h>

#include <lua.h>
#include <lauxlib.h>

#include "interp.h"
#include "qd.h"

#define PROMPT "qd> "
#define PROMPT2 "..> "
#define HISTORY_MAX 1000
#define CHUNKNAME "=stdin"
/* Marker at the end of the syntax error of an incomplete chunk (lua.c's EOFMARK). */
#define EOFMARK "<eof>"

static int interactive;                 /* stdin is a terminal */
static const char *hist_path;           /* history file, NULL for none */
static char hist_buf[PATH_MAX];

/* ------------------------------------------------------------------ Ctrl-C at the prompt */

static int wake_pipe[2] = {-1, -1};     /* the SIGINT handler writes here */
static volatile sig_atomic_t got_sigint;

static void prompt_sigint(int sig)
{
    int saved = errno;
    (void)sig;
    got_sigint = 1;
    if (wake_pipe[1] >= 0) {
        ssize_t r = write(wake_pipe[1], "x", 1);   /* non-blocking; full pipe is fine */
        (void)r;
    }
    errno = saved;
}

static void drain_wake_pipe(void)
{
    char buf[64];
    if (wake_pipe[0] >= 0)
        while (read(wake_pipe[0], buf, sizeof buf) > 0)
            ;
}

/* readline hands the finished line (NULL at end of input) to this callback. */
static char *rl_result;
static int rl_finished;

static void on_line(char *line)
{
    rl_result = line;
    rl_finished = 1;
    rl_callback_handler_remove();
}

/* One line from readline: a malloc'd string, or NULL at end of input (Ctrl-D) or when
 * Ctrl-C dropped the line (*interrupted = 1). */
static char *read_tty(const char *prompt, int *interrupted)
{
    int in = fileno(rl_instream);
    *interrupted = 0;
    got_sigint = 0;   /* a Ctrl-C pressed while the last chunk was finishing is dropped */
    drain_wake_pipe();
    rl_result = NULL;
    rl_finished = 0;
    rl_callback_handler_install(prompt, on_line);
    while (!rl_finished) {
        fd_set fds;
        int maxfd = in, r;
        FD_ZERO(&fds);
        FD_SET(in, &fds);
        if (wake_pipe[0] >= 0) {
            FD_SET(wake_pipe[0], &fds);
            if (wake_pipe[0] > maxfd)
                maxfd = wake_pipe[0];
        }
        r = select(maxfd + 1, &fds, NULL, NULL, NULL);
        if (got_sigint) {
            /* What Python's readline module does on KeyboardInterrupt: forget the line,
             * put the terminal back, leave callback mode. */
            *interrupted = 1;
            rl_free_line_state();
            rl_callback_sigcleanup();
            rl_cleanup_after_signal();
            rl_callback_handler_remove();
            break;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;   /* e.g. SIGWINCH */
            rl_callback_handler_remove();   /* unreadable stdin: end of input */
            break;
        }
        if (FD_ISSET(in, &fds))
            rl_callback_read_char();
    }
    drain_wake_pipe();
    got_sigint = 0;
    return rl_result;
}

/* ------------------------------------------------------------------ history */

static void history_open(void)
{
    const char *env = getenv("QD_HISTORY");
    int err;
    hist_path = NULL;
    using_history();
    stifle_history(HISTORY_MAX);
    if (env) {
        if (*env == '\0')
            return;   /* explicitly disabled */
        snprintf(hist_buf, sizeof hist_buf, "%s", env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return;
        snprintf(hist_buf, sizeof hist_buf, "%s/.qd_history", home);
    }
    err = read_history(hist_buf);
    /* append_history, used after every line so that a killed session keeps its history,
     * does not create the file; create it only if it is missing, never overwrite one we
     * could not read. */
    if (err == ENOENT)
        err = write_history(hist_buf);
    if (err == 0)
        hist_path = hist_buf;
}

static void history_remember(const char *line)
{
    HIST_ENTRY *last;
    if (line[strspn(line, " \t")] == '\0')
        return;
    last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && strcmp(last->line, line) == 0)
        return;
    add_history(line);
    if (hist_path)
        append_history(1, hist_path);   /* failures ignored: history is a convenience */
}

static void history_close(void)
{
    if (hist_path)
        history_truncate_file(hist_path, HISTORY_MAX);
    clear_history();
}

/* ------------------------------------------------------------------ Tab completion */

/* Tab completes Lua names: globals and keywords, and after "a.b." or "obj:" the fields
 * of that table, including what its metatable's __index table offers (where a
 * qd.State's methods live). The lookup follows only raw fields and __index tables,
 * never calls a function, so completing cannot run user code or raise. Inside a
 * string literal Tab falls back to readline's file name completion. */

static lua_State *comp_L;
static char **comp_list;
static size_t comp_n, comp_next;

static const char *const lua_keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto",
    "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true",
    "until", "while", NULL
};

static int is_ident(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; i < len; i++)
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* Replaces the value on top by its field name (raw, then through __index tables).
 * Returns 0 (value left in place) if there is no such field. */
static int comp_field(lua_State *L, const char *name, size_t len)
{
    int depth;
    lua_pushvalue(L, -1);
    for (depth = 0; depth < 8; depth++) {   /* bounded: __index chains may loop */
        if (lua_istable(L, -1)) {
            lua_pushlstring(L, name, len);
            if (lua_rawget(L, -2) != LUA_TNIL) {
                lua_remove(L, -2);
                lua_remove(L, -2);
                return 1;
            }
            lua_pop(L, 1);
        }
        if (!lua_getmetatable(L, -1))
            break;
        lua_pushliteral(L, "__index");
        lua_rawget(L, -2);
        lua_remove(L, -2);   /* the metatable */
        lua_remove(L, -2);   /* the previous value */
        if (!lua_istable(L, -1))
            break;
    }
    lua_pop(L, 1);
    return 0;
}

/* Adds to table res the identifier keys of the value at obj that start with prefix. */
static void comp_keys(lua_State *L, int obj, const char *prefix, size_t plen, int res,
                      int depth)
{
    obj = lua_absindex(L, obj);
    if (depth > 8)
        return;
    if (lua_istable(L, obj)) {
        lua_pushnil(L);
        while (lua_next(L, obj)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) == LUA_TSTRING) {
                size_t len;
                const char *k = lua_tolstring(L, -1, &len);
                if (len >= plen && memcmp(k, prefix, plen) == 0 && is_ident(k, len)) {
                    lua_pushvalue(L, -1);
                    lua_pushboolean(L, 1);
                    lua_rawset(L, res);
                }
            }
        }
    }
    if (lua_getmetatable(L, obj)) {
        lua_pushliteral(L, "__index");
        if (lua_rawget(L, -2) != LUA_TTABLE) {
            /* qd userdata index through a C function; their methods are listed in the
             * metatable's "methods" table */
            lua_pop(L, 1);
            lua_pushliteral(L, "methods");
            lua_rawget(L, -2);
        }
        if (lua_istable(L, -1))
            comp_keys(L, -1, prefix, plen, res, depth + 1);
        lua_pop(L, 2);
    }
}

/* Protected: arg 1 a name path like "qd.st" or "s:m"; returns a set of completions of
 * its last component. */
static int comp_collect(lua_State *L)
{
    const char *p = lua_tostring(L, 1), *sep;
    int res, i;
    size_t plen;
    lua_newtable(L);
    res = lua_gettop(L);
    lua_pushglobaltable(L);
    for (sep = strpbrk(p, ".:"); sep; sep = strpbrk(p, ".:")) {
        if (!comp_field(L, p, (size_t)(sep - p)))
            return 0;
        p = sep + 1;
    }
    plen = strlen(p);
    comp_keys(L, -1, p, plen, res, 0);
    if (p == lua_tostring(L, 1))   /* a bare name: keywords too */
        for (i = 0; lua_keywords[i]; i++)
            if (strncmp(lua_keywords[i], p, plen) == 0) {
                lua_pushboolean(L, 1);
                lua_setfield(L, res, lua_keywords[i]);
            }
    lua_settop(L, res);
    return 1;
}

static char *comp_generator(const char *text, int state)
{
    (void)text;
    if (state == 0)
        comp_next = 0;
    return comp_next < comp_n ? comp_list[comp_next++] : NULL;
}

static void comp_free(void)
{
    while (comp_next < comp_n)
        free(comp_list[comp_next++]);
    free(comp_list);
    comp_list = NULL;
    comp_n = comp_next = 0;
}

static char **comp_attempt(const char *text, int start, int end)
{
    lua_State *L = comp_L;
    const char *line = rl_line_buffer, *path, *dd;
    char quote = 0;
    int i, top, pstart, keep;
    char **matches = NULL;

    for (i = 0; i < start; i++) {   /* inside a string literal? then file names */
        if (quote && line[i] == '\\')
            i++;
        else if (line[i] == '"' || line[i] == '\'')
            quote = quote == 0 ? line[i] : quote == line[i] ? 0 : quote;
    }
    if (quote)
        return NULL;
    rl_attempted_completion_over = 1;
    /* the name path ends at the cursor: letters, digits, '_', '.', ':' */
    for (pstart = end; pstart > start; pstart--) {
        char c = line[pstart - 1];
        if (!(c == '_' || c == '.' || c == ':' || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            break;
    }
    path = line + pstart;
    for (dd = strstr(path, ".."); dd && dd < line + end; dd = strstr(path, ".."))
        path = dd + 2;   /* "x"..qd.st : the concatenation operator */
    while (path < line + end && (*path == '.' || *path == ':'))
        path++;
    if (path >= line + end ? 0 : (*path >= '0' && *path <= '9'))
        return NULL;
    keep = (int)(path - line) - start;   /* text before the path stays as typed */

    top = lua_gettop(L);
    if (!lua_checkstack(L, 8))
        return NULL;
    lua_pushcfunction(L, comp_collect);
    lua_pushlstring(L, path, (size_t)(line + end - path));
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
        size_t n = 0, plen, cut;
        const char *lastsep;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            n++;
            lua_pop(L, 1);
        }
        comp_list = calloc(n + 1, sizeof *comp_list);
        /* a match is the typed text up to the last '.'/':' of the path, then the key */
        lastsep = NULL;
        for (dd = path; dd < line + end; dd++)
            if (*dd == '.' || *dd == ':')
                lastsep = dd;
        cut = (size_t)keep + (lastsep ? (size_t)(lastsep - path) + 1 : 0);
        comp_n = comp_next = 0;
        lua_pushnil(L);
        while (comp_list && lua_next(L, -2)) {
            const char *k = lua_tolstring(L, -2, &plen);
            char *m = malloc(cut + plen + 1);
            lua_pop(L, 1);
            if (!m)
                continue;
            memcpy(m, text, cut);
            memcpy(m + cut, k, plen + 1);
            comp_list[comp_n++] = m;
        }
        rl_completion_append_character = '\0';
        if (comp_n > 0)
            matches = rl_completion_matches(text, comp_generator);
        comp_free();
    }
    lua_settop(L, top);
    return matches;
}

/* ------------------------------------------------------------------ reading */

/* A line from a non-terminal stdin, without its newline, built in a Lua buffer (so a
 * memory error cannot leak it). Returns 0 at end of input. */
static int push_plain_line(lua_State *L)
{
    luaL_Buffer b;
    int got = 0;
    luaL_buffinit(L, &b);
    for (;;) {
        char *p = luaL_prepbuffer(&b);
        size_t n;
        if (fgets(p, LUAL_BUFFERSIZE, stdin) == NULL)
            break;
        got = 1;
        n = strlen(p);
        if (n > 0 && p[n - 1] == '\n') {
            luaL_addsize(&b, n - 1);
            luaL_pushresult(&b);
            return 1;
        }
        luaL_addsize(&b, n);
    }
    luaL_pushresult(&b);
    if (!got) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;   /* last line without a newline */
}

/* Pushes the next line. Returns 1, 0 at end of input, -1 if Ctrl-C dropped it. */
static int pushline(lua_State *L, int firstline)
{
    char *line;
    int interrupted;
    if (!interactive)
        return push_plain_line(L);
    fflush(stdout);
    line = read_tty(firstline ? PROMPT : PROMPT2, &interrupted);
    if (interrupted) {
        fputc('\n', stdout);
        return -1;
    }
    if (line == NULL)
        return 0;
    lua_pushstring(L, line);
    free(line);
    return 1;
}

/* ------------------------------------------------------------------ compiling */

static int is_incomplete(lua_State *L)
{
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    size_t mlen = sizeof EOFMARK - 1;
    return msg && len >= mlen && strcmp(msg + len - mlen, EOFMARK) == 0;
}

/* Compiles the source on top of the stack, pushing the function or the error message.
 * "return <src>" first, so expressions print their values; unlike lua.c this is tried
 * on continued input too, so that "1 +" or "{" at the end of a line asks for more. */
static int compile(lua_State *L, int *incomplete)
{
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    const char *ret = lua_pushfstring(L, "return %s", src);
    int status = luaL_loadbuffer(L, ret, strlen(ret), CHUNKNAME);
    int ret_incomplete;
    if (status == LUA_OK) {
        lua_remove(L, -2);   /* the "return ..." text */
        return LUA_OK;
    }
    ret_incomplete = status == LUA_ERRSYNTAX && is_incomplete(L);
    lua_pop(L, 2);   /* its error and text */
    status = luaL_loadbuffer(L, src, len, CHUNKNAME);
    *incomplete = status == LUA_ERRSYNTAX && (ret_incomplete || is_incomplete(L));
    return status;
}

/* Replaces the first line on top of the stack by the compiled chunk (or its error),
 * reading continuation lines while the chunk is incomplete. Returns the status, or -1
 * if Ctrl-C dropped the input. At end of input inside a chunk, the chunk's syntax
 * error is the result (as in lua.c). */
/* The whole chunk goes into the history as one entry (readline keeps its newlines), so
 * a multi-line function comes back with one Up. */
static void remember_chunk(lua_State *L, int idx)
{
    if (interactive)
        history_remember(lua_tostring(L, idx));
}

/* A statement starting with "local" at the prompt would die with its line; as in
 * IPython, a top-level "local x = ..." / "local function f" defines a global instead, so
 * the value is there on the next line. Only plain names (no <const>/<close>). Rewrites
 * the source on top of the stack in place. */
static void unlocal(lua_State *L)
{
    const char *src = lua_tostring(L, -1);
    const char *p = src + strspn(src, " \t");
    const char *rest, *eq, *lt;
    if (strncmp(p, "local", 5) != 0 || !(p[5] == ' ' || p[5] == '\t'))
        return;
    rest = p + 5 + strspn(p + 5, " \t");
    if (strncmp(rest, "function", 8) == 0 && (rest[8] == ' ' || rest[8] == '\t')) {
        lua_pushstring(L, rest);
        lua_replace(L, -2);
        return;
    }
    eq = strchr(rest, '=');
    lt = strchr(rest, '<');
    if (lt && (!eq || lt < eq))
        return;
    if (eq) {
        lua_pushstring(L, rest);
    } else {
        /* "local x, y": only a plain list of names becomes "x, y = nil" */
        if (rest[strspn(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_, \t")])
            return;
        lua_pushfstring(L, "%s = nil", rest);
    }
    lua_replace(L, -2);
}

static int load_chunk(lua_State *L)
{
    for (;;) {
        int incomplete = 0, r;
        int status;
        lua_pushvalue(L, -1);   /* the source as typed, for the history */
        lua_insert(L, -2);
        unlocal(L);
        status = compile(L, &incomplete);   /* source, rewritten, fn | error */
        if (status == LUA_OK || !incomplete) {
            remember_chunk(L, -3);
            lua_remove(L, -2);   /* the rewritten source */
            lua_remove(L, -2);   /* the source */
            return status;
        }
        r = pushline(L, 0);   /* source, rewritten, error, line */
        if (r == 0) {
            remember_chunk(L, -3);
            lua_remove(L, -2);
            lua_remove(L, -2);
            return status;
        }
        if (r < 0) {
            remember_chunk(L, -3);
            return -1;
        }
        lua_remove(L, -2);   /* the error */
        lua_remove(L, -2);   /* the rewritten source */
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);    /* source .. "\n" .. line */
    }
}

/* ------------------------------------------------------------------ printing */

/* Prints its arguments like print does, but builds the whole line first, so that a
 * __tostring that raises leaves no half-printed line. */
static int print_values(lua_State *L)
{
    int n = lua_gettop(L), i, pretty;
    size_t len;
    const char *s;
    luaL_checkstack(L, 2 * n + 4, "too many results to print");
    /* tables through qd.pretty (nested, truncated); the rest as print shows them */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "qd.pretty");
    lua_call(L, 1, 1);
    pretty = lua_gettop(L);
    for (i = 1; i <= n; i++) {
        if (lua_type(L, i) == LUA_TTABLE) {
            lua_pushvalue(L, pretty);
            lua_pushvalue(L, i);
            lua_call(L, 1, 1);
        } else {
            luaL_tolstring(L, i, NULL);
        }
        if (i < n)
            lua_pushliteral(L, "\t");
    }
    lua_concat(L, 2 * n - 1);
    s = lua_tolstring(L, -1, &len);
    fwrite(s, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
}

static void print_results(lua_State *L, int base)
{
    int n = lua_gettop(L) - base;
    if (n <= 0)
        return;
    /* _ is the last value shown (the first of several) */
    lua_pushvalue(L, base + 1);
    lua_setglobal(L, "_");
    luaL_checkstack(L, 2, "too many results to print");
    lua_pushcfunction(L, print_values);
    lua_insert(L, base + 1);
    qdi_report(L, qdi_docall(L, n, 0));
}

/* ------------------------------------------------------------------ prompt commands */

/* "?name" -> help(name) (help(?) for "?" alone); "%time code" -> code, timed (returns 1).
 * Rewrites the line on top of the stack. */
static int magic(lua_State *L)
{
    const char *line = lua_tostring(L, -1);
    const char *p = line + strspn(line, " \t");
    if (p[0] == '?') {
        const char *name = p + 1 + strspn(p + 1, " \t");
        if (*name)
            lua_pushfstring(L, "help(%s)", name);
        else
            lua_pushliteral(L, "help()");
        lua_replace(L, -2);
        return 0;
    }
    if (strncmp(p, "%time", 5) == 0 && (p[5] == ' ' || p[5] == '\t' || p[5] == '\0')) {
        lua_pushstring(L, p + 5 + strspn(p + 5, " \t"));
        lua_replace(L, -2);
        return 1;
    }
    return 0;
}

static void fmt_seconds(double s, char *buf, size_t len)
{
    if (s < 1e-3)
        snprintf(buf, len, "%.1f us", s * 1e6);
    else if (s < 1)
        snprintf(buf, len, "%.2f ms", s * 1e3);
    else
        snprintf(buf, len, "%.3f s", s);
}

static void print_time(double wall, double cpu)
{
    char w[32], c[32];
    fmt_seconds(wall, w, sizeof w);
    fmt_seconds(cpu, c, sizeof c);
    printf("time: wall %s, cpu %s (all threads)\n", w, c);
    fflush(stdout);
}

/* ------------------------------------------------------------------ the loop */

void qdi_repl(lua_State *L)
{
    const char *progname = qdi_progname;
    int base = lua_gettop(L);
    struct sigaction old;
    int caught = 0;

    interactive = isatty(STDIN_FILENO);
    if (interactive) {
        rl_readline_name = "qd";     /* for $if qd in ~/.inputrc */
        rl_catch_signals = 0;        /* Ctrl-C is ours, see the top of the file */
        rl_instream = stdin;
        rl_outstream = stdout;
        rl_attempted_completion_function = comp_attempt;
        /* Not '.', ':' (name paths) nor '/', '-' (file names in strings). */
        rl_completer_word_break_characters = " \t\n\"'`@$><=;|&{(,[])}+*%^~#";
        comp_L = L;
        history_open();
        if (!qdi_sigint_ignored() && pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC) == 0) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = prompt_sigint;
            sigemptyset(&sa.sa_mask);
            sa.sa_flags = 0;   /* no SA_RESTART: select must return */
            sigaction(SIGINT, &sa, &old);   /* qdi_docall swaps it out while code runs */
            caught = 1;
        }
        printf("qd %s (Lua %s.%s) \xe2\x80\x94 help(obj) for docs, Ctrl-D to exit\n",
               QD_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR);
    }
    qdi_progname = NULL;   /* errors at the prompt are shown without "qd: " (lua.c) */

    for (;;) {
        int status, r, timed;
        lua_settop(L, base);
        r = pushline(L, 1);
        if (r == 0)
            break;
        if (r < 0)
            continue;
        timed = magic(L);
        status = load_chunk(L);
        if (status < 0)
            continue;
        if (status == LUA_OK) {
            struct timespec w0, w1;
            clock_t c0 = clock();
            clock_gettime(CLOCK_MONOTONIC, &w0);
            status = qdi_docall(L, 0, LUA_MULTRET);
            clock_gettime(CLOCK_MONOTONIC, &w1);
            if (timed)
                print_time((double)(w1.tv_sec - w0.tv_sec) + 1e-9 * (double)(w1.tv_nsec - w0.tv_nsec),
                           (double)(clock() - c0) / CLOCKS_PER_SEC);
            if (status == LUA_OK)
                print_results(L, base);
        }
        qdi_report(L, status);
    }
    lua_settop(L, base);
    qdi_progname = progname;

    if (interactive) {
        fputc('\n', stdout);   /* after Ctrl-D the shell prompt starts on a fresh line */
        fflush(stdout);
        history_close();
        if (caught)
            sigaction(SIGINT, &old, NULL);
        if (wake_pipe[0] >= 0) {
            close(wake_pipe[0]);
            close(wake_pipe[1]);
            wake_pipe[0] = wake_pipe[1] = -1;
        }
    }
}
