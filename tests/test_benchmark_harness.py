"""Every benchmark reports through one harness (benchmarks/harness.py): it records the machine,
the start, the duration and the command line, and writes the one schema results.py reads.
Read from the source (AST), so this runs in a second; the smoke tests run the scripts."""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path

import pytest

from benchmarks import harness
from benchmarks.report import RESULTS_DIR, BenchmarkReport, Table, Target, load_report
from benchmarks.results import render

BENCHMARKS = Path(harness.__file__).resolve().parent
#: The harness and the schema: the only modules that build and write a report.
REPORTING = {"harness", "report"}
#: Run by a benchmark as a separate process (the Flower environment, a fresh interpreter);
#: they hand raw figures back to that benchmark in a file or on stdout, never a report.
CONTENDER_PROCESSES = {"flower_aggregate", "flower_digits", "flower_strategies", "infra_probe"}


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(), filename=str(path))
        for path in sorted(BENCHMARKS.glob("*.py"))
        if path.stem != "__init__"
    }


def _calls(tree: ast.AST) -> set[str]:
    """Dotted names of everything called in ``tree`` (``json.dump``, ``harness.start``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            names.add(ast.unparse(node.func))
    return names


def _writes_json(tree: ast.AST) -> bool:
    """``path.write_text(json.dumps(...))`` or ``fh.write(json.dumps(...))`` anywhere."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"write_text", "write"}
            and any("json.dumps" in _calls(arg) for arg in node.args)
        ):
            return True
    return False


def _names(tree: ast.AST) -> set[str]:
    found = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found |= {alias.name for alias in node.names}
    return found


def _scripts(modules: dict[str, ast.Module]) -> set[str]:
    """Benchmark scripts: their parser is the shared one (``--out``, ``--smoke``)."""
    return {name for name, tree in modules.items() if "parser_for" in _calls(tree)}


def test_every_benchmark_script_starts_and_finishes_through_the_harness() -> None:
    modules = _modules()
    scripts = _scripts(modules)
    assert scripts >= {path.stem for path in RESULTS_DIR.glob("*.json")}, (
        "a results JSON without a benchmark script that writes it"
    )
    for name in sorted(scripts):
        calls = _calls(modules[name])
        assert "harness.start" in calls, f"benchmarks/{name}.py does not call harness.start"
        assert any(call.endswith(".finish") for call in calls), (
            f"benchmarks/{name}.py does not write its report with BenchmarkRun.finish"
        )


def test_no_benchmark_builds_or_writes_a_report_itself() -> None:
    offenders = []
    for name, tree in _modules().items():
        if name in REPORTING:
            continue
        calls = _calls(tree)
        for call in sorted(calls & {"json.dump", "write_report", "BenchmarkReport", "collect"}):
            offenders.append(f"benchmarks/{name}.py calls {call}")
        for used in sorted(_names(tree) & {"write_report", "Clock"}):
            offenders.append(f"benchmarks/{name}.py uses {used}")
        if name not in CONTENDER_PROCESSES and _writes_json(tree):
            offenders.append(f"benchmarks/{name}.py writes JSON to a file itself")
    assert not offenders, "\n".join(offenders)


def test_the_harness_records_machine_start_duration_and_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    out = tmp_path / "example.json"
    args = argparse.Namespace(out=out, smoke=True)
    run = harness.start("example", args, ["--smoke", "--out", str(out), "--k", "10 20"])
    path = run.finish(
        "An example",
        parameters={"k": [10, 20]},
        targets=[Target(name="t", target="> 1", measured="2x", met=True)],
        tables=[Table(title="rows", columns=["a"], rows=[[1.5]])],
        notes=["a note"],
    )
    assert path == out and capsys.readouterr().out == f"wrote {out}\n"
    report = load_report(out)
    assert report.benchmark == "example" and report.smoke
    assert report.command == shlex.join(
        ["python", "-m", "benchmarks.example", "--smoke", "--out", str(out), "--k", "10 20"]
    )
    assert report.machine.usable_cores >= 1 and report.started_utc.endswith("+00:00")
    assert report.duration_s >= 0
    assert f"`{report.command}`: started {report.started_utc}" in render([report])


def test_every_stored_result_is_in_the_one_schema() -> None:
    """Every stored JSON has every field of the schema, in the order write_report writes."""
    fields = list(BenchmarkReport.model_fields)
    for path in sorted(RESULTS_DIR.glob("*.json")):
        report = load_report(path)
        assert list(json.loads(path.read_text())) == fields, path.name
        assert report.command is None or report.command.startswith(
            f"python -m benchmarks.{report.benchmark}"
        )
