"""PII sampling in tabular datasets (issue 10, item 7): CSV/TSV, JSON lines, Parquet.

Files are written by pandas with synthetic PII (documented test card numbers, the IBAN standard's
examples, ``example.*`` addresses, fictional phone numbers) next to benign columns that look
numeric (IDs, prices, timestamps, 16-digit numbers failing Luhn, floats). Counts are exact, the
severity follows the policy, and no value — nor a piece of one — is in any report. The last test
publishes a run holding a CSV to a local OCI layout and reads the counts back from the kit's signed
scan attestation.
"""

from __future__ import annotations

import base64
import gc
import io
import json
import pickle
import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _envhelpers import clean_env, end_runs

from mlflow_plugin import packaging as ops
from mlflow_plugin.scanner import datasets
from mlflow_plugin.scanner.api import _new_context, scan_file, scan_kit
from mlflow_plugin.scanner.context import Limits, Policy
from mlflow_plugin.scanner.datasets import scan_dataset
from mlflow_plugin.scanner.detect import detect
from mlflow_plugin.scanner.report import ScanReport, Severity

ROWS = 500
CARDS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4111 1111 1111 1111",
    "5105-1051-0510-5100",
    "3530111333300000",
    "4012888888881881",
]
IBANS = [
    "GB82WEST12345698765432",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "GB82 WEST 1234 5698 7654 32",
]
PHONES = [
    "+44 20 7946 0958",
    "(555) 123-4567",
    "555-867-5309",
    "+14155552671",
    "+49 30 901820",
    "020 7946 0958",
]
SSNS_VALID = ["078-05-1120", "123-45-6789", "219-09-9999"]
SSNS_INVALID = ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"]


def luhn_ok(d: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def frame(seed: int = 7) -> pd.DataFrame:
    """500 rows: PII in a few columns at known counts, benign look-alikes everywhere else."""
    rng = random.Random(seed)
    non_luhn = []
    while len(non_luhn) < ROWS:
        d = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        if not luhn_ok(d):
            non_luhn.append(d)
    rows: dict[str, list[Any]] = {
        "id": list(range(1, ROWS + 1)),
        "price": [round(rng.uniform(1, 5000), 2) for _ in range(ROWS)],
        "ratio": [rng.random() for _ in range(ROWS)],
        "created": [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:{i % 60:02d}:00" for i in range(ROWS)],
        "day": [f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(ROWS)],
        "epoch_ms": [1_700_000_000_000 + i * 1000 for i in range(ROWS)],
        "account_no": non_luhn,  # 16 digits with a Visa prefix, failing Luhn
        "zip_code": [f"{rng.randint(1000, 99999):05d}" for _ in range(ROWS)],
        "version": [f"1.{i % 10}.{i % 7}" for i in range(ROWS)],
        "contact": [f"user{i}@example.org" if i < 37 else "n/a" for i in range(ROWS)],
        "phone": [PHONES[i % len(PHONES)] if i < 50 else "" for i in range(ROWS)],
        "card": [CARDS[i % len(CARDS)] if i < 20 else "-" for i in range(ROWS)],
        "iban": [IBANS[i % len(IBANS)] if i < 10 else "" for i in range(ROWS)],
        "ssn": [SSNS_VALID[i % 3] if i < 5 else SSNS_INVALID[i % 5] if i < 10 else "" for i in range(ROWS)],
        "notes": [
            f"call me at {PHONES[0]} or mail ann{i}@example.com" if i < 4 else "ok" for i in range(ROWS)
        ],
    }
    return pd.DataFrame(rows)


# (column, rule) -> evidence, for every format (empty strings and nulls are not values)
EXPECTED = {
    ("contact", "dataset.pii.email"): "email:37/500",
    ("notes", "dataset.pii.email"): "email:4/500",
    ("phone", "dataset.pii.phone"): "phone:50/50",
    ("card", "dataset.pii.card"): "card:20/500",
    ("iban", "dataset.pii.iban"): "iban:10/10",
    ("ssn", "dataset.pii.ssn"): "ssn:5/10",
}
PII_VALUES = [
    *CARDS,
    *(c.replace(" ", "").replace("-", "") for c in CARDS),
    *IBANS,
    *PHONES,
    *SSNS_VALID,
    *(f"user{i}@example.org" for i in range(37)),
    "ann0@example.com",
    "example.org",
    "41111111",
    "WEST1234",
    "7946 0958",
    "078-05",
]


def write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    return path


def pii(report: ScanReport) -> dict[tuple[str, str], str]:
    out = {}
    for f in report.findings:
        if f.rule.startswith("dataset.pii."):
            column = f.message.split('"')[1]
            assert (column, f.rule) not in out, f"two findings for {column} {f.rule}"
            out[(column, f.rule)] = f.evidence
    return out


def assert_no_values(report: ScanReport) -> None:
    text = report.dumps() + json.dumps(report.to_sarif())
    for v in PII_VALUES:
        assert v not in text, v


# ---- detection ---------------------------------------------------------------------------------------
def test_detect_datasets_by_content_and_name(tmp_path: Path) -> None:
    df = frame()
    heads = {}
    for name in ("t.csv", "t.tsv", "t.parquet", "t.jsonl"):
        heads[name] = write(df, tmp_path / name).read_bytes()[:4096]
        assert detect(heads[name], name) == "dataset", name
    assert detect(heads["t.parquet"], "weights.bin") == "dataset"  # PAR1 magic, whatever the name
    assert detect(heads["t.jsonl"], "x.ndjson") == "dataset"
    assert detect(heads["t.csv"], "t.txt") == "text"  # not by content alone: text stays text
    assert detect(heads["t.jsonl"], "t.json") == "text"
    # content beats extension: pickles, zips and archives named .csv stay what they are
    assert detect(pickle.dumps({"a": 1}, protocol=2), "data.csv") == "pickle"
    assert detect(b"cos\nsystem\n(S'true'\ntR.", "data.csv") == "pickle"
    assert detect(b"PK\x03\x04" + b"\x00" * 40, "data.csv") == "zip"
    assert detect(b"\x1f\x8b\x08\x00", "data.jsonl") == "gzip"
    assert detect(b"\x00\x01\x02binary", "data.jsonl") == "unknown"
    assert detect(b"", "data.csv") == "empty"
    assert detect("é,ü\n1,2\n".encode("latin-1"), "old.csv") == "dataset"  # another encoding
    # members of archives keep their content format (not sampled): bundle.zip!data/train.csv
    assert detect(heads["t.csv"], "bundle.zip!data/train.csv") == "text"
    assert detect(heads["t.parquet"], "d.zip!t.parquet") == "unknown"


def test_a_pickle_named_csv_is_scanned_as_a_pickle(tmp_path: Path) -> None:
    p = tmp_path / "train.csv"
    p.write_bytes(b"cos\nsystem\n(S'true'\ntR.")  # only ever scanned, never unpickled
    r = scan_file(str(p))
    assert r.files[0].format == "pickle"
    assert r.failed("critical"), r.dumps()
    assert not [f for f in r.findings if f.rule.startswith("dataset.")]


# ---- exact counts, no false positives ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["train.csv", "train.tsv", "train.parquet", "train.jsonl"])
def test_counts_per_column_are_exact(tmp_path: Path, name: str) -> None:
    p = write(frame(), tmp_path / name)
    r = scan_file(str(p))
    assert r.files[0].format == "dataset"
    assert pii(r) == EXPECTED, r.dumps()
    for f in r.findings:
        assert f.rule.startswith("dataset.pii."), f  # nothing else: no malformed, no secret
        assert f.severity is Severity.INFO  # the default policy
        assert f.path == name
    msg = next(f.message for f in r.findings if f.rule == "dataset.pii.email" and '"contact"' in f.message)
    assert msg == 'column "contact" (500 rows sampled): 37 of 500 values look like email addresses'
    assert_no_values(r)


def test_severity_follows_policy(tmp_path: Path) -> None:
    p = write(frame(), tmp_path / "t.csv")
    r = scan_file(str(p), policy=Policy(pii="medium"))
    assert {str(f.severity) for f in r.findings} == {"medium"}
    assert len(r.findings) == len(EXPECTED)
    assert r.failed("medium") and not r.failed("high")
    sarif = r.to_sarif()["runs"][0]["results"]
    assert {x["level"] for x in sarif} == {"warning"}
    assert_no_values(r)


def test_benign_numeric_columns_alone_are_clean(tmp_path: Path) -> None:
    df = frame()[["id", "price", "ratio", "created", "day", "epoch_ms", "account_no", "zip_code", "version"]]
    for name in ("b.csv", "b.parquet", "b.jsonl"):
        r = scan_file(str(write(df, tmp_path / name)))
        assert r.findings == [], r.dumps()


def test_card_numbers_as_integers_are_found(tmp_path: Path) -> None:
    df = pd.DataFrame({"pan": [4111111111111111, 5555555555554444, 4111111111111112, 12345]})
    for name in ("i.csv", "i.parquet", "i.jsonl"):
        r = scan_file(str(write(df, tmp_path / name)))
        assert pii(r) == {("pan", "dataset.pii.card"): "card:2/4"}, (name, r.dumps())


# ---- CSV parsing ---------------------------------------------------------------------------------------
def test_quoted_newlines_ragged_rows_and_no_header(tmp_path: Path) -> None:
    p = tmp_path / "odd.csv"
    p.write_text(
        'name,comment\n"Ann","multi\nline, with ann@example.org"\n"Bob","x",user1@example.org,extra\n"Cy"\n',
        newline="",
    )
    r = scan_file(str(p))
    assert pii(r) == {
        ("comment", "dataset.pii.email"): "email:1/2",
        ("column 3", "dataset.pii.email"): "email:1/1",
    }
    assert "(3 rows sampled)" in r.findings[0].message
    # no header: the first row holds PII, so columns are numbered
    q = tmp_path / "nohead.csv"
    q.write_text("1,ann@example.org,4111111111111111\n2,bob@example.org,5555555555554444\n")
    assert pii(scan_file(str(q))) == {
        ("column 2", "dataset.pii.email"): "email:2/2",
        ("column 3", "dataset.pii.card"): "card:2/2",
    }


def test_semicolons_latin1_and_utf16(tmp_path: Path) -> None:
    df = pd.DataFrame({"Straße": ["Köln", "Zürich"], "E-Mail": ["jürgen@example.de", "x"]})
    p = tmp_path / "de.csv"
    df.to_csv(p, index=False, sep=";", encoding="latin-1")
    r = scan_file(str(p))
    assert r.files[0].format == "dataset"
    assert pii(r) == {("E-Mail", "dataset.pii.email"): "email:1/2"}, r.dumps()
    q = tmp_path / "u16.csv"
    df.to_csv(q, index=False, encoding="utf-16")
    r = scan_file(str(q))
    assert pii(r) == {("E-Mail", "dataset.pii.email"): "email:1/2"}, r.dumps()


def test_hostile_column_names_are_sanitised(tmp_path: Path) -> None:
    long = "A" * 10_000
    names = ["con\x1b[31mtact\u202e\r", long, "\x07\x08\x7f", "ok name", "bob@example.org"]
    df = pd.DataFrame({n: [f"u{i}@example.org" for i in range(3)] for n in names})
    for name in ("hostile.csv", "hostile.parquet", "hostile.jsonl"):
        r = scan_file(str(write(df if name != "hostile.csv" else df.iloc[:, :4], tmp_path / name)))
        cols = sorted(c for c, _ in pii(r))
        expected = ["A" * 63 + "…", "column 3", "con[31mtact", "ok name"]
        if name != "hostile.csv":
            expected.append("column 5")  # a name that itself looks like PII is not shown
        assert cols == sorted(expected), (name, cols)
        text = r.dumps() + json.dumps(r.to_sarif())
        assert "\\u001b" not in text and "\\u202e" not in text and "\\u0007" not in text, name
        assert "bob@example.org" not in text and "A" * 65 not in text
        assert all(len(f.message) < 200 for f in r.findings)


def test_a_first_row_holding_pii_is_data_not_a_header(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("name,bob@example.org\nann,ann@example.org\n")
    assert pii(scan_file(str(p))) == {("column 2", "dataset.pii.email"): "email:2/2"}


# ---- JSON lines and Parquet ----------------------------------------------------------------------------
def test_jsonl_nested_and_malformed_lines(tmp_path: Path) -> None:
    lines = [
        {"user": {"email": "a@example.org", "tags": ["b@example.org"]}, "n": 1},
        {"user": {"email": "c@example.org"}, "n": 2.5},
        "not json {",
        {"user": "d@example.org"},
        [1, "e@example.org"],
    ]
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    r = scan_file(str(p))
    assert pii(r) == {
        ("user.email", "dataset.pii.email"): "email:2/2",
        ("user", "dataset.pii.email"): "email:1/1",
        ("1", "dataset.pii.email"): "email:1/1",
    }, r.dumps()
    bad = [f for f in r.findings if f.rule == "dataset.malformed"]
    assert len(bad) == 1 and bad[0].severity is Severity.INFO and "1 of 5" in bad[0].message


def test_parquet_only_string_columns_and_first_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = pd.DataFrame(
        {"email": [f"u{i}@example.org" for i in range(3000)], "x": [float(i) for i in range(3000)]}
    )
    p = tmp_path / "big.parquet"
    df.to_parquet(p, row_group_size=1000)
    monkeypatch.setattr(datasets, "SAMPLE_ROWS", 1500)  # the budget, not the scanner, is changed
    r = scan_file(str(p))
    assert pii(r) == {("email", "dataset.pii.email"): "email:1500/1500"}
    assert "(1500 rows sampled)" in r.findings[0].message


class OneWay(io.RawIOBase):
    """A stream that cannot seek, like a tar member read from a registry."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        chunk = self.inner.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_nonseekable_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write(frame(), tmp_path / "t.parquet").read_bytes()
    ctx = _new_context("t.parquet", None, None)
    scan_dataset(ctx, "t.parquet", OneWay(data), len(data))  # type: ignore[arg-type]
    assert pii(ctx.report_obj) == EXPECTED
    monkeypatch.setattr(datasets, "PARQUET_SPOOL_LIMIT", len(data) - 1)
    ctx = _new_context("t.parquet", None, None)
    scan_dataset(ctx, "t.parquet", OneWay(data), len(data))  # type: ignore[arg-type]
    assert [(f.rule, str(f.severity)) for f in ctx.report_obj.findings] == [("dataset.not-sampled", "info")]
    # CSV through a one-way stream: counted, and its secrets still checked
    key = "AKIA" + "QZ7RW3TY5UP2LK4M"
    csv_data = write(frame(), tmp_path / "t.csv").read_bytes() + f"501,0,0,,,,,,,,,,,,aws {key}\n".encode()
    ctx = _new_context("t.csv", None, None)
    scan_dataset(ctx, "t.csv", OneWay(csv_data), len(csv_data))  # type: ignore[arg-type]
    assert (
        pii(ctx.report_obj)[("contact", "dataset.pii.email")] == "email:37/500"
    )  # the new row has no contact
    assert "secret.aws-access-key-id" in {f.rule for f in ctx.report_obj.findings}


def test_malformed_datasets_are_findings(tmp_path: Path) -> None:
    data = write(frame(), tmp_path / "t.parquet").read_bytes()
    for name, blob in (
        ("cut.parquet", data[: len(data) // 2]),
        # fixed junk: random bytes after PAR1 are sometimes a valid pickle (P = PERSID) or
        # safetensors prefix (1 in ~300 draws), which are then rightly scanned as those
        (
            "junk.parquet",
            b"PAR1" + random.Random(20261207).randbytes(3000).replace(b"\n", b" ") + b"\x10\x00\x00\x00PAR1",
        ),
        ("short.parquet", b"PAR1"),
        ("huge-field.csv", b"a,b\n1," + b"x" * 200_000 + b"\n"),
        ("bad.jsonl", b"{not json\n[\n"),
    ):
        (tmp_path / name).write_bytes(blob)
        r = scan_file(str(tmp_path / name))
        rules = {f.rule for f in r.findings}
        assert "dataset.malformed" in rules, (name, r.dumps())
        assert "scan.malformed" not in rules
        assert max(f.severity for f in r.findings) <= Severity.LOW, (name, r.dumps())


def test_secrets_in_a_csv_are_still_found(tmp_path: Path) -> None:
    key = "AKIA" + "QZ7RW3TY5UP2LK4M"
    p = tmp_path / "leak.csv"
    p.write_text(f"id,note\n1,{key}\n2,ann@example.org\n")
    r = scan_file(str(p))
    rules = {f.rule: f for f in r.findings}
    assert rules["secret.aws-access-key-id"].severity is Severity.HIGH
    assert rules["dataset.pii.email"].evidence == "email:1/2"
    assert key not in r.dumps()


def test_a_parquet_zip_polyglot_is_scanned_as_a_zip(tmp_path: Path) -> None:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85q\x01Rq\x02.")
    p = tmp_path / "model.pt"
    p.write_bytes(b"PAR1" + b"\x00" * 64 + buf.getvalue())
    r = scan_file(str(p))
    assert r.files[0].format == "dataset"
    assert r.failed("critical") and "dataset.polyglot" in {f.rule for f in r.findings}, r.dumps()


# ---- bounded memory on a big file --------------------------------------------------------------------
def test_a_200mb_csv_is_sampled_in_bounded_memory(tmp_path: Path) -> None:
    chunk = frame().to_csv(index=False).encode()
    header, body = chunk.split(b"\n", 1)
    p = tmp_path / "big.csv"
    with open(p, "wb") as f:
        f.write(header + b"\n")
        while f.tell() < 200 << 20:
            f.write(body * 16)
    size = p.stat().st_size
    assert size >= 200 << 20
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        # the secrets check of text is bounded by max_text_scan (16 MiB by default, ~8 s of regexes):
        # 2 MiB keeps this test fast; the PII sample is the same whatever that limit
        r = scan_file(str(p), limits=Limits(max_text_scan=2 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.perf_counter() - t0
    print(f"200 MB CSV: peak {peak / 2**20:.1f} MiB traced, {elapsed:.2f} s")
    assert peak < 48 << 20, peak
    assert elapsed < 30, elapsed
    found = pii(r)
    assert found[("contact", "dataset.pii.email")] == f"email:{37 * 20}/{datasets.SAMPLE_ROWS}"
    assert "(10000 rows sampled)" in r.findings[0].message
    assert "secret.partial" in {f.rule for f in r.findings}  # secrets: the first 16 MiB, as for text


# ---- kits --------------------------------------------------------------------------------------------
def test_csv_member_of_a_kit_is_scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ctx = tmp_path / "ctx"
    (ctx / "data").mkdir(parents=True)
    write(frame(), ctx / "data" / "train.csv")
    write(frame(), ctx / "data" / "train.parquet")
    (ctx / "Kitfile").write_text(
        "manifestVersion: 1.0.0\ndatasets:\n  - {name: train, path: data/train.csv}\n"
        "  - {name: trainpq, path: data/train.parquet}\n"
    )
    ops.pack(str(ctx), f"oci:{tmp_path}/kits/d:v1")
    r = scan_kit(f"oci:{tmp_path}/kits/d:v1", policy=Policy(pii="low"))
    formats = {f.path: f.format for f in r.files}
    assert formats["data/train.csv"] == "dataset" and formats["data/train.parquet"] == "dataset"
    for member in ("data/train.csv", "data/train.parquet"):
        got = {}
        for f in r.findings:
            if f.path == member:
                got[(f.message.split('"')[1], f.rule)] = f.evidence
                assert f.severity is Severity.LOW
        assert got == EXPECTED, member
    assert_no_values(r)


def test_published_kit_attests_the_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    from mlflow_plugin import generate_keypair
    from mlflow_plugin.harden.publish import publish_run
    from mlflow_plugin.storage.locations import open_location
    from mlflow_plugin.trust import attach

    clean_env(monkeypatch, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_MODELKIT_SCAN_PII", "low")
    try:
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
        exp = client.create_experiment("pii", artifact_location=f"modelkit://{tmp_path}/kits/pii")
        run = client.create_run(exp)
        src = write(frame(), tmp_path / "customers.csv")
        client.log_artifact(run.info.run_id, str(src), "data")
        client.set_terminated(run.info.run_id)
        keys = generate_keypair(str(tmp_path / "keys"), password="")
        r = publish_run(run.info.run_id, "v1", key=keys.private, tracking_uri=client.tracking_uri)
    finally:
        end_runs()
    repo, _ = open_location(r.store)
    scans = [a for a in attach.list_attachments(repo, r.digest) if a.kind == "scan"]
    assert len(scans) == 1
    bundle = json.loads(scans[0].bundle)
    payload = base64.b64decode(bundle["dsseEnvelope"]["payload"])
    predicate = json.loads(payload)["predicate"]
    got = {
        (f["message"].split('"')[1], f["rule"]): f["evidence"]
        for f in predicate["findings"]
        if f["rule"].startswith("dataset.pii.") and f["path"].endswith("customers.csv")
    }
    assert got == EXPECTED, predicate["findings"]
    assert {f["severity"] for f in predicate["findings"] if f["rule"].startswith("dataset.pii.")} == {"low"}
    for v in PII_VALUES:
        assert v.encode() not in payload, v
