#!/usr/bin/env python3
"""Writes weights files with one thing wrong each, from a good one: make_bad_weights.py GOOD.h5 OUTDIR.

missing.h5 (no fc.bias), shape.h5 (conv.weight [32,1,5,5]), nan.h5 (a NaN in fc.weight), inf.h5 (an inf in
conv.bias), int.h5 (conv.bias stored as int64), and not_hdf5.h5 (a text file)."""
import pathlib
import sys

import h5py
import numpy as np

good, out = sys.argv[1], pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
with h5py.File(good, "r") as f:
    base = {k: f[k][...] for k in ("conv.weight", "conv.bias", "fc.weight", "fc.bias")}


def write(name, **changes):
    with h5py.File(out / name, "w") as f:
        for k, v in {**base, **changes}.items():
            if v is not None:
                f[k] = v


write("missing.h5", **{"fc.bias": None})
write("shape.h5", **{"conv.weight": np.zeros((32, 1, 5, 5), np.float32)})
nan = base["fc.weight"].copy()
nan[3, 17] = np.nan
write("nan.h5", **{"fc.weight": nan})
inf = base["conv.bias"].copy()
inf[5] = np.inf
write("inf.h5", **{"conv.bias": inf})
write("int.h5", **{"conv.bias": np.arange(32, dtype=np.int64)})
(out / "not_hdf5.h5").write_text("this is not HDF5\n")
