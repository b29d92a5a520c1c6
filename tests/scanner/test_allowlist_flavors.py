"""Globals that real MLflow flavors pickle are allowed (issue 10, item 8: bench/mlflow_corpus.py).

The pickles are built opcode by opcode with the globals that ``mlflow.statsmodels.save_model`` wrote
for an OLS results object (statsmodels 0.15, bench/out/mlflow-corpus/benign/statsmodels): statsmodels
is not a test dependency of the project, and none is needed to write the bytes. Nothing here is ever
unpickled.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest

from mlflow_plugin.scanner import api
from mlflow_plugin.scanner.allowlist import judge
from mlflow_plugin.scanner.report import ScanReport, Severity

STATSMODELS_OLS_GLOBALS = [
    ("statsmodels.regression.linear_model", "RegressionResultsWrapper"),
    ("statsmodels.regression.linear_model", "OLSResults"),
    ("statsmodels.regression.linear_model", "OLS"),
    ("statsmodels.base.data", "ModelData"),
]


def _short(s: str) -> bytes:
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _obj(module: str, name: str, state: bytes = b"}") -> bytes:
    """``module.name`` rebuilt the way pickle protocol 4 does: STACK_GLOBAL, NEWOBJ, BUILD."""
    return _short(module) + _short(name) + b"\x93" + b")\x81" + state + b"b"


def statsmodels_results_pickle() -> bytes:
    """A results wrapper holding results that hold the model and its data: the structure
    mlflow.statsmodels writes, each object with an attribute dict."""
    (wm, wn), (rm, rn), (mm, mn), (dm, dn) = STATSMODELS_OLS_GLOBALS
    data = _obj(dm, dn, b"}" + _short("k_constant") + b"K\x01s")
    model = _obj(mm, mn, b"}" + _short("data") + data + b"s")
    results = _obj(rm, rn, b"}" + _short("model") + model + b"s")
    wrapper = _obj(wm, wn, b"}" + _short("_results") + results + b"s")
    return b"\x80\x04" + wrapper + b"."


def _scan(data: bytes, name: str = "model.statsmodels") -> ScanReport:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        return api.scan_file(str(p))


@pytest.mark.parametrize(("module", "name"), STATSMODELS_OLS_GLOBALS)
def test_statsmodels_results_classes_allowed(module: str, name: str) -> None:
    assert judge(module, name).allowed


def test_statsmodels_results_pickle_is_clean() -> None:
    data = statsmodels_results_pickle()
    import pickletools

    pickletools.dis(io.BytesIO(data), out=io.StringIO())  # well-formed (static disassembly only)
    rep = _scan(data)
    assert not rep.failed(Severity.MEDIUM), [(f.rule, f.evidence) for f in rep.findings]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("statsmodels.iolib.smpickle", "load_pickle"),  # loads another pickle
        ("statsmodels.iolib.foreign", "StataWriter"),  # writes files
        ("statsmodels.datasets.utils", "Dataset"),  # dataset loaders read files / the network
        ("statsmodels.sandbox.regression", "Gmm"),
        ("statsmodels.tools.tests.test_tools", "TestX"),
        ("statsmodels.regression.linear_model", "OLS.from_formula"),  # a method, not a class
        ("statsmodels.regression.linear_model", "yule_walker"),  # a function
    ],
)
def test_statsmodels_outside_the_rule(module: str, name: str) -> None:
    assert not judge(module, name).allowed


def test_statsmodels_pickle_with_payload_still_critical() -> None:
    """The rule does not hide a payload next to real statsmodels objects."""
    body = statsmodels_results_pickle()[2:-1]
    payload = b"cposix\nsystem\n" + _short("true") + b"\x85R0"
    rep = _scan(b"\x80\x04" + payload + body + b".")
    assert rep.failed(Severity.CRITICAL)


def test_real_statsmodels_pickle_is_clean(tmp_path) -> None:
    """The real object, pickled as mlflow.statsmodels does."""
    import numpy as np
    import statsmodels.api as sm  # a test dependency: the real object must scan clean

    x = np.arange(20, dtype=float)
    res = sm.OLS(2 * x + 1, sm.add_constant(x)).fit()
    p = tmp_path / "model.statsmodels"
    res.save(str(p), remove_data=False)
    rep = api.scan_file(str(p))
    assert not rep.failed(Severity.MEDIUM), [(f.rule, f.evidence) for f in rep.findings]
