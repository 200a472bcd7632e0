-- test_qddm.lua — QDDM image diffusion (arXiv 2401.07049): the digits loader (file, the
-- generated stand-in, the split, bad arguments), the noise process, qd.image (encoding,
-- read-out and its gradient, clamp, decode, amp_mse, PSNR and SSIM against numpy/scipy
-- values in tests/data/qddm), the Q-Dense model's forward against gates applied one by one
-- to States, its parameter gradient against finite differences, U^T against T runs, the
-- protocol end to end, and every error message.
local T = require "testlib"
local core = require "qd.core"
local qddm = require "qd.protocols.qddm"
local digits = require "qd.digits"

local DATA = (os.getenv("QD_TEST_DATA") or "tests/data") .. "/qddm/"
local have_file = io.open(digits.default_path, "rb") ~= nil

local function rand_matrix(r, c, rng, lo, hi)
  local M = qd.matrix(r, c)
  for j = 1, c do for i = 1, r do M:set(i, j, lo + (hi - lo) * rng:uniform()) end end
  return M
end

-- E with amplitude x of member j moved by (dr, di), not renormalised (for finite differences)
local function perturbed(E, j, x, dr, di)
  local d = 1 << E.n
  local M = qd.matrix(#E, d, { complex = true })
  for k = 1, #E do
    for i = 1, d do
      local re, im = E[k]:amp(i)
      if k == j and i == x then re, im = re + dr, im + di end
      M:set(k, i, { re, im })
    end
  end
  return qd.ensemble.from(M, { normalize = false })
end

-- ------------------------------------------------------------------ data

T.test("digits: the real file, class subset, ds_size and the 80/20 split", function()
  if not have_file then print("  (skipped: " .. digits.default_path .. " absent)") return end
  local d = qd.data.digits { n_classes = 2, ds_size = 100 }
  T.eq(d.source, "digits", "source")
  T.eq(select(2, d.train:shape()), 80, "train count")
  T.eq(select(2, d.test:shape()), 20, "test count")
  T.eq(d.train:shape(), 64, "pixels")
  -- the first image of the file (a 0): row 1 is 0,0,5,13,9,1,0,0
  T.near(d.train:get(3, 1), 5 / 16, 0, "pixel (1,3) of image 1")
  T.near(d.train:get(4, 1), 13 / 16, 0, "pixel (1,4) of image 1")
  T.eq(d.train_classes[1], 0, "class of image 1")
  T.eq(d.train_classes[2], 1, "class of image 2")
  T.eq(d.train_labels[2], 1.0, "label normalised by the largest class")
  for j = 1, 80 do T.ok(d.train_classes[j] <= 1, "only classes 0, 1") end
  -- all 1797 with 10 classes; values in [0, 1]
  local a = qd.data.digits {}
  T.eq(select(2, a.train:shape()) + select(2, a.test:shape()), 1797, "all images")
  -- a seeded split: the same set, shuffled, reproducible
  local s1 = qd.data.digits { n_classes = 2, ds_size = 100, rng = qd.rng(4) }
  local s2 = qd.data.digits { n_classes = 2, ds_size = 100, rng = qd.rng(4) }
  T.ok(s1.train == s2.train, "same seed, same split")
  T.ok(not (s1.train == d.train), "shuffled")
end)

T.test("digits: the generated stand-in when the file is absent", function()
  local g = qd.data.digits { n_classes = 3, ds_size = 30, path = "/nonexistent/digits.csv.gz" }
  T.eq(g.source, "generated", "source")
  T.ok(g.note:find("unavailable", 1, true) ~= nil, "the note says why: " .. g.note)
  T.eq(select(2, g.train:shape()), 24, "train count")
  local lo, hi = 1, 0
  for j = 1, 24 do
    T.ok(g.train_classes[j] < 3, "classes 0..2")
    for i = 1, 64 do lo, hi = math.min(lo, g.train:get(i, j)), math.max(hi, g.train:get(i, j)) end
  end
  T.ok(lo >= 0 and hi <= 1 and hi > 0.5, "grey levels in [0, 1]")
  local g2 = qd.data.digits { n_classes = 3, ds_size = 30, generated = true }
  T.ok(g.train == g2.train, "the stand-in is fixed")
  T.raises(function() qd.data.digits { path = "/nonexistent/x.gz", fallback = false } end, "cannot open",
    "fallback = false")
end)

T.test("digits: bad arguments", function()
  T.raises(function() qd.data.digits(3) end, "options table expected", "not a table")
  T.raises(function() qd.data.digits { classes = 2 } end, "unknown option 'classes'", "unknown key")
  T.raises(function() qd.data.digits { n_classes = 11 } end, "'n_classes': integer 1..10", "n_classes")
  T.raises(function() qd.data.digits { n_classes = 1.5 } end, "'n_classes'", "n_classes real")
  T.raises(function() qd.data.digits { ds_size = 1 } end, "'ds_size': integer >= 2", "ds_size")
  T.raises(function() qd.data.digits { train_fraction = 1 } end, "'train_fraction'", "fraction")
  T.raises(function() qd.data.digits { path = 3 } end, "'path': string expected", "path")
  T.raises(function() qd.data.digits { rng = 3 } end, "'rng': qd.Rng expected", "rng")
  T.raises(function() qd.data.digits { fallback = 1 } end, "'fallback': boolean", "fallback")
  T.raises(function() qd.data.digits { generated = 1 } end, "'generated': boolean", "generated")
  T.raises(function() qd.data.digits({}, 2) end, "unexpected extra argument", "extra")
  T.raises(function() qd.data.digits { ds_size = 2, n_classes = 1, train_fraction = 0.2, generated = true } end,
    "cannot be split", "split")
end)

T.test("gunzip_file: contents, size bound, missing and non-gzip files", function()
  local dir = T.tmpdir()
  local p = dir .. "/plain.txt"
  local f = io.open(p, "wb")
  f:write("hello\n")
  f:close()
  T.eq(core.gunzip_file(p), "hello\n", "a plain file reads as is (zlib's transparent mode)")
  os.execute("gzip -c " .. p .. " > " .. dir .. "/z.gz")
  T.eq(core.gunzip_file(dir .. "/z.gz"), "hello\n", "gzip")
  local s, msg = core.gunzip_file(dir .. "/z.gz", 3)
  T.ok(s == nil and msg:find("more than 3 bytes", 1, true), "size bound: " .. tostring(msg))
  s, msg = core.gunzip_file(dir .. "/none.gz")
  T.ok(s == nil and msg:find("cannot open", 1, true), "missing")
  T.raises(function() core.gunzip_file(dir .. "/z.gz", 0) end, "maximum size", "bound 0")
  T.raises(function() core.gunzip_file({}) end, "#1", "path type")
  T.rmdir(dir)
end)

-- ------------------------------------------------------------------ noise

T.test("noise: w_t = (t/T)^3 and x_t = clamp((1 - w_t) x0 + w_t eps)", function()
  local w = qddm.weights(10)
  T.eq(#w, 11, "w_0..w_T")
  T.eq(w[1], 0.0, "w_0")
  T.near(w[6], 0.125, 1e-15, "w_5")
  T.eq(w[11], 1.0, "w_T")
  local rng = qd.rng(3)
  local X0 = rand_matrix(64, 3, rng, 0, 1)
  local eps = qddm.noise(X0, qd.rng(5))
  local Xin, Xprev = qd.image.diffuse(X0, eps, w)
  T.eq(select(2, Xin:shape()), 30, "N T columns")
  local worst = 0
  for j = 1, 3 do
    for t = 1, 10 do
      for i = 1, 64 do
        local e = eps[(j - 1) * 64 + i]
        local function want(tt)
          local v = (1 - w[tt + 1]) * X0:get(i, j) + w[tt + 1] * e
          return math.max(0, math.min(1, v))
        end
        worst = math.max(worst, math.abs(Xin:get(i, (j - 1) * 10 + t) - want(t)),
          math.abs(Xprev:get(i, (j - 1) * 10 + t) - want(t - 1)))
      end
    end
  end
  T.eq(worst, 0.0, "entrywise")
  -- eps ~ N(0.5, 0.2^2): sample mean and deviation of 64000 draws
  local big = qddm.noise(qd.matrix(64, 1000), qd.rng(7))
  local s, s2 = 0, 0
  for i = 1, #big do s, s2 = s + big[i], s2 + big[i] ^ 2 end
  local mean = s / #big
  T.near(mean, 0.5, 0.005, "mean")
  T.near(math.sqrt(s2 / #big - mean ^ 2), 0.2, 0.005, "deviation")
  -- the noise goal's target is the difference
  local A, B = qddm.pairs(X0, eps, 10, "noise")
  T.ok(A == Xin and B == Xin - Xprev, "noise goal pairs")
  T.raises(function() qd.image.diffuse(X0, qd.vector(3), w) end, "192 entries", "eps size")
  T.raises(function() qd.image.diffuse(X0, eps, qd.vector(1)) end, "weights w_0..w_T", "T = 0")
end)

-- ------------------------------------------------------------------ qd.image

T.test("encode: normalised, padded, with an RX(angle) ancilla", function()
  local X = rand_matrix(5, 2, qd.rng(1), 0.1, 1)
  local E, nr = qd.image.encode(X, { pad = 0.5 })
  T.eq(E.n, 3, "ceil(log2 5) qubits")
  local s = 0
  for i = 1, 5 do s = s + X:get(i, 2) ^ 2 end
  s = s + 3 * 0.25
  T.near(nr[2], math.sqrt(s), 1e-15, "norm with padding")
  T.near((E[2]:amp(7)), 0.5 / math.sqrt(s), 1e-15, "padded amplitude")
  T.near((E[2]:amp(2)), X:get(2, 2) / math.sqrt(s), 1e-15, "amplitude")
  local Ea = qd.image.encode(X, { angles = qd.vector { 0.3, 1.1 } })
  T.eq(Ea.n, 4, "one ancilla qubit more")
  -- member 2 = (x/|x|) (x) RX(1.1)|0>
  local ref = qd.state.from((qd.image.encode(X)[2]):totable()):kron(qd.state(1):rx(0, 1.1))
  T.near(qd.fidelity(Ea[2], ref), 1, 1e-14, "ancilla state")
  T.raises(function() qd.image.encode(qd.matrix(4, 1)) end, "norm 0", "zero image")
  T.raises(function() qd.image.encode(X, { qubits = 2 }) end, "'qubits'", "too few qubits")
  T.raises(function() qd.image.encode(X, { angles = qd.vector(3) }) end, "2 entries", "angles count")
  T.raises(function() qd.image.encode(X, { bad = 1 }) end, "unknown option", "unknown key")
  T.raises(function() qd.image.encode(qd.matrix(2, 2, { complex = true })) end, "real", "complex")
end)

T.test("readout and readout_vjp: clamp(scale p), strides, the Born chain rule", function()
  local rng = qd.rng(9)
  local E = qd.ensemble.haar(4, 3, rng)
  local ro = { rows = 8, stride = 2, scale = 9, gain = 0.1, offset = -0.05 }
  local Y = qd.image.readout(E, ro)
  for j = 1, 3 do
    for i = 1, 8 do
      local re, im = E[j]:amp(2 * (i - 1) + 1)
      local v = math.max(0, math.min(1, 9 * (re * re + im * im)))
      T.near(Y:get(i, j), 0.1 * v - 0.05, 1e-15, "entry")
    end
  end
  -- gradient of L = sum_ij c_ij Y_ij wrt the real and imaginary parts of psi, by differences
  local C = rand_matrix(8, 3, rng, -1, 1)
  local G = qd.image.readout_vjp(E, C, ro)
  local function Lof(Ex)
    local Yx, s = qd.image.readout(Ex, ro), 0
    for j = 1, 3 do for i = 1, 8 do s = s + C:get(i, j) * Yx:get(i, j) end end
    return s
  end
  local h, worst = 1e-6, 0
  for j = 1, 3 do
    for x = 1, 16 do
      local function shifted(dr, di) return Lof(perturbed(E, j, x, dr, di)) end
      local dre = (shifted(h, 0) - shifted(-h, 0)) / (2 * h)
      local dim = (shifted(0, h) - shifted(0, -h)) / (2 * h)
      -- G = dL/d conj(psi) = (dL/dre + i dL/dim) / 2
      local gr, gi = G[j]:amp(x)
      worst = math.max(worst, math.abs(gr - dre / 2), math.abs(gi - dim / 2))
    end
  end
  T.ok(worst < 1e-8, "vjp vs finite differences: " .. worst)
  T.raises(function() qd.image.readout(E, { rows = 9, stride = 2 }) end, "'rows': integer in 1..8", "rows")
  T.raises(function() qd.image.readout(E, { scale = 0 }) end, "'scale'", "scale")
  T.raises(function() qd.image.readout(qd.state(2)) end, "qd.Ensemble", "kind")
  T.raises(function() qd.image.readout_vjp(E, qd.matrix(8, 2), ro) end, "shape 8x3", "G shape")
end)

T.test("clamp, decode, amp_mse (value and gradient)", function()
  local M = qd.matrix { { -1, 0.5 }, { 2, 0.25 } }
  local C = qd.image.clamp(M, { scale = 2, offset = 0.1 })
  T.ok(C == qd.matrix { { 0, 1 }, { 1, 0.6 } }, "clamp(2x + 0.1)")
  T.raises(function() qd.image.clamp(M, { lo = 1, hi = 0 }) end, "'hi'", "hi < lo")
  local rng = qd.rng(2)
  local X = rand_matrix(8, 2, rng, 0.1, 1)
  local E, nr = qd.image.encode(X)
  T.ok(qd.allclose(qd.image.decode(E, nr), X, { atol = 1e-15 }), "decode(encode(x)) = x")
  local Tg = rand_matrix(6, 2, rng, 0, 1)
  local H = qd.ensemble.haar(3, 2, rng)
  local L, G = qd.image.amp_mse(H, Tg, nr, { grad = true })
  local function Lof(Hx) return (qd.image.amp_mse(Hx, Tg, nr)) end
  local s = 0
  for j = 1, 2 do
    for i = 1, 6 do
      local re, im = H[j]:amp(i)
      s = s + (nr[j] * re - Tg:get(i, j)) ^ 2 + (nr[j] * im) ^ 2
    end
  end
  T.near(L, s / 12, 1e-15, "value")
  local h, worst = 1e-6, 0
  for j = 1, 2 do
    for x = 1, 8 do
      local function sh(dr, di) return Lof(perturbed(H, j, x, dr, di)) end
      local gr, gi = G[j]:amp(x)
      worst = math.max(worst, math.abs(gr - (sh(h, 0) - sh(-h, 0)) / (4 * h)),
        math.abs(gi - (sh(0, h) - sh(0, -h)) / (4 * h)))
    end
  end
  T.ok(worst < 1e-9, "gradient vs finite differences: " .. worst)
  T.raises(function() qd.image.amp_mse(H, qd.matrix(9, 2), nr) end, "at most 8 rows", "rows")
  T.raises(function() qd.image.amp_mse(H, Tg, qd.vector(3)) end, "2 norms", "norms")
  T.raises(function() qd.image.decode(H, qd.vector(3)) end, "2 norms", "decode norms")
end)

T.test("tanh_map and its vjp", function()
  local w = qd.vector { -2, -0.3, 0, 0.7, 3 }
  local phi = qd.image.tanh_map(w)
  local g = qd.vector { 0.5, -1, 2, 0.25, 1 }
  local dw = qd.image.tanh_map_vjp(w, g, { scale = 2 })
  for i = 1, 5 do
    local t = (math.exp(2 * w[i]) - 1) / (math.exp(2 * w[i]) + 1)
    T.near(phi[i], math.pi * t, 1e-15, "pi tanh")
    T.near(dw[i], g[i] * 2 * (1 - t * t), 1e-15, "chain rule, scale 2")
  end
  T.raises(function() qd.image.tanh_map_vjp(w, qd.vector(4)) end, "5 entries", "length")
  T.raises(function() qd.image.tanh_map(w, { scale = 0 / 0 }) end, "'scale'", "nan scale")
  T.raises(function() qd.image.tanh_map(w, { bad = 1 }) end, "unknown option", "unknown key")
end)

T.test("PSNR and SSIM against numpy/scipy (scikit-image's default SSIM)", function()
  local X, Y = qd.load_npy(DATA .. "x.npy"), qd.load_npy(DATA .. "y.npy")
  local s7, s5, ps = qd.load_npy(DATA .. "ssim7.npy"), qd.load_npy(DATA .. "ssim5.npy"), qd.load_npy(DATA .. "psnr.npy")
  local m, v = qd.image.ssim(X, Y)
  local mean = 0
  for j = 1, 5 do
    T.near(v[j], s7[j], 1e-12, "ssim 7x7 image " .. j)
    mean = mean + s7[j] / 5
  end
  T.near(m, mean, 1e-12, "mean")
  local _, v5 = qd.image.ssim(X, Y, { window = 5, width = 8, range = 1 })
  for j = 1, 5 do T.near(v5[j], s5[j], 1e-12, "ssim 5x5 image " .. j) end
  local _, pv = qd.image.psnr(X, Y)
  T.eq(pv[1], math.huge, "equal images: inf")
  for j = 2, 5 do T.near(pv[j], ps[j - 1], 1e-11, "psnr image " .. j) end
  T.raises(function() qd.image.ssim(X, qd.matrix(64, 4)) end, "64x5 matrix", "shape")
  T.raises(function() qd.image.ssim(X, Y, { window = 9 }) end, "'window': odd", "window")
  T.raises(function() qd.image.ssim(X, Y, { width = 7 }) end, "'width': a divisor", "width")
  T.raises(function() qd.image.psnr(X, Y, { range = 0 }) end, "'range'", "range")
  T.raises(function() qd.image.psnr(X, Y, { foo = 1 }) end, "unknown option", "unknown")
end)

-- ------------------------------------------------------------------ the models

local function small_data()
  return qd.data.digits { n_classes = 2, ds_size = 20, generated = true }
end

-- Q-Dense by hand: the encoded State, then gates one at a time (RZ RY RZ per qubit, the
-- CNOT ring of range r), probabilities read from the final State
local function qdense_by_hand(x, w, n, L, label)
  local v = {}
  local s = 0
  for i = 1, 64 do s = s + x[i] ^ 2 end
  for i = 1, 64 do v[i] = x[i] / math.sqrt(s) end
  local st = qd.state.from(v)
  if label then st = st:kron(qd.state(1):rx(0, label)) end
  for l = 1, L do
    local base = 3 * n * (l - 1)
    for i = 0, n - 1 do
      st:rz(i, math.pi * math.tanh(w[base + 3 * i + 1]))
      st:ry(i, math.pi * math.tanh(w[base + 3 * i + 2]))
      st:rz(i, math.pi * math.tanh(w[base + 3 * i + 3]))
    end
    local r = ((l - 1) % (n - 1)) + 1
    for i = 0, n - 1 do st:cx(i, (i + r) % n) end
  end
  local p = st:probs()
  local y = {}
  for i = 1, 64 do
    local pi_ = label and p[2 * i - 1] or p[i]
    y[i] = math.max(0, math.min(1, 64 * pi_))
  end
  return y
end

T.test("Q-Dense forward equals the gate-by-gate computation (undirected and directed)", function()
  local d = small_data()
  for _, model in ipairs { "qdense", "qdense_directed" } do
    local c = qddm.pieces.check { model = model, layers = 3, epochs = 1, goal = "data", data = d }
    local m = qddm.model(c)
    local w = qd.rng(4):normal(0, 0.8, m.nparams)
    local X = qd.nn.columns(d.train, { 1, 2, 3 })
    local lab = qd.vector { 0.0, 1.0, 0.5 }
    local Y = m.predict(w, X, lab)
    local worst = 0
    for j = 1, 3 do
      local x = {}
      for i = 1, 64 do x[i] = X:get(i, j) end
      local y = qdense_by_hand(x, w, m.qubits, 3, model == "qdense_directed" and lab[j] or nil)
      for i = 1, 64 do worst = math.max(worst, math.abs(Y:get(i, j) - y[i])) end
    end
    T.ok(worst < 1e-13, model .. ": " .. worst)
  end
end)

T.test("gradients of every model against finite differences", function()
  local d = small_data()
  for _, case in ipairs { { "qdense", "noise" }, { "qdense", "data" }, { "qdense_directed", "noise" },
                          { "single_step", "data" }, { "dense", "noise" }, { "dense", "data" },
                          { "dense_directed", "noise" }, { "qdense_reupload", "noise" } } do
    local c = qddm.pieces.check { model = case[1], goal = case[2], layers = case[1] == "qdense_reupload" and 3 or 2,
                                  epochs = 1, data = d, hidden = 3 }
    local m = qddm.model(c)
    local rng = qd.rng(8)
    local w = m.net and m.net:init(rng) or rng:normal(0, 0.5, m.nparams)
    local X0 = qd.nn.columns(d.train, { 1, 2 })
    local Xin, target = qddm.pairs(X0, qddm.noise(X0, qd.rng(3)), 4, case[2])
    local lab = qd.vector { 0, 0, 0, 0, 1, 1, 1, 1 }
    local L, g = m.grad(w, Xin, target, lab)
    local h, worst, scale = 1e-6, 0, 0
    for i = 1, m.nparams do
      local wp, wm = w:copy(), w:copy()
      wp[i], wm[i] = w[i] + h, w[i] - h
      local fd = (m.grad(wp, Xin, target, lab) - m.grad(wm, Xin, target, lab)) / (2 * h)
      worst = math.max(worst, math.abs(fd - g[i]))
      scale = math.max(scale, math.abs(g[i]))
    end
    T.ok(L > 0 and scale > 0, case[1] .. " " .. case[2] .. ": a loss and a gradient")
    T.ok(worst < 1e-7 * math.max(1, scale), case[1] .. " " .. case[2] .. ": |fd - g| = " .. worst)
  end
end)

T.test("re-uploading: the label before each block, equal to gate-by-gate; one block = directed", function()
  local d = small_data()
  local c = qddm.pieces.check { model = "qdense_reupload", layers = 3, reuploads = 2, goal = "data", epochs = 1, data = d }
  local m = qddm.model(c)
  local w = qd.rng(12):normal(0, 0.7, m.nparams)
  local X = qd.nn.columns(d.train, { 1, 2, 3 })
  local lab = qd.vector { 1.0, 0.0, 1.0 }
  local Y = m.predict(w, X, lab)
  -- by hand: blocks of 2 and 1 layers, RX(label) on qubit 6 before each
  local worst = 0
  for j = 1, 3 do
    local v, s = {}, 0
    for i = 1, 64 do s = s + X:get(i, j) ^ 2 end
    for i = 1, 64 do v[i] = X:get(i, j) / math.sqrt(s) end
    local st = qd.state.from(v):kron(qd.state(1))
    local off = 0
    for _, len in ipairs { 2, 1 } do
      st:rx(6, lab[j])
      for l = 1, len do
        local base = off + 21 * (l - 1)
        for i = 0, 6 do
          st:rz(i, math.pi * math.tanh(w[base + 3 * i + 1]))
          st:ry(i, math.pi * math.tanh(w[base + 3 * i + 2]))
          st:rz(i, math.pi * math.tanh(w[base + 3 * i + 3]))
        end
        local r = ((l - 1) % 6) + 1
        for i = 0, 6 do st:cx(i, (i + r) % 7) end
      end
      off = off + 21 * len
    end
    local p = st:probs()
    for i = 1, 64 do worst = math.max(worst, math.abs(Y:get(i, j) - math.min(1, 64 * p[2 * i - 1]))) end
  end
  T.ok(worst < 1e-13, "gate by gate: " .. worst)
  -- one block is the directed model
  local c1 = qddm.pieces.check { model = "qdense_reupload", layers = 3, reuploads = 1, goal = "data", epochs = 1, data = d }
  local c2 = qddm.pieces.check { model = "qdense_directed", layers = 3, goal = "data", epochs = 1, data = d }
  local Y1, Y2 = qddm.model(c1).predict(w, X, lab), qddm.model(c2).predict(w, X, lab)
  T.ok(qd.allclose(Y1, Y2, { atol = 1e-14 }), "reuploads = 1")
  T.raises(function() qddm.run { model = "qdense_reupload", layers = 2, reuploads = 3, epochs = 1, data = d } end,
    "'reuploads': at most the 2 layers", "reuploads > layers")
end)

T.test("single sampling: U^T compiled once equals T runs (<= 1e-10)", function()
  local d = small_data()
  local c = qddm.pieces.check { model = "single_step", goal = "data", layers = 5, epochs = 1, data = d, T = 10 }
  local m = qddm.model(c)
  local w = qd.rng(6):normal(0, 0.4, m.nparams)
  local err = qddm.power_check(c, m, w, d.test)
  T.ok(err <= 1e-10, "max amplitude difference " .. err)
  local U = qd.matrix { { 0, 1 }, { 1, 1 } }
  T.ok(qddm.matrix_power(U, 5) == qd.matrix { { 3, 5 }, { 5, 8 } }, "Fibonacci power")
end)

T.test("dense width: closest parameter count below Q-Dense's", function()
  T.eq(qddm.dense_width(990), 7, "55 layers: 990 -> 64-7-64 (967)")
  T.eq(qddm.dense_width(72), 1, "at least 1")
  T.eq(qddm.dense_width(1155, 65), 8, "directed, 55 layers: 1155 -> 65-8-64 (1104)")
end)

-- ------------------------------------------------------------------ the protocol

T.test("run: every model end to end, run directory, resume", function()
  local d = small_data()
  for _, model in ipairs(qddm.models) do
    local dir = T.tmpdir()
    local res = qddm.run { model = model, layers = 2, epochs = 2, T = 3, samples = 2, data = d, out = dir,
                           quiet = true, pictures = false, goal = model == "single_step" and "data" or "noise" }
    local m = res.metrics
    for _, k in ipairs { "mse", "psnr", "ssim", "nparams", "seconds", "gen_mse", "gen_psnr", "gen_ssim" } do
      T.ok(type(m[k]) == "number", model .. ": metric " .. k)
    end
    for _, f in ipairs { "run.json", "params.npy", "loss.npy", "denoised.npy", "generated.npy" } do
      T.ok(io.open(dir .. "/" .. f) ~= nil, model .. ": " .. f)
    end
    if model == "single_step" then T.ok(m.unitary_power_error <= 1e-10, "U^T error") end
    T.rmdir(dir)
  end
  -- stop after 1 epoch and resume: the bits of the uninterrupted run
  local a, b = T.tmpdir(), T.tmpdir()
  local full = qddm.run { model = "qdense", layers = 2, epochs = 3, T = 3, samples = 2, data = d, out = a,
                          quiet = true, pictures = false, seed = 5 }
  local part = qddm.run { model = "qdense", layers = 2, epochs = 3, T = 3, samples = 2, data = d, out = b,
                          quiet = true, pictures = false, seed = 5, stop_after = 1 }
  T.ok(part.stopped, "stopped")
  local rest = qddm.run { model = "qdense", layers = 2, epochs = 3, T = 3, samples = 2, data = d, resume = b,
                          quiet = true, pictures = false, seed = 5 }
  T.ok(rest.params == full.params, "resumed parameters equal")
  T.eq(rest.metrics.psnr, full.metrics.psnr, "resumed psnr equal")
  T.rmdir(a)
  T.rmdir(b)
end)

T.test("run: bad configuration", function()
  local d = small_data()
  T.raises(function() qddm.run { model = "qdense", epochs = 1 } end, "'data'", "data missing")
  T.raises(function() qddm.run { model = "unet", epochs = 1, data = d } end, "'model'", "model")
  T.raises(function() qddm.run { model = "single_step", goal = "noise", epochs = 1, data = d } end,
    "goal 'data' expected", "single_step goal")
  T.raises(function() qddm.run { model = "qdense", epochs = 1, data = { train = 1, test = 2 } } end,
    "train and test image matrices", "data shape")
  local tiny = { train = qd.matrix(4, 2), test = qd.matrix(4, 2) }
  T.raises(function() qddm.run { model = "qdense", epochs = 1, data = tiny } end,
    "64 rows", "pixels")
  T.raises(function() qddm.run { model = "qdense_directed", epochs = 1,
                                 data = { train = d.train, test = d.test } } end, "train_labels", "labels")
  T.raises(function() qddm.run { model = "qdense", epochs = 1, data = d, lr = 0 } end, "'lr': > 0", "lr")
end)
