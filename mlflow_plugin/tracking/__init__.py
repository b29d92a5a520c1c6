"""The MLflow plugin: the ``modelkit://`` artifact repository, the run-context provider, the server
policy and the entry points MLflow loads. The only package that plugs into MLflow's own classes."""
