"""Kit composition: which kind a layer is, how layers become Kitfile entries, and kit's layer order.

Drafts (every logged file or directory) and published kits are composed by the same code, so the
two can never disagree on kinds, order or Kitfile:

>>> from mlflow_plugin.kit.kitfile import Kitfile, Package
>>> kf = Kitfile(manifest_version="1.0.0", package=Package(name="fraud"))
>>> layers = [
...     LayerRecord("docs", "notes", "sha256:" + "a" * 64, 10),
...     LayerRecord("model", "model", "sha256:" + "b" * 64, 20),
...     LayerRecord("model", "extra-model", "sha256:" + "c" * 64, 30),
... ]
>>> descs = compose(kf, layers)
>>> [(d.media_type.split(".")[-3], d.annotations["org.cncf.model.filepath"]) for d in descs]
[('model', 'model'), ('modelpart', 'extra-model'), ('docs', 'notes')]
>>> kf.model.name, [p.path for p in kf.model.parts], [d.path for d in kf.docs]
('model', ['extra-model'], ['notes'])

:func:`classify` says what a logged directory is by its content: an MLflow model directory (it
holds an ``MLmodel``) is a model, code files are code, data files a dataset, anything else docs.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mlflow_plugin.kit.fileindex import ANN_FILES
from mlflow_plugin.kit.kitfile import Code, DataSet, Docs, Kitfile, LayerInfo, Model, ModelPart
from mlflow_plugin.kit.mediatypes import ANN_FILEPATH, layer_media_type, parse_layer_media_type
from mlflow_plugin.storage.descriptor import Descriptor

# kit's layer order: model, parts, code, datasets, docs
KIND_ORDER = {"model": 0, "modelpart": 1, "code": 2, "dataset": 3, "docs": 4}
CODE_EXT = frozenset(
    {".py", ".ipynb", ".r", ".sh", ".sql", ".js", ".ts", ".scala", ".java", ".jl", ".go", ".rs", ".c"}
    | {".cpp", ".h", ".toml", ".cfg", ".ini"}
)
DATA_EXT = frozenset(
    {".csv", ".tsv", ".parquet", ".pq", ".feather", ".arrow", ".jsonl", ".ndjson", ".avro", ".orc"}
    | {".h5", ".hdf5", ".npy", ".npz", ".tfrecord", ".xlsx", ".xls", ".delta"}
)


@dataclass(frozen=True)
class LayerRecord:
    """One layer to compose: its kind (model/modelpart/code/dataset/docs), its path in the kit, its
    blob, and the file index annotation it carries (JSON text, or None)."""

    kind: str
    path: str
    digest: str
    size: int
    files_json: str | None = None


@dataclass(frozen=True)
class ModelTemplate:
    """What the Kitfile says of the model beyond its path and layer (publish fills it from the run)."""

    name: str | None = None
    framework: str = ""
    format: str = ""
    version: str = ""
    description: str = ""
    parameters: dict = field(default_factory=dict)


def base_kind(kind: str) -> str:
    """``modelpart`` is stored as a model layer; every other kind is itself (unknown → docs)."""
    if kind in ("model", "modelpart"):
        return "model"
    return kind if kind in KIND_ORDER else "docs"


def kind_of(media_type: str) -> str:
    """The kind a layer media type names (``docs`` for anything unknown)."""
    parsed = parse_layer_media_type(media_type)
    return parsed[0] if parsed else "docs"


def classify(file_names: Sequence[str], dataset_paths: frozenset[str] = frozenset()) -> str:
    """Layer kind by content: a model directory → model; code → code; data → dataset; else docs.

    >>> classify(["model/MLmodel", "model/model.pkl"]), classify(["a.py", "b.py"]), classify(["x.csv"])
    ('model', 'code', 'dataset')
    """
    if any(posixpath.basename(n) == "MLmodel" for n in file_names):
        return "model"
    if not file_names:
        return "docs"
    if any(n in dataset_paths for n in file_names):
        return "dataset"
    exts = [posixpath.splitext(n)[1].lower() for n in file_names]
    code = sum(x in CODE_EXT for x in exts)
    data = sum(x in DATA_EXT for x in exts)
    if code == len(exts) or code > len(exts) / 2:
        return "code"
    if data == len(exts) or data > len(exts) / 2:
        return "dataset"
    return "docs"


def compose(
    kitfile: Kitfile, layers: Iterable[LayerRecord], model: ModelTemplate | None = None
) -> list[Descriptor]:
    """Fill ``kitfile``'s model, parts, code, datasets and docs from ``layers`` (the first model layer
    is the model, later ones are parts) and return their descriptors in kit's order."""
    model = model or ModelTemplate()
    descs: list[Descriptor] = []
    for rec in layers:
        kind = base_kind(rec.kind)
        info = LayerInfo(rec.digest, rec.digest)
        if kind == "model" and kitfile.model is None:
            name = model.name or posixpath.basename(rec.path) or kitfile.package.name or "model"
            kitfile.model = Model(
                name=name,
                path=rec.path,
                framework=model.framework,
                format=model.format,
                version=model.version,
                description=model.description,
                layer=info,
            )
            if model.parameters:  # absent, not empty, when there are none (as kit writes it)
                kitfile.model.parameters = dict(model.parameters)
        elif kind == "model":
            kind = "modelpart"
            kitfile.model.parts.append(ModelPart(name=rec.path, path=rec.path, layer=info))  # type: ignore[union-attr]
        elif kind == "code":
            kitfile.code.append(Code(path=rec.path, layer=info))
        elif kind == "dataset":
            kitfile.datasets.append(DataSet(name=posixpath.basename(rec.path), path=rec.path, layer=info))
        else:
            kitfile.docs.append(Docs(path=rec.path, layer=info))
        annotations = {ANN_FILEPATH: rec.path}
        if rec.files_json:
            annotations[ANN_FILES] = rec.files_json
        descs.append(Descriptor(layer_media_type(kind), rec.digest, rec.size, annotations=annotations))
    descs.sort(key=lambda d: KIND_ORDER[kind_of(d.media_type)])
    return descs
