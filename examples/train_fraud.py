"""Train a small fraud classifier and log it to MLflow exactly as usual.

The only difference from a plain MLflow script is the experiment's artifact location: a
``modelkit://`` URI. Every artifact of the run lands in a ModelKit (here: a local OCI image
layout, the embedded default; ``modelkit://HOST:PORT/team/fraud`` would use a registry).

    python examples/train_fraud.py --tracking-uri sqlite:///demo-out/mlflow.db \\
        --artifact-location modelkit:///abs/path/demo-out/kits/team/fraud
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import RocCurveDisplay, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--artifact-location", required=True)
    ap.add_argument("--data-dir", default="demo-out/data")
    a = ap.parse_args()

    mlflow.set_tracking_uri(a.tracking_uri)
    exp = mlflow.get_experiment_by_name("fraud")
    exp_id = exp.experiment_id if exp else mlflow.create_experiment("fraud", artifact_location=a.artifact_location)

    X, y = make_classification(n_samples=2000, n_features=8, weights=[0.95], random_state=7)
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols).assign(label=y)
    os.makedirs(a.data_dir, exist_ok=True)
    train_csv = os.path.join(a.data_dir, "train.csv")
    df.to_csv(train_csv, index=False)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=7, stratify=y)
    params = {"C": 0.5, "max_iter": 500, "class_weight": "balanced"}

    with mlflow.start_run(experiment_id=exp_id, run_name="logreg-baseline") as run:
        mlflow.log_params(params)
        model = make_pipeline(StandardScaler(), LogisticRegression(**params)).fit(X_tr, y_tr)
        auc = roc_auc_score(y_te, model.predict_proba(X_te)[:, 1])
        mlflow.log_metric("auc", auc)
        mlflow.log_metric("positive_rate", float(np.mean(y)))
        mlflow.log_input(mlflow.data.from_pandas(df, source=train_csv, name="transactions"), context="training")
        mlflow.log_artifact(train_csv, "data")
        mlflow.log_dict({"features": cols, "label": "label", "params": params}, "config.json")
        fig, ax = plt.subplots(figsize=(4, 4))
        RocCurveDisplay.from_estimator(model, X_te, y_te, ax=ax)
        mlflow.log_figure(fig, "plots/roc.png")
        # pip_requirements only skips MLflow's slow requirement inference; everything else is default
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=X_te[:2], pip_requirements=["scikit-learn", "numpy"]
        )
    print(json.dumps({"run_id": run.info.run_id, "model_id": info.model_id, "auc": round(auc, 4),
                      "artifact_uri": run.info.artifact_uri}))


if __name__ == "__main__":
    main()
