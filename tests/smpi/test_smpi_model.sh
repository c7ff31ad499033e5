#!/usr/bin/env bash
# smpi.model_predicts_layers.np16: `analysis model`, fitted to --calibrate data simulated on the platform (4 ranks on
# one node for the intra-node link, 16 ranks on 4 nodes for the inter-node one), predicts every layer of the P = 16
# run simulated in the same job within 15% — each boundary's transfer, each layer's time and the whole pass — with
# nothing of the platform given to it: it knows only the files.
# Usage: test_smpi_model.sh SMPI_RUN PLATFORM PYTHON WORKDIR
set -euo pipefail
run=$1 platform=$2 python=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
printf 'node-0:4\n' >"$work/one-node.hosts"
common=(--quiet --no-progress --batch 16 --iterations 3 --warmup 1 --calibrate)
CNNPAR_SMPI_HOSTFILE=$work/one-node.hosts "$run" -np 4 "$platform" "${common[@]}" --output "$work/np4.h5" >/dev/null
"$run" -np 16 "$platform" "${common[@]}" --output "$work/np16.h5" >/dev/null
cd "$(dirname "$0")/../.."
MPLBACKEND=Agg "$python" -m analysis model "$work/np4.h5" "$work/np16.h5" --out "$work/model" >/dev/null
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
sys.exit(0 if worst <= 0.15 else 1)
PY
