/* lua_channel.c — qd.Channel: CPTP maps on k qubits (Kraus lists, checked at construction)
 * and the structured depolarizing family; constructors qd.channel.*, conversions to
 * Kraus / superoperator / Choi (qd.Matrix), composition (a * b = a o b: b first), tensor
 * products, and application: obj:apply(ch [, targets] ...) on DensityMatrix (exact, local;
 * see qd_channel.h) and on State / Ensemble (seeded trajectories). The numerics are in
 * channel.c; this file validates arguments and owns the buffers. */
#include "lua_util.h"
#include "qd_channel.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define QDL_CHANNEL "qd.Channel"
#define MAXD ((size_t)1 << QD_CH_MAX_QUBITS)
#define STR_(x) #x
#define STR(x) STR_(x)
#define KEXP "2^k x 2^k matrix with 1 <= k <= " STR(QD_CH_MAX_QUBITS)
#define SEXP "4^k x 4^k superoperator with 1 <= k <= " STR(QD_CH_MAX_QUBITS)

enum { CH_KRAUS = 0, CH_DEPOL = 1 };

typedef struct {
    int kind;        /* CH_KRAUS: Kraus list K; CH_DEPOL: (1-lambda) rho + lambda I/2^k (x) Tr */
    int k;           /* qubits; 0 = any number (register-wide depolarizing) */
    double lambda;   /* CH_DEPOL */
    double w0, w1;   /* CH_DEPOL with k > 0: Kraus weights of I and of each other Pauli string,
                        kept from the constructor's own parameter (p = 1 gives w0 = 0 exactly) */
    size_t m;        /* CH_KRAUS: number of operators */
    qd_c *K;         /* m blocks of d x d, column-major */
    size_t Kbytes;
    qd_c *S;         /* cached superoperator (built on first use), or NULL */
    size_t Sbytes;
    int freed;
    char name[40];   /* constructor name, "composition" or "tensor" */
    char desc[160];  /* "amplitude_damping(gamma=0.1)" */
} qdl_channel;

/* ------------------------------------------------------------------ objects */

static int typeerror(lua_State *L, int arg, const char *expected)
{
    const char *got = luaL_getmetafield(L, arg, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                        : luaL_typename(L, arg);
    return luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s", expected, got));
}

/* New channel userdata (valid and empty before anything can fail), pushed. For CH_KRAUS
 * the Kraus buffer (m operators on k qubits) is allocated, zeroed. */
static qdl_channel *newchannel(lua_State *L, int kind, int k, size_t m)
{
    qdl_channel *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->k = k;
    luaL_setmetatable(L, QDL_CHANNEL);
    if (kind == CH_KRAUS) {
        size_t dd = (size_t)1 << (2 * k), bytes;
        if (qd_mul_overflow(m, dd, &bytes) || qd_mul_overflow(bytes, sizeof(qd_c), &bytes))
            luaL_error(L, "not enough memory for %zu Kraus operators (size overflows)", m);
        char what[80];
        snprintf(what, sizeof what, "%zu Kraus operators on %d qubit%s", m, k, k == 1 ? "" : "s");
        c->K = qdL_alloc(L, bytes, 1, what);
        c->Kbytes = bytes;
        c->m = m;
    }
    return c;
}

static void channel_release(qdl_channel *c)
{
    qdL_release(c->K, c->Kbytes);
    qdL_release(c->S, c->Sbytes);
    c->K = c->S = NULL;
    c->Kbytes = c->Sbytes = 0;
    c->freed = 1;
}

static qdl_channel *checkchannel(lua_State *L, int idx)
{
    qdl_channel *c = luaL_testudata(L, idx, QDL_CHANNEL);
    if (!c)
        typeerror(L, idx, QDL_CHANNEL);
    if (c->freed)
        luaL_argerror(L, idx, "qd.Channel has been freed");
    return c;
}

static void setdesc(qdl_channel *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void setdesc(qdl_channel *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->desc, sizeof c->desc, fmt, ap);
    va_end(ap);
    /* the name is the constructor's: the description up to '(' */
    size_t len = strcspn(c->desc, "(");
    if (len >= sizeof c->name)
        len = sizeof c->name - 1;
    memcpy(c->name, c->desc, len);
    c->name[len] = '\0';
}

/* Kraus operators of any channel with a fixed size (CH_DEPOL: its 4^k Pauli strings).
 * For CH_DEPOL the list is a scratch userdata PUSHED on the stack; for CH_KRAUS nothing
 * is pushed. arg: the channel's argument position for error messages. */
static const qd_c *kraus_of(lua_State *L, int arg, qdl_channel *c, size_t *m, int *pushed)
{
    *pushed = 0;
    if (c->kind == CH_KRAUS) {
        *m = c->m;
        return c->K;
    }
    if (c->k == 0)
        luaL_argerror(L, arg, "channel of fixed size expected (global_depolarizing without n= acts on any number of qubits; give n=)");
    if (c->k > QD_CH_MAX_QUBITS)
        luaL_argerror(L, arg, lua_pushfstring(L, "channel on at most %d qubits expected for an explicit Kraus list, got %d",
                                              QD_CH_MAX_QUBITS, c->k));
    size_t np = (size_t)1 << (2 * c->k);
    size_t bytes = np * np * sizeof(qd_c);
    qd_c *K = lua_newuserdatauv(L, bytes, 0);
    qd_pauli_kraus(c->k, c->w0, c->w1, K);
    *pushed = 1;
    *m = np;
    return K;
}

/* superoperator of a CH_KRAUS channel, cached */
static const qd_c *superop_of(lua_State *L, qdl_channel *c)
{
    if (!c->S) {
        size_t D = (size_t)1 << (2 * c->k), bytes = D * D * sizeof(qd_c);
        qd_c *S = qdL_alloc(L, bytes, 0, "a superoperator");
        qd_kraus_to_superop(c->K, c->m, c->k, S);
        c->S = S;
        c->Sbytes = bytes;
    }
    return c->S;
}

/* ------------------------------------------------------------------ option helpers */

/* pushes x formatted with %.14g ("2", "0.3", "-1", "nan"), returns the string */
static const char *numstr(lua_State *L, double x)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.14g", x);
    return lua_pushstring(L, buf);
}

static void needtable(lua_State *L, int arg, const char *example)
{
    if (!lua_istable(L, arg)) {
        if (lua_isnoneornil(L, arg))
            luaL_argerror(L, arg, lua_pushfstring(L, "options table %s expected, got no value", example));
        typeerror(L, arg, lua_pushfstring(L, "options table %s", example));
    }
}

/* number option `key` in [lo, hi]; def used when absent and !required */
/* number of qubits option n (1..maxq), def when absent */
static int optn(lua_State *L, int arg, int maxq, int def)
{
    int t = lua_getfield(L, arg, "n");
    int n = def;
    if (t != LUA_TNIL) {
        int isint = 0;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (!isint || v < 1 || v > maxq)
            luaL_argerror(L, arg, lua_pushfstring(L, "option 'n' (number of qubits 1..%d) expected, got %s",
                                                  maxq, isint ? lua_pushfstring(L, "%I", (LUAI_UACINT)v)
                                                              : luaL_tolstring(L, -1, NULL)));
        n = (int)v;
    }
    lua_pop(L, 1);
    return n;
}

/* options table at arg with only {tol=}; returns the tolerance */
static double opttol(lua_State *L, int arg)
{
    static const char *const opts[] = {"tol", NULL};
    qdL_checkoptions(L, arg, opts);
    if (lua_isnoneornil(L, arg))
        return QD_CH_TOL;
    int t = lua_getfield(L, arg, "tol");
    double tol = QD_CH_TOL;
    if (t != LUA_TNIL) {
        tol = lua_tonumber(L, -1);
        if (t != LUA_TNUMBER || !(tol > 0 && tol < 1))
            luaL_argerror(L, arg, lua_pushfstring(L, "option 'tol' (a number in (0, 1)) expected, got %s",
                                                  luaL_tolstring(L, -1, NULL)));
    }
    lua_pop(L, 1);
    return tol;
}

static int log2_exact(size_t d)
{
    if (d == 0 || (d & (d - 1)))
        return -1;
    int n = 0;
    while (((size_t)1 << n) < d)
        n++;
    return n;
}

/* Square complex matrix at stack index idx (qd.Matrix or a table of rows), reported as
 * `label` of argument `arg`. Writes a column-major copy into a scratch userdata PUSHED on
 * the stack; returns the dimension. */
static void toolarge(lua_State *L, int arg, const char *label, const char *expected, size_t d)
{
    luaL_argerror(L, arg, lua_pushfstring(L, "%s: %s expected, got %dx%d", label, expected,
                                          (int)(d < 100000 ? d : 100000), (int)(d < 100000 ? d : 100000)));
}

/* (expected: what a too-large matrix is told it should be, checked before copying) */
static size_t readmatrix(lua_State *L, int idx, int arg, const char *label, size_t maxd,
                         const char *expected, qd_c **out)
{
    idx = lua_absindex(L, idx);
    qdl_array *A = luaL_testudata(L, idx, QDL_MATRIX);
    if (!A)
        A = luaL_testudata(L, idx, QDL_VECTOR);
    if (A) {
        if (A->freed)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: qd.Matrix has been freed", label));
        if (A->rows != A->cols)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: square matrix expected, got %dx%d", label,
                                                  (int)A->rows, (int)A->cols));
        size_t d = A->rows;
        if (d > maxd)
            toolarge(L, arg, label, expected, d);
        qd_c *m = lua_newuserdatauv(L, sizeof(qd_c) * d * d, 0);
        for (size_t i = 0; i < d * d; i++) {
            m[i] = qdL_array_get(A, i);
            if (!isfinite(creal(m[i])) || !isfinite(cimag(m[i])))
                luaL_argerror(L, arg, lua_pushfstring(L, "%s: finite entries expected", label));
        }
        *out = m;
        return d;
    }
    if (!lua_istable(L, idx)) {
        const char *got = luaL_getmetafield(L, idx, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, idx);
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: matrix (qd.Matrix or table of rows) expected, got %s",
                                              label, got));
    }
    lua_Integer d = luaL_len(L, idx);
    if (d < 1)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: non-empty square matrix expected", label));
    if ((size_t)d > maxd)
        toolarge(L, arg, label, expected, (size_t)d);
    qd_c *m = lua_newuserdatauv(L, sizeof(qd_c) * (size_t)(d * d), 0);
    for (lua_Integer r = 1; r <= d; r++) {
        if (lua_geti(L, idx, r) != LUA_TTABLE || luaL_len(L, -1) != d)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: square matrix expected (row %d of %d does not have %d entries)",
                                                  label, (int)r, (int)d, (int)d));
        for (lua_Integer c = 1; c <= d; c++) {
            lua_geti(L, -1, c);
            qd_c z;
            if (!qdL_tocomplex(L, -1, &z))
                luaL_argerror(L, arg, lua_pushfstring(L, "%s: number or {re, im} expected at [%d][%d]",
                                                      label, (int)r, (int)c));
            m[(r - 1) + (c - 1) * d] = z;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    for (lua_Integer i = 0; i < d * d; i++)
        if (!isfinite(creal(m[i])) || !isfinite(cimag(m[i])))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: finite entries expected", label));
    *out = m;
    return (size_t)d;
}

/* Checks trace preservation of the channel's Kraus list (tolerance tol on the Frobenius
 * norm), raising on argument arg. */
static void check_tp(lua_State *L, int arg, qdl_channel *c, double tol, const char *what)
{
    double dev = qd_kraus_tp_dev(c->K, c->m, c->k);
    if (!(dev <= tol))
        luaL_argerror(L, arg, lua_pushfstring(L, "%s expected: ||sum K^dagger K - I||_F = %s > tol %s", what,
                                              numstr(L, dev), numstr(L, tol)));
}

/* a channel with m Kraus operators on 1 qubit given as column-major 2x2 arrays */
static qdl_channel *kraus1(lua_State *L, size_t m, const qd_c (*ops)[4])
{
    qdl_channel *c = newchannel(L, CH_KRAUS, 1, m);
    for (size_t i = 0; i < m; i++)
        memcpy(c->K + 4 * i, ops[i], sizeof(qd_c) * 4);
    return c;
}

/* ------------------------------------------------------------------ constructors */

/* qd.channel.depolarizing{p= [, n=1]}: (1-p) rho + p/(4^n-1) sum_{P != I} P rho P */
static int l_depolarizing(lua_State *L)
{
    qdL_checknargs(L, 1);
    needtable(L, 1, "{p=}");
    static const char *const opts[] = {"p", "n", NULL};
    qdL_checkoptions(L, 1, opts);
    double p = qdL_optnum(L, 1, "p", 0, 0, 1, QDL_REQUIRED);
    int n = optn(L, 1, QD_MAX_QUBITS, 1);
    qdl_channel *c = newchannel(L, CH_DEPOL, n, 0);
    c->lambda = p / (1 - ldexp(1.0, -2 * n));   /* p 4^n / (4^n - 1) */
    c->w0 = 1 - p;
    c->w1 = p / (ldexp(1.0, 2 * n) - 1);
    if (n == 1)
        setdesc(c, "depolarizing(p=%.6g)", p);
    else
        setdesc(c, "depolarizing(p=%.6g, n=%d)", p, n);
    return 1;
}

/* qd.channel.global_depolarizing{lambda= [, n=]}: (1-lambda) rho + lambda I/d */
static int l_global_depolarizing(lua_State *L)
{
    qdL_checknargs(L, 1);
    needtable(L, 1, "{lambda=}");
    static const char *const opts[] = {"lambda", "n", NULL};
    qdL_checkoptions(L, 1, opts);
    double lam = qdL_optnum(L, 1, "lambda", 0, 0, 1, QDL_REQUIRED);
    int n = optn(L, 1, QD_MAX_QUBITS, 0);
    qdl_channel *c = newchannel(L, CH_DEPOL, n, 0);
    c->lambda = lam;
    c->w1 = ldexp(lam, -2 * n);
    c->w0 = 1 - lam + c->w1;
    if (n == 0)
        setdesc(c, "global_depolarizing(lambda=%.6g)", lam);
    else
        setdesc(c, "global_depolarizing(lambda=%.6g, n=%d)", lam, n);
    return 1;
}

/* qd.channel.dephasing{p=}: (1-p) rho + p Z rho Z */
static int l_dephasing(lua_State *L)
{
    qdL_checknargs(L, 1);
    needtable(L, 1, "{p=}");
    static const char *const opts[] = {"p", NULL};
    qdL_checkoptions(L, 1, opts);
    double p = qdL_optnum(L, 1, "p", 0, 0, 1, QDL_REQUIRED);
    double a = sqrt(1 - p), b = sqrt(p);
    const qd_c ops[2][4] = {{a, 0, 0, a}, {b, 0, 0, -b}};
    qdl_channel *c = kraus1(L, 2, ops);
    setdesc(c, "dephasing(p=%.6g)", p);
    return 1;
}

/* qd.channel.amplitude_damping{gamma=}: K0 = [[1,0],[0,sqrt(1-g)]], K1 = [[0,sqrt(g)],[0,0]] */
static int l_amplitude_damping(lua_State *L)
{
    qdL_checknargs(L, 1);
    needtable(L, 1, "{gamma=}");
    static const char *const opts[] = {"gamma", NULL};
    qdL_checkoptions(L, 1, opts);
    double g = qdL_optnum(L, 1, "gamma", 0, 0, 1, QDL_REQUIRED);
    const qd_c ops[2][4] = {{1, 0, 0, sqrt(1 - g)}, {0, 0, sqrt(g), 0}};
    qdl_channel *c = kraus1(L, 2, ops);
    setdesc(c, "amplitude_damping(gamma=%.6g)", g);
    return 1;
}

/* qd.channel.generalized_amplitude_damping{gamma=, p=} (Nielsen & Chuang 8.3.5): fixed
 * point p|0><0| + (1-p)|1><1|; p = 1 is amplitude damping. */
static int l_gad(lua_State *L)
{
    qdL_checknargs(L, 1);
    needtable(L, 1, "{gamma=, p=}");
    static const char *const opts[] = {"gamma", "p", NULL};
    qdL_checkoptions(L, 1, opts);
    double g = qdL_optnum(L, 1, "gamma", 0, 0, 1, QDL_REQUIRED);
    double p = qdL_optnum(L, 1, "p", 0, 0, 1, QDL_REQUIRED);
    double sp = sqrt(p), sq = sqrt(1 - p), sg = sqrt(g), s1 = sqrt(1 - g);
    const qd_c ops[4][4] = {{sp, 0, 0, sp * s1},
                            {0, 0, sp * sg, 0},
                            {sq * s1, 0, 0, sq},
                            {0, sq * sg, 0, 0}};
    qdl_channel *c = kraus1(L, 4, ops);
    setdesc(c, "generalized_amplitude_damping(gamma=%.6g, p=%.6g)", g, p);
    return 1;
}

/* qd.channel.pauli{px=, py=, pz=}: (1-px-py-pz) rho + px X rho X + py Y rho Y + pz Z rho Z */
static int l_pauli(lua_State *L)
{
    qdL_checknargs(L, 1);
    needtable(L, 1, "{px=, py=, pz=}");
    static const char *const opts[] = {"px", "py", "pz", NULL};
    qdL_checkoptions(L, 1, opts);
    double px = qdL_optnum(L, 1, "px", 0, 0, 1, 0), py = qdL_optnum(L, 1, "py", 0, 0, 1, 0),
           pz = qdL_optnum(L, 1, "pz", 0, 0, 1, 0);
    double p0 = 1 - px - py - pz;
    if (p0 < -1e-15)
        return luaL_argerror(L, 1, lua_pushfstring(L, "px + py + pz <= 1 expected, got %s", numstr(L, px + py + pz)));
    if (p0 < 0)
        p0 = 0;
    double a = sqrt(p0), x = sqrt(px), y = sqrt(py), z = sqrt(pz);
    const qd_c ops[4][4] = {{a, 0, 0, a}, {0, x, x, 0}, {0, I * y, -I * y, 0}, {z, 0, 0, -z}};
    qdl_channel *c = kraus1(L, 4, ops);
    setdesc(c, "pauli(px=%.6g, py=%.6g, pz=%.6g)", px, py, pz);
    return 1;
}

/* qd.channel.reset{[n=1]}: every state -> |0..0><0..0|; Kraus |0..0><j|, j = 0..2^n-1 */
static int l_reset(lua_State *L)
{
    qdL_checknargs(L, 1);
    static const char *const opts[] = {"n", NULL};
    qdL_checkoptions(L, 1, opts);
    int n = lua_isnoneornil(L, 1) ? 1 : optn(L, 1, QD_CH_MAX_QUBITS, 1);
    size_t d = (size_t)1 << n;
    qdl_channel *c = newchannel(L, CH_KRAUS, n, d);
    for (size_t j = 0; j < d; j++)
        c->K[j * d * d + j * d] = 1;   /* row 0, column j */
    if (n == 1)
        setdesc(c, "reset");
    else
        setdesc(c, "reset(n=%d)", n);
    return 1;
}

static int checkdim(lua_State *L, int arg, size_t d, const char *label)
{
    int k = log2_exact(d);
    if (k < 1 || k > QD_CH_MAX_QUBITS)
        toolarge(L, arg, label, KEXP, d);
    return k;
}

/* qd.channel.unitary(U [, {tol=}]) */
static int l_unitary(lua_State *L)
{
    qdL_checknargs(L, 2);
    double tol = opttol(L, 2);
    qd_c *U;
    size_t d = readmatrix(L, 1, 1, "U", MAXD, KEXP, &U);
    int k = checkdim(L, 1, d, "U");
    qdl_channel *c = newchannel(L, CH_KRAUS, k, 1);
    memcpy(c->K, U, sizeof(qd_c) * d * d);
    check_tp(L, 1, c, tol, "unitary matrix (U^dagger U = I)");
    setdesc(c, "unitary");
    return 1;
}

/* qd.channel.kraus{K1, K2, ...} [, {tol=}] */
static int l_kraus(lua_State *L)
{
    qdL_checknargs(L, 2);
    double tol = opttol(L, 2);
    if (!lua_istable(L, 1))
        return typeerror(L, 1, "table of Kraus operators {K1, K2, ...}");
    lua_Integer m = luaL_len(L, 1);
    /* anything but 1..m in the table is a mistake */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        int isint = 0;
        lua_Integer i = lua_tointegerx(L, -1, &isint);
        if (lua_type(L, -1) != LUA_TNUMBER || !isint || i < 1 || i > m)
            return luaL_argerror(L, 1, lua_pushfstring(L, "list of Kraus operators expected, got key '%s'",
                                                       luaL_tolstring(L, -1, NULL)));
    }
    if (m < 1)
        return luaL_argerror(L, 1, "non-empty list of Kraus operators expected");
    if (m > ((lua_Integer)1 << 20))
        return luaL_argerror(L, 1, "at most 2^20 Kraus operators expected");
    /* a single matrix given as rows (kraus{{1,0},{0,1}}) is a common slip */
    if (lua_geti(L, 1, 1) == LUA_TTABLE) {
        int t = lua_geti(L, -1, 1);
        if (t == LUA_TNUMBER)
            return luaL_argerror(L, 1, "table of Kraus operators expected, got a single matrix (write kraus{K})");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    qd_c *K1;
    char label[48];
    snprintf(label, sizeof label, "Kraus operator 1");
    lua_geti(L, 1, 1);
    size_t d = readmatrix(L, -1, 1, label, MAXD, KEXP, &K1);
    int k = checkdim(L, 1, d, label);
    qdl_channel *c = newchannel(L, CH_KRAUS, k, (size_t)m);
    int ci = lua_gettop(L);
    for (lua_Integer i = 1; i <= m; i++) {
        snprintf(label, sizeof label, "Kraus operator %d", (int)i);
        lua_geti(L, 1, i);
        qd_c *Ki;
        size_t di = readmatrix(L, -1, 1, label, MAXD, KEXP, &Ki);
        if (di != d)
            return luaL_argerror(L, 1, lua_pushfstring(L, "Kraus operators of equal size expected "
                                                          "(operator %d is %dx%d, operator 1 is %dx%d)",
                                                       (int)i, (int)di, (int)di, (int)d, (int)d));
        memcpy(c->K + (size_t)(i - 1) * d * d, Ki, sizeof(qd_c) * d * d);
        lua_pop(L, 2);
    }
    check_tp(L, 1, c, tol, "trace-preserving Kraus operators");
    setdesc(c, "kraus(%d operator%s)", (int)m, m == 1 ? "" : "s");
    lua_pushvalue(L, ci);
    return 1;
}

/* qd.channel.superop(S [, {tol=}]): S (4^k x 4^k) acts on vec(rho) (column stacking) */
static int l_superop(lua_State *L)
{
    qdL_checknargs(L, 2);
    double tol = opttol(L, 2);
    qd_c *S;
    size_t D = readmatrix(L, 1, 1, "S", MAXD * MAXD, SEXP, &S);
    int k2 = log2_exact(D);
    if (k2 < 2 || (k2 & 1) || k2 / 2 > QD_CH_MAX_QUBITS)
        toolarge(L, 1, "S", SEXP, D);
    int k = k2 / 2;
    double herm, tp, mineig;
    qd_err e;
    if (qd_superop_check(S, k, &herm, &tp, &mineig, &e) != QD_OK)
        return qdL_raise(L, &e);
    if (!(herm <= tol))
        return luaL_argerror(L, 1, lua_pushfstring(L, "Hermiticity-preserving superoperator "
                                                      "expected: ||J - J^dagger||_F = %s > tol %s (J the Choi matrix)",
                                                   numstr(L, herm), numstr(L, tol)));
    if (!(tp <= tol))
        return luaL_argerror(L, 1, lua_pushfstring(L, "trace-preserving superoperator expected: ||Tr_out J - I||_F = %s > tol %s",
                                                   numstr(L, tp), numstr(L, tol)));
    if (!(mineig >= -tol))
        return luaL_argerror(L, 1, lua_pushfstring(L, "completely positive superoperator expected: Choi matrix eigenvalue %s < -tol",
                                                   numstr(L, mineig)));
    size_t dd = D;   /* d^2 */
    qd_c *J = lua_newuserdatauv(L, sizeof(qd_c) * dd * dd, 0);
    qd_choi_reshuffle(S, k, J);
    qd_c *Kt = lua_newuserdatauv(L, sizeof(qd_c) * dd * dd, 0);
    size_t m = 0;
    /* eigenvalues <= tol are dropped (they are rounding or allowed negativity) */
    if (qd_choi_to_kraus(J, k, tol, Kt, &m, &e) != QD_OK)
        return qdL_raise(L, &e);
    qdl_channel *c = newchannel(L, CH_KRAUS, k, m);
    memcpy(c->K, Kt, sizeof(qd_c) * m * dd);
    setdesc(c, "superop");
    return 1;
}

/* ------------------------------------------------------------------ methods */

/* K list of c (any kind, fixed size) compressed to at most d^2 operators if longer:
 * pushes a new channel with the given description. */
static qdl_channel *from_kraus(lua_State *L, int k, const qd_c *K, size_t m)
{
    size_t D = (size_t)1 << (2 * k);
    if (m <= D) {
        qdl_channel *c = newchannel(L, CH_KRAUS, k, m);
        memcpy(c->K, K, sizeof(qd_c) * m * D);
        return c;
    }
    /* more operators than needed: a minimal list from the Choi eigen-decomposition
     * (eigenvalues below 1e-14 times J's largest diagonal entry dropped: rounding noise) */
    qd_c *J = lua_newuserdatauv(L, sizeof(qd_c) * D * D, 0);
    qd_kraus_to_choi(K, m, k, J);
    double mx = 0;
    for (size_t i = 0; i < D; i++)
        mx = creal(J[i + i * D]) > mx ? creal(J[i + i * D]) : mx;
    qd_c *Kt = lua_newuserdatauv(L, sizeof(qd_c) * D * D, 0);
    size_t mm = 0;
    qd_err e;
    if (qd_choi_to_kraus(J, k, 1e-14 * mx, Kt, &mm, &e) != QD_OK)
        qdL_raise(L, &e);
    qdl_channel *c = newchannel(L, CH_KRAUS, k, mm);
    memcpy(c->K, Kt, sizeof(qd_c) * mm * D);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return c;
}

/* a:compose(b) = a * b: the map rho -> a(b(rho)) */
static int m_compose(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_channel *a = checkchannel(L, 1), *b = checkchannel(L, 2);
    if (a->kind == CH_DEPOL && b->kind == CH_DEPOL && a->k == b->k) {
        /* D_la o D_lb = D_l with 1 - l = (1 - la)(1 - lb): stays structured */
        qdl_channel *c = newchannel(L, CH_DEPOL, a->k, 0);
        c->lambda = 1 - (1 - a->lambda) * (1 - b->lambda);
        c->w1 = ldexp(c->lambda, -2 * a->k);
        c->w0 = 1 - c->lambda + c->w1;
        if (a->k == 0)
            setdesc(c, "global_depolarizing(lambda=%.6g)", c->lambda);
        else
            setdesc(c, "global_depolarizing(lambda=%.6g, n=%d)", c->lambda, a->k);
        return 1;
    }
    size_t ma, mb;
    int pa, pb;
    const qd_c *Ka = kraus_of(L, 1, a, &ma, &pa);
    const qd_c *Kb = kraus_of(L, 2, b, &mb, &pb);
    if (a->k != b->k)
        return luaL_argerror(L, 2, lua_pushfstring(L, "%d-qubit channel expected (composition needs equal sizes), got %d qubits",
                                                   a->k, b->k));
    int k = a->k;
    size_t D = (size_t)1 << (2 * k), prod;
    if (!qd_mul_overflow(ma, mb, &prod) && prod <= D) {
        qd_c *out = lua_newuserdatauv(L, sizeof(qd_c) * prod * D, 0);
        qd_kraus_compose(Ka, ma, Kb, mb, k, out);
        from_kraus(L, k, out, prod);
    } else {
        /* long lists: through the superoperators, S = S_a S_b, then a minimal Kraus list */
        qd_c *Sa = lua_newuserdatauv(L, sizeof(qd_c) * D * D, 0);
        qd_c *Sb = lua_newuserdatauv(L, sizeof(qd_c) * D * D, 0);
        qd_c *S = lua_newuserdatauv(L, sizeof(qd_c) * D * D, 0);
        qd_kraus_to_superop(Ka, ma, k, Sa);
        qd_kraus_to_superop(Kb, mb, k, Sb);
        qd_la_zgemm('N', 'N', D, D, D, 1.0, Sa, D, Sb, D, 0.0, S, D);
        qd_c *J = Sa;
        qd_choi_reshuffle(S, k, J);
        double mx = 0;
        for (size_t i = 0; i < D; i++)
            mx = creal(J[i + i * D]) > mx ? creal(J[i + i * D]) : mx;
        size_t mm = 0;
        qd_err e;
        if (qd_choi_to_kraus(J, k, 1e-14 * mx, S, &mm, &e) != QD_OK)
            return qdL_raise(L, &e);
        from_kraus(L, k, S, mm);
    }
    qdl_channel *c = lua_touserdata(L, -1);
    setdesc(c, "%s o %s", a->desc, b->desc);
    strcpy(c->name, "composition");
    return 1;
}

/* a:tensor(b): a on the first (most significant) qubits, b on the next */
static int m_tensor(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_channel *a = checkchannel(L, 1), *b = checkchannel(L, 2);
    size_t ma, mb;
    int pa, pb;
    const qd_c *Ka = kraus_of(L, 1, a, &ma, &pa);
    const qd_c *Kb = kraus_of(L, 2, b, &mb, &pb);
    int k = a->k + b->k;
    if (k > QD_CH_MAX_QUBITS)
        return luaL_argerror(L, 2, lua_pushfstring(L, "tensor product on at most %d qubits expected, got %d + %d",
                                                   QD_CH_MAX_QUBITS, a->k, b->k));
    size_t D = (size_t)1 << (2 * k), prod;
    if (qd_mul_overflow(ma, mb, &prod) || prod > ((size_t)1 << 20))
        return luaL_error(L, "tensor product: too many Kraus operators (%d x %d)", (int)ma, (int)mb);
    qd_c *out = lua_newuserdatauv(L, sizeof(qd_c) * prod * D, 0);
    qd_kraus_tensor(Ka, ma, a->k, Kb, mb, b->k, out);
    qdl_channel *c = from_kraus(L, k, out, prod);
    setdesc(c, "%s (x) %s", a->desc, b->desc);
    strcpy(c->name, "tensor");
    return 1;
}

/* ch:kraus() -> {qd.Matrix, ...} */
static int m_kraus(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_channel *c = checkchannel(L, 1);
    size_t m;
    int pushed;
    const qd_c *K = kraus_of(L, 1, c, &m, &pushed);
    size_t d = (size_t)1 << c->k, dd = d * d;
    lua_createtable(L, (int)m, 0);
    for (size_t i = 0; i < m; i++) {
        qdl_array *A = qdL_newarray(L, d, d, 1, 0);
        memcpy(A->data, K + i * dd, sizeof(qd_c) * dd);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ch:superop() / ch:choi() -> 4^k x 4^k qd.Matrix */
static int conv(lua_State *L, int choi)
{
    qdL_checknargs(L, 1);
    qdl_channel *c = checkchannel(L, 1);
    size_t m;
    int pushed;
    const qd_c *K = kraus_of(L, 1, c, &m, &pushed);
    size_t D = (size_t)1 << (2 * c->k);
    qdl_array *A = qdL_newarray(L, D, D, 1, 0);
    if (choi)
        qd_kraus_to_choi(K, m, c->k, A->data);
    else if (c->kind == CH_KRAUS)
        memcpy(A->data, superop_of(L, c), sizeof(qd_c) * D * D);
    else
        qd_kraus_to_superop(K, m, c->k, A->data);
    return 1;
}

static int m_superop(lua_State *L)
{
    return conv(L, 0);
}

static int m_choi(lua_State *L)
{
    return conv(L, 1);
}

/* ch:is_cptp([tol]) -> boolean, deviation ||sum K^dagger K - I||_F */
static int m_is_cptp(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_channel *c = checkchannel(L, 1);
    double tol = QD_CH_TOL;
    if (!lua_isnoneornil(L, 2)) {
        tol = luaL_checknumber(L, 2);
        if (!(tol > 0))
            return luaL_argerror(L, 2, "tolerance > 0 expected");
    }
    double dev = 0;
    if (c->kind == CH_KRAUS)
        dev = qd_kraus_tp_dev(c->K, c->m, c->k);
    /* structured depolarizing: CPTP by construction (lambda in [0, 4^k/(4^k-1)]) */
    lua_pushboolean(L, dev <= tol);
    lua_pushnumber(L, dev);
    return 2;
}

static int m_free(lua_State *L)
{
    qdL_checknargs(L, 1);
    qdl_channel *c = luaL_testudata(L, 1, QDL_CHANNEL);
    if (!c)
        return typeerror(L, 1, QDL_CHANNEL);
    channel_release(c);
    return 0;
}

static int ch_gc(lua_State *L)
{
    channel_release(luaL_checkudata(L, 1, QDL_CHANNEL));
    return 0;
}

static int ch_tostring(lua_State *L)
{
    qdl_channel *c = luaL_checkudata(L, 1, QDL_CHANNEL);
    if (c->freed) {
        lua_pushliteral(L, "qd.Channel (freed)");
        return 1;
    }
    if (c->kind == CH_DEPOL && c->k == 0)
        lua_pushfstring(L, "qd.Channel(%s, any number of qubits)", c->desc);
    else if (c->kind == CH_DEPOL)
        lua_pushfstring(L, "qd.Channel(%s, %d qubit%s, %s Kraus operators)", c->desc, c->k,
                        c->k == 1 ? "" : "s", c->k <= 31 ? lua_pushfstring(L, "4^%d", c->k) : "4^n");
    else
        lua_pushfstring(L, "qd.Channel(%s, %d qubit%s, %d Kraus operator%s)", c->desc, c->k,
                        c->k == 1 ? "" : "s", (int)c->m, c->m == 1 ? "" : "s");
    return 1;
}

static int ch_index(lua_State *L)
{
    qdl_channel *c = luaL_checkudata(L, 1, QDL_CHANNEL);
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *key = lua_tostring(L, 2);
        if (strcmp(key, "n") == 0 || strcmp(key, "nqubits") == 0) {
            if (c->k > 0)
                lua_pushinteger(L, c->k);
            else
                lua_pushnil(L);
            return 1;
        }
        if (strcmp(key, "nkraus") == 0) {
            if (c->kind == CH_KRAUS)
                lua_pushinteger(L, (lua_Integer)c->m);
            else if (c->k > 0 && c->k <= 31)
                lua_pushinteger(L, (lua_Integer)1 << (2 * c->k));
            else
                lua_pushnil(L);
            return 1;
        }
        if (strcmp(key, "name") == 0) {
            lua_pushstring(L, c->name);
            return 1;
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

/* ------------------------------------------------------------------ application */

/* Applies channel (stack arg ci) to register (arg ri); targets at arg ti, then
 * [rng] [options] for State / Ensemble. Leaves the register (and, if asked, the branches)
 * as results. */
static int do_apply(lua_State *L, int ri, int ci, int ti)
{
    qdl_reg *r = qdL_checkreg(L, ri);
    qdl_channel *c = checkchannel(L, ci);
    int n = r->n;
    if (c->k > n)
        return luaL_argerror(L, ci, lua_pushfstring(L, "channel on at most %d qubit%s expected for a %d-qubit %s, got %d qubits",
                                                    n, n == 1 ? "" : "s", n, qdL_kindname(r->kind), c->k));
    int qs[QD_MAX_QUBITS], k;
    if (lua_isnoneornil(L, ti)) {
        if (c->k != 0 && c->k != n)
            return luaL_argerror(L, ti, lua_pushfstring(L, "targets for a %d-qubit channel expected, got none", c->k));
        k = n;
        for (int q = 0; q < n; q++)
            qs[q] = q;
    } else {
        if (lua_istable(L, ti) && c->k > 0 && luaL_len(L, ti) != c->k)
            return luaL_argerror(L, ti, lua_pushfstring(L, "targets for a %d-qubit channel expected, got %d target%s",
                                                        c->k, (int)luaL_len(L, ti), luaL_len(L, ti) == 1 ? "" : "s"));
        k = qdL_checkqubits(L, ti, n, qs, 0);
        if (c->k > 0 && k != c->k)
            return luaL_argerror(L, ti, lua_pushfstring(L, "targets for a %d-qubit channel expected, got %d target%s",
                                                        c->k, k, k == 1 ? "" : "s"));
    }
    qd_err e;
    if (r->kind == QDL_K_DM) {
        if (lua_gettop(L) > ti)
            return luaL_argerror(L, ti + 1, "no further arguments expected (a qd.DensityMatrix is "
                                            "transformed exactly; rng and options are for qd.State and qd.Ensemble)");
        qd_status st;
        if (c->kind == CH_DEPOL) {
            st = qd_depol_apply_dm(r->a, n, qs, k, c->lambda, &e);
        } else {
            qd_ch_method meth = qd_channel_method(c->m, c->k);
            const qd_c *S = meth == QD_CH_SUPEROP ? superop_of(L, c) : NULL;
            st = qd_channel_apply_dm(r->a, n, qs, k, c->K, c->m, S, meth, &e);
        }
        if (st != QD_OK)
            return qdL_raise(L, &e);
        lua_pushvalue(L, ri);
        return 1;
    }
    /* State / Ensemble: [rng] [options] */
    int oa;
    qd_rng *rng = qdL_rng_opts(L, ti + 1, &oa);
    qdL_checknargs(L, oa);
    static const char *const opts[] = {"branches", NULL};
    qdL_checkoptions(L, oa, opts);
    int want = qdL_optbool(L, oa, "branches", 0);
    size_t N = r->count;
    size_t *br = want ? lua_newuserdatauv(L, sizeof(size_t) * N, 0) : NULL;
    if (want && c->kind == CH_DEPOL && k > 31)
        return luaL_argerror(L, oa, "branches of a Pauli channel on more than 31 qubits do not fit in an integer");
    qd_rng base = qd_rng_split(rng);
    qd_status st;
    if (c->kind == CH_DEPOL)
        st = qd_depol_apply_traj(r->a, n, N, qs, k, c->lambda, &base, br, &e);
    else
        st = qd_channel_apply_traj(r->a, n, N, qs, k, c->K, c->m, &base, br, &e);
    if (st != QD_OK)
        return qdL_raise(L, &e);
    lua_pushvalue(L, ri);
    if (!want)
        return 1;
    /* branch indices, 1-based like ch:kraus() */
    if (r->kind == QDL_K_STATE) {
        lua_pushinteger(L, (lua_Integer)br[0] + 1);
        return 2;
    }
    lua_createtable(L, (int)(N < 1000000000 ? N : 0), 0);
    for (size_t j = 0; j < N; j++) {
        lua_pushinteger(L, (lua_Integer)br[j] + 1);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    return 2;
}

/* obj:apply(ch [, targets] [, rng] [, {branches=}]) */
static int reg_apply(lua_State *L)
{
    return do_apply(L, 1, 2, 3);
}

/* ch:apply(obj [, targets] [, rng] [, {branches=}]) */
static int m_apply(lua_State *L)
{
    return do_apply(L, 2, 1, 3);
}

/* a * b: checked here so errors name the operator (Lua would report 'mul') */
static int ch_mul(lua_State *L)
{
    qdl_channel *a = luaL_testudata(L, 1, QDL_CHANNEL), *b = luaL_testudata(L, 2, QDL_CHANNEL);
    if (!a || !b) {
        int bad = a ? 2 : 1;
        const char *got = luaL_getmetafield(L, bad, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, bad);
        return luaL_error(L, "channel composition a * b: qd.Channel expected on the %s, got %s",
                          bad == 1 ? "left" : "right", got);
    }
    if (a->freed || b->freed)
        return luaL_error(L, "channel composition a * b: qd.Channel has been freed");
    int structured = a->kind == CH_DEPOL && b->kind == CH_DEPOL && a->k == b->k;
    if (!structured && (a->k == 0 || b->k == 0))
        return luaL_error(L, "channel composition a * b: channel of fixed size expected "
                             "(global_depolarizing without n= acts on any number of qubits; give n=)");
    if (a->k != b->k)
        return luaL_error(L, "channel composition a * b: channels on the same number of qubits expected, got %d and %d",
                          a->k, b->k);
    return m_compose(L);
}

/* ------------------------------------------------------------------ registration */

void qdL_open_channel(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"kraus", m_kraus},     {"superop", m_superop}, {"choi", m_choi},
        {"is_cptp", m_is_cptp}, {"compose", m_compose}, {"tensor", m_tensor},
        {"apply", m_apply},     {"free", m_free},       {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", ch_gc}, {"__close", ch_gc}, {"__tostring", ch_tostring}, {"__mul", ch_mul},
        {NULL, NULL}};
    qdL_newclass(L, QDL_CHANNEL, methods, ch_index, meta);
    lua_pop(L, 1);

    /* obj:apply(ch, ...) on the three register types (their metatables expose `methods`) */
    qdL_add_reg_method(L, "apply", reg_apply);

    /* qd.core.channel = { constructors } */
    static const luaL_Reg ctors[] = {
        {"depolarizing", l_depolarizing},
        {"global_depolarizing", l_global_depolarizing},
        {"dephasing", l_dephasing},
        {"amplitude_damping", l_amplitude_damping},
        {"generalized_amplitude_damping", l_gad},
        {"pauli", l_pauli},
        {"reset", l_reset},
        {"unitary", l_unitary},
        {"kraus", l_kraus},
        {"superop", l_superop},
        {NULL, NULL}};
    lua_newtable(L);
    luaL_setfuncs(L, ctors, 0);
    lua_setfield(L, -2, "channel");
}
