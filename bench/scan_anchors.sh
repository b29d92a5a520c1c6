#!/usr/bin/env bash
# Create bench/.venv-anchors: the three anchor scanners (modelscan, picklescan, fickling) plus the
# libraries the corpus generator uses to make *real* benign files (torch, scikit-learn, joblib,
# xgboost, safetensors, h5py, skops, onnx, py7zr, zstandard). Kept apart from the main .venv on
# purpose: torch and the anchors must not leak into the project's own environment.
#
#   bash bench/scan_anchors.sh            # idempotent; prints the installed anchor versions
#
# torch==2.13.0 comes from the local wheel directory pip is configured with (find-links); the
# optional libraries are installed one by one so a missing one only drops its samples.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-anchors"
py="${PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x "$here/../.venv/bin/python" ]; then
        py="$(readlink -f "$here/../.venv/bin/python")"
    else
        py="$(command -v python3)"
    fi
fi
if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
# anchors (required); typing_extensions: fickling 0.1.12 imports it without declaring it
"${pip[@]}" modelscan picklescan fickling typing_extensions >>"$venv/install.log" 2>&1
for tool in modelscan picklescan fickling; do
    [ -x "$venv/bin/$tool" ] || { echo "anchor $tool failed to install" >&2; exit 1; }
done
# modelscan 0.8.8 declares numpy>=1.24.3 but its .npy scanner calls numpy.lib.format._check_version,
# which numpy 2 removed: every .npy/.npz becomes a scan error. To give the anchor its best working
# configuration, bench/scan.py runs modelscan from a nested venv with numpy<2 (and h5py for .h5).
if [ ! -x "$venv/np1/bin/modelscan" ]; then
    "$py" -m venv "$venv/np1"
    "$venv/np1/bin/python" -m pip install -q --disable-pip-version-check modelscan "numpy<2" h5py \
        >>"$venv/install.log" 2>&1
fi
# corpus libraries (optional, best effort)
for pkg in torch==2.13.0 scikit-learn joblib xgboost safetensors h5py skops onnx py7zr zstandard; do
    "${pip[@]}" "$pkg" >>"$venv/install.log" 2>&1 || echo "optional $pkg not installed" >&2
done
"$venv/bin/python" - <<'EOF'
import importlib.metadata as md
for name in ("modelscan", "picklescan", "fickling", "torch", "scikit-learn", "xgboost", "h5py", "safetensors"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: not installed")
EOF
"$venv/np1/bin/python" -c 'import importlib.metadata as m; print("modelscan (np1 venv):", m.version("modelscan"), "numpy", m.version("numpy"))'
