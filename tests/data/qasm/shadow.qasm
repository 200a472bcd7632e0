// A file's own definitions of gates qd also knows: rzz with a different angle convention
// (the file's is used), QASMBench's other cu3 (a phase on the control), h and cu1 as
// qelib1 defines them (the same gates, up to a global phase / exactly).
OPENQASM 2.0;
include "qelib1.inc";
gate rzz(t) a,b { cx a,b; rz(2*t) b; cx a,b; }
gate cu3(theta,phi,lambda) c,t { u1((lambda+phi)/2) c; u1((lambda-phi)/2) t; cx c,t; u3(-theta/2,0,-(phi+lambda)/2) t; cx c,t; u3(theta/2,phi,0) t; u1(0.3) c; }
gate h a { u2(0,pi) a; }
gate cu1(lambda) a,b { u1(lambda/2) a; cx a,b; u1(-lambda/2) b; cx a,b; u1(lambda/2) b; }
gate majority a,b,c { cx c,b; cx c,a; ccx a,b,c; }
qreg q[3];
h q;
rzz(0.5) q[0],q[1];
cu3(0.3,0.7,-1.1) q[1],q[2];
cu1(0.6) q[2],q[0];
majority q[0],q[1],q[2];
