"""The entry scripts, run through their components' command lines from a staged code snapshot
(as Azure ML runs them), give the same global model as the local federation."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fl_jobs.aml.code_snapshot import CodeSnapshot, stage_code
from fl_jobs.aml.component_loader import aggregate_yaml, component_yaml, update_port
from fl_jobs.config import JobConfig, load_job_config
from fl_jobs.run.manifest import FederationManifest
from scripts.prepare_silo_data import prepare_silo_data

_PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.([a-z0-9_]+)\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]")


def command_line(component: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """The component's command with every ``${{inputs.x}}``/``${{outputs.x}}`` filled in, the
    way Azure ML substitutes mounted paths and parameter values; an optional ``$[[...]]``
    part stays only when its inputs are given."""
    command = _OPTIONAL.sub(
        lambda m: (
            m.group(1)
            if all(p.group(2) in values for p in _PLACEHOLDER.finditer(m.group(1)))
            else ""
        ),
        component["command"],
    )
    text = _PLACEHOLDER.sub(lambda m: shlex.quote(str(values[m.group(2)])), command)
    argv = shlex.split(text)
    assert argv[:2] == ["python", "-m"]
    return [sys.executable, *argv[1:]]


def run_steps(commands: list[list[str]], cwd: Path) -> None:
    """Run independent steps side by side (silos train in parallel on Azure ML too)."""
    procs = [
        subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    for cmd, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out}\n{err}"


@dataclass
class CloudRound:
    code: CodeSnapshot
    data: Path
    models: Path
    manifest: FederationManifest
    config: JobConfig


def _config(tmp: Path) -> JobConfig:
    return load_job_config(
        None,
        {
            "example": "digits",
            "silos": 3,
            "rounds": 1,
            "seed": 11,
            "partition": "dirichlet:0.5",
            "output_dir": tmp / "local",
            "tracking": False,
            "baselines": False,
        },
    )


pytestmark = pytest.mark.slow  # one subprocess per step, each importing torch


@pytest.fixture(autouse=True)
def _restore_torch_threads() -> Iterator[None]:
    """Steps called in this process pin torch to one thread; give the session its setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cloud_round(
    manifest3: FederationManifest, tmp_path_factory: pytest.TempPathFactory
) -> CloudRound:
    """init, preprocess, train and aggregate for one round, as subprocesses from the snapshot."""
    tmp = tmp_path_factory.mktemp("aml-steps")
    config = _config(tmp)
    code = stage_code(tmp / "code", config)
    data, models = tmp / "data", tmp / "models"
    prepare_silo_data(manifest3, config, data, data_prefix="fl-sandbox/digits")
    silos = manifest3.silos
    test_data = data / "orchestrator" / "test"

    run_steps(
        [
            command_line(
                component_yaml("init"), {"test_data": test_data, "global_model": models / "g0"}
            )
        ]
        + [
            command_line(
                component_yaml("preprocess"),
                {
                    "raw_data": data / "silos" / silo.name,
                    "silo": silo.name,
                    "processed_data": data / "processed" / silo.name,
                },
            )
            for silo in silos
        ],
        code.path,
    )
    run_steps(
        [
            command_line(
                component_yaml("train"),
                {
                    "global_model": models / "g0",
                    "silo_data": data / "processed" / silo.name,
                    "silo": silo.name,
                    "silo_index": index,
                    "round": 1,
                    "model_update": models / "round-1" / silo.name,
                    "silo_store": tmp / "silo-stores" / silo.name,
                    "train_config": "none",  # FedAvg sends no per-round setting
                },
            )
            for index, silo in enumerate(silos)
        ],
        code.path,
    )
    updates = {update_port(i): models / "round-1" / s.name for i, s in enumerate(silos)}
    run_steps(
        [
            command_line(
                aggregate_yaml(len(silos)),
                {
                    "global_model": models / "g0",
                    "test_data": test_data,
                    "round": 1,
                    "new_global_model": models / "g1",
                    **updates,
                },
            )
        ],
        code.path,
    )
    return CloudRound(code, data, models, manifest3, config)


def test_one_round_matches_the_local_federation(cloud_round: CloudRound) -> None:
    from fl_jobs.core.model_io import load_weights
    from fl_jobs.local.federation import run_federation

    local = run_federation(cloud_round.config)
    cloud, meta = load_weights(cloud_round.models / "g1" / "model.pt")
    assert meta["round"] == 1 and meta["example"] == "digits"
    assert set(cloud) == set(local.final_weights)
    for key, tensor in local.final_weights.items():
        assert torch.equal(cloud[key], tensor), f"tensor {key} differs"
    metrics = json.loads((cloud_round.models / "g1" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(local.final_metrics["accuracy"], abs=0)
    assert metrics["n_updates"] == 3
    assert metrics["n_samples"] == sum(local.silo_sizes)


def test_each_silo_update_carries_samples_and_metrics(cloud_round: CloudRound) -> None:
    for silo in cloud_round.manifest.silos:
        folder = cloud_round.models / "round-1" / silo.name
        metrics = json.loads((folder / "metrics.json").read_text())
        raw = json.loads((cloud_round.data / "silos" / silo.name / "meta.json").read_text())
        assert metrics["silo"] == silo.name and metrics["round"] == 1
        assert metrics["n_samples"] == raw["n_samples"]
        assert metrics["train_loss"] > 0


def _aggregate_in_process(
    argv: list[str], cwd: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """The aggregate entry point called in this process (error paths need no fresh torch)."""
    from fl_jobs.aml.steps.aggregate import main

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)  # the command's paths are relative to the code snapshot
        code = main(argv[3:])  # drop "<python> -m fl_jobs.aml.steps.aggregate"
    return code, capsys.readouterr().err


def test_aggregate_rejects_a_tampered_update(
    cloud_round: CloudRound, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fl_jobs.core.model_io import load_weights, save_weights

    silo = cloud_round.manifest.silos[0]
    weights, meta = load_weights(cloud_round.models / "round-1" / silo.name / "update.pt")
    key = next(iter(weights))
    weights[key] = torch.zeros(3, 3)
    bad = tmp_path / "bad-update"
    save_weights(bad / "update.pt", weights, meta=meta)
    argv = command_line(
        aggregate_yaml(1),
        {
            "global_model": cloud_round.models / "g0",
            "test_data": cloud_round.data / "orchestrator" / "test",
            "round": 1,
            "new_global_model": tmp_path / "g1",
            "update_1": bad,
        },
    )
    code, err = _aggregate_in_process(argv, cloud_round.code.path, capsys)
    assert code == 3  # the only update is rejected: no quorum
    assert "round 1 lost its quorum: at most 0 of 1 selected silos can contribute" in err
    assert f"tensor {key!r} has shape (3, 3)" in err
    assert not (tmp_path / "g1").exists()


def test_aggregate_refuses_a_global_model_of_the_wrong_round(
    cloud_round: CloudRound, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = command_line(
        aggregate_yaml(1),
        {
            "global_model": cloud_round.models / "g1",
            "test_data": cloud_round.data / "orchestrator" / "test",
            "round": 1,
            "new_global_model": tmp_path / "g2",
            "update_1": cloud_round.models / "round-1" / cloud_round.manifest.silos[0].name,
        },
    )
    code, err = _aggregate_in_process(argv, cloud_round.code.path, capsys)
    assert code == 2
    assert "global model of round 1, but round 1 must start from round 0" in err


def test_train_refuses_a_model_of_another_example(
    cloud_round: CloudRound, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fl_jobs.aml.steps.train import main

    other = tmp_path / "code"
    other.mkdir()
    (other / "job.yaml").write_text("example: mnist\n")
    silo = cloud_round.manifest.silos[0]
    code = main(
        [
            "--config", str(other / "job.yaml"), "--silo", silo.name, "--silo-index", "0",
            "--round", "1", "--global-model", str(cloud_round.models / "g0"),
            "--silo-data", str(cloud_round.data / "processed" / silo.name),
            "--out", str(tmp_path / "u"),
        ]
    )  # fmt: skip
    assert code == 2
    assert "holds a model of example 'digits', but the job runs 'mnist'" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_preprocess_reads_an_on_premises_volume_as_it_reads_the_datastore(
    cloud_round: CloudRound, tmp_path: Path
) -> None:
    """An Arc silo with a data volume: the same component, given ``raw_path`` (the volume's
    mount in the pod) instead of ``raw_data``, prepares the same data."""
    from fl_jobs.core.silo_data import read_silo_data

    silo = cloud_round.manifest.silos[0].name
    mount = tmp_path / "mnt" / "silo-data"
    shutil.copytree(cloud_round.data / "silos" / silo, mount / silo)
    command = command_line(
        component_yaml("preprocess"),
        {"raw_path": mount / silo, "silo": silo, "processed_data": tmp_path / "processed"},
    )
    assert "--raw-path" in command and "--raw-data" not in command
    run_steps([command], cloud_round.code.path)
    from_volume = read_silo_data(tmp_path / "processed")
    from_datastore = read_silo_data(cloud_round.data / "processed" / silo)
    assert np.array_equal(from_volume.X, from_datastore.X)
    assert np.array_equal(from_volume.y, from_datastore.y)


def test_preprocess_reports_missing_raw_data(
    cloud_round: CloudRound, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fl_jobs.aml.steps.preprocess import main

    code = main(
        [
            "--config", str(cloud_round.code.path / "job.yaml"), "--silo", "silo1",
            "--raw-data", str(tmp_path / "nothing"), "--out", str(tmp_path / "p"),
        ]
    )  # fmt: skip
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_steps_log_metrics_under_the_local_runs_names(
    cloud_round: CloudRound, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a tracking store configured (Azure ML sets MLFLOW_TRACKING_URI for every step),
    train logs ``silo_<silo>_*`` and aggregate logs ``global_*``, step = round."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from fl_jobs.aml.steps import aggregate, train
    from fl_jobs.tracking.mlflow_run import round_metric_names, silo_metric_names

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(cloud_round.code.path)
    silo = cloud_round.manifest.silos[1]
    try:
        assert train.main(
            [
                "--config", "job.yaml", "--silo", silo.name, "--silo-index", "1",
                "--round", "1", "--global-model", str(cloud_round.models / "g0"),
                "--silo-data", str(cloud_round.data / "processed" / silo.name),
                "--out", str(tmp_path / "update"),
            ]
        ) == 0  # fmt: skip
        assert aggregate.main(
            [
                "--config", "job.yaml", "--round", "1",
                "--global-model", str(cloud_round.models / "g0"),
                "--test-data", str(cloud_round.data / "orchestrator" / "test"),
                "--update", str(tmp_path / "update"), "--out", str(tmp_path / "g1"),
            ]
        ) == 0  # fmt: skip
        run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
    finally:
        mlflow.end_run()
    logged = MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics
    expected = {
        *silo_metric_names(silo.name, {"train_loss": 0, "samples": 0}),
        *round_metric_names({"accuracy": 0, "loss": 0}),
    }
    assert expected <= set(logged)
    update = json.loads((tmp_path / "update" / "metrics.json").read_text())
    assert logged[f"silo_{silo.name}_samples"] == update["n_samples"]
    assert (
        logged["global_accuracy"]
        == json.loads((tmp_path / "g1" / "metrics.json").read_text())["accuracy"]
    )


#: Every stateful strategy (and FedProx, whose per-round setting reaches the train steps).
STATEFUL = {
    "fedavgm": {"server_momentum": 0.9},
    "fedprox": {"strategy": "fedprox", "strategy_options": ["mu=0.1"], "server_momentum": 0.5},
    "fedadam": {"strategy": "fedadam", "strategy_options": ["eta=0.03", "bias_correction=true"]},
    "fedyogi": {"strategy": "fedyogi", "strategy_options": ["eta=0.03"]},
    "fedadagrad": {"strategy": "fedadagrad"},
}


def _run_component(name: str, values: dict[str, Any], cwd: Path, n_silos: int = 0) -> int:
    """A step's entry point with the argv its component's command line gives it (the way
    Azure ML fills in paths and values), called in this process."""
    import importlib

    component = aggregate_yaml(n_silos) if name == "aggregate" else component_yaml(name)
    argv = command_line(component, values)
    module = importlib.import_module(argv[2])
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return int(module.main(argv[3:]))


@pytest.mark.parametrize("case", list(STATEFUL))
def test_stateful_strategies_carry_across_rounds_like_the_local_run(
    case: str, cloud_round: CloudRound, tmp_path: Path
) -> None:
    """The strategy's state lives in the aggregate step's process for one round only; it is
    carried in the global model folder, and the per-round silo settings reach the train
    steps: two rounds through the components' command lines match the local federation."""
    from fl_jobs.aml.steps.common import encode_silo_config
    from fl_jobs.core.model_io import load_weights
    from fl_jobs.local.federation import run_federation
    from fl_jobs.rounds.job_parts import build_strategy

    base = {"example": "digits", "silos": 3, "seed": 11, "partition": "dirichlet:0.5",
            "tracking": False, "baselines": False}  # fmt: skip
    config = load_job_config(
        None, {**base, **STATEFUL[case], "rounds": 2, "output_dir": tmp_path / "local"}
    )
    code = stage_code(tmp_path / "code", config)
    strategy = build_strategy(config)  # what the pipeline builder asks for train_config
    data, models = cloud_round.data, tmp_path / "models"
    test_data = data / "orchestrator" / "test"
    assert (
        _run_component("init", {"test_data": test_data, "global_model": models / "g0"}, code.path)
        == 0
    )
    silos = cloud_round.manifest.silos
    for rnd in (1, 2):
        updates = {}
        for index, silo in enumerate(silos):
            out = models / f"round-{rnd}" / silo.name
            values = {
                "global_model": models / f"g{rnd - 1}",
                "silo_data": data / "processed" / silo.name,
                "silo": silo.name,
                "silo_index": index,
                "round": rnd,
                "model_update": out,
                "silo_store": tmp_path / "silo-stores" / silo.name,
                "train_config": encode_silo_config(strategy.silo_config(rnd, silo.name)),
            }
            assert _run_component("train", values, code.path) == 0
            updates[update_port(index)] = out
        values = {
            "global_model": models / f"g{rnd - 1}",
            "test_data": test_data,
            "round": rnd,
            "new_global_model": models / f"g{rnd}",
            **updates,
        }
        assert _run_component("aggregate", values, code.path, len(silos)) == 0
    assert (models / "g1" / "server_state.pt").is_file()
    local = run_federation(config)
    cloud, _ = load_weights(models / "g2" / "model.pt")
    for key, tensor in local.final_weights.items():
        assert torch.equal(cloud[key], tensor), f"tensor {key} differs"


def test_aggregate_refuses_another_strategys_state(
    cloud_round: CloudRound, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = stage_code(
        tmp_path / "code", load_job_config(None, {"example": "digits", "strategy": "fedadam"})
    )
    values = {
        "global_model": cloud_round.models / "g0",  # initialised by a FedAvg job
        "test_data": cloud_round.data / "orchestrator" / "test",
        "round": 1,
        "new_global_model": tmp_path / "g1",
        "update_1": cloud_round.models / "round-1" / cloud_round.manifest.silos[0].name,
    }
    assert _run_component("aggregate", values, other.path, 1) == 2
    assert (
        "holds the state of strategy 'fedavg', but the job runs 'fedadam'"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "g1").exists()


def test_aggregate_screens_norms_and_records_the_rejection(
    cloud_round: CloudRound, tmp_path: Path
) -> None:
    """A robust strategy screens norms by default: a scaled-up update is left out, the round
    goes on (min_silos 3 of 4) and metrics.json names it."""
    from fl_jobs.core.model_io import load_weights, save_weights

    config = load_job_config(
        None, {"example": "digits", "silos": 4, "strategy": "median", "min_silos": 3}
    )
    code = stage_code(tmp_path / "code", config)
    silos = cloud_round.manifest.silos
    weights, meta = load_weights(cloud_round.models / "round-1" / silos[0].name / "update.pt")
    scaled = tmp_path / "scaled"
    save_weights(
        scaled / "update.pt",
        {k: v * 40 for k, v in weights.items()},
        meta={**meta, "silo": "scaled"},
    )
    values = {
        "global_model": cloud_round.models / "g0",
        "test_data": cloud_round.data / "orchestrator" / "test",
        "round": 1,
        "new_global_model": tmp_path / "g1",
        **{update_port(i): cloud_round.models / "round-1" / s.name for i, s in enumerate(silos)},
        update_port(len(silos)): scaled,
    }
    from fl_jobs.aml.steps.init import main as init_main

    with pytest.MonkeyPatch.context() as patch:  # this job's own round 0 (median's state)
        patch.chdir(code.path)
        init_main(["--config", "job.yaml", "--test-data", str(values["test_data"]),
                   "--out", str(tmp_path / "g0")])  # fmt: skip
    values["global_model"] = tmp_path / "g0"
    assert _run_component("aggregate", values, code.path, len(silos) + 1) == 0
    metrics = json.loads((tmp_path / "g1" / "metrics.json").read_text())
    assert (
        list(metrics["rejected"]) == ["scaled"] and "(limit 10x)" in metrics["rejected"]["scaled"]
    )
    assert metrics["n_updates"] == 3


def test_init_needs_the_test_sets_output_width(
    cloud_round: CloudRound, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fl_jobs.aml.steps.init import main

    silo = cloud_round.manifest.silos[0]
    code = main(
        [
            "--config", str(cloud_round.code.path / "job.yaml"),
            "--test-data", str(cloud_round.data / "silos" / silo.name),  # has no n_outputs
            "--out", str(tmp_path / "g0"),
        ]
    )  # fmt: skip
    assert code == 2
    assert "lacks a positive integer 'n_outputs'" in capsys.readouterr().err
    assert not (tmp_path / "g0").exists()


def test_train_draws_dp_noise_from_the_silo_secret_not_the_job_seed(
    cloud_round: CloudRound, tmp_path: Path
) -> None:
    """The train component, run as Azure ML would: with the same job seed, two silo stores
    (two secrets) give different DP updates, and the same store gives the same update again;
    the release is in that silo's ledger."""
    from fl_jobs.core.model_io import load_weights
    from fl_jobs.silo.silo_ledger import read_ledger
    from fl_jobs.silo.silo_store import LocalSiloStore

    dp = load_job_config(
        None,
        {
            **cloud_round.config.model_dump(include={"example", "silos", "rounds", "seed"}),
            "partition": "dirichlet:0.5",
            "output_dir": tmp_path / "local",
            "tracking": False,
            "baselines": False,
            "clip_norm": 1.0,
            "noise_multiplier": 1.0,
            "silo_metrics": "dp",
        },
    )
    code = stage_code(tmp_path / "code", dp)
    silo = cloud_round.manifest.silos[0]

    def train(store: str, out: str) -> dict[str, torch.Tensor]:
        values = {
            "global_model": cloud_round.models / "g0",
            "silo_data": cloud_round.data / "processed" / silo.name,
            "silo": silo.name,
            "silo_index": 0,
            "round": 1,
            "model_update": tmp_path / out,
            "silo_store": tmp_path / store,
            "train_config": "none",
        }
        run_steps([command_line(component_yaml("train"), values)], code.path)
        weights, _ = load_weights(tmp_path / out / "update.pt")
        return weights

    first, other, again = train("a", "u1"), train("b", "u2"), train("a", "u3")
    assert any(not torch.equal(first[k], other[k]) for k in first)
    assert all(torch.equal(first[k], again[k]) for k in first)
    ledger = read_ledger(LocalSiloStore(tmp_path / "a"))
    assert [e.get("mechanism") for e in ledger] == [None, "silo-metric"] * 2
    metrics = json.loads((tmp_path / "u1" / "metrics.json").read_text())
    assert metrics["dp_metric_noise_multiplier"] > 0 and "epsilon" in metrics


def test_train_with_dp_and_no_silo_store_is_refused(
    cloud_round: CloudRound, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fl_jobs.aml.steps.train import main

    (tmp_path / "job.yaml").write_text("example: digits\nclip_norm: 1.0\nnoise_multiplier: 1.0\n")
    silo = cloud_round.manifest.silos[0]
    code = main(
        [
            "--config", str(tmp_path / "job.yaml"), "--silo", silo.name, "--silo-index", "0",
            "--round", "1", "--global-model", str(cloud_round.models / "g0"),
            "--silo-data", str(cloud_round.data / "processed" / silo.name),
            "--out", str(tmp_path / "u"),
        ]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--silo-store" in err
    assert not (tmp_path / "u").exists()
