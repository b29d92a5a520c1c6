"""Seed a directory with a small MLflow + ModelKit world to try the notebook widgets and the panel.

``python -m jupyter_ext.seed DIR`` (what ``make lab`` runs with ``DIR=lab-data``) creates, in ``DIR``:

* ``mlflow.db`` -- a SQLite tracking store;
* ``kits/`` -- a local OCI layout (the experiment's ``modelkit://`` artifact location; no
  registry is started: everything stays on disk);
* ``keys/cosign.key`` and ``keys/cosign.pub`` -- a signing key pair with an *empty* passphrase
  (a demo key: never use it for anything real);
* ``modelkit.toml`` -- the admin configuration: ``[signing] key`` and ``trusted_keys``;
* the experiment ``fraud-detection`` with five runs on a synthetic fraud data set:

  ======================  =====================================================================
  run                     what it shows
  ======================  =====================================================================
  ``logreg-C0.1``         published as ``v1``: scanned, attested, signed (verifies)
  ``logreg-C1``           a draft: a logged sklearn model, ready to publish
  ``forest-50``           a draft: another model, other params and metrics
  ``logreg-extra-index``  its model's ``requirements.txt`` adds ``--extra-index-url``: a **high** finding
                          that blocks publishing at the default threshold
  ``notebook-model``      a ``PythonModel`` defined in a notebook (``__main__``), pickled by value:
                          a **medium** ``pickle.embedded-code`` finding that does not block
  ======================  =====================================================================

Running it again adds nothing (runs are found by name; the published run is not published
again; existing keys are kept). It prints what it made and the variables to export.

>>> import tempfile
>>> made = seed(tempfile.mkdtemp(), runs=["logreg-C0.1"], quiet=True)   # one run: fast
>>> sorted(made.runs), made.published["logreg-C0.1"].endswith("/kits/fraud-detection:v1")
(['logreg-C0.1'], True)
>>> sorted(made.env)
['MLFLOW_MODELKIT_CONFIG', 'MLFLOW_TRACKING_URI']
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPERIMENT = "fraud-detection"
# the model's requirements.txt pulls from a second index: a dependency-confusion risk
EXTRA_INDEX = ("--extra-index-url https://pypi.internal.example.com/simple", "scikit-learn")
NOTEBOOK_MODEL = textwrap.dedent(
    """
    import mlflow.pyfunc
    import pandas as pd

    class FraudRules(mlflow.pyfunc.PythonModel):
        \"\"\"Hand-written rules, as a data scientist would define them in a notebook cell.\"\"\"

        def predict(self, context, model_input, params=None):
            score = (model_input["f0"] > 1.0).astype(float) * 0.7 + (model_input["f1"] < -1.0) * 0.3
            return pd.DataFrame({"fraud_score": score})
    """
)


@dataclass
class Seeded:
    """What :func:`seed` made (or found): paths, run ids by name, published references, env vars."""

    directory: Path
    tracking_uri: str
    config: Path
    keys: tuple[str, str]  # (private, public)
    runs: dict[str, str] = field(default_factory=dict)  # run name -> run id
    created: list[str] = field(default_factory=list)  # run names created by this call
    published: dict[str, str] = field(default_factory=dict)  # run name -> reference

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "MLFLOW_MODELKIT_CONFIG": str(self.config)}


def _data() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=600, n_features=6, n_informative=4, weights=[0.93], random_state=7)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y


def _log_sklearn(
    model: Any,
    params: dict[str, Any],
    requirements: Iterable[str] = ("scikit-learn",),
    trusted: Iterable[str] = (),
) -> None:
    import mlflow
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    X, y = _data()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)[:, 1]
    pred = model.predict(X_test)
    mlflow.log_params(params)
    mlflow.log_metrics(
        {
            "auc": float(roc_auc_score(y_test, proba)),
            "accuracy": float(accuracy_score(y_test, pred)),
            "f1": float(f1_score(y_test, pred)),
        }
    )
    mlflow.sklearn.log_model(
        model, name="model", pip_requirements=list(requirements), skops_trusted_types=list(trusted) or None
    )


def _logreg(c: float) -> Callable[[Path], None]:
    def log(_tmp: Path) -> None:
        from sklearn.linear_model import LogisticRegression

        _log_sklearn(LogisticRegression(C=c, max_iter=500), {"model": "logistic-regression", "C": c})

    return log


def _forest(_tmp: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=50, max_depth=6, random_state=0)
    params = {"model": "random-forest", "n_estimators": 50, "max_depth": 6}
    _log_sklearn(model, params, trusted=["sklearn.tree._tree.Tree"])


def _extra_index(_tmp: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=0.5, max_iter=500)
    _log_sklearn(model, {"model": "logistic-regression", "C": 0.5}, EXTRA_INDEX)


def _notebook_model(_tmp: Path) -> None:
    import mlflow

    namespace: dict[str, Any] = {"__name__": "__main__"}  # as if defined in a notebook cell
    exec(NOTEBOOK_MODEL, namespace)
    X, y = _data()
    score = namespace["FraudRules"]().predict(None, X)["fraud_score"]
    mlflow.log_params({"model": "rules", "threshold": 0.5})
    mlflow.log_metrics({"accuracy": float(((score >= 0.5).astype(int) == y).mean())})
    mlflow.pyfunc.log_model(name="model", python_model=namespace["FraudRules"](), pip_requirements=["mlflow"])


RUNS: dict[str, Callable[[Path], None]] = {
    "logreg-C0.1": _logreg(0.1),
    "logreg-C1": _logreg(1.0),
    "forest-50": _forest,
    "logreg-extra-index": _extra_index,
    "notebook-model": _notebook_model,
}
PUBLISH = {"logreg-C0.1": "v1"}


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def seed(directory: str | Path, *, runs: Iterable[str] | None = None, quiet: bool = False) -> Seeded:
    """Create (or complete) the lab world in ``directory``; see the module docstring.

    ``runs`` restricts the runs to create (default: all of :data:`RUNS`). Idempotent."""
    import tempfile
    import warnings

    import mlflow
    from mlflow import MlflowClient

    from mlflow_plugin import generate_keypair, load_config, publish_run

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    home = Path(directory).resolve()
    (home / "kits").mkdir(parents=True, exist_ok=True)
    keys_dir = home / "keys"
    private, public = keys_dir / "cosign.key", keys_dir / "cosign.pub"
    if private.exists() and public.exists():
        say(f"keys:       {keys_dir} (kept)")
    else:
        keys_dir.mkdir(exist_ok=True)
        generate_keypair(str(keys_dir), password="")
        say(f"keys:       {private} (empty passphrase: a demo key) and {public}")
    config = home / "modelkit.toml"
    toml = (
        "# made by `python -m jupyter_ext.seed`: the lab's admin configuration (demo key, no passphrase)\n"
        "[signing]\n"
        f"key = {json.dumps(str(private))}\n"
        f"trusted_keys = [{json.dumps(str(public))}]\n"
    )
    say(f"config:     {config}{' (written)' if _write_if_changed(config, toml) else ' (kept)'}")
    cfg = load_config({"MLFLOW_MODELKIT_CONFIG": str(config)})  # the lab's, not the caller's env

    uri = f"sqlite:///{home}/mlflow.db"
    made = Seeded(home, uri, config, (str(private), str(public)))
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        exp_id = client.create_experiment(
            EXPERIMENT, artifact_location=f"modelkit://{home}/kits/{EXPERIMENT}"
        )
        say(f"experiment: {EXPERIMENT} (created, artifacts in {home / 'kits' / EXPERIMENT})")
    else:
        exp_id = exp.experiment_id
        say(f"experiment: {EXPERIMENT} (kept)")
    existing = {}
    for r in client.search_runs([exp_id], max_results=1000):
        if r.info.status == "FINISHED":
            existing[r.info.run_name] = r
        elif r.info.run_name in RUNS:  # an interrupted earlier seed: made again below
            client.delete_run(r.info.run_id)
    wanted = list(RUNS) if runs is None else list(runs)
    unknown = [name for name in wanted if name not in RUNS]
    if unknown:
        raise ValueError(f"unknown seed runs {unknown}: choose from {list(RUNS)}")

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's notes about type hints and signatures
            for name in wanted:
                if name in existing:
                    made.runs[name] = existing[name].info.run_id
                    say(f"run:        {name} {made.runs[name]} (kept)")
                    continue
                with mlflow.start_run(experiment_id=exp_id, run_name=name) as run:
                    mlflow.set_tag("seed", "jupyter_ext.seed")
                    RUNS[name](Path(tmp))
                made.runs[name] = run.info.run_id
                made.created.append(name)
                say(f"run:        {name} {run.info.run_id} (created)")
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(before)

    for name, tag in PUBLISH.items():
        if name not in made.runs:
            continue
        ref = client.get_run(made.runs[name]).data.tags.get("modelkit.ref")
        if ref:
            say(f"published:  {name} as {ref} (kept)")
        else:
            r = publish_run(made.runs[name], tag, key=str(private), tracking_uri=uri, config=cfg)
            ref = r.reference
            say(f"published:  {name} as {r.reference}@{r.digest} (signed, scan {r.verdict})")
        made.published[name] = ref
    say("")
    say("No registry is started: the kits live in the local OCI layout above.")
    say("To use this world from a shell or a notebook server:")
    for k, v in made.env.items():
        say(f"  export {k}={v}")
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_ext.seed",
        description="Seed DIR with a SQLite tracking store, a local OCI layout, a demo key pair, "
        "an admin config and the experiment 'fraud-detection' (idempotent).",
    )
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--quiet", action="store_true", help="print only the export lines")
    args = parser.parse_args(argv)
    try:
        made = seed(args.directory, quiet=args.quiet)
    except Exception as e:  # one line, as everywhere in this project
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"error: seeding {args.directory} failed: {first}", file=sys.stderr)
        return 1
    if args.quiet:
        for k, v in made.env.items():
            print(f"export {k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
