// OpenQASM 3 beyond the gate subset: constants and arithmetic, loops over ranges and sets,
// gate modifiers, a subroutine, aliases and slices, Unicode names, timing (ignored),
// `bit[n] c = measure q;` and if/else on measured bits.
OPENQASM 3.0;
include "stdgates.inc";
const int n = 4;
const float θ = pi / 8;
int[32] reps = n - 1;
float[64] step = θ * 2;
qubit[n] q;
qubit[2] anc;
let edge = q[0:1] || anc[1];
gate rot(φ) a { rz(φ) a; ry(φ / 2) a; }
def layer(qubit[2] pair, float[64] w) {
  ctrl @ rot(w) pair[0], pair[1];
  negctrl @ x pair[1], pair[0];
}
for int i in [0:n - 1] {
  h q[i];
}
for uint i in [0:2:n - 2] {
  cx q[i], q[i + 1];
}
for k in {1, 3} {
  rz(k * step) q[k];
}
reps += 1;
rx(reps * 0.1) anc[0];
ctrl @ ry(0.4) q[3], anc[0];
ctrl(2) @ rz(0.7) q[0], q[1], anc[1];
inv @ rot(0.3) q[2];
pow(3) @ t q[3];
pow(-2) @ sx q[1];
ctrl @ inv @ s q[2], anc[1];
negctrl(2) @ ctrl @ h q[0], q[1], q[3], anc[0];
ctrl @ gphase(0.5) q[1];
ctrl @ U(0.1, 0.2, 0.3) q[0], anc[1];
layer(q[2:3], 0.9);
layer(edge[1:2], -0.4);
delay[100ns] q[0];
box {
  cz q[0], q[3];
}
bit[2] c = measure anc;
if (c[0] == 1) {
  x q[0];
  ry(0.2) q[1];
} else {
  h q[2];
}
if (c == 2) rz(1.1) q[3];
bit b;
b = measure q[0];
if (!b) cx q[1], q[2];
