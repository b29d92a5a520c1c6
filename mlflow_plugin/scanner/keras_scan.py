"""Keras models: ``.h5`` (legacy HDF5) and the ``config.json`` of ``.keras`` (v3) archives.

Nothing is deserialised by Keras. For ``.h5`` files only the root attributes
``model_config`` / ``training_config`` are read with h5py (attribute reads, never datasets,
sizes checked before reading); the JSON is then walked for:

- ``Lambda`` layers holding marshalled Python bytecode (CRITICAL ``keras.lambda``): Keras 3
  refuses them with ``safe_mode=True`` (its default) but runs them with ``safe_mode=False``,
  in Keras < 2.13, in ``tf.keras`` / ``tf_keras`` and in legacy ``.h5`` loaders;
- functions and classes imported from modules outside Keras (``keras.unsafe-module``,
  ``keras.custom-object``), Keras gadget functions used by published ``safe_mode`` bypasses
  (``keras.gadget``) and ``TFOpLambda`` layers that call file or Python ops (``keras.tfop``).

>>> from mlflow_plugin.scanner.api import _new_context
>>> ctx = _new_context("m.keras", None, None)
>>> cfg = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config":
...        {"name": "l", "function": {"class_name": "__lambda__", "config": {"code": "YWJj"}}}}]}}
>>> check_keras_config(ctx, "m.keras!config.json", cfg, "keras")
>>> [(f.severity.name, f.rule) for f in ctx.report_obj.findings]
[('CRITICAL', 'keras.lambda')]
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

MAX_ATTR = 64 << 20  # bytes of one HDF5 attribute we are willing to read
MAX_DEPTH = 200

_KERAS_MODULES = (
    "keras",
    "keras_nlp",
    "keras_hub",
    "keras_cv",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
    "keras_rs",
)
_DANGEROUS_MODULES = {
    "os",
    "posix",
    "nt",
    "subprocess",
    "builtins",
    "__builtin__",
    "sys",
    "shutil",
    "socket",
    "importlib",
    "runpy",
    "pickle",
    "marshal",
    "ctypes",
    "code",
    "codeop",
    "pty",
    "webbrowser",
    "requests",
    "urllib",
    "http",
    "ftplib",
    "telnetlib",
    "smtplib",
    "asyncio",
    "multiprocessing",
    "threading",
    "pip",
    "setuptools",
    "tempfile",
    "glob",
    "pathlib",
    "io",
    "functools",
    "operator",
    "types",
    "inspect",
    "dill",
    "cloudpickle",
    "joblib",
    "numpy.f2py",
    "numpy.testing",
    "torch.hub",
    "tensorflow.io",
    "tensorflow.python.ops.script_ops",
}
# Keras functions that published safe_mode bypasses deserialise (CVE-2025-1550, CVE-2025-8747 …)
_GADGETS = {
    "enable_unsafe_deserialization",
    "get_file",
    "load_model",
    "load_weights",
    "save_model",
    "register_keras_serializable",
    "deserialize_keras_object",
    "set_image_data_format",
    "load_img",
    "save_img",
    "plot_model",
    "model_from_json",
    "model_from_yaml",
    "model_from_config",
    "get_registered_object",
    "clear_session",
}
# TFOpLambda 'function' prefixes that reach files or Python
_TFOP_RISKY = re.compile(
    r"^(?:compat\.v1\.)?(?:io\.(?:read_file|write_file|matching_files|gfile)|"
    r"(?:py_func|py_function|numpy_function|eager_py_func)|debugging\.experimental|"
    r"summary\.|saved_model\.|train\.(?:Saver|Checkpoint)|data\.experimental\.(?:load|save)|"
    r"raw_ops\.(?:ReadFile|WriteFile|PyFunc|EagerPyFunc|MatchingFiles|PrintV2))"
)

# Keras 2 (h5-era) layer class names: anything else in a ``layers`` list is a custom object
_LAYER_NAMES = """
Activation ActivityRegularization Add AdditiveAttention AlphaDropout Attention Average
AveragePooling1D AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D BatchNormalization
Bidirectional CategoryEncoding CenterCrop Concatenate Conv1D Conv1DTranspose Conv2D Conv2DTranspose
Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D Convolution1D Convolution2D Convolution3D
Cropping1D Cropping2D Cropping3D Dense DenseFeatures DepthwiseConv1D DepthwiseConv2D Discretization
Dot Dropout ELU EinsumDense Embedding Flatten Functional GRU GRUCell GaussianDropout GaussianNoise
GlobalAveragePooling1D GlobalAveragePooling2D GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D
GlobalAvgPool3D GlobalMaxPool1D GlobalMaxPool2D GlobalMaxPool3D GlobalMaxPooling1D
GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization GroupQueryAttention Hashing HashedCrossing
Identity InputLayer InputSpec IntegerLookup LSTM LSTMCell Lambda LayerNormalization LeakyReLU
LocallyConnected1D LocallyConnected2D Masking MaxPool1D MaxPool2D MaxPool3D MaxPooling1D
MaxPooling2D MaxPooling3D Maximum Minimum Model MultiHeadAttention Multiply Normalization PReLU
Permute RNN RandomBrightness RandomContrast RandomCrop RandomFlip RandomHeight RandomRotation
RandomTranslation RandomWidth RandomZoom ReLU RepeatVector Rescaling Reshape Resizing
SeparableConv1D SeparableConv2D SeparableConvolution1D SeparableConvolution2D Sequential SimpleRNN
SimpleRNNCell Softmax SpatialDropout1D SpatialDropout2D SpatialDropout3D SpectralNormalization
StackedRNNCells StringLookup Subtract TFOpLambda SlicingOpLambda TextVectorization ThresholdedReLU
TimeDistributed UnitNormalization UpSampling1D UpSampling2D UpSampling3D Wrapper ZeroPadding1D
ZeroPadding2D ZeroPadding3D TorchModuleWrapper JaxLayer FlaxLayer Pipeline AutoContrast Equalization
MixUp RandAugment RandomColorDegeneration RandomColorJitter RandomGrayscale RandomHue
RandomPosterization RandomSaturation RandomSharpness RandomShear Solarization MelSpectrogram
STFTSpectrogram RMSNormalization ReversibleEmbedding TokenAndPositionEmbedding TransformerEncoder
TransformerDecoder PositionEmbedding SinePositionEncoding
"""
_BUILTIN_LAYERS = frozenset(_LAYER_NAMES.split())


def _in_keras(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in _KERAS_MODULES)


def _dangerous(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in _DANGEROUS_MODULES)


def _bytecode_evidence(code: Any) -> str:
    """Length of the marshalled code and the identifiers it names (decoded, never unmarshalled)."""
    if isinstance(code, list) and code:
        code = code[0]
    if not isinstance(code, str):
        return "marshalled bytecode"
    try:
        raw = base64.b64decode(code.encode("ascii", "ignore"), validate=False)
    except (binascii.Error, ValueError):
        raw = b""
    names = []
    for m in re.finditer(rb"[A-Za-z_][A-Za-z0-9_.]{2,40}", raw):
        s = m.group().decode()
        if s not in names:
            names.append(s)
        if len(names) >= 8:
            break
    return f"marshalled Python bytecode ({len(raw)} bytes); names: {', '.join(names) or '-'}"


class _Walker:
    def __init__(self, ctx: ScanContext, path: str, fmt: str) -> None:
        self.ctx, self.path, self.fmt = ctx, path, fmt
        self.count = 0
        self.seen: set[tuple[str, str, str]] = set()

    def report(self, sev: Severity, rule: str, msg: str, ev: str) -> None:
        key = (rule, msg, ev)
        if key in self.seen:
            return
        self.seen.add(key)
        self.count += 1
        if self.count <= 200:
            self.ctx.report(self.path, sev, rule, msg, ev)

    def walk(self, obj: Any, depth: int = 0, in_layers: bool = False) -> None:
        if depth > MAX_DEPTH:
            self.report(Severity.MEDIUM, "keras.config", "Keras config nested too deeply to check", "")
            return
        if isinstance(obj, list):
            for x in obj:
                self.walk(x, depth + 1, in_layers)
            return
        if not isinstance(obj, dict):
            return
        cls = obj.get("class_name")
        if isinstance(cls, str):
            self.check_object(obj, cls, in_layers)
        for k, v in obj.items():
            if isinstance(v, dict | list):
                self.walk(v, depth + 1, k == "layers")

    def check_object(self, obj: dict[str, Any], cls: str, in_layers: bool) -> None:
        cfg = obj.get("config")
        cfgd = cfg if isinstance(cfg, dict) else {}
        name = cfgd.get("name") or cls
        module = obj.get("module")
        module = module if isinstance(module, str) else ""
        registered = obj.get("registered_name")
        registered = registered if isinstance(registered, str) else ""
        safe = (
            "refused by Keras 3 load_model(safe_mode=True), but executed with safe_mode=False, by Keras "
            "< 2.13, tf.keras/tf_keras and legacy .h5 loaders"
        )

        if cls == "Lambda":
            fn = cfgd.get("function")
            ftype = cfgd.get("function_type")
            if isinstance(fn, dict) and fn.get("class_name") == "__lambda__":
                code = (fn.get("config") or {}).get("code") if isinstance(fn.get("config"), dict) else None
                self.report(
                    Severity.CRITICAL,
                    "keras.lambda",
                    f"Lambda layer holds marshalled Python bytecode that runs when the model is "
                    f"loaded/called ({safe})",
                    f"layer {name!r}: {_bytecode_evidence(code)}",
                )
            elif (isinstance(fn, list | str) and ftype in (None, "lambda")) and fn:
                self.report(
                    Severity.CRITICAL,
                    "keras.lambda",
                    f"Lambda layer holds marshalled Python bytecode that runs when the model is "
                    f"loaded/called ({safe})",
                    f"layer {name!r}: {_bytecode_evidence(fn)}",
                )
            elif ftype == "raw" or isinstance(fn, str | dict):
                fmod = cfgd.get("module") or (fn.get("module") if isinstance(fn, dict) else "") or ""
                fname = fn.get("config") if isinstance(fn, dict) else fn
                sev = Severity.CRITICAL if isinstance(fmod, str) and _dangerous(fmod) else Severity.HIGH
                self.report(
                    sev,
                    "keras.lambda",
                    "Lambda layer calls a Python function imported by name when the model loads",
                    f"layer {name!r}: {fmod}.{fname}"[:200],
                )
            return
        if cls in ("TFOpLambda", "SlicingOpLambda"):
            fn = cfgd.get("function")
            if isinstance(fn, str) and _TFOP_RISKY.match(fn):
                self.report(
                    Severity.HIGH,
                    "keras.tfop",
                    "TFOpLambda layer calls a TensorFlow op with file or Python access",
                    f"layer {name!r}: tf.{fn}",
                )
            return
        if cls in ("function", "__function__") or (module and not _in_keras(module)):
            target = f"{module}.{cfg if isinstance(cfg, str) else cls}" if module else str(cls)
            if module and _dangerous(module):
                self.report(
                    Severity.CRITICAL,
                    "keras.unsafe-module",
                    "config imports a function or class from a module that reaches the OS or "
                    "Python internals when the model loads",
                    target[:200],
                )
                return
            if cls in ("function", "__function__") and isinstance(cfg, str) and cfg in _GADGETS:
                self.report(
                    Severity.HIGH,
                    "keras.gadget",
                    "config calls a Keras function used by published safe_mode bypasses "
                    "(downloads, unsafe deserialisation)",
                    target[:200],
                )
                return
            if module and not _in_keras(module):
                self.report(
                    Severity.MEDIUM,
                    "keras.custom-object",
                    "custom object: loading imports code from outside Keras",
                    target[:200],
                )
                return
        if isinstance(cfg, str) and cfg in _GADGETS and cls in ("function", "__function__"):
            self.report(
                Severity.HIGH,
                "keras.gadget",
                "config calls a Keras function used by published safe_mode bypasses",
                f"{module}.{cfg}",
            )
            return
        if cls in _GADGETS:
            self.report(
                Severity.HIGH,
                "keras.gadget",
                "config names a Keras function used by published safe_mode bypasses",
                cls,
            )
            return
        if ">" in registered and not registered.startswith("keras"):
            self.report(
                Severity.MEDIUM,
                "keras.custom-object",
                "custom object registered outside Keras: loading needs (and runs) its code",
                registered[:200],
            )
            return
        if ">" in cls:
            self.report(
                Severity.MEDIUM,
                "keras.custom-object",
                "custom object registered outside Keras: loading needs (and runs) its code",
                cls[:200],
            )
            return
        if in_layers and not module and cls not in _BUILTIN_LAYERS and not cls.startswith("__"):
            self.report(
                Severity.MEDIUM,
                "keras.custom-object",
                "layer class is not a Keras built-in: loading needs (and runs) custom code",
                f"layer {name!r}: {cls}"[:200],
            )


def check_keras_config(ctx: ScanContext, path: str, obj: Any, fmt: str) -> None:
    """Report risky objects in a parsed Keras model config (see the module docstring).

    >>> from mlflow_plugin.scanner.api import _new_context
    >>> ctx = _new_context("m.h5", None, None)
    >>> check_keras_config(ctx, "m.h5", {"class_name": "Dense", "config": {}}, "h5")
    >>> ctx.report_obj.findings
    []
    """
    _Walker(ctx, path, fmt).walk(obj)


def check_keras_config_bytes(ctx: ScanContext, path: str, data: bytes, fmt: str) -> None:
    """Parse ``data`` as a Keras config (JSON) and check it; malformed JSON is a finding.

    >>> from mlflow_plugin.scanner.api import _new_context
    >>> ctx = _new_context("m.keras", None, None)
    >>> check_keras_config_bytes(ctx, "m.keras!config.json", b"{not json", "keras")
    >>> [f.rule for f in ctx.report_obj.findings]
    ['keras.config']
    """
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as e:
        ctx.report(
            path,
            Severity.MEDIUM,
            "keras.config",
            f"Keras model config is not valid JSON ({str(e)[:120]}); loaders may disagree on it",
        )
        return
    check_keras_config(ctx, path, obj, fmt)


H5_TIMEOUT = 30.0  # seconds libhdf5 may spend on one file's root attributes

# Runs in a child process: libhdf5 is C code, and a hostile file can hang or crash it.
_H5_CHILD = r"""
import json, sys
out = {}
try:
    import h5py
    with h5py.File(sys.argv[1], "r") as f:
        keys = list(f.attrs.keys())
        for key in ("model_config", "training_config"):
            if key not in keys:
                continue
            aid = f.attrs.get_id(key)
            nbytes = aid.get_storage_size()
            if nbytes > int(sys.argv[2]) or aid.shape not in ((), (1,), None):
                out[key] = {"error": f"too large or not a scalar (bytes={nbytes} shape={aid.shape})"}
                continue
            val = f.attrs[key]
            if getattr(val, "shape", ()) == (1,):
                val = val[0]
            if isinstance(val, bytes):
                val = val.decode("utf-8", "replace")
            out[key] = val if isinstance(val, str) else {"error": "not a string: " + type(val).__name__}
except ImportError:
    out = {"__error__": "h5py missing"}
except BaseException as e:
    out = {"__error__": f"{type(e).__name__}: {str(e)[:160]}"}
sys.stdout.write(json.dumps(out))
"""


def scan_hdf5(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Read a Keras ``.h5`` file's root attributes (never its datasets) and check its config.

    libhdf5 parses the file in a child process with a timeout, so a file that hangs or crashes
    the library is a finding, not a hung or dead scanner.

    >>> import io, h5py, json
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> buf = io.BytesIO()
    >>> with h5py.File(buf, "w") as f:
    ...     f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    >>> ctx = _new_context("m.h5", None, None)
    >>> _ = buf.seek(0); scan_hdf5(ctx, "m.h5", buf, len(buf.getvalue())); ctx.report_obj.findings
    []
    """
    import os
    import subprocess
    import sys
    import tempfile

    fname = getattr(stream, "name", None)
    tmp = None
    try:
        if not (
            isinstance(fname, str)
            and os.path.isfile(fname)
            and _tell(stream) == 0
            and os.path.getsize(fname) == size
        ):
            tmp = tempfile.NamedTemporaryFile(prefix="modelkit-scan-", suffix=".h5", delete=False)  # noqa: SIM115
            with tmp:
                left = size
                while left > 0:
                    b = stream.read(min(left, 1 << 20))
                    if not b:
                        break
                    tmp.write(b)
                    left -= len(b)
            fname = tmp.name
        timeout = float(ctx.extra.get("h5_timeout", H5_TIMEOUT))
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-c", _H5_CHILD, fname, str(MAX_ATTR)],
                capture_output=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            ctx.report(
                path,
                Severity.MEDIUM,
                "hdf5.timeout",
                f"HDF5 library did not finish reading the root attributes in {timeout:g}s (a hostile file "
                "can hang loaders too); config not checked",
            )
            return
    finally:
        if tmp is not None:
            os.unlink(tmp.name)
    if proc.returncode != 0:
        ctx.report(
            path,
            Severity.HIGH,
            "hdf5.malformed",
            f"HDF5 file crashes the HDF5 library (exit {proc.returncode}): loaders may crash or be exploited",
        )
        return
    try:
        out = json.loads(proc.stdout or b"{}")
    except ValueError:
        out = {"__error__": "no result"}
    err = out.pop("__error__", None)
    if err == "h5py missing":
        ctx.report(
            path,
            Severity.MEDIUM,
            "scan.unsupported",
            "HDF5 file: h5py is not installed, its Keras config was not checked",
            "h5py missing",
        )
        return
    if err:
        ctx.report(path, Severity.MEDIUM, "hdf5.malformed", f"HDF5 file could not be read: {err}")
        return
    for key in ("model_config", "training_config"):
        val = out.get(key)
        if val is None:
            continue
        if isinstance(val, dict):
            ctx.report(
                path, Severity.MEDIUM, "hdf5.attribute", f"attribute {key!r} not read: {val.get('error')}"
            )
            continue
        try:
            obj = json.loads(val)
        except (ValueError, RecursionError) as e:
            ctx.report(
                path, Severity.MEDIUM, "keras.config", f"Keras {key} is not valid JSON ({str(e)[:120]})"
            )
            continue
        check_keras_config(ctx, path, obj, "h5")


def _tell(stream: Any) -> int:
    try:
        return int(stream.tell())
    except (AttributeError, OSError, ValueError):
        return -1
