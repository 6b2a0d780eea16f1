"""The round engines shared by the local and the store transports: the synchronous server
round (``round_engine``), asynchronous rounds (``async_engine``, ``fedbuff``), what a
federation is after each round (``federation_state``), checkpoints and resuming, the baselines
and what a job's settings become in each engine (``job_parts``). It may import the core, the
config, the silo side, the strategies and the transports' interfaces (``fl_jobs.local``,
``fl_jobs.store``); the run's lifecycle and the command line sit above it.
"""
