# pin_blas.sh — sourced by the test drivers before they compare run records with the golden
# digests (tests/golden.lua). The digests pin every bit, and OpenBLAS picks its kernels by
# CPU: Debian's 0.3.21 runs its Haswell kernels on AVX2 CPUs and on AMD's AVX-512 ones, its
# SkylakeX kernels on Intel's AVX-512 ones, and those round differently (docs/api.md, "What
# can still differ between machines"). The stored digests are for the Haswell kernels; on any
# x86-64 CPU with AVX2 and FMA the examples run with them, so the digests hold on every such
# machine (a CPU without them keeps OpenBLAS's own choice).
if [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=Haswell
fi
