"""Hardening: publish a run as a scanned, attested, signed kit (``publish.py``), verify kits against a
trust policy (``verify.py``), read a run's facts for provenance (``run_facts.py``), and the catalog of
runs and kits the notebook UI lists (``catalog.py``)."""
