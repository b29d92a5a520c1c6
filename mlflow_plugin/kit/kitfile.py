"""The Kitfile: dataclasses, a strict yaml.v3-compatible parser, kit's validation, Go JSON.

>>> kf = Kitfile.parse("manifestVersion: 1.0.0\\npackage: {name: fraud, version: 1.0}\\n"
...                    "model: {path: ./model/}\\n")
>>> kf.package.version                      # string fields keep their source text
'1.0'
>>> kf.to_json()[:60]
b'{"manifestVersion":"1.0.0","package":{"name":"fraud","versio'

Parsing rejects unknown keys (kit decodes with ``KnownFields(true)``); scalars follow yaml.v3
(``yes`` stays a string, ``1e3`` is a number). :meth:`Kitfile.validate` applies kit's rules.
"""

from __future__ import annotations

import difflib
import math
import posixpath
import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mlflow_plugin._internal.gojson import Ordered, dumps
from mlflow_plugin.errors import KitfileError
from mlflow_plugin.kit import yamlv3

KITFILE_NAMES = ("Kitfile", "kitfile", ".kitfile")
IGNORE_FILE = ".kitignore"
_PART_TYPE_RE = re.compile(r"[\w][\w.-]*", re.ASCII)  # Go RE2: \w is ASCII; used with fullmatch


@dataclass
class LayerInfo:
    """Digest (of the stored blob) and diffId (of the uncompressed tar) of a packed entry."""

    digest: str = ""
    diff_id: str = ""


class _Entry:
    """Shared behaviour of Kitfile sections: YAML keys, JSON field order."""

    _yaml_keys: ClassVar[dict[str, str]] = {}
    _always: ClassVar[tuple[str, ...]] = ()
    layer: LayerInfo | None

    def _json(self) -> Ordered:
        out = Ordered()
        for f in fields(self):  # type: ignore[arg-type]
            if f.name == "layer":
                continue
            key = f.metadata.get("json", f.name)
            v = getattr(self, f.name)
            if f.name == "parameters":  # Go ``any``: omitted only when nil, so "" and [] are kept
                if v is not _UNSET and v is not None:
                    out[key] = v
            elif key in self._always or not _is_empty(v):
                out[key] = _json_value(v)
        if self.layer is not None:
            if self.layer.digest:
                out["digest"] = self.layer.digest
            if self.layer.diff_id:
                out["diffId"] = self.layer.diff_id
        return out


def _is_empty(v: Any) -> bool:
    if v is _UNSET:
        return True
    if isinstance(v, (str, list)):
        return len(v) == 0
    return v is None


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


_UNSET: Any = _Unset()
"""``parameters`` absent or null (Go: nil interface, omitted) as opposed to ``{}`` or ``""``."""


def _json_value(v: Any) -> Any:
    if isinstance(v, _Entry):
        return v._json()
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def _f(json_key: str | None = None, **kw: Any) -> Any:
    md = {"json": json_key} if json_key else {}
    return field(metadata=md, **kw)


@dataclass
class Package(_Entry):
    name: str = ""
    version: str = ""
    description: str = ""
    license: str = ""
    authors: list[str] = field(default_factory=list)
    layer: LayerInfo | None = None


@dataclass
class ModelPart(_Entry):
    name: str = ""
    path: str = ""
    license: str = ""
    type: str = ""
    layer: LayerInfo | None = None


@dataclass
class Model(_Entry):
    name: str = ""
    path: str = ""
    license: str = ""
    framework: str = ""
    format: str = ""
    version: str = ""
    description: str = ""
    parts: list[ModelPart] = field(default_factory=list)
    parameters: Any = _UNSET
    layer: LayerInfo | None = None


@dataclass
class Code(_Entry):
    path: str = ""
    description: str = ""
    license: str = ""
    layer: LayerInfo | None = None


@dataclass
class DataSet(_Entry):
    name: str = ""
    path: str = ""
    remote_path: str = _f("remotePath", default="")
    remote_hash: str = _f("remoteHash", default="")
    description: str = ""
    license: str = ""
    parameters: Any = _UNSET
    layer: LayerInfo | None = None


@dataclass
class Docs(_Entry):
    _always: ClassVar[tuple[str, ...]] = ("path",)
    path: str = ""
    description: str = ""
    layer: LayerInfo | None = None


@dataclass
class Prompt(_Entry):
    name: str = ""
    path: str = ""
    description: str = ""
    layer: LayerInfo | None = None


@dataclass
class MCPServer(_Entry):
    name: str = ""
    path: str = ""
    description: str = ""
    layer: LayerInfo | None = None


@dataclass
class Kitfile(_Entry):
    """A parsed Kitfile. ``Kitfile.parse(text)``, ``kf.validate()``, ``kf.to_json()``."""

    _always: ClassVar[tuple[str, ...]] = ("manifestVersion", "package")
    manifest_version: str = _f("manifestVersion", default="")
    package: Package = field(default_factory=Package)
    model: Model | None = None
    code: list[Code] = field(default_factory=list)
    datasets: list[DataSet] = field(default_factory=list)
    docs: list[Docs] = field(default_factory=list)
    prompts: list[Prompt] = field(default_factory=list)
    mcp_servers: list[MCPServer] = _f("mcpServers", default_factory=list)  # noqa: RUF009 - field() helper
    layer: LayerInfo | None = None

    # ---- parsing ---------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str | bytes, source: str = "Kitfile") -> Kitfile:
        """Parse Kitfile YAML strictly (unknown keys, wrong types and bad YAML are errors)."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise KitfileError(f"{source} is not valid UTF-8 text") from None
        try:
            node = yamlv3.compose(text)
        except KitfileError as e:
            raise KitfileError(f"{source}: {e}") from None
        if node is None:
            raise KitfileError(f"{source} is empty: it needs at least 'manifestVersion' and one layer")
        try:
            kf = _decode_struct(cls, node)
        except KitfileError as e:
            raise KitfileError(f"{source} {e}") from None
        return kf

    def to_json(self) -> bytes:
        """The config blob bytes: Go struct order, ``"package":{}`` always, sorted parameters."""
        try:
            return dumps(self._json())
        except (TypeError, ValueError) as e:
            raise KitfileError(
                f"Kitfile cannot be encoded as JSON ({e}); use string keys and finite numbers in parameters"
            ) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> Kitfile:
        """Parse a ModelKit config blob (Kitfile JSON incl. digests); tolerant of unknown keys."""
        import json

        try:
            # "-0" is Go's float64 negative zero: keep it a float so it does not turn into 0
            obj = json.loads(data, parse_int=lambda s: -0.0 if s == "-0" else int(s))
        except ValueError as e:
            raise KitfileError(f"ModelKit config is not valid JSON: {e}") from None
        if not isinstance(obj, dict):
            raise KitfileError("ModelKit config is not a JSON object")
        return _from_obj(cls, obj)

    def redacted(self) -> Kitfile:
        """What an encrypted kit shows everyone: each layer's entry with a placeholder path
        (``sealed/<kind>-<n>``) and its layer digest, nothing else (no names, descriptions,
        licenses, parameters, remote paths, plaintext ``diffId``). The real Kitfile is sealed for
        the recipients (:mod:`mlflow_plugin.trust.sealed`).

        >>> kf = Kitfile.parse("manifestVersion: 1.0.0\\npackage: {name: fraud}\\nmodel: {path: m.pkl}\\n")
        >>> kf.model.layer = LayerInfo("sha256:" + "ab" * 32, "sha256:" + "cd" * 32)
        >>> kf.redacted().to_json().decode()[:80]
        '{"manifestVersion":"1.0.0","package":{},"model":{"path":"sealed/model-0","digest'
        """

        def info(layer: LayerInfo | None) -> LayerInfo | None:
            return LayerInfo(layer.digest, "") if layer is not None else None

        out = Kitfile(manifest_version=self.manifest_version or "1.0.0")
        if self.model is not None:
            out.model = Model(path="sealed/model-0", layer=info(self.model.layer))
            out.model.parts = [
                ModelPart(path=f"sealed/part-{i}", layer=info(p.layer))
                for i, p in enumerate(self.model.parts)
            ]
        out.code = [Code(path=f"sealed/code-{i}", layer=info(c.layer)) for i, c in enumerate(self.code)]
        out.datasets = [
            DataSet(path=f"sealed/dataset-{i}", layer=info(d.layer)) for i, d in enumerate(self.datasets)
        ]
        out.docs = [Docs(path=f"sealed/docs-{i}", layer=info(d.layer)) for i, d in enumerate(self.docs)]
        out.prompts = [
            Prompt(path=f"sealed/prompt-{i}", layer=info(p.layer)) for i, p in enumerate(self.prompts)
        ]
        out.mcp_servers = [
            MCPServer(path=f"sealed/mcp-{i}", layer=info(m.layer)) for i, m in enumerate(self.mcp_servers)
        ]
        return out

    # ---- validation ------------------------------------------------------------------------
    def layer_paths(self) -> list[str]:
        """Paths other layers must not pack (kit's ``LayerPathsFromKitfile``, for ignore checks).

        Remote datasets are included: kit keeps their local ``path`` out of every other layer.
        """
        out: list[str] = []
        if self.model and self.model.path and not is_modelkit_reference(self.model.path):
            out.append(self.model.path)
        if self.model:
            out += [p.path for p in self.model.parts]
        out += [c.path for c in self.code]
        out += [d.path for d in self.datasets]
        out += [d.path for d in self.docs]
        out += [p.path for p in self.prompts]
        out += [m.path for m in self.mcp_servers]
        return out

    def validate(self) -> list[str]:
        """Apply kit's validation rules; raise :class:`KitfileError` listing every problem.

        Returns warnings (e.g. an unrecognised manifestVersion) that are not errors.
        """
        errors: list[str] = []
        warnings: list[str] = []
        if self.manifest_version not in ("1.0.0", "1.0", "1"):
            warnings.append(
                f"unrecognized manifestVersion {self.manifest_version!r}: treating Kitfile as 1.0.0"
            )
        seen: dict[str, str] = {}

        def check(kind: str, path: str, allow_ref: bool = False) -> None:
            ptype = path_type(path)
            if ptype == "http":
                errors.append(f"{kind} path {path!r}: HTTP urls are not supported in paths")
                return
            if ptype == "s3":
                errors.append(f"{kind} path {path!r}: s3 paths are only supported as a dataset remotePath")
                return
            if ptype == "ref":
                if not allow_ref:
                    errors.append(f"{kind} path {path!r}: ModelKit references are only allowed for the model")
                return
            if posixpath.isabs(path):
                errors.append(f"{kind} path {path!r} is absolute: paths must be relative to the context")
                return
            clean = posixpath.normpath(path or ".")
            if clean == ".." or clean.startswith("../"):
                errors.append(f"{kind} path {path!r} is outside the context directory")
                return
            if clean in seen:
                errors.append(f"duplicate path {clean!r} in {seen[clean]} and {kind}")
            else:
                seen[clean] = kind

        if self.model is not None:
            if self.model.path:
                check("model", self.model.path, allow_ref=True)
            for i, p in enumerate(self.model.parts):
                check(f"model part {i}", p.path)
                if p.type and (len(p.type) > 64 or not _PART_TYPE_RE.fullmatch(p.type)):
                    errors.append(
                        f"model part {i} type {p.type!r} is invalid: use letters, digits, "
                        "'.', '-', "
                        "'_' (max 64 characters)"
                    )
        for i, c in enumerate(self.code):
            check(f"code {i}", c.path)
        remote_paths: list[str] = []
        for i, d in enumerate(self.datasets):
            if d.remote_hash and not d.remote_path:
                errors.append(f"dataset {i}: remoteHash is set but remotePath is empty")
            if d.remote_path:
                rtype = path_type(d.remote_path)
                if rtype == "s3":
                    if not d.remote_hash:
                        errors.append(f"dataset {i}: an s3 remotePath needs remoteHash")
                elif rtype != "ref":
                    errors.append(
                        f"dataset {i}: remotePath {d.remote_path!r} must be an s3:// path or a "
                        "ModelKit reference"
                    )
                if d.path:
                    remote_paths.append(posixpath.normpath(d.path))
                continue
            check(f"dataset {i}", d.path)
        for i, d in enumerate(self.docs):
            check(f"docs {i}", d.path)
        for i, p in enumerate(self.prompts):
            check(f"prompt {i}", p.path)
        names: set[str] = set()
        for i, m in enumerate(self.mcp_servers):
            check(f"mcpServer {i}", m.path)
            if not m.path.endswith(".mcpb"):
                errors.append(f"mcpServer {i} path {m.path!r} must end in .mcpb")
            if not m.name:
                errors.append(f"mcpServer {i} needs a name")
            elif m.name in names:
                errors.append(f"mcpServer name {m.name!r} is used twice")
            names.add(m.name)
        for rp in remote_paths:
            for p in seen:
                if p == rp or p.startswith(rp + "/"):
                    errors.append(f"path {p!r} lies inside remote dataset path {rp!r}")
        if errors:
            raise KitfileError("invalid Kitfile: " + "; ".join(sorted(errors)))
        return warnings


# ---- helpers -----------------------------------------------------------------------------------


def path_type(path: str) -> str:
    """Classify a Kitfile path like kit's ``GetPathType``: http, s3, ref or local."""
    low = path.lower()
    if low.startswith(("http://", "https://")):
        return "http"
    if low.startswith("s3://"):
        return "s3"
    if is_modelkit_reference(path):
        return "ref"
    return "local"


def is_modelkit_reference(s: str) -> bool:
    """True if ``s`` contains ``:`` or ``@`` and parses as an OCI reference (kit's rule)."""
    if ":" not in s and "@" not in s:
        return False
    from mlflow_plugin.storage.reference import Reference  # local import: kit stays independent of oci

    try:
        Reference.parse(s)
    except ValueError:
        return False
    return True


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the scalar {node.value!r}"


def _is_null(node: Node) -> bool:
    return (
        isinstance(node, ScalarNode)
        and str(node.tag) in (yamlv3._PLAIN, yamlv3._TAG + "null")
        and (node.value in ("", "~", "null", "Null", "NULL") or str(node.tag) == yamlv3._TAG + "null")
    )


def _decode_string(node: Node, ctx: str) -> str:
    if _is_null(node):
        return ""
    if not isinstance(node, ScalarNode):
        raise KitfileError(f"line {yamlv3.where(node).line}: {ctx} must be a string, not {_kind(node)}")
    if str(node.tag) == yamlv3._TAG + "binary":
        return yamlv3.decode_binary(node)
    return yamlv3.scalar_text(node)  # yaml.v3 keeps the source text for string fields ("1.0" stays "1.0")


_SECTION_TYPES: dict[str, type] = {}


def _yaml_fields(cls: type) -> dict[str, Any]:
    out = {}
    for f in fields(cls):
        if f.name == "layer":
            continue
        out[f.metadata.get("json", f.name)] = f
    return out


def _decode_struct(cls: type, node: Node, ctx: str = "") -> Any:
    where = yamlv3.where(node)
    what = ctx or "the Kitfile"
    if _is_null(node):
        return cls()
    if not isinstance(node, MappingNode):
        raise KitfileError(f"line {where.line}: {what} must be a mapping, not {_kind(node)}")
    known = _yaml_fields(cls)
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for k, v in yamlv3.merged_pairs(node):
        key = k.value if isinstance(k, ScalarNode) else None
        if key is None:
            raise KitfileError(f"line {yamlv3.where(k).line}: keys in {what} must be strings")
        if key in seen:
            raise KitfileError(f"line {yamlv3.where(k).line}: key {key!r} appears twice in {what}")
        seen.add(key)
        f = known.get(key)
        if f is None:
            hint = difflib.get_close_matches(key, list(known), n=1)
            fix = f" (did you mean {hint[0]!r}?)" if hint else f" (allowed: {', '.join(known)})"
            raise KitfileError(f"line {yamlv3.where(k).line}: unknown key {key!r} in {what}{fix}")
        values[f.name] = _decode_field(cls, f.name, key, v, f"{what}.{key}" if ctx else key)
    return cls(**values)


_LIST_OF = {
    (Kitfile, "code"): Code,
    (Kitfile, "datasets"): DataSet,
    (Kitfile, "docs"): Docs,
    (Kitfile, "prompts"): Prompt,
    (Kitfile, "mcp_servers"): MCPServer,
    (Model, "parts"): ModelPart,
}


def _decode_field(cls: type, name: str, key: str, node: Node, ctx: str) -> Any:
    line = yamlv3.where(node).line
    if name == "parameters":
        if _is_null(node):
            return _UNSET
        value = yamlv3.to_value(node)
        _check_json_value(value, ctx, line)
        return value
    if (cls, name) in _LIST_OF:
        if _is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            raise KitfileError(f"line {line}: {ctx} must be a list, not {_kind(node)}")
        item = _LIST_OF[(cls, name)]
        # yaml.v3 drops null items of a slice of structs (d.null() fails for a struct value)
        return [_decode_struct(item, n, f"{ctx}[{i}]") for i, n in enumerate(node.value) if not _is_null(n)]
    if cls is Kitfile and name == "package":
        return _decode_struct(Package, node, "package")
    if cls is Kitfile and name == "model":
        return None if _is_null(node) else _decode_struct(Model, node, "model")
    if cls is Package and name == "authors":
        if _is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            raise KitfileError(f"line {line}: {ctx} must be a list of strings, not {_kind(node)}")
        # yaml.v3 drops null items of a []string (d.null() fails for a string value)
        return [_decode_string(n, f"{ctx}[{i}]") for i, n in enumerate(node.value) if not _is_null(n)]
    return _decode_string(node, ctx)


def _check_json_value(v: Any, ctx: str, line: int) -> None:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        raise KitfileError(f"line {line}: {ctx} contains {v!r}, which JSON cannot encode; quote it")
    if isinstance(v, dict):
        for k, x in v.items():
            # a timestamp key makes yaml.v3 build map[interface{}]interface{}, which Go's JSON refuses
            if not isinstance(k, str) or isinstance(k, yamlv3.GoTime):
                raise KitfileError(f"line {line}: {ctx} has the non-string key {k!r}; quote it")
            _check_json_value(x, ctx, line)
    elif isinstance(v, list):
        for x in v:
            _check_json_value(x, ctx, line)


def _from_obj(cls: type, obj: dict[str, Any]) -> Any:
    known = _yaml_fields(cls)
    kw: dict[str, Any] = {}
    for key, f in known.items():
        if key not in obj or obj[key] is None:
            continue
        v = obj[key]
        if (cls, f.name) in _LIST_OF:
            kw[f.name] = [_from_obj(_LIST_OF[(cls, f.name)], x) for x in v if isinstance(x, dict)]
        elif cls is Kitfile and f.name == "package":
            kw[f.name] = _from_obj(Package, v if isinstance(v, dict) else {})
        elif cls is Kitfile and f.name == "model":
            kw[f.name] = _from_obj(Model, v) if isinstance(v, dict) else None
        elif f.name in ("parameters", "authors"):
            kw[f.name] = v
        else:
            kw[f.name] = str(v)
    inst = cls(**kw)
    if "digest" in obj or "diffId" in obj:
        inst.layer = LayerInfo(str(obj.get("digest", "")), str(obj.get("diffId", "")))
    return inst
