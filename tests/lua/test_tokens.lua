-- test_tokens.lua — qd.tokens (genQC token tensors): exact round trips for 10^4 random
-- circuits of each of the paper's vocabularies (tokens -> circuit -> tokens, and circuit ->
-- tokens -> circuit with equal unitaries), the encoding's conventions (signs, padding,
-- parameter map), .npy in and out in genQC's (B, n, G) shape, a decode fuzz test (every
-- mutated tensor is either decoded or rejected with a reason, and the verdict agrees with an
-- independent checker written here), and argument errors.
local T = require "testlib"

local vocabs = { srv = { "h", "cx" }, compile = { "h", "cx", "z", "x", "ccx", "swap" },
                 multimodal = { "h", "cx", "ccx", "swap", "rx", "ry", "rz", "cp" } }

local function col_equal(A, B)
  local r, c = A:shape()
  local r2, c2 = B:shape()
  if r ~= r2 or c ~= c2 then return false end
  for i = 1, r do
    for j = 1, c do if A:get(i, j) ~= B:get(i, j) then return false, i, j end end
  end
  return true
end

T.test("encoding conventions", function()
  local c = qd.circuit(3):h(0):cx(2, 1):ccx(0, 2, 1):swap(2, 0):rx(1, 1.5):cp(2, 0, -0.5)
  local Tk, P = qd.tokens.encode(c, { vocab = "multimodal", max_gates = 8 })
  local want = { { 1, 0, -3, 4, 0, 8, 9, 9 }, { 0, 2, 3, 0, 5, 0, 9, 9 }, { 0, -2, -3, 4, 0, -8, 9, 9 } }
  for q = 1, 3 do
    for t = 1, 8 do T.eq(Tk:get(q, t), want[q][t], "token " .. q .. "," .. t) end
  end
  T.near(P:get(1, 5), (1.5 - 2 * math.pi) / (2 * math.pi), 1e-15, "angle token")
  T.near(P:get(1, 6), ((-0.5) % (4 * math.pi) - 2 * math.pi) / (2 * math.pi), 1e-15, "negative angle mod 4 pi")
  T.eq(P:get(1, 1), 0, "no angle: 0")
  T.eq(qd.tokens.padding("srv"), 3, "padding = V + 1")
  local Tn = qd.tokens.encode(qd.circuit(2):h(1), { max_gates = 3, pad = false })
  T.eq(Tn:get(1, 2), 0, "pad = false leaves zeros")
  T.eq(select(2, qd.tokens.encode(qd.circuit(2):h(1), { max_gates = 3 })), nil, "no parameter tensor for {h, cx}")
  -- slots: offset + scale * value
  local cs = qd.circuit(2):ry(0, "a"):rz(1, { "a", scale = 2, offset = 0.25 })
  local _, Ps = qd.tokens.encode(cs, { vocab = "multimodal", params = { 0.5 } })
  T.near(Ps:get(1, 2), qd.tokens.angle_token(1.25), 1e-15, "slot angle")
  local d = qd.tokens.decode(Tk, P, { vocab = "multimodal" })
  T.near(qd.synth.infidelity(d, c), 0, 1e-13, "decoded circuit has the unitary")
end)

-- tokens -> circuit -> tokens for B random tensors of a vocabulary on n qubits, G steps
local function roundtrip(name, n, G, B, seed)
  local vocab = vocabs[name]
  local batch, P = qd.tokens.random(n, G, vocab, B, qd.rng(seed), { min_gates = 0 })
  local bad, maxd = 0, 0
  for b = 1, B do
    local Tk = qd.tokens.column(batch, b, n)
    local Pk = P and qd.tokens.column(P, b, P:shape() // G) or nil
    local c, why = qd.tokens.decode(Tk, Pk, { vocab = vocab })
    if not c then
      bad = bad + 1
    else
      local T2, P2 = qd.tokens.encode(c, { vocab = vocab, max_gates = G })
      if not col_equal(T2, Tk) then bad = bad + 1 end
      if Pk then
        for t = 1, G do
          local dd = math.abs(P2:get(1, t) - Pk:get(1, t))
          if dd > maxd then maxd = dd end
        end
      end
    end
    if why and bad == 1 then print("  first failure: " .. why) end
  end
  return bad, maxd
end

T.test("round trip tokens -> circuit -> tokens, 10^4 per vocabulary", function()
  local bad, maxd = roundtrip("srv", 3, 8, 10000, 1)
  T.eq(bad, 0, "{h, cx} on 3 qubits, 8 gates")
  bad, maxd = roundtrip("compile", 3, 12, 10000, 2)
  T.eq(bad, 0, "{h, cx, z, x, ccx, swap} on 3 qubits, 12 gates")
  bad, maxd = roundtrip("multimodal", 4, 16, 10000, 3)
  T.eq(bad, 0, "multimodal on 4 qubits, 16 gates")
  T.ok(maxd < 1e-14, "angle tokens to rounding, max difference " .. maxd)
end)

T.test("round trip circuit -> tokens -> circuit (unitaries)", function()
  local r = qd.rng(7)
  local worst, nops_bad = 0, 0
  for k = 1, 300 do
    local vocab = vocabs.multimodal
    local c = qd.circuit(3)
    for _ = 1, r:integer(0, 10) do
      local g = vocab[r:integer(1, #vocab)]
      local qs = { 0, 1, 2 }
      for i = 3, 2, -1 do local j = r:integer(1, i); qs[i], qs[j] = qs[j], qs[i] end
      if g == "h" then c:h(qs[1]) elseif g == "cx" then c:cx(qs[1], qs[2])
      elseif g == "ccx" then c:ccx(qs[1], qs[2], qs[3]) elseif g == "swap" then c:swap(qs[1], qs[2])
      elseif g == "cp" then c:cp(qs[1], qs[2], r:uniform(-20, 20))
      else c[g](c, qs[1], r:uniform(-20, 20)) end
    end
    local Tk, P = qd.tokens.encode(c, { vocab = vocab, max_gates = 10 })
    local d = assert(qd.tokens.decode(Tk, P, { vocab = vocab }))
    if #d:ops() ~= #c:ops() then nops_bad = nops_bad + 1 end
    -- angles are periodic in 4 pi, so the unitaries agree exactly up to rounding
    local f = qd.synth.distance(d, c)
    if f > worst then worst = f end
  end
  T.eq(nops_bad, 0, "same number of ops")
  T.ok(worst < 1e-20, "same unitary, max 1/2||U-V||^2 = " .. worst)
end)

T.test(".npy in genQC's shape (B, n, G)", function()
  local dir = T.tmpdir()
  local batch = qd.tokens.random(3, 5, vocabs.srv, 7, qd.rng(3))
  qd.tokens.save(dir .. "/t.npy", batch, 3)
  local B2, n, G = qd.tokens.load(dir .. "/t.npy")
  T.eq(n, 3, "n")
  T.eq(G, 5, "G")
  T.ok(col_equal(B2, batch), "tokens back")
  -- the header says (7, 3, 5) and entry (b, q, t) is circuit b's token at qubit q, step t
  local f = io.open(dir .. "/t.npy", "rb")
  local s = f:read("a")
  f:close()
  T.ok(s:find("'shape': (7, 3, 5)", 1, true) ~= nil, "shape in the header")
  local T1 = qd.tokens.column(batch, 2, 3)
  local off = #s - 7 * 15 * 8
  local b, q, t = 1, 2, 3
  local x = string.unpack("<d", s, off + 1 + 8 * (b * 15 + q * 5 + t))
  T.eq(x, T1:get(q + 1, t + 1), "C order (B, n, G)")
  T.eq(select(2, qd.tokens.load(dir .. "/missing.npy")) ~= nil, true, "missing file: nil, message")
  T.rmdir(dir)
end)

-- an independent validity checker (genQC's rules as qd states them)
local function valid_ref(Tk, V)
  local n, G = Tk:shape()
  local padded = false
  for t = 1, G do
    local g, pad, nc, nt, nz = nil, 0, 0, 0, 0
    for q = 1, n do
      local v = Tk:get(q, t)
      if v ~= math.floor(v) then return false end
      if v == V + 1 then pad = pad + 1
      elseif v ~= 0 then
        if math.abs(v) > V then return false end
        if g and g ~= math.abs(v) then return false end
        g = math.abs(v)
        if v < 0 then nc = nc + 1 else nt = nt + 1 end
      end
      if v ~= 0 then nz = nz + 1 end
    end
    if pad > 0 then
      if pad ~= n then return false end
      padded = true
    else
      if padded then return false end
      if g then
        local want = ({ { 0, 1 }, { 1, 1 }, { 0, 1 }, { 0, 1 }, { 2, 1 }, { 0, 2 } })[g]
        if nc ~= want[1] or nt ~= want[2] then return false end
      end
    end
  end
  return true
end

T.test("decode fuzz: malformed tensors rejected with a reason", function()
  local vocab = vocabs.compile
  local V = #vocab
  local batch = qd.tokens.random(4, 10, vocab, 3000, qd.rng(11))
  local r = qd.rng(12)
  local agree, reasons, total = 0, 0, 0
  local seen = {}
  for b = 1, 3000 do
    local Tk = qd.tokens.column(batch, b, 4)
    for _ = 1, r:integer(1, 3) do
      local x = r:integer(-V - 2, V + 3)
      if r:uniform() < 0.05 then x = x + 0.5 end
      Tk:set(r:integer(1, 4), r:integer(1, 10), x)
    end
    local c, why = qd.tokens.decode(Tk, { vocab = vocab })
    local ok = valid_ref(Tk, V)
    total = total + 1
    if (c ~= nil) == ok then agree = agree + 1 end
    if not c then
      if type(why) == "string" and why:match("^column %d+") then reasons = reasons + 1 end
      seen[(why or ""):gsub("^column %d+[^:]*: ", ""):gsub("%d", "#")] = true
    end
  end
  T.eq(agree, total, "decode agrees with the reference checker")
  local nbad = 0
  for _ in pairs(seen) do nbad = nbad + 1 end
  T.ok(nbad >= 6, "several kinds of reasons (" .. nbad .. ")")
  T.ok(reasons > 1000, "rejections name the column (" .. reasons .. ")")
  local cases = {
    { { { -2, 0 }, { 0, 0 } }, "control without target" },
    { { { 1, 0 }, { 2, 0 } }, "two gates in one column" },
    { { { 3, 1 }, { 3, 0 } }, "a gate after the padding" },
    { { { 3, 0 }, { 3, 0 } }, "an empty column after the padding" },
    { { { 3, 0 }, { 0, 0 } }, "padding token mixed" },
    { { { 7, 0 }, { 0, 0 } }, "unknown token 7" },
    { { { 0.5, 0 }, { 0, 0 } }, "not an integer" },
    { { { 2, 0 }, { 2, 0 } }, "gate cx needs 1 control and 1 target, got 0 and 2" },
    { { { 0 / 0, 0 }, { 0, 0 } }, "not an integer" },
  }
  for _, cs in ipairs(cases) do
    local c, why = qd.tokens.decode(qd.matrix(cs[1]), { vocab = "srv" })
    T.eq(c, nil, cs[2])
    T.ok(why and why:find(cs[2], 1, true), "reason '" .. tostring(why) .. "' contains '" .. cs[2] .. "'")
  end
  local ok = qd.tokens.decode(qd.matrix { { 0, 0 }, { 0, 0 } }, { vocab = "srv" })
  T.eq(#ok, 0, "all-empty tensor is the empty circuit")
end)

T.test("argument errors", function()
  local c = qd.circuit(2):h(0):rz(1, 0.1)
  T.raises(function() qd.tokens.encode(c, { vocab = "srv" }) end, "op 2 (gate rz) is not in the vocabulary {h, cx}")
  T.raises(function() qd.tokens.encode(c, { vocab = "multimodal", max_gates = 1 }) end, "2 gates do not fit max_gates = 1")
  T.raises(function() qd.tokens.encode(c, { vocab = "nope" }) end, "option 'vocab'")
  T.raises(function() qd.tokens.encode(c, { vocab = { "h", "qq" } }) end, "gate 'qq'")
  T.raises(function() qd.tokens.encode(c, { colour = 1 }) end, "unknown option 'colour'")
  T.raises(function() qd.tokens.encode(5) end, "qd.Circuit expected")
  T.raises(function() qd.tokens.encode(qd.circuit(1):rx(0, "a"), { vocab = "multimodal" }) end, "give option 'params'")
  T.raises(function() qd.tokens.decode(5, { vocab = "srv" }) end, "qd.Matrix")
  T.raises(function() qd.tokens.decode(qd.matrix(2, 2), { vocab = { "h", "h" } }) end, "listed twice")
  T.raises(function() qd.tokens.random(1, 4, vocabs.srv, 3) end, "qubits 2 ... 16 expected")
  T.raises(function() qd.tokens.random(2, 4, vocabs.srv, 3, nil, { min_gates = 5 }) end, "min_gates")
  T.raises(function() qd.tokens.random(2, 4, vocabs.srv, 3, nil, { bogus = 1 }) end, "bogus")
  T.raises(function() qd.tokens.column(qd.matrix(6, 2), 3, 2) end, "column 1 ... 2 expected")
  T.raises(function() qd.tokens.save("/nonexistent-qd/x.npy", qd.matrix(6, 2), 4) end, "divisor")
end)

return T
