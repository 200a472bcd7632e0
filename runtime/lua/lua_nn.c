/* lua_nn.c — qd.nn: small dense networks for the classical parts of the protocols (image
 * denoisers and their baselines, circuit-diffusion denoisers). The network (qd.MLP) holds only
 * its shape; parameters are a real qd.Vector the script owns, so qd.optim updates them like a
 * circuit's. Batches are real qd.Matrix values, one sample per column (core: nn.c, qd_nn.h).
 *   qd.nn.mlp{sizes = {n0, ..., nL}, activation = "relu", output = "linear"}
 *   net:nparams(), net:init([rng]), net:forward(X, params), net:grad(X, params, lossfn),
 *   net:vjp(X, params, G), net:spec()
 *   qd.nn.conv{length, inputs, channels, outputs, kernel = 3, layers = 2, cond = 0,
 *              activation = "silu", heads = 0}: a residual 1-D convolution over time steps
 *   (qd.ConvNet), each block optionally opened by self-attention over the steps, with the
 *   same methods
 *   qd.nn.mse(Y, T [, {grad = true}]), qd.nn.columns(M, idx), qd.nn.vstack(A, B, ...) */
#include "lua_util.h"
#include "qd_nn.h"
#include <math.h>
#include <string.h>

#define QDL_MLP "qd.MLP"
#define QDL_CONV "qd.ConvNet"

/* either network: the methods below are written once for both */
enum { NET_MLP, NET_CONV };
typedef struct {
    int kind;
    const qd_mlp *mlp;
    const qd_conv *conv;
} netref;

static size_t net_nparams(const netref *n)
{
    return n->kind == NET_MLP ? qd_mlp_nparams(n->mlp) : qd_conv_nparams(n->conv);
}
static size_t net_in_rows(const netref *n)
{
    return n->kind == NET_MLP ? (size_t)n->mlp->sizes[0] : qd_conv_in_rows(n->conv);
}
static size_t net_out_rows(const netref *n)
{
    return n->kind == NET_MLP ? (size_t)n->mlp->sizes[n->mlp->layers] : qd_conv_out_rows(n->conv);
}
static size_t net_tape_len(const netref *n, size_t B)
{
    return n->kind == NET_MLP ? qd_mlp_tape_len(n->mlp, B) : qd_conv_tape_len(n->conv, B);
}
static size_t net_work_len(const netref *n, size_t B)
{
    return n->kind == NET_MLP ? qd_mlp_work_len(n->mlp, B) : qd_conv_work_len(n->conv, B);
}

static const char *const act_names[] = {"linear", "relu", "tanh", "sigmoid", "silu", NULL};

static netref checknet(lua_State *L, int idx, int kind)
{
    const char *tname = kind == NET_MLP ? QDL_MLP : QDL_CONV;
    void *u = luaL_testudata(L, idx, tname);
    if (!u) {
        const char *got = luaL_getmetafield(L, idx, "__name") == LUA_TSTRING ? lua_tostring(L, -1)
                                                                            : luaL_typename(L, idx);
        luaL_argerror(L, idx, lua_pushfstring(L, "%s expected, got %s", tname, got));
    }
    netref n = {kind, kind == NET_MLP ? u : NULL, kind == NET_CONV ? u : NULL};
    return n;
}

static qd_act optact(lua_State *L, int arg, const char *key, qd_act def)
{
    if (lua_getfield(L, arg, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return def;
    }
    const char *s = lua_tostring(L, -1);
    if (lua_type(L, -1) == LUA_TSTRING)
        for (int i = 0; act_names[i]; i++)
            if (strcmp(s, act_names[i]) == 0) {
                lua_pop(L, 1);
                return (qd_act)i;
            }
    return (qd_act)luaL_argerror(L, arg, lua_pushfstring(L, "option '%s': one of linear, relu, tanh, "
                                 "sigmoid, silu expected, got %s", key,
                                 lua_type(L, -1) == LUA_TSTRING ? s : luaL_typename(L, -1)));
}

/* qd.nn.mlp{sizes = {n0, n1, ..., nL}, activation = "relu", output = "linear"} */
static int l_mlp(lua_State *L)
{
    qdL_checknargs(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const opts[] = {"sizes", "activation", "output", NULL};
    qdL_checkoptions(L, 1, opts);
    if (lua_getfield(L, 1, "sizes") != LUA_TTABLE)
        return luaL_argerror(L, 1, lua_pushfstring(L, "option 'sizes': table of layer widths {n0, n1, ...} "
                                                   "expected, got %s", luaL_typename(L, -1)));
    int sidx = lua_gettop(L);
    lua_Integer ns = qdL_checklen(L, 1, sidx, QD_NN_MAX_LAYERS + 1, "option 'sizes'");
    if (ns < 2)
        return luaL_argerror(L, 1, "option 'sizes': at least two widths (inputs, outputs) expected");
    qd_mlp spec;
    memset(&spec, 0, sizeof spec);
    spec.layers = (int)ns - 1;
    for (lua_Integer i = 1; i <= ns; i++) {
        lua_geti(L, sidx, i);
        int isnum = 0;
        lua_Integer w = lua_tointegerx(L, -1, &isnum);
        if (!isnum || w < 1 || w > QD_NN_MAX_WIDTH)
            return luaL_argerror(L, 1, lua_pushfstring(L, "option 'sizes': entry %d: integer in 1..%d expected",
                                                       (int)i, QD_NN_MAX_WIDTH));
        spec.sizes[i - 1] = (int)w;
        lua_pop(L, 1);
    }
    qd_act hidden = optact(L, 1, "activation", QD_ACT_RELU), out = optact(L, 1, "output", QD_ACT_LINEAR);
    for (int l = 0; l < spec.layers; l++)
        spec.act[l] = l == spec.layers - 1 ? out : hidden;
    if (qd_mlp_nparams(&spec) == 0)
        return luaL_argerror(L, 1, "option 'sizes': too many parameters");
    qd_mlp *m = lua_newuserdatauv(L, sizeof *m, 0);
    *m = spec;
    luaL_setmetatable(L, QDL_MLP);
    return 1;
}

/* qd.nn.conv{length, inputs, channels, outputs, kernel = 3, layers = 2, cond = 0,
 * activation = "silu", heads = 0} (qd_nn.h: qd_conv) */
static int l_conv(lua_State *L)
{
    qdL_checknargs(L, 1);
    luaL_checktype(L, 1, LUA_TTABLE);
    static const char *const opts[] = {"length", "inputs", "channels", "outputs", "kernel", "layers", "cond",
                                       "activation", "heads", NULL};
    qdL_checkoptions(L, 1, opts);
    /* key, smallest, largest, default (-1: required) */
    static const struct { const char *key; int lo, hi, def; } f[] = {
        {"length", 1, QD_CONV_MAX_LENGTH, -1}, {"inputs", 1, QD_NN_MAX_WIDTH, -1},
        {"channels", 1, QD_NN_MAX_WIDTH, -1},  {"outputs", 1, QD_NN_MAX_WIDTH, -1},
        {"kernel", 1, 2 * QD_CONV_MAX_LENGTH - 1, 3}, {"layers", 0, QD_CONV_MAX_LAYERS, 2},
        {"cond", 0, QD_NN_MAX_WIDTH, 0}, {"heads", 0, QD_NN_MAX_WIDTH, 0}};
    int v[8];
    for (int i = 0; i < 8; i++) {
        int t = lua_getfield(L, 1, f[i].key), isnum = 0;
        lua_Integer x = lua_tointegerx(L, -1, &isnum);
        if (t == LUA_TNIL && f[i].def >= 0) {
            x = f[i].def;
            isnum = 1;
        }
        if (t == LUA_TNIL && f[i].def < 0)
            return luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' is required", f[i].key));
        if (!isnum || x < f[i].lo || x > f[i].hi)
            return luaL_argerror(L, 1, lua_pushfstring(L, "option '%s': integer in %d..%d expected, got %s", f[i].key,
                                                       f[i].lo, f[i].hi, lua_type(L, -1) == LUA_TNUMBER
                                                                                ? lua_tostring(L, -1)
                                                                                : luaL_typename(L, -1)));
        v[i] = (int)x;
        lua_pop(L, 1);
    }
    qd_conv spec = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], optact(L, 1, "activation", QD_ACT_SILU), v[7]};
    if (spec.kernel % 2 == 0 || spec.kernel > 2 * spec.length - 1)
        return luaL_argerror(L, 1, lua_pushfstring(L, "option 'kernel': odd width in 1..%d (2 * length - 1) "
                                                   "expected, got %d", 2 * spec.length - 1, spec.kernel));
    if (spec.heads > 0 && spec.channels % spec.heads != 0)
        return luaL_argerror(L, 1, lua_pushfstring(L, "option 'heads': a divisor of channels (%d) expected, got %d",
                                                   spec.channels, spec.heads));
    if (qd_conv_nparams(&spec) == 0)
        return luaL_argerror(L, 1, "too many parameters");
    qd_conv *m = lua_newuserdatauv(L, sizeof *m, 0);
    *m = spec;
    luaL_setmetatable(L, QDL_CONV);
    return 1;
}

static int nparams_(lua_State *L, int kind)
{
    netref n = checknet(L, 1, kind);
    qdL_checknargs(L, 1);
    lua_pushinteger(L, (lua_Integer)net_nparams(&n));
    return 1;
}

/* cnt draws of U(-bound, bound) */
static double *draw(qd_rng *r, double *th, size_t cnt, double bound)
{
    for (size_t i = 0; i < cnt; i++)
        *th++ = bound * (2.0 * qd_rng_uniform(r) - 1.0);
    return th;
}

/* net:init([rng]) -> params: PyTorch's default for nn.Linear and nn.Conv1d, W and b ~
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn in parameter order. MLP: layer by layer (W column
 * by column, then b). ConvNet: fan_in = inputs for W_in, b_in and the position terms P (a
 * per-step bias of the input projection), channels for the attention's W_qkv, b_qkv, W_a and
 * b_a (nn.Linear layers of the features), kernel*channels for C and b_c, cond for U (an
 * nn.Linear of the condition), channels for W_o, b_o, W_out and b_out. */
static int init_(lua_State *L, int kind)
{
    netref n = checknet(L, 1, kind);
    qdL_checknargs(L, 2);
    qd_rng *r = lua_isnoneornil(L, 2) ? qdL_runrng(L) : qdL_checkrng(L, 2);
    qdl_array *p = qdL_newarray(L, net_nparams(&n), 1, 0, 1);
    double *th = p->data;
    if (kind == NET_MLP) {
        const qd_mlp *m = n.mlp;
        for (int l = 1; l <= m->layers; l++)
            th = draw(r, th, (size_t)m->sizes[l] * ((size_t)m->sizes[l - 1] + 1), 1.0 / sqrt((double)m->sizes[l - 1]));
    } else {
        const qd_conv *m = n.conv;
        size_t H = (size_t)m->channels, k = (size_t)m->kernel;
        th = draw(r, th, H * ((size_t)m->inputs + 1 + (size_t)m->length), 1.0 / sqrt((double)m->inputs));
        for (int l = 0; l < m->layers; l++) {
            if (m->heads > 0)
                th = draw(r, th, 4 * H * (H + 1), 1.0 / sqrt((double)H));
            th = draw(r, th, H * (k * H + 1), 1.0 / sqrt((double)(k * H)));
            th = draw(r, th, H * (size_t)m->cond, m->cond > 0 ? 1.0 / sqrt((double)m->cond) : 0.0);
            th = draw(r, th, H * (H + 1), 1.0 / sqrt((double)H));
        }
        draw(r, th, (size_t)m->outputs * (H + 1), 1.0 / sqrt((double)H));
    }
    return 1;
}

/* a problem with an argument (arg > 0) or with a loss function's result (arg <= 0) */
static int batcherr(lua_State *L, int arg, const char *msg)
{
    return arg > 0 ? luaL_argerror(L, arg, msg) : luaL_error(L, "%s", msg);
}

/* a real Matrix (or Vector: one sample) of `rows` rows at idx; its column count. arg: the
 * argument number for messages, or 0 for a loss function's result */
static const double *checkbatch(lua_State *L, int idx, int arg, size_t rows, size_t *B, const char *what)
{
    qdl_array *a = qdL_testarray(L, idx);
    if (!a)
        batcherr(L, arg, lua_pushfstring(L, "%s: real qd.Matrix expected, got %s", what, luaL_typename(L, idx)));
    if (a->cplx)
        batcherr(L, arg, lua_pushfstring(L, "%s: real qd.Matrix expected, got a complex one", what));
    if (a->rows != rows)
        batcherr(L, arg, lua_pushfstring(L, "%s: %d rows expected (one sample per column), got %d", what,
                                         (int)rows, (int)a->rows));
    if (a->cols < 1)
        batcherr(L, arg, lua_pushfstring(L, "%s: at least one column expected", what));
    *B = a->cols;
    return a->data;
}

static const double *checkparams(lua_State *L, int arg, const netref *m)
{
    qdl_array *a = qdL_checkarray(L, arg);
    size_t n = net_nparams(m);
    if (a->cplx || a->cols != 1 || a->rows != n)
        luaL_argerror(L, arg, lua_pushfstring(L, "real qd.Vector of %d parameters expected, got a %s %dx%d array",
                                              (int)n, a->cplx ? "complex" : "real", (int)a->rows, (int)a->cols));
    const double *th = a->data;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(th[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "parameter %d is not finite", (int)i + 1));
    return th;
}

static void check_finite_batch(lua_State *L, int arg, const double *X, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(X[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s: entry %d is not finite", what, (int)i + 1));
}

/* forward pass into a pushed tape; pushes the output Matrix; returns the tape */
static double *run_forward(lua_State *L, const netref *m, const double *th, const double *X, size_t B)
{
    size_t tl = net_tape_len(m, B);
    if (tl == 0)
        luaL_error(L, "batch too large for this network (size overflows)");
    double *tape = qdL_scratch(L, tl, sizeof(double), "the network's activations");
    qdl_array *Y = qdL_newarray(L, net_out_rows(m), B, 0, 0);
    if (m->kind == NET_MLP)
        qd_mlp_forward(m->mlp, th, X, B, Y->data, tape);
    else
        qd_conv_forward(m->conv, th, X, B, Y->data, tape);
    return tape;
}

/* the common arguments of forward, grad and vjp: self, X (finite, in_rows rows) at 2, params at 3 */
static netref check_call(lua_State *L, int kind, int nargs, const double **X, size_t *B, const double **th)
{
    netref m = checknet(L, 1, kind);
    qdL_checknargs(L, nargs);
    *X = checkbatch(L, 2, 2, net_in_rows(&m), B, "inputs");
    check_finite_batch(L, 2, *X, net_in_rows(&m) * *B, "inputs");
    *th = checkparams(L, 3, &m);
    return m;
}

/* net:forward(X, params) -> Y */
static int forward_(lua_State *L, int kind)
{
    size_t B;
    const double *X, *th;
    netref m = check_call(L, kind, 3, &X, &B, &th);
    run_forward(L, &m, th, X, B);
    return 1;
}

/* the backward pass from G (at arg); pushes g (and gX when want_gx) */
static void run_backward(lua_State *L, const netref *m, const double *th, const double *X, size_t B,
                         const double *tape, int garg, int want_gx, const char *what)
{
    size_t gb, nout = net_out_rows(m);
    const double *G = checkbatch(L, garg, want_gx ? garg : 0, nout, &gb, what);
    if (gb != B)
        batcherr(L, want_gx ? garg : 0, lua_pushfstring(L, "%s: %d columns expected (the batch size), got %d", what,
                                                        (int)B, (int)gb));
    for (size_t i = 0; i < nout * B; i++)
        if (!isfinite(G[i]))
            batcherr(L, want_gx ? garg : 0, lua_pushfstring(L, "%s: entry %d is not finite", what, (int)i + 1));
    double *work = qdL_scratch(L, net_work_len(m, B), sizeof(double), "the backward pass");
    int widx = lua_gettop(L);
    qdl_array *g = qdL_newarray(L, net_nparams(m), 1, 0, 1);
    qdl_array *gx = want_gx ? qdL_newarray(L, net_in_rows(m), B, 0, 0) : NULL;
    if (m->kind == NET_MLP)
        qd_mlp_backward(m->mlp, th, X, B, tape, G, g->data, gx ? gx->data : NULL, work);
    else
        qd_conv_backward(m->conv, th, X, B, tape, G, g->data, gx ? gx->data : NULL, work);
    lua_remove(L, widx);
}

/* net:grad(X, params, lossfn) -> L, g, Y   (lossfn(Y) returns L, dL/dY) */
static int grad_(lua_State *L, int kind)
{
    size_t B;
    const double *X, *th;
    netref m = check_call(L, kind, 4, &X, &B, &th);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    /* the loss function may change the script's X or params in place: work on copies */
    size_t nx = net_in_rows(&m) * B, np = net_nparams(&m);
    double *cp = qdL_scratch(L, nx + np, sizeof(double), "a copy of the inputs");
    memcpy(cp, X, nx * sizeof *cp);
    memcpy(cp + nx, th, np * sizeof *cp);
    X = cp;
    th = cp + nx;
    double *tape = run_forward(L, &m, th, X, B);
    int yidx = lua_gettop(L);
    lua_pushvalue(L, 4);
    lua_pushvalue(L, yidx);
    lua_call(L, 1, 2);
    if (lua_type(L, yidx + 1) != LUA_TNUMBER)
        return luaL_error(L, "grad: the loss function must return a number first, got %s",
                          luaL_typename(L, yidx + 1));
    double Lv = lua_tonumber(L, yidx + 1);
    run_backward(L, &m, th, X, B, tape, yidx + 2, 0, "grad: the loss function's second result (dL/dY)");
    lua_pushnumber(L, Lv);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, yidx);
    return 3;
}

/* net:vjp(X, params, G) -> g, gX */
static int vjp_(lua_State *L, int kind)
{
    size_t B;
    const double *X, *th;
    netref m = check_call(L, kind, 4, &X, &B, &th);
    qdL_checkarray(L, 4);
    double *tape = run_forward(L, &m, th, X, B);
    lua_pop(L, 1);   /* Y */
    run_backward(L, &m, th, X, B, tape, 4, 1, "G");
    return 2;
}

/* net:spec() -> the options that rebuild the network (qd.nn.mlp(spec) / qd.nn.conv(spec)) */
static int spec_(lua_State *L, int kind)
{
    netref n = checknet(L, 1, kind);
    qdL_checknargs(L, 1);
    if (kind == NET_MLP) {
        const qd_mlp *m = n.mlp;
        lua_createtable(L, 0, 3);
        lua_createtable(L, m->layers + 1, 0);
        for (int i = 0; i <= m->layers; i++) {
            lua_pushinteger(L, m->sizes[i]);
            lua_rawseti(L, -2, i + 1);
        }
        lua_setfield(L, -2, "sizes");
        lua_pushstring(L, act_names[m->layers > 1 ? m->act[0] : QD_ACT_RELU]);
        lua_setfield(L, -2, "activation");
        lua_pushstring(L, act_names[m->act[m->layers - 1]]);
        lua_setfield(L, -2, "output");
        return 1;
    }
    const qd_conv *m = n.conv;
    const char *keys[] = {"length", "inputs", "channels", "outputs", "kernel", "layers", "cond", "heads"};
    int vals[] = {m->length, m->inputs, m->channels, m->outputs, m->kernel, m->layers, m->cond, m->heads};
    lua_createtable(L, 0, 9);
    for (int i = 0; i < 8; i++) {
        lua_pushinteger(L, vals[i]);
        lua_setfield(L, -2, keys[i]);
    }
    lua_pushstring(L, act_names[m->act]);
    lua_setfield(L, -2, "activation");
    return 1;
}

static int tostring_(lua_State *L, int kind)
{
    netref n = checknet(L, 1, kind);
    if (kind == NET_CONV) {
        const qd_conv *m = n.conv;
        if (m->heads > 0)
            lua_pushfstring(L, "qd.ConvNet(%d steps x %d -> %d channels, %d blocks of %d-head attention + "
                            "kernel %d, %d condition features, %s -> %d steps x %d; %d parameters)", m->length,
                            m->inputs, m->channels, m->layers, m->heads, m->kernel, m->cond, act_names[m->act],
                            m->length, m->outputs, (int)qd_conv_nparams(m));
        else
            lua_pushfstring(L, "qd.ConvNet(%d steps x %d -> %d channels, %d blocks of kernel %d, %d condition "
                            "features, %s -> %d steps x %d; %d parameters)", m->length, m->inputs, m->channels,
                            m->layers, m->kernel, m->cond, act_names[m->act], m->length, m->outputs,
                            (int)qd_conv_nparams(m));
        return 1;
    }
    const qd_mlp *m = n.mlp;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "qd.MLP(");
    for (int i = 0; i <= m->layers; i++) {
        lua_pushfstring(L, i ? " -> %d" : "%d", m->sizes[i]);
        luaL_addvalue(&b);
    }
    lua_pushfstring(L, "; %s, output %s; %d parameters)", act_names[m->layers > 1 ? m->act[0] : QD_ACT_RELU],
                    act_names[m->act[m->layers - 1]], (int)qd_mlp_nparams(m));
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    return 1;
}

/* the methods of each class: the generic ones above with the class fixed */
#define NET_METHODS(suffix, kind)                                                                        \
    static int m_nparams_##suffix(lua_State *L) { return nparams_(L, kind); }                            \
    static int m_init_##suffix(lua_State *L) { return init_(L, kind); }                                  \
    static int m_forward_##suffix(lua_State *L) { return forward_(L, kind); }                            \
    static int m_grad_##suffix(lua_State *L) { return grad_(L, kind); }                                  \
    static int m_vjp_##suffix(lua_State *L) { return vjp_(L, kind); }                                    \
    static int m_spec_##suffix(lua_State *L) { return spec_(L, kind); }                                  \
    static int m_tostring_##suffix(lua_State *L) { return tostring_(L, kind); }
NET_METHODS(mlp, NET_MLP)
NET_METHODS(conv, NET_CONV)

/* qd.nn.mse(Y, T [, {grad = true}]) -> L [, G] */
static int l_mse(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_array *y = qdL_checkarray(L, 1), *t = qdL_checkarray(L, 2);
    static const char *const opts[] = {"grad", NULL};
    qdL_checkoptions(L, 3, opts);
    int grad = qdL_optbool(L, 3, "grad", 0);
    if (y->cplx)
        return luaL_argerror(L, 1, "real qd.Matrix or qd.Vector expected, got a complex one");
    if (t->cplx)
        return luaL_argerror(L, 2, "real qd.Matrix or qd.Vector expected, got a complex one");
    if (t->rows != y->rows || t->cols != y->cols)
        return luaL_argerror(L, 2, lua_pushfstring(L, "%dx%d array expected (the shape of argument #1), got %dx%d",
                                                   (int)y->rows, (int)y->cols, (int)t->rows, (int)t->cols));
    size_t n = y->rows * y->cols;
    if (n == 0)
        return luaL_argerror(L, 1, "non-empty array expected");
    check_finite_batch(L, 1, y->data, n, "predictions");
    check_finite_batch(L, 2, t->data, n, "targets");
    qdl_array *G = grad ? qdL_newarray(L, y->rows, y->cols, 0, y->cols == 1 && luaL_testudata(L, 1, QDL_VECTOR))
                        : NULL;
    lua_pushnumber(L, qd_mse(y->data, t->data, n, G ? G->data : NULL));
    if (G)
        lua_insert(L, -2);
    return G ? 2 : 1;
}

/* qd.nn.columns(M, idx) -> the columns idx (table of 1-based integers) of M, as a Matrix */
static int l_columns(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_array *a = qdL_checkarray(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer k = qdL_checklen(L, 2, 2, (lua_Integer)1 << 40, "column list");
    if (k < 1)
        return luaL_argerror(L, 2, "non-empty list of column numbers expected");
    size_t es = a->cplx ? sizeof(qd_c) : sizeof(double), col = a->rows * es;
    qdl_array *o = qdL_newarray(L, a->rows, (size_t)k, a->cplx, 0);
    for (lua_Integer j = 1; j <= k; j++) {
        lua_geti(L, 2, j);
        int isnum = 0;
        lua_Integer c = lua_tointegerx(L, -1, &isnum);
        lua_pop(L, 1);
        if (!isnum || c < 1 || (size_t)c > a->cols)
            return luaL_argerror(L, 2, lua_pushfstring(L, "entry %d: column number in 1..%d expected", (int)j,
                                                       (int)a->cols));
        memcpy((char *)o->data + (size_t)(j - 1) * col, (const char *)a->data + (size_t)(c - 1) * col, col);
    }
    return 1;
}

/* qd.nn.vstack(A, B, ...) -> the rows of A, then of B, ... (equal column counts) */
static int l_vstack(lua_State *L)
{
    int n = lua_gettop(L);
    if (n < 1)
        return luaL_argerror(L, 1, "qd.Matrix or qd.Vector expected, got no value");
    size_t rows = 0, cols = 0;
    int cplx = 0;
    for (int i = 1; i <= n; i++) {
        qdl_array *a = qdL_checkarray(L, i);
        if (i == 1)
            cols = a->cols;
        else if (a->cols != cols)
            return luaL_argerror(L, i, lua_pushfstring(L, "%d columns expected (those of argument #1), got %d",
                                                       (int)cols, (int)a->cols));
        rows += a->rows;
        cplx |= a->cplx;
    }
    qdl_array *o = qdL_newarray(L, rows, cols, cplx, 0);
    size_t r0 = 0;
    for (int i = 1; i <= n; i++) {
        qdl_array *a = qdL_checkarray(L, i);
        for (size_t j = 0; j < cols; j++)
            for (size_t r = 0; r < a->rows; r++) {
                qd_c z = qdL_array_get(a, r + j * a->rows);
                if (cplx)
                    ((qd_c *)o->data)[r0 + r + j * rows] = z;
                else
                    ((double *)o->data)[r0 + r + j * rows] = creal(z);
            }
        r0 += a->rows;
    }
    return 1;
}

void qdL_open_nn(lua_State *L)
{
#define REG(suffix)                                                                                          \
    {"nparams", m_nparams_##suffix}, {"init", m_init_##suffix}, {"forward", m_forward_##suffix},             \
        {"grad", m_grad_##suffix}, {"vjp", m_vjp_##suffix}, {"spec", m_spec_##suffix}, {NULL, NULL}
    static const luaL_Reg methods_mlp[] = {REG(mlp)}, methods_conv[] = {REG(conv)};
#undef REG
    static const luaL_Reg meta_mlp[] = {{"__tostring", m_tostring_mlp}, {NULL, NULL}};
    static const luaL_Reg meta_conv[] = {{"__tostring", m_tostring_conv}, {NULL, NULL}};
    qdL_newclass(L, QDL_MLP, methods_mlp, NULL, meta_mlp);
    lua_pop(L, 1);
    qdL_newclass(L, QDL_CONV, methods_conv, NULL, meta_conv);
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"mlp", l_mlp}, {"conv", l_conv}, {"mse", l_mse}, {"columns", l_columns},
                                   {"vstack", l_vstack}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "nn");
}
