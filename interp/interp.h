/* interp.h — what main.c (command line, startup, running chunks) and repl.c (the
 * interactive prompt) share. Modelled on Lua's own lua.c. */
#ifndef QD_INTERP_H
#define QD_INTERP_H
#include <lua.h>

/* Name printed before error messages ("qd: file:line: ..."); the REPL sets it to NULL
 * while it runs, as lua.c does, because the prompt already says who is talking. */
extern const char *qdi_progname;

/* Calls the function below the narg arguments on top of the stack in protected mode,
 * under a message handler that appends a traceback, with Ctrl-C turned into the Lua
 * error "interrupted!" while it runs. Returns the lua_pcall status; on error the
 * message (with traceback) is on top of the stack. */
int qdi_docall(lua_State *L, int narg, int nres);

/* If status is an error, prints the message on top of the stack to stderr (prefixed by
 * qdi_progname) and pops it. Returns status. */
int qdi_report(lua_State *L, int status);

/* Prints msg on stderr, prefixed by pname when not NULL; stdout is flushed first so that
 * output and errors interleave in the order they happened. */
void qdi_message(const char *pname, const char *msg);

/* 1 if SIGINT was ignored when qd started (a background job of a non-interactive shell):
 * qd then leaves it ignored instead of catching it. */
int qdi_sigint_ignored(void);

/* Runs the read-eval-print loop on stdin until end of input. With a terminal: GNU
 * readline, history, prompts and a banner; otherwise lines are read plainly and no
 * prompt is printed. Errors in the entered code are reported and the loop goes on.
 * Raises only on memory errors. */
void qdi_repl(lua_State *L);

/* sandbox.c: replaces the functions of L's standard libraries that reach processes,
 * libraries and files by checked ones or nothing (qd --sandbox); require then loads only
 * modules found in libdirs. */
void qdi_sandbox_install(lua_State *L, const char *const *libdirs, int nlibdirs);
/* 1 and *code if the value at idx is the error object of os.exit under the sandbox */
int qdi_exit_code(lua_State *L, int idx, int *code);
/* os.exit as under the sandbox only (it ends the script through an error object, so the
 * run records close and the interpreter exits; qd on several MPI ranks uses it, so that a
 * rank leaving finalises MPI rather than vanishing) */
void qdi_install_exit(lua_State *L);

#endif
