-- test_crash.lua — regression tests of issue 10 ("crash-proof bindings"): one-liners that
-- crashed (segfault, heap overflow, uninitialised reads, UBSan reports) or misbehaved. Each
-- runs inside pcall and must raise a Lua error naming the argument, after which the
-- interpreter keeps working. Proxy tables answer __index / __len differently on each call,
-- to catch bindings that check a table in one pass and trust a second read.
local T = require "testlib"

local function tmp(name) return os.tmpname() .. "_" .. name .. ".npy" end

-- fn must raise; its message must contain every pattern (plain find)
local function raises(fn, ...)
  local ok, err = pcall(fn)
  T.ok(not ok, "expected an error, got none")
  err = tostring(err)
  for _, p in ipairs { ... } do
    T.ok(err:find(p, 1, true) ~= nil, "expected '" .. p .. "' in '" .. err .. "'")
  end
  -- the interpreter survives: allocate and compute something
  T.near(qd.fidelity(qd.state(1):h(0), qd.state(1):h(0)), 1, 1e-15, "alive after: " .. err)
  return err
end

-- a table whose #t and t[i] change between calls: call k of __len returns lens[k] (the
-- last one repeated); t[i] returns vals[k](i) on the k-th read of index i
local function proxy(lens, vals)
  local nlen, nread = 0, {}
  return setmetatable({}, {
    __len = function()
      nlen = nlen + 1
      return lens[math.min(nlen, #lens)]
    end,
    __index = function(_, i)
      nread[i] = (nread[i] or 0) + 1
      local f = vals[math.min(nread[i], #vals)]
      return f(i)
    end,
  })
end

T.test("metamethods check self (were segfaults)", function()
  local types = {
    qd.state(1), qd.dm(1), qd.ensemble(1, 2), qd.vector { 1, 2 }, qd.matrix { { 1 } }, qd.rng(1),
    qd.circuit(1), qd.channel.depolarizing { p = 0.1 }, qd.pauli_sum { { 1, "Z" } }, qd.schedule.linear { T = 2, from = 0, to = 1 },
  }
  for _, o in ipairs(types) do
    local mt = getmetatable(o)
    local name = qd.type(o)
    for _, mm in ipairs { "__tostring", "__index", "__len", "__gc", "__close", "__newindex", "__mul", "__add", "__sub",
                          "__div", "__unm" } do
      local f = rawget(mt, mm)
      if type(f) == "function" then
        raises(function() f({}, "n", 1) end, "expected")
        raises(function() f(nil, 1) end)
      end
    end
    local methods = rawget(mt, "methods") or {}
    for mname, f in pairs(methods) do
      if type(f) == "function" and debug.getinfo(f, "S").what == "C" then   -- the C methods
        local ok, err = pcall(f, {})
        T.ok(not ok, name .. ":" .. mname .. "({}) raises")
        T.ok(tostring(err):find("bad argument", 1, true) or tostring(err):find("expected", 1, true),
             name .. ":" .. mname .. "({}): " .. tostring(err))
      end
    end
  end
  -- the exact one-liners of the issue
  raises(function() return getmetatable(qd.state(1)).__tostring({}) end, "bad argument #1", "qd.State, qd.DensityMatrix or qd.Ensemble expected, got table")
  raises(function() return getmetatable(qd.vector({ 1, 2 })).__tostring({}) end, "qd.Vector or qd.Matrix expected, got table")
  raises(function() return getmetatable(qd.state(1)).__index({}, "n") end, "expected, got table")
  raises(function() return getmetatable(qd.dm(1)).__tostring({}) end, "expected, got table")
  raises(function() return getmetatable(qd.ensemble(1, 1)).__index({}, 1) end, "expected, got table")
  raises(function() return getmetatable(qd.matrix { { 1 } }).__tostring(1) end, "expected, got number")
  raises(function() return getmetatable(qd.circuit(1)).__gc({}) end, "qd.Circuit expected")
  raises(function() return getmetatable(qd.channel.depolarizing { p = 0.1 }).__gc({}) end, "qd.Channel expected")
  -- :free() on another object
  raises(function() qd.state(1).free({}) end, "expected, got table")
  raises(function() qd.vector { 1 }.free({}) end, "qd.Vector or qd.Matrix expected, got table")
  -- freed objects still print and free again
  local v = qd.vector { 1 }; v:free(); v:free()
  T.eq(tostring(v), "qd.Vector (freed)")
  local s = qd.state(1); s:free(); s:free()
  T.eq(tostring(s), "qd.State (freed)")
end)

T.test("tables are read once: proxies answering differently", function()
  local num = function() return 0.5 end
  local tab = function() return { 0.5, 0.5 } end
  -- vector / matrix: real on the first read, complex on a second would have been dropped
  local v = qd.vector(proxy({ 2 }, { num, tab }))
  T.eq(v:is_complex(), false); T.eq(v[2], 0.5)
  raises(function() qd.vector(proxy({ -1 }, { num })) end, "bad argument #1 to 'vector'", "length 0..")
  -- ensemble.from: position 2 a State on the first read, a string on a second
  local st = function() return qd.state(1) end
  local E = qd.ensemble.from(proxy({ 2, 5 }, { st, function() return "x" end }))
  T.eq(E.N, 2)
  raises(function() qd.ensemble.from(proxy({ 2 }, { function(i) return i == 1 and qd.state(1) or qd.state(2) end })) end,
         "bad argument #1 to 'from'", "states of equal size expected")
  -- save_ensembles: first read says 2 ensembles, a second says 1000 (was a heap overflow)
  local ens = function() return qd.ensemble(1, 2) end
  local p = tmp("saveens")
  qd.save_ensembles(p, proxy({ 2, 1000 }, { ens }))
  local back = qd.load_npy(p, "ensembles")
  T.eq(#back, 2); os.remove(p)
  raises(function() qd.save_ensembles(p, proxy({ -5 }, { ens })) end, "bad argument #2 to 'save_ensembles'", "length 0..")
  -- entries read once: a second answer (a number) is never seen
  qd.save_ensembles(p, proxy({ 2 }, { ens, function() return 1 end }))
  T.eq(#qd.load_npy(p, "ensembles"), 2); os.remove(p)
  -- qd.diffusion.save goes through save_ensembles
  if qd.diffusion and qd.diffusion.save then
    local ok = pcall(qd.diffusion.save, tmp("dsave"), proxy({ 2, 1000 }, { ens }))
    T.ok(ok == true or ok == false, "diffusion.save survives a proxy")
  end
  -- schedule.piecewise: part lengths change between reads (was a heap overflow in memcpy)
  local grow = 0
  local part = setmetatable({}, { __len = function() grow = grow + 1; return grow == 1 and 2 or 50000 end,
                                  __index = function() return 0.1 end })
  local S = qd.schedule.piecewise { part, qd.schedule.linear { T = 3, from = 0.1, to = 0.2 } }
  T.eq(S.T, 5, "the length read once")
  raises(function() qd.schedule.piecewise(proxy({ -3 }, { num })) end, "bad argument #1 to 'piecewise'", "length 0..")
  -- sse: feedback.terms whose __len turns negative (was a heap overflow)
  local terms = proxy({ 1, -100 }, { function() return "Z" end })
  local res = qd.sse(qd.state(1), { dt = 0.01, steps = 2, feedback = { terms = terms, fn = function() return { 0.1 } end } })
  T.eq(res.steps, 2, "the terms' length read once")
  raises(function()
    qd.sse(qd.state(1), { dt = 0.01, steps = 2, feedback = { terms = proxy({ -1 }, { function() return "Z" end }), fn = function() return { 0.1 } end } })
  end, "bad argument #2 to 'sse'", "got -1")
  -- lindblad: jumps with a negative length (read uninitialised memory)
  raises(function() qd.lindblad(qd.dm(1), nil, proxy({ -7 }, { function() return "Z" end }), 1) end,
         "bad argument #3 to 'lindblad'", "0..4096 operators expected, got -7")
  -- loss samples with a negative length
  raises(function() qd.loss.mmd_bits(proxy({ -2 }, { num }), { 0.5, 0.5 }, { sigma = 1 }) end, "bad argument #1 to 'mmd_bits'", "length 0..")
end)

T.test("SSE callbacks: errors are caught, named, and leak nothing", function()
  local o = function(fn) return { dt = 0.01, steps = 3, measure = { "Z" }, gamma = 1, feedback = { terms = { "X" }, fn = fn } } end
  raises(function() qd.sse(qd.state(1), o(function() error("boom") end)) end,
         "bad argument #2 to 'sse' (option 'feedback': feedback function failed at step 1:", "boom")
  local fv = qd.vector { 0.1 }; fv:free()
  raises(function() qd.sse(qd.state(1), o(function() return fv end)) end,
         "bad argument #2 to 'sse'", "got a freed array")
  raises(function() qd.sse(qd.state(1), o(function() return setmetatable({}, { __len = function() error("len!") end }) end)) end,
         "bad argument #2 to 'sse'", "len!")
  raises(function() qd.sse(qd.state(1), o(function() return setmetatable({}, { __len = function() return 1 end,
                                                                                 __index = function() error("idx!") end }) end)) end,
         "bad argument #2 to 'sse'", "idx!")
  -- many failing runs: the core's buffers are freed (would grow the process otherwise)
  for _ = 1, 200 do pcall(qd.sse, qd.ensemble(3, 4), o(function() error("x") end)) end
  T.ok(true, "200 failing feedback runs")
end)

T.test("UBSan: empty parameter lists (memcpy from NULL)", function()
  local c = qd.circuit(1):h(0):measure({ 0 })
  local E, g = c:grad(qd.state(1), {}, function(out, P) return 0.5, qd.state(1):vector() end, { expected = true })
  T.eq(#g, 0); T.ok(E == E)
  local c0 = qd.circuit(1):h(0)
  local out = c0:run(qd.state(1), qd.vector(1):copy() and qd.vector {})
  T.eq(qd.type(out), "qd.State")
end)

T.test("values that cannot be states are refused at every way in", function()
  raises(function() qd.state.from { 1, 1 } end, "bad argument #1 to 'from'", "normalised amplitudes expected (squared norm 2")
  raises(function() qd.state.from { 0 / 0, 0 } end, "bad argument #1 to 'from'", "finite amplitudes expected (position 1)")
  raises(function() qd.state.from({ 0, 0 }, { normalize = true }) end, "bad argument #1 to 'from'", "norm 0 cannot be normalised")
  raises(function() qd.state.from({ 1, 0 }, { bogus = 1 }) end, "bad argument #2 to 'from'", "unknown option 'bogus'")
  local s = qd.state.from({ 1, 1 }, { normalize = true })
  T.near(qd.fidelity(s, s), 1, 1e-15, "fidelity of a normalised state")
  local r = qd.dm(s)
  T.near(r:trace(), 1, 1e-15); T.near(qd.purity(r), 1, 1e-15)
  -- within the stated tolerance 1e-8
  T.eq(qd.type(qd.state.from { math.sqrt(1 + 4e-9), 0 }), "qd.State")
  raises(function() qd.state.from { math.sqrt(1 + 4e-8), 0 } end, "normalised amplitudes expected")
  -- ensemble.from: states and matrices
  raises(function() qd.ensemble.from(qd.matrix { { 1, 1 } }) end, "bad argument #1 to 'from'", "normalised amplitudes expected")
  T.near(qd.ensemble.from(qd.matrix { { 1, 1 } }, { normalize = true })[1]:norm(), 1, 1e-15)
  local u = qd.state.from({ 3, 4 }, { normalize = false })   -- explicit: a gradient vector
  raises(function() qd.ensemble.from { u } end, "bad argument #1 to 'from'", "squared norm 25")
  raises(function() qd.ensemble(1, 2):set(1, u) end, "bad argument #2 to 'set'", "squared norm 25")
  raises(function() qd.dm(u) end, "bad argument #1 to 'dm'", "squared norm 25")
  -- density matrices
  raises(function() qd.dm { { 0.5, 1 }, { 0, 0.5 } } end, "bad argument #1 to 'dm'", "Hermitian")
  raises(function() qd.dm { { 1.5, 0 }, { 0, -0.5 } } end, "positive semidefinite matrix expected")
  -- load_npy: non-Hermitian "dm", NaN state, unnormalised ensembles -> nil, message
  local p = tmp("nonherm")
  qd.matrix { { 0.5, 1 }, { 0, 0.5 } }:save_npy(p)
  local x, msg = qd.load_npy(p, "dm")
  T.eq(x, nil); T.ok(msg:find("density matrix expected", 1, true), msg)
  os.remove(p)
  p = tmp("nan")
  qd.vector { { 0 / 0, 0 }, 0 }:save_npy(p)
  x, msg = qd.load_npy(p, "state")
  T.eq(x, nil); T.ok(msg:find("finite amplitudes expected (position 1)", 1, true), msg)
  x, msg = qd.load_npy(p)
  T.eq(x, nil); T.ok(msg:find("finite amplitudes expected", 1, true), msg)
  os.remove(p)
  p = tmp("unnorm_ens")
  qd.matrix { { 1, 1 }, { 1, 0 } }:save_npy(p)
  x, msg = qd.load_npy(p, "ensemble")
  T.eq(x, nil); T.ok(msg:find("member 1: normalised amplitudes expected", 1, true), msg)
  os.remove(p)
  -- a valid file still loads
  p = tmp("ok")
  qd.haar_state(3, qd.rng(2)):save_npy(p)
  T.eq(qd.type(qd.load_npy(p)), "qd.State")
  os.remove(p)
end)

T.test("options: unknown keys, and c:run options without parameters", function()
  local c = qd.circuit(1):h(0):measure({ 0 })
  local _, o1 = c:run(qd.state(1), { rng = qd.rng(3) })
  local _, o2 = c:run(qd.state(1), nil, { rng = qd.rng(3) })
  T.eq(o1:get(1, 1), o2:get(1, 1), "the rng of c:run(x, {rng=}) is used")
  raises(function() c:run(qd.state(1), { bogus = 1 }) end, "bad argument #3 to 'run'", "unknown option 'bogus'")
  raises(function() c:apply(qd.state(1), { bogus = 1 }) end, "bad argument #3 to 'apply'", "unknown option 'bogus'")
  -- with parameters, options are the third argument and a keyed table is not parameters
  local cp = qd.circuit(1):ry(0)
  raises(function() cp:run(qd.state(1), { 0.1, rng = qd.rng(1) }) end, "bad argument #2 to 'run'", "got key 'rng'")
  raises(function() cp:run(qd.state(1), { 0.1 }, { bogus = 1 }) end, "bad argument #3 to 'run'", "unknown option 'bogus'")
end)

T.test("work bounded before it starts", function()
  local t0 = os.clock()
  raises(function() qd.lindblad(qd.dm(1), qd.pauli_sum { { 1, "X" } }, {}, 2 ^ 62) end,
         "bad argument #4 to 'lindblad'", "integration steps", "more than max_steps")
  raises(function() qd.lindblad(qd.dm(1), qd.pauli_sum { { 1, "X" } }, {}, 1e12, { max_steps = 1000 }) end, "more than max_steps = 1000")
  -- no generator: nothing to integrate, any time is fine
  T.eq(qd.type((qd.lindblad(qd.dm(1), nil, {}, 2 ^ 62))), "qd.DensityMatrix")
  raises(function() qd.sse(qd.ensemble(1, 100), { dt = 0.1, steps = 2 ^ 40 }) end, "bad argument #2 to 'sse'", "option 'steps'")
  raises(function() qd.sse(qd.state(1), { dt = 0.1, steps = math.maxinteger }) end, "option 'steps'")
  T.ok(os.clock() - t0 < 5, "refused up front")
end)
