"""PII-like values in tabular dataset files (CSV/TSV, JSON lines, Parquet), sampled and counted.

A kit's datasets are sampled, never read whole: at most :data:`SAMPLE_ROWS` rows and, for text
formats, :data:`SAMPLE_BYTES` bytes from the start of the file (Parquet: the first row groups, up to
:data:`SAMPLE_ROWS` rows of the string and 64-bit integer columns). Each value (its first
:data:`MAX_CELL` characters) is checked for

* ``email`` — an e-mail address anywhere in the value;
* ``phone`` — the whole value is a phone number: ``+`` and 8–15 digits (E.164, separators allowed)
  or a national format with separators (``(555) 123-4567``, ``555-123-4567``, ``020 7946 0958``);
  plain integers, IDs, floats and dates never count;
* ``card`` — 13–19 digits (spaces or dashes allowed) with a known issuer prefix that pass Luhn;
* ``iban`` — a country code, check digits and a body of that country's length, mod-97 valid;
* ``ssn`` — a US social security number ``AAA-GG-SSSS`` outside the never-issued ranges.

One finding per column and kind (rule ``dataset.pii.<kind>``, severity ``[scan] pii``, default
``info``) gives the column name and counts — never a value or a part of one. Column names come
from the file: control characters are dropped, long names cut, and a header cell that itself looks
like PII is replaced by the column's number. A file that cannot be parsed is ``dataset.malformed``
(info); one that cannot be sampled (no pyarrow, a Parquet stream too big to spool) is
``dataset.not-sampled`` (info). The checks the file's content would get anyway still run: secrets
for text (``secret.*``), hidden pickles and zip polyglots for binary files.

>>> import io
>>> from mlflow_plugin.scanner.api import _new_context
>>> data = b"id,contact\\n1,ann@example.org\\n2,n/a\\n3,bob@example.net\\n"
>>> ctx = _new_context("t.csv", None, None)
>>> scan_dataset(ctx, "t.csv", io.BytesIO(data), len(data))
>>> [(f.rule, f.evidence) for f in ctx.report_obj.findings]
[('dataset.pii.email', 'email:2/3')]
>>> ctx.report_obj.findings[0].message
'column "contact" (3 rows sampled): 2 of 3 values look like email addresses'
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.detect import HEAD, content_format
from mlflow_plugin.scanner.report import Severity
from mlflow_plugin.scanner.streams import ensure_seekable, is_seekable

SAMPLE_ROWS = 10_000  # rows sampled per file
SAMPLE_BYTES = 8 << 20  # bytes of a text dataset read for the sample
MAX_CELL = 1024  # characters of one value that are checked
MAX_COLUMNS = 1000  # columns tracked per file; more are reported, not sampled
MAX_NAME = 64  # characters of a column name shown in a message
PARQUET_SPOOL_LIMIT = 512 << 20  # a non-seekable Parquet stream up to this size is spooled to sample it
PARQUET_FOOTER_LIMIT = 16 << 20  # a bigger Parquet footer (metadata) is not read
CHUNK = 64 << 10

KINDS = ("email", "phone", "card", "iban", "ssn")
WHAT = {
    "email": "email addresses",
    "phone": "phone numbers",
    "card": "payment card numbers (Luhn-valid)",
    "iban": "IBANs (checksum-valid)",
    "ssn": "US social security numbers",
}

# ---- detectors ----------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
_PHONE_INTL = re.compile(r"\+\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?)(?:[ .\-]?\d{1,5}){1,5}")
_PHONE_NATIONAL = re.compile(
    r"\(\d{3}\) ?\d{3}[ .\-]\d{4}"  # (555) 123-4567
    r"|\d{3}([ .\-])\d{3}\1\d{4}"  # 555-123-4567, 555.123.4567, 555 123 4567
    r"|0\d{2,4}[ \-]\d{3,4}[ \-]?\d{3,4}"  # 020 7946 0958, 07700 900123, 030-1234-5678
)
_CARD = re.compile(r"(?<![\d.\-])\d(?:[ \-]?\d){12,18}(?![\d.\-]|,\d)")
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30})(?![A-Za-z0-9])")
_SSN = re.compile(r"(?<![\d\-])(\d{3})-(\d{2})-(\d{4})(?![\d\-])")

# IBAN lengths by country (ISO 13616 registry)
_IBAN_TABLE = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DJ27 "
    "DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 "
    "IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 LY25 MC27 MD24 ME22 MK19 "
    "MN20 MR27 MT31 MU30 NL18 NO15 OM23 PK24 PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 "
    "SE24 SI19 SK24 SM27 SO23 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30"
)
_IBAN_LEN = {c[:2]: int(c[2:]) for c in _IBAN_TABLE.split()}


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a digit string.

    >>> luhn_ok("4111111111111111"), luhn_ok("4111111111111112")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_prefix_ok(d: str) -> bool:
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)  # Visa
    p2, p4 = int(d[:2]), int(d[:4])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # American Express
    if d.startswith(("6011", "65")) or 644 <= int(d[:3]) <= 649 or d.startswith("62"):
        return 16 <= n <= 19  # Discover, UnionPay
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19  # JCB
    if 300 <= int(d[:3]) <= 305 or p2 in (36, 38, 39):
        return 14 <= n <= 19  # Diners Club
    return False


def card_ok(s: str) -> bool:
    """13–19 digits (spaces/dashes allowed) with a known issuer prefix that pass Luhn.

    >>> card_ok("4111 1111 1111 1111"), card_ok("4111111111111112"), card_ok("1700000000000000")
    (True, False, False)
    """
    d = s.replace(" ", "").replace("-", "")
    return 13 <= len(d) <= 19 and d.isdigit() and _card_prefix_ok(d) and luhn_ok(d)


def iban_ok(s: str) -> bool:
    """Country code, two check digits, the country's length, ISO 7064 mod-97 = 1.

    >>> iban_ok("GB82 WEST 1234 5698 7654 32"), iban_ok("GB83WEST12345698765432")
    (True, False)
    """
    s = s.replace(" ", "")
    if _IBAN_LEN.get(s[:2]) != len(s) or not s[2:4].isdigit():
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _ssn_ok(area: str, group: str, serial: str) -> bool:
    a = int(area)
    return a != 0 and a != 666 and a < 900 and group != "00" and serial != "0000"


def _digits(s: str) -> int:
    return sum(map(str.isdigit, s))


def classify(value: str) -> set[str]:
    """The PII kinds ``value`` looks like (a subset of :data:`KINDS`).

    >>> sorted(classify("Ann <ann@example.org>, +44 20 7946 0958"))
    ['email']
    >>> classify("+44 20 7946 0958"), classify("2024-01-15"), classify("078-05-1120")
    ({'phone'}, set(), {'ssn'})
    >>> classify("4111-1111-1111-1111"), classify("GB82WEST12345698765432"), classify("12345678")
    ({'card'}, {'iban'}, set())
    """
    s = value[:MAX_CELL].strip()
    out: set[str] = set()
    if not s:
        return out
    if "@" in s and _EMAIL.search(s):
        out.add("email")
    if _digits(s) < 9:
        return out
    if s[0] in "+(0123456789" and (
        (_PHONE_INTL.fullmatch(s) and 8 <= _digits(s) <= 15) or _PHONE_NATIONAL.fullmatch(s)
    ):
        out.add("phone")
    if any(card_ok(m.group(0)) for m in _CARD.finditer(s)):
        out.add("card")
    if any(iban_ok(m.group(1)) for m in _IBAN.finditer(s)):
        out.add("iban")
    if "-" in s and any(_ssn_ok(*m.groups()) for m in _SSN.finditer(s)):
        out.add("ssn")
    return out


# ---- column statistics --------------------------------------------------------------------------

_CTRL = re.compile(r"\s+")


def clean_name(name: str, index: int) -> str:
    """A column name fit for a message: no control or format characters, at most :data:`MAX_NAME`
    characters; the column's number when nothing is left or the name itself looks like PII.

    >>> clean_name("con\\x1b[31mtact\\u202e", 0), clean_name("", 2), clean_name("ann@example.org", 3)
    ('con[31mtact', 'column 3', 'column 4')
    """
    s = "".join(
        ch for ch in name[: MAX_NAME * 8] if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " "
    )
    s = _CTRL.sub(" ", s).strip().replace('"', "'")
    if not s or classify(s):
        return f"column {index + 1}"
    return s if len(s) <= MAX_NAME else s[: MAX_NAME - 1] + "…"


class _Stats:
    """Counts per column: values seen (non-empty) and values of each kind."""

    def __init__(self) -> None:
        self.names: dict[Any, str] = {}  # column key -> display name
        self.seen: dict[Any, int] = {}
        self.hits: dict[Any, dict[str, int]] = {}
        self.rows = 0
        self.dropped_columns = 0

    def add(self, key: Any, display: Callable[[], str], value: str) -> None:
        if key not in self.seen:
            if len(self.seen) >= MAX_COLUMNS:
                self.dropped_columns += 1
                return
            self.names[key] = display()
            self.seen[key] = 0
            self.hits[key] = {}
        if not value or value.isspace():
            return
        self.seen[key] += 1
        for kind in classify(value):
            h = self.hits[key]
            h[kind] = h.get(kind, 0) + 1

    def report(self, ctx: ScanContext, path: str) -> None:
        sev = Severity.parse(ctx.policy.pii)
        for key, hits in self.hits.items():
            for kind in KINDS:
                n = hits.get(kind, 0)
                if n:
                    m = self.seen[key]
                    ctx.report(
                        path,
                        sev,
                        f"dataset.pii.{kind}",
                        f'column "{self.names[key]}" ({self.rows} rows sampled): '
                        f"{n} of {m} values look like {WHAT[kind]}",
                        f"{kind}:{n}/{m}",
                    )
        if self.dropped_columns:
            ctx.report(
                path,
                Severity.INFO,
                "dataset.not-sampled",
                f"only the first {MAX_COLUMNS} columns were sampled for PII",
                f"columns>{MAX_COLUMNS}",
            )


# ---- reading text -------------------------------------------------------------------------------


class _TextSample:
    """Decoded lines of a text stream, at most :data:`SAMPLE_BYTES` bytes; keeps what it read when
    the stream cannot seek back (so the secrets scan can still see those bytes)."""

    def __init__(self, stream: IO[bytes], size: int, keep: bool) -> None:
        self.stream, self.size = stream, size
        self.kept: list[bytes] | None = [] if keep else None
        self.consumed = 0
        self.truncated = False  # stopped by the byte budget before the end of the file

    def _chunks(self) -> Iterator[bytes]:
        while self.consumed < SAMPLE_BYTES:
            b = self.stream.read(min(CHUNK, SAMPLE_BYTES - self.consumed))
            if not b:
                return
            self.consumed += len(b)
            if self.kept is not None:
                self.kept.append(b)
            yield b
        self.truncated = self.size < 0 or self.consumed < self.size

    def lines(self) -> Iterator[str]:
        """Lines with their endings (``\\n``, ``\\r\\n``, or lone ``\\r`` in old Mac files)."""
        decoder: codecs.IncrementalDecoder | None = None
        rest = ""
        sep: str | None = None
        for b in self._chunks():
            if decoder is None:
                enc = "utf-8-sig"
                if b[:2] in (b"\xff\xfe", b"\xfe\xff"):
                    enc = "utf-16"
                decoder = codecs.getincrementaldecoder(enc)(errors="replace")
            text = rest + decoder.decode(b)
            if sep is None:
                if "\n" in text:
                    sep = "\n"
                elif "\r" in text:
                    sep = "\r"
                else:
                    rest = text
                    continue
            parts = text.split(sep)
            rest = parts.pop()
            for p in parts:
                if sep == "\n" and "\r" in p[:-1]:  # a stray CR inside a line would stop the csv module
                    p = p[:-1].replace("\r", " ") + p[-1:]
                yield p + sep
        if decoder is not None:
            rest += decoder.decode(b"", final=True)
        if rest and not self.truncated:
            yield rest  # a last line cut by the budget is not a row

    def rest_stream(self) -> Any:
        """The whole stream again: what was read, then the unread rest."""
        assert self.kept is not None
        return _Chain(b"".join(self.kept), self.stream)


class _Chain(io.RawIOBase):
    def __init__(self, first: bytes, then: IO[bytes]) -> None:
        self.first, self.pos, self.then = first, 0, then

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        if self.pos < len(self.first):
            k = len(self.first) - self.pos if n is None or n < 0 else min(n, len(self.first) - self.pos)
            out = self.first[self.pos : self.pos + k]
            self.pos += k
            return out
        return self.then.read(-1 if n is None else n)


def _sample_csv(lines: Iterable[str], delimiter: str, stats: _Stats) -> str | None:
    """Rows into ``stats``; returns a parse problem (no values in it) or None."""
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    first = True
    try:
        for row in reader:
            if first:
                first = False
                if _is_header(row):
                    header = row
                    continue
            if stats.rows >= SAMPLE_ROWS:
                break
            stats.rows += 1
            for i, cell in enumerate(row):
                name = header[i] if header is not None and i < len(header) else ""
                stats.add(i, lambda i=i, name=name: clean_name(name, i), cell)  # type: ignore[misc]
    except csv.Error as e:
        return f"CSV could not be parsed after {stats.rows} rows: {str(e)[:120]}"
    return None


def _is_header(row: list[str]) -> bool:
    """A first row is a header when every cell is a distinct, non-numeric, non-PII string."""
    cells = [c.strip() for c in row]
    if not cells or len(set(cells)) != len(cells):
        return False
    for c in cells:
        if not c or classify(c):
            return False
        try:
            float(c.replace(",", ""))
            return False
        except ValueError:
            pass
    return True


def _sniff_delimiter(head: bytes) -> str:
    text = head.decode("utf-8", "replace")
    try:
        return csv.Sniffer().sniff(text[:16384], delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _sample_jsonl(lines: Iterable[str], stats: _Stats) -> str | None:
    bad = 0
    total = 0
    for line in lines:
        if not line.strip():
            continue
        if stats.rows >= SAMPLE_ROWS:
            break
        total += 1
        try:
            obj = json.loads(line) if len(line) <= (1 << 20) else None
        except (ValueError, RecursionError):
            obj = None
        if obj is None:
            bad += 1
            continue
        stats.rows += 1
        items: Iterable[tuple[Any, Any]]
        if isinstance(obj, dict):
            items = obj.items()
        elif isinstance(obj, list):
            items = enumerate(obj)
        else:
            items = [("", obj)]
        for pos, (k, v) in enumerate(items):
            if isinstance(v, dict):  # one level of nesting, flattened
                for k2, v2 in list(v.items())[:MAX_COLUMNS]:
                    _json_value(stats, (k, k2), f"{k}.{k2}", pos, v2)
            else:
                _json_value(stats, k, str(k), pos, v)
    if bad:
        return f"{bad} of {total} JSON lines sampled are not JSON"
    return None


def _json_value(stats: _Stats, key: Any, name: str, pos: int, v: Any) -> None:
    if isinstance(v, bool) or v is None:
        return
    if isinstance(v, str):
        text = v
    elif isinstance(v, int):
        text = str(v) if -(10**20) < v < 10**20 else ""
    else:
        return  # floats, lists, deeper objects: skipped
    stats.add(("k", repr(key)[:256]), lambda: clean_name(name, pos), text)


# ---- Parquet ------------------------------------------------------------------------------------


def _sample_parquet(ctx: ScanContext, path: str, stream: IO[bytes], size: int, stats: _Stats) -> str | None:
    """Rows of the first row groups into ``stats``; a problem string, or None."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        ctx.report(
            path,
            Severity.INFO,
            "dataset.not-sampled",
            "Parquet not sampled for PII: pyarrow is not installed",
        )
        return None
    start = stream.tell()
    if size < 12:
        return "Parquet file too short"
    stream.seek(start + size - 8)
    tail = stream.read(8)
    stream.seek(start)
    if tail[4:] != b"PAR1":
        return "Parquet footer magic missing"
    footer = int.from_bytes(tail[:4], "little")
    if footer > PARQUET_FOOTER_LIMIT or footer > size - 12:
        ctx.report(
            path,
            Severity.INFO,
            "dataset.not-sampled",
            f"Parquet metadata of {footer} bytes is over the {PARQUET_FOOTER_LIMIT}-byte limit; "
            "not sampled for PII",
            f"footer={footer}",
        )
        return None
    src = stream if start == 0 else _Window(stream, start, size)
    try:
        pf = pq.ParquetFile(src, pre_buffer=False, buffer_size=1 << 20)
        schema = pf.schema_arrow
        cols: list[str] = []
        names: dict[str, int] = {}
        for i, fld in enumerate(schema):
            t = fld.type
            if pa.types.is_dictionary(t):
                t = t.value_type
            if (
                pa.types.is_string(t)
                or pa.types.is_large_string(t)
                or getattr(pa.types, "is_string_view", lambda _t: False)(t)
                or pa.types.is_int64(t)
                or pa.types.is_uint64(t)
            ):
                if len(cols) >= MAX_COLUMNS:
                    stats.dropped_columns += 1
                    continue
                cols.append(fld.name)
                names[fld.name] = i
        if not cols:
            return None
        for batch in pf.iter_batches(batch_size=1000, columns=cols, use_threads=False):
            n = min(batch.num_rows, SAMPLE_ROWS - stats.rows)
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                idx = names.get(name, 0)
                for v in column.slice(0, n).to_pylist():
                    if v is None:
                        continue
                    text = v[:MAX_CELL] if isinstance(v, str) else str(v)
                    stats.add(idx, lambda name=name, idx=idx: clean_name(name, idx), text)  # type: ignore[misc]
            stats.rows += n
            if stats.rows >= SAMPLE_ROWS:
                break
    except (OSError, ValueError, pa.ArrowException, IndexError, KeyError) as e:
        return f"Parquet could not be read after {stats.rows} rows: {type(e).__name__}: {str(e)[:120]}"
    return None


class _Window(io.RawIOBase):
    """``size`` bytes of a seekable stream from ``start``, as a file of its own."""

    def __init__(self, raw: IO[bytes], start: int, size: int) -> None:
        self.raw, self.start, self.size, self.pos = raw, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = off if whence == 0 else self.pos + off if whence == 1 else self.size + off
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self.size - self.pos)
        k = left if n is None or n < 0 else min(n, left)
        self.raw.seek(self.start + self.pos)
        out = self.raw.read(k)
        self.pos += len(out)
        return out


# ---- the scanner --------------------------------------------------------------------------------


def scan_dataset(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Sample a CSV/TSV, JSON-lines or Parquet file for PII (see the module docstring), then run
    the checks its content would get otherwise (secrets for text; hidden pickles for binary).

    >>> import io
    >>> from mlflow_plugin.scanner.api import _new_context
    >>> from mlflow_plugin.scanner.context import Policy
    >>> data = b'{"name": "A", "card": "4111 1111 1111 1111"}\\n{"name": "B", "card": ""}\\n'
    >>> ctx = _new_context("t.jsonl", None, Policy(pii="medium"))
    >>> scan_dataset(ctx, "t.jsonl", io.BytesIO(data), len(data))
    >>> [(str(f.severity), f.rule, f.evidence) for f in ctx.report_obj.findings]
    [('medium', 'dataset.pii.card', 'card:1/1')]
    """
    seekable = is_seekable(stream)
    start = stream.tell() if seekable else 0
    head = stream.read(HEAD)
    if seekable:
        stream.seek(start)
    else:
        stream = _Chain(head, stream)  # type: ignore[assignment]
    legacy = content_format(head, path)
    stats = _Stats()
    if head[:4] == b"PAR1":
        if not seekable and size > PARQUET_SPOOL_LIMIT:
            ctx.report(
                path,
                Severity.INFO,
                "dataset.not-sampled",
                f"Parquet stream of {size} bytes not sampled for PII "
                f"(over the {PARQUET_SPOOL_LIMIT}-byte spool limit)",
                f"size={size}",
            )
            _legacy(ctx, path, stream, size, legacy, seekable=False)
            return
        f = ensure_seekable(stream, size)  # the stream itself if seekable, else a bounded spool
        try:
            start = f.tell()
            problem = _sample_parquet(ctx, path, f, size, stats)
            _finish(ctx, path, stats, problem)
            f.seek(start)
            _legacy(ctx, path, f, size, legacy, seekable=True)
        finally:
            if f is not stream:
                f.close()
        return
    sample = _TextSample(stream, size, keep=not seekable)
    base = path.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1].lower()
    if base.endswith((".jsonl", ".ndjson")):
        problem = _sample_jsonl(sample.lines(), stats)
    else:
        delimiter = "\t" if base.endswith(".tsv") else _sniff_delimiter(head)
        problem = _sample_csv(sample.lines(), delimiter, stats)
        if problem and sample.truncated and stats.rows > 0:
            problem = None  # the budget cut a quoted field: the rows before it were sampled
    _finish(ctx, path, stats, problem)
    if seekable:
        stream.seek(start)
        _legacy(ctx, path, stream, size, legacy, seekable=True)
    else:
        _legacy(ctx, path, sample.rest_stream(), size, legacy, seekable=False)


def _finish(ctx: ScanContext, path: str, stats: _Stats, problem: str | None) -> None:
    stats.report(ctx, path)
    if problem:
        ctx.report(path, Severity.INFO, "dataset.malformed", problem)


def _legacy(ctx: ScanContext, path: str, stream: IO[bytes], size: int, fmt: str, seekable: bool) -> None:
    """What the dispatcher would have done with this file, were it not a dataset."""
    from mlflow_plugin.scanner import api, secrets

    if fmt == "text":
        secrets.scan_text(ctx, path, stream, size)
    elif fmt == "json":
        api.scan_json_document(ctx, path, stream, size)
    elif fmt == "unknown":
        if seekable and size >= 22 and api._zip_by_tail(stream, size):
            from mlflow_plugin.scanner import containers

            ctx.report(
                path,
                Severity.MEDIUM,
                "dataset.polyglot",
                "a dataset file that is also a zip archive; scanned as one",
            )
            containers.scan_zip(ctx, path, stream, size)
        elif size <= api.HIDDEN_PICKLE_LIMIT:
            # as in the dispatcher: a probe tripping over data is not a finding
            with contextlib.suppress(Exception):
                api._hidden_pickles(ctx, path, stream, size)
