"""``python -m fl_jobs.store orchestrator|silo``: the agents without the rest of the CLI (what
the Azure ML agent steps run, so their environment needs only the agents' imports)."""

from fl_jobs.store.cli import agent_app

if __name__ == "__main__":
    agent_app(prog_name="fl-sandbox agent")
