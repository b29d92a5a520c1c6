#!/usr/bin/env bash
# Create bench/.venv-mlflow: the real mlflow (>=3.17,<3.19) with the libraries of the flavors that
# bench/mlflow_corpus.py saves models for (scikit-learn, skops, xgboost, lightgbm, catboost,
# statsmodels, prophet, torch, transformers, keras 3 on the torch backend, onnx) plus the anchor
# ModelAudit (PyPI `modelaudit`). A venv of its own, not bench/.venv-anchors: mlflow and the flavor
# libraries pin numpy/pandas/protobuf ranges that would move the anchors' environment, and
# modelscan already needs its own numpy<2 nested venv there (see scan_anchors.sh).
#
#   bash bench/mlflow_corpus_env.sh       # idempotent; prints what got installed
#
# torch: pinned to 2.13.0 through a constraints file. The CPU wheel of 2.13.0 lies in the local
# find-links directory; any package that pulls a newer torch would otherwise download the CUDA
# build (several GB). mlflow 3.18.0 lacks its matching mlflow-tracing, pip falls back to 3.17.x.
# Flavors are installed one by one so a library that does not install only drops its models.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-mlflow"
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x "$here/../.venv/bin/python" ]; then
        py="$(readlink -f "$here/../.venv/bin/python")"
    else
        py="$(command -v python3)"
    fi
fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
cons="$venv/constraints.txt"
printf 'torch==2.13.0\nmlflow>=3.17,<3.19\n' >"$cons"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$cons")
log="$venv/install.log"
# required: torch first (CPU wheel from disk), then mlflow and the anchor
"${pip[@]}" torch==2.13.0 >>"$log" 2>&1
"${pip[@]}" "mlflow>=3.17,<3.19" scikit-learn cloudpickle >>"$log" 2>&1
# py-ubjson: modelaudit's scanner for xgboost .ubj (MLflow's default xgboost format) needs it, and
# modelaudit does not declare it: without it every xgboost model is a scan error
"${pip[@]}" modelaudit py-ubjson >>"$log" 2>&1 || echo "anchor modelaudit not installed (see $log)" >&2
# flavors (optional, best effort)
for pkg in skops xgboost lightgbm catboost statsmodels prophet transformers keras onnx onnxruntime \
    onnxscript; do
    "${pip[@]}" "$pkg" >>"$log" 2>&1 || echo "optional $pkg not installed (see $log)" >&2
done
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("mlflow", "modelaudit", "torch", "numpy", "scikit-learn", "skops", "xgboost", "lightgbm",
             "catboost", "statsmodels", "prophet", "transformers", "keras", "onnx", "onnxruntime"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: not installed")
PY
