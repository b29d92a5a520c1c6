"""Reload the model logged by train_fraud.py from its ModelKit and check its predictions."""

from __future__ import annotations

import sys

import mlflow
import numpy as np
from sklearn.datasets import make_classification

tracking_uri, run_id, model_id = sys.argv[1:4]
mlflow.set_tracking_uri(tracking_uri)
X, _ = make_classification(n_samples=2000, n_features=8, weights=[0.95], random_state=7)
by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
by_id = mlflow.pyfunc.load_model(f"models:/{model_id}")
a, b = by_run.predict(X[:50]), by_id.predict(X[:50])
assert np.array_equal(a, b), "the two loads disagree"
print(f"reloaded runs:/{run_id}/model and models:/{model_id} from the kit: "
      f"{len(a)} predictions, {int(a.sum())} flagged as fraud, identical")
