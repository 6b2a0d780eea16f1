"""``python -m fl_jobs.aml submit ...`` (also available as ``python -m fl_jobs submit``)."""

from fl_jobs.aml.cli import app

app()
