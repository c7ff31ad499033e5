#!/usr/bin/python3
"""Generate the PyTorch reference fixture for the cnnpar "letters" network.

Letters network (26 classes; all float32, CPU), with the cnnpar layer names:
    input  [B, 1, 28, 28]  (Fashion-MNIST uint8 pixels / 255)
    conv1      Conv2d(1, 32, kernel_size=3)    -> [B, 32, 26, 26]
    pool1      MaxPool2d(2)                    -> [B, 32, 13, 13]
    gelu1      GELU(approximate='tanh')        -> [B, 32, 13, 13]
    conv2      Conv2d(32, 64, kernel_size=3)   -> [B, 64, 11, 11]
    pool2      MaxPool2d(2)                    -> [B, 64, 5, 5]
    gelu2      GELU(approximate='tanh')        -> [B, 64, 5, 5]
    conv3      Conv2d(64, 128, kernel_size=3)  -> [B, 128, 3, 3]
    pool3      MaxPool2d(2)                    -> [B, 128, 1, 1]
    gelu3      GELU(approximate='tanh')        -> [B, 128, 1, 1]
               torch.flatten(x, 1)             -> [B, 128]
    fc1        Linear(128, 512)                -> [B, 512]
    gelu4      GELU(approximate='tanh')        -> [B, 512]
    fc2        Linear(512, 256)                -> [B, 256]
    gelu5      GELU(approximate='tanh')        -> [B, 256]
    fc3        Linear(256, 26)                 -> [B, 26]
    logsoftmax LogSoftmax(dim=1)               -> [B, 26]
All convolutions have stride 1, no padding and a bias; max-pooling has
stride 2 and floors odd sizes (11 -> 5, 3 -> 1); every linear layer has a bias.

Weights use PyTorch's default initialisation under a fixed seed. The forward
pass is run in float32 (the fixture's ``expected_output`` and
``expected/<layer>``) and, with the same weights and input cast to float64,
in float64 (``expected_output_float64``) as an accuracy reference.

Run with Debian's interpreter (python3-torch, python3-h5py, python3-numpy):

    /usr/bin/python3 tests/data/make_pytorch_letters_fixture.py

The output is deterministic for a given torch build (fixed seed, one thread).
Only regenerating needs torch; the tests read the file with numpy and h5py.
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
# Path of the IDX file relative to this script (as recorded in the fixture).
IMAGES_REL = "../../data/fashion-mnist-t10k-first512-images-idx3-ubyte"
DEFAULT_OUTPUT = os.path.join(SCRIPT_DIR, "pytorch_letters_fixture.h5")
DEFAULT_SEED = 20240601
DEFAULT_BATCH = 8
CLASSES = 26

IDX3_MAGIC = 0x00000803

# cnnpar layer names in network order, and each layer's per-image output
# shape on a 28x28 input (C, H, W for the feature maps, F after flatten).
LAYERS = (
    ("conv1", (32, 26, 26)),
    ("pool1", (32, 13, 13)),
    ("gelu1", (32, 13, 13)),
    ("conv2", (64, 11, 11)),
    ("pool2", (64, 5, 5)),
    ("gelu2", (64, 5, 5)),
    ("conv3", (128, 3, 3)),
    ("pool3", (128, 1, 1)),
    ("gelu3", (128, 1, 1)),
    ("fc1", (512,)),
    ("gelu4", (512,)),
    ("fc2", (256,)),
    ("gelu5", (256,)),
    ("fc3", (CLASSES,)),
    ("logsoftmax", (CLASSES,)),
)


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


class LettersNet(nn.Module):
    """The letters network; parameter names are conv1.weight ... fc3.bias."""

    def __init__(self):
        super().__init__()
        # Modules with parameters are created in network order, so the seeded
        # RNG draws conv1, conv2, conv3, fc1, fc2, fc3 in turn.
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=0, bias=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=0, bias=True)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=0, bias=True)
        self.fc1 = nn.Linear(128, 512, bias=True)
        self.fc2 = nn.Linear(512, 256, bias=True)
        self.fc3 = nn.Linear(256, CLASSES, bias=True)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.gelu = nn.GELU(approximate="tanh")
        self.logsoftmax = nn.LogSoftmax(dim=1)

    def forward(self, x):
        """Returns {layer name: output} in network order (the last is the network output)."""
        out = {}

        def step(name, y):
            out[name] = y
            return y

        for i, conv in enumerate((self.conv1, self.conv2, self.conv3), start=1):
            x = step(f"conv{i}", conv(x))
            x = step(f"pool{i}", self.pool(x))
            x = step(f"gelu{i}", self.gelu(x))
        x = torch.flatten(x, 1)
        x = step("fc1", self.fc1(x))
        x = step("gelu4", self.gelu(x))
        x = step("fc2", self.fc2(x))
        x = step("gelu5", self.gelu(x))
        x = step("fc3", self.fc3(x))
        step("logsoftmax", self.logsoftmax(x))
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                    help=f"number of images (default {DEFAULT_BATCH})")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED,
                    help=f"torch.manual_seed value (default {DEFAULT_SEED})")
    ap.add_argument("--output", default=DEFAULT_OUTPUT,
                    help="output HDF5 file (default: pytorch_letters_fixture.h5 next to this script)")
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

    model = LettersNet().eval()  # default PyTorch init, drawn from the seeded RNG
    model64 = LettersNet().eval()
    model64.load_state_dict(model.state_dict())
    model64 = model64.double()

    with torch.no_grad():
        out32 = model(x32)
        out64 = model64(x32.double())

    # The shapes: 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5 -> conv 3 -> pool 1, so flatten gives 128.
    if list(out32) != [name for name, _ in LAYERS]:
        raise AssertionError(f"layer order {list(out32)} differs from {[name for name, _ in LAYERS]}")
    print(f"{'layer':<11} {'output shape':<20} {'max |f32 - f64|':>15} {'max |ref|':>10} "
          f"{'diff/(1e-5+1e-5|ref|)':>22}")
    print(f"{'input':<11} {str(list(x32_np.shape)):<20}")
    atol = rtol = 1e-5
    layer_diffs = {}
    for name, per_image in LAYERS:
        shape = (args.batch, *per_image)
        got = tuple(out32[name].shape)
        if got != shape:
            raise AssertionError(f"{name}: output shape {got}, expected {shape}")
        a = out32[name].numpy().astype(np.float64)
        b = out64[name].numpy()
        diff = np.abs(a - b)
        ratio = float((diff / (atol + rtol * np.abs(b))).max())
        layer_diffs[name] = (float(diff.max()), ratio)
        print(f"{name:<11} {str(list(shape)):<20} {diff.max():>15.3e} {np.abs(b).max():>10.4g} {ratio:>22.3f}")

    out32_np = out32["logsoftmax"].numpy()
    out64_np = out64["logsoftmax"].numpy()
    diff = np.abs(out32_np.astype(np.float64) - out64_np)
    max_abs = float(diff.max())
    max_ref = float(np.abs(out64_np).max())
    within = all(ratio <= 1.0 for _, ratio in layer_diffs.values())
    max_rel = float((diff / np.maximum(np.abs(out64_np), 1e-30)).max())

    regenerate = "/usr/bin/python3 tests/data/make_pytorch_letters_fixture.py"
    if args.batch != DEFAULT_BATCH:
        regenerate += f" --batch {args.batch}"
    if args.seed != DEFAULT_SEED:
        regenerate += f" --seed {args.seed}"
    if os.path.abspath(args.output) != DEFAULT_OUTPUT:
        regenerate += f" --output {args.output}"

    sd = model.state_dict()
    expected_params = [f"{m}.{p}" for m in ("conv1", "conv2", "conv3", "fc1", "fc2", "fc3")
                       for p in ("weight", "bias")]
    if list(sd) != expected_params:
        raise AssertionError(f"state_dict keys {list(sd)} differ from {expected_params}")
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
            return h5.create_dataset(name, data=data, chunks=data.shape, compression="gzip",
                                     compression_opts=9, shuffle=True, track_times=False)

        h5.attrs["description"] = (
            "PyTorch reference for the cnnpar letters network (26 classes): input [B,1,28,28] "
            "float32 (uint8/255) -> conv1 Conv2d(1,32,3) -> pool1 MaxPool2d(2) -> gelu1 -> "
            "conv2 Conv2d(32,64,3) -> pool2 -> gelu2 -> conv3 Conv2d(64,128,3) -> pool3 -> gelu3 "
            "-> flatten(C,H,W) [B,128] -> fc1 Linear(128,512) -> gelu4 -> fc2 Linear(512,256) -> "
            "gelu5 -> fc3 Linear(256,26) -> logsoftmax LogSoftmax(dim=1) -> [B,26]. Convolutions "
            "stride 1, no padding, with bias; pools stride 2; GELU(approximate='tanh'). Weights "
            "in PyTorch layout (convN.weight [out,in,kh,kw], fcN.weight [out,in]); default "
            "PyTorch init under torch.manual_seed(seed). expected_output is the float32 CPU "
            "forward pass; expected_output_float64 is the same weights/input evaluated in "
            "float64; expected/<layer> holds every layer's float32 output."
        )
        h5.attrs["network"] = "letters"
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
        h5.attrs["layers"] = [name for name, _ in LAYERS]
        h5.attrs["max_abs_diff_float32_vs_float64"] = max_abs
        h5.attrs["max_rel_diff_float32_vs_float64"] = max_rel

        for name in expected_params:
            put(name, sd[name].numpy())
        put("input", x32_np)
        h5.create_dataset("input_index", data=np.int64(input_index), track_times=False)
        put("expected_output", out32_np)
        put("expected_output_float64", out64_np)
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        gcpl.set_obj_track_times(False)
        h5py.h5g.create(h5.id, b"expected", gcpl=gcpl)
        for name, _ in LAYERS:
            d = put(f"expected/{name}", out32[name].numpy())
            d.attrs["max_abs_diff_float32_vs_float64"] = layer_diffs[name][0]
    os.replace(tmp_out, args.output)

    elapsed = time.perf_counter() - t0
    size = os.path.getsize(args.output)
    print(f"wrote {args.output}")
    print(f"  torch {torch.__version__}, seed {args.seed}, batch {args.batch}, gelu=tanh")
    print(f"  output shape {tuple(out32_np.shape)}, max |out| = {max_ref:.6g}, "
          f"mean |out| = {float(np.abs(out64_np).mean()):.6g}")
    print(f"  output: max |float32 - float64| = {max_abs:.3e}, max rel = {max_rel:.3e}")
    print(f"  every layer's float32 output within atol={atol:g}, rtol={rtol:g} of float64: "
          f"{'yes' if within else 'NO'}")
    print(f"  file size {size} bytes ({size / 1e6:.2f} MB), elapsed {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
