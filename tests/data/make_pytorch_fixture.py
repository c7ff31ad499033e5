#!/usr/bin/python3
"""Generate the PyTorch reference fixture for the cnnpar "seed network".

Seed network (all float32, CPU):
    input  [B, 1, 28, 28]  (Fashion-MNIST uint8 pixels / 255)
    Conv2d(1, 32, kernel_size=3, stride=1, padding=0, bias=True)   -> [B, 32, 26, 26]
    MaxPool2d(kernel_size=2, stride=2)                              -> [B, 32, 13, 13]
    GELU(approximate='tanh')                                        -> [B, 32, 13, 13]
    torch.flatten(x, 1)  (C, H, W order)                            -> [B, 5408]
    Linear(5408, 128, bias=True)                                    -> [B, 128]

Weights use PyTorch's default initialisation under a fixed seed. The forward
pass is run in float32 (the fixture's ``expected_output``) and, with the same
weights and input cast to float64, in float64 (``expected_output_float64``)
as an accuracy reference.

Run with Debian's interpreter (python3-torch, python3-h5py, python3-numpy):

    /usr/bin/python3 tests/data/make_pytorch_fixture.py

The output is deterministic for a given torch build (fixed seed, one thread).
"""

import argparse
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.normpath(os.path.join(SCRIPT_DIR, "..", ".."))
# Path of the IDX file relative to this script (as recorded in the fixture).
IMAGES_REL = "../../data/fashion-mnist-t10k-first512-images-idx3-ubyte"
DEFAULT_OUTPUT = os.path.join(SCRIPT_DIR, "pytorch_seed_fixture.h5")
DEFAULT_SEED = 20240601
DEFAULT_BATCH = 8

IDX3_MAGIC = 0x00000803


def read_idx3_images(path, first, count):
    """Read ``count`` images starting at ``first`` from an IDX3 uint8 file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 16:
        raise ValueError(f"{path}: too short for an IDX3 header")
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != IDX3_MAGIC:
        raise ValueError(f"{path}: bad magic 0x{int(magic):08x}, expected 0x{IDX3_MAGIC:08x}")
    n, rows, cols = int(n), int(rows), int(cols)
    if len(raw) != 16 + n * rows * cols:
        raise ValueError(f"{path}: size {len(raw)} does not match header ({n}x{rows}x{cols})")
    if first < 0 or first + count > n:
        raise ValueError(f"{path}: requested images [{first}, {first + count}) but file holds {n}")
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    return pixels[first:first + count].copy(), rows, cols


class SeedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=0, bias=True)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.gelu = nn.GELU(approximate="tanh")
        self.fc = nn.Linear(32 * 13 * 13, 128, bias=True)

    def forward(self, x):
        c = self.conv(x)
        p = self.pool(c)
        g = self.gelu(p)
        out = self.fc(torch.flatten(g, 1))
        return out, c, p, g


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                    help=f"number of images (default {DEFAULT_BATCH})")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED,
                    help=f"torch.manual_seed value (default {DEFAULT_SEED})")
    ap.add_argument("--output", default=DEFAULT_OUTPUT,
                    help="output HDF5 file (default: pytorch_seed_fixture.h5 next to this script)")
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error("--batch must be >= 1")

    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    input_index = 0
    images_path = os.path.normpath(os.path.join(SCRIPT_DIR, IMAGES_REL))
    pixels, rows, cols = read_idx3_images(images_path, input_index, args.batch)
    if (rows, cols) != (28, 28):
        raise ValueError(f"expected 28x28 images, got {rows}x{cols}")
    x32_np = (pixels.astype(np.float32) / np.float32(255.0)).reshape(args.batch, 1, 28, 28)
    x32 = torch.from_numpy(x32_np)

    model = SeedNet().eval()  # default PyTorch init, drawn from the seeded RNG
    model64 = SeedNet().eval()
    model64.load_state_dict(model.state_dict())
    model64 = model64.double()

    with torch.no_grad():
        out32, conv32, pool32, gelu32 = model(x32)
        out64, _, _, _ = model64(x32.double())

    out32_np = out32.numpy()
    out64_np = out64.numpy()
    diff = np.abs(out32_np.astype(np.float64) - out64_np)
    max_abs = float(diff.max())
    max_ref = float(np.abs(out64_np).max())
    atol = rtol = 1e-5
    within = bool(np.all(diff <= atol + rtol * np.abs(out64_np)))
    max_rel = float((diff / np.maximum(np.abs(out64_np), 1e-30)).max())

    regenerate = "/usr/bin/python3 tests/data/make_pytorch_fixture.py"
    if args.batch != DEFAULT_BATCH:
        regenerate += f" --batch {args.batch}"
    if args.seed != DEFAULT_SEED:
        regenerate += f" --seed {args.seed}"
    if os.path.abspath(args.output) != DEFAULT_OUTPUT:
        regenerate += f" --output {args.output}"

    sd = model.state_dict()
    tmp_out = args.output + ".tmp"
    # Disable HDF5 object timestamps so that regenerating produces a
    # byte-identical file (the root group inherits this from the FCPL).
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fid = h5py.h5f.create(tmp_out.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl)
    with h5py.File(fid) as h5:

        def put(name, data):
            data = np.ascontiguousarray(data)
            # One chunk per dataset + shuffle + gzip: the best ratio for
            # these (mostly incompressible) float arrays.
            h5.create_dataset(name, data=data, chunks=data.shape, compression="gzip",
                              compression_opts=9, shuffle=True, track_times=False)

        h5.attrs["description"] = (
            "PyTorch reference for the cnnpar seed network: input [B,1,28,28] float32 "
            "(uint8/255) -> Conv2d(1,32,k=3,s=1,p=0,bias) -> MaxPool2d(2,2) -> "
            "GELU(approximate='tanh') -> flatten(C,H,W) -> Linear(5408,128,bias) -> [B,128]. "
            "Weights in PyTorch layout (conv.weight [out,in,kh,kw], fc.weight [out,in]); "
            "default PyTorch init under torch.manual_seed(seed). expected_output is the "
            "float32 CPU forward pass; expected_output_float64 is the same weights/input "
            "evaluated in float64."
        )
        h5.attrs["torch_version"] = str(torch.__version__)
        h5.attrs["numpy_version"] = str(np.__version__)
        h5.attrs["h5py_version"] = str(h5py.__version__)
        h5.attrs["gelu"] = "tanh"
        h5.attrs["seed"] = np.int64(args.seed)
        h5.attrs["batch"] = np.int64(args.batch)
        h5.attrs["input_index"] = np.int64(input_index)
        h5.attrs["images_file"] = IMAGES_REL
        h5.attrs["images_file_relative_to"] = "tests/data (this fixture's directory)"
        h5.attrs["regenerate"] = regenerate
        h5.attrs["regenerate_cwd"] = "repository root"
        h5.attrs["max_abs_diff_float32_vs_float64"] = max_abs
        h5.attrs["max_rel_diff_float32_vs_float64"] = max_rel

        put("conv.weight", sd["conv.weight"].numpy())
        put("conv.bias", sd["conv.bias"].numpy())
        put("fc.weight", sd["fc.weight"].numpy())
        put("fc.bias", sd["fc.bias"].numpy())
        put("input", x32_np)
        h5.create_dataset("input_index", data=np.int64(input_index), track_times=False)
        put("expected_output", out32_np)
        put("expected_output_float64", out64_np)
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        gcpl.set_obj_track_times(False)
        h5py.h5g.create(h5.id, b"expected", gcpl=gcpl)
        put("expected/conv", conv32.numpy())
        put("expected/pool", pool32.numpy())
        put("expected/gelu", gelu32.numpy())
    os.replace(tmp_out, args.output)

    elapsed = time.perf_counter() - t0
    size = os.path.getsize(args.output)
    print(f"wrote {args.output}")
    print(f"  torch {torch.__version__}, seed {args.seed}, batch {args.batch}, gelu=tanh")
    print(f"  output shape {tuple(out32_np.shape)}, max |out| = {max_ref:.6g}, "
          f"mean |out| = {float(np.abs(out64_np).mean()):.6g}")
    print(f"  max |float32 - float64| = {max_abs:.3e}, max rel = {max_rel:.3e}")
    print(f"  float32 within atol={atol:g}, rtol={rtol:g} of float64: {'yes' if within else 'NO'}")
    print(f"  file size {size} bytes ({size / 1e6:.2f} MB), elapsed {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
