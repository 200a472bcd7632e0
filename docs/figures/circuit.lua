-- circuit.lua — docs/figures/denoiser.png (make figures): the QuDDPM denoiser of the circle
-- task, qd.ansatz.quddpm(1, 2, {ancillas = 2}) (two of its six layers), drawn by c:plot().
--   qd docs/figures/circuit.lua OUT.png
local out = assert(arg[1], "usage: qd docs/figures/circuit.lua OUT.png")
local c = qd.ansatz.quddpm(1, 2, { ancillas = 2 })
c:plot { out = out, title = "QuDDPM denoiser, 1 data qubit + 2 ancillas, 2 layers" }
print("wrote " .. out)
