#!/usr/bin/env python3
"""Writes data/fashion-mnist-t10k-first<N>-{images-idx3,labels-idx1}-ubyte from Debian's dataset-fashion-mnist."""
import argparse
import gzip
import pathlib
import struct

SRC = pathlib.Path("/usr/share/datasets/fashion-mnist")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=512)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent / "data")
    n = ap.parse_args().count
    out = ap.parse_args().out
    images = gzip.open(SRC / "t10k-images-idx3-ubyte.gz").read()
    labels = gzip.open(SRC / "t10k-labels-idx1-ubyte.gz").read()
    magic, count, rows, cols = struct.unpack(">IIII", images[:16])
    assert magic == 0x803 and n <= count, (magic, count)
    (out / f"fashion-mnist-t10k-first{n}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x803, n, rows, cols) + images[16 : 16 + n * rows * cols])
    (out / f"fashion-mnist-t10k-first{n}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, n) + labels[8 : 8 + n])


if __name__ == "__main__":
    main()
