#!/usr/bin/env bash
# The main job, end to end on the embedded default (SQLite tracking store + local OCI image
# layouts, no services): an MLflow run logged as usual lands in a ModelKit; we show the kit and
# reload the model from it. Then the engine underneath: pack, push, pull, unpack, inspect.
set -euo pipefail
cd "$(dirname "$0")/.."
MK="${MK:-.venv/bin/mlflow-modelkit}"
OUT="${DEMO_OUT:-demo-out}"
rm -rf "$OUT" && mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

PY="${PY:-.venv/bin/python}"
ABS="$(cd "$OUT" && pwd)"
export MLFLOW_MODELKIT_NO_PROGRESS=1

step "train and log an MLflow run into modelkit://$ABS/kits/team/fraud (SQLite tracking store)"
RUN_JSON=$($PY examples/train_fraud.py --tracking-uri "sqlite:///$ABS/mlflow.db" \
    --artifact-location "modelkit://$ABS/kits/team/fraud" --data-dir "$OUT/data" 2>/dev/null | tail -1)
echo "  $RUN_JSON"
RUN_ID=$(echo "$RUN_JSON" | $PY -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
MODEL_ID=$(echo "$RUN_JSON" | $PY -c 'import json,sys; print(json.load(sys.stdin)["model_id"])')

step "the experiment's kits: one draft per run (run-<id>) and per logged model (m-<id>)"
$MK list "oci:$OUT/kits/team/fraud"

step "the run's kit"
$MK inspect "oci:$OUT/kits/team/fraud:run-$RUN_ID" | sed -n '1,/^Manifest:/p' | sed '$d'

step "the model's kit"
$MK inspect "oci:$OUT/kits/team/fraud:$MODEL_ID" | sed -n '1,/^Manifest:/p' | sed '$d'

step "reload the model from the kit through MLflow"
$PY examples/reload_model.py "sqlite:///$ABS/mlflow.db" "$RUN_ID" "$MODEL_ID" 2>/dev/null

step "pack examples/fraud-model -> oci:$OUT/kits/fraud:v1"
$MK pack examples/fraud-model -t "oci:$OUT/kits/fraud:v1"

step "push to a second local OCI layout (the 'registry' of the embedded default)"
$MK push "oci:$OUT/kits/fraud:v1" "oci:$OUT/store/team/fraud:v1"

step "pull it back into a fresh layout"
$MK pull "oci:$OUT/store/team/fraud:v1" -t "oci:$OUT/pulled/fraud:v1"

step "list tags"
$MK list "oci:$OUT/pulled/fraud"

step "inspect (manifest + Kitfile config)"
$MK inspect "oci:$OUT/pulled/fraud:v1"

step "unpack (every layer digest verified while extracting)"
$MK unpack "oci:$OUT/pulled/fraud:v1" -d "$OUT/unpacked"
(cd "$OUT/unpacked" && find . -type f | sort | while read -r f; do printf '  %8s  %s\n' "$(stat -c %s "$f")" "$f"; done)

if command -v skopeo >/dev/null 2>&1; then
  step "skopeo reads the same manifest (interop check)"
  want=$($MK inspect --json "oci:$OUT/pulled/fraud:v1" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
  got="sha256:$(skopeo inspect --raw "oci:$OUT/pulled/fraud:v1" | sha256sum | cut -d' ' -f1)"
  if [ "$got" = "$want" ]; then echo "  skopeo sees $got (identical)"; else echo "  MISMATCH: skopeo $got vs ours $want"; exit 1; fi
fi
