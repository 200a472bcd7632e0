-- qd.diffusion — the QuDDPM forward (scrambling) process (arXiv 2310.05866),
-- each call one C loop over the ensemble (runtime/core/diffusion.c).
--
--   qd.diffusion.scramble(E, h [, rng]) -> E
--     One forward step of strength h on every member, in place. Member k gets its own
--       W = [Π_{i<j} RZZ_ij(g/(2√n))] · ⊗_i RZ(φ_i3) RY(φ_i2) RZ(φ_i1),
--     φ ~ U[-π/8, π/8)·h (three per qubit), g ~ U[0.4, 0.6)·h (one per member, n ≥ 2).
--   qd.diffusion.forward(E0, schedule [, rng] [, {mode = "marginal"}]) -> {S_0, ..., S_T}
--     The forward family: a Lua list of T+1 ensembles, sets[t + 1] = S_t (sets[1] = a copy
--     of E0). schedule: a qd.Schedule, qd.Vector or table of strengths h_1..h_T.
--     mode "marginal" (default, as the reference code): S_t = t fresh steps on E0, drawn
--     independently for every t; "trajectory": one trajectory per member,
--     S_t = step t applied to S_{t-1} (same law of each S_t, T instead of T(T+1)/2 steps).
--   qd.diffusion.save(path, sets): one .npy of shape (T+1, N, 2^n) (qd.save_ensembles),
--     the layout of the QuDDPM reference data.
--
-- Randomness: a stream is split off rng (the run's generator by default); member k of
-- S_t draws from substreams of it indexed by (t,) k and the step, so results do not depend
-- on N or the thread count.
local core = require "qd.core"

local M = {
  scramble = core.diffusion_scramble,
  forward = core.diffusion_forward,
  save = core.save_ensembles,
}

return M
