#!/usr/bin/env bash
# check_contraction.sh OBJ... — fails if the compiler fused a multiply and an add that the
# source wrote apart.
#
# Why: qd promises the same bits from every kernel set (portable, avx2, avx512). C in ISO
# mode (-std=c11) compiles with -ffp-contract=off, so `a*b + c` is two roundings in every
# set; explicit single-rounding FMAs (fma(), qd_vfma) are one rounding in every set. But
# GCC 12's SLP "addsub" pattern turns an alternating pair `x[2i] = p - q; x[2i+1] = r + s`
# of products into vfmaddsub/vfmsubadd even under -ffp-contract=off, so the AVX2 and
# AVX-512 objects would round differently from the portable one (and from themselves, on
# the loop's scalar tail). Sources write such pairs as `p + (-q)` instead (the same value).
#
# Rules, on the disassembly of each object:
#   1. no vfmaddsub / vfmsubadd anywhere (qd never asks for them);
#   2. any other vfm* only in functions listed in scripts/fma_functions.txt (the ones that
#      call fma() or the qd_simd.h lane FMAs on purpose).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
allow="$here/fma_functions.txt"
bad=0
for o in "$@"; do
    while read -r fn ins; do
        base="${fn%%.*}"   # foo._omp_fn.0 / foo.constprop.0 / foo.isra.0 -> foo
        case "$ins" in
        vfmaddsub* | vfmsubadd*)
            echo "check_contraction: $o: $fn: $ins (an alternating -/+ pair of products was fused; write p + (-q))"
            bad=1 ;;
        *)
            if ! grep -qx "$base" "$allow"; then
                echo "check_contraction: $o: $fn: $ins (FMA in a function not in scripts/fma_functions.txt)"
                bad=1
            fi ;;
        esac
    done < <(objdump -d --no-show-raw-insn "$o" |
             awk '/^[0-9a-f]+ <.*>:$/ { f = substr($2, 2, length($2) - 3) }
                  $2 ~ /^vfn?m(add|sub)/ { print f, $2 }' | sort -u)
done
if [ "$bad" -ne 0 ]; then
    echo "check_contraction: FAILED"
    exit 1
fi
echo "check_contraction: ok ($# objects)"
