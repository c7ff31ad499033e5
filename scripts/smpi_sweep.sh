#!/usr/bin/env bash
# Strong-scaling sweep on a simulated cluster: cnnpar_smpi at P = 4, 16, 64, 256, 1024 (by default) under smpirun
# (scripts/smpi_run.sh), every consolidation and plan asked for at every P, each run into its own results file named
# like the real sweeps' (cnnpar_np<P>_b<B>_<consolidation>_<plan>.h5), so `python3 -m analysis sweep` reads them like
# real runs. Also writes sweep.tsv: per run the simulation's wall time and peak memory (RSS of the one smpirun process
# that holds every simulated rank) on this machine, and the simulated forward time.
#
# Usage: scripts/smpi_sweep.sh [--platform NAME] [--np-list 4,16,...] [--batch B] [--iterations N] [--warmup N]
#                              [--consolidation K,...] [--plan P,...] [--out DIR] [--analyze] [-- more cnnpar_smpi args]
#   --platform     a platform of sim/platforms/ (default fattree-64x16: 64 nodes x 16 cores, so P <= 1024)
#   --batch        16 (default); calibrate the kernel rates at the same batch (scripts/smpi_calibrate.sh)
#   --iterations   3 timed passes, --warmup 1: simulated times are deterministic, so few passes suffice
#   --consolidation allgatherv,hierarchical (default); shared needs one node (P <= 16 here)
#   --out          results/smpi-<platform>-b<B> (default)
#   --analyze      then run `python3 -m analysis sweep` on the files into <out>/report
# Memory: every simulated rank is a thread of one process holding its own activations (the seed network at B = 16:
# ~2 MB per rank under allgatherv) and weight slice; SMPI's leader-allocated shared windows are one buffer per node.
# 1,024 ranks need ~2.5 GB (measured: docs/simulation.md), well within 24 GB, without SMPI's shared malloc.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
platform=fattree-64x16 nps=4,16,64,256,1024 batch=16 iterations=3 warmup=1
consolidations=allgatherv,hierarchical plans=per-layer out="" analyze=0 extra=()
while (($#)); do
  case "$1" in
    --platform) platform=$2; shift 2 ;;
    --np-list) nps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --consolidation) consolidations=$2; shift 2 ;;
    --plan) plans=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --analyze) analyze=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "$0: unknown option $1 (see the header)" >&2; exit 2 ;;
  esac
done
xml=$root/sim/platforms/$platform.xml
[[ -f $xml ]] || { echo "$0: no platform $xml" >&2; exit 2; }
out=${out:-$root/results/smpi-$platform-b$batch}
mkdir -p "$out"
log=$out/sweep.tsv
[[ -f $log ]] || printf 'np\tconsolidation\tplan\twall_s\tmax_rss_kb\tsimulated_forward_us\tfile\n' >"$log"
IFS=, read -r -a np_list <<<"$nps"
IFS=, read -r -a cons_list <<<"$consolidations"
IFS=, read -r -a plan_list <<<"$plans"
for np in "${np_list[@]}"; do
  for cons in "${cons_list[@]}"; do
    for plan in "${plan_list[@]}"; do
      file=$out/cnnpar_np${np}_b${batch}_${cons}_${plan}.h5
      echo "[$(date +%H:%M:%S)] P=$np $cons $plan -> $file"
      /usr/bin/time -f "%e %M" -o "$out/.time" "$root/scripts/smpi_run.sh" -np "$np" "$xml" --verify --quiet \
        --no-progress --batch "$batch" --iterations "$iterations" --warmup "$warmup" --consolidation "$cons" \
        --plan "$plan" --output "$file" --force "${extra[@]}" >"$out/.run.log" 2>&1 \
        || { cat "$out/.run.log" >&2; exit 1; }
      grep -E "^Verify" "$out/.run.log"
      read -r wall rss <"$out/.time"
      fwd=$(/usr/bin/python3 -c "import h5py,numpy as np,sys; f=h5py.File(sys.argv[1],'r'); \
print(f'{np.median(f[\"timing/forward_s\"][()].max(axis=1))*1e6:.3f}')" "$file" 2>/dev/null || echo "?")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$np" "$cons" "$plan" "$wall" "$rss" "$fwd" "$(basename "$file")" >>"$log"
      echo "    simulation: ${wall} s wall, $((rss / 1024)) MiB peak; simulated forward ${fwd} us"
    done
  done
done
rm -f "$out/.time" "$out/.run.log"
if ((analyze)); then (cd "$root" && /usr/bin/python3 -m analysis sweep "$out"/cnnpar_np*.h5 --out "$out/report"); fi
