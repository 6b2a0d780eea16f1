"""A whole local job, as ``python -m fl_jobs run`` does it: validate and prepare, federate,
train the baselines, track, report."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from fl_jobs.config import JobConfig
from fl_jobs.local.federation import FederationResult, RoundRecord, run_federation
from fl_jobs.local.prepare import PreparedJob, prepare_job
from fl_jobs.progress import RoundProgress


@dataclass
class JobResult:
    federation: FederationResult
    summary: dict[str, Any]
    plot: Path
    summary_path: Path
    tracking_uri: str | None
    tracking_error: str | None


def _start_tracker(config: JobConfig) -> tuple[ThreadPoolExecutor, Future[Any]] | None:
    """MLflow's import and store set-up take seconds: do them while the silos train."""
    if not config.tracking:
        return None
    from fl_jobs.tracking import RunTracker

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow")
    return pool, pool.submit(RunTracker, config)


def run_job(
    config: JobConfig, *, console: Console, prepared: PreparedJob | None = None
) -> JobResult:
    """Run the job described by ``config`` and write its plot, summary and MLflow run."""
    from fl_jobs.baselines import run_baselines
    from fl_jobs.report import compare, print_comparison, summary_dict, write_plot, write_summary

    start = time.perf_counter()
    prepared = prepared or prepare_job(config)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tracker_job = _start_tracker(config)
    records: list[RoundRecord] = []
    with RoundProgress(console, prepared) as progress:

        def on_round(record: RoundRecord) -> None:
            records.append(record)
            progress.update(record)

        result = run_federation(config, prepared=prepared, progress=on_round)
        baselines = None
        if config.baselines:
            progress.note("training baselines (centralized, local-only)")
            baselines = run_baselines(prepared)

    plot = write_plot(out / "metric_per_round.png", result, baselines, partition=config.partition)
    summary_path = Path(config.summary) if config.summary else out / "summary.json"
    comparison = compare(result, baselines)
    print_comparison(console, comparison, config.rounds)
    if result.epsilon_per_silo:
        worst = max(result.epsilon_per_silo.values())
        console.print(
            f"privacy: DP-SGD (clip {config.clip_norm}, noise x{config.noise_multiplier}); "
            f"each silo's data is ({worst:.2f}, {config.target_delta:g})-DP at worst",
            soft_wrap=True,
        )

    tracking_uri, tracking_error, run_id = None, None, None
    if tracker_job is not None:
        pool, future = tracker_job
        try:
            tracker = future.result()
            for record in records:
                tracker.log_round(record.round, record.global_metrics, record.silo_metrics)
            finals = {f"final_federated_{k}": v for k, v in result.final_metrics.items()}
            if baselines is not None:
                finals[f"final_centralized_{comparison.metric_name}"] = comparison.centralized
                finals[f"final_local_mean_{comparison.metric_name}"] = comparison.local_mean
                finals[f"final_local_worst_{comparison.metric_name}"] = comparison.local_worst
            tracker.log_final(finals, [plot])
            tracker.end()
            tracking_uri, run_id = tracker.uri, tracker.run_id
        except Exception as exc:  # tracking must not lose a finished run's results
            tracking_error = f"{type(exc).__name__}: {exc}"
        finally:
            pool.shutdown(wait=True)

    artifacts = {"plot": str(plot), "global_model": str(out / "global_model.pt")}
    if tracking_uri:
        artifacts["mlflow_tracking_uri"] = tracking_uri
        artifacts["mlflow_run_id"] = str(run_id)
    summary = summary_dict(
        config, result, baselines, wall_seconds=time.perf_counter() - start, artifacts=artifacts
    )
    write_summary(summary_path, summary)
    console.print(f"plot:    {plot}", soft_wrap=True)
    console.print(f"summary: {summary_path}", soft_wrap=True)
    if tracking_uri:
        from fl_jobs.tracking import ui_command

        console.print(f"mlflow:  {ui_command(tracking_uri)}", soft_wrap=True)
    elif tracking_error:
        console.print(f"[yellow]mlflow tracking failed, results kept on disk: {tracking_error}")
    console.print(f"wall time: {summary['wall_seconds']:.1f} s")
    return JobResult(result, summary, plot, summary_path, tracking_uri, tracking_error)
