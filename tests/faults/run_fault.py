#!/usr/bin/env python3
"""Fault tests (issue 13): a job is hit while it runs, and must end cleanly.

Usage: run_fault.py SCENARIO BINARY SCRATCH -- MPIEXEC NPFLAG
Scenarios are WHAT-WHEN[-named]:
  WHAT  kill0 (SIGKILL to rank 0), kill1 (SIGKILL to rank 1), int (SIGINT to mpirun), term (SIGTERM to mpirun)
  WHEN  timed (during the timed passes: a long run, hit after 2 s) or write (during the write of the results file:
        the test hook CNNPAR_TEST_HOLD_WRITE_S holds rank 0 with the file written but not yet published)
  -named: the output is reserved as a visible .NAME.tmp.PID (CNNPAR_TEST_NO_TMPFILE), as on a file system without
        O_TMPFILE, so the signal handler's removal is what is checked
Checks: the job ends within 10 s of the fault with a non-zero exit status; the output directory is empty afterwards
(no results file, partial or whole, and no temporary file); no shared-memory segment created meanwhile in /dev/shm
is left unused by any process; Open MPI's session directory for the job (/tmp/ompi.*/pid.MPIRUN) is gone."""
import glob
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

BOUND_S = 10
NP = 3


def rank_pids(mpirun_pid):
    """{rank: pid} of the job's processes (mpirun's children carrying OMPI_COMM_WORLD_RANK)."""
    ranks = {}
    for child in pathlib.Path(f"/proc/{mpirun_pid}/task/{mpirun_pid}/children").read_text().split():
        try:
            env = pathlib.Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for var in env:
            if var.startswith(b"OMPI_COMM_WORLD_RANK="):
                ranks[int(var.split(b"=")[1])] = int(child)
    return ranks


def shm_in_use():
    used = set()
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            used.update(line.split(None, 5)[5].replace(" (deleted)", "") for line in open(f"{proc}/maps")
                        if "/dev/shm/" in line and len(line.split(None, 5)) == 6)
            for fd in os.listdir(f"{proc}/fd"):
                target = os.readlink(f"{proc}/fd/{fd}")
                if target.startswith("/dev/shm/"):
                    used.add(target.replace(" (deleted)", ""))
        except OSError:
            continue
    return {u.strip() for u in used}


def main():
    argv = sys.argv[1:]
    split = argv.index("--")
    scenario, binary, scratch = argv[:split]
    launcher = argv[split + 1:]
    what, when, *named = scenario.split("-")
    scratch = pathlib.Path(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    out_dir = scratch / "out"
    out_dir.mkdir(parents=True)
    env = dict(os.environ)
    args = ["--quiet", "--output", str(out_dir / "r.h5")]
    if when == "timed":
        args += ["--iterations", "1000000", "--warmup", "0"]
    else:
        args += ["--iterations", "3", "--warmup", "1", "--dump-tensors", "all"]
        env["CNNPAR_TEST_HOLD_WRITE_S"] = "30"
    if named:
        env["CNNPAR_TEST_NO_TMPFILE"] = "1"

    shm_before = set(glob.glob("/dev/shm/*"))
    log_path = scratch / "stderr.txt"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(launcher + [str(NP), binary] + args, stdout=subprocess.DEVNULL, stderr=log, env=env,
                                start_new_session=True)
    problems = []
    try:
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            if when == "timed":
                ready = len(rank_pids(proc.pid)) == NP and time.monotonic() > deadline - 28
            else:
                ready = "holding the write" in log_path.read_text()
            if ready:
                break
            time.sleep(0.05)
        if not ready:
            problems.append("the job never reached the point of the fault (or ended before it)")
        else:
            if named and when == "write":
                temps = list(out_dir.glob(".r.h5.tmp.*"))
                if not temps:
                    problems.append("no visible temporary file while the write was held (the -named set-up failed)")
            ranks = rank_pids(proc.pid)
            if what == "kill0":
                os.kill(ranks[0], signal.SIGKILL)
            elif what == "kill1":
                os.kill(ranks[1], signal.SIGKILL)
            elif what == "int":
                os.kill(proc.pid, signal.SIGINT)
            elif what == "term":
                os.kill(proc.pid, signal.SIGTERM)
            hit = time.monotonic()
            try:
                proc.wait(timeout=BOUND_S)
                print(f"{scenario}: the job ended {time.monotonic() - hit:.2f} s after the fault, exit status "
                      f"{proc.returncode}")
                if proc.returncode == 0:
                    problems.append("exit status 0 after a fault")
            except subprocess.TimeoutExpired:
                problems.append(f"the job still runs {BOUND_S} s after the fault (a hang)")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    left = sorted(p.name for p in out_dir.iterdir())
    if left:
        problems.append(f"the output directory is not empty: {left}")
    time.sleep(0.5)  # let the launcher's own clean-up finish
    new_shm = set(glob.glob("/dev/shm/*")) - shm_before
    leaked = sorted(new_shm - shm_in_use())
    if leaked:
        problems.append(f"shared-memory segments left behind: {leaked}")
    sessions = glob.glob(f"/tmp/ompi.*/pid.{proc.pid}")
    if sessions:
        problems.append(f"Open MPI session directory left behind: {sessions}")
    if problems:
        print("FAIL: " + "; ".join(problems))
        print("--- stderr:\n" + log_path.read_text())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
