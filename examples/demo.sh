#!/usr/bin/env bash
# The main job, end to end on the embedded default (local OCI image layouts, no services):
# pack the example model, push it to a second layout, pull it back, unpack, inspect.
set -euo pipefail
cd "$(dirname "$0")/.."
MK="${MK:-.venv/bin/mlflow-modelkit}"
OUT="${DEMO_OUT:-demo-out}"
rm -rf "$OUT" && mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

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
