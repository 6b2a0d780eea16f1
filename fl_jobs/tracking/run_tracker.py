"""One MLflow run per job, logged from a background thread.

MLflow's import and a new store's set-up take seconds, so they happen while the silos train:
every call is queued to one daemon thread, in order. That thread logs through
``MlflowClient`` with the run id spelled out, never through MLflow's fluent API, which keeps
the active run per thread (the cause of a job appearing as two runs). A failure disables the
tracker and is reported once (:attr:`RunTracker.error`); the job's results stay on disk.

- Params once, per-round metrics (global, per silo, silos left out or whose update was
  rejected, with DP each silo's epsilon spent so far), and at the end the final
  metrics, the plot, the summary and the final model as artifacts; status FINISHED, FAILED or
  KILLED.
- The default store is ``runs/mlflow.db``, shared by the runs of the project folder (see
  :mod:`fl_jobs.tracking.mlflow_run`); a SQLite store's artifacts are stored beside it
  (``mlflow-artifacts/``), not in ``./mlruns`` of whatever the current directory is.
- Runs are named for what ran (example, strategy, silos, start time) and tagged with the
  settings (``fl_sandbox.*``, the whole job file in ``fl_sandbox.config``); the settings are
  params too.
- The run id is written to ``tracking.json`` in the run folder as soon as the run exists; a
  resumed job continues that run and logs only the rounds it has not logged yet.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fl_jobs.config import JobConfig
from fl_jobs.local.federation import RoundRecord
from fl_jobs.tracking.mlflow_run import (
    EXPERIMENT,
    flat_params,
    round_metric_names,
    run_name,
    run_tags,
    silo_metric_names,
    tracking_uri_for,
)
from fl_jobs.tracking.tracking_store import (
    TrackingUnavailable,
    describe_store_error,
    ensure_sqlite_store,
    moved_store,
    probe,
    quiet_http_client,
    sqlite_path,
)

TRACKING_FILE = "tracking.json"
ARTIFACTS_DIR = "mlflow-artifacts"


def read_tracking_file(run_dir: Path) -> dict[str, Any]:
    """``{"tracking_uri": ..., "run_id": ...}`` of a run folder, or {} if it has none."""
    try:
        data = json.loads((Path(run_dir) / TRACKING_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class RunTracker:
    """The MLflow run of one job; every method returns at once (work is queued)."""

    def __init__(
        self,
        config: JobConfig,
        run_dir: Path,
        *,
        resume_run_id: str | None,
        recorded_uri: str | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.uri = tracking_uri_for(config, recorded_uri)
        self.run_id: str | None = None
        self.error: str | None = None
        #: Things worth a warning that did not stop tracking (e.g. a rebuilt cache).
        self.notes: list[str] = []
        self.resumed = False
        self._client: Any = None
        self._logged_up_to = 0
        #: (work, run even after a failure): barriers of wait() always run, logging does not.
        self._tasks: queue.Queue[tuple[Callable[[], None], bool]] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="mlflow", daemon=True)
        self._thread.start()
        self._put(lambda: self._open(config, resume_run_id))

    # -- called by the job (any thread) ----------------------------------------------------

    def log_round(self, record: RoundRecord) -> None:
        self._put(lambda: self._log_rounds([record]))

    def log_history(self, history: list[RoundRecord]) -> None:
        """Rounds a resumed run finished before it stopped (already-logged ones are skipped)."""
        self._put(lambda: self._log_rounds(history))

    def finish(self, status: str, metrics: Mapping[str, float], artifacts: list[Path]) -> None:
        self._put(lambda: self._finish(status, metrics, artifacts))

    def wait(self, timeout: float) -> bool:
        """Wait until everything queued so far is done; False if ``timeout`` ran out."""
        done = threading.Event()
        self._tasks.put((done.set, True))
        return done.wait(timeout)

    def _put(self, work: Callable[[], None]) -> None:
        self._tasks.put((work, False))

    # -- the tracker thread ----------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            work, always = self._tasks.get()
            if self.error is not None and not always:
                continue
            try:
                work()
            except TrackingUnavailable as exc:
                self.error = str(exc)
            except Exception as exc:  # any MLflow failure: report once, keep the run going
                self.error = describe_store_error(self.uri, exc)

    def _open(self, config: JobConfig, resume_run_id: str | None) -> None:
        moved = moved_store(self.uri, self.run_dir)
        if moved is not None:  # the run folder was moved, with its store inside
            self.uri = moved
        quiet_http_client()
        probe(self.uri)
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        # After the import: MLflow sets its own loggers to INFO when it loads. Failures come
        # back as one line (self.error); their logs and warnings would only add noise.
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=r"(mlflow|alembic)(\.|$)")

        db = sqlite_path(self.uri)
        artifact_root = None
        if db is not None:
            # Artifacts go beside the store: in the run folder for the default store.
            artifact_root = db.resolve().parent / ARTIFACTS_DIR
            self.notes += ensure_sqlite_store(db, artifact_root)
        client = MlflowClient(tracking_uri=self.uri)
        if resume_run_id is not None:
            try:
                run = client.get_run(resume_run_id)
            except Exception:
                run = None
            if run is not None:
                client.update_run(resume_run_id, status="RUNNING")
                self._client, self.run_id, self.resumed = client, resume_run_id, True
                self._logged_up_to = _last_logged_round(client, resume_run_id)
                return
        experiment_id = _experiment_id(client, artifact_root)
        run = client.create_run(
            experiment_id, run_name=run_name(config), tags=run_tags(config, self.run_dir)
        )
        self._client, self.run_id = client, run.info.run_id
        params = [Param(k, v) for k, v in flat_params(config).items()]
        for start in range(0, len(params), 100):
            client.log_batch(self.run_id, params=params[start : start + 100])
        (self.run_dir / TRACKING_FILE).write_text(
            json.dumps({"tracking_uri": self.uri, "run_id": self.run_id}, indent=2) + "\n"
        )

    def _log_rounds(self, records: list[RoundRecord]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics: list[Metric] = []
        for record in records:
            if record.round <= self._logged_up_to:
                continue
            values = round_metric_names(record.global_metrics)
            for silo, silo_values in record.silo_metrics.items():
                values.update(silo_metric_names(silo, silo_values))
            values["silos_dropped"] = float(len(record.dropped))
            values["silos_rejected"] = float(len(record.rejected))
            if record.secure_aggregation is not None:
                values["secure_aggregation_attempts"] = float(record.secure_aggregation["attempts"])
                values["secure_aggregation_recovered"] = float(
                    len(record.secure_aggregation["recovered"])
                )
            if record.silo_dp is not None:  # silo-level DP: epsilon spent so far
                values["silo_dp_epsilon"] = float(record.silo_dp["epsilon"])
            metrics += [Metric(k, v, now, record.round) for k, v in values.items()]
            self._logged_up_to = record.round
        for start in range(0, len(metrics), 1000):
            self._client.log_batch(self.run_id, metrics=metrics[start : start + 1000])
        for record in records:
            for silo, reason in record.dropped.items():
                self._client.set_tag(
                    self.run_id, f"fault.round_{record.round:04d}.{silo}", reason[:4000]
                )
            for silo, reason in record.rejected.items():
                self._client.set_tag(
                    self.run_id, f"rejected.round_{record.round:04d}.{silo}", reason[:4000]
                )

    def _finish(self, status: str, metrics: Mapping[str, float], artifacts: list[Path]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        finals = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        if finals:
            self._client.log_batch(self.run_id, metrics=finals)
        for path in artifacts:
            if Path(path).is_file():
                self._client.log_artifact(self.run_id, str(path))
        self._client.set_terminated(self.run_id, status=status)


def _experiment_id(client: Any, artifact_root: Path | None) -> str:
    """The fl-sandbox experiment's id, created if missing; jobs that start together may both
    try to create it, and the one that loses uses the winner's."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    location = artifact_root.as_uri() if artifact_root is not None else None
    try:
        return str(client.create_experiment(EXPERIMENT, artifact_location=location))
    except Exception:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def _last_logged_round(client: Any, run_id: str) -> int:
    """The last round whose metrics a (resumed) run already holds."""
    run = client.get_run(run_id)
    steps = [
        m.step
        for key in run.data.metrics
        if key.startswith("global_")
        for m in client.get_metric_history(run_id, key)
    ]
    return max(steps, default=0)
