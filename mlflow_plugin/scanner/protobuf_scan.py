"""ONNX models and TensorFlow graphs, read with a minimal protobuf wire-format reader.

No onnx or tensorflow import: the few field numbers we need come from ``onnx.proto`` and
TensorFlow's ``saved_model.proto`` / ``meta_graph.proto`` / ``graph.proto`` / ``function.proto`` /
``node_def.proto`` / ``attr_value.proto`` / ``tensor.proto``. The file is read in place through a
window cache; large byte fields (weights) are skipped, never copied.

- ONNX: tensors whose ``external_data`` ``location`` is absolute or leaves the model directory
  (HIGH ``onnx.external-data``), custom operator domains (``onnx.custom-domain``: INFO for
  runtime contrib domains, HIGH for unknown ones, which need a native library from outside).
- SavedModel / frozen GraphDef: operators with file, network or Python access, in the main
  graph, in every library function, and in graphs serialised inside string constants or
  attributes (the ``DatasetFromGraph`` nesting that hides ops from other scanners); Keras
  metadata with ``Lambda`` layers.
- ``.pbtxt`` text graphs: ``op: "..."`` lines.
- Malformed varints, lengths past the end, runaway nesting: ``protobuf.malformed``.

>>> import io
>>> from mlflow_plugin.scanner.api import _new_context
>>> node = _ld(2, b"ReadFile") + _ld(1, b"r")           # NodeDef{name, op}
>>> graph = _ld(1, node)                                # GraphDef{node}
>>> ctx = _new_context("frozen.pb", None, None)
>>> scan_protobuf(ctx, "frozen.pb", io.BytesIO(graph), len(graph))
>>> [(f.severity.name, f.rule) for f in ctx.report_obj.findings]
[('HIGH', 'tf.risky-op')]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

MAX_DEPTH = 64
MAX_FIELDS = 50_000_000
MAX_STRING = 1 << 20  # longest string field we copy (op names, locations, metadata JSON: 16 MiB)
MAX_JSON = 16 << 20
WINDOW = 1 << 20

# TF op -> (severity, what it can do)
RISKY_OPS: dict[str, tuple[Severity, str]] = {
    **{
        op: (Severity.CRITICAL, "calls back into Python code registered in the loading process")
        for op in ("PyFunc", "PyFuncStateless", "EagerPyFunc")
    },
    "ReadFile": (Severity.HIGH, "reads any file the loading process can read"),
    "WriteFile": (Severity.HIGH, "writes any file the loading process can write"),
    "MatchingFiles": (Severity.HIGH, "lists the file system"),
    "ImmutableConst": (Severity.HIGH, "memory-maps a file named in the graph"),
    **{
        op: (Severity.HIGH, "writes tensors to a file or sends them to a URL (debug_urls / dump_root)")
        for op in (
            "DebugIdentity",
            "DebugIdentityV2",
            "DebugIdentityV3",
            "DebugNanCount",
            "DebugNumericSummary",
            "DebugNumericSummaryV2",
        )
    },
    **{
        op: (Severity.HIGH, "opens network connections (tf.distribute RPC)")
        for op in (
            "RpcClient",
            "RpcCall",
            "RpcServer",
            "RpcServerStart",
            "RpcServerRegister",
            "RpcCheckStatus",
            "RpcGetValue",
            "DeleteRpcFutureResource",
        )
    },
    **{
        op: (Severity.HIGH, "writes a dataset to files")
        for op in (
            "DatasetToTFRecord",
            "ExperimentalDatasetToTFRecord",
            "SaveDataset",
            "SaveDatasetV2",
            "DistributedSave",
        )
    },
    **{op: (Severity.HIGH, "queries a database") for op in ("SqlDataset", "ExperimentalSqlDataset")},
    **{
        op: (Severity.MEDIUM, "reads files named in the graph")
        for op in (
            "TextLineDataset",
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "CSVDataset",
            "CSVDatasetV2",
            "ExperimentalCSVDataset",
            "LoadDataset",
            "LMDBDataset",
            "ExperimentalLMDBDataset",
            "SnapshotDataset",
            "SnapshotDatasetV2",
            "SnapshotDatasetReader",
            "TFRecordReader",
            "TFRecordReaderV2",
            "TextLineReader",
            "TextLineReaderV2",
            "WholeFileReader",
            "WholeFileReaderV2",
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "LMDBReader",
            "DecodeProtoV2",
            "EncodeProto",
        )
    },
    **{
        op: (Severity.MEDIUM, "writes summary files to a log directory")
        for op in (
            "CreateSummaryFileWriter",
            "CreateSummaryDbWriter",
            "WriteSummary",
            "WriteRawProtoSummary",
            "ImportEvent",
            "FlushSummaryWriter",
        )
    },
    "LoadAndRemapMatrix": (Severity.LOW, "reads a checkpoint file named in the graph"),
    "InitializeTableFromTextFile": (Severity.LOW, "reads a vocabulary file (normally a SavedModel asset)"),
    "InitializeTableFromTextFileV2": (Severity.LOW, "reads a vocabulary file (normally a SavedModel asset)"),
    "Abort": (Severity.LOW, "terminates the loading process"),
    **{
        op: (Severity.INFO, "checkpoint file I/O (normal in a SavedModel's saver)")
        for op in ("SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints")
    },
}
_ONNX_STD_DOMAINS = {
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "ai.onnx.preview",
}
_ONNX_KNOWN_DOMAINS = ("com.microsoft", "com.ms.internal", "org.pytorch", "ai.onnx.contrib")
_OP_NAME = re.compile(rb"^[A-Za-z_][A-Za-z0-9_>.\-]{0,127}$")


class Malformed(Exception):
    """The bytes are not a valid protobuf message."""


class PB:
    """Random-access protobuf field reader over a seekable stream (window-cached).

    >>> p = PB(__import__("io").BytesIO(b"\\x08\\x96\\x01"), 3)
    >>> [(f, wt, v) for f, wt, v, _ in p.fields(0, 3)]
    [(1, 0, 150)]
    """

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self.s, self.size = stream, size
        self.base = stream.tell() if hasattr(stream, "tell") else 0
        self.wstart, self.win = 0, b""
        self.count = 0

    def _window(self, pos: int, n: int) -> tuple[bytes, int]:
        if not (self.wstart <= pos and pos + n <= self.wstart + len(self.win)):
            self.s.seek(self.base + pos)
            self.win = self.s.read(max(n, WINDOW))
            self.wstart = pos
        return self.win, pos - self.wstart

    def read(self, pos: int, n: int) -> bytes:
        if n > WINDOW:
            self.s.seek(self.base + pos)
            return self.s.read(n)
        w, i = self._window(pos, n)
        return w[i : i + n]

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        w, i = self._window(pos, min(10, end - pos) if end > pos else 1)
        result = shift = 0
        for k in range(10):
            if pos + k >= end or i + k >= len(w):
                raise Malformed(f"varint runs past the end of its message at byte {pos}")
            b = w[i + k]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result, pos + k + 1
            shift += 7
        raise Malformed(f"varint longer than 10 bytes at byte {pos}")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, Any, int]]:
        """Yield (field number, wire type, value, position); LEN values are (start, end) ranges."""
        pos = start
        while pos < end:
            self.count += 1
            if self.count > MAX_FIELDS:
                raise Malformed(f"more than {MAX_FIELDS} fields")
            at = pos
            tag, pos = self.varint(pos, end)
            fno, wt = tag >> 3, tag & 7
            if fno == 0:
                raise Malformed(f"field number 0 at byte {at}")
            if wt == 0:
                v, pos = self.varint(pos, end)
                yield fno, wt, v, at
            elif wt == 2:
                n, pos = self.varint(pos, end)
                if n > end - pos:
                    raise Malformed(f"length {n} at byte {at} runs past the end of its message")
                yield fno, wt, (pos, pos + n), at
                pos += n
            elif wt == 1 or wt == 5:
                pos += 8 if wt == 1 else 4
                if pos > end:
                    raise Malformed(f"fixed-width field at byte {at} runs past the end")
                yield fno, wt, None, at
            else:
                raise Malformed(f"unsupported wire type {wt} at byte {at}")

    def string(self, rng: tuple[int, int], limit: int = MAX_STRING) -> bytes:
        s, e = rng
        return self.read(s, min(e - s, limit))


def _varint_bytes(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    """Encode a length-delimited field (test and doctest helper)."""
    return _varint_bytes(field << 3 | 2) + _varint_bytes(len(payload)) + payload


def _vi(field: int, value: int) -> bytes:
    """Encode a varint field (test and doctest helper)."""
    return _varint_bytes(field << 3) + _varint_bytes(value)


def _txt(b: bytes) -> str:
    return b.decode("utf-8", "replace")


# --------------------------------------------------------------------------- dispatch


def scan_protobuf(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Decide ONNX / SavedModel / GraphDef / Keras metadata by structure (name breaks ties) and check it.

    >>> import io
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> t = _ld(8, b"w") + _ld(13, _ld(1, b"location") + _ld(2, b"../../etc/passwd")) + _vi(14, 1)
    >>> m = _vi(1, 8) + _ld(7, _ld(5, t)) + _ld(8, _vi(2, 17))
    >>> ctx = _new_context("m.onnx", None, None)
    >>> scan_protobuf(ctx, "m.onnx", io.BytesIO(m), len(m))
    >>> [(f.severity.name, f.rule) for f in ctx.report_obj.findings]
    [('HIGH', 'onnx.external-data')]
    """
    from mlflow_plugin.scanner.containers import ensure_seekable

    stream = ensure_seekable(stream, size)
    start = stream.tell()
    head = stream.read(4096)
    stream.seek(start)
    name = path.rsplit("!", 1)[-1].rsplit("/", 1)[-1].lower()
    if name.endswith(".pbtxt") or _looks_text(head):
        _scan_pbtxt(ctx, path, stream, size)
        return
    pb = PB(stream, size)
    try:
        kind = _classify(pb, size, name)
    except Malformed as e:
        ctx.report(path, Severity.MEDIUM, "protobuf.malformed", f"not a valid protobuf message: {e}")
        return
    s = _State(ctx, path, pb)
    try:
        if kind == "onnx":
            s.onnx_model(0, size)
            s.finish_onnx()
        elif kind == "savedmodel":
            s.saved_model(0, size)
        elif kind == "graphdef":
            s.graph_def(0, size, "graph", 0)
        elif kind == "keras_metadata":
            s.keras_metadata(0, size)
        else:
            return
    except Malformed as e:
        ctx.report(path, Severity.MEDIUM, "protobuf.malformed", f"{kind} message is malformed: {e}")
    except RecursionError:
        ctx.report(path, Severity.HIGH, "protobuf.malformed", f"{kind} message nested too deeply")
    s.flush()


def _looks_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(re.match(rb"\s*(#|[A-Za-z_][A-Za-z0-9_]*\s*[:{])", head))


def _classify(pb: PB, size: int, name: str) -> str:
    seen: dict[int, set[int]] = {}
    for i, (fno, wt, _v, _at) in enumerate(pb.fields(0, size)):
        seen.setdefault(fno, set()).add(wt)
        if i > 256:
            break
    onnx = 1 in seen and 0 in seen[1] and (2 in seen.get(7, set()) or 2 in seen.get(8, set()))
    saved = 2 in seen.get(2, set()) and set(seen) <= {1, 2} and seen.get(1, {0}) == {0}
    graph = 2 in seen.get(1, set()) and set(seen) <= {1, 2, 3, 4}
    if name.endswith(".onnx") and onnx:
        return "onnx"
    if name == "saved_model.pb" and saved:
        return "savedmodel"
    if name == "keras_metadata.pb" and 2 in seen.get(1, set()):
        return "keras_metadata"
    if onnx:
        return "onnx"
    if saved:
        return "savedmodel"
    if graph:
        return "graphdef"
    return "unknown"


class _State:
    def __init__(self, ctx: ScanContext, path: str, pb: PB) -> None:
        self.ctx, self.path, self.pb = ctx, path, pb
        self.ops: dict[str, list[Any]] = {}  # op -> [count, first node, where]
        self.domains: dict[str, int] = {}
        self.ext_reported = 0

    # ------------------------------------------------------------------ ONNX
    def onnx_model(self, s: int, e: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 7:
                self.onnx_graph(*v, 0)
            elif fno == 8:
                self.onnx_opset(*v)
            elif fno == 25:
                self.onnx_function(*v, 0)
            elif fno == 20:
                for f2, wt2, v2, _ in self.pb.fields(*v):
                    if wt2 == 2 and f2 in (1, 2):
                        self.onnx_graph(*v2, 1)

    def onnx_opset(self, s: int, e: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if fno == 1 and wt == 2:
                d = _txt(self.pb.string(v, 1024))
                self.domains.setdefault(d, 0)

    def onnx_function(self, s: int, e: int, depth: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 7:
                self.onnx_node(*v, depth + 1)
            elif fno == 9:
                self.onnx_opset(*v)

    def onnx_graph(self, s: int, e: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise Malformed("subgraphs nested deeper than 64 levels")
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 1:
                self.onnx_node(*v, depth)
            elif fno == 5:
                self.onnx_tensor(*v)
            elif fno == 15:
                self.onnx_sparse(*v)

    def onnx_sparse(self, s: int, e: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt == 2 and fno in (1, 2):
                self.onnx_tensor(*v)

    def onnx_node(self, s: int, e: int, depth: int) -> None:
        domain = ""
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 7:
                domain = _txt(self.pb.string(v, 1024))
            elif fno == 5:
                self.onnx_attribute(*v, depth)
        self.domains[domain] = self.domains.get(domain, 0) + 1

    def onnx_attribute(self, s: int, e: int, depth: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno in (5, 10):
                self.onnx_tensor(*v)
            elif fno in (6, 11):
                self.onnx_graph(*v, depth + 1)
            elif fno in (22, 23):
                self.onnx_sparse(*v)

    def onnx_tensor(self, s: int, e: int) -> None:
        name = ""
        location = None
        external = False
        for fno, wt, v, _ in self.pb.fields(s, e):
            if fno == 8 and wt == 2:
                name = _txt(self.pb.string(v, 1024))
            elif fno == 14 and wt == 0:
                external = v == 1
            elif fno == 13 and wt == 2:
                key = val = b""
                for f2, wt2, v2, _ in self.pb.fields(*v):
                    if wt2 == 2 and f2 == 1:
                        key = self.pb.string(v2, 256)
                    elif wt2 == 2 and f2 == 2:
                        val = self.pb.string(v2, 4096)
                if key == b"location":
                    location = _txt(val)
        if location is not None:
            why = _escapes(location)
            if why:
                self.ext_reported += 1
                if self.ext_reported <= 20:
                    self.ctx.report(
                        self.path,
                        Severity.HIGH,
                        "onnx.external-data",
                        f"tensor's external data location {why}: loading reads a file outside the "
                        "model directory",
                        f"{name[:60]}: {location[:120]}",
                    )
        elif external:
            self.ctx.report(
                self.path,
                Severity.LOW,
                "onnx.external-data",
                "tensor marked EXTERNAL has no location",
                name[:120],
            )

    def finish_onnx(self) -> None:
        custom = sorted(d for d in self.domains if d not in _ONNX_STD_DOMAINS)
        for d in custom:
            known = d.startswith(_ONNX_KNOWN_DOMAINS)
            # an unknown domain loads only once a native custom-operator library from outside the kit
            # is registered, and that library then runs with attributes the model chose: high (a
            # publisher who knows the library may accept it); runtime contrib domains are info
            self.ctx.report(
                self.path,
                Severity.INFO if known else Severity.HIGH,
                "onnx.custom-domain",
                "operators from a non-standard domain need a custom operator library (native code from "
                "outside the model) to load and run"
                if not known
                else "operators from a runtime contrib domain",
                f"{d[:100]} ({self.domains[d]} nodes)",
            )

    # ------------------------------------------------------------------ TensorFlow
    def saved_model(self, s: int, e: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if fno == 2 and wt == 2:
                self.meta_graph(*v)

    def meta_graph(self, s: int, e: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 2:
                self.graph_def(*v, "graph", 0)
            elif fno == 7:
                self.object_graph(*v)

    def graph_def(self, s: int, e: int, where: str, depth: int) -> None:
        if depth > 8:
            raise Malformed("graphs nested inside graphs deeper than 8 levels")
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 1:
                self.node_def(*v, where, depth)
            elif fno == 2:
                for f2, wt2, v2, _ in self.pb.fields(*v):
                    if f2 == 1 and wt2 == 2:
                        self.function_def(*v2, depth)

    def function_def(self, s: int, e: int, depth: int) -> None:
        fname = "?"
        nodes = []
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 1:
                for f2, wt2, v2, _ in self.pb.fields(*v):
                    if f2 == 1 and wt2 == 2:
                        fname = _txt(self.pb.string(v2, 256))
            elif fno == 3:
                nodes.append(v)
        for v in nodes:
            self.node_def(*v, f"function {fname}", depth)

    def node_def(self, s: int, e: int, where: str, depth: int) -> None:
        op = name = ""
        attrs = []
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 2:
                op = _txt(self.pb.string(v, 256))
            elif fno == 1:
                name = _txt(self.pb.string(v, 256))
            elif fno == 5:
                attrs.append(v)
        if op in RISKY_OPS or op == "PrintV2":
            extra = ""
            if op == "PrintV2" or op.startswith("Debug"):
                extra = self._attr_string(attrs, (b"output_stream", b"debug_urls", b"dump_root"))
                if op == "PrintV2" and not extra.startswith("file://"):
                    op = ""
            if op:
                rec = self.ops.setdefault(op, [0, name, where, extra])
                rec[0] += 1
        for a in attrs:
            self.attr_entry(*a, name, depth)

    def _attr_string(self, attrs: list[tuple[int, int]], keys: tuple[bytes, ...]) -> str:
        for a in attrs:
            key = b""
            for fno, wt, v, _ in self.pb.fields(*a):
                if fno == 1 and wt == 2:
                    key = self.pb.string(v, 256)
                elif fno == 2 and wt == 2 and key in keys:
                    for f2, wt2, v2, _ in self.pb.fields(*v):
                        if f2 == 2 and wt2 == 2:
                            return _txt(self.pb.string(v2, 256))
                        if f2 == 1 and wt2 == 2:
                            for f3, wt3, v3, _ in self.pb.fields(*v2):
                                if f3 == 2 and wt3 == 2:
                                    return _txt(self.pb.string(v3, 256))
        return ""

    def attr_entry(self, s: int, e: int, node: str, depth: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if fno == 2 and wt == 2:
                self.attr_value(*v, node, depth)

    def attr_value(self, s: int, e: int, node: str, depth: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if wt != 2:
                continue
            if fno == 2:
                self.maybe_graph(v, node, depth)
            elif fno == 8:
                self.tf_tensor(*v, node, depth)
            elif fno == 1:
                for f2, wt2, v2, _ in self.pb.fields(*v):
                    if wt2 == 2 and f2 == 2:
                        self.maybe_graph(v2, node, depth)
                    elif wt2 == 2 and f2 == 8:
                        self.tf_tensor(*v2, node, depth)

    def tf_tensor(self, s: int, e: int, node: str, depth: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if fno == 8 and wt == 2:
                self.maybe_graph(v, node, depth)

    def maybe_graph(self, rng: tuple[int, int], node: str, depth: int) -> None:
        """A string that parses as a GraphDef with real op names is a nested graph: scan it too."""
        s, e = rng
        if e - s < 6 or self.pb.read(s, 1) != b"\x0a":
            return
        saved = self.pb.count
        try:
            ok = False
            for fno, wt, v, _ in self.pb.fields(s, e):
                if fno not in (1, 2, 3, 4) or (fno in (1, 2, 4) and wt != 2) or (fno == 3 and wt != 0):
                    return
                if fno == 1 and not ok:
                    for f2, wt2, v2, _ in self.pb.fields(*v):
                        if f2 == 2 and wt2 == 2 and _OP_NAME.match(self.pb.string(v2, 256)):
                            ok = True
        except Malformed:
            return
        finally:
            self.pb.count = saved
        if ok:
            self.graph_def(s, e, f"graph nested in node {node}", depth + 1)

    def object_graph(self, s: int, e: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if fno != 1 or wt != 2:
                continue
            for f2, wt2, v2, _ in self.pb.fields(*v):
                if f2 == 4 and wt2 == 2:  # SavedObject.user_object
                    for f3, wt3, v3, _ in self.pb.fields(*v2):
                        if f3 == 3 and wt3 == 2:
                            self.keras_json(v3)

    def keras_metadata(self, s: int, e: int) -> None:
        for fno, wt, v, _ in self.pb.fields(s, e):
            if fno != 1 or wt != 2:
                continue
            for f2, wt2, v2, _ in self.pb.fields(*v):
                if f2 == 5 and wt2 == 2:
                    self.keras_json(v2)

    def keras_json(self, rng: tuple[int, int]) -> None:
        s, e = rng
        if e - s > MAX_JSON or e - s < 2:
            return
        raw = self.pb.read(s, e - s)
        if b"class_name" not in raw:
            return
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            return
        from mlflow_plugin.scanner.keras_scan import check_keras_config

        check_keras_config(self.ctx, self.path, obj, "savedmodel")

    def flush(self) -> None:
        for op, (count, node, where, extra) in sorted(self.ops.items()):
            sev, what = RISKY_OPS.get(op, (Severity.HIGH, "writes to a file"))
            ev = f"{op} ×{count}, first node {node!r} in {where}" + (f"; target {extra}" if extra else "")
            self.ctx.report(self.path, sev, "tf.risky-op", f"TensorFlow op {op} {what}", ev[:200])


def _escapes(location: str) -> str | None:
    loc = location.replace("\\", "/")
    if loc.startswith("/") or re.match(r"^[A-Za-z]:", loc):
        return "is an absolute path"
    if "://" in loc:
        return "is a URL"
    if loc.startswith("~"):
        return "is in a home directory"
    if ".." in loc.split("/"):
        return "climbs out of the model directory"
    if "\x00" in loc:
        return "contains a NUL byte"
    return None


_PBTXT_OP = re.compile(r'\bop\s*:\s*"([A-Za-z0-9_>.]+)"')


def _scan_pbtxt(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    data = stream.read(min(size, ctx.limits.max_text_scan))
    counts: dict[str, int] = {}
    for m in _PBTXT_OP.finditer(data.decode("utf-8", "replace")):
        op = m.group(1)
        if op in RISKY_OPS:
            counts[op] = counts.get(op, 0) + 1
    for op, n in sorted(counts.items()):
        sev, what = RISKY_OPS[op]
        ctx.report(path, sev, "tf.risky-op", f"TensorFlow op {op} {what}", f"{op} ×{n} (text graph)")
