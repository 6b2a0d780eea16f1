"""The ML core: local training (plain SGD and DP-SGD) on one silo's data arrays, evaluation,
aggregation and the screening of updates, the strategies' silo hook, partitioning, seeds,
devices and model files. It knows nothing of a job's config: callers hand it plain values
(``TrainParams``, arrays, tensors). It imports only ``fl_jobs.errors``, ``fl_jobs.examples``
(an example's model and data shape) and itself; never the config, the silo side, the round
engines, the run, the command line or a transport (tests/test_package_layers.py holds this).
"""
