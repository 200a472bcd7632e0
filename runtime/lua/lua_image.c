/* lua_image.c — qd.image: small images as columns of a real qd.Matrix (one pixel per row),
 * for QDDM (arXiv 2401.07049; core: image.c). Amplitude encoding into an Ensemble, the
 * clamped Born read-out of Q-Dense and its gradient (for c:grad), the reference's noising
 * chain, amplitude read-out and loss for training on states, PSNR and SSIM; and
 * core.gunzip_file, the zlib reader of qd.data.digits (through the sandbox's path policy).
 *
 *   local E, norms = qd.image.encode(X)                    -- X: 64 x N
 *   local Y = qd.image.readout(out, {scale = 64})          -- 64 x N, clamp(64 |psi|^2, 0, 1)
 *   local G = qd.image.readout_vjp(out, dLdY, {scale = 64})
 */
#include "lua_util.h"
#include "lua_sys.h"
#include "qd_image.h"
#include <math.h>
#include <string.h>
#include <zlib.h>

/* a real Vector or Matrix at arg, as rows x cols (a Vector is one column) */
static qdl_array *checkreal(lua_State *L, int arg, const char *what)
{
    qdl_array *a = qdL_checkarray(L, arg);
    if (a->cplx)
        luaL_argerror(L, arg, lua_pushfstring(L, "real %s expected, got a complex one", what));
    if (a->rows == 0 || a->cols == 0)
        luaL_argerror(L, arg, lua_pushfstring(L, "non-empty %s expected", what));
    const double *d = a->data;
    for (size_t i = 0; i < a->rows * a->cols; i++)
        if (!isfinite(d[i]))
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "finite entries expected, got %f at entry %d", d[i],
                                          (int)(i + 1)));
    return a;
}

/* integer option key in lo..hi, def when absent */
static lua_Integer optint(lua_State *L, int arg, const char *key, lua_Integer def, lua_Integer lo,
                          lua_Integer hi)
{
    if (lua_isnoneornil(L, arg))
        return def;
    int t = lua_getfield(L, arg, key);
    lua_Integer v = def;
    if (t != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || t != LUA_TNUMBER || v < lo || v > hi)
            luaL_argerror(L, arg,
                          lua_pushfstring(L, "option '%s': integer in %I..%I expected, got %s", key,
                                          lo, hi, luaL_tolstring(L, -1, NULL)));
    }
    lua_pop(L, 1);
    return v;
}

/* qd.image.encode(X [, {qubits=, pad=, angles=}]) -> Ensemble, norms (Vector) */
static int l_encode(lua_State *L)
{
    qdL_checknargs(L, 2);
    static const char *const opts[] = {"qubits", "pad", "angles", NULL};
    qdl_array *X = checkreal(L, 1, "image matrix (one image per column)");
    qdL_checkoptions(L, 2, opts);
    int anc = 0;
    const double *angles = NULL;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_getfield(L, 2, "angles") != LUA_TNIL) {
            qdl_array *a = qdL_testarray(L, -1);
            if (!a || a->cplx || a->rows * a->cols != X->cols)
                luaL_argerror(L, 2,
                              lua_pushfstring(L,
                                              "option 'angles': real qd.Vector of %d "
                                              "entries (one per image) expected",
                                              (int)X->cols));
            angles = a->data;
            for (size_t j = 0; j < X->cols; j++)
                if (!isfinite(angles[j]))
                    luaL_argerror(L, 2, "option 'angles': finite entries expected");
            anc = 1;
        }
        lua_pop(L, 1);
    }
    int need = 0;
    while (((size_t)1 << need) < X->rows && need < 30)
        need++;
    if (((size_t)1 << need) < X->rows)
        return luaL_argerror(L, 1, "too many pixels per image");
    if (need < 1)
        need = 1;
    int n = (int)optint(L, 2, "qubits", need + anc, need + anc, 20);
    double pad = qdL_optnum(L, 2, "pad", 0.0, -INFINITY, INFINITY, 0);
    lua_settop(L, 2);
    qdl_reg *E = qdL_newreg(L, QDL_K_ENS, n, X->cols);
    qdl_array *nv = qdL_newarray(L, X->cols, 1, 0, 1);
    qd_err e;
    if (qd_image_encode(X->data, X->rows, X->cols, n, anc, pad, angles, E->a, nv->data, &e) !=
        QD_OK)
        return luaL_argerror(L, 1, e.msg);
    return 2;
}

static const char *const readout_opts[] = {"rows", "first",  "stride", "scale",
                                           "gain", "offset", NULL};

/* the read-out options at arg for members of dimension dim */
static qd_readout checkreadout(lua_State *L, int arg, size_t dim)
{
    qdL_checkoptions(L, arg, readout_opts);
    qd_readout r;
    lua_Integer D = (lua_Integer)dim;
    r.stride = (size_t)optint(L, arg, "stride", 1, 1, D);
    r.first = (size_t)optint(L, arg, "first", 1, 1, D) - 1;
    lua_Integer maxrows = (D - 1 - (lua_Integer)r.first) / (lua_Integer)r.stride + 1;
    r.rows = (size_t)optint(L, arg, "rows", maxrows, 1, maxrows);
    r.scale = qdL_optnum(L, arg, "scale", (double)r.rows, 0, INFINITY, QDL_OPEN_LO);
    r.gain = qdL_optnum(L, arg, "gain", 1.0, -INFINITY, INFINITY, 0);
    r.offset = qdL_optnum(L, arg, "offset", 0.0, -INFINITY, INFINITY, 0);
    return r;
}

/* qd.image.readout(E [, opts]) -> Matrix rows x N */
static int l_readout(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_reg *E = qdL_checkkind(L, 1, QDL_K_ENS);
    size_t dim = (size_t)1 << E->n;
    qd_readout r = checkreadout(L, 2, dim);
    qdl_array *Y = qdL_newarray(L, r.rows, E->count, 0, 0);
    qd_image_readout(E->a, dim, E->count, &r, Y->data);
    return 1;
}

/* qd.image.readout_vjp(E, dLdY [, opts]) -> Ensemble G = dL/d conj(psi) */
static int l_readout_vjp(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_reg *E = qdL_checkkind(L, 1, QDL_K_ENS);
    size_t dim = (size_t)1 << E->n;
    qdl_array *G = checkreal(L, 2, "gradient dL/dY");
    qd_readout r = checkreadout(L, 3, dim);
    if (G->rows != r.rows || G->cols != E->count)
        return luaL_argerror(L, 2,
                             lua_pushfstring(L, "gradient of shape %dx%d expected, got %dx%d",
                                             (int)r.rows, (int)E->count, (int)G->rows,
                                             (int)G->cols));
    qdl_reg *out = qdL_newreg(L, QDL_K_ENS, E->n, E->count);
    qd_image_readout_vjp(E->a, dim, E->count, &r, G->data, out->a);
    return 1;
}

/* qd.image.diffuse(X0, eps, w) -> Xin, Xprev (D x N T): x_t and x_{t-1}, t = 1..T */
static int l_diffuse(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_array *X = checkreal(L, 1, "image matrix (one image per column)");
    qdl_array *ep = checkreal(L, 2, "noise matrix");
    qdl_array *w = checkreal(L, 3, "weight vector");
    if (ep->rows * ep->cols != X->rows * X->cols)
        return luaL_argerror(L, 2,
                             lua_pushfstring(L, "%d entries (the image matrix's) expected, got %d",
                                             (int)(X->rows * X->cols), (int)(ep->rows * ep->cols)));
    size_t K = w->rows * w->cols;
    if (K < 2 || K > 100000)
        return luaL_argerror(L, 3, "weights w_0..w_T with 1 <= T <= 99999 expected");
    int T = (int)K - 1;
    size_t cols;
    if (qd_mul_overflow(X->cols, (size_t)T, &cols))
        return luaL_error(L, "diffuse: too many columns");
    qdl_array *Xi = qdL_newarray(L, X->rows, cols, 0, 0);
    qdl_array *Xp = qdL_newarray(L, X->rows, cols, 0, 0);
    qd_image_diffuse(X->data, ep->data, X->rows, X->cols, w->data, T, Xi->data, Xp->data);
    return 2;
}

/* qd.image.decode(E, norms [, {rows=}]) -> Matrix rows x N of norm_j |psi_ij| (read-out of
 * a state-trained model: the amplitudes' magnitudes, rescaled by the input norms) */
static int l_decode(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_reg *E = qdL_checkkind(L, 1, QDL_K_ENS);
    qdl_array *nv = checkreal(L, 2, "norm vector");
    static const char *const opts[] = {"rows", NULL};
    qdL_checkoptions(L, 3, opts);
    size_t dim = (size_t)1 << E->n;
    size_t rows = (size_t)optint(L, 3, "rows", (lua_Integer)dim, 1, (lua_Integer)dim);
    if (nv->rows * nv->cols != E->count)
        return luaL_argerror(L, 2,
                             lua_pushfstring(L, "%d norms (one per member) expected, got %d",
                                             (int)E->count, (int)(nv->rows * nv->cols)));
    qdl_array *Y = qdL_newarray(L, rows, E->count, 0, 0);
    double *y = Y->data;
    const double *nr = nv->data;
    for (size_t j = 0; j < E->count; j++)
        for (size_t i = 0; i < rows; i++)
            y[j * rows + i] = nr[j] * cabs(E->a[j * dim + i]);
    return 1;
}

/* qd.image.amp_mse(E, T, norms [, {grad=true}]) -> L [, G]: the reference's loss on states,
 * L = mean_ij |norm_j psi_ij - T_ij|^2 (T real, rows x N, rows <= 2^n), G = dL/d conj(psi) */
static int l_amp_mse(lua_State *L)
{
    qdL_checknargs(L, 4);
    qdl_reg *E = qdL_checkkind(L, 1, QDL_K_ENS);
    qdl_array *T = checkreal(L, 2, "target matrix");
    qdl_array *nv = checkreal(L, 3, "norm vector");
    static const char *const opts[] = {"grad", NULL};
    qdL_checkoptions(L, 4, opts);
    int grad = qdL_optbool(L, 4, "grad", 0);
    size_t dim = (size_t)1 << E->n, N = E->count, rows = T->rows;
    if (T->cols != N || rows > dim)
        return luaL_argerror(L, 2,
                             lua_pushfstring(L,
                                             "target of at most %d rows and %d columns expected, "
                                             "got %dx%d",
                                             (int)dim, (int)N, (int)rows, (int)T->cols));
    if (nv->rows * nv->cols != N)
        return luaL_argerror(L, 3,
                             lua_pushfstring(L, "%d norms (one per member) expected, got %d",
                                             (int)N, (int)(nv->rows * nv->cols)));
    const double *t = T->data, *nr = nv->data;
    double s = 0, m = (double)rows * (double)N;
    qd_c *G = grad ? qdL_newreg(L, QDL_K_ENS, E->n, N)->a : NULL;
    for (size_t j = 0; j < N; j++)
        for (size_t i = 0; i < dim; i++) {
            qd_c r = nr[j] * E->a[j * dim + i] - (i < rows ? t[j * rows + i] : 0.0);
            if (i < rows)
                s += creal(r) * creal(r) + cimag(r) * cimag(r);
            if (G)
                G[j * dim + i] = i < rows ? (nr[j] / m) * r : 0;
        }
    lua_pushnumber(L, s / m);
    if (grad)
        lua_insert(L, -2);
    return grad ? 2 : 1;
}

/* qd.image.clamp(X [, {scale=1, offset=0, lo=0, hi=1}]) -> clamp(scale X + offset, lo, hi)
 * entrywise, a new real Matrix of X's shape (the noise-goal update and read-outs) */
static int l_clamp(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_array *X = checkreal(L, 1, "matrix");
    static const char *const opts[] = {"scale", "offset", "lo", "hi", NULL};
    qdL_checkoptions(L, 2, opts);
    double a = qdL_optnum(L, 2, "scale", 1.0, -INFINITY, INFINITY, 0);
    double b = qdL_optnum(L, 2, "offset", 0.0, -INFINITY, INFINITY, 0);
    double lo = qdL_optnum(L, 2, "lo", 0.0, -INFINITY, INFINITY, 0);
    double hi = qdL_optnum(L, 2, "hi", 1.0, lo, INFINITY, 0);
    qdl_array *Y =
        qdL_newarray(L, X->rows, X->cols, 0, X->cols == 1 && luaL_testudata(L, 1, QDL_VECTOR));
    const double *x = X->data;
    double *y = Y->data;
    for (size_t i = 0; i < X->rows * X->cols; i++) {
        double v = a * x[i] + b;
        y[i] = v < lo ? lo : v > hi ? hi : v;
    }
    return 1;
}

/* qd.image.tanh_map(w [, {scale = pi}]) -> scale tanh(w) entrywise (the reference's
 * qw_map.tanh: unbounded weights to angles in (-scale, scale)), a new real Vector */
static int l_tanh_map(lua_State *L)
{
    qdL_checknargs(L, 2);
    qdl_array *w = checkreal(L, 1, "weight vector");
    static const char *const opts[] = {"scale", NULL};
    qdL_checkoptions(L, 2, opts);
    double a = qdL_optnum(L, 2, "scale", M_PI, -INFINITY, INFINITY, 0);
    size_t n = w->rows * w->cols;
    qdl_array *y = qdL_newarray(L, n, 1, 0, 1);
    const double *x = w->data;
    double *o = y->data;
    for (size_t i = 0; i < n; i++)
        o[i] = a * tanh(x[i]);
    return 1;
}

/* qd.image.tanh_map_vjp(w, g [, {scale = pi}]) -> dL/dw = g scale (1 - tanh(w)^2), a new
 * real Vector (the chain rule of tanh_map) */
static int l_tanh_map_vjp(lua_State *L)
{
    qdL_checknargs(L, 3);
    qdl_array *w = checkreal(L, 1, "weight vector");
    qdl_array *g = checkreal(L, 2, "gradient vector");
    static const char *const opts[] = {"scale", NULL};
    qdL_checkoptions(L, 3, opts);
    double a = qdL_optnum(L, 3, "scale", M_PI, -INFINITY, INFINITY, 0);
    size_t n = w->rows * w->cols;
    if (g->rows * g->cols != n)
        return luaL_argerror(L, 2,
                             lua_pushfstring(L, "%d entries (as the weights) expected, got %d",
                                             (int)n, (int)(g->rows * g->cols)));
    qdl_array *y = qdL_newarray(L, n, 1, 0, 1);
    const double *x = w->data, *gg = g->data;
    double *o = y->data;
    for (size_t i = 0; i < n; i++) {
        double t = tanh(x[i]);
        o[i] = (gg[i] * a) * (1 - t * t);   /* the order of the Lua it replaced */
    }
    return 1;
}

/* the two image matrices of a metric, and the image width */
static int metric_args(lua_State *L, qdl_array **X, qdl_array **Y, double *R,
                       const char *const *opts)
{
    *X = checkreal(L, 1, "image matrix (one image per column)");
    *Y = checkreal(L, 2, "image matrix (one image per column)");
    if ((*X)->rows != (*Y)->rows || (*X)->cols != (*Y)->cols)
        luaL_argerror(L, 2,
                      lua_pushfstring(L, "a %dx%d matrix (as argument #1) expected, got %dx%d",
                                      (int)(*X)->rows, (int)(*X)->cols, (int)(*Y)->rows,
                                      (int)(*Y)->cols));
    qdL_checkoptions(L, 3, opts);
    *R = qdL_optnum(L, 3, "range", 1.0, 0, INFINITY, QDL_OPEN_LO);
    return 0;
}

/* qd.image.psnr(X, Y [, {range=1}]) -> mean over images, Vector per image */
static int l_psnr(lua_State *L)
{
    qdL_checknargs(L, 3);
    static const char *const opts[] = {"range", NULL};
    qdl_array *X, *Y;
    double R;
    metric_args(L, &X, &Y, &R, opts);
    qdl_array *v = qdL_newarray(L, X->cols, 1, 0, 1);
    double s = 0, *pv = v->data;
    for (size_t j = 0; j < X->cols; j++) {
        pv[j] = qd_image_psnr((double *)X->data + j * X->rows, (double *)Y->data + j * X->rows,
                              X->rows, R);
        s += pv[j];
    }
    lua_pushnumber(L, s / (double)X->cols);
    lua_insert(L, -2);
    return 2;
}

/* qd.image.ssim(X, Y [, {width=, window=7, range=1}]) -> mean over images, Vector per image */
static int l_ssim(lua_State *L)
{
    qdL_checknargs(L, 3);
    static const char *const opts[] = {"range", "width", "window", NULL};
    qdl_array *X, *Y;
    double R;
    metric_args(L, &X, &Y, &R, opts);
    lua_Integer side = (lua_Integer)floor(sqrt((double)X->rows) + 0.5);
    lua_Integer w = optint(L, 3, "width", side, 1, (lua_Integer)X->rows);
    if (X->rows % (size_t)w)
        return luaL_argerror(L, 3,
                             lua_pushfstring(L,
                                             "option 'width': a divisor of %d (pixels per image) "
                                             "expected, got %I",
                                             (int)X->rows, w));
    lua_Integer h = (lua_Integer)X->rows / w;
    lua_Integer win = optint(L, 3, "window", 7, 3, 99);
    if (win % 2 == 0 || win > w || win > h)
        return luaL_argerror(L, 3,
                             lua_pushfstring(L,
                                             "option 'window': odd and at most the image's "
                                             "%Ix%I expected, got %I",
                                             h, w, win));
    qdl_array *v = qdL_newarray(L, X->cols, 1, 0, 1);
    double s = 0, *pv = v->data;
    for (size_t j = 0; j < X->cols; j++) {
        pv[j] = qd_image_ssim((double *)X->data + j * X->rows, (double *)Y->data + j * X->rows,
                              (int)h, (int)w, (int)win, R);
        s += pv[j];
    }
    lua_pushnumber(L, s / (double)X->cols);
    lua_insert(L, -2);
    return 2;
}

/* the open gzFile of core.gunzip_file, closed by __gc if an error (out of memory) leaves */
typedef struct {
    gzFile f;
} gzbox;

static void gzbox_close(gzbox *g)
{
    if (g && g->f) {
        gzclose(g->f);
        g->f = NULL;
    }
}

static int gzbox_gc(lua_State *L)
{
    gzbox_close(lua_touserdata(L, 1));
    return 0;
}

/* core.gunzip_file(path [, maxbytes]) -> string, or nil, message (file errors are outside
 * reasons); the sandbox's path policy decides first */
static int l_gunzip_file(lua_State *L)
{
    qdL_checknargs(L, 2);
    const char *path = luaL_checkstring(L, 1);
    lua_Integer maxb = luaL_optinteger(L, 2, (lua_Integer)1 << 28);
    if (maxb < 1 || maxb > ((lua_Integer)1 << 32))
        return luaL_argerror(L, 2, "maximum size in 1..2^32 bytes expected");
    qdL_check_path(L, path, 0);
    lua_settop(L, 2);
    gzbox *g = lua_newuserdatauv(L, sizeof *g, 0); /* index 3 */
    g->f = NULL;
    if (luaL_newmetatable(L, "qd.gzfile")) {
        lua_pushcfunction(L, gzbox_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, 3);
    g->f = gzopen(path, "rb");
    if (!g->f) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: cannot open", path);
        return 2;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[16384];
    size_t total = 0;
    int got;
    while ((got = gzread(g->f, chunk, sizeof chunk)) > 0) {
        total += (size_t)got;
        if (total > (size_t)maxb)
            break;
        luaL_addlstring(&b, chunk, (size_t)got);
    }
    int errnum = 0;
    const char *msg = got < 0 ? gzerror(g->f, &errnum) : NULL;
    if (total > (size_t)maxb || msg) {
        lua_pushnil(L);
        if (msg)
            lua_pushfstring(L, "%s: %s", path, msg);
        else
            lua_pushfstring(L, "%s: more than %I bytes uncompressed", path, maxb);
        gzbox_close(g);
        return 2;
    }
    luaL_pushresult(&b);
    gzbox_close(g);
    return 1;
}

void qdL_open_image(lua_State *L)
{
    static const luaL_Reg fns[] = {{"encode", l_encode},
                                   {"readout", l_readout},
                                   {"readout_vjp", l_readout_vjp},
                                   {"diffuse", l_diffuse},
                                   {"decode", l_decode},
                                   {"amp_mse", l_amp_mse},
                                   {"psnr", l_psnr},
                                   {"ssim", l_ssim},
                                   {"clamp", l_clamp},
                                   {"tanh_map", l_tanh_map},
                                   {"tanh_map_vjp", l_tanh_map_vjp},
                                   {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "image");
    lua_pushcfunction(L, l_gunzip_file);
    lua_setfield(L, -2, "gunzip_file");
}
