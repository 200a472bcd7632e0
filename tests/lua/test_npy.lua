-- test_npy.lua — .npy input/output from Lua: save_npy / load_npy round trips for every
-- object kind (State, Ensemble, DensityMatrix, Vector, Matrix; real and complex) and for
-- qd.save_ensembles; the headers numpy will read; kinds that settle ambiguous shapes;
-- missing or malformed files -> nil, message; and the numpy-made reference files in
-- tests/data/npy (made by tests/data/make_npy_refs.py: value(i) at C-order flat index i).
local T = require "testlib"
local R = require "qdref"

local src = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
local datadir = os.getenv("QD_TEST_DATA") or ((src:match("^(.*)/lua/[^/]*$") or "tests") .. "/data")
local NPY = datadir .. "/npy/"

-- temporary paths, removed at the end
local tmpbase = os.tmpname()
local made = {}
local function tmp(name)
  local p = tmpbase .. "_" .. name .. ".npy"
  made[#made + 1] = p
  return p
end
local function readall(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local function writeall(p, s)
  local f = assert(io.open(p, "wb"))
  f:write(s)
  f:close()
end
local function header(p)
  local s = readall(p) or ""
  local hl = s:byte(9) + 256 * s:byte(10)
  return s:sub(1, 6), s:sub(11, 10 + hl)
end

-- "1,2,3" from a table of numbers (floats print without ".0")
local function join(t)
  local o = {}
  for i, x in ipairs(t) do o[i] = string.format("%.17g", x) end
  return table.concat(o, ",")
end

-- the generators' formulas (make_npy_refs.py)
local function ref_real(i) return (i - 4) * 0.25 end
local function ref_cplx(i) return { (i - 4) * 0.25, i * 0.5 + 1 } end
local function ref_int(i) return (i * 7 - 20) * (i % 2 == 1 and -1 or 1) end
local function ref_uint(i) return i * 17 % 256 end

T.test("round trips: State, Ensemble, DensityMatrix", function()
  local s = qd.haar_state(3, qd.rng(1))
  local p = tmp("state")
  T.ok(rawequal(s:save_npy(p), s), "save_npy returns the object")
  local magic, h = header(p)
  T.eq(magic, "\147NUMPY", "magic")
  T.ok(h:find("'descr': '<c16'", 1, true) and h:find("'shape': (8,)", 1, true), "state header: " .. h)
  local s2 = qd.load_npy(p)
  T.eq(qd.type(s2), "qd.State", "1-d complex of length 2^n loads as a State")
  T.eq(R.vdiff(s2:totable(), s:totable()), 0, "state round trip exact")
  T.eq(qd.type(qd.load_npy(p, "state")), "qd.State")
  local v = qd.load_npy(p, "vector")
  T.eq(qd.type(v), "qd.Vector"); T.eq(#v, 8); T.ok(v:is_complex())
  -- ensemble: shape (N, 2^n), member k is row k
  local E = qd.ensemble.haar(2, 5, qd.rng(2))
  local pe = tmp("ens")
  E:save_npy(pe)
  local _, he = header(pe)
  T.ok(he:find("'shape': (5, 4)", 1, true) and he:find("'fortran_order': False", 1, true), "ensemble header: " .. he)
  local E2 = qd.load_npy(pe, "ensemble")
  T.eq(qd.type(E2), "qd.Ensemble"); T.eq(#E2, 5); T.eq(E2.n, 2)
  for k = 1, 5 do T.eq(R.vdiff(E2[k]:totable(), E[k]:totable()), 0, "member " .. k) end
  local M = qd.load_npy(pe)
  T.eq(qd.type(M), "qd.Matrix", "2-d without a kind is a Matrix")
  local r, c = M:shape()
  T.eq(r, 5); T.eq(c, 4)
  local mr, mi = M:get(3, 2)
  local er, ei = E[3]:amp(2)
  T.eq(mr, er); T.eq(mi, ei, "row k of the matrix is member k")
  T.eq(#qd.ensemble.from(M), 5, "ensemble.from(loaded matrix)")
  -- density matrix: (2^n, 2^n), written in Fortran order (our column-major buffer)
  local rho = qd.ensemble.haar(2, 3, qd.rng(3)):mean_dm()
  local pd = tmp("dm")
  rho:save_npy(pd)
  local _, hd = header(pd)
  T.ok(hd:find("'shape': (4, 4)", 1, true), "dm header: " .. hd)
  local rho2 = qd.load_npy(pd, "dm")
  T.eq(qd.type(rho2), "qd.DensityMatrix")
  T.eq(R.mdiff(R.dm_rows(rho2), R.dm_rows(rho)), 0, "dm round trip exact (incl. orientation)")
  local Md = qd.load_npy(pd)
  local gr, gi = Md:get(1, 2)
  local wr, wi = rho:get(1, 2)
  T.eq(gr, wr); T.eq(gi, wi, "dm as a Matrix keeps (row, col)")
  T.eq(R.mdiff(R.dm_rows(qd.dm(Md)), R.dm_rows(rho)), 0)
  -- kind "state" also takes a (1, 2^n) array, e.g. a one-member ensemble file
  local p1 = tmp("ens1row")
  qd.ensemble.from { s }:save_npy(p1)
  local s1r = qd.load_npy(p1, "state")
  T.eq(qd.type(s1r), "qd.State"); T.eq(R.vdiff(s1r:totable(), s:totable()), 0, "(1, 2^n) as a state")
  -- kinds check values too (docs/api.md "Value checks"): a non-density matrix of the right
  -- shape is refused as "dm" (nil, message), as by qd.dm(matrix)
  local pq = tmp("notdm")
  qd.matrix { { 1, 2 }, { 3, 4 } }:save_npy(pq)
  local nd, ndmsg = qd.load_npy(pq, "dm")
  T.eq(nd, nil); T.ok(ndmsg and ndmsg:find("density matrix expected (Hermitian, trace 1)", 1, true), ndmsg)
  T.raises(function() qd.dm(qd.load_npy(pq, "matrix")) end, "density matrix expected")
  -- a 1-qubit state file read as a (1, 2) ensemble is refused with a message
  local s1 = tmp("s1")
  qd.state(1):save_npy(s1)
  local bad, msg = qd.load_npy(s1, "ensemble")
  T.eq(bad, nil); T.ok(msg and msg:find("an ensemble needs shape (N, 2^n), got (2,)", 1, true), msg)
end)

T.test("round trips: Vector, Matrix, save_ensembles", function()
  local v = qd.vector { 1.5, -2, 3.25 }
  local pv = tmp("vec")
  v:save_npy(pv)
  local _, h = header(pv)
  T.ok(h:find("'descr': '<f8'", 1, true) and h:find("'shape': (3,)", 1, true), "real vector header: " .. h)
  local v2 = qd.load_npy(pv)
  T.eq(qd.type(v2), "qd.Vector"); T.eq(v2:is_complex(), false)
  T.eq(join(v2:totable()), "1.5,-2,3.25")
  -- a complex vector whose length is not a power of two loads as a Vector
  local z = qd.vector { { 1, 2 }, 3, { 0, -1 } }
  local pz = tmp("cvec")
  z:save_npy(pz)
  local z2 = qd.load_npy(pz)
  T.eq(qd.type(z2), "qd.Vector"); T.ok(z2:is_complex())
  local re, im = z2:get(3)
  T.eq(re, 0); T.eq(im, -1)
  -- a complex vector of length 4 loads as a State unless kind = "vector"
  local z4 = qd.vector { { 1, 0 }, 0, 0, 0 }
  local p4 = tmp("cvec4")
  z4:save_npy(p4)
  T.eq(qd.type(qd.load_npy(p4)), "qd.State")
  T.eq(qd.type(qd.load_npy(p4, "vector")), "qd.Vector")
  -- matrices, real and complex, non-square
  local M = qd.matrix { { 1, 2, 3 }, { 4, 5, 6 } }
  local pm = tmp("mat")
  M:save_npy(pm)
  local M2 = qd.load_npy(pm)
  local r, c = M2:shape()
  T.eq(r, 2); T.eq(c, 3); T.eq(M2:get(2, 1), 4); T.eq(M2:get(1, 3), 3)
  T.eq(M2:is_complex(), false)
  T.eq(qd.type(qd.load_npy(pm, "matrix")), "qd.Matrix")
  local C = qd.matrix { { 1, { 0, 2 } }, { 3, 4 }, { { 5, 5 }, 6 } }
  local pc = tmp("cmat")
  C:save_npy(pc)
  local C2 = qd.load_npy(pc, "matrix")
  T.ok(C2:is_complex())
  T.eq(R.mdiff(C2:totable(), C:totable()), 0, "complex matrix round trip")
  -- a matrix read as a vector is flattened in C (row) order
  local flat = qd.load_npy(pm, "vector")
  T.eq(join(flat:totable()), "1,2,3,4,5,6")
  -- save_ensembles: (T, N, 2^n), the QuDDPM reference layout
  local Es = {}
  for t = 1, 3 do Es[t] = qd.ensemble.haar(2, 4, qd.rng(10 + t)) end
  local ps = tmp("ensembles")
  T.eq(select("#", qd.save_ensembles(ps, Es)), 0)
  local _, hs = header(ps)
  T.ok(hs:find("'shape': (3, 4, 4)", 1, true), "ensembles header: " .. hs)
  for _, kind in ipairs { "ensembles", false } do
    local L = kind and qd.load_npy(ps, kind) or qd.load_npy(ps)
    T.eq(type(L), "table"); T.eq(#L, 3)
    local worst = 0
    for t = 1, 3 do
      T.eq(qd.type(L[t]), "qd.Ensemble"); T.eq(#L[t], 4); T.eq(L[t].n, 2)
      for k = 1, 4 do worst = math.max(worst, R.vdiff(L[t][k]:totable(), Es[t][k]:totable())) end
    end
    T.eq(worst, 0, "save_ensembles round trip (" .. tostring(kind) .. ")")
  end
  local one = tmp("ens1")
  qd.save_ensembles(one, { Es[2] })
  T.eq(#qd.load_npy(one, "ensembles"), 1)
  -- overwriting an existing file works (atomic rename)
  qd.state(1, "1"):save_npy(pv)
  T.eq(qd.type(qd.load_npy(pv)), "qd.State")
end)

T.test("missing and malformed files -> nil, message", function()
  local x, msg = qd.load_npy(tmpbase .. "_does_not_exist.npy")
  T.eq(x, nil); T.ok(type(msg) == "string" and msg:find("cannot open", 1, true), msg)
  T.ok(msg:find("does_not_exist", 1, true) ~= nil, "message names the file")
  local cases = {
    { "empty", "" },
    { "short", "\147NUM" },
    { "magic", "NOTNUMPY" .. string.rep(" ", 100) },
    { "badver", "\147NUMPY\9\0\10\0{}        \n" },
    { "noheaderend", "\147NUMPY\1\0\100\0{'descr': '<f8'" },
    { "badheader", "\147NUMPY\1\0\22\0{'foo': 1}          \n" },
  }
  for _, c in ipairs(cases) do
    local p = tmp("bad_" .. c[1])
    writeall(p, c[2])
    local ok, m = qd.load_npy(p)
    T.eq(ok, nil, c[1]); T.ok(type(m) == "string" and #m > 0, c[1] .. " message")
  end
  -- truncated data: a valid header promising more bytes than the file holds
  local good = tmp("trunc_src")
  qd.haar_state(4, qd.rng(1)):save_npy(good)
  local bytes = readall(good)
  local p = tmp("trunc")
  writeall(p, bytes:sub(1, #bytes - 40))
  local t, tm = qd.load_npy(p)
  T.eq(t, nil, "truncated"); T.ok(tm ~= nil and #tm > 0, tm)
  -- headers promising more than the file holds or than memory can: refused before allocating
  local function raw(name, header, data)
    local total = 10 + #header + 1
    header = header .. string.rep(" ", (-total) % 64) .. "\n"
    local p = tmp(name)
    writeall(p, "\147NUMPY\1\0" .. string.char(#header % 256, #header // 256) .. header .. (data or ""))
    return p
  end
  for _, c in ipairs {
    { "huge1d", "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }", "truncated" },
    { "hugeover", "{'descr': '<c16', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", "too large" },
    { "negshape", "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", "shape" },
    { "ninedim", "{'descr': '<f8', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", "more than 8 dimensions" },
    { "bigens", "{'descr': '<c16', 'fortran_order': False, 'shape': (2, 1099511627776), }", "truncated" },
  } do
    local ok, m = qd.load_npy(raw(c[1], c[2]), "ensemble")
    T.eq(ok, nil, c[1]); T.ok(type(m) == "string" and m:find(c[3], 1, true) ~= nil, c[1] .. ": " .. tostring(m))
  end
  local good1 = raw("rawgood", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", string.pack("<d<d", 0.25, -3))
  T.eq(join(qd.load_npy(good1):totable()), "0.25,-3", "hand-written header, real data")
  -- a directory
  local d, dm = qd.load_npy(datadir)
  T.eq(d, nil, "a directory"); T.ok(dm ~= nil)
  -- shapes that do not fit the kind
  local pv = tmp("v3")
  qd.vector { 1, 2, 3 }:save_npy(pv)
  local a, am = qd.load_npy(pv, "state")
  T.eq(a, nil); T.ok(am:find("a state needs shape (2^n,), got (3,)", 1, true), am)
  local b, bm = qd.load_npy(pv, "dm")
  T.eq(b, nil); T.ok(bm:find("a density matrix needs shape (2^n, 2^n)", 1, true), bm)
  local c, cm = qd.load_npy(pv, "matrix")
  T.eq(c, nil); T.ok(cm:find("a matrix needs a 2-d array, got shape (3,)", 1, true), cm)
  local e, em = qd.load_npy(pv, "ensembles")
  T.eq(e, nil); T.ok(em:find("ensembles need shape (T, N, 2^n)", 1, true), em)
  local pm = tmp("m23")
  qd.matrix(2, 3):save_npy(pm)
  local f, fm = qd.load_npy(pm, "dm")
  T.eq(f, nil); T.ok(fm:find("got (2, 3)", 1, true), fm)
  local g, gm = qd.load_npy(pm, "ensemble")
  T.eq(g, nil); T.ok(gm:find("an ensemble needs shape (N, 2^n), got (2, 3)", 1, true), gm)
  -- unsupported dtypes made by numpy
  for _, name in ipairs { "obj", "str", "datetime", "struct" } do
    local o, om = qd.load_npy(NPY .. name .. ".npy")
    T.eq(o, nil, name); T.ok(type(om) == "string" and om:find("unsupported", 1, true) ~= nil, om)
  end
  -- 0-d needs a kind
  local z, zm = qd.load_npy(NPY .. "f8_0d.npy")
  T.eq(z, nil); T.ok(zm:find("cannot infer an object from a 0-d array; give a kind", 1, true), zm)
end)

T.test("numpy-made reference files", function()
  -- every dtype, shape (2, 3), C order
  for _, dt in ipairs { "f2", "f4", "f8", "f8_v2", "f8_be" } do
    local M, m = qd.load_npy(NPY .. dt .. ".npy")
    if T.ok(M ~= nil, dt .. ": " .. tostring(m)) then
      T.eq(qd.type(M), "qd.Matrix"); T.eq(M:is_complex(), false, dt)
      local worst = 0
      for i = 0, 5 do worst = math.max(worst, math.abs(M:get(i // 3 + 1, i % 3 + 1) - ref_real(i))) end
      T.eq(worst, 0, dt .. " values")
    end
  end
  for _, dt in ipairs { "c8", "c16", "c16_be" } do
    local M = qd.load_npy(NPY .. dt .. ".npy")
    T.ok(M:is_complex(), dt)
    local worst = 0
    for i = 0, 5 do
      local re, im = M:get(i // 3 + 1, i % 3 + 1)
      local w = ref_cplx(i)
      worst = math.max(worst, math.abs(re - w[1]) + math.abs(im - w[2]))
    end
    T.eq(worst, 0, dt .. " values")
  end
  for _, dt in ipairs { "i1", "i2", "i4", "i8", "i4_be" } do
    local M = qd.load_npy(NPY .. dt .. ".npy")
    local worst = 0
    for i = 0, 5 do worst = math.max(worst, math.abs(M:get(i // 3 + 1, i % 3 + 1) - ref_int(i))) end
    T.eq(worst, 0, dt .. " values")
  end
  for _, dt in ipairs { "u1", "u2", "u4", "u8" } do
    local M = qd.load_npy(NPY .. dt .. ".npy")
    local worst = 0
    for i = 0, 5 do worst = math.max(worst, math.abs(M:get(i // 3 + 1, i % 3 + 1) - ref_uint(i))) end
    T.eq(worst, 0, dt .. " values")
  end
  local b = qd.load_npy(NPY .. "b1.npy")
  T.eq(join(qd.load_npy(NPY .. "b1.npy", "vector"):totable()), "1,0,1,0,0,1", "bool")
  T.eq(b:get(2, 3), 1)
  -- extremes
  local i8 = qd.load_npy(NPY .. "i8_ext.npy")
  T.eq(i8[1], -2.0 ^ 63); T.eq(i8[2], 2.0 ^ 63); T.eq(i8[3], -1)
  local u8 = qd.load_npy(NPY .. "u8_ext.npy")
  T.eq(u8[1], 2.0 ^ 64); T.eq(#u8, 3)
  T.eq(join(qd.load_npy(NPY .. "i1_ext.npy"):totable()), "-128,127")
  T.eq(join(qd.load_npy(NPY .. "u1_ext.npy"):totable()), "255,0")
  local f2 = qd.load_npy(NPY .. "f2_ext.npy")
  T.eq(f2[1], 65504); T.eq(f2[2], 2.0 ^ -24); T.eq(f2[4], math.huge); T.eq(f2[5], -math.huge)
  T.ok(f2[6] ~= f2[6], "nan")
  T.eq(1 / f2[3], -math.huge, "-0.0")
  -- Fortran order (2-d complex, 3-d int), 3-d C order, 1-d, zero-size
  local F = qd.load_npy(NPY .. "c16_fortran_3x4.npy")
  local fr, fc = F:shape()
  T.eq(fr, 3); T.eq(fc, 4)
  local worst = 0
  for i = 0, 11 do
    local re, im = F:get(i // 4 + 1, i % 4 + 1)
    local w = ref_cplx(i)
    worst = math.max(worst, math.abs(re - w[1]) + math.abs(im - w[2]))
  end
  T.eq(worst, 0, "Fortran-order complex matrix")
  local cbf = qd.load_npy(NPY .. "c8_be_fortran.npy")
  local re, im = cbf:get(2, 3)
  T.eq(re, ref_cplx(5)[1]); T.eq(im, ref_cplx(5)[2], "big-endian Fortran complex64")
  local i3 = qd.load_npy(NPY .. "i4_fortran_2x3x4.npy", "vector")
  T.eq(#i3, 24)
  worst = 0
  for i = 0, 23 do worst = math.max(worst, math.abs(i3[i + 1] - ref_int(i))) end
  T.eq(worst, 0, "3-d Fortran order flattened in C order")
  local f3 = qd.load_npy(NPY .. "f8_3d.npy", "vector")
  T.eq(f3[24], ref_real(23))
  -- a real (2, 3, 4) array is inferred as ensembles (T=2, N=3, 2 qubits), but its rows are
  -- not normalised: refused with a message (value checks)
  local ens, emsg = qd.load_npy(NPY .. "f8_3d.npy")
  T.eq(ens, nil); T.ok(emsg and emsg:find("member 1: normalised amplitudes expected", 1, true), emsg)
  local f1 = qd.load_npy(NPY .. "f4_1d.npy")
  T.eq(qd.type(f1), "qd.Vector"); T.eq(#f1, 5); T.eq(f1[5], ref_real(4))
  local z = qd.load_npy(NPY .. "c16_0x3.npy")
  local zr, zc = z:shape()
  T.eq(zr, 0); T.eq(zc, 3)
  local d0 = qd.load_npy(NPY .. "f8_0d.npy", "vector")
  T.eq(#d0, 1); T.eq(d0[1], 2.5)
  -- header variants and v3.0
  -- complex (4,) is inferred as a 2-qubit State; these numbers are not normalised, so the
  -- value checks refuse it (nil, message) and kind "vector" reads them
  local c3bad, c3msg = qd.load_npy(NPY .. "c8_v3.npy")
  T.eq(c3bad, nil); T.ok(c3msg and c3msg:find("normalised amplitudes expected", 1, true), c3msg)
  local c3 = qd.load_npy(NPY .. "c8_v3.npy", "vector")
  local r3, i3_ = c3:get(4)
  T.eq(r3, ref_cplx(3)[1]); T.eq(i3_, ref_cplx(3)[2])
  local odd = qd.load_npy(NPY .. "f8_oddheader.npy")
  T.eq(odd:get(2, 2), ref_real(3), "odd header")
  local py2 = qd.load_npy(NPY .. "f8_py2long.npy")
  T.eq(#py2, 3); T.eq(py2[3], ref_real(2))
  -- kinds on numpy files: a real (2, 2) file that is not a density matrix is refused as "dm"
  -- (value checks); as a "matrix" the C-order file keeps (row, col)
  local od, odmsg = qd.load_npy(NPY .. "f8_oddheader.npy", "dm")
  T.eq(od, nil); T.ok(odmsg and odmsg:find("density matrix expected", 1, true), odmsg)
  local om = qd.load_npy(NPY .. "f8_oddheader.npy", "matrix")
  T.eq(om:get(1, 2), ref_real(1), "C-order file into column-major matrix: (row, col) kept")
end)

T.test("atomic writes leave no temporary files", function()
  local dir = tmpbase .. "_dir"
  if not T.ok(os.execute("mkdir -p '" .. dir .. "'"), "mkdir") then return end
  qd.haar_state(3, qd.rng(1)):save_npy(dir .. "/a.npy")
  qd.ensemble(2, 3):save_npy(dir .. "/a.npy")   -- overwrite
  qd.save_ensembles(dir .. "/b.npy", { qd.ensemble(1, 2) })
  qd.vector { 1 }:save_npy(dir .. "/c.npy")
  local p = io.popen("ls -a '" .. dir .. "'")
  local names = {}
  for l in p:lines() do if l ~= "." and l ~= ".." then names[#names + 1] = l end end
  p:close()
  table.sort(names)
  T.eq(table.concat(names, " "), "a.npy b.npy c.npy", "only the files written")
  T.eq(qd.type(qd.load_npy(dir .. "/a.npy")), "qd.Matrix", "the overwrite won")
  for _, n in ipairs(names) do os.remove(dir .. "/" .. n) end
  os.remove(dir)
end)

T.test("save errors raise", function()
  T.raises(function() qd.state(1):save_npy("/nonexistent-dir-qd/x.npy") end, "/nonexistent-dir-qd/x.npy")
  T.raises(function() qd.save_ensembles("/nonexistent-dir-qd/y.npy", { qd.ensemble(1, 1) }) end, "nonexistent-dir-qd")
end)

for _, p in ipairs(made) do os.remove(p) end
os.remove(tmpbase)
