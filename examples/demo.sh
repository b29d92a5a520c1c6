#!/usr/bin/env bash
# The main job, end to end on the embedded default (SQLite tracking store + local OCI image
# layouts, no services): an MLflow run logged as usual lands in a ModelKit; we show the kit and
# reload the model from it; publish it as a hardened kit (scanned, attested, signed), verify it,
# load it with verify-on-load, and watch a tampered copy be refused. Then the engine underneath:
# pack, push, pull, unpack, inspect.
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

export MLFLOW_TRACKING_URI="sqlite:///$ABS/mlflow.db"
export MLFLOW_MODELKIT_KEY_PASSWORD="${MLFLOW_MODELKIT_KEY_PASSWORD:-demo-only-passphrase}"

step "create a signing key pair (ECDSA P-256; the private key is encrypted, mode 0600)"
$MK keygen -o "$OUT/keys"

step "publish the run as a hardened kit: compose (no re-upload), scan, provenance, sign, tag"
$MK publish "runs:/$RUN_ID" --tag v1 --key "$OUT/keys/cosign.key" --register fraud

step "verify it with the public key (signatures, attestations, scan verdict, every digest)"
$MK verify "oci:$OUT/kits/team/fraud:v1" --key "$OUT/keys/cosign.pub"

step "the verified provenance, built from the MLflow run"
$MK provenance "oci:$OUT/kits/team/fraud:v1" --key "$OUT/keys/cosign.pub" | head -25

step "load it through MLflow with verify-on-load on (models:/fraud/1 is the digest-pinned kit)"
MLFLOW_MODELKIT_REQUIRE_SIGNATURE=1 MLFLOW_MODELKIT_TRUSTED_KEYS="$ABS/keys/cosign.pub" $PY -c '
import mlflow, numpy as np
from sklearn.datasets import make_classification
X, _ = make_classification(n_samples=20, n_features=8, weights=[0.95], random_state=7)
m = mlflow.pyfunc.load_model("models:/fraud/1")
print(f"  verified and loaded models:/fraud/1: {int(m.predict(X).sum())} of {len(X)} flagged")' 2>/dev/null

step "a tampered copy is refused (one byte of its largest layer flipped)"
rm -rf "$OUT/tampered" && cp -r "$OUT/kits/team/fraud" "$OUT/tampered"
$PY - "$OUT/tampered" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
tag = next(m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1")
man = json.load(open(os.path.join(d, "blobs", "sha256", tag["digest"].split(":")[1])))
layer = max(man["layers"], key=lambda l: l["size"])
path = os.path.join(d, "blobs", "sha256", layer["digest"].split(":")[1])
data = bytearray(open(path, "rb").read()); data[len(data) // 2] ^= 0xFF
os.chmod(path, 0o644); open(path, "wb").write(bytes(data))
print(f"  flipped one byte of {layer['digest'][:19]}… ({layer['size']} bytes)")
PYEOF
if $MK verify "oci:$OUT/tampered:v1" --key "$OUT/keys/cosign.pub"; then
  echo "  ERROR: the tampered kit verified"; exit 1
else
  echo "  -> refused, as it must be"
fi
if MLFLOW_MODELKIT_REQUIRE_SIGNATURE=1 MLFLOW_MODELKIT_TRUSTED_KEYS="$ABS/keys/cosign.pub" $PY -c "
import mlflow; mlflow.pyfunc.load_model('modelkit://$ABS/tampered:v1')" 2>"$OUT/load-error.txt"; then
  echo "  ERROR: the tampered kit loaded"; exit 1
else
  echo "  MLflow refused to load it: $(tail -1 "$OUT/load-error.txt" | cut -c1-160)"
fi

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
