"""``python -m fl_jobs``."""

from fl_jobs.cli.app import app

if __name__ == "__main__":
    app()
