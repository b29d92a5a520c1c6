"""Draft kits: ``modelkit://`` URIs (``uri.py``), an MLflow run, logged model or trace kept as a ModelKit
that grows with every logged file (``draft.py``), and verified range downloads (``download.py``)."""
