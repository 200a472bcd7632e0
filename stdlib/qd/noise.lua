-- qd.noise — noise models for circuits: which channel follows which gate.
--   local model = { gates = qd.channel.depolarizing{p = 1e-3},          -- after every gate
--                   cx = qd.channel.depolarizing{p = 1e-2, n = 2},       -- after cx instead
--                   unitary = qd.channel.dephasing{p = 1e-3} }           -- after add_unitary ops
--   local noisy = c:with_noise(model)      -- a new circuit; c is unchanged
-- A channel on as many qubits as the gate acts on the gate's qubits; a 1-qubit channel is
-- applied to each of them. Measurements and resets are left as they are. The noisy circuit
-- runs exactly on a DensityMatrix (with gradients) and as quantum trajectories on States and
-- Ensembles (c:channel in docs/api.md).
local argerror = require("qd.caller").argerror

local M = {}

-- apply(c, model) -> a new circuit with the model's channels after its gates
function M.apply(c, model)
  local qd = require "qd"   -- here, not at load: qd's init requires this module
  if qd.type(c) ~= "qd.Circuit" then argerror("with_noise", 1, "qd.Circuit expected, got " .. qd.type(c)) end
  if type(model) ~= "table" then argerror("with_noise", 2, "noise model table expected, got " .. qd.type(model)) end
  local gates = qd.gates()
  for k, ch in pairs(model) do
    if type(k) ~= "string" or not (k == "gates" or k == "unitary" or gates[k]) then
      argerror("with_noise", 2, "unknown key '" .. tostring(k) .. "' in the noise model (gates, unitary or a gate name)")
    end
    if qd.type(ch) ~= "qd.Channel" then
      argerror("with_noise", 2, "model." .. k .. ": qd.Channel expected, got " .. qd.type(ch))
    end
    if ch.n == nil then
      argerror("with_noise", 2, "model." .. k .. ": a channel of fixed size expected (give n=)")
    end
  end
  local out = c:copy()
  local ops = c:ops()
  for i = #ops, 1, -1 do   -- from the end, so earlier positions stay valid
    local op = ops[i]
    local ch
    if op.kind == "gate" then ch = model[op.name] or model.gates
    elseif op.kind == "unitary" then ch = model.unitary end
    if ch then
      local k = #op.qubits
      if ch.n == k then
        out:channel(ch, op.qubits, { at = i + 1 })
      elseif ch.n == 1 then
        for j = k, 1, -1 do out:channel(ch, { op.qubits[j] }, { at = i + 1 }) end
      else
        argerror("with_noise", 2, string.format("a %d-qubit channel after the %d-qubit op %d (%s): a channel of %d "
          .. "qubit%s or of 1 expected", ch.n, k, i, op.name or op.kind, k, k == 1 and "" or "s"))
      end
    end
  end
  return out
end

return M
