#!/usr/bin/python3
"""make_npy_refs.py - writes the small reference .npy files in tests/data/npy/ that
tests/c/test_npy.c reads back.

Run from the repo root with the system interpreter (it has numpy):
    /usr/bin/python3 tests/data/make_npy_refs.py

Every numeric file holds value(i) at C-order flat index i, with the formulas below, so
the C test can check any element without storing the data twice. Keep the formulas in
step with test_npy.c (ref_real / ref_cplx / ref_int there).
"""
import os
import numpy as np
from numpy.lib import format as npf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "npy")


def ref_real(n):
    # multiples of 1/4 in [-1, 4): exact in f2, f4 and f8
    return (np.arange(n) - 4) * 0.25


def ref_cplx(n):
    i = np.arange(n)
    return (i - 4) * 0.25 + 1j * (i * 0.5 + 1)


def ref_int(n):
    # alternating signs, nothing outside the int8 range
    i = np.arange(n)
    return (i * 7 - 20) * np.where(i % 2, -1, 1)


def ref_uint(n):
    return np.arange(n) * 17 % 256


def save(name, a, version=None):
    path = os.path.join(OUT, name + ".npy")
    with open(path, "wb") as f:
        npf.write_array(f, a, version=version, allow_pickle=True)
    return path


def raw(name, header, data):
    """A v1.0 file with a hand-written header dict (padded like numpy pads it)."""
    h = header.encode("latin1")
    total = 10 + len(h) + 1
    h += b" " * ((-total) % 64) + b"\n"
    with open(os.path.join(OUT, name + ".npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if old.endswith(".npy"):
            os.remove(os.path.join(OUT, old))

    # one file per supported dtype, shape (2, 3), C order
    for dt in ["f2", "f4", "f8"]:
        save(dt, ref_real(6).reshape(2, 3).astype("<" + dt))
    for dt in ["c8", "c16"]:
        save(dt, ref_cplx(6).reshape(2, 3).astype("<" + dt))
    for dt in ["i1", "i2", "i4", "i8"]:
        save(dt, ref_int(6).reshape(2, 3).astype("<" + dt))   # numpy writes '|i1'
    for dt in ["u1", "u2", "u4", "u8"]:
        save(dt, ref_uint(6).reshape(2, 3).astype("<" + dt))  # numpy writes '|u1'
    save("b1", np.array([[True, False, True], [False, False, True]]))

    # range ends of the integer types, and float16 specials
    save("i8_ext", np.array([-2**63, 2**63 - 1, -1, 0], dtype="<i8"))
    save("u8_ext", np.array([2**64 - 1, 2**53 + 1, 0], dtype="<u8"))
    save("i1_ext", np.array([-128, 127], dtype="i1"))
    save("u1_ext", np.array([255, 0], dtype="u1"))
    save("f2_ext", np.array([65504, 2.0**-24, -0.0, np.inf, -np.inf, np.nan], dtype="<f2"))

    # layouts: Fortran order (2-d and 3-d), 3-d C order, 0-d, zero-size, 1-d
    save("c16_fortran_3x4", np.asfortranarray(ref_cplx(12).reshape(3, 4)))
    save("i4_fortran_2x3x4", np.asfortranarray(ref_int(24).reshape(2, 3, 4).astype("<i4")))
    save("f8_3d", ref_real(24).reshape(2, 3, 4))
    save("f8_0d", np.array(2.5))
    save("c16_0x3", np.zeros((0, 3), dtype="<c16"))
    save("f4_1d", ref_real(5).astype("<f4"))

    # header versions 2.0 and 3.0
    save("f8_v2", ref_real(6).reshape(2, 3), version=(2, 0))
    save("c8_v3", ref_cplx(4).astype("<c8"), version=(3, 0))

    # big-endian data (the reader byte-swaps)
    save("f8_be", ref_real(6).reshape(2, 3).astype(">f8"))
    save("c16_be", ref_cplx(6).reshape(2, 3).astype(">c16"))
    save("i4_be", ref_int(6).reshape(2, 3).astype(">i4"))
    save("c8_be_fortran", np.asfortranarray(ref_cplx(6).reshape(2, 3).astype(">c8")))

    # hand-written headers: keys in another order, double quotes, odd spacing, no
    # trailing comma, '=' byte order, Python 2 long suffix
    raw("f8_oddheader", "{ \"shape\" :(2,  2) ,'fortran_order':False,\t'descr' : '=f8' }",
        ref_real(4).astype("<f8").tobytes())
    raw("f8_py2long", "{'descr': '<f8', 'fortran_order': False, 'shape': (3L,), }",
        ref_real(3).astype("<f8").tobytes())

    # unsupported dtypes: the reader must refuse them cleanly
    save("obj", np.array([1, "a", None], dtype=object))
    save("str", np.array(["ab", "c"]))           # '<U2'
    save("datetime", np.array(["2020-01-01"], dtype="datetime64[D]"))
    save("struct", np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")]))

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d files, %d bytes, in %s" % (len(os.listdir(OUT)), total, OUT))


if __name__ == "__main__":
    main()
