"""Identify a file's format from its content (magic bytes), never from its extension alone.

>>> detect(b"\\x80\\x04\\x95\\x10\\x00", "weights.bin")
'pickle'
>>> detect(b"PK\\x03\\x04", "model.pt")
'zip'
>>> detect(b"\\x93NUMPY\\x01\\x00", "x")
'npy'
>>> detect(b"id,email\\n1,a@example.com\\n", "data/train.csv"), detect(b"PAR1\\x15\\x04", "x")
('dataset', 'dataset')
"""

from __future__ import annotations

import json

HEAD = 4096  # bytes callers pass to detect()

_PICKLE_FIRST = set(b"(]}cKJMN.GFITUVXabdeghijlopqrstu\x80\x8c\x94\x95")


def detect(head: bytes, name: str = "") -> str:
    """Format of a file from its first bytes (and, only as a tie-breaker, its name).

    Returns one of: ``zip``, ``tar``, ``gzip``, ``bz2``, ``xz``, ``7z``, ``zstd``, ``npy``,
    ``hdf5``, ``safetensors``, ``gguf``, ``pickle``, ``protobuf`` (ONNX / SavedModel by name
    or structure), ``python`` (``.py``/``.pyw`` text), ``requirements`` (``requirements*.txt``,
    ``conda.yaml``, ``environment.yml``, ``python_env.yaml`` text), ``mlmodel`` (text named
    exactly ``MLmodel``), ``dataset`` (see below), ``text``, ``json``,
    ``empty``, ``unknown``.

    ``dataset`` is a tabular file sampled for PII: Parquet (``PAR1`` magic, whatever the name),
    and CSV/TSV (``.csv``/``.tsv``) or JSON lines (``.jsonl``/``.ndjson``) whose content is text
    (or, for CSV/TSV, has no NUL bytes or a UTF-16 BOM: other encodings). Only files that the content
    rules call ``text``, ``json`` or ``unknown`` become datasets: a ``.csv`` that is a pickle, a
    zip or anything else recognised stays that. :func:`content_format` tells what a dataset
    would otherwise be; its scanner runs that format's checks too (secrets, hidden pickles).
    Members of archives and compressed files (``data.zip!train.csv``, ``t.csv.gz!t.csv``) keep
    their content format: only files of a kit or directory (and kit layer members) are sampled.

    >>> detect(b"a,b\\n1,2\\n", "t.csv"), detect(b"(lp0\\nI1\\na.", "t.csv"), detect(b"a,b\\n", "t.txt")
    ('dataset', 'pickle', 'text')
    >>> detect(b"a,b\\n1,2\\n", "data.zip!t.csv")
    'text'
    """
    fmt = content_format(head, name)
    if fmt in ("text", "json", "unknown") and _is_dataset(head, name, fmt):
        return "dataset"
    return fmt


_TABULAR_TEXT = (".csv", ".tsv")
_JSON_LINES = (".jsonl", ".ndjson")


def _is_dataset(head: bytes, name: str, fmt: str) -> bool:
    if "!" in name:
        return False  # a member of a zip/gzip/… inside the kit (OUTER!INNER): not sampled (yet)
    base = _original_base(name).lower()
    if head[:4] == b"PAR1":
        return fmt in ("unknown", "text")  # magic, then thrift: text only when it is tiny
    if base.endswith(_TABULAR_TEXT):
        return fmt != "unknown" or b"\x00" not in head or head[:2] in (b"\xff\xfe", b"\xfe\xff")
    if base.endswith(_JSON_LINES):
        return fmt != "unknown"
    return False


def content_format(head: bytes, name: str = "") -> str:
    """What :func:`detect` says without the ``dataset`` rule: the format's content alone.

    >>> content_format(b"a,b\\n1,2\\n", "t.csv"), content_format(b"PAR1\\x15\\x00", "t.parquet")
    ('text', 'unknown')
    """
    if not head:
        return "empty"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head[:4] == b"GGUF":
        return "gguf"
    if len(head) >= 265 and head[257:262] == b"ustar":
        return "tar"
    if _looks_like_safetensors(head):
        return "safetensors"
    if head[:1] == b"\x80" and len(head) > 1 and 0 <= head[1] <= 5:
        return "pickle"
    if head[:4] in (b"ZF0x", b"ZF0X"):
        return "pickle"  # joblib's legacy zlib container; the pickle scanner unpacks it
    if head[:2] in (b"x\x9c", b"x\x01", b"x\xda", b"x^") and _zlib_ok(head):
        return "zlib"  # joblib compress=("zlib", n)
    if head[:3] == b"]\x00\x00" and len(head) > 13:
        return "lzma"  # raw .lzma (joblib compress="lzma")
    if _sniff_pickle(head):
        return "pickle"  # pickles need no PROTO opcode: any opcode byte may start one
    low = name.lower()
    if low.endswith((".onnx", ".pb", ".pbtxt")) or low.endswith("saved_model.pb"):
        return "protobuf"
    base = low.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    if base.endswith((".py", ".pyw")) and b"\x00" not in head:
        return "python"  # source in any encoding (PEP 263 latin-1, Python 2), or broken bytes
    text = _texty(head)
    if text:
        if _requirements_name(base):
            return "requirements"
        if base == "mlmodel" and _original_base(name) == "MLmodel":
            return "mlmodel"  # what MLflow imports and runs on load_model
        stripped = head.lstrip()
        if stripped[:1] in (b"{", b"[") and _jsonish(head):
            return "json"
        if head[:1] in (b"(", b"c", b"]", b"}") and _protocol0_pickle(head):
            return "pickle"
        return "text"
    if head[:1] and head[0] in _PICKLE_FIRST and _protocol0_pickle(head):
        return "pickle"
    return "unknown"


def _requirements_name(base: str) -> bool:
    """pip requirements, conda environments and MLflow's python_env.yaml, by file name."""
    if base.startswith("requirements") and base.endswith((".txt", ".in")):
        return True
    return base in ("conda.yaml", "conda.yml", "environment.yml", "environment.yaml", "python_env.yaml")


def _original_base(name: str) -> str:
    return name.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1]


def _zlib_ok(head: bytes) -> bool:
    import zlib

    try:
        zlib.decompressobj().decompress(head[:256], 64)
    except zlib.error:
        return False
    return True


def _sniff_pickle(head: bytes) -> bool:
    try:
        from mlflow_plugin.scanner.pickle_vm import sniff
    except ImportError:  # pragma: no cover
        return False
    return sniff(head)


def _looks_like_safetensors(head: bytes) -> bool:
    """8-byte little-endian header length, then JSON. Any length counts: a header bomb
    (2**62) must reach the safetensors scanner, which reports it."""
    if len(head) < 10:
        return False
    n = int.from_bytes(head[:8], "little")
    return n >= 2 and head[8:9] == b"{" and (n <= 100_000_000 or head[9:10] in (b'"', b" ", b"\n", b"}"))


def _texty(head: bytes) -> bool:
    sample = head[:HEAD]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(sample) - 4  # cut in the middle of a character
    return True


def _jsonish(head: bytes) -> bool:
    try:
        json.loads(head)
    except ValueError as e:
        return "Extra data" not in str(e)  # truncated JSON is still JSON
    return True


def _protocol0_pickle(head: bytes) -> bool:
    """Protocol 0–1 pickles: ASCII opcodes, must end with STOP somewhere; check the first opcodes."""
    # cheap structural check: c<module>\n<name>\n  or  (lp0 / (dp0 / I123\n / S'..'
    if head.startswith(b"c") and b"\n" in head[:256]:
        first = head[1 : head.index(b"\n")]
        return first.replace(b".", b"").replace(b"_", b"").isalnum()
    return head[:2] in (b"(l", b"(d", b"(i", b"(c", b"]q", b"}q", b"(t", b"(V", b"(S") or head[:1] in (
        b"I",
        b"S",
        b"V",
    )
