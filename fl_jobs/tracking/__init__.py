"""MLflow tracking of a run: the run's name, tags, params and metric names, shared with the
Azure ML steps (``mlflow_run``), getting to a tracking store safely (``tracking_store``) and
the background logger of one run per job (``run_tracker``). It may import the config, the
silo side's cache folder and the local federation's round records; the run imports it.
"""
