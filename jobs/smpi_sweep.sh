#!/usr/bin/env bash
# The simulated-cluster sweep as a job: P = 4 ... 1,024 on the simulated fat tree (64 nodes x 16 cores), allgatherv
# and hierarchical, then the sweep report. Needs no Slurm and no cluster: SMPI simulates every rank inside one
# process, so run it directly on any machine with the SMPI build (scripts/build_smpi.sh):
#
#   jobs/smpi_sweep.sh                                    # results/smpi-fattree-64x16-b16/ and its report/
#   jobs/smpi_sweep.sh --platform twolevel-8x8x16         # any option of scripts/smpi_sweep.sh
#   sbatch jobs/smpi_sweep.sh                             # or as a one-task Slurm job (the lines below)
#
# It takes ~10 minutes and ~3 GB of memory on our 2-core VM, dominated by P = 1,024 (docs/simulation.md).
# Another site: nothing to change (one core, no MPI launcher); under Slurm, add your partition and account.
#SBATCH --job-name=cnnpar-smpi   # name shown by squeue
#SBATCH --ntasks=1               # one process: smpirun runs every simulated rank as a thread of it
#SBATCH --cpus-per-task=1        # SMPI simulates sequentially
#SBATCH --mem=8G                 # 1,024 simulated ranks need ~3 GB; headroom for larger batches
#SBATCH --time=01:00:00          # wall-clock limit for the whole sweep
#SBATCH --output=%x-%j.out       # job log, in the directory sbatch was run from
set -euo pipefail
repo=${CNNPAR_REPO:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}
[[ -x $repo/scripts/smpi_sweep.sh ]] || { echo "cnnpar job: error: set CNNPAR_REPO to the repository" >&2; exit 2; }
exec "$repo/scripts/smpi_sweep.sh" --analyze "$@"
