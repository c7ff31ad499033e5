#!/usr/bin/env bash
# smpi.model_predicts_layers.np16: `analysis model`, fitted to --calibrate data simulated on the platform (4 ranks on
# one node for the intra-node link, 16 ranks on 4 nodes for the inter-node one), predicts every layer of the P = 16
# run simulated in the same job within 15% — each boundary's transfer, each layer's time and the whole pass — with
# nothing of the platform given to it: it knows only the files. A third calibration, 16 ranks on two nodes under
# different leaf switches of the fat tree (sim/platforms/fattree-64x16.xml: four 1 µs, 12.5 GB/s links between
# them), must give the between-switch class back within 5%: α = 4 µs, 1/β = 12.5 GB/s.
# Usage: test_smpi_model.sh SMPI_RUN PLATFORM PYTHON WORKDIR
set -euo pipefail
run=$1 platform=$2 python=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
printf 'node-0:4\n' >"$work/one-node.hosts"
common=(--quiet --no-progress --batch 16 --iterations 3 --warmup 1 --calibrate)
CNNPAR_SMPI_HOSTFILE=$work/one-node.hosts "$run" -np 4 "$platform" "${common[@]}" --output "$work/np4.h5" >/dev/null
"$run" -np 16 "$platform" "${common[@]}" --output "$work/np16.h5" >/dev/null
printf 'node-0:8\nnode-16:8\n' >"$work/across.hosts"
fat_tree=$(cd "$(dirname "$0")/../.." && pwd)/sim/platforms/fattree-64x16.xml
CNNPAR_SMPI_HOSTFILE=$work/across.hosts "$run" -np 16 "$fat_tree" --quiet --no-progress --batch 16 --iterations 1 \
  --warmup 0 --calibrate --output "$work/across.h5" >/dev/null
cd "$(dirname "$0")/../.."
MPLBACKEND=Agg "$python" -m analysis model "$work/np4.h5" "$work/np16.h5" "$work/across.h5" --out "$work/model" >/dev/null
"$python" - "$work/model/model.json" <<'PY'
import json, sys
model = json.load(open(sys.argv[1]))
assert model["used"] == "calibration" and not model["problems"], (model["used"], model["problems"])
rows = [r for r in model["per_layer"] if r["run"] == "np16.h5"]
assert len(rows) >= 5, rows  # four layers and the whole pass
worst = 0.0
for r in rows:
    errors = [r["layer_error"]] + ([r["transfer_error"]] if "transfer_error" in r else [])
    transfer = f"{r['transfer_error']:+7.1%}" if "transfer_error" in r else "      —"
    print(f"{r['layer']:>10} {r.get('algorithm', ''):>18}  transfer {transfer}  layer {r['layer_error']:+7.1%}")
    worst = max(worst, *(abs(e) for e in errors))
print(f"largest error {worst:.1%} (target 15%)")
cross = model["cross"]
alpha_error, bandwidth_error = cross["alpha"] / 4e-6 - 1, 1 / cross["beta"] / 12.5e9 - 1
print(f"between switches: alpha {cross['alpha'] * 1e6:.3f} us ({alpha_error:+.1%}), bandwidth "
      f"{1 / cross['beta'] / 1e9:.2f} GB/s ({bandwidth_error:+.1%}), {cross['source']}")
sys.exit(0 if worst <= 0.15 and abs(alpha_error) <= 0.05 and abs(bandwidth_error) <= 0.05 else 1)
PY
