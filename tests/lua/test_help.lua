-- test_help.lua — help() covers every public name: a walk over the qd table (functions,
-- callable tables, sub-tables, values; qd.core skipped) and over the methods of one object
-- of every type must find a help entry for each ("qd.Type:method" for methods; gates from
-- the gate table). Also help(qd), help(module), help("qd.State"), help(s.measure), the
-- "no documentation" and help(nil) messages, and that docs/reference.md is what
-- scripts/gen_reference.lua generates now.
local T = require "testlib"
local H = require "qd.help"
local docs = H.docs
local root = (arg and arg[0] and arg[0]:match("^(.*)/tests/lua/[^/]*$")) or "."

local function helptext(...)
  local out = {}
  local saved = print
  print = function(...)
    local t = {}
    for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
    out[#out + 1] = table.concat(t, "\t")
  end
  local ok, err = pcall(help, ...)
  print = saved
  if not ok then error(err, 0) end
  return table.concat(out, "\n")
end
local function has(s, sub) return s:find(sub, 1, true) ~= nil end

-- one object of every type
local function objects()
  return {
    qd.state(1), qd.dm(1), qd.ensemble(1, 2), qd.vector(2), qd.matrix(2, 2), qd.rng(1),
    qd.circuit(1), select(2, qd.circuit(1):forward(qd.state(1))), qd.pauli_sum("Z"),
    qd.channel.dephasing { p = 0.1 }, qd.schedule.linear { T = 3, from = 0.1, to = 0.2 },
    qd.nn.mlp { sizes = { 1, 1 } }, qd.nn.conv { length = 2, inputs = 1, channels = 1, outputs = 1 },
    qd.mpi.dstate(3),
  }
end
local gates = qd.gates()
local gate_types = { ["qd.State"] = true, ["qd.DensityMatrix"] = true, ["qd.Ensemble"] = true, ["qd.Circuit"] = true,
                     ["qd.DistState"] = true }

T.test("every public name has help", function()
  local missing, seen, count = {}, {}, 0
  local function walk(t, prefix)
    local keys = {}
    for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v, name = t[k], prefix .. "." .. k
      if name ~= "qd.core" then
        count = count + 1
        if not docs[name] then missing[#missing + 1] = name end
        if type(v) == "table" and not seen[v] then
          seen[v] = true
          walk(v, name)
        end
      end
    end
  end
  walk(qd, "qd")
  local types = {}
  for _, o in ipairs(objects()) do
    local t = qd.type(o)
    types[t] = true
    if not docs[t] then missing[#missing + 1] = t end
    local mt = getmetatable(o)
    T.ok(type(mt.methods) == "table", t .. " exposes its methods")
    for m in pairs(mt.methods) do
      count = count + 1
      if not (docs[t .. ":" .. m] or (gates[m] and gate_types[t])) then missing[#missing + 1] = t .. ":" .. m end
    end
  end
  for _, t in ipairs(H.types) do T.ok(types[t], "an object of " .. t .. " is built") end
  table.sort(missing)
  T.ok(#missing == 0, #missing .. " of " .. count .. " public names without help: " .. table.concat(missing, " "))
  T.ok(count > 300, "walked " .. count .. " names")
end)

-- the stdlib module (H.modules) a docs key belongs to, if any
local function module_of(key)
  for _, mod in ipairs(H.modules) do
    if key == mod or key:sub(1, #mod + 1) == mod .. "." then return mod end
  end
end

T.test("no stale entries", function()
  local mts = {}
  for _, o in ipairs(objects()) do mts[qd.type(o)] = getmetatable(o) end
  local stale = {}
  for key in pairs(docs) do
    local t, m = key:match("^(qd%.%u[%w_]*):([%w_]+)$")
    local ok
    if t then
      ok = mts[t] and mts[t].methods[m] ~= nil
    elseif key:match("^qd%.%u[%w_]*$") then
      ok = mts[key] ~= nil
    elseif module_of(key) then
      local mod = module_of(key)
      local okr, M = pcall(require, mod)
      ok = okr and (key == mod or M[key:sub(#mod + 2)] ~= nil)
    elseif key == "qd" then
      ok = true
    else
      local v = qd
      for part in key:sub(4):gmatch("[^.]+") do   -- (a field may be false: qd.mpi.enabled)
        if type(v) == "table" then v = v[part] else v = nil end
      end
      ok = v ~= nil
    end
    if not ok then stale[#stale + 1] = key end
  end
  table.sort(stale)
  T.ok(#stale == 0, "help entries for names that do not exist: " .. table.concat(stale, " "))
end)

T.test("overviews, types, methods by value", function()
  local q = helptext(qd)
  T.ok(has(q, "qd: quantum generative modelling") and has(q, "entries:"), q:sub(1, 80))
  T.ok(not has(q, "no documentation"), "help(qd) documented")
  for _, name in ipairs { "qd.state(n [, bits])", "qd.random:", "qd.loss:", "qd.load_npy(path" } do
    T.ok(has(q, "\n    " .. name), "help(qd) lists " .. name)
  end
  local r = helptext(qd.random)
  T.ok(has(r, "qd.random:") and has(r, "\n    qd.random.unitary(n [, rng])"), r)
  T.ok(has(helptext(qd.optim.schedule), "\n    qd.optim.schedule.cosine{lr=, T="))
  -- a type by name or by object: its paragraph, methods and gates
  local st = helptext("qd.State")
  T.eq(st, helptext(qd.state(1)), "help(\"qd.State\") == help(s)")
  T.ok(has(st, "methods: amp apply") and has(st, "gates: ccx"), st)
  T.ok(has(helptext("State"), "qd.State: a pure state"), "help(\"State\")")
  for _, t in ipairs(H.types) do T.ok(has(helptext(t), "methods:"), "help(\"" .. t .. "\")") end
  -- a method taken from an object finds its type's entry
  local s = qd.state(2)
  T.eq(helptext(s.measure), docs["qd.State:measure"])
  T.eq(helptext(qd.dm(1).measure), docs["qd.DensityMatrix:measure"])
  T.eq(helptext(qd.ensemble(1, 1).get), docs["qd.Ensemble:get"])
  T.ok(has(helptext(qd.circuit(1).run), "c:run(x"))
  T.ok(has(helptext(qd.circuit(1).rx), "c:rx(q0, theta) -> c"))
  T.ok(has(helptext(qd.rng(1).split), "r:split()"))
  T.ok(has(helptext(qd.vector(1).get), "v:get(i)"), "shared Vector/Matrix functions: the Vector entry")
  T.ok(has(helptext(s.fidelity), "qd.fidelity(a, b)") and has(helptext(s.fidelity), "qd.State:fidelity"),
       "a method that is a qd function: its entry and the other name")
  T.eq(helptext("qd.State:measure"), docs["qd.State:measure"])
  T.eq(helptext("qd.State.measure"), docs["qd.State:measure"], "dot for colon")
  local m = helptext("measure")
  T.ok(has(m, docs["qd.State:measure"]) and has(m, 'help("qd.Circuit:measure")'), m)
  T.ok(has(helptext("qd.Circuit:rx"), "Each angle"), "circuit gates")
  T.ok(has(helptext("qd.Ensemble:rx"), "obj:rx(q0, theta) -> obj"))
  -- keys distinguish types
  T.ok(docs["qd.PauliSum:expect"] ~= docs["qd.State:expect"])
  -- undocumented values and nil say so
  local u = helptext({})
  T.ok(has(u, "no documentation for table") and has(u, "help()"), u)
  T.ok(has(helptext("qd.nothing"), "no documentation for qd.nothing; help()"))
  local n = helptext(nil)
  T.ok(has(n, "help(nil)") and has(n, 'help("qd.State")') and not has(n, "qubit 0"), n)
  T.ok(has(helptext(), "qubit 0 is the most significant bit"), "help() is the overview")
  T.ok(has(helptext(qd.random.state), "qd.haar_state(n"), "an alias finds the first name")
end)

T.test("docs/reference.md is generated from help", function()
  local gen = assert(loadfile(root .. "/scripts/gen_reference.lua"))("--return")
  local f = io.open(root .. "/docs/reference.md", "rb")
  local cur = f and f:read("a")
  if f then f:close() end
  T.ok(cur == gen, "docs/reference.md is out of date: run `build/qd scripts/gen_reference.lua > docs/reference.md`")
  for key in pairs(docs) do
    T.ok(has(gen, "### `" .. key .. "`"), "reference has " .. key)
  end
end)
