// Teleportation with classical control on two one-bit registers (QASMBench's
// teleportation_n3 shape), then a correction that reads a two-bit register.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c0[1];
creg c1[1];
creg m[2];
u3(0.3,0.2,0.1) q[0];
h q[1];
cx q[1],q[2];
barrier q[0],q[1],q[2];
cx q[0],q[1];
h q[0];
measure q[0] -> c0[0];
measure q[1] -> c1[0];
if(c1==1) x q[2];
if(c0==1) z q[2];
h q[3];
cx q[2],q[3];
measure q[3] -> m[1];
if(m==2) u3(0.4,0.1,0.2) q[2];
if(m==0) ry(1.3) q[2];
reset q[0];
if(c0==1) x q[0];
