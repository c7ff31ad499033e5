#!/usr/bin/env python3
"""Runs one row of the bad-input table (cases.txt) and checks the promise for bad input.

Usage: run_case.py TABLE NAME NP BINARY DATA_DIR SCRATCH -- MPIEXEC ARGS... (the launcher up to, not including, the
binary; NP is appended to it). Exit 0: the promise held; 1: it did not (what was seen is printed); 77: skipped, the
reason printed (ctest SKIP_RETURN_CODE).

The promise: the expected exit status; exactly one "cnnpar_mpi: error" line, on stderr, containing the row's
phrase; the job over within 10 s (a hang is killed and reported); and the scratch directory, which holds every
file the row made and every --output path, exactly as it was (same names, sizes, contents): nothing created,
changed or removed, no temporary file left."""
import gzip
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

BOUND_S = 10
SKIP = 77


def parse_table(path):
    rows = {}
    for number, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in (line.rstrip() + " ").split(" | ")]
        if len(fields) != 5:
            sys.exit(f"{path}:{number}: expected 5 fields separated by ' | ', got {len(fields)}: {line}")
        name, code, phrase, args, setup = fields
        rows[name] = dict(exit=int(code), phrase=phrase, args=args, setup=[s.strip() for s in setup.split(";")
                                                                          if s.strip()])
    return rows


def write_weights(path, variant, fixture):
    import h5py  # Debian's python3-h5py; imported here so rows without weights need no h5py
    import numpy as np
    with h5py.File(fixture, "r") as f:
        base = {k: f[k][...] for k in ("conv.weight", "conv.bias", "fc.weight", "fc.bias")}
    lzf = set()
    if variant == "missing":
        del base["fc.bias"]
    elif variant == "shape":
        base["conv.weight"] = np.zeros((32, 1, 5, 5), np.float32)
    elif variant == "nan":
        base["fc.weight"] = base["fc.weight"].copy()
        base["fc.weight"][3, 17] = np.nan
    elif variant == "inf":
        base["conv.bias"] = base["conv.bias"].copy()
        base["conv.bias"][5] = np.inf
    elif variant == "float64_huge":  # finite as float64, infinite as the float32 it becomes
        base["conv.bias"] = base["conv.bias"].astype(np.float64)
        base["conv.bias"][3] = 1e39
    elif variant == "int":
        base["conv.bias"] = np.arange(32, dtype=np.int64)
    elif variant == "lzf":  # h5py's own filter: libhdf5 (and so cnnpar_mpi) cannot decode it
        lzf.add("fc.weight")
    elif variant != "good":
        sys.exit(f"unknown weights variant {variant}")
    with h5py.File(path, "w") as f:
        for k, v in base.items():
            f.create_dataset(k, data=v, compression="lzf" if k in lzf else None)


def idx_file(path, magic, count, rows, cols, data_bytes):
    magic = int(magic, 0)
    header = magic.to_bytes(4, "big") + int(count).to_bytes(4, "big")
    if magic == 0x803:
        header += int(rows).to_bytes(4, "big") + int(cols).to_bytes(4, "big")
    path.write_bytes(header + bytes(i % 251 for i in range(int(data_bytes))))


def set_up(row, scratch, env, fixture, binary, mounts, expand):
    for step in row["setup"]:
        word = expand(step).split()
        kind, rest = word[0], word[1:]
        target = scratch / rest[0] if rest else None
        if kind == "fifo":
            os.mkfifo(target)
        elif kind == "text":
            target.write_text(" ".join(rest[1:]) + ("\n" if len(rest) > 1 else ""))
        elif kind == "copy":
            shutil.copyfile(rest[1], target)
        elif kind == "head":
            target.write_bytes(pathlib.Path(rest[1]).read_bytes()[: int(rest[2])])
        elif kind == "gzip":
            target.write_bytes(gzip.compress(pathlib.Path(rest[1]).read_bytes()))
        elif kind == "gzip-head":
            target.write_bytes(gzip.compress(pathlib.Path(rest[1]).read_bytes())[: int(rest[2])])
        elif kind == "gzip-corrupt":  # flip bytes at the start of the deflate stream
            data = bytearray(gzip.compress(pathlib.Path(rest[1]).read_bytes()))
            for i in range(10, 74):  # the first deflate block header: invalid code lengths
                data[i] ^= 0x5A
            target.write_bytes(bytes(data))
        elif kind == "idx":
            idx_file(target, *rest[1:])
        elif kind == "weights":
            write_weights(target, rest[1], fixture)
        elif kind == "env":
            key, _, value = rest[0].partition("=")
            env[key] = value
        elif kind == "np3-only":
            pass
        elif kind == "needs-option":
            help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, env=env).stdout
            if rest[0] not in help_text:
                print(f"SKIP: cnnpar_mpi has no {rest[0]} yet (this row runs once --help documents it)")
                sys.exit(SKIP)
        elif kind == "root-mount":
            if os.geteuid() != 0:
                print(f"SKIP: needs root to mount a small tmpfs at {target} (running as uid {os.geteuid()})")
                sys.exit(SKIP)
            target.mkdir()
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", rest[1], "cnnpar-test", str(target)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                target.rmdir()
                print(f"SKIP: cannot mount a tmpfs here: {done.stderr.strip()}")
                sys.exit(SKIP)
            mounts.append(target)
        else:
            sys.exit(f"unknown set-up step {step!r}")


def snapshot(scratch):
    """Every name under the scratch directory with its type, size and content hash (FIFOs are not read)."""
    state = {}
    for root, dirs, files in os.walk(scratch):
        for name in dirs + files:
            p = pathlib.Path(root) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not p.is_symlink() else ""
            state[str(p.relative_to(scratch))] = (oct(st.st_mode), st.st_size if digest else 0, digest)
    return state


def main():
    argv = sys.argv[1:]
    split = argv.index("--")
    table, name, np_, binary, data, scratch = argv[:split]
    launcher = argv[split + 1:]
    row = parse_table(table)[name]
    if "np3-only" in row["setup"] and np_ != "3":
        print("SKIP: this row is about several ranks; it runs at np 3")
        return SKIP
    scratch = pathlib.Path(scratch)
    if scratch.exists():
        for p in scratch.rglob("*"):
            if p.is_mount():
                subprocess.run(["umount", str(p)], check=False)
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    env = dict(os.environ)
    fixture = pathlib.Path(__file__).resolve().parent.parent / "data" / "pytorch_seed_fixture.h5"
    mounts = []
    subst = {"{dir}": str(scratch), "{data}": data, "{tests}": str(pathlib.Path(__file__).resolve().parent.parent),
             "{images}": f"{data}/fashion-mnist-t10k-first512-images-idx3-ubyte",
             "{labels}": f"{data}/fashion-mnist-t10k-first512-labels-idx1-ubyte"}

    def expand(text):
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    try:
        set_up(row, scratch, env, fixture, binary, mounts, expand)

        args = ["" if a == "''" else expand(a) for a in row["args"].split()]
        phrase = expand(row["phrase"])
        command = launcher + [np_, binary] + args
        before = snapshot(scratch)
        start = time.monotonic()
        proc = subprocess.Popen(command, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=BOUND_S)
            hung = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            hung = True
        elapsed = time.monotonic() - start
        after = snapshot(scratch)

        problems = []
        if hung:
            problems.append(f"still running after {BOUND_S} s (a hang): killed")
        elif proc.returncode != row["exit"]:
            problems.append(f"exit status {proc.returncode}, expected {row['exit']}")
        errors = [line for line in (err + out).splitlines() if "cnnpar_mpi: error" in line]
        if len(errors) != 1:
            problems.append(f"expected exactly one 'cnnpar_mpi: error' line, got {len(errors)}")
        elif phrase not in errors[0]:
            problems.append(f"the error does not contain {phrase!r}")
        elif errors[0] not in err:
            problems.append("the error went to stdout, not stderr")
        if before != after:
            added = sorted(set(after) - set(before))
            removed = sorted(set(before) - set(after))
            changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
            problems.append(f"the scratch directory changed: added {added}, removed {removed}, changed {changed}")
        print(f"{name} np{np_}: exit {proc.returncode} after {elapsed:.2f} s: {' '.join(command)}")
        if problems:
            print("FAIL: " + "; ".join(problems))
            print("--- stdout:\n" + out + "--- stderr:\n" + err)
            return 1
        print(errors[0])
        return 0
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", str(m)], check=False)


if __name__ == "__main__":
    sys.exit(main())
