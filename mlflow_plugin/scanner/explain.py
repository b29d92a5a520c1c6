"""Every finding explained in one line a data scientist understands: what would run (or leak),
when — on import, on load, on predict, on install, when shared, or never — and how to fix it.

The explanations are a data table, one entry per rule id the scanner emits (``RULES``); rule
families (``secret.*``, ``zip.*``, ``scan.limit.*``…) also have a family entry, so a rule added
later still gets a sensible text, and only a rule from an unknown family gets the generic one.
Some fixes name the finding's evidence (the pickle global to allowlist, the class to move).

>>> from mlflow_plugin.scanner.report import Finding, Severity
>>> f = Finding("model.pkl", Severity.MEDIUM, "pickle.unknown-global", "imports mypkg.models.MyModel",
...             "mypkg.models.MyModel")
>>> e = explain(f)
>>> e.when
'on load'
>>> print(e.fix)  # doctest: +ELLIPSIS
if you wrote `mypkg.models.MyModel`, ship its module in code_paths or add `mypkg.models.MyModel` to ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

ON_IMPORT = "on import"  # MLflow imports code the model ships (loader module, models from code)
ON_LOAD = "on load"  # load_model / unpickling / deserialising the weights
ON_PREDICT = "on predict"  # inside predict(), or a function predict() calls
ON_INSTALL = "on install"  # pip/conda install the model's environment
WHEN_SHARED = "when shared"  # a secret or personal data leaks to everyone who gets the kit
NEVER = "never runs"  # structural problems and scan limits: nothing runs, something was not checked

WHENS = (ON_IMPORT, ON_LOAD, ON_PREDICT, ON_INSTALL, WHEN_SHARED, NEVER)


class _FindingLike(Protocol):
    @property
    def rule(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def evidence(self) -> str: ...


@dataclass(frozen=True)
class Explanation:
    """What a finding means, when it would bite, and how to fix it.

    >>> e = Explanation("the pickle calls `os.system`", "on load", "do not load this file")
    >>> e.line()
    'on load: the pickle calls `os.system`. Fix: do not load this file'
    >>> e.to_json()["when"]
    'on load'
    """

    what: str
    when: str
    fix: str

    def line(self) -> str:
        """One line: ``<when>: <what>. Fix: <fix>``."""
        return f"{self.when}: {self.what}. Fix: {self.fix}"

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "when": self.when, "fix": self.fix}


_NOT_LOAD = (
    "do not load this file; ask whoever produced it how it was made, and re-save the model from trusted code"
)
_RESAVE = "re-save the file with the library that wrote it; if you did not produce it, do not load it"
_BY_HAND = "check that file by hand (or re-create it); nothing in it was judged"
_LIMIT = (
    "check that content by hand; a real model rarely needs this much, and if it does, scan with "
    "higher limits (scanner Limits in the Python API)"
)
_ARCHIVE = "re-create the archive with a standard tool (zip/tar) from the model directory"
_SECRET_FIX = (
    "revoke (rotate) the credential now, delete it from the files/params, and read it at run time "
    "from an environment variable or secret store"
)
_PII_FIX = "remove or anonymise the column, or exclude datasets from the published kit"
_CODE_REVIEW = "log the model from code (models-from-code) or ship reviewed code in code_paths"

# rule id -> (what, when, fix). Plain language; `what` has no trailing period.
RULES: dict[str, tuple[str, str, str]] = {
    # -- pickle (unpickling runs whatever callables the stream names) --------------------------
    "pickle": (
        "the pickle does something unusual that can run code while it is unpickled",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.unsafe-global": (
        "unpickling imports a function that can run commands, files or code (e.g. `os.system`, `eval`)",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.unsafe-import": (  # older name of pickle.unsafe-global (docs, old reports)
        "unpickling imports a function that can run commands, files or code",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.unknown-global": (
        "unpickling imports a class or function that is not on the allowlist of what ML files contain",
        ON_LOAD,
        "if you wrote that class, ship its module in code_paths or add it to `[scan] allow_globals`; "
        "otherwise do not load this file",
    ),
    "pickle.unsafe-call": (
        "the pickle calls a dangerous function indirectly (through getattr, a wrapper or a method)",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.indirect-call": (
        "the pickle calls something it built at load time, hiding which function really runs",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.dynamic-global": (
        "the pickle builds the name of what it imports from computed values (a scanner-evasion trick)",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.mutate-global": (
        "unpickling changes an imported module or class (monkey-patching the process that loads it)",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.ext-code": (
        "the pickle uses a copyreg extension code, which means whatever the loading process registered",
        ON_LOAD,
        _RESAVE,
    ),
    "pickle.persistent-id": (
        "the pickle uses persistent ids; the loader's persistent_load decides what they become",
        ON_LOAD,
        "nothing if this is a PyTorch/joblib file loaded by its library; "
        "otherwise re-save it with plain pickle",
    ),
    "pickle.hidden-pickle": (
        "pickle code is hidden in data the normal loader skips; a loader that reads it runs it",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "pickle.embedded-code": (
        "a function or class is stored inside the pickle as code (cloudpickle, e.g. a PythonModel "
        "defined in a notebook) and runs when the model loads or predicts",
        ON_LOAD,
        "log the model from code (models-from-code) or move the class into a module shipped with code_paths",
    ),
    "pickle.kit-code": (
        "the pickle imports a class or function from code shipped inside the kit; that code runs on "
        "load and is analysed by the code.* rules",
        ON_LOAD,
        "nothing if the code.* findings for that file are clean; keep the code in code_paths "
        "so it stays scanned",
    ),
    "pickle.malformed": (
        "the pickle stream is broken or structured in a way no pickler writes; "
        "loaders may read it differently",
        NEVER,
        _RESAVE,
    ),
    "pickle.limit": (
        "the pickle is too large or complex to analyse fully; the rest of it was not checked",
        NEVER,
        _LIMIT,
    ),
    # -- Python code the model loads ------------------------------------------------------------
    "code": ("the model's Python code does something risky", ON_IMPORT, _CODE_REVIEW),
    "code.shell": (
        "the model's code starts a process or shell command",
        ON_IMPORT,
        "remove it; model code must not run commands",
    ),
    "code.network": (
        "the model's code opens a network connection",
        ON_IMPORT,
        "remove it; ship what the model needs as artifacts instead of downloading it",
    ),
    "code.dynamic-code": (
        "the model's code runs code built from strings (exec/eval/compile)",
        ON_IMPORT,
        "replace exec/eval/compile with ordinary code",
    ),
    "code.native": (
        "the model's code calls native code through ctypes/cffi",
        ON_IMPORT,
        "remove it, or depend on a reviewed package that ships the native code",
    ),
    "code.remote-code": (
        "the model's code downloads code from the internet and runs it (torch.hub, trust_remote_code)",
        ON_IMPORT,
        "ship the code with the model (code_paths) instead of fetching it at run time",
    ),
    "code.deserialize": (
        "the model's code deserialises data that can execute code (pickle, marshal, torch.load)",
        ON_IMPORT,
        "load weights with a safe format (safetensors, torch.load(weights_only=True), json)",
    ),
    "code.obfuscated-exec": (
        "the model's code runs decoded or downloaded text as code (a strong sign of tampering)",
        ON_IMPORT,
        "remove it and find out who added it; do not load the model until then",
    ),
    "code.dynamic-import": (
        "the model's code imports a module whose name is computed at run time",
        ON_IMPORT,
        "import modules by their literal name",
    ),
    "code.dynamic-attribute": (
        "the model's code looks up a computed attribute of os/subprocess/builtins, "
        "hiding which function runs",
        ON_IMPORT,
        "call the function by its name",
    ),
    "code.shadows-module": (
        "a shipped .py file has the name of a standard or trusted library module, so every import "
        "of that module runs this file instead",
        ON_IMPORT,
        "rename the file (and its imports) so it does not shadow a real module",
    ),
    "code.unparsable": (
        "a Python file is not valid Python 3, so it was analysed token by token only",
        NEVER,
        "port the code to Python 3 (or remove the file if the model does not use it)",
    ),
    "code.too-large": (
        "a Python file is too large to analyse and was not checked",
        NEVER,
        "review it by hand or split it; generated code this large is unusual in a model",
    ),
    "code.too-complex": (
        "a Python file is nested too deeply to analyse fully",
        NEVER,
        "review it by hand or simplify it",
    ),
    "code.more-findings": (
        "a Python file has more code findings than are listed one by one",
        NEVER,
        "fix the listed findings and scan again to see the rest",
    ),
    # -- the model's environment (pip/conda) ----------------------------------------------------
    "env": (
        "the model's environment installs packages from somewhere unusual",
        ON_INSTALL,
        "install packages by name with a `==` pin from your usual index",
    ),
    "env.direct-url": (
        "the environment installs a package from a URL or file instead of the package index",
        ON_INSTALL,
        "pin the package from your index (`name==version`) instead of a URL",
    ),
    "env.index-override": (
        "requirements.txt tells pip to fetch packages from another index (--index-url/--extra-index-url)",
        ON_INSTALL,
        "remove the index option; let the admin's pip configuration choose the index",
    ),
    "env.typosquat": (
        "the environment installs a package whose name is one letter away from a popular ML package",
        ON_INSTALL,
        "use the real package name if that is what you meant",
    ),
    "env.conda-channel": (
        "conda.yaml installs from a channel that is not a default one",
        ON_INSTALL,
        "use conda-forge/defaults or a channel your admin approved",
    ),
    "env.unpinned": (
        "some requirements have no exact `==` version, so a later, different release would be installed",
        ON_INSTALL,
        "pin them (pip freeze, or mlflow's inferred requirements)",
    ),
    "env.partial": (
        "the environment file is large and only its start was checked",
        NEVER,
        "keep environment files short; review the rest by hand",
    ),
    "env.unparsable": (
        "the environment file is not valid YAML, so its dependencies were not checked",
        NEVER,
        "fix the YAML (let mlflow write conda.yaml/python_env.yaml)",
    ),
    # -- MLmodel (what MLflow imports and reads when it loads the model) ------------------------
    "mlmodel": (
        "the MLmodel file makes MLflow do something unusual when it loads the model",
        ON_IMPORT,
        "re-save the model with mlflow.<flavor>.log_model",
    ),
    "mlmodel.loader-module": (
        "MLmodel makes MLflow import a module that is not an MLflow flavor and call it",
        ON_IMPORT,
        "save the model with a built-in flavor, or ship your loader module in code_paths "
        "so the scan reads it",
    ),
    "mlmodel.model-code": (
        "the model is defined by a Python file that MLflow runs (models from code)",
        ON_IMPORT,
        "review the code.* findings for that file; nothing else is needed if they are clean",
    ),
    "mlmodel.missing-code": (
        "MLmodel names code that is not in the model, so MLflow would import whatever is installed "
        "under that name (unscanned) or fail",
        ON_IMPORT,
        "ship that code with the model (code_paths, or the models-from-code file), or fix the name",
    ),
    "mlmodel.remote-artifact": (
        "an MLmodel artifact is a URI, not a file in the model: the model's code fetches whatever it "
        "names at load, unscanned",
        ON_LOAD,
        "save the model with the artifact copied in (mlflow copies `artifacts` at save time)",
    ),
    "mlmodel.remote-code": (
        "the model asks for trust_remote_code (MLmodel or config.json auto_map): loading runs code "
        "from the hub or shipped with the model",
        ON_LOAD,
        "save the model without trust_remote_code, or ship and review that code in the model",
    ),
    "mlmodel.custom-objects": (
        "MLflow unpickles custom objects (Keras/TF custom layers) when loading, and they run code",
        ON_LOAD,
        "prefer built-in layers; otherwise review the custom objects' pickle findings",
    ),
    "mlmodel.skops-trusted-type": (
        "MLmodel tells skops to trust a type that can run code while the model loads",
        ON_LOAD,
        "remove it from skops_trusted_types and re-save with scikit-learn types only",
    ),
    "skops.unsafe-type": (
        "the skops file asks the loader to build a function or type that runs commands or code",
        ON_LOAD,
        "do not load this file; re-save the model with skops from trusted code",
    ),
    "skops.unknown-type": (
        "the skops file needs a type outside the allowlist; skops builds it only if it is trusted",
        ON_LOAD,
        "if the type is yours, ship its module in code_paths or add it to `[scan] allow_globals`",
    ),
    "mlmodel.path": (
        "an MLmodel path points outside the model directory, so MLflow would read another file at load",
        ON_LOAD,
        "keep every path in MLmodel relative and inside the model (re-save the model)",
    ),
    "mlmodel.unknown-flavor": (
        "MLmodel has a flavor MLflow does not know; only a loader that knows it reads it",
        NEVER,
        "nothing if you added that flavor on purpose; otherwise re-save with a built-in flavor",
    ),
    "mlmodel.malformed": (
        "the MLmodel file is not a valid MLmodel, so MLflow cannot load it and it was not fully checked",
        NEVER,
        "re-save the model with mlflow.<flavor>.log_model",
    ),
    # -- Keras / HDF5 ----------------------------------------------------------------------------
    "keras": (
        "the Keras model config makes loading run code",
        ON_LOAD,
        "use built-in layers and load with safe_mode=True",
    ),
    "keras.lambda": (
        "a Keras Lambda layer holds Python code that runs when the model is loaded or called",
        ON_LOAD,
        "replace the Lambda layer with a built-in layer or a registered custom layer shipped as code",
    ),
    "keras.tfop": (
        "a Keras layer calls a TensorFlow op that reads/writes files or runs Python",
        ON_PREDICT,
        "rebuild the model without that op",
    ),
    "keras.unsafe-module": (
        "the Keras config imports from a module that reaches the OS or Python internals",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "keras.gadget": (
        "the Keras config uses a function known from safe_mode bypasses (downloads, unsafe deserialisation)",
        ON_LOAD,
        _NOT_LOAD,
    ),
    "keras.custom-object": (
        "the Keras model needs custom classes, and loading imports and runs their code",
        ON_LOAD,
        "ship the custom layer's module in code_paths so it is scanned, or use built-in layers",
    ),
    "keras.config": (
        "the Keras config could not be checked (invalid JSON, too large or too deeply nested)",
        NEVER,
        "re-save the model with model.save(); " + _BY_HAND,
    ),
    "hdf5": ("the HDF5 file could not be checked", NEVER, _RESAVE),
    "hdf5.malformed": (
        "the HDF5 file is unreadable or crashes the HDF5 library (loaders may crash or be exploited)",
        NEVER,
        _RESAVE,
    ),
    "hdf5.timeout": (
        "reading the HDF5 file's attributes did not finish in time (a hostile file can hang loaders)",
        NEVER,
        _RESAVE,
    ),
    "hdf5.attribute": (
        "an HDF5 attribute holding the Keras config could not be read, so it was not checked",
        NEVER,
        _RESAVE,
    ),
    # -- numpy -----------------------------------------------------------------------------------
    "numpy": ("the .npy file is unusual", NEVER, _RESAVE),
    "numpy.object-array": (
        "the .npy array holds Python objects, so numpy.load needs allow_pickle=True (unpickling)",
        ON_LOAD,
        "save numeric arrays (not dtype=object) so the file loads with allow_pickle=False",
    ),
    "numpy.malformed": ("the .npy header is invalid", NEVER, _RESAVE),
    "numpy.truncated": ("the .npy file holds less data than its header announces", NEVER, _RESAVE),
    "numpy.trailing-data": (
        "bytes follow the array data that numpy.load ignores (a place to hide data)",
        NEVER,
        _RESAVE,
    ),
    # -- ONNX / TensorFlow / protobuf ------------------------------------------------------------
    "onnx": ("the ONNX model is unusual", ON_LOAD, _RESAVE),
    "onnx.external-data": (
        "an ONNX tensor reads its data from a file outside the model directory (or names no file)",
        ON_LOAD,
        "re-export with external data inside the model directory (or embedded)",
    ),
    "onnx.custom-domain": (
        "the ONNX graph uses operators that need a custom operator library (native code) to run",
        ON_PREDICT,
        "nothing if you use that runtime/library on purpose; otherwise export with standard ONNX ops",
    ),
    "tf": ("the TensorFlow graph can reach files or Python", ON_PREDICT, "rebuild the model without that op"),
    "tf.risky-op": (
        "the TensorFlow graph uses an op that reads/writes files, runs Python or reaches the network",
        ON_PREDICT,
        "rebuild the model without that op (tf.io / tf.py_function / file ops)",
    ),
    "protobuf": ("the protobuf model file is broken", NEVER, _RESAVE),
    "protobuf.malformed": (
        "the protobuf model file (ONNX/TensorFlow) is broken or nested too deeply to check",
        NEVER,
        _RESAVE,
    ),
    # -- PyTorch --------------------------------------------------------------------------------
    "torch": ("the PyTorch file carries code", ON_LOAD, "save weights only (state_dict) as safetensors"),
    "torch.torchscript": (
        "the file is a TorchScript archive: its code/ is compiled and run by torch.jit.load",
        ON_LOAD,
        "nothing if you saved it with torch.jit.save; otherwise save the state_dict as safetensors",
    ),
    # -- safetensors / GGUF (data formats: nothing runs, but parsers can be attacked) -----------
    "safetensors": (
        "the safetensors header is inconsistent; parsers may disagree or read out of bounds",
        NEVER,
        "re-save the weights with safetensors.save_file",
    ),
    "safetensors.header": (
        "the safetensors header length is impossible (a header bomb or a truncated file)",
        NEVER,
        "re-save the weights with safetensors.save_file",
    ),
    "safetensors.json": (
        "the safetensors header is not the JSON object the spec requires",
        NEVER,
        "re-save the weights with safetensors.save_file",
    ),
    "safetensors.offsets": (
        "tensor offsets point outside the data (an out-of-bounds read in some parsers)",
        NEVER,
        "re-save the weights with safetensors.save_file",
    ),
    "safetensors.hole": (
        "bytes between or after tensors belong to no tensor (hidden data)",
        NEVER,
        "re-save the weights with safetensors.save_file",
    ),
    "safetensors.metadata": (
        "safetensors __metadata__ is not a string-to-string map",
        NEVER,
        "re-save the weights with safetensors.save_file and string metadata",
    ),
    "gguf": (
        "the GGUF header is inconsistent; llama.cpp-style parsers may read out of bounds",
        NEVER,
        "re-convert the model with llama.cpp's convert script",
    ),
    "gguf.chat-template": (
        "the GGUF chat template reaches Python internals "
        "(template injection in loaders that render it unsandboxed)",
        ON_PREDICT,
        "remove the chat template or replace it with the model's original one; do not serve this file",
    ),
    "gguf.header-bomb": (
        "the GGUF header declares more entries than the file holds (memory exhaustion in parsers)",
        NEVER,
        "re-convert the model with llama.cpp's convert script",
    ),
    "gguf.truncated": (
        "the GGUF file ends early",
        NEVER,
        "download or convert the file again",
    ),
    # -- archives ----------------------------------------------------------------------------
    "zip": (
        "the zip archive has a structure loaders and scanners read differently (a known evasion trick)",
        NEVER,
        _ARCHIVE,
    ),
    "zip.path-traversal": (
        "a zip member name would be written outside the extraction directory",
        NEVER,
        _ARCHIVE,
    ),
    "zip.symlink": ("a zip member is a symbolic link", NEVER, _ARCHIVE + " without links"),
    "zip.encrypted": (
        "a zip member is encrypted, so its content could not be scanned",
        NEVER,
        _ARCHIVE + " without a password",
    ),
    "zip.truncated": ("a zip member runs past the end of the archive and was not scanned", NEVER, _ARCHIVE),
    "zip.unsupported-method": (
        "a zip member uses a compression method the scanner cannot read, so it was not scanned",
        NEVER,
        _ARCHIVE + " with deflate or store",
    ),
    "zip.corrupt-member": ("a zip member could not be decompressed", NEVER, _ARCHIVE),
    "zip.crc-mismatch": (
        "a zip member's checksum does not match its data (tampered or corrupt)",
        NEVER,
        _ARCHIVE,
    ),
    "zip.malformed": ("the zip central directory is unreadable", NEVER, _ARCHIVE),
    "tar": ("the tar archive has an entry a model never needs", NEVER, _ARCHIVE),
    "tar.path-traversal": (
        "a tar member name would be written outside the extraction directory",
        NEVER,
        _ARCHIVE,
    ),
    "tar.link-escape": ("a tar link points outside the archive", NEVER, _ARCHIVE + " without links"),
    "tar.special-file": ("the tar holds a device or FIFO entry (never part of a model)", NEVER, _ARCHIVE),
    "tar.setuid": ("a tar member has the setuid/setgid bit", NEVER, _ARCHIVE + " with ordinary file modes"),
    "tar.truncated": ("a tar member's data is cut short", NEVER, _ARCHIVE),
    "tar.malformed": ("the tar archive is truncated or corrupt", NEVER, _ARCHIVE),
    "7z": ("the 7z archive could not be fully checked", NEVER, _ARCHIVE),
    "7z.encrypted": (
        "the 7z archive is encrypted, so its members could not be scanned",
        NEVER,
        _ARCHIVE + " without a password",
    ),
    "7z.path-traversal": (
        "a 7z member name would be written outside the extraction directory",
        NEVER,
        _ARCHIVE,
    ),
    "7z.symlink": ("a 7z member is a symbolic link", NEVER, _ARCHIVE + " without links"),
    "7z.malformed": ("the 7z archive could not be read", NEVER, _ARCHIVE),
    "compressed": ("the compressed stream is unusual", NEVER, "compress the file again with a standard tool"),
    "compressed.malformed": (
        "the file looks compressed but is not a valid gzip/bz2/xz/zstd stream",
        NEVER,
        "compress the file again with a standard tool",
    ),
    "compressed.truncated": (
        "the compressed stream is cut short; only the part that decoded was scanned",
        NEVER,
        "compress the file again with a standard tool",
    ),
    "compressed.trailing-data": (
        "bytes follow the compressed data that decompressors ignore (a place to hide data)",
        NEVER,
        "compress the file again with a standard tool",
    ),
    # -- the scan itself -------------------------------------------------------------------------
    "scan": ("part of the model could not be scanned", NEVER, _BY_HAND),
    "scan.limit": ("part of the model exceeded a scan limit and was not checked", NEVER, _LIMIT),
    "scan.limit.depth": ("containers are nested too deeply; the inner ones were not scanned", NEVER, _LIMIT),
    "scan.limit.members": ("an archive has too many entries; the rest were not scanned", NEVER, _LIMIT),
    "scan.limit.size": ("an archive member is too large and was not scanned", NEVER, _LIMIT),
    "scan.limit.total": ("the scan decompressed its byte budget; the rest was not scanned", NEVER, _LIMIT),
    "scan.limit.ratio": ("content decompresses far more than real data does (a bomb)", NEVER, _LIMIT),
    "scan.limit.memory": ("content needs too much memory to analyse and was not checked", NEVER, _LIMIT),
    "scan.limit.unpack": (
        "a kit layer exceeds the unpack limits (size, ratio or entries), so it was not fully scanned",
        NEVER,
        "check what made the layer so large; raise `[limits] max_unpack_*` only if it is legitimate",
    ),
    "scan.bomb": (
        "an archive member decompresses to far more than its size (a decompression bomb)",
        NEVER,
        "do not unpack it; re-create the archive from the real files",
    ),
    "scan.malformed": ("a file could not be parsed, so it was not checked", NEVER, _BY_HAND),
    "scan.unreadable": (
        "a file could not be read, so it was not checked",
        NEVER,
        "fix its permissions and scan again",
    ),
    "scan.symlink": (
        "a symbolic link in the model directory was not followed, so its target was not checked",
        NEVER,
        "replace the link with the file itself",
    ),
    "scan.unsupported": (
        "a library the scanner needs for this format is not installed, so the file was not checked",
        NEVER,
        "install the library named in the evidence (py7zr, h5py) and scan again",
    ),
    # -- the kit ----------------------------------------------------------------------------
    "kit": (
        "the kit's structure does not match its content",
        NEVER,
        "re-pack the kit from the model directory",
    ),
    "kit.index-mismatch": (
        "the kit's file index does not describe the files in its layer: "
        "MLflow would load bytes the scan never saw",
        ON_LOAD,
        "do not load this kit; re-pack and re-publish it",
    ),
    "kit.unsafe-path": (
        "a kit layer has an entry that would be written outside the model directory",
        NEVER,
        "re-pack the kit from the model directory",
    ),
    "kit.unsafe-link": (
        "a kit layer has a symlink or hardlink pointing outside the model directory: "
        "a tool that follows it reads or overwrites a file of the host",
        ON_LOAD,
        "do not unpack this kit with other tools; re-pack it without the link",
    ),
    # -- secrets (leak to everyone who gets the kit) -------------------------------------------
    "secret": ("a credential is written in the model's files or params", WHEN_SHARED, _SECRET_FIX),
    "secret.assignment": (
        "a password/token-like value is assigned to a secret-sounding name",
        WHEN_SHARED,
        "if it is a real secret: " + _SECRET_FIX,
    ),
    "secret.url-password": ("a URL in the files carries a password", WHEN_SHARED, _SECRET_FIX),
    "secret.private-key": ("a private key is in the files", WHEN_SHARED, _SECRET_FIX),
    "secret.gcp-service-account": (
        "a Google Cloud service-account key (with its private key) is in the files",
        WHEN_SHARED,
        _SECRET_FIX,
    ),
    "secret.partial": (
        "a text file is larger than the secret-scan budget; only its start was checked for secrets",
        NEVER,
        "keep large text out of the model, or check the rest for credentials by hand",
    ),
    # -- datasets (personal data leaks to everyone who gets the kit) ---------------------------
    "dataset": ("a dataset in the kit holds personal data", WHEN_SHARED, _PII_FIX),
    "dataset.malformed": (
        "a dataset file could not be parsed, so it was not checked for personal data",
        NEVER,
        "check the file by hand, or exclude datasets from the published kit",
    ),
    "dataset.not-sampled": (
        "a dataset (or some of its columns) was not sampled for personal data",
        NEVER,
        "check it by hand (install pyarrow for Parquet), or exclude datasets from the published kit",
    ),
    "dataset.polyglot": (
        "a dataset file is also a zip archive (a way to smuggle files past a dataset check)",
        NEVER,
        "export the dataset again with pandas/pyarrow so it is only a dataset",
    ),
    "dataset.pii": (
        "a dataset column holds values that look like personal data (emails, phone numbers, ids)",
        WHEN_SHARED,
        _PII_FIX,
    ),
}

# token formats: one specific entry each, named in plain words
_SECRET_KINDS = {
    "secret.aws-access-key-id": "an AWS access key id",
    "secret.aws-secret-key": "an AWS secret access key",
    "secret.azure-storage-key": "an Azure storage account key",
    "secret.azure-shared-access-key": "an Azure shared access key",
    "secret.azure-sas": "an Azure SAS token",
    "secret.github-token": "a GitHub token",
    "secret.gitlab-token": "a GitLab token",
    "secret.slack-token": "a Slack token",
    "secret.slack-webhook": "a Slack webhook URL",
    "secret.stripe-key": "a Stripe key",
    "secret.openai-key": "an OpenAI API key",
    "secret.anthropic-key": "an Anthropic API key",
    "secret.huggingface-token": "a Hugging Face token",
    "secret.google-api-key": "a Google API key",
    "secret.jwt": "a JSON Web Token",
}
for _rule, _name in _SECRET_KINDS.items():
    RULES[_rule] = (f"{_name} is written in the model's files or params", WHEN_SHARED, _SECRET_FIX)

GENERIC = Explanation(
    "the scanner found something unusual in this file",
    NEVER,
    "read the message; if you do not know why the file looks like this, do not load it",
)

_DOTTED = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_<>][\w<>]*)+$")  # module.qualname
_MODULE = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*$")


def lookup(rule: str) -> tuple[Explanation, str]:
    """The table's explanation of ``rule`` and the key it came from: the rule itself, else its
    nearest family (``scan.limit.foo`` → ``scan.limit`` → ``scan``), else ``""`` (generic).

    >>> lookup("zip.flag-mismatch")[1], lookup("scan.limit.new")[1], lookup("nope.x")[1]
    ('zip', 'scan.limit', '')
    """
    key = rule
    while key:
        if key in RULES:
            return Explanation(*RULES[key]), key
        key = key.rpartition(".")[0]
    return GENERIC, ""


def explain_rule(rule: str) -> Explanation:
    """The explanation of a rule id, without a finding's details (SARIF rule descriptions).

    >>> explain_rule("env.direct-url").fix
    'pin the package from your index (`name==version`) instead of a URL'
    """
    return lookup(rule)[0]


def explain(finding: _FindingLike) -> Explanation:
    """What ``finding`` means, when it would bite, and how to fix it — some fixes name its evidence.

    >>> from mlflow_plugin.scanner.report import Finding, Severity
    >>> f = Finding("m.pkl", Severity.CRITICAL, "pickle.unsafe-global", "imports os.system", "os.system")
    >>> explain(f).line()  # doctest: +ELLIPSIS
    'on load: unpickling imports `os.system`, which can run commands, files or code. Fix: do not load...'
    >>> msg = "model.py:3: starts a process: runs `os.system(...)` in `predict()`, on every prediction"
    >>> explain(Finding("model.py", Severity.MEDIUM, "code.shell", msg)).when
    'on predict'
    """
    base = explain_rule(finding.rule)
    what, when, fix = base.what, base.when, base.fix
    rule, ev, msg = finding.rule, (finding.evidence or "").strip(), finding.message or ""
    glob = ev if _DOTTED.match(ev) else ""
    if rule == "pickle.unknown-global" and glob:
        what = f"unpickling imports `{glob}`, which is not on the allowlist of what ML files contain"
        fix = (
            f"if you wrote `{glob}`, ship its module in code_paths or add `{glob}` to "
            "`[scan] allow_globals`; otherwise do not load this file"
        )
    elif rule in ("pickle.unsafe-global", "pickle.unsafe-import") and glob:
        what = f"unpickling imports `{glob}`, which can run commands, files or code"
    elif rule == "pickle.embedded-code":
        name, _, danger = ev.partition(": ")
        when = ON_PREDICT if "runs when the model predicts" in msg else ON_LOAD
        sub = re.fullmatch(r"subimport\('([\w.]+)'\)", ev)
        if sub:
            what = f"the pickle imports module `{sub.group(1)}` while the model loads (cloudpickle)"
            fix = f"list the package of `{sub.group(1)}` in requirements, or ship the module with code_paths"
            if "reaches the system" in msg:
                fix = _NOT_LOAD
        elif name == "types.CodeType":
            what = "the pickle builds a bare code object that a loader or later code can run"
            fix = _NOT_LOAD
        elif _DOTTED.match(name):
            what = f"`{name}` is stored inside the pickle as code and runs when the model loads or predicts"
            fix = (
                f"log the model from code (models-from-code) or move `{name}` into a module shipped "
                "with code_paths"
            )
            if danger:
                what += f"; it uses {danger}"
                fix = "do not load it unless you wrote and reviewed that code; then " + fix
    elif rule.startswith("code."):
        when = _code_when(msg, when)
    elif rule == "env.typosquat":
        m = re.search(r"popular `([^`]+)`", msg)
        if m:
            fix = f"use `{m.group(1)}` if that is what you meant"
    elif rule == "mlmodel.loader-module":
        if _MODULE.match(ev):
            what = f"MLmodel makes MLflow import `{ev}` (not an MLflow flavor) and call its loader"
        if "this is not a model loader" in msg:
            fix = "do not load this model; re-save it with mlflow.<flavor>.log_model"
        elif "from the model's own code" in msg:
            fix = "review the code.* findings for that module, or save the model with a built-in flavor"
    return Explanation(what, when, fix)


def _code_when(message: str, default: str) -> str:
    """pycode says when each call runs; map its wording onto the fixed set of moments."""
    if "when MLflow imports this module" in message:
        return ON_IMPORT
    if "on every prediction" in message:
        return ON_PREDICT
    if "when the model is loaded" in message:
        return ON_LOAD
    if "when it is called" in message:
        return ON_PREDICT  # a helper the model calls: in practice from predict()
    if "run as a script" in message:
        return NEVER  # `if __name__ == "__main__":` never runs under MLflow
    return default
