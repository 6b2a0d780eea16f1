"""A whole local job, as ``python -m fl_jobs run`` does it: take the run folder, federate
(checkpointing every round), train the baselines, track, report.

Whatever ends the job (success, a lost quorum, divergence, a failure, Ctrl-C, SIGTERM) the
finished rounds are kept: the checkpoint, the final model, the summary and the plot of what
is done are written, the MLflow run gets its status (FINISHED, FAILED or KILLED), and one line
says what happened and how to resume. Exit codes: 0 finished, 1 failed, 3 quorum lost,
4 collapsed (the model stayed no better than untrained), 128 + the signal number when stopped
by a signal (130 for Ctrl-C, 129 SIGHUP, 141 SIGPIPE, 143 SIGTERM).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from fl_jobs.cli.cli_errors import EXIT_FAILED, EXIT_OK, error_line, invoked_as, write_crash_log
from fl_jobs.cli.plurals import rounds_kept
from fl_jobs.config import JobConfig
from fl_jobs.core.model_io import save_weights
from fl_jobs.errors import CollapseError, DivergenceError, JobStopped, QuorumLostError
from fl_jobs.local.federation import (
    FederationResult,
    FederationState,
    RoundRecord,
    initial_state,
    result_from_state,
    run_federation,
)
from fl_jobs.local.prepare import PreparedJob, prepare_job
from fl_jobs.rounds.checkpoint import CHECKPOINT_FILE, CheckpointWriter
from fl_jobs.rounds.resume import ResumePlan, checkpoint_settings
from fl_jobs.run.output_guard import guarded_stdout
from fl_jobs.run.progress import RoundProgress
from fl_jobs.run.run_folder import RunPlan, open_run, plan_new_run
from fl_jobs.run.stop_signals import JobInterrupted, StopSignals
from fl_jobs.run.storage_failure import (
    EXIT_STORAGE,
    STORAGE_STATUS,
    release_space,
    remove_leftovers,
    reserve_space,
    storage_failure,
)
from fl_jobs.silo.silo_cache import cache_root

if TYPE_CHECKING:
    from fl_jobs.rounds.baselines import Baselines
    from fl_jobs.tracking.run_tracker import RunTracker

#: MLflow status per way a job ends.
MLFLOW_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", STORAGE_STATUS: "KILLED"}
#: How long the end of a job waits for MLflow: long after success, short when stopping.
TRACKER_WAIT_S = {"finished": 60.0, "stopped": 10.0}
PLOT_FILE = "metric_per_round.png"
MODEL_FILE = "global_model.pt"


@dataclass
class JobResult:
    federation: FederationResult
    summary: dict[str, Any]
    plot: Path
    summary_path: Path
    tracking_uri: str | None
    tracking_error: str | None
    #: finished | interrupted | quorum_lost | diverged | collapsed | storage_failed | failed
    status: str
    exit_code: int
    #: The one line printed on stderr when the job did not finish.
    message: str | None
    run_dir: Path


@dataclass
class _Stop:
    """How a job that did not finish ended."""

    status: str
    exit_code: int
    what: str
    #: Whether ``--resume`` can continue it (not after divergence: it would diverge again).
    resumable: bool = True
    fix: str | None = None


def run_job(
    config: JobConfig,
    *,
    console: Console,
    prepared: PreparedJob | None = None,
    plan: RunPlan | None = None,
    resume: ResumePlan | None = None,
) -> JobResult:
    """Run the job described by ``config`` in its own run folder (or continue ``resume``)."""
    prepared = prepared or prepare_job(config)
    if resume is not None:
        plan = resume.plan
    plan = plan or plan_new_run(config)
    run = open_run(plan, config)
    try:
        config = config.model_copy(
            update={"run": config.run.model_copy(update={"output_dir": run.path})}
        )
        prepared.config = config
        for note in run.notes:
            console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
        return _Job(config, prepared, console, run.path, resume).run()
    finally:
        run.release()


class _Job:
    def __init__(
        self,
        config: JobConfig,
        prepared: PreparedJob,
        console: Console,
        out: Path,
        resume: ResumePlan | None,
    ) -> None:
        self.config = config
        self.prepared = prepared
        self.console = console
        self.out = out
        self.resume_state = resume.state if resume is not None else None
        self.state: FederationState | None = self.resume_state
        self.tracker: RunTracker | None = None
        self.checkpoints: CheckpointWriter | None = None
        self._tracker_error_shown = False
        #: A storage failure met while writing the end's files.
        self._storage: _Stop | None = None

    def run(self) -> JobResult:
        start = time.perf_counter()
        config = self.config
        if config.run.checkpoints:
            self.checkpoints = CheckpointWriter(
                self.out / CHECKPOINT_FILE, lambda: checkpoint_settings(config, self.prepared)
            )
        self.tracker = self._start_tracker()
        result: FederationResult | None = None
        baselines: Baselines | None = None
        stop: _Stop | None = None
        completed = self.state.round if self.state else 0
        with StopSignals() as signals, guarded_stdout() as output:
            try:
                reserve_space(self.out)
                with RoundProgress(self.console, self.prepared, completed=completed) as progress:

                    def on_state(state: FederationState) -> None:
                        self.state = state
                        if self.checkpoints is not None:
                            self.checkpoints.submit(state)  # written while the next round trains
                        if self.tracker is not None:
                            self.tracker.log_round(state.history[-1])

                    def on_round(record: RoundRecord) -> None:
                        progress.update(record)
                        self._show_tracker_error()

                    result = run_federation(
                        config,
                        prepared=self.prepared,
                        progress=on_round,
                        resume=self.resume_state,
                        on_state=on_state,
                        notify=progress.note,
                        cache=cache_root(),
                    )
                    if config.run.baselines:
                        from fl_jobs.rounds.baselines import run_baselines

                        progress.note("training baselines (centralized, local-only)")
                        baselines = run_baselines(self.prepared, progress=progress.note)
            except JobInterrupted as exc:
                stop = _Stop("interrupted", exc.exit_code, f"stopped by {exc.label}")
            except QuorumLostError as exc:
                fix = exc.fix or "or lower --min-silos"
                stop = _Stop(
                    "quorum_lost", exc.exit_code, exc.what, resumable=exc.resumable, fix=fix
                )
            except DivergenceError as exc:
                stop = _Stop("diverged", exc.exit_code, exc.what, resumable=False, fix=exc.fix)
            except CollapseError as exc:
                stop = _Stop("collapsed", exc.exit_code, exc.what, resumable=False, fix=exc.fix)
            except JobStopped as exc:
                stop = _Stop("failed", exc.exit_code, exc.what, fix=exc.fix)
            except Exception as exc:  # FederationError, or anything we did not foresee
                stop = self._storage_stop(exc)
                if stop is None:
                    log = write_crash_log(exc, self.out)
                    stop = _Stop(
                        "failed",
                        EXIT_FAILED,
                        f"{_one_line(exc)} (traceback in {log})",
                    )
            finally:
                signals.stopping()
                output.armed = False
            return self._finish(result, baselines, stop, time.perf_counter() - start)

    def _storage_stop(self, exc: BaseException) -> _Stop | None:
        """A full disk or an I/O error in the run folder, as a stop (None: something else).
        Half-written files go at once: on a full disk that is what makes room for the
        summary."""
        failure = storage_failure(exc, self.out, self._checkpoint_bytes())
        if failure is None:
            return None
        remove_leftovers(self.out)
        return _Stop(STORAGE_STATUS, EXIT_STORAGE, failure.what, fix=failure.fix)

    def _write(self, write: Callable[[], object]) -> bool:
        """Write one of the end's files; a storage failure is kept as the job's stop (the
        other files are still tried), anything else is raised."""
        try:
            write()
        except (OSError, RuntimeError) as exc:
            stop = self._storage_stop(exc)
            if stop is None:
                raise
            self._storage = self._storage or stop
            return False
        return True

    def _checkpoint_bytes(self) -> int:
        """About what a checkpoint takes (weights, and as much again for strategy state)."""
        state = self.state
        if state is None:
            return 1_000_000
        size = sum(t.numel() * t.element_size() for t in state.global_weights.values())
        return 2 * size + 64_000

    def _start_tracker(self) -> RunTracker | None:
        if not self.config.run.tracking:
            return None
        from fl_jobs.tracking.run_tracker import RunTracker, read_tracking_file

        # A new folder has no tracking.json; a resumed run continues the run recorded there,
        # in the store it started in.
        recorded = read_tracking_file(self.out)
        tracker = RunTracker(
            self.config,
            self.out,
            resume_run_id=recorded.get("run_id"),
            recorded_uri=recorded.get("tracking_uri"),
        )
        if self.resume_state is not None:
            tracker.log_history(self.resume_state.history)
        return tracker

    def _show_tracker_error(self) -> None:
        tracker = self.tracker
        while tracker is not None and tracker.notes:
            sys.stderr.write(f"warning: {tracker.notes.pop(0)}\n")
            sys.stderr.flush()
        if tracker is not None and tracker.error and not self._tracker_error_shown:
            self._tracker_error_shown = True
            sys.stderr.write(f"warning: {tracker.error}\n")
            sys.stderr.flush()

    # -- the end, however it came ----------------------------------------------------------

    def _finish(
        self,
        result: FederationResult | None,
        baselines: Baselines | None,
        stop: _Stop | None,
        wall: float,
    ) -> JobResult:
        from fl_jobs.run.report import (
            compare,
            print_comparison,
            summary_dict,
            write_plot,
            write_summary,
        )

        config, out = self.config, self.out
        release_space(out)
        if self.checkpoints is not None:
            try:
                self.checkpoints.flush()  # the last finished round is on disk before we say so
            except RuntimeError as exc:
                storage = self._storage_stop(exc)
                if stop is None or (storage is not None and stop.status == "failed"):
                    stop = storage
                if stop is None:
                    log = write_crash_log(exc, out)
                    stop = _Stop("failed", EXIT_FAILED, f"{exc} (traceback in {log})")
        if result is None:
            state = self.state or initial_state(self.prepared)
            result = result_from_state(config, self.prepared, state, wall)
            weights, rounds = state.global_weights, state.round
            self._write(lambda: save_weights(out / MODEL_FILE, weights, meta={"rounds": rounds}))
        done = len(result.history)
        plot = out / PLOT_FILE
        self._write(
            lambda: write_plot(plot, result, baselines, partition=config.federation.partition)
        )
        if self._storage is not None and (stop is None or stop.status == "failed"):
            stop = self._storage
        status = "finished" if stop is None else stop.status
        summary_path = Path(config.run.summary) if config.run.summary else out / "summary.json"
        comparison = compare(result, baselines)
        if stop is None:
            print_comparison(self.console, comparison, config.federation.rounds)
            self._print_privacy(result)
        maintenance = None
        if stop is None and baselines is not None and self.prepared.example.name == "turbofan":
            from fl_jobs.run.maintenance_report import evaluate, print_report

            maintenance = evaluate(self.prepared, result, baselines, out)
            print_report(self.console, maintenance)

        tracker, wait = self.tracker, TRACKER_WAIT_S["finished" if stop is None else "stopped"]
        if tracker is not None and not tracker.wait(wait):
            tracker.error = tracker.error or (
                f"MLflow did not answer within {wait:.0f} s; the run's results are on disk"
            )
        tracking_uri = run_id = None
        if tracker is not None and tracker.run_id and not tracker.error:
            tracking_uri, run_id = tracker.uri, tracker.run_id

        resume_command = f"{invoked_as()} run --resume {out}"
        line = None
        if stop is not None:
            kept = f"{rounds_kept(done)} in {out}" if done else f"no round finished ({out})"
            if stop.status == "interrupted":
                when = (
                    f"after round {done} of {config.federation.rounds}"
                    if done
                    else "before round 1"
                )
                line = f"{stop.what} {when}; {kept} - resume with: {resume_command}"
            elif stop.status == STORAGE_STATUS:
                line = error_line(f"{stop.what}; {kept}", f"{stop.fix}, then resume with: ")
                line += resume_command
            elif stop.resumable:
                fix = f"resume with: {resume_command}" + (f" ({stop.fix})" if stop.fix else "")
                line = error_line(f"{stop.what}; {kept}", fix)
            else:
                line = error_line(f"{stop.what}; {kept}", stop.fix)
        artifacts = {
            "run_dir": str(out),
            "plot": str(plot),
            "global_model": str(out / MODEL_FILE),
        }
        model_dir = None
        if stop is None:  # the final global model as an MLflow model (fl_jobs.serving)
            from fl_jobs.serving.run_end import model_uri, save_run_model

            model_dir = save_run_model(self.prepared, out / MODEL_FILE, out)
            if model_dir is not None:
                artifacts["mlflow_model"] = str(model_dir)
                if tracking_uri and run_id:
                    artifacts["mlflow_model_uri"] = model_uri(str(run_id))
        if maintenance is not None:
            artifacts["maintenance_plot"] = str(maintenance.plot)
        if config.run.checkpoints and (out / CHECKPOINT_FILE).exists():
            artifacts["checkpoint"] = str(out / CHECKPOINT_FILE)
        if tracking_uri:
            artifacts["mlflow_tracking_uri"] = tracking_uri
            artifacts["mlflow_run_id"] = str(run_id)
        outcome: dict[str, Any] = {
            "status": status,
            "exit_code": EXIT_OK if stop is None else stop.exit_code,
            "stop_reason": None if stop is None else stop.what,
            "resume_command": None if stop is None or not stop.resumable else resume_command,
        }
        summary = summary_dict(
            config, result, baselines, wall_seconds=wall, artifacts=artifacts, outcome=outcome
        )
        if maintenance is not None:
            summary["maintenance"] = maintenance.summary()
        if not self._write(lambda: write_summary(summary_path, summary)) and line is not None:
            line += f" (the summary could not be written to {summary_path})"
        if tracker is not None and tracking_uri:
            # final_* only for a finished run: a stopped one would log them at every stop
            finals: dict[str, float | None] = {
                f"final_federated_{k}": v for k, v in result.final_metrics.items()
            }
            if stop is not None:
                finals = {}
            elif baselines is not None:
                finals[f"final_centralized_{comparison.metric_name}"] = comparison.centralized
                finals[f"final_local_mean_{comparison.metric_name}"] = comparison.local_mean
                finals[f"final_local_worst_{comparison.metric_name}"] = comparison.local_worst
            tracker.finish(
                MLFLOW_STATUS.get(status, "FAILED"),
                {k: v for k, v in finals.items() if v is not None},
                [plot, summary_path, out / MODEL_FILE],
            )
            if not tracker.wait(wait):
                tracker.error = tracker.error or (
                    f"MLflow did not finish logging within {wait:.0f} s; results are on disk"
                )
            elif model_dir is not None and run_id:
                from fl_jobs.serving.run_end import log_run_model

                log_run_model(tracking_uri, str(run_id), model_dir)

        self.console.print(f"plot:    {plot}", soft_wrap=True, markup=False, highlight=False)
        self.console.print(
            f"summary: {summary_path}", soft_wrap=True, markup=False, highlight=False
        )
        if tracking_uri:
            from fl_jobs.tracking.mlflow_run import ui_command

            self.console.print(
                f"mlflow:  {ui_command(tracking_uri)}",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
        self._show_tracker_error()
        if stop is None:
            self.console.print(f"wall time: {summary['wall_seconds']:.1f} s")
        if line is not None:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        return JobResult(
            federation=result,
            summary=summary,
            plot=plot,
            summary_path=summary_path,
            tracking_uri=tracking_uri,
            tracking_error=None if tracker is None else tracker.error,
            status=status,
            exit_code=outcome["exit_code"],
            message=line,
            run_dir=out,
        )

    def _print_privacy(self, result: FederationResult) -> None:
        config = self.config
        if not result.epsilon_per_silo:
            return
        worst = max(result.epsilon_per_silo.values())
        delta = f"{config.privacy.target_delta:g}" if config.privacy.target_delta else "0.1/n"
        noise = f"noise x{config.privacy.noise_multiplier}"
        if config.privacy.target_epsilon is not None:
            used = [
                m["dp_noise_multiplier"]
                for r in result.history
                for m in r.silo_metrics.values()
                if "dp_noise_multiplier" in m
            ]
            low, high = (min(used), max(used)) if used else (0.0, 0.0)
            span = f"x{low:.3g}" if low == high else f"x{low:.3g}-{high:.3g} by silo"
            noise = f"noise {span} for epsilon {config.privacy.target_epsilon:g}"
        self.console.print(
            f"privacy: DP-SGD (clip {config.privacy.clip_norm}, {noise}); each silo's data is "
            f"({worst:.2f}, {delta})-DP at worst (replace-one adjacency, n public)",
            soft_wrap=True,
        )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
