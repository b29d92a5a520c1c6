"""The model's environment: ``requirements*.txt``, ``conda.yaml``/``environment.yml``, ``python_env.yaml``.

What MLflow installs when it restores a model's environment (``env_manager="virtualenv"``/
``"conda"``, ``mlflow models serve``, ``build-docker``) is code that runs. Reported:

- ``env.direct-url`` (high): ``git+``/``http(s)://``/``file:`` requirements, ``name @ url``,
  editable installs and local paths — code from outside the package index;
- ``env.index-override`` (high): ``--index-url``/``-i``/``--extra-index-url``/``-f``/
  ``--find-links``/``--trusted-host`` — another index can serve any package under a known name;
- ``env.conda-channel`` (medium): conda channels other than defaults/conda-forge (and the
  pytorch/nvidia channels);
- ``env.typosquat`` (high): a name one edit (Damerau-Levenshtein) from a popular ML package
  but not that package (``torchh``, ``sckit-learn``, ``reqeusts``);
- ``env.unpinned`` (info): requirements without an exact ``==`` pin (one finding per file).

>>> import io
>>> from mlflow_plugin.scanner.api import _new_context
>>> ctx = _new_context("requirements.txt", None, None)
>>> data = b"mlflow==2.9.0\\nnumpyy==1.26.0\\n"
>>> scan_requirements(ctx, "requirements.txt", io.BytesIO(data), len(data))
>>> [(f.rule, f.evidence) for f in ctx.report_obj.findings]
[('env.typosquat', 'numpyy==1.26.0')]
"""

from __future__ import annotations

import io
import re
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

MAX_ENV_FILE = 1 << 20  # bytes of one environment file that are parsed

_POPULAR_RAW = """
numpy pandas scipy scikit-learn sklearn torch torchvision torchaudio torchtext tensorflow tensorflow-gpu
tensorflow-cpu tensorflow-hub tensorflow-datasets tensorflow-probability tensorboard keras jax jaxlib
flax optax xgboost lightgbm catboost transformers tokenizers datasets accelerate diffusers
sentence-transformers huggingface-hub safetensors peft evaluate mlflow mlflow-skinny requests urllib3
certifi idna charset-normalizer matplotlib seaborn plotly bokeh statsmodels sympy networkx pillow
opencv-python opencv-python-headless opencv-contrib-python scikit-image imageio nltk spacy gensim
textblob sentencepiece tiktoken openai anthropic langchain langchain-core langchain-community
llama-index onnx onnxruntime onnxruntime-gpu tf2onnx skl2onnx pytorch-lightning lightning
torchmetrics timm einops fastai numba cython pyarrow polars dask distributed ray joblib cloudpickle
dill h5py tables protobuf grpcio boto3 botocore s3fs gcsfs adlfs fsspec azure-storage-blob
google-cloud-storage sqlalchemy psycopg2 psycopg2-binary pymysql redis pyyaml toml tomli jinja2
flask fastapi uvicorn gunicorn pydantic starlette click typer rich tqdm colorama six attrs
python-dateutil pytz tzdata packaging setuptools wheel pip virtualenv shap lime optuna hyperopt
scikit-optimize imbalanced-learn category-encoders mlxtend prophet pmdarima sktime tsfresh
feature-engine xarray netcdf4 openpyxl xlrd beautifulsoup4 lxml regex pyspark findspark
great-expectations pandera wandb comet-ml neptune-client clearml dvc bentoml triton cupy
pycuda nvidia-ml-py tensorrt deepspeed bitsandbytes vllm faiss-cpu faiss-gpu annoy hnswlib
chromadb pinecone-client gradio streamlit ipython jupyter notebook ipykernel pytest black flake8
mypy ruff cryptography paramiko pyjwt httpx aiohttp websockets
"""
POPULAR: frozenset[str] = frozenset(re.sub(r"[-_.]+", "-", n).lower() for n in _POPULAR_RAW.split())
# real packages one edit from a popular name (not typosquats)
_KNOWN_NEIGHBOURS = frozenset(
    {"scapy", "pytorch", "py-xgboost", "python", "torchx", "dash", "boto", "bpython", "dataset", "h5pyd"}
)
_DEFAULT_CHANNELS = frozenset(
    {"defaults", "conda-forge", "anaconda", "main", "r", "msys2", "free", "pytorch", "nvidia"}
)
_INDEX_OPTS = (
    "--index-url",
    "--extra-index-url",
    "-i",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-index",
)
# official package hosts: an index option or a direct wheel URL pointing only at these is not reported
TRUSTED_HOSTS = frozenset(
    {
        "pypi.org",
        "files.pythonhosted.org",
        "download.pytorch.org",
        "pypi.nvidia.com",
        "pypi.ngc.nvidia.com",
    }
)
_FIX_INDEX = "remove the option; install from the default index (or the one your admin configures for pip)"
_WHEN = "when MLflow restores the model's environment (env_manager, models serve, build-docker)"


def normalize(name: str) -> str:
    """PEP 503 name: ``Scikit_Learn`` → ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _within_one(a: str, b: str) -> bool:
    """Damerau-Levenshtein (optimal string alignment) distance between a and b is at most 1."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1 :] == b[i + 1 :]:
            return True  # substitution
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    if la > lb:
        return a[i + 1 :] == b[i:]
    return b[i + 1 :] == a[i:]


def typosquat_of(name: str) -> str | None:
    """The popular package ``name`` is one edit away from, or None (also None for the package itself)."""
    n = normalize(name)
    if n in POPULAR or n in _KNOWN_NEIGHBOURS or len(n) < 4:
        return None
    for p in sorted(POPULAR):
        if len(p) >= 4 and _within_one(n, p):
            return p
    return None


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class _Checker:
    def __init__(self, ctx: ScanContext, path: str) -> None:
        self.ctx, self.path = ctx, path
        self.unpinned: list[str] = []

    def report(self, where: str, sev: Severity, rule: str, msg: str, evidence: str) -> None:
        self.ctx.report(self.path, sev, rule, f"{self.path}{where}: {msg}", evidence)

    def pip_line(self, where: str, line: str) -> None:
        """One pip requirement line (requirements.txt, a conda ``pip:`` entry, python_env.yaml)."""
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            return
        low = line.lower()
        opt = next(
            (o for o in _INDEX_OPTS if low == o or low.startswith((o + " ", o + "=")) or _short(low, o)),
            None,
        )
        if opt and not _trusted_urls(line[len(opt) :]):
            self.report(
                where,
                Severity.HIGH,
                "env.index-override",
                f"`{opt}` makes pip fetch packages from another source {_WHEN}; fix: {_FIX_INDEX}",
                line,
            )
            return
        if opt:
            return
        if low.startswith(("-r ", "-c ", "--requirement", "--constraint")):
            return  # the referenced file is scanned as its own file
        editable = low.startswith(("-e ", "--editable"))
        spec = re.sub(r"^(-e|--editable)(\s+|=)", "", line).strip() if editable else line
        if spec.startswith("-"):
            return  # other pip options (--pre, --no-binary ...)
        url = re.search(r"(git\+|hg\+|svn\+|bzr\+)?(https?|ftp|file|ssh)://\S+|\bfile:\S+", spec)
        local = spec.startswith((".", "/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", spec)
        archive = spec.lower().endswith((".whl", ".tar.gz", ".zip", ".tgz", ".tar.bz2"))
        vcs = spec.startswith(("git+", "hg+", "svn+", "bzr+"))
        if url and not local and not editable and not vcs and _trusted_urls(spec):
            return  # a wheel from an official host (download.pytorch.org, pypi.org)
        if url or local or editable or archive or spec.startswith("git+"):
            what = "a URL" if url or spec.startswith("git+") else "a local path"
            self.report(
                where,
                Severity.HIGH,
                "env.direct-url",
                f"installs code from {what}, outside the package index, {_WHEN}; "
                "fix: publish the package to your index and require it by name with a `==` pin",
                line,
            )
            return
        m = _NAME.match(spec)
        if not m:
            return
        name = m.group(1)
        self.check_name(where, name, line)
        if "==" not in spec and "===" not in spec:
            self.unpinned.append(name)

    def check_name(self, where: str, name: str, evidence: str) -> None:
        target = typosquat_of(name)
        if target:
            self.report(
                where,
                Severity.HIGH,
                "env.typosquat",
                f"installs `{name}`, one letter away from the popular `{target}` (a typosquat would run "
                f"its setup code {_WHEN}); fix: use `{target}` if that is what you meant",
                evidence,
            )

    def finish(self) -> None:
        if self.unpinned:
            names = ", ".join(self.unpinned[:20]) + (" ..." if len(self.unpinned) > 20 else "")
            self.ctx.report(
                self.path,
                Severity.INFO,
                "env.unpinned",
                f"{self.path}: {len(self.unpinned)} requirement(s) without an exact `==` version; "
                "a later, different release would be installed; fix: pin them (pip freeze)",
                names,
            )


def _trusted_urls(text: str) -> bool:
    """All URLs in ``text`` (at least one) are https on an official host (:data:`TRUSTED_HOSTS`)."""
    from urllib.parse import urlsplit

    urls = re.findall(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", text)
    if not urls:
        return False
    for u in urls:
        try:
            parts = urlsplit(u)
            host = (parts.hostname or "").lower()
        except ValueError:
            return False
        if parts.scheme != "https" or parts.username or host not in TRUSTED_HOSTS:
            return False
    return True


def _short(low: str, opt: str) -> bool:
    """``-ihttps://x`` / ``-fdir``: short options glued to their value."""
    return len(opt) == 2 and low.startswith(opt) and len(low) > 2 and low[2] not in " ="


def _read(stream: IO[bytes], limit: int) -> bytes:
    chunks, n = [], 0
    while n < limit:
        b = stream.read(min(1 << 20, limit - n))
        if not b:
            break
        chunks.append(b)
        n += len(b)
    return b"".join(chunks)


def scan_requirements(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Check an environment file (pip, conda or MLflow python_env), then look for secrets in it."""
    from mlflow_plugin.scanner import secrets

    data = _read(stream, MAX_ENV_FILE + 1)
    text = data[:MAX_ENV_FILE].decode("utf-8", "replace")
    base = path.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1].lower()
    chk = _Checker(ctx, path)
    if base.endswith((".yaml", ".yml")):
        _scan_yaml(ctx, chk, base, text)
    else:
        _scan_pip_text(chk, text)
    chk.finish()
    if len(data) > MAX_ENV_FILE:
        ctx.report(
            path,
            Severity.LOW,
            "env.partial",
            f"{path}: only the first {MAX_ENV_FILE >> 10} KiB were checked",
            f"size={size}",
        )
    secrets.scan_text(ctx, path, io.BytesIO(data), len(data))


def _scan_pip_text(chk: _Checker, text: str) -> None:
    pending, start = "", 0
    for i, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = i
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        chk.pip_line(f":{start}", pending + raw)
        pending = ""
    if pending:
        chk.pip_line(f":{start}", pending)


def _scan_yaml(ctx: ScanContext, chk: _Checker, base: str, text: str) -> None:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        ctx.report(
            chk.path,
            Severity.LOW,
            "env.unparsable",
            f"{chk.path}: not valid YAML, its dependencies were not checked",
            str(e)[:160],
        )
        return
    if not isinstance(doc, dict):
        return
    if base == "python_env.yaml":
        for key in ("build_dependencies", "dependencies"):
            for dep in _strs(doc.get(key)):
                chk.pip_line(f" ({key})", dep)
        return
    for ch in _strs(doc.get("channels")):
        if ch.strip().lower().rstrip("/") not in _DEFAULT_CHANNELS:
            chk.report(
                " (channels)",
                Severity.MEDIUM,
                "env.conda-channel",
                f"conda channel `{ch}` is not a default channel; its packages are installed {_WHEN}; "
                "fix: use conda-forge/defaults or a channel your admin approved",
                ch,
            )
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict):
            for pip_dep in _strs(dep.get("pip")):
                chk.pip_line(" (pip)", pip_dep)
        elif isinstance(dep, str):
            _conda_dep(chk, dep)


def _conda_dep(chk: _Checker, dep: str) -> None:
    spec = dep.strip()
    if "::" in spec:
        ch, _, spec = spec.partition("::")
        if ch.strip().lower() not in _DEFAULT_CHANNELS:
            chk.report(
                " (dependencies)",
                Severity.MEDIUM,
                "env.conda-channel",
                f"`{dep}` comes from conda channel `{ch}`, not a default channel; installed {_WHEN}; "
                "fix: use conda-forge/defaults or a channel your admin approved",
                dep,
            )
    if re.match(r"^(https?|file)://", spec):
        chk.report(
            " (dependencies)",
            Severity.HIGH,
            "env.direct-url",
            f"installs a conda package from a URL {_WHEN}; fix: install it by name from an approved channel",
            dep,
        )
        return
    m = _NAME.match(spec)
    if m:
        chk.check_name(" (dependencies)", m.group(1), dep)


def _strs(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [x for x in v if isinstance(x, str)]
    return []
