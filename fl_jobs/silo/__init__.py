"""What a silo keeps and runs on its own side: its side of a round (``silo_round``), its
store, secret, privacy ledger and silo-level DP, its cached data folders and the upload of
prepared data. It may import the core, the config, the examples, the strategies and the
secure-aggregation silo guard, and the strategy factory of ``fl_jobs.rounds.job_parts``; it
does not import the run, the command line or a transport.
"""
