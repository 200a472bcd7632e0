// Mid-circuit measurement and reset, measured bits reused, conditions on a 3-bit register
// (values 5 and 3), a bit overwritten by a later measurement.
OPENQASM 2.0;
include "qelib1.inc";
qreg a[3];
qreg b[2];
creg r[3];
creg s[1];
h a;
ry(0.8) b[0];
cx a[0],b[0];
measure a -> r;
reset a[1];
if(r==5) x b[1];
if(r==3) h b[1];
cry(0.7) b[1],a[1];
measure b[1] -> r[0];
if(r==4) rz(0.9) b[0];
if(r==5) rx(0.4) b[0];
measure b[0] -> s[0];
if(s==1) cx b[0],a[2];
