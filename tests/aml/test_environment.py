"""The components' shared environment: exact pins, in step with requirements.txt."""

from __future__ import annotations

from pathlib import Path

import yaml

from fl_jobs.aml.component_loader import COMPONENT_NAMES, COMPONENTS_DIR, component_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONDA_FILE = COMPONENTS_DIR.parent / "environment" / "conda.yaml"


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{line!r} is not pinned to an exact version"
        pins[name.lower()] = version
    return pins


def test_every_pip_requirement_is_pinned_and_matches_the_project() -> None:
    conda = yaml.safe_load(CONDA_FILE.read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    cloud = _pins(pip_section)
    project = _pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    shared = set(cloud) & set(project)
    assert {"torch", "numpy", "scikit-learn", "pydantic", "pyyaml"} <= shared
    assert {name: cloud[name] for name in shared} == {name: project[name] for name in shared}


def test_every_component_uses_the_shared_environment_on_a_curated_image() -> None:
    for name in COMPONENT_NAMES:
        data = component_yaml(name)
        assert data["$schema"].endswith("/commandComponent.schema.json")
        env = data["environment"]
        assert env["image"].startswith("mcr.microsoft.com/azureml/")
        assert (COMPONENTS_DIR / env["conda_file"]).resolve() == CONDA_FILE.resolve()


def test_each_component_file_loads_on_its_own() -> None:
    from azure.ai.ml import load_component

    for name in COMPONENT_NAMES:
        component = load_component(source=COMPONENTS_DIR / f"{name}.yaml")
        assert component.name == f"fl_sandbox_{name}"
        assert f"fl_jobs.aml.steps.{name}" in component.command
